"""Restart = replay the journal: same state, nothing emitted twice, nothing lost.

A live run is recorded as input events (readings, ticks, acknowledgements). At many cut
points a fresh engine replays the journal so far, then the rest of the events are played
into it: the resulting journal must equal, record for record, the uninterrupted run's.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from coldchain_kit import MIN, T0, Journal, Station

from firmware_sim import coldchain_scenarios as cs
from gateway.rules.alarms import AlarmEngine
from gateway.rules.units import parse_units

UNITS = parse_units(
    [{"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], "door": "door-1"}]
)
Event = tuple[Any, ...]


def events_for(name: str, tick_ms: int = 30_000) -> list[Event]:
    data = cs.SCENARIOS[name](T0)
    out: list[Event] = []
    nxt = data[0][0]
    for t, sensor, kind, value in data:
        while nxt < t:
            out.append(("tick", nxt))
            if nxt in (T0 + 130 * MIN, T0 + 320 * MIN):
                out.append(("ack", nxt))
            nxt += tick_ms
        out.append(("reading", t, sensor, kind, value))
    return out


def play(st: Station, eng: AlarmEngine, events: list[Event]) -> list[int]:
    """Run events; returns the journal length after each one."""
    marks = []
    for ev in events:
        if ev[0] == "tick":
            st.tick(ev[1])
        elif ev[0] == "ack":
            for b in eng.acknowledge(ev[1], "button:GPIO27"):
                st.put(b, ev[1])
        else:
            st.reading(*ev[1:])
        marks.append(len(st.journal.records))
    return marks


def restarted(prefix: list[dict[str, Any]]) -> tuple[Station, AlarmEngine, list[dict[str, Any]]]:
    eng = AlarmEngine(UNITS)
    pending = eng.replay(copy.deepcopy(prefix))
    return Station([eng], Journal(records=copy.deepcopy(prefix))), eng, pending


@pytest.mark.parametrize("name", ["door_left_open", "power_cut", "probe_silent"])
def test_restart_anywhere_gives_the_same_journal(name: str) -> None:
    events = events_for(name)
    live_eng = AlarmEngine(UNITS)
    live = Station([live_eng])
    snapshots: list[list[dict[str, Any]]] = []
    marks = []
    for ev in events:
        marks += play(live, live_eng, [ev])
        snapshots.append(live_eng.active())
    assert (
        any(r["type"] == "alarm" and r["state"] == "acknowledged" for r in live.journal.records)
        or name == "probe_silent"
    )
    alarm_events = {
        i
        for i, m in enumerate(marks)
        if i and marks[i - 1] < m and live.journal.records[m - 1]["type"] == "alarm"
    }
    cuts = sorted(set(range(0, len(events), 131)) | alarm_events)
    for k in cuts:
        st, eng, pending = restarted(live.journal.records[: marks[k]])
        assert pending == [], f"cut after event {k}: replay wanted to re-emit {pending}"
        assert eng.active() == snapshots[k], f"cut after event {k}: state differs"
        play(st, eng, events[k + 1 :])
        assert st.journal.records == live.journal.records, f"cut after event {k}: journals diverge"


def test_replaying_a_whole_journal_twice_emits_nothing() -> None:
    events = events_for("door_left_open")
    eng = AlarmEngine(UNITS)
    st = Station([eng])
    play(st, eng, events)
    again = AlarmEngine(UNITS)
    assert again.replay(st.journal.records) == []
    assert again.replay(st.journal.records) == []  # feeding old records again changes nothing
    assert again.active() == eng.active()


def test_bodies_derived_but_not_sealed_before_a_crash_come_back_once() -> None:
    events = events_for("door_left_open")
    eng = AlarmEngine(UNITS)
    st = Station([eng])
    play(st, eng, events)
    recs = st.journal.records
    # the reading at 308 min cleared the high alarm; crash after sealing the reading only
    i = next(
        i
        for i, r in enumerate(recs)
        if r["type"] == "alarm" and r["alarm"] == "high" and r["state"] == "cleared"
    )
    assert recs[i - 1]["type"] == "reading"
    _, _, pending = restarted(recs[:i])
    lost = [
        {
            k: v
            for k, v in recs[i].items()
            if k not in ("v", "gateway", "seq", "time_ms", "clock_synced")
        }
    ]
    assert pending == lost
    # a tick's transitions (nothing arrived at that instant) are re-derived by the next tick
    events = events_for("probe_silent")
    eng = AlarmEngine(UNITS)
    st = Station([eng])
    play(st, eng, events)
    recs = st.journal.records
    j = next(i for i, r in enumerate(recs) if r["type"] == "alarm" and r["state"] == "raised")
    assert (recs[j]["alarm"], recs[j - 1]["type"]) == ("silent", "heartbeat")
    assert recs[j - 1]["time_ms"] < recs[j]["at_ms"] == T0 + 149 * MIN
    _, eng3, pending = restarted(recs[:j])
    assert pending == []
    out = [b for b in eng3.tick(recs[j]["time_ms"]) if b["type"] == "alarm"]
    assert out == [
        {
            k: v
            for k, v in recs[j].items()
            if k not in ("v", "gateway", "seq", "time_ms", "clock_synced")
        }
    ]


def test_a_journal_written_under_other_settings_converges() -> None:
    """The journal says high was raised (threshold 7 °C then); now it is 8 °C: the engine
    takes the journal's word, then clears it at the next evaluation, instead of leaving it."""
    j = Journal()
    j.reading(T0, "probe-1", "temperature", 7_500)
    j.seal(
        {
            "type": "alarm",
            "id": "high/fridge-1/probe-1/" + str(T0),
            "alarm": "high",
            "state": "raised",
            "severity": "alarm",
            "at_ms": T0,
            "since_ms": T0,
            "unit": "fridge-1",
            "sensor": "probe-1",
            "value": 7_500,
            "threshold": 7_000,
            "value_unit": "mC",
        },
        T0,
    )
    eng = AlarmEngine(UNITS)
    pending = eng.replay(j.records)
    assert [(b["alarm"], b["state"], b["at_ms"]) for b in pending] == [("high", "cleared", T0)]
