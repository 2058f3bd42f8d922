"""Durable before acknowledged: a real gateway process is killed while its commit is blocked;
the broker must redeliver every reading, and each lands in the journal exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from firmware_sim.message import build_message, temperature
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import StationDir, make_station
from gateway.testing.waiting import wait_for


def start_gateway(station: StationDir, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(station.config_path)],
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"), start_new_session=True)



def values(journal: Path) -> list[int]:
    j = Journal(journal, readonly=True)
    try:
        return [json.loads(r.body)["value"] for r in j.records_range(0, 10**9)]
    finally:
        j.close()


def test_kill_between_receive_and_commit_loses_nothing(tmp_path: Path, own_broker: Mosquitto) -> None:
    st = make_station(tmp_path / "st", own_broker.port, sensors=1, extra_toml="")
    cfg_text = st.config_path.read_text().replace('path = "data/journal.sqlite"',
                                                  'path = "data/journal.sqlite"\nbusy_timeout_ms = 200')
    st.config_path.write_text(cfg_text)
    journal = st.root / "data" / "journal.sqlite"
    log = tmp_path / "gateway.log"
    key = st.sensor_keys["probe-1"]
    topic = st.topic("probe-1")

    gw = start_gateway(st, log)
    try:
        wait_for(lambda: "subscribed to" in log.read_text(), what="gateway subscribed")
        with Publisher(own_broker.port) as pub:
            pub.publish(topic, build_message(key, "probe-1", 1, 1, [temperature(100)]))
            wait_for(lambda: journal.exists() and values(journal) == [100], what="warm-up reading journaled")

            # Hold the journal's write lock: the gateway receives but cannot commit.
            blocker = Journal(journal)
            blocker.db.execute("BEGIN EXCLUSIVE")
            pub.publish_all((topic, build_message(key, "probe-1", c, c, [temperature(100 + c)]))
                            for c in range(2, 12))
            wait_for(lambda: "acknowledgements stopped" in log.read_text(),
                     what="gateway received and failed to commit")
            os.killpg(gw.pid, signal.SIGKILL)
            gw.wait(10)
            blocker.db.execute("ROLLBACK")
            blocker.close()
        assert values(journal) == [100], "nothing of the blocked batch may be on disk"

        gw = start_gateway(st, log)  # same client id: the broker still holds the un-acked messages
        wait_for(lambda: len(values(journal)) >= 11, what="redelivered readings journaled")
        time.sleep(0.5)
        assert values(journal) == [100 + c for c in [0] + list(range(2, 12))]
    finally:
        if gw.poll() is None:
            os.killpg(gw.pid, signal.SIGTERM)
            gw.wait(10)
    assert "Traceback" not in log.read_text()
