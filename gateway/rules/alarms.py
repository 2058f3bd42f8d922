"""The cold-chain alarm engine: readings and journaled records in, alarm transition bodies out.

Pure and single-threaded: time comes only from records (``time_ms``) and from ``tick``.
Each unit's profile becomes a list of ``Watch``es (high, low, freeze, cumulative, silent
per probe; door per door sensor); the gateway-gap rule (power loss or restart) watches
the records themselves. Bodies follow the schema in ``lifecycle``.

Determinism is the design constraint: transitions happen only at record times or at the
instants rules announce (``Verdict.next_ms``, escalation deadlines), never at whatever time
``tick`` happened to run. So re-feeding the journal in seq order (``replay``) derives the
same transitions with the same ids and times, the outbox recognises the ones already
sealed, and only those derived but never sealed come back. Rules are level-checked at
every evaluation, so a journal that disagrees with the readings (settings changed between
runs) converges instead of leaving an alarm stuck.

Power loss / restart: a gap between consecutive records only means the gateway was off if
the gateway always writes something while it runs, so ``tick`` returns a
``{"type": "heartbeat", "at_ms": ...}`` body whenever no record was fed for
``heartbeat_s``; seal it like any other body. A gap of ``power_gap_s`` or more between two
clock-synchronized records raises ``power`` (raised and cleared at the first record after
the gap, ``since_ms`` the last record before it, ``value`` the gap in ms, ``reason`` "gap",
or "restart" when that record is ``gateway_started``). Gaps are not measured across an
unsynchronized record (an NTP step would look like an outage), but a ``gateway_started``
record whose gap cannot be measured still raises ``power`` ("restart", no ``value``).
Silence counts afresh after an outage: the power alarm covers the time nobody listened.
So ``tick`` runs the clock at most ``power_gap_s`` (less 1 ms) past the last record: whether
the time beyond was an outage only the next record can tell, and a tick that ran on (a
restart ticks before it seals ``gateway_started``; a writer can stall) would raise in
memory what a replay, judging the gap first, never raises. Transitions past that horizon
come at the next record, still at their own instants.
Time never runs backwards inside the engine: an older record is taken at the engine's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.rules.conditions import Silent, Timeline
from gateway.rules.lifecycle import Alarm, AlarmBook, alarm_key
from gateway.rules.records import Outbox, as_int, as_str, is_synced, record_time
from gateway.rules.units import UnitConfig
from gateway.rules.watches import Watch, watches_for


class AlarmEngine:
    """``feed`` every sealed record in seq order (its own alarm records too); ``tick`` often."""

    def __init__(self, units: Mapping[str, UnitConfig], *, power_gap_s: int = 300,
                 heartbeat_s: int = 60, watches: Sequence[Watch] | None = None) -> None:
        if not 0 < heartbeat_s < power_gap_s:
            raise ValueError(f"heartbeat_s {heartbeat_s} must be > 0 and below power_gap_s "
                             f"{power_gap_s}, or a running gateway would look like an outage")
        self.watches = list(watches) if watches is not None else [w for u in units.values()
                                                                  for w in watches_for(u)]
        self._tl = [Timeline(w.band, w.keep_ms) for w in self.watches]
        self._keys = [alarm_key(w.alarm, {"unit": w.unit, "sensor": w.sensor})
                      for w in self.watches]
        self._next: list[int | None] = [None] * len(self.watches)
        self._index: dict[tuple[str, str], list[int]] = {}
        for i, w in enumerate(self.watches):
            self._index.setdefault((w.sensor, w.kind), []).append(i)
        self._gap_ms = power_gap_s * 1000
        self._heartbeat_ms = heartbeat_s * 1000
        self._heartbeat_asked: int | None = None
        self.book = AlarmBook()
        self.outbox = Outbox()
        self._now: int | None = None
        self._prev: tuple[int, bool] | None = None  # previous record's (time_ms, clock_synced)
        self._out: list[dict[str, Any]] = []

    # -- public API ---------------------------------------------------------------------
    def feed(self, record: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Take one sealed record; return alarm bodies to seal.

        The record is processed at its own ``time_ms``; the engine's clock is not moved past
        it (records of one batch share a time, and replay must see what live saw); ``now_ms``
        only stands in for a record without a usable time. Use ``tick`` to let time pass.
        """
        self._out = []
        if not isinstance(record, Mapping):
            return []
        t = record_time(record)
        t = now_ms if t is None else t
        first = self._now is None
        if self._now is None:
            self._now = t
            for i, w in enumerate(self.watches):  # never-heard probes go silent from here
                if isinstance(w.rule, Silent):
                    self._tl[i].quiet_from_ms = t
        t_eff = max(self._now, t)
        self._advance(min(t_eff, self._horizon()))  # where a tick may have taken the clock
        gap = self._gap(record, t, t_eff)
        self._advance(t_eff)
        if gap is not None:
            self._power(t_eff, *gap)
        touched = self._apply(record, t_eff)
        self._evaluate(None if first else touched)
        self._refresh_present()
        return self._out

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        """Let time pass to ``now_ms``: delays elapse, probes fall silent, alarms escalate."""
        self._out = []
        if self._now is None:  # before the first record there is nothing to time
            return []
        before = self._now
        self._advance(min(now_ms, self._horizon()))
        if not self._out:  # nothing derived, nothing journaled: a record older than this tick
            self._now = before  # (the wall clock stepped back) is taken where replay takes it
        assert self._prev is not None
        quiet_since = max(self._prev[0], self._heartbeat_asked or self._prev[0])
        if now_ms - quiet_since >= self._heartbeat_ms:
            self._heartbeat_asked = now_ms  # not derived: journaled as an input, never deduped
            return [*self._out, {"type": "heartbeat", "at_ms": now_ms}]
        return self._out

    def acknowledge(self, now_ms: int, by: str,
                    alarm_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies acknowledging every open unacknowledged alarm (or one); they take effect
        when their sealed records are fed, exactly as in a replay."""
        return self.book.ack_bodies(now_ms, by, alarm_id)

    def replay(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Rebuild state from journaled records in seq order, emitting nothing.

        Returns the bodies derived from those records but absent from them (the gateway
        stopped between deriving and sealing): seal these, and nothing is lost or doubled.
        """
        for rec in records:
            t = record_time(rec) if isinstance(rec, Mapping) else None
            self.feed(rec, 0 if t is None else t)
        self._out = []
        return self.outbox.pending()

    def active(self) -> list[dict[str, Any]]:
        """Open alarms (present, or cleared but not yet acknowledged), oldest first."""
        return self.book.views()

    def pending(self) -> list[dict[str, Any]]:
        """Derived bodies not yet seen back as sealed records."""
        return self.outbox.pending()

    @property
    def now_ms(self) -> int | None:
        return self._now

    # -- internals ----------------------------------------------------------------------
    def _emit(self, body: dict[str, Any]) -> None:
        self._out.append(self.outbox.derived(body))

    def _horizon(self) -> int:
        """How far time may run on ticks alone: up to just before the next record would be
        a power gap. Past it, only that record can say whether the gateway was listening
        (a gap resets silence); a tick that ran on would decide in memory what a replay,
        seeing the gap first, decides otherwise. ``feed`` advances to it before judging the
        gap, so live (ticks, then the record) and replay (the record) derive the same."""
        if self._prev is None:
            return self._now if self._now is not None else 0
        return self._prev[0] + self._gap_ms - 1

    def _gap(self, record: Mapping[str, Any], t: int,
             t_eff: int) -> tuple[int, int | None, str] | None:
        synced, restart = is_synced(record), record.get("type") == "gateway_started"
        prev, self._prev = self._prev, (t, synced)
        if prev is None:
            return None
        found: tuple[int, int | None, str] | None = None
        if prev[1] and synced:
            if t - prev[0] >= self._gap_ms:
                found = (prev[0], t - prev[0], "restart" if restart else "gap")
        elif restart:
            found = (prev[0], None, "restart")
        if found is not None:  # the gateway could not hear anyone: silence counts afresh
            for i, w in enumerate(self.watches):
                if isinstance(w.rule, Silent) and self.book.find(self._keys[i]) is None:
                    self._tl[i].quiet_from_ms = t_eff
            self._evaluate()  # silence deadlines moved
        return found

    def _power(self, at: int, since: int, gap: int | None, reason: str) -> None:
        a = Alarm(self._new_id(f"power/{at}"), "power", "warning", {}, min(since, at), at, gap,
                  self._gap_ms, "ms", {"reason": reason})
        self._emit(self.book.open(a))
        self._emit(self.book.clear(a, at, None))

    def _apply(self, rec: Mapping[str, Any], t: int) -> Sequence[int] | None:
        """Apply a record; returns the watches it may have changed (None: any of them)."""
        typ = rec.get("type")
        if typ == "alarm":
            if self.outbox.journaled(rec):
                return ()
            self.book.apply(rec, t)
            return None  # a journaled transition we did not derive: re-check every watch
        if typ != "reading":
            return ()
        sensor, kind = as_str(rec.get("sensor")), as_str(rec.get("kind"))
        value = as_int(rec.get("value"))
        if sensor is None or kind is None or value is None:
            return ()
        if kind == "temperature" and rec.get("unit", "mC") != "mC":
            return ()
        if kind == "door":
            value = 1 if value else 0
        touched = self._index.get((sensor, kind), [])
        for i in touched:
            w = self.watches[i]
            self._tl[i].observe(t, value)
            if w.worse:
                self.book.observe(self._keys[i], value)
        return touched

    def _new_id(self, base: str) -> str:
        ident, n = base, 1
        while ident in self.book.alarms:  # only with zero delays and several readings in one ms
            n += 1
            ident = f"{base}.{n}"
        return ident

    def _evaluate(self, indices: Iterable[int] | None = None) -> None:
        """Level-check watches at the engine's clock (all, or those whose inputs changed: a
        verdict only changes with its timeline, its deadline, or its alarm's record)."""
        now = self._now
        assert now is not None
        for i in range(len(self.watches)) if indices is None else indices:
            w, tl = self.watches[i], self._tl[i]
            v = w.rule.check(tl, now)
            a = self.book.find(self._keys[i])
            if v.present and a is None:
                extreme = tl.run_max if w.worse > 0 else tl.run_min if w.worse < 0 else None
                since = v.since_ms if v.since_ms is not None else now
                a = Alarm(self._new_id(f"{w.alarm}/{w.unit}/{w.sensor}/{now}"), w.alarm, w.severity,
                          {"unit": w.unit, "sensor": w.sensor}, since, now, v.value, w.threshold,
                          w.value_unit, dict(w.detail), w.escalate_ms, w.worse, extreme)
                self._emit(self.book.open(a))
            elif not v.present and a is not None:
                self._emit(self.book.clear(a, now, v.value))
            elif a is not None:
                a.value = v.value
            self._next[i] = v.next_ms if v.next_ms is not None and v.next_ms > now else None
        esc = self.book.next_escalation()
        if esc is not None and esc <= now:
            self._refresh_present()  # an escalation records the value AT its instant
        for body in self.book.escalate_due(now):
            self._emit(body)

    def _refresh_present(self) -> None:
        """After each record (and at each escalation), present alarms show their value at the
        engine's clock. Before, a value moved only when its watch happened to be evaluated,
        which differs between a live run (ticks) and a replay (records only): the same journal
        gave two different states. Ticks do not refresh: a replay has no ticks to mirror."""
        if not self.book.present or self._now is None:
            return
        for i, w in enumerate(self.watches):
            a = self.book.find(self._keys[i])
            if a is not None and a.present:
                a.value = w.rule.check(self._tl[i], self._now).value

    def _advance(self, t: int) -> None:
        assert self._now is not None
        last: int | None = None
        while True:
            due = [n for n in self._next if n is not None]
            esc = self.book.next_escalation()
            if esc is not None:
                due.append(esc)
            d = min(due, default=None)
            if d is None or d > t or d == last:  # d == last: a rule that does not move on
                break
            last = self._now = max(self._now, d)
            self._evaluate([i for i, n in enumerate(self._next) if n is not None and n <= d])
        self._now = max(self._now, t)
