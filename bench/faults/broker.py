"""Scenario 2 — broker restarts and long gateway downtime.

a) Mosquitto (the reviewed limits of gateway/testing/mosquitto.py: ``max_queued_messages 0``,
   persistence) is restarted repeatedly while probes publish; the gateway must notice,
   reconnect, re-subscribe and lose nothing.
b) The gateway is stopped while a backlog of readings is published, then started: every
   acknowledged reading lands exactly once.
c) The same with a broker restart while the backlog is published.
d) CONTROL: the same backlog against Mosquitto's DEFAULT ``max_queued_messages`` (1000).
   Expected to lose readings, silently (every publisher PUBACK arrives, nothing is logged
   at warning level): this is the loss the reviewed broker configuration prevents.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station

from .common import GatewayProcess, JournalChecker, LoadPublisher, Row, compare, log_grows, wait_for


def run_broker(workdir: Path, *, restarts: int = 3, backlog: int = 2000, rate: float = 150.0,
               rng: random.Random | None = None, control: bool = True) -> list[Row]:
    rng = rng or random.Random()
    rows = _restarts_and_backlog(workdir / "reviewed", restarts, backlog, rate, rng)
    if control:
        rows.append(_default_broker_backlog(workdir / "default", backlog))
    return rows


def _restarts_and_backlog(workdir: Path, restarts: int, backlog: int, rate: float,
                          rng: random.Random) -> list[Row]:
    ra = Row("2a broker restarts under load", runs=restarts)
    rb = Row(f"2b gateway down, {backlog:,} backlog", runs=1)
    rc_ = Row(f"2c gateway down, {backlog:,} backlog, broker restart", runs=1)
    t0 = time.monotonic()
    with Mosquitto(workdir / "mosquitto") as broker:
        st = make_station(workdir / "st", broker.port, sensors=3, max_records=200, max_seconds=1)
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(st.root / "data" / "journal.sqlite")
        pub = LoadPublisher(broker.port, st)
        try:
            gw.start()
            if not gw.wait_subscribed():
                ra.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return [ra, rb, rc_]
            pub.start_load(rate)
            reconnected = 0
            for i in range(restarts):
                time.sleep(rng.uniform(0.3, 2.0))
                before = gw.log_text().count("subscribed to")
                broker.restart()
                if wait_for(log_grows(gw, "subscribed to", before), timeout=45):
                    reconnected += 1
                else:
                    ra.fail(f"restart {i}: the gateway did not re-subscribe within 45 s")
            time.sleep(1.0)
            pub.stop_load()
            ra.check(pub.wait_acked(60), "the broker did not PUBACK every reading after its restarts")
            acked = pub.acked()
            sent_a = pub.sent
            ra.check(checker.settle(acked, 60), "acknowledged readings not journaled within 60 s")
            for f in checker.check():
                ra.fail(f)
            compare(ra, acked, sent_a, checker.state)
            ra.detected = (reconnected, restarts)
            q = dict(checker.state.quarantine)
            ra.notes.insert(0, f"{restarts} graceful broker restarts at 0.3-2 s intervals under {rate:g} readings/s; "
                               f"detected = restarts after which the gateway re-subscribed by itself; "
                               f"{checker.state.counters.get('duplicate', 0)} redeliveries kept once; "
                               f"quarantine {q or 'empty'}")
            ra.seconds = time.monotonic() - t0

            # b) long downtime: the broker queues for the gateway's persistent session
            _downtime(rb, gw, pub, checker, broker, backlog, restart_broker=False)
            # c) the same, and the broker restarts while the backlog is being published
            _downtime(rc_, gw, pub, checker, broker, backlog, restart_broker=True)
        finally:
            pub.close()
            gw.stop()
    return [ra, rb, rc_]


def _downtime(row: Row, gw: GatewayProcess, pub: LoadPublisher, checker: JournalChecker, broker: Mosquitto,
              backlog: int, *, restart_broker: bool) -> None:
    t1 = time.monotonic()
    rc = gw.stop()
    row.check(rc == 0, f"graceful stop exited {rc}")
    n_before = len(pub.sent)
    if restart_broker:
        half = backlog // 2
        pub.publish_burst(half)
        broker.restart()  # the probes keep publishing through the restart (paho queues meanwhile)
        pub.publish_burst(backlog - half)
    else:
        pub.publish_burst(backlog)
    row.check(pub.wait_acked(120), "the broker did not PUBACK the backlog")
    sent = pub.sent[n_before:]
    acked = pub.acked() & set(sent)
    gw.start()
    drained = checker.settle(acked, 60 + backlog / 200)
    row.check(drained, "backlog not drained in time")
    time.sleep(0.5)
    for f in checker.check():
        row.fail(f)
    compare(row, acked, sent, checker.state)
    resumed = "session present: True" in gw.log_text(since_start=True)
    row.check(resumed, "the gateway did not resume its persistent session")
    row.detected = (int(resumed and drained), 1)
    row.notes.insert(0, f"gateway stopped (SIGTERM), {backlog:,} readings published"
                        + (", broker restarted in the middle of it" if restart_broker else "")
                        + f", gateway started: detected = persistent session resumed and drained; "
                          f"{time.monotonic() - t1:.1f} s including the publishing")
    row.seconds = time.monotonic() - t1


def _default_broker_backlog(workdir: Path, backlog: int) -> Row:
    row = Row(f"2d CONTROL: default max_queued_messages (1000), {backlog:,} backlog", runs=1, control=True)
    t0 = time.monotonic()
    with Mosquitto(workdir / "mosquitto", max_queued_messages=1000) as broker:
        st = make_station(workdir / "st", broker.port, sensors=3, max_records=200, max_seconds=1)
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(st.root / "data" / "journal.sqlite")
        pub = LoadPublisher(broker.port, st)
        try:
            gw.start()
            if not gw.wait_subscribed():
                row.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return row
            gw.stop()
            pub.publish_burst(backlog)
            pub.wait_acked(120)
            gw.start()

            last = [-1, time.monotonic()]

            def settled() -> bool:  # no new record for 3 s
                checker.check(integrity=False)
                if checker.state.records != last[0]:
                    last[:] = [checker.state.records, time.monotonic()]
                return time.monotonic() - last[1] > 3.0

            wait_for(settled, timeout=60 + backlog / 200, interval=0.25)
            probe = Row("control")
            compare(probe, pub.acked(), pub.sent, checker.state)
            row.sent, row.acked, row.journaled = probe.sent, probe.acked, probe.journaled
            row.lost, row.duplicated = probe.lost, probe.duplicated
            broker_log = (workdir / "mosquitto" / "mosquitto.log").read_text(errors="replace")
            noticed = "being dropped" in broker_log
            gap_alarm = any("gap" in k for k in checker.state.counters) or any(
                "gap" in k for k in checker.state.quarantine)
            row.detected = (int(gap_alarm), 1)
            broker_said = ("logged one notice-level line (Outgoing messages are being dropped for client ...)"
                           if noticed else "logged nothing")
            row.notes.append(f"CONTROL, expected to lose: every publisher PUBACK arrived ({row.acked:,}), yet "
                             f"{row.lost:,} readings never reached the gateway. The broker "
                             f"{broker_said}"
                             f"; the gateway did not notice (detected = the gateway reported the loss: the probes' "
                             f"counters jump, but counter gaps are not counted). systemd/mosquitto-traceseal.conf "
                             f"(max_queued_messages 0) prevents it: rows 2b/2c")
            if not row.lost:
                row.fail("the control did not reproduce Mosquitto's default-queue loss")
        finally:
            pub.close()
            gw.stop()
    row.seconds = time.monotonic() - t0
    return row
