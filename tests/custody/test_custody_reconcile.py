"""Reconciliation on hand-made custody records: tolerance, missing, unknown, duplicates, forgery."""

from __future__ import annotations

from typing import Any

from custody_kit import HOUR, MIN, Rig

from gateway.rules.custody.reconcile import Reconciler, reconcile
from gateway.rules.custody.settings import ReconcileConfig

T = 1_772_438_400_000
ROLE = {"handed_over": "generator", "loaded": "transporter", "received": "facility", "treated": "facility"}
GW = {"handed_over": "gw-h", "loaded": "gw-t", "received": "gw-p", "treated": "gw-p"}


def cust(bin_: str, stage: str, grams: int, at: int, seq: int = 0, route: str = "R1", role: str | None = None,
         gateway: str | None = None) -> dict[str, Any]:
    return {"v": 1, "gateway": gateway or GW[stage], "seq": seq, "time_ms": at, "clock_synced": True,
            "type": "custody", "id": f"custody/{route}/grai:{bin_}/{stage}", "route": route,
            "bin": {"grai": bin_}, "weight_g": grams, "stage": stage, "station": f"st-{stage}",
            "operator": {"badge": "01020304", "name": "X", "org": "O", "role": role or ROLE[stage]},
            "location": "L", "at_ms": at}


def raised(f: Any) -> list[tuple[str, str]]:
    return sorted((a["alarm"], a["grai"]) for a in f.raised())


def test_tolerance_both_either_abs_pct() -> None:
    recs = [cust("A", "handed_over", 10_000, T), cust("A", "received", 9_100, T + HOUR, 1),  # -900: < 10 %
            cust("B", "handed_over", 1_000, T, 2), cust("B", "received", 850, T + HOUR, 3),  # -150: < 200
            cust("C", "handed_over", 1_000, T, 4), cust("C", "received", 700, T + HOUR, 5)]  # -300: both
    assert raised(reconcile(recs)) == [("weight-loss", "C")]
    assert raised(reconcile(recs, ReconcileConfig(combine="either"))) == [
        ("weight-loss", "A"), ("weight-loss", "B"), ("weight-loss", "C")]
    assert raised(reconcile(recs, ReconcileConfig(combine="abs"))) == [("weight-loss", "A"), ("weight-loss", "C")]
    assert raised(reconcile(recs, ReconcileConfig(combine="pct"))) == [("weight-loss", "B"), ("weight-loss", "C")]


def test_loss_exactly_at_the_limit_is_not_an_alarm_and_gains_are_not_losses() -> None:
    recs = [cust("A", "handed_over", 10_000, T), cust("A", "received", 9_000, T + HOUR, 1),
            cust("B", "handed_over", 1_000, T, 2), cust("B", "received", 1_400, T + HOUR, 3)]
    assert raised(reconcile(recs)) == []
    assert raised(reconcile([*recs[:1], cust("A", "received", 8_999, T + HOUR, 1)])) == [("weight-loss", "A")]


def test_every_later_stage_is_compared_with_the_pickup_weight() -> None:
    recs = [cust("A", "handed_over", 5_000, T), cust("A", "loaded", 4_000, T + MIN, 1),
            cust("A", "received", 4_000, T + HOUR, 2), cust("A", "treated", 3_900, T + 2 * HOUR, 3)]
    f = reconcile(recs)
    assert [(a["stage"], a["value"], a["threshold"]) for a in f.raised()] == [
        ("loaded", 1000, 500), ("received", 1000, 500), ("treated", 1100, 500)]


def test_loaded_is_the_pickup_when_there_is_no_handover() -> None:
    f = reconcile([cust("A", "loaded", 5_000, T), cust("A", "received", 4_000, T + HOUR, 1)])
    a, = f.raised()
    assert (a["pickup_stage"], a["pickup_weight_g"]) == ("loaded", 5000)


def test_missing_bin_raised_at_the_deadline_and_cleared_when_late() -> None:
    cfg = ReconcileConfig(missing_after_s=2 * 3600)
    rc = Reconciler(cfg)
    assert rc.feed(cust("A", "handed_over", 5_000, T), T) == []
    assert rc.tick(T + 2 * HOUR - 1) == []
    a, = rc.tick(T + 3 * HOUR)
    assert (a["alarm"], a["state"], a["at_ms"], a["since_ms"]) == ("missing-bin", "raised", T + 2 * HOUR, T)
    assert rc.tick(T + 4 * HOUR) == []  # once
    late = rc.feed(cust("A", "received", 5_000, T + 5 * HOUR, 1), T + 5 * HOUR)
    assert [(b["alarm"], b["state"], b["value"]) for b in late] == [("missing-bin", "cleared", 5 * HOUR)]
    assert rc.views()[0]["status"] == "delivered"


def test_missing_bin_off_when_zero() -> None:
    rc = Reconciler(ReconcileConfig(missing_after_s=0))
    rc.feed(cust("A", "handed_over", 5_000, T), T)
    assert rc.tick(T + 100 * HOUR) == []


def test_unknown_bin() -> None:
    f = reconcile([cust("A", "handed_over", 5_000, T), cust("Z", "received", 3_000, T + HOUR, 1)])
    assert raised(f) == [("unknown-bin", "Z")]
    u = f.raised()[0]
    assert (u["severity"], u["value"], u["value_unit"], u["stage_gateway"]) == ("warning", 3000, "g", "gw-p")
    assert reconcile([cust("Z", "received", 3_000, T)], ReconcileConfig(unknown_bin=False)).raised() == []


def test_duplicates_are_listed_not_double_counted() -> None:
    recs = [cust("A", "handed_over", 5_000, T), cust("A", "received", 5_000, T + HOUR, 1),
            cust("A", "received", 3_000, T + HOUR + MIN, 7, gateway="gw-p2")]  # a second plant scan
    f = reconcile(recs)
    assert f.raised() == []
    assert [(d["gateway"], d["seq"], d["stage"]) for d in f.duplicates] == [("gw-p2", 7, "received")]
    assert reconcile(recs + recs).duplicates == f.duplicates  # the same record twice is one record


def test_a_role_that_may_not_record_the_stage_is_rejected() -> None:
    forged = cust("A", "received", 5_000, T + HOUR, 1, role="transporter")
    f = reconcile([cust("A", "handed_over", 5_000, T), forged], ReconcileConfig(missing_after_s=3600),
                  as_of_ms=T + 3 * HOUR)
    assert f.rejected == [{"gateway": "gw-p", "seq": 1, "id": forged["id"],
                           "reason": "role 'transporter' may not record stage 'received'"}]
    assert raised(f) == [("missing-bin", "A")]  # the forged receipt did not count


def test_routes_keep_reused_bins_apart() -> None:
    f = reconcile([cust("A", "handed_over", 5_000, T, route="R1"),
                   cust("A", "received", 5_000, T + HOUR, 1, route="R1"),
                   cust("A", "handed_over", 2_000, T + 24 * HOUR, 2, route="R2"),
                   cust("A", "received", 1_000, T + 25 * HOUR, 3, route="R2")])
    assert [(a["route"], a["alarm"]) for a in f.raised()] == [("R2", "weight-loss")]


def test_live_engine_forgets_its_own_sealed_alarms_and_applies_acknowledgements() -> None:
    rc = Reconciler(ReconcileConfig(missing_after_s=3600))
    rig = Rig("gw", [rc], filter=None)
    rig._run([rig.seal(strip_env(cust("A", "handed_over", 5_000, T)), T)], T)
    rig.tick(T + 2 * HOUR)
    assert [a["state"] for a in rig.of("alarm")] == ["raised"] and rc.outbox.pending() == []
    alarm_id = rig.of("alarm")[0]["id"]
    assert [v["id"] for v in rc.active()] == [alarm_id]
    ack = {"type": "alarm", "id": alarm_id, "alarm": "missing-bin", "state": "acknowledged", "severity": "alarm",
           "at_ms": T + 3 * HOUR, "since_ms": T, "by": "dispatcher"}
    rig._run([rig.seal(ack, T + 3 * HOUR)], T + 3 * HOUR)
    assert rc.active()[0]["acknowledged"] is True


def strip_env(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("v", "gateway", "seq", "time_ms", "clock_synced")}
