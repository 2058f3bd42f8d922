"""Demo: a simulated vaccination station, end to end, on the embedded defaults.

Starts Mosquitto on a free loopback port, enrols four freezer/fridge probes, runs the
gateway on the local ledger, lets the probes publish for about a minute (with a few
hostile messages mixed in), then exports a bundle, verifies it as an auditor would, shows
that a one-byte change is caught, and stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.journal import Journal  # noqa: E402
from gateway.testing.mosquitto import Mosquitto  # noqa: E402
from gateway.testing.station import make_station  # noqa: E402

BIN = Path(sys.executable).parent


def say(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    print("$ " + " ".join(str(a) for a in args), flush=True)
    p = subprocess.run([str(a) for a in args], text=True, capture_output=True)
    print(p.stdout.rstrip() or "", flush=True)
    if p.stderr.strip():
        print(p.stderr.rstrip(), flush=True)
    if check and p.returncode != 0:
        raise SystemExit(f"demo: {args[0]} exited {p.returncode}")
    return p


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("TRACESEAL_DEMO_SECONDS", "60")))
    ap.add_argument("--dir", type=Path, default=ROOT / "demo-run")
    args = ap.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    traceseal = BIN / "traceseal"

    say("starting Mosquitto on a free loopback port")
    broker = Mosquitto(args.dir / "mosquitto").start()
    gw = None
    try:
        print(f"broker listening on 127.0.0.1:{broker.port}")
        say("enrolling 4 probes and creating the gateway and ledger keys (mode 0600)")
        st = make_station(args.dir / "station", broker.port, sensors=4, max_records=500, max_seconds=10,
                          topic_prefix="traceseal/sensors")
        print(f"config: {st.config_path}")

        say("starting the gateway (local ledger)")
        log = args.dir / "gateway.log"
        gw = subprocess.Popen([str(traceseal), "run", "-c", str(st.config_path)], stdout=subprocess.DEVNULL,
                              stderr=log.open("w"), start_new_session=True)
        wait_for(lambda: "subscribed to" in log.read_text(), 20, "the gateway to subscribe")
        print("gateway subscribed; readings are acknowledged only after they are on disk")

        say(f"probes publishing for {args.seconds} s (2 readings/s each, simulated time x60, "
            "with garbage, forged and replayed messages mixed in)")
        stats = args.dir / "sim-stats.json"
        run(BIN / "traceseal-sim", "probes", "--host", "127.0.0.1", "--port", str(broker.port),
            "--key-dir", str(st.root / "sensors"), "--sensors", "4", "--rate", "2", "--duration", str(args.seconds),
            "--scenario", "normal", "--speed", "60", "--seed", "7",
            "--fault", "garbage=0.02,badsig=0.02,replay=0.02,unknown=0.02", "--json-stats", str(stats))
        sent = json.loads(stats.read_text())
        good = int(sent.get("good", 0))

        say("waiting for every reading to be sealed into a block and anchored")
        journal = Journal(st.root / "data" / "journal.sqlite", readonly=True)
        wait_for(lambda: journal.stats()["records"] >= good, 30, f"{good} readings journaled")
        wait_for(lambda: journal.stats()["unsealed_records"] == 0 and journal.stats()["unanchored_blocks"] == 0
                 and journal.stats()["anchored_block"] >= 0, 40, "sealing and anchoring")
        run(traceseal, "status", "-c", str(st.config_path))
        records = journal.stats()["records"]
        print(f"probes sent {good} good messages; the journal holds {records} signed records "
              f"(lost: {good - records if good > records else 0})")

        say("exporting one reading and probe-1's whole day as proof bundles")
        one = args.dir / "reading.bundle.json"
        day = args.dir / "probe-1.bundle.json"
        run(traceseal, "export", "-c", str(st.config_path), "--seq", str(records // 2), "-o", str(one))
        run(traceseal, "export", "-c", str(st.config_path), "--sensor", "probe-1", "--from", "0",
            "--to", str(2**52), "-o", str(day))
        key = journal.meta("public_key") or ""

        say("verifying as an auditor would (pinned gateway key, nothing trusted from the gateway)")
        ok1 = run(traceseal, "verify", str(one), "--gateway-key", key, check=False).returncode == 0
        ok2 = run(traceseal, "verify", str(day), "--gateway-key", key, "--ledger-file",
                  str(st.root / "data" / "ledger.sqlite"), check=False).returncode == 0

        say("changing one digit of one reading in a copy: verification must fail")
        bad = json.loads(one.read_text())
        bad["records"][0]["record"]["value"] += 1
        tampered = args.dir / "tampered.bundle.json"
        tampered.write_text(json.dumps(bad))
        caught = run(traceseal, "verify", str(tampered), "--gateway-key", key, check=False).returncode == 1

        say("result")
        verdict = ok1 and ok2 and caught and records >= good
        print(f"reading bundle verified: {ok1}; day bundle verified: {ok2}; tampering caught: {caught}")
        print("DEMO OK: a verified proof" if verdict else "DEMO FAILED")
        return 0 if verdict else 1
    finally:
        if gw is not None and gw.poll() is None:
            os.killpg(gw.pid, signal.SIGTERM)
            gw.wait(15)
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
