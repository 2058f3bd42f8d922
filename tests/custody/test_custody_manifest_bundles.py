"""check_manifest over real bundles: each verified with its own gateway key, then reconciled.

The three scenario journals are re-sealed through the real Sealer, BlockSealer, local
ledger and exporter (selection ``route``, records chosen by ``route_records``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from custody_kit import HOUR, route_rigs, strip

from firmware_sim.waste_route import ROUTE, T0, waste_route
from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import build_bundle
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.rules.custody.manifest import check_manifest, route_records
from gateway.rules.custody.settings import ReconcileConfig
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger


def bundle_for(tmp: Path, gw: str, records: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    key = Ed25519PrivateKey.generate()
    clock = FakeClock(records[-1]["time_ms"] + 1000)
    journal = Journal(tmp / f"{gw}.sqlite")
    journal.bind_identity(gw, public_hex(key))
    sealer = Sealer(gw, key, 0)
    rows = [sealer.seal(strip(r), time_ms=r["time_ms"], synced=True) for r in records]
    journal.commit_batch(rows, [], {}, {})
    BlockSealer(journal, key, gw, clock, max_records=16, max_seconds=60).maybe_seal(force=True)
    ledger = LocalLedger(tmp / f"{gw}-ledger.sqlite", Ed25519PrivateKey.generate(), clock_ms=clock.now_ms)
    anchorer = Anchorer(journal, ledger, clock, gw)
    while anchorer.step() != "idle":
        pass
    seqs = route_records(records, ROUTE)
    return build_bundle(journal, seqs, {"type": "route", "id": ROUTE}), public_hex(key)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, str]]:
    tmp = tmp_path_factory.mktemp("bundles")
    out, keys = [], {}
    for gw, rig in route_rigs(waste_route(), T0 + 3 * HOUR).items():
        b, k = bundle_for(tmp, gw, rig.records)
        out.append(b)
        keys[gw] = k
    return out, keys


CFG = ReconcileConfig(missing_after_s=4 * 3600)


def test_all_verify_and_the_findings_are_the_scenario(bundles: tuple[list[dict[str, Any]], dict[str, str]]) -> None:
    bs, keys = bundles
    rep = check_manifest(bs, keys, cfg=CFG, as_of_ms=T0 + 6 * HOUR)
    assert [(g["gateway"], g["verified"], g["custody_records"]) for g in rep["gateways"]] == [
        ("gw-hospital", True, 5), ("gw-truck", True, 5), ("gw-plant", True, 4)]
    raised = [(a["alarm"], a["grai"][-4:]) for a in rep["findings"]["alarms"] if a["state"] == "raised"]
    assert sorted(raised) == [("missing-bin", "1003"), ("weight-loss", "1004")]
    assert rep["ok"] is False  # findings exist
    m = rep["manifests"][ROUTE]
    assert [p["org"] for p in m["generator"] + m["transporter"] + m["facility"]] == [
        "St. Mary Hospital", "EcoMed Transport", "Clearwater Treatment"]


def test_each_bundle_is_checked_with_its_own_key(bundles: tuple[list[dict[str, Any]], dict[str, str]]) -> None:
    bs, keys = bundles
    swapped = dict(keys, **{"gw-plant": keys["gw-truck"]})  # the truck's key cannot vouch for the plant
    rep = check_manifest(bs, swapped, cfg=CFG, as_of_ms=T0 + 6 * HOUR)
    plant = rep["gateways"][2]
    assert plant["verified"] is False and any("not the pinned key" in f for f in plant["failures"])
    statuses = {b["bin"]["grai"][-4:]: b["status"] for b in rep["findings"]["bins"]}
    assert set(statuses.values()) == {"missing"}  # without the plant's records nothing arrived


def test_a_changed_weight_fails_verification_and_is_not_used(
        bundles: tuple[list[dict[str, Any]], dict[str, str]]) -> None:
    bs, keys = bundles
    forged = copy.deepcopy(bs)
    for item in forged[2]["records"]:
        if item["record"].get("type") == "custody" and item["record"]["bin"]["grai"].endswith("1004"):
            item["record"]["weight_g"] = 9500  # hide the loss
    rep = check_manifest(forged, keys, cfg=CFG)
    plant = rep["gateways"][2]
    assert plant["verified"] is False and any("record-sigs" in f for f in plant["failures"])
    assert rep["findings"]["alarms"] == [] and rep["ok"] is False


def test_a_bundle_without_a_pinned_key_is_not_trusted(bundles: tuple[list[dict[str, Any]], dict[str, str]]) -> None:
    bs, keys = bundles
    rep = check_manifest(bs, {k: v for k, v in keys.items() if k != "gw-truck"}, cfg=CFG)
    truck = rep["gateways"][1]
    assert truck["verified"] is False and "no pinned key for gateway 'gw-truck'" in truck["failures"][0]
