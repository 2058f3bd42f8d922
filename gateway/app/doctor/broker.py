"""The broker check of ``traceseal doctor``: beyond "port open", it proves the broker KEEPS
QoS 1 messages for an absent persistent session (see the package docstring for why and how).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from typing import Any

from gateway.app.config import Config, MqttConfig
from gateway.app.doctor.check import Check
from gateway.core.configfiles import read_secret
from gateway.core.errors import ConfigError

PROBE_MESSAGES = 1100
MOSQUITTO_HINT = ("the broker drops queued QoS 1 messages (Mosquitto's default max_queued_messages 1000): "
                  "sudo cp systemd/mosquitto-traceseal.conf /etc/mosquitto/conf.d/traceseal.conf && "
                  "sudo systemctl restart mosquitto")


class _Probe:
    """A paho client that counts distinct payloads and reports CONNACK/SUBACK."""

    def __init__(self, cfg: MqttConfig, client_id: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.cfg = cfg
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if cfg.username is not None:
            pw = read_secret("mqtt.password_file", cfg.password_file, "MQTT password") if cfg.password_file else None
            self.c.username_pw_set(cfg.username, pw)
        if cfg.tls_ca is not None:
            self.c.tls_set(ca_certs=str(cfg.tls_ca), certfile=str(cfg.tls_cert) if cfg.tls_cert else None,
                           keyfile=str(cfg.tls_key) if cfg.tls_key else None)
        self.connack: Any = None
        self.suback: list[Any] | None = None
        self.got: set[bytes] = set()
        self.ev = threading.Event()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.ev.set()

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[Any], props: Any) -> None:
        self.suback = rcs
        self.ev.set()

    def _on_message(self, c: Any, u: Any, m: Any) -> None:
        self.got.add(bytes(m.payload))

    def connect(self, *, clean_start: bool, expiry_s: int, timeout: float = 10.0) -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho ships it untyped
        props.SessionExpiryInterval = expiry_s
        self.ev.clear()
        self.c.connect(self.cfg.host, self.cfg.port, keepalive=30, clean_start=clean_start, properties=props)
        self.c.loop_start()
        if not self.ev.wait(timeout):
            raise TimeoutError("no CONNACK")
        return self.connack

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[Any]:
        self.ev.clear()
        self.c.subscribe(topic, qos=1)
        if not self.ev.wait(timeout) or self.suback is None:
            raise TimeoutError("no SUBACK")
        return self.suback

    def close(self) -> None:
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()

    def forget(self) -> None:
        """Reconnect clean with expiry 0 so the broker drops the probe's session."""
        try:
            self.close()
            with contextlib.suppress(OSError, TimeoutError, ValueError):  # best effort: it expires in 300 s anyway
                self.connect(clean_start=True, expiry_s=0, timeout=5)
        finally:
            self.close()

    def wait_count(self, n: int, timeout: float, quiet: float = 2.0) -> int:
        deadline, last, seen = time.monotonic() + timeout, time.monotonic(), 0
        while time.monotonic() < deadline and len(self.got) < n:
            if len(self.got) != seen:
                seen, last = len(self.got), time.monotonic()
            elif time.monotonic() - last > quiet:
                break
            time.sleep(0.02)
        return len(self.got)


def check_broker(cfg: Config, *, queue_probe: bool = True, messages: int = PROBE_MESSAGES) -> list[Check]:
    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    try:
        socket.create_connection((m.host, m.port), timeout=5).close()
    except OSError as exc:
        return [Check("broker", "FAIL", f"{where}: not reachable ({exc})",
                      "start the broker (systemctl status mosquitto) and check mqtt.host/mqtt.port")]
    run = uuid.uuid4().hex[:10]
    try:
        a = _Probe(m, f"traceseal-doctor-{run}-a")
    except (ConfigError, OSError, ValueError) as exc:  # password or TLS files: named above as well
        return [Check("broker", "FAIL", f"{where}: cannot set up an MQTT client ({exc})",
                      "fix the mqtt files reported above")]
    try:
        rc = a.connect(clean_start=True, expiry_s=300)
    except (OSError, TimeoutError) as exc:
        a.close()
        return [Check("broker", "FAIL", f"{where}: MQTT CONNECT failed ({exc})",
                      "check mqtt TLS settings and the listener")]
    if rc.is_failure:
        a.close()
        return [Check("broker", "FAIL", f"{where}: refused our credentials ({rc})",
                      "check mqtt.username / mqtt.password_file against the broker's password_file")]
    out = [Check("broker", "PASS", f"{where}: MQTT 5 CONNECT accepted" + (f" as {m.username}" if m.username else ""))]
    if queue_probe:
        out.append(_queue_probe(m, a, run, messages))
    a.close()
    return out


def _queue_probe(m: MqttConfig, a: _Probe, run: str, messages: int) -> Check:
    topic = f"traceseal/doctor/{run}"
    acl_fix = "add `topic readwrite traceseal/doctor/#` under `user <gateway user>` in the broker's ACL file"
    b = _Probe(m, f"traceseal-doctor-{run}-b")
    try:
        if any(r.is_failure for r in a.subscribe(topic)):
            return Check("broker queue", "WARN", f"could not subscribe to the probe topic {topic} (ACL?)", acl_fix)
        b.connect(clean_start=True, expiry_s=0)
        b.c.publish(topic, b"live", qos=1).wait_for_publish(10)
        if a.wait_count(1, timeout=5) < 1:
            return Check("broker queue", "WARN",
                         f"a probe message on {topic} was not delivered (ACL?): queueing not tested", acl_fix)
        a.close()  # away, with its session kept by the broker (expiry 300 s)
        infos = [b.c.publish(topic, f"q{i}".encode(), qos=1) for i in range(messages)]
        for info in infos:
            info.wait_for_publish(30)
        a.got.clear()
        a.connect(clean_start=False, expiry_s=300)
        got = a.wait_count(messages, timeout=60)
        if got < messages:
            return Check("broker queue", "FAIL",
                         f"{got} of {messages} QoS 1 messages queued for an absent session were kept",
                         MOSQUITTO_HINT)
        return Check("broker queue", "PASS",
                     f"all {messages} QoS 1 messages queued for an absent session were delivered")
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
        return Check("broker queue", "WARN", f"queue probe could not run: {exc}", "re-run; check the broker log")
    finally:
        b.close()
        a.forget()
