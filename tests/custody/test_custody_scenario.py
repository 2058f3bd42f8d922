"""The simulated route end to end: exactly the expected custody records and alarms."""

from __future__ import annotations

from typing import Any

import pytest
from custody_kit import HOUR, MIN, SEC, Rig, route_rigs, single_rig, strip

from firmware_sim.waste_route import ROUTE, T0, waste_route
from gateway.rules.custody.manifest import manifest, route_records, routes
from gateway.rules.custody.reconcile import reconcile
from gateway.rules.custody.settings import ReconcileConfig

GRAI = {n: f"04012345000429{n}" for n in (1001, 1002, 1003, 1004, 1005)}
ANA = {"badge": "04A23B1C", "name": "Ana Ruiz", "org": "St. Mary Hospital", "role": "generator"}
BEN = {"badge": "04B7C2D9E1F380", "name": "Ben Okafor", "org": "EcoMed Transport", "role": "transporter"}
CHEN = {"badge": "8F3A2B1C", "name": "Chen Li", "org": "Clearwater Treatment", "role": "facility"}
STATIONS = {  # gateway: (station, stage, location, operator, start offset)
    "gw-hospital": ("hospital-dock", "handed_over", "St. Mary Hospital, waste room B", ANA, 0),
    "gw-truck": ("truck-7", "loaded", "EcoMed truck 7", BEN, 20 * MIN),
    "gw-plant": ("plant-intake", "received", "Clearwater Treatment, intake dock", CHEN, 120 * MIN),
}
WEIGHED = {  # gateway: [(bin, grams, category)] in the order the bins were weighed
    "gw-hospital": [(1001, 8200, "infectious"), (1002, 4300, "sharps"), (1003, 6100, "pathological"),
                    (1004, 9500, "pharmaceutical"), (1005, 5400, "infectious")],
    "gw-truck": [(1001, 8180, None), (1002, 4300, None), (1003, 6080, None), (1004, 9480, None),
                 (1005, 5400, None)],
    "gw-plant": [(1001, 8150, None), (1002, 4290, None), (1004, 7600, None), (1005, 5000, None)],
}
MISSING_AFTER = 4 * 3600


def expected(gw: str) -> list[dict[str, Any]]:
    station, stage, location, op, off = STATIONS[gw]
    start = T0 + off
    out = []
    for i, (n, grams, cat) in enumerate(WEIGHED[gw]):
        scan = start + 20 * SEC + i * MIN + 3 * SEC
        body = {"type": "custody", "id": f"custody/{ROUTE}/grai:{GRAI[n]}/{stage}", "route": ROUTE,
                "bin": {"grai": GRAI[n]}, "weight_g": grams, "stage": stage, "operator": op,
                "location": location, "station": station, "session": f"session/{station}/{start}/{op['badge']}",
                "at_ms": scan + 5 * SEC, "scan_ms": scan, "weight_ms": scan + 5 * SEC}
        if cat:
            body["category"] = cat
        out.append(body)
    return out


@pytest.fixture(scope="module")
def rigs() -> dict[str, Rig]:
    return route_rigs(waste_route(), T0 + 3 * HOUR)


@pytest.fixture(scope="module")
def bench() -> Rig:
    return single_rig(waste_route(), T0 + 6 * HOUR, ReconcileConfig(missing_after_s=MISSING_AFTER))


def all_records(rigs: dict[str, Rig]) -> list[dict[str, Any]]:
    return [r for rig in rigs.values() for r in rig.records]


@pytest.mark.parametrize("gw", list(STATIONS))
def test_each_gateway_records_exactly_the_expected_custody(rigs: dict[str, Rig], gw: str) -> None:
    rig = rigs[gw]
    got = [strip(r) for r in rig.of("custody")]
    seqs = [(g.pop("scan_seq"), g.pop("weight_seq")) for g in got]
    assert got == expected(gw)
    for (scan_seq, weight_seq), body in zip(seqs, got, strict=True):  # the cited readings are the right ones
        scan, weight = rig.records[scan_seq], rig.records[weight_seq]
        assert scan["type"] == "reading" and scan["attrs"]["grai"] == body["bin"]["grai"]
        assert weight["kind"] == "weight" and weight["value"] == body["weight_g"] and weight["attrs"]["stable"]
    assert rig.of("custody_refusal") == []
    sessions = [(r["event"], r.get("reason")) for r in rig.of("custody_session")]
    assert sessions == [("start", None), ("end", "badge-out")]


def test_truck_rescan_is_a_notice_not_a_second_record(rigs: dict[str, Rig]) -> None:
    notices = [strip(r) for r in rigs["gw-truck"].of("custody_notice")]
    assert [(n["notice"], n["bin"]) for n in notices] == [("already-recorded", {"grai": GRAI[1001]})]
    assert "not counted again" in notices[0]["message"]
    assert rigs["gw-hospital"].of("custody_notice") == rigs["gw-plant"].of("custody_notice") == []


def test_live_reconciler_raises_missing_bin_exactly_at_the_timeout(bench: Rig) -> None:
    alarms = bench.of("alarm")
    missing = [a for a in alarms if a["alarm"] == "missing-bin"]
    assert [(a["state"], a["grai"]) for a in missing] == [("raised", GRAI[1003])]
    handed_over = next(r for r in bench.of("custody") if r["bin"]["grai"] == GRAI[1003])
    a = missing[0]
    assert a["since_ms"] == handed_over["at_ms"]
    assert a["at_ms"] == handed_over["at_ms"] + MISSING_AFTER * 1000
    assert a["at_ms"] <= a["time_ms"] < a["at_ms"] + 5 * SEC  # sealed at the first tick after it
    assert a["last_stage"] == "loaded" and a["last_station"] == "truck-7" and a["pickup_weight_g"] == 6100
    assert a["route"] == ROUTE and a["value_unit"] == "ms"


def test_live_reconciler_weight_loss_only_for_the_light_bin(bench: Rig) -> None:
    raised = [a for a in bench.of("alarm") if a["state"] == "raised"]
    assert sorted(a["alarm"] for a in raised) == ["missing-bin", "weight-loss"]  # and no unknown-bin
    wl = next(a for a in raised if a["alarm"] == "weight-loss")
    assert (wl["grai"], wl["stage"], wl["value"], wl["threshold"]) == (GRAI[1004], "received", 1900, 950)
    assert (wl["pickup_weight_g"], wl["weight_g"], wl["pickup_stage"]) == (9500, 7600, "handed_over")


def test_no_missing_bin_before_the_timeout() -> None:
    early = single_rig(waste_route(), T0 + 4 * HOUR, ReconcileConfig(missing_after_s=MISSING_AFTER))
    assert [a["alarm"] for a in early.of("alarm") if a["state"] == "raised"] == ["weight-loss"]


def test_cross_gateway_reconciliation_on_plain_record_lists(rigs: dict[str, Rig]) -> None:
    recs = all_records(rigs)
    cfg = ReconcileConfig(missing_after_s=MISSING_AFTER)
    f = reconcile(recs, cfg, as_of_ms=T0 + 6 * HOUR)
    raised = f.raised()
    assert sorted((a["alarm"], a["grai"]) for a in raised) == [("missing-bin", GRAI[1003]),
                                                              ("weight-loss", GRAI[1004])]
    miss = f.raised("missing-bin")[0]
    hosp = next(r for r in rigs["gw-hospital"].of("custody") if r["bin"]["grai"] == GRAI[1003])
    assert miss["at_ms"] == hosp["at_ms"] + MISSING_AFTER * 1000
    wl = f.raised("weight-loss")[0]
    assert (wl["pickup_gateway"], wl["stage_gateway"]) == ("gw-hospital", "gw-plant")
    assert {b["bin"]["grai"]: b["status"] for b in f.bins} == {
        GRAI[1001]: "delivered", GRAI[1002]: "delivered", GRAI[1003]: "missing",
        GRAI[1004]: "delivered", GRAI[1005]: "delivered"}
    assert f.duplicates == [] and f.rejected == []
    # the same records again (e.g. in two bundles) change nothing; order of input does not matter
    again = reconcile(list(reversed(recs)) + recs, cfg, as_of_ms=T0 + 6 * HOUR)
    assert again.alarms == f.alarms and again.duplicates == []


def test_cross_gateway_before_the_timeout_reports_in_transit(rigs: dict[str, Rig]) -> None:
    f = reconcile(all_records(rigs), ReconcileConfig(missing_after_s=MISSING_AFTER))
    assert f.as_of_ms == max(r["at_ms"] for r in all_records(rigs) if r["type"] == "custody")
    assert f.raised("missing-bin") == []
    bin3 = next(b for b in f.bins if b["bin"]["grai"] == GRAI[1003])
    assert bin3["status"] == "in-transit" and set(bin3["stages"]) == {"handed_over", "loaded"}


def test_manifest_view_reads_like_the_paper_form(rigs: dict[str, Rig]) -> None:
    recs = all_records(rigs)
    assert routes(recs) == [ROUTE]
    m = manifest(recs, ROUTE)
    gen, = m["generator"]
    assert (gen["org"], gen["name"], gen["containers"], gen["weight_g"]) == ("St. Mary Hospital", "Ana Ruiz", 5, 33500)
    trans, = m["transporter"]
    assert (trans["org"], trans["containers"], trans["weight_g"]) == ("EcoMed Transport", 5, 33440)
    fac, = m["facility"]
    assert (fac["org"], fac["containers"], fac["weight_g"], fac["stages"]) == ("Clearwater Treatment", 4, 25040,
                                                                               ["received"])
    assert m["totals"] == {"handed_over": {"containers": 5, "weight_g": 33500},
                           "loaded": {"containers": 5, "weight_g": 33440},
                           "received": {"containers": 4, "weight_g": 25040}}
    assert m["by_category"]["infectious"] == {"containers": 2, "weight_g": 13600}
    c3 = next(c for c in m["containers"] if c["bin"]["grai"] == GRAI[1003])
    assert c3["category"] == "pathological" and set(c3["stages"]) == {"handed_over", "loaded"}
    assert m["from_ms"] == T0 + 28 * SEC and gen["first_ms"] == m["from_ms"]


def test_route_records_selects_what_an_export_needs(rigs: dict[str, Rig]) -> None:
    rig = rigs["gw-truck"]
    seqs = route_records(rig.records, ROUTE)
    chosen = [rig.records[s] for s in seqs]
    kinds = {(r["type"], r.get("kind")) for r in chosen}
    assert {("custody", None), ("custody_notice", None), ("custody_session", None),
            ("reading", "badge"), ("reading", "rfid"), ("reading", "scan"), ("reading", "weight")} == kinds
    assert len([r for r in chosen if r["type"] == "custody"]) == 5
    assert route_records(rig.records, "OTHER-ROUTE") == []


def test_scenario_observations_per_station() -> None:
    from firmware_sim.waste_route import station_observations

    r = waste_route()
    hosp = station_observations(r.station("handed_over"))
    kinds = [o.kind for _, o in hosp]
    assert kinds.count("badge") == 2 and kinds.count("rfid") == 10 and kinds.count("scan") == 6
    assert {o.attrs["grai"] for _, o in hosp if o.kind == "rfid"} == set(GRAI.values())
    assert all(isinstance(o.value, int) for _, o in hosp if o.kind == "weight")
    plant = station_observations(r.station("received"))
    assert GRAI[1003] not in {o.attrs.get("grai") for _, o in plant}
    truck = station_observations(r.station("loaded"))
    assert {o.sensor for _, o in truck} == set(r.station("loaded").sensors)
