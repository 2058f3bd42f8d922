"""A blocking QoS 1 publisher for tests: returns only when the broker acknowledged each message."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import paho.mqtt.client as mqtt


class Publisher:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise TimeoutError(f"broker did not PUBACK {topic} within {timeout}s")

    def publish_all(self, items: Iterable[tuple[str, bytes]], timeout: float = 30.0) -> int:
        infos = [self.client.publish(t, p, qos=1) for t, p in items]
        for i in infos:
            i.wait_for_publish(timeout)
            if not i.is_published():
                raise TimeoutError("broker did not PUBACK every message")
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
