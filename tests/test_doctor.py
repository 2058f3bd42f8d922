"""`traceseal doctor` against real things: two real Mosquittos (Mosquitto's lossy default
queue limit vs the reviewed config), a password-protected broker with the shipped ACL, a
real anvil on the wrong chain, real key files with bad modes, a missing serial device."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from gateway.app import config as configmod
from gateway.app import doctor
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.anvil import Anvil
from gateway.testing.mosquitto import Mosquitto, free_port
from gateway.testing.station import StationDir, make_station

REPO = Path(__file__).resolve().parents[1]


def checks(st: StationDir, **kw: object) -> dict[str, doctor.Check]:
    cfg = configmod.load(st.config_path)
    return {c.name: c for c in doctor.run_checks(cfg, clock=FakeClock(synced=True), **kw)}  # type: ignore[arg-type]


def test_reviewed_broker_config_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Mosquitto(tmp_path / "mq", max_queued_messages=0) as m:  # as systemd/mosquitto-traceseal.conf
        st = make_station(tmp_path / "st", m.port)
        assert doctor.main(["-c", str(st.config_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    by = {c["name"]: c for c in rep["checks"]}
    assert rep["ok"] is True
    assert by["broker"]["status"] == "PASS" and by["broker queue"]["status"] == "PASS"
    assert "1100" in by["broker queue"]["detail"]
    assert by["gateway key"]["status"] == "PASS" and "0600" in by["gateway key"]["detail"]
    assert by["ledger key"]["status"] == "PASS" and by["journal dir"]["status"] == "PASS"
    assert by["ledger"]["status"] == "PASS"
    assert {c["status"] for c in rep["checks"]} <= {"PASS", "WARN"}


def test_default_broker_queue_limit_fails_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Mosquitto(tmp_path / "mq", max_queued_messages=1000) as m:  # Mosquitto's default
        st = make_station(tmp_path / "st", m.port)
        assert doctor.main(["-c", str(st.config_path)]) == 1
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if ln.startswith("FAIL  broker queue"))
    kept = int(line.split()[3])
    assert 900 <= kept < 1100, line
    assert "fix: the broker drops queued QoS 1 messages" in text and "systemd/mosquitto-traceseal.conf" in text
    assert text.rstrip().endswith("RESULT: NOT OK (1 FAIL, 0 WARN)") or "RESULT: NOT OK (1 FAIL" in text


def test_credentials_and_the_shipped_acl(tmp_path: Path) -> None:
    pw = tmp_path / "mq" / "passwd"
    pw.parent.mkdir(parents=True)
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "traceseal-gateway", "s3cret-pass"], check=True)
    os.chmod(pw, 0o600)
    acl = (REPO / "systemd" / "traceseal.acl").read_text()
    (tmp_path / "mq" / "acl").write_text(acl)
    extra = f"password_file {pw}\nacl_file {tmp_path / 'mq' / 'acl'}"
    with Mosquitto(tmp_path / "mq", anonymous=False, extra=extra) as m:
        st = make_station(tmp_path / "st", m.port)
        secret = st.root / "mqtt.password"
        secret.write_text("wrong-password\n")
        secret.chmod(0o600)
        text = st.config_path.read_text().replace("[mqtt]\n", '[mqtt]\nusername = "traceseal-gateway"\n'
                                                             'password_file = "mqtt.password"\n', 1)
        st.config_path.write_text(text)
        c = checks(st)
        assert c["broker"].status == "FAIL" and "refused our credentials" in c["broker"].detail
        assert c["mqtt password"].status == "PASS"
        secret.write_text("s3cret-pass\n")
        c = checks(st)
        assert c["broker"].status == "PASS" and "traceseal-gateway" in c["broker"].detail
        # the shipped ACL grants the gateway its probe topic, so the queue probe runs for real
        # (this broker has the reviewed max_queued_messages 0)
        assert c["broker queue"].status == "PASS", c["broker queue"]
    # without that ACL line the doctor cannot probe: it says so and how to fix it
    (tmp_path / "mq" / "acl").write_text(acl.replace("topic readwrite traceseal/doctor/#\n", ""))
    with Mosquitto(tmp_path / "mq", anonymous=False, extra=extra) as m:
        text = st.config_path.read_text().replace(f"port = {st.config_path.read_text().split('port = ')[1].split()[0]}",
                                                  f"port = {m.port}", 1)
        st.config_path.write_text(text)
        c = checks(st)
        assert c["broker queue"].status == "WARN" and "traceseal/doctor/#" in c["broker queue"].fix


def test_key_readable_by_others_fails(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", free_port())  # nobody listens there
    os.chmod(st.root / "gateway.key", 0o644)
    c = checks(st, queue_probe=False)
    assert c["gateway key"].status == "FAIL" and "0644" in c["gateway key"].detail
    assert c["gateway key"].fix == f"chmod 600 {st.root / 'gateway.key'}"
    assert c["broker"].status == "FAIL" and "not reachable" in c["broker"].detail
    # `run` refuses that key at start (exit 2), so the doctor's exit says the same: bad configuration
    assert doctor.main(["-c", str(st.config_path), "--no-queue-probe"]) == 2


def test_evm_chain_id_checked_against_the_node(tmp_path: Path) -> None:
    from ledger_client.evm import generate_eth_key

    with Anvil(chain_id=31337, workdir=tmp_path / "anvil") as node:
        def station(chain_id: int, name: str) -> StationDir:
            ledger = textwrap.dedent(f"""\
                [ledger]
                kind = "evm"
                [ledger.evm]
                rpc_url = "{node.url}"
                chain_id = {chain_id}
                key_file = "eth.key"
                """)
            st = make_station(tmp_path / name, free_port(), ledger_toml=ledger)
            generate_eth_key(st.root / "eth.key")
            return st

        c = checks(station(1337, "wrong"), queue_probe=False)
        assert c["ledger"].status == "FAIL" and "chain id 31337, config says 1337" in c["ledger"].detail
        assert c["ethereum key"].status == "PASS"
        c = checks(station(31337, "right"), queue_probe=False)
        assert c["ledger"].status == "PASS"
        assert c["ledger funds"].status == "WARN" and c["ledger funds"].fix.startswith("fund 0x")


def test_devices_journal_identity_and_local_ledger_key(tmp_path: Path) -> None:
    extra = '[[serial]]\nname = "scale-1"\npath = "/dev/serial/by-id/no-such-scale"\nadapter = "mtsics"\n'
    st = make_station(tmp_path / "st", free_port(), extra_toml=extra)
    cfg = configmod.load(st.config_path)
    j = Journal(cfg.journal.path)
    j.bind_identity("another-gateway", "ab" * 32)
    j.close()
    c = checks(st, queue_probe=False)
    assert c["serial scale-1"].status == "FAIL" and "no such device" in c["serial scale-1"].detail
    assert c["journal"].status == "FAIL" and "another-gateway" in c["journal"].detail
    # a local ledger created with another key cannot be extended by this one
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger_client.local import LocalLedger

    LocalLedger(cfg.ledger.path, Ed25519PrivateKey.generate(), clock_ms=lambda: 0).close()
    c = checks(st, queue_probe=False)
    assert c["ledger"].status == "FAIL" and "created with key" in c["ledger"].detail


def test_disk_headroom_and_clock() -> None:
    G = 1 << 30
    assert doctor.disk_headroom(50 * G, 100 * G)[0] == "PASS"
    assert doctor.disk_headroom(5 * G, 100 * G)[0] == "WARN"     # under 10 %
    assert doctor.disk_headroom(G // 2, 2 * G)[0] == "WARN"      # under 1 GiB
    assert doctor.check_clock(FakeClock(synced=False)).status == "WARN"
    assert doctor.check_clock(FakeClock(synced=True)).status == "PASS"
    assert "retention will not prune" in doctor.check_clock(FakeClock(synced=False), retention_days=400).detail
    assert "retention" not in doctor.check_clock(FakeClock(synced=False)).detail  # retention off: nothing to say


def test_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "t.toml"
    p.write_text('[gateway]\nid = "x"\n[blocks]\nmax_recods = 1\n')
    assert doctor.main(["-c", str(p)]) == 2
    assert "did you mean 'max_records'" in capsys.readouterr().err
