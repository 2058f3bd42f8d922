"""``verify_bundle``: the numbered checklist, one small function per step.

Each step function applies the rules of ``checks.py`` to the bundle and writes what they
find into its ``StepResult``, with the sentence the report has always printed (a location
prefix + ``Problem.detail``). What the steps know beyond one object (which blocks and seqs
the bundle holds, duplicates, coverage by anchors) stays here, with these codes:

==================== ==== =========================================================
code                 step meaning
==================== ==== =========================================================
``format``           1    the bundle is malformed (then no other step is checked)
``pin``              1    the pinned key is no key of the bundle's chain, or not a key
``not-checked``      2-9  the bundle's format is invalid
``malformed``        2, 3 an entry has no readable record/header
``seq-twice``        2    a seq appears twice (the first entry counts)
``block-twice``      3    a block number appears twice (the first entry counts)
``entry-field``      4    an entry's block or index is not an integer
``block-missing``    4    an entry's block is not in the bundle
``no-anchors``       6    the bundle has no anchors
``anchor-hash``      6    an anchor's header hash is not 64 lowercase hex
``anchor-block``     6    an anchor's header hash matches no block of the bundle
``anchor-kind``      6    no checker for the anchor's ledger kind
``ledger``           6    the ledger checker refused the anchor (detail: why)
``ledger-io``        6    the ledger checker could not check (I/O)
``uncovered``        7    a block is covered by no anchor
``chain-broken``     7    a block's header chain to an anchor is broken
``future-time``      8    a header or record claims a time after its anchor
==================== ==== =========================================================

Step 9 (``selection.py``) and the rotation chain of step 1 (``rotation.py``) report
sentences only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..canonical import canonical, header_hash
from ..errors import VerificationError
from ..keys import public_from_hex
from ..rotation import KeyChain, build_chain
from .anchors import AnchorChecker, default_checkers, iso
from .checks import (
    Problem,
    _hex32,
    _is_int,
    check_anchor_entry,
    check_anchor_time,
    check_header,
    check_inclusion,
    check_link,
    check_record,
    check_rotation_boundary,
    check_size,
)
from .records import block_keys, record_signatures
from .report import FORMAT, STEPS, Report, StepResult
from .selection import check_selection


@dataclass
class _Bundle:
    """What step 1 read and what each step leaves for the later ones."""

    gw_id: str
    key_hex: str
    blocks: list[Any]
    records: list[Any]
    anchors: list[Any]
    selection: dict[str, Any]
    chain: KeyChain
    key_of: Callable[[Any], Any]
    progress: Callable[[int, int], None] | None
    done: int = 0
    headers: dict[int, dict[str, Any]] = field(default_factory=dict)
    hashes: dict[int, bytes] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    proven: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # (seq, block, record)
    parsed: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # every kept record
    first_at: dict[int, int] = field(default_factory=dict)  # seq -> index of the entry that counts
    anchored: dict[int, int] = field(default_factory=dict)  # block -> earliest anchor time
    memo: dict[bytes, bytes] = field(default_factory=dict)
    memo_block: Any = None

    def tick(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(self.done, len(self.records) + len(self.blocks))


def verify_bundle(bundle: Any, *, gateway_key: str | None = None,
                  checkers: dict[str, AnchorChecker] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Report:
    """Check every step; ``gateway_key`` pins the key instead of trusting the bundle's."""
    checkers = checkers if checkers is not None else default_checkers()
    res = {n: StepResult(n, name) for n, name in STEPS}
    report = Report([res[n] for n, _ in STEPS], key_pinned=gateway_key is not None)
    b = _step1_format(bundle, gateway_key, res[1], progress)
    if b is None:
        for s in report.steps[1:]:
            s.fail("not checked: bundle format is invalid", Problem(s.step, "not-checked"))
        return report
    _step3_headers(b, res[3])
    _records(b, res[2], res[4])
    _step4_rotations(b, res[4])
    _step5_chain(b, res[5])
    _step6_anchors(b, res[6], checkers)
    cover = _step7_coverage(b, res[7], chain_ok=res[5].ok)
    _step8_anchor_time(b, res[8], cover)
    check_selection(b.selection, b.parsed, b.headers, b.order, res[9])
    report.summary = _summary(b)
    return report


def _step1_format(bundle: Any, gateway_key: str | None, s1: StepResult,
                  progress: Callable[[int, int], None] | None) -> _Bundle | None:
    """The bundle's shape, the gateway key, its rotations (§8.1) and the pin (§9.2)."""
    try:
        if not isinstance(bundle, dict):
            raise ValueError(f"bundle is {type(bundle).__name__}, want object")  # noqa: TRY004  step 1 reports one kind
        if bundle.get("format") != FORMAT:
            raise ValueError(f"format {bundle.get('format')!r}, want {FORMAT!r}")
        gw = bundle["gateway"]
        gw_id, key_hex = gw["id"], gw["public_key"]
        if not isinstance(gw_id, str) or not gw_id:
            raise ValueError(f"gateway.id {gw_id!r} is not a non-empty string")
        _hex32(key_hex, "gateway.public_key")
        public_from_hex(key_hex)
        for name, typ in (("blocks", list), ("records", list), ("anchors", list), ("selection", dict)):
            if not isinstance(bundle.get(name), typ):
                raise ValueError(f"{name} is {type(bundle.get(name)).__name__}, want {typ.__name__}")  # noqa: TRY004  step 1 reports one kind
        rotations = gw.get("rotations", [])
        if not isinstance(rotations, list):
            raise ValueError(f"gateway.rotations is {type(rotations).__name__}, want list")  # noqa: TRY004  step 1 reports one kind
        s1.checked = 1
    except Exception as exc:  # noqa: BLE001  anything malformed is a step-1 failure, never a crash
        s1.fail(f"malformed bundle: {exc!s}", Problem(1, "format", None, None, str(exc)))
        return None
    # key rotations (§8.1): which key signs which block; without rotations, one key signs all
    chain = build_chain(rotations, gw_id, key_hex)
    s1.failures += chain.failures
    s1.notes += chain.notes
    pinned = None
    if gateway_key is not None and gateway_key.lower() not in chain.keys:
        s1.fail(f"gateway key {key_hex[:16]}… is not the pinned key {gateway_key[:16]}…",
                Problem(1, "pin", key_hex, gateway_key))
        try:  # every signature below is then checked against the PINNED key, never the bundle's
            pinned = public_from_hex(gateway_key.lower())
        except Exception:  # noqa: BLE001  any bad pin is reported, and the signatures then fail
            s1.fail(f"pinned gateway key {gateway_key[:16]}… is not a 32-byte hex key",
                    Problem(1, "pin", gateway_key, "64 hex characters"))
            pinned = public_from_hex(key_hex)  # as before: the bundle's first key
    elif gateway_key is None:
        s1.notes.append("gateway key taken from the bundle; pin it with --gateway-key to trust no one")
    return _Bundle(gw_id, key_hex, bundle["blocks"], bundle["records"], bundle["anchors"], bundle["selection"],
                   chain, block_keys(chain, pinned), progress)


def _step3_headers(b: _Bundle, s3: StepResult) -> None:
    """Every header: readable, its members, version, key, gateway, signature (check_header);
    each block number once. Runs before step 2 because records need their blocks."""
    for i, entry in enumerate(b.blocks):
        try:
            h = entry["header"]
            n = h["block"]
            data = canonical(h)
        except Exception as exc:  # noqa: BLE001  an unreadable header is a failure of this step
            s3.fail(f"blocks[{i}]: malformed header: {exc}", Problem(3, "malformed", None, None, str(exc)))
            continue
        s3.checked += 1
        problems = check_header(h, entry.get("sig", ""), gateway=b.gw_id, key_hex=b.chain.key_for(n),
                                sig_key=b.key_of(n), data=data)
        if problems and problems[0].code == "header-field":
            s3.problem(problems[0], f"blocks[{i}]: ")
            continue
        for p in problems:
            s3.problem(p, f"block {n}: ")
        if n in b.headers:
            s3.fail(f"block {n} appears twice", Problem(3, "block-twice", n))
            continue
        b.headers[n] = h
        b.hashes[n] = header_hash(data)
        b.order.append(n)
        b.tick()


def _records(b: _Bundle, s2: StepResult, s4: StepResult) -> None:
    """Steps 2 and 4 walk the records together, so progress follows the work."""
    encoded, sig_ok, wait = record_signatures(b.records, b.key_of)
    for i, entry in enumerate(b.records):
        wait(i)
        kept = _step2_record(b, s2, i, entry, encoded[i], sig_ok[i])
        if kept is None:
            continue
        _step4_inclusion(b, s4, entry, *kept)
        b.tick()


def _step2_record(b: _Bundle, s2: StepResult, i: int, entry: Any, data: bytes | None,
                  sig_ok: bool) -> tuple[int, dict[str, Any], bytes] | None:
    """One record: readable, its members, one seq once, version, gateway, signature (the
    signature was checked ahead, on threads: ``sig_ok``). Returns what step 4 needs."""
    try:
        rec = entry["record"]
        seq = rec["seq"]
        if data is None:
            data = canonical(rec)  # raises what the pre-pass swallowed, for the message
    except Exception as exc:  # noqa: BLE001  an unreadable record is a failure of this step
        s2.fail(f"records[{i}]: malformed record: {exc}", Problem(2, "malformed", None, None, str(exc)))
        return None
    s2.checked += 1
    problems = check_record(rec, entry.get("sig"), gateway=b.gw_id, signature_valid=sig_ok)
    if problems and problems[0].code == "record-field":
        s2.problem(problems[0], f"records[{i}]: ")
        return None
    if seq in b.first_at:  # step 2 owns the records: one seq, one record (§9.3)
        s2.fail(f"records[{i}]: record seq {seq} appears twice (first at records[{b.first_at[seq]}])",
                Problem(2, "seq-twice", seq, None))
        return None
    b.first_at[seq] = i
    b.parsed.append((seq, entry.get("block"), rec))
    for p in problems:
        s2.problem(p, f"record seq {seq}: ")
    return seq, rec, data


def _step4_inclusion(b: _Bundle, s4: StepResult, entry: dict[str, Any], seq: int, rec: dict[str, Any],
                     data: bytes) -> None:
    """One kept record: its entry names a block of the bundle and proves the record is a
    leaf of it (check_inclusion). A proven record is kept for step 8."""
    bn: Any = entry.get("block")
    index: Any = entry.get("index")
    h = b.headers.get(bn) if _is_int(bn) else None
    s4.checked += 1
    if not _is_int(bn) or not _is_int(index):
        s4.fail(f"record seq {seq}: block {bn!r} and index {index!r} must be integers",
                Problem(4, "entry-field", [bn, index], "integers"))
        return
    if h is None:
        s4.fail(f"record seq {seq}: its block {bn!r} is not in the bundle", Problem(4, "block-missing", bn))
        return
    # Records of one block share their upper proof nodes: hash each node input once per
    # block (merkle.root_from_inclusion_proof; every proof element is still part of every input).
    if bn != b.memo_block or len(b.memo) > 1 << 16:
        b.memo.clear()
        b.memo_block = bn
    problems = check_inclusion(data, seq, index, h, entry.get("proof"), b.memo)
    if problems:
        s4.problem(problems[0], f"record seq {seq} in block {bn}: ")
        return
    b.proven.append((seq, bn, rec))


def _step4_rotations(b: _Bundle, s4: StepResult) -> None:
    """A rotation whose block is in the bundle must be a leaf of it, and that block's last
    (check_rotation_boundary, §8.1): the key change is then part of the chain the anchor
    covers, not only a statement beside it, and no record after it is signed by the old key."""
    for i, rec, data, proof in b.chain.entries:
        bn, seq = rec["last_block"], rec["seq"]
        h = b.headers.get(bn)
        if h is None:
            continue
        s4.checked += 1
        problems = check_inclusion(data, seq, None, h, proof, check_index=False)
        if not problems:  # a leaf of it, and its last one: the old key signs nothing after it
            problems = check_rotation_boundary(h, [(seq, bn, rec["old_key"], rec["new_key"])])
        if problems:
            s4.problem(problems[0], f"gateway.rotations[{i}] (seq {seq}) in block {bn}: ")


def _step5_chain(b: _Bundle, s5: StepResult) -> None:
    """Consecutive blocks link (check_link), each header's size fits its seqs (check_size),
    and block 0, if present, starts the chain."""
    b.order.sort()
    for prev_n, n in zip(b.order, b.order[1:]):
        s5.checked += 1
        for p in check_link(b.headers[prev_n], b.hashes[prev_n], b.headers[n]):
            s5.problem(p, "" if p.code == "block-gap" else f"block {n}: ")
    for n in b.order:
        for p in check_size(b.headers[n]):
            s5.problem(p, f"block {n}: ")
    if b.order and b.order[0] == 0:
        for p in check_link(None, None, b.headers[0]):
            s5.problem(p, "block 0: ")


def _step6_anchors(b: _Bundle, s6: StepResult, checkers: dict[str, AnchorChecker]) -> None:
    """Every anchor names a block of the bundle and holds on its ledger (the checker)."""
    by_hash = {h: n for n, h in b.hashes.items()}
    if not b.anchors:
        s6.fail("no anchors in the bundle", Problem(6, "no-anchors"))
    for i, a in enumerate(b.anchors):
        s6.checked += 1
        _step6_anchor(b, s6, checkers, by_hash, i, a)


def _step6_anchor(b: _Bundle, s6: StepResult, checkers: dict[str, AnchorChecker], by_hash: dict[bytes, int],
                  i: int, a: Any) -> None:
    kind = a.get("kind") if isinstance(a, dict) else None
    hh_hex = a.get("header_hash") if isinstance(a, dict) else None
    if hh_hex is None and isinstance(a, dict) and isinstance(a.get("entry"), dict):
        hh_hex = a["entry"].get("header_hash")
    try:
        hh = _hex32(hh_hex, "anchor header hash")
    except (ValueError, TypeError) as exc:
        s6.fail(f"anchors[{i}]: {exc}", Problem(6, "anchor-hash", hh_hex, "64 lowercase hex", str(exc)))
        return
    if hh not in by_hash:
        s6.fail(f"anchors[{i}] ({kind}): header hash {hh.hex()[:16]}… matches no block in the bundle",
                Problem(6, "anchor-block", hh.hex()))
        return
    checker = checkers.get(kind) if isinstance(kind, str) else None
    if checker is None:
        s6.fail(f"anchors[{i}]: unknown ledger kind {kind!r}", Problem(6, "anchor-kind", kind, sorted(checkers)))
        return
    try:
        t = checker(a, hh, step=6)
    except VerificationError as exc:
        s6.fail(f"anchors[{i}] ({kind}) for block {by_hash[hh]}: {exc.message}",
                Problem(6, "ledger", None, None, exc.message))
        return
    except Exception as exc:  # noqa: BLE001  a checker's I/O failure is a failed step, not a crash
        s6.fail(f"anchors[{i}] ({kind}): could not check: {exc}", Problem(6, "ledger-io", None, None, str(exc)))
        return
    bn = by_hash[hh]
    for p in check_anchor_entry(a, gateway=b.gw_id, block=bn):
        s6.problem(p, f"anchors[{i}] (local): ")
        return
    for p in check_anchor_time(t):
        s6.problem(p, f"anchors[{i}] ({kind}) for block {bn}: ")
        return
    b.anchored[bn] = min(t, b.anchored.get(bn, t))
    s6.notes.append(f"block {bn} anchored on {kind} at {iso(t)}")


def _step7_coverage(b: _Bundle, s7: StepResult, *, chain_ok: bool) -> dict[int, int]:
    """Every block is at or before an anchored block, through an unbroken chain. Returns
    block -> the earliest anchor time covering it, for step 8."""
    cover: dict[int, int] = {}
    best: int | None = None
    for n in sorted(b.order, reverse=True):
        if n + 1 not in b.headers and n != b.order[-1]:
            best = None  # a gap breaks the chain: later anchors prove nothing about earlier blocks
        if n in b.anchored:
            best = b.anchored[n] if best is None else min(best, b.anchored[n])
        if best is not None:
            cover[n] = best
    for bn in b.order:
        s7.checked += 1
        if bn not in cover and (chain_ok or bn in b.anchored):
            s7.fail(f"block {bn} is not covered by any anchor in the bundle", Problem(7, "uncovered", bn))
        elif bn not in cover:
            s7.fail(f"block {bn} is not covered: the header chain to an anchor is broken",
                    Problem(7, "chain-broken", bn))
    return cover


def _step8_anchor_time(b: _Bundle, s8: StepResult, cover: dict[int, int]) -> None:
    """Synced clocks claim no time after the anchor that covers them (headers, then proven
    records)."""
    for bn in b.order:
        h, at = b.headers[bn], cover.get(bn)
        if at is None:
            continue
        s8.checked += 1
        for key in ("last_time_ms", "sealed_ms"):
            v = h.get(key)
            if h.get("clock_synced") and isinstance(v, int) and v > at:
                s8.fail(f"block {bn}: {key} {v} is after its anchor time {at}: the header claims a future time",
                        Problem(8, "future-time", v, at))
    for seq, bn, rec in b.proven:
        rt_anchor = cover.get(bn)
        if rt_anchor is None:
            continue
        s8.checked += 1
        rt = rec.get("time_ms")
        if rec.get("clock_synced") and isinstance(rt, int) and rt > rt_anchor:
            s8.fail(f"record seq {seq}: time {rt} is after its anchor time {rt_anchor}",
                    Problem(8, "future-time", rt, rt_anchor))


def _summary(b: _Bundle) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "gateway": b.gw_id, "public_key": b.key_hex, "records": len(b.first_at), "blocks": len(b.order),
        "block_range": [b.order[0], b.order[-1]] if b.order else None,
        "anchors": len(b.anchors), "anchored_blocks": sorted(b.anchored),
        "anchor_time_ms": {str(n): t for n, t in sorted(b.anchored.items())},
        "selection": b.selection,
    }
    if b.chain.bounds:
        summary["key_chain"] = [{"key": k, "from_block": (b.chain.bounds[i - 1] + 1 if i else 0)}
                                for i, k in enumerate(b.chain.keys)]
    return summary
