"""What adapters produce: device-independent observations with integer measurements.

Adapters are pure (bytes in, observations or ParseError out). Units are converted in the
adapter so that everything downstream is an integer in a fixed unit: ``mC`` (milli-degrees
Celsius), ``g`` (grams), ``permille`` (0.1 % relative humidity), ``pct`` (battery percent).
Identity observations (barcode scans, RFID tags, badges) have ``value=None`` and carry
their decoded fields in ``attrs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class SensorProof:
    """A sensor's own signature over its message, checked by admission against the allow-list."""

    sensor: str
    message: bytes  # exactly the bytes the sensor signed (domain prefix included)
    signature: bytes  # 64-byte Ed25519 signature, or the 32-byte HMAC-SHA256 tag
    scheme: str = "ed25519"  # or "hmac-sha256" (the message carried "mac", not "sig")


@dataclass(frozen=True, slots=True)
class Observation:
    sensor: str  # stable sensor id, e.g. "probe-1" or "tasmota:28-0316a2794c25"
    kind: str  # temperature | humidity | battery | weight | door | scan | rfid | badge | ...
    value: int | None  # integer in ``unit``; None for identity observations
    unit: str  # mC | g | permille | pct | lqi | "" (identity)
    source: str  # adapter name: traceseal | tasmota | zigbee2mqtt | shelly | mtsics | ...
    sensor_time_ms: int | None = None  # the device's own clock, if it sent one
    counter: int | None = None  # per-sensor monotonic counter, when the device keeps one
    attrs: dict[str, Any] = field(default_factory=dict)  # JSON-able, never floats
    proof: SensorProof | None = None  # present for traceseal firmware messages
