"""Lot exposure: a vaccine lot scanned into a fridge that then has an excursion, and scanned
out. `export --lot` proves what the lot saw: its scans, the fridge's readings while it was
inside (and none from before or after), and the alarms of that window; it verifies, and a
shrunken window or a foreign record is caught at step 9."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from firmware_sim.message import build_message, temperature
from firmware_sim.serial_devices import BarcodeScanner
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_lot, export_range
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import fridge_with_scanners_toml, make_station
from gateway.testing.waiting import wait_for
from ledger_client.verify import verify_bundle

LOT_A = "0109506000134352" + "17270331" + "10LOT-A7" + "\x1d" + "21SER0001"



def test_lot_exposure_bundle(tmp_path: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]) -> None:
    sin = BarcodeScanner(str(tmp_path / "scan-in")).start()
    sout = BarcodeScanner(str(tmp_path / "scan-out")).start()
    extra = fridge_with_scanners_toml("fridge-1", sin.port, sout.port)
    st = make_station(tmp_path / "st", broker.port, sensors=1, max_records=1000, max_seconds=3600, extra_toml=extra)
    cfg = configmod.load(st.config_path)
    clock = FakeClock(start_ms=1_767_225_600_000)
    gw = Gateway(cfg, clock=clock)
    gw.start()
    j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
    key, topic = st.sensor_keys["probe-1"], st.topic("probe-1")
    ctr = iter(range(1, 1000))

    def count(kind: str) -> int:
        q = "SELECT COUNT(*) FROM records WHERE kind = ?" if kind != "stock" else \
            "SELECT COUNT(*) FROM records WHERE type = ?"
        return int(j.db.execute(q, (kind,)).fetchone()[0]) if (st.root / "data" / "journal.sqlite").exists() else 0

    def reading(mc: int, pub: Publisher) -> None:
        before = count("temperature")
        c = next(ctr)
        pub.publish(topic, build_message(key, "probe-1", c, clock.now_ms(), [temperature(mc)]))
        wait_for(lambda: count("temperature") > before, what="reading journaled")
        clock.advance(60_000)

    def scan(dev: BarcodeScanner) -> None:
        before = count("stock")
        dev.scan(LOT_A)
        wait_for(lambda: count("stock") > before, what="scan and its stock record journaled")
        clock.advance(60_000)

    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        with Publisher(broker.port) as pub:
            reading(5000, pub)                      # before the lot arrives
            t_in = clock.now_ms()
            scan(sin)
            for mc in (5000, 9000, 9500, 9800, 9900, 9700, 9600, 5200, 5000):
                reading(mc, pub)
            t_out = clock.now_ms()
            scan(sout)
            reading(12000, pub)                     # after the lot left: not its business
            clock.advance(60_000)
            reading(5000, pub)
        wait_for(lambda: any(json.loads(r.body).get("state") == "cleared"
                             for r in j.records_range(0, 10**9) if r.type == "alarm"), what="alarm cleared")
    finally:
        gw.stop()
        sin.close()
        sout.close()
    # the final blocks get anchored by a fresh start of the anchor worker
    sealed = j.last_block()
    assert sealed is not None and j.stats()["unsealed_records"] == 0  # a clean stop seals everything
    gw2 = Gateway(cfg, clock=clock, with_mqtt=False)
    gw2.start()
    wait_for(lambda: j.stats()["anchored_block"] >= sealed.block, what="anchored")
    gw2.stop()

    from gateway.cli import main

    assert main(["report", "-c", str(st.config_path), "--json", "--from", str(t_in), "--to", str(t_out)]) == 0
    report = json.loads(capsys.readouterr().out)
    fridge = report["units"]["fridge-1"]
    held = [5000, 5000, 9000, 9500, 9800, 9900, 9700, 9600, 5200, 5000]  # one minute each, t_in..t_out
    k = sum(math.exp(-10000 / (v / 1000 + 273.15)) for v in held) / len(held)
    assert abs(fridge["mkt_mc"]["probe-1"] - round((10000 / -math.log(k) - 273.15) * 1000)) <= 1
    assert fridge["summary"]["excursions"] == 1
    assert report["minmax_since_reset"]["probe-1"]["max"] == 12000

    bundle = export_lot(j, cfg.station.units, cfg.station.inventory, "LOT-A7")
    key_hex = j.meta("public_key")
    rep = verify_bundle(bundle, gateway_key=key_hex)
    assert rep.ok, rep.as_dict()
    (w,) = bundle["selection"]["windows"]
    assert (w["unit"], w["from_ms"], w["to_ms"]) == ("fridge-1", t_in, t_out) and "open" not in w
    recs = [e["record"] for e in bundle["records"]]
    temps = [r["value"] for r in recs if r.get("kind") == "temperature"]
    assert temps == [5000, 9000, 9500, 9800, 9900, 9700, 9600, 5200, 5000]  # exactly the window
    assert [r["event"] for r in recs if r["type"] == "stock"] == ["in", "out"]
    assert [r["state"] for r in recs if r["type"] == "alarm" and r["alarm"] == "high"] == ["raised", "cleared"]

    shrunk = copy.deepcopy(bundle)  # hide the excursion by shortening the window
    shrunk["selection"]["windows"][0]["to_ms"] = t_in + 60_000
    rep = verify_bundle(shrunk, gateway_key=key_hex)
    assert rep.first_failure is not None and rep.first_failure.step == 9
    assert any("no signed stock-out record" in f for f in rep.first_failure.failures)

    rng = export_range(j, "probe-1", 0, 2**52)
    late = next(e for e in rng["records"] if e["record"].get("value") == 12000)
    foreign = copy.deepcopy(bundle)
    assert any(b["header"]["block"] == late["block"] for b in foreign["blocks"])  # same block: proof valid
    foreign["records"].append(late)
    rep = verify_bundle(foreign, gateway_key=key_hex)
    assert [s.step for s in rep.steps if not s.ok] == [9]
    assert any("neither about lot" in f for f in rep.first_failure.failures)  # type: ignore[union-attr]
