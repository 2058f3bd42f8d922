"""Canonical bytes (RFC 8785 / JCS) and the domain-separated messages that get signed.

Floats are refused outright: every measurement in a signed record is an integer
(milli-degrees C, grams), and refusing floats here means no code path can slip one in.
"""

from __future__ import annotations

import hashlib
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


def canonical(obj: Any) -> bytes:
    """RFC 8785 bytes of ``obj``, after refusing floats and out-of-range integers."""
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
