"""Publish a fleet's messages over MQTT (QoS 1), paced in real time, counting what was acked.

The paho client runs its network loop in a thread and reconnects by itself after a broker
loss; QoS 1 messages published meanwhile stay in paho's queue and go out after the
reconnect. We wait for PUBACKs through ``on_publish`` rather than
``MQTTMessageInfo.wait_for_publish``: for a message published while disconnected, paho sets
``rc = MQTT_ERR_NO_CONN`` and ``wait_for_publish`` raises at once, although the message is
still queued and will be delivered. A message is counted only once its PUBACK arrived.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from .errors import PublishError
from .fleet import Fleet, Outgoing
from .stats import Stats


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = ""  # empty: let paho generate one
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 30.0  # covers a broker restart; longer means the broker is gone


class _Acks:
    """Message ids the broker has acknowledged, filled from paho's network thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._acked: set[int] = set()

    def add(self, mid: int) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def wait(self, mids: list[int], timeout_s: float) -> list[int]:
        """Wait for all ``mids``; return the ones still missing at the deadline."""
        deadline = time.monotonic() + timeout_s
        pending = set(mids)
        with self._cond:
            while True:
                done = pending & self._acked
                self._acked -= done  # mids wrap at 65535: forget them once used
                pending -= done
                left = deadline - time.monotonic()
                if not pending or left <= 0:
                    return sorted(pending)
                self._cond.wait(left)


class MqttLink:
    """One paho 2.x client: connect, keep reconnecting, publish QoS 1, wait for PUBACKs."""

    def __init__(self, cfg: BrokerConfig) -> None:
        self.cfg = cfg
        self.connects = 0
        self._connected = threading.Event()
        self._answered = threading.Event()  # any CONNACK, so a refusal does not wait out
        self._refused: str | None = None
        self._acks = _Acks()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.client_id)
        if cfg.username is not None:
            c.username_pw_set(cfg.username, cfg.password)
        c.reconnect_delay_set(min_delay=1, max_delay=8)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
        reason: Any, properties: Any,
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:
            self.connects += 1
            self._connected.set()
        self._answered.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
        reason: Any, properties: Any,
    ) -> None:
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        self._acks.add(mid)

    def _where(self) -> str:
        return f"{self.cfg.host}:{self.cfg.port}"

    def connect(self) -> None:
        """Connect and wait for the CONNACK; errors name the broker and the reason."""
        try:
            self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        except OSError as exc:
            raise PublishError(f"cannot connect to MQTT broker {self._where()}: {exc}") from exc
        self.client.loop_start()
        if not self._answered.wait(self.cfg.connect_timeout_s) or self._refused:
            self.close()
            why = self._refused or f"no CONNACK within {self.cfg.connect_timeout_s} s"
            raise PublishError(f"MQTT broker {self._where()} refused us: {why}")

    def publish_all(self, messages: list[Outgoing]) -> None:
        """Publish in order (one client keeps per-topic order) and wait for every PUBACK."""
        if self._refused:
            raise PublishError(f"MQTT broker {self._where()} refused us: {self._refused}")
        mids = [self.client.publish(m.topic, m.payload, qos=1).mid for m in messages]
        missing = self._acks.wait(mids, self.cfg.ack_timeout_s)
        if missing:
            state = "connected" if self._connected.is_set() else "disconnected"
            raise PublishError(
                f"no PUBACK for {len(missing)} of {len(mids)} messages after "
                f"{self.cfg.ack_timeout_s} s from {self._where()} ({state})"
            )

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(
    fleet: Fleet,
    link: MqttLink,
    *,
    rate: float,
    count: int | None,
    stats: Stats | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Stats:
    """Publish ``count`` ticks (None: until ``stop``), ``rate`` ticks per real second.

    Tick ``k`` is due at ``start + k / rate``. After an outage we do not skip ticks: like a
    probe flushing its buffer, the backlog goes out as fast as the broker acks it, and the
    ``t`` field still carries the simulated time of each sample. Pass ``stats`` in to keep
    the counts of a run that raised.
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0 messages per second, got {rate}")
    stats = stats if stats is not None else Stats()
    t0 = clock()
    k = 0
    try:
        while (count is None or k < count) and not (stop is not None and stop.is_set()):
            delay = t0 + k / rate - clock()
            if delay > 0:
                sleep(delay)
            tick = fleet.tick(k)
            link.publish_all(tick.messages)
            for msg in tick.messages:
                stats.record(msg)
            stats.record_tick(tick.t_ms, len(tick.silent))
            k += 1
    finally:
        stats.elapsed_s = clock() - t0
        stats.reconnects = link.reconnects
    return stats
