"""Broker restarts and gateway downtime: the persistent session delivers everything, once."""

from __future__ import annotations

import json
import time
from pathlib import Path

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for


def test_broker_restart_and_gateway_downtime(tmp_path: Path, own_broker: Mosquitto) -> None:
    st = make_station(tmp_path / "st", own_broker.port, sensors=1, max_seconds=1)
    key, topic = st.sensor_keys["probe-1"], st.topic("probe-1")
    ctr = iter(range(1, 10_000))

    def send(n: int) -> list[int]:
        vals = []
        with Publisher(own_broker.port) as pub:
            for _ in range(n):
                c = next(ctr)
                pub.publish(topic, build_message(key, "probe-1", c, c, [temperature(c)]))
                vals.append(c)
        return vals

    journal = st.root / "data" / "journal.sqlite"

    def stored() -> list[int]:
        j = Journal(journal, readonly=True)
        try:
            return [json.loads(r.body)["value"] for r in j.records_range(0, 10**9)]
        finally:
            j.close()

    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
    expected = send(5)
    wait_for(lambda: stored() == expected, what="first 5")

    for _ in range(3):  # the broker restarts; the gateway reconnects and re-subscribes by itself
        own_broker.restart()
        gw.mqtt.connected.clear()
        assert gw.mqtt.connected.wait(40), "gateway did not reconnect"
        expected += send(5)
        wait_for(lambda: stored() == expected, what="readings after broker restart")

    gw.stop()  # the gateway is down; the broker queues for its persistent session
    expected += send(300)
    own_broker.restart()  # and the broker restarts meanwhile: its persistence keeps the queue
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    try:
        wait_for(lambda: len(stored()) >= len(expected), what="backlog delivered")
        time.sleep(0.3)
        assert stored() == expected  # nothing lost, nothing twice, in order
    finally:
        gw.stop()
