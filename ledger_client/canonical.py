"""Canonical bytes (RFC 8785 / JCS) and the domain-separated messages that get signed.

Floats are refused outright: every measurement in a signed record is an integer
(milli-degrees C, grams), and refusing floats here means no code path can slip one in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import rfc8785

from .errors import EncodingError

RECORD_DOMAIN = b"traceseal/record/v1\n"
HEADER_DOMAIN = b"traceseal/header/v1\n"
SENSOR_DOMAIN = b"traceseal/sensor/v1\n"
LEDGER_DOMAIN = b"traceseal/ledger/v1\n"

# JCS serialises integers as IEEE doubles; beyond 2**53 two verifiers could disagree.
MAX_SAFE_INT = 2**53 - 1


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EncodingError(f"{path}: integer {value} outside ±2**53-1")
        return
    if isinstance(value, float):
        raise EncodingError(f"{path}: float {value!r} not allowed in signed data; use integers")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise EncodingError(f"{path}: key {k!r} is not a string")
            _check(v, f"{path}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check(v, f"{path}[{i}]")
        return
    raise EncodingError(f"{path}: {type(value).__name__} cannot be canonicalised")


def _fast_ok(value: Any) -> bool:
    """True when the C JSON encoder's output is provably RFC 8785's for ``value``.

    Only exact builtin types (an IntEnum or a str subclass could serialise differently), ints
    within ±2**53-1 (json would print larger ones, JCS refuses them) and object keys below
    U+D800. The keys matter because JCS sorts by UTF-16 code units and Python by code points:
    the two orders differ only when a key holds a supplementary-plane character (a surrogate
    pair, D800-DFFF as code units) and another a character in E000-FFFF. Strings need no
    condition: with ``ensure_ascii=False`` both escape exactly ``"``, ``\\``, the five short
    forms \\b \\f \\n \\r \\t and every other control character below U+0020 as a lowercase
    \\u00xx, and write everything else (U+007F, U+2028, non-BMP) raw; a lone surrogate makes
    the UTF-8 encode fail, and then the slow path reports it. Anything else returns False,
    and ``_check`` plus ``rfc8785`` decide (and refuse floats with a precise path).
    """
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(-MAX_SAFE_INT <= value <= MAX_SAFE_INT)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str or not (k.isascii() or (k and max(k) < "\ud800")):
                return False
            tv = type(v)
            if tv is str or tv is bool or v is None:
                continue
            if tv is int:
                if not -MAX_SAFE_INT <= v <= MAX_SAFE_INT:
                    return False
            elif not _fast_ok(v):
                return False
        return True
    if t is list or t is tuple:
        return all(_fast_ok(v) for v in value)
    return False


_FAST = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False, sort_keys=True,
                         separators=(",", ":")).encode


def _unreachable(o: Any) -> Any:  # _fast_ok admitted only JSON-native types
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # CPython's C encoder (untyped)
_fast: Callable[[Any], str]
if _make_encoder is not None:  # what JSONEncoder.encode builds on every call, built once
    _c_encode = _make_encoder(None, _unreachable, json.encoder.encode_basestring, None,
                              ":", ",", True, False, False)

    def _fast(obj: Any) -> str:
        return "".join(_c_encode(obj, 0))
else:  # pragma: no cover - CPython always has the C encoder
    _fast = _FAST


def canonical(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj``, after refusing floats and out-of-range integers.

    The C JSON encoder produces the same bytes ~3× faster where ``_fast_ok`` proves it
    (every record and sensor message traceseal makes); anything else goes through
    ``rfc8785``. tests/test_canonical_fast.py checks the two against each other.
    """
    if _fast_ok(obj):
        try:
            return _fast(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 below refuses it with its own message
    _check(obj, "$")
    try:
        return rfc8785.dumps(obj)
    except Exception as exc:  # rfc8785 raises its own types; map once, here
        raise EncodingError(f"cannot canonicalise: {exc}") from exc


def record_message(canonical_record: bytes) -> bytes:
    return RECORD_DOMAIN + canonical_record


def header_message(canonical_header: bytes) -> bytes:
    return HEADER_DOMAIN + canonical_header


def header_hash(canonical_header: bytes) -> bytes:
    """The 32-byte value that gets anchored on a ledger."""
    return hashlib.sha256(canonical_header).digest()
