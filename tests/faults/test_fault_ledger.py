"""Scenario 3 (CI size): the EVM node (anvil) is down while blocks are sealed; afterwards exactly
one anchor transaction covers the backlog and the earliest backlog block's bundle verifies."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_ledger_outage_one_anchor_for_the_backlog(tmp_path: Path) -> None:
    rows = run("ledger", tmp_path, CI)
    assert_rows(rows)
