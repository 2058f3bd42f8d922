"""The real gateway in a process of its own, driven by a bench over stdin/stdout.

    python bench/gwproc.py CONFIG [--ledger-down] [--register] [--profile OUT] [--no-sensor-check]

Builds ``gateway.app.service.Gateway`` from the config exactly as ``traceseal run`` does (the
ledger is wrapped in the test suite's SwitchableLedger so a bench can switch it off), then
speaks a line protocol so the parent can measure this process alone via /proc:

    -> "ready <pid>"           constructed, not yet connected
    <- "go"                    start (MQTT connect, writer and anchor threads)
    -> "connected"             subscribed
    <- "ledger-up" / "ledger-down"
    <- "inbox"                 -> "inbox <messages received, not yet taken by the writer>"
    <- "stop"                  stop (as on SIGTERM): -> "stopped", exit 0

``--register`` connects once, subscribes and stops, so the broker holds a persistent session
that queues a backlog for the next run. ``--profile OUT`` runs cProfile in the writer, MQTT
and anchor threads and writes OUT.<thread>.pstats on stop (bench code only; no gateway
source is changed).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.ledgers import make_ledger
from gateway.core.clock import SystemClock
from gateway.testing.faults import SwitchableLedger


def _profiled(fn, out: str, name: str):  # type: ignore[no-untyped-def]
    import cProfile

    def run(*a, **kw):  # type: ignore[no-untyped-def]
        prof = cProfile.Profile()
        prof.enable()
        try:
            return fn(*a, **kw)
        finally:
            prof.disable()
            prof.dump_stats(f"{out}.{name}.pstats")
    return run


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--ledger-down", action="store_true")
    ap.add_argument("--register", action="store_true")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--no-sensor-check", action="store_true",
                    help="admit enrolled probes without checking their signatures: what broker "
                         "authentication + ACL would cost (bench/admission.py, mode c)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR, format="gwproc: %(name)s %(levelname)s %(message)s")
    cfg = configmod.load(args.config)
    clock = SystemClock()
    ledger = SwitchableLedger(make_ledger(cfg.ledger, clock))
    ledger.down = args.ledger_down
    gw = Gateway(cfg, clock=clock, ledger=ledger)
    if args.no_sensor_check:
        gw.pipeline.admission._keys.clear()  # records then say auth = "allowlist"
    if args.profile:
        import paho.mqtt.client as mqtt

        gw._writer = _profiled(gw._writer, args.profile, "writer")  # type: ignore[method-assign]
        gw.anchorer.run = _profiled(gw.anchorer.run, args.profile, "anchor")  # type: ignore[method-assign]
        orig = mqtt.Client._thread_main
        mqtt.Client._thread_main = _profiled(orig, args.profile, "mqtt")  # type: ignore[method-assign]
    print(f"ready {__import__('os').getpid()}", flush=True)

    started = False
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "go" and not started:
            started = True
            gw.start()
            assert gw.mqtt is not None

            def announce() -> None:
                if gw.mqtt is not None and gw.mqtt.connected.wait(30):
                    print("connected", flush=True)
                    if args.register:
                        print("registered", flush=True)
            if args.register:
                announce()
                gw.stop()
                print("stopped", flush=True)
                return
            threading.Thread(target=announce, daemon=True).start()
        elif cmd == "ledger-up":
            ledger.down = False
            gw.anchorer.wake()
            print("ok", flush=True)
        elif cmd == "ledger-down":
            ledger.down = True
            print("ok", flush=True)
        elif cmd == "inbox":
            print(f"inbox {gw.inbox.qsize()}", flush=True)
        elif cmd == "stop":
            break
    if started:
        gw.stop()
    print("stopped", flush=True)


if __name__ == "__main__":
    main()
