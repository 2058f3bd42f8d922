"""One custody station: badge, bin, stable weight and category in; custody bodies out.

A handover counts once a signed-in operator has identified a bin (GRAI-96 RFID tag, or a
GS1 label with AI 8003 GRAI / 00 SSCC), the bin has a stable weight, and the route
(manifest number) and, where required, the waste category are known. Then the station
emits ONE ``custody`` body for (route, bin, stage); the same bin again at that stage is
never counted twice (a gateway-wide rule: every station sees every custody record).

Why time-outs and notices: a bin scanned and never weighed (or on a scale that does not
settle) is exactly what a paper manifest would silently miss, so it becomes a
``custody_notice`` for the operator rather than a guessed weight. A stable weight read up
to ``weight_lookback_s`` before the bin counts too (an RFID reader at the scale may read
the tag after the scale settles); a scale's weight is used once until the load changes.
On sealed records, every stable weight is a new load: the pipeline's ChangeFilter has
already dropped re-reports (unless ``CustodyConfig.repeat_weights_recorded``), and only
it saw the unstable/empty readings in between, so two bins of identical weight both count.

Same contract as ``gateway.rules``: ``feed`` every sealed record of the gateway in seq
order (this station's own bodies too, once sealed) and ``tick`` often; bodies come out at
the instant their rule decides (a deadline, not whenever tick ran), so ``replay`` of the
journal rebuilds the same state and re-emits nothing (``rules.records.Outbox``).
Observations may be fed directly (then ``now_ms`` is their time and unstable weights
sharpen the notice), but only records can be replayed.

Bodies (integers and strings only; ``custody_session``/``custody_refusal``: see operators)::

    custody         id "custody/<route>/<bin key>/<stage>", route, bin {grai|sscc}, weight_g,
                    category?, stage, operator {badge,name,org,role}, location, station,
                    session, at_ms, scan_ms, weight_ms, scan_seq?, weight_seq?, treatment?
    custody_notice  id "notice/<station>/<ms>/<bin key>[/dup]", notice no-weight | no-route |
                    no-category | already-recorded, why timeout|next-bin|session-ended|dup,
                    message, station, stage, bin, operator, at_ms, since_ms, route?, scan_seq?
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.observation import Observation
from gateway.rules.custody.bins import bin_key, bin_of, command_text
from gateway.rules.custody.operators import Ended, Operator, Session, SessionDesk
from gateway.rules.custody.settings import CustodyConfig, CustodyStationConfig
from gateway.rules.records import Outbox, as_int, as_str, record_time

log = logging.getLogger("traceseal.custody")
KEEP_MS = 14 * 86_400_000  # (route, bin, stage) remembered this long for duplicate checks
BODY_TYPES = ("custody", "custody_notice", "custody_refusal", "custody_session")


def as_record(x: Observation | Mapping[str, Any]) -> Mapping[str, Any]:
    """An observation as the reading record the sealer would make of it (no seq, no time)."""
    if isinstance(x, Observation):
        return {"type": "reading", "sensor": x.sensor, "kind": x.kind, "value": x.value, "unit": x.unit,
                "attrs": x.attrs}
    return x


@dataclass(slots=True)
class _Weight:
    grams: int
    at_ms: int
    seq: int | None
    used: bool = False


@dataclass(slots=True)
class _Item:
    """A bin waiting for what it still lacks."""

    bin: dict[str, str]
    key: str
    session: Session
    scan_ms: int
    scan_seq: int | None
    deadline_ms: int
    weight: _Weight | None = None
    unsettled: bool = False  # an unstable reading was seen: the notice can say so


class CustodyStation:
    def __init__(self, station: CustodyStationConfig, operators: Mapping[str, Operator],
                 cfg: CustodyConfig | None = None) -> None:
        self.station, self.cfg = station, cfg or CustodyConfig()
        cfg = self.cfg
        self.counts: Counter[str] = Counter()
        self.desk = SessionDesk(station.id, station.stage, operators, idle_s=station.session_idle_s,
                                badge_repeat_s=cfg.badge_repeat_s, refusal_repeat_s=cfg.refusal_repeat_s,
                                counts=self.counts, on_end=self._session_ended)
        self.outbox = Outbox()
        self._sensors = frozenset(station.sensors)
        self._timeout_ms = station.weight_timeout_s * 1000
        self._lookback_ms = station.weight_lookback_s * 1000
        self._item: _Item | None = None
        self._scales: dict[str, _Weight | None] = {}
        self._recorded: dict[tuple[str, str, str], int] = {}
        self._last_done: tuple[str, str] | None = None  # (session id, bin key) just recorded
        self._dup_noticed: set[tuple[str, str]] = set()
        self._now: int | None = None
        self._out: list[dict[str, Any]] = []
        self._replaying = False

    # -- public API ---------------------------------------------------------------------
    def feed(self, x: Observation | Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Take one sealed record (or observation); return the bodies to seal."""
        self._out = []
        rec = as_record(x)
        if not isinstance(rec, Mapping):
            return []
        t = record_time(rec)
        t = now_ms if t is None else t
        if self._now is None:
            self._now = t
        t = max(self._now, t)  # time never runs backwards inside the station
        self._advance(t)
        typ = rec.get("type")
        if typ == "reading":
            self._reading(rec, t)
        elif typ in BODY_TYPES and not self.outbox.journaled(rec):
            if typ == "custody":
                self._mark(rec, t)
            elif typ == "custody_session" and rec.get("event") == "end":
                self.desk.apply_end(rec, t)
        return self._done()

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        """Let time pass: weight time-outs and idle sessions end at their deadlines.

        A tick is not journaled, so it moves the clock only to the last deadline it acted
        on (its bodies are journaled, no earlier): a record the wall clock stepped back
        behind the tick is then taken at its own time live, as a replay takes it."""
        self._out = []
        if self._now is not None:
            self._advance(now_ms, settle=False)
        return self._done()

    def sign_out(self, now_ms: int) -> list[dict[str, Any]]:
        """Explicit sign-out (a button): ends the session now."""
        self._out = []
        if self._now is not None:
            self._advance(now_ms)
        self._emit(self.desk.end(max(now_ms, self._now or now_ms), "sign-out"))
        return self._done()

    def replay(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Rebuild state from journaled records in seq order, emitting nothing; returns
        bodies derived but never sealed (the gateway stopped in between): seal those."""
        self._replaying = True
        try:
            for rec in records:
                t = record_time(rec) if isinstance(rec, Mapping) else None
                self.feed(rec, 0 if t is None else t)
        finally:
            self._replaying = False
        self._out = []
        return self.outbox.pending()

    def status(self) -> dict[str, Any]:
        """For a station display: who is signed in, what bin is waiting, counters."""
        s, it = self.desk.session, self._item
        return {"station": self.station.id, "stage": self.station.stage,
                "operator": s.operator.party() if s else None, "route": s.route if s else None,
                "pending_bin": it.bin if it else None, "counts": dict(self.counts)}

    # -- internals ----------------------------------------------------------------------
    def _emit(self, bodies: Iterable[dict[str, Any]]) -> None:
        for b in bodies:
            self._out.append(self.outbox.derived(b))

    def _done(self) -> list[dict[str, Any]]:
        if not self._replaying:
            for b in self._out:
                if b["type"] in ("custody_refusal", "custody_notice"):
                    log.info("%s %s: %s", self.station.id, b["type"], b.get("message"))
        return self._out

    def _advance(self, t: int, *, settle: bool = True) -> None:
        """Act on every deadline up to ``t``; then (``settle``) move the clock to ``t``."""
        assert self._now is not None
        while True:
            item_d = self._item.deadline_ms if self._item is not None else None
            desk_d = self.desk.deadline()
            due = [d for d in (item_d, desk_d) if d is not None]
            d = min(due, default=None)
            if d is None or d > t:
                break
            self._now = max(self._now, d)
            if item_d == d:
                self._emit(self._close("timeout", d))
            else:
                self._emit(self.desk.expire_due(d))
        if settle:
            self._now = max(self._now, t)

    def _mark(self, rec: Mapping[str, Any], t: int) -> None:
        """A custody record from the journal (another station, or a run before a restart)."""
        route, stage, b = as_str(rec.get("route")), as_str(rec.get("stage")), rec.get("bin")
        ident = bin_of(b)
        if route is not None and stage is not None and ident is not None:
            self._remember((route, bin_key(ident), stage), t)

    def _remember(self, key: tuple[str, str, str], t: int) -> None:
        self._recorded[key] = t
        if len(self._recorded) > 50_000:  # bounded: the journal keeps the rest
            self._recorded = {k: v for k, v in self._recorded.items() if t - v < KEEP_MS}

    def _reading(self, rec: Mapping[str, Any], t: int) -> None:
        sensor, kind = as_str(rec.get("sensor")), rec.get("kind")
        if sensor not in self._sensors:
            return
        attrs = rec.get("attrs")
        attrs = attrs if isinstance(attrs, Mapping) else {}
        seq = as_int(rec.get("seq"))
        if kind == "badge":
            uid = as_str(attrs.get("uid"))
            if uid is not None:
                self._emit(self.desk.badge(uid, t, seq))
        elif kind in ("rfid", "scan"):
            text, ident = command_text(attrs), bin_of(attrs)
            if ident is not None:
                self._bin(ident, t, seq)
            elif text is not None:
                self._command(text, t, seq)
            else:
                self.counts["custody.not-a-bin"] += 1
        elif kind == "weight":
            self._weight(sensor, rec, attrs, t, seq)

    def _command(self, text: str, t: int, seq: int | None) -> None:
        cfg = self.cfg
        cat = cfg.categories.get(text)
        route = text[len(cfg.route_prefix):] if text.startswith(cfg.route_prefix) else None
        if text == cfg.sign_out_code:
            self._emit(self.desk.end(t, "sign-out"))
            return
        if cat is None and not route:
            self.counts["custody.unknown-code"] += 1
            return
        extra: dict[str, Any] = {"code": text} | ({"scan_seq": seq} if seq is not None else {})
        what = f"category barcode {text}" if cat else f"route barcode {text}"
        s, refusals = self.desk.require(t, what, text, extra)
        self._emit(refusals)
        if s is None:
            return
        self.desk.touch(t)
        if cat is not None:
            s.category = cat
        else:
            s.route = route
        self._try_complete(t)

    def _bin(self, ident: dict[str, str], t: int, seq: int | None) -> None:
        key = bin_key(ident)
        extra: dict[str, Any] = {"bin": ident} | ({"scan_seq": seq} if seq is not None else {})
        s, refusals = self.desk.require(t, f"bin {key}", key, extra)
        self._emit(refusals)
        if s is None:
            return
        self.desk.touch(t)
        it = self._item
        if it is not None and it.key == key:
            self.counts["custody.bin-reread"] += 1
            return
        route = s.route or self.station.route
        if route is not None and (route, key, self.station.stage) in self._recorded:
            self._duplicate(s, ident, route, t, seq)
            return
        if it is not None:
            self._emit(self._close("next-bin", t, then=key))
        self._item = _Item(ident, key, s, t, seq, t + self._timeout_ms)
        fresh = [w for w in self._scales.values()
                 if w is not None and not w.used and t - w.at_ms <= self._lookback_ms]
        if fresh:
            w = max(fresh, key=lambda x: x.at_ms)
            w.used, self._item.weight = True, w
        self._try_complete(t)

    def _weight(self, scale: str, rec: Mapping[str, Any], attrs: Mapping[str, Any], t: int,
                seq: int | None) -> None:
        grams = as_int(rec.get("value"))
        if grams is None or rec.get("unit") != "g":
            return
        if attrs.get("stable") is not True or grams <= 0:
            self._scales[scale] = None  # load changing or pan empty: the next stable weight is new
            if self._item is not None and grams > 0:
                self._item.unsettled = True
            return
        w = self._scales.get(scale)
        filtered = seq is not None and not self.cfg.repeat_weights_recorded  # see CustodyConfig
        if w is None or w.grams != grams or filtered:
            w = self._scales[scale] = _Weight(grams, t, seq)
        it = self._item
        if it is None:
            self.counts["custody.weight-without-bin"] += 1
            return
        if w.used and it.weight is not w:
            return  # the load already weighed for an earlier bin, still on the scale
        w.used, it.weight = True, w
        self.desk.touch(t)
        self._try_complete(t)

    def _try_complete(self, t: int) -> None:
        it, s = self._item, self.desk.session
        if it is None or it.weight is None or s is not it.session:
            return
        route = s.route or self.station.route
        if route is None or (self.station.require_category and s.category is None):
            return  # wait for the route / category barcode until the deadline
        stage = self.station.stage
        key = (route, it.key, stage)
        self._item = None
        if key in self._recorded:
            self._duplicate(s, it.bin, route, t, it.scan_seq)
            return
        w = it.weight
        body: dict[str, Any] = {
            "type": "custody", "id": f"custody/{route}/{it.key}/{stage}", "route": route,
            "bin": dict(it.bin), "weight_g": w.grams, "stage": stage, "operator": s.operator.party(),
            "location": self.station.location, "station": self.station.id, "session": s.id,
            "at_ms": t, "scan_ms": it.scan_ms, "weight_ms": w.at_ms}
        if s.category is not None:
            body["category"] = s.category
        if it.scan_seq is not None:
            body["scan_seq"] = it.scan_seq
        if w.seq is not None:
            body["weight_seq"] = w.seq
        if self.station.treatment is not None and stage == "treated":
            body["treatment"] = self.station.treatment
        s.category = None  # a category barcode declares ONE bin: no silent carry-over
        self._remember(key, t)
        self._last_done = (s.id, it.key)
        self.counts["custody.recorded"] += 1
        self._emit([body])

    def _duplicate(self, s: Session, ident: dict[str, str], route: str, t: int, seq: int | None) -> None:
        key = bin_key(ident)
        self.counts["custody.duplicate-bin"] += 1
        if self._last_done == (s.id, key) or (s.id, key) in self._dup_noticed:
            return  # the tag of the bin just recorded, still in the field: say nothing
        self._dup_noticed.add((s.id, key))
        msg = (f"bin {key} is already recorded as {self.station.stage} on route {route}: "
               "not counted again")
        self._emit([self._notice(f"notice/{self.station.id}/{t}/{key}/dup", "already-recorded", "dup",
                                 msg, s, ident, t, t, route, seq)])

    def _close(self, why: str, t: int, then: str | None = None) -> list[dict[str, Any]]:
        """The pending bin will not become a record: tell the operator what was missing."""
        it, self._item = self._item, None
        if it is None:
            return []
        s = it.session
        route = s.route or self.station.route
        n = self.station.weight_timeout_s
        cause = {"timeout": f"within {n} s of the scan", "next-bin": f"before bin {then} was scanned",
                 "session-ended": "before the session ended"}[why]
        if it.weight is None:
            kind = "no-weight"
            state = "the scale did not settle" if it.unsettled else "no stable weight"
            msg = f"bin {it.key}: {state} {cause}; not recorded, weigh and scan it again"
        elif route is None:
            kind = "no-route"
            msg = (f"bin {it.key} weighed {it.weight.grams} g but no route (manifest) barcode was "
                   f"scanned {cause}; not recorded, scan the manifest and the bin again")
        else:
            kind = "no-category"
            msg = (f"bin {it.key} weighed {it.weight.grams} g but no waste category was scanned "
                   f"{cause}; not recorded, scan the category and the bin again")
        self.counts[f"custody.notice.{kind}"] += 1
        return [self._notice(f"notice/{self.station.id}/{it.scan_ms}/{it.key}", kind, why, msg, s,
                             it.bin, t, it.scan_ms, route, it.scan_seq)]

    def _notice(self, ident: str, kind: str, why: str, msg: str, s: Session, b: dict[str, str], t: int,
                since: int, route: str | None, seq: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "custody_notice", "id": ident, "notice": kind, "why": why,
                                "message": msg, "station": self.station.id, "stage": self.station.stage,
                                "bin": dict(b), "operator": s.operator.party(), "at_ms": t, "since_ms": since}
        if route is not None:
            body["route"] = route
        if seq is not None:
            body["scan_seq"] = seq
        return body

    def _session_ended(self, e: Ended) -> list[dict[str, Any]]:
        return self._close("session-ended", e.at_ms)
