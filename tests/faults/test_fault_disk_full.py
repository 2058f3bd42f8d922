"""Scenario 4 (CI size): the journal's tmpfs fills up; the gateway stops acknowledging, stays up,
and resumes when space returns, every reading exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_checks import assert_rows

from bench.faults.disk_full import Skip, how_to_mount
from bench.faults.suite import CI, run


def test_full_disk_stops_acks_then_resumes(tmp_path: Path) -> None:
    try:
        how_to_mount()
    except Skip as exc:
        pytest.skip(str(exc))
    rows = run("disk", tmp_path, CI)
    assert_rows(rows)


# (was a strict xfail: the defect is fixed)
def test_local_ledger_on_a_full_disk_raises_ledger_error(tmp_path: Path) -> None:
    import os
    import subprocess

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench.faults.disk_full import fill
    from ledger_client.errors import LedgerError
    from ledger_client.local import LocalLedger

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    d = tmp_path / "small"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], check=True)
    try:
        led = LocalLedger(d / "ledger.sqlite", Ed25519PrivateKey.generate(), clock_ms=lambda: 1)
        led.submit(led.prepare(b"\x01" * 32, gateway="g", block=0, now_ms=1))
        fill(d / "filler")
        with pytest.raises(LedgerError, match="disk is full"):
            led.submit(led.prepare(b"\x02" * 32, gateway="g", block=1, now_ms=1))
        led.close()
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)
