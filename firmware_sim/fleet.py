"""A fleet of simulated probes: decides, tick by tick, exactly which bytes go on which topic.

No network here (the publisher moves the bytes), so a test can run a whole day of a fleet,
faults included, in memory. The only I/O is the counter files, because a counter handed out
must be on disk before the message that carries it can leave.

Every sensor publishes one good message per tick unless its scenario made it silent.
Faults are *extra* messages injected right after a sensor's good message, each kind with
its own probability and random stream; so turning faults on never thins the good series
(rules such as sensor silence see the same readings) and changing one probability never
changes where the other kinds land.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .counter import DEFAULT_LEASE, CounterStore
from .dynamics import APPLIANCES, FREEZER, FRIDGE, Appliance, ProbeModel, Schedule
from .errors import SimConfigError
from .faults import (
    FAULT_KINDS,
    badsig_payload,
    garbage_payload,
    huge_payload,
    malformed_payload,
)
from .message import Reading, build_message, door, temperature
from .scenarios import ScenarioTiming, schedule_for

DEFAULT_TOPIC_PREFIX = "traceseal/sensors"
UNKNOWN_SENSOR = "unenrolled-1"
REPLAY_HISTORY = 32  # how far back a replay may reach, per sensor


def topic_for(prefix: str, sensor: str) -> str:
    return f"{prefix}/{sensor}/reading"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish, labelled with what it is so stats can count it."""

    kind: str  # "good" or one of FAULT_KINDS
    sensor: str  # the sensor id in the topic
    topic: str
    payload: bytes
    ctr: int | None  # counter carried, when there is one
    detail: str = ""  # e.g. which malformed variant


@dataclass(frozen=True, slots=True)
class Tick:
    t_ms: int  # simulated sensor clock of this tick, Unix ms
    messages: list[Outgoing]
    silent: tuple[str, ...]  # sensors that said nothing this tick


@dataclass(frozen=True, slots=True)
class FleetConfig:
    start_ms: int  # simulated Unix ms of tick 0
    step_ms: int  # simulated time between two messages of one sensor
    scenario: str = "normal"
    appliance: str = "mixed"  # fridge | freezer | mixed (odd ids fridges, even freezers)
    timing: ScenarioTiming = field(default_factory=ScenarioTiming)
    affected: tuple[int, ...] = (1,)
    faults: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    counter_lease: int = DEFAULT_LEASE


def appliance_for(choice: str, index: int) -> Appliance:
    if choice == "mixed":
        return FRIDGE if index % 2 == 1 else FREEZER
    if choice not in APPLIANCES:
        raise SimConfigError(f"unknown appliance {choice!r}; choose fridge, freezer or mixed")
    return APPLIANCES[choice]


@dataclass(slots=True)
class Probe:
    """One enrolled probe: identity, counter, thermal model and what it already sent."""

    sensor: str
    index: int
    key: Ed25519PrivateKey
    counter: CounterStore
    model: ProbeModel
    schedule: Schedule
    has_door: bool  # fridges carry a door contact, freezers only a probe
    history: deque[bytes] = field(default_factory=lambda: deque(maxlen=REPLAY_HISTORY))


class Fleet:
    """Probes ``keys`` (ordered, 1-based by position) behaving as ``config`` says."""

    def __init__(
        self, keys: list[tuple[str, Ed25519PrivateKey]], key_dir: Path, config: FleetConfig
    ) -> None:
        if config.step_ms <= 0:
            raise SimConfigError(f"step between messages must be > 0 ms, got {config.step_ms}")
        unknown = set(config.faults) - set(FAULT_KINDS)
        if unknown:
            raise SimConfigError(f"unknown fault kinds {sorted(unknown)}")
        self.config = config
        self.probes: list[Probe] = []
        for index, (sensor, key) in enumerate(keys, start=1):
            appliance = appliance_for(config.appliance, index)
            schedule = schedule_for(config.scenario, index, config.timing, config.affected)
            rng = random.Random(f"{config.seed}/dynamics/{sensor}")
            self.probes.append(Probe(
                sensor=sensor,
                index=index,
                key=key,
                counter=CounterStore(Path(key_dir) / f"{sensor}.ctr", config.counter_lease),
                model=ProbeModel(appliance, schedule, rng),
                schedule=schedule,
                has_door=appliance is FRIDGE,
            ))
        self._fault_rng = {k: random.Random(f"{config.seed}/fault/{k}") for k in FAULT_KINDS}
        seed_bytes = hashlib.sha256(f"traceseal-sim/unknown/{config.seed}".encode()).digest()
        self._intruder = Ed25519PrivateKey.from_private_bytes(seed_bytes)
        self._intruder_ctr = itertools.count(1)

    def tick(self, k: int) -> Tick:
        """Messages of tick ``k`` (0-based); ticks must be asked for in increasing order."""
        elapsed_ms = k * self.config.step_ms
        t_ms = self.config.start_ms + elapsed_ms
        out: list[Outgoing] = []
        silent: list[str] = []
        for probe in self.probes:
            if probe.schedule.is_silent(elapsed_ms):
                silent.append(probe.sensor)
                continue
            sample = probe.model.sample(elapsed_ms)
            readings = [temperature(sample.temperature_mc)]
            if probe.has_door:
                readings.append(door(sample.door_open))
            ctr = probe.counter.take()
            payload = build_message(probe.key, probe.sensor, ctr, t_ms, readings)
            out.append(Outgoing("good", probe.sensor, self._topic(probe.sensor), payload, ctr))
            out.extend(self._faults(probe, t_ms, readings))
            probe.history.append(payload)  # after the faults: a replay is of an *earlier* one
        return Tick(t_ms, out, tuple(silent))

    def _topic(self, sensor: str) -> str:
        return topic_for(self.config.topic_prefix, sensor)

    def _faults(self, probe: Probe, t_ms: int, readings: list[Reading]) -> list[Outgoing]:
        out: list[Outgoing] = []
        topic = self._topic(probe.sensor)
        for kind in FAULT_KINDS:
            rng = self._fault_rng[kind]
            if rng.random() >= self.config.faults.get(kind, 0.0):
                continue
            if kind == "garbage":
                out.append(Outgoing(kind, probe.sensor, topic, garbage_payload(rng), None))
            elif kind == "badsig":
                ctr = probe.counter.take()
                payload = badsig_payload(probe.key, probe.sensor, ctr, t_ms, readings, rng)
                out.append(Outgoing(kind, probe.sensor, topic, payload, ctr))
            elif kind == "replay":
                if probe.history:  # nothing sent yet: nothing to replay, nothing counted
                    old = probe.history[rng.randrange(len(probe.history))]
                    out.append(Outgoing(kind, probe.sensor, topic, old, None))
            elif kind == "unknown":
                ctr = next(self._intruder_ctr)
                payload = build_message(self._intruder, UNKNOWN_SENSOR, ctr, t_ms, readings)
                out.append(Outgoing(kind, UNKNOWN_SENSOR, self._topic(UNKNOWN_SENSOR), payload,
                                    ctr))
            elif kind == "malformed":
                ctr = probe.counter.take()
                payload, variant = malformed_payload(
                    probe.key, probe.sensor, ctr, t_ms, readings, rng)
                out.append(Outgoing(kind, probe.sensor, topic, payload, ctr, variant))
            else:  # huge
                ctr = probe.counter.take()
                payload = huge_payload(probe.key, probe.sensor, ctr, t_ms, readings)
                out.append(Outgoing(kind, probe.sensor, topic, payload, ctr))
        return out
