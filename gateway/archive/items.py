"""Item-level verification for the archive's consumer (gateway/archive/consumer.py): the
reasons a forwarded item is refused, and the checks of one record, block header or anchor
against what the store already holds, each as docs/upstream.md §Archive-side verification
says. Split from the consumer so the batch/transaction logic reads apart from the rules for
one item; every check raises ``ItemRejected`` with a stable reason code.
"""

from __future__ import annotations

import bisect
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.archive import checks as archive_checks
from gateway.archive.store import PENDING, Store, StoredBlock, StoreError
from gateway.core.errors import Rejected
from gateway.journal import RecordRow
from ledger_client.canonical import canonical, header_hash
from ledger_client.keys import public_from_hex
from ledger_client.verify import loads_strict
from ledger_client.verify.checks import Problem

MAX_ITEMS = 20_000          # per message; the forwarder cuts at batch_max
MAX_BODY = 64 * 1024        # one record's canonical text
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KIND = re.compile(r"[a-z0-9_-]{1,32}")


class PartialCommit(StoreError):
    """The store failed while a batch was isolated: its first ``done`` messages are stored
    (acknowledge them and publish acks for ``touched``), the rest must be retried."""

    def __init__(self, done: int, touched: set[str], message: str) -> None:
        super().__init__(message)
        self.done, self.touched = done, touched


class ItemRejected(Rejected):
    """The archive refused one item (or message) a gateway forwarded: ``code`` (also
    ``reason``) is the stable reason of docs/upstream.md; it becomes a rejection row."""

    @property
    def reason(self) -> str:
        return self.code

    @property
    def detail(self) -> str:
        return self.message


def _text(v: Any, n: int = 500) -> str:
    """Safe to store in any TEXT column: no NUL (PostgreSQL refuses it), no lone surrogates."""
    return str(v)[:n].replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -(2**62) < v < 2**62


def _canonical_text(text: Any, what: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes as sent, and the object, if and only if the text is its own RFC 8785 form."""
    if not isinstance(text, str):
        raise ItemRejected("malformed", f"{what} is {type(text).__name__}, want a string")
    if len(text) > MAX_BODY:
        raise ItemRejected("too_large", f"{what} is {len(text)} characters, more than {MAX_BODY}")
    try:
        data = text.encode("utf-8")
        obj = loads_strict(text)
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise ItemRejected("malformed", f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ItemRejected("malformed", f"{what} is {type(obj).__name__}, want an object")
    try:
        again = canonical(obj)
    except Exception as exc:  # noqa: BLE001  any failure to canonicalise hostile input is this reason
        raise ItemRejected("not_canonical", f"{what} cannot be canonicalised: {exc}") from None
    if again != data:
        raise ItemRejected("not_canonical", f"{what} is not in RFC 8785 canonical form")
    return data, obj


@functools.lru_cache(maxsize=256)
def _pub(key_hex: str) -> Ed25519PublicKey:
    return public_from_hex(key_hex)


@dataclass
class KeysInForce:
    """A gateway's key chain as the archive has stored it: the enrolled key, then each
    accepted rotation's new key. The rule is the verifier's (ledger_client/rotation.py,
    docs/proof-format.md §8.1): a rotation record at seq ``s`` closing block ``b`` hands
    over every record after ``s`` and every block after ``b`` to its new key."""

    enrolled: str
    rotations: list[tuple[int, int, str, str]]  # (seq, last_block, old_key, new_key), oldest first

    @property
    def keys(self) -> list[str]:
        return [self.enrolled] + [r[3] for r in self.rotations]

    def for_seq(self, seq: int) -> str:
        return self.keys[bisect.bisect_left([r[0] for r in self.rotations], seq)]

    def for_block(self, n: int) -> str:
        return self.keys[bisect.bisect_left([r[1] for r in self.rotations], n)]


@dataclass
class Ack:
    records: int = -1
    blocks: int = -1
    anchors: int = -1

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.records, self.blocks, self.anchors)


def contiguous(store: Store, gw: str) -> int:
    """The last seq up to which ``gw``'s records are stored without a gap (-1: none)."""
    prog = store.progress(gw)
    return -1 if prog is None else prog[0]


def record_row(store: Store, gw: str, keys: KeysInForce, item: Any, early: bool) -> RecordRow:
    """One forwarded record, checked (canonical body, seq, gateway, signature by the key in
    force for its seq) and made a row; ``early``: an alarm, ahead of the ordered stream."""
    if not isinstance(item, dict) or not _int(item.get("seq")) or item["seq"] < 0:
        raise ItemRejected("malformed", "item needs a non-negative integer seq, a body and a sig")
    seq = item["seq"]
    data, rec = _canonical_text(item.get("body"), "body")
    if rec.get("seq") != seq:
        raise ItemRejected("seq_mismatch", f"body has seq {_text(rec.get('seq'), 30)}, item has {seq}")
    sig, key = item.get("sig"), keys.for_seq(seq)
    p = archive_checks.record_problem(rec, sig, data, gateway=gw, key_hex=key, sig_key=_pub(key))
    if p is not None and p.code == "gateway":
        raise ItemRejected("gateway_mismatch", f"body names gateway {_text(rec.get('gateway'), 70)!r}")
    if p is not None and p.code == "signature":
        if early and seq - 1 > contiguous(store, gw):
            # an alarm ahead of the ordered stream: a rotation not received yet may hand
            # this seq to a key the archive does not know; the ordered copy decides
            raise ItemRejected("key_unknown_yet", f"record signature does not verify with the key in force "
                                            f"{key[:16]}…, and earlier seqs (a key rotation among them?) have "
                                            "not arrived yet")
        raise ItemRejected("bad_signature", f"record signature does not verify with the key in force for seq {seq} "
                                      f"({key[:16]}…)")
    if p is not None:
        raise ItemRejected(archive_checks.REASONS[p.code], f"record: {_text(p.detail, 300)}")
    typ, sensor, kind, t = rec["type"], rec.get("sensor"), rec.get("kind"), rec["time_ms"]
    cols = [typ, sensor if isinstance(sensor, str) else None, kind if isinstance(kind, str) else None]
    if any(c is not None and (len(c) > 256 or "\x00" in c) for c in cols):
        raise ItemRejected("malformed", "record type, sensor or kind is over 256 characters or holds NUL")
    return RecordRow(seq, t, cols[0], cols[1], cols[2], None, data, bytes.fromhex(str(sig)))


def stored_header(store: Store, gw: str, keys: KeysInForce, item: Any) -> tuple[StoredBlock, dict[str, Any]]:
    """One forwarded block header, checked on its own (canonical, numbered, signed by the
    key in force for the block), as the pending row to store and the parsed header."""
    if not isinstance(item, dict) or not _int(item.get("block")) or item["block"] < 0:
        raise ItemRejected("malformed", "item needs a non-negative integer block, a header and a sig")
    data, h = _canonical_text(item.get("header"), "header")
    n = item["block"]
    if h.get("block") != n:
        raise ItemRejected("seq_mismatch", f"header is block {_text(h.get('block'), 30)}, item says {n}")
    want, sig = keys.for_block(n), item.get("sig")
    p = archive_checks.header_problem(h, sig, data, gateway=gw, key_hex=want, sig_key=_pub(want),
                                      rotations=keys.rotations)
    if p is not None:
        raise header_reject(store, gw, keys, n, h, want, p)
    return StoredBlock(n, h["first_seq"], h["last_seq"], data, bytes.fromhex(str(sig)), header_hash(data),
                       h["sealed_ms"], PENDING), h


def header_reject(store: Store, gw: str, keys: KeysInForce, n: int, h: dict[str, Any], want: str,
                   p: Problem) -> ItemRejected:
    """The rejection for a header's first problem (archive_checks.REASONS), in the
    archive's words; a key that a rotation not received yet may introduce waits."""
    reason = archive_checks.REASONS[p.code]
    if p.code == "gateway":
        return ItemRejected(reason, f"header names gateway {_text(h.get('gateway'), 70)!r}")
    if p.code == "key":
        if h["key"] not in keys.keys and h["first_seq"] - 1 > contiguous(store, gw):
            return ItemRejected("key_unknown_yet", f"header names key {_text(h['key'], 16)}…, not the key in force "
                                             f"{want[:16]}…, and records before it have not arrived yet")
        return ItemRejected(reason, f"header names key {_text(h['key'], 16)}…, the key in force for "
                              f"block {n} is {want[:16]}…")
    if p.code == "signature":
        return ItemRejected(reason, f"header signature does not verify with the key in force {want[:16]}…")
    return ItemRejected(reason, f"header: {_text(p.detail, 300)}")


def check_chain(store: Store, gw: str, b: StoredBlock, h: dict[str, Any]) -> None:
    """The header links to the stored block before it and the stored block after it links
    to the header; a gap (the previous block missing once a chain is stored) is refused."""
    prev = store.get_block(gw, b.block - 1) if b.block > 0 else None
    probs: list[Problem] = []
    if b.block == 0:
        probs = archive_checks.link_problems(None, None, h)
    elif prev is not None:
        probs = archive_checks.link_problems(json.loads(prev.header), prev.hash, h)
    elif store.top_block(gw) is not None:
        raise ItemRejected("chain_gap", f"block {b.block - 1} is not stored: blocks must arrive in order")
    nxt = store.get_block(gw, b.block + 1)
    if not probs and nxt is not None:
        probs = archive_checks.link_problems(h, b.hash, json.loads(nxt.header))
        if probs:
            raise ItemRejected(archive_checks.REASONS[probs[0].code],
                         f"stored block {nxt.block} does not link to this header: {_text(probs[0].detail, 300)}")
    if probs:
        raise ItemRejected(archive_checks.REASONS[probs[0].code], f"block {b.block}: {_text(probs[0].detail, 300)}")


def anchor_item(store: Store, gw: str, item: Any) -> tuple[StoredBlock, str]:
    """The stored block an anchor item names and its anchor object as stored text, once the
    item is well formed and names that block's header hash."""
    if not (isinstance(item, dict) and _int(item.get("block")) and _int(item.get("time_ms"))
            and isinstance(item.get("header_hash"), str) and _HEX64.fullmatch(item["header_hash"])
            and isinstance(item.get("kind"), str) and _KIND.fullmatch(item["kind"])
            and isinstance(item.get("anchor"), dict)):
        raise ItemRejected("malformed", "anchor item needs block, header_hash (64 hex), kind, anchor{}, time_ms")
    a = item["anchor"]
    inner = a.get("header_hash")
    if inner is None and isinstance(a.get("entry"), dict):
        inner = a["entry"].get("header_hash")
    if inner is not None and inner != item["header_hash"]:
        raise ItemRejected("anchor_mismatch", "the anchor object names another header hash than the item")
    b = store.get_block(gw, item["block"])
    if b is None:
        raise ItemRejected("unknown_block", f"block {item['block']} is not stored (send the block first)")
    if b.hash.hex() != item["header_hash"]:
        raise ItemRejected("anchor_mismatch", f"header_hash {item['header_hash'][:16]}… is not the stored "
                                              f"header's {b.hash.hex()[:16]}…")
    try:
        text = json.dumps(a, sort_keys=True, ensure_ascii=True, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ItemRejected("malformed", f"anchor object: {exc}") from None
    if len(text) > MAX_BODY:
        raise ItemRejected("too_large", f"anchor object is {len(text)} characters")
    return b, text
