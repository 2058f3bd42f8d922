"""Independent traceseal bundle verifier, written from docs/proof-format.md alone.

Auditor's implementation: it uses only the Python standard library, ``cryptography``
(Ed25519) and ``rfc8785`` (JCS). It deliberately imports nothing from ``ledger_client``
or ``gateway``. Section references (``§n``) point into docs/proof-format.md.

Entry points:

* ``parse_bundle_bytes(data)``  -- strict JSON parse (§1): integers kept exact, numbers
  with a fraction/exponent marked so they can be refused by written form, duplicate
  member names detected, NaN/Infinity refused.
* ``verify_bundle(bundle, gateway_key=None, ledger_key=None, ledger_file=None,
  strict=False)`` -- runs the nine steps of §9 and returns a ``VerifyResult``.
* ``verify_file(path, ...)`` -- convenience wrapper.

``strict=True`` additionally enforces the SHOULDs the spec lists but says the reference
verifier skips (header ``key`` equals the gateway key, block 0 starts at seq 0,
record/header ``v`` is 1) and the consistency of the "informative" local-ledger entry
fields ``gateway``/``block`` (§7.2). Default is the MUST-only behaviour of the §9 table.

Assumptions where the spec is silent are marked ``ASSUMPTION`` below; they are also
listed in the audit report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# ---------------------------------------------------------------------------
# Constants (§2, §11)
# ---------------------------------------------------------------------------

BUNDLE_FORMAT = "traceseal-bundle/1"
SENSOR_DOMAIN = b"traceseal/sensor/v1\n"
RECORD_DOMAIN = b"traceseal/record/v1\n"
HEADER_DOMAIN = b"traceseal/header/v1\n"
LEDGER_DOMAIN = b"traceseal/ledger/v1\n"
ZERO_HASH_HEX = "0" * 64
MAX_SAFE_INT = 2**53 - 1

STEP_NAMES = {
    1: "format",
    2: "record-sigs",
    3: "header-sigs",
    4: "inclusion",
    5: "chain",
    6: "anchors",
    7: "coverage",
    8: "anchor-time",
    9: "selection",
}

# ---------------------------------------------------------------------------
# Strict JSON parsing (§1)
# ---------------------------------------------------------------------------


class NonIntegerNumber:
    """A JSON number written with a fraction or an exponent (§1: MUST be refused by its
    written form). Kept as a marker so that refusal happens where the spec puts it (in
    the step that needs the canonical bytes), not at parse time."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"NonIntegerNumber({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NonIntegerNumber) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


class DuplicateMemberError(ValueError):
    pass


class BundleReadError(ValueError):
    """The bundle could not be read at all (CLI exit status 2)."""


def _pairs_hook(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateMemberError(f"duplicate member name {k!r}")
        out[k] = v
    return out


def _reject_constant(name):
    raise ValueError(f"non-JSON number {name}")


def parse_json_bytes(data: bytes | str) -> Any:
    """RFC 8259 parse with the §1 rules: duplicate member names refused, integers exact,
    fractions/exponents kept as ``NonIntegerNumber``, NaN/Infinity refused."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(
        data,
        object_pairs_hook=_pairs_hook,
        parse_float=NonIntegerNumber,
        parse_int=int,
        parse_constant=_reject_constant,
    )


def parse_bundle_bytes(data: bytes | str) -> Any:
    try:
        return parse_json_bytes(data)
    except (ValueError, UnicodeDecodeError) as exc:
        # ASSUMPTION: invalid JSON / duplicate names / NaN => "could not be read".
        raise BundleReadError(str(exc)) from exc


# ---------------------------------------------------------------------------
# Canonical form, hashes, signatures (§2)
# ---------------------------------------------------------------------------


class NotCanonicalError(ValueError):
    pass


def check_canonicalizable(o: Any, path: str = "$") -> None:
    """§1/§2: integers only, within ±(2^53-1); strings; booleans; null; arrays; objects
    with string member names. Anything else (incl. 1.0 / 1e3) is refused."""
    if o is None or isinstance(o, (bool, str)):
        if isinstance(o, str):
            try:
                o.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogate
                raise NotCanonicalError(f"{path}: string is not valid Unicode") from exc
        return
    if isinstance(o, int):
        if not -MAX_SAFE_INT <= o <= MAX_SAFE_INT:
            raise NotCanonicalError(f"{path}: integer {o} out of range")
        return
    if isinstance(o, NonIntegerNumber):
        raise NotCanonicalError(f"{path}: number {o.text} has a fraction or exponent")
    if isinstance(o, float):
        raise NotCanonicalError(f"{path}: non-integer number {o!r}")
    if isinstance(o, list):
        for i, v in enumerate(o):
            check_canonicalizable(v, f"{path}[{i}]")
        return
    if isinstance(o, dict):
        for k, v in o.items():
            if not isinstance(k, str):
                raise NotCanonicalError(f"{path}: member name {k!r} is not a string")
            check_canonicalizable(v, f"{path}.{k}")
        return
    raise NotCanonicalError(f"{path}: unsupported value {type(o).__name__}")


def jcs(o: Any) -> bytes:
    """``JCS(o)`` after the §1 checks."""
    check_canonicalizable(o)
    try:
        return rfc8785.dumps(o)
    except Exception as exc:  # pragma: no cover - defensive
        raise NotCanonicalError(str(exc)) from exc


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def leaf_hash(record: Any) -> bytes:
    return sha256(b"\x00" + jcs(record))


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def header_hash(header: Any) -> bytes:
    return sha256(jcs(header))


def entry_hash(entry: Any) -> bytes:
    return sha256(jcs(entry))


def ed25519_verify(pub: bytes, sig: bytes, msg: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def signed_message(domain: bytes, o: Any) -> bytes:
    return domain + jcs(o)


# ---------------------------------------------------------------------------
# Hex helpers (§1)
# ---------------------------------------------------------------------------

_HEX = set("0123456789abcdefABCDEF")
_LHEX = set("0123456789abcdef")


def is_hex(s: Any, nbytes: int, lowercase_only: bool = False) -> bool:
    if not isinstance(s, str) or len(s) != 2 * nbytes:
        return False
    return set(s) <= (_LHEX if lowercase_only else _HEX)


def hex_bytes(s: Any, nbytes: int) -> bytes | None:
    """Decode hex of exactly nbytes. ASSUMPTION: fields that are *decoded* (keys,
    signatures, proof items, roots) accept either case; only fields the spec says are
    compared as strings (prev, local header_hash) are case-sensitive."""
    if not is_hex(s, nbytes):
        return None
    return bytes.fromhex(s)


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------
# Merkle tree (§5, RFC 9162 §2.1)
# ---------------------------------------------------------------------------


def mth(leaves: list[bytes]) -> bytes:
    """Merkle tree hash over leaf *hashes* (already 0x00-prefixed and hashed)."""
    n = len(leaves)
    if n == 0:
        raise ValueError("blocks are never empty")
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def mth_levels(leaves: list[bytes]) -> bytes:
    """Level-by-level construction (§5: promote an odd last node unchanged)."""
    level = list(leaves)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n]), bottom-up."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if index < k:
        return inclusion_path(index, leaves[:k]) + [mth(leaves[k:])]
    return inclusion_path(index - k, leaves[k:]) + [mth(leaves[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes):
    """§5 pseudo-code, verbatim. Returns None on success or a failure text."""
    if not (0 <= index < size):
        return f"leaf index {index} outside tree of size {size}"
    if len(leaf) != 32 or len(root) != 32 or any(len(p) != 32 for p in proof):
        return "hash is not 32 bytes"
    fn = index
    sn = size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return "wrong proof size: proof too long"
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                while not (fn % 2 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return "wrong proof size: proof too short"
    if r != root:
        return f"calculated root {r.hex()} does not match {root.hex()}"
    return None


# ---------------------------------------------------------------------------
# Result objects (§9 "Report")
# ---------------------------------------------------------------------------


@dataclass
class StepResult:
    step: int
    name: str
    ok: bool = True
    checked: int = 0
    failures: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def fail(self, msg: str) -> None:
        self.ok = False
        self.failures.append(msg)


@dataclass
class VerifyResult:
    steps: list
    anchor_time_ms: dict = field(default_factory=dict)
    cover_time_ms: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def first_failing_step(self) -> int | None:
        for s in self.steps:
            if not s.ok:
                return s.step
        return None

    @property
    def failing_steps(self) -> list:
        return [s.step for s in self.steps if not s.ok]

    def step(self, n: int) -> StepResult:
        return self.steps[n - 1]

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "first_failing_step": self.first_failing_step,
            "steps": [s.__dict__ for s in self.steps],
        }


# ---------------------------------------------------------------------------
# The verifier (§9)
# ---------------------------------------------------------------------------


def _canon_ok(o: Any) -> str | None:
    try:
        jcs(o)
        return None
    except NotCanonicalError as exc:
        return str(exc)


def _check_local_ledger_file(path: str, entry: dict) -> str | None:
    """§7.2: the entry stored at entry.index has exactly the bytes JCS(entry).
    ASSUMPTION: table ``entries`` with columns ``idx`` and ``entry`` (TEXT or BLOB)."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT entry FROM entries WHERE idx = ?", (entry.get("index"),)
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"cannot read ledger file: {exc}"
    if row is None:
        return f"ledger file has no entry {entry.get('index')}"
    stored = row[0]
    if isinstance(stored, str):
        stored = stored.encode("utf-8")
    if bytes(stored) != jcs(entry):
        return f"ledger file entry {entry.get('index')} differs from the bundle's entry"
    return None


def verify_bundle(
    bundle: Any,
    gateway_key: str | None = None,
    ledger_key: str | None = None,
    ledger_file: str | None = None,
    strict: bool = False,
) -> VerifyResult:
    steps = [StepResult(n, STEP_NAMES[n]) for n in range(1, 10)]
    res = VerifyResult(steps)
    s1, s2, s3, s4, s5, s6, s7, s8, s9 = steps

    # ---------------------------------------------------------------- step 1
    s1.checked = 1
    problems = []
    if not isinstance(bundle, dict):
        problems.append("bundle is not a JSON object")
    else:
        if bundle.get("format") != BUNDLE_FORMAT:
            problems.append(f"unknown format {bundle.get('format')!r}")
        gw = bundle.get("gateway")
        if not isinstance(gw, dict):
            problems.append("gateway is not an object")
        else:
            # §9 says only "gateway.id exists"; §8 types it as a string.
            if "id" not in gw:
                problems.append("gateway.id missing")
            elif not isinstance(gw["id"], str):
                problems.append("gateway.id is not a string")  # ASSUMPTION (§8 type)
            if hex_bytes(gw.get("public_key"), 32) is None:
                problems.append("gateway.public_key is not hex of 32 bytes")
        if not isinstance(bundle.get("blocks"), list):
            problems.append("blocks is not an array")
        if not isinstance(bundle.get("records"), list):
            problems.append("records is not an array")
        # ASSUMPTION: when present, anchors must be an array and selection an object.
        if "anchors" in bundle and not isinstance(bundle["anchors"], list):
            problems.append("anchors is not an array")
        if "selection" in bundle and not isinstance(bundle["selection"], dict):
            problems.append("selection is not an object")
    if problems:
        s1.fail("malformed bundle: " + "; ".join(problems))
    elif gateway_key is not None:
        if bundle["gateway"]["public_key"].lower() != gateway_key.lower():
            s1.fail(f"gateway key {bundle['gateway']['public_key']} is not the pinned key")
    else:
        s1.notes.append("gateway key taken from the bundle; pin it to trust no one")
    if not s1.ok:
        # §9: "the only exception is step 1, which stops everything".
        # ASSUMPTION: this holds for the pin mismatch too (see report).
        for s in steps[1:]:
            s.fail("not checked")
        return res

    gw_id = bundle["gateway"]["id"]
    gw_key = bytes.fromhex(bundle["gateway"]["public_key"])
    blocks_in = bundle["blocks"]
    records_in = bundle["records"]
    anchors_in = bundle.get("anchors", [])
    selection = bundle.get("selection", {})

    # ---------------------------------------------------------------- step 2
    readable_records = []  # (i, entry, record) -- "every record step 2 could read"
    for i, ent in enumerate(records_in):
        s2.checked += 1
        if not isinstance(ent, dict) or not isinstance(ent.get("record"), dict):
            s2.fail(f"records[{i}]: malformed record (not an object)")
            continue
        rec = ent["record"]
        # ASSUMPTION: seq must be an integer (§4: integer >= 0).
        if "seq" not in rec or not is_int(rec["seq"]) or rec["seq"] < 0:
            s2.fail(f"records[{i}]: malformed record (no integer seq)")
            continue
        why = _canon_ok(rec)
        if why:
            s2.fail(f"records[{i}]: malformed record ({why})")
            continue
        readable_records.append((i, ent, rec))
        if rec.get("gateway") != gw_id:
            s2.fail(f"record seq {rec['seq']}: gateway {rec.get('gateway')!r}, want {gw_id!r}")
        if strict and rec.get("v") != 1:
            s2.fail(f"record seq {rec['seq']}: v {rec.get('v')!r}, want 1 (strict)")
        sig = hex_bytes(ent.get("sig"), 64)
        if sig is None or not ed25519_verify(gw_key, sig, signed_message(RECORD_DOMAIN, rec)):
            s2.fail(f"record seq {rec['seq']}: signature does not verify")

    # ---------------------------------------------------------------- step 3
    headers: dict[int, dict] = {}  # block number -> header (first readable occurrence)
    hhash: dict[int, bytes] = {}
    for i, ent in enumerate(blocks_in):
        s3.checked += 1
        if not isinstance(ent, dict) or not isinstance(ent.get("header"), dict):
            s3.fail(f"blocks[{i}]: malformed header (not an object)")
            continue
        hdr = ent["header"]
        # ASSUMPTION: block must be an integer >= 0 (§6).
        if "block" not in hdr or not is_int(hdr["block"]) or hdr["block"] < 0:
            s3.fail(f"blocks[{i}]: malformed header (no integer block)")
            continue
        why = _canon_ok(hdr)
        if why:
            s3.fail(f"blocks[{i}]: malformed header ({why})")
            continue
        n = hdr["block"]
        if n in headers:
            s3.fail(f"block {n} appears twice")
            continue  # ASSUMPTION: the first occurrence is the one used later
        headers[n] = hdr
        hhash[n] = header_hash(hdr)
        if hdr.get("gateway") != gw_id:
            s3.fail(f"block {n}: gateway {hdr.get('gateway')!r}, want {gw_id!r}")
        if strict and hdr.get("v") != 1:
            s3.fail(f"block {n}: v {hdr.get('v')!r}, want 1 (strict)")
        if strict and (not isinstance(hdr.get("key"), str) or hdr["key"].lower() != gw_key.hex()):
            s3.fail(f"block {n}: header key {hdr.get('key')!r} is not the gateway key (strict)")
        sig = hex_bytes(ent.get("sig"), 64)
        if sig is None or not ed25519_verify(gw_key, sig, signed_message(HEADER_DOMAIN, hdr)):
            s3.fail(f"block {n}: header signature does not verify")

    # ---------------------------------------------------------------- step 4
    passed_inclusion = set()  # indexes into records_in
    for i, ent, rec in readable_records:
        s4.checked += 1
        seq = rec["seq"]
        b = ent.get("block")
        if not is_int(b) or b not in headers:
            s4.fail(f"record seq {seq}: its block {b!r} is not in the bundle")
            continue
        hdr = headers[b]
        fs, ls, size = hdr.get("first_seq"), hdr.get("last_seq"), hdr.get("size")
        if not (is_int(fs) and is_int(ls) and is_int(size)):
            s4.fail(f"record seq {seq}: block {b} header has no integer first_seq/last_seq/size")
            continue
        if not fs <= seq <= ls:
            s4.fail(f"record seq {seq}: seq {seq} outside block {b} range {fs}..{ls}")
            continue
        idx = ent.get("index")
        if not is_int(idx) or idx != seq - fs:
            s4.fail(f"record seq {seq}: leaf index {idx!r}, want {seq - fs}")
            continue
        proof_in = ent.get("proof")
        if not isinstance(proof_in, list):
            s4.fail(f"record seq {seq}: proof is not an array")
            continue
        proof = [hex_bytes(p, 32) for p in proof_in]
        if any(p is None for p in proof):
            s4.fail(f"record seq {seq}: proof item is not hex of 32 bytes")
            continue
        root = hex_bytes(hdr.get("root"), 32)
        if root is None:
            s4.fail(f"record seq {seq}: block {b} root is not hex of 32 bytes")
            continue
        why = verify_inclusion(idx, size, leaf_hash(rec), proof, root)
        if why:
            s4.fail(f"record seq {seq}: {why}")
            continue
        passed_inclusion.add(i)

    # ---------------------------------------------------------------- step 5
    nums = sorted(headers)
    for n in nums:
        hdr = headers[n]
        fs, ls, size = hdr.get("first_seq"), hdr.get("last_seq"), hdr.get("size")
        s5.checked += 1
        if not (is_int(fs) and is_int(ls) and is_int(size)) or size != ls - fs + 1 or size < 1:
            s5.fail(f"block {n}: size {size!r} does not match seq range {fs!r}..{ls!r}")
        if n == 0 and hdr.get("prev") != ZERO_HASH_HEX:
            s5.fail("block 0: prev must be all zeros")
        if strict and n == 0 and fs != 0:
            s5.fail(f"block 0: first_seq {fs!r}, want 0 (strict)")
    for a, b in itertools.pairwise(nums):
        if b != a + 1:
            s5.fail(f"blocks {a + 1}..{b - 1} are missing")
            continue  # ASSUMPTION: links across a gap are not compared
        ha, hb = headers[a], headers[b]
        if hb.get("prev") != hhash[a].hex():
            s5.fail(f"block {b}: prev {hb.get('prev')!r} does not match hash of block {a}")
        if not is_int(ha.get("last_seq")) or hb.get("first_seq") != ha["last_seq"] + 1:
            want = ha["last_seq"] + 1 if is_int(ha.get("last_seq")) else "?"
            s5.fail(
                f"block {b}: first_seq {hb.get('first_seq')!r}, want {want} (records missing between blocks)"
            )

    # ---------------------------------------------------------------- step 6
    hash_to_block = {h.hex(): n for n, h in hhash.items()}
    T: dict[int, int] = {}
    if not anchors_in:
        s6.fail("no anchors in the bundle")
    for i, anc in enumerate(anchors_in):
        s6.checked += 1
        if not isinstance(anc, dict):
            s6.fail(f"anchor {i}: not an object")
            continue
        kind = anc.get("kind")
        if kind == "local":
            entry = anc.get("entry")
            if not isinstance(entry, dict):
                s6.fail(f"anchor {i}: local anchor has no entry object")
                continue
            hh = entry.get("header_hash")
        elif kind == "evm":
            hh = anc.get("header_hash")
        else:
            s6.fail(f"anchor {i}: unknown ledger kind {kind!r}")
            continue
        if not is_hex(hh, 32):
            s6.fail(f"anchor {i}: header hash {hh!r} is not hex of 32 bytes")
            continue
        if hh not in hash_to_block:  # lowercase string comparison
            s6.fail(f"anchor {i}: header hash {hh} matches no block in the bundle")
            continue
        n = hash_to_block[hh]
        if kind == "evm":
            # The auditor's verifier has no JSON-RPC client; §9 step 6 says an EVM
            # anchor without --rpc fails.
            s6.fail(f"anchor {i}: evm anchor on block {n} cannot be checked without --rpc")
            continue
        # §7.2 local ledger check
        why = _canon_ok(entry)
        if why:
            s6.fail(f"anchor {i}: malformed ledger entry ({why})")
            continue
        lk = anc.get("ledger_key")
        lk_raw = hex_bytes(lk, 32)
        if lk_raw is None:
            s6.fail(f"anchor {i}: ledger_key is not hex of 32 bytes")
            continue
        # ASSUMPTION: the ledger pin compares case-insensitively, like the gateway pin.
        if ledger_key is not None and lk.lower() != ledger_key.lower():
            s6.fail(f"anchor {i}: ledger key {lk} is not the pinned ledger key")
            continue
        sig = hex_bytes(anc.get("sig"), 64)
        if sig is None or not ed25519_verify(lk_raw, sig, signed_message(LEDGER_DOMAIN, entry)):
            s6.fail(f"anchor {i}: ledger signature does not verify")
            continue
        t = entry.get("time_ms")
        if not is_int(t):
            s6.fail(f"anchor {i}: entry.time_ms is not an integer")
            continue
        if strict and (entry.get("gateway") != gw_id or entry.get("block") != n):
            # §7.2 calls these fields informative; strict mode checks them anyway.
            s6.fail(
                f"anchor {i}: entry names gateway {entry.get('gateway')!r} block "
                f"{entry.get('block')!r}, want {gw_id!r} block {n} (strict)"
            )
            continue
        if ledger_file is not None:
            why = _check_local_ledger_file(ledger_file, entry)
            if why:
                s6.fail(f"anchor {i}: {why}")
                continue
        T[n] = min(T.get(n, t), t)
        s6.notes.append(f"block {n} anchored on local at {t}")
    res.anchor_time_ms = dict(T)

    # ---------------------------------------------------------------- step 7
    C: dict[int, int] = {}
    best = None
    present = set(nums)
    for n in sorted(nums, reverse=True):
        if n != nums[-1] and (n + 1) not in present:
            best = None
        if n in T:
            best = T[n] if best is None else min(best, T[n])
        if best is not None:
            C[n] = best
    for n in nums:
        s7.checked += 1
        if n not in C:
            if any(m >= n for m in T):
                s7.fail(f"block {n}: the header chain to an anchor is broken")
            else:
                s7.fail(f"block {n} is not covered by any anchor in the bundle")
    res.cover_time_ms = dict(C)

    # ---------------------------------------------------------------- step 8
    for n in nums:
        hdr = headers[n]
        if n not in C or hdr.get("clock_synced") is not True:
            continue
        s8.checked += 1
        for fld in ("last_time_ms", "sealed_ms"):
            v = hdr.get(fld)
            # ASSUMPTION: a missing/non-integer time in a synced covered header fails.
            if not is_int(v) or v > C[n]:
                s8.fail(f"block {n}: {fld} {v!r} is after its anchor time {C[n]}")
    for i, ent, rec in readable_records:
        if i not in passed_inclusion:
            continue
        b = ent["block"]
        if b not in C or rec.get("clock_synced") is not True:
            continue
        s8.checked += 1
        v = rec.get("time_ms")
        if not is_int(v) or v > C[b]:
            s8.fail(f"record seq {rec['seq']}: time {v!r} is after its anchor time {C[b]}")

    # ---------------------------------------------------------------- step 9
    s9.checked = 1
    stype = selection.get("type")
    recs = [rec for _, _, rec in readable_records]
    if "type" not in selection:
        s9.fail("selection has no type")
    elif stype == "record":
        seqs = [r["seq"] for r in recs]
        if seqs != [selection.get("seq")]:
            s9.fail(f"selection is record seq {selection.get('seq')!r}, bundle has seqs {seqs}")
    elif stype == "range":
        sensor = selection.get("sensor")
        lo, hi = selection.get("from_ms"), selection.get("to_ms")
        if not (is_int(lo) and is_int(hi)):
            # ASSUMPTION: a range without integer bounds fails.
            s9.fail("range selection has no integer from_ms/to_ms")
        else:
            for r in recs:
                if r.get("sensor") != sensor:
                    s9.fail(
                        f"record seq {r['seq']}: sensor {r.get('sensor')!r} is not the selected {sensor!r}"
                    )
                t = r.get("time_ms")
                if not is_int(t) or not lo <= t <= hi:
                    s9.fail(f"record seq {r['seq']}: time {t!r} outside selected range")
            if not nums:
                s9.fail("no blocks in the bundle")
            else:
                first, last = headers[nums[0]], headers[nums[-1]]
                ft = first.get("first_time_ms")
                if nums[0] != 0 and not (is_int(ft) and ft <= lo):
                    s9.fail(
                        f"block {nums[0]} first_time_ms {ft!r} > from_ms {lo}: earlier blocks are missing"
                    )
                lt = last.get("last_time_ms")
                if selection.get("open_end") is not True and not (is_int(lt) and lt >= hi):
                    s9.fail(
                        f"block {nums[-1]} last_time_ms {lt!r} < to_ms {hi}: later blocks are missing"
                    )
    elif stype in ("lot", "route", "records"):
        s9.notes.append(f"selection type {stype} is reserved; nothing checked")
    else:
        s9.fail(f"unknown selection type {stype!r}")

    return res


def verify_file(path: str, **kw) -> VerifyResult:
    with open(path, "rb") as fh:
        return verify_bundle(parse_bundle_bytes(fh.read()), **kw)


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse

    ap = argparse.ArgumentParser(description="independent traceseal verifier (from spec)")
    ap.add_argument("bundle")
    ap.add_argument("--gateway-key")
    ap.add_argument("--ledger-key")
    ap.add_argument("--ledger-file")
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args()
    r = verify_file(
        a.bundle,
        gateway_key=a.gateway_key,
        ledger_key=a.ledger_key,
        ledger_file=a.ledger_file,
        strict=a.strict,
    )
    print(json.dumps(r.as_dict(), indent=1))
    raise SystemExit(0 if r.ok else 1)
