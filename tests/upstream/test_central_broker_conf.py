"""The shipped central-broker config (systemd/mosquitto-central.conf and
systemd/traceseal-central.acl) on a real Mosquitto: it loads, and its ACL keeps each gateway
to its own topics and lets only the archive publish acks (an ack decides what a gateway's
retention may prune)."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from gateway.testing.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[2]
USERS = {"archive": "arch-pw", "station-01": "s1-pw", "station-02": "s2-pw"}
NOT_AUTHORIZED = 135


class CentralMosquitto(Mosquitto):
    """The shipped file itself, with only its paths moved into the temp folder, the TLS
    listener replaced by a loopback one, and the invoking user (as the harness does)."""

    def write_config(self) -> None:
        text = (REPO / "systemd" / "mosquitto-central.conf").read_text()
        text = text.replace("/var/lib/mosquitto/", f"{self.workdir}/").replace("/etc/mosquitto/", f"{self.workdir}/")
        text = re.sub(r"(?m)^listener 8883$", f"listener {self.port} 127.0.0.1", text)
        text = re.sub(r"(?m)^(cafile|certfile|keyfile|require_certificate) .*\n", "", text)
        text += f"user {pwd.getpwuid(os.getuid()).pw_name}\nlog_dest file {self.log}\n"
        self.conf.write_text(text)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d = tmp_path_factory.mktemp("central")
    (d / "traceseal-central.acl").write_text((REPO / "systemd" / "traceseal-central.acl").read_text())
    pw = d / "traceseal-central.passwd"
    for i, (user, secret) in enumerate(USERS.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, secret], check=True)
    pw.chmod(0o600)
    with CentralMosquitto(d) as m:
        yield m


class Client:
    def __init__(self, port: int, user: str | None, secret: str | None = None) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.done = threading.Event()
        self.connect_rc: Any = None
        self.pub_rc: Any = None
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}",
                             protocol=mqtt.MQTTv5)
        if user is not None:
            self.c.username_pw_set(user, secret if secret is not None else USERS[user])
        self.c.on_connect = self._on_connect
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = lambda *a: self.done.set()
        self.c.on_message = lambda c, u, msg: self.got.append((msg.topic, msg.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.connected.wait(10)

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connect_rc = rc
        self.connected.set()

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        self.pub_rc = rc
        self.done.set()

    def subscribe(self, topic: str) -> None:
        ok = threading.Event()
        self.c.on_subscribe = lambda *a: ok.set()
        self.c.subscribe(topic, qos=1)
        assert ok.wait(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def publish(port: int, user: str, topic: str, payload: bytes = b"{}") -> int | None:
    """The PUBACK's reason code (None: the broker dropped the connection instead)."""
    cl = Client(port, user)
    try:
        cl.c.publish(topic, payload, qos=1)
        cl.done.wait(10)
        return None if cl.pub_rc is None else int(cl.pub_rc.value)
    finally:
        cl.close()


def wait_for(cl: Client, item: tuple[str, bytes]) -> None:
    deadline = time.monotonic() + 10
    while item not in cl.got:
        assert time.monotonic() < deadline, f"{item} not delivered; got {cl.got}"
        time.sleep(0.02)


def test_the_shipped_central_config_avoids_deprecated_options() -> None:
    text = (REPO / "systemd" / "mosquitto-central.conf").read_text()
    assert not re.search(r"(?m)^message_size_limit", text)
    assert re.search(r"(?m)^max_packet_size \d+$", text) and re.search(r"(?m)^max_queued_messages 0$", text)


def test_gateways_stay_in_their_lane_and_only_the_archive_acks(broker: CentralMosquitto) -> None:
    port = broker.port
    archive, s2 = Client(port, "archive"), Client(port, "station-02")
    try:
        for stream in ("hello", "records", "alarms", "blocks", "anchors"):
            archive.subscribe(f"traceseal/up/+/{stream}")
        s2.subscribe("traceseal/up/station-02/ack")
        # the gateway's own streams pass
        assert publish(port, "station-01", "traceseal/up/station-01/records", b"own") == 0
        wait_for(archive, ("traceseal/up/station-01/records", b"own"))
        # another gateway's topic, and acks (its own or another's), are refused
        assert publish(port, "station-01", "traceseal/up/station-02/records", b"forged") == NOT_AUTHORIZED
        assert publish(port, "station-01", "traceseal/up/station-02/ack", b"forged-ack") == NOT_AUTHORIZED
        assert publish(port, "station-01", "traceseal/up/station-01/ack", b"self-ack") == NOT_AUTHORIZED
        # the archive acks; station-02 reads its own ack
        assert publish(port, "archive", "traceseal/up/station-02/ack", b"real-ack") == 0
        wait_for(s2, ("traceseal/up/station-02/ack", b"real-ack"))
        assert publish(port, "station-02", "traceseal/up/station-02/records", b"marker") == 0
        wait_for(archive, ("traceseal/up/station-02/records", b"marker"))  # everything before it has arrived
        assert ("traceseal/up/station-02/records", b"forged") not in archive.got
        assert s2.got == [("traceseal/up/station-02/ack", b"real-ack")]
        # over the size limit: refused by the broker before the archive sees it
        assert publish(port, "station-01", "traceseal/up/station-01/records", b"x" * 300_000) != 0
        assert publish(port, "station-01", "traceseal/up/station-01/records", b"after") == 0
        wait_for(archive, ("traceseal/up/station-01/records", b"after"))
        assert all(len(p) < 300_000 for _, p in archive.got)
    finally:
        archive.close()
        s2.close()


def test_a_gateway_cannot_read_another_gateways_ack_and_strangers_are_refused(broker: CentralMosquitto) -> None:
    port = broker.port
    s1 = Client(port, "station-01")
    try:
        s1.subscribe("traceseal/up/station-02/ack")
        s1.subscribe("traceseal/up/station-01/ack")
        assert publish(port, "archive", "traceseal/up/station-02/ack", b"for-02") == 0
        assert publish(port, "archive", "traceseal/up/station-01/ack", b"for-01") == 0
        wait_for(s1, ("traceseal/up/station-01/ack", b"for-01"))
        assert ("traceseal/up/station-02/ack", b"for-02") not in s1.got
    finally:
        s1.close()
    for user, secret in ((None, None), ("station-01", "wrong")):
        cl = Client(port, user, secret)
        try:
            assert cl.connect_rc.is_failure
        finally:
            cl.close()
