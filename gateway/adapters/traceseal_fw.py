"""traceseal's own firmware JSON: integer readings, a monotonic counter, an Ed25519 signature.

Wire format (docs/proof-format.md §Sensor messages)::

    {"v":1,"sensor":"probe-1","ctr":17,"t":1700000000000,
     "readings":[{"kind":"temperature","value":-20125,"unit":"mC"}],"sig":"<hex>"}

``sig`` signs ``SENSOR_DOMAIN + JCS(message without sig)``. This parser checks shape and
types and hands the signed bytes on as a SensorProof; admission checks the signature
against the allow-listed key (parsing does no key look-ups).
"""

from __future__ import annotations

import json
from typing import Any

from gateway.core.errors import ParseError
from gateway.core.observation import Observation, SensorProof
from ledger_client.canonical import SENSOR_DOMAIN, canonical
from ledger_client.errors import EncodingError

NAME = "traceseal"
_ALLOWED_UNITS = {"temperature": "mC", "humidity": "permille", "battery": "pct", "door": "", "power": ""}
_MAX_READINGS = 16


def _fail(code: str, msg: str, field: str | None = None) -> ParseError:
    return ParseError(NAME, code, msg, field=field)


MAX_SAFE = 2**53 - 1


def _int_field(obj: dict[str, Any], key: str, path: str) -> int:
    if key not in obj:
        raise _fail("missing-field", f"no {key!r}", path)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise _fail("non-integer", f"{key!r} is {type(v).__name__} {v!r}, want integer", path)
    if not -MAX_SAFE <= v <= MAX_SAFE:  # I-JSON (RFC 7493): a record can carry it exactly, SQLite can store it
        raise _fail("out-of-range", f"{key!r} is {v}, outside ±(2^53-1)", path)
    return v


def _reject_float(text: str) -> Any:
    raise _fail("non-integer", f"float {text} in a signed message; measurements are integers")


def _signature(msg: dict[str, Any]) -> bytes:
    sig_hex = msg.get("sig")
    if not isinstance(sig_hex, str):
        raise _fail("missing-field", "no signature", "sig")
    try:
        sig = bytes.fromhex(sig_hex)
    except ValueError as exc:
        raise _fail("bad-signature", "sig is not hex", "sig") from exc
    if len(sig) != 64:
        raise _fail("bad-signature", f"sig is {len(sig)} bytes, want 64", "sig")
    return sig


def _mac_tag(msg: dict[str, Any]) -> tuple[bytes, str, str]:
    """``mac``: 64 hex chars. A message with both ``sig`` and ``mac`` is refused: which one the
    sensor meant to be checked would otherwise be the attacker's choice."""
    if "sig" in msg:
        raise _fail("bad-mac", "message carries both sig and mac", "mac")
    mac_hex = msg["mac"]
    if not isinstance(mac_hex, str):
        raise _fail("bad-mac", f"mac is {type(mac_hex).__name__}, want a hex string", "mac")
    try:
        mac = bytes.fromhex(mac_hex)
    except ValueError as exc:
        raise _fail("bad-mac", "mac is not hex", "mac") from exc
    if len(mac) != 32:
        raise _fail("bad-mac", f"mac is {len(mac)} bytes, want 32", "mac")
    return mac, "hmac-sha256", "mac"


def parse(topic: str, raw: bytes) -> list[Observation]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail("not-utf8", f"byte {exc.start} is not UTF-8") from exc
    try:
        msg = json.loads(text, parse_float=_reject_float, parse_constant=_reject_float)
    except ParseError:
        raise
    except (ValueError, RecursionError) as exc:
        raise _fail("malformed-json", str(exc)[:120]) from exc
    if not isinstance(msg, dict):
        raise _fail("malformed-json", f"top level is {type(msg).__name__}, want object")
    if type(msg.get("v")) is not int or msg.get("v") != 1:
        raise _fail("bad-version", f"v={msg.get('v')!r}, want 1", "v")
    sensor = msg.get("sensor")
    if not isinstance(sensor, str) or not sensor or len(sensor) > 64:
        raise _fail("missing-field" if sensor is None else "bad-field", f"sensor={sensor!r}", "sensor")
    ctr = _int_field(msg, "ctr", "ctr")
    if ctr < 0:
        raise _fail("bad-field", f"ctr {ctr} is negative", "ctr")
    t_ms = _int_field(msg, "t", "t")
    if "mac" in msg:  # an HMAC-enrolled probe (gateway/ingest/sensor_auth.py) sends a tag, not a signature
        sig, scheme, tag_field = _mac_tag(msg)
    else:
        sig, scheme, tag_field = _signature(msg), "ed25519", "sig"
    readings = msg.get("readings")
    if not isinstance(readings, list) or not readings:
        raise _fail("missing-field", "readings must be a non-empty list", "readings")
    if len(readings) > _MAX_READINGS:
        raise _fail("bad-field", f"{len(readings)} readings, at most {_MAX_READINGS}", "readings")
    body = {k: v for k, v in msg.items() if k != tag_field}
    try:
        signed = SENSOR_DOMAIN + canonical(body)
    except EncodingError as exc:
        raise _fail("bad-field", str(exc)) from exc
    proof = SensorProof(sensor=sensor, message=signed, signature=sig, scheme=scheme)
    out = []
    for i, r in enumerate(readings):
        path = f"readings[{i}]"
        if not isinstance(r, dict):
            raise _fail("bad-field", "reading is not an object", path)
        kind = r.get("kind")
        if not isinstance(kind, str) or kind not in _ALLOWED_UNITS:
            raise _fail("bad-field", f"unknown kind {kind!r}", f"{path}.kind")
        value = _int_field(r, "value", f"{path}.value")
        unit = r.get("unit")
        if unit != _ALLOWED_UNITS[kind]:
            raise _fail("bad-unit", f"unit {unit!r} for {kind}, want {_ALLOWED_UNITS[kind]!r}", f"{path}.unit")
        out.append(Observation(sensor=sensor, kind=kind, value=value, unit=unit, source=NAME,
                               sensor_time_ms=t_ms, counter=ctr, proof=proof))
    return out
