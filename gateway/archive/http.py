"""HTTPS ingest for the archive (docs/upstream.md §HTTPS), beside the MQTT consumer.

For gateways whose network lets only HTTPS out. A POST is not verified or stored here: it
joins the MQTT messages in the archive's inbox as if it had come from
``{prefix}/{gateway}/{stream}``, so the same writer thread verifies and stores it in the
same transactions (one verification path, one store connection). The answer waits for that
commit: a ``200`` is the PUBACK's counterpart ("durably taken"), and its body is the ack
read afterwards on a read-only store connection of its own.

Credentials are a ``mosquitto_passwd`` file (the tool the central broker's users already
come from); the Basic user name must be the gateway id in the path, as the broker's ACL
pattern ``{prefix}/%u/...`` does for MQTT. Standard library only (``http.server``, ``ssl``):
nothing to add on the archive host.

It listens on the internet, so what one client may hold or cost is bounded (``[http]`` keys,
http_guard.py, http_server.py): connections in total and per address, one total deadline per
request however slowly it is sent, header bytes and lines, the body (``max_payload``, read
only after the credentials passed), and failed logins per address and per user name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import queue
import re
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from gateway.archive.config import GATEWAY_ID, HttpConfig
from gateway.archive.http_guard import AuthLimiter, Conn, Tally
from gateway.archive.http_server import Server, handler
from gateway.archive.store import open_store
from gateway.core.errors import ConfigError
from gateway.journal import UPSTREAM_TOPICS
from gateway.transports.inbound import Inbound
from ledger_client.keys import check_private_permissions

log = logging.getLogger("traceseal.archive.http")

POST_STREAMS = UPSTREAM_TOPICS
COMMIT_TIMEOUT_S = 30.0  # the writer did not commit in this long: 503, the gateway sends again


def load_passwords(path: Path) -> dict[str, str]:
    """``user:hash`` lines of a mosquitto_passwd file (0600: a list of hashes is still a secret)."""
    try:
        check_private_permissions(path)
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("http.password_file", f"cannot read {path}: {exc.strerror or exc}") from exc
    except Exception as exc:  # KeyFileError: group/others may read it
        raise ConfigError("http.password_file", str(exc).replace("the key", "the password hashes")) from exc
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, h = line.partition(":")
        if not sep or not re.fullmatch(r"\$[67]\$.*", h):
            raise ConfigError("http.password_file", f"{path}:{n}: not a mosquitto_passwd line (user:$7$…)")
        out[user] = h
    return out


def check_password(stored: str, password: str) -> bool:
    """mosquitto_passwd's hashes: ``$7$iterations$salt$hash`` (PBKDF2-HMAC-SHA512) or
    ``$6$salt$hash`` (SHA-512 of password + salt), base64 salt and hash."""
    parts = stored.split("$")
    try:
        if parts[1] == "7" and len(parts) == 5:
            salt, want = base64.b64decode(parts[3]), base64.b64decode(parts[4])
            got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(want))
        elif parts[1] == "6" and len(parts) == 4:
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except (ValueError, binascii.Error, IndexError):
        return False
    return hmac.compare_digest(got, want)


def _ack(store: Any, gw: str) -> dict[str, Any]:
    """The ack as ``Archive.ack`` computes it (records only in verified blocks), read on the
    HTTP side's own connection after the writer's commit."""
    prog = store.progress(gw)
    records = blocks = anchors = -1
    if prog is not None:
        r, b = prog
        blk = store.get_block(gw, b) if b >= 0 else None
        if blk is not None:
            records, blocks, anchors = min(r, blk.last_seq), b, store.max_anchored(gw, b)
    return {"v": 1, "gateway": gw, "records": records, "blocks": blocks, "anchors": anchors}


class HttpIngest:
    """A TLS HTTP server feeding ``archive.inbox``; ``start``/``stop``.

    What a client may cost is bounded before anything else happens (http_guard.py): a
    connection over the caps is closed at accept, without a thread; every request, from the
    first byte (the TLS handshake for the first) to its last body byte, has one total
    deadline that a reaper thread enforces by closing the socket, whatever the client
    drips; the headers are read within a byte and line budget; the credentials (and the
    failed-login limits) are checked before one byte of a body is read.
    """

    def __init__(self, archive: Any, cfg: HttpConfig, *, clock: Any = time.monotonic) -> None:
        self.archive = archive
        self.cfg = cfg
        self.clock = clock
        self.passwords = load_passwords(cfg.password_file)
        try:
            check_private_permissions(cfg.key_file)
        except OSError as exc:
            raise ConfigError("http.key_file", f"cannot read {cfg.key_file}: {exc.strerror or exc}") from exc
        except Exception as exc:
            raise ConfigError("http.key_file", str(exc)) from exc
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        self.server: Any = None  # http_server.Server while started
        self.thread: threading.Thread | None = None
        self._local = threading.local()
        self.refused = 0
        self.limiter = AuthLimiter(per_source=cfg.auth_failures, per_user=cfg.auth_failures_per_user,
                                   window_s=cfg.auth_window_s, max_entries=cfg.auth_table_max,
                                   known_users=set(self.passwords), now=clock)
        self.tally = Tally()
        self._lock = threading.Lock()  # the limiter and the tally (the table has the server's lock)

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server is not None else self.cfg.port

    def _store(self) -> Any:
        """One read-only store connection per handler thread."""
        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = open_store(self.archive.cfg.store, readonly=True)
        return s

    def note(self, kind: str, what: str, ip: str) -> None:
        """Count a refusal; log it the first time and then once a minute with the count."""
        with self._lock:
            n = self.tally.note(kind, self.clock())
        if n is not None:
            log.warning("HTTPS ingest: %s (%d since the last such line; latest from %s)", what, n, ip)

    def route(self, method: str, path: str) -> tuple[str, str] | None:
        """(gateway, stream) of a request the ingest answers; None: 404."""
        base = self.cfg.path.rstrip("/") + "/"
        rest = path[len(base):] if path.startswith(base) else ""
        gw, _, stream = rest.partition("/")
        if not GATEWAY_ID.fullmatch(gw) or not ((method == "POST" and stream in POST_STREAMS)
                                                 or (method == "GET" and stream == "ack")):
            return None
        return gw, stream

    def login(self, header: str | None, gw: str, ip: str, conn: Conn) -> tuple[int, int | None]:
        """200 (credentials good for ``gw``), 401, or 429 with the seconds to wait. The
        limits are consulted before the password: a blocked guess is never checked."""
        user, password = _basic(header)
        if header is not None and header == conn.auth_header:  # checked on this connection already
            return (200, None) if conn.user == gw else (401, None)
        with self._lock:
            wait = self.limiter.retry_after(ip, user)
        if wait is not None:
            self.note("auth_limited", "failed-login limit reached: answered 429", ip)
            return 429, wait
        stored = self.passwords.get(user) if user is not None else None
        if user == gw and stored is not None and password is not None and check_password(stored, password):
            conn.authenticated, conn.auth_header, conn.user = True, header, user
            return 200, None
        with self._lock:
            self.limiter.failed(ip, user)
            self.refused += 1
        self.note("auth_failed", "credentials refused", ip)
        return 401, None

    def take(self, method: str, gw: str, stream: str, body: bytes | None) -> tuple[int, bytes]:
        """The request of an authenticated gateway: a POST joins the inbox and waits for the commit."""
        if method == "POST":
            assert body is not None
            done = threading.Event()
            try:
                self.archive.inbox.put(Inbound("https", f"{self.archive.cfg.prefix}/{gw}/{stream}", body,
                                               ack=done.set), timeout=COMMIT_TIMEOUT_S)
            except queue.Full:
                return 503, b'{"error": "archive busy; send again"}'
            if not done.wait(COMMIT_TIMEOUT_S):  # the store cannot commit: not taken, the gateway retries
                return 503, b'{"error": "archive store busy; send again"}'
        ack = dict(_ack(self._store(), gw), time_ms=self.archive.now_ms())
        return 200, json.dumps(ack, sort_keys=True).encode()

    def start(self) -> None:
        self.server = Server(self, handler(self))
        self.server.socket = self.ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.server.serve_forever, name="archive-https", daemon=True)
        self.thread.start()
        self.server.start_reaper()
        log.info("HTTPS ingest on %s:%d%s/{gateway}/{stream}", self.cfg.listen, self.port, self.cfg.path)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server.close_all()


def _basic(header: str | None) -> tuple[str | None, str | None]:
    """(user, password) of a Basic Authorization header; (None, None) if there is none."""
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError):
        return None, None
    return user, password
