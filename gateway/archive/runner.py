"""The archive's I/O around its core (gateway/archive/consumer.py ``Archive``): the MQTT
intake, the one writer thread that owns the store, the PUBACKs and retained acks after each
commit, metrics, and the systemd loop. Functions over the ``Archive`` (which keeps the state
the tests and metrics read: ``transport``, ``thread``, ``inbox``, ``store_ok``), so the
verification core reads without the threads and the threads without the rules.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.archive.config import ArchiveConfig
from gateway.archive.items import Ack, PartialCommit
from gateway.archive.metrics import serve
from gateway.archive.store import Store, StoreError
from gateway.transports.inbound import Inbound
from gateway.transports.mqtt import MqttTransport

log = logging.getLogger("traceseal.archive")


class Archive(Protocol):
    """What the runner asks of the archive (``gateway.archive.consumer.Archive``), whose
    state it runs on: declared here so this module does not import the one that calls it."""

    cfg: ArchiveConfig
    store: Store
    now_ms: Callable[[], int]
    keys: dict[str, tuple[str, Ed25519PublicKey]]
    published: dict[str, tuple[int, int, int]]
    inbox: queue.Queue[Inbound]
    stop_event: threading.Event
    thread: threading.Thread | None
    transport: Any
    store_ok: bool
    metrics: Any
    notifier: Any

    def process(self, msgs: Sequence[tuple[str, bytes]]) -> set[str]: ...

    def ack(self, gw: str) -> Ack: ...

    def publish_acks(self, gateways: Sequence[str], *, force: bool = False) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def publish_acks(a: Archive, gateways: Sequence[str], *, force: bool = False) -> None:
    """The retained per-gateway ack, for each of ``gateways`` whose ack moved (or all, ``force``)."""
    if a.transport is None:
        return
    for gw in gateways:
        ack = a.ack(gw)
        if not force and a.published.get(gw) == ack.as_tuple():
            continue
        payload = json.dumps({"v": 1, "gateway": gw, "records": ack.records, "blocks": ack.blocks,
                              "anchors": ack.anchors, "time_ms": a.now_ms()}, sort_keys=True)
        a.transport.client.publish(f"{a.cfg.prefix}/{gw}/ack", payload, qos=1, retain=True)
        a.published[gw] = ack.as_tuple()


def start(a: Archive) -> None:
    """The writer thread and metrics before the MQTT intake, so nothing is taken unserved."""
    a.transport = MqttTransport(a.cfg.broker, a.inbox.put)
    a.thread = threading.Thread(target=writer, args=(a,), name="archive-writer", daemon=True)
    a.thread.start()
    if a.cfg.metrics_listen is not None:
        a.metrics = serve(a, *a.cfg.metrics_listen)
    a.transport.start()
    log.info("archive started: %d gateways enrolled, topics %s", len(a.keys), ", ".join(a.transport.topics))


def stop(a: Archive) -> None:
    """Intake first, then the writer (what it holds un-acked is redelivered), then the store."""
    if a.transport is not None:
        a.transport.stop()  # intake first; what is queued but un-acked is redelivered later
    a.stop_event.set()
    if a.thread is not None:
        a.thread.join(timeout=15)
    if a.metrics is not None:
        server, collector = a.metrics
        server.shutdown()
        server.server_close()
        collector.close()
        a.metrics = None
    a.store.close()


def run_forever(a: Archive) -> None:
    """`traceseal archive run`: until SIGTERM/SIGINT, telling systemd when ready and stopping."""
    signal.signal(signal.SIGTERM, lambda *_: a.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: a.stop_event.set())
    import sdnotify

    a.notifier = sdnotify.SystemdNotifier()  # a no-op outside systemd (no NOTIFY_SOCKET)
    a.start()
    a.notifier.notify("READY=1")
    try:
        while not a.stop_event.wait(1.0):
            pass
    finally:
        a.notifier.notify("STOPPING=1")
        a.stop()


def ack_done(a: Archive, done: Sequence[Inbound], touched: set[str]) -> None:
    """Durable now: PUBACK in arrival order, then the retained per-gateway acks."""
    for m in done:
        if m.ack is None:
            continue
        try:
            m.ack()
        except Exception:  # the broker redelivers it: a counted duplicate, never a loss
            log.exception("PUBACK of a stored message failed")
    try:
        a.publish_acks(sorted(touched))
    except StoreError as exc:
        log.error("could not read acks to publish: %s", exc)


def writer(a: Archive) -> None:
    """The one thread that owns the store: batch the inbox, process, acknowledge after the commit."""
    pending: list[Inbound] = []
    failures = 0
    was_connected = False
    last_watchdog = 0.0
    while not a.stop_event.is_set():
        now = time.monotonic()
        if a.notifier is not None and now - last_watchdog > 5:
            # fed by this loop, so a writer stuck in the store (not merely failing and
            # retrying) stops feeding it and systemd restarts the archive
            a.notifier.notify("WATCHDOG=1")
            last_watchdog = now
        connected = a.transport is not None and a.transport.connected.is_set()
        if connected and not was_connected:
            try:  # the retained acks again at each (re)connect: a broker may have lost them
                a.publish_acks(sorted(a.keys), force=True)
            except StoreError:
                connected = False  # try again next round
        was_connected = connected
        if not pending:
            try:
                pending = [a.inbox.get(timeout=0.25)]
            except queue.Empty:
                continue
            while len(pending) < a.cfg.batch_messages:
                try:
                    pending.append(a.inbox.get_nowait())
                except queue.Empty:
                    break
        try:
            touched = a.process([(m.topic, m.payload) for m in pending])
        except StoreError as exc:  # not committed: keep the batch, ack nothing, retry
            if isinstance(exc, PartialCommit):  # isolating, the store failed: ack what it took
                ack_done(a, pending[:exc.done], exc.touched)
                pending = pending[exc.done:]
            failures += 1
            if a.store_ok:
                log.error("archive store cannot commit (%s); acknowledgements stopped", exc)
            a.store_ok = False
            a.stop_event.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
            continue
        except Exception:  # a bug must not stop the archive; the batch stays un-acked
            log.exception("unexpected error in the archive writer; batch kept for retry")
            a.stop_event.wait(1.0)
            continue
        ack_done(a, pending, touched)
        pending, failures = [], 0
        if not a.store_ok:
            log.warning("archive store writable again; resuming acknowledgements")
        a.store_ok = True
