"""The dashboard's TLS: ``[web] cert_file``/``key_file`` checked and loaded into a server
``SSLContext``, and the hand-off that lets waitress (which has no TLS) serve over it.

Why not another server: cheroot (the other pure-Python production WSGI server with TLS)
does the handshake on its accept thread, so one client that connects and says nothing
stops the whole server (cherrypy/cheroot#748, open); gunicorn forks worker processes and
cannot live on a thread of the gateway. Wrapping waitress's own sockets does not work
either: its event loop ``select``s on the raw socket and would miss records OpenSSL has
already decrypted. So the standard library's ``ssl`` terminates TLS on a thread per
connection (bounded in number, handshake under a total deadline), and the plaintext is
handed to waitress over a ``socketpair`` with the client's real address, so HTTP parsing,
limits and the thread pool stay waitress's. No new dependency.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import ssl
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gateway.core.errors import ConfigError

log = logging.getLogger("traceseal.web")

HANDSHAKE_S = 10.0  # the whole TLS handshake, not each read: a dripping client cannot hold a thread longer
IDLE_S = 60.0  # a connection with no byte either way this long is closed (waitress's channel_timeout too)
BUFFER = 64 * 1024


def check_key_file(path: Path, key: str = "web.key_file") -> None:
    """Present, readable, and mode 0600 (owner only), as the gateway's signing key."""
    try:
        st = path.stat()
        with path.open("rb"):
            pass
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{path}: no such file") from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc} (it must be readable by the user "
                               f"the gateway runs as)") from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(key, f"{path}: mode {stat.S_IMODE(st.st_mode):04o} lets group/others read the key; "
                               f"run: chmod 600 {path}")


def check_cert_file(path: Path, key: str = "web.cert_file") -> None:
    try:
        with path.open("rb"):
            pass
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{path}: no such file") from exc
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror or exc}") from exc


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """TLS 1.2 or later with the standard library's server defaults; errors name the key."""
    check_cert_file(cert_file)
    check_key_file(key_file)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except ssl.SSLError as exc:
        # OpenSSL does not say which of the two files is wrong; the certificate is the
        # likelier (a key file that is not PEM fails the same way, so name both).
        raise ConfigError("web.cert_file", f"{cert_file} with web.key_file {key_file}: not a PEM certificate "
                                           f"and its matching private key ({exc.reason or exc})") from exc
    return ctx


def _handshake(tls: ssl.SSLSocket, deadline: float) -> None:
    """Non-blocking handshake with one deadline for the whole exchange."""
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            events = selectors.EVENT_READ
        except ssl.SSLWantWriteError:
            events = selectors.EVENT_WRITE
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("TLS handshake took too long")
        with selectors.DefaultSelector() as sel:
            sel.register(tls, events)
            if not sel.select(remaining):
                raise TimeoutError("TLS handshake took too long")


def _pump(tls: ssl.SSLSocket, plain: socket.socket, idle_s: float) -> None:
    """Copy bytes both ways between the TLS connection and waitress's end of the pair, on
    one thread, until either side closes or nothing moves for ``idle_s``."""
    up = bytearray()  # from the client, for waitress
    down = bytearray()  # from waitress, for the client
    tls_open = plain_open = True
    plain_write_shut = False
    last = time.monotonic()
    with selectors.DefaultSelector() as sel:
        while True:
            moved = False
            if tls_open and len(up) < BUFFER:
                moved, tls_open = _drain_tls(tls, up)
            if up:
                try:
                    n = plain.send(up)
                    del up[:n]
                    moved = moved or n > 0
                except BlockingIOError:
                    pass
            elif not tls_open and not plain_write_shut:
                plain.shutdown(socket.SHUT_WR)  # the client is done sending
                plain_write_shut = True
            if plain_open and len(down) < BUFFER:
                try:
                    data = plain.recv(BUFFER)
                    if data:
                        down += data
                        moved = True
                    else:
                        plain_open = False
                except BlockingIOError:
                    pass
            if down:
                try:
                    n = tls.send(down)
                    del down[:n]
                    moved = moved or n > 0
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            if not plain_open and not down:
                return  # waitress closed and everything it said was sent
            if not tls_open and not plain_open:
                return
            now = time.monotonic()
            if moved:
                last = now
                continue
            if now - last >= idle_s:
                return
            _want(sel, tls, (selectors.EVENT_READ if tls_open and len(up) < BUFFER else 0)
                  | (selectors.EVENT_WRITE if down else 0))
            _want(sel, plain, (selectors.EVENT_READ if plain_open and len(down) < BUFFER else 0)
                  | (selectors.EVENT_WRITE if up else 0))
            sel.select(max(0.0, idle_s - (now - last)))


def _drain_tls(tls: ssl.SSLSocket, up: bytearray) -> tuple[bool, bool]:
    """Read into ``up`` (up to ``BUFFER``) all that OpenSSL holds, which select cannot see:
    (whether bytes moved, whether the client is still sending)."""
    moved = False
    try:
        while len(up) < BUFFER:
            data = tls.recv(BUFFER)
            if not data:
                return moved, False
            up += data
            moved = True
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
        pass
    return moved, True


def _want(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
    """Wait for exactly ``events`` on ``sock`` (none: not at all, e.g. a side that closed)."""
    registered = _registered(sel, sock)
    if events and registered:
        sel.modify(sock, events)
    elif events:
        sel.register(sock, events)
    elif registered:
        sel.unregister(sock)


def _registered(sel: selectors.BaseSelector, sock: socket.socket) -> bool:
    try:
        sel.get_key(sock)
    except KeyError:
        return False
    return True


class TlsHandoff:
    """Takes each accepted TCP connection, does the TLS handshake and the copying on a
    thread of its own (at most ``max_connections`` at once; more are closed at once), and
    gives the plaintext end to ``attach(sock, addr)``, which must make it a waitress
    channel on waitress's loop thread."""

    def __init__(self, ctx: ssl.SSLContext, attach: Callable[[socket.socket, tuple[str, int]], None], *,
                 max_connections: int = 64, handshake_s: float = HANDSHAKE_S, idle_s: float = IDLE_S) -> None:
        self.ctx = ctx
        self.attach = attach
        self.max_connections = max_connections
        self.handshake_s, self.idle_s = handshake_s, idle_s
        self._active = 0
        self._lock = threading.Lock()
        self.closed = False

    def accepted(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        with self._lock:
            if self.closed or self._active >= self.max_connections:
                conn.close()
                return
            self._active += 1
        threading.Thread(target=self._serve, args=(conn, addr), name="web-tls", daemon=True).start()

    def _serve(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        plain: socket.socket | None = None
        tls: ssl.SSLSocket | None = None
        try:
            conn.setblocking(False)
            tls = self.ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            _handshake(tls, time.monotonic() + self.handshake_s)
            plain, theirs = socket.socketpair()
            plain.setblocking(False)
            self.attach(theirs, addr)
            _pump(tls, plain, self.idle_s)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError: a client's failure, one line
            log.debug("dashboard TLS connection from %s ended: %s", addr[0], exc)
        finally:
            for s in (plain, tls or conn):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass
            with self._lock:
                self._active -= 1


def is_loopback(bind: str) -> bool:
    if bind == "localhost":
        return True
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return False

