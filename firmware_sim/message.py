"""Build traceseal firmware messages: the exact bytes a probe publishes.

Pure and deterministic (Ed25519 signatures are deterministic), so the gateway's tests can
build the same messages the simulator sends without a broker. Wire format::

    {"v":1,"sensor":"probe-1","ctr":17,"t":1700000000000,
     "readings":[{"kind":"temperature","value":-20125,"unit":"mC"}],"sig":"<128 hex>"}

``sig`` is the hex Ed25519 signature over ``SENSOR_DOMAIN + JCS(message without sig)``.
A probe enrolled with an HMAC key (:class:`HmacKey`) sends ``mac`` instead: HMAC-SHA256 over
the same bytes (gateway/ingest/sensor_auth.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_client.canonical import SENSOR_DOMAIN, canonical

VERSION = 1
Reading = dict[str, Any]


class HmacKey:
    """A probe's shared 32-byte HMAC-SHA256 key, usable wherever an Ed25519 key signs."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"an HMAC key is 32 bytes, got {len(key)}")
        self._key = bytes(key)

    def sign(self, message: bytes) -> bytes:
        return hmac.digest(self._key, message, hashlib.sha256)

    def __repr__(self) -> str:  # never the key itself
        return "HmacKey(<32 bytes>)"


def tag_field(key: Any) -> str:
    """The member that carries the probe's proof: ``mac`` for an HMAC key, else ``sig``."""
    return "mac" if isinstance(key, HmacKey) else "sig"


def temperature(value_mc: int) -> Reading:
    """A temperature reading in integer milli-degrees Celsius."""
    return {"kind": "temperature", "value": value_mc, "unit": "mC"}


def door(is_open: bool) -> Reading:
    """A door-contact reading: 1 open, 0 closed (integers, like every measurement)."""
    return {"kind": "door", "value": 1 if is_open else 0, "unit": ""}


def body(sensor: str, ctr: int, t_ms: int, readings: list[Reading]) -> dict[str, Any]:
    """The signed part of a message, keys in wire order (JCS re-sorts them for signing)."""
    return {"v": VERSION, "sensor": sensor, "ctr": ctr, "t": t_ms, "readings": readings}


def sign_body(key: Ed25519PrivateKey | HmacKey, msg: dict[str, Any]) -> str:
    """Hex signature over the domain-separated canonical body.

    Raises ``ledger_client.errors.EncodingError`` for floats: a probe never signs one.
    """
    return key.sign(SENSOR_DOMAIN + canonical(msg)).hex()


def encode(msg: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in insertion order: stable bytes for a given dict."""
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def build_message(
    key: Ed25519PrivateKey | HmacKey, sensor: str, ctr: int, t_ms: int, readings: list[Reading]
) -> bytes:
    """The payload a traceseal probe publishes for one sample."""
    if isinstance(ctr, bool) or not isinstance(ctr, int) or ctr < 0:
        raise ValueError(f"ctr must be a non-negative integer, got {ctr!r}")
    if not readings:
        raise ValueError("a message needs at least one reading")
    msg = body(sensor, ctr, t_ms, readings)
    msg[tag_field(key)] = sign_body(key, msg)
    return encode(msg)
