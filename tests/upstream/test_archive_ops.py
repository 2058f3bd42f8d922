"""Operating the archive: Prometheus metrics that agree with `traceseal archive status`, and
the systemd notify protocol (READY, WATCHDOG fed by the consumer loop, STOPPING) spoken by
the real `traceseal archive run` process over a real NOTIFY_SOCKET."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import archive_kit as kit
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.archive import config as archive_config
from gateway.cli import main
from gateway.core.errors import ConfigError
from gateway.testing.mosquitto import Mosquitto, free_port
from gateway.testing.waiting import wait_for


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_metrics_agree_with_status(backend: str, broker: Mosquitto, tmp_path: Path,
                                   tmp_path_factory: pytest.TempPathFactory,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    a0, _ = kit.stations(broker.port, tmp_path_factory)
    a = a0.copy(tmp_path / "a")
    prefix, port = kit.new_prefix(), free_port()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line(backend, tmp_path), [a])
    toml.write_text(toml.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
    arch = kit.start_archive(toml)
    up = kit.Upstream(broker.port, prefix, a)
    acks = kit.AckWatcher(broker.port, prefix)
    gw = (("gateway", a.gateway_id),)
    try:
        m = _scrape(port)
        assert math.isnan(m[("traceseal_archive_last_message_age_seconds", gw)])  # nothing received yet
        assert m[("traceseal_archive_highest_contiguous_seq", gw)] == -1
        anchored = max(i["block"] for i in up.anchor_items())
        up.everything()
        bad = up.record_items(3, 3)[0]
        up.send("records", up.records_msg([{**bad, "sig": "00" * 64}]))
        up.send("records", b"not json")
        wait_for(lambda: acks.acks.get(up.gw, {}).get("anchors") == anchored, what="final ack")
        wait_for(lambda: _scrape(port).get(("traceseal_archive_rejections_total", gw + (("reason", "malformed"),)))
                 == 1, what="the bad messages processed")
        m = _scrape(port)
        capsys.readouterr()
        assert main(["archive", "status", "-c", str(toml), "--json"]) == 0
        s = json.loads(capsys.readouterr().out)["gateways"][a.gateway_id]
        assert m[("traceseal_archive_records_total", gw)] == s["records"] == up.last_seq() + 1
        assert m[("traceseal_archive_highest_contiguous_seq", gw)] == s["highest_contiguous_seq"] == up.last_seq()
        assert m[("traceseal_archive_highest_verified_block", gw)] == s["highest_verified_block"] == up.last_block()
        assert m[("traceseal_archive_blocks", gw + (("state", "verified"),))] == s["blocks_verified"]
        assert m[("traceseal_archive_blocks", gw + (("state", "pending"),))] == 0
        assert m[("traceseal_archive_anchored_block", gw)] == anchored
        assert m[("traceseal_archive_rejections_total", gw + (("reason", "bad_signature"),))] == 1
        assert m[("traceseal_archive_rejections_total", gw + (("reason", "malformed"),))] == 1
        assert 0 <= m[("traceseal_archive_last_message_age_seconds", gw)] < 60
        assert m[("traceseal_archive_store_ok", ())] == 1 and m[("traceseal_archive_store_readable", ())] == 1
        assert m[("traceseal_archive_broker_connected", ())] == 1
        assert m[("traceseal_archive_key_rotations", gw)] == 0
    finally:
        arch.stop()
        up.close()
        acks.close()
    with pytest.raises(OSError):  # stopped with the archive (URLError: connection refused)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_metrics_listen_is_validated(tmp_path: Path) -> None:
    p = tmp_path / "archive.toml"
    p.write_text('[metrics]\nlisten = "[::1]:9465"\n')
    assert archive_config.load(p).metrics_listen == ("::1", 9465)
    for bad in ('listen = "9465"', 'listen = "host:0"', 'listen = "host:http"', 'lisen = "h:1"'):
        p.write_text(f"[metrics]\n{bad}\n")
        with pytest.raises(ConfigError, match="metrics"):
            archive_config.load(p)
    p.write_text("")
    assert archive_config.load(p).metrics_listen is None


def test_systemd_notify_ready_watchdog_stopping(broker: Mosquitto, tmp_path: Path) -> None:
    prefix = kit.new_prefix()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line("sqlite", tmp_path), [])
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    got: list[str] = []

    def until(word: str) -> None:
        while not any(word in g for g in got):
            got.append(sock.recv(4096).decode())

    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "archive", "run", "-c", str(toml)],
                            env={**os.environ, "NOTIFY_SOCKET": str(sock_path)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        until("READY=1")
        while sum("WATCHDOG=1" in g for g in got) < 2:  # fed at once, and again 5 s later
            got.append(sock.recv(4096).decode())
        os.kill(proc.pid, signal.SIGTERM)
        until("STOPPING=1")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        sock.close()
    assert [g for g in got if g.startswith(("READY", "STOPPING"))] == ["READY=1", "STOPPING=1"]
