"""Scenario 6 (CI size): spoofed, forged and replayed messages are rejected and counted by the
gateway; the broker's password file and ACL (systemd/traceseal.acl) keep sensors in their lane."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_spoofing_replay_and_broker_acl(tmp_path: Path) -> None:
    rows = run("spoofing", tmp_path, CI)
    assert_rows(rows)
    admission, acl = rows
    assert admission.detected and admission.detected[1] >= 6 * CI["spoofing"]["rounds"]
    assert acl.detected and acl.detected[1] >= 8
