"""Restart = replay the journal: same state, nothing emitted twice, nothing lost."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from custody_kit import HOUR, Event, Rig, events, play, stations_for, strip

from firmware_sim.waste_route import T0, waste_route
from gateway.custody.reconcile import Reconciler
from gateway.custody.settings import ReconcileConfig

RC = ReconcileConfig(missing_after_s=4 * 3600)
ROUTE = waste_route()
EVENTS = events([ln for p in ROUTE.stations for ln in p.lines], T0 + 5 * HOUR, tick_ms=30_000)


def fresh() -> Rig:
    return Rig("gw-bench", [*stations_for(ROUTE, None), Reconciler(RC)])


@pytest.fixture(scope="module")
def reference() -> Rig:
    r = fresh()
    play(r, EVENTS)
    return r


def restart(before: Rig) -> tuple[Rig, list[dict[str, Any]]]:
    """A new gateway process on the same journal (the filter's state carried over: it is not
    what is under test here)."""
    after = fresh()
    after.records = copy.deepcopy(before.records)
    after.filter = copy.deepcopy(before.filter)
    pending = [b for c in after.consumers for b in c.replay(after.records)]  # type: ignore[attr-defined]
    return after, pending


def bodies(r: Rig) -> list[str]:
    return sorted(json.dumps(strip(x), sort_keys=True) for x in r.records if x["type"] != "reading")


CUTS = sorted({*range(0, 260, 7), 300, 420, len(EVENTS) - 1})


@pytest.mark.parametrize("cut", CUTS)
def test_replay_then_continue_equals_the_uninterrupted_run(reference: Rig, cut: int) -> None:
    before = fresh()
    play(before, EVENTS[:cut])
    after, pending = restart(before)
    assert pending == []
    play(after, EVENTS[cut:])
    assert after.records == reference.records


@pytest.mark.parametrize("cut", [c for c in CUTS if c > 10])
def test_crash_between_deriving_and_sealing_loses_and_doubles_nothing(reference: Rig, cut: int) -> None:
    before = fresh()
    play(before, EVENTS[:cut])
    last_input = max(i for i, r in enumerate(before.records) if r["type"] == "reading")
    lost = [strip(r) for r in before.records[last_input + 1:]]
    before.records = before.records[:last_input + 1]
    after, pending = restart(before)
    derived_by_inputs = [b for b in lost if not (b["type"] == "alarm" and b["alarm"] == "missing-bin")]
    assert sorted(map(json.dumps, pending)) == sorted(map(json.dumps, derived_by_inputs))
    t = before.records[-1]["time_ms"]
    after._run([after.seal(b, t) for b in pending], t)
    play(after, EVENTS[cut:])
    assert bodies(after) == bodies(reference)


def test_replay_emits_nothing_and_keeps_counters_quiet(reference: Rig) -> None:
    after, pending = restart(reference)
    assert pending == []
    n = len(after.records)
    after.tick(T0 + 5 * HOUR + 1)
    assert len(after.records) == n
    st = after.consumers[0]
    assert st.counts["custody.recorded"] == 5  # type: ignore[attr-defined]


def test_session_survives_a_restart() -> None:
    plan = ROUTE.station("loaded")
    evs: list[Event] = events(plan.lines, plan.lines[-1].t_ms)
    half = next(i for i, e in enumerate(evs) if e[0] == "line" and e[2].adapter == "ad_scale") + 1
    before = Rig("gw-truck", list(stations_for(ROUTE, "gw-truck")))
    play(before, evs[:half])
    after = Rig("gw-truck", list(stations_for(ROUTE, "gw-truck")))
    after.records, after.filter = copy.deepcopy(before.records), copy.deepcopy(before.filter)
    assert after.consumers[0].replay(after.records) == []  # type: ignore[attr-defined]
    st = after.consumers[0]
    assert st.desk.session is not None and st.desk.session.route == "M2026-0042"  # type: ignore[attr-defined]
    play(after, evs[half:])
    assert len(after.of("custody")) == 5 and after.of("custody_refusal") == []
