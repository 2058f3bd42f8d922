"""A fridge excursion through the running gateway: readings over MQTT raise a signed alarm,
the red LED and buzzer come on (gpiozero mock pins), the button acknowledges it, the alarm
clears when the fridge recovers, the alarm state is retained on MQTT, and the alarm's block
is sealed at once and verifies like any reading."""

from __future__ import annotations

import json
import textwrap
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_range
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from ledger_client.verify import verify_bundle

UNITS = textwrap.dedent("""
    [[units]]
    id = "fridge-1"
    profile = "fridge"
    probes = ["probe-1"]
    high_delay_s = 300
    escalate_s = 3600

    [alarms]
    power_gap_s = 7200
    heartbeat_s = 3600

    [gpio]
    green = 17
    amber = 27
    red = 22
    buzzer = 23
    ack_button = 24
    """)



def test_excursion_alarm_ack_clear(tmp_path: Path, broker: Mosquitto) -> None:
    gw_id = f"station-{uuid.uuid4().hex[:6]}"
    st = make_station(tmp_path / "st", broker.port, sensors=1, gateway_id=gw_id, max_records=1000,
                      max_seconds=3600, extra_toml=UNITS)
    clock = FakeClock(start_ms=1_767_225_600_000)
    pins = MockFactory()
    retained: list[dict] = []
    got = threading.Event()

    def on_message(c, u, m):  # type: ignore[no-untyped-def]
        retained.append(json.loads(m.payload))
        got.set()

    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    watcher.on_message = on_message
    watcher.connect("127.0.0.1", broker.port)
    watcher.subscribe(f"traceseal/{gw_id}/alarm", qos=1)
    watcher.loop_start()

    gw = Gateway(configmod.load(st.config_path), clock=clock, pin_factory=pins)
    gw.start()
    j = Journal(st.root / "data" / "journal.sqlite", readonly=True)

    def alarms() -> list[dict]:
        return [json.loads(r.body) for r in j.records_range(0, 10**9) if r.type == "alarm"]

    def led() -> tuple[bool, bool, bool, bool]:
        return tuple(bool(pins.pin(n).state) for n in (17, 27, 22, 23))  # type: ignore[return-value]

    key, topic = st.sensor_keys["probe-1"], st.topic("probe-1")
    ctr = iter(range(1, 1000))

    def temps() -> int:  # count readings only: alarm records are sealed asynchronously
        if not st.root.joinpath("data", "journal.sqlite").exists():
            return 0
        return int(j.db.execute("SELECT COUNT(*) FROM records WHERE kind = 'temperature'").fetchone()[0])

    def reading(mc: int, pub: Publisher) -> None:
        c = next(ctr)
        before = temps()
        pub.publish(topic, build_message(key, "probe-1", c, clock.now_ms(), [temperature(mc)]))
        wait_for(lambda: temps() > before, what=f"reading {c} journaled")

    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        with Publisher(broker.port) as pub:
            for _ in range(3):
                reading(5000, pub)
                clock.advance(60_000)
            assert led() == (True, False, False, False)  # green
            t_out = clock.now_ms()
            for mc in (8000, 9200, 10100, 10900, 11300, 11500):  # 8.000 °C counts as out of range
                reading(mc, pub)
                clock.advance(60_000)
            wait_for(lambda: any(a["state"] == "raised" for a in alarms()), what="high alarm raised")
            raised = next(a for a in alarms() if a["state"] == "raised")
            assert raised["alarm"] == "high" and raised["unit"] == "fridge-1" and raised["since_ms"] == t_out
            assert raised["threshold"] == 8000 and raised["at_ms"] == t_out + 300_000
            wait_for(lambda: led() == (False, False, True, True), what="red LED and buzzer")
            # the alarm's block was sealed at once, not at the hourly cut (the LED lights in the
            # same writer pass, just before the seal: wait for it, it is seconds, not an hour)
            wait_for(lambda: j.db.execute("SELECT COUNT(*) FROM blocks WHERE urgent = 1").fetchone()[0] >= 1,
                     timeout=10, what="an urgent block")
            wait_for(lambda: any(r["active"] for r in retained), what="retained alarm state on MQTT")

            pins.pin(24).drive_low()  # a nurse presses acknowledge
            pins.pin(24).drive_high()
            wait_for(lambda: any(a["state"] == "acknowledged" for a in alarms()), what="acknowledged")
            wait_for(lambda: led() == (False, False, True, False), what="buzzer silenced, still red")
            for mc in (7000, 5500, 5000):
                reading(mc, pub)
                clock.advance(60_000)
            wait_for(lambda: any(a["state"] == "cleared" for a in alarms()), what="cleared")
            wait_for(lambda: led() == (True, False, False, False), what="green again")
    finally:
        gw.stop()
        watcher.loop_stop()
        watcher.disconnect()

    states = [a["state"] for a in alarms() if a["alarm"] == "high"]
    assert states == ["raised", "acknowledged", "cleared"]
    # alarm records are signed records: they are in probe-1's range bundle and verify
    bundle = export_range(j, "probe-1", 0, 2**52, allow_unanchored=True)
    kinds = [r["record"]["type"] for r in bundle["records"]]
    assert kinds.count("alarm") == 3 and kinds.count("reading") == 12
    rep = verify_bundle(bundle, gateway_key=j.meta("public_key"))
    assert [s.ok for s in rep.steps[:5]] == [True] * 5, rep.as_dict()
