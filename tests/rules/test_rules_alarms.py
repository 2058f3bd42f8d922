"""The alarm engine on hand-made sequences: thresholds, delays, windows, lifecycle, power."""

from __future__ import annotations

from typing import Any

import pytest
from coldchain_kit import HOUR, MIN, T0, Journal, Station, transitions

from gateway.rules.alarms import AlarmEngine
from gateway.rules.units import parse_units


def engine(power_gap_s: int = 864_000, heartbeat_s: int = 60, **settings: Any) -> AlarmEngine:
    """Hand-made sequences have hour-long gaps between records: power is off unless asked for."""
    base = {
        "high_delay_s": 86_400,
        "low_delay_s": 86_400,
        "freeze_delay_s": 86_400,
        "cumulative_window_s": 86_400,
        "cumulative_limit_s": 86_400,
        "silence_s": 86_400,
        "door_open_s": 86_400,
        "escalate_s": 86_400,
    }  # every rule off unless a test turns it on
    base.update(settings)
    units = parse_units(
        [{"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], "door": "door-1", **base}]
    )
    return AlarmEngine(units, power_gap_s=power_gap_s, heartbeat_s=heartbeat_s)


def temps(st: Station, values: list[tuple[int, int]], sensor: str = "probe-1") -> None:
    for minute, v in values:
        st.reading(T0 + minute * MIN, sensor, "temperature", v)


def test_a_reading_equal_to_a_threshold_is_out_of_range() -> None:
    st = Station([engine(high_delay_s=0, low_delay_s=0, freeze_delay_s=0)])
    temps(st, [(0, 7_999), (1, 8_000), (2, 7_999), (3, 2_001), (4, 2_000), (5, -500), (6, 5_000)])
    assert transitions(st.journal.records) == [
        ("high", "raised", 1 * MIN),
        ("high", "cleared", 2 * MIN),
        ("low", "raised", 4 * MIN),
        ("freeze", "raised", 5 * MIN),
        ("low", "cleared", 6 * MIN),
        ("freeze", "cleared", 6 * MIN),
    ]
    high = st.journal.of_type("alarm")[0]
    assert (high["value"], high["threshold"], high["value_unit"], high["since_ms"]) == (
        8_000,
        8_000,
        "mC",
        T0 + MIN,
    )


@pytest.mark.parametrize("tick_ms", [None, 1_000, 60_000, 7 * MIN])
def test_high_raises_exactly_delay_after_onset_whatever_the_tick(tick_ms: int | None) -> None:
    st = Station([engine(high_delay_s=600)])
    readings = [
        (T0 + m * MIN, "probe-1", "temperature", 5_000 if m < 3 or m >= 40 else 9_000 + m)
        for m in range(60)
    ]
    if tick_ms is None:
        for r in readings:
            st.reading(*r)
    else:
        st.run(readings, tick_ms=tick_ms)
    assert transitions(st.journal.records) == [
        ("high", "raised", 13 * MIN),
        ("high", "cleared", 40 * MIN),
    ]
    cleared = st.journal.of_type("alarm")[-1]
    assert (cleared["since_ms"], cleared["value"], cleared["extreme"]) == (
        T0 + 3 * MIN,
        5_000,
        9_039,
    )


def test_shorter_than_the_delay_never_raises_and_the_run_restarts() -> None:
    st = Station([engine(high_delay_s=600)])
    temps(st, [(0, 9_000), (9, 7_000), (10, 9_000), (19, 7_000), (20, 9_000)])
    st.tick(T0 + 29 * MIN + 59_999)
    assert transitions(st.journal.records) == []
    st.tick(T0 + 30 * MIN)
    assert transitions(st.journal.records) == [("high", "raised", 30 * MIN)]


def test_a_return_exactly_at_the_deadline_still_completes_the_delay() -> None:
    # held at or above 8 °C for the whole 10 minutes [0, 10): the condition was met
    st = Station([engine(high_delay_s=600)])
    temps(st, [(0, 8_000), (10, 7_000)])
    assert transitions(st.journal.records) == [
        ("high", "raised", 10 * MIN),
        ("high", "cleared", 10 * MIN),
    ]


def test_freeze_needs_an_hour_continuous() -> None:
    st = Station([engine(freeze_delay_s=3_600)])
    temps(st, [(0, -600), (59, 500), (60, -500), (180, 3_000)])
    assert transitions(st.journal.records) == [
        ("freeze", "raised", 120 * MIN),
        ("freeze", "cleared", 180 * MIN),
    ]
    assert st.journal.of_type("alarm")[-1]["extreme"] == -500


def test_freezer_profile_has_no_freeze_rule() -> None:
    units = parse_units([{"id": "f", "profile": "freezer", "probes": ["p"], "high_delay_s": 0}])
    st = Station([AlarmEngine(units)])
    temps(st, [(0, -20_000), (1, -15_000)], sensor="p")
    assert transitions(st.journal.records) == [("high", "raised", MIN)]


def test_cumulative_time_out_of_range_in_a_sliding_window() -> None:
    st = Station([engine(cumulative_window_s=600 * 60, cumulative_limit_s=3_600)])
    temps(st, [(0, 9_000), (20, 5_000), (120, 1_500), (140, 5_000), (240, 9_000), (270, 5_000)])
    st.tick(T0 + 12 * HOUR)  # nothing else arrives: the window slides on its own
    # 20 + 20 (low counts too) + 20 = 60 min at 260; 70 min by 270; the first excursion
    # slides out from 600 min, so the sum drops below 60 min at 610 min + 1 ms.
    assert transitions(st.journal.records) == [
        ("cumulative", "raised", 260 * MIN),
        ("cumulative", "cleared", 610 * MIN + 1),
    ]
    raised, cleared = st.journal.of_type("alarm")
    assert (raised["value"], raised["threshold"], raised["window_ms"], raised["since_ms"]) == (
        60 * MIN,
        60 * MIN,
        600 * MIN,
        T0,
    )
    assert cleared["value"] == 60 * MIN - 1


def test_lifecycle_escalate_ack_clear() -> None:
    eng = engine(high_delay_s=0, escalate_s=1_800)
    st = Station([eng])
    temps(st, [(0, 9_000)])
    (view,) = eng.active()
    assert (view["state"], view["acknowledged"]) == ("raised", False)
    acks = eng.acknowledge(T0 + 5 * MIN, by="button:GPIO27")
    assert [(a["state"], a["by"], a["id"]) for a in acks] == [
        ("acknowledged", "button:GPIO27", view["id"])
    ]
    assert (
        eng.acknowledge(T0 + 5 * MIN + 500, by="button:GPIO27") == []
    )  # double press: asked already
    assert eng.active()[0]["acknowledged"] is False  # takes effect when the sealed record is fed
    for a in acks:
        st.put(a, T0 + 5 * MIN)
    assert (
        eng.active()[0]["acknowledged"] is True and eng.active()[0]["state"] == "raised"
    )  # ack never clears
    st.tick(T0 + 30 * MIN)
    (view,) = eng.active()
    assert (view["state"], view["acknowledged"]) == (
        "escalated",
        False,
    )  # escalation wants a fresh ack
    temps(st, [(40, 5_000)])
    assert eng.active()[0]["state"] == "cleared"  # cleared but nobody acknowledged: still open
    for a in eng.acknowledge(T0 + 41 * MIN, by="user:ana"):
        st.put(a, T0 + 41 * MIN)
    assert eng.active() == []
    assert transitions(st.journal.records) == [
        ("high", "raised", 0),
        ("high", "acknowledged", 5 * MIN),
        ("high", "escalated", 30 * MIN),
        ("high", "cleared", 40 * MIN),
        ("high", "acknowledged", 41 * MIN),
    ]


def test_door_open_too_long() -> None:
    st = Station([engine(door_open_s=300)])
    for minute, v in [(0, 0), (10, 1), (14, 0), (20, 1), (27, 0)]:
        st.reading(T0 + minute * MIN, "door-1", "door", v)
    assert transitions(st.journal.records) == [
        ("door", "raised", 25 * MIN),
        ("door", "cleared", 27 * MIN),
    ]
    assert st.journal.of_type("alarm")[0]["delay_ms"] == 300_000


def test_probe_silent_too_long_and_never_heard_probes() -> None:
    units = parse_units(
        [
            {
                "id": "fridge-1",
                "profile": "fridge",
                "probes": ["probe-1", "probe-2"],
                "silence_s": 1_800,
                "escalate_s": 86_400,
            }
        ]
    )
    eng = AlarmEngine(units)
    st = Station([eng])
    st.run(
        [(T0 + m * MIN, "probe-1", "temperature", 5_000) for m in list(range(10)) + [45]],
        tick_ms=MIN,
        until_ms=T0 + 50 * MIN,
    )
    # probe-2 never spoke: silent from the first record; probe-1 last spoke at 9 min.
    assert transitions(st.journal.records) == [
        ("silent", "raised", 30 * MIN),
        ("silent", "raised", 39 * MIN),
        ("silent", "cleared", 45 * MIN),
    ]
    assert [(a["sensor"], a["since_ms"]) for a in st.journal.of_type("alarm")] == [
        ("probe-2", T0),
        ("probe-1", T0 + 9 * MIN),
        ("probe-1", T0 + 9 * MIN),
    ]


def test_power_gap_between_synced_records() -> None:
    st = Station([engine(power_gap_s=300, silence_s=1_800)])
    temps(st, [(0, 5_000), (4, 5_000), (14, 5_000), (15, 5_000)])
    assert transitions(st.journal.records) == [
        ("power", "raised", 14 * MIN),
        ("power", "cleared", 14 * MIN),
    ]
    raised = st.journal.of_type("alarm")[0]
    assert (
        raised["since_ms"],
        raised["value"],
        raised["threshold"],
        raised["reason"],
        raised["severity"],
    ) == (T0 + 4 * MIN, 10 * MIN, 5 * MIN, "gap", "warning")


def test_restart_hint_quick_restart_and_unsynced_clock() -> None:
    st = Station([engine(power_gap_s=300)])
    temps(st, [(0, 5_000)])
    st.put({"type": "gateway_started"}, T0 + 30_000)  # 30 s: a quick restart, not an outage
    assert transitions(st.journal.records) == []
    st.put({"type": "gateway_started"}, T0 + 20 * MIN)
    assert transitions(st.journal.records) == [
        ("power", "raised", 20 * MIN),
        ("power", "cleared", 20 * MIN),
    ]
    assert st.journal.of_type("alarm")[0]["reason"] == "restart"
    # booted with no RTC: the gap cannot be measured, the restart is still reported (no value)
    st.put({"type": "gateway_started"}, T0 - 50 * MIN, synced=False)
    last = st.journal.of_type("alarm")[-1]
    assert (last["reason"], "value" in last, last["at_ms"]) == ("restart", False, T0 + 20 * MIN)
    # a clock step between an unsynced and a synced record is not an outage
    n = len(st.journal.of_type("alarm"))
    st.reading(T0 + 300 * MIN, "probe-1", "temperature", 5_000)
    assert len(st.journal.of_type("alarm")) == n


def test_after_an_outage_silence_counts_afresh() -> None:
    st = Station([engine(power_gap_s=300, silence_s=1_800)])
    temps(st, [(0, 5_000)])
    st.put({"type": "gateway_started"}, T0 + 120 * MIN)  # off for 2 h: power, not a silent probe
    st.idle(T0 + 120 * MIN, T0 + 149 * MIN)
    assert [a for a, _, _ in transitions(st.journal.records)] == ["power", "power"]
    st.tick(T0 + 150 * MIN)
    assert transitions(st.journal.records)[-1] == ("silent", "raised", 150 * MIN)


def test_heartbeat_keeps_a_running_but_quiet_gateway_from_looking_off() -> None:
    eng = engine(power_gap_s=300)
    assert eng.tick(T0) == []  # before any record there is nothing to time or to beat for
    st = Station([eng])
    temps(st, [(0, 5_000)])
    assert eng.tick(T0 + 59_999) == []
    assert eng.tick(T0 + 60_000) == [{"type": "heartbeat", "at_ms": T0 + 60_000}]
    assert eng.tick(T0 + 61_000) == []  # asked for already
    st.idle(T0 + 2 * MIN, T0 + 3 * HOUR)
    temps(st, [(181, 5_000)])
    assert transitions(st.journal.records) == []
    assert 170 < len(st.journal.of_type("heartbeat")) < 181


def test_feed_takes_a_record_at_its_own_time() -> None:
    eng = engine(high_delay_s=600)
    j = Journal()
    eng.feed(j.reading(T0, "probe-1", "temperature", 9_000), now_ms=T0 + 5 * HOUR)
    assert eng.now_ms == T0 and eng.active() == []
    assert [b["at_ms"] for b in eng.tick(T0 + 5 * HOUR) if b["type"] == "alarm"] == [T0 + 10 * MIN]


def test_records_older_than_the_engine_clock_are_taken_at_the_engine_clock() -> None:
    eng = engine(high_delay_s=0)
    j = Journal()
    eng.feed(j.reading(T0 + HOUR, "probe-1", "temperature", 5_000), T0 + HOUR)
    out = eng.feed(j.reading(T0, "probe-1", "temperature", 9_000), T0)  # NTP stepped back
    assert [(b["state"], b["at_ms"]) for b in out] == [("raised", T0 + HOUR)]


def test_a_tick_that_derived_nothing_leaves_the_clock_where_the_records_put_it() -> None:
    """Nothing of such a tick is journaled, so a replay cannot know it ran: a record the
    wall clock stepped back behind it is taken at its own time, live as in a replay."""
    eng = engine(high_delay_s=0)
    st = Station([eng])
    temps(st, [(0, 5_000)])
    assert eng.tick(T0 + 30_000) == []
    assert eng.now_ms == T0
    st.reading(T0 + 20_000, "probe-1", "temperature", 9_000)  # NTP stepped back 10 s
    assert [r["at_ms"] for r in st.journal.of_type("alarm")] == [T0 + 20_000]
    again = engine(high_delay_s=0)
    assert again.replay(st.journal.records) == []
    assert again.active() == eng.active()


def test_alarms_from_other_rules_are_adopted_for_panel_and_ack() -> None:
    eng = engine()
    st = Station([eng])
    temps(st, [(0, 5_000)])
    foreign = {
        "type": "alarm",
        "id": "expired_scan/fridge-1/7",
        "alarm": "expired_scan",
        "state": "raised",
        "severity": "alarm",
        "at_ms": T0 + MIN,
        "since_ms": T0 + MIN,
        "unit": "fridge-1",
        "gtin": "09506000134352",
        "lot": "A1",
        "expiry": "2025-12-31",
    }
    st.put(foreign, T0 + MIN)
    st.put({**foreign, "state": "cleared"}, T0 + MIN)
    (view,) = eng.active()
    assert (view["alarm"], view["state"], view["gtin"], view["expiry"]) == (
        "expired_scan",
        "cleared",
        "09506000134352",
        "2025-12-31",
    )
    for a in eng.acknowledge(T0 + 2 * MIN, "user:ana"):
        st.put(a, T0 + 2 * MIN)
    assert eng.active() == []
