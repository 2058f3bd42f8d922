"""Scenario 6 — spoofing and replay, at the gateway and at the broker.

a) Gateway admission (a broker that lets anyone publish, as a misconfigured or compromised
   broker would): a client that is not an enrolled sensor publishes on a sensor's topic —
   signed with an unknown key (``bad-signature``), as an unknown sensor (``unknown-sensor``),
   a captured message with one digit changed (``bad-signature``), a probe's genuine message
   on another probe's topic (``topic-mismatch``), a verbatim replay of a captured, accepted
   message (``replay``) and a signed message re-using a counter already accepted, with other
   content (``replayed-counter``: a cloned or faulty probe), plus an oversize message. (A
   genuine message merely delivered late is NOT an attack: the gateway's anti-replay window
   keeps it, because MQTT clients resend after newer messages when they reconnect.) Each must be rejected and counted
   in ``quarantine_counts`` while the genuine readings around them all land, once.

b) Broker authentication and ACL, as deployed (``systemd/traceseal.acl`` verbatim, a
   ``mosquitto_passwd`` file, ``allow_anonymous false``): anonymous and wrong-password
   connections are refused, sensor ``probe-1`` cannot publish on ``probe-2``'s topic (the
   broker drops it: it never reaches the gateway) nor eavesdrop on the sensor topics, and
   the gateway with its own credentials (``mqtt.username``/``password_file``) receives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from firmware_sim.message import build_message, temperature
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station

from .common import (
    REPO,
    GatewayProcess,
    JournalChecker,
    LoadPublisher,
    Row,
    append_toml,
    compare,
    new_key,
    try_connect,
    wait_for,
)


class Client:
    """A one-connection MQTT 5 client that reports the broker's reason codes."""

    def __init__(self, port: int, *, username: str | None = None, password: str | None = None) -> None:
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{uuid.uuid4().hex[:8]}",
                             protocol=mqtt.MQTTv5)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.ready = threading.Event()
        self.refused = ""
        self.puback: dict[int, str] = {}
        self.suback: dict[int, list[str]] = {}
        self.received: list[tuple[str, bytes]] = []
        self.c.on_connect = self._on_connect
        self.c.on_publish = lambda c, u, mid, rc, p: self.puback.__setitem__(mid, str(rc))
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.suback.__setitem__(mid, [str(r) for r in rcs])
        self.c.on_message = lambda c, u, m: self.received.append((m.topic, bytes(m.payload)))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        if not self.ready.wait(10) or self.refused:
            raise RuntimeError(f"connect as {username!r}: {self.refused or 'timeout'}")

    def _on_connect(self, c: Any, u: Any, f: Any, rc: mqtt.ReasonCode, p: Any) -> None:
        self.refused = str(rc) if rc.is_failure else ""
        self.ready.set()

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> str:
        info = self.c.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.puback, timeout, interval=0.01)
        return self.puback.get(info.mid, "no PUBACK")

    def subscribe(self, topic: str, timeout: float = 10.0) -> list[str]:
        _, mid = self.c.subscribe(topic, qos=1)
        assert mid is not None
        wait_for(lambda: mid in self.suback, timeout, interval=0.01)
        return self.suback.get(mid, ["no SUBACK"])

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def run_spoofing(workdir: Path, *, rounds: int = 3) -> list[Row]:
    return [_admission(workdir / "admission", rounds), _broker_acl(workdir / "acl")]


# -- a) admission ------------------------------------------------------------------------------
def _admission(workdir: Path, rounds: int) -> Row:
    row = Row("6a spoofing + replay (gateway admission)", runs=rounds)
    t0 = time.monotonic()
    with Mosquitto(workdir / "mosquitto") as broker:
        st = make_station(workdir / "st", broker.port, sensors=2, max_records=50, max_seconds=1)
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(st.root / "data" / "journal.sqlite")
        pub = LoadPublisher(broker.port, st)
        attacker = Client(broker.port)
        expected: dict[str, int] = {}
        attacks = 0
        try:
            gw.start()
            if not gw.wait_subscribed():
                row.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return row
            k1, k2 = st.sensor_keys["probe-1"], st.sensor_keys["probe-2"]
            stranger, probe9 = new_key(), new_key()
            now = int(time.time() * 1000)

            def attack(topic: str, payload: bytes, reason: str) -> None:
                nonlocal attacks
                attacks += 1
                expected[reason] = expected.get(reason, 0) + 1
                rc = attacker.publish(topic, payload)
                row.check(rc == "Success", f"broker refused an attack publish ({rc}); this part needs an open broker")

            def settle() -> None:  # genuine traffic, and wait until the gateway has all of it
                pub.publish_burst(10)
                row.check(wait_for(lambda: not checker.check(integrity=False) and checker.holds(pub.acked()), 30,
                                   interval=0.1), "genuine readings not journaled")

            settle()
            for r in range(rounds):
                c1 = pub.ctr["probe-1"]
                # a counter the gateway has accepted, re-used with other content (cloned probe)
                reused = build_message(k1, "probe-1", c1, now, [temperature(9999)])
                attack(st.topic("probe-1"), build_message(stranger, "probe-1", 10**6 + r, now, [temperature(9000)]),
                       "bad-signature")  # not enrolled: signs as probe-1 with its own key
                attack(st.topic("probe-9"), build_message(probe9, "probe-9", 1 + r, now, [temperature(4000)]),
                       "unknown-sensor")
                forged = json.loads(build_message(k1, "probe-1", 10**6 + 100 + r, now, [temperature(4000)]))
                forged["readings"][0]["value"] = 9000  # one value changed in a genuine message
                attack(st.topic("probe-1"), json.dumps(forged, separators=(",", ":")).encode(), "bad-signature")
                c2 = pub.ctr["probe-2"] + 1
                hijack = build_message(k2, "probe-2", c2, now, [temperature(4000)])
                pub.ctr["probe-2"] += 1
                attack(st.topic("probe-1"), hijack, "topic-mismatch")  # probe-2's genuine message, probe-1's topic
                attack(st.topic("probe-1"), b"{" + b" " * 100_000 + b"}", "oversize")
                settle()  # newer genuine readings from both probes are journaled
                attack(st.topic("probe-1"), reused, "replayed-counter")
                # a verbatim replay of a message the gateway accepted
                _, topic, captured = _journaled_message(pub, checker)
                attack(topic, captured, "replay")
                settle()
            got = checker.state.quarantine
            acked = pub.acked()
            compare_rows = Row("x")
            compare(compare_rows, acked, pub.sent, checker.state)
            row.sent, row.acked, row.journaled = compare_rows.sent, compare_rows.acked, compare_rows.journaled
            row.lost, row.duplicated = compare_rows.lost, compare_rows.duplicated
            row.failures += compare_rows.failures
            rejected = sum(min(got.get(k, 0), n) for k, n in expected.items())
            row.check(got == expected, f"quarantine_counts {got}, want {expected}")
            row.check(checker.state.records == len(acked),
                      f"{checker.state.records} records for {len(acked)} genuine readings: an attack became a record")
            for f in checker.check():
                row.fail(f)
            row.detected = (rejected, attacks)
            row.notes.append(f"{attacks} attacks over {rounds} rounds among {len(acked)} genuine readings; "
                             f"quarantine_counts {dict(sorted(got.items()))}; detected = attacks rejected and counted "
                             f"under the expected reason")
        finally:
            attacker.close()
            pub.close()
            gw.stop()
    row.seconds = time.monotonic() - t0
    return row


def _journaled_message(pub: LoadPublisher, checker: JournalChecker) -> tuple[Any, str, bytes]:
    """The exact bytes of the newest journaled probe-1 reading (what a sniffer captured)."""
    k = max((key for key in checker.state.readings if key[0] == "probe-1"), key=lambda x: x[1])
    return k, pub.station.topic("probe-1"), pub.payloads[k]


# -- b) broker authentication and ACL ----------------------------------------------------------------
def _broker_acl(workdir: Path) -> Row:
    row = Row("6b broker auth + ACL (systemd/traceseal.acl)", runs=1)
    t0 = time.monotonic()
    if shutil.which("mosquitto_passwd") is None:
        row.notes.append("SKIPPED: mosquitto_passwd not installed")
        return row
    workdir.mkdir(parents=True, exist_ok=True)
    users = {"traceseal-gateway": "gw-" + uuid.uuid4().hex[:10], "probe-1": "p1-" + uuid.uuid4().hex[:10],
             "probe-2": "p2-" + uuid.uuid4().hex[:10]}
    pw = workdir / "traceseal.passwd"
    for i, (u, p) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) + [str(pw), u, p], check=True,
                       capture_output=True)
    acl = workdir / "traceseal.acl"
    shutil.copy(REPO / "systemd" / "traceseal.acl", acl)
    attempts = denied = 0
    extra = f"password_file {pw}\nacl_file {acl}"
    with Mosquitto(workdir / "mosquitto", anonymous=False, extra=extra) as broker:
        st = make_station(workdir / "st", broker.port, sensors=2, max_records=50, max_seconds=1,
                          topic_prefix="traceseal/sensors")
        (st.root / "mqtt.password").write_text(users["traceseal-gateway"] + "\n")
        (st.root / "mqtt.password").chmod(0o600)
        append_toml(st, "mqtt", 'username = "traceseal-gateway"\npassword_file = "mqtt.password"')
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(st.root / "data" / "journal.sqlite")
        clients: list[Client] = []
        try:
            gw.start()
            row.check(gw.wait_subscribed(), f"gateway with its credentials did not subscribe: {gw.log_text()[-800:]}")

            def refused(what: str, result: str) -> None:
                nonlocal attempts, denied
                attempts += 1
                if result != "ok":
                    denied += 1
                row.check(result != "ok", f"{what} was accepted")
                row.notes.append(f"{what}: {result}")

            refused("anonymous connection", try_connect(broker.port))
            refused("probe-1 with a wrong password", try_connect(broker.port, username="probe-1", password="guess"))
            refused("unknown user", try_connect(broker.port, username="probe-9", password=users["probe-1"]))

            p1 = Client(broker.port, username="probe-1", password=users["probe-1"])
            p2 = Client(broker.port, username="probe-2", password=users["probe-2"])
            clients += [p1, p2]
            k1, k2 = st.sensor_keys["probe-1"], st.sensor_keys["probe-2"]
            now = int(time.time() * 1000)
            # eavesdropping: a sensor's credentials must not read the other sensors
            sub = p1.subscribe("traceseal/sensors/#")
            # genuine readings on their own topics
            ok1 = p1.publish(st.topic("probe-1"), build_message(k1, "probe-1", 1, now, [temperature(4001)]))
            ok2 = p2.publish(st.topic("probe-2"), build_message(k2, "probe-2", 1, now, [temperature(4002)]))
            row.check(ok1 == "Success" and ok2 == "Success", f"genuine publishes refused: {ok1}, {ok2}")
            # probe-1's credentials on probe-2's topic: a forged probe-2 reading, and probe-1's own
            forged = build_message(new_key(), "probe-2", 2, now, [temperature(9999)])
            own_there = build_message(k1, "probe-1", 2, now, [temperature(9998)])
            cross = [p1.publish(st.topic("probe-2"), forged), p1.publish(st.topic("probe-2"), own_there),
                     p1.publish("traceseal/sensors/probe-1/alarm", own_there),
                     p1.publish("traceseal/other", own_there)]
            # a sentinel on probe-1's own topic, after the denied ones on the same connection
            sentinel = build_message(k1, "probe-1", 3, now, [temperature(4003)])
            row.check(p1.publish(st.topic("probe-1"), sentinel) == "Success", "sentinel refused")
            got = wait_for(lambda: not checker.check(integrity=False) and checker.state.records >= 3, 20, interval=0.1)
            row.check(got, "the gateway did not receive the genuine readings with its credentials")
            time.sleep(0.5)
            checker.check()
            vals = sorted(checker.state.values.values())
            attempts += len(cross)
            delivered_attacks = checker.state.records - 3 + sum(checker.state.quarantine.values())
            denied += len(cross) - max(0, delivered_attacks)
            row.check(vals == [4001, 4002, 4003], f"journal values {vals}, want [4001, 4002, 4003]")
            row.check(not checker.state.quarantine,
                      f"a publish the ACL forbids reached the gateway: quarantine {checker.state.quarantine}")
            row.notes.append(f"probe-1 publishing on probe-2's topic, an alarm topic and a foreign topic: "
                             f"PUBACK reasons {sorted(set(cross))}; none reached the gateway (journal: the 3 "
                             f"genuine readings, quarantine empty)")
            attempts += 1
            leaked = [t for t, _ in p1.received if not t.startswith(st.topic("probe-1"))]
            if not leaked:
                denied += 1
            row.check(not leaked, f"probe-1 read other sensors' messages: {leaked[:3]}")
            row.notes.append(f"probe-1 subscribing to traceseal/sensors/#: SUBACK {sub}; messages of other sensors "
                             f"received: {len(leaked)}")
            # the gateway itself with a wrong password is refused and says so
            bad = workdir / "st-bad"
            shutil.copytree(st.root, bad, ignore=shutil.ignore_patterns("data"))
            (bad / "data").mkdir()
            (bad / "mqtt.password").write_text("wrong\n")
            gw_bad = GatewayProcess(bad / "traceseal.toml", workdir / "gateway-bad.log")
            gw_bad.start()
            said = wait_for(lambda: "refused connection" in gw_bad.log_text(), 15)
            attempts += 1
            denied += int(said and "subscribed to" not in gw_bad.log_text())
            row.check(said and gw_bad.alive, "a gateway with a wrong broker password did not say it was refused "
                                             "(or exited)")
            row.notes.append("gateway with a wrong password: " + next(
                (ln.split(": ", 1)[-1] for ln in gw_bad.log_text().splitlines() if "refused connection" in ln), "?")
                + f"; still running: {gw_bad.alive} (paho retries with backoff)")
            gw_bad.stop()
            row.sent, row.journaled = 3 + len(cross), checker.state.records
            row.acked = sum(1 for r in [ok1, ok2, "Success"] if r == "Success")
            row.lost = 3 - checker.state.records if checker.state.records <= 3 else 0
            row.duplicated = checker.state.duplicates()
            for f in checker.check():
                row.fail(f)
        finally:
            for c in clients:
                c.close()
            gw.stop()
    row.detected = (denied, attempts)
    row.notes.append("detected = refused connections, publishes/subscriptions the ACL kept from the gateway and "
                     "the other sensors, and the gateway's own refused login")
    row.seconds = time.monotonic() - t0
    return row
