"""The station's config slice: ``[[units]]``, ``[inventory]``, ``[[operators]]``,
``[custody]``, ``[alarms]`` and ``[gpio]``, typed with the rule library's own configs.

The rule library (``gateway.rules``) parses its sections; this module reads the runtime's
(alarm timing, the GPIO panel) and ties them together. Every error is a
``ConfigError(key, problem)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import Table, positive
from gateway.rules import InventoryConfig, UnitConfig, parse_inventory, parse_units
from gateway.rules.custody import CustodyConfig, Operator, parse_custody, parse_operators


@dataclass(frozen=True)
class GpioConfig:
    green: int | str
    amber: int | str
    red: int | str
    buzzer: int | str | None = None
    ack_button: int | str | None = None
    doors: dict[str, int | str] = field(default_factory=dict)  # door sensor id -> input pin


@dataclass(frozen=True)
class StationConfig:
    units: dict[str, UnitConfig] = field(default_factory=dict)
    inventory: InventoryConfig = field(default_factory=InventoryConfig)
    power_gap_s: int = 300
    heartbeat_s: int = 60
    gpio: GpioConfig | None = None
    operators: dict[str, Operator] = field(default_factory=dict)  # badge -> operator
    custody: CustodyConfig = field(default_factory=CustodyConfig)


def parse_station(raw: dict[str, Any], base: Path, *, repeat_weights_recorded: bool | None = None) -> StationConfig:
    """The station's sections of the whole config table ``raw``. ``repeat_weights_recorded``
    is ``filters.record_repeat_weights``: custody must know whether repeated weights were
    filtered out (None: leave custody's own default)."""
    units = parse_units(raw.get("units", []))  # each raises ConfigError naming its key
    inventory = parse_inventory(raw.get("inventory", {}))
    operators = parse_operators(raw.get("operators", []))
    custody = parse_custody(raw.get("custody"))
    if repeat_weights_recorded is not None:
        custody = dataclasses.replace(custody, repeat_weights_recorded=repeat_weights_recorded)
    al = Table(raw.get("alarms", {}), "alarms", base)
    power_gap_s = al.get("power_gap_s", int, 300, check=positive, why="must be positive")
    heartbeat_s = al.get("heartbeat_s", int, 60, check=lambda v: 0 < v < power_gap_s,
                         why="must be positive and below alarms.power_gap_s")
    al.done()
    gpio = None
    if "gpio" in raw:
        g = Table(raw["gpio"], "gpio", base)
        pin = (int, str)
        doors = g.get("doors", dict, {})
        for k, v in doors.items():
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise ConfigError(f"gpio.doors.{k}", f"must be a pin number or name, got {v!r}")
        gpio = GpioConfig(green=g.get("green", pin), amber=g.get("amber", pin), red=g.get("red", pin),
                          buzzer=g.get("buzzer", pin, None), ack_button=g.get("ack_button", pin, None),
                          doors=dict(doors))
        g.done()
    return StationConfig(units=units, inventory=inventory, power_gap_s=power_gap_s, heartbeat_s=heartbeat_s,
                         gpio=gpio, operators=operators, custody=custody)
