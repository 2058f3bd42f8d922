"""Verify a ``traceseal-bundle/1`` with no access to the gateway: a numbered checklist.

Steps (docs/proof-format.md §Verification):

1. format         the bundle parses; the gateway key is well formed (and equals the pinned key)
2. record-sigs    every record's Ed25519 signature by the gateway key
3. header-sigs    every block header's signature by the gateway key
4. inclusion      every record's RFC 9162 inclusion proof leads to its block's root
5. chain          headers are consecutive: block numbers, prev-hash links, sequence ranges
6. anchors        every anchor is valid on its ledger and names a header in the bundle
7. coverage       every record's block is at or before an anchored block (via the chain)
8. anchor-time    records and headers claim no time after the anchor that covers them
9. selection      the records are what the selection says (sensor, range, lot) and the
                  blocks cover the whole selected range, so gaps show

Every step runs even after an earlier one fails, so one report shows everything wrong;
the bundle verifies only when every step passes AND the gateway key was pinned: without a
pin the bundle vouches for itself (anyone can make one that passes every step), so the
result is "intact, key not pinned" (``Report.result``), never "verified".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import safejson
from .canonical import canonical, header_hash, header_message, record_message
from .errors import ProofError, VerificationError
from .keys import public_from_hex, verify_sig
from .merkle import hash_leaf, verify_inclusion
from .rotation import KeyChain, build_chain

FORMAT = "traceseal-bundle/1"
ZERO_HASH = "00" * 32
# Anchor times (§7.4) outside 2000-01-01..2200-01-01 are a forgery or a broken ledger, not a
# time; refusing them also keeps every later date conversion (and the browser's) in range.
ANCHOR_TIME_MIN_MS = 946_684_800_000
ANCHOR_TIME_MAX_MS = 7_258_118_400_000
MAX_DEPTH = 900  # §9.1: deeper JSON is unreadable (the browser's parser stops there too)

# Report.result values (also in --json): the CLI exits 0, 4 and 1 for them
VERIFIED, INTACT_NOT_PINNED, FAILED = "verified", "intact-key-not-pinned", "failed"

STEPS = [
    (1, "format"), (2, "record-sigs"), (3, "header-sigs"), (4, "inclusion"), (5, "chain"),
    (6, "anchors"), (7, "coverage"), (8, "anchor-time"), (9, "selection"),
]

# kind -> checker(anchor, header_hash, step=...) -> ledger time in Unix ms
AnchorChecker = Callable[..., int]


@dataclass
class StepResult:
    step: int
    name: str
    checked: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "name": self.name, "ok": self.ok, "checked": self.checked,
                "failures": self.failures, "notes": self.notes}


@dataclass
class Report:
    steps: list[StepResult]
    summary: dict[str, Any] = field(default_factory=dict)
    key_pinned: bool = False

    @property
    def ok(self) -> bool:
        """Every step passed (which, without a pinned key, proves integrity only)."""
        return all(s.ok for s in self.steps)

    @property
    def result(self) -> str:
        """``verified`` only with a pinned gateway key; ``intact-key-not-pinned`` when every
        step passed but the key came from the bundle; else ``failed``."""
        if not self.ok:
            return FAILED
        return VERIFIED if self.key_pinned else INTACT_NOT_PINNED

    @property
    def first_failure(self) -> StepResult | None:
        return next((s for s in self.steps if not s.ok), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key_pinned": self.key_pinned, "result": self.result,
                "steps": [s.as_dict() for s in self.steps], "summary": self.summary}


def _local_checker(**opts: Any) -> AnchorChecker:
    from .local import verify_local_anchor

    def check(anchor: dict[str, Any], hh: bytes, *, step: int) -> int:
        return verify_local_anchor(anchor, hh, step=step, pinned_key=opts.get("ledger_key"),
                                   ledger_file=opts.get("ledger_file"))
    return check


def default_checkers(*, ledger_key: str | None = None, ledger_file: Any = None, rpc_url: str | None = None,
                     chain_id: int | None = None, sender: str | None = None,
                     min_confirmations: int | None = None) -> dict[str, AnchorChecker]:
    checkers: dict[str, AnchorChecker] = {"local": _local_checker(ledger_key=ledger_key, ledger_file=ledger_file)}

    def evm(anchor: dict[str, Any], hh: bytes, *, step: int) -> int:
        from .evm import verify_evm_anchor  # imported lazily: only EVM bundles need it

        return verify_evm_anchor(anchor, hh, step=step, rpc_url=rpc_url, expected_chain_id=chain_id,
                                 expected_sender=sender, min_confirmations=min_confirmations)
    checkers["evm"] = evm
    return checkers


def _iso(ms: int) -> str:
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    except (OverflowError, ValueError, OSError):  # only reachable for times no step accepts
        return f"{ms} ms"


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _hex32(value: Any, what: str) -> bytes:
    """32 bytes as exactly 64 lowercase hex characters: one spelling, so string and byte
    comparisons can never disagree."""
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise ValueError(f"{what} {str(value)[:70]!r} is not 64 lowercase hex characters")
    return bytes.fromhex(value)


def _hex32_list(values: list[Any], what: str) -> list[bytes]:
    """``_hex32`` over a whole proof at once (one fromhex; the hex round trip refuses
    uppercase and whitespace as the regex does). Any bad element falls back to ``_hex32``
    so the error names it exactly as before."""
    if all(type(v) is str and len(v) == 64 for v in values):
        joined = "".join(values)
        try:
            raw = bytes.fromhex(joined)
        except ValueError:
            raw = b""
        if raw.hex() == joined:
            return [raw[i:i + 32] for i in range(0, len(raw), 32)]
    return [_hex32(v, what) for v in values]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_RECORD_FIELDS: dict[str, Any] = {"v": int, "gateway": str, "seq": int, "time_ms": int, "clock_synced": bool,
                                  "type": str}
_HEADER_FIELDS: dict[str, Any] = {"v": int, "gateway": str, "block": int, "first_seq": int, "last_seq": int,
                                  "size": int, "root": str, "prev": str, "first_time_ms": int, "last_time_ms": int,
                                  "sealed_ms": int, "clock_synced": bool, "key": str}


def _missing_or_mistyped(obj: dict[str, Any], fields: dict[str, Any]) -> list[str]:
    """Required signed fields: absent or wrongly typed ones would let a step silently skip
    (a record without ``clock_synced`` would escape the anchor-time check)."""
    bad = []
    for k, typ in fields.items():
        v = obj.get(k)
        ok = _is_int(v) if typ is int else isinstance(v, typ)
        if not ok:
            bad.append(f"{k}={v!r}" if k in obj else f"{k} missing")
    return bad


def loads_strict(text: str) -> Any:
    """JSON as a verifier must read it: duplicate member names and NaN/Infinity are refused,
    because two parsers could otherwise see two different records behind one signature."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for k, v in items:
            if k in d:
                raise ValueError(f"duplicate member name {k!r}")
            d[k] = v
        return d

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    value = safejson.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    depth = json_depth(value)
    if depth > MAX_DEPTH:
        raise ValueError(f"JSON nested {depth} levels deep, more than {MAX_DEPTH}")
    return value


def json_depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` is (iteratively: no recursion limit to hit).
    Costs about a third of the parse; §9.1 needs the exact number so all verifiers agree."""
    best = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    pop, push = stack.pop, stack.append
    while stack:
        v, d = pop()
        best = max(best, d)
        for x in (v.values() if type(v) is dict else v):
            t = type(x)
            if t is dict or t is list:
                push((x, d + 1))
    return best


def verify_bundle(bundle: Any, *, gateway_key: str | None = None,
                  checkers: dict[str, AnchorChecker] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Report:
    """Check every step; ``gateway_key`` pins the key instead of trusting the bundle's."""
    checkers = checkers if checkers is not None else default_checkers()
    res = {n: StepResult(n, name) for n, name in STEPS}
    report = Report([res[n] for n, _ in STEPS], key_pinned=gateway_key is not None)

    # (1) format ------------------------------------------------------------------
    s1 = res[1]
    try:
        if not isinstance(bundle, dict):
            raise ValueError(f"bundle is {type(bundle).__name__}, want object")
        if bundle.get("format") != FORMAT:
            raise ValueError(f"format {bundle.get('format')!r}, want {FORMAT!r}")
        gw = bundle["gateway"]
        gw_id, key_hex = gw["id"], gw["public_key"]
        if not isinstance(gw_id, str) or not gw_id:
            raise ValueError(f"gateway.id {gw_id!r} is not a non-empty string")
        _hex32(key_hex, "gateway.public_key")
        pub = public_from_hex(key_hex)
        for name, typ in (("blocks", list), ("records", list), ("anchors", list), ("selection", dict)):
            if not isinstance(bundle.get(name), typ):
                raise ValueError(f"{name} is {type(bundle.get(name)).__name__}, want {typ.__name__}")
        blocks, records, anchors = bundle["blocks"], bundle["records"], bundle["anchors"]
        selection = bundle["selection"]
        rotations = gw.get("rotations", [])
        if not isinstance(rotations, list):
            raise ValueError(f"gateway.rotations is {type(rotations).__name__}, want list")
        s1.checked = 1
    except Exception as exc:  # anything malformed is a step-1 failure, never a crash
        s1.failures.append(f"malformed bundle: {exc!s}")
        for s in report.steps[1:]:
            s.failures.append("not checked: bundle format is invalid")
        return report
    # key rotations (§8.1): which key signs which block; without rotations, one key signs all
    chain = build_chain(rotations, gw_id, key_hex)
    s1.failures += chain.failures
    s1.notes += chain.notes
    pin_mismatch = gateway_key is not None and gateway_key.lower() not in chain.keys
    if pin_mismatch:
        s1.failures.append(f"gateway key {key_hex[:16]}… is not the pinned key {gateway_key[:16]}…")
        try:  # every signature below is then checked against the PINNED key, never the bundle's
            pub = public_from_hex(gateway_key.lower())
        except Exception:
            s1.failures.append(f"pinned gateway key {gateway_key[:16]}… is not a 32-byte hex key")
    elif gateway_key is None:
        s1.notes.append("gateway key taken from the bundle; pin it with --gateway-key to trust no one")
    key_of = _block_keys(chain, pub if pin_mismatch else None)

    total = len(records) + len(blocks)
    done = 0

    # headers: parse once --------------------------------------------------------------
    headers: dict[int, dict[str, Any]] = {}
    hashes: dict[int, bytes] = {}
    order: list[int] = []
    s3 = res[3]
    for i, b in enumerate(blocks):
        try:
            h = b["header"]
            n = h["block"]
            data = canonical(h)
        except Exception as exc:
            s3.failures.append(f"blocks[{i}]: malformed header: {exc}")
            continue
        s3.checked += 1
        bad = _missing_or_mistyped(h, _HEADER_FIELDS) if isinstance(h, dict) else ["not an object"]
        if bad:
            s3.failures.append(f"blocks[{i}]: header fields {', '.join(bad)}")
            continue
        if h.get("v") != 1:
            s3.failures.append(f"block {n}: header version {h.get('v')!r}, want 1")
        if str(h.get("key", "")).lower() != chain.key_for(n):
            s3.failures.append(f"block {n}: signed by key {str(h.get('key'))[:16]}…, not the gateway key {chain.key_for(n)[:16]}…")
        if h.get("gateway") != gw_id:
            s3.failures.append(f"block {n}: gateway {h.get('gateway')!r}, want {gw_id!r}")
        if not verify_sig(key_of(n), b.get("sig", ""), header_message(data)):
            s3.failures.append(f"block {n}: header signature does not verify")
        if n in headers:
            s3.failures.append(f"block {n} appears twice")
            continue
        headers[n] = h
        hashes[n] = header_hash(data)
        order.append(n)
        done += 1
        if progress:
            progress(done, total)

    # (2) record signatures and (4) inclusion --------------------------------------------
    s2, s4 = res[2], res[4]
    rec_blocks: list[tuple[int, int, dict[str, Any]]] = []  # (seq, block, record) with a valid proof
    parsed: list[tuple[int, int, dict[str, Any]]] = []  # every readable record, for the selection step
    # Records of one block share their upper proof nodes: hash each node input once per block
    # (merkle.root_from_inclusion_proof; every proof element is still part of every input).
    memo: dict[bytes, bytes] = {}
    memo_block: Any = None
    encoded, sig_ok, wait = _record_signatures(records, key_of)
    first_at: dict[int, int] = {}  # seq -> index of the entry that counts
    for i, entry in enumerate(records):
        wait(i)
        try:
            rec = entry["record"]
            seq = rec["seq"]
            data = encoded[i]
            if data is None:
                data = canonical(rec)  # raises what the pre-pass swallowed, for the message
        except Exception as exc:
            s2.failures.append(f"records[{i}]: malformed record: {exc}")
            continue
        s2.checked += 1
        bad = _missing_or_mistyped(rec, _RECORD_FIELDS) if isinstance(rec, dict) else ["not an object"]
        if bad:
            s2.failures.append(f"records[{i}]: record fields {', '.join(bad)}")
            continue
        if seq in first_at:  # step 2 owns the records: one seq, one record (§9.3)
            s2.failures.append(f"records[{i}]: record seq {seq} appears twice (first at records[{first_at[seq]}])")
            continue
        first_at[seq] = i
        parsed.append((seq, entry.get("block"), rec))
        if rec.get("v") != 1:
            s2.failures.append(f"record seq {seq}: version {rec.get('v')!r}, want 1")
        if rec.get("gateway") != gw_id:
            s2.failures.append(f"record seq {seq}: gateway {rec.get('gateway')!r}, want {gw_id!r}")
        if not sig_ok[i]:
            s2.failures.append(f"record seq {seq}: signature does not verify")
        bn = entry.get("block")
        h = headers.get(bn) if _is_int(bn) else None
        s4.checked += 1
        if not _is_int(bn) or not _is_int(entry.get("index")):
            s4.failures.append(f"record seq {seq}: block {bn!r} and index {entry.get('index')!r} must be integers")
        elif h is None:
            s4.failures.append(f"record seq {seq}: its block {bn!r} is not in the bundle")
        else:
            try:
                index = seq - h["first_seq"]
                if not h["first_seq"] <= seq <= h["last_seq"]:
                    raise ProofError(f"seq {seq} outside block {bn} range {h['first_seq']}..{h['last_seq']}")
                if not isinstance(entry.get("proof"), list):
                    raise ProofError(f"proof is {type(entry.get('proof')).__name__}, want list")
                if entry.get("index") != index:
                    raise ProofError(f"leaf index {entry.get('index')!r}, want {index}")
                proof = _hex32_list(entry.get("proof", []), "proof hash")
                if bn != memo_block or len(memo) > 1 << 16:
                    memo.clear()
                    memo_block = bn
                verify_inclusion(index, h["size"], hash_leaf(data), proof, _hex32(h["root"], "root"), memo)
                rec_blocks.append((seq, bn, rec))
            except (ProofError, ValueError, KeyError, TypeError) as exc:
                s4.failures.append(f"record seq {seq} in block {bn}: {exc}")
        done += 1
        if progress:
            progress(done, total)

    _check_rotation_inclusion(chain, headers, s4)

    # (5) chain continuity -------------------------------------------------------------
    s5 = res[5]
    order.sort()
    for prev_n, n in zip(order, order[1:]):
        s5.checked += 1
        a, b = headers[prev_n], headers[n]
        if n != prev_n + 1:
            s5.failures.append(f"block {prev_n} is followed by block {n}: blocks {prev_n + 1}..{n - 1} are missing")
            continue
        if b.get("prev") != hashes[prev_n].hex():
            s5.failures.append(f"block {n}: prev {str(b.get('prev'))[:16]}… does not match hash of block {prev_n} {hashes[prev_n].hex()[:16]}…")
        if b.get("first_seq") != a.get("last_seq", -2) + 1:
            s5.failures.append(f"block {n}: first_seq {b.get('first_seq')}, want {a.get('last_seq', -2) + 1} (records missing between blocks)")
    for n in order:
        h = headers[n]
        try:
            if h["size"] != h["last_seq"] - h["first_seq"] + 1 or h["size"] < 1:
                s5.failures.append(f"block {n}: size {h['size']} does not match seq range {h['first_seq']}..{h['last_seq']}")
        except (KeyError, TypeError) as exc:
            s5.failures.append(f"block {n}: malformed header field {exc}")
    if order and order[0] == 0:
        if headers[0].get("prev") != ZERO_HASH:
            s5.failures.append("block 0: prev must be all zeros")
        if headers[0].get("first_seq") != 0:
            s5.failures.append(f"block 0: first_seq {headers[0].get('first_seq')}, want 0 (records before it are missing)")

    # (6) anchors ---------------------------------------------------------------------
    s6 = res[6]
    by_hash = {h: n for n, h in hashes.items()}
    anchored: dict[int, int] = {}  # block -> earliest anchor time
    if not anchors:
        s6.failures.append("no anchors in the bundle")
    for i, a in enumerate(anchors):
        s6.checked += 1
        kind = a.get("kind") if isinstance(a, dict) else None
        hh_hex = a.get("header_hash") if isinstance(a, dict) else None
        if hh_hex is None and isinstance(a, dict) and isinstance(a.get("entry"), dict):
            hh_hex = a["entry"].get("header_hash")
        try:
            hh = _hex32(hh_hex, "anchor header hash")
        except (ValueError, TypeError) as exc:
            s6.failures.append(f"anchors[{i}]: {exc}")
            continue
        if hh not in by_hash:
            s6.failures.append(f"anchors[{i}] ({kind}): header hash {hh.hex()[:16]}… matches no block in the bundle")
            continue
        checker = checkers.get(kind) if isinstance(kind, str) else None
        if checker is None:
            s6.failures.append(f"anchors[{i}]: unknown ledger kind {kind!r}")
            continue
        try:
            t = checker(a, hh, step=6)
        except VerificationError as exc:
            s6.failures.append(f"anchors[{i}] ({kind}) for block {by_hash[hh]}: {exc.message}")
            continue
        except Exception as exc:  # a checker's I/O failure is a failed step, not a crash
            s6.failures.append(f"anchors[{i}] ({kind}): could not check: {exc}")
            continue
        bn = by_hash[hh]
        entry = a.get("entry") if kind == "local" else None
        if isinstance(entry, dict) and (entry.get("gateway") != gw_id or not _is_int(entry.get("block"))
                                        or entry.get("block") != bn):
            s6.failures.append(f"anchors[{i}] (local): entry names gateway {entry.get('gateway')!r} block "
                               f"{entry.get('block')!r}, want {gw_id!r} block {bn}")
            continue
        if not _is_int(t) or not ANCHOR_TIME_MIN_MS <= t <= ANCHOR_TIME_MAX_MS:
            s6.failures.append(f"anchors[{i}] ({kind}) for block {bn}: anchor time {t} is outside "
                               f"{ANCHOR_TIME_MIN_MS}..{ANCHOR_TIME_MAX_MS} (years 2000..2200)")
            continue
        anchored[bn] = min(t, anchored.get(bn, t))
        s6.notes.append(f"block {bn} anchored on {kind} at {_iso(t)}")

    # (7) coverage and (8) anchor time --------------------------------------------------
    s7, s8 = res[7], res[8]
    # the earliest anchor at or after each block, walking back through the contiguous chain
    cover: dict[int, int] = {}
    best: int | None = None
    for n in sorted(order, reverse=True):
        if n + 1 not in headers and n != order[-1]:
            best = None  # a gap breaks the chain: later anchors prove nothing about earlier blocks
        if n in anchored:
            best = anchored[n] if best is None else min(best, anchored[n])
        if best is not None:
            cover[n] = best
    for bn in order:
        s7.checked += 1
        if bn not in cover and (s5.ok or bn in anchored):
            s7.failures.append(f"block {bn} is not covered by any anchor in the bundle")
        elif bn not in cover:
            s7.failures.append(f"block {bn} is not covered: the header chain to an anchor is broken")
    for bn in order:
        h, at = headers[bn], cover.get(bn)
        if at is None:
            continue
        s8.checked += 1
        for key in ("last_time_ms", "sealed_ms"):
            v = h.get(key)
            if h.get("clock_synced") and isinstance(v, int) and v > at:
                s8.failures.append(f"block {bn}: {key} {v} is after its anchor time {at}: the header claims a future time")
    for seq, bn, rec in rec_blocks:
        rt_anchor = cover.get(bn)
        if rt_anchor is None:
            continue
        s8.checked += 1
        rt = rec.get("time_ms")
        if rec.get("clock_synced") and isinstance(rt, int) and rt > rt_anchor:
            s8.failures.append(f"record seq {seq}: time {rt} is after its anchor time {rt_anchor}")

    # (9) selection -----------------------------------------------------------------
    s9 = res[9]
    _check_selection(selection, parsed, headers, order, s9)

    report.summary = {
        "gateway": gw_id, "public_key": key_hex, "records": len(first_at), "blocks": len(order),
        "block_range": [order[0], order[-1]] if order else None,
        "anchors": len(anchors), "anchored_blocks": sorted(anchored),
        "anchor_time_ms": {str(b): t for b, t in sorted(anchored.items())},
        "selection": selection,
    }
    if chain.bounds:
        report.summary["key_chain"] = [{"key": k, "from_block": (chain.bounds[i - 1] + 1 if i else 0)}
                                       for i, k in enumerate(chain.keys)]
    return report


PARALLEL_MIN_RECORDS = 2_000  # below this a thread pool costs more than it saves
PARALLEL_CHUNK = 500  # records per task: small enough that the caller's loop rarely waits


def _record_signatures(records: list[Any], key_of: Callable[[Any], Any]
                       ) -> tuple[list[bytes | None], list[bool], Callable[[int], None]]:
    """(canonical bytes or None, signature valid, wait) per record entry, in bundle order.

    Ed25519 is most of a record's cost, and libsodium releases the GIL while it verifies, so
    a long bundle is checked on every core (two threads verified 1.94x as fast as one on this
    2-vCPU machine, bench/README.md). Chunks run ahead of the caller's loop, which calls
    ``wait(i)`` before it reads entry ``i``: progress reports stay in step with the work, and
    each entry is still checked exactly once, with its block's key, and reported in bundle
    order exactly as a sequential run would. An entry that cannot be canonicalised gets None
    and False; the caller reports it as malformed."""
    n = len(records)
    encoded: list[bytes | None] = [None] * n
    ok = [False] * n

    def check(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            entry = records[i]
            try:
                data = canonical(entry["record"])
            except Exception:
                continue
            encoded[i] = data
            ok[i] = verify_sig(key_of(entry.get("block")), entry.get("sig", ""), record_message(data))

    workers = min(os.cpu_count() or 1, 8)
    if workers < 2 or n < PARALLEL_MIN_RECORDS:
        check(0, n)
        return encoded, ok, lambda i: None
    from concurrent.futures import ThreadPoolExecutor

    step = PARALLEL_CHUNK
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
    futures = [pool.submit(check, lo, min(lo + step, n)) for lo in range(0, n, step)]
    pool.shutdown(wait=False)  # the queued chunks still run; nothing is left behind

    def wait(i: int) -> None:
        futures[i // step].result()  # re-raises a chunk's unexpected error here

    return encoded, ok, wait


def _block_keys(chain: KeyChain, pinned: Any) -> Callable[[Any], Any]:
    """The public key each block's signatures are checked with: the chain's key for the
    block, or, when the pin is no key of the chain, the pinned key for every block (§9.2)."""
    cache: dict[str, Any] = {}

    def key_of(block: Any) -> Any:
        if pinned is not None:
            return pinned
        k = chain.key_for(block)
        if k not in cache:
            cache[k] = public_from_hex(k)
        return cache[k]
    return key_of


def _check_rotation_inclusion(chain: KeyChain, headers: dict[int, dict[str, Any]], s4: StepResult) -> None:
    """A rotation whose block is in the bundle must be a leaf of it: the key change is then
    part of the chain the anchor covers, not only a statement beside it."""
    for i, rec, data, proof in chain.entries:
        bn, seq = rec["last_block"], rec["seq"]
        h = headers.get(bn)
        if h is None:
            continue
        s4.checked += 1
        try:
            if not h["first_seq"] <= seq <= h["last_seq"]:
                raise ProofError(f"seq {seq} outside block {bn} range {h['first_seq']}..{h['last_seq']}")
            if not isinstance(proof, list):
                raise ProofError(f"proof is {type(proof).__name__}, want list")
            path = [_hex32(p, "proof hash") for p in proof]
            verify_inclusion(seq - h["first_seq"], h["size"], hash_leaf(data), path, _hex32(h["root"], "root"))
        except (ProofError, ValueError, KeyError, TypeError) as exc:
            s4.failures.append(f"gateway.rotations[{i}] (seq {seq}) in block {bn}: {exc}")


def _check_selection(sel: Any, recs: list[tuple[int, int, dict[str, Any]]], headers: dict[int, dict[str, Any]],
                     order: list[int], s9: StepResult) -> None:
    if not isinstance(sel, dict) or "type" not in sel:
        s9.failures.append(f"selection {sel!r} has no type")
        return
    kind = sel["type"]
    s9.checked = len(recs)
    if kind == "record":
        if not _is_int(sel.get("seq")) or [r[0] for r in recs] != [sel.get("seq")]:
            s9.failures.append(f"selection is record seq {sel.get('seq')}, bundle has seqs {[r[0] for r in recs][:5]}")
        return
    if kind == "range":
        lo, hi, sensor = sel.get("from_ms"), sel.get("to_ms"), sel.get("sensor")
        if not (_is_int(lo) and _is_int(hi) and isinstance(sensor, str)):
            s9.failures.append(f"range selection needs integer from_ms/to_ms and a sensor, got {lo!r}, {hi!r}, {sensor!r}")
            return
        for seq, _, rec in recs:
            if sensor is not None and rec.get("sensor") != sensor:
                s9.failures.append(f"record seq {seq}: sensor {rec.get('sensor')!r} is not the selected {sensor!r}")
            t = rec.get("time_ms")
            if isinstance(lo, int) and isinstance(hi, int) and isinstance(t, int) and not lo <= t <= hi:
                s9.failures.append(f"record seq {seq}: time {t} outside selected range {lo}..{hi}")
        if not order:
            s9.failures.append("range bundle has no blocks")
            return
        first, last = headers[order[0]], headers[order[-1]]
        if isinstance(lo, int) and order[0] != 0 and first.get("first_time_ms", lo) > lo:
            s9.failures.append(f"first block {order[0]} starts at {first.get('first_time_ms')}, after the range start {lo}: earlier blocks are missing")
        if isinstance(hi, int) and last.get("last_time_ms", hi) < hi:
            if sel.get("open_end") is True:
                s9.notes.append(f"open end: the exporter says nothing after block {order[-1]} "
                                f"({last.get('last_time_ms')}) was anchored at export time; this claim is not signed")
            else:
                s9.failures.append(f"last block {order[-1]} ends at {last.get('last_time_ms')}, before the range end {hi}: later blocks are missing")
        return
    if kind == "lot":
        _check_lot(sel, recs, headers, order, s9)
        return
    if kind == "route":
        _check_route(sel, recs, s9)
        return
    if kind == "records":
        s9.notes.append(f"{kind} selection: {sel.get('id', '')}")
        return
    s9.failures.append(f"unknown selection type {kind!r}")


def _check_lot(sel: dict[str, Any], recs: list[tuple[int, int, dict[str, Any]]], headers: dict[int, dict[str, Any]],
               order: list[int], s9: StepResult) -> None:
    """A lot bundle holds the lot's own scans/movements, and per residency window the unit's
    sensor readings and unit alarms inside that window; the blocks span every window."""
    lot, windows = sel.get("lot"), sel.get("windows")
    if not isinstance(lot, str) or not isinstance(windows, list):
        s9.failures.append(f"lot selection needs a lot string and a windows list, got {lot!r}, {windows!r}")
        return
    for i, w in enumerate(windows):
        if not (isinstance(w, dict) and isinstance(w.get("unit"), str) and _is_int(w.get("from_ms"))
                and _is_int(w.get("to_ms")) and isinstance(w.get("sensors"), list)):
            s9.failures.append(f"lot window {i} is malformed: {w!r}")
            return
    # The windows are the exporter's claim; the signed stock records in the bundle must back
    # each one: an "in" movement where it starts, and an "out" leaving no stock where it ends.
    stock = [r for _, _, r in recs if r.get("type") == "stock" and r.get("lot") == lot]
    for i, w in enumerate(windows):
        if not any(r.get("event") == "in" and r.get("unit") == w["unit"] and _is_int(r.get("at_ms"))
                   and r.get("at_ms") == w["from_ms"] for r in stock):
            s9.failures.append(f"lot window {i} ({w['unit']} from {w['from_ms']}) has no signed stock-in record")
        if w.get("open") is True:
            if order and headers[order[-1]].get("last_time_ms", 0) > w["to_ms"]:
                s9.failures.append(f"lot window {i} is open but ends at {w['to_ms']}, before the bundle's last block")
        elif not any(r.get("event") in ("out", "discard") and r.get("unit") == w["unit"]
                     and _is_int(r.get("at_ms")) and r.get("at_ms") == w["to_ms"]
                     and _is_int(r.get("stock_after")) and r.get("stock_after") == 0 for r in stock):
            s9.failures.append(f"lot window {i} ({w['unit']} to {w['to_ms']}) has no signed stock-out record emptying it")
    for seq, _, rec in recs:
        attrs = rec.get("attrs") if isinstance(rec.get("attrs"), dict) else {}
        if rec.get("lot") == lot or attrs.get("lot") == lot:
            continue
        t = rec.get("time_ms")
        sensor = rec.get("sensor")
        if any(w["from_ms"] <= t <= w["to_ms"] and ((isinstance(sensor, str) and sensor in w["sensors"])
               or (rec.get("type") == "alarm" and rec.get("unit") == w["unit"])) for w in windows):
            continue
        s9.failures.append(f"record seq {seq} is neither about lot {lot!r} nor inside one of its unit windows")
    if windows and order:
        lo, hi = min(w["from_ms"] for w in windows), max(w["to_ms"] for w in windows)
        first, last = headers[order[0]], headers[order[-1]]
        if order[0] != 0 and first.get("first_time_ms", lo) > lo:
            s9.failures.append(f"first block {order[0]} starts at {first.get('first_time_ms')}, after the lot's first window {lo}: earlier blocks are missing")
        if last.get("last_time_ms", hi) < hi:
            s9.failures.append(f"last block {order[-1]} ends at {last.get('last_time_ms')}, before the lot's last window ends {hi}: later blocks are missing")
    s9.notes.append(f"lot {lot}: {len(windows)} residency window(s) in unit(s) {sorted({w['unit'] for w in windows})}")


def _check_route(sel: dict[str, Any], recs: list[tuple[int, int, dict[str, Any]]], s9: StepResult) -> None:
    """A route bundle holds records naming the route, and only the sessions and readings
    those records cite (by session id and by badge/scan/weight seq)."""
    route = sel.get("id")
    if not isinstance(route, str):
        s9.failures.append(f"route selection needs an id string, got {route!r}")
        return
    own = [r for _, _, r in recs if r.get("route") == route]
    cited_sessions = {s for r in own if isinstance(s := r.get("session"), str)}
    sessions = [r for _, _, r in recs if r.get("type") == "custody_session" and isinstance(r.get("id"), str)
                and r["id"] in cited_sessions]
    cited_seqs = {v for r in own + sessions for k in ("scan_seq", "weight_seq", "badge_seq") if _is_int(v := r.get(k))}
    for seq, _, rec in recs:
        if rec.get("route") == route:
            continue
        if rec.get("type") == "custody_session" and isinstance(rec.get("id"), str) and rec["id"] in cited_sessions:
            continue
        if seq in cited_seqs:
            continue
        s9.failures.append(f"record seq {seq} ({rec.get('type')}) neither names route {route!r} nor is cited by its records")
    s9.notes.append(f"route {route}: {sum(1 for r in own if r.get('type') == 'custody')} custody records")


# -- traceseal-set/1: one bundle per gateway for a lot or route that crossed gateways ----------
SET_FORMAT = "traceseal-set/1"


@dataclass
class SetReport:
    """A set verifies iff its own checks pass and every inner bundle verifies."""

    failures: list[str]
    bundles: list[tuple[str, Report]]  # (gateway id as the bundle states it, its report)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.bundles) and all(r.ok for _, r in self.bundles)

    @property
    def key_pinned(self) -> bool:
        """Every inner bundle was checked against a pinned key."""
        return bool(self.bundles) and all(r.key_pinned for _, r in self.bundles)

    @property
    def result(self) -> str:
        if not self.ok:
            return FAILED
        return VERIFIED if self.key_pinned else INTACT_NOT_PINNED

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key_pinned": self.key_pinned, "result": self.result, "format": SET_FORMAT,
                "failures": self.failures, "notes": self.notes,
                "bundles": [{"gateway": g, "ok": r.ok, "result": r.result, "report": r.as_dict()}
                            for g, r in self.bundles]}


def verify_set(doc: Any, *, gateway_keys: dict[str, str] | None = None,
               checkers: dict[str, AnchorChecker] | None = None) -> SetReport:
    """docs/proof-format.md §13. ``gateway_keys`` pins each gateway's key; when any pin is
    given, an inner bundle of a gateway without one fails (a set must not smuggle in a
    gateway the auditor did not vouch for)."""
    checkers = checkers if checkers is not None else default_checkers()
    keys = {g: k.lower() for g, k in (gateway_keys or {}).items()}
    rep = SetReport([], [])
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        rep.failures.append(f"format {fmt!r}, want {SET_FORMAT!r}")
        return rep
    sel, bundles = doc.get("selection"), doc.get("bundles")
    if not isinstance(sel, dict) or sel.get("type") not in ("lot", "route"):
        rep.failures.append(f"selection {str(sel)[:80]} is not a lot or route selection")
        return rep
    want = {"lot": ("lot", "gtin"), "route": ("id",)}[sel["type"]]
    if not isinstance(bundles, list) or not bundles:
        rep.failures.append("bundles is not a non-empty list")
        return rep
    seen: set[str] = set()
    for i, b in enumerate(bundles):
        gw = b.get("gateway") if isinstance(b, dict) else None
        gid = gw.get("id") if isinstance(gw, dict) else None
        name = gid if isinstance(gid, str) else f"bundles[{i}]"
        inner = b.get("selection") if isinstance(b, dict) else None
        if not isinstance(inner, dict) or inner.get("type") != sel["type"] or any(
                inner.get(k) != sel.get(k) for k in want):
            rep.failures.append(f"{name}: selection {str(inner)[:120]} is not the set's {sel}")
        if isinstance(gid, str):
            if gid in seen:
                rep.failures.append(f"gateway {gid!r} appears more than once")
            seen.add(gid)
        pin = keys.get(gid) if isinstance(gid, str) else None
        if keys and pin is None:
            rep.failures.append(f"{name}: no pinned key for this gateway (pin every gateway with --key GW=HEX)")
        rep.bundles.append((name, verify_bundle(b, gateway_key=pin, checkers=checkers)))
    if not keys:
        rep.notes.append("gateway keys taken from the bundles; pin each with --key GATEWAY=HEX to trust no one")
    for g in sorted(set(keys) - seen):
        rep.notes.append(f"pinned gateway {g!r} has no bundle in this set")
    return rep
