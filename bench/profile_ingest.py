"""Where the gateway's ingest time goes: cProfile of a real drain, per-stage costs, import RSS.

    python bench/profile_ingest.py [--n 20000] [--top 25]

1. cProfile (stdlib; py-spy is not installed) in the gateway's writer, MQTT and anchor
   threads while the real gateway drains an N-message backlog (bench/gwproc.py --profile).
   cProfile inflates many-small-call code; read the ranking, not the absolute times.
2. Per-stage cost, measured in-process without a profiler on the same genuine firmware
   messages: parse, admission (Ed25519 verify), the redelivery check, seal (RFC 8785 +
   sign), the group commit, and the whole ``Pipeline.process`` per message; plus paho's
   receive path from the reference drain of the same run (bench/ingest.py).
3. Import RSS: what each import group adds to the gateway process.
4. Proposed replacements measured on the same messages: canonical JSON via the C json
   encoder, Ed25519 via libsodium (if the system has libsodium.so.23).
5. Config-only experiments (no code change): batch_wait_ms, batch_max, receive_maximum,
   each draining the same backlog, and latency at 1,000/s (incl. with no block sealing).
"""

from __future__ import annotations

import argparse
import hashlib
import pstats
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import REPO, print_table, workdir  # noqa: F401
from ingest import drain, latency

VARIANTS = [
    ("as configured (receive_maximum 100, batch_max 500, batch_wait_ms 5)", None),
    ("batch_wait_ms = 0", {"journal": "batch_wait_ms = 0"}),
    ("batch_max = 100 (= receive_maximum: a full batch stops waiting)", {"journal": "batch_max = 100"}),
    ("receive_maximum = 500 (= batch_max)", {"mqtt": "receive_maximum = 500"}),
    ("receive_maximum = 500, batch_wait_ms = 0", {"mqtt": "receive_maximum = 500", "journal": "batch_wait_ms = 0"}),
    ("as configured (again: run-to-run noise)", None),
]


def experiments(n: int, seconds: float, tmp: Path) -> None:
    """Config-only variants (no code change): drain rate and latency at 1,000/s."""
    print(f"\n== config experiments: drain of {n:,} (reference in the same run) ==")
    ref = drain("reference", n, tmp / "exp-ref")
    print(f"{ref['rate']:8,.0f}/s  {ref['cpu_us']:5.0f} µs/msg  reference pipeline")
    for i, (label, tw) in enumerate(VARIANTS):
        d = drain("traceseal", n, tmp / f"exp-{i}", tweaks=tw)
        print(f"{d['rate']:8,.0f}/s  {d['all_cpu_us']:5.0f} µs/msg  {d['rate'] / ref['rate']:.2f}×  {label}")
    print(f"\n== config experiments: publish→durable at 1,000/s for {seconds:g} s ==")
    lat_variants = VARIANTS[:3] + [
        ("blocks.max_records = 100000 (no block sealed or anchored in the window)", {"blocks": "max_records = 100000"}),
        ("ledger.min_interval_s = 3600 (blocks sealed, anchor thread idle)", {"ledger": "min_interval_s = 3600"}),
        ("as configured (again: run-to-run noise)", None),
    ]
    for i, (label, tw) in enumerate(lat_variants):
        lt = latency("traceseal", 1000.0, seconds, tmp / f"explat-{i}", tweaks=tw)
        print(f"p50 {lt['p50_ms']:5.1f} ms  p99 {lt['p99_ms']:6.1f} ms  CPU {lt['cpu_frac']:4.0%}  "
              f"(publish→batch start p50 {lt['pre_p50_ms']:.1f} ms)  {label}")


def cprofile_drain(n: int, top: int, tmp: Path) -> dict[str, Any]:
    prefix = str(tmp / "prof")
    d = drain("traceseal", n, tmp / "drain", profile=prefix)
    out: dict[str, Any] = {"drain": d}
    for name in ("writer", "mqtt", "anchor"):
        p = Path(f"{prefix}.{name}.pstats")
        if not p.exists():
            continue
        st = pstats.Stats(str(p))
        rows = []
        for (file, line, fn), (_cc, nc, tt, ct, _) in st.stats.items():  # type: ignore[attr-defined]
            short = file.replace(str(REPO) + "/", "").split("site-packages/")[-1]
            rows.append((tt, ct, nc, f"{short}:{line}({fn})"))
        total = sum(r[0] for r in rows)
        rows.sort(reverse=True)
        out[name] = {"total_s": total, "top": rows[:top],
                     "cum": sorted(rows, key=lambda r: -r[1])[:top]}
    return out


def stage_costs(n: int, tmp: Path) -> dict[str, float]:
    """µs per message for each stage, no profiler, same kind of messages as the drain."""
    import json

    from _common import build_messages

    from gateway.adapters import traceseal_fw
    from gateway.app import config as configmod
    from gateway.core.clock import SystemClock
    from gateway.ingest.pipeline import Pipeline
    from gateway.ingest.seal import Sealer, reading_body
    from gateway.journal import Journal
    from gateway.testing.station import make_station
    from gateway.transports.inbound import Inbound
    from ledger_client.canonical import canonical
    from ledger_client.keys import load_private_key, public_hex

    st = make_station(tmp / "stage-station", 1, sensors=10)
    cfg = configmod.load(st.config_path)
    key = load_private_key(cfg.key_file)
    msgs = build_messages(st, n)
    us: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t = time.perf_counter()
        out = fn()
        us[name] = (time.perf_counter() - t) / n * 1e6
        return out

    timed("json.loads (raw payload)", lambda: [json.loads(p) for _, p in msgs])
    obs = timed("parse: traceseal_fw.parse (json + RFC 8785 of the sensor body)",
                lambda: [traceseal_fw.parse(t, p)[0] for t, p in msgs])
    bodies = [{k: v for k, v in json.loads(p).items() if k != "sig"} for _, p in msgs]
    timed("  of which RFC 8785 canonical(sensor body)", lambda: [canonical(b) for b in bodies])
    j = Journal(tmp / "stage.sqlite")
    j.bind_identity(cfg.gateway_id, public_hex(key))
    pipe = Pipeline(cfg.ingest, j, Sealer(cfg.gateway_id, key, 0), SystemClock())
    adm = pipe.admission
    timed("admit: check_message (sensor Ed25519 verify + topic)",
          lambda: [adm.check_message(o, t) for o, (t, _) in zip(obs, msgs)])
    digests = timed("sha256(payload)", lambda: [hashlib.sha256(p).digest() for _, p in msgs])
    timed("redelivery check: journal.has_digest (SQL per message)", lambda: [j.has_digest(d) for d in digests])
    rbodies = timed("reading_body", lambda: [reading_body(o, transport="mqtt", topic=t, authenticated=True, digest=d)
                                             for o, (t, _), d in zip(obs, msgs, digests)])
    sealer = Sealer(cfg.gateway_id, key, 0)
    rows = timed("seal: Sealer.seal (RFC 8785 record + gateway Ed25519 sign)",
                 lambda: [sealer.seal(b, time_ms=1, synced=False, digest=d) for b, d in zip(rbodies, digests)])
    recs = [json.loads(r.body) for r in rows]
    timed("  of which RFC 8785 canonical(record)", lambda: [canonical(r) for r in recs])
    timed("  of which Ed25519 sign", lambda: [key.sign(r.body) for r in rows])
    j2 = Journal(tmp / "stage-commit.sqlite")
    timed("commit_batch, 100 records per FULL commit",
          lambda: [j2.commit_batch(rows[i:i + 100], (), {}, {"records": 100}) for i in range(0, n, 100)])
    j3 = Journal(tmp / "stage-pipe.sqlite")
    j3.bind_identity(cfg.gateway_id, public_hex(key))
    pipe3 = Pipeline(cfg.ingest, j3, Sealer(cfg.gateway_id, key, 0), SystemClock())
    inb = [Inbound("mqtt", t, p) for t, p in msgs]
    timed("Pipeline.process, batches of 100 (all of the above)",
          lambda: [pipe3.process(inb[i:i + 100]) for i in range(0, n, 100)])
    return us


def alternatives(n: int, tmp: Path) -> None:
    """What the proposed replacements would cost on the same data (measured, not guessed)."""
    import ctypes
    import json

    from _common import build_messages
    from cryptography.hazmat.primitives import serialization

    from gateway.adapters import traceseal_fw
    from gateway.app import config as configmod
    from gateway.ingest.seal import Sealer, reading_body
    from gateway.testing.station import make_station
    from ledger_client.canonical import _check, canonical
    from ledger_client.keys import load_private_key

    st = make_station(tmp / "alt-station", 1, sensors=10)
    cfg = configmod.load(st.config_path)
    key = load_private_key(cfg.key_file)
    msgs = build_messages(st, n)
    sealer = Sealer(cfg.gateway_id, key, 0)
    recs = []
    for t, p in msgs:
        o = traceseal_fw.parse(t, p)[0]
        body = reading_body(o, transport="mqtt", topic=t, authenticated=True, digest=hashlib.sha256(p).digest())
        recs.append(json.loads(sealer.seal(body, time_ms=1, synced=True).body))
    bodies = [{k: v for k, v in json.loads(p).items() if k != "sig"} for _, p in msgs]

    def fast(obj: object) -> bytes:  # RFC 8785 for str keys, safe ints, bools, null, strings (no floats)
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()

    def per(fn: object, items: list) -> float:
        t = time.perf_counter()
        for x in items:
            fn(x)  # type: ignore[operator]
        return (time.perf_counter() - t) / len(items) * 1e6

    print("\n== proposed replacements, µs per call on the same messages ==")
    for name, items in (("record", recs), ("sensor body", bodies)):
        same = all(fast(x) == canonical(x) for x in items)
        print(f"{per(canonical, items):7.1f} → {per(fast, items):5.1f}  "
              f"canonical({name}): rfc8785 → json.dumps(sort_keys, "
              f"ensure_ascii=False) (byte-identical on all {len(items):,}: {same}); the float/range walk "
              f"canonical._check alone: {per(lambda x: _check(x, '$'), items):.1f}")
    try:
        lib = ctypes.CDLL("libsodium.so.23")
        assert lib.sodium_init() >= 0
    except (OSError, AssertionError):
        print("   (libsodium.so.23 not on this machine: no Ed25519 comparison)")
        return
    pubkey = key.public_key()
    pub = pubkey.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    sk = ctypes.create_string_buffer(seed + pub, 64)
    data = [b"traceseal/record/v1\n" + canonical(r) for r in recs]
    sigs = [key.sign(d) for d in data]
    vfy = lib.crypto_sign_ed25519_verify_detached
    vfy.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    sgn = lib.crypto_sign_ed25519_detached
    sgn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
    out = ctypes.create_string_buffer(64)
    assert all(vfy(s, d, len(d), pub) == 0 for s, d in zip(sigs[:100], data[:100]))
    sgn(out, None, data[0], len(data[0]), sk)
    assert out.raw == sigs[0], "libsodium and OpenSSL signatures differ"
    pairs = list(zip(sigs, data))
    print(f"{per(lambda sd: pubkey.verify(*sd), pairs):7.1f} → "
          f"{per(lambda sd: vfy(sd[0], sd[1], len(sd[1]), pub), pairs):5.1f}  Ed25519 verify: cryptography (OpenSSL) → "
          "libsodium (system libsodium.so.23 via ctypes; PyNaCl bundles it)")
    print(f"{per(key.sign, data):7.1f} → {per(lambda d: sgn(out, None, d, len(d), sk), data):5.1f}  Ed25519 sign: "
          "cryptography → libsodium (signatures byte-identical: Ed25519 is deterministic)")


def import_rss() -> list[tuple[str, float]]:
    code = r"""
import os
def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6
out = [("python", rss())]
import paho.mqtt.client; out.append(("+ paho-mqtt", rss()))
import sqlite3, json, cryptography.hazmat.primitives.asymmetric.ed25519; out.append(("+ cryptography, sqlite3", rss()))
import gateway.app.service; out.append(("+ gateway.app.service (core)", rss()))
import gateway.adapters.registry; out.append(("+ gateway.adapters.registry (biip, epcpy, ...)", rss()))
import gateway.transports.mqtt; out.append(("+ transports.mqtt", rss()))
print(repr(out))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(REPO), check=False,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    return eval(p.stdout)  # our own child's repr of a list of tuples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--no-experiments", action="store_true")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds per latency experiment")
    args = ap.parse_args()
    tmp = workdir("profile")
    prof = cprofile_drain(args.n, args.top, tmp)
    d = prof["drain"]
    print(f"\ncProfile'd drain of {args.n:,}: {d['rate']:,.0f}/s under the profiler, "
          f"{d['all_cpu_us']:.0f} µs CPU/reading")
    for name in ("writer", "mqtt", "anchor"):
        if name not in prof:
            continue
        p = prof[name]
        print(f"\n== thread {name}: {p['total_s']:.2f} s profiled (tottime) ==")
        print(f"{'tottime s':>9} {'%':>5} {'cumtime s':>9} {'calls':>9}  function")
        for tt, ct, nc, fn in p["top"]:
            print(f"{tt:9.3f} {tt / p['total_s']:5.1%} {ct:9.3f} {nc:9d}  {fn}")
        if name == "writer":
            print("\n-- writer by cumulative time --")
            for tt, ct, nc, fn in p["cum"]:
                print(f"{tt:9.3f} {ct / p['total_s']:5.1%} {ct:9.3f} {nc:9d}  {fn}")
    print("\n== per-stage cost (µs per message, no profiler) ==")
    for k, v in stage_costs(min(args.n, 10_000), tmp).items():
        print(f"{v:8.1f}  {k}")
    alternatives(min(args.n, 10_000), tmp)
    print("\n== RSS by import ==")
    prev = 0.0
    for name, mb in import_rss():
        print(f"{mb:6.1f} MB  (+{mb - prev:5.1f})  {name}")
        prev = mb
    if not args.no_experiments:
        experiments(args.n, args.seconds, tmp)


if __name__ == "__main__":
    main()
