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


def restart_like_the_service(st: Station, t: int) -> tuple[Station, AlarmEngine]:
    """What gateway/app/service.py does on start: replay, then ``due`` (a tick) at the start time
    BEFORE anything is sealed, then seal [derived-but-unsealed..., gateway_started, tick's]."""
    eng = AlarmEngine(UNITS)
    pending = eng.replay(copy.deepcopy(st.journal.records))
    new = Station([eng], Journal(records=copy.deepcopy(st.journal.records)))
    ticked = eng.tick(t)
    new._settle([*pending, {"type": "gateway_started"}, *ticked], t)
    return new, eng


def replayed(records: list[dict[str, Any]]) -> AlarmEngine:
    eng = AlarmEngine(UNITS)
    assert eng.replay(copy.deepcopy(records)) == []
    return eng


def test_restart_after_an_outage_longer_than_the_silence_keeps_the_replayed_state() -> None:
    """The colleague's report: the restarted engine ticked through the outage before it saw
    gateway_started, raised and escalated 'silent' (the probe was not heard because nobody
    listened), while a replay of that same journal handles the restart first, resets the
    silence and clears the alarm: live 'escalated', replay 'cleared'."""
    st = Station([AlarmEngine(UNITS)])  # defaults: silence 30 min, escalate 30 min, gap 5 min
    st.reading(T0, "probe-1", "temperature", 5_000)
    st.idle(T0, T0 + 10 * MIN)
    back = T0 + 5 * 60 * MIN  # off for almost 5 h: silence and escalation fell in the outage
    st2, live = restart_like_the_service(st, back)
    assert live.active() == replayed(st2.journal.records).active()
    # and it is the replay's answer that is right: silence counts afresh after an outage
    assert [(a["alarm"], a["state"]) for a in live.active()] == [("power", "cleared")]
    assert [r["alarm"] for r in st2.journal.of_type("alarm")] == ["power", "power"]
    st2.idle(back, back + 29 * MIN)
    assert [a["alarm"] for a in live.active()] == ["power"]
    st2.tick(back + 30 * MIN)  # but the probe still says nothing: 30 min after the restart
    assert [(a["alarm"], a["state"], a["since_ms"]) for a in live.active()][-1] == (
        "silent", "raised", back)
    assert live.active() == replayed(st2.journal.records).active()


def test_a_tick_late_by_more_than_the_power_gap_keeps_the_replayed_state() -> None:
    """The same divergence without a restart: the writer did not tick (or could not journal)
    for longer than power_gap_s, then one tick derived transitions inside that gap, and the
    first record sealed after it revealed the gap, which a replay handles before them."""
    st = Station([AlarmEngine(UNITS)])
    st.reading(T0, "probe-1", "temperature", 5_000)
    st.idle(T0, T0 + 10 * MIN)
    late = T0 + 3 * 60 * MIN
    st.tick(late)
    live = st.rules[0]
    assert isinstance(live, AlarmEngine)
    assert live.active() == replayed(st.journal.records).active()
    # the gap reads as an outage (power), and silence counts afresh from its end
    assert [(a["alarm"], a["state"]) for a in live.active()] == [("power", "cleared")]
