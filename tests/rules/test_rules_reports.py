"""MKT against hand-computed values, min/max with its reset record, daily excursion summary."""

from __future__ import annotations

import pytest
from coldchain_kit import HOUR, MIN, T0, Journal, Station

from gateway.rules.inventory import Residency
from gateway.rules.reports import MinMax, excursion_summary, mkt_mc, mkt_of_readings
from gateway.rules.units import parse_units


@pytest.mark.parametrize(
    "weighted,want",
    [
        # USP <1079.2> / FACTS.md: 23 h at 5 °C and 1 h at 25 °C -> 7.756 °C (arithmetic mean 5.833)
        ([(23 * HOUR, 5_000), (1 * HOUR, 25_000)], 7_756),
        # 12 h at 2 °C + 12 h at 8 °C: 10000 / -ln((e^(-10000/275.15) + e^(-10000/281.15)) / 2)
        # = 278.686 K -> 5.536 °C: MKT sits above the 5.000 mean, as it always does
        ([(12 * HOUR, 2_000), (12 * HOUR, 8_000)], 5_536),
        # ultra-cold: exponents near -52 must not lose precision; same formula gives -62.685 °C
        ([(HOUR, -70_000), (HOUR, -60_000)], -62_685),
        ([(24 * HOUR, 5_000)], 5_000),
        ([(HOUR, 5_000), (0, 40_000)], 5_000),  # a zero-length reading weighs nothing
    ],
)
def test_mkt_hand_values(weighted: list[tuple[int, int]], want: int) -> None:
    got = mkt_mc(weighted)
    assert isinstance(got, int) and abs(got - want) <= 1


def test_mkt_weights_each_reading_by_the_time_it_stands_for() -> None:
    # a reading at 5 °C at 0 h, then 25 °C at 23 h, up to 24 h: the same 23 h / 1 h split
    assert mkt_of_readings([(T0, 5_000), (T0 + 23 * HOUR, 25_000)], T0, T0 + 24 * HOUR) == 7_756
    # a reading before the span holds into it; one after the span is ignored
    assert (
        mkt_of_readings(
            [(T0 - HOUR, 5_000), (T0 + 23 * HOUR, 25_000), (T0 + 30 * HOUR, 40_000)],
            T0,
            T0 + 24 * HOUR,
        )
        == 7_756
    )
    with pytest.raises(ValueError, match="positive total duration"):
        mkt_of_readings([], T0, T0 + HOUR)


def test_minmax_since_reset_and_the_reset_record() -> None:
    mm = MinMax(["probe-1"])
    st = Station([mm])
    for minute, v in [(0, 5_000), (10, 7_200), (20, 3_100), (30, 4_800)]:
        st.reading(T0 + minute * MIN, "probe-1", "temperature", v)
    st.reading(T0 + 31 * MIN, "probe-9", "temperature", 99_000)  # not this unit's probe
    assert mm.stats() == {
        "probe-1": {
            "current": 4_800,
            "current_ms": T0 + 30 * MIN,
            "min": 3_100,
            "min_ms": T0 + 20 * MIN,
            "max": 7_200,
            "max_ms": T0 + 10 * MIN,
            "since_ms": T0,
        }
    }
    reset = mm.reset_body(T0 + 8 * HOUR, by="user:ana")
    assert mm.stats()["probe-1"]["max"] == 7_200  # effective when its sealed record is fed
    st.reading(
        T0 + 8 * HOUR, "probe-1", "temperature", 8_100
    )  # sealed before the reset: old period
    st.put(reset, T0 + 8 * HOUR)
    period = st.journal.of_type("minmax")[-1]
    assert (period["id"], period["reset_seq"], period["by"], period["to_ms"]) == (
        "minmax/6",
        6,
        "user:ana",
        T0 + 8 * HOUR,
    )
    assert (
        period["probes"]["probe-1"]["max"] == 8_100 and period["probes"]["probe-1"]["min"] == 3_100
    )
    # a new period starts from the temperature standing now, like a min/max thermometer
    assert mm.stats()["probe-1"] == {
        "current": 8_100,
        "current_ms": T0 + 8 * HOUR,
        "min": 8_100,
        "min_ms": T0 + 8 * HOUR,
        "max": 8_100,
        "max_ms": T0 + 8 * HOUR,
        "since_ms": T0 + 8 * HOUR,
    }
    st.reading(T0 + 9 * HOUR, "probe-1", "temperature", 4_000)
    again = MinMax(["probe-1"])
    assert again.replay(st.journal.records) == [] and again.stats() == mm.stats()
    crashed = MinMax(["probe-1"])  # the reset was sealed, its period record was not
    assert [b["id"] for b in crashed.replay(st.journal.records[:7])] == ["minmax/6"]


def test_daily_excursion_summary_with_lots() -> None:
    unit = parse_units([{"id": "fridge-1", "profile": "fridge", "probes": ["p1", "p2"]}])[
        "fridge-1"
    ]
    j = Journal()
    day, end = T0, T0 + 24 * HOUR
    j.reading(day - HOUR, "p1", "temperature", 8_500)  # held into the day: out of range from 00:00
    j.reading(day + 30 * MIN, "p1", "temperature", 5_000)
    j.reading(day + 10 * HOUR, "p1", "temperature", 8_000)  # equal to the limit: out of range
    j.reading(day + 10 * HOUR + 20 * MIN, "p1", "temperature", 6_000)
    j.reading(day, "p2", "temperature", 4_000)
    j.reading(day + 10 * HOUR + 10 * MIN, "p2", "temperature", 1_500)  # overlaps p1's excursion
    j.reading(day + 10 * HOUR + 40 * MIN, "p2", "temperature", 4_500)
    j.reading(
        day + 23 * HOUR + 50 * MIN, "p2", "temperature", 9_000
    )  # runs past midnight: cut there
    j.reading(end + HOUR, "p2", "temperature", 30_000)  # tomorrow: ignored
    lots = [
        Residency("fridge-1", "09506000134352", "A1", day - 48 * HOUR, None),  # inside all day
        Residency("fridge-1", "09506000134352", "B2", day + HOUR, day + 9 * HOUR),  # out by 09:00
        Residency("fridge-1", "09506000134352", "C3", day + 10 * HOUR + 39 * MIN, day + 12 * HOUR),
        Residency("freezer-1", "09506000134352", "D4", day, None),
    ]  # another unit
    s = excursion_summary(unit, j.records, day, end, lots)
    # excursions: [00:00, 00:30), [10:00, 10:40) (p1 10:00-10:20 joined by p2 10:10-10:40), [23:50, 24:00)
    assert (s["excursions"], s["out_of_range_ms"]) == (3, 30 * MIN + 40 * MIN + 10 * MIN)
    assert (s["min_mc"], s["max_mc"], s["covered_ms"]) == (1_500, 9_000, 24 * HOUR)
    assert s["lots"] == [
        {"gtin": "09506000134352", "lot": "A1"},
        {"gtin": "09506000134352", "lot": "C3"},
    ]
    p1 = s["probes"]["p1"]
    assert (p1["excursions"], p1["out_of_range_ms"], p1["min_mc"], p1["max_mc"]) == (
        2,
        50 * MIN,
        5_000,
        8_500,
    )
    assert isinstance(p1["mkt_mc"], int) and 5_000 < p1["mkt_mc"] < 8_500
    assert (s["type"], s["id"], s["unit"], s["from_ms"], s["to_ms"]) == (
        "excursion_summary",
        f"excursions/fridge-1/{day}",
        "fridge-1",
        day,
        end,
    )


def test_summary_of_a_day_without_data() -> None:
    unit = parse_units([{"id": "fridge-1", "profile": "fridge", "probes": ["p1"]}])["fridge-1"]
    s = excursion_summary(unit, [], T0, T0 + 24 * HOUR)
    assert (s["covered_ms"], s["excursions"], s["probes"], "min_mc" in s) == (
        0,
        0,
        {"p1": {"covered_ms": 0}},
        False,
    )
