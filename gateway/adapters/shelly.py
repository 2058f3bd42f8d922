"""Shelly Gen2+ MQTT notifications → temperature/humidity/battery observations.

Two topic shapes, both in ``TOPICS``:

* ``<prefix>/events/rpc``: JSON-RPC frames ``{"src", "dst", "method", "params"}``.
  ``NotifyStatus`` carries only the changed keys of each component and
  ``NotifyFullStatus`` all of them; either way we read the components we map
  (``temperature:N`` ``tC``/``tF``, ``humidity:N`` ``rh``, ``devicepower:N``
  ``battery.percent``). ``NotifyEvent`` frames carry no readings.
* ``<prefix>/status/<component>``: the bare component status (``status_ntf`` on).

Time: battery devices (Plus H&T) wake from deep sleep before SNTP has run, so
``sys.unixtime`` is null in the very frame that carries the reading; ``params.ts`` (Unix
seconds with a fraction) is set by the RPC layer and is what we use, converted exactly to
ms. A component whose value is null (sensor error, e.g. ``"errors": ["out_of_range"]``)
yields no observation: the silence rule notices a missing probe; a bad *type* is an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters._common import (
    FieldProblem,
    MeasureSpec,
    convert,
    fail_field,
    load_json_object,
    number,
)
from gateway.adapters.units import (
    celsius_to_mc,
    fahrenheit_to_mc,
    percent,
    percent_to_permille,
    scale,
)
from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "shelly"
MAX_COMPONENTS = 128


def _temperature(status: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
    c = number(status, "tC")
    if c is not None:
        return convert(celsius_to_mc, c, key="tC")
    f = number(status, "tF")  # some firmware/status_ntf frames carry only the changed tF
    return None if f is None else convert(fahrenheit_to_mc, f, key="tF")


def _humidity(status: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
    v = number(status, "rh")
    return None if v is None else convert(percent_to_permille, v, key="rh")


def _battery(status: Mapping[str, Any], params: Mapping[str, Any]) -> int | None:
    battery = status.get("battery")
    if battery is None:
        return None
    if not isinstance(battery, dict):
        raise FieldProblem("bad-field", f"battery={battery!r}, want object", "battery")
    try:
        v = number(battery, "percent")
    except FieldProblem as exc:
        raise FieldProblem(exc.code, exc.message, "battery.percent") from exc
    return None if v is None else convert(percent, v, key="battery.percent")


# Component type (the part before ':') → measurements read from its status object.
COMPONENTS: dict[str, tuple[MeasureSpec, ...]] = {
    "temperature": (MeasureSpec("tC", "temperature", "mC", _temperature),),
    "humidity": (MeasureSpec("rh", "humidity", "permille", _humidity),),
    "devicepower": (MeasureSpec("battery", "battery", "pct", _battery),),
}

TOPICS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^(?P<prefix>.+)/events/rpc$"),
    re.compile(r"^(?P<prefix>.+)/status/(?P<component>[a-z0-9_]+(?::\d+)?)$"),
)

_COMPONENT_KEY = re.compile(r"^(?P<type>[a-z0-9_]+)(?::(?P<id>\d{1,5}))?$")
NOTIFY_WITH_STATUS = ("NotifyStatus", "NotifyFullStatus")
NOTIFY_WITHOUT_STATUS = ("NotifyEvent",)


@dataclass(frozen=True, slots=True)
class ShellyParser:
    topics: Sequence[re.Pattern[str]] = TOPICS
    components: Mapping[str, Sequence[MeasureSpec]] = field(
        default_factory=lambda: dict(COMPONENTS)
    )

    def __call__(self, topic: str, raw: bytes) -> list[Observation]:
        for pattern in self.topics:
            m = pattern.match(topic)
            if m:
                break
        else:
            raise ParseError(
                NAME, "bad-topic", f"{topic!r} is not a Shelly Gen2 topic", field="topic"
            )
        msg = load_json_object(NAME, raw)
        groups = m.groupdict()
        if groups.get("component"):
            # Bare status of one component: no frame, no ts; the device id is the prefix.
            return self._component(groups["prefix"], groups["component"], msg, {}, None, None)
        return self._frame(groups["prefix"], msg)

    def _frame(self, prefix: str, msg: dict[str, Any]) -> list[Observation]:
        method = msg.get("method")
        if method in NOTIFY_WITHOUT_STATUS:
            return []
        if method not in NOTIFY_WITH_STATUS:
            code = "missing-field" if method is None else "unsupported-method"
            raise ParseError(
                NAME, code, f"method={method!r}, want one of {NOTIFY_WITH_STATUS}", field="method"
            )
        params = msg.get("params")
        if not isinstance(params, dict):
            raise ParseError(NAME, "missing-field", "params must be an object", field="params")
        src = msg.get("src")
        device = src if isinstance(src, str) and 0 < len(src) <= 64 else prefix
        ts_ms = _ts_ms(params)
        out: list[Observation] = []
        keyed = [(k, v) for k, v in params.items() if isinstance(v, dict)]
        if len(keyed) > MAX_COMPONENTS:
            raise ParseError(
                NAME, "bad-field", f"{len(keyed)} components > {MAX_COMPONENTS}", field="params"
            )
        for key, status in keyed:
            out.extend(self._component(device, key, status, params, ts_ms, method))
        return out

    def _component(
        self,
        device: str,
        key: str,
        status: Mapping[str, Any],
        params: Mapping[str, Any],
        ts_ms: int | None,
        method: str | None,
    ) -> list[Observation]:
        m = _COMPONENT_KEY.match(key)
        specs = self.components.get(m.group("type"), ()) if m else ()
        out = []
        for spec in specs:
            try:
                value = spec.value_fn(status, params)
            except FieldProblem as exc:
                raise fail_field(NAME, exc, key) from exc
            if value is None:
                continue
            attrs: dict[str, Any] = {"device": device, "component": key}
            if method:
                attrs["method"] = method
            out.append(
                Observation(
                    sensor=f"{NAME}:{device}:{key}",
                    kind=spec.kind,
                    value=value,
                    unit=spec.unit,
                    source=NAME,
                    sensor_time_ms=ts_ms,
                    attrs=attrs,
                )
            )
        return out


def _ts_ms(params: Mapping[str, Any]) -> int | None:
    """``params.ts`` in exact ms; ``sys.unixtime`` only as a fallback (null after wake)."""
    try:
        ts = number(params, "ts")
        if ts is None:
            sys_status = params.get("sys")
            ts = number(sys_status, "unixtime") if isinstance(sys_status, dict) else None
    except FieldProblem as exc:
        raise fail_field(NAME, exc, "params") from exc
    if ts is None:
        return None
    if ts < 0:
        raise ParseError(NAME, "bad-time", f"ts={ts} is negative", field="params.ts")
    return scale(ts, 1000)


parse = ShellyParser()
