"""Alarm latency: from the publish of the reading that crosses the high limit to the red LED pin.

    python bench/alarm_latency.py [--quick] [--alarms N] [--rate R]

Set-up: a Mosquitto of the bench's own; an in-process ``Gateway`` (the real service: writer,
rules, sealing, urgent seal + anchor on the local ledger) with one cold-chain unit ("fridge",
2–8 °C, ``high_delay_s = 0`` so the crossing reading itself raises the alarm: 0 is the smallest
delay the unit parser allows) holding all the probes, and a ``[gpio]`` panel on gpiozero's
``MockFactory``. A publisher in a process of its own (so its paho thread does not share the
gateway's GIL) sends genuine signed firmware messages at a steady rate round-robin over the
probes. Every ``EVERY`` readings one probe reads 9.5 °C (above 8 °C); ``EVERY/2`` readings
later the same probe reads 5 °C again, so the alarm clears and the red LED goes off (amber:
cleared, unacknowledged) before the next crossing.

Pin time: the mock pins are a ``MockPin`` subclass whose ``_change_state`` (the one place a
gpiozero mock output changes level) stamps ``time.perf_counter()`` on every change: a hook,
not a polling loop, so there is no polling granularity. Publish time: the publisher stamps
``time.perf_counter()`` just before ``publish()`` (CLOCK_MONOTONIC, the same clock in both
processes on Linux). Latency = first red-LED rise after the crossing's publish.

Baseline (same run, same gateway): publish→durable of the ordinary readings, seen by a
reader polling the journal every 2 ms (as bench/ingest.py does): the alarm's extra cost is
the rule evaluation, sealing the alarm record, and the panel update after the reading's commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from _common import Child, Result, pct, print_table, proc_cpu_s, workdir

from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station

POLL_S = 0.002
HIGH_MC, BACK_MC = 9_500, 5_000
RED, BUZZER = 22, 23


def _units(probes: list[str]) -> str:
    return textwrap.dedent(f"""
        [[units]]
        id = "fridge-bench"
        profile = "fridge"
        probes = {json.dumps(probes)}
        high_delay_s = 0
        escalate_s = 3600

        [gpio]
        green = 17
        amber = 27
        red = {RED}
        buzzer = {BUZZER}
        ack_button = 24
        """)


# -- the publisher child ---------------------------------------------------------------------------
def publisher_main(msg_file: Path, port: int, rate: float, out: Path) -> None:
    """Line protocol: prints ``ready`` once connected, publishes on ``go``, writes the send
    times (perf_counter, one per message) to ``out`` as JSON, prints ``done``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import mqtt_publisher

    msgs = []
    for line in msg_file.read_text().splitlines():
        topic, payload = line.split("\t", 1)
        msgs.append((topic, payload.encode()))
    pub = mqtt_publisher(port)
    print("ready", flush=True)
    sys.stdin.readline()
    sent = [0.0] * len(msgs)
    t0 = time.perf_counter()
    for i, (topic, payload) in enumerate(msgs):
        due = t0 + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        sent[i] = time.perf_counter()
        pub.publish(topic, payload, qos=1)
    t1 = time.perf_counter()
    time.sleep(0.5)
    pub.disconnect()
    pub.loop_stop()
    out.write_text(json.dumps({"sent": sent, "achieved": len(msgs) / (t1 - t0)}))
    print("done", flush=True)


# -- the measurement ---------------------------------------------------------------------------------
def measure(alarms: int, rate: float, tmp: Path, *, probes: int = 20, every: int = 400,
            warmup_s: float = 1.0, log: Any = print) -> dict[str, Any]:
    from gpiozero.pins.mock import MockFactory, MockPin

    from firmware_sim.message import build_message, temperature
    from gateway.app import config as configmod
    from gateway.app.service import Gateway

    edges: dict[str, list[tuple[float, bool]]] = {}

    class StampedPin(MockPin):  # type: ignore[misc]
        def _change_state(self, value: bool) -> bool:
            changed = super()._change_state(value)
            if changed:
                edges.setdefault(self.info.name, []).append((time.perf_counter(), bool(value)))
            return changed

    tmp.mkdir(parents=True, exist_ok=True)
    assert every % probes == 0 and (every // 2) % probes == 0, "crossing and return must hit the same probe"
    warm = int(rate * warmup_s) // every * every
    total = warm + alarms * every + every
    with Mosquitto(tmp / "mosquitto", persistence=False) as broker:
        ids = [f"probe-{i}" for i in range(1, probes + 1)]
        st = make_station(tmp / "station", broker.port, sensors=probes, gateway_id=f"bench-{uuid.uuid4().hex[:6]}",
                          extra_toml=_units(ids))
        t_ms = int(time.time() * 1000)
        crossings: list[int] = []
        lines = []
        for i in range(total):
            sid = ids[i % probes]
            value = 4000 + (i * 37) % 3000
            if i >= warm and i < total - every:
                if (i - warm) % every == 0:
                    value = HIGH_MC
                    crossings.append(i)
                elif (i - warm) % every == every // 2:
                    value = BACK_MC
            payload = build_message(st.sensor_keys[sid], sid, 1 + i // probes, t_ms + i, [temperature(value)])
            lines.append(f"{st.topic(sid)}\t{payload.decode()}")
        msg_file, out_file = tmp / "messages.tsv", tmp / "sent.json"
        msg_file.write_text("\n".join(lines) + "\n")
        digests = {hashlib.sha256(line.split("\t", 1)[1].encode()).digest(): i for i, line in enumerate(lines)}

        pins = MockFactory(pin_class=StampedPin)
        gw = Gateway(configmod.load(st.config_path), pin_factory=pins)
        gw.start()
        seen = [0.0] * total
        stop = threading.Event()
        try:
            assert gw.mqtt is not None and gw.mqtt.connected.wait(15), "gateway not subscribed"
            db_path = st.root / "data" / "journal.sqlite"

            def poll() -> None:
                db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None,
                                     check_same_thread=False)
                last = -1
                while not stop.is_set():
                    rows = db.execute("SELECT seq, digest FROM records WHERE seq > ? ORDER BY seq", (last,)).fetchall()
                    now = time.perf_counter()
                    for seq, dig in rows:
                        k = digests.get(bytes(dig)) if dig is not None else None
                        if k is not None and not seen[k]:
                            seen[k] = now
                        last = seq
                    time.sleep(POLL_S)
                db.close()

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            pub = Child(["bench/alarm_latency.py", "--publisher", str(msg_file), "--port", str(broker.port),
                         "--rate", str(rate), "--out", str(out_file)])
            pub.expect("ready", timeout=30)
            log(f"[alarm]   publishing {total:,} readings at {rate:,.0f}/s, {len(crossings)} crossings …")
            cpu0, w0 = proc_cpu_s(os.getpid()), time.perf_counter()
            pub.send("go")
            pub.expect("done", timeout=total / rate + 120)
            pub.finish()
            w1, cpu1 = time.perf_counter(), proc_cpu_s(os.getpid())
            deadline = time.perf_counter() + 30
            while not all(seen[warm:]) and time.perf_counter() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
        finally:
            stop.set()
            gw.stop()
        sent = json.loads(out_file.read_text())
    sent_t, achieved = sent["sent"], sent["achieved"]
    red = [t for t, v in edges.get(f"GPIO{RED}", []) if v]
    buzz = [t for t, v in edges.get(f"GPIO{BUZZER}", []) if v]

    def first_after(ts: list[float], lo: float, hi: float) -> float | None:
        return next((t for t in ts if lo <= t < hi), None)

    lat, lat_buzz, pre, post = [], [], [], []
    missed = 0
    for k, i in enumerate(crossings):
        s = sent_t[i]
        hi = sent_t[crossings[k + 1]] if k + 1 < len(crossings) else float("inf")
        r = first_after(red, s, hi)
        if r is None:
            missed += 1
            continue
        lat.append((r - s) * 1e3)
        b = first_after(buzz, s, hi)
        if b is not None:
            lat_buzz.append((b - s) * 1e3)
        if seen[i]:
            pre.append((seen[i] - s) * 1e3)
            post.append((r - seen[i]) * 1e3)
    cross = set(crossings)
    ordinary = [(seen[i] - sent_t[i]) * 1e3 for i in range(warm, total) if seen[i] and i not in cross]
    lost = sum(1 for i in range(warm, total) if not seen[i])
    return {"alarms": len(crossings), "measured": len(lat), "missed": missed, "lost": lost,
            "achieved": achieved, "rate": rate,
            "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else float("nan"),
            "buzz_p99_ms": pct(lat_buzz, 99), "pre_p50_ms": pct(pre, 50), "pre_p99_ms": pct(pre, 99),
            "post_p50_ms": pct(post, 50), "post_p99_ms": pct(post, 99),
            "base_p50_ms": pct(ordinary, 50), "base_p99_ms": pct(ordinary, 99), "base_n": len(ordinary),
            "cpu_frac": (cpu1 - cpu0) / (w1 - w0)}


def run(quick: bool, *, alarms: int | None = None, rate: float = 1000.0, base: str | None = None,
        log: Any = print) -> list[Result]:
    alarms = alarms or (60 if quick else 200)
    tmp = workdir("alarm", base)
    log(f"[alarm] alarm latency: {alarms} crossings at {rate:,.0f} readings/s …")
    m = measure(alarms, rate, tmp, log=log)
    log(f"[alarm]   red LED p50 {m['p50_ms']:.1f} p99 {m['p99_ms']:.1f} max {m['max_ms']:.1f} ms; "
        f"ordinary publish→durable p99 {m['base_p99_ms']:.1f} ms")
    lbl = f"@ {rate:,.0f}/s ({m['measured']} alarms)"
    ratio = m["base_p99_ms"] / m["p99_ms"] if m["p99_ms"] else None
    miss = f"; {m['missed']} crossings without a red-LED rise" if m["missed"] else ""
    lost = f"; {m['lost']} readings not seen durable within 30 s" if m["lost"] else ""
    return [
        Result(f"alarm latency p50, crossing publish → red LED pin {lbl}", f"{m['p50_ms']:.1f} ms",
               f"{m['base_p50_ms']:.1f} ms", m["base_p50_ms"] / m["p50_ms"] if m["p50_ms"] else None,
               note=f"baseline = publish→durable p50 of the {m['base_n']:,} ordinary readings of the same run "
                    f"(≤ {POLL_S * 1e3:g} ms poll); ratio = baseline / alarm; achieved {m['achieved']:,.0f}/s; "
                    f"gateway+poller process CPU {m['cpu_frac']:.0%} of one core{miss}{lost}",
               raw=m),
        Result(f"alarm latency p99, crossing publish → red LED pin {lbl}", f"{m['p99_ms']:.1f} ms",
               f"{m['base_p99_ms']:.1f} ms", ratio, "< 1 s", m["p99_ms"] < 1000 and not m["missed"]),
        Result(f"alarm latency max {lbl}", f"{m['max_ms']:.1f} ms", "—", None, "—", None,
               note=f"buzzer pin p99 {m['buzz_p99_ms']:.1f} ms; split p50/p99: publish → crossing reading "
                    f"durable {m['pre_p50_ms']:.1f}/{m['pre_p99_ms']:.1f} ms, durable → red LED "
                    f"{m['post_p50_ms']:.1f}/{m['post_p99_ms']:.1f} ms (negative: the writer updates the panel "
                    f"in the same pass, right after the reading's commit, before the {POLL_S * 1e3:g}-ms journal "
                    "poller sees the row); pin time by a hook on MockPin._change_state, no polling"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--alarms", type=int, default=None, help="crossings (default 200; 60 with --quick)")
    ap.add_argument("--rate", type=float, default=1000.0, help="readings/s")
    ap.add_argument("--publisher", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.publisher is not None:
        publisher_main(args.publisher, args.port, args.rate, args.out)
        return
    print_table(run(args.quick, alarms=args.alarms, rate=args.rate), "\nalarm latency")


if __name__ == "__main__":
    main()
