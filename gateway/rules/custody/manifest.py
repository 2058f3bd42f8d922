"""The route manifest, rebuilt from signed custody records, and its cross-gateway check.

A paper medical-waste manifest names the generator, transporter and facility (each
signing), date and time, waste type, container count and ids, weight and treatment.
``manifest`` lays the custody records of one route out the same way, so an inspector
reads familiar fields; every figure traces back to a signed record (gateway, seq).

``check_manifest`` is what an auditor runs over the bundles of the hospital, truck and
plant gateways: each bundle is verified against ITS OWN pinned gateway key (a bundle
signed by the truck can never vouch for the plant), only custody records of bundles that
verify are reconciled, and the report keeps the two apart: verification per gateway,
then findings (weight loss, missing and unknown bins, duplicates, rejected records).

``route_records`` answers the exporter's question "which records belong to route R" on
one gateway: the custody records and notices of R, the reconciliation alarms about R, the
sessions that produced them, and the readings they cite (badge, bin scan, weight).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.rules.custody.bins import bin_key, bin_of
from gateway.rules.custody.operators import ROLE_STAGES, ROLES, STAGES
from gateway.rules.custody.reconcile import event_time, reconcile
from gateway.rules.custody.settings import ReconcileConfig
from gateway.rules.records import as_int, as_str
from ledger_client.verify import AnchorChecker, verify_bundle


def _route_custody(records: Iterable[Mapping[str, Any]], route: str) -> list[Mapping[str, Any]]:
    """The route's custody records, first per (bin, stage), in time order."""
    rows = [r for r in records if isinstance(r, Mapping) and r.get("type") == "custody"
            and r.get("route") == route and bin_of(r.get("bin")) is not None and r.get("stage") in STAGES]
    rows.sort(key=lambda r: (event_time(r) or 0, str(r.get("gateway", "")), as_int(r.get("seq")) or 0))
    first: dict[tuple[str, str], Mapping[str, Any]] = {}
    for r in rows:
        first.setdefault((bin_key(bin_of(r["bin"]) or {}), str(r["stage"])), r)
    return list(first.values())


def manifest(records: Iterable[Mapping[str, Any]], route: str) -> dict[str, Any]:
    """One route as a paper manifest has it: who, what, how much, when (integers only)."""
    rows = _route_custody(records, route)
    parties: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {role: {} for role in ROLES}
    containers: dict[str, dict[str, Any]] = {}
    totals = {s: {"containers": 0, "weight_g": 0} for s in STAGES}
    treatment: set[str] = set()
    for r in rows:
        stage, grams, t = str(r["stage"]), as_int(r.get("weight_g")) or 0, event_time(r) or 0
        op_raw = r.get("operator")
        op: Mapping[str, Any] = op_raw if isinstance(op_raw, Mapping) else {}
        role = next((ro for ro in ROLES if stage in ROLE_STAGES[ro]), "facility")
        who = (str(op.get("org", "")), str(op.get("name", "")), str(op.get("badge", "")),
               str(r.get("station", "")), str(r.get("gateway", "")))
        p = parties[role].setdefault(who, {
            "org": who[0], "name": who[1], "badge": who[2], "station": who[3], "gateway": who[4],
            "location": str(r.get("location", "")), "first_ms": t, "last_ms": t, "containers": 0,
            "weight_g": 0, "stages": []})
        p["first_ms"], p["last_ms"] = min(p["first_ms"], t), max(p["last_ms"], t)
        p["containers"] += 1
        p["weight_g"] += grams
        if stage not in p["stages"]:
            p["stages"].append(stage)
        b = bin_of(r["bin"]) or {}
        c = containers.setdefault(bin_key(b), {"bin": dict(b), "stages": {}})
        if "category" not in c and as_str(r.get("category")):
            c["category"] = r["category"]
        entry = {"weight_g": grams, "at_ms": t, "gateway": who[4], "station": who[3], "operator": who[1]}
        if as_int(r.get("seq")) is not None:
            entry["seq"] = r["seq"]
        c["stages"][stage] = entry
        totals[stage]["containers"] += 1
        totals[stage]["weight_g"] += grams
        if as_str(r.get("treatment")):
            treatment.add(str(r["treatment"]))
    by_category: dict[str, dict[str, int]] = {}
    for c in containers.values():
        declared = next((c["stages"][s] for s in STAGES if s in c["stages"]), None)
        cat = by_category.setdefault(str(c.get("category", "unknown")), {"containers": 0, "weight_g": 0})
        cat["containers"] += 1
        cat["weight_g"] += declared["weight_g"] if declared else 0
    times = [event_time(r) or 0 for r in rows]
    return {
        "route": route,
        "from_ms": min(times, default=0), "to_ms": max(times, default=0),
        "generator": list(parties["generator"].values()),
        "transporter": list(parties["transporter"].values()),
        "facility": list(parties["facility"].values()),
        "containers": [containers[k] for k in sorted(containers)],
        "totals": {s: v for s, v in totals.items() if v["containers"]},
        "by_category": dict(sorted(by_category.items())),
        "treatment": sorted(treatment),
    }


def routes(records: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({r["route"] for r in records if isinstance(r, Mapping) and r.get("type") == "custody"
                   and isinstance(r.get("route"), str)})


def route_records(records: Iterable[Mapping[str, Any]], route: str) -> list[int]:
    """Seqs of ONE gateway's records that belong to ``route``, ascending (for export)."""
    recs = [r for r in records if isinstance(r, Mapping) and as_int(r.get("seq")) is not None]
    chosen: set[int] = set()
    sessions: set[str] = set()
    for r in recs:
        typ = r.get("type")
        if r.get("route") != route or typ not in ("custody", "custody_notice", "alarm"):
            continue
        chosen.add(r["seq"])
        if isinstance(r.get("session"), str):
            sessions.add(r["session"])
        for k in ("scan_seq", "weight_seq"):
            if as_int(r.get(k)) is not None:
                chosen.add(r[k])
    for r in recs:
        if r.get("type") == "custody_session" and r.get("id") in sessions:
            chosen.add(r["seq"])
            if as_int(r.get("badge_seq")) is not None:
                chosen.add(r["badge_seq"])
    return sorted(chosen)


def check_manifest(bundles: list[dict[str, Any]], gateway_keys: dict[str, str], *,
                   cfg: ReconcileConfig | None = None, as_of_ms: int | None = None,
                   checkers: dict[str, AnchorChecker] | None = None) -> dict[str, Any]:
    """Verify each bundle with its own gateway's pinned key, then reconcile across them.

    ``gateway_keys`` maps gateway id → public key hex. A bundle whose gateway has no
    pinned key, or that fails any verification step, contributes no records: its bins
    then show as missing or unknown, which is the honest reading. ``checkers`` is passed
    to ``verify_bundle`` (ledger pins, EVM RPC).
    """
    gateways: list[dict[str, Any]] = []
    trusted: list[dict[str, Any]] = []
    for i, bundle in enumerate(bundles):
        gw = bundle.get("gateway") if isinstance(bundle, dict) else None
        gw_id = gw.get("id") if isinstance(gw, dict) else None
        entry: dict[str, Any] = {"bundle": i, "gateway": gw_id, "verified": False, "failures": [],
                                 "custody_records": 0}
        gateways.append(entry)
        key = gateway_keys.get(gw_id) if isinstance(gw_id, str) else None
        if key is None:
            entry["failures"].append(f"no pinned key for gateway {gw_id!r}: its records are not used")
            continue
        report = verify_bundle(bundle, gateway_key=key, checkers=checkers)
        entry["verified"] = report.ok
        entry["failures"] = [f"step {s.step} {s.name}: {f}" for s in report.steps for f in s.failures]
        raw_items = bundle.get("records")
        items: list[Any] = raw_items if isinstance(raw_items, list) else []
        custody = [x["record"] for x in items if isinstance(x, dict) and isinstance(x.get("record"), dict)
                   and x["record"].get("type") == "custody"]
        entry["custody_records"] = len(custody)
        if report.ok:
            trusted += custody
    findings = reconcile(trusted, cfg, as_of_ms=as_of_ms)
    ok = (all(g["verified"] for g in gateways) and bool(gateways) and not findings.raised()
          and not findings.rejected)
    return {"ok": ok, "gateways": gateways,
            "manifests": {r: manifest(trusted, r) for r in routes(trusted)},
            "findings": findings.as_dict()}
