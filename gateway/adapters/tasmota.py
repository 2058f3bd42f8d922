"""Tasmota telemetry (``tele/<topic>/SENSOR``) → temperature/humidity observations.

Each top-level object in the payload that holds a mapped field (``Temperature``,
``Humidity``) is one sensor. DS18x20 probes are keyed by their ROM ``Id``, never by the
``DS18B20-<n>`` key: Tasmota numbers probes by bus scan order, so adding a probe renumbers
the others. Tasmota prints the 48-bit serial most significant byte first, exactly like the
Linux ``w1`` directory name, so the probe with ``"Id":"0316A2794C25"`` becomes sensor
``tasmota:28-0316a2794c25`` (and ``w1:28-0316a2794c25`` when wired to the Pi itself).

``Time`` is the device's local wall time without an offset (unless SetOption52 is on): it
is kept verbatim in ``attrs["device_time"]`` and only becomes ``sensor_time_ms`` when it
carries an offset. ``TempUnit`` is absent in old firmware; the default is Celsius.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.adapters._common import (
    FieldProblem,
    MeasureSpec,
    convert,
    fail_field,
    iso_time_ms,
    load_json_object,
    number,
)
from gateway.adapters.units import percent_to_permille, temperature_to_mc
from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "tasmota"
MAX_SENSORS = 64


def _temperature(obj: Mapping[str, Any], msg: Mapping[str, Any]) -> int | None:
    v = number(obj, "Temperature")
    if v is None:
        return None
    unit = msg.get("TempUnit", "C")
    if not isinstance(unit, str):
        raise FieldProblem("bad-field", f"TempUnit={unit!r}", "TempUnit")
    return convert(temperature_to_mc, v, unit, key="Temperature")


def _humidity(obj: Mapping[str, Any], msg: Mapping[str, Any]) -> int | None:
    v = number(obj, "Humidity")
    return None if v is None else convert(percent_to_permille, v, key="Humidity")


FIELDS: tuple[MeasureSpec, ...] = (
    MeasureSpec("Temperature", "temperature", "mC", _temperature),
    MeasureSpec("Humidity", "humidity", "permille", _humidity),
)


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic shape; ``wrapper`` names the object the sensors sit in (``StatusSNS``)."""

    pattern: re.Pattern[str]  # must have a ``device`` group (Tasmota's %topic%)
    wrapper: str | None = None


# Default FullTopic is %prefix%/%topic%/; some installs put a leading slash or a site prefix.
# ``Status 10`` answers on stat/<topic>/STATUS10 with the same sensors inside StatusSNS.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(re.compile(r"^/?(?:[^/]+/)*tele/(?P<device>[^/]+)/SENSOR$")),
    TopicSpec(re.compile(r"^/?(?:[^/]+/)*stat/(?P<device>[^/]+)/STATUS10$"), wrapper="StatusSNS"),
)

# 1-Wire family code by Tasmota's sensor name prefix, to build w1-style probe ids.
W1_FAMILY = {"DS18B20": "28", "DS18S20": "10", "DS1822": "22", "MAX31850": "3b"}
_ID = re.compile(r"^[0-9A-Fa-f]{12}$")


@dataclass(frozen=True, slots=True)
class TasmotaParser:
    """A Tasmota parser configured with its topic patterns and field table."""

    topics: Sequence[TopicSpec] = TOPICS
    fields: Sequence[MeasureSpec] = FIELDS

    def __call__(self, topic: str, raw: bytes) -> list[Observation]:
        device, wrapper = self._device(topic)
        msg = load_json_object(NAME, raw)
        if wrapper is not None:
            inner = msg.get(wrapper)
            if not isinstance(inner, dict):
                raise ParseError(NAME, "missing-field", f"no {wrapper} object", field=wrapper)
            msg = inner
        sensor_time_ms: int | None = None
        attrs_base: dict[str, Any] = {"device": device}
        if "Time" in msg:
            sensor_time_ms, attrs_base["device_time"] = iso_time_ms(NAME, msg["Time"], "Time")
        out: list[Observation] = []
        sensors = [(k, v) for k, v in msg.items() if isinstance(v, dict)]
        if len(sensors) > MAX_SENSORS:
            raise ParseError(NAME, "bad-field", f"{len(sensors)} sensor objects > {MAX_SENSORS}")
        for key, obj in sensors:
            readings = self._readings(key, obj, msg)
            if not readings:
                continue
            sensor, extra = _sensor_id(device, key, obj)
            for spec, value in readings:
                attrs = {**attrs_base, "key": key, **extra}
                out.append(
                    Observation(
                        sensor=sensor,
                        kind=spec.kind,
                        value=value,
                        unit=spec.unit,
                        source=NAME,
                        sensor_time_ms=sensor_time_ms,
                        attrs=attrs,
                    )
                )
        return out

    def _device(self, topic: str) -> tuple[str, str | None]:
        for spec in self.topics:
            m = spec.pattern.match(topic)
            if m:
                return m.group("device"), spec.wrapper
        raise ParseError(
            NAME, "bad-topic", f"{topic!r} is not a Tasmota SENSOR topic", field="topic"
        )

    def _readings(
        self, key: str, obj: Mapping[str, Any], msg: Mapping[str, Any]
    ) -> list[tuple[MeasureSpec, int]]:
        found = []
        for spec in self.fields:
            try:
                value = spec.value_fn(obj, msg)
            except FieldProblem as exc:
                raise fail_field(NAME, exc, key) from exc
            if value is not None:
                found.append((spec, value))
        return found


def _sensor_id(device: str, key: str, obj: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    rom = obj.get("Id")
    if rom is None:
        # A lone probe without Id (old firmware): only the device topic identifies it.
        return f"{NAME}:{device}/{key}", {}
    if not isinstance(rom, str) or not _ID.match(rom):
        raise ParseError(NAME, "bad-field", f"Id={rom!r}, want 12 hex digits", field=f"{key}.Id")
    family = W1_FAMILY.get(key.split("-", 1)[0])
    ident = f"{family}-{rom.lower()}" if family else rom.upper()
    return f"{NAME}:{ident}", {"rom_id": rom.upper()}


parse = TasmotaParser()
