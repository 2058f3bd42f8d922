"""The server under the archive's HTTPS ingest (gateway/archive/http.py): what a client may
hold or cost, enforced where it happens. Connections are admitted at accept against the caps
(http_guard.ConnectionTable) and served from a bounded pool; a reaper closes any connection
past its request deadline; the head of each request is read within a byte and line budget,
and a body only after the credentials passed.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol

from gateway.archive.config import HttpConfig
from gateway.archive.http_guard import Conn, ConnectionTable

log = logging.getLogger("traceseal.archive.http")


class HttpIngest(Protocol):
    """What the server asks of the ingest it serves (``gateway.archive.http.HttpIngest``):
    declared here so the server does not import the module that starts it."""

    cfg: HttpConfig
    archive: Any  # its ``cfg.max_payload`` bounds a body
    clock: Callable[[], float]

    def note(self, kind: str, what: str, ip: str) -> None: ...

    def route(self, method: str, path: str) -> tuple[str, str] | None: ...

    def login(self, header: str | None, gw: str, ip: str, conn: Conn) -> tuple[int, int | None]: ...

    def take(self, method: str, gw: str, stream: str, body: bytes | None) -> tuple[int, bytes]: ...


def _kill(sock: Any) -> None:
    """Wake whatever thread is blocked on this connection: shut the TCP connection down under
    the TLS layer (ssl.SSLSocket.shutdown would drop the TLS object under a reading thread)."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


class Server(HTTPServer):
    """Accepts on one thread, serves each admitted connection from a pool of at most
    ``max_connections`` workers (refused ones never get a thread); a reaper closes what
    passed its deadline."""

    request_queue_size = 128  # the listen backlog: a flood is refused by us, not by dropped SYNs

    def __init__(self, ingest: HttpIngest, handler: type[BaseHTTPRequestHandler]) -> None:
        cfg = ingest.cfg
        self.ingest = ingest
        self.table = ConnectionTable(cfg.max_connections, cfg.max_connections_per_ip, cfg.request_timeout_s)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=cfg.max_connections, thread_name_prefix="archive-https-conn")
        self.current = threading.local()
        self.closing = threading.Event()
        super().__init__((cfg.listen, cfg.port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        ip = client_address[0]
        with self.lock:
            conn, displaced = self.table.admit(request, ip, self.ingest.clock())
        if displaced is not None:
            _kill(displaced.sock)
            self.ingest.note("displaced", "connections limit reached: a connection that never authenticated "
                                          "closed to make room", displaced.ip)
        if conn is None:
            self.ingest.note("refused", "connections limit reached (in total or from one address): "
                                        "connection refused", ip)
            self.shutdown_request(request)
            return
        self.pool.submit(self._work, request, client_address, conn)

    def _work(self, request: Any, client_address: Any, conn: Conn) -> None:
        self.current.conn = conn
        try:
            if not conn.cut:
                self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001  socketserver's own contract: report, keep serving
            self.handle_error(request, client_address)
        finally:
            with self.lock:
                self.table.release(conn)
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failed handshake or a dropped client is the client's problem: one log line, not
        a traceback on stderr (none for a connection the archive cut itself)."""
        import sys

        conn = getattr(self.current, "conn", None)
        level = logging.DEBUG if conn is not None and conn.cut else logging.INFO
        log.log(level, "HTTPS ingest: connection from %s failed: %s", client_address[0], sys.exc_info()[1])

    def start_reaper(self) -> None:
        threading.Thread(target=self._reap, name="archive-https-reaper", daemon=True).start()

    def _reap(self) -> None:
        step = min(0.25, self.ingest.cfg.request_timeout_s / 4)
        while not self.closing.wait(step):
            with self.lock:
                late = self.table.expired(self.ingest.clock())
            for c in late:
                _kill(c.sock)
                self.ingest.note("deadline", f"request not complete within request_timeout_s "
                                             f"({self.ingest.cfg.request_timeout_s:g} s): connection closed", c.ip)

    def close_all(self) -> None:
        self.closing.set()
        with self.lock:
            socks = list(self.table.conns)
        for s in socks:
            _kill(s)
        self.pool.shutdown(wait=False, cancel_futures=True)


class _HeadTooLarge(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    """One HTTPS connection of the ingest; ``handler()`` binds it to its ingest."""

    protocol_version = "HTTP/1.1"  # keep-alive: the forwarder keeps one connection
    ingest: HttpIngest  # both set per server by handler()
    cfg: HttpConfig
    conn: Conn

    def setup(self) -> None:
        # The TLS handshake here, on this connection's own worker and under its
        # deadline: in accept() a client that never finishes it would stall them all.
        self.conn = self.server.current.conn  # type: ignore[attr-defined]
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _read_head(self) -> list[bytes] | None:
        """Request line and header lines within ``max_header_bytes`` and ``max_headers``;
        None when the client closed first."""
        budget, lines = self.cfg.max_header_bytes, list[bytes]()
        while True:
            line = self.rfile.readline(budget + 1)
            if not line:
                return None
            budget -= len(line)
            if budget < 0:
                raise _HeadTooLarge(f"request headers over {self.cfg.max_header_bytes} bytes")
            if line in (b"\r\n", b"\n"):
                if lines:
                    return lines + [line]
                continue  # an empty line before the request line is allowed (RFC 9112 §2.2)
            lines.append(line)
            if len(lines) > self.cfg.max_headers + 1:
                raise _HeadTooLarge(f"more than {self.cfg.max_headers} request headers")

    def handle_one_request(self) -> None:
        """BaseHTTPRequestHandler's, with the head read under the budgets above."""
        self.request_version, self.command, self.requestline = "HTTP/1.1", "", ""
        self.expect_100 = False
        try:
            lines = self._read_head()
        except _HeadTooLarge as exc:
            self.ingest.note("head", f"{exc}: answered 431", self.client_address[0])
            self._send(431, json.dumps({"error": str(exc)}).encode(), close=True)
            return
        except TimeoutError:
            self.close_connection = True
            return
        if lines is None:
            self.close_connection = True
            return
        self.raw_requestline = lines[0]
        real, self.rfile = self.rfile, io.BytesIO(b"".join(lines[1:]))
        try:
            ok = self.parse_request()
        finally:
            self.rfile = real
        if not ok:
            return
        if self.command not in ("GET", "POST"):
            self._send(405, b'{"error": "method not allowed"}', close=True)
            return
        self._serve()
        self.wfile.flush()

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` is answered only once the credentials passed (in _serve)."""
        self.expect_100 = True
        return True

    def _serve(self) -> None:
        post = self.command == "POST"
        where = self.ingest.route(self.command, self.path)
        if where is None:  # a POST's body is not read: the link is closed instead
            self._send(404, b'{"error": "not found"}', close=post)
            return
        gw, stream = where
        code, wait = self.ingest.login(self.headers.get("Authorization"), gw, self.client_address[0], self.conn)
        if code == 429:
            self._send(429, b'{"error": "too many failed logins; try again later"}', close=True,
                       headers={"Retry-After": str(wait)})
            return
        if code != 200:
            self._send(401, b'{"error": "credentials refused"}', close=True,
                       headers={"WWW-Authenticate": 'Basic realm="traceseal archive"'})
            return
        body = None
        if post:
            n = self.headers.get("Content-Length")
            if n is None or not n.isdigit() or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._send(411, b'{"error": "Content-Length required"}', close=True)
                return
            if int(n) > self.ingest.archive.cfg.max_payload:  # not read: refused, and the link closed
                self._send(413, b'{"error": "payload too large"}', close=True)
                return
            if self.expect_100:
                self.send_response_only(100)
                self.end_headers()
            body = self.rfile.read(int(n))
            if len(body) < int(n):
                self.close_connection = True
                return
        with self.server.lock:  # type: ignore[attr-defined]
            if self.conn.cut:  # the reaper was first: the client sent too slowly
                self.close_connection = True
                return
            self.conn.deadline = None  # ours from here: the deadline is for what the client sends
        try:
            code, out = self.ingest.take(self.command, gw, stream, body)
        except Exception:  # never a traceback to the client; the batch was not taken
            log.exception("HTTPS ingest: %s %s", self.command, self.path)
            code, out = 500, b'{"error": "internal error"}'
        self.conn.deadline = self.ingest.clock() + self.cfg.request_timeout_s  # the answer, then the next request
        self._send(code, out)

    def _send(self, code: int, out: bytes, close: bool = False, headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(out)


def handler(ingest: HttpIngest) -> type[BaseHTTPRequestHandler]:
    """The request handler class for ``ingest`` (``socketserver`` takes a class, not an instance)."""
    cfg = ingest.cfg
    # timeout: per receive, a backstop: the total per request is the reaper's
    return type("Handler", (_Handler,), {"ingest": ingest, "cfg": cfg, "timeout": cfg.request_timeout_s + 1})
