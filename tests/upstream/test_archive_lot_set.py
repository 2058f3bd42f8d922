"""Done means (issue 10): two gateways forward to one archive; a vaccine lot that moved
from station A's fridge to station B's exports from the archive as one traceseal-set/1
that `traceseal verify` accepts, and tampering any inner bundle makes it fail."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import archive_kit as kit
import pytest

from gateway.app import config as configmod
from gateway.chain.export import export_lot
from gateway.cli import main
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.waiting import wait_for


def test_lot_across_two_stations_exports_as_one_set_that_verifies(broker: Mosquitto, tmp_path: Path,
                                                                 tmp_path_factory: pytest.TempPathFactory,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a0, b0 = kit.stations(broker.port, tmp_path_factory)
    a, b = a0.copy(tmp_path / "a"), b0.copy(tmp_path / "b")
    prefix = kit.new_prefix()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line("sqlite", tmp_path), [a, b])
    arch = kit.start_archive(toml)
    ups = [kit.Upstream(broker.port, prefix, s) for s in (a, b)]
    acks = kit.AckWatcher(broker.port, prefix)
    try:
        for up in ups:
            up.everything()
        for up in ups:
            wait_for(lambda: acks.acks.get(up.gw, {}).get("blocks") == up.last_block(), what=f"{up.gw} verified")
    finally:
        arch.stop()
        acks.close()
    keys = {s.gateway_id: s.public_key() for s in (a, b)}
    pins = [x for g, k in keys.items() for x in ("--key", f"{g}={k}")]
    out = tmp_path / "lot.json"
    assert main(["archive", "export", "-c", str(toml), "--lot", kit.LOT, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "traceseal-set/1" and doc["selection"] == {"type": "lot", "lot": kit.LOT}
    by_gw = {bd["gateway"]["id"]: bd for bd in doc["bundles"]}
    assert sorted(by_gw) == ["station-a", "station-b"]
    (wa,), (wb,) = by_gw["station-a"]["selection"]["windows"], by_gw["station-b"]["selection"]["windows"]
    assert wa["unit"] == "fridge-a" and "open" not in wa           # scanned out of A ...
    assert wb["unit"] == "fridge-b" and wb.get("open") is True     # ... and into B, still there
    assert wa["to_ms"] < wb["from_ms"]
    # each inner bundle is what the gateway itself exports (units from its signed profile)
    for up in ups:
        cfg = configmod.load(up.built.config_path)
        own = export_lot(up.j, cfg.station.units, cfg.station.inventory, kit.LOT)
        assert by_gw[up.gw] == dict(own, exported_ms=by_gw[up.gw]["exported_ms"]) or by_gw[up.gw] == own
    temps = [e["record"]["value"] for e in by_gw["station-a"]["records"] if e["record"].get("kind") == "temperature"]
    assert temps == [5000, 9000, 9500, 9800, 9900, 9700, 9600, 9400, 5200, 5000]
    alarms = [e["record"]["state"] for e in by_gw["station-a"]["records"] if e["record"]["type"] == "alarm"]
    assert alarms[:1] == ["raised"] and "cleared" in alarms  # the excursion travels with the lot
    capsys.readouterr()
    assert main(["verify", str(out), *pins]) == 0
    assert "SET RESULT: VERIFIED" in capsys.readouterr().out

    def verify(d: dict, *extra: str) -> tuple[int, dict]:
        p = tmp_path / "t.json"
        p.write_text(json.dumps(d))
        capsys.readouterr()
        rc = main(["verify", str(p), "--json", *extra])
        return rc, json.loads(capsys.readouterr().out)

    # tampering with any inner bundle fails the set, and the report names the bundle
    for gw in ("station-a", "station-b"):
        bad = copy.deepcopy(doc)
        inner = next(bd for bd in bad["bundles"] if bd["gateway"]["id"] == gw)
        rec = next(e for e in inner["records"] if e["record"].get("kind") == "temperature")
        rec["record"]["value"] -= 3000
        rc, rep = verify(bad, *pins)
        assert rc == 1 and not rep["ok"]
        res = {x["gateway"]: x for x in rep["bundles"]}
        assert not res[gw]["ok"] and all(x["ok"] for g, x in res.items() if g != gw)
        failing = [s["step"] for s in res[gw]["report"]["steps"] if not s["ok"]]
        assert 2 in failing  # the record signature
    # a wrong pin, an inner bundle of another lot, a gateway twice, a dropped station's pin
    rc, rep = verify(doc, "--key", f"station-a={keys['station-b']}", "--key", f"station-b={keys['station-b']}")
    assert rc == 1 and not {x["gateway"]: x for x in rep["bundles"]}["station-a"]["ok"]
    other = copy.deepcopy(doc)
    other["bundles"][1]["selection"]["lot"] = "LOT-B9"
    rc, rep = verify(other, *pins)
    assert rc == 1 and any("is not the set's" in f for f in rep["failures"])
    twice = copy.deepcopy(doc)
    twice["bundles"].append(copy.deepcopy(twice["bundles"][0]))
    rc, rep = verify(twice, *pins)
    assert rc == 1 and any("more than once" in f for f in rep["failures"])
    rc, rep = verify(doc, "--key", f"station-a={keys['station-a']}")
    assert rc == 1 and any("no pinned key" in f for f in rep["failures"])

    # one reading from the archive: a plain traceseal-bundle/1 that verifies like a gateway's
    one = tmp_path / "one.json"
    assert main(["archive", "export", "-c", str(toml), "--gateway", "station-b", "--seq", "1", "-o", str(one)]) == 0
    assert json.loads(one.read_text())["format"] == "traceseal-bundle/1"
    assert main(["verify", str(one), "--gateway-key", keys["station-b"]]) == 0
    capsys.readouterr()
    assert main(["archive", "status", "-c", str(toml), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["gateways"]
    assert {g: (s["rejections"], s["blocks_pending"]) for g, s in st.items()} == {"station-a": ({}, 0),
                                                                                  "station-b": ({}, 0)}


def test_waste_route_across_three_gateways_exports_as_one_set(broker: Mosquitto, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The hospital's, the truck's and the plant's gateways forward one waste route; the
    archive exports it as one set of three bundles that verifies, each against its own key."""
    import sys

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from firmware_sim.waste_route import ROUTE, T0, waste_route
    from gateway.chain.anchoring import Anchorer
    from gateway.chain.blocks import BlockSealer
    from gateway.core.clock import FakeClock
    from gateway.ingest.seal import Sealer
    from gateway.journal import Journal
    from ledger_client.keys import public_hex, write_private_key
    from ledger_client.local import LocalLedger

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "custody"))
    from custody_kit import HOUR, route_rigs, strip

    built = []
    for gw, rig in route_rigs(waste_route(), T0 + 3 * HOUR).items():
        root = tmp_path / gw
        key = write_private_key(root / "gateway.key")
        clock = FakeClock(rig.records[-1]["time_ms"] + 1000)
        j = Journal(root / "data" / "journal.sqlite")
        j.bind_identity(gw, public_hex(key))
        sealer = Sealer(gw, key, 0)
        j.commit_batch([sealer.seal(strip(r), time_ms=r["time_ms"], synced=True) for r in rig.records], [], {}, {})
        BlockSealer(j, key, gw, clock, max_records=16, max_seconds=60).maybe_seal(force=True)
        anchorer = Anchorer(j, LocalLedger(root / "ledger.sqlite", Ed25519PrivateKey.generate(), clock_ms=clock.now_ms),
                            clock, gw)
        while anchorer.step() != "idle":
            pass
        j.close()
        built.append(kit.Built(root, gw, root / "none.toml"))
    assert len(built) == 3
    prefix = kit.new_prefix()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line("sqlite", tmp_path), built)
    arch = kit.start_archive(toml)
    ups = [kit.Upstream(broker.port, prefix, b) for b in built]
    acks = kit.AckWatcher(broker.port, prefix)
    try:
        for up in ups:  # no hello: a route export needs no station profile
            up.records(batch=50)
            up.blocks()
            up.anchors()
        for up in ups:
            wait_for(lambda: acks.acks.get(up.gw, {}).get("blocks") == up.last_block(), what=f"{up.gw} verified")
    finally:
        arch.stop()
        acks.close()
        for up in ups:
            up.close()
    out = tmp_path / "route.json"
    assert main(["archive", "export", "-c", str(toml), "--route", ROUTE, "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["selection"] == {"type": "route", "id": ROUTE}
    assert sorted(bd["gateway"]["id"] for bd in doc["bundles"]) == sorted(b.gateway_id for b in built)
    pins = [x for b in built for x in ("--key", f"{b.gateway_id}={b.public_key()}")]
    capsys.readouterr()
    assert main(["verify", str(out), *pins]) == 0
    # the same bundles reconcile as a manifest, as if exported from each gateway
    files = []
    for i, bd in enumerate(doc["bundles"]):
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps(bd))
    assert main(["manifest", *map(str, files), *pins]) == 0
