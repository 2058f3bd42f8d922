"""Scenario 3 — ledger outage: the gateway anchors on a real EVM node (anvil); the node is
stopped while readings continue and many blocks are sealed (a simulated day: 1,440
one-minute blocks in the report), then restarted on the same port with its chain.

Afterwards: exactly ONE new anchor transaction from the gateway's Ethereum account covers
the whole backlog (counted on the chain by the sender's nonce, and in the journal's
``anchors``/``outbox`` tables), nothing is lost or journaled twice, and a bundle for the
earliest backlog block verifies against the node (``default_checkers(rpc_url=...)``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gateway.chain.export import export_record
from gateway.journal import Journal
from gateway.testing.anvil import Anvil
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station
from ledger_client.evm import load_eth_key
from ledger_client.verify import default_checkers, verify_bundle

from .common import GatewayProcess, JournalChecker, LoadPublisher, Row, compare, wait_for


def run_ledger_outage(workdir: Path, *, blocks: int = 60, records_per_block: int = 5,
                      rate: float = 200.0, min_outage_s: float = 5.0) -> list[Row]:
    row = Row(f"3 ledger (anvil) down for {blocks:,} blocks", runs=1)
    t0 = time.monotonic()
    with Mosquitto(workdir / "mosquitto") as broker, Anvil(workdir=workdir / "anvil") as node:
        root = workdir / "st"
        root.mkdir(parents=True, exist_ok=True)
        ledger = node.ledger_toml(root, timeout_s=2, connect_timeout_s=1)
        sender = str(load_eth_key(root / "eth.key").address).lower()
        # blocks are cut by count only, so the number sealed during the outage is exact
        st = make_station(root, broker.port, sensors=3, max_records=records_per_block, max_seconds=86_400,
                          ledger_toml=ledger)
        journal = root / "data" / "journal.sqlite"
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(journal)
        pub = LoadPublisher(broker.port, st)
        try:
            gw.start()
            if not gw.wait_subscribed():
                row.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return [row]
            pub.publish_burst(2 * records_per_block)  # two blocks, anchored while the node is up
            if not row.check(wait_for(lambda: not checker.check(integrity=False) and checker.state.blocks == 2
                                      and checker.state.anchored_block == 1, 60, interval=0.2),
                             f"warm-up blocks not anchored: {checker.state}"):
                return [row]
            nonce0 = node.tx_count(sender)
            anchors0, outbox0 = _anchor_rows(journal)

            node.stop()  # graceful: anvil dumps its chain and reloads it on start
            t_down = time.monotonic()
            n = blocks * records_per_block
            pub.publish_paced(n, rate)
            row.check(pub.wait_acked(60), "broker did not PUBACK every reading")
            sealed = 2 + blocks
            row.check(wait_for(lambda: not checker.check(integrity=False) and checker.state.blocks == sealed
                               and checker.state.unsealed == 0, 120, interval=0.25),
                      f"backlog not journaled and sealed while the ledger was down: {checker.state}")
            noticed = wait_for(lambda: "ledger unavailable" in gw.log_text(since_start=True), 30)
            time.sleep(max(0.0, min_outage_s - (time.monotonic() - t_down)))
            retries = gw.log_text(since_start=True).count("ledger unavailable")
            row.check(checker.state.anchored_block == 1, "something was anchored while the node was down")
            outage_s = time.monotonic() - t_down

            node.start()  # same port, same chain
            row.check(node.tx_count(sender) == nonce0, "the node lost the chain across its restart")
            t_up = time.monotonic()
            anchored = wait_for(lambda: not checker.check(integrity=False)
                                and checker.state.anchored_block == sealed - 1, timeout=330, interval=0.25)
            catch_up_s = time.monotonic() - t_up
            row.check(anchored, f"backlog not anchored within 330 s of the node's return: {checker.state}")
            time.sleep(1.0)  # a second anchor, if one were coming, would show now
            rc = gw.stop()
            row.check(rc == 0, f"graceful stop exited {rc}")

            new_txs = node.tx_count(sender) - nonce0
            anchors1, outbox1 = _anchor_rows(journal)
            new_anchors = anchors1 - anchors0
            row.check(new_txs == 1, f"{new_txs} anchor transactions for the backlog, want exactly 1")
            row.check(new_anchors == 1, f"{new_anchors} new anchors in the journal, want 1")
            open_rows = outbox1.get("prepared", 0) + outbox1.get("submitted", 0)
            row.check(open_rows == 0, f"outbox still has open rows: {outbox1}")
            row.check(outbox1.get("confirmed", 0) - outbox0.get("confirmed", 0) == 1,
                      f"outbox confirmed rows {outbox0} -> {outbox1}")
            for f in checker.check():
                row.fail(f)
            compare(row, pub.acked(), pub.sent, checker.state)
            _verify_earliest(row, journal, node, sender, first_backlog_block=2)
            row.detected = (int(noticed and anchored and new_txs == 1), 1)
            row.notes.append(
                f"{sealed - 2:,} blocks of {records_per_block} sealed during a {outage_s:.0f} s node outage "
                f"({retries} failed anchor rounds; a simulated day = 1,440 one-minute blocks); "
                f"after the node returned: {new_txs} anchor "
                f"transaction (sender nonce {nonce0} -> {nonce0 + new_txs}), {new_anchors} new anchor row, outbox "
                f"{outbox1}, anchored {catch_up_s:.1f} s after the node returned (anchor backoff); the bundle for "
                f"the first backlog block verifies against the node (chain id, sender, input); detected = "
                f"outage logged ('ledger unavailable') and one anchor after it")
        finally:
            pub.close()
            gw.stop()
    row.seconds = time.monotonic() - t0
    return [row]


def _anchor_rows(journal: Path) -> tuple[int, dict[str, int]]:
    j = Journal(journal, readonly=True)
    try:
        (n,) = j.db.execute("SELECT COUNT(*) FROM anchors").fetchone()
        states = dict(j.db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
        return int(n), states
    finally:
        j.close()


def _verify_earliest(row: Row, journal: Path, node: Anvil, sender: str, first_backlog_block: int) -> None:
    j = Journal(journal, readonly=True)
    try:
        b = j.block(first_backlog_block)
        if b is None:
            row.fail(f"no block {first_backlog_block}")
            return
        bundle = json.loads(json.dumps(export_record(j, b.first_seq)))
        checkers = default_checkers(rpc_url=node.url, chain_id=node.chain_id, sender=sender)
        rep = verify_bundle(bundle, gateway_key=j.meta("public_key"), checkers=checkers)
        if not rep.ok:
            bad = rep.first_failure
            row.fail(f"bundle of the earliest backlog block does not verify: step {bad.step if bad else '?'}: "
                     f"{(bad.failures if bad else [])[:2]}")
        elif rep.summary["anchored_blocks"] != [j.last_block().block]:  # type: ignore[union-attr]
            row.fail(f"the earliest backlog block is covered by {rep.summary['anchored_blocks']}, "
                     f"not by the one anchor of the newest block")
    finally:
        j.close()
