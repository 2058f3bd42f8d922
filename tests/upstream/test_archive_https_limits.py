"""The archive's HTTPS ingest under attack (issue 14, finding 3), against the real server
(``HttpIngest`` over TLS on loopback, a real store): credentials before the body, a
connection cap enforced at accept, a total deadline per request whatever the client drips,
bounded headers, and failed-auth rate limiting per source address and per user name, with
tracking tables that stay bounded whatever names an attacker rotates through.

Attackers connect from other loopback addresses (127.0.0.2, …) than the legitimate gateway
(127.0.0.1), as a station and an attacker on the internet would."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.archive import config as archive_config
from gateway.archive.consumer import Archive
from gateway.archive.http import HttpIngest
from gateway.archive.store import open_store
from gateway.core.errors import ConfigError
from gateway.testing.hypo import examples
from gateway.testing.mosquitto import free_port
from gateway.testing.pki import make_pki

USERS = {"station-a": "pw-a", "station-b": "pw-b"}
ATTACKER = "127.0.0.2"


class Server:
    """An archive with HTTPS ingest on loopback (no MQTT: GET …/ack and refusals need no writer)."""

    def __init__(self, root: Path, **http: Any) -> None:
        pki = make_pki(root / "pki")
        pw = root / "http.passwd"
        for i, (user, secret) in enumerate(USERS.items()):
            subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, secret],
                           check=True, capture_output=True)
        pw.chmod(0o600)
        self.port = free_port()
        raw = {"prefix": f"up-{uuid.uuid4().hex[:8]}", "broker": {}, "store": {"sqlite": "archive.sqlite"},
               "gateways": [{"id": g, "public_key": f"{i + 1:02x}" * 32} for i, g in enumerate(USERS)],
               "http": {"listen": "127.0.0.1", "port": self.port, "cert_file": str(pki["server"]),
                        "key_file": str(pki["server_key"]), "password_file": str(pw), **http}}
        self.cfg = archive_config.parse(raw, root)
        self.archive = Archive(self.cfg, open_store(self.cfg.store))
        self.ingest = HttpIngest(self.archive, self.cfg.http)
        self.ingest.start()
        self.ctx = ssl.create_default_context(cafile=str(pki["ca"]))

    def close(self) -> None:
        self.ingest.stop()
        self.archive.store.close()

    def tcp(self, source: str = ATTACKER) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10, source_address=(source, 0))

    def tls(self, source: str = ATTACKER) -> ssl.SSLSocket:
        return self.ctx.wrap_socket(self.tcp(source), server_hostname="127.0.0.1")

    def request(self, method: str, path: str, user: str, password: str, body: bytes | None = None, *,
                source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10,
                                        source_address=(source, 0))
        try:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            c.request(method, path, body=body, headers={"Authorization": f"Basic {token}"})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def ack(self, user: str = "station-a", source: str = "127.0.0.1") -> int:
        return self.request("GET", f"/upstream/{user}/ack", user, USERS[user], source=source)[0]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(**http_keys)``: a running server with those ``[http]`` keys, closed after the test."""
    made: list[Server] = []

    def make(**http: Any) -> Server:
        made.append(Server(tmp_path / f"s{len(made)}", **http))
        return made[-1]

    try:
        yield make
    finally:
        for s in made:
            s.close()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _status_line(sock: socket.socket) -> bytes:
    """The first line the server answers (b"" if it closed without one)."""
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\r\n", 1)[0]


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes (EOF or reset) within ``seconds``; data it sends is skipped."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def test_credentials_are_checked_before_the_body(serve: Any) -> None:
    server = serve()
    """A wrong password announcing a 200 KB body is answered 401 while the body is still
    unsent: the server does not wait for (read, buffer) what an unauthenticated client sends."""
    for auth, expect in ((_basic("station-a", "wrong"), False), (_basic("nobody", "x"), False), (None, False),
                         (_basic("station-a", "wrong"), True)):  # no "100 Continue" inviting the body either
        s = server.tls()
        try:
            head = (b"POST /upstream/station-a/records HTTP/1.1\r\nHost: archive\r\nContent-Length: 200000\r\n"
                    + (b"Expect: 100-continue\r\n" if expect else b"")
                    + (f"Authorization: {auth}\r\n".encode() if auth else b"") + b"\r\n")
            s.sendall(head)  # and not one byte of the body
            s.settimeout(5)
            assert _status_line(s) == b"HTTP/1.1 401 Unauthorized"
            assert _closed_within(s, 5)  # and the connection is closed: the body is never read
        finally:
            s.close()
    assert server.ack() == 200


def test_a_connection_flood_is_refused_at_accept_and_a_gateway_still_gets_through(serve: Any) -> None:
    """40 silent connections against a cap of 4: the 36 over it are closed at once, no thread
    is started for them, and a station is still served: at the cap a new connection displaces
    the oldest one that never authenticated, never an authenticated one."""
    server = serve(max_connections=4, max_connections_per_ip=4, request_timeout_s=30)
    before = threading.active_count()
    flood = [server.tcp() for _ in range(40)]
    gw: http.client.HTTPSConnection | None = None
    more: list[socket.socket] = []
    try:
        assert sum(_closed_within(s, 0.5) for s in flood[4:]) == 36  # refused at accept
        assert not any(_closed_within(s, 0.2) for s in flood[:4])  # the 4 admitted are held
        assert threading.active_count() <= before + 4 + 2  # workers bounded by the cap (+ accept, reaper)
        gw = http.client.HTTPSConnection("127.0.0.1", server.port, context=server.ctx, timeout=10)
        gw.request("GET", "/upstream/station-a/ack", headers={"Authorization": _basic("station-a", "pw-a")})
        r = gw.getresponse()
        assert r.status == 200 and r.read()
        assert _closed_within(flood[0], 5)  # the oldest silent one made room
        more = [server.tcp("127.0.0.3") for _ in range(20)]  # a second flood while the station is connected
        assert sum(_closed_within(s, 0.5) for s in more) >= 17
        gw.request("GET", "/upstream/station-a/ack", headers={"Authorization": _basic("station-a", "pw-a")})
        r = gw.getresponse()
        assert r.status == 200 and r.read()  # its authenticated keep-alive connection was kept
        assert threading.active_count() <= before + 4 + 2
    finally:
        if gw is not None:
            gw.close()
        for s in flood + more:
            s.close()


def test_one_address_cannot_take_every_connection(serve: Any) -> None:
    server = serve(max_connections_per_ip=3)
    flood = [server.tcp() for _ in range(10)]
    try:
        assert sum(_closed_within(s, 0.5) for s in flood) == 7
        assert server.ack() == 200  # another address is not affected
    finally:
        for s in flood:
            s.close()


def test_a_drip_feeding_client_is_cut_at_the_total_deadline(serve: Any) -> None:
    server = serve(request_timeout_s=1.5)
    """One header byte every 0.25 s never trips a per-receive timeout; the request's total
    deadline (1.5 s here) cuts it long before the 40 bytes (10 s) are through. The same for a
    TLS handshake that never starts."""
    s = server.tls()
    stuck = server.tcp()  # connects, never says a word (no TLS handshake)
    try:
        s.sendall(b"GET /upstream/station-a/ack HTTP/1.1\r\n")
        cut = False
        for b in b"X-Slow: " + b"a" * 32:
            try:
                s.sendall(bytes([b]))
            except (ConnectionError, ssl.SSLError):
                cut = True
                break
            if _closed_within(s, 0.25):
                cut = True
                break
        assert cut, "the drip-feeding client was served for 10 s"
        assert _closed_within(stuck, 5)
    finally:
        s.close()
        stuck.close()
    assert server.ack() == 200


def test_oversized_headers_are_refused_with_431(serve: Any) -> None:
    server = serve(max_header_bytes=4096, max_headers=20)
    auth = f"Authorization: {_basic('station-a', 'pw-a')}\r\n".encode()
    for extra in (b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 200) for i in range(25)),  # 5 KB in 25 headers
                  b"X-Big: " + b"p" * 5000 + b"\r\n",  # one 5 KB header
                  b"".join(b"X-%d: 1\r\n" % i for i in range(30))):  # 30 small ones
        s = server.tls()
        try:
            s.sendall(b"GET /upstream/station-a/ack HTTP/1.1\r\nHost: archive\r\n" + auth + extra + b"\r\n")
            assert _status_line(s).startswith(b"HTTP/1.1 431 ")
            assert _closed_within(s, 5)
        finally:
            s.close()
    assert server.ack() == 200


def test_a_body_over_max_payload_is_refused_with_413(serve: Any) -> None:
    server = serve()
    s = server.tls("127.0.0.1")
    try:
        s.sendall(b"POST /upstream/station-a/records HTTP/1.1\r\nHost: archive\r\nContent-Length: 999999999\r\n"
                  + f"Authorization: {_basic('station-a', 'pw-a')}\r\n\r\n".encode())
        assert _status_line(s).startswith(b"HTTP/1.1 413 ")
        assert _closed_within(s, 5)
    finally:
        s.close()


def test_password_guessing_from_one_address_gets_429(serve: Any) -> None:
    server = serve(auth_failures=3, auth_failures_per_user=100, auth_window_s=60)
    """After 3 failures from 127.0.0.2 it is answered 429 with Retry-After, without the
    password being checked (the right one included); another address is not affected."""
    path = "/upstream/station-a/ack"
    assert [server.request("GET", path, "station-a", f"guess{i}", source=ATTACKER)[0] for i in range(3)] \
        == [401, 401, 401]
    code, headers, _ = server.request("GET", path, "station-a", "guess3", source=ATTACKER)
    assert code == 429 and int(headers["retry-after"]) >= 1
    assert server.request("GET", path, "station-a", "pw-a", source=ATTACKER)[0] == 429
    assert server.ack("station-a", "127.0.0.1") == 200
    assert server.ack("station-b", "127.0.0.3") == 200
    # a POST is refused the same way, before its body
    assert server.request("POST", "/upstream/station-a/records", "station-a", "g", b"{}", source=ATTACKER)[0] == 429


def test_guessing_one_users_password_from_many_addresses_gets_429(serve: Any) -> None:
    server = serve(auth_failures=100, auth_failures_per_user=4, auth_window_s=60)
    path = "/upstream/station-a/ack"
    codes = [server.request("GET", path, "station-a", "guess", source=f"127.0.0.{10 + i}")[0] for i in range(6)]
    assert codes == [401] * 4 + [429] * 2
    assert server.ack("station-b", "127.0.0.30") == 200  # another user is not affected
    # names nobody has are limited per address only: no table entry per invented name
    assert server.request("GET", "/upstream/zz/ack", "zz", "x", source="127.0.0.31")[0] == 401


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000), st.booleans()), max_size=400),
       st.integers(1, 16))
def test_auth_tracking_tables_never_exceed_their_cap(events: list[tuple[int, int, bool]], cap: int) -> None:
    """An attacker rotating source addresses and user names never grows memory past the cap,
    and a blocked key stays blocked until its window lets it try again."""
    from gateway.archive.http_guard import AuthLimiter

    t = [0.0]
    lim = AuthLimiter(per_source=3, per_user=5, window_s=60, max_entries=cap, known_users=None, now=lambda: t[0])
    for ip, user, ok in events:
        t[0] += 0.01
        if lim.retry_after(f"10.0.{ip // 256}.{ip % 256}", f"user{user}") is None and not ok:
            lim.failed(f"10.0.{ip // 256}.{ip % 256}", f"user{user}")
        assert lim.sizes()[0] <= cap and lim.sizes()[1] <= cap
    t[0] = 1000.0
    lim2 = AuthLimiter(per_source=2, per_user=100, window_s=60, max_entries=cap, known_users=None, now=lambda: t[0])
    lim2.failed("10.9.9.9", "u")
    lim2.failed("10.9.9.9", "u")
    assert lim2.retry_after("10.9.9.9", "u") == 30  # one try back every window / per_source
    t[0] += 30
    assert lim2.retry_after("10.9.9.9", "u") is None


def test_new_http_keys_are_validated_naming_the_key(tmp_path: Path) -> None:
    base = {"broker": {}, "store": {}}
    http_ = {"cert_file": "c", "key_file": "k", "password_file": "p"}
    cfg = archive_config.parse({**base, "http": http_}, tmp_path).http
    assert (cfg.max_connections, cfg.max_connections_per_ip, cfg.request_timeout_s) == (64, 16, 30)
    assert (cfg.max_header_bytes, cfg.max_headers) == (16384, 64)
    assert (cfg.auth_failures, cfg.auth_failures_per_user, cfg.auth_window_s, cfg.auth_table_max) == \
        (10, 50, 60, 4096)
    for key, bad in (("max_connections", 0), ("max_connections", "64"), ("max_connections_per_ip", 0),
                     ("request_timeout_s", 0), ("request_timeout_s", -1.5), ("request_timeout_s", True),
                     ("max_header_bytes", 100), ("max_headers", 0), ("auth_failures", 0),
                     ("auth_failures_per_user", 0), ("auth_window_s", 0), ("auth_table_max", 0)):
        with pytest.raises(ConfigError, match=rf"^config http\.{key}: "):
            archive_config.parse({**base, "http": {**http_, key: bad}}, tmp_path)
    with pytest.raises(ConfigError, match=r"^config http\.max_connections_per_ip: .*max_connections"):
        archive_config.parse({**base, "http": {**http_, "max_connections": 4, "max_connections_per_ip": 8}}, tmp_path)
    assert archive_config.parse({**base, "http": {**http_, "request_timeout_s": 1.5}}, tmp_path).http \
        .request_timeout_s == 1.5
