"""Thermal behaviour of a fridge or freezer and its buffered probe, as integer milli-°C.

Pure: time is passed in (milliseconds since the scenario started) and randomness comes from
the ``random.Random`` you hand over, so a seed reproduces a run exactly.

Model: two thermal nodes, the cabinet air (small) and its contents (large). Heat leaks from
the room into the air (much faster with the door open); a running compressor pulls the air
toward its coil; the air exchanges heat with the contents. A thermostat with hysteresis on
the air switches the compressor, giving the usual sawtooth. The two nodes are why a power
cut warms the cabinet slowly (the contents hold the cold) while a compressor cycle is
minutes long. Each node is updated with the exact exponential for constant conditions
(operator splitting), so a substep can never overshoot. The probe sits in a glycol buffer
like vaccine-fridge probes: it lags the air, so short door openings barely show.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

SUBSTEP_MS = 5_000
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


@dataclass(frozen=True, slots=True)
class Appliance:
    """Physical constants of one cold appliance (°C and seconds)."""

    name: str
    setpoint_c: float
    band_c: float  # thermostat hysteresis half-width around the setpoint
    coil_c: float  # evaporator temperature while the compressor runs
    tau_cool_s: float  # air <-> coil, compressor running
    tau_leak_s: float  # air <-> room through the closed cabinet
    tau_door_s: float  # extra air <-> room while the door is open
    tau_load_s: float  # air <-> contents, seen from the air
    load_ratio: float  # heat capacity of the contents / heat capacity of the air
    tau_probe_s: float  # lag of the buffered probe behind the air
    noise_mc: float  # standard deviation of probe noise, milli-°C


# Fridge: CDC range 2-8 °C, aim 5. At a 25 °C room: ~4 min on / ~10 min off; a power cut
# leaves 2-8 °C after ~1 h and reaches ~11 °C after 4 h; a door left open holds ~10 °C.
FRIDGE = Appliance("fridge", 5.0, 1.5, -20.0, 20 * 60, 60 * 60, 8 * 60, 10 * 60, 20.0, 5 * 60, 20.0)
# Freezer: −25 to −15 °C, aim −20; better insulated, colder coil, more frozen mass.
FREEZER = Appliance(
    "freezer", -20.0, 2.0, -45.0, 15 * 60, 90 * 60, 10 * 60, 10 * 60, 30.0, 10 * 60, 30.0
)
APPLIANCES = {a.name: a for a in (FRIDGE, FREEZER)}

Interval = tuple[int, int | None]  # [start_ms, end_ms), end None = until the end of time


def _within(intervals: tuple[Interval, ...], t_ms: int) -> bool:
    return any(s <= t_ms and (e is None or t_ms < e) for s, e in intervals)


@dataclass(frozen=True, slots=True)
class Schedule:
    """Forced conditions over time (ms since scenario start); the rest is normal life."""

    door_open: tuple[Interval, ...] = ()
    power_off: tuple[Interval, ...] = ()
    compressor_failed: tuple[Interval, ...] = ()
    silent: tuple[Interval, ...] = ()
    random_doors: bool = True  # staff open the door briefly now and then

    def door_forced(self, t_ms: int) -> bool:
        return _within(self.door_open, t_ms)

    def powered(self, t_ms: int) -> bool:
        return not _within(self.power_off, t_ms)

    def compressor_ok(self, t_ms: int) -> bool:
        return not _within(self.compressor_failed, t_ms)

    def is_silent(self, t_ms: int) -> bool:
        """True while the probe publishes nothing (dead battery, radio gone)."""
        return _within(self.silent, t_ms)


@dataclass(frozen=True, slots=True)
class Sample:
    """What the probe reports at one instant."""

    temperature_mc: int
    door_open: bool


@dataclass(slots=True)
class ProbeModel:
    """State of one appliance plus its probe, advanced to whatever time you ask for.

    Time only moves forward; ``sample(t_ms)`` integrates from the last time to ``t_ms``.
    """

    appliance: Appliance
    schedule: Schedule
    rng: random.Random
    ambient_c: float = 25.0
    door_mean_interval_ms: int = 2 * HOUR_MS
    t_ms: int = 0
    air_c: float = field(init=False)
    load_c: float = field(init=False)
    probe_c: float = field(init=False)
    demand: bool = field(init=False)  # thermostat asks for cooling
    running: bool = field(init=False)  # compressor actually running
    _next_door_ms: int = field(init=False)
    _door_until_ms: int = field(init=False, default=-1)

    def __post_init__(self) -> None:
        a = self.appliance
        # Start somewhere in the normal cycle, not exactly at the setpoint.
        self.air_c = self.rng.uniform(a.setpoint_c - a.band_c, a.setpoint_c + a.band_c)
        self.load_c = a.setpoint_c
        self.probe_c = self.air_c
        self.demand = self.rng.random() < 0.3
        self.running = False
        self._next_door_ms = self.t_ms + self._door_gap()

    def _door_gap(self) -> int:
        return max(MINUTE_MS, int(self.rng.expovariate(1.0 / self.door_mean_interval_ms)))

    def door_open_at(self, t_ms: int) -> bool:
        return self.schedule.door_forced(t_ms) or t_ms < self._door_until_ms

    def _random_doors(self, t_ms: int) -> None:
        if not self.schedule.random_doors:
            return
        while t_ms >= self._next_door_ms:
            start = self._next_door_ms
            self._door_until_ms = start + self.rng.randint(10_000, 60_000)
            self._next_door_ms = start + self._door_gap()

    def _substep(self, dt_ms: int) -> None:
        a, s, t = self.appliance, self.schedule, self.t_ms
        self._random_doors(t)
        self.running = self.demand and s.powered(t) and s.compressor_ok(t)
        k_room = 1.0 / a.tau_leak_s + (1.0 / a.tau_door_s if self.door_open_at(t) else 0.0)
        k_coil = 1.0 / a.tau_cool_s if self.running else 0.0
        k_load = 1.0 / a.tau_load_s
        k_sum = k_room + k_coil + k_load
        target = (self.ambient_c * k_room + a.coil_c * k_coil + self.load_c * k_load) / k_sum
        dt = dt_ms / 1000.0
        self.air_c = target + (self.air_c - target) * math.exp(-k_sum * dt)
        # Same heat flow, seen from a node load_ratio times heavier.
        k_back = k_load / a.load_ratio
        self.load_c = self.air_c + (self.load_c - self.air_c) * math.exp(-k_back * dt)
        self.probe_c = self.air_c + (self.probe_c - self.air_c) * math.exp(-dt / a.tau_probe_s)
        # The thermostat keeps asking during a power cut, so cooling resumes with power.
        if self.air_c >= a.setpoint_c + a.band_c:
            self.demand = True
        elif self.air_c <= a.setpoint_c - a.band_c:
            self.demand = False
        self.t_ms += dt_ms

    def advance(self, t_ms: int) -> None:
        """Integrate up to ``t_ms``; asking for an earlier time is a bug in the caller."""
        if t_ms < self.t_ms:
            raise ValueError(f"time went backwards: {t_ms} ms < model time {self.t_ms} ms")
        while self.t_ms < t_ms:
            self._substep(min(SUBSTEP_MS, t_ms - self.t_ms))

    def sample(self, t_ms: int) -> Sample:
        """The probe's reading at ``t_ms``: integer milli-°C with sensor noise."""
        self.advance(t_ms)
        noise = self.rng.gauss(0.0, self.appliance.noise_mc)
        return Sample(round(self.probe_c * 1000.0 + noise), self.door_open_at(t_ms))
