"""Restart = replay the journal: same state, nothing emitted twice, nothing lost."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from custody_kit import HOUR, MIN, SEC, Event, Rig, Writer, events, play, stations_for, strip

from firmware_sim.waste_route import T0, waste_route
from gateway.core.observation import Observation
from gateway.rules.custody.events import CustodyStation
from gateway.rules.custody.operators import parse_operators
from gateway.rules.custody.reconcile import Reconciler
from gateway.rules.custody.settings import ReconcileConfig, station

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


# -- ticks move no clock that a record could contradict -----------------------------------
# A tick is not journaled: if it ran a clock on without deriving anything, a record the wall
# clock then stepped back behind it was taken at the tick's time live, at its own time in a
# replay (the station replays the journal at start): two states from one journal.

OPS = parse_operators([{"badge": "04A23B1C", "name": "Ana", "org": "H", "role": "generator"},
                       {"badge": "8F3A2B1C", "name": "Chen", "org": "P", "role": "facility"}])
DOCK = station("dock", "handed_over", "L", ["badge:r", "epc:r", "gs1:s", "mtsics:w"], require_category=False,
               route="R1", session_idle_s=300, weight_timeout_s=30, weight_lookback_s=5)
GRAI = "040123450004291001"


def badge(uid: str) -> Observation:
    return Observation("badge:r", "badge", None, "", "badge", attrs={"uid": uid})


def tag(grai: str) -> Observation:
    return Observation("epc:r", "rfid", None, "", "epc", attrs={"grai": grai})


def weight(grams: int) -> Observation:
    return Observation("mtsics:w", "weight", grams, "g", "mtsics", attrs={"stable": True})


def handover(role: str, stage: str, grai: str, grams: int, at_ms: int) -> dict[str, Any]:
    """A custody body as a station seals it (another station's, to the reconciler)."""
    badge_ = "04A23B1C" if role == "generator" else "8F3A2B1C"
    return {"type": "custody", "id": f"custody/R1/grai:{grai}/{stage}", "route": "R1", "bin": {"grai": grai},
            "weight_g": grams, "stage": stage, "station": "far", "location": "L", "session": "s",
            "operator": {"badge": badge_, "name": "x", "org": "x", "role": role},
            "at_ms": at_ms, "scan_ms": at_ms, "weight_ms": at_ms}


def test_a_station_tick_that_derived_nothing_leaves_the_clock_where_the_records_put_it() -> None:
    w = Writer("gw", lambda: [CustodyStation(DOCK, OPS)])
    w.observe(badge("04A23B1C"), T0)
    w.tick(T0 + 20 * SEC)  # nothing due: the session idles until T0 + 5 min
    w.observe(tag(GRAI), T0 + 10 * SEC)  # the wall clock stepped back 10 s
    w.observe(weight(7_000), T0 + 12 * SEC)
    w.tick(T0 + 10 * MIN)  # the session's idle time-out is due: derived, journaled
    w.observe(badge("04A23B1C"), T0 + 9 * MIN)  # stepped back again, behind the tick
    (rec,) = w.of("custody")
    assert (rec["scan_ms"], rec["at_ms"]) == (T0 + 10 * SEC, T0 + 12 * SEC)
    w.check_replays()


def test_a_reconciler_tick_moves_its_clock_only_to_what_it_derived() -> None:
    rc = ReconcileConfig(missing_after_s=3600)
    w = Writer("gw", lambda: [Reconciler(rc)])
    w.put(handover("generator", "handed_over", GRAI, 5_000, T0), T0)
    w.put(handover("generator", "handed_over", "040123450004291002", 5_000, T0 + MIN), T0 + MIN)
    w.tick(T0 + 30 * MIN)  # nothing due
    w.put(handover("facility", "received", "040123450004291003", 4_000, T0 + 20 * MIN), T0 + 20 * MIN)
    w.tick(T0 + 3 * HOUR)  # both bins missing, at T0 + 1 h and T0 + 1 h 1 min
    w.put(handover("facility", "received", GRAI, 4_990, T0 + 2 * HOUR), T0 + 2 * HOUR)  # late
    missing = [(a["state"], a["at_ms"]) for a in w.of("alarm") if a["alarm"] == "missing-bin"]
    assert missing == [("raised", T0 + HOUR), ("raised", T0 + HOUR + MIN), ("cleared", T0 + 2 * HOUR)]
    w.check_replays()
