"""Alarm conditions as small composable parts: bands (is a value out of range?) and rules.

Like sigstore's verification policies, each part is a one-method Protocol: a ``Band``
answers ``outside(value)`` and composes with ``AnyOf``/``AllOf`` (an empty composition is
an error, never a silent pass); a ``Rule`` answers ``check(timeline, now_ms)``. A rule is
a pure function of the timeline and the time, and also says when its answer would next
change if no reading arrived (``Verdict.next_ms``): the engine evaluates exactly at those
instants, so raise and clear times never depend on how often ``tick`` is called, and a
replay of the journal derives the very same transitions. Readings are sample-and-hold: a
value stands until the next reading of the same sensor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class Band(Protocol):
    def outside(self, value: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class AtOrAbove:
    limit: int

    def outside(self, value: int) -> bool:
        return value >= self.limit  # equal to the threshold counts: WHO indicators trigger at it


@dataclass(frozen=True, slots=True)
class AtOrBelow:
    limit: int

    def outside(self, value: int) -> bool:
        return value <= self.limit


@dataclass(frozen=True, slots=True)
class AnyOf:
    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("AnyOf needs at least one band: an empty band would never alarm")

    def outside(self, value: int) -> bool:
        return any(b.outside(value) for b in self.bands)


@dataclass(frozen=True, slots=True)
class AllOf:
    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        if not self.bands:
            raise ValueError("AllOf needs at least one band: an empty band would always alarm")

    def outside(self, value: int) -> bool:
        return all(b.outside(value) for b in self.bands)


@dataclass(slots=True)
class Timeline:
    """One sensor seen through one band: last reading, and the runs spent outside the band.

    ``runs`` holds [start, end) intervals, the last one open (end None) while outside;
    closed runs older than ``keep_ms`` are dropped so memory stays flat.
    """

    band: Band
    keep_ms: int = 0
    last_ms: int | None = None
    value: int | None = None
    quiet_from_ms: int | None = None  # silence counts from here: last reading or a restart
    runs: list[list[int | None]] = field(default_factory=list)
    run_min: int | None = None  # extremes of the open run, for the alarm's "extreme" field
    run_max: int | None = None

    def observe(self, t_ms: int, value: int) -> None:
        self.last_ms, self.value, self.quiet_from_ms = t_ms, value, t_ms
        is_open = bool(self.runs) and self.runs[-1][1] is None
        if self.band.outside(value):
            if not is_open:
                self.runs.append([t_ms, None])
                self.run_min = self.run_max = value
            else:
                self.run_min = min(value, self.run_min if self.run_min is not None else value)
                self.run_max = max(value, self.run_max if self.run_max is not None else value)
        elif is_open:
            self.runs[-1][1] = t_ms
        horizon = t_ms - self.keep_ms
        while self.runs and (end := self.runs[0][1]) is not None and end <= horizon:
            self.runs.pop(0)

    def run_start(self) -> int | None:
        return self.runs[-1][0] if self.runs and self.runs[-1][1] is None else None

    def outside_ms(self, start: int, end: int) -> int:
        """Time spent outside within [start, end); an open run lasts until ``end``."""
        total = 0
        for s, e in self.runs:
            assert s is not None
            total += max(0, min(end if e is None else e, end) - max(s, start))
        return total

    def is_outside_at(self, t: int) -> bool:
        return any(s is not None and s <= t and (e is None or t < e) for s, e in self.runs)


@dataclass(frozen=True, slots=True)
class Verdict:
    present: bool
    value: int | None  # the measure the alarm body reports (a reading, or a duration in ms)
    since_ms: int | None = None  # when the condition began
    at_ms: int | None = None  # when it started to hold (delay elapsed, limit reached)
    next_ms: int | None = None  # when the answer would change without a new reading


class Rule(Protocol):
    def check(self, tl: Timeline, now_ms: int) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class Sustained:
    """Outside the band continuously for ``delay_ms`` (0: at once)."""

    delay_ms: int

    def check(self, tl: Timeline, now_ms: int) -> Verdict:
        start = tl.run_start()
        if start is None:
            return Verdict(False, tl.value)
        due = start + self.delay_ms
        if now_ms >= due:
            return Verdict(True, tl.value, start, due)
        return Verdict(False, tl.value, next_ms=due)


@dataclass(frozen=True, slots=True)
class Silent:
    """No reading for ``after_ms`` (counted from the last reading or the last restart)."""

    after_ms: int

    def check(self, tl: Timeline, now_ms: int) -> Verdict:
        ref = tl.quiet_from_ms
        if ref is None:
            return Verdict(False, None)
        due = ref + self.after_ms
        if now_ms >= due:
            return Verdict(True, now_ms - ref, ref, due)
        return Verdict(False, now_ms - ref, next_ms=due)


@dataclass(frozen=True, slots=True)
class Cumulative:
    """At least ``limit_ms`` outside the band within the sliding window [now - window, now)."""

    window_ms: int
    limit_ms: int

    def check(self, tl: Timeline, now_ms: int) -> Verdict:
        total = tl.outside_ms(now_ms - self.window_ms, now_ms)
        present = total >= self.limit_ms
        nxt = self._next_change(tl, now_ms, total, present)
        if not present:
            return Verdict(False, total, next_ms=nxt)
        start = now_ms - self.window_ms
        first = next(s for s, e in tl.runs if s is not None and (e is None or e > start))
        return Verdict(True, total, max(first, now_ms - self.window_ms), now_ms, nxt)

    def _next_change(self, tl: Timeline, now: int, total: int, present: bool) -> int | None:
        """The window sum is piecewise linear (slope -1, 0 or 1) between run edges and run
        edges shifted by the window; walk the segments to the first crossing of the limit."""
        w = self.window_ms
        points = sorted({q for s, e in tl.runs for edge in (s, e) if edge is not None
                         for q in (edge, edge + w) if q > now})
        t0, s0 = now, total
        for b in [*points, None]:
            slope = int(tl.is_outside_at(t0)) - int(tl.is_outside_at(t0 - w))
            if not present and slope > 0:
                hit = t0 + (self.limit_ms - s0)
                if b is None or hit <= b:
                    return hit
            if present and slope < 0:
                hit = t0 + (s0 - self.limit_ms) + 1  # first ms strictly below the limit
                if b is None or hit <= b:
                    return hit
            if b is None:
                return None
            s0, t0 = s0 + slope * (b - t0), b
        return None
