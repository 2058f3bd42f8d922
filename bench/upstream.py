"""Upstream forwarding: drain rate of a backlog, and how fast an alarm raised mid-drain gets out.

A real gateway (in this process) journals N readings while its upstream Mosquitto is down;
the broker comes back, and once the drain is under way a fridge alarm is raised. Prints the
drain rate (records/s to the upstream broker, as a subscriber sees them) and the alarm's
latency from its journal commit to its arrival at the subscriber, with how much of the
backlog had arrived by then.

    python bench/upstream.py [--backlog 20000] [--batch-max 500] [--max-inflight 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import paho.mqtt.client as mqtt  # noqa: E402

from firmware_sim.message import build_message, temperature  # noqa: E402
from gateway.app import config as configmod  # noqa: E402
from gateway.app.service import Gateway  # noqa: E402
from gateway.journal import Journal  # noqa: E402
from gateway.testing.mosquitto import Mosquitto  # noqa: E402
from gateway.testing.mqttpub import Publisher  # noqa: E402
from gateway.testing.station import make_station  # noqa: E402
from gateway.testing.waiting import wait_for  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backlog", type=int, default=20_000)
    ap.add_argument("--batch-max", type=int, default=500)
    ap.add_argument("--max-inflight", type=int, default=4)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ts-upstream-"))
    try:
        run(root, args.backlog, args.batch_max, args.max_inflight)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, backlog: int, batch_max: int, max_inflight: int) -> None:
    with Mosquitto(root / "ingest") as ingest:
        up = Mosquitto(root / "upstream")
        gw_id = f"bench-{uuid.uuid4().hex[:6]}"
        st = make_station(root / "st", ingest.port, gateway_id=gw_id, max_records=1000, max_seconds=60,
                          extra_toml=textwrap.dedent(f"""
            [[units]]
            id = "fridge-1"
            profile = "fridge"
            probes = ["probe-1"]
            high_delay_s = 0

            [upstream]
            enabled = true
            host = "127.0.0.1"
            port = {up.port}
            batch_max = {batch_max}
            max_inflight = {max_inflight}
            reconnect_max_s = 1
            """))
        gw = Gateway(configmod.load(st.config_path))
        gw.start()
        j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
        ctr = iter(range(1, 10**9))

        def publish(n: int, sensors: tuple[str, ...], value: int) -> None:
            with Publisher(ingest.port) as pub:
                pub.publish_all((st.topic(s), build_message(st.sensor_keys[s], s, next(ctr), int(time.time() * 1000),
                                                            [temperature(value)]))
                                for i in range(n) for s in (sensors[i % len(sensors)],))

        try:
            assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
            publish(backlog, ("probe-2", "probe-3"), 5000)
            wait_for(lambda: j.next_seq() >= backlog, timeout=300, what="backlog journaled")
            total = j.next_seq()
            up.start()
            got: list[tuple[float, str, int]] = []  # (time, stream, items)
            alarm_at: list[float] = []
            lock = threading.Lock()

            def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
                kind = m.topic.rsplit("/", 1)[1]
                if kind not in ("records", "alarms"):
                    return
                p = json.loads(m.payload)
                now = time.monotonic()
                with lock:
                    got.append((now, kind, len(p["items"])))
                    if kind == "alarms" and not alarm_at:
                        alarm_at.append(now)

            sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            sub.on_message = on_message
            sub.connect("127.0.0.1", up.port)
            sub.subscribe(f"traceseal/up/{gw_id}/+", qos=1)
            sub.loop_start()
            wait_for(lambda: any(k == "records" for _, k, _ in got), timeout=30, what="drain started")
            t_start = got[0][0]
            publish(1, ("probe-1",), 12_000)
            wait_for(lambda: j.db.execute("SELECT 1 FROM records WHERE type='alarm'").fetchone() is not None,
                     interval=0.001, what="alarm journaled")
            t_alarm = time.monotonic()
            wait_for(lambda: bool(alarm_at), timeout=60, interval=0.001, what="alarm upstream")
            with lock:
                before = sum(n for t, k, n in got if k == "records" and t <= alarm_at[0])
            wait_for(lambda: sum(n for _, k, n in got if k == "records") >= total, timeout=300, what="drained")
            t_end = max(t for t, k, _ in got if k == "records")
            sub.loop_stop()
            sub.disconnect()
        finally:
            gw.stop()
            up.stop()
    drained = sum(n for _, k, n in got if k == "records")
    print(f"backlog {total} records, batch_max {batch_max}, max_inflight {max_inflight}")
    print(f"drain: {drained} records in {t_end - t_start:.2f} s = "
          f"{drained / max(t_end - t_start, 1e-9):,.0f} records/s")
    print(f"alarm raised with {before} of {total} records upstream; "
          f"journal commit -> upstream subscriber {1000 * (alarm_at[0] - t_alarm):.0f} ms")


if __name__ == "__main__":
    main()
