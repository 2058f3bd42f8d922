"""Test kit for the archive: real gateway journals, and a small publisher of the
``traceseal-upstream/1`` wire format (docs/upstream.md) reading those journals.

The publisher is deliberately minimal (the real forwarder is gateway/forward/): it sends
exactly the contract's payloads, straight from a gateway journal, so the archive is tested
against what a gateway really signs. Stations are real gateways (gateway.app.service.Gateway)
fed over a real Mosquitto and real pty barcode scanners, as in tests/test_e2e_lot.py.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_sim.message import build_message, temperature
from firmware_sim.serial_devices import BarcodeScanner
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.archive import config as archive_config
from gateway.archive.consumer import Archive
from gateway.archive.store import open_store
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.rules.profile import profile_message, station_profile
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import fridge_with_scanners_toml, make_station
from gateway.testing.waiting import wait_for
from ledger_client.keys import load_private_key, public_hex

LOT = "LOT-A7"
LOT_SCAN = "0109506000134352" + "17270331" + "10LOT-A7" + "\x1d" + "21SER0001"
T0 = 1_767_225_600_000


@dataclass
class Built:
    """A finished station: its journal (sealed and anchored) and config, to copy per test."""

    root: Path
    gateway_id: str
    config_path: Path

    @property
    def journal_path(self) -> Path:
        return self.root / "data" / "journal.sqlite"

    @property
    def key_path(self) -> Path:
        return self.root / "gateway.key"

    def public_key(self) -> str:
        return public_hex(load_private_key(self.key_path))

    def journal(self) -> Journal:
        return Journal(self.journal_path, readonly=True)

    def copy(self, dest: Path) -> Built:
        shutil.copytree(self.root, dest)
        return Built(dest, self.gateway_id, dest / self.config_path.name)


def build_station(root: Path, broker_port: int, gateway_id: str, unit: str, *, start_ms: int, before: int,
                  during: list[int], after: int, scan_out: bool) -> Built:
    """A real gateway: readings over MQTT, the lot scanned in (and out) on pty scanners,
    blocks of 4 records, every block anchored on the station's local ledger."""
    root.mkdir(parents=True, exist_ok=True)
    sin = BarcodeScanner(str(root / "scan-in")).start()
    sout = BarcodeScanner(str(root / "scan-out")).start()
    extra = fridge_with_scanners_toml(unit, sin.port, sout.port)
    st = make_station(root / "st", broker_port, sensors=1, gateway_id=gateway_id, max_records=4,
                      max_seconds=3600, extra_toml=extra)
    cfg = configmod.load(st.config_path)
    clock = FakeClock(start_ms=start_ms)
    gw = Gateway(cfg, clock=clock)
    gw.start()
    jpath = st.root / "data" / "journal.sqlite"
    key, topic = st.sensor_keys["probe-1"], st.topic("probe-1")
    ctr = iter(range(1, 10_000))

    def count(where: str, arg: str) -> int:
        if not jpath.exists():
            return 0
        j = Journal(jpath, readonly=True)
        try:
            return int(j.db.execute(f"SELECT COUNT(*) FROM records WHERE {where} = ?", (arg,)).fetchone()[0])
        finally:
            j.close()

    def reading(mc: int, pub: Publisher) -> None:
        before_n = count("kind", "temperature")
        pub.publish(topic, build_message(key, "probe-1", next(ctr), clock.now_ms(), [temperature(mc)]))
        wait_for(lambda: count("kind", "temperature") > before_n, what="reading journaled")
        clock.advance(60_000)

    def scan(dev: BarcodeScanner) -> None:
        before_n = count("type", "stock")
        dev.scan(LOT_SCAN)
        wait_for(lambda: count("type", "stock") > before_n, what="scan and its stock record journaled")
        clock.advance(60_000)

    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        with Publisher(broker_port) as pub:
            for _ in range(before):
                reading(5000, pub)
            scan(sin)
            for mc in during:
                reading(mc, pub)
            if scan_out:
                scan(sout)
            for _ in range(after):
                reading(5000, pub)
    finally:
        gw.stop()
        sin.close()
        sout.close()
    j = Journal(jpath, readonly=True)
    sealed = j.last_block()
    assert sealed is not None and j.stats()["unsealed_records"] == 0
    gw2 = Gateway(cfg, clock=clock, with_mqtt=False)  # anchors what the first run sealed at its stop
    gw2.start()
    wait_for(lambda: j.stats()["anchored_block"] >= sealed.block, what="every block anchored")
    gw2.stop()  # (its own start-up record is sealed into one more, unanchored block: realistic)
    j.close()
    return Built(st.root, gateway_id, st.config_path)


# -- the wire format --------------------------------------------------------------------------
class Upstream:
    """Publishes one journal's data as a forwarder would (docs/upstream.md), on demand."""

    def __init__(self, port: int, prefix: str, built: Built) -> None:
        self.pub = Publisher(port)
        self.prefix = prefix
        self.built = built
        self.gw = built.gateway_id
        self.key = load_private_key(built.key_path)
        self.j = built.journal()

    def close(self) -> None:
        self.pub.close()
        self.j.close()

    def topic(self, stream: str, gw: str | None = None) -> str:
        return f"{self.prefix}/{gw or self.gw}/{stream}"

    def send(self, stream: str, msg: dict[str, Any] | bytes, gw: str | None = None) -> None:
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        self.pub.publish(self.topic(stream, gw), data)

    # payload builders
    def hello_msg(self, time_ms: int = T0) -> dict[str, Any]:
        cfg = configmod.load(self.built.config_path)
        prof = station_profile(self.gw, cfg.station.units, cfg.station.inventory, time_ms)
        msg = profile_message(prof)
        from gateway.rules.profile import PROFILE_DOMAIN

        return {"v": 1, "gateway": self.gw, "public_key": public_hex(self.key),
                "profile": msg[len(PROFILE_DOMAIN):].decode(), "sig": self.key.sign(msg).hex()}

    def record_items(self, lo: int, hi: int) -> list[dict[str, Any]]:
        return [{"seq": r.seq, "body": bytes(r.body).decode(), "sig": bytes(r.sig).hex()}
                for r in self.j.records_range(lo, hi)]

    def records_msg(self, items: list[dict[str, Any]], stream: str = "records") -> dict[str, Any]:
        return {"v": 1, "gateway": self.gw, "stream": stream, "items": items}

    def block_items(self, lo: int, hi: int) -> list[dict[str, Any]]:
        return [{"block": b.block, "header": bytes(b.header).decode(), "sig": bytes(b.sig).hex()}
                for b in self.j.blocks_between(lo, hi)]

    def anchor_items(self) -> list[dict[str, Any]]:
        return [{"block": b, "header_hash": bytes(h).hex(), "kind": k, "anchor": json.loads(a), "time_ms": t}
                for b, h, k, a, t in self.j.db.execute(
                    "SELECT block, header_hash, kind, anchor, time_ms FROM anchors ORDER BY block, id")]

    # whole streams
    def hello(self) -> None:
        self.send("hello", self.hello_msg())

    def records(self, lo: int = 0, hi: int = 10**9, batch: int = 10) -> int:
        items = self.record_items(lo, hi)
        for i in range(0, len(items), batch):
            self.send("records", self.records_msg(items[i:i + batch]))
        return len(items)

    def blocks(self, lo: int = 0, hi: int = 10**9, batch: int = 5) -> None:
        items = self.block_items(lo, hi)
        for i in range(0, len(items), batch):
            self.send("blocks", {"v": 1, "gateway": self.gw, "items": items[i:i + batch]})

    def anchors(self) -> None:
        self.send("anchors", {"v": 1, "gateway": self.gw, "items": self.anchor_items()})

    def everything(self) -> None:
        self.hello()
        self.records()
        self.blocks()
        self.anchors()

    def last_seq(self) -> int:
        return self.j.next_seq() - 1

    def anchored_seq(self) -> int:
        """The last seq of the newest anchored block: what can be exported."""
        b = self.j.block(self.j.stats()["anchored_block"])
        assert b is not None
        return b.last_seq

    def last_block(self) -> int:
        b = self.j.last_block()
        assert b is not None
        return b.block


# -- the archive under test --------------------------------------------------------------------
def archive_toml(path: Path, broker_port: int, prefix: str, store_line: str, gateways: list[Built]) -> Path:
    gws = "".join(f'\n[[gateways]]\nid = "{b.gateway_id}"\npublic_key = "{b.public_key()}"\n' for b in gateways)
    path.write_text(textwrap.dedent(f"""\
        prefix = "{prefix}"
        [broker]
        host = "127.0.0.1"
        port = {broker_port}
        client_id = "archive-{uuid.uuid4().hex[:8]}"
        [store]
        {store_line}
        """) + gws)
    return path


class AckWatcher:
    """Subscribes to the retained acks, as a forwarder would."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.acks: dict[str, dict[str, Any]] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ackw-{uuid.uuid4().hex[:8]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.acks.__setitem__(m.topic.split("/")[-2], json.loads(m.payload))
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(f"{prefix}/+/ack", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def start_archive(toml: Path) -> Archive:
    cfg = archive_config.load(toml)
    a = Archive(cfg, open_store(cfg.store))
    a.start()
    assert a.transport.connected.wait(10)
    return a


def new_prefix() -> str:
    return f"up-{uuid.uuid4().hex[:8]}"


# -- shared per session: built stations and one PostgreSQL server --------------------------------
_BUILT: dict[str, Built] = {}
_PG: list[Any] = []


def stations(broker_port: int, tmp_factory: Any) -> tuple[Built, Built]:
    """Station A (the lot in fridge-a, then out) and station B (the lot into fridge-b, a day
    later, still there), built once per session; tests copy them, never write to them."""
    if not _BUILT:
        root = tmp_factory.mktemp("stations")
        _BUILT["a"] = build_station(root / "a", broker_port, "station-a", "fridge-a", start_ms=T0, before=2,
                                    during=[5000, 9000, 9500, 9800, 9900, 9700, 9600, 9400, 5200, 5000],
                                    after=3, scan_out=True)
        _BUILT["b"] = build_station(root / "b", broker_port, "station-b", "fridge-b", start_ms=T0 + 86_400_000,
                                    before=1, during=[4000, 4500, 5000, 4800], after=0, scan_out=False)
    return _BUILT["a"], _BUILT["b"]


def postgres_dsn() -> str:
    """A fresh database on the session's PostgreSQL server (started on first use)."""
    import atexit

    import psycopg

    from gateway.testing.postgres import Postgres

    if not _PG:
        pg = Postgres(Path("/tmp")).start()
        atexit.register(pg.cleanup)
        _PG.append(pg)
    pg = _PG[0]
    name = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.dsn, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return pg.dsn.rsplit("/", 1)[0] + "/" + name


def store_line(backend: str, tmp: Path) -> str:
    return f'sqlite = "{tmp / "archive.sqlite"}"' if backend == "sqlite" else f'postgres = "{postgres_dsn()}"'
