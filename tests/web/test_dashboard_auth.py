"""Who may read and who may acknowledge: token from a 0600 file, sessions with a CSRF token,
Bearer for scripts and Prometheus, public_read, and the [web] settings' validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.core.errors import ConfigError
from gateway.journal import Journal
from gateway.testing.dashboard import StaticSource
from gateway.testing.station import make_station
from gateway.web.app import create_app
from gateway.web.auth import load_token, write_token
from gateway.web.settings import WebConfig, parse_web

ALARM = {"id": "high/fridge-1/probe-1/1", "alarm": "high", "state": "raised", "severity": "alarm", "unit": "fridge-1",
         "sensor": "probe-1", "since_ms": 1, "raised_ms": 1, "value": 9000, "threshold": 8000, "value_unit": "mC",
         "acknowledged": False}


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


def client(source: StaticSource, **kw: object) -> FlaskClient:
    return create_app(source, WebConfig(**kw)).test_client()  # type: ignore[arg-type]


def login(c: FlaskClient, token: str, name: str = "Ana Ruiz") -> str:
    r = c.post("/login", data={"name": name, "password": token})
    assert r.status_code == 302, r.get_data(as_text=True)
    page = c.get("/").get_data(as_text=True)
    return page.split('name="csrf" content="')[1].split('"')[0]


def test_everything_private_by_default(source: StaticSource, token_file: Path) -> None:
    c = client(source, token_file=token_file)
    r = c.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    for path in ("/api/overview", "/api/alarms", "/api/stock", "/api/health", "/api/units/fridge-1/series"):
        assert c.get(path).status_code == 401, path
    m = c.get("/metrics")
    assert m.status_code == 401 and m.headers["WWW-Authenticate"].startswith("Bearer")
    assert c.get("/healthz").status_code == 200
    assert c.get("/login").status_code == 200
    assert c.post("/api/alarms/ack").status_code == 401
    assert source.acks == []


def test_bearer_token_reads_and_acknowledges(source: StaticSource, token_file: Path) -> None:
    c = client(source, token_file=token_file)
    token = load_token(token_file)
    good = {"Authorization": f"Bearer {token}"}
    assert c.get("/api/overview", headers=good).status_code == 200
    assert c.get("/metrics", headers=good).status_code == 200
    assert c.get("/api/overview", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert c.get("/api/overview", headers={"Authorization": f"Basic {token}"}).status_code == 401
    assert c.post("/api/alarms/ack", headers={"Authorization": "Bearer wrong-token-123"}).status_code == 401
    r = c.post("/api/alarms/ack", headers=good, json={"by": "night shift\x00<b>"})
    assert r.status_code == 202 and r.get_json() == {"requested": True, "by": "api:night shift<b>", "unacknowledged": 1}
    assert source.acks == ["api:night shift<b>"]


def test_session_needs_csrf_and_same_origin(source: StaticSource, token_file: Path) -> None:
    c = client(source, token_file=token_file)
    token = load_token(token_file)
    assert c.post("/login", data={"name": "Ana", "password": "wrong"}).status_code == 401
    assert c.post("/login", data={"name": "", "password": token}).status_code == 400
    csrf = login(c, token)
    cookie = c.get_cookie("traceseal_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert c.post("/api/alarms/ack").status_code == 403                                  # no CSRF token
    assert c.post("/api/alarms/ack", headers={"X-CSRF-Token": csrf + "x"}).status_code == 403
    evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    assert c.post("/api/alarms/ack", headers=evil).status_code == 403                    # cross-site
    assert source.acks == []
    r = c.post("/api/alarms/ack", headers={"X-CSRF-Token": csrf, "Origin": "http://localhost"})
    assert r.status_code == 202 and source.acks == ["web:Ana Ruiz"]
    r = c.post("/ack", data={"csrf": csrf})                                               # no-JavaScript form
    assert r.status_code == 302 and source.acks == ["web:Ana Ruiz"] * 2
    assert c.post("/ack", data={}).status_code == 403
    c.post("/logout", data={"csrf": csrf})
    assert c.get("/api/overview").status_code == 401


def test_login_is_rate_limited(source: StaticSource, token_file: Path) -> None:
    c = client(source, token_file=token_file)
    for _ in range(5):
        assert c.post("/login", data={"name": "x", "password": "guess-guess-guess"}).status_code == 401
    r = c.post("/login", data={"name": "x", "password": load_token(token_file)})
    assert r.status_code == 429  # even the right password waits the minute out


def test_public_read_still_needs_token_to_acknowledge(source: StaticSource, token_file: Path) -> None:
    c = client(source, token_file=token_file, public_read=True)
    assert c.get("/").status_code == 200
    d = c.get("/api/overview").get_json()
    assert d["alarms"][0]["title"] == "Too warm" and d["level"] == "fail"
    assert c.get("/metrics").status_code == 200
    assert c.post("/api/alarms/ack").status_code == 401
    page = c.get("/").get_data(as_text=True)
    assert "Sign in to acknowledge" in page and 'content=""' in page  # no CSRF token without a session
    headers = c.get("/").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Frame-Options"] == "DENY"
    assert source.acks == []


def test_public_without_token_is_read_only(source: StaticSource) -> None:
    c = client(source, public_read=True)
    assert c.get("/api/overview").status_code == 200
    assert c.post("/login", data={"name": "x", "password": ""}).status_code == 401
    assert c.post("/api/alarms/ack", headers={"Authorization": "Bearer "}).status_code == 401


def test_token_file_must_be_private_and_long(tmp_path: Path, source: StaticSource) -> None:
    p = tmp_path / "t"
    p.write_text("a-long-enough-token\n")
    os.chmod(p, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        create_app(source, WebConfig(token_file=p))
    os.chmod(p, 0o600)
    assert load_token(p) == "a-long-enough-token"
    p.write_text("short\n")
    with pytest.raises(ConfigError, match="at least 12"):
        load_token(p)
    with pytest.raises(ConfigError, match="no such file"):
        load_token(tmp_path / "missing")
    with pytest.raises(FileExistsError):
        write_token(p)  # never overwrites


def test_parse_web_settings(tmp_path: Path) -> None:
    assert parse_web(None, tmp_path) is None
    cfg = parse_web({"token_file": "web.token"}, tmp_path)
    assert cfg is not None and cfg.bind == "127.0.0.1" and cfg.port == 8080 and not cfg.public_read
    assert cfg.token_file == tmp_path / "web.token"
    with pytest.raises(ConfigError, match="web.token_file"):
        parse_web({}, tmp_path)
    assert parse_web({"public_read": True, "bind": "127.0.0.1", "port": 9000}, tmp_path) is not None
    with pytest.raises(ConfigError, match="web.bind.*cert_file"):  # plain HTTP off loopback (test_dashboard_security)
        parse_web({"public_read": True, "bind": "0.0.0.0", "port": 9000}, tmp_path)
    with pytest.raises(ConfigError, match="web.bind"):
        parse_web({"public_read": True, "bind": "my-pi.local"}, tmp_path)
    with pytest.raises(ConfigError, match="did you mean 'public_read'"):
        parse_web({"public_reads": True}, tmp_path)
    with pytest.raises(ConfigError, match="web.port"):
        parse_web({"public_read": True, "port": 70000}, tmp_path)


def test_server_binds_loopback_by_default_and_stops(source: StaticSource, token_file: Path) -> None:
    import socket
    import urllib.request

    from gateway.web.server import WebServer

    web = WebServer(source, WebConfig(port=0, token_file=token_file))
    assert web.cfg.bind == "127.0.0.1"
    web.start()
    try:
        assert web.url.startswith("http://127.0.0.1:")
        assert urllib.request.urlopen(web.url + "/healthz", timeout=5).read() == b"ok\n"
        with urllib.request.urlopen(web.url + "/static/dashboard.js", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("text/javascript")
    finally:
        web.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", web.port)) != 0  # closed
