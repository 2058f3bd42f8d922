"""The forwarder over HTTPS, for sites whose network lets only HTTPS out (docs/upstream.md).

The same payloads, cursors and order as over MQTT: a 2xx answer plays the PUBACK's part
(``sent`` moves), the archive's ack in its body moves ``archived``. One request at a time
on one kept-alive connection (the standard library's ``http.client``: no dependency for a
Pi), alarms first; after each batch the round starts over, so an alarm waits behind at most
one request. An idle forwarder asks for the archive's ack every ``ACK_POLL_S``, since the
archive acknowledges after its own commit.
"""

from __future__ import annotations

import base64
import http.client
import logging
import random
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import Clock
from gateway.core.errors import JournalError
from gateway.forward.forwarder import read_password
from gateway.forward.settings import ForwardConfig
from gateway.forward.streams import ORDER, Streams, fair_order
from ledger_client.retry import backoff_s

log = logging.getLogger("traceseal.forward")

ACK_POLL_S = 10.0
TIMEOUT_S = 30.0


class HttpError(Exception):
    """A non-2xx answer: the batch was not taken."""


class HttpsForwarder:
    def __init__(self, cfg: ForwardConfig, key: Ed25519PrivateKey, clock: Clock, *,
                 rand: random.Random | None = None) -> None:
        self.up = up = cfg.upstream
        self.gateway = cfg.gateway_id
        self.rand = rand or random.Random()
        password = read_password(up)
        u = urlsplit(up.url)
        self.host, self.port, self.base = u.hostname or "", u.port or 443, f"{u.path.rstrip('/')}/{cfg.gateway_id}"
        self.ctx = ssl.create_default_context(cafile=str(up.tls_ca) if up.tls_ca else None)
        if up.tls_cert is not None:
            self.ctx.load_cert_chain(str(up.tls_cert), str(up.tls_key) if up.tls_key else None)
        self.headers = {"Content-Type": "application/json", "User-Agent": "traceseal-forwarder/1"}
        if up.username is not None:
            token = base64.b64encode(f"{up.username}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.streams = Streams(cfg, key, clock, 1)
        self.windows = self.streams.windows
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.batches_sent = 0
        self.thread: threading.Thread | None = None
        self._conn: http.client.HTTPSConnection | None = None
        self._attempt = 0
        self._next_try = 0.0
        self._hello_sent = False
        self._last_stream: str | None = None  # fair_order: the non-alarm stream sent last
        self._last_ack_poll = 0.0

    @property
    def last_error(self) -> str:
        return self.streams.last_error

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="forward", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=TIMEOUT_S + 5)

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected.is_set(), "error": self.last_error, "batches_sent": self.batches_sent,
                "streams": self.streams.status()}

    def run(self) -> None:
        log.info("forwarding to %s as %s (HTTPS)", self.up.url, self.gateway)
        while not self.stop_event.is_set():
            wait = self._next_try - time.monotonic()
            if wait > 0:
                self.stop_event.wait(min(wait, 0.5))
                continue
            try:
                if not self._round():
                    self.stop_event.wait(0.1)
            except (OSError, http.client.HTTPException, HttpError) as exc:  # refused, TLS, 5xx, 401, …
                self._failed(str(exc) or type(exc).__name__)
            except JournalError as exc:
                log.error("forwarder cannot save its cursors: %s", exc)
                self.stop_event.wait(1.0)
            except Exception:  # the forwarder must survive anything; the journal is the record
                log.exception("unexpected error in the forwarder; retrying")
                self.stop_event.wait(1.0)
        try:
            self.streams.link(False, "stopped")
        finally:
            if self._conn is not None:
                self._conn.close()
            self.streams.close()

    def _round(self) -> bool:
        """Send the first batch due (alarms first); False when nothing was due."""
        if not self._hello_sent:
            self._request("POST", "hello", self.streams.hello)
            self._hello_sent = True
        for stream in fair_order(self._last_stream):
            w = self.windows[stream]
            batch = self.streams.next_batch(stream, w.head)
            if batch is None:
                continue
            w.push(0, batch.last)
            try:
                self._request("POST", stream, batch.payload)
            except BaseException:
                w.reset()
                raise
            w.ack(0)
            if stream != ORDER[0]:
                self._last_stream = stream
            self.batches_sent += 1
            self.streams.persist()
            return True
        if time.monotonic() - self._last_ack_poll >= ACK_POLL_S:
            self._request("GET", "ack", None)
        return False

    def _request(self, method: str, kind: str, body: bytes | None) -> None:
        if self._conn is None:
            self._conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=TIMEOUT_S)
        path = f"{self.base}/{kind}"
        try:
            self._conn.request(method, path, body=body, headers=self.headers)
            resp = self._conn.getresponse()
            data = resp.read()
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        if not 200 <= resp.status < 300:
            raise HttpError(f"{method} {path}: HTTP {resp.status} {resp.reason}: {data[:200].decode(errors='replace')}")
        if not self.connected.is_set():
            log.info("upstream reachable at %s", self.up.url)
            self._attempt = 0
            self.connected.set()
            self.streams.link(True)
        self._last_ack_poll = time.monotonic()
        if data:
            self.streams.take_ack(data, path)

    def _failed(self, why: str) -> None:
        self.connected.clear()
        self._hello_sent = False  # the archive may have been replaced: say who we are again
        self._attempt += 1
        delay = backoff_s(self._attempt, self.rand, base=0.5, cap=float(self.up.reconnect_max_s))
        self._next_try = time.monotonic() + delay
        if self._attempt == 1 or why != self.last_error:
            log.warning("upstream: %s; retrying with backoff (next in %.1f s)", why, delay)
        self.streams.link(False, why)
