"""Storage units (fridge, freezer, ultra-cold, custom) and their alarm settings, from ``[[units]]``.

A unit is one cold appliance: the probes inside it, an optional door sensor, the scanners
that book stock in and out of it, and the settings its alarm rules use. Profiles carry the
ranges (CDC: fridge 2-8 °C, freezer -50 to -15 °C; ultra-cold -80 to -60 °C); every
setting can be overridden per unit. Parsing is strict: an error names the exact key
(``units[0].profile: unknown profile 'fridgee'``) because a typo in an alarm setting
silently weakens monitoring. Every problem, wrong types included, is a
``ConfigError(key, problem)``: callers catch one error kind for "this configuration is
wrong" and never parse the key out of a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from gateway.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Profile:
    """Acceptable range in milli-°C. A reading EQUAL to a limit is out of range (as WHO's)."""

    name: str
    low_mc: int
    high_mc: int
    freeze_mc: int | None  # freeze-risk limit; None: no freeze rule (frozen storage)


PROFILES: dict[str, Profile] = {
    "fridge": Profile("fridge", 2_000, 8_000, -500),  # WHO freeze indicator: <= -0.5 °C
    "freezer": Profile("freezer", -50_000, -15_000, None),
    "ultra-cold": Profile("ultra-cold", -80_000, -60_000, None),
}
CUSTOM = "custom"  # no defaults: low_mc and high_mc are required


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """Durations in seconds. Defaults are a starting point; set them from the site's SOP.

    cumulative_*: catches repeated short excursions that each stay under the delays.
    silence_s: CDC wants a reading at least every 30 minutes.
    escalate_s: an alarm still present this long after it was raised escalates.
    """

    high_delay_s: int = 600
    low_delay_s: int = 600
    freeze_delay_s: int = 3_600  # WHO 30-day recorders: <= -0.5 °C for 60 min
    cumulative_window_s: int = 86_400
    cumulative_limit_s: int = 3_600
    silence_s: int = 1_800
    door_open_s: int = 300
    escalate_s: int = 1_800


POSITIVE = frozenset({"cumulative_window_s", "cumulative_limit_s", "silence_s"})
SETTING_KEYS = tuple(f.name for f in fields(RuleSettings))
LIMIT_KEYS = ("low_mc", "high_mc", "freeze_mc")
KEYS = ("id", "profile", "probes", "door", "scanners", "scanner_in", "scanner_out",
        *LIMIT_KEYS, *SETTING_KEYS)


@dataclass(frozen=True, slots=True)
class UnitConfig:
    id: str
    profile: str
    low_mc: int
    high_mc: int
    freeze_mc: int | None
    probes: tuple[str, ...]
    door: str | None = None
    scanners: tuple[str, ...] = ()  # direction from mode (command barcode or button)
    scanner_in: str | None = None  # dedicated direction scanners
    scanner_out: str | None = None
    settings: RuleSettings = RuleSettings()


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _sensor_id(where: str, x: Any) -> str:
    if not isinstance(x, str) or not x.strip():
        raise ConfigError(where, f"expected a non-empty sensor id string, got {x!r}")
    return x


def _int(where: str, x: Any, minimum: int | None = None) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise ConfigError(where, f"expected an integer, got {x!r}")
    if minimum is not None and x < minimum:
        raise ConfigError(where, f"must be >= {minimum}, got {x}")
    return x


def _parse_one(where: str, t: Mapping[str, Any]) -> UnitConfig:
    for k in t:
        if k not in KEYS:
            raise ConfigError(f"{where}.{k}", f"unknown key{_did_you_mean(str(k), KEYS)}")
    uid = t.get("id")
    if not isinstance(uid, str) or not uid.strip():
        raise ConfigError(f"{where}.id", f"required, a non-empty string (got {uid!r})")
    prof = t.get("profile")
    if prof != CUSTOM and prof not in PROFILES:
        choices = sorted([*PROFILES, CUSTOM])
        hint = _did_you_mean(str(prof), choices) or f"; choose one of {', '.join(choices)}"
        raise ConfigError(f"{where}.profile", f"unknown profile {prof!r}{hint}")
    limits: dict[str, int | None] = {}
    for k in LIMIT_KEYS:
        if k in t:
            limits[k] = _int(f"{where}.{k}", t[k])
    if prof == CUSTOM:
        for k in ("low_mc", "high_mc"):
            if k not in limits:
                raise ConfigError(f"{where}.{k}", "required for profile 'custom'")
        base = Profile(CUSTOM, 0, 0, None)
    else:
        base = PROFILES[prof]
    low = limits.get("low_mc", base.low_mc)
    high = limits.get("high_mc", base.high_mc)
    freeze = limits.get("freeze_mc", base.freeze_mc)
    assert low is not None and high is not None
    if low >= high:
        raise ConfigError(f"{where}.low_mc", f"{low} must be below high_mc {high}")
    if freeze is not None and freeze >= high:
        raise ConfigError(f"{where}.freeze_mc", f"{freeze} must be below high_mc {high}")
    probes = t.get("probes")
    if not isinstance(probes, list) or not probes:
        raise ConfigError(f"{where}.probes", "required, a non-empty list of sensor ids "
                                                f"(got {probes!r})")
    probe_ids = tuple(_sensor_id(f"{where}.probes[{i}]", p) for i, p in enumerate(probes))
    door = _sensor_id(f"{where}.door", t["door"]) if "door" in t else None
    scanners_raw = t.get("scanners", [])
    if not isinstance(scanners_raw, list):
        raise ConfigError(
            f"{where}.scanners", f"expected a list of sensor ids, got {scanners_raw!r}")
    scanners = tuple(_sensor_id(f"{where}.scanners[{i}]", s) for i, s in enumerate(scanners_raw))
    s_in = _sensor_id(f"{where}.scanner_in", t["scanner_in"]) if "scanner_in" in t else None
    s_out = _sensor_id(f"{where}.scanner_out", t["scanner_out"]) if "scanner_out" in t else None
    settings = RuleSettings()
    for k in SETTING_KEYS:
        if k in t:
            minimum = 1 if k in POSITIVE else 0
            settings = replace(settings, **{k: _int(f"{where}.{k}", t[k], minimum)})
    if settings.cumulative_limit_s > settings.cumulative_window_s:
        raise ConfigError(f"{where}.cumulative_limit_s", f"{settings.cumulative_limit_s} exceeds "
                         f"cumulative_window_s {settings.cumulative_window_s}")
    return UnitConfig(uid, str(prof), low, high, freeze, probe_ids, door, scanners, s_in, s_out,
                      settings)


def _sensors(where: str, u: UnitConfig) -> list[tuple[str, str]]:
    out = [(f"{where}.probes[{i}]", p) for i, p in enumerate(u.probes)]
    out += [(f"{where}.door", u.door)] if u.door else []
    out += [(f"{where}.scanners[{i}]", s) for i, s in enumerate(u.scanners)]
    fixed = (("scanner_in", u.scanner_in), ("scanner_out", u.scanner_out))
    out += [(f"{where}.{k}", s) for k, s in fixed if s]
    return out


def parse_units(raw: Any) -> dict[str, UnitConfig]:
    """``[[units]]`` tables (as ``tomllib`` gives them) → units by id.

    Raises ConfigError naming the key, e.g. ``units[0].profile: unknown profile 'fridgee'``.
    """
    if not isinstance(raw, list):
        raise ConfigError(
            "units", f"expected a list of [[units]] tables, got {type(raw).__name__}")
    units: dict[str, UnitConfig] = {}
    owner: dict[str, str] = {}  # sensor id -> unit id: a sensor reports for exactly one unit
    for i, t in enumerate(raw):
        where = f"units[{i}]"
        if not isinstance(t, Mapping):
            raise ConfigError(where, f"expected a table, got {type(t).__name__}")
        u = _parse_one(where, t)
        if u.id in units:
            raise ConfigError(f"{where}.id", f"duplicate unit id {u.id!r}")
        for key, sensor in _sensors(where, u):
            if sensor in owner:
                raise ConfigError(key, f"sensor {sensor!r} already belongs to unit "
                                 f"{owner[sensor]!r}")
            owner[sensor] = u.id
        units[u.id] = u
    return units
