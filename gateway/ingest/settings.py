"""Ingest's config slices: ``[[sensors]]`` (and ``include``d sensor files), ``[admission]``,
``[filters]``, ``[[routes]]``, and ``IngestConfig``, everything ``Pipeline`` reads.

Each parser raises ``ConfigError(key, problem)`` naming the key, like every other slice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import Table, positive
from gateway.ingest.sensor_auth import load_key

MQTT_ADAPTERS = {"traceseal", "tasmota", "zigbee2mqtt", "shelly"}


@dataclass(frozen=True)
class SensorConfig:
    id: str
    public_key: str | None  # hex Ed25519; None = third-party device admitted by allow-list only
    kind: str = "temperature"
    adapter: str = "traceseal"
    unit_id: str | None = None
    # 32-byte HMAC-SHA256 key (gateway/ingest/sensor_auth.py) instead of public_key; never printed
    hmac_key: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AdmissionConfig:
    max_message_bytes: int = 16384
    temperature_min_mc: int = -100_000
    temperature_max_mc: int = 125_000
    max_clock_skew_s: int = 7 * 24 * 3600
    max_counter_jump: int = 1 << 20  # see Admission: a bigger jump needs a second message to confirm it


@dataclass(frozen=True)
class FilterConfig:
    duplicate_scan_s: int = 3  # the same scan/tag from the same reader within this is one scan
    record_repeat_weights: bool = False  # a scale re-reporting the same stable weight


@dataclass(frozen=True)
class IngestConfig:
    """What ``Pipeline`` reads, and nothing else: who may speak (sensors, admission), what is
    kept (filters), which adapter parses what (routes, first match wins) and how much of a
    refused message the quarantine keeps (the journal's ``quarantine_raw_bytes``)."""

    sensors: dict[str, SensorConfig]
    admission: AdmissionConfig = AdmissionConfig()
    filters: FilterConfig = FilterConfig()
    routes: tuple[tuple[str, str], ...] = ()  # (MQTT filter or port glob, adapter)
    quarantine_raw_bytes: int = 1024


def parse_admission(raw: Any, base: Path) -> AdmissionConfig:
    a = Table(raw, "admission", base)
    admission = AdmissionConfig(
        max_message_bytes=a.get("max_message_bytes", int, 16384, check=lambda v: 64 <= v <= 1 << 20,
                                why="must be in 64..1048576"),
        temperature_min_mc=a.get("temperature_min_mc", int, -100_000),
        temperature_max_mc=a.get("temperature_max_mc", int, 125_000),
        max_clock_skew_s=a.get("max_clock_skew_s", int, 7 * 24 * 3600, check=positive, why="must be positive"),
        max_counter_jump=a.get("max_counter_jump", int, 1 << 20, check=lambda v: 4096 <= v <= 1 << 40,
                               why="must be in 4096..1099511627776"),
    )
    a.done()
    return admission


def parse_sensors(raw: list[Any], base: Path) -> dict[str, SensorConfig]:
    """``[[sensors]]`` (the config's own and its includes', in that order), by id."""
    sensors: dict[str, SensorConfig] = {}
    for i, s in enumerate(raw):
        t = Table(s, f"sensors[{i}]", base)
        sid = t.get("id", str, check=lambda v: 0 < len(v) <= 64, why="must be 1-64 characters")
        pk = t.get("public_key", str, None,
                   check=lambda v: len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v),
                   why="must be 64 hex characters (a raw Ed25519 public key)")
        adapter = t.get("adapter", str, "traceseal")
        hmac_key = _sensor_hmac_key(t, i, pk, adapter)
        if adapter == "traceseal" and pk is None and hmac_key is None:
            raise ConfigError(f"sensors[{i}].public_key", "is required for traceseal firmware sensors "
                                                          "(or hmac_key_file)")
        if sid in sensors:
            raise ConfigError(f"sensors[{i}].id", f"duplicate sensor id {sid!r}")
        sensors[sid] = SensorConfig(id=sid, public_key=pk, kind=t.get("kind", str, "temperature"),
                                    adapter=adapter, unit_id=t.get("unit", str, None), hmac_key=hmac_key)
        t.done()
    return sensors


def _sensor_hmac_key(t: Table, i: int, pk: str | None, adapter: str) -> bytes | None:
    """A probe authenticates with exactly one scheme: its Ed25519 key or a shared HMAC key."""
    path = t.path_("hmac_key_file", None)
    if path is None:
        return None
    where = f"sensors[{i}].hmac_key_file"
    if pk is not None:
        raise ConfigError(where, "set either public_key or hmac_key_file, not both")
    if adapter != "traceseal":
        raise ConfigError(where, f"only traceseal firmware sensors use an HMAC key, not adapter {adapter!r}")
    return load_key(path, where)


def parse_routes(raw: Any, base: Path) -> tuple[tuple[str, str], ...]:
    """``[[routes]]``: (MQTT topic filter, adapter) for third-party devices."""
    routes: list[tuple[str, str]] = []
    for i, r in enumerate(raw):
        t = Table(r, f"routes[{i}]", base)
        routes.append((t.get("topic", str), t.get("adapter", str, check=lambda v: v in MQTT_ADAPTERS,
                                                  why=f"must be one of {sorted(MQTT_ADAPTERS)}")))
        t.done()
    return tuple(routes)


def parse_filters(raw: Any, base: Path) -> FilterConfig:
    f = Table(raw, "filters", base)
    filters = FilterConfig(duplicate_scan_s=f.get("duplicate_scan_s", int, 3, check=lambda v: v >= 0,
                                                  why="must be >= 0"),
                           record_repeat_weights=f.get("record_repeat_weights", bool, False))
    f.done()
    return filters
