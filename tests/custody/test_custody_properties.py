"""Properties over random observation sequences: integers only, one record per (route, bin,
stage), never a crash on malformed records, and replay always rebuilds the same state (at
every point of the journal, whatever ticks, restarts and clock steps happened live)."""

from __future__ import annotations

import copy
import random
from typing import Any

from custody_kit import MIN, Rig, Writer, assert_body_ok, strip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.observation import Observation
from gateway.rules.custody.events import CustodyStation
from gateway.rules.custody.manifest import manifest, routes
from gateway.rules.custody.operators import STAGES, parse_operators
from gateway.rules.custody.reconcile import Reconciler, reconcile
from gateway.rules.custody.settings import ReconcileConfig, station
from gateway.testing.hypo import examples

T = 1_772_438_400_000
OPS = parse_operators([
    {"badge": "04A23B1C", "name": "Ana", "org": "H", "role": "generator"},
    {"badge": "04B7C2D9E1F380", "name": "Ben", "org": "T", "role": "transporter"},
    {"badge": "8F3A2B1C", "name": "Chen", "org": "P", "role": "facility"},
])
GRAIS = ["040123450004291001", "040123450004291002", "040123450004291003"]
SENSORS = ["badge:r", "epc:r", "gs1:s", "mtsics:w"]


def obs(kind: str, arg: Any) -> Observation:
    if kind == "badge":
        return Observation("badge:r", "badge", None, "", "badge", attrs={"uid": arg})
    if kind == "tag":
        return Observation("epc:r", "rfid", None, "", "epc", attrs={"grai": arg})
    if kind == "label":
        return Observation("gs1:s", "scan", None, "", "gs1", attrs={"sscc": arg, "ai": {"00": arg}})
    if kind == "code":
        return Observation("gs1:s", "scan", None, "", "gs1", attrs={"ai": {"91": arg}})
    grams, stable = arg
    return Observation("mtsics:w", "weight", grams, "g", "mtsics", attrs={"stable": stable})


MALFORMED: list[dict[str, Any]] = [
    {"type": "reading", "sensor": "epc:r", "kind": "rfid", "attrs": {"grai": 12}},
    {"type": "reading", "sensor": "badge:r", "kind": "badge", "attrs": None},
    {"type": "reading", "sensor": "mtsics:w", "kind": "weight", "value": 1.5, "unit": "g", "attrs": {"stable": True}},
    {"type": "reading", "sensor": "mtsics:w", "kind": "weight", "value": True, "unit": "g", "attrs": {"stable": True}},
    {"type": "reading", "sensor": "mtsics:w", "kind": "weight", "value": 900, "unit": "kg", "attrs": {"stable": True}},
    {"type": "reading", "sensor": "gs1:s", "kind": "scan", "attrs": {"ai": {"91": 5, "92": ""}}},
    {"type": "custody", "route": 1, "bin": "x", "stage": "loaded"},
    {"type": "custody_session", "event": "end", "id": None},
    {"type": "alarm", "alarm": "missing-bin", "state": "acknowledged", "id": 3},
]

step = st.one_of(
    st.tuples(st.just("badge"), st.sampled_from([*OPS, "DEADBEEF"])),
    st.tuples(st.just("tag"), st.sampled_from(GRAIS)),
    st.tuples(st.just("label"), st.just("106141412345678908")),
    st.tuples(st.just("code"), st.sampled_from(["TS-ROUTE-R1", "TS-ROUTE-R2", "TS-CAT-SHARPS", "TS-CAT-INFECTIOUS",
                                                "TS-SIGN-OUT", "TS-ROUTE-", "junk"])),
    st.tuples(st.just("weight"), st.tuples(st.integers(-500, 30_000), st.booleans())),
    st.tuples(st.just("tick"), st.none()),
    st.tuples(st.just("handover"), st.tuples(st.sampled_from(list(OPS)), st.sampled_from(GRAIS),
                                             st.integers(1, 30_000))),
    st.tuples(st.just("bad"), st.sampled_from(range(len(MALFORMED)))),
)
script = st.lists(st.tuples(st.integers(0, 400_000), step), max_size=60)


def inject(r: Rig, i: int, t: int) -> None:
    """A malformed record as a journal reader could meet it (older versions, other rules):
    bypasses the sealer's checks on purpose."""
    rec = {"v": 1, "gateway": r.gateway, "seq": len(r.records), "time_ms": t, "clock_synced": True,
           **copy.deepcopy(MALFORMED[i])}
    r.records.append(rec)
    r._run([rec], t)


def expand(kind: str, arg: Any) -> list[Observation]:
    if kind != "handover":
        return [obs(kind, arg)]
    uid, grai, grams = arg  # a whole handover at once, so that random scripts do reach records
    return [obs("badge", uid), obs("code", "TS-ROUTE-R1"), obs("code", "TS-CAT-SHARPS"), obs("tag", grai),
            obs("weight", (grams, True))]


def run(stage: str, require_category: bool, steps: list[tuple[int, tuple[str, Any]]]) -> Rig:
    cfg = station("dock", stage, "L", SENSORS, require_category=require_category, session_idle_s=300,
                  weight_timeout_s=30, weight_lookback_s=5)
    r = Rig("gw", [CustodyStation(cfg, OPS), Reconciler(ReconcileConfig(missing_after_s=600))], filter=None)
    t = T
    for dt, (kind, arg) in steps:
        t += dt
        if kind == "tick":
            r.tick(t)
        elif kind == "bad":
            inject(r, arg, t)
        else:
            for o in expand(kind, arg):
                r.observe(o, t)
    return r


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STAGES), st.booleans(), script)
def test_bodies_are_integer_json_and_one_record_per_bin_and_stage(stage: str, require_category: bool,
                                                                 steps: list[tuple[int, tuple[str, Any]]]) -> None:
    r = run(stage, require_category, steps)
    derived = [x for x in r.records if x["type"] in ("custody", "custody_notice", "custody_refusal",
                                                    "custody_session", "alarm") and "id" in x and "at_ms" in x]
    for rec in derived:
        assert_body_ok(strip(rec))
    custody = [x for x in derived if x["type"] == "custody"]
    keys = [(c["route"], str(c["bin"]), c["stage"]) for c in custody]
    assert len(keys) == len(set(keys))
    for c in custody:
        assert isinstance(c["weight_g"], int) and c["weight_g"] > 0 and c["stage"] == stage
        assert c["operator"]["badge"] in OPS and stage in OPS[c["operator"]["badge"]].stages
        assert c["at_ms"] >= c["scan_ms"] and (not require_category or c["category"])
    for m in [manifest(r.records, route) for route in routes(r.records)]:
        assert_body_ok({"type": "manifest", **m})
    assert_body_ok({"type": "findings", **reconcile(r.records).as_dict()})


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STAGES), script, st.integers(0, 60), script)
def test_replay_at_any_point_gives_the_same_journal(stage: str, first: list[Any], _: int, rest: list[Any]) -> None:
    whole = run(stage, False, first + rest)
    part = run(stage, False, first)
    cfg = station("dock", stage, "L", SENSORS, require_category=False, session_idle_s=300, weight_timeout_s=30,
                  weight_lookback_s=5)
    again = Rig("gw", [CustodyStation(cfg, OPS), Reconciler(ReconcileConfig(missing_after_s=600))], filter=None)
    again.records = copy.deepcopy(part.records)
    assert [b for c in again.consumers for b in c.replay(again.records)] == []  # type: ignore[attr-defined]
    t = T + sum(dt for dt, _ in first)
    for dt, (kind, arg) in rest:
        t += dt
        if kind == "tick":
            again.tick(t)
        elif kind == "bad":
            inject(again, arg, t)
        else:
            for o in expand(kind, arg):
                again.observe(o, t)
    assert again.records == whole.records


def test_random_scripts_do_reach_custody_records() -> None:
    """Guard for the properties above: they would prove little if scripts never made a record.
    Scripts drawn with a seeded ``random`` in the same shape as ``script``."""
    rng = random.Random(7)
    made = 0
    for n in range(30):
        steps = []
        for _ in range(rng.randrange(60)):
            kind = rng.choice(["badge", "tag", "code", "weight", "tick", "handover"])
            arg: Any = {"badge": lambda: rng.choice(list(OPS)), "tag": lambda: rng.choice(GRAIS),
                        "code": lambda: rng.choice(["TS-ROUTE-R1", "TS-SIGN-OUT"]),
                        "weight": lambda: (rng.randrange(-500, 30_000), rng.random() < 0.5), "tick": lambda: None,
                        "handover": lambda: (rng.choice(list(OPS)), rng.choice(GRAIS), rng.randrange(1, 30_000)),
                        }[kind]()
            steps.append((rng.randrange(400_000), (kind, arg)))
        made += len(run(STAGES[n % 4], False, steps).of("custody"))
    assert made >= 10


gaps = st.one_of(
    st.integers(0, 40_000),  # a working station: reads seconds apart, around the 30 s weight time-out
    st.integers(40_000, 15 * MIN),  # around the 5 min idle time-out and the 10 min missing-bin
    st.integers(15 * MIN, 4 * 60 * MIN),  # an outage, or a writer that did not tick
    st.integers(-2 * MIN, -1),  # the wall clock stepped back
)
irregular = st.lists(st.one_of(
    st.tuples(gaps, step.filter(lambda x: x[0] != "bad")),
    st.tuples(gaps, st.tuples(st.just("handover"), st.tuples(st.none(), st.sampled_from(GRAIS),
                                                             st.integers(1, 30_000)))),  # by whoever may
    st.tuples(gaps, st.tuples(st.just("tag"), st.sampled_from(GRAIS))),  # a bin never weighed
    st.tuples(gaps, st.tuples(st.just("far"), st.tuples(st.sampled_from(STAGES), st.sampled_from(GRAIS),
                                                        st.integers(1, 30_000), st.integers(0, 20 * MIN)))),
    st.tuples(gaps, st.just(("restart", None))),
), max_size=50)


def far(stage: str, grai: str, grams: int, at_ms: int) -> dict[str, Any]:
    """A custody record made at another station (handover ``at_ms``, sealed later), for the
    reconciler's deliveries, weight losses and unknown bins."""
    op = next(o for o in OPS.values() if stage in o.stages)
    return {"type": "custody", "id": f"custody/R0/grai:{grai}/{stage}", "route": "R0", "bin": {"grai": grai},
            "weight_g": grams, "stage": stage, "operator": op.party(), "location": "far", "station": "far",
            "session": "s", "at_ms": at_ms, "scan_ms": at_ms, "weight_ms": at_ms}


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(STAGES), irregular)
def test_any_prefix_of_the_journal_replays_to_the_live_state(stage: str,
                                                             steps: list[tuple[int, tuple[str, Any]]]) -> None:
    """Sessions, time-outs, missing bins, ticks at irregular times, restarts (a replay of the
    journal so far, a tick, then ``gateway_started``) and backward clock steps anywhere: after
    every committed batch, the station's and the reconciler's state, unsealed bodies included,
    is exactly what a replay of the journal up to there rebuilds."""
    cfg = station("dock", stage, "L", SENSORS, require_category=False, route="R0", session_idle_s=300,
                  weight_timeout_s=30, weight_lookback_s=5)
    w = Writer("gw", lambda: [CustodyStation(cfg, OPS), Reconciler(ReconcileConfig(missing_after_s=600))])
    t = T
    for dt, (kind, arg) in steps:
        t += dt
        if kind == "tick":
            w.tick(t)
        elif kind == "restart":
            w.restart(t)
        elif kind == "far":
            w.put(far(arg[0], arg[1], arg[2], t - arg[3]), t)
        else:
            if kind == "handover" and arg[0] is None:
                arg = (next(b for b, op in OPS.items() if stage in op.stages), *arg[1:])
            for o in expand(kind, arg):
                w.observe(o, t)
    w.check_replays()
