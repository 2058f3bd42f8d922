"""Zigbee2MQTT device state (``zigbee2mqtt/<friendly_name>``) → observations.

Each message is a (partial or, with debounce, merged) state snapshot of one device, so one
message may yield several observations, or none (a switch, a contact sensor). Friendly
names may contain ``/``; the bridge's own topics and the ``/availability``, ``/set`` and
``/get`` sub-topics carry no readings and yield nothing. Zigbee2MQTT always reports
temperature in °C and humidity in %RH.

The sensor id is the friendly name, the name the operator chose and allow-lists; the IEEE
address, when Zigbee2MQTT includes device information, is kept in ``attrs["ieee"]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway.adapters._common import (
    FieldProblem,
    MeasureSpec,
    convert,
    fail_field,
    load_json_object,
    number,
)
from gateway.adapters.units import celsius_to_mc, percent, percent_to_permille, scale
from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "zigbee2mqtt"


ValueFn = Callable[[Mapping[str, Any], Mapping[str, Any]], int | None]


def _field(key: str, fn: Callable[[Decimal], int]) -> ValueFn:
    """A top-level numeric key, converted by ``fn``; absent or null → no observation."""

    def value_fn(obj: Mapping[str, Any], msg: Mapping[str, Any]) -> int | None:
        v = number(obj, key)
        return None if v is None else convert(fn, v, key=key)

    return value_fn


FIELDS: tuple[MeasureSpec, ...] = (
    MeasureSpec("temperature", "temperature", "mC", _field("temperature", celsius_to_mc)),
    MeasureSpec("humidity", "humidity", "permille", _field("humidity", percent_to_permille)),
    MeasureSpec("battery", "battery", "pct", _field("battery", percent)),
    MeasureSpec("linkquality", "linkquality", "lqi", _field("linkquality", lambda v: scale(v, 1))),
)

BASE_TOPIC = "zigbee2mqtt"
# Sub-topics that are requests or availability, not device state.
IGNORED_SUFFIXES = ("/availability", "/set", "/get")
_SET_GET = re.compile(r"/(?:set|get)(?:/[^/]+)?$")


@dataclass(frozen=True, slots=True)
class Zigbee2MqttParser:
    base_topic: str = BASE_TOPIC
    fields: Sequence[MeasureSpec] = FIELDS

    def __call__(self, topic: str, raw: bytes) -> list[Observation]:
        prefix = self.base_topic.rstrip("/") + "/"
        if not topic.startswith(prefix) or len(topic) == len(prefix):
            raise ParseError(NAME, "bad-topic", f"{topic!r} is not under {prefix!r}", field="topic")
        name = topic[len(prefix) :]
        if (
            name.startswith("bridge/")
            or name == "bridge"
            or name.endswith(IGNORED_SUFFIXES)
            or _SET_GET.search(name)
        ):
            return []
        msg = load_json_object(NAME, raw)
        attrs: dict[str, Any] = {"friendly_name": name}
        device = msg.get("device")
        if isinstance(device, dict) and isinstance(device.get("ieeeAddr"), str):
            attrs["ieee"] = device["ieeeAddr"][:32]
        last_seen = msg.get("last_seen")
        if isinstance(last_seen, (str, int)) and not isinstance(last_seen, bool):
            attrs["last_seen"] = last_seen if isinstance(last_seen, int) else last_seen[:40]
        out = []
        for spec in self.fields:
            try:
                value = spec.value_fn(msg, msg)
            except FieldProblem as exc:
                raise fail_field(NAME, exc, "") from exc
            if value is not None:
                out.append(
                    Observation(
                        sensor=f"{NAME}:{name}",
                        kind=spec.kind,
                        value=value,
                        unit=spec.unit,
                        source=NAME,
                        attrs=dict(attrs),
                    )
                )
        return out


parse = Zigbee2MqttParser()
