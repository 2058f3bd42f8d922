"""Deliberately bad messages, and the ``garbage=0.01,badsig=0.02`` spec that asks for them.

Pure builders: given a key, a sample and a ``random.Random``, return the bytes a broken or
hostile device would publish. Which kinds exist and what each means for the gateway:

- ``garbage``   random bytes that are not a JSON object (line noise, a wrong device)
- ``badsig``    well-formed, fresh counter, signature with one bit flipped
- ``replay``    an earlier good message of the same sensor, byte for byte
- ``unknown``   well-formed and validly signed, by a sensor that was never enrolled
- ``malformed`` JSON with a missing field, a string value or a float value
- ``huge``      exactly ``HUGE_SIZE`` bytes of otherwise valid, validly signed JSON: only a
                size limit stops it, which is the point
"""

from __future__ import annotations

import json
import random
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .errors import SimConfigError
from .message import Reading, body, encode, sign_body, tag_field

FAULT_KINDS = ("garbage", "badsig", "replay", "unknown", "malformed", "huge")
HUGE_SIZE = 1024 * 1024
MALFORMED_VARIANTS = ("missing-field", "string-value", "float-value")
_REQUIRED = ("v", "sensor", "ctr", "t", "readings", "sig")


def parse_faults(spec: str) -> dict[str, float]:
    """``"garbage=0.01,badsig=0.02"`` -> ``{"garbage": 0.01, "badsig": 0.02}``; empty is none."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise SimConfigError(f"fault {part!r}: want kind=probability, e.g. badsig=0.01")
        if name not in FAULT_KINDS:
            raise SimConfigError(f"unknown fault {name!r}; choose from {', '.join(FAULT_KINDS)}")
        try:
            p = float(value)
        except ValueError as exc:
            raise SimConfigError(f"fault {name}: probability {value!r} is not a number") from exc
        if not 0.0 <= p <= 1.0:
            raise SimConfigError(f"fault {name}: probability {p} outside [0, 1]")
        out[name] = p
    return out


def garbage_payload(rng: random.Random) -> bytes:
    """1-256 random bytes, redrawn in the (tiny) chance they happen to be a JSON object."""
    while True:
        raw = rng.randbytes(rng.randint(1, 256))
        try:
            if not isinstance(json.loads(raw.decode("utf-8")), dict):
                return raw
        except (UnicodeDecodeError, ValueError):
            return raw


def badsig_payload(
    key: Ed25519PrivateKey, sensor: str, ctr: int, t_ms: int, readings: list[Reading],
    rng: random.Random,
) -> bytes:
    """A correct message whose signature has one random bit flipped (still 128 hex chars)."""
    msg = body(sensor, ctr, t_ms, readings)
    sig = bytearray(bytes.fromhex(sign_body(key, msg)))
    bit = rng.randrange(len(sig) * 8)
    sig[bit // 8] ^= 1 << (bit % 8)
    msg[tag_field(key)] = sig.hex()
    return encode(msg)


def malformed_payload(
    key: Ed25519PrivateKey, sensor: str, ctr: int, t_ms: int, readings: list[Reading],
    rng: random.Random,
) -> tuple[bytes, str]:
    """A message that breaks the schema in one way; returns (payload, variant).

    Where the broken message can still be canonicalised it carries a *valid* signature, so
    that only the schema check can reject it; a float cannot be signed, so that variant
    carries the signature of the integer original.
    """
    variant = rng.choice(MALFORMED_VARIANTS)
    msg: dict[str, Any] = body(sensor, ctr, t_ms, [dict(r) for r in readings])
    if variant == "missing-field":
        drop = rng.choice(_REQUIRED)
        msg.pop(drop, None)  # "sig" is not there yet: dropping it means never adding it
        if drop != "sig":
            msg[tag_field(key)] = sign_body(key, msg)
        return encode(msg), f"{variant}:{drop}"
    first = msg["readings"][0]
    if variant == "string-value":
        first["value"] = str(first["value"])
        msg[tag_field(key)] = sign_body(key, msg)
        return encode(msg), variant
    msg[tag_field(key)] = sign_body(key, msg)
    first["value"] = first["value"] / 1000 + 0.0005  # never integral, always a JSON float
    return encode(msg), variant


def huge_payload(
    key: Ed25519PrivateKey, sensor: str, ctr: int, t_ms: int, readings: list[Reading],
    size: int = HUGE_SIZE,
) -> bytes:
    """A validly signed message padded with a ``pad`` field to exactly ``size`` bytes."""
    msg: dict[str, Any] = body(sensor, ctr, t_ms, readings)
    msg["pad"] = ""
    msg["sig"] = "0" * 128  # same length as the real one, to measure
    missing = size - len(encode(msg))
    if missing < 0:
        raise ValueError(f"huge payload of {size} bytes is smaller than the message itself")
    msg["pad"] = "x" * missing
    del msg["sig"]
    msg["sig"] = sign_body(key, msg)
    return encode(msg)
