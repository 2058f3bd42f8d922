"""Scenario 10 — the poison message: correctly signed probe messages whose counter is 2^53−1
(a compromised probe, or firmware whose counter jumped) arrive among steady load, while the
gateway is also killed with SIGKILL and restarted.

Before issue 14 one such message made the anti-replay window allocate without bound; the
writer kept the batch "for retry" for ever, so no reading of ANY probe was journaled again and
a restart did not help (the broker redelivered the same batch). The row checks that the
journal keeps growing with every acknowledged reading exactly once, seqs stay dense and
blocks keep sealing and anchoring, and that every poison message is quarantined
(``counter-jump``); detected = poison messages quarantined.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from firmware_sim.message import build_message, temperature
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station

from .common import (
    GatewayProcess,
    JournalChecker,
    LoadPublisher,
    Row,
    compare,
    verify_bundles,
    wait_for,
)

BIG = 2**53 - 1


def run_poison(workdir: Path, *, cycles: int = 3, poison_per_cycle: int = 3, rate: float = 120.0,
               rng: random.Random | None = None) -> list[Row]:
    rng = rng or random.Random()
    row = Row("10 poison: signed counter 2^53-1 among load, kill -9", runs=cycles)
    t0 = time.monotonic()
    injected = 0
    with Mosquitto(workdir / "mosquitto") as broker:
        st = make_station(workdir / "st", broker.port, sensors=3, max_records=40, max_seconds=1)
        journal = st.root / "data" / "journal.sqlite"
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(journal)
        pub = LoadPublisher(broker.port, st)
        try:
            gw.start()
            if not gw.wait_subscribed():
                row.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return [row]
            pub.start_load(rate)
            for i in range(cycles):
                for _ in range(poison_per_cycle):
                    time.sleep(rng.uniform(0.05, 0.4))
                    sensor = rng.choice(sorted(st.sensor_keys))
                    # same far counter each time (never a confirmation), distinct bytes (t)
                    payload = build_message(st.sensor_keys[sensor], sensor, BIG, int(time.time() * 1000) + injected,
                                            [temperature(4000)])
                    pub.client.publish(st.topic(sensor), payload, qos=1)
                    injected += 1
                before = checker.state.records
                # the journal must keep growing after the poison, in this same gateway run
                if not wait_for(lambda: not checker.check(integrity=False) and checker.state.records > before + 20,  # noqa: B023 - called in this iteration
                                timeout=30, interval=0.2):
                    row.fail(f"cycle {i}: journal stopped growing after the poison ({checker.state.records} "
                             f"records); gateway alive={gw.alive}")
                time.sleep(rng.uniform(0.0, 0.5))
                gw.kill9()
                gw.start()
                if not gw.wait_subscribed():
                    row.fail(f"cycle {i}: gateway did not restart: {gw.log_text(since_start=True)[-800:]}")
                    break
            pub.stop_load()
            if not pub.wait_acked(60):
                row.fail("broker did not PUBACK every reading")
            acked = pub.acked()
            if not checker.settle(acked, 90):
                row.fail("not every acknowledged reading was journaled within 90 s (stalled)")
            wait_for(lambda: not checker.check(integrity=False) and checker.state.unsealed == 0
                     and checker.state.anchored_block == checker.state.blocks - 1, timeout=30, interval=0.2)
            row.check(checker.state.unsealed == 0, f"{checker.state.unsealed} records never sealed into a block")
            rc = gw.stop()
            row.check(rc == 0, f"graceful stop exited {rc}")
            for f in checker.check():
                row.fail(f"final: {f}")
            compare(row, acked, pub.sent, checker.state)
            jumps = checker.state.quarantine.get("counter-jump", 0)
            row.check(jumps >= injected, f"{injected} poison messages sent, {jumps} quarantined as counter-jump")
            row.detected = (min(jumps, injected), injected)
            other = {k: v for k, v in checker.state.quarantine.items() if k != "counter-jump"}
            row.check(not other.get("internal-error"), f"internal errors: {other}")
            row.notes.append(f"{cycles} cycles of {poison_per_cycle} poison messages then kill -9 + restart; load "
                             f"{rate:g} readings/s over 3 probes; {checker.state.blocks} blocks, all anchored; "
                             f"quarantine {checker.state.quarantine}; a poison committed but not yet PUBACKed "
                             f"at a kill is redelivered and quarantined again (counted once)")
            verify_bundles(row, st.root, journal, sorted(st.sensor_keys))
        finally:
            pub.close()
            gw.kill9()
    row.seconds = time.monotonic() - t0
    return [row]
