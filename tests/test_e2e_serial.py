"""A scan and a stable weight from simulated serial devices on real ptys become signed records,
end to end through the running gateway; unstable and repeated weights and duplicate scans never do."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from firmware_sim.serial_devices import BarcodeScanner, MtSicsScale
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_record
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from ledger_client.verify import verify_bundle

GS1 = "010950600013435217270331" + "10LOT-A7" + "\x1d" + "21SER0001"



def test_scan_and_stable_weight_become_signed_records(tmp_path: Path, broker: Mosquitto) -> None:
    scale = MtSicsScale(str(tmp_path / "usb-Mettler_Toledo-if00"), unit="kg", decimals=3).start()
    scanner = BarcodeScanner(str(tmp_path / "usb-Scanner-if00")).start()
    serial = textwrap.dedent(f"""
        [[serial]]
        name = "scale-1"
        path = "{scale.port}"
        adapter = "mtsics"
        poll = "SI"
        poll_interval_s = 0.1

        [[serial]]
        name = "scanner-1"
        path = "{scanner.port}"
        adapter = "gs1"
        """)
    st = make_station(tmp_path / "st", broker.port, sensors=1, max_records=50, max_seconds=1, extra_toml=serial)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    j = Journal(st.root / "data" / "journal.sqlite", readonly=True)

    def records(kind: str) -> list[dict]:
        return [json.loads(r.body) for r in j.records_range(0, 10**9) if r.kind == kind]

    try:
        scale.set_weight("3.250", stable=False)  # bin being put down: the display still moves
        time.sleep(0.6)
        assert records("weight") == []
        scale.set_weight("3.275", stable=True)
        wait_for(lambda: len(records("weight")) == 1, what="one stable weight")
        time.sleep(0.6)  # polled ~6 more times at the same stable weight: still one record
        scale.set_weight("3.100", stable=False)
        time.sleep(0.4)
        scale.set_weight("3.275", stable=True)  # the same bin weighed again after lifting it
        wait_for(lambda: len(records("weight")) == 2, what="re-weighing recorded")
        scanner.scan(GS1, repeat=3)  # a trigger held down: three identical reads
        wait_for(lambda: len(records("scan")) == 1, what="one scan")
        time.sleep(0.5)
        wait_for(lambda: j.stats()["unsealed_records"] == 0 and j.stats()["unanchored_blocks"] == 0,
                 what="sealed and anchored")
    finally:
        gw.stop()
        scale.close()
        scanner.close()

    weights = records("weight")
    assert [w["value"] for w in weights] == [3275, 3275] and all(w["unit"] == "g" for w in weights)
    assert all(w["attrs"]["stable"] is True and w["source"]["auth"] == "allowlist" for w in weights)
    assert weights[0]["sensor"] == "mtsics:scale-1" and weights[0]["source"]["transport"] == "serial"
    (scan,) = records("scan")
    assert scan["attrs"]["gtin"] == "09506000134352" and scan["attrs"]["lot"] == "LOT-A7"
    assert scan["attrs"]["expiry"] == "2027-03-31" and scan["attrs"]["serial"] == "SER0001"
    counters = j.stats()["counters"]
    assert counters["dropped.unstable-weight"] >= 2 and counters["dropped.repeat-weight"] >= 3
    assert counters["dropped.duplicate-read"] == 2
    bundle = export_record(j, scan["seq"])
    assert verify_bundle(bundle, gateway_key=j.meta("public_key")).ok
