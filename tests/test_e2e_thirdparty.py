"""Third-party MQTT sensors (Tasmota) and 1-wire probes through the running gateway:
allow-listed readings become records, unknown probes and bad reads are quarantined by reason."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for

TASMOTA = (b'{"Time":"2020-11-15T21:05:00","DS18B20-1":{"Id":"01183379C9FF","Temperature":4.35},'
           b'"DS18B20-2":{"Id":"011833902FFF","Temperature":-16.38},"TempUnit":"C"}')
GOOD_W1 = "51 01 4b 46 7f ff 0c 10 ab : crc=ab YES\n51 01 4b 46 7f ff 0c 10 ab t=21062\n"
POWER_ON_W1 = "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n"



def test_tasmota_and_w1(tmp_path: Path, broker: Mosquitto) -> None:
    w1 = tmp_path / "w1"
    (w1 / "28-031655c9d5ff").mkdir(parents=True)
    (w1 / "28-031655c9d5ff" / "w1_slave").write_text(GOOD_W1)
    (w1 / "28-0000000000aa").mkdir()
    (w1 / "28-0000000000aa" / "w1_slave").write_text(POWER_ON_W1)
    tele = f"tele/{tmp_path.name[-8:]}-fridge/SENSOR"
    extra = textwrap.dedent(f"""
        [[routes]]
        topic = "{tele}"
        adapter = "tasmota"

        [w1]
        enabled = true
        base_dir = "{w1}"
        interval_s = 0.2

        [[sensors]]
        id = "tasmota:28-01183379c9ff"
        adapter = "tasmota"

        [[sensors]]
        id = "w1:28-031655c9d5ff"
        adapter = "ds18b20"

        [[sensors]]
        id = "w1:28-0000000000aa"
        adapter = "ds18b20"
        """)
    st = make_station(tmp_path / "st", broker.port, sensors=1, extra_toml=extra)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        with Publisher(broker.port) as pub:
            pub.publish(tele, TASMOTA)
        wait_for(lambda: j.stats()["quarantine"].get("unknown-sensor", 0) == 1
                 and j.stats()["quarantine"].get("power-on-value", 0) >= 1
                 and any(r.sensor == "w1:28-031655c9d5ff" for r in j.records_range(0, 10**9)),
                 what="tasmota and w1 processed")
    finally:
        gw.stop()
    recs = {json.loads(r.body)["sensor"]: json.loads(r.body) for r in j.records_range(0, 10**9)}
    t = recs["tasmota:28-01183379c9ff"]
    assert t["value"] == 4350 and t["unit"] == "mC" and t["source"]["auth"] == "allowlist"
    assert recs["w1:28-031655c9d5ff"]["value"] == 21062
    assert "tasmota:28-011833902fff" not in recs  # not enrolled: quarantined, the other kept
    detail = j.db.execute("SELECT detail FROM quarantine WHERE reason='unknown-sensor'").fetchone()[0]
    assert "tasmota:28-011833902fff" in detail
