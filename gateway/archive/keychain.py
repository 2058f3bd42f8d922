"""The archive's key chain per gateway: the ``hello`` stream (a signed profile, said with a
key of the chain; one signed by a key not in it yet is held for a rotation to that key) and
``key_rotation`` records, which extend the chain only under the verifier's own rule. Split
from gateway/archive/consumer.py; functions over the ``Archive``, whose ``held_hello`` and
store they update inside the batch's transaction.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from gateway.archive import checks as archive_checks
from gateway.archive.items import _HEX64, ItemRejected, KeysInForce, _canonical_text, _int, _pub, _text
from gateway.archive.store import Rejection, Store
from gateway.journal import RecordRow
from gateway.rules.profile import PROFILE_DOMAIN, station_from_profile
from ledger_client.canonical import record_message
from ledger_client.keys import verify_sig
from ledger_client.rotation import build_chain

log = logging.getLogger("traceseal.archive")


class Archive(Protocol):
    """What these handlers ask of the archive (``gateway.archive.consumer.Archive``):
    declared here so this module does not import the one that calls it."""

    store: Store
    held_hello: dict[str, dict[str, Any]]

    def _reject(self, rej: list[Rejection], gw: str, stream: str, ref: str, r: ItemRejected) -> None: ...


def hello(a: Archive, gw: str, keys: KeysInForce, msg: dict[str, Any], rej: list[Rejection]) -> None:
    """A signed profile, stored if newer. Signed with any key of the chain: a gateway says
    hello with its current key, and a retained hello from before a rotation still carries
    the old one; a key outside the chain that signs its own hello is held for a rotation."""
    pk = msg.get("public_key")
    data, prof = _canonical_text(msg.get("profile"), "profile")
    if pk not in keys.keys:
        sig = msg.get("sig")
        try:
            own = isinstance(pk, str) and _HEX64.fullmatch(pk) is not None and isinstance(sig, str) \
                and verify_sig(_pub(pk), sig, PROFILE_DOMAIN + data) and prof.get("gateway") == gw
        except Exception:  # noqa: BLE001  not a point on the curve
            own = False
        if own:
            a.held_hello[gw] = msg
            raise ItemRejected("key_unknown_yet", f"hello carries key {_text(pk, 16)}…, not (yet) in the chain of the "
                                            f"enrolled key {keys.enrolled[:16]}…; held until a rotation to it. "
                                            "If this station has not rotated its key, its enrolment key is wrong "
                                            "(compare with `traceseal status --json` public_key on the gateway)")
        raise ItemRejected("key_mismatch", f"hello carries key {_text(pk, 16)}…, which is neither the enrolled key "
                                     f"{keys.enrolled[:16]}… nor one it rotated to")
    if prof.get("gateway") != gw:
        raise ItemRejected("gateway_mismatch", f"profile names gateway {_text(prof.get('gateway'), 70)!r}")
    sig = msg.get("sig")
    if not isinstance(sig, str) or not verify_sig(_pub(pk), sig, PROFILE_DOMAIN + data):
        raise ItemRejected("bad_signature", f"profile signature does not verify with the key it names {pk[:16]}…")
    t = prof.get("time_ms")
    if not _int(t):
        raise ItemRejected("bad_profile", "profile time_ms is not an integer")
    assert isinstance(t, int)  # _int said so; for the type checker
    try:
        station_from_profile(prof)
    except ValueError as exc:
        raise ItemRejected("bad_profile", str(exc)) from None
    held = a.held_hello.get(gw)
    if held is not None and held.get("public_key") not in keys.keys:
        # the gateway speaks with a key of its chain: the held hello's key was not its own
        del a.held_hello[gw]
        a._reject(rej, gw, "hello", "message", ItemRejected(
            "key_mismatch", f"the held hello's key {_text(held.get('public_key'), 16)}… is not in the chain; "
                            f"the gateway has since said hello with {pk[:16]}…"))
    have = a.store.gateways()[gw]
    if have.profile == msg["profile"]:
        a.store.bump(gw, "duplicate_hello")
    elif have.profile_ms is None or t >= have.profile_ms:
        a.store.set_profile(gw, msg["profile"], sig, t)
    else:
        a.store.bump(gw, "stale_hello")


def rotation(a: Archive, gw: str, keys: KeysInForce, row: RecordRow, existing: dict[int, bytes],
              rej: list[Rejection]) -> None:
    """A ``key_rotation`` record, already verified as signed by the key in force for its
    seq: it extends the stored chain only if it holds under the verifier's own rule
    (``build_chain``: the same gateway, old_key = the key in force, a later block, and
    the new key's signature over the rotation statement)."""
    entries: list[dict[str, Any]] = []
    for seq, _, _, _ in keys.rotations:
        stored = a.store.records_between(gw, seq, seq)
        if not stored:
            raise ItemRejected("bad_rotation", f"the stored rotation at seq {seq} has lost its record; "
                                         "cannot extend the chain")
        entries.append({"record": json.loads(stored[0][1]), "sig": stored[0][2].hex()})
    rec = json.loads(row.body)
    entries.append({"record": rec, "sig": row.sig.hex()})
    chain = build_chain(entries, gw, keys.enrolled)
    if chain.failures or len(chain.keys) != len(entries) + 1:
        raise ItemRejected("bad_rotation", "; ".join(chain.failures) or "the rotation does not extend the key chain")
    lb = rec["last_block"]
    top = a.store.top_block(gw)
    boundary = {"block": top.block, "first_seq": top.first_seq, "last_seq": top.last_seq} if top else {}
    if top is not None and (top.block > lb or archive_checks.rotation_problems(boundary, row.seq, lb)):
        raise ItemRejected("bad_rotation", f"block {top.block} is already stored signed by the old key, "
                                     f"but the rotation hands blocks after {lb} to the new key")
    a.store.add_rotation(gw, row.seq, lb, rec["old_key"], rec["new_key"])
    keys.rotations.append((row.seq, lb, rec["old_key"], rec["new_key"]))
    log.info("gateway %s: key rotated at seq %d after block %d: %s… -> %s…", gw, row.seq, lb,
             rec["old_key"][:16], rec["new_key"][:16])
    held = a.held_hello.get(gw)
    if held is not None and held.get("public_key") == rec["new_key"]:
        del a.held_hello[gw]
        try:
            hello(a, gw, keys, held, rej)
        except ItemRejected as r:
            a._reject(rej, gw, "hello", "message", r)
    # alarms stored ahead of the rotation were checked against the old key: re-check
    stale = [s for s, body, sig in a.store.records_between(gw, row.seq + 1, 2**62)
             if not verify_sig(_pub(keys.for_seq(s)), sig.hex(), record_message(body))]
    if stale:
        a.store.delete_records(gw, stale)
        for s in stale:
            existing.pop(s, None)
            a._reject(rej, gw, "records", f"seq {s}", ItemRejected(
                "bad_signature", f"signed by the retired key {rec['old_key'][:16]}…, which the rotation at seq "
                                 f"{row.seq} replaced; the record is not kept"))
