"""Issue 14, finding 5, against the real server (waitress, and the TLS front with a throwaway
CA made here with ``cryptography``), with real HTTP clients on loopback:

- every credential check (Bearer header and login form alike) goes through one limiter,
  per source address and across all sources, answering 429 with Retry-After; during a
  source's lock-out even the right token is refused (a correct guess must not be told apart);
- a session is a random id mapped to server-side state: revoked at sign-out (a cookie copied
  before it acknowledges nothing after it), with idle and absolute expiry;
- HTTPS is served when ``cert_file``/``key_file`` are set, cookies are then ``Secure``; plain
  HTTP on a non-loopback address, and a key file others can read, are ConfigErrors.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import ipaddress
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.app import config as configmod
from gateway.app.dashboard import GatewaySource
from gateway.core.clock import FakeClock
from gateway.core.errors import ConfigError
from gateway.journal import Journal
from gateway.testing.dashboard import Rig, StaticSource, make_rig, wait_for
from gateway.testing.station import make_station
from gateway.web.auth import load_token, write_token
from gateway.web.server import WebServer
from gateway.web.settings import WebConfig, parse_web

ALARM = {"id": "high/fridge-1/probe-1/1", "alarm": "high", "state": "raised", "severity": "alarm", "unit": "fridge-1",
         "sensor": "probe-1", "since_ms": 1, "raised_ms": 1, "value": 9000, "threshold": 8000, "value_unit": "mC",
         "acknowledged": False}


class Clock:
    """The monotonic clock the server's sessions and limiter read, moved by the test."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def source(tmp_path: Path) -> StaticSource:
    st = make_station(tmp_path / "st", 1, sensors=1)
    cfg = configmod.load(st.config_path)
    j = Journal(cfg.journal.path)
    j.bind_identity(cfg.gateway_id, "00" * 32)
    j.close()
    return StaticSource(cfg, FakeClock(), alarms=[ALARM])


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    p = tmp_path / "web.token"
    write_token(p)
    return p


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(source: StaticSource, token_file: Path, clock: Clock) -> Iterator[WebServer]:
    web = WebServer(source, WebConfig(port=0, token_file=token_file, session_idle_minutes=30, session_hours=2),
                    clock=clock)
    web.start()
    try:
        yield web
    finally:
        web.stop()


def get(url: str, path: str, *, source_ip: str = "127.0.0.1", headers: dict[str, str] | None = None,
        method: str = "GET", body: str | None = None) -> http.client.HTTPResponse:
    """One request from a chosen loopback source address (127.0.0.0/8 is all loopback)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source_ip, 0))
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def login(s: requests.Session, url: str, token: str, name: str = "Ana Ruiz") -> str:
    r = s.post(url + "/login", data={"name": name, "password": token}, allow_redirects=False)
    assert r.status_code == 302, r.text
    page = s.get(url + "/").text
    return page.split('name="csrf" content="')[1].split('"')[0]


# --- rate limiting -----------------------------------------------------------------------


def test_bearer_guessing_is_limited_and_the_right_token_waits_too(server: WebServer, token_file: Path,
                                                                   source: StaticSource) -> None:
    token = load_token(token_file)
    for i in range(5):
        r = get(server.url, "/api/overview", headers={"Authorization": f"Bearer guess-{i:08d}"})
        assert r.status == 401, i
    r = get(server.url, "/api/overview", headers={"Authorization": "Bearer guess-99999999"})
    assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 60
    r = get(server.url, "/api/overview", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 429  # locked out: a correct guess is not told apart from a wrong one
    r = get(server.url, "/api/alarms/ack", method="POST", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 429 and source.acks == []
    # another address is not locked out by this one
    r = get(server.url, "/api/overview", source_ip="127.0.0.2", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200


def test_form_and_bearer_share_one_limiter(server: WebServer, token_file: Path) -> None:
    token = load_token(token_file)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for i in range(3):
        assert get(server.url, "/login", method="POST", headers=form,
                   body=f"name=x&password=guess-{i:08d}").status == 401
    for i in range(2):
        assert get(server.url, "/metrics", headers={"Authorization": f"Bearer guess-{i:08d}"}).status == 401
    r = get(server.url, "/login", method="POST", headers=form, body=f"name=Ana&password={token}")
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1
    r = get(server.url, "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 429


def test_lockout_ends_after_the_window(server: WebServer, token_file: Path, clock: Clock) -> None:
    token = load_token(token_file)
    for i in range(5):
        get(server.url, "/api/overview", headers={"Authorization": f"Bearer guess-{i:08d}"})
    r = get(server.url, "/api/overview", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 429
    clock.t += int(r.headers["Retry-After"])
    assert get(server.url, "/api/overview", headers={"Authorization": f"Bearer {token}"}).status == 200


def test_guessing_from_many_addresses_is_limited_globally(server: WebServer, token_file: Path) -> None:
    token = load_token(token_file)
    seen = []
    for host in range(2, 12):  # 10 addresses x 4 guesses: none of them alone reaches its own limit
        for i in range(4):
            seen.append(get(server.url, "/api/overview", source_ip=f"127.0.0.{host}",
                            headers={"Authorization": f"Bearer guess-{host}-{i:06d}"}).status)
    assert seen.count(401) == 30 and seen[30:] == [429] * 10
    r = get(server.url, "/api/overview", source_ip="127.0.0.99", headers={"Authorization": f"Bearer {token}"})
    assert r.status == 429 and int(r.headers["Retry-After"]) >= 1  # a fresh address gets no verdict either


def test_limiter_memory_is_bounded() -> None:
    from gateway.web.auth import CredentialLimiter

    lim = CredentialLimiter(per_source=5, global_failures=30, window_s=60.0)
    for n in range(100_000):
        addr = str(ipaddress.IPv4Address(0x0A000000 + n))
        if lim.retry_after(addr, now=float(n)) == 0:
            lim.failed(addr, now=float(n))
    assert lim.sources() <= 30
    v6 = [f"2001:db8:0:1::{n:x}" for n in range(6)]  # one /64 is one source
    for a in v6[:5]:
        lim.failed(a, now=200_000.0)
    assert lim.retry_after(v6[5], now=200_000.0) > 0


# --- sessions ----------------------------------------------------------------------------


@pytest.fixture
def rig_server(tmp_path: Path) -> Iterator[tuple[Rig, WebServer, str]]:
    rig = make_rig(tmp_path / "rig", scanners=False)
    tok = tmp_path / "web.token"
    write_token(tok)
    web = WebServer(GatewaySource(rig.gw), WebConfig(port=0, token_file=tok))
    web.start()
    try:
        yield rig, web, load_token(tok)
    finally:
        web.stop()
        rig.close()


def acks_journaled(rig: Rig) -> int:
    return len(rig.alarm_records("acknowledged"))


def test_cookie_copied_before_sign_out_is_refused_after_it(rig_server: tuple[Rig, WebServer, str]) -> None:
    rig, web, token = rig_server
    for mc in (7800, 9200, 10100, 10900, 11300, 11500, 11600):
        rig.reading(mc)
    wait_for(lambda: bool(rig.alarm_records("raised")), what="high alarm raised")
    nurse = requests.Session()
    csrf = login(nurse, web.url, token)
    cookie = nurse.cookies.get("traceseal_session")
    assert cookie
    nurse.post(web.url + "/logout", data={"csrf": csrf}, allow_redirects=False)
    before = acks_journaled(rig)
    thief = requests.Session()
    thief.cookies.set("traceseal_session", cookie)
    assert thief.get(web.url + "/api/overview").status_code == 401
    r = thief.post(web.url + "/api/alarms/ack", headers={"X-CSRF-Token": csrf})
    assert r.status_code in (401, 403)
    r = thief.post(web.url + "/ack", data={"csrf": csrf}, allow_redirects=False)
    assert r.status_code in (302, 401, 403) and not r.headers.get("Location", "/login").endswith("/")
    assert before == 0
    # control: an acknowledgement that is allowed is journaled, after anything queued before it
    r = requests.post(web.url + "/api/alarms/ack", headers={"Authorization": f"Bearer {token}"}, json={"by": "ok"})
    assert r.status_code == 202
    wait_for(lambda: bool(rig.alarm_records("acknowledged")), what="control acknowledgement journaled")
    assert {a["by"] for a in rig.alarm_records("acknowledged")} == {"api:ok"}  # every open alarm, by the control


def test_session_idle_and_absolute_expiry(server: WebServer, token_file: Path, clock: Clock) -> None:
    token = load_token(token_file)
    s = requests.Session()
    login(s, server.url, token)
    assert s.get(server.url + "/api/overview").status_code == 200
    clock.t += 31 * 60  # idle longer than session_idle_minutes
    assert s.get(server.url + "/api/overview").status_code == 401
    login(s, server.url, token)
    for _ in range(4):  # in use every 29 minutes: 116 minutes, within session_hours = 2
        clock.t += 29 * 60
        assert s.get(server.url + "/api/overview").status_code == 200
    clock.t += 29 * 60  # 145 minutes after login: past the absolute limit although never idle
    assert s.get(server.url + "/api/overview").status_code == 401


def test_session_cookie_is_an_opaque_id(server: WebServer, token_file: Path) -> None:
    s = requests.Session()
    r = s.post(server.url + "/login", data={"name": "Ana", "password": load_token(token_file)}, allow_redirects=False)
    set_cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie and "Secure" not in set_cookie
    value = s.cookies["traceseal_session"]
    assert "." not in value and "Ana" not in value and len(value) >= 40  # no signed payload, just an id


# --- HTTPS and where plain HTTP may listen -----------------------------------------------


def make_ca_and_cert(d: Path) -> tuple[Path, Path, Path]:
    """A throwaway local CA and a server certificate for 127.0.0.1 signed by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test station CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = d / "ca.pem", d / "web.crt", d / "web.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return ca_path, cert_path, key_path


def tls_config(token_file: Path, cert: Path, key: Path, base: Path) -> WebConfig:
    cfg = parse_web({"token_file": str(token_file), "cert_file": str(cert), "key_file": str(key)}, base)
    assert cfg is not None
    return dataclasses.replace(cfg, port=0)


def test_https_serves_with_secure_cookies(source: StaticSource, token_file: Path, tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    web = WebServer(source, tls_config(token_file, cert, key, tmp_path))
    web.start()
    try:
        assert web.url.startswith("https://127.0.0.1:")
        s = requests.Session()  # verify= on each call: a session's is overridden by REQUESTS_CA_BUNDLE
        assert s.get(web.url + "/healthz", verify=str(ca)).text == "ok\n"
        r = s.post(web.url + "/login", data={"name": "Ana", "password": load_token(token_file)},
                   allow_redirects=False, verify=str(ca))
        assert r.status_code == 302 and "Secure" in r.headers["Set-Cookie"]
        csrf = s.get(web.url + "/", verify=str(ca)).text.split('name="csrf" content="')[1].split('"')[0]
        r = s.post(web.url + "/api/alarms/ack", headers={"X-CSRF-Token": csrf, "Origin": web.url}, verify=str(ca))
        assert r.status_code == 202 and source.acks == ["web:Ana"]
        with pytest.raises(requests.exceptions.SSLError):  # the certificate is checked, not waved through
            requests.get(web.url + "/healthz", timeout=10)
        with pytest.raises(requests.exceptions.ConnectionError):  # no plain HTTP on the TLS port
            requests.get(web.url.replace("https://", "http://") + "/healthz", timeout=10)
        assert web.ctx is not None and web.ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    finally:
        web.stop()


def test_a_silent_tls_client_does_not_block_others(source: StaticSource, token_file: Path, tmp_path: Path) -> None:
    import socket

    ca, cert, key = make_ca_and_cert(tmp_path)
    web = WebServer(source, tls_config(token_file, cert, key, tmp_path))
    web.start()
    silent = [socket.create_connection(("127.0.0.1", web.port)) for _ in range(3)]  # never send a ClientHello
    try:
        assert requests.get(web.url + "/healthz", verify=str(ca), timeout=10).text == "ok\n"
    finally:
        for s in silent:
            s.close()
        web.stop()


def test_plain_http_only_on_loopback(tmp_path: Path) -> None:
    for bind in ("127.0.0.1", "::1", "localhost", "127.0.0.5"):
        assert parse_web({"public_read": True, "bind": bind}, tmp_path) is not None
    for bind in ("0.0.0.0", "192.168.1.20", "::"):
        with pytest.raises(ConfigError, match=r"web.bind.*cert_file.*key_file"):
            parse_web({"public_read": True, "bind": bind}, tmp_path)


def test_lan_config_with_cert_loads_and_station_config_refuses_without(tmp_path: Path) -> None:
    _, cert, key = make_ca_and_cert(tmp_path)
    cfg = parse_web({"public_read": True, "bind": "0.0.0.0", "cert_file": "web.crt", "key_file": "web.key"}, tmp_path)
    assert cfg is not None and cfg.cert_file == cert and cfg.key_file == key and cfg.tls
    st = make_station(tmp_path / "st", 1, sensors=1, extra_toml='[web]\nbind = "0.0.0.0"\npublic_read = true\n')
    with pytest.raises(ConfigError, match="web.bind"):
        configmod.load(st.config_path)


def test_cert_and_key_files_are_checked_at_start(tmp_path: Path, source: StaticSource) -> None:
    _, cert, key = make_ca_and_cert(tmp_path)
    base = {"public_read": True, "cert_file": str(cert), "key_file": str(key)}

    def start(**over: str) -> None:
        cfg = parse_web({**base, **over}, tmp_path)
        assert cfg is not None
        WebServer(source, dataclasses.replace(cfg, port=0))  # what Gateway.__init__ does: ConfigError = exit 2

    with pytest.raises(ConfigError, match="web.key_file.*cert_file.*key_file"):  # one without the other
        parse_web({"public_read": True, "cert_file": str(cert)}, tmp_path)
    start()
    with pytest.raises(ConfigError, match=r"web.cert_file.*missing.crt.*no such file"):
        start(cert_file=str(tmp_path / "missing.crt"))
    with pytest.raises(ConfigError, match=r"web.key_file.*missing.key.*no such file"):
        start(key_file=str(tmp_path / "missing.key"))
    os.chmod(key, 0o640)
    with pytest.raises(ConfigError, match=r"web.key_file.*0640.*chmod 600"):
        start()
    os.chmod(key, 0o600)
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="web.cert_file.*garbage.crt"):
        start(cert_file=str(garbage))
    with pytest.raises(ConfigError, match="web.cert_file.*web.crt"):  # a key that is not this certificate's
        other = tmp_path / "other"
        other.mkdir()
        start(key_file=str(make_ca_and_cert(other)[2]))
    if os.geteuid() != 0:  # root reads anything
        os.chmod(key, 0o000)
        with pytest.raises(ConfigError, match=r"web.key_file.*cannot read"):
            start()


def test_tls_front_carries_large_bodies_both_ways(source: StaticSource, token_file: Path, tmp_path: Path) -> None:
    """The hand-off to waitress copies bytes faithfully beyond one TLS record and one buffer,
    on kept-alive and concurrent connections (the dashboard's own bodies are small)."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor
    from typing import Any

    def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        out = hashlib.sha256(body).hexdigest().encode() + b"\n" + bytes(range(256)) * 8192  # 2 MiB back
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(out))),
                                  ("X-Remote", environ["REMOTE_ADDR"]), ("X-Scheme", environ["wsgi.url_scheme"])])
        return [out]

    ca, cert, key = make_ca_and_cert(tmp_path)
    web = WebServer(source, tls_config(token_file, cert, key, tmp_path))
    web.app = echo  # type: ignore[assignment]
    web.start()
    try:
        payload = os.urandom(1_000_000)
        s = requests.Session()

        def one(_: int) -> None:
            r = s.post(web.url + "/echo", data=payload, verify=str(ca), timeout=30)
            digest, _, rest = r.content.partition(b"\n")
            assert digest.decode() == hashlib.sha256(payload).hexdigest() and rest == bytes(range(256)) * 8192
            assert r.headers["X-Remote"] == "127.0.0.1" and r.headers["X-Scheme"] == "https"

        for i in range(3):  # one kept-alive connection
            one(i)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(one, range(8)))
        s.close()
    finally:
        web.stop()


def test_a_dripping_tls_handshake_is_cut_off(source: StaticSource, token_file: Path, tmp_path: Path) -> None:
    """The handshake has one deadline for the whole exchange, not one per read: a client
    sending its ClientHello a byte at a time never gets past it (here 0.3 s, against a drip
    that would take 10 s)."""
    import socket
    import time

    ca, cert, key = make_ca_and_cert(tmp_path)
    web = WebServer(source, tls_config(token_file, cert, key, tmp_path))
    web.start()
    web._server.handoff.handshake_s = 0.3
    try:
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(89)
        closed_after = None
        with socket.create_connection(("127.0.0.1", web.port), timeout=5) as c:
            for i, byte in enumerate(hello):
                try:
                    c.sendall(bytes([byte]))
                    time.sleep(0.1)
                    c.setblocking(False)
                    try:
                        if c.recv(1) == b"":
                            closed_after = i
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        c.setblocking(True)
                except (ConnectionResetError, BrokenPipeError):
                    closed_after = i
                    break
        assert closed_after is not None and closed_after < len(hello) - 1
        assert requests.get(web.url + "/healthz", verify=str(ca), timeout=10).text == "ok\n"
    finally:
        web.stop()
