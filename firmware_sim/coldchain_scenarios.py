"""What one storage unit reports over a scenario: a pure list of (time_ms, sensor, kind, value).

Built on ``dynamics.ProbeModel`` (two-node thermal model, buffered probe, thermostat) and
the fault schedules of ``scenarios.schedule_for``, so alarm rules are tested against the
same physics the simulated fleet publishes. Pure: no clock, no I/O; the seed fixes the
noise and the staff's random door openings, so a scenario is exactly reproducible.

The probe reports every ``interval_ms``; the door contact reports its state at the start
and on every change (checked every ``door_step_ms``). While the gateway is down
(``gateway_down``) nothing is received; a door state that changed meanwhile is reported
when the gateway is back, as a contact re-sending its state would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .dynamics import APPLIANCES, HOUR_MS, Interval, ProbeModel, Schedule
from .scenarios import ScenarioTiming, schedule_for

Reading = tuple[int, str, str, int]  # (time_ms, sensor, kind, value): value mC or door 0/1


@dataclass(frozen=True, slots=True)
class Station:
    probe: str = "probe-1"
    door: str | None = "door-1"
    appliance: str = "fridge"  # a key of dynamics.APPLIANCES
    interval_ms: int = 60_000
    door_step_ms: int = 5_000
    seed: int = 1
    ambient_c: float = 25.0


def _down(intervals: tuple[Interval, ...], t: int) -> bool:
    return any(s <= t and (e is None or t < e) for s, e in intervals)


def simulate(
    schedule: Schedule,
    start_ms: int,
    duration_ms: int,
    station: Station = Station(),
    gateway_down: tuple[Interval, ...] = (),
) -> list[Reading]:
    """Readings of one unit from ``start_ms`` for ``duration_ms`` (schedule times are relative)."""
    if station.interval_ms % station.door_step_ms:
        raise ValueError(
            f"interval_ms {station.interval_ms} is not a multiple of door_step_ms "
            f"{station.door_step_ms}"
        )
    model = ProbeModel(
        APPLIANCES[station.appliance],
        schedule,
        random.Random(station.seed),
        ambient_c=station.ambient_c,
    )
    out: list[Reading] = []
    sent_door: bool | None = None
    for t in range(0, duration_ms, station.door_step_ms):
        model.advance(t)
        if _down(gateway_down, t):
            continue
        if station.door is not None and (door := model.door_open_at(t)) != sent_door:
            out.append((start_ms + t, station.door, "door", int(door)))
            sent_door = door
        if t % station.interval_ms == 0 and not schedule.is_silent(t):
            out.append((start_ms + t, station.probe, "temperature", model.sample(t).temperature_mc))
    return out


def normal_day(start_ms: int, station: Station = Station(), hours: int = 24) -> list[Reading]:
    """A day of normal life: thermostat cycling and brief door openings by staff."""
    return simulate(schedule_for("normal", 1), start_ms, hours * HOUR_MS, station)


def door_left_open(
    start_ms: int,
    station: Station = Station(),
    *,
    onset_ms: int = 2 * HOUR_MS,
    open_ms: int = 3 * HOUR_MS,
    hours: int = 10,
) -> list[Reading]:
    timing = ScenarioTiming(onset_ms=onset_ms, door_open_ms=open_ms)
    return simulate(schedule_for("door", 1, timing), start_ms, hours * HOUR_MS, station)


def compressor_failure(
    start_ms: int, station: Station = Station(), *, onset_ms: int = 2 * HOUR_MS, hours: int = 10
) -> list[Reading]:
    timing = ScenarioTiming(onset_ms=onset_ms)
    return simulate(schedule_for("compressor", 1, timing), start_ms, hours * HOUR_MS, station)


def power_cut(
    start_ms: int,
    station: Station = Station(),
    *,
    onset_ms: int = 2 * HOUR_MS,
    off_ms: int = 4 * HOUR_MS,
    hours: int = 12,
    gateway_down: bool = False,
) -> list[Reading]:
    """The unit loses power; with ``gateway_down`` the gateway (same circuit) hears nothing."""
    timing = ScenarioTiming(onset_ms=onset_ms, power_off_ms=off_ms)
    down: tuple[Interval, ...] = ((onset_ms, onset_ms + off_ms),) if gateway_down else ()
    return simulate(schedule_for("power_cut", 1, timing), start_ms, hours * HOUR_MS, station, down)


def probe_silent(
    start_ms: int, station: Station = Station(), *, onset_ms: int = 2 * HOUR_MS, hours: int = 6
) -> list[Reading]:
    """The probe stops reporting at ``onset_ms`` (battery, radio) and never comes back."""
    timing = ScenarioTiming(onset_ms=onset_ms)
    return simulate(schedule_for("silent", 1, timing), start_ms, hours * HOUR_MS, station)


SCENARIOS: dict[str, Callable[..., list[Reading]]] = {
    "normal_day": normal_day,
    "door_left_open": door_left_open,
    "compressor_failure": compressor_failure,
    "power_cut": power_cut,
    "probe_silent": probe_silent,
}
