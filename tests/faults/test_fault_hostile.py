"""Scenario 5 (CI size): fuzz every adapter and the whole pipeline; zero crashes, every
rejection has a reason, oversize bounded, quarantine bounded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fault_checks import assert_rows

from bench.faults.suite import CI, run
from gateway.adapters import traceseal_fw
from gateway.core.errors import ParseError


def test_hostile_input_never_crashes(tmp_path: Path, fault_seed: int) -> None:
    rows = run("hostile", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
    assert sum(r.sent or 0 for r in rows[:2]) >= CI["hostile"]["fast"]


# (was a strict xfail: the defect is fixed)
@pytest.mark.parametrize("kind", [["temperature"], {"k": 1}])
def test_firmware_parser_rejects_unhashable_kind_with_a_reason(kind: object) -> None:
    msg = {"v": 1, "sensor": "probe-1", "ctr": 1, "t": 1, "readings": [{"kind": kind, "value": 1, "unit": "mC"}],
           "sig": "00" * 64}
    with pytest.raises(ParseError) as exc:
        traceseal_fw.parse("site/sensors/probe-1/reading", json.dumps(msg).encode())
    assert exc.value.code == "bad-field"
