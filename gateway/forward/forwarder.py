"""The forwarder thread: ships the journal upstream per docs/upstream.md, from durable cursors.

One thread owns everything here: its own SQLite connection, the paho client (driven with
``loop()``, so callbacks run on this thread and need no locks) and the in-flight windows.
Each round it reads what is new, publishes it (alarms first, then records, blocks,
anchors), lets paho collect PUBACKs, and stores the cursors that moved in one fsynced
transaction. ``sent`` advances only over contiguously PUBACKed batches, so a crash or an
outage resumes at ``sent + 1``; what was in flight is sent again and the archive drops it
as a duplicate.

Alarms have their own stream and window: a new alarm is published at the next round
(≤ 0.1 s) whatever the records backlog, behind at most ``max_inflight`` batches already
on the wire.

The session is persistent (fixed client id, ``clean_start=False``): after a reconnect
paho re-sends the unacknowledged batches itself, so the windows stay valid across outages.
Reconnects wait ``ledger_client.retry.backoff_s`` (full jitter), so a fleet that lost the
central broker does not return in lock-step.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.core.clock import Clock
from gateway.core.configfiles import check_file, read_secret
from gateway.core.errors import JournalError
from gateway.forward import wire
from gateway.forward.settings import ForwardConfig, UpstreamConfig
from gateway.forward.streams import ORDER, Streams
from ledger_client.retry import backoff_s

log = logging.getLogger("traceseal.forward")

STABLE_S = 30.0  # connected this long without trouble: the reconnect backoff starts over


def read_password(up: UpstreamConfig) -> str | None:
    """The broker password, refused unless the file is private (0600, like the keys); the
    TLS client key is checked by the same rule (configfiles.check_file)."""
    if up.tls_key is not None:
        check_file("upstream.tls.key_file", up.tls_key, "TLS client key", secret=True)
    if up.password_file is None:
        return None
    return read_secret("upstream.password_file", up.password_file, "password")


class Forwarder:
    def __init__(self, cfg: ForwardConfig, key: Ed25519PrivateKey, clock: Clock, *,
                 rand: random.Random | None = None) -> None:
        self.up = up = cfg.upstream
        self.gateway = cfg.gateway_id
        self.clock = clock
        self.rand = rand or random.Random()
        password = read_password(up)  # before any connection: a bad or readable file stops the start
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=up.client_id, protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(0)  # our windows bound what is in flight, per stream
        self.client.max_queued_messages_set(0)
        if up.username is not None:
            self.client.username_pw_set(up.username, password)
        if up.tls_ca is not None:
            self.client.tls_set(ca_certs=str(up.tls_ca), certfile=str(up.tls_cert) if up.tls_cert else None,
                                keyfile=str(up.tls_key) if up.tls_key else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
        props.SessionExpiryInterval = up.session_expiry_s
        self.client.connect_async(up.host, up.port, keepalive=up.keepalive, clean_start=False, properties=props)

        self.streams = Streams(cfg, key, clock, up.max_inflight)
        self.windows = self.streams.windows
        self._mids: dict[int, str] = {}  # paho message id -> stream, for the batches in flight
        self.connected = threading.Event()
        self.stop_event = threading.Event()
        self.batches_sent = 0
        self.thread: threading.Thread | None = None
        self._sock_open = False
        self._attempt = 0
        self._next_try = 0.0
        self._busy = False
        self._connected_at = 0.0
        self._refused: dict[str, int] = {}  # stream -> refusals in a row (ACL, quota)
        self._hold: dict[str, float] = {}  # stream -> monotonic time before which it waits
        self._last_ack: bytes | None = None  # the archive's last ack payload, to tell a new one
        self._heard = False  # a new ack arrived since the last resend: the archive is there
        self._archived_seen: dict[str, int] = {}
        self._stalled_since = time.monotonic()
        self.resends = 0

    @property
    def last_error(self) -> str:
        return self.streams.last_error

    @last_error.setter
    def last_error(self, v: str) -> None:
        self.streams.last_error = v

    def topic(self, kind: str) -> str:
        return wire.topic(self.up.prefix, self.gateway, kind)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="forward", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def status(self) -> dict[str, Any]:
        """Live state for ``Gateway.status`` and the dashboard (safe from any thread)."""
        return {"connected": self.connected.is_set(), "error": self.last_error, "batches_sent": self.batches_sent,
                "streams": self.streams.status()}

    def run(self) -> None:
        log.info("forwarding to %s:%d as %s (topics %s/…)", self.up.host, self.up.port, self.up.client_id,
                 self.topic("")[:-1])
        while not self.stop_event.is_set():
            try:
                self._round()
            except JournalError as exc:  # e.g. disk full: cursors stay where they were; retry
                log.error("forwarder cannot save its cursors: %s", exc)
                self.stop_event.wait(1.0)
            except Exception:  # the forwarder must survive anything; the journal is the record
                log.exception("unexpected error in the forwarder; retrying")
                self.stop_event.wait(1.0)
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.streams.persist()
            if self._sock_open:
                self.client.disconnect()
                self.client.loop(timeout=0.1)
            self.streams.link(False, "stopped")
        except Exception:
            log.exception("forwarder shutdown")
        finally:
            self.streams.close()

    # -- one round ---------------------------------------------------------------------
    def _round(self) -> None:
        if not self._sock_open:
            wait = self._next_try - time.monotonic()
            if wait > 0:
                self.stop_event.wait(min(wait, 0.5))
                return
            try:
                self.client.reconnect()
                self._sock_open = True
            except (OSError, ValueError) as exc:  # refused, unreachable, TLS handshake
                self._failed(f"cannot connect to {self.up.host}:{self.up.port}: {exc}")
                return
        rc = self.client.loop(timeout=0.02 if self._busy else 0.1)
        if rc != mqtt.MQTT_ERR_SUCCESS or not self._sock_open:
            self._sock_open = False
            self._failed(self.last_error or f"connection lost ({mqtt.error_string(rc)})")
            return
        if self.connected.is_set():
            if self._attempt and time.monotonic() - self._connected_at > STABLE_S:
                self._attempt = 0  # a link that held is a fresh start, even with nothing to send
            self._pump()
            self._resend_stalled()
        self.streams.persist()

    def _failed(self, why: str) -> None:
        self._attempt += 1
        delay = backoff_s(self._attempt, self.rand, base=0.5, cap=float(self.up.reconnect_max_s))
        self._next_try = time.monotonic() + delay
        if self._attempt == 1 or why != self.last_error:
            log.warning("upstream: %s; retrying with backoff (next in %.1f s)", why, delay)
        self.streams.link(False, why)

    def _pump(self) -> None:
        busy = False
        now = time.monotonic()
        for stream in ORDER:
            w = self.windows[stream]
            if self._hold.get(stream, 0.0) > now:  # refused by the broker: wait, do not hammer it
                continue
            while w.room():
                batch = self.streams.next_batch(stream, w.head)
                if batch is None:
                    break
                info = self.client.publish(self.topic(stream), batch.payload, qos=1)
                # NO_CONN: paho keeps the message and sends it after the reconnect
                self._mids[info.mid] = stream
                w.push(info.mid, batch.last)
                self.batches_sent += 1
            busy = busy or w.in_flight > 0
        self._busy = busy

    def _resend_stalled(self) -> None:
        """Send again from the ``archived`` cursors what the broker took but the archive never
        acknowledged, once it has stalled ``resend_s`` and the archive has spoken since.

        A PUBACK only says the central broker has a batch: with no archive session there yet
        (the archive first started after the gateways), a broker restarted without its
        persistence, or an archive session that expired, the broker drops it, and without
        this the archive would never get those records and retention never prune them. A
        new ack (the archive re-publishes its acks at every connect) is the sign that it is
        there to take them; an archive that is merely down gets no copies meanwhile, at most
        one after each of its own restarts, which it drops as duplicates.
        """
        now = time.monotonic()
        archived = self.streams.archived
        behind = [s for s in ("records", "blocks", "anchors") if self.windows[s].sent > archived[s]]
        if not behind or archived != self._archived_seen:
            self._archived_seen = dict(archived)
            self._stalled_since = now
            return
        if not self._heard or now - self._stalled_since < self.up.resend_s:
            return
        if any(self.windows[s].in_flight for s in behind):
            return
        log.warning("upstream: the archive has acknowledged nothing new for %.0f s though the broker took more "
                    "(%s); sending again from the archive's cursors", now - self._stalled_since,
                    ", ".join(f"{s} sent {self.windows[s].sent}, archived {archived[s]}" for s in behind))
        for s in behind:
            self.windows[s].rewind(archived[s])
        self.resends += 1
        self._heard = False
        self._stalled_since = now

    # -- paho callbacks (run inside client.loop(), on this thread) -----------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self.last_error = f"broker {self.up.host}:{self.up.port} refused the connection: {reason}"
            log.error("upstream: %s", self.last_error)
            return
        # MQTT 5 lets a broker disconnect a client that exceeds the Receive Maximum it announced
        # (Mosquitto: max_inflight_messages, 20 by default), and paho does not enforce it:
        # share it between the four streams, one slot left for the hello.
        rmax = int(getattr(properties, "ReceiveMaximum", 65535) or 65535)
        per = max(1, min(self.up.max_inflight, (rmax - 1) // len(self.windows)))
        for w in self.windows.values():
            w.limit = per
        log.info("upstream connected to %s:%d (session present: %s)", self.up.host, self.up.port,
                 flags.session_present)
        self._connected_at = time.monotonic()
        client.subscribe(self.topic("ack"), qos=1)
        client.publish(self.topic("hello"), self.streams.hello, qos=1, retain=True)
        self.connected.set()
        self.streams.link(True)

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self.connected.clear()
        self._sock_open = False
        if not self.stop_event.is_set():
            self.last_error = f"disconnected from {self.up.host}:{self.up.port}: {reason}"

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        stream = self._mids.pop(mid, None)
        if stream is None:
            return  # the hello, or a batch of a window that was reset
        w = self.windows[stream]
        if reason.is_failure:
            # The broker refused the batch (ACL, quota): the stream resends from its cursor
            # after a backoff (the other streams go on, if the broker keeps the connection).
            n = self._refused[stream] = self._refused.get(stream, 0) + 1
            delay = backoff_s(n, self.rand, base=1.0, cap=float(self.up.reconnect_max_s))
            self._hold[stream] = time.monotonic() + delay
            self.last_error = f"broker refused a {stream} batch: {reason}"
            if n == 1:
                log.error("upstream: %s; resending from %d after a backoff", self.last_error, w.sent + 1)
            self._mids = {m: s for m, s in self._mids.items() if s != stream}
            w.reset()
            return
        # The backoff starts over only once the broker takes data again, not at CONNACK: a
        # broker that accepts the connection and then drops it (e.g. Mosquitto 2.0.11 after a
        # denied PUBLISH, measured) must not be reconnected to in a tight loop.
        self._attempt = 0
        self._refused.pop(stream, None)
        w.ack(mid)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.topic("ack"):
            payload = bytes(msg.payload)
            if payload != self._last_ack:  # the same retained ack again at our reconnect is not news
                self._last_ack = payload
                self._heard = True
            self.streams.take_ack(payload, msg.topic)
