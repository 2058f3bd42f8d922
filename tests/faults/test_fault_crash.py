"""Scenario 1 (CI size): kill -9 the gateway at random moments under load; nothing acknowledged
is lost or doubled, and the journal verifies after every crash."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_kill9_under_load_loses_nothing(tmp_path: Path, fault_seed: int) -> None:
    rows = run("crash", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
    assert rows[0].runs == CI["crash"]["cycles"] and rows[0].acked and rows[0].journaled == rows[0].acked
