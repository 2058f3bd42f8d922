"""Counts of what was published and acknowledged, by kind, so tests can assert exact numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .faults import FAULT_KINDS
from .fleet import Outgoing

KINDS = ("good", *FAULT_KINDS)


@dataclass(slots=True)
class SensorStats:
    good: int = 0
    first_ctr: int | None = None
    last_ctr: int | None = None


@dataclass(slots=True)
class Stats:
    """Only acknowledged messages are counted: a count is a promise the broker has it."""

    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    silent: int = 0  # sensor-ticks skipped because the probe was silent
    ticks: int = 0
    reconnects: int = 0
    per_sensor: dict[str, SensorStats] = field(default_factory=dict)
    first_t_ms: int | None = None
    last_t_ms: int | None = None
    elapsed_s: float = 0.0

    def record(self, msg: Outgoing) -> None:
        self.sent[msg.kind] += 1
        if msg.kind == "good":
            s = self.per_sensor.setdefault(msg.sensor, SensorStats())
            s.good += 1
            if s.first_ctr is None:
                s.first_ctr = msg.ctr
            s.last_ctr = msg.ctr

    def record_tick(self, t_ms: int, silent: int) -> None:
        self.ticks += 1
        self.silent += silent
        if self.first_t_ms is None:
            self.first_t_ms = t_ms
        self.last_t_ms = t_ms

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    @property
    def faulty(self) -> int:
        return self.total - self.sent["good"]

    def as_dict(self) -> dict[str, Any]:
        """Flat counts first (``{"good": n, "garbage": k, ...}``), then the details."""
        return {
            **self.sent,
            "total": self.total,
            "faulty": self.faulty,
            "silent": self.silent,
            "ticks": self.ticks,
            "reconnects": self.reconnects,
            "first_t_ms": self.first_t_ms,
            "last_t_ms": self.last_t_ms,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_sensor": {
                k: {"good": v.good, "first_ctr": v.first_ctr, "last_ctr": v.last_ctr}
                for k, v in sorted(self.per_sensor.items())
            },
        }

    def summary_line(self) -> str:
        kinds = " ".join(f"{k}={self.sent[k]}" for k in KINDS)
        return (
            f"published {self.total} acked messages in {self.elapsed_s:.1f} s over {self.ticks} "
            f"ticks: {kinds} silent={self.silent} reconnects={self.reconnects}"
        )
