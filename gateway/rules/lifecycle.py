"""Alarm lifecycle: raised -> escalated -> cleared, and acknowledged at any point.

An alarm instance stays *open* until it is both cleared (its condition is gone) and
acknowledged (a person has seen it): acknowledging silences but never clears, and a
cleared alarm nobody acknowledged still needs attention (someone must check the vaccines).
Escalation asks for a fresh acknowledgement. The ``AlarmBook`` holds the open instances
and writes the transition bodies; it also applies journaled transitions it did not derive
itself (acknowledgements, other rules' alarms such as inventory's, or a journal written
under other settings), idempotently, so the journal stays the authority on what was said.

Alarm body (``type`` "alarm"), integers only::

    id         "<alarm>/<subject...>/<raised_ms>": one instance, e.g.
               "high/fridge-1/probe-1/1767226261000"
    alarm      high | low | freeze | cumulative | silent | door | power | (inventory kinds)
    state      raised | escalated | cleared | acknowledged
    severity   alarm (red, buzzer) | warning (amber)
    at_ms      when this transition happened (the record's own time_ms may be later)
    since_ms   when the condition began (first out-of-range reading, door opened, ...)
    unit, sensor, gtin, lot   the subject, whichever apply
    value, threshold, value_unit ("mC" | "ms" | "d" | "")   not on "acknowledged"
    extreme    worst reading while present (temperature alarms; escalated and cleared)
    delay_ms | window_ms | reason | ...   rule details
    by         who acknowledged (only on "acknowledged")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.rules.records import as_int, as_str

SUBJECT_KEYS = ("unit", "sensor", "gtin", "lot", "route", "grai", "sscc", "stage")  # custody alarms too
COMMON_KEYS = frozenset({"type", "id", "alarm", "state", "severity", "at_ms", "since_ms", "value",
                         "threshold", "value_unit", "extreme", "by", *SUBJECT_KEYS})
ENVELOPE_KEYS = frozenset({"v", "gateway", "seq", "time_ms", "clock_synced"})  # gateway/seal.RESERVED
STATES = ("raised", "escalated", "cleared", "acknowledged")
Key = tuple[str, tuple[tuple[str, str], ...]]
ACK_RETRY_MS = 10_000  # an ack asked for but not yet fed back is not asked again before this


def alarm_key(alarm: str, subject: Mapping[str, str]) -> Key:
    return (alarm, tuple(sorted(subject.items())))


@dataclass(slots=True)
class Alarm:
    id: str
    alarm: str
    severity: str
    subject: dict[str, str]
    since_ms: int
    raised_ms: int
    value: int | None = None
    threshold: int | None = None
    value_unit: str | None = None
    detail: dict[str, int | str] = field(default_factory=dict)
    escalate_ms: int | None = None  # None: never escalates (events, foreign alarms)
    worse: int = 0  # +1 higher readings are worse, -1 lower, 0 no extreme kept
    extreme: int | None = None
    escalated_ms: int | None = None
    cleared_ms: int | None = None
    acked_ms: int | None = None
    acked_by: str | None = None

    @property
    def present(self) -> bool:
        return self.cleared_ms is None

    @property
    def state(self) -> str:
        if self.cleared_ms is not None:
            return "cleared"
        return "escalated" if self.escalated_ms is not None else "raised"

    def body(self, state: str, at_ms: int, by: str | None = None) -> dict[str, Any]:
        b: dict[str, Any] = {"type": "alarm", "id": self.id, "alarm": self.alarm, "state": state,
                             "severity": self.severity, "at_ms": at_ms, "since_ms": self.since_ms,
                             **self.subject}
        if state == "acknowledged":
            b["by"] = by or "unknown"
            return b
        measure = (("value", self.value), ("threshold", self.threshold),
                   ("value_unit", self.value_unit))
        for k, v in measure:
            if v is not None:
                b[k] = v
        if self.extreme is not None and state != "raised":
            b["extreme"] = self.extreme
        b.update(self.detail)
        return b

    def view(self) -> dict[str, Any]:
        """Snapshot for panels and dashboards."""
        v = self.body(self.state, self.cleared_ms or self.escalated_ms or self.raised_ms)
        del v["type"], v["at_ms"]
        v.update(raised_ms=self.raised_ms, acknowledged=self.acked_ms is not None)
        for k in ("escalated_ms", "cleared_ms", "acked_ms", "acked_by"):
            if getattr(self, k) is not None:
                v[k] = getattr(self, k)
        return v


def _track(a: Alarm, value: int | None) -> None:
    a.value = value
    if value is not None and a.worse:
        a.extreme = value if a.extreme is None else (max if a.worse > 0 else min)(a.extreme, value)


class AlarmBook:
    """Open alarm instances, keyed by id and, while present, by (alarm, subject)."""

    def __init__(self) -> None:
        self.alarms: dict[str, Alarm] = {}
        self.present: dict[Key, str] = {}
        self._ack_requested: dict[str, int] = {}  # id -> when asked; until its record is fed

    def find(self, key: Key) -> Alarm | None:
        ident = self.present.get(key)
        return self.alarms.get(ident) if ident is not None else None

    def open(self, a: Alarm) -> dict[str, Any]:
        self.alarms[a.id] = a
        self.present[alarm_key(a.alarm, a.subject)] = a.id
        return a.body("raised", a.raised_ms)

    def observe(self, key: Key, value: int) -> None:
        a = self.find(key)
        if a is not None:
            _track(a, value)

    def escalate(self, a: Alarm, at_ms: int) -> dict[str, Any]:
        a.escalated_ms, a.acked_ms, a.acked_by = at_ms, None, None  # needs a fresh acknowledgement
        return a.body("escalated", at_ms)

    def clear(self, a: Alarm, at_ms: int, value: int | None) -> dict[str, Any]:
        if value is not None:
            _track(a, value)
        a.cleared_ms = at_ms
        self.present.pop(alarm_key(a.alarm, a.subject), None)
        body = a.body("cleared", at_ms)
        self._close_if_done(a)
        return body

    def _close_if_done(self, a: Alarm) -> None:
        if a.cleared_ms is not None and a.acked_ms is not None:
            self.alarms.pop(a.id, None)
            self._ack_requested.pop(a.id, None)

    def next_escalation(self) -> int | None:
        due = [a.raised_ms + a.escalate_ms for a in self.alarms.values()
               if a.present and a.escalate_ms is not None and a.escalated_ms is None]
        return min(due, default=None)

    def escalate_due(self, now_ms: int) -> list[dict[str, Any]]:
        out = []
        for a in sorted(self.alarms.values(), key=lambda x: (x.raised_ms, x.id)):
            if (a.present and a.escalate_ms is not None and a.escalated_ms is None
                    and a.raised_ms + a.escalate_ms <= now_ms):
                out.append(self.escalate(a, a.raised_ms + a.escalate_ms))
        return out

    def ack_bodies(self, now_ms: int, by: str, alarm_id: str | None) -> list[dict[str, Any]]:
        """Acknowledgement bodies to seal; they take effect when their records are fed."""
        out = []
        for a in sorted(self.alarms.values(), key=lambda x: (x.raised_ms, x.id)):
            asked = self._ack_requested.get(a.id)
            if alarm_id not in (None, a.id) or a.acked_ms is not None:
                continue
            if asked is not None and now_ms - asked < ACK_RETRY_MS:  # a bouncing or double press
                continue
            self._ack_requested[a.id] = now_ms
            out.append(a.body("acknowledged", now_ms, by))
        return out

    def apply(self, rec: Mapping[str, Any], now_ms: int) -> None:
        """Apply a journaled transition this book did not derive; repeats change nothing."""
        ident, alarm, state = as_str(rec.get("id")), as_str(rec.get("alarm")), rec.get("state")
        at = as_int(rec.get("at_ms"))
        at = now_ms if at is None else at
        if ident is None or alarm is None or state not in STATES:
            return
        a = self.alarms.get(ident)
        if state == "raised":
            subject = {k: v for k in SUBJECT_KEYS if (v := as_str(rec.get(k))) is not None}
            if a is not None or alarm_key(alarm, subject) in self.present:
                return
            since = as_int(rec.get("since_ms"))
            sev = rec.get("severity") if rec.get("severity") in ("alarm", "warning") else "alarm"
            # not the sealer's envelope (v, gateway, seq, time_ms): a body derived from this
            # alarm later (its clearing, in a replay) would carry them, and sealing refuses that
            detail = {k: v for k, v in rec.items() if k not in COMMON_KEYS and k not in ENVELOPE_KEYS
                      and isinstance(v, (int, str)) and not isinstance(v, bool)}
            vu = as_str(rec.get("value_unit"))
            self.open(Alarm(ident, alarm, str(sev), subject, at if since is None else since, at,
                            as_int(rec.get("value")), as_int(rec.get("threshold")), vu, detail))
        elif a is None:
            return
        elif state == "escalated" and a.escalated_ms is None and a.present:
            self.escalate(a, at)
        elif state == "cleared" and a.present:
            self.clear(a, at, as_int(rec.get("value")))
        elif state == "acknowledged" and a.acked_ms is None:
            a.acked_ms, a.acked_by = at, as_str(rec.get("by")) or "unknown"
            self._ack_requested.pop(a.id, None)
            self._close_if_done(a)

    def views(self) -> list[dict[str, Any]]:
        return [a.view() for a in sorted(self.alarms.values(), key=lambda x: (x.raised_ms, x.id))]
