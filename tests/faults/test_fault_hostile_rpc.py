"""Fault row "hostile RPC node" (CI size): the EVM node the gateway anchors to drips its
replies, sends a huge one, then lies with absurd numbers; the gateway keeps journaling and
sealing (0 lost, 0 stalled), never crashes, and anchors once the node is honest again."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_hostile_rpc_node_never_stops_the_station(tmp_path: Path) -> None:
    rows = run("hostile_rpc", tmp_path, CI)
    assert_rows(rows)
