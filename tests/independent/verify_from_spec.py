"""Independent traceseal bundle verifier, written from docs/proof-format.md alone.

Auditor's implementation: it uses only the Python standard library, ``cryptography``
(Ed25519) and ``rfc8785`` (JCS). It deliberately imports nothing from ``ledger_client``
or ``gateway``. Section references (``§n``) point into docs/proof-format.md.

Entry points:

* ``parse_bundle_bytes(data)``  -- JSON parse as §1/§9.1 require: integers kept exact,
  numbers with a fraction/exponent marked so they can be refused by written form;
  duplicate member names, NaN/Infinity, a byte order mark or invalid UTF-8 make the
  bundle unreadable (``BundleReadError``, the CLI's exit status 2).
* ``verify_bundle(bundle, gateway_key=None, ledger_key=None, ledger_file=None)`` -- runs
  the nine steps of §9.3 (with the pin semantics of §9.2) and returns a ``VerifyResult``.
* ``verify_file(path, ...)`` -- convenience wrapper.

It implements the normative text only. The reference verifier's known deviations (§9.5)
are deliberately *not* reproduced. (The points an earlier version had to assume are now
spelled out by the spec: required members and types, hex spelling, JSON strictness, pins.)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import sys
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
ROTATE_DOMAIN = b"traceseal/rotate/v1\n"
ZERO_HASH_HEX = "0" * 64
MAX_DEPTH = 900  # §9.1
ANCHOR_TIME_MIN_MS = 946_684_800_000  # §7.4: 2000-01-01T00:00:00Z
ANCHOR_TIME_MAX_MS = 7_258_118_400_000  # 2200-01-01T00:00:00Z
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
    # The C decoder recurses per nesting level and stops only at Python's recursion limit;
    # a library that raised it (py_ecc sets 100,000) would let deep input overflow the C
    # stack. Hold it low while parsing; deeper input raises RecursionError (unreadable).
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(min(old, 3000))
    try:
        return json.loads(
            data,
            object_pairs_hook=_pairs_hook,
            parse_float=NonIntegerNumber,
            parse_int=int,
            parse_constant=_reject_constant,
        )
    finally:
        sys.setrecursionlimit(old)


def parse_bundle_bytes(data: bytes | str) -> Any:
    """§9.1: not UTF-8, a byte order mark, not JSON, a repeated member name anywhere, or
    NaN/Infinity/-Infinity => the bundle is unreadable."""
    if isinstance(data, bytes) and data.startswith(b"\xef\xbb\xbf"):
        raise BundleReadError("byte order mark")
    if isinstance(data, str) and data.startswith("\ufeff"):
        raise BundleReadError("byte order mark")
    try:
        value = parse_json_bytes(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BundleReadError(str(exc)) from exc
    if _depth(value) > MAX_DEPTH:
        raise BundleReadError(f"nested more than {MAX_DEPTH} levels deep")
    return value


def _depth(v: Any) -> int:
    """§9.1: arrays and objects, counted from the bundle itself as 1."""
    best, stack = 0, [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, dict):
            x = list(x.values())
        if isinstance(x, list):
            best = max(best, d)
            stack.extend((y, d + 1) for y in x)
    return best


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


def is_hex(s: Any, nbytes: int, lowercase_only: bool = True) -> bool:
    """§1: exactly 2*nbytes hex characters; lowercase only unless told otherwise."""
    if not isinstance(s, str) or len(s) != 2 * nbytes:
        return False
    return set(s) <= (_LHEX if lowercase_only else _HEX)


def hex_bytes(s: Any, nbytes: int) -> bytes | None:
    """Decode the one spelling §1 allows: exactly 2*nbytes lowercase hex characters
    (gateway.public_key, every sig, proof items, root, an anchor's header hash)."""
    if not is_hex(s, nbytes):
        return None
    return bytes.fromhex(s)


def hex_bytes_any_case(s: Any, nbytes: int) -> bytes | None:
    """§1/§7.2: a local anchor's ``ledger_key`` is decoded case-insensitively."""
    if not is_hex(s, nbytes, lowercase_only=False):
        return None
    return bytes.fromhex(s)


def decode_pin(p: str) -> bytes | None:
    """§9.2: a pinned gateway key is hex of 32 bytes; ASCII whitespace between byte pairs
    is ignored when decoding it (not when comparing it)."""
    try:
        raw = bytes.fromhex(p)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


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
    key_pinned: bool = False

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def result(self) -> str:
        """§9.4: "verified" needs every step AND a pinned gateway key (§9.2, §10)."""
        if not self.ok:
            return "failed"
        return "verified" if self.key_pinned else "intact-key-not-pinned"

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
    """§7.2 item 6: the entry stored at entry.index is a BLOB of exactly JCS(entry); any
    other SQLite type (TEXT, NULL, ...) does not match; an unreadable file fails."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute(
                "SELECT entry FROM entries WHERE idx = ?", (entry.get("index"),)
            ).fetchone()
        finally:
            con.close()
    except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
        return f"cannot read ledger file: {exc}"
    if row is None:
        return f"ledger file has no entry {entry.get('index')!r}"
    if not isinstance(row[0], bytes) or row[0] != jcs(entry):
        return f"ledger file entry {entry.get('index')!r} differs from the bundle's entry"
    return None


# §4 / §6 "Required members": name -> JSON type ("int" = integer written as such, not bool)
RECORD_FIELDS = {
    "v": "int",
    "gateway": "str",
    "seq": "int",
    "time_ms": "int",
    "clock_synced": "bool",
    "type": "str",
}
HEADER_FIELDS = {
    "v": "int",
    "gateway": "str",
    "block": "int",
    "first_seq": "int",
    "last_seq": "int",
    "size": "int",
    "root": "str",
    "prev": "str",
    "first_time_ms": "int",
    "last_time_ms": "int",
    "sealed_ms": "int",
    "clock_synced": "bool",
    "key": "str",
}


def _has_type(v: Any, t: str) -> bool:
    if t == "int":
        return is_int(v)
    if t == "bool":
        return isinstance(v, bool)
    return isinstance(v, str)


def _bad_fields(o: dict, fields: dict) -> list:
    return [k for k, t in fields.items() if k not in o or not _has_type(o[k], t)]


def _local_anchor_check(anc, named, n, gw_id, ledger_key, ledger_file):
    """§7.2 items 1-8 for a local anchor that names header hash ``named`` of block ``n``.
    Returns (T, None) or (None, why)."""
    entry = anc.get("entry")
    if not isinstance(entry, dict):
        return None, "local anchor has no entry object"
    if "sig" not in anc or "ledger_key" not in anc or "time_ms" not in entry:
        return None, "local anchor lacks sig, ledger_key or entry.time_ms"
    lk = anc["ledger_key"]
    if ledger_key is not None and (not isinstance(lk, str) or lk.lower() != ledger_key.lower()):
        return None, f"ledger key {lk!r} is not the pinned ledger key"
    if entry.get("header_hash") != named:
        return None, f"entry names header hash {entry.get('header_hash')!r}, want {named}"
    why = _canon_ok(entry)
    if why:
        return None, f"malformed ledger entry ({why})"
    lk_raw = hex_bytes_any_case(lk, 32)
    if lk_raw is None:
        return None, "ledger_key is not hex of 32 bytes"
    sig = hex_bytes(anc["sig"], 64)
    if sig is None or not ed25519_verify(lk_raw, sig, signed_message(LEDGER_DOMAIN, entry)):
        return None, "ledger signature does not verify"
    if ledger_file is not None:
        why = _check_local_ledger_file(ledger_file, entry)
        if why:
            return None, why
    t = entry["time_ms"]
    if not is_int(t):
        return None, f"entry.time_ms {t!r} is not an integer"
    if entry.get("gateway") != gw_id or not is_int(entry.get("block")) or entry["block"] != n:
        return None, (
            f"entry names gateway {entry.get('gateway')!r} block {entry.get('block')!r}, "
            f"want {gw_id!r} block {n}"
        )
    return t, None


def json_eq(a: Any, b: Any) -> bool:
    """JSON equality: `true` is not `1`, `false` is not `0` (unlike Python's ==)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return (type(a) is type(b) and a == b) or (is_int(a) and is_int(b) and a == b)


def one_of(v: Any, arr: list) -> bool:
    return any(json_eq(v, x) for x in arr)


def _check_lot(s9: StepResult, selection: dict, recs: list, headers: dict, nums: list) -> None:
    """§9.3 "Step 9 by selection type", lot."""
    lot, windows = selection.get("lot"), selection.get("windows")
    if not isinstance(lot, str) or not isinstance(windows, list):
        s9.fail("lot selection needs a lot string and a windows list")
        return
    for i, w in enumerate(windows):
        if not (
            isinstance(w, dict)
            and isinstance(w.get("unit"), str)
            and is_int(w.get("from_ms"))
            and is_int(w.get("to_ms"))
            and isinstance(w.get("sensors"), list)
        ):
            s9.fail(f"lot window {i} is malformed")
            return
    stock = [r for r in recs if r.get("type") == "stock" and r.get("lot") == lot]
    for i, w in enumerate(windows):
        if not any(
            r.get("event") == "in"
            and r.get("unit") == w["unit"]
            and json_eq(r.get("at_ms"), w["from_ms"])
            for r in stock
        ):
            s9.fail(f"lot window {i} has no signed stock-in record")
        if w.get("open") is True:
            if nums and headers[nums[-1]]["last_time_ms"] > w["to_ms"]:
                s9.fail(f"lot window {i} is open but ends before the bundle's last block")
        elif not any(
            r.get("event") in ("out", "discard")
            and r.get("unit") == w["unit"]
            and json_eq(r.get("at_ms"), w["to_ms"])
            and json_eq(r.get("stock_after"), 0)
            for r in stock
        ):
            s9.fail(f"lot window {i} has no signed stock-out record emptying it")
    for r in recs:
        attrs = r.get("attrs") if isinstance(r.get("attrs"), dict) else {}
        if r.get("lot") == lot or attrs.get("lot") == lot:
            continue
        if any(
            w["from_ms"] <= r["time_ms"] <= w["to_ms"]
            and (
                ("sensor" in r and one_of(r["sensor"], w["sensors"]))
                or (r.get("type") == "alarm" and r.get("unit") == w["unit"])
            )
            for w in windows
        ):
            continue
        s9.fail(
            f"record seq {r['seq']} is neither about lot {lot!r} nor inside one of its unit windows"
        )
    if windows and nums:
        lo = min(w["from_ms"] for w in windows)
        hi = max(w["to_ms"] for w in windows)
        if nums[0] != 0 and headers[nums[0]]["first_time_ms"] > lo:
            s9.fail("earlier blocks are missing (lot)")
        if headers[nums[-1]]["last_time_ms"] < hi:
            s9.fail("later blocks are missing (lot)")
    s9.notes.append(f"lot {lot}: {len(windows)} residency window(s)")


def _check_route(s9: StepResult, selection: dict, recs: list) -> None:
    """§9.3 "Step 9 by selection type", route. Only present, non-null values cite."""
    route = selection.get("id")
    if not isinstance(route, str):
        s9.fail("route selection needs an id string")
        return
    own = [r for r in recs if r.get("route") == route]
    cited_sessions = [r["session"] for r in own if r.get("session") is not None]
    sessions = [
        r
        for r in recs
        if r.get("type") == "custody_session"
        and r.get("id") is not None
        and one_of(r["id"], cited_sessions)
    ]
    cited_seqs = [
        r[k] for r in own + sessions for k in ("scan_seq", "weight_seq", "badge_seq") if k in r
    ]
    session_ids = {id(r) for r in sessions}
    for r in recs:
        if r.get("route") == route or id(r) in session_ids:
            continue
        if one_of(r["seq"], cited_seqs):
            continue
        s9.fail(f"record seq {r['seq']} neither names route {route!r} nor is cited by its records")
    s9.notes.append(
        f"route {route}: {sum(1 for r in own if r.get('type') == 'custody')} custody records"
    )


ROTATION_FIELDS = {
    **{k: t for k, t in (("v", "int"), ("gateway", "str"), ("seq", "int"), ("time_ms", "int"),
                         ("clock_synced", "bool"), ("type", "str"))},
    "old_key": "str",
    "new_key": "str",
    "new_key_sig": "str",
    "last_block": "int",
}


def rotation_statement(gateway: str, old_key: str, new_key: str, last_block: int) -> bytes:
    """§8.1: what the new key signs."""
    return signed_message(
        ROTATE_DOMAIN,
        {"gateway": gateway, "old_key": old_key, "new_key": new_key, "last_block": last_block},
    )


def key_chain(rotations: list, gw_id: str, first_key: str, s1: StepResult):
    """§8.1 "Key chain": returns (keys, bounds, well-formed entries as (i, entry, record))."""
    keys, bounds, well_formed = [first_key], [], []
    ended = False
    for i, ent in enumerate(rotations):
        rec = ent.get("record") if isinstance(ent, dict) else None
        if not isinstance(rec, dict) or _canon_ok(rec) or _bad_fields(rec, ROTATION_FIELDS):
            s1.fail(f"rotation {i}: not well formed")
            ended = True
            continue
        well_formed.append((i, ent, rec))
        if ended:
            s1.fail(f"rotation {i}: not used, the chain ended before it")
            continue
        cur = keys[-1]
        problem = None
        if rec["v"] != 1 or rec["type"] != "key_rotation" or rec["gateway"] != gw_id:
            problem = "v, type or gateway is wrong"
        elif rec["old_key"] != cur:
            problem = "old_key is not the key in force"
        elif hex_bytes(rec["new_key"], 32) is None:
            problem = "new_key is not 64 lowercase hex characters"
        elif bounds and not rec["last_block"] > bounds[-1]:
            problem = "last_block is not after the previous rotation's"
        else:
            sig = hex_bytes(ent.get("sig"), 64)
            nsig = hex_bytes(rec["new_key_sig"], 64)
            if sig is None or not ed25519_verify(bytes.fromhex(cur), sig, signed_message(RECORD_DOMAIN, rec)):
                problem = "record signature by the old key does not verify"
            elif nsig is None or not ed25519_verify(
                bytes.fromhex(rec["new_key"]),
                nsig,
                rotation_statement(rec["gateway"], rec["old_key"], rec["new_key"], rec["last_block"]),
            ):
                problem = "new_key_sig does not verify under new_key"
        if problem:
            s1.fail(f"rotation {i}: {problem}")
            ended = True
            continue
        keys.append(rec["new_key"])
        bounds.append(rec["last_block"])
    return keys, bounds, well_formed


def verify_bundle(
    bundle: Any,
    gateway_key: str | None = None,
    ledger_key: str | None = None,
    ledger_file: str | None = None,
) -> VerifyResult:
    steps = [StepResult(n, STEP_NAMES[n]) for n in range(1, 10)]
    res = VerifyResult(steps, key_pinned=gateway_key is not None)
    s1, s2, s3, s4, s5, s6, s7, s8, s9 = steps

    # ---------------------------------------------------------------- step 1 (§9.3, §8)
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
            if not isinstance(gw.get("id"), str) or gw["id"] == "":
                problems.append("gateway.id is not a non-empty string")
            if hex_bytes(gw.get("public_key"), 32) is None:
                problems.append("gateway.public_key is not 64 lowercase hex characters")
            if "rotations" in gw and not isinstance(gw["rotations"], list):
                problems.append("gateway.rotations is not an array")  # §9.3 step 1, §8.1
        for name, typ in (
            ("blocks", list),
            ("records", list),
            ("anchors", list),
            ("selection", dict),
        ):
            if not isinstance(bundle.get(name), typ):  # required, never defaulted (§8)
                problems.append(f"{name} is not {'an object' if typ is dict else 'an array'}")
    if problems:
        # §9.3: a malformed bundle stops everything
        s1.fail("malformed bundle: " + "; ".join(problems))
        for s in steps[1:]:
            s.fail("not checked")
        return res

    gw_id = bundle["gateway"]["id"]
    gw_key_hex = bundle["gateway"]["public_key"]
    # §8.1: the key chain; keys[j] is in force after bounds[j-1]
    keys, bounds, rot_entries = key_chain(bundle["gateway"].get("rotations", []), gw_id, gw_key_hex, s1)

    def key_in_force(n) -> str:  # §8.1 key(n)
        if not is_int(n):
            return keys[0]
        return keys[sum(1 for b in bounds if b < n)]

    pinned_K = None  # §9.2: when set, every signature is checked against it
    if gateway_key is None:
        s1.notes.append("gateway key taken from the bundle; pin it to trust no one")
    elif gateway_key.lower() not in keys:
        s1.fail(f"gateway key {gw_key_hex} is not the pinned key {gateway_key}")
        pinned = decode_pin(gateway_key.lower())
        if pinned is None:
            s1.fail(f"pinned gateway key {gateway_key!r} is not a 32-byte hex key")
            pinned_K = bytes.fromhex(gw_key_hex)
        else:
            pinned_K = pinned  # every signature is checked against the PINNED key

    def K(n) -> bytes:  # §9.2 K(n)
        return pinned_K if pinned_K is not None else bytes.fromhex(key_in_force(n))
    blocks_in = bundle["blocks"]
    records_in = bundle["records"]
    anchors_in = bundle["anchors"]
    selection = bundle["selection"]

    # ---------------------------------------------------------------- step 2 (§4)
    kept_records = []  # (entry, record): well formed with the required members
    seen_seqs: set = set()
    for i, ent in enumerate(records_in):
        s2.checked += 1
        if not isinstance(ent, dict) or not isinstance(ent.get("record"), dict):
            s2.fail(f"records[{i}]: malformed record (not an object)")
            continue
        rec = ent["record"]
        if "seq" not in rec:
            s2.fail(f"records[{i}]: malformed record (no seq)")
            continue
        why = _canon_ok(rec)
        if why:
            s2.fail(f"records[{i}]: malformed record ({why})")
            continue
        bad = _bad_fields(rec, RECORD_FIELDS)
        if bad:
            s2.fail(f"records[{i}]: record fields {bad} missing or mistyped")
            continue
        seq = rec["seq"]
        if seq in seen_seqs:  # §9.3 step 2: a seq listed again is not kept, and fails the step
            s2.fail(f"records[{i}]: record seq {seq} appears twice")
            continue
        seen_seqs.add(seq)
        kept_records.append((ent, rec))
        if rec["v"] != 1:
            s2.fail(f"record seq {seq}: version {rec['v']!r}, want 1")
        if rec["gateway"] != gw_id:
            s2.fail(f"record seq {seq}: gateway {rec['gateway']!r}, want {gw_id!r}")
        sig = hex_bytes(ent.get("sig"), 64)
        if sig is None or not ed25519_verify(K(ent.get("block")), sig, signed_message(RECORD_DOMAIN, rec)):
            s2.fail(f"record seq {seq}: signature does not verify")

    # ---------------------------------------------------------------- step 3 (§6)
    headers: dict[int, dict] = {}  # block number -> kept header (first occurrence)
    hhash: dict[int, bytes] = {}
    for i, ent in enumerate(blocks_in):
        s3.checked += 1
        if not isinstance(ent, dict) or not isinstance(ent.get("header"), dict):
            s3.fail(f"blocks[{i}]: malformed header (not an object)")
            continue
        hdr = ent["header"]
        if "block" not in hdr:
            s3.fail(f"blocks[{i}]: malformed header (no block)")
            continue
        why = _canon_ok(hdr)
        if why:
            s3.fail(f"blocks[{i}]: malformed header ({why})")
            continue
        bad = _bad_fields(hdr, HEADER_FIELDS)
        if bad:
            s3.fail(f"blocks[{i}]: header fields {bad} missing or mistyped")
            continue
        n = hdr["block"]
        if hdr["v"] != 1:
            s3.fail(f"block {n}: header version {hdr['v']!r}, want 1")
        if hdr["key"].lower() != key_in_force(n):
            s3.fail(f"block {n}: signed by key {hdr['key']!r}, not the key in force {key_in_force(n)}")
        if hdr["gateway"] != gw_id:
            s3.fail(f"block {n}: gateway {hdr['gateway']!r}, want {gw_id!r}")
        sig = hex_bytes(ent.get("sig"), 64)
        if sig is None or not ed25519_verify(K(n), sig, signed_message(HEADER_DOMAIN, hdr)):
            s3.fail(f"block {n}: header signature does not verify")
        if n in headers:
            s3.fail(f"block {n} appears twice")
            continue  # the first occurrence counts
        headers[n] = hdr
        hhash[n] = header_hash(hdr)

    # ---------------------------------------------------------------- step 4 (§5)
    proven = set()  # ids of kept record entries whose proof passed
    for ent, rec in kept_records:
        s4.checked += 1
        seq = rec["seq"]
        b, idx = ent.get("block"), ent.get("index")
        if not (is_int(b) and is_int(idx)):
            s4.fail(f"record seq {seq}: block {b!r} and index {idx!r} must be integers")
            continue
        if b not in headers:
            s4.fail(f"record seq {seq}: its block {b!r} is not in the bundle")
            continue
        hdr = headers[b]
        fs, ls, size = hdr["first_seq"], hdr["last_seq"], hdr["size"]
        if not fs <= seq <= ls:
            s4.fail(f"record seq {seq}: seq {seq} outside block {b} range {fs}..{ls}")
            continue
        proof_in = ent.get("proof")
        if not isinstance(proof_in, list):
            s4.fail(f"record seq {seq}: proof is not an array")
            continue
        if idx != seq - fs:
            s4.fail(f"record seq {seq}: leaf index {idx!r}, want {seq - fs}")
            continue
        proof = [hex_bytes(p, 32) for p in proof_in]
        if any(p is None for p in proof):
            s4.fail(f"record seq {seq}: a proof item is not 64 lowercase hex characters")
            continue
        root = hex_bytes(hdr["root"], 32)
        if root is None:
            s4.fail(f"record seq {seq}: block {b} root is not 64 lowercase hex characters")
            continue
        why = verify_inclusion(idx, size, leaf_hash(rec), proof, root)
        if why:
            s4.fail(f"record seq {seq}: {why}")
            continue
        proven.add(id(ent))

    # §9.3 step 4, §8.1: a rotation whose block is in the bundle is the last leaf of that block
    for i, ent, rec in rot_entries:
        b, seq = rec["last_block"], rec["seq"]
        if b not in headers:
            continue
        s4.checked += 1
        hdr = headers[b]
        proof_in = ent.get("proof")
        if not hdr["first_seq"] <= seq <= hdr["last_seq"]:
            s4.fail(f"rotation {i}: seq {seq} outside block {b}")
            continue
        if not isinstance(proof_in, list) or any(hex_bytes(x, 32) is None for x in proof_in):
            s4.fail(f"rotation {i}: proof is not an array of 64 lowercase hex characters")
            continue
        root = hex_bytes(hdr["root"], 32)
        if root is None:
            s4.fail(f"rotation {i}: block {b} root is not 64 lowercase hex characters")
            continue
        why = verify_inclusion(seq - hdr["first_seq"], hdr["size"], leaf_hash(rec),
                               [hex_bytes(x, 32) for x in proof_in], root)
        if why:
            s4.fail(f"rotation {i}: {why}")
        elif seq != hdr["last_seq"]:  # §8.1: the old key's last block ends with its rotation
            s4.fail(f"rotation {i}: block {b} ends at seq {hdr['last_seq']}, not with the rotation seq {seq}")

    # ---------------------------------------------------------------- step 5 (§6)
    nums = sorted(headers)
    for n in nums:
        hdr = headers[n]
        fs, ls, size = hdr["first_seq"], hdr["last_seq"], hdr["size"]
        s5.checked += 1
        if size != ls - fs + 1 or size < 1:
            s5.fail(f"block {n}: size {size} does not match seq range {fs}..{ls}")
    if nums and nums[0] == 0:
        if headers[0]["prev"] != ZERO_HASH_HEX:
            s5.fail("block 0: prev must be all zeros")
        if headers[0]["first_seq"] != 0:
            s5.fail(f"block 0: first_seq {headers[0]['first_seq']}, want 0")
    for a, b in itertools.pairwise(nums):
        if b != a + 1:
            s5.fail(f"blocks {a + 1}..{b - 1} are missing")
            continue  # §9.3: the pair's links are not compared
        ha, hb = headers[a], headers[b]
        if hb["prev"] != hhash[a].hex():
            s5.fail(f"block {b}: prev {hb['prev']!r} does not match hash of block {a}")
        if hb["first_seq"] != ha["last_seq"] + 1:
            s5.fail(
                f"block {b}: first_seq {hb['first_seq']}, want {ha['last_seq'] + 1} "
                "(records missing between blocks)"
            )

    # ---------------------------------------------------------------- step 6 (§7)
    hash_to_block = {h.hex(): n for n, h in hhash.items()}
    T: dict[int, int] = {}
    if not anchors_in:
        s6.fail("no anchors in the bundle")
    for i, anc in enumerate(anchors_in):
        s6.checked += 1
        if not isinstance(anc, dict):
            s6.fail(f"anchor {i}: not an object (names no header hash)")
            continue
        # §9.3 step 6: header_hash if present and not null, else entry.header_hash
        hh = anc.get("header_hash")
        if hh is None and isinstance(anc.get("entry"), dict):
            hh = anc["entry"].get("header_hash")
        if not is_hex(hh, 32):
            s6.fail(f"anchor {i}: header hash {hh!r} is not 64 lowercase hex characters")
            continue
        if hh not in hash_to_block:
            s6.fail(f"anchor {i}: header hash {hh} matches no block in the bundle")
            continue
        n = hash_to_block[hh]
        kind = anc.get("kind")
        if kind == "evm":
            # §7.3: this verifier has no JSON-RPC client, like the CLI without --rpc.
            s6.fail(f"anchor {i}: evm anchor on block {n} cannot be checked without --rpc")
            continue
        if kind != "local":
            s6.fail(f"anchor {i}: unknown ledger kind {kind!r}")
            continue
        t, why = _local_anchor_check(anc, hh, n, gw_id, ledger_key, ledger_file)
        if why:
            s6.fail(f"anchor {i} (local) for block {n}: {why}")
            continue
        if not ANCHOR_TIME_MIN_MS <= t <= ANCHOR_TIME_MAX_MS:  # §7.4
            s6.fail(f"anchor {i} (local) for block {n}: anchor time {t} is outside 2000..2200")
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
        if n not in C or hdr["clock_synced"] is not True:
            continue
        s8.checked += 1
        for fld in ("last_time_ms", "sealed_ms"):
            if hdr[fld] > C[n]:
                s8.fail(f"block {n}: {fld} {hdr[fld]} is after its anchor time {C[n]}")
    for ent, rec in kept_records:
        if id(ent) not in proven:
            continue
        b = ent["block"]
        if b not in C or rec["clock_synced"] is not True:
            continue
        s8.checked += 1
        if rec["time_ms"] > C[b]:
            s8.fail(
                f"record seq {rec['seq']}: time {rec['time_ms']} is after its anchor time {C[b]}"
            )

    # ---------------------------------------------------------------- step 9 (§8)
    s9.checked = 1
    recs = [rec for _, rec in kept_records]  # signature and proof need not have passed
    stype = selection.get("type")
    if "type" not in selection:
        s9.fail("selection has no type")
    elif stype == "record":
        want = selection.get("seq")
        seqs = [r["seq"] for r in recs]
        if not is_int(want) or seqs != [want]:
            s9.fail(f"selection is record seq {want!r}, bundle has seqs {seqs}")
    elif stype == "range":
        sensor = selection.get("sensor")
        lo, hi = selection.get("from_ms"), selection.get("to_ms")
        if not (is_int(lo) and is_int(hi) and isinstance(sensor, str)):
            s9.fail("range selection needs integer from_ms/to_ms and a string sensor")
        else:
            for r in recs:
                if r.get("sensor") != sensor:
                    s9.fail(
                        f"record seq {r['seq']}: sensor {r.get('sensor')!r} is not the selected {sensor!r}"
                    )
                if not lo <= r["time_ms"] <= hi:
                    s9.fail(f"record seq {r['seq']}: time {r['time_ms']} outside selected range")
            if not nums:
                s9.fail("range bundle has no blocks")
            else:
                first, last = headers[nums[0]], headers[nums[-1]]
                if nums[0] != 0 and first["first_time_ms"] > lo:
                    s9.fail(
                        f"block {nums[0]} first_time_ms {first['first_time_ms']} > from_ms {lo}: "
                        "earlier blocks are missing"
                    )
                if last["last_time_ms"] < hi:
                    if selection.get("open_end") is True:
                        s9.notes.append("open end: unsigned claim of the exporter")
                    else:
                        s9.fail(
                            f"block {nums[-1]} last_time_ms {last['last_time_ms']} < to_ms {hi}: "
                            "later blocks are missing"
                        )
    elif stype == "lot":
        _check_lot(s9, selection, recs, headers, nums)
    elif stype == "route":
        _check_route(s9, selection, recs)
    elif stype == "records":
        s9.notes.append("selection type records is reserved; nothing checked")
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
    a = ap.parse_args()
    r = verify_file(
        a.bundle,
        gateway_key=a.gateway_key,
        ledger_key=a.ledger_key,
        ledger_file=a.ledger_file,
    )
    print(json.dumps(r.as_dict(), indent=1))
    raise SystemExit(0 if r.ok else 1)
