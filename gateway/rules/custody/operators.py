"""Who may record custody: the badge allow-list, operator sessions, and refusals.

A custody record is only worth something if it says *who* took responsibility for a bin,
as a paper waste manifest is signed by generator, transporter and facility. So a person
badges in at a station; scans without a valid session are refused, and the refusal is
itself a signed record (``custody_refusal``): an auditor sees that someone tried, when
and why it did not count. Sessions end on a second read of the same badge (badge-out), an
explicit sign-out (command barcode or button) or after ``idle_s`` with nothing done.

Roles fix which stages a person may record (a generator can never sign for "received");
``stages`` in ``[[operators]]`` may only narrow that. Bodies (integers and strings only)::

    custody_session  id "session/<station>/<start_ms>/<badge>", event start|end, station,
                     stage, operator {badge,name,org,role}, at_ms, badge_seq?,
                     reason (end: badge-out|sign-out|idle-timeout|replaced), started_ms (end)
    custody_refusal  id "refusal/<station>/<at_ms>/<subject>", reason unknown-badge |
                     stage-not-permitted | no-session | session-expired, message, station,
                     stage, at_ms, badge?, operator?, bin?, scan_seq?

Pure: time is passed in; a refusal for the same subject and reason is not repeated within
``refusal_repeat_s`` (an RFID tag lying in the field is read every few seconds).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import StrictTable as Table

ROLES = ("generator", "transporter", "facility")
STAGES = ("handed_over", "loaded", "received", "treated")  # in route order
ROLE_STAGES: Mapping[str, tuple[str, ...]] = {
    "generator": ("handed_over",),
    "transporter": ("loaded",),
    "facility": ("received", "treated"),
}
_SEP = re.compile(r"[:\- ]")
_HEX = re.compile(r"^[0-9A-F]+$")


def normalize_uid(uid: str) -> str:
    """The badge adapter's form: upper-case hex, no separators, so config matches reads."""
    return _SEP.sub("", uid.strip().upper())


def iso(ms: int) -> str:
    """UTC time for messages people read (integer arithmetic only)."""
    t = dt.datetime.fromtimestamp(ms // 1000, tz=dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Operator:
    badge: str
    name: str
    org: str
    role: str
    stages: tuple[str, ...]

    def party(self) -> dict[str, str]:
        """The operator as custody bodies carry it."""
        return {"badge": self.badge, "name": self.name, "org": self.org, "role": self.role}

    def label(self) -> str:
        return f"{self.name} ({self.role}, {self.org})"


def parse_operators(raw: Any) -> dict[str, Operator]:
    """``[[operators]]`` tables (the list, or the whole config mapping) → badge → Operator."""
    if isinstance(raw, Mapping):
        raw = raw.get("operators", [])
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError("operators", f"expected a list of tables ([[operators]]), got {type(raw).__name__}")
    out: dict[str, Operator] = {}
    where: dict[str, str] = {}
    for i, item in enumerate(raw):
        t = Table(item, f"operators[{i}]")
        badge = normalize_uid(t.get("badge", str))
        if not _HEX.match(badge) or len(badge) % 2 or len(badge) // 2 not in (4, 5, 7, 10):
            raise ConfigError(t.key('badge'), f"expected a 4, 5, 7 or 10 byte hex UID, got {t.data['badge']!r}")
        name, org = t.get("name", str), t.get("org", str)
        role = t.get("role", str, check=lambda v: v in ROLES, why=f"expected one of {', '.join(ROLES)}")
        allowed = ROLE_STAGES[role]
        stages = t.str_list("stages", allowed)
        for j, s in enumerate(stages):
            if s not in allowed:
                raise ConfigError(f"{t.key('stages')}[{j}]", f"a {role} may record only "
                                 f"{', '.join(allowed)}, got {s!r}")
        if not stages:
            raise ConfigError(t.key('stages'), "must not be empty")
        t.done()
        if badge in out:
            raise ConfigError(t.key('badge'), f"duplicate badge {badge} (also {where[badge]})")
        out[badge], where[badge] = Operator(badge, name, org, role, tuple(stages)), t.key("badge")
    return out


@dataclass(slots=True)
class Session:
    id: str
    operator: Operator
    started_ms: int
    last_ms: int  # last activity: the idle timer counts from here
    badge_seq: int | None = None
    route: str | None = None  # set by a route (manifest) barcode
    category: str | None = None  # sticky waste category, set by a category barcode


@dataclass(frozen=True, slots=True)
class Ended:
    session: Session
    at_ms: int
    reason: str


class SessionDesk:
    """One station's sign-in desk: at most one operator session at a time."""

    def __init__(self, station: str, stage: str, operators: Mapping[str, Operator], *, idle_s: int,
                 badge_repeat_s: int = 5, refusal_repeat_s: int = 60, counts: Counter[str] | None = None,
                 on_end: Callable[[Ended], list[dict[str, Any]]] | None = None) -> None:
        self.station, self.stage, self.operators = station, stage, operators
        self.idle_ms, self.repeat_ms = idle_s * 1000, badge_repeat_s * 1000
        self.refusal_repeat_ms = refusal_repeat_s * 1000
        self.counts: Counter[str] = counts if counts is not None else Counter()
        self.on_end = on_end
        self.session: Session | None = None
        self.last_end: Ended | None = None
        self._refused: dict[tuple[str, str], int] = {}

    # -- time ---------------------------------------------------------------------------
    def deadline(self) -> int | None:
        return None if self.session is None else self.session.last_ms + self.idle_ms

    def expire_due(self, t: int) -> list[dict[str, Any]]:
        d = self.deadline()
        return self.end(d, "idle-timeout") if d is not None and d <= t else []

    def touch(self, t: int) -> None:
        if self.session is not None:
            self.session.last_ms = max(self.session.last_ms, t)

    # -- badge in / out -----------------------------------------------------------------
    def badge(self, uid: str, t: int, seq: int | None) -> list[dict[str, Any]]:
        uid = normalize_uid(uid)
        cur = self.session
        if cur is not None and cur.operator.badge == uid:
            if t - cur.started_ms < self.repeat_ms:  # a card held on the reader is one read
                self.counts["custody.badge-repeat"] += 1
                return []
            return self.end(t, "badge-out")
        op = self.operators.get(uid)
        if op is None:
            return self.refuse("unknown-badge", uid, t,
                               f"badge {uid} is not on the operator allow-list: no session started "
                               f"at {self.station}", {"badge": uid})
        if self.stage not in op.stages:
            return self.refuse("stage-not-permitted", uid, t,
                               f"{op.label()} may not record stage '{self.stage}' at {self.station} "
                               f"(may record: {', '.join(op.stages)}): no session started",
                               {"badge": uid, "operator": op.party()})
        out = self.end(t, "replaced") if cur is not None else []
        self.session = Session(f"session/{self.station}/{t}/{uid}", op, t, t, seq)
        self.counts["custody.session-start"] += 1
        body = self._session_body(self.session, "start", t)
        if seq is not None:
            body["badge_seq"] = seq
        return [*out, body]

    def end(self, t: int, reason: str) -> list[dict[str, Any]]:
        s = self.session
        if s is None:
            return []
        ended = Ended(s, t, reason)
        out = self.on_end(ended) if self.on_end is not None else []
        self.session, self.last_end = None, ended
        self.counts[f"custody.session-end.{reason}"] += 1
        body = self._session_body(s, "end", t)
        body.update(reason=reason, started_ms=s.started_ms)
        return [*out, body]

    def apply_end(self, rec: Mapping[str, Any], t: int) -> None:
        """A journaled session end this desk did not derive (a sign-out button): obey it."""
        s = self.session
        if s is not None and rec.get("id") == s.id:
            reason = rec.get("reason")
            self.session, self.last_end = None, Ended(s, t, reason if isinstance(reason, str) else "sign-out")

    def _session_body(self, s: Session, event: str, t: int) -> dict[str, Any]:
        return {"type": "custody_session", "id": s.id, "event": event, "station": self.station,
                "stage": self.stage, "operator": s.operator.party(), "at_ms": t}

    # -- refusals -----------------------------------------------------------------------
    def require(self, t: int, what: str, subject: str,
                extra: Mapping[str, Any]) -> tuple[Session | None, list[dict[str, Any]]]:
        """The valid session for a scan of ``what``, or the refusal bodies explaining why not."""
        if self.session is not None:
            return self.session, []
        e = self.last_end
        if e is not None and e.reason == "idle-timeout":
            mins = self.idle_ms // 60_000
            idle = f"{mins} min" if mins and self.idle_ms % 60_000 == 0 else f"{self.idle_ms // 1000} s"
            return None, self.refuse("session-expired", subject, t,
                                     f"{what} refused at {self.station}: the session of "
                                     f"{e.session.operator.label()} expired at {iso(e.at_ms)} after "
                                     f"{idle} idle; badge in again", extra)
        return None, self.refuse("no-session", subject, t,
                                 f"{what} refused at {self.station}: nobody is signed in; "
                                 "badge in first", extra)

    def refuse(self, reason: str, subject: str, t: int, message: str,
               extra: Mapping[str, Any]) -> list[dict[str, Any]]:
        self.counts[f"custody.refused.{reason}"] += 1
        key = (reason, subject)
        last = self._refused.get(key)
        if last is not None and t - last < self.refusal_repeat_ms:
            self.counts["custody.refusal-repeat"] += 1
            return []
        self._refused[key] = t
        if len(self._refused) > 1000:  # bounded: forget refusals older than the window
            self._refused = {k: v for k, v in self._refused.items() if t - v < self.refusal_repeat_ms}
        return [{"type": "custody_refusal", "id": f"refusal/{self.station}/{t}/{subject}", "reason": reason,
                 "message": message, "station": self.station, "stage": self.stage, "at_ms": t, **extra}]
