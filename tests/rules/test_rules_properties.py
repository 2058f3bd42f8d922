"""Properties: whatever the journal holds, the rules never raise and never emit a float or
an envelope key; and for well-formed runs, replay reproduces the live state exactly."""

from __future__ import annotations

import copy
from typing import Any

from coldchain_kit import MIN, T0, Station, assert_body_ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rules.alarms import AlarmEngine
from gateway.rules.inventory import Inventory, parse_inventory
from gateway.rules.reports import MinMax
from gateway.rules.units import parse_units
from gateway.testing.hypo import examples

UNITS = parse_units(
    [
        {
            "id": "fridge-1",
            "profile": "fridge",
            "probes": ["probe-1", "probe-2"],
            "door": "door-1",
            "scanners": ["gs1:scanner-1"],
            "scanner_in": "gs1:in-1",
            "high_delay_s": 60,
            "low_delay_s": 0,
            "freeze_delay_s": 120,
            "cumulative_window_s": 3_600,
            "cumulative_limit_s": 300,
            "silence_s": 600,
            "door_open_s": 60,
            "escalate_s": 300,
        },
    ]
)
INV = parse_inventory(
    {"expiry_warn_days": 3, "products": [{"gtin": "09506000134352", "low_stock": 2}]}
)

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=6,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | junk


times = st.integers(T0 - 10 * MIN, T0 + 3 * 24 * 60 * MIN)
attrs = st.fixed_dictionaries(
    {},
    optional={
        "gtin": maybe(st.sampled_from(["09506000134352", "09506000134369"])),
        "lot": maybe(st.sampled_from(["A", "B"])),
        "expiry": maybe(
            st.sampled_from(["2025-12-31", "2026-01-01", "2026-01-03", "2026-13-01", "x"])
        ),
        "ai": maybe(
            st.dictionaries(st.sampled_from(["91", "92", "01", 7]), maybe(st.just("TS-MODE-OUT")))
        ),
        "text": maybe(st.sampled_from(["TS-MODE-IN", "TS-MODE-DISCARD"])),
        "count": maybe(st.sampled_from(["2", "0", "99999", "²", "-1"])),
    },
)
records = st.fixed_dictionaries(
    {},
    optional={
        "v": st.just(1),
        "gateway": st.just("station-01"),
        "seq": maybe(st.integers(0, 10_000)),
        "time_ms": maybe(times),
        "clock_synced": maybe(st.booleans()),
        "type": maybe(
            st.sampled_from(
                [
                    "reading",
                    "alarm",
                    "gateway_started",
                    "heartbeat",
                    "minmax_reset",
                    "minmax",
                    "inventory_mode",
                    "stock",
                ]
            )
        ),
        "sensor": maybe(
            st.sampled_from(["probe-1", "probe-2", "door-1", "gs1:scanner-1", "gs1:in-1"])
        ),
        "kind": maybe(st.sampled_from(["temperature", "door", "scan"])),
        "value": maybe(st.integers(-100_000, 100_000)),
        "unit": maybe(st.sampled_from(["mC", "g"])),
        "attrs": maybe(attrs),
        "id": maybe(st.sampled_from(["high/fridge-1/probe-1/1", "x"])),
        "alarm": maybe(st.sampled_from(["high", "expired_scan", "power"])),
        "state": maybe(st.sampled_from(["raised", "escalated", "cleared", "acknowledged"])),
        "at_ms": maybe(times),
        "since_ms": maybe(times),
        "by": maybe(st.text(max_size=4)),
        "scanner": maybe(st.just("gs1:scanner-1")),
        "mode": maybe(st.sampled_from(["in", "out", "discard"])),
        "sensors": maybe(st.lists(st.text(max_size=3))),
        "severity": maybe(st.sampled_from(["alarm", "warning"])),
    },
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), records | junk),
        st.tuples(st.just("tick"), times),
        st.tuples(st.just("ack"), times),
    ),
    max_size=40,
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_any_sequence_never_raises_and_never_emits_a_float(steps: list[tuple[str, Any]]) -> None:
    eng, inv, mm = AlarmEngine(UNITS, power_gap_s=300), Inventory(UNITS, INV), MinMax()
    for op, arg in steps:
        out: list[dict[str, Any]] = []
        if op == "feed":
            for rule in (eng, inv, mm):
                out += rule.feed(arg, T0)
        elif op == "tick":
            out += eng.tick(arg) + inv.tick(arg) + mm.feed({}, arg)
        else:
            out += eng.acknowledge(arg, "button")
        for body in out:
            assert_body_ok(body)
        for view in eng.active() + inv.active():
            assert_body_ok({"type": "view", **view})
    assert_body_ok(
        {"type": "pending", "p": eng.pending() + inv.outbox.pending() + mm.outbox.pending()}
    )


readings = st.lists(
    st.tuples(
        st.integers(0, 20 * MIN),
        st.sampled_from(["probe-1", "probe-2", "door-1"]),
        st.integers(-2_000, 12_000),
    ),
    max_size=60,
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings, st.integers(1_000, 5 * MIN), st.lists(st.integers(0, 60), max_size=5))
def test_replay_of_any_live_run_gives_the_same_state_and_nothing_twice(
    steps: list[tuple[int, str, int]], tick_ms: int, ack_at: list[int]
) -> None:
    eng = AlarmEngine(UNITS, power_gap_s=300)
    station = Station([eng])
    t = T0
    for i, (dt, sensor, v) in enumerate(steps):
        for tt in range(t, t + dt, tick_ms):
            station.tick(tt)
        t += dt
        if sensor == "door-1":
            station.reading(t, sensor, "door", v % 2)
        else:
            station.reading(t, sensor, "temperature", v)
        if i in ack_at:
            for b in eng.acknowledge(t, "button"):
                station.put(b, t)
    again = AlarmEngine(UNITS, power_gap_s=300)
    assert again.replay(station.journal.records) == []
    assert again.active() == eng.active()
    later = t + 2 * 60 * MIN
    assert [b for b in again.tick(later) if b["type"] == "alarm"] == [
        b for b in eng.tick(later) if b["type"] == "alarm"
    ]


QUIET_UNITS = parse_units(
    [
        {
            "id": "fridge-1",
            "profile": "fridge",
            "probes": ["probe-1", "probe-2"],
            "door": "door-1",
            "high_delay_s": 60,
            "low_delay_s": 0,
            "freeze_delay_s": 120,
            "cumulative_window_s": 3_600,
            "cumulative_limit_s": 300,
            "silence_s": 600,
            "door_open_s": 60,
            "escalate_s": 300,
        },
    ]
)


class Recorded(Station):
    """The live loop, noting the engine's state right after each record is fed to it: that
    is what a restart at that point must rebuild from the journal alone."""

    def __init__(self, power_gap_s: int) -> None:
        self.eng = AlarmEngine(QUIET_UNITS, power_gap_s=power_gap_s)
        self.power_gap_s = power_gap_s
        super().__init__([self.eng])
        self.after: dict[int, tuple[Any, ...]] = {}

    def note(self) -> None:
        self.after[len(self.journal.records)] = (
            self.eng.now_ms, self.eng.active(), self.eng.pending())

    def _settle(self, bodies: list[dict[str, Any]], t: int, synced: bool = True) -> None:
        while bodies:
            more: list[dict[str, Any]] = []
            for b in bodies:
                rec = self.journal.seal(b, t, synced)
                more += self.eng.feed(rec, t)
                self.note()
            bodies = more

    def put(self, body: dict[str, Any], t: int, synced: bool = True) -> dict[str, Any]:
        rec = self.journal.seal(body, t, synced)
        out = self.eng.feed(rec, t)
        self.note()
        self._settle(out, t, synced)
        return rec

    def restart(self, t: int, synced: bool) -> None:
        """As gateway/app/service.py starts: replay, tick (``due``) at once, then seal what the
        replay returned, gateway_started and what the tick returned."""
        self.eng = AlarmEngine(QUIET_UNITS, power_gap_s=self.power_gap_s)
        self.rules = [self.eng]
        pending = self.eng.replay(copy.deepcopy(self.journal.records))
        self._settle([*pending, {"type": "gateway_started"}, *self.eng.tick(t)], t, synced)


gaps = st.one_of(
    st.integers(0, 90_000),  # a running gateway: ticks and readings seconds apart
    st.integers(90_000, 15 * MIN),  # around silence, escalation and the power gap
    st.integers(15 * MIN, 4 * 60 * MIN),  # an outage, or a writer that did not tick
    st.integers(-2 * MIN, -1),  # the wall clock stepped back
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("reading"), gaps, st.sampled_from(["probe-1", "probe-2", "door-1"]),
                  st.integers(-2_000, 12_000), st.booleans()),
        st.tuples(st.just("tick"), gaps),
        st.tuples(st.just("ack"), gaps),
        st.tuples(st.just("restart"), gaps, st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.sampled_from([300, 900]))
def test_any_prefix_of_the_journal_replays_to_the_live_state(
    run: list[tuple[Any, ...]], power_gap_s: int
) -> None:
    """Silence, escalation, long gaps, ticks at irregular times and restarts (a replay of
    the journal so far) anywhere: after every record, the live engine's clock, open alarms
    and derived-but-unsealed bodies are exactly what a replay of the journal up to that
    record gives. The state is a function of the journal, never of unjournaled history."""
    live = Recorded(power_gap_s)
    t = T0
    live.reading(t, "probe-1", "temperature", 5_000)
    for step in run:
        t += step[1]
        if step[0] == "reading":
            _, _, sensor, v, synced = step
            kind = "door" if sensor == "door-1" else "temperature"
            live.reading(t, sensor, kind, v % 2 if kind == "door" else v, synced)
        elif step[0] == "tick":
            live.tick(t)
        elif step[0] == "ack":
            for b in live.eng.acknowledge(t, "button"):
                live.put(b, t)
        else:
            live.restart(t, step[2])
    records = live.journal.records
    for k, (now, active, pending) in sorted(live.after.items()):
        again = AlarmEngine(QUIET_UNITS, power_gap_s=power_gap_s)
        assert again.replay(copy.deepcopy(records[:k])) == pending, f"after record {k - 1}"
        assert (again.now_ms, again.active()) == (now, active), f"after record {k - 1}"
