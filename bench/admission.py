"""Admission options measured in one run: what authenticating each sensor message costs.

    python bench/admission.py [--quick] [--n N]

Modes (README "Sensor authentication", bench/README.md "Admission modes"):

a) ``ed25519``: the probe signs every message; the gateway runs libsodium ``crypto_sign_open``.
b) ``hmac``: the probe tags every message with HMAC-SHA256 under a per-sensor secret the
   gateway also holds (``hmac_key_file``); the gateway recomputes it (``hmac.compare_digest``).
c) ``broker``: the broker authenticates each probe (username/password or client certificate)
   and its ACL pins the probe to its own topic; the gateway checks no per-message proof. Here
   the same signed messages are admitted with the signature check switched off
   (``gwproc.py --no-sensor-check``): exactly the gateway's work in that deployment.

Rows: the check alone per message (in-process, best of rounds), ``Pipeline.process`` per message
(in-process, 500-message batches into a real journal), and a real MQTT backlog drain per mode
against the reference pipeline of the same run (readings/s and CPU per reading, all work).
A last row measures whether libsodium verification runs in parallel on two threads (cffi
releases the GIL), i.e. whether moving it off the writer thread would buy throughput.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from _common import Result, build_messages, fmt_rate, print_table, workdir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.adapters import traceseal_fw
from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.ingest.sensor_auth import check as check_mac
from gateway.journal import Journal
from gateway.testing.station import enroll_hmac, make_station
from gateway.transports.inbound import Inbound
from ledger_client.keys import public_from_hex, verifier

MODES = ("ed25519", "hmac", "broker")
LABEL = {"ed25519": "(a) Ed25519 per message", "hmac": "(b) HMAC-SHA256 per message",
         "broker": "(c) broker auth + ACL, no per-message check"}


def _best(fn: Any, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _stations(tmp: Path, n: int) -> dict[str, Any]:
    out = {}
    for mode in MODES:
        if mode == "hmac":
            st = make_station(tmp / mode, 1883, sensors=0)
            enroll_hmac(st, [f"probe-{i}" for i in range(1, 11)])
        else:
            st = make_station(tmp / mode, 1883, sensors=10)
        out[mode] = (st, build_messages(st, n))
    return out


def micro(tmp: Path, n: int, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """µs per message: the proof check alone, and the whole ``Pipeline.process``."""
    stations = _stations(tmp, n)
    checks: dict[str, Any] = {}
    for mode, (st, msgs) in stations.items():
        cfg = configmod.load(st.config_path)
        proofs = [traceseal_fw.parse(t, p)[0].proof for t, p in msgs]
        if mode == "ed25519":
            keys = {s: verifier(public_from_hex(c.public_key)) for s, c in cfg.sensors.items()}
            checks[mode] = lambda proofs=proofs, keys=keys: [keys[p.sensor](p.signature, p.message) for p in proofs]
        elif mode == "hmac":
            keys = {s: c.hmac_key for s, c in cfg.sensors.items()}
            checks[mode] = lambda proofs=proofs, keys=keys: [check_mac(keys[p.sensor], p.message, p.signature)
                                                             for p in proofs]
        else:
            checks[mode] = lambda proofs=proofs: [p.sensor for p in proofs]
    check_us = {m: 1e6 * _best(f, rounds) / n for m, f in checks.items()}

    def process(mode: str) -> None:
        st, msgs = stations[mode]
        cfg = configmod.load(st.config_path)
        d = tmp / f"j-{mode}-{time.monotonic_ns()}"
        d.mkdir()
        j = Journal(d / "journal.sqlite")
        pipe = Pipeline(cfg.ingest, j, Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 0), FakeClock())
        if mode == "broker":
            pipe.admission._keys.clear()
        inb = [Inbound("mqtt", t, p) for t, p in msgs]
        t0 = time.perf_counter()
        for i in range(0, n, 500):
            res = pipe.process(inb[i:i + 500])
            assert not res.quarantined, res.quarantined[:1]
        times[mode] = min(times.get(mode, float("inf")), time.perf_counter() - t0)
        auth = json.loads(res.records[-1].body)["source"]["auth"]
        assert auth == {"ed25519": "ed25519", "hmac": "hmac-sha256", "broker": "allowlist"}[mode], auth
        j.close()

    times: dict[str, float] = {}
    for _ in range(rounds):
        for mode in MODES:
            process(mode)
    return check_us, {m: 1e6 * t / n for m, t in times.items()}


def parallel_verify(tmp: Path, n: int) -> tuple[float, float]:
    """Verifications/s on one thread, and on two threads at once."""
    st = make_station(tmp / "par", 1883, sensors=1)
    msgs = build_messages(st, n)
    cfg = configmod.load(st.config_path)
    v = verifier(public_from_hex(cfg.sensors["probe-1"].public_key))
    proofs = [traceseal_fw.parse(t, p)[0].proof for t, p in msgs]

    def work() -> None:
        for p in proofs:
            v(p.signature, p.message)
    one = _best(work, 2)
    best2 = float("inf")
    for _ in range(2):
        ths = [threading.Thread(target=work) for _ in range(2)]
        t0 = time.perf_counter()
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        best2 = min(best2, time.perf_counter() - t0)
    return n / one, 2 * n / best2


def _rates(ds: list[dict[str, Any]]) -> str:
    return ", ".join(f"{d['rate']:,.0f}" for d in ds)


def run(quick: bool, *, n: int | None = None, base: str | None = None, log: Any = print) -> list[Result]:
    import ingest

    n = n or (20_000 if quick else 50_000)
    rounds = 2 if quick else 3
    seconds = 3.0 if quick else 10.0
    tmp = workdir("admission", base)
    res: list[Result] = []
    log(f"[admission] per-message costs in-process ({min(n, 10_000):,} messages, best of {rounds}) …")
    check_us, proc_us = micro(tmp / "micro", min(n, 10_000), rounds)
    for mode in MODES:
        res.append(Result(f"{LABEL[mode]}: check alone", f"{check_us[mode]:.1f} µs/msg",
                          f"{check_us['ed25519']:.1f} µs",
                          None if mode == "broker" else check_us["ed25519"] / check_us[mode],
                          note="baseline = (a); broker mode checks nothing per message (the gateway trusts "
                               "the broker's login and ACL)" if mode == "broker" else ""))
    for mode in MODES:
        res.append(Result(f"{LABEL[mode]}: Pipeline.process", f"{proc_us[mode]:.0f} µs/msg",
                          f"{proc_us['ed25519']:.0f} µs", proc_us["ed25519"] / proc_us[mode],
                          note="parse + admit + seal (record signature) + commit, 500-message batches, real journal"
                          if mode == "ed25519" else ""))
    drains: dict[str, list[dict[str, Any]]] = {"reference": [], **{m: [] for m in MODES}}
    for k in range(rounds):
        log(f"[admission] drain {n:,}, round {k + 1}/{rounds}: reference …")
        drains["reference"].append(ingest.drain("reference", n, tmp / f"ref-{k}"))
        for mode in MODES:
            log(f"[admission]   {drains['reference'][-1]['rate']:,.0f}/s; traceseal {mode} …")
            drains[mode].append(ingest.drain("traceseal", n, tmp / f"{mode}-{k}", auth=mode))
            d = drains[mode][-1]
            log(f"[admission]   {mode}: {d['rate']:,.0f}/s, {d['all_cpu_us']:.0f} µs CPU/reading")
    ref = max(drains["reference"], key=lambda d: d["rate"])
    ref_cpu = min(d["cpu_us"] for d in drains["reference"])
    for mode in MODES:
        best = max(drains[mode], key=lambda d: d["rate"])
        cpu = min(d["all_cpu_us"] for d in drains[mode])
        r = best["rate"] / ref["rate"]
        res.append(Result(f"{LABEL[mode]}: drain {n // 1000}k", fmt_rate(best["rate"]), fmt_rate(ref["rate"]), r,
                          "≥ 0.80×", r >= 0.8,
                          note=f"rounds {_rates(drains[mode])}/s; reference {_rates(drains['reference'])}/s; "
                               f"quarantined {best['quarantined']}"))
        res.append(Result(f"{LABEL[mode]}: CPU per reading (all work)", f"{cpu:.0f} µs", f"{ref_cpu:.0f} µs",
                          ref_cpu / cpu, note="ratio = reference / traceseal" if mode == "ed25519" else ""))
    log(f"[admission] CPU at 1,000/s, {rounds} alternating rounds: reference, Ed25519, HMAC …")
    cpu: dict[str, list[float]] = {"reference": [], "ed25519": [], "hmac": []}
    for k in range(rounds):
        cpu["reference"].append(ingest.latency("reference", 1000.0, seconds, tmp / f"l-ref-{k}")["cpu_frac"])
        for mode in ("ed25519", "hmac"):
            cpu[mode].append(ingest.latency("traceseal", 1000.0, seconds, tmp / f"l-{mode}-{k}", auth=mode)["cpu_frac"])
    for mode in ("ed25519", "hmac"):
        res.append(Result(f"{LABEL[mode]}: CPU at 1,000 readings/s", f"{min(cpu[mode]):.0%}",
                          f"{min(cpu['reference']):.0%}", min(cpu["reference"]) / min(cpu[mode]), "< 33 %",
                          min(cpu[mode]) < 0.33,
                          note=f"fraction of one core, lowest of {rounds} rounds "
                               f"({', '.join(f'{c:.0%}' for c in cpu[mode])}; "
                               f"reference {', '.join(f'{c:.0%}' for c in cpu['reference'])})"))
    log("[admission] libsodium verify on 1 vs 2 threads …")
    one, two = parallel_verify(tmp / "par", 4000)
    res.append(Result("Ed25519 verify on 2 threads at once (cffi releases the GIL)", fmt_rate(two),
                      fmt_rate(one) + " (1 thread)", two / one,
                      note="> 1× means verification could run beside the writer thread, given a free core"))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="drain backlog (default 50,000; 20,000 with --quick)")
    args = ap.parse_args()
    print_table(run(args.quick, n=args.n), "\nadmission modes")


if __name__ == "__main__":
    main()
