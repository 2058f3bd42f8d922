"""Each simulated scenario through the alarm engine gives exactly the expected alarms, at
concrete times, cross-checked against a brute-force reading of the same data."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from coldchain_kit import HOUR, MIN, T0, Station, transitions

from firmware_sim import coldchain_scenarios as cs
from gateway.rules.alarms import AlarmEngine
from gateway.rules.units import parse_units

UNITS = parse_units(
    [{"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], "door": "door-1"}]
)
# defaults: high/low 10 min, cumulative 60 min in 24 h, silence 30 min, door 5 min, escalate 30 min

EXPECTED = {
    "normal_day": [],
    "door_left_open": [
        ("door", "raised", 125),
        ("high", "raised", 138),
        ("door", "escalated", 155),
        ("high", "escalated", 168),
        ("cumulative", "raised", 188),
        ("cumulative", "escalated", 218),
        ("door", "cleared", 300),
        ("high", "cleared", 308),
    ],
    "compressor_failure": [
        ("high", "raised", 170),
        ("high", "escalated", 200),
        ("cumulative", "raised", 220),
        ("cumulative", "escalated", 250),
    ],
    "power_cut": [
        ("high", "raised", 170),
        ("high", "escalated", 200),
        ("cumulative", "raised", 220),
        ("cumulative", "escalated", 250),
        ("high", "cleared", 366),
    ],
    "probe_silent": [("silent", "raised", 149), ("silent", "escalated", 179)],
}


def run(name: str) -> tuple[Station, list[tuple[int, str, str, int]]]:
    data = cs.SCENARIOS[name](T0)
    st = Station([AlarmEngine(UNITS)])
    # the silent probe's scenario is watched for 2 h after its last reading; the others end
    # with their data (the probe stops with the simulation, not with a fault)
    st.run(data, tick_ms=10_000, until_ms=data[-1][0] + (2 * HOUR if name == "probe_silent" else 0))
    return st, data


def minutes(records: Sequence[dict]) -> list[tuple[str, str, float]]:
    return [(a, s, ms / MIN) for a, s, ms in transitions(records)]


def temps(data: Sequence[tuple[int, str, str, int]]) -> list[tuple[int, int]]:
    return [(t, v) for t, _, k, v in data if k == "temperature"]


def brute_first_sustained(readings: list[tuple[int, int]], limit: int, delay_ms: int) -> int | None:
    """Second by second: first instant the held value has been >= limit for delay_ms."""
    start = None
    i = 0
    for t in range(readings[0][0], readings[-1][0] + 1, 1_000):
        while i + 1 < len(readings) and readings[i + 1][0] <= t:
            i += 1
        if readings[i][1] >= limit:
            start = t if start is None else start
            if t - start >= delay_ms:
                return t
        else:
            start = None
    return None


def brute_cumulative(
    readings: list[tuple[int, int]], low: int, high: int, limit_ms: int
) -> int | None:
    total, i = 0, 0
    for t in range(readings[0][0], readings[-1][0] + 1, 1_000):
        if total >= limit_ms:
            return t
        while i + 1 < len(readings) and readings[i + 1][0] <= t:
            i += 1
        total += 1_000 if not low < readings[i][1] < high else 0
    return None


@pytest.mark.parametrize("name", list(EXPECTED))
def test_scenario_gives_exactly_the_expected_alarms(name: str) -> None:
    st, _ = run(name)
    assert minutes(st.journal.records) == [(a, s, float(m)) for a, s, m in EXPECTED[name]]
    # one instance per alarm kind, and every transition of it carries the same id
    ids = {r["alarm"]: set() for r in st.journal.of_type("alarm")}
    for r in st.journal.of_type("alarm"):
        ids[r["alarm"]].add(r["id"])
    assert all(len(v) == 1 for v in ids.values())


@pytest.mark.parametrize("name", ["door_left_open", "compressor_failure", "power_cut"])
def test_raise_times_match_a_brute_force_reading_of_the_data(name: str) -> None:
    st, data = run(name)
    at = {(r["alarm"], r["state"]): r["at_ms"] for r in st.journal.of_type("alarm")}
    assert at[("high", "raised")] == brute_first_sustained(temps(data), 8_000, 10 * MIN)
    assert at[("cumulative", "raised")] == brute_cumulative(temps(data), 2_000, 8_000, HOUR)
    raised = next(r for r in st.journal.of_type("alarm") if r["alarm"] == "high")
    peak = max(v for t, v in temps(data) if raised["since_ms"] <= t <= at[("high", "raised")])
    assert raised["value"] >= 8_000 and raised["since_ms"] == at[("high", "raised")] - 10 * MIN
    assert peak >= raised["value"]


def test_door_scenario_door_times_come_from_the_contact() -> None:
    st, data = run("door_left_open")
    opened = next(t for t, s, k, v in data if k == "door" and v == 1 and t >= T0 + 2 * HOUR)
    closed = next(t for t, s, k, v in data if k == "door" and v == 0 and t > opened)
    assert (opened, closed) == (T0 + 120 * MIN, T0 + 300 * MIN)
    door = [r for r in st.journal.of_type("alarm") if r["alarm"] == "door"]
    assert [(r["state"], r["at_ms"], r["since_ms"]) for r in door] == [
        ("raised", opened + 5 * MIN, opened),
        ("escalated", opened + 35 * MIN, opened),
        ("cleared", closed, opened),
    ]


def test_silent_probe_counts_from_its_last_reading() -> None:
    st, data = run("probe_silent")
    last = temps(data)[-1][0]
    assert last == T0 + 119 * MIN
    raised = st.journal.of_type("alarm")[0]
    assert (raised["since_ms"], raised["at_ms"]) == (last, last + 30 * MIN)


def test_power_cut_with_the_gateway_down_too() -> None:
    """Same circuit: the gateway hears nothing for 4 h; on restart it reports the outage."""
    data = cs.power_cut(T0, gateway_down=True)
    assert not [r for r in data if T0 + 120 * MIN <= r[0] < T0 + 360 * MIN]
    st = Station([AlarmEngine(UNITS)])
    st.run([r for r in data if r[0] < T0 + 120 * MIN])
    last_before = st.journal.records[-1]["time_ms"]
    st.put({"type": "gateway_started"}, T0 + 360 * MIN)  # sealed before the run's readings
    st.run([r for r in data if r[0] >= T0 + 360 * MIN], until_ms=T0 + 12 * HOUR)
    assert minutes(st.journal.records) == [("power", "raised", 360.0), ("power", "cleared", 360.0)]
    power = st.journal.of_type("alarm")[0]
    assert (power["reason"], power["since_ms"], power["value"]) == (
        "restart",
        last_before,
        T0 + 360 * MIN - last_before,
    )
    # Known limit: the fridge was above 8 °C for hours while nobody listened, and back in
    # range 6 min after power returned, so no high alarm: the power alarm is the evidence.
    first_after = [v for t, v in temps(data) if t >= T0 + 360 * MIN][:7]
    assert first_after[0] > 10_000 and first_after[-1] < 8_000
