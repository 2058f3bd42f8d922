"""Scenario 8 (CI size): retention pruning killed -9 at random moments leaves a consistent
journal, its prune log matching exactly what is gone, and never an unanchored record pruned."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_retention_survives_kill_9_mid_prune(tmp_path: Path, fault_seed: int) -> None:
    rows = run("retention", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
