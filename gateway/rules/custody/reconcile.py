"""Per-bin reconciliation of custody records: weight loss, missing bins, unknown bins.

A manifest is only useful if what left the generator is what reached the plant. For each
(route, bin) the pickup weight (the earliest of the pickup stages, normally the
generator's ``handed_over``) is compared with every later stage's weight; a loss beyond
the tolerance is a ``weight-loss`` alarm. The default tolerance follows the US
hazardous-waste manifest rule that calls a difference over 10 % significant, with a
200 g floor for scale and residue noise on small bins: alarm when loss > max(200 g,
10 %) (``combine = "both"``); ``either`` (> min), ``abs`` or ``pct`` alone are
configurable. Integer grams only: see ``ReconcileConfig.allowed_loss_g``.

A bin picked up but not delivered (``received``/``treated``) within ``missing_after_s`` of
its pickup raises ``missing-bin`` at exactly pickup + timeout (cleared, and left open
for acknowledgement, if it turns up late); a bin delivered that was never picked up
raises ``unknown-bin``. A record repeating (route, bin, stage) is a duplicate: listed,
never counted twice. A record whose operator role may not record its stage (a
transporter signing "received") is rejected, not reconciled.

One engine serves both uses: live on one gateway (``feed`` every sealed record in seq
order, ``tick`` for the missing-bin timer; set ``missing_after_s = 0`` /
``unknown_bin = false`` on a gateway that sees only one end of the route) and, through
``reconcile``, across several gateways' records merged in time order. Alarm bodies follow
``gateway.rules.lifecycle`` (subject keys ``route``, ``grai``|``sscc`` and, for
weight-loss, ``stage``); weight-loss and unknown-bin are events: raised and cleared at
once, open until acknowledged, as inventory's ``expired_scan``.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.rules.custody.bins import bin_key, bin_of
from gateway.rules.custody.operators import ROLE_STAGES, STAGES
from gateway.rules.custody.settings import ReconcileConfig
from gateway.rules.lifecycle import Alarm, AlarmBook
from gateway.rules.records import Outbox, as_int, as_str

KINDS = ("weight-loss", "missing-bin", "unknown-bin")
KEEP_MS = 30 * 86_400_000  # delivered bins are forgotten after this (live engine memory bound)


def event_time(rec: Mapping[str, Any]) -> int | None:
    """When the handover happened: the body's ``at_ms``, else the record's ``time_ms``."""
    t = as_int(rec.get("at_ms"))
    return t if t is not None else as_int(rec.get("time_ms"))


@dataclass(frozen=True, slots=True)
class Seen:
    stage: str
    weight_g: int
    at_ms: int
    gateway: str
    station: str
    seq: int | None

    def view(self) -> dict[str, Any]:
        v = {"weight_g": self.weight_g, "at_ms": self.at_ms, "gateway": self.gateway, "station": self.station}
        return v | ({"seq": self.seq} if self.seq is not None else {})


@dataclass(slots=True)
class BinTrack:
    route: str
    bin: dict[str, str]
    seen: dict[str, Seen] = field(default_factory=dict)
    pickup_ms: int | None = None
    deadline_ms: int | None = None
    delivered: bool = False
    missing: str | None = None  # id of the present missing-bin alarm
    unknown: bool = False
    checked: set[tuple[str, str]] = field(default_factory=set)

    @property
    def key(self) -> str:
        return bin_key(self.bin)

    def status(self) -> str:
        if self.delivered:
            return "unknown" if self.unknown else "delivered"
        return "missing" if self.missing else "in-transit"

    def view(self) -> dict[str, Any]:
        stages = {s: self.seen[s].view() for s in STAGES if s in self.seen}
        v = {"route": self.route, "bin": dict(self.bin), "status": self.status(), "stages": stages}
        return v | ({"overdue_ms": self.deadline_ms} if self.deadline_ms is not None else {})


class Reconciler:
    def __init__(self, cfg: ReconcileConfig | None = None) -> None:
        self.cfg = cfg or ReconcileConfig()
        self.book = AlarmBook()
        self.outbox = Outbox()
        self.counts: Counter[str] = Counter()
        self.bins: dict[tuple[str, str], BinTrack] = {}
        self.duplicates: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []
        self._timers: list[tuple[int, str, str]] = []  # (deadline, route, bin key), lazily invalidated
        self._now: int | None = None
        self._out: list[dict[str, Any]] = []

    # -- public API ---------------------------------------------------------------------
    def feed(self, record: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
        """Take one record (custody records and this engine's own alarms matter)."""
        self._out = []
        if not isinstance(record, Mapping):
            return []
        t = event_time(record)
        t = now_ms if t is None else t
        if self._now is None:
            self._now = t
        t = max(self._now, t)
        self._advance(t)
        typ = record.get("type")
        if typ == "custody":
            self._custody(record, t)
        elif typ == "alarm" and record.get("alarm") in KINDS:
            mine = self.outbox.journaled(record)  # always: it forgets our own sealed bodies
            if not mine and record.get("state") == "acknowledged":
                self.book.apply(record, t)
        return self._out

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        """Raise missing-bin alarms now due. The clock moves only to the last one raised:
        a replay's clock follows records (an alarm's ``at_ms``), never unjournaled ticks, so
        a handover the tick ran past (a late record, a wall clock stepped back) keeps its own
        time live as in a replay."""
        self._out = []
        if self._now is not None:
            self._advance(now_ms, settle=False)
        return self._out

    def replay(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Rebuild from journaled records, emitting nothing; returns derived-but-unsealed bodies."""
        for rec in records:
            t = event_time(rec) if isinstance(rec, Mapping) else None
            self.feed(rec, 0 if t is None else t)
        self._out = []
        return self.outbox.pending()

    def active(self) -> list[dict[str, Any]]:
        return self.book.views()

    def views(self) -> list[dict[str, Any]]:
        return [b.view() for _, b in sorted(self.bins.items())]

    # -- internals ----------------------------------------------------------------------
    def _emit(self, body: dict[str, Any]) -> None:
        self._out.append(self.outbox.derived(body))

    def _reject(self, rec: Mapping[str, Any], why: str) -> None:
        self.counts["reconcile.rejected"] += 1
        self.rejected.append({"gateway": rec.get("gateway"), "seq": rec.get("seq"), "id": rec.get("id"),
                              "reason": why})

    def _custody(self, rec: Mapping[str, Any], t: int) -> None:
        route, stage, ident = as_str(rec.get("route")), as_str(rec.get("stage")), bin_of(rec.get("bin"))
        grams, op = as_int(rec.get("weight_g")), rec.get("operator")
        role = op.get("role") if isinstance(op, Mapping) else None
        if route is None or ident is None or grams is None or stage not in STAGES:
            self._reject(rec, "malformed custody record (route, bin, weight_g or stage)")
            return
        if stage not in ROLE_STAGES.get(str(role), ()):
            self._reject(rec, f"role {role!r} may not record stage {stage!r}")
            return
        key = (route, bin_key(ident))
        b = self.bins.get(key)
        if b is None:
            b = self.bins[key] = BinTrack(route, ident)
        if stage in b.seen:
            self.counts["reconcile.duplicate"] += 1
            self.duplicates.append({"gateway": rec.get("gateway"), "seq": rec.get("seq"), "route": route,
                                    "bin": dict(ident), "stage": stage, "weight_g": grams})
            return
        seen = Seen(stage, grams, t, str(rec.get("gateway", "")), str(rec.get("station", "")),
                    as_int(rec.get("seq")))
        b.seen[stage] = seen
        if stage in self.cfg.pickup_stages and (b.pickup_ms is None or t < b.pickup_ms):
            b.pickup_ms = t
            if self.cfg.missing_after_s and not b.delivered and b.missing is None:
                b.deadline_ms = t + self.cfg.missing_after_s * 1000
                heapq.heappush(self._timers, (b.deadline_ms, *key))
        if stage in self.cfg.delivery_stages and not b.delivered:
            b.delivered, b.deadline_ms = True, None
            if b.missing is not None:
                a = self.book.alarms.get(b.missing)
                if a is not None and a.present:
                    self._emit(self.book.clear(a, t, t - (b.pickup_ms or t)))
            elif b.pickup_ms is None and self.cfg.unknown_bin:
                b.unknown = True
                self._event("unknown-bin", "warning", f"unknown-bin/{route}/{b.key}", b, {}, t, t, grams,
                            None, "g", {"stage": stage, "stage_gateway": seen.gateway, "stage_station": seen.station})
        self._check_weights(b, t)
        self._prune(t)

    def _check_weights(self, b: BinTrack, t: int) -> None:
        ref = next((b.seen[s] for s in STAGES if s in self.cfg.pickup_stages and s in b.seen), None)
        if ref is None:
            return
        for s in STAGES[STAGES.index(ref.stage) + 1:]:
            cur = b.seen.get(s)
            if cur is None or (ref.stage, s) in b.checked:
                continue
            b.checked.add((ref.stage, s))
            loss, allowed = ref.weight_g - cur.weight_g, self.cfg.allowed_loss_g(ref.weight_g)
            if loss > allowed:
                detail: dict[str, int | str] = {
                          "pickup_stage": ref.stage, "pickup_weight_g": ref.weight_g, "weight_g": cur.weight_g,
                          "pickup_gateway": ref.gateway, "stage_gateway": cur.gateway,
                          "stage_station": cur.station}
                self._event("weight-loss", "alarm", f"weight-loss/{b.route}/{b.key}/{s}", b, {"stage": s},
                            ref.at_ms, t, loss, allowed, "g", detail)

    def _event(self, kind: str, severity: str, ident: str, b: BinTrack, extra: dict[str, str], since: int,
               t: int, value: int | None, threshold: int | None, unit: str, detail: dict[str, int | str]) -> None:
        self.counts[f"reconcile.{kind}"] += 1
        a = Alarm(ident, kind, severity, {"route": b.route, **b.bin, **extra}, since, t, value, threshold,
                  unit, detail)
        self._emit(self.book.open(a))
        self._emit(self.book.clear(a, t, None))

    def _advance(self, t: int, *, settle: bool = True) -> None:
        assert self._now is not None
        while self._timers and self._timers[0][0] <= t:
            d, route, key = heapq.heappop(self._timers)
            b = self.bins.get((route, key))
            if b is None or b.delivered or b.deadline_ms != d or b.missing is not None:
                continue  # stale timer
            self._now = max(self._now, d)
            last = max(b.seen.values(), key=lambda x: (x.at_ms, STAGES.index(x.stage)))
            first = b.seen[min(b.seen, key=STAGES.index)]
            ms = self.cfg.missing_after_s * 1000
            a = Alarm(f"missing-bin/{route}/{key}/{d}", "missing-bin", "alarm", {"route": route, **b.bin},
                      b.pickup_ms or d, d, ms, ms, "ms",
                      {"last_stage": last.stage, "last_gateway": last.gateway, "last_station": last.station,
                       "pickup_weight_g": first.weight_g})
            b.missing = a.id
            self.counts["reconcile.missing-bin"] += 1
            self._emit(self.book.open(a))
        if settle:
            self._now = max(self._now, t)

    def _prune(self, t: int) -> None:
        if len(self.bins) > 50_000:  # bounded: the journal keeps the history
            self.bins = {k: b for k, b in self.bins.items()
                         if not b.delivered or t - max(s.at_ms for s in b.seen.values()) < KEEP_MS}


@dataclass
class Findings:
    alarms: list[dict[str, Any]]  # every alarm transition, in time order
    bins: list[dict[str, Any]]
    duplicates: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    as_of_ms: int | None

    def raised(self, alarm: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.alarms if a["state"] == "raised" and alarm in (None, a["alarm"])]

    def as_dict(self) -> dict[str, Any]:
        return {"as_of_ms": self.as_of_ms, "alarms": self.alarms, "bins": self.bins,
                "duplicates": self.duplicates, "rejected": self.rejected}


def reconcile(records: Iterable[Mapping[str, Any]], cfg: ReconcileConfig | None = None, *,
              as_of_ms: int | None = None) -> Findings:
    """Reconcile custody records from any number of gateways, merged in time order.

    The same record twice (same gateway and seq, e.g. in two bundles) is taken once.
    ``as_of_ms`` (default: the latest handover) is when missing-bin timers are judged:
    a bin not yet overdue then is reported ``in-transit``.
    """
    seen: set[tuple[str, int]] = set()
    custody: list[tuple[int, str, int, Mapping[str, Any]]] = []
    for r in records:
        if not isinstance(r, Mapping) or r.get("type") != "custody" or event_time(r) is None:
            continue
        gw, seq = str(r.get("gateway", "")), as_int(r.get("seq"))
        if seq is not None and (gw, seq) in seen:
            continue
        if seq is not None:
            seen.add((gw, seq))
        custody.append((event_time(r) or 0, gw, -1 if seq is None else seq, r))
    custody.sort(key=lambda x: x[:3])
    rc = Reconciler(cfg)
    alarms: list[dict[str, Any]] = []
    for t, _, _, r in custody:
        alarms += rc.feed(r, t)
    end = as_of_ms if as_of_ms is not None else max((c[0] for c in custody), default=None)
    if end is not None:
        alarms += rc.tick(end)
    return Findings(alarms, rc.views(), rc.duplicates, rc.rejected, end)
