"""EVM anchor round trip against a local anvil: latency p50/p99, anchors/s, gas per anchor.

    python bench/anchor_bench.py [--n 200] [--inflight 1 8 32] [--block-time S]

A round trip is prepare (sign offline) → submit (eth_sendRawTransaction) → lookup until
``confirmed`` (receipt, confirmations, block, tx by block hash + index). ``inflight`` > 1
keeps that many anchors outstanding (the gateway's Anchorer uses 1: one anchor covers the
whole backlog, so throughput above ~1/s is headroom, not a requirement). With the default
automine every transaction gets its own block at once; ``--block-time`` shows what a real
chain's block interval does (latency ≈ the interval). Figures are of this machine and this
node only; compare them within one run.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.testing.anvil import Anvil
from ledger_client.evm import EvmLedger


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def run(node: Anvil, n: int, inflight: int, key_index: int) -> dict[str, Any]:
    led = EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[key_index],
                    stuck_after_s=3600).start()
    lat: list[float] = []
    sign: list[float] = []
    gas: list[int] = []
    waiting: deque[tuple[float, dict[str, Any]]] = deque()
    done = 0
    i = 0
    t0 = time.perf_counter()
    while done < n:
        while i < n and len(waiting) < inflight:
            start = time.perf_counter()
            sub = led.prepare(hashlib.sha256(f"{key_index}/{i}".encode()).digest(), gateway="bench", block=i,
                              now_ms=0)
            sign.append(time.perf_counter() - start)
            waiting.append((start, led.submit(sub)))
            i += 1
        start, sub = waiting[0]
        st = led.lookup(sub, now_ms=0)
        if st.state == "confirmed":
            lat.append(time.perf_counter() - start)
            gas.append(st.extra["gas_used"])
            waiting.popleft()
            done += 1
        elif st.state == "pending":
            time.sleep(0.001)
        else:
            raise SystemExit(f"anchor {sub['tx']} {st.state}: {st.reason}")
    wall = time.perf_counter() - t0
    led.close()
    return {"inflight": inflight, "n": n, "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
            "mean_ms": statistics.fmean(lat) * 1e3, "sign_ms": statistics.fmean(sign) * 1e3,
            "per_s": n / wall, "gas": statistics.fmean(gas), "gas_limit": led.gas_limit,
            "txs": node.tx_count(led.address)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="anchors per row")
    ap.add_argument("--inflight", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--block-time", type=float, default=None, help="anvil --block-time (default: automine)")
    args = ap.parse_args()
    with Anvil(block_time=args.block_time) as node:
        rows = [run(node, args.n, k, 1 + j % 9) for j, k in enumerate(args.inflight)]
    mode = "automine" if args.block_time is None else f"block time {args.block_time:g} s"
    print(f"EVM anchor round trip on anvil ({mode}), {args.n} anchors per row")
    print(f"{'in flight':>9} | {'p50 ms':>8} | {'p99 ms':>8} | {'mean ms':>8} | {'sign ms':>7} | {'anchors/s':>9} | "
          f"{'gas/anchor':>10} | {'gas limit':>9} | {'txs':>5}")
    print("-" * 100)
    for r in rows:
        print(f"{r['inflight']:>9} | {r['p50_ms']:>8.2f} | {r['p99_ms']:>8.2f} | {r['mean_ms']:>8.2f} | "
              f"{r['sign_ms']:>7.2f} | {r['per_s']:>9.1f} | {r['gas']:>10.0f} | {r['gas_limit']:>9} | {r['txs']:>5}")


if __name__ == "__main__":
    main()
