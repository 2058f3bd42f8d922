"""Named fault scenarios: which probes misbehave, how, and when (simulated time).

A scenario only affects the probes listed in ``affected`` (default: the first one); the
others run ``normal`` so rules can be tested against a healthy neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dynamics import HOUR_MS, Schedule
from .errors import SimConfigError

SCENARIOS = ("normal", "door", "compressor", "power_cut", "silent")


@dataclass(frozen=True, slots=True)
class ScenarioTiming:
    """When the event starts and how long a temporary one lasts, ms after the start."""

    onset_ms: int = 2 * HOUR_MS
    door_open_ms: int = 3 * HOUR_MS  # door "left open": long enough to leave 2-8 °C
    power_off_ms: int = 4 * HOUR_MS


def schedule_for(
    scenario: str,
    sensor_index: int,
    timing: ScenarioTiming = ScenarioTiming(),
    affected: tuple[int, ...] = (1,),
) -> Schedule:
    """Schedule of probe ``sensor_index`` (1-based) under ``scenario``."""
    if scenario not in SCENARIOS:
        raise SimConfigError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    if scenario == "normal" or sensor_index not in affected:
        return Schedule()
    on = timing.onset_ms
    if scenario == "door":
        return Schedule(door_open=((on, on + timing.door_open_ms),))
    if scenario == "compressor":
        return Schedule(compressor_failed=((on, None),))
    if scenario == "power_cut":
        return Schedule(power_off=((on, on + timing.power_off_ms),))
    return Schedule(silent=((on, None),))
