"""The running gateway: wires transports, the ingest pipeline, block sealing and anchoring.

Threads: transports (paho's loop) only enqueue; ONE writer thread owns the ingest path
(parse, admit, seal, journal commit, ack, block sealing) so sequence numbers and sensor
counters need no locks; the anchor thread owns the ledger. Each thread has its own
SQLite connection (WAL lets them run side by side).
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from typing import Any

from gateway.app.config import Config
from gateway.app.dashboard import GatewaySource
from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.ledgers import make_ledger
from gateway.chain.retention import Pruner
from gateway.chain.rotation import JournalLock
from gateway.core.clock import Clock, SystemClock
from gateway.core.errors import JournalError
from gateway.forward import Forwarder, HttpsForwarder, read_password
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.station import Station
from gateway.transports.inbound import Inbound
from gateway.transports.mqtt import MqttTransport
from gateway.transports.serial import SerialPortConfig, SerialTransport
from gateway.transports.w1 import W1Poller
from ledger_client.keys import load_private_key, public_hex
from ledger_client.ledger import Ledger

log = logging.getLogger("traceseal.gateway")
WRITER_STUCK_S = 20.0  # below WatchdogSec in systemd/traceseal.service


class Gateway:
    def __init__(self, cfg: Config, *, clock: Clock | None = None, ledger: Ledger | None = None,
                 with_mqtt: bool = True, pin_factory: Any = None) -> None:
        """Open everything in flow order; nothing runs until ``start``. The one place where
        the config slices meet: each part below takes only its own."""
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.key = load_private_key(cfg.key_file)  # refuses keys readable by others
        if cfg.upstream.enabled:  # a readable upstream password or TLS key stops the start before anything opens
            read_password(cfg.upstream)
        self.public_key = public_hex(self.key)
        self.stop_event = threading.Event()
        self.journal_ok = True
        self.threads: list[threading.Thread] = []
        self._notify: Any = None
        self._open_journal_and_chain(ledger)
        self._open_transports(with_mqtt)
        self._open_station_and_surfaces(pin_factory)

    def _open_journal_and_chain(self, ledger: Ledger | None) -> None:
        cfg = self.cfg
        self.journal = Journal(cfg.journal.path, synchronous=cfg.journal.synchronous,
                               quarantine_raw_bytes=cfg.journal.quarantine_raw_bytes,
                               quarantine_max_rows=cfg.journal.quarantine_max_rows,
                               busy_timeout_ms=cfg.journal.busy_timeout_ms)
        self.journal.bind_identity(cfg.gateway_id, self.public_key)
        self.journal.set_forwarding(cfg.upstream.enabled)  # retention asks Journal.archived_seq()
        self.sealer = Sealer(cfg.gateway_id, self.key, self.journal.next_seq())
        self.pipeline = Pipeline(cfg.ingest, self.journal, self.sealer, self.clock)
        self.blocks = BlockSealer(self.journal, self.key, cfg.gateway_id, self.clock,
                                  cfg.blocks.max_records, cfg.blocks.max_seconds)
        self.ledger = ledger or make_ledger(cfg.ledger, self.clock)
        self.anchor_journal = Journal(cfg.journal.path, synchronous=cfg.journal.synchronous)
        self.anchorer = Anchorer(self.anchor_journal, self.ledger, self.clock, cfg.gateway_id,
                                 poll_s=cfg.ledger.poll_s, min_interval_s=cfg.ledger.min_interval_s)

    def _open_transports(self, with_mqtt: bool) -> None:
        cfg = self.cfg
        # Bounded: memory stays flat however large the broker's backlog. Receive Maximum alone
        # does not bound it (measured on Mosquitto 2.0.11 with batched acks: 43k of a 50k
        # backlog in flight). A full inbox blocks paho's network thread, so the broker's TCP
        # stream backs up and the messages wait, durably, at the broker.
        self.inbox: queue.Queue[Inbound] = queue.Queue(maxsize=max(2 * cfg.journal.batch_max,
                                                                   2 * cfg.mqtt.receive_maximum))
        self.mqtt = None
        if with_mqtt:
            self.mqtt = MqttTransport(cfg.mqtt, self.inbox.put, extra_topics=tuple(t for t, _ in cfg.routes))
        self.serial = None
        if cfg.serial:
            ports = [SerialPortConfig(s.name, s.path, baudrate=s.baudrate,
                                      poll_command=(s.poll.encode() + b"\r\n") if s.poll else None,
                                      poll_interval_s=s.poll_interval_s, resync_on_open=s.stream)
                     for s in cfg.serial]
            # Serial has no acknowledgement: a line is durable once the next group commit returns.
            self.serial = SerialTransport(ports, lambda port, raw: self.inbox.put(Inbound("serial", port, raw)))
        self.w1 = None
        if cfg.w1.enabled:
            self.w1 = W1Poller(lambda path, raw: self.inbox.put(Inbound("w1", path, raw)),
                               base_dir=str(cfg.w1.base_dir), interval_s=cfg.w1.interval_s)

    def _open_station_and_surfaces(self, pin_factory: Any) -> None:
        cfg = self.cfg
        self.station = Station(cfg.station, pin_factory=pin_factory)
        self.web = None
        if cfg.web is not None:
            from gateway.web.server import (
                WebServer,  # lazy: Flask and waitress load only with [web]
            )

            self.web = WebServer(GatewaySource(self), cfg.web)  # a bad token file is a ConfigError
        self.alarm_topic = f"traceseal/{cfg.gateway_id}/alarm"
        self.pruner = None
        if cfg.retention.days > 0:  # its own connection: deletes never run on the ingest writer's
            self.pruner = Pruner(Journal(cfg.journal.path, synchronous=cfg.journal.synchronous,
                                         busy_timeout_ms=cfg.journal.busy_timeout_ms), cfg.retention, self.clock,
                                 station=self.station)
        self.forwarder: Any = None
        if cfg.upstream.enabled:
            self.forwarder = (HttpsForwarder if cfg.upstream.transport == "https" else Forwarder)(cfg.forward, self.key,
                                                                                                   self.clock)

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        self._journal_lock = JournalLock(self.cfg.journal.path)  # `rotate-key` refuses while we hold it
        self._journal_lock.acquire()
        self.threads = [
            threading.Thread(target=self._writer, name="writer", daemon=True),
            threading.Thread(target=self.anchorer.run, args=(self.stop_event,), name="anchor", daemon=True),
        ]
        if self.pruner is not None:
            self.threads.append(threading.Thread(target=self.pruner.run, args=(self.stop_event,), name="retention",
                                                 daemon=True))
        for t in self.threads:
            t.start()
        if self.mqtt is not None:
            self.mqtt.start()
        for source in (self.serial, self.w1):
            if source is not None:
                source.start()
        if self.web is not None:
            self.web.start()
        if self.forwarder is not None:
            self.forwarder.start()
        log.info("gateway %s started (key %s…, journal %s, ledger %s)", self.cfg.gateway_id,
                 self.public_key[:16], self.cfg.journal.path, self.ledger.kind)

    def stop(self) -> None:
        if self.web is not None:
            self.web.stop()
        if self.mqtt is not None:
            self.mqtt.stop()  # stop intake first; what is queued but unacked is redelivered later
        for source in (self.serial, self.w1):
            if source is not None:
                source.stop()
        self._drain_remaining()
        self.stop_event.set()
        self.anchorer.wake()
        for t in self.threads:
            t.join(timeout=10)
        if self.forwarder is not None:
            self.forwarder.stop()
        try:  # a clean stop leaves nothing unsealed; the next start anchors it
            self.blocks.maybe_seal(force=True)
        except Exception:
            log.exception("could not seal the last block at shutdown; it is sealed at next start")
        self.station.close()
        self.ledger.close()
        if self.pruner is not None:
            self.pruner.journal.close()
        self.journal.close()
        self.anchor_journal.close()
        if getattr(self, "_journal_lock", None) is not None:
            self._journal_lock.release()

    def _drain_remaining(self) -> None:
        """Commit what serial/1-wire already delivered: they cannot redeliver after a stop."""
        for _ in range(3):
            if self.inbox.empty():
                return
            time.sleep(0.3)  # the writer thread is still running and takes them

    def run_forever(self) -> None:
        """Foreground service with SIGTERM/SIGINT handling and systemd notify."""
        signal.signal(signal.SIGTERM, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop_event.set())
        try:
            import sdnotify

            self._notify = sdnotify.SystemdNotifier()
        except ImportError:  # pragma: no cover - sdnotify is a dependency
            self._notify = None
        self.start()
        if self._notify:
            self._notify.notify("READY=1")
        try:
            while not self.stop_event.wait(1.0):
                pass
        finally:
            if self._notify:
                self._notify.notify("STOPPING=1")
            self.stop()

    # -- the writer thread -----------------------------------------------------------
    def _drain(self, wait: bool = True) -> list[Inbound]:
        try:
            first = self.inbox.get(timeout=0.25) if wait else self.inbox.get_nowait()
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.cfg.journal.batch_wait_ms / 1000
        while len(batch) < self.cfg.journal.batch_max:
            try:
                batch.append(self.inbox.get_nowait())
                continue
            except queue.Empty:
                pass
            # Sleep until the next message or the deadline, not in 0.5-ms polls: at a trickle
            # the polling cost more CPU than the readings (bench/README.md, proposal 4).
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _writer(self) -> None:
        pending: list[Inbound] = []
        extra: list[dict[str, Any]] = []  # rule outputs and inputs waiting to be sealed
        failures = 0
        last_watchdog = 0.0
        try:
            extra = self.station.replay(self.journal)
        except Exception:  # a rule bug must not stop ingest: readings still get journaled
            log.exception("station rules could not replay the journal; alarms are degraded")
        starting = True  # the restart (and what the start tick derives) is sealed alone, before
        # any reading of this run: a reading already waiting would otherwise come first in the
        # journal and the outage would be judged a gap in readings, not a restart
        healthy = time.monotonic()  # last pass without an unexpected error (the watchdog's food)
        while not self.stop_event.is_set():
            if not pending and not starting:
                pending = self._drain(wait=not extra)
            try:
                extra += self.station.due(self.clock.now_ms())
                if pending or extra:
                    res = self.pipeline.process(pending, extra)
                    self._ack(res.durable)  # durable now: acknowledge, in arrival order
                    pending, extra = res.retry, res.retry_extra
                    if res.records:
                        more, urgent = self.station.feed(res.records, self.clock.now_ms())
                        extra += more
                        if any(r.type == "alarm" for r in res.records):
                            self._publish_alarms()
                        if urgent:  # an alarm: seal its block now and anchor it ahead of the schedule
                            self.blocks.maybe_seal(force=True)
                            self.anchorer.wake()
                    if res.error is not None:  # committed what it could; the journal refuses the rest
                        raise res.error
                self.blocks.maybe_seal()
                if not self.journal_ok:
                    log.warning("journal writable again; resuming acknowledgements")
                    extra += self.station.fault_cleared("journal-unwritable", self.clock.now_ms())
                self.journal_ok, failures, starting = True, 0, False
                healthy = time.monotonic()
            except JournalError as exc:
                # Disk full or I/O error: keep the batch, do NOT ack; the broker holds the rest.
                failures += 1
                if self.journal_ok:
                    log.error("journal cannot commit (%s); acknowledgements stopped", exc)
                    self.station.fault("journal-unwritable", self.clock.now_ms(), str(exc))
                    self._publish_alarms()
                self.journal_ok = False
                healthy = time.monotonic()  # a restart would not make the disk writable; the panel says it
                self.stop_event.wait(min(5.0, 0.1 * 2 ** min(failures, 6)))
            except Exception:  # the writer must survive anything; messages are isolated by the pipeline
                log.exception("unexpected error in the writer loop (after the batch was handled)")
                self.stop_event.wait(1.0)
            now = time.monotonic()
            # Fed only while passes complete: a writer stuck on the same error for longer than
            # systemd's WatchdogSec (30 s) is restarted instead of looking alive for ever.
            if self._notify and now - last_watchdog > 5 and now - healthy < WRITER_STUCK_S:
                self._notify.notify("WATCHDOG=1")
                last_watchdog = now

    def _ack(self, messages: list[Inbound]) -> None:
        """Acknowledge committed messages. One failed ack must not make the writer process the
        batch again (its counters would then read as replays): the broker redelivers an
        unacknowledged message with DUP set, which is kept once."""
        for m in messages:
            if m.ack is None:
                continue
            try:
                m.ack()
            except Exception:
                log.exception("acknowledging a committed message failed; the broker will redeliver it")

    def _publish_alarms(self) -> None:
        """Retained alarm state for a central system; best effort (the journal is the record)."""
        if self.mqtt is None:
            return
        payload = json.dumps({"gateway": self.cfg.gateway_id, "at_ms": self.clock.now_ms(),
                              "active": self.station.active()}, sort_keys=True)
        self.mqtt.client.publish(self.alarm_topic, payload, qos=1, retain=True)

    def status(self) -> dict[str, Any]:
        """Safe from any thread: reads through a connection of its own, never the writer's."""
        ro = Journal(self.cfg.journal.path, readonly=True)
        try:
            s = ro.stats()
        finally:
            ro.close()
        s.update({"gateway": self.cfg.gateway_id, "public_key": self.public_key, "journal_ok": self.journal_ok,
                  "broker_connected": bool(self.mqtt and self.mqtt.connected.is_set()),
                  "ledger": {"kind": self.ledger.kind, **self.anchorer.status()},
                  "clock_synced": self.clock.synced(), "inbox": self.inbox.qsize()})
        if self.station.rule_errors:  # a rule bug skipped these inputs (the panel shows rules-degraded)
            s["rule_errors"] = dict(self.station.rule_errors)
        if self.pruner is not None:
            s["retention"] = {"days": self.cfg.retention.days, "last_run": self.pruner.last}
        if self.forwarder is not None:
            s["upstream"] = self.forwarder.status()
        return s
