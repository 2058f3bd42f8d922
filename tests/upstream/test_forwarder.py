"""The forwarder over two real Mosquittos (ingest and upstream), with a minimal archive peer.

The peer here only records what arrives and acknowledges per docs/upstream.md; the real
archive (gateway/archive) verifies too. Each test checks what the peer received against
the journal, byte for byte.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.dashboard import GatewaySource
from gateway.app.service import Gateway
from gateway.core.errors import ConfigError
from gateway.forward.state import upstream_stats
from gateway.journal import Journal
from gateway.rules.profile import PROFILE_DOMAIN
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.pki import make_pki
from gateway.testing.station import StationDir, make_station
from gateway.testing.waiting import wait_for
from gateway.web.metrics import registry_for, render
from ledger_client.canonical import canonical, header_hash

REPO = Path(__file__).resolve().parents[2]
T0 = 1_767_225_600_000


class ArchivePeer:
    """Subscribes to one gateway's upstream topics with a persistent session (so it misses
    nothing while the broker restarts), keeps every payload in arrival order, and publishes
    the retained ack: highest contiguous record seq, contiguous block, anchored block."""

    def __init__(self, port: int, gateway: str, *, prefix: str = "traceseal/up", username: str | None = None,
                 password: str | None = None) -> None:
        self.gateway, self.base = gateway, f"{prefix}/{gateway}"
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, str, dict[str, Any]]] = []  # (monotonic, kind, payload)
        self.records: dict[int, dict[str, Any]] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.anchored = -1
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"archive-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 1)
        # Subscribe once: a re-subscription would replay the retained hello out of order.
        self.client.on_connect = lambda c, u, f, rc, p: None if f.session_present else c.subscribe(f"{self.base}/+",
                                                                                                  qos=1)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        assert subscribed.wait(10), "archive peer could not subscribe"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[1]
        if kind == "ack":
            return
        p = json.loads(msg.payload)
        with self.lock:
            self.arrivals.append((time.monotonic(), kind, p))
            if kind in ("records", "alarms"):
                for it in p["items"]:
                    self.records.setdefault(it["seq"], it)
            elif kind == "blocks":
                for it in p["items"]:
                    self.blocks.setdefault(it["block"], it)
            elif kind == "anchors":
                self.anchored = max([self.anchored] + [it["block"] for it in p["items"]])
            ack = {"v": 1, "gateway": self.gateway, "records": self._contiguous(self.records),
                   "blocks": self._contiguous(self.blocks), "anchors": self.anchored, "time_ms": T0}
        client.publish(f"{self.base}/ack", json.dumps(ack), qos=1, retain=True)

    @staticmethod
    def _contiguous(have: dict[int, Any]) -> int:
        n = -1
        while n + 1 in have:
            n += 1
        return n

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for _, k, p in self.arrivals if k == kind]

    def record_seqs(self) -> list[int]:
        """Every records-stream item in arrival order, duplicates included."""
        return [it["seq"] for p in self.payloads("records") for it in p["items"]]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def upstream_toml(port: int, *, batch_max: int, max_inflight: int, extra: str = "") -> str:
    return textwrap.dedent(f"""
        [upstream]
        enabled = true
        host = "127.0.0.1"
        port = {port}
        batch_max = {batch_max}
        max_inflight = {max_inflight}
        reconnect_max_s = 1
        """) + extra


def publish_readings(st: StationDir, port: int, n: int, *, start: int = 1,
                     sensors: tuple[str, ...] = ("probe-2", "probe-3"), value: int = 5000) -> None:
    with Publisher(port) as pub:
        pub.publish_all((st.topic(s), build_message(st.sensor_keys[s], s, start + i, T0 + i, [temperature(value)]))
                        for i in range(n) for s in (sensors[i % len(sensors)],))


def journal(st: StationDir) -> Journal:
    return Journal(st.root / "data" / "journal.sqlite", readonly=True)


def readings_in(j: Journal) -> int:
    return int(j.db.execute("SELECT COUNT(*) FROM records WHERE type = 'reading'").fetchone()[0])


def assert_records_match(peer: ArchivePeer, j: Journal, upto: int, *, max_dup: int) -> int:
    """Every record 0..upto arrived, in order, byte for byte; returns the duplicates seen."""
    batches = [[it["seq"] for it in p["items"]] for p in peer.payloads("records")]
    prev = -1
    for b in batches:  # contiguous within a batch; a batch continues or re-sends, never skips
        assert b == list(range(b[0], b[0] + len(b))), b
        assert b[0] <= prev + 1, f"gap: batch starts at {b[0]} after {prev}"
        prev = max(prev, b[-1])
    seqs = peer.record_seqs()
    firsts = list(dict.fromkeys(seqs))
    assert firsts[: upto + 1] == list(range(upto + 1))
    for r in j.records_range(0, upto):
        it = peer.records[r.seq]
        assert it["body"].encode() == r.body and bytes.fromhex(it["sig"]) == r.sig
    dup = len(seqs) - len(firsts)
    assert dup <= max_dup, f"{dup} duplicates, more than the {max_dup} that can be in flight"
    return dup


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path / "upstream")
    m.start()
    yield m
    if m.proc is not None and m.proc.poll() is None:
        os.killpg(m.proc.pid, signal.SIGCONT)
    m.stop()


def test_outage_then_everything_in_order_with_credentials(tmp_path: Path, broker: Mosquitto,
                                                          caplog: pytest.LogCaptureFixture,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Upstream broker (password-protected) stopped while readings keep coming, then back:
    every record arrives in order; blocks, anchors and the signed hello match the journal;
    the archive's ack becomes the durable ``archived`` cursor; status shows the backlog."""
    caplog.set_level(logging.DEBUG)
    secret = f"pw-{uuid.uuid4().hex}"
    pwfile = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "gw", secret], check=True, capture_output=True)
    up = Mosquitto(tmp_path / "upstream", anonymous=False, extra=f"password_file {pwfile}")
    up.start()
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=40, max_seconds=1,
                      extra_toml=upstream_toml(up.port, batch_max=25, max_inflight=2,
                                               extra='username = "gw"\npassword_file = "up.pw"\n'))
    (st.root / "up.pw").write_text(secret + "\n")
    (st.root / "up.pw").chmod(0o600)
    peer = ArchivePeer(up.port, gw_id, username="gw", password=secret)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    j = journal(st)
    try:
        assert gw.forwarder is not None and gw.forwarder.connected.wait(10)
        publish_readings(st, broker.port, 100)
        wait_for(lambda: len(peer.records) >= 100, what="the first 100 records upstream")

        up.stop()
        wait_for(lambda: not gw.forwarder.connected.is_set(), what="forwarder notices the outage")
        publish_readings(st, broker.port, 400, start=1000)  # the station goes on recording
        wait_for(lambda: readings_in(j) == 500, what="500 readings journaled")
        stats = upstream_stats(j, int(time.time() * 1000))
        assert stats is not None and stats["connected"] is False and stats["streams"]["records"]["backlog"] >= 400
        assert stats["streams"]["records"]["lag_s"] > 0
        from gateway.cli import main

        capsys.readouterr()
        assert main(["status", "-c", str(st.config_path), "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)["upstream"]
        assert shown["streams"]["records"]["backlog"] >= 400 and shown["connected"] is False
        assert main(["status", "-c", str(st.config_path)]) == 0
        text = capsys.readouterr().out
        assert f"127.0.0.1:{up.port} disconnected" in text and "records      sent" in text
        metrics = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                   for line in render(registry_for(GatewaySource(gw))).decode().splitlines()
                   if line.startswith("traceseal_upstream_")}
        assert metrics["traceseal_upstream_connected"] == 0.0
        assert metrics['traceseal_upstream_backlog{stream="records"}'] >= 400
        assert metrics['traceseal_upstream_sent{stream="records"}'] == stats["streams"]["records"]["sent"]
        assert metrics['traceseal_upstream_lag_seconds{stream="records"}'] > 0

        up.start()
        wait_for(lambda: gw.forwarder.connected.is_set(), timeout=15, what="forwarder reconnects")
        last = j.next_seq() - 1
        wait_for(lambda: len(peer.records) > last, timeout=20, what="every record upstream")
        wait_for(lambda: j.forward_cursors()["records"][1] >= last, what="archive's ack stored as archived")
        wait_for(lambda: j.forward_cursors()["blocks"][0] >= 0 and j.forward_cursors()["anchors"][0] >= 0,
                 what="blocks and anchors forwarded")
    finally:
        gw.stop()
        peer.close()
        up.stop()

    assert_records_match(peer, j, last, max_dup=2 * 25)
    rw = Journal(st.root / "data" / "journal.sqlite")
    assert rw.archived_seq() is not None and rw.archived_seq() >= last  # what retention may prune up to
    rw.close()

    # blocks: the journal's canonical headers and signatures, contiguous from 0
    sent_blocks = j.forward_cursors()["blocks"][0]  # the last batch may still have been in flight at stop
    assert sorted(peer.blocks) == list(range(len(peer.blocks))) and len(peer.blocks) > sent_blocks
    for n, it in peer.blocks.items():
        b = j.block(n)
        assert b is not None and it["header"].encode() == b.header and bytes.fromhex(it["sig"]) == b.sig
        assert header_hash(it["header"].encode()) == b.hash
        assert json.loads(it["header"])["last_seq"] <= j.forward_cursors()["records"][0]
    anchors = [it for p in peer.payloads("anchors") for it in p["items"]]
    assert anchors
    for it in anchors:  # sent only after their block, carrying the journal's anchor unchanged
        b = j.block(it["block"])
        assert b is not None and bytes.fromhex(it["header_hash"]) == b.hash and it["block"] in peer.blocks
        row = j.db.execute("SELECT anchor FROM anchors WHERE block = ?", (it["block"],)).fetchone()
        assert it["anchor"] == json.loads(row[0])

    # hello: the profile, canonical, signed by the gateway key
    hello = peer.payloads("hello")[-1]
    assert hello["public_key"] == j.meta("public_key")
    assert canonical(json.loads(hello["profile"])).decode() == hello["profile"]
    assert json.loads(hello["profile"])["gateway"] == gw_id
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(hello["public_key"])).verify(
        bytes.fromhex(hello["sig"]), PROFILE_DOMAIN + hello["profile"].encode())
    assert secret not in caplog.text


def test_in_flight_is_bounded(tmp_path: Path, broker: Mosquitto, upstream: Mosquitto) -> None:
    """A frozen upstream broker (SIGSTOP: no PUBACKs) holds exactly ``max_inflight`` batches
    of the backlog; the cursor does not move until they are acknowledged."""
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=1000, max_seconds=3600,
                      extra_toml=upstream_toml(upstream.port, batch_max=10, max_inflight=3))
    peer = ArchivePeer(upstream.port, gw_id)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    j = journal(st)
    try:
        fw = gw.forwarder
        assert fw is not None and fw.connected.wait(10)
        wait_for(lambda: len(peer.payloads("hello")) == 1, what="hello")
        assert upstream.proc is not None
        os.killpg(upstream.proc.pid, signal.SIGSTOP)
        publish_readings(st, broker.port, 300)
        wait_for(lambda: readings_in(j) == 300, what="300 readings journaled")
        wait_for(lambda: fw.status()["streams"]["records"]["in_flight"] == 3, what="3 batches in flight")
        sent_before = j.forward_cursors()["records"][0]
        time.sleep(0.5)  # rounds keep running: none may add a batch
        st_now = fw.status()["streams"]["records"]
        assert st_now["in_flight"] == 3 and st_now["sent"] == sent_before == -1
        assert len(fw.client._out_messages) == 3  # paho holds only what our window let through
        assert len(peer.record_seqs()) == 0
        os.killpg(upstream.proc.pid, signal.SIGCONT)
        last = j.next_seq() - 1
        wait_for(lambda: len(peer.records) > last, timeout=20, what="backlog drained after the thaw")
        assert all(s["peak_in_flight"] <= 3 for s in fw.status()["streams"].values())
    finally:
        gw.stop()
        peer.close()
    assert_records_match(peer, j, last, max_dup=0)


UNITS = textwrap.dedent("""
    [[units]]
    id = "fridge-1"
    profile = "fridge"
    probes = ["probe-1"]
    high_delay_s = 0
    """)


def test_alarm_goes_ahead_of_the_backlog(tmp_path: Path, broker: Mosquitto, upstream: Mosquitto) -> None:
    """A fridge alarm raised behind a 3,000-record backlog is the first batch upstream when
    the link returns; the ordered stream still carries it in its place."""
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=500, max_seconds=3600,
                      extra_toml=UNITS + upstream_toml(upstream.port, batch_max=100, max_inflight=2))
    peer = ArchivePeer(upstream.port, gw_id)  # its session (and subscription) outlives the outage
    upstream.stop()
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    j = journal(st)
    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        publish_readings(st, broker.port, 3000)
        publish_readings(st, broker.port, 1, sensors=("probe-1",), value=12_000)  # 12 °C in a fridge
        wait_for(lambda: j.db.execute("SELECT COUNT(*) FROM records WHERE type='alarm'").fetchone()[0] >= 1,
                 what="alarm journaled")
        alarm_seq = j.db.execute("SELECT MIN(seq) FROM records WHERE type='alarm'").fetchone()[0]
        assert alarm_seq >= 3000
        upstream.start()
        wait_for(lambda: alarm_seq in peer.records, timeout=15, what="alarm upstream")
        last = j.next_seq() - 1
        wait_for(lambda: len(peer.records) > last, timeout=20, what="backlog drained")
    finally:
        gw.stop()
        peer.close()
    order = [(k, p) for _, k, p in peer.arrivals if k in ("records", "alarms")]
    first_alarm = next(i for i, (k, p) in enumerate(order) if k == "alarms")
    ahead = sum(len(p["items"]) for k, p in order[:first_alarm])
    assert ahead <= 2 * 100, f"{ahead} records went up before the alarm"
    alarm = order[first_alarm][1]["items"][0]
    assert alarm["seq"] == alarm_seq and json.loads(alarm["body"])["type"] == "alarm"
    assert alarm_seq in peer.record_seqs()  # and in its place in the ordered stream
    assert_records_match(peer, j, last, max_dup=0)


def test_kill9_mid_forward_resumes_from_the_cursor(tmp_path: Path, broker: Mosquitto, upstream: Mosquitto) -> None:
    """SIGKILL the gateway process with batches in flight (the upstream broker frozen so none
    is acknowledged) and a backlog behind them: the restarted forwarder starts
    at the stored ``sent + 1``; nothing is skipped, and only in-flight batches come twice."""
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    batch_max, inflight = 5, 2
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=1000, max_seconds=3600,
                      extra_toml=upstream_toml(upstream.port, batch_max=batch_max, max_inflight=inflight))
    peer = ArchivePeer(upstream.port, gw_id)
    log = (tmp_path / "gw.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def start_gateway() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "-c", str(st.config_path)],
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, cwd=REPO, env=env)

    proc = start_gateway()
    assert upstream.proc is not None
    try:
        wait_for(lambda: b"subscribed to" in (tmp_path / "gw.log").read_bytes(), what="gateway subscribed")
        wait_for(lambda: len(peer.payloads("hello")) == 1, what="forwarder connected")
        j = journal(st)
        pub = threading.Thread(target=publish_readings, args=(st, broker.port, 1500))
        pub.start()
        wait_for(lambda: j.forward_cursors()["records"][0] >= 0, timeout=15, interval=0.002,
                 what="forwarding under way")
        os.killpg(upstream.proc.pid, signal.SIGSTOP)  # no more PUBACKs: batches stay in flight
        pub.join(30)
        wait_for(lambda: readings_in(j) == 1500, timeout=30, what="1500 readings journaled")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        os.killpg(upstream.proc.pid, signal.SIGCONT)
        sent = j.forward_cursors()["records"][0]
        last = j.next_seq() - 1
        assert 0 <= sent < last - 100, f"kill landed at sent={sent} of {last}: not mid-forward"
        proc = start_gateway()
        wait_for(lambda: len(peer.records) > last, timeout=30, what="every record upstream after the restart")
    finally:
        os.killpg(upstream.proc.pid, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(20)
        peer.close()
        log.close()
    with peer.lock:
        kinds = [(k, p) for _, k, p in peer.arrivals]
    restart = [i for i, (k, _) in enumerate(kinds) if k == "hello"][1]  # the restarted forwarder's
    resumed = next(p for k, p in kinds[restart:] if k == "records")
    assert resumed["items"][0]["seq"] == sent + 1  # from the durable cursor, not from 0
    dup = assert_records_match(peer, j, last, max_dup=inflight * batch_max)
    print(f"kill -9 at sent={sent}: {dup} duplicates (bound {inflight * batch_max})")


def test_tls_with_client_certificate(tmp_path: Path, broker: Mosquitto) -> None:
    """Over a TLS listener that requires a client certificate: the forwarder verifies the
    broker against ca_file, presents cert_file/key_file, and the records arrive."""
    pki = make_pki(tmp_path / "pki")
    up = Mosquitto(tmp_path / "upstream", extra=f"cafile {pki['ca']}\ncertfile {pki['server']}\n"
                                                f"keyfile {pki['server_key']}\nrequire_certificate true\n")
    up.start()
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=1000, max_seconds=3600,
                      extra_toml=upstream_toml(up.port, batch_max=50, max_inflight=2, extra=textwrap.dedent(f"""
                          [upstream.tls]
                          ca_file = "{pki['ca']}"
                          cert_file = "{pki['client']}"
                          key_file = "{pki['client_key']}"
                          """)))
    peer_client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    peer_client.tls_set(ca_certs=str(pki["ca"]), certfile=str(pki["client"]), keyfile=str(pki["client_key"]))
    got: list[dict[str, Any]] = []
    peer_client.on_message = lambda c, u, m: got.append(json.loads(m.payload)) if m.topic.endswith("/records") else None
    peer_client.connect("127.0.0.1", up.port)
    peer_client.subscribe(f"traceseal/up/{gw_id}/records", qos=1)
    peer_client.loop_start()
    cfg = configmod.load(st.config_path)
    assert cfg.upstream.tls_ca == pki["ca"]
    gw = Gateway(cfg)
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    try:
        assert gw.forwarder is not None and gw.forwarder.connected.wait(10), gw.forwarder.last_error
        publish_readings(st, broker.port, 30)
        wait_for(lambda: sum(len(p["items"]) for p in got) >= 30, what="30 records over TLS")
    finally:
        gw.stop()
        peer_client.loop_stop()
        peer_client.disconnect()
        up.stop()
    assert [it["seq"] for p in got for it in p["items"]][:30] == list(range(30))
    pki["client_key"].chmod(0o644)
    with pytest.raises(ConfigError, match="upstream.tls.key_file: .*mode 0644 lets group/others read the TLS"):
        Gateway(configmod.load(st.config_path))


class HttpsPeer:
    """A minimal archive over HTTPS (docs/upstream.md §HTTPS): records each POST in arrival
    order, demands Basic credentials, answers with the ack."""

    def __init__(self, pki: dict[str, Path], gateway: str, password: str) -> None:
        import base64
        import ssl
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.port = Mosquitto(Path("/nonexistent")).port  # a free loopback port
        self.password = password
        self.arrivals: list[tuple[str, dict[str, Any]]] = []
        self.records: dict[int, dict[str, Any]] = {}
        self.blocks: dict[int, Any] = {}
        self.refused = 0
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _answer(self) -> None:
                want = "Basic " + base64.b64encode(f"gw:{peer.password}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    peer.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                kind = self.path.rsplit("/", 1)[1]
                assert self.path == f"/up/{gateway}/{kind}", self.path
                if self.command == "POST":
                    p = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                    peer.arrivals.append((kind, p))
                    for it in p.get("items", []):
                        (peer.records if kind in ("records", "alarms") else peer.blocks).setdefault(
                            it.get("seq", it.get("block")), it)
                body = json.dumps({"v": 1, "gateway": gateway, "records": ArchivePeer._contiguous(peer.records),
                                   "blocks": ArchivePeer._contiguous(peer.blocks), "anchors": -1,
                                   "time_ms": T0}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = _answer

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(pki["server"]), str(pki["server_key"]))
        self.ctx, self.handler, self.server_cls = ctx, Handler, ThreadingHTTPServer
        self.server: Any = None

    def start(self) -> None:
        self.server = self.server_cls(("127.0.0.1", self.port), self.handler)
        self.server.socket = self.ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def test_https_transport(tmp_path: Path, broker: Mosquitto) -> None:
    """Over HTTPS: the archive unreachable, then refusing the password (401: nothing moves),
    then right: every record in order, blocks after their records, ``archived`` from the body."""
    pki = make_pki(tmp_path / "pki")
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    peer = HttpsPeer(pki, gw_id, password="not-yet")
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=30, max_seconds=3600,
                      extra_toml=textwrap.dedent(f"""
                          [upstream]
                          enabled = true
                          transport = "https"
                          url = "https://127.0.0.1:{peer.port}/up/"
                          username = "gw"
                          password_file = "up.pw"
                          batch_max = 25
                          reconnect_max_s = 1
                          [upstream.tls]
                          ca_file = "{pki['ca']}"
                          """))
    (st.root / "up.pw").write_text("s3cret\n")
    (st.root / "up.pw").chmod(0o600)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    j = journal(st)
    try:
        fw = gw.forwarder
        assert fw is not None and type(fw).__name__ == "HttpsForwarder"
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        publish_readings(st, broker.port, 200)
        wait_for(lambda: readings_in(j) == 200, what="200 readings journaled")
        wait_for(lambda: "Connection refused" in fw.last_error, what="archive unreachable, reported")
        peer.start()
        wait_for(lambda: peer.refused > 0 and "HTTP 401" in fw.last_error, what="wrong password reported")
        assert j.forward_cursors()["records"] == (-1, -1) and not peer.arrivals
        peer.password = "s3cret"
        last = j.next_seq() - 1
        wait_for(lambda: len(peer.records) > last, timeout=20, what="every record over HTTPS")
        wait_for(lambda: j.forward_cursors()["records"][1] >= last, what="archived from the response")
        wait_for(lambda: j.forward_cursors()["blocks"][0] >= 5, what="blocks forwarded")
    finally:
        gw.stop()
        peer.stop()
    assert peer.arrivals[0][0] == "hello"
    batches = [[it["seq"] for it in p["items"]] for k, p in peer.arrivals if k == "records"]
    assert [s for b in batches for s in b] == list(range(last + 1))  # in order, once each
    for k, p in peer.arrivals:
        if k == "blocks":
            assert all(json.loads(it["header"])["last_seq"] <= last for it in p["items"])
    for r in j.records_range(0, last):
        assert peer.records[r.seq]["body"].encode() == r.body


def test_a_refused_topic_is_reported_and_retried_with_backoff(tmp_path: Path, broker: Mosquitto) -> None:
    """The central broker's ACL refuses the blocks topic: no block gets through and its
    cursor stays put, the problem shows in status, and the forwarder backs off instead of
    reconnecting in a loop (Mosquitto 2.0.11 drops the connection after a denied PUBLISH,
    and paho re-sends the batch at each reconnect, so the link stalls until the ACL is fixed)."""
    gw_id = f"gw-{uuid.uuid4().hex[:6]}"
    pwfile, acl = tmp_path / "passwd", tmp_path / "acl"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "gw", "pw-gw"], check=True, capture_output=True)
    subprocess.run(["mosquitto_passwd", "-b", str(pwfile), "archive", "pw-ar"], check=True, capture_output=True)
    acl.write_text(f"user gw\ntopic write traceseal/up/{gw_id}/hello\ntopic write traceseal/up/{gw_id}/records\n"
                   f"topic write traceseal/up/{gw_id}/alarms\ntopic read traceseal/up/{gw_id}/ack\n"
                   "user archive\ntopic readwrite traceseal/up/#\n")
    up = Mosquitto(tmp_path / "upstream", anonymous=False, extra=f"password_file {pwfile}\nacl_file {acl}")
    up.start()
    st = make_station(tmp_path / "st", broker.port, gateway_id=gw_id, max_records=20, max_seconds=3600,
                      extra_toml=upstream_toml(up.port, batch_max=50, max_inflight=2,
                                               extra='username = "gw"\npassword_file = "up.pw"\nreconnect_max_s = 4\n'
                                               ).replace("reconnect_max_s = 1\n", ""))
    (st.root / "up.pw").write_text("pw-gw")
    (st.root / "up.pw").chmod(0o600)
    peer = ArchivePeer(up.port, gw_id, username="archive", password="pw-ar")
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    # subscribed locally before the test publishes: a first session has no queue yet
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway not subscribed"
    j = journal(st)
    try:
        fw = gw.forwarder
        assert fw is not None and fw.connected.wait(10)
        publish_readings(st, broker.port, 100)
        wait_for(lambda: len(peer.records) >= 20, what="records upstream")
        wait_for(lambda: j.stats()["blocks"] >= 5, what="5 blocks sealed")
        t0 = time.monotonic()
        connects0 = up.log.read_text().count(f"as traceseal-up-{gw_id}")
        time.sleep(4)
        connects = up.log.read_text().count(f"as traceseal-up-{gw_id}") - connects0
        stats = upstream_stats(j, int(time.time() * 1000))
    finally:
        gw.stop()
        peer.close()
        up.stop()
    assert not peer.payloads("blocks") and j.forward_cursors()["blocks"][0] == -1
    assert stats is not None and stats["streams"]["blocks"]["backlog"] >= 5
    assert fw.last_error or stats["error"]
    # backoff: full jitter up to 0.5·2^(n-1) s (cap 4 s); a loop would reconnect hundreds of times
    assert connects <= 12, f"{connects} reconnects in {time.monotonic() - t0:.1f} s: not backing off"


def peer_kinds(peer: ArchivePeer) -> list[tuple[str, dict[str, Any]]]:
    with peer.lock:
        return [(k, p) for _, k, p in peer.arrivals]
