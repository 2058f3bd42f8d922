"""Adapter name → parse function, the names used in routing config (``routes``).

Every value has the same shape, ``parse(topic_or_port, raw) -> list[Observation]``, raising
only ``ParseError``. The pipeline merges ``PARSERS`` into its own table
(``pipeline.default_parsers``). Parsers built with custom tables (e.g.
``tasmota.TasmotaParser(topics=...)``) can be registered under another name by the caller;
this module keeps no mutable state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from ..errors import ConfigError
from ..observation import Observation
from . import ad_scale, ds18b20, epc, gs1, mtsics, shelly, tasmota, traceseal_fw, zigbee2mqtt

Parser = Callable[[str, bytes], list[Observation]]

PARSERS: Mapping[str, Parser] = MappingProxyType(
    {
        traceseal_fw.NAME: traceseal_fw.parse,
        tasmota.NAME: tasmota.parse,
        zigbee2mqtt.NAME: zigbee2mqtt.parse,
        shelly.NAME: shelly.parse,
        mtsics.NAME: mtsics.parse,
        ad_scale.NAME: ad_scale.parse,
        gs1.NAME: gs1.parse,
        epc.NAME: epc.parse,
        epc.BADGE: epc.parse_badge,
        ds18b20.NAME: ds18b20.parse,
    }
)


def get(name: str) -> Parser:
    """The parser registered as ``name``, or ConfigError naming the known ones."""
    try:
        return PARSERS[name]
    except KeyError:
        raise ConfigError(
            "routes", f"unknown adapter {name!r}; known: {', '.join(sorted(PARSERS))}"
        ) from None
