"""Bands and rules on their own: threshold equality, composition, exact deadlines."""

from __future__ import annotations

import pytest

from gateway.rules.conditions import (
    AllOf,
    AnyOf,
    AtOrAbove,
    AtOrBelow,
    Cumulative,
    Silent,
    Sustained,
    Timeline,
)

MIN = 60_000


def test_a_value_equal_to_the_limit_is_outside() -> None:
    assert AtOrAbove(8_000).outside(8_000) and not AtOrAbove(8_000).outside(7_999)
    assert AtOrBelow(2_000).outside(2_000) and not AtOrBelow(2_000).outside(2_001)
    band = AnyOf((AtOrBelow(2_000), AtOrAbove(8_000)))
    assert [band.outside(v) for v in (1_999, 2_000, 2_001, 7_999, 8_000)] == [
        True,
        True,
        False,
        False,
        True,
    ]
    assert AllOf((AtOrAbove(0), AtOrBelow(10))).outside(5) and not AllOf(
        (AtOrAbove(0), AtOrBelow(10))
    ).outside(11)


@pytest.mark.parametrize("cls", [AnyOf, AllOf])
def test_an_empty_composition_is_an_error_not_a_silent_pass(cls: type) -> None:
    with pytest.raises(ValueError, match="at least one band"):
        cls(())


def test_sustained_announces_its_deadline_and_resets_on_return() -> None:
    tl, rule = Timeline(AtOrAbove(8_000)), Sustained(10 * MIN)
    tl.observe(0, 8_000)
    v = rule.check(tl, 0)
    assert (v.present, v.next_ms) == (False, 10 * MIN)
    assert rule.check(tl, 10 * MIN - 1).present is False
    v = rule.check(tl, 10 * MIN)
    assert (v.present, v.since_ms, v.at_ms, v.value) == (True, 0, 10 * MIN, 8_000)
    tl.observe(11 * MIN, 7_999)
    assert rule.check(tl, 11 * MIN).present is False
    assert Sustained(0).check(tl, 11 * MIN).present is False
    tl.observe(12 * MIN, 9_000)
    assert Sustained(0).check(tl, 12 * MIN).at_ms == 12 * MIN


def test_silent_counts_from_the_last_reading() -> None:
    tl, rule = Timeline(AtOrAbove(0)), Silent(30 * MIN)
    assert rule.check(tl, 10**9).present is False  # never heard and no reference: no claim
    tl.observe(5 * MIN, 4_000)
    assert rule.check(tl, 35 * MIN - 1).next_ms == 35 * MIN
    v = rule.check(tl, 40 * MIN)
    assert (v.present, v.since_ms, v.at_ms, v.value) == (True, 5 * MIN, 35 * MIN, 35 * MIN)


def test_cumulative_deadlines_are_exact_both_ways() -> None:
    # 20 min outside at 0, 2 h and 4 h; limit 60 min in a 10 h window.
    tl = Timeline(AtOrAbove(8_000), keep_ms=600 * MIN)
    rule = Cumulative(600 * MIN, 60 * MIN)
    for start in (0, 120 * MIN):
        tl.observe(start, 9_000)
        tl.observe(start + 20 * MIN, 5_000)
    tl.observe(240 * MIN, 9_000)
    v = rule.check(tl, 240 * MIN)
    assert (v.present, v.value, v.next_ms) == (False, 40 * MIN, 260 * MIN)  # 40 + 20 = limit
    v = rule.check(tl, 260 * MIN)
    assert (v.present, v.value, v.since_ms) == (True, 60 * MIN, 0)
    tl.observe(270 * MIN, 5_000)  # 70 min in the window now
    v = rule.check(tl, 270 * MIN)
    # the first run starts leaving the window at 600 min; 70 - x < 60 first at x = 10 min + 1 ms
    assert (v.present, v.next_ms) == (True, 610 * MIN + 1)
    assert rule.check(tl, 610 * MIN).present is True
    v = rule.check(tl, 610 * MIN + 1)
    assert (v.present, v.value) == (False, 60 * MIN - 1)


def test_timeline_forgets_runs_older_than_its_window() -> None:
    tl = Timeline(AtOrAbove(8_000), keep_ms=60 * MIN)
    for k in range(100):
        tl.observe(k * 10 * MIN, 9_000 if k % 2 == 0 else 5_000)
    assert len(tl.runs) <= 4
