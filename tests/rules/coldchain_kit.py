"""Test helpers for the rules: a stand-in sealer/journal and a gateway loop, both in memory.

The sealer does what ``gateway.ingest.seal.Sealer`` checks of a body (no envelope keys) plus what
the record contract demands (JSON, integers only), so a rule emitting a float or a
reserved key fails here exactly as it would in the pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.testing.bodies import assert_body_ok

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000
HOUR = 60 * MIN


@dataclass
class Journal:
    gateway: str = "station-01"
    records: list[dict[str, Any]] = field(default_factory=list)

    def seal(self, body: dict[str, Any], time_ms: int, synced: bool = True) -> dict[str, Any]:
        assert_body_ok(body)
        rec = {
            "v": 1,
            "gateway": self.gateway,
            "seq": len(self.records),
            "time_ms": time_ms,
            "clock_synced": synced,
            **body,
        }
        self.records.append(json.loads(json.dumps(rec)))  # what a reader of the journal gets back
        return self.records[-1]

    def reading(
        self, t: int, sensor: str, kind: str, value: int, synced: bool = True
    ) -> dict[str, Any]:
        unit = "mC" if kind == "temperature" else ""
        return self.seal(
            {
                "type": "reading",
                "sensor": sensor,
                "kind": kind,
                "value": value,
                "unit": unit,
                "source": {
                    "adapter": "traceseal",
                    "transport": "mqtt",
                    "topic": f"t/{sensor}",
                    "auth": "ed25519",
                },
            },
            t,
            synced,
        )

    def scan(self, t: int, scanner: str, **attrs: str) -> dict[str, Any]:
        return self.seal(
            {
                "type": "reading",
                "sensor": scanner,
                "kind": "scan",
                "attrs": attrs,
                "source": {
                    "adapter": "gs1",
                    "transport": "serial",
                    "topic": "/dev/ttyACM0",
                    "auth": "allowlist",
                },
            },
            t,
        )

    def of_type(self, typ: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["type"] == typ]


class Rule(Protocol):
    def feed(self, record: dict[str, Any], now_ms: int) -> list[dict[str, Any]]: ...

    def tick(self, now_ms: int) -> list[dict[str, Any]]: ...


@dataclass
class Station:
    """The lead's writer loop in miniature: seal, feed every sealed record to every rule,
    seal what the rules return (and feed that back too), tick."""

    rules: Sequence[Rule]
    journal: Journal = field(default_factory=Journal)

    def _settle(self, bodies: list[dict[str, Any]], t: int, synced: bool = True) -> None:
        while bodies:
            more: list[dict[str, Any]] = []
            for b in bodies:
                rec = self.journal.seal(b, t, synced)
                for r in self.rules:
                    more += r.feed(rec, t)
            bodies = more

    def put(self, body: dict[str, Any], t: int, synced: bool = True) -> dict[str, Any]:
        rec = self.journal.seal(body, t, synced)
        out: list[dict[str, Any]] = []
        for r in self.rules:
            out += r.feed(rec, t)
        self._settle(out, t, synced)
        return rec

    def reading(self, t: int, sensor: str, kind: str, value: int, synced: bool = True) -> None:
        unit = "mC" if kind == "temperature" else ""
        self.put(
            {"type": "reading", "sensor": sensor, "kind": kind, "value": value, "unit": unit},
            t,
            synced,
        )

    def tick(self, t: int) -> None:
        out: list[dict[str, Any]] = []
        for r in self.rules:
            out += r.tick(t)
        self._settle(out, t)

    def idle(self, from_ms: int, to_ms: int, tick_ms: int = 10_000) -> None:
        """A running gateway with nothing arriving: ticks every ``tick_ms`` up to ``to_ms``."""
        for t in range(from_ms, to_ms + 1, tick_ms):
            self.tick(t)

    def run(
        self,
        readings: Iterable[tuple[int, str, str, int]],
        tick_ms: int = 10_000,
        until_ms: int | None = None,
    ) -> None:
        """Feed scenario readings in time order, ticking every ``tick_ms`` in between."""
        next_tick: int | None = None
        for t, sensor, kind, value in readings:
            if next_tick is None:
                next_tick = t
            while next_tick < t:
                self.tick(next_tick)
                next_tick += tick_ms
            self.reading(t, sensor, kind, value)
        while until_ms is not None and next_tick is not None and next_tick <= until_ms:
            self.tick(next_tick)
            next_tick += tick_ms


def transitions(records: Iterable[dict[str, Any]], t0: int = T0) -> list[tuple[str, str, int]]:
    """(alarm, state, minutes after t0, to the ms as a float only if not whole) of alarm records."""
    out = []
    for r in records:
        if r["type"] == "alarm":
            out.append((r["alarm"], r["state"], r["at_ms"] - t0))
    return out
