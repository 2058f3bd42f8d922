"""Adapter name → parse function, the names used in routing config (``routes``).

Every value has the same shape, ``parse(topic_or_port, raw) -> list[Observation]``, raising
only ``ParseError``. The pipeline merges ``PARSERS`` into its own table
(``pipeline.default_parsers``). Parsers built with custom tables (e.g.
``tasmota.TasmotaParser(topics=...)``) can be registered under another name by the caller;
this module keeps no mutable state.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType

from gateway.adapters import ad_scale, ds18b20, mtsics, shelly, tasmota, traceseal_fw, zigbee2mqtt
from gateway.core.errors import ConfigError
from gateway.core.observation import Observation

Parser = Callable[[str, bytes], list[Observation]]

# biip (gs1) and epcpy (epc, badge) add ~18 MB of RSS to a gateway process (bench/README.md),
# and most stations have no scanner or RFID reader. They are imported on first use, or at
# pipeline start for the adapters its routes name (``load``), so an import error still
# shows at start, not at the first scan.
_LAZY = {"gs1": ("gs1", "parse"), "epc": ("epc", "parse"), "badge": ("epc", "parse_badge")}


def load(name: str) -> Parser:
    """The real parse function of ``name``, importing its module (and libraries) now."""
    if name in _LAZY:
        module, attr = _LAZY[name]
        parse: Parser = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        return parse
    return get(name)


def _lazy(name: str) -> Parser:
    def parse(topic: str, raw: bytes) -> list[Observation]:
        return load(name)(topic, raw)

    parse.__qualname__ = parse.__name__ = f"parse_{name}"
    return parse

PARSERS: Mapping[str, Parser] = MappingProxyType(
    {
        traceseal_fw.NAME: traceseal_fw.parse,
        tasmota.NAME: tasmota.parse,
        zigbee2mqtt.NAME: zigbee2mqtt.parse,
        shelly.NAME: shelly.parse,
        mtsics.NAME: mtsics.parse,
        ad_scale.NAME: ad_scale.parse,
        "gs1": _lazy("gs1"),
        "epc": _lazy("epc"),
        "badge": _lazy("badge"),
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
