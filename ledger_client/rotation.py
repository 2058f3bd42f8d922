"""Gateway key rotation: the key chain a bundle carries in ``gateway.rotations``.

A rotation is an ordinary journal record (``type: "key_rotation"``) signed by the OLD key,
sealed as the last record of the last block the old key signs. It names the new key and
carries ``new_key_sig``: the NEW key's signature over a domain-separated statement naming
the gateway, both keys and that block. Each link is therefore signed by both of its keys,
so an auditor who pinned any key of the chain — the enrolment key, or a later one — can
follow it in either direction (docs/proof-format.md §8.1).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any

from .canonical import canonical, record_message
from .keys import public_from_hex, verify_sig

ROTATE_DOMAIN = b"traceseal/rotate/v1\n"
RECORD_TYPE = "key_rotation"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECORD_FIELDS: dict[str, Any] = {"v": int, "gateway": str, "seq": int, "time_ms": int, "clock_synced": bool,
                                  "type": str, "old_key": str, "new_key": str, "new_key_sig": str,
                                  "last_block": int}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def rotation_statement(gateway: str, old_key: str, new_key: str, last_block: int) -> bytes:
    """What the NEW key signs: proof that its holder has it and takes over from ``old_key``
    after block ``last_block`` of ``gateway`` (and nothing else: the domain keeps it from
    ever being valid as a record, header or ledger signature)."""
    return ROTATE_DOMAIN + canonical({"gateway": gateway, "old_key": old_key, "new_key": new_key,
                                      "last_block": last_block})


@dataclass
class KeyChain:
    """``keys[0]`` is ``gateway.public_key``; ``keys[i]`` signs the blocks after
    ``bounds[i-1]`` up to and including ``bounds[i]``."""

    keys: list[str]
    bounds: list[int] = field(default_factory=list)
    # (rotations index, record, canonical bytes) of every well-formed entry, for step 4
    entries: list[tuple[int, dict[str, Any], bytes, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def key_for(self, block: Any) -> str:
        """The key that must sign block ``block`` (a record's entry that names no integer
        block gets the first key; step 4 fails it anyway)."""
        if not _is_int(block):
            return self.keys[0]
        return self.keys[bisect.bisect_left(self.bounds, block)]


def build_chain(rotations: Any, gw_id: str, key_hex: str) -> KeyChain:
    """Walk ``gateway.rotations`` from ``key_hex``. The first rotation that does not hold
    ends the chain: it and every later one are not used (a step-1 failure each)."""
    chain = KeyChain([key_hex])
    broken = False
    for i, entry in enumerate(rotations):
        rec = entry.get("record") if isinstance(entry, dict) else None
        try:
            if not isinstance(rec, dict):
                raise ValueError("record is not an object")  # noqa: TRY004  one error type per malformed entry
            data = canonical(rec)
            bad = []
            for k, typ in _RECORD_FIELDS.items():
                v = rec.get(k)
                if not (_is_int(v) if typ is int else isinstance(v, typ)):
                    bad.append(f"{k}={v!r}" if k in rec else f"{k} missing")
            if bad:
                raise ValueError(f"fields {', '.join(bad)}")
        except Exception as exc:  # noqa: BLE001  hostile input of any shape is a failure, never a crash
            chain.failures.append(f"gateway.rotations[{i}]: malformed rotation: {exc}")
            broken = True
            continue
        chain.entries.append((i, rec, data, entry.get("proof")))
        if broken:
            chain.failures.append(f"gateway.rotations[{i}]: not used: an earlier rotation does not hold")
            continue
        why = _link_problem(entry, rec, data, gw_id, chain)
        if why:
            chain.failures.append(f"gateway.rotations[{i}] (seq {rec['seq']}): {why}")
            broken = True
            continue
        chain.keys.append(rec["new_key"])
        chain.bounds.append(rec["last_block"])
        chain.notes.append(f"key rotated after block {rec['last_block']} (record seq {rec['seq']}): "
                           f"{rec['old_key'][:16]}… → {rec['new_key'][:16]}…")
    return chain


def _link_problem(entry: dict[str, Any], rec: dict[str, Any], data: bytes, gw_id: str, chain: KeyChain) -> str:
    cur = chain.keys[-1]
    if rec["v"] != 1:
        return f"version {rec['v']!r}, want 1"
    if rec["type"] != RECORD_TYPE:
        return f"type {rec['type']!r}, want {RECORD_TYPE!r}"
    if rec["gateway"] != gw_id:
        return f"gateway {rec['gateway']!r}, want {gw_id!r}"
    if rec["old_key"] != cur:
        return f"old_key {rec['old_key'][:16]}… is not the key in force {cur[:16]}…"
    if not _HEX64.fullmatch(rec["new_key"]):
        return f"new_key {rec['new_key'][:70]!r} is not 64 lowercase hex characters"
    if chain.bounds and rec["last_block"] <= chain.bounds[-1]:
        return f"last_block {rec['last_block']} is not after the previous rotation's {chain.bounds[-1]}"
    if not verify_sig(public_from_hex(cur), entry.get("sig", ""), record_message(data)):
        return f"signature by the old key {cur[:16]}… does not verify"
    try:
        new_pub = public_from_hex(rec["new_key"])
    except Exception:  # noqa: BLE001  any decoding failure means the same: not a key
        return "new_key is not an Ed25519 public key"
    msg = rotation_statement(rec["gateway"], rec["old_key"], rec["new_key"], rec["last_block"])
    if not verify_sig(new_pub, rec["new_key_sig"], msg):
        return "new_key_sig by the new key does not verify (no proof the new key's holder made it)"
    return ""
