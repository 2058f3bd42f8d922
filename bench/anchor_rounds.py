"""Ledger transactions per anchoring round: N blocks sealed while the ledger is down, then back.

    python bench/anchor_rounds.py [--quick] [--blocks 1 100 1000]

The real pieces: a ``Journal``, the ``BlockSealer`` (via ``fill_journal``: genuine signed
records, 10 per block), the gateway's ``Anchorer`` and the embedded ``LocalLedger``. The outage
is real too: another connection holds the ledger file's write lock (``BEGIN IMMEDIATE``), so
the ledger's append fails with "database is locked" exactly as a busy or unwritable ledger
would (``LedgerUnavailable``). The ledger connection's busy timeout is lowered to 100 ms so a
failed round takes 0.1 s instead of sqlite3's default 5 s.

Per N: one block anchored first (warm-up); the lock is taken; one block is sealed and an
anchor round fails (its outbox row stays ``prepared``); N − 1 more blocks are sealed and a
second round fails; the lock is released and the Anchorer runs until confirmed. Counted:
new ledger entries (each is one ledger transaction: one ``BEGIN IMMEDIATE … COMMIT``), new
rows in the journal's ``anchors`` table, and outbox rows by state. Baseline: one transaction
per block (anchoring each block on its own).

Then the same with ``EvmLedger`` on a real anvil (when installed): down = the node stopped
(gracefully, so it reloads its chain on start), transactions counted by the sender's nonce
(``eth_getTransactionCount``). Fault scenario 3 in bench/faults does this through a whole
gateway process with 60 blocks.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from _common import Result, fill_journal, print_table, workdir
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.anchoring import Anchorer
from gateway.core.clock import SystemClock
from gateway.journal import Journal
from ledger_client.errors import LedgerUnavailable
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger

PER_BLOCK = 10


class _LocalOutage:
    """The embedded ledger; down = another connection holds its write lock."""

    kind = "local"

    def __init__(self, tmp: Path, clock: SystemClock) -> None:
        self.path = tmp / "ledger.sqlite"
        self.ledger = LocalLedger(self.path, Ed25519PrivateKey.generate(), clock_ms=clock.now_ms)
        self.ledger._db.execute("PRAGMA busy_timeout=100")  # bench only: a failed round in 0.1 s, not 5 s
        self.lock: sqlite3.Connection | None = None

    def transactions(self) -> int:
        return int(self.ledger._db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def down(self) -> None:
        self.lock = sqlite3.connect(self.path, isolation_level=None)
        self.lock.execute("BEGIN IMMEDIATE")

    def up(self) -> None:
        assert self.lock is not None
        self.lock.execute("ROLLBACK")
        self.lock.close()

    def close(self) -> None:
        self.ledger.close()


class _EvmOutage:
    """anvil; down = the node stopped (gracefully: it reloads its chain on start)."""

    kind = "evm (anvil)"

    def __init__(self, node: Any, key_index: int) -> None:
        from ledger_client.evm import EvmLedger

        self.node = node
        self.sender = node.accounts[key_index]
        self.ledger = EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[key_index],
                                confirmations=1, stuck_after_s=3600, timeout_s=2, connect_timeout_s=1).start()

    def transactions(self) -> int:
        return int(self.node.tx_count(self.sender))

    def down(self) -> None:
        self.node.stop()

    def up(self) -> None:
        self.node.start()

    def close(self) -> None:
        pass


def one(n_blocks: int, tmp: Path, target: Any = None) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    gw, key = "bench-rounds", Ed25519PrivateKey.generate()
    clock = SystemClock()
    j = Journal(tmp / "journal.sqlite")
    j.bind_identity(gw, public_hex(key))
    t = target or _LocalOutage(tmp, clock)
    a = Anchorer(j, t.ledger, clock, gw, poll_s=0.05)

    def anchors() -> int:
        return int(j.db.execute("SELECT COUNT(*) FROM anchors").fetchone()[0])

    def step_until_confirmed() -> int:
        deadline = time.monotonic() + 60
        k = 0
        while time.monotonic() < deadline:
            k += 1
            try:
                if a.step() == "confirmed":
                    return k
            except LedgerUnavailable:
                time.sleep(0.1)  # e.g. anvil still loading its chain
            time.sleep(0.02)
        raise TimeoutError("anchor not confirmed")

    fill_journal(j, key, gw, PER_BLOCK, max_records=PER_BLOCK)
    step_until_confirmed()  # warm-up: block 0 anchored while the ledger is up
    e0, a0 = t.transactions(), anchors()

    t.down()
    failed = 0
    fill_journal(j, key, gw, PER_BLOCK, max_records=PER_BLOCK)
    for _ in range(2 if n_blocks > 1 else 1):
        try:
            a.step()
        except LedgerUnavailable:
            failed += 1
        if n_blocks > 1 and failed == 1:
            fill_journal(j, key, gw, (n_blocks - 1) * PER_BLOCK, max_records=PER_BLOCK)
    sealed = j.last_block().block
    t.up()
    t0 = time.perf_counter()
    rounds = step_until_confirmed()
    catch_up_ms = (time.perf_counter() - t0) * 1e3
    for _ in range(3):  # a further round, if one were due, would add a transaction now
        a.step()
    time.sleep(0.2)
    outbox = dict(j.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    out = {"ledger": t.kind, "blocks": n_blocks, "sealed_during_outage": sealed, "failed_rounds": failed,
           "new_tx": t.transactions() - e0, "new_anchors": anchors() - a0, "outbox": outbox,
           "covered": j.covered_block(), "last_block": sealed, "steps": rounds, "catch_up_ms": catch_up_ms,
           "readings": n_blocks * PER_BLOCK}
    t.close()
    j.close()
    return out


def _row(m: dict[str, Any]) -> Result:
    n = m["blocks"]
    ok = m["new_tx"] == 1 and m["new_anchors"] == 1 and m["covered"] == m["last_block"]
    what = "block" if n == 1 else "blocks"
    return Result(f"{m['ledger']} ledger transactions: {n:,} {what} ({m['readings']:,} readings) sealed in an outage",
                  f"{m['new_tx']} tx", f"{n:,} tx", n / max(1, m["new_tx"]), "1 per round", ok,
                  note=f"{m['failed_rounds']} failed round(s) during the outage; after it: {m['new_anchors']} new "
                       f"anchor row covering block {m['covered']} of {m['last_block']}, outbox {m['outbox']} "
                       f"(incl. the warm-up anchor), confirmed {m['catch_up_ms']:.0f} ms after the ledger came back; "
                       "baseline = one anchor per block", raw=m)


def run(quick: bool, *, blocks: list[int] | None = None, base: str | None = None, log: Any = print) -> list[Result]:
    blocks = blocks or [1, 100, 1000]
    tmp = workdir("rounds", base)
    res = []
    for n in blocks:
        log(f"[rounds] {n:,} blocks sealed while the local ledger is down …")
        res.append(_row(one(n, tmp / f"local-{n}")))
    try:
        from gateway.testing.anvil import Anvil, find_anvil

        find_anvil()
    except Exception as exc:  # noqa: BLE001 - no anvil here: the local rows stand alone
        log(f"[rounds] anvil not available ({exc}); EVM rows skipped")
        return res
    with Anvil(workdir=tmp / "anvil") as node:
        for k, n in enumerate(blocks):
            log(f"[rounds] {n:,} blocks sealed while anvil is stopped …")
            res.append(_row(one(n, tmp / f"evm-{n}", _EvmOutage(node, 1 + k))))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--blocks", type=int, nargs="*", default=None)
    args = ap.parse_args()
    print_table(run(args.quick, blocks=args.blocks), "\nanchor rounds")


if __name__ == "__main__":
    main()
