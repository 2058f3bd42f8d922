"""MQTT 5 transport (paho-mqtt 2.x): QoS 1, persistent session, ack only after commit.

- ``manual_ack=True``: paho does not PUBACK when ``on_message`` returns; the pipeline calls
  the message's ``ack`` after the journal COMMIT that holds it, in arrival order (MQTT 5
  §4.6 wants PUBACKs in the order the PUBLISHes arrived).
- ``clean_start=False`` + a long Session Expiry + a fixed client id: while the gateway is
  down the broker queues QoS 1 messages for it (see systemd/mosquitto-traceseal.conf for
  the broker limits this relies on; Mosquitto's default drops past 1,000).
- Receive Maximum asks the broker to bound un-acknowledged messages in flight; Mosquitto
  2.0.11 does not honour it with batched acks (measured), so the gateway's inbox is bounded
  too (gateway/app/service.py) and a full inbox back-pressures this thread.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway.core.configfiles import read_secret
from gateway.transports.inbound import Inbound
from gateway.transports.settings import MqttConfig

log = logging.getLogger("traceseal.mqtt")


class MqttTransport:
    def __init__(self, cfg: MqttConfig, deliver: Callable[[Inbound], None], extra_topics: tuple[str, ...] = (),
                 *, section: str = "mqtt") -> None:
        self.cfg = cfg
        self.topics = tuple(dict.fromkeys(cfg.topics + extra_topics))
        self.deliver = deliver
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        if cfg.username is not None:
            password = None
            if cfg.password_file is not None:  # a secret: 0600 like the keys; ConfigError naming the key
                password = read_secret(f"{section}.password_file", cfg.password_file, "MQTT password")
            self.client.username_pw_set(cfg.username, password)
        if cfg.tls_ca is not None:
            self.client.tls_set(ca_certs=str(cfg.tls_ca), certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
                                keyfile=str(cfg.tls_key) if cfg.tls_key else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it unannotated
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        props.ReceiveMaximum = self.cfg.receive_maximum
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive,
                                  clean_start=False, properties=props)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker %s:%d refused connection: %s", self.cfg.host, self.cfg.port, reason)
            return
        log.info("connected to %s:%d (session present: %s)", self.cfg.host, self.cfg.port, flags.session_present)
        # Re-subscribe even with a present session: harmless, and it repairs a session the
        # broker lost (restart without persistence).
        client.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: list[ReasonCode],
                      properties: Properties | None) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:  # e.g. an ACL that forbids the topic: say so, loudly
            log.error("broker refused subscriptions %s: %s", list(self.topics), failed)
            return
        log.info("subscribed to %s", ", ".join(self.topics))
        self.connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self.connected.clear()
        log.warning("disconnected from broker: %s; paho reconnects with backoff", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            client.ack(mid, qos)

        self.deliver(Inbound("mqtt", msg.topic, bytes(msg.payload), dup=bool(msg.dup), ack=ack if qos > 0 else None))
