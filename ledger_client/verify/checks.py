"""The verification rules, each written once: pure functions (no I/O, no clock, no state)
that look at one header, record, link or anchor entry and return the typed problems found.

Why pure: the bundle verifier (``steps.py``) and the archive's consumer
(``gateway/archive/items.py``, which maps problem codes to rejection reasons through
``gateway/archive/checks.py``) apply the same
rules to data that reaches them by different roads; a rule with one owner cannot drift into
two. Each check returns a list (empty = the rule holds) and never raises on hostile input
of the documented types; ``Problem.detail`` is the sentence the verifier's report prints
after its location prefix (``block N: ``, ``records[i]: ``, …), so the report text stays
exactly what docs/proof-format.md §9.3 lists.

Problem codes (stable: the archive maps them to its rejection reasons, ``--json`` prints them)

============================ ==== ==============================================================
code                         step meaning (``got`` / ``want``)
============================ ==== ==============================================================
``header-field``             3    a required header member is missing or mistyped (bad members
                                  as ``name=value``/``name missing`` / their types); stops the
                                  header's other checks
``version``                  2, 3 ``v`` is not 1 (v / 1)
``key``                      3    the header's ``key``, lowercased, is not the key in force
                                  (header key / key in force)
``gateway``                  2, 3 ``gateway`` is not the gateway id (member / id)
``signature``                2, 3 the Ed25519 signature does not verify (sig / key checked with)
``record-field``             2    a required record member is missing or mistyped; stops the
                                  record's other checks
``seq-range``                4    the seq is outside the block's first_seq..last_seq
                                  (seq / [first_seq, last_seq])
``proof-type``               4    the proof is not a list (type name / "list")
``index``                    4    the entry's leaf index is not seq − first_seq (index / want)
``proof-hex``                4    a proof hash is not 64 lowercase hex characters
``root-hex``                 4    the header's root is not 64 lowercase hex characters
``inclusion``                4    the proof does not lead to the header's root (detail: why)
``root``                     4    the records of a whole block hash to another root
                                  (computed root / header root; archive only)
``record-count``             4    a whole block has another number of records than ``size``
                                  (count / size; archive only)
``block-gap``                5    the previous block is not block − 1 (prev block + 1 / block)
``prev``                     5    ``prev`` is not the previous header's hash (prev / hash)
``first-seq``                5    ``first_seq`` is not the previous ``last_seq`` + 1 (got / want)
``size``                     5    ``size`` is not last_seq − first_seq + 1, or below 1
``genesis-prev``             5    block 0's ``prev`` is not all zeros (prev / zeros)
``genesis-first-seq``        5    block 0's ``first_seq`` is not 0 (first_seq / 0)
``rotation-boundary``        4    a rotation's last_block does not end with the rotation record
                                  ([first_seq, last_seq] / rotation seq)
``anchor-entry``             6    a local anchor's entry names another gateway or block
                                  ([gateway, block] / [gateway, block])
``anchor-time``              6    an anchor time outside 2000..2200 (time / [min, max])
``hex-case``                 —    the archive's wire rule: root/prev/sig not lowercase hex
                                  (archive only; the verifier's steps 4/5 catch these anyway)
============================ ==== ==============================================================

Codes the steps add for bundle-level facts (duplicates, missing blocks, coverage, selection)
are listed in ``steps.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical, header_message, record_message
from ..errors import ProofError
from ..keys import public_from_hex, verify_sig
from ..merkle import hash_leaf, root, verify_inclusion

ZERO_HASH = "00" * 32
# Anchor times (§7.4) outside 2000-01-01..2200-01-01 are a forgery or a broken ledger, not a
# time; refusing them also keeps every later date conversion (and the browser's) in range.
ANCHOR_TIME_MIN_MS = 946_684_800_000
ANCHOR_TIME_MAX_MS = 7_258_118_400_000


@dataclass(frozen=True)
class Problem:
    """One broken rule: which step owns it, a stable code, what was found and what the rule
    wants (JSON values or None), and the report's sentence for it."""

    step: int
    code: str
    got: object = None
    want: object = None
    detail: str = ""


_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


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


RECORD_FIELDS: dict[str, type] = {"v": int, "gateway": str, "seq": int, "time_ms": int,
                                  "clock_synced": bool, "type": str}
HEADER_FIELDS: dict[str, type] = {"v": int, "gateway": str, "block": int, "first_seq": int,
                                  "last_seq": int, "size": int, "root": str, "prev": str,
                                  "first_time_ms": int, "last_time_ms": int, "sealed_ms": int,
                                  "clock_synced": bool, "key": str}


def missing_or_mistyped(obj: Mapping[str, Any], fields: Mapping[str, type]) -> list[str]:
    """Required signed fields: absent or wrongly typed ones would let a step silently skip
    (a record without ``clock_synced`` would escape the anchor-time check)."""
    bad = []
    for k, typ in fields.items():
        v = obj.get(k)
        ok = _is_int(v) if typ is int else isinstance(v, typ)
        if not ok:
            bad.append(f"{k}={v!r}" if k in obj else f"{k} missing")
    return bad


def _fields(step: int, code: str, what: str, obj: Any, fields: Mapping[str, type]) -> Problem | None:
    if not isinstance(obj, dict):
        return Problem(step, code, type(obj).__name__, "object", f"{what} fields not an object")
    bad = missing_or_mistyped(obj, fields)
    if not bad:
        return None
    want = {k: t.__name__ for k, t in fields.items()
            if not (_is_int(obj.get(k)) if t is int else isinstance(obj.get(k), t))}
    return Problem(step, code, bad, want, f"{what} fields {', '.join(bad)}")


def _sig_problem(step: int, what: str, sig_hex: Any, key: Any, message: bytes,
                 key_hex: str | None, valid: bool | None) -> Problem | None:
    ok = valid if valid is not None else verify_sig(key, sig_hex, message)
    if ok:
        return None
    return Problem(step, "signature", sig_hex if isinstance(sig_hex, str) else None, key_hex,
                   f"{what} does not verify")


def check_header(header: Any, sig_hex: Any, *, gateway: str, key_hex: str, sig_key: Any = None,
                 data: bytes | None = None) -> list[Problem]:
    """Step 3 for one header: required members, ``v`` = 1, ``key`` (lowercased) = ``key_hex``
    (the key in force for its block), ``gateway``, and the signature under ``sig_key`` (the
    key in force, or the pinned key, §9.2; default: ``key_hex``). ``data`` is the header's
    canonical bytes when the caller already has them. A fields problem is returned alone."""
    bad = _fields(3, "header-field", "header", header, HEADER_FIELDS)
    if bad:
        return [bad]
    out: list[Problem] = []
    if header.get("v") != 1:
        out.append(Problem(3, "version", header.get("v"), 1, f"header version {header.get('v')!r}, want 1"))
    if str(header.get("key", "")).lower() != key_hex:
        out.append(Problem(3, "key", header.get("key"), key_hex,
                           f"signed by key {str(header.get('key'))[:16]}…, not the gateway key {key_hex[:16]}…"))
    if header.get("gateway") != gateway:
        out.append(Problem(3, "gateway", header.get("gateway"), gateway,
                           f"gateway {header.get('gateway')!r}, want {gateway!r}"))
    key = sig_key if sig_key is not None else public_from_hex(key_hex)
    msg = header_message(data if data is not None else canonical(header))
    sig = _sig_problem(3, "header signature", sig_hex, key, msg, key_hex if sig_key is None else None, None)
    if sig:
        out.append(sig)
    return out


def check_record(record: Any, sig_hex: Any, *, gateway: str, key_hex: str | None = None,
                 sig_key: Any = None, data: bytes | None = None,
                 signature_valid: bool | None = None) -> list[Problem]:
    """Step 2 for one record: required members (returned alone), ``v`` = 1, ``gateway``,
    and the signature under ``sig_key`` (or ``key_hex``). ``signature_valid`` is the answer
    when the caller checked the signature already (the verifier does, on several threads)."""
    bad = _fields(2, "record-field", "record", record, RECORD_FIELDS)
    if bad:
        return [bad]
    out: list[Problem] = []
    if record.get("v") != 1:
        out.append(Problem(2, "version", record.get("v"), 1, f"version {record.get('v')!r}, want 1"))
    if record.get("gateway") != gateway:
        out.append(Problem(2, "gateway", record.get("gateway"), gateway,
                           f"gateway {record.get('gateway')!r}, want {gateway!r}"))
    if signature_valid is None:
        key = sig_key if sig_key is not None else public_from_hex(str(key_hex))
        msg = record_message(data if data is not None else canonical(record))
        sig = _sig_problem(2, "signature", sig_hex, key, msg, key_hex, None)
    else:
        sig = _sig_problem(2, "signature", sig_hex, None, b"", key_hex, signature_valid)
    if sig:
        out.append(sig)
    return out


def check_inclusion(data: bytes, seq: int, index: Any, header: Mapping[str, Any], proof: Any,
                    memo: dict[bytes, bytes] | None = None, *, check_index: bool = True) -> list[Problem]:
    """Step 4 for one leaf: ``data`` (canonical record bytes) with ``seq`` is leaf
    ``seq − first_seq`` of ``header``'s tree, by ``proof`` (64-lowercase-hex strings).
    ``check_index=False`` for a rotation entry, which has no index of its own."""
    bn = header.get("block")
    got: object
    want: object
    code, got, want = "seq-range", seq, [header.get("first_seq"), header.get("last_seq")]
    try:
        first = header["first_seq"]
        if not first <= seq <= header["last_seq"]:
            raise ProofError(f"seq {seq} outside block {bn} range {header['first_seq']}..{header['last_seq']}")
        code, got, want = "proof-type", type(proof).__name__, "list"
        if not isinstance(proof, list):
            raise ProofError(f"proof is {type(proof).__name__}, want list")
        leaf_index = seq - first
        if check_index:
            code, got, want = "index", index, leaf_index
            if index != leaf_index:
                raise ProofError(f"leaf index {index!r}, want {leaf_index}")
        code, got, want = "proof-hex", None, None
        path = _hex32_list(proof, "proof hash")
        size = header["size"]
        leaf = hash_leaf(data)
        code, got, want = "root-hex", header.get("root"), None
        root_hash = _hex32(header["root"], "root")
        code, got, want = "inclusion", None, header.get("root")
        verify_inclusion(leaf_index, size, leaf, path, root_hash, memo)
    except (ProofError, ValueError, KeyError, TypeError) as exc:
        return [Problem(4, code, got, want, str(exc))]
    return []


def check_root(records: Sequence[bytes], header: Mapping[str, Any]) -> list[Problem]:
    """Step 4 for a whole block (the archive, which holds every record of a block): the
    canonical record bytes, in seq order, hash to the header's root (RFC 9162 §2.1.1)."""
    size = header.get("size")
    if len(records) != size:
        return [Problem(4, "record-count", len(records), size,
                        f"block {header.get('block')} has {len(records)} records, size says {size}")]
    got = root([hash_leaf(r) for r in records]).hex()
    want = header.get("root")
    if got != want:
        return [Problem(4, "root", got, want, f"root of records {header.get('first_seq')}..{header.get('last_seq')} "
                                              f"is {got[:16]}…, header says {str(want)[:16]}…")]
    return []


def check_link(prev: Mapping[str, Any] | None, prev_hash: bytes | None,
               header: Mapping[str, Any]) -> list[Problem]:
    """Step 5 between a header and the one before it (``prev``, whose header hash is
    ``prev_hash``): consecutive block numbers, ``prev`` = that hash, ``first_seq`` follows
    ``last_seq``. With ``prev`` None, only block 0's rules apply (all-zero prev, first_seq
    0); any other first block has nothing to link to here."""
    n: Any = header.get("block")
    if prev is None or prev_hash is None:
        if n != 0:
            return []
        out: list[Problem] = []
        if header.get("prev") != ZERO_HASH:
            out.append(Problem(5, "genesis-prev", header.get("prev"), ZERO_HASH, "prev must be all zeros"))
        if header.get("first_seq") != 0:
            out.append(Problem(5, "genesis-first-seq", header.get("first_seq"), 0,
                               f"first_seq {header.get('first_seq')}, want 0 (records before it are missing)"))
        return out
    pn: Any = prev.get("block")
    if not (_is_int(pn) and _is_int(n) and n == pn + 1):
        lo, hi = (pn + 1, n - 1) if _is_int(pn) and _is_int(n) else (pn, n)
        return [Problem(5, "block-gap", n, pn + 1 if _is_int(pn) else None,
                        f"block {pn} is followed by block {n}: blocks {lo}..{hi} are missing")]
    out = []
    if header.get("prev") != prev_hash.hex():
        out.append(Problem(5, "prev", header.get("prev"), prev_hash.hex(),
                           f"prev {str(header.get('prev'))[:16]}… does not match hash of block {pn} "
                           f"{prev_hash.hex()[:16]}…"))
    want: Any = prev.get("last_seq", -2) + 1
    if header.get("first_seq") != want:
        out.append(Problem(5, "first-seq", header.get("first_seq"), want,
                           f"first_seq {header.get('first_seq')}, want {want} (records missing between blocks)"))
    return out


def check_size(header: Mapping[str, Any]) -> list[Problem]:
    """Step 5 inside one header: ``size`` = ``last_seq − first_seq + 1`` and at least 1."""
    try:
        if header["size"] != header["last_seq"] - header["first_seq"] + 1 or header["size"] < 1:
            return [Problem(5, "size", header["size"], header["last_seq"] - header["first_seq"] + 1,
                            f"size {header['size']} does not match seq range "
                            f"{header['first_seq']}..{header['last_seq']}")]
    except (KeyError, TypeError) as exc:
        return [Problem(5, "header-field", None, None, f"malformed header field {exc}")]
    return []


def check_rotation_boundary(header: Mapping[str, Any],
                            rotations: Sequence[tuple[int, int, str, str]]) -> list[Problem]:
    """A block that a rotation ``(seq, last_block, old_key, new_key)`` closes must end with
    that rotation record: ``first_seq ≤ seq = last_seq``. The gateway always seals so
    (gateway/keyrotation.py); the archive checks it on arrival, the bundle verifier in step
    4 after the rotation record's inclusion (docs/proof-format.md §8.1, §9.3)."""
    n = header.get("block")
    for seq, last_block, _, _ in rotations:
        first: Any = header.get("first_seq")
        last: Any = header.get("last_seq")
        if last_block == n and not (_is_int(first) and _is_int(last) and first <= seq == last):
            return [Problem(4, "rotation-boundary", [first, last], seq,
                            f"block {n} is the old key's last block: it must end with the rotation "
                            f"record seq {seq}, not span {first}..{last}")]
    return []


def check_anchor_entry(anchor: Mapping[str, Any], *, gateway: str, block: int) -> list[Problem]:
    """Step 6: a local anchor's signed entry names this gateway and the block whose header
    hash it carries (an EVM anchor carries the hash alone: nothing to compare)."""
    entry = anchor.get("entry") if anchor.get("kind") == "local" else None
    if isinstance(entry, dict) and (entry.get("gateway") != gateway or not _is_int(entry.get("block"))
                                    or entry.get("block") != block):
        return [Problem(6, "anchor-entry", [entry.get("gateway"), entry.get("block")], [gateway, block],
                        f"entry names gateway {entry.get('gateway')!r} block {entry.get('block')!r}, "
                        f"want {gateway!r} block {block}")]
    return []


def check_anchor_time(time_ms: Any) -> list[Problem]:
    """Step 6: an anchor time is an integer within 2000-01-01..2200-01-01 (§7.4)."""
    if not _is_int(time_ms) or not ANCHOR_TIME_MIN_MS <= time_ms <= ANCHOR_TIME_MAX_MS:
        return [Problem(6, "anchor-time", time_ms, [ANCHOR_TIME_MIN_MS, ANCHOR_TIME_MAX_MS],
                        f"anchor time {time_ms} is outside {ANCHOR_TIME_MIN_MS}..{ANCHOR_TIME_MAX_MS} "
                        "(years 2000..2200)")]
    return []


def check_hex_case(header: Mapping[str, Any], sig_hex: Any) -> list[Problem]:
    """The archive's wire form: ``root`` and ``prev`` are 64 and ``sig`` 128 lowercase hex
    characters (it stores them as bytes and compares them as text). The verifier needs no
    such check: steps 3-5 fail any other spelling on their own."""
    out = []
    for k in ("root", "prev"):
        v = header.get(k)
        if not (isinstance(v, str) and _HEX64.fullmatch(v)):
            out.append(Problem(0, "hex-case", v, "64 lowercase hex", f"{k} is not 64 lowercase hex characters"))
    if not (isinstance(sig_hex, str) and _HEX128.fullmatch(sig_hex)):
        out.append(Problem(0, "hex-case", sig_hex, "128 lowercase hex", "sig is not 128 lowercase hex characters"))
    return out
