"""Rotate the gateway's signing key with a signed record, so every bundle still verifies
against the key an auditor pinned at enrolment (docs/proof-format.md §8.1).

``traceseal rotate-key -c CONFIG --new-key PATH`` (the gateway stopped):

1. both keys are loaded and checked first (0600, Ed25519, the old one is the journal's
   current key, the new one is not a key the journal ever used): any error leaves the
   journal untouched;
2. whatever is waiting is sealed with the old key;
3. one transaction stores a ``key_rotation`` record signed by the OLD key (carrying the
   NEW key's signature over the rotation statement: proof of possession), a block holding
   only that record, signed by the old key, and the journal's key history row;
4. the new key replaces the configured key file (0600, atomic). The old private key is not
   kept: nothing needs it any more (old bundles verify with its *public* key, which the
   journal keeps), and a retired key that still exists could sign a fork of the old blocks.

The lock file beside the journal is held by a running gateway (``Gateway.start``), so
rotating under a running service is refused instead of racing its writer.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.blocks import BlockSealer
from gateway.chain.source import BundleSource
from gateway.core.clock import Clock
from gateway.core.errors import GatewayError
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from ledger_client.files import open_lock_file
from ledger_client.keys import public_hex, write_private_key
from ledger_client.merkle import hash_leaf, inclusion_proofs
from ledger_client.rotation import RECORD_TYPE, rotation_statement


class RotationError(GatewayError):
    pass


class JournalLock:
    """An exclusive ``flock`` on ``<journal>.lock``: one writer process per journal. The
    kernel drops it when the process dies, so a crash never leaves a stale lock."""

    def __init__(self, journal_path: Path) -> None:
        self.path = Path(journal_path).with_name(Path(journal_path).name + ".lock")
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = open_lock_file(self.path)  # O_NOFOLLOW: a link planted at the lock's name is refused
        except OSError as exc:
            raise RotationError(f"{self.path}: cannot open the journal's lock file ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RotationError(f"{self.path}: the journal is in use (is the gateway running? stop it first)") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the lock
            self.fd = None


@dataclass(frozen=True)
class Rotation:
    seq: int
    last_block: int
    old_key: str
    new_key: str


def rotate(journal: Journal, gateway_id: str, old: Ed25519PrivateKey, new: Ed25519PrivateKey, clock: Clock, *,
           max_records: int, reason: str | None = None) -> Rotation:
    """Write the rotation (steps 2-3 above); the caller installs the new key file after."""
    old_hex, new_hex = public_hex(old), public_hex(new)
    have_id = journal.meta("gateway_id")
    if have_id is not None and have_id != gateway_id:
        raise RotationError(f"{journal.path}: journal belongs to gateway {have_id!r}, not {gateway_id!r}")
    current = journal.current_key()
    if current is None:
        raise RotationError(f"{journal.path}: the gateway has never run with this journal: nothing to rotate "
                            "(configure the new key and start the gateway instead)")
    if old_hex != current:
        raise RotationError(f"the configured key {old_hex[:16]}… is not the journal's current key {current[:16]}…")
    used = {journal.meta("public_key")} | {k for r in journal.key_rotations() for k in r[2:]}
    if new_hex in used:
        raise RotationError(f"the new key {new_hex[:16]}… was already used by this gateway; generate a fresh one "
                            "(`traceseal keygen NEW.key`)")
    if reason is not None and not (isinstance(reason, str) and 0 < len(reason) <= 200):
        raise RotationError("--reason must be 1..200 characters")
    sealer = BlockSealer(journal, old, gateway_id, clock, max_records, 0)
    sealer.maybe_seal(force=True)  # records still waiting belong to the old key
    last = journal.last_block()
    if journal.unsealed_span(-1 if last is None else last.last_seq)[0]:
        raise RotationError("records are still unsealed after sealing; refusing to rotate")
    n = 0 if last is None else last.block + 1
    body: dict[str, Any] = {"type": RECORD_TYPE, "old_key": old_hex, "new_key": new_hex, "last_block": n,
                            "new_key_sig": new.sign(rotation_statement(gateway_id, old_hex, new_hex, n)).hex()}
    if reason:
        body["reason"] = reason
    seq = journal.next_seq()
    row = Sealer(gateway_id, old, seq).seal(body, time_ms=clock.now_ms(), synced=clock.synced())
    block = sealer.block_row(last, [row])
    journal.commit_rotation(row, block, old_hex, new_hex)
    return Rotation(seq, n, old_hex, new_hex)


def install_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Atomically replace the key file (mode 0600 from the first byte, through a fresh
    temporary file: a link at the key's name is replaced, not written through). Run as root, the new
    file keeps the old one's owner and group: a root-owned key would stop the service (user
    traceseal) from starting, and systemd would restart it in a loop."""
    owner = None
    if os.geteuid() == 0 and path.exists():
        st = path.stat()
        owner = (st.st_uid, st.st_gid)
    write_private_key(path, key, overwrite=True, owner=owner)


def bundle_rotations(journal: BundleSource) -> list[dict[str, Any]]:
    """Every rotation of the journal, oldest first, each with its inclusion proof in its own
    block: the chain from the gateway's first key (``gateway.public_key``) to its current
    one. All of them, even those after the bundle's last block, so that an auditor who
    pinned any key of the chain can verify any bundle exported after the rotation."""
    out = []
    for seq, last_block, _, _ in journal.key_rotations():
        b = journal.block(last_block)
        if b is None:
            raise RotationError(f"journal lists a rotation after block {last_block}, but that block is missing")
        rows = journal.records_range(b.first_seq, b.last_seq)
        i = seq - b.first_seq
        proof = inclusion_proofs([hash_leaf(bytes(r.body)) for r in rows])[i]
        out.append({"record": json.loads(rows[i].body), "sig": bytes(rows[i].sig).hex(),
                    "proof": [p.hex() for p in proof]})
    return out
