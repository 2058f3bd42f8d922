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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ledger_client.keys import check_private_permissions

from ..config import _Table
from ..errors import ConfigError
from ..journal import UPSTREAM_TOPICS
from ..pipeline import Inbound
from .config import GATEWAY_ID

log = logging.getLogger("traceseal.archive.http")

POST_STREAMS = UPSTREAM_TOPICS
COMMIT_TIMEOUT_S = 30.0  # the writer did not commit in this long: 503, the gateway sends again
IDLE_S = 60.0  # a connection silent this long (handshake included) is closed


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failed handshake or a dropped client is the client's problem: one log line, not
        a traceback on stderr."""
        import sys

        log.info("HTTPS ingest: connection from %s failed: %s", client_address[0], sys.exc_info()[1])


@dataclass(frozen=True)
class HttpConfig:
    """``[http]`` of archive.toml."""

    listen: str
    port: int
    cert_file: Path
    key_file: Path
    password_file: Path
    path: str = "/upstream"


def parse_http(data: Any, base: Path) -> HttpConfig | None:
    """``[http]``; absent = no HTTPS ingest. TLS is not optional: records and passwords
    never travel in clear."""
    if data is None:
        return None
    t = _Table(data, "http", base)
    cfg = HttpConfig(
        listen=t.get("listen", str, "0.0.0.0", check=bool, why="must not be empty"),
        port=t.get("port", int, 8443, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        cert_file=t.path_("cert_file"),  # type: ignore[arg-type]  (required: path_ raises when absent)
        key_file=t.path_("key_file"),  # type: ignore[arg-type]
        password_file=t.path_("password_file"),  # type: ignore[arg-type]
        path="/" + t.get("path", str, "/upstream", check=lambda v: "?" not in v and "#" not in v,
                         why="must be a URL path").strip("/"),
    )
    t.done()
    return cfg


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
    """A TLS ``ThreadingHTTPServer`` feeding ``archive.inbox``; ``start``/``stop``."""

    def __init__(self, archive: Any, cfg: HttpConfig) -> None:
        self.archive = archive
        self.cfg = cfg
        self.passwords = load_passwords(cfg.password_file)
        try:
            check_private_permissions(cfg.key_file)
        except OSError as exc:
            raise ConfigError("http.key_file", f"cannot read {cfg.key_file}: {exc.strerror or exc}") from exc
        except Exception as exc:
            raise ConfigError("http.key_file", str(exc)) from exc
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self._local = threading.local()
        self.refused = 0

    @property
    def port(self) -> int:
        return self.server.server_address[1] if self.server is not None else self.cfg.port

    def _store(self) -> Any:
        """One read-only store connection per handler thread."""
        s = getattr(self._local, "store", None)
        if s is None:
            from .store import open_store

            s = self._local.store = open_store(self.archive.cfg.store, readonly=True)
        return s

    def authorised(self, header: str | None, gw: str) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeError):
            return False
        stored = self.passwords.get(user)
        return user == gw and stored is not None and check_password(stored, password)

    def handle(self, method: str, path: str, auth: str | None, body: bytes | None) -> tuple[int, bytes]:
        base = self.cfg.path.rstrip("/") + "/"
        rest = path[len(base):] if path.startswith(base) else ""
        gw, _, stream = rest.partition("/")
        if not GATEWAY_ID.fullmatch(gw) or not ((method == "POST" and stream in POST_STREAMS)
                                                 or (method == "GET" and stream == "ack")):
            return 404, b'{"error": "not found"}'
        if not self.authorised(auth, gw):
            self.refused += 1
            return 401, b'{"error": "credentials refused"}'
        if method == "POST":
            if body is None:
                return 411, b'{"error": "Content-Length required"}'
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
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the forwarder keeps one connection
            timeout = IDLE_S

            def setup(self) -> None:
                # The TLS handshake here, on this connection's own thread and under its
                # timeout: in accept() a client that never finishes it would stall them all.
                self.request.settimeout(IDLE_S)
                self.request.do_handshake()
                super().setup()

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s " + fmt, self.address_string(), *args)

            def _serve(self) -> None:
                body = None
                if self.command == "POST":
                    n = self.headers.get("Content-Length")
                    if n is not None and n.isdigit():
                        if int(n) > ingest.archive.cfg.max_payload:  # not read: refused, and the link closed
                            self._send(413, b'{"error": "payload too large"}', close=True)
                            return
                        body = self.rfile.read(int(n))
                try:
                    code, out = ingest.handle(self.command, self.path, self.headers.get("Authorization"), body)
                except Exception:  # never a traceback to the client; the batch was not taken
                    log.exception("HTTPS ingest: %s %s", self.command, self.path)
                    code, out = 500, b'{"error": "internal error"}'
                self._send(code, out)

            def _send(self, code: int, out: bytes, close: bool = False) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET = _serve

        self.server = _Server((self.cfg.listen, self.cfg.port), Handler)
        self.server.daemon_threads = True
        self.server.socket = self.ctx.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        self.thread = threading.Thread(target=self.server.serve_forever, name="archive-https", daemon=True)
        self.thread.start()
        log.info("HTTPS ingest on %s:%d%s/{gateway}/{stream}", self.cfg.listen, self.port, self.cfg.path)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
