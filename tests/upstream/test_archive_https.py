"""The archive's HTTPS ingest (gateway/archive/http.py, docs/upstream.md §HTTPS) with the real
pieces: a gateway's HttpsForwarder posts to `traceseal archive run` (a process) over TLS; what
the archive stores is the journal, byte for byte; credentials bind a gateway to its own path;
an altered record posted with valid credentials is rejected like one over MQTT."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from test_e2e_upstream import Cli, Site

from gateway.archive import config as archive_config
from gateway.archive.http import check_password
from gateway.archive.store import open_store
from gateway.core.errors import ConfigError
from gateway.testing.mosquitto import Mosquitto, free_port
from gateway.testing.pki import make_pki
from gateway.testing.waiting import wait_for
from ledger_client.canonical import canonical


def test_gateway_forwards_over_https_to_the_archive(tmp_path: Path, broker: Mosquitto,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(capsys)
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    pw = tmp_path / "archive" / "http.passwd"
    pw.parent.mkdir()
    for i, (user, secret) in enumerate((("station-a", "pw-a"), ("station-b", "pw-b"))):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, secret], check=True,
                       capture_output=True)
    pw.chmod(0o600)
    a = Site(tmp_path / "a", broker.port, None, "station-a", max_records=10, max_seconds=1,
             upstream=textwrap.dedent(f"""
                 [upstream]
                 enabled = true
                 transport = "https"
                 url = "https://127.0.0.1:{port}/upstream"
                 username = "station-a"
                 password_file = "upstream.pw"
                 batch_max = 25
                 reconnect_max_s = 1
                 [upstream.tls]
                 ca_file = "{pki['ca']}"
                 """))
    assert a.cfg.upstream.transport == "https"
    toml = tmp_path / "archive" / "archive.toml"
    toml.write_text(textwrap.dedent(f"""\
        prefix = "up-{uuid.uuid4().hex[:8]}"
        [broker]
        port = {broker.port}
        client_id = "archive-{uuid.uuid4().hex[:6]}"
        [store]
        sqlite = "archive.sqlite"
        [http]
        listen = "127.0.0.1"
        port = {port}
        cert_file = "{pki['server']}"
        key_file = "{pki['server_key']}"
        password_file = "http.passwd"
        [[gateways]]
        id = "station-a"
        public_key = "{a.public_key}"
        """))
    cfg = archive_config.load(toml)
    assert cfg.http is not None and cfg.http.path == "/upstream"
    log = tmp_path / "archive" / "archive.log"
    with open(log, "ab") as errf:  # the child has its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "archive", "run", "-c", str(toml)],
                                stdout=subprocess.DEVNULL, stderr=errf, start_new_session=True)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    ctx = ssl.create_default_context(cafile=str(pki["ca"]))

    def request(method: str, path: str, user: str, password: str, body: bytes | None = None) -> tuple[int, bytes]:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        try:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            c.request(method, path, body=body, headers={"Authorization": f"Basic {token}",
                                                         "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    idle: list[socket.socket] = []
    try:
        wait_for(listening, what="the archive's HTTPS port")
        idle.append(socket.create_connection(("127.0.0.1", port)))  # connects, never says a word
        idle.append(socket.create_connection(("127.0.0.1", port)))  # and one speaking plain HTTP:
        idle[-1].sendall(b"GET /upstream/station-a/ack HTTP/1.1\r\n\r\n")
        a.start()                                                    # neither holds up the gateway
        a.burst(60)
        wait_for(lambda: a.count("kind", "temperature") == 60 and cli.all_archived(a), timeout=30,
                 what="everything archived over HTTPS")
        up = cli.status(a)["upstream"]
        assert up["error"] == "" and up["streams"]["records"]["backlog"] == 0
        archived = up["streams"]["records"]["archived"]
        a.stop()
        # the answer to GET …/ack is what the gateway took as archived
        code, body = request("GET", "/upstream/station-a/ack", "station-a", "pw-a")
        assert code == 200 and json.loads(body)["records"] == archived
        # credentials bind a gateway to its own path; a wrong password is refused
        victim = next(r for r in a.j.records_range(0, 10**9) if r.type == "reading")
        rec = json.loads(victim.body)
        rec["value"] += 1000
        forged = json.dumps({"v": 1, "gateway": "station-a", "stream": "records",
                             "items": [{"seq": victim.seq, "body": canonical(rec).decode(),
                                        "sig": bytes(victim.sig).hex()}]}).encode()
        assert request("POST", "/upstream/station-a/records", "station-b", "pw-b", forged)[0] == 401
        assert request("POST", "/upstream/station-a/records", "station-a", "wrong", forged)[0] == 401
        assert request("POST", "/upstream/station-a/nope", "station-a", "pw-a", forged)[0] == 404
        # with A's own credentials the altered record is taken (200) and rejected by verification
        code, body = request("POST", "/upstream/station-a/records", "station-a", "pw-a", forged)
        assert code == 200 and json.loads(body)["records"] == archived
    finally:
        a.close()
        for c in idle:
            c.close()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(20) == 0
    assert "Traceback" not in log.read_text()
    s = open_store(cfg.store, readonly=True)
    try:
        assert s.records_between("station-a", 0, archived) == a.journal_records()[: archived + 1]
        st = s.status("station-a")
        assert st["rejections"] == {"bad_signature": 1}
        assert s.records_between("station-a", victim.seq, victim.seq)[0][1] == bytes(victim.body)
    finally:
        s.close()


def test_http_config_and_passwords(tmp_path: Path) -> None:
    pw = tmp_path / "p"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "gw", "s3cret"], check=True, capture_output=True)
    stored = pw.read_text().strip().split(":", 1)[1]
    assert check_password(stored, "s3cret") and not check_password(stored, "s3cret!")
    assert not check_password("$7$1$!!$??", "x")
    base = {"broker": {}, "store": {}}
    with pytest.raises(ConfigError, match="http.cert_file: is required"):
        archive_config.parse({**base, "http": {"key_file": "k", "password_file": "p"}}, tmp_path)
    with pytest.raises(ConfigError, match="http.prot: unknown key; did you mean 'port'"):
        archive_config.parse({**base, "http": {"cert_file": "c", "key_file": "k", "password_file": "p", "prot": 1}},
                             tmp_path)
    assert archive_config.parse(base, tmp_path).http is None
    pw.chmod(0o644)
    from gateway.archive.http import load_passwords

    with pytest.raises(ConfigError, match="http.password_file: .*mode 0644"):
        load_passwords(pw)
    pw.chmod(0o600)
    assert set(load_passwords(pw)) == {"gw"}
