"""Scenario 10 (CI size): signed poison messages (counter 2^53-1) among load with kill -9;
the journal keeps growing, nothing acknowledged is lost or doubled, seqs stay dense, blocks
seal and anchor, and every poison message is quarantined as counter-jump."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_poison_messages_never_stop_ingest(tmp_path: Path, fault_seed: int) -> None:
    rows = run("poison", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
    r = rows[0]
    assert r.lost == 0 and r.duplicated == 0 and r.acked and r.journaled == r.acked
    injected = CI["poison"]["cycles"] * CI["poison"]["poison_per_cycle"]
    assert r.detected == (injected, injected)
