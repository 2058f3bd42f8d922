"""Test rig for custody: an in-memory gateway that parses, filters, seals and feeds back.

It does what the pipeline does with a custody station: raw device lines go through the
real adapters and the real ``ChangeFilter``; kept observations become reading records;
every record is fed, in seq order, to every custody consumer; the bodies they return are
sealed at once (checked like the sealer checks them: no envelope keys, no floats) and fed
back in turn. ``tick`` lets time pass.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from firmware_sim.waste_route import Line, WasteRoute, observations
from gateway.app.config import FilterConfig
from gateway.core.observation import Observation
from gateway.ingest.filters import ChangeFilter
from gateway.ingest.seal import RESERVED, reading_body
from gateway.rules.custody.events import CustodyStation
from gateway.rules.custody.operators import parse_operators
from gateway.rules.custody.reconcile import Reconciler
from gateway.rules.custody.settings import ReconcileConfig, parse_custody
from gateway.testing.bodies import assert_body_ok

SEC, MIN, HOUR = 1_000, 60_000, 3_600_000


class Consumer(Protocol):
    def feed(self, record: Any, now_ms: int) -> list[dict[str, Any]]: ...
    def tick(self, now_ms: int) -> list[dict[str, Any]]: ...


def strip(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in RESERVED}


@dataclass
class Rig:
    """One gateway: journal + consumers."""

    gateway: str
    consumers: list[Consumer]
    filter: ChangeFilter | None = field(default_factory=lambda: ChangeFilter(FilterConfig()))
    records: list[dict[str, Any]] = field(default_factory=list)

    def seal(self, body: dict[str, Any], t: int) -> dict[str, Any]:
        assert_body_ok(body)
        rec = {"v": 1, "gateway": self.gateway, "seq": len(self.records), "time_ms": t,
               "clock_synced": True, **body}
        self.records.append(json.loads(json.dumps(rec)))
        return self.records[-1]

    def _run(self, first: list[dict[str, Any]], t: int) -> None:
        queue = list(first)
        while queue:
            rec = queue.pop(0)
            for c in self.consumers:
                queue += [self.seal(b, t) for b in c.feed(rec, t)]

    def observe(self, obs: Observation, t: int, port: str = "p") -> None:
        if self.filter is not None and self.filter.keep(obs, t) is not None:
            return
        body = reading_body(obs, transport="serial", topic=port, authenticated=False, digest=None)
        self._run([self.seal(body, t)], t)

    def line(self, line: Line) -> None:
        for obs in observations(line):
            self.observe(obs, line.t_ms, line.port)

    def tick(self, t: int) -> None:
        for c in self.consumers:
            self._run([self.seal(b, t) for b in c.tick(t)], t)

    def of(self, typ: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == typ]


Event = tuple[str, int, Any]  # ("line", t, Line) | ("tick", t, None)


def events(lines: Sequence[Line], end_ms: int, tick_ms: int = 5 * SEC) -> list[Event]:
    """Lines in time order, with a tick every ``tick_ms`` in between and up to ``end_ms``."""
    out: list[Event] = []
    nxt = lines[0].t_ms if lines else end_ms
    for ln in sorted(lines, key=lambda x: x.t_ms):
        while nxt < ln.t_ms:
            out.append(("tick", nxt, None))
            nxt += tick_ms
        out.append(("line", ln.t_ms, ln))
    while nxt <= end_ms:
        out.append(("tick", nxt, None))
        nxt += tick_ms
    return out


def play(rig: Rig, evs: Sequence[Event]) -> None:
    for kind, t, ln in evs:
        if kind == "line":
            rig.line(ln)
        else:
            rig.tick(t)


def stations_for(route: WasteRoute, gateway: str | None) -> list[CustodyStation]:
    ops = parse_operators(route.operators_table())
    cfg = parse_custody(route.custody_table(gateway))
    return [CustodyStation(s, ops, cfg) for s in cfg.stations]


def route_rigs(route: WasteRoute, end_ms: int) -> dict[str, Rig]:
    """One rig per gateway of the route, each played through its own station's lines."""
    rigs = {}
    for plan in route.stations:
        rig = Rig(plan.gateway, list(stations_for(route, plan.gateway)))
        play(rig, events(plan.lines, end_ms))
        rigs[plan.gateway] = rig
    return rigs


def single_rig(route: WasteRoute, end_ms: int, rc: ReconcileConfig | None = None) -> Rig:
    """All three stations on one gateway with a live reconciler (a test bench, or a depot)."""
    rig = Rig("gw-bench", [*stations_for(route, None), Reconciler(rc)])
    play(rig, events([ln for p in route.stations for ln in p.lines], end_ms))
    return rig


def state(c: Any) -> tuple[Any, ...]:
    """What a custody consumer holds that a restart must rebuild from the journal alone (the
    reconciler's timer heap is left out: stale entries are dropped lazily, its live timers
    show as each bin's ``overdue_ms``)."""
    c = copy.deepcopy(c)
    if isinstance(c, Reconciler):
        return (c._now, c.views(), c.active(), c.duplicates, c.rejected, dict(c.counts), c.outbox.pending())
    d = c.desk
    return (c._now, d.session, d.last_end, d._refused, c._item, c._scales, c._recorded, c._last_done,
            c._dup_noticed, dict(c.counts), c.outbox.pending())


class Writer(Rig):
    """Seals as gateway/app/service.py's writer does: what one step produced is committed as one
    batch, then fed to every consumer; what they return is the next batch. After each batch
    (a point where the gateway can stop) the consumers' state is noted under the journal
    length: a replay of that prefix must rebuild exactly it, unsealed bodies included."""

    def __init__(self, gateway: str, make: Callable[[], list[Consumer]]) -> None:
        super().__init__(gateway, make(), filter=None)
        self.make = make
        self.after: dict[int, list[tuple[Any, ...]]] = {}

    def _run(self, first: list[dict[str, Any]], t: int) -> None:
        batch = list(first)
        while batch:
            out: list[dict[str, Any]] = []
            for rec in batch:
                for c in self.consumers:
                    out += c.feed(rec, t)
            self.after[len(self.records)] = [state(c) for c in self.consumers]
            batch = [self.seal(b, t) for b in out]

    def tick(self, t: int) -> None:
        self._run([self.seal(b, t) for c in self.consumers for b in c.tick(t)], t)

    def put(self, body: dict[str, Any], t: int) -> None:
        self._run([self.seal(body, t)], t)

    def restart(self, t: int) -> None:
        """As the service starts: replay, tick at the start time, then seal in one batch what
        the replay left unsealed, ``gateway_started`` and what the tick derived."""
        self.consumers = self.make()
        pending = [b for c in self.consumers for b in c.replay(copy.deepcopy(self.records))]  # type: ignore[attr-defined]
        due = [b for c in self.consumers for b in c.tick(t)]
        self._run([self.seal(b, t) for b in [*pending, {"type": "gateway_started"}, *due]], t)

    def check_replays(self) -> None:
        """Every noted prefix of the journal replays to the live state noted there."""
        for k, live in sorted(self.after.items()):
            again = self.make()
            for c, want in zip(again, live, strict=True):
                c.replay(copy.deepcopy(self.records[:k]))  # type: ignore[attr-defined]
                assert state(c) == want, f"{type(c).__name__} after record {k - 1}"
