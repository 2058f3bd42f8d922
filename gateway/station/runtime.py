"""The station layer: cold-chain alarms, inventory and min/max over the journal, plus the
local alarm panel. Owned by the writer thread, so the rules need no locks.

Flow (see gateway/app/service.py): on start, ``replay`` every journaled record (alarms and
inventory rebuild their state; bodies derived but never sealed come back once); after each
commit, ``feed`` the committed records; between commits, ``due`` gathers what time alone
produces (delays elapsing, silent probes, heartbeats) and what people did on the GPIO
(acknowledge button, door contact). Every returned body is sealed like a reading, so alarms
are as tamper-evident as the temperatures that caused them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import queue
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gateway.journal import Journal, RecordRow
from gateway.rules import AlarmEngine, Inventory, MinMax
from gateway.rules.custody import CustodyStation, Reconciler
from gateway.station.settings import StationConfig

log = logging.getLogger("traceseal.station")

URGENT_STATES = ("raised", "escalated")


class Station:
    def __init__(self, cfg: StationConfig, *, pin_factory: Any = None) -> None:
        """``cfg`` is the station slice (``Config.station``): units, inventory, custody, GPIO."""
        self.cfg = cfg
        units = cfg.units
        self.enabled = bool(units)
        self.alarms = AlarmEngine(units, power_gap_s=cfg.power_gap_s, heartbeat_s=cfg.heartbeat_s)
        self.inventory = Inventory(units, cfg.inventory)
        self.minmax = MinMax([p for u in units.values() for p in u.probes])
        cust = cfg.custody
        self.custody: list[Any] = []
        if cust.stations:
            self.custody = [CustodyStation(s, cfg.operators, cust) for s in cust.stations]
            self.custody.append(Reconciler(cust.reconcile))
            self.enabled = True
        self.rule_errors: Counter[str] = Counter()  # "<Rule>.<method>: <Exception>" -> count
        for rule in self._rules():
            _contain(rule, self)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()  # from gpiozero's threads
        # (time_ms, why) of the oldest record a restart's replay still needs, for retention;
        # set by the writer thread after each replay/feed, read by the retention thread
        self.floor: tuple[int, str] | None = None
        self.replayed = False  # until then the floor is unknown and retention waits
        self.faults: dict[str, dict[str, Any]] = {}  # gateway faults shown locally (journal full, …)
        self.panel = None
        self._inputs: list[Any] = []  # keep references: gpiozero frees pins of collected devices
        g = cfg.gpio
        if g is not None:
            from gateway.station.gpio import (  # lazy: gpiozero only with [gpio]
                AckButton,
                AlarmPanel,
                DoorContact,
            )

            self.panel = AlarmPanel(green=g.green, amber=g.amber, red=g.red, buzzer=g.buzzer, pin_factory=pin_factory)
            if g.ack_button is not None:
                self._inputs.append(AckButton(g.ack_button, lambda: self.events.put(("ack", "button")),
                                              pin_factory=pin_factory))
            for sensor, pin in g.doors.items():
                self._inputs.append(DoorContact(pin, sensor, self._door_callback(pin), pin_factory=pin_factory))

    def _door_callback(self, pin: int | str) -> Callable[[str, bool], None]:
        """What a door contact on ``pin`` calls (from gpiozero's thread): queue it for the writer."""
        def changed(sensor: str, is_open: bool) -> None:
            self.events.put(("door", (sensor, is_open, pin)))
        return changed

    def _rules(self) -> Sequence[Any]:
        return (self.alarms, self.inventory, self.minmax, *self.custody)

    def replay(self, journal: Journal) -> list[dict[str, Any]]:
        """Rebuild from the journal; returns bodies to seal (derived-but-unsealed, and the restart)."""
        if not self.enabled:
            self.replayed = True
            return []

        def records() -> Iterable[dict[str, Any]]:
            last = journal.next_seq() - 1
            for lo in range(0, last + 1, 5000):
                for r in journal.records_range(lo, min(lo + 4999, last)):
                    yield json.loads(r.body)

        out: list[dict[str, Any]] = []
        for rule in self._rules():
            out += rule.replay(records())
        out.append({"type": "gateway_started"})
        self._show()
        self.floor = self._floor()
        self.replayed = True
        return out

    def feed(self, rows: Sequence[RecordRow], now_ms: int) -> tuple[list[dict[str, Any]], bool]:
        """Feed committed records; returns (bodies to seal, urgent) — urgent when an alarm was
        raised or escalated by these records (its block is sealed and anchored at once)."""
        if not self.enabled:
            return [], False
        out: list[dict[str, Any]] = []
        urgent = False
        for row in rows:
            rec = json.loads(row.body)
            if rec.get("type") == "alarm" and rec.get("state") in URGENT_STATES:
                urgent = True
            for rule in self._rules():
                out += rule.feed(rec, now_ms)
        self._show()
        self.floor = self._floor()
        return out, urgent

    def _floor(self) -> tuple[int, str] | None:
        """What retention must keep so that a restart rebuilds the same local state: an
        unacknowledged alarm must not vanish from the panel, nor a lot in stock from the
        inventory (it is rebuilt from the scans). Acknowledged alarms may go: a condition
        still present is derived again from the readings kept."""
        best: tuple[int, str] | None = None
        for a in self.alarms.active():
            if a.get("acknowledged"):
                continue
            times = [v for v in (a.get("since_ms"), a.get("raised_ms")) if isinstance(v, int)]
            if times and (best is None or min(times) < best[0]):
                best = (min(times), f"unacknowledged alarm {a.get('id')}")
        for r in self.inventory.residency():
            if r.left_ms is None and (best is None or r.entered_ms < best[0]):
                best = (r.entered_ms, f"lot {r.lot} of {r.gtin} still in {r.unit}")
        return best

    def due(self, now_ms: int) -> list[dict[str, Any]]:
        """What time and people produced since the last call."""
        if not self.enabled:
            return []
        out: list[dict[str, Any]] = []
        while True:
            try:
                kind, arg = self.events.get_nowait()
            except queue.Empty:
                break
            if kind == "ack":
                out += self.alarms.acknowledge(now_ms, by=str(arg))
            elif kind == "door":
                from gateway.station.gpio import door_body  # lazy: gpiozero only with [gpio]

                sensor, is_open, pin = arg
                out.append(door_body(sensor, is_open, pin))
        out += self.alarms.tick(now_ms)
        out += self.inventory.tick(now_ms)
        for c in self.custody:
            out += c.tick(now_ms)
        return out

    def acknowledge(self, by: str) -> None:
        """Thread-safe: an acknowledgement from the dashboard or CLI, sealed by the writer."""
        self.events.put(("ack", by))

    def _show(self) -> None:
        if self.panel is not None:
            self.panel.update(self.alarms.active() + list(self.faults.values()))

    def fault(self, name: str, now_ms: int, message: str) -> None:
        """The gateway itself is failing (e.g. the journal cannot commit). Shown on the panel at
        once, needing no disk, network or ledger; it becomes a signed record via ``fault_cleared``."""
        if name not in self.faults:
            self.faults[name] = {"type": "alarm", "alarm": name, "state": "raised", "severity": "alarm",
                                 "since_ms": now_ms, "at_ms": now_ms, "message": message[:200],
                                 "acknowledged": False}
            self._show()

    def fault_cleared(self, name: str, now_ms: int) -> list[dict[str, Any]]:
        """Bodies recording a fault that is over (raised then cleared), to seal now that the
        journal writes again; the cleared alarm stays on the panel until acknowledged."""
        f = self.faults.pop(name, None)
        if f is None:
            return []
        ident = f"{name}/gateway/{f['since_ms']}"
        base = {"type": "alarm", "id": ident, "alarm": name, "severity": "alarm", "since_ms": f["since_ms"],
                "reason": f["message"]}
        self._show()
        return [{**base, "state": "raised", "at_ms": f["since_ms"]},
                {**base, "state": "cleared", "at_ms": now_ms, "value": now_ms - f["since_ms"], "value_unit": "ms"}]

    def active(self) -> list[dict[str, Any]]:
        """Open alarms of every rule: the alarm engine applies every sealed alarm record, its
        own and those of inventory and custody, so its book alone is the complete list; plus
        gateway faults not yet recorded (the journal could not take them)."""
        return self.alarms.active() + list(self.faults.values())

    def close(self) -> None:
        for d in self._inputs:
            d.close()
        if self.panel is not None:
            self.panel.close()


def _contain(rule: Any, station: Station) -> None:
    """Make a rule's ``feed`` and ``tick`` fail per record, never for the whole station.

    A rule bug on one valid-looking record must not stop readings from being journaled, nor
    the other rules from seeing them. The wrappers are set as instance attributes so that the
    rule's own ``replay`` (which calls ``self.feed``) goes through the same containment:
    a record that a rule cannot take is skipped identically live and at a restart, so live
    state still equals a replay. The rule's partial change before the exception is kept
    (the same in both); the error is logged once per kind, counted, and shown on the panel as
    the ``rules-degraded`` fault."""
    name = type(rule).__name__

    def guard(method: str, empty: Callable[[], Any]) -> None:
        inner = getattr(rule, method)

        def contained(*args: Any) -> Any:
            try:
                return inner(*args)
            except Exception as exc:
                key = f"{name}.{method}: {type(exc).__name__}"
                if key not in station.rule_errors:
                    log.exception("rule %s failed on one input; skipped (counted, rules-degraded)", key)
                station.rule_errors[key] += 1
                now = args[-1] if args and isinstance(args[-1], int) else 0
                station.fault("rules-degraded", now, f"{key}: {exc}")
                return empty()

        setattr(rule, method, contained)

    if hasattr(rule, "feed"):
        guard("feed", list)
    if hasattr(rule, "tick"):
        guard("tick", list)


def station_floor(cfg: StationConfig, journal: Journal) -> tuple[int, str] | None:
    """The station's floor for a prune run outside the gateway (the CLI): replay the journal
    as a restart would, without touching the GPIO panel the running gateway owns."""
    st = Station(dataclasses.replace(cfg, gpio=None))
    try:
        st.replay(journal)
    finally:
        st.close()
    return st.floor
