"""Block sealing and Merkle proofs at 100k-record blocks, against raw hashlib in the same run.

    python bench/blocks_proofs.py [--quick] [--records 100000]

The floor for any RFC 9162 work is SHA-256 itself: n leaf hashes and n − 1 node hashes.
Each figure is set against a tight ``hashlib.sha256(...).digest()`` loop doing exactly
those hashes on the same data, so a ratio of 1.0× means "as fast as hashlib allows" and
the remainder is overhead (lists, Python calls, SQLite reads, JSON).

- merkle.root and merkle.inclusion_proofs on 100k leaf hashes;
- BlockSealer sealing one 100k-record block from a real journal (read the records,
  hash the leaves, root, canonical header, sign, insert with fsync);
- export of ONE record from that block (gateway.chain.export.export_record), which computes
  proofs for the block.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from typing import Any

from _common import Result, anchor_all, fill_journal, print_table, workdir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_record
from gateway.core.clock import SystemClock
from gateway.journal import Journal
from ledger_client import merkle
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def run(quick: bool, *, records: int = 100_000, base: str | None = None, log: Any = print) -> list[Result]:
    repeat = 3 if quick else 5
    tmp = workdir("blocks", base)
    key = Ed25519PrivateKey.generate()
    gw = "bench-gw"
    j = Journal(tmp / "journal.sqlite")
    j.bind_identity(gw, public_hex(key))
    log(f"[blocks] filling a journal with {records:,} signed records …")
    fill_journal(j, key, gw, records, seal=False)
    bodies = [bytes(r.body) for r in j.records_range(0, records - 1)]
    sha = hashlib.sha256

    # raw hashlib floors on the same data, timed in alternation with the merkle functions so
    # that load from other processes hits both alike (best of ``repeat`` rounds each)
    leaves = [sha(b"\x00" + b).digest() for b in bodies]
    pairs = [leaves[i] + leaves[i + 1] for i in range(0, len(leaves) - 1, 2)]
    pairs = (pairs * 2)[: len(leaves) - 1]  # exactly n − 1 node-sized inputs (65 bytes with the prefix)
    best: dict[str, float] = {}
    fns = {
        "raw_leaf": lambda: [sha(b"\x00" + b).digest() for b in bodies],
        "leaf": lambda: [merkle.hash_leaf(b) for b in bodies],
        "raw_node": lambda: [sha(b"\x01" + p).digest() for p in pairs],
        "root": lambda: merkle.root(leaves),
        "proofs": lambda: merkle.inclusion_proofs(leaves),
    }
    for _ in range(repeat):
        for name, fn in fns.items():
            t, _out = _best(fn, 1)
            best[name] = min(best.get(name, float("inf")), t)
            del _out
    t_raw_leaf, t_leaf, t_raw_node, t_root, t_proofs = (
        best[k] for k in ("raw_leaf", "leaf", "raw_node", "root", "proofs"))
    raw_node_rate = (records - 1) / t_raw_node
    raw_leaf_rate = records / t_raw_leaf
    rt = merkle.root(leaves)
    proofs = merkle.inclusion_proofs(leaves)
    assert merkle.root_from_inclusion_proof(records // 3, records, leaves[records // 3], proofs[records // 3]) == rt
    del proofs

    log("[blocks] sealing one block …")
    sealer = BlockSealer(j, key, gw, SystemClock(), records, 10**9)
    t = time.perf_counter()
    sealed = sealer.maybe_seal()
    t_seal = time.perf_counter() - t
    assert len(sealed) == 1 and sealed[0].header_obj["size"] == records
    t_read, _ = _best(lambda: j.records_range(0, records - 1), repeat)

    ledger = LocalLedger(tmp / "ledger.sqlite", Ed25519PrivateKey.generate(), clock_ms=SystemClock().now_ms)
    anchor_all(j, ledger, gw)
    t_exp1, b1 = _best(lambda: export_record(j, records // 2), 1 if quick else 3)
    assert len(b1["records"]) == 1
    ledger.close()
    j.close()

    floor_all = records / raw_leaf_rate + (records - 1) / raw_node_rate
    res = [
        Result("raw hashlib SHA-256, 65-byte node input", f"{raw_node_rate / 1e6:.2f} M/s", note=
               f"leaf input ({sum(map(len, bodies)) // records + 1} bytes): {raw_leaf_rate / 1e6:.2f} M/s; "
               "these are the baselines below"),
        Result(f"merkle.hash_leaf × {records // 1000}k", f"{records / t_leaf / 1e6:.2f} M/s",
               f"{raw_leaf_rate / 1e6:.2f} M/s",
               t_raw_leaf / t_leaf),
        Result(f"merkle.root, {records // 1000}k leaves",
               f"{t_root * 1e3:.0f} ms ({(records - 1) / t_root / 1e6:.2f} M node/s)",
               f"{t_raw_node * 1e3:.0f} ms", t_raw_node / t_root),
        Result(f"merkle.inclusion_proofs, {records // 1000}k leaves",
               f"{t_proofs * 1e3:.0f} ms ({records / t_proofs / 1e3:.0f}k proofs/s)",
               f"{t_raw_node * 1e3:.0f} ms", t_raw_node / t_proofs,
               note="baseline = the n − 1 node hashes alone; the rest is building n lists of log2(n) entries"),
        Result(f"BlockSealer: seal one {records // 1000}k-record block",
               f"{t_seal * 1e3:.0f} ms ({records / t_seal / 1e3:.0f}k rec/s)",
               f"{floor_all * 1e3:.0f} ms", floor_all / t_seal,
               note=f"baseline = raw leaf + node hashing of the block; reading the {records // 1000}k rows alone "
                    f"(Journal.records_range) takes {t_read * 1e3:.0f} ms"),
        Result(f"export_record: 1 record from a {records // 1000}k block", f"{t_exp1 * 1e3:.0f} ms",
               f"{t_raw_node * 1e3:.0f} ms", t_raw_node / t_exp1,
               note="one proof needs only O(n) hashes (baseline) but build_bundle computes all n proofs of the block"),
    ]
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=int, default=100_000)
    args = ap.parse_args()
    print_table(run(args.quick, records=args.records), "\nblocks and proofs")


if __name__ == "__main__":
    main()
