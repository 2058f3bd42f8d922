"""Scenario 9 (CI size): store and forward through faults. The gateway killed -9 while it
forwards, the central broker restarted, the archive killed -9: every reading the local broker
acknowledged ends up in the archive once, the archive's records equal the journal's byte for
byte, and after each fault the archive's acknowledgement catches up with zero rejections."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_store_and_forward_survives_kills_and_restarts(tmp_path: Path, fault_seed: int) -> None:
    rows = run("upstream", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
    sizes = CI["upstream"]
    assert [r.runs for r in rows] == [sizes["gateway_kills"], sizes["broker_restarts"], sizes["archive_kills"]]
    for r in rows:  # "journaled" is "in the archive" here: every acknowledged reading got there
        assert r.sent and r.acked == r.sent and r.journaled == r.acked, r
        assert r.detected == (r.runs, r.runs), r
    assert any("equal to the journal's byte for byte (seq, body, signature): True" in n for n in rows[-1].notes)
