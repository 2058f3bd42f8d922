"""The full report sizes (≥100 crash cycles, 20k backlog, 1M fuzz inputs, full tamper sweep):
slow, so only with TRACESEAL_FAULTS_FULL=1. `python bench/faults/run.py` prints the same as a table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fault_checks import assert_rows

from bench.faults.suite import NAMES, REPORT, run

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.environ.get("TRACESEAL_FAULTS_FULL") != "1",
                                 reason="report-size fault runs: set TRACESEAL_FAULTS_FULL=1 "
                                        "(or run python bench/faults/run.py)")]


@pytest.mark.parametrize("name", NAMES)
def test_report_size(name: str, tmp_path: Path, fault_seed: int) -> None:
    assert_rows(run(name, tmp_path, REPORT, seed=fault_seed), seed=fault_seed)
