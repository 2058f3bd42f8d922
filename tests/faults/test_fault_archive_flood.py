"""Scenario 11 (CI size): the archive's HTTPS ingest under a connection flood and slow
clients. While an attacker on other loopback addresses holds silent connections and
drip-feeding TLS clients open, a real station forwarding over HTTPS gets every reading into
the archive (0 lost, no round stalled), and the archive closes every attack connection
(refused at accept, displaced at the cap, or cut at its request deadline)."""

from __future__ import annotations

from pathlib import Path

from fault_checks import assert_rows

from bench.faults.suite import CI, run


def test_archive_https_survives_a_connection_flood_and_slow_clients(tmp_path: Path, fault_seed: int) -> None:
    rows = run("archive_flood", tmp_path, CI, seed=fault_seed)
    assert_rows(rows, seed=fault_seed)
    (r,) = rows
    assert r.runs == CI["archive_flood"]["rounds"]
    assert r.sent and r.acked == r.sent and r.journaled == r.acked and r.lost == 0, r
    assert r.detected is not None and r.detected[1] >= r.runs * CI["archive_flood"]["flood"], r
    assert r.detected[0] == r.detected[1], r
