"""A unit's profile as alarm rules: one ``Watch`` per (rule, sensor), ready for the engine.

This is where the policy lives (which rules a fridge gets, which readings count, what the
alarm body reports); the engine only runs watches. Build ``Watch``es by hand for a rule the
profiles do not have, e.g. ``Watch("heat", ..., AtOrAbove(45_000), Sustained(3_600_000), ...)``
for the WHO >= 45 °C for 1 h indicator, and pass them to ``AlarmEngine(watches=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.rules.conditions import (
    AnyOf,
    AtOrAbove,
    AtOrBelow,
    Band,
    Cumulative,
    Rule,
    Silent,
    Sustained,
)
from gateway.rules.units import UnitConfig


@dataclass(frozen=True, slots=True)
class Watch:
    """One rule applied to one sensor of one unit; ``threshold``/``value_unit`` go in bodies."""

    alarm: str
    unit: str
    sensor: str
    kind: str  # record kind observed: "temperature" or "door"
    band: Band
    rule: Rule
    threshold: int
    value_unit: str
    escalate_ms: int
    severity: str = "alarm"
    worse: int = 0  # +1/-1: keep the max/min reading as the alarm's "extreme"
    keep_ms: int = 0  # history a rule needs (the cumulative window)
    detail: tuple[tuple[str, int], ...] = ()


def watches_for(u: UnitConfig) -> list[Watch]:
    """The standard rule set of a unit: per probe high, low, freeze (if the profile has a
    freeze limit), cumulative out of range (either side) and silence; door if it has one."""
    s, esc = u.settings, u.settings.escalate_s * 1000
    high, low = AtOrAbove(u.high_mc), AtOrBelow(u.low_mc)
    win, lim, quiet = s.cumulative_window_s * 1000, s.cumulative_limit_s * 1000, s.silence_s * 1000
    out: list[Watch] = []

    def temp(p: str, alarm: str, band: Band, rule: Rule, threshold: int, value_unit: str,
             worse: int = 0, keep_ms: int = 0, **detail: int) -> Watch:
        return Watch(alarm, u.id, p, "temperature", band, rule, threshold, value_unit, esc,
                     worse=worse, keep_ms=keep_ms, detail=tuple(detail.items()))

    for p in u.probes:
        out.append(temp(p, "high", high, Sustained(s.high_delay_s * 1000), u.high_mc, "mC", 1,
                        delay_ms=s.high_delay_s * 1000))
        out.append(temp(p, "low", low, Sustained(s.low_delay_s * 1000), u.low_mc, "mC", -1,
                        delay_ms=s.low_delay_s * 1000))
        if u.freeze_mc is not None:
            out.append(temp(p, "freeze", AtOrBelow(u.freeze_mc), Sustained(s.freeze_delay_s * 1000),
                            u.freeze_mc, "mC", -1, delay_ms=s.freeze_delay_s * 1000))
        out.append(temp(p, "cumulative", AnyOf((low, high)), Cumulative(win, lim), lim, "ms",
                        keep_ms=win, window_ms=win))
        out.append(temp(p, "silent", high, Silent(quiet), quiet, "ms"))  # band unused by Silent
    if u.door:
        delay = s.door_open_s * 1000
        out.append(Watch("door", u.id, u.door, "door", AtOrAbove(1), Sustained(delay), 1, "", esc,
                         detail=(("delay_ms", delay),)))
    return out
