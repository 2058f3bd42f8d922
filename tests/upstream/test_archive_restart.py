"""The archive killed (-9) and stopped (SIGTERM) mid-stream, as a real process: with its
persistent session the broker keeps what arrives meanwhile; nothing is lost, nothing is
stored twice, and the acks reach the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import archive_kit as kit
import pytest

from gateway.archive import config as archive_config
from gateway.archive.store import open_store
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.waiting import wait_for


def _run(toml: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "gateway.cli", "archive", "run", "-c", str(toml)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), start_new_session=True)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_archive_restarted_mid_stream_loses_and_duplicates_nothing(backend: str, broker: Mosquitto, tmp_path: Path,
                                                                   tmp_path_factory: pytest.TempPathFactory) -> None:
    a0, _ = kit.stations(broker.port, tmp_path_factory)
    a = a0.copy(tmp_path / "a")
    prefix = kit.new_prefix()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line(backend, tmp_path), [a])
    cfg = archive_config.load(toml)
    up = kit.Upstream(broker.port, prefix, a)
    acks = kit.AckWatcher(broker.port, prefix)
    log = tmp_path / "archive.log"
    n = up.last_seq() + 1
    third = n // 3

    def stored() -> int:
        if backend == "sqlite" and not cfg.store.sqlite.exists():
            return 0
        s = open_store(cfg.store, readonly=True)
        try:
            return int(s.status(a.gateway_id)["records"])
        finally:
            s.close()

    proc = _run(toml, log)
    try:  # its first ack says it has subscribed: from then on the broker keeps its session
        wait_for(lambda: a.gateway_id in acks.acks, what="the archive subscribed")
        up.hello()
        up.records(0, third - 1, batch=1)
        wait_for(lambda: stored() == third, what="first third stored")
        os.kill(proc.pid, signal.SIGKILL)                    # kill -9 ...
        proc.wait(10)
        up.records(third, 2 * third - 1, batch=1)           # ... while it is down: the broker keeps these
        proc = _run(toml, log)
        wait_for(lambda: stored() == 2 * third, what="second third stored after the restart")
        up.records(2 * third, n - 1, batch=1)
        os.kill(proc.pid, signal.SIGTERM)                   # a graceful stop while messages arrive
        assert proc.wait(20) == 0
        proc = _run(toml, log)
        up.records(0, 4, batch=5)                           # and some re-sent duplicates
        up.blocks()
        up.anchors()
        wait_for(lambda: acks.acks.get(a.gateway_id, {}).get("blocks") == up.last_block(), what="final ack", timeout=30)
        assert acks.acks[a.gateway_id]["records"] == n - 1
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(20)
        want = [(r.seq, bytes(r.body), bytes(r.sig)) for r in up.j.records_range(0, 10**9)]
        last_block = up.last_block()
        up.close()
        acks.close()
    s = open_store(cfg.store, readonly=True)
    try:
        got = s.records_between(a.gateway_id, 0, 10**9)
        assert got == want                                   # every record, once, byte for byte
        st = s.status(a.gateway_id)
        assert st["rejections"] == {} and st["counters"]["duplicate_records"] >= 5
        assert st["blocks_verified"] == last_block + 1
    finally:
        s.close()
    assert "Traceback" not in log.read_text()
