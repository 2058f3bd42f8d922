"""The archive over a real Mosquitto, on both stores (SQLite and a real PostgreSQL server):
verification as data arrives (docs/upstream.md), dedupe, rejections with stable reasons,
acks only for what is verified, and exports identical to the gateway's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import archive_kit as kit
import pytest

from gateway.archive.store import open_store
from gateway.archive.view import ArchiveView
from gateway.chain.export import export_range, export_record
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.waiting import wait_for
from ledger_client.canonical import canonical, header_message, record_message
from ledger_client.keys import public_hex
from ledger_client.verify import verify_bundle

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture
def station_a(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> kit.Built:
    a, _ = kit.stations(broker.port, tmp_path_factory)
    return a.copy(tmp_path / "a")


def _setup(backend: str, broker: Mosquitto, tmp_path: Path,
           built: kit.Built) -> tuple[Any, kit.Upstream, kit.AckWatcher]:
    prefix = kit.new_prefix()
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line(backend, tmp_path), [built])
    arch = kit.start_archive(toml)
    # the test reads through a connection of its own, as `traceseal archive status` would
    arch.reader = open_store(arch.cfg.store, readonly=True)
    return arch, kit.Upstream(broker.port, prefix, built), kit.AckWatcher(broker.port, prefix)


def _status(arch: Any, gw: str) -> dict[str, Any]:
    return arch.reader.status(gw)


def _quiet(arch: Any, n: int) -> None:
    """Wait until the archive has processed ``n`` messages in total."""
    wait_for(lambda: arch.processed >= n, what=f"{n} messages processed")


@pytest.mark.parametrize("backend", BACKENDS)
def test_stream_verifies_acks_and_exports_the_gateways_bundle(backend: str, broker: Mosquitto, tmp_path: Path,
                                                              station_a: kit.Built) -> None:
    arch, up, acks = _setup(backend, broker, tmp_path, station_a)
    try:
        last_seq, last_block = up.last_seq(), up.last_block()
        anchored = max(i["block"] for i in up.anchor_items())
        up.everything()
        wait_for(lambda: acks.acks.get(up.gw, {}).get("anchors") == anchored, what="final ack")
        ack = acks.acks[up.gw]
        assert (ack["records"], ack["blocks"], ack["v"]) == (last_seq, last_block, 1)
        s = _status(arch, up.gw)
        assert s["records"] == last_seq + 1 and s["highest_contiguous_seq"] == last_seq
        assert s["blocks_verified"] == last_block + 1 and s["blocks_pending"] == 0
        assert s["rejections"] == {}
        assert arch.reader.gateways()[up.gw].profile is not None
        view = ArchiveView(arch.reader, up.gw)
        # the same code path over the archive gives the same bundle as over the journal
        for seq in (0, last_seq // 2, up.anchored_seq()):
            assert export_record(view, seq) == export_record(up.j, seq)
        rng = export_range(view, "probe-1", kit.T0, kit.T0 + 3_600_000)
        assert rng == export_range(up.j, "probe-1", kit.T0, kit.T0 + 3_600_000)
        assert verify_bundle(rng, gateway_key=station_a.public_key()).ok
    finally:
        arch.stop()
        arch.reader.close()
        up.close()
        acks.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocks_before_their_records_wait_and_are_not_acknowledged(backend: str, broker: Mosquitto, tmp_path: Path,
                                                                   station_a: kit.Built) -> None:
    arch, up, acks = _setup(backend, broker, tmp_path, station_a)
    try:
        last_block = up.last_block()
        b1 = up.j.block(1)
        assert b1 is not None
        up.records(0, b1.last_seq - 1)          # block 1 lacks its last record
        up.blocks()                             # every header, before most of its records
        _quiet(arch, 1)
        wait_for(lambda: _status(arch, up.gw)["blocks"] == last_block + 1, what="headers stored")
        s = _status(arch, up.gw)
        assert s["blocks_verified"] == 1 and s["blocks_pending"] == last_block  # only block 0 is complete
        b0 = up.j.block(0)
        assert b0 is not None
        # records of block 1 are stored but not acknowledged: their block is not verified yet
        wait_for(lambda: tuple(acks.acks.get(up.gw, {}).get(k) for k in ("blocks", "records")) == (0, b0.last_seq),
                 what="the ack of block 0 and its records only")
        assert _status(arch, up.gw)["highest_contiguous_seq"] == b1.last_seq - 1
        up.records(b1.last_seq, 10**9)          # the rest arrives after its blocks
        wait_for(lambda: acks.acks[up.gw]["blocks"] == last_block, what="every block verified")
        assert acks.acks[up.gw]["records"] == up.last_seq() and _status(arch, up.gw)["rejections"] == {}
    finally:
        arch.stop()
        arch.reader.close()
        up.close()
        acks.close()


def _resign_record(up: kit.Upstream, item: dict[str, Any], **change: Any) -> dict[str, Any]:
    rec = json.loads(item["body"])
    rec.update(change)
    body = canonical(rec)
    return {"seq": item["seq"], "body": body.decode(), "sig": up.key.sign(record_message(body)).hex()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_and_broken_input_is_rejected_with_its_reason_and_the_archive_keeps_going(
        backend: str, broker: Mosquitto, tmp_path: Path, station_a: kit.Built) -> None:
    arch, up, acks = _setup(backend, broker, tmp_path, station_a)
    gw = up.gw
    try:
        up.hello()
        b0, b1, b2 = up.j.block(0), up.j.block(1), up.j.block(2)
        assert b0 and b1 and b2
        up.records(0, b1.last_seq)
        up.blocks(0, 1)
        wait_for(lambda: _status(arch, gw)["blocks_verified"] == 2, what="blocks 0-1 verified")
        stored = _status(arch, gw)["records"]

        # duplicates re-sent: counted, nothing changes
        up.records(0, b0.last_seq, batch=100)
        up.blocks(0, 1)
        wait_for(lambda: _status(arch, gw)["counters"].get("duplicate_blocks") == 2, what="duplicates counted")
        assert _status(arch, gw)["counters"]["duplicate_records"] == b0.last_seq + 1
        assert _status(arch, gw)["records"] == stored

        # altered in transit: the signature fails, the altered bytes are never stored
        item = up.record_items(b2.first_seq, b2.first_seq)[0]
        rec = json.loads(item["body"])
        rec["time_ms"] += 1
        altered = dict(item, body=canonical(rec).decode())
        up.send("records", up.records_msg([altered]))
        spaced = dict(item, body=item["body"].replace(",", ", ", 1))
        up.send("records", up.records_msg([spaced]))
        wait_for(lambda: _status(arch, gw)["rejections"].get("not_canonical") == 1, what="not_canonical")
        assert _status(arch, gw)["rejections"]["bad_signature"] == 1
        assert not arch.reader.has_record(gw, item["seq"])
        up.send("records", up.records_msg([item]))                          # the correct copy is accepted
        wait_for(lambda: arch.reader.has_record(gw, item["seq"]), what="the correct copy stored")
        assert arch.reader.records_between(gw, item["seq"], item["seq"])[0][1] == item["body"].encode()

        # a validly signed, different record for a stored seq: someone rewrites history
        up.send("records", up.records_msg([_resign_record(up, up.record_items(3, 3)[0], time_ms=1)]))
        wait_for(lambda: _status(arch, gw)["rejections"].get("conflict") == 1, what="conflict")
        assert arch.reader.records_between(gw, 3, 3)[0][1] == bytes(up.j.records_range(3, 3)[0].body)

        # a header whose root does not match its records: block and records rejected
        up.records(b2.first_seq, b2.last_seq)
        hdr = json.loads(bytes(b2.header))
        hdr["root"] = "ab" * 32
        forged = canonical(hdr)
        up.send("blocks", {"v": 1, "gateway": gw, "items": [
            {"block": 2, "header": forged.decode(), "sig": up.key.sign(header_message(forged)).hex()}]})
        wait_for(lambda: _status(arch, gw)["rejections"].get("root_mismatch") == 1, what="root_mismatch")
        assert arch.reader.get_block(gw, 2) is None and not arch.reader.has_record(gw, b2.first_seq)

        # a header that does not link to the stored chain
        hdr = json.loads(bytes(b2.header))
        hdr["prev"] = "11" * 32
        unlinked = canonical(hdr)
        up.send("blocks", {"v": 1, "gateway": gw, "items": [
            {"block": 2, "header": unlinked.decode(), "sig": up.key.sign(header_message(unlinked)).hex()}]})
        wait_for(lambda: _status(arch, gw)["rejections"].get("chain_mismatch") == 1, what="chain_mismatch")

        # unknown gateway, key mismatch, gateway mismatch, malformed, oversized, bad anchor
        up.send("records", up.records_msg(up.record_items(0, 1)), gw="ghost-gw")
        other = dict(up.hello_msg(), public_key=public_hex(kit.load_private_key(station_a.root / "ledger.key")))
        up.send("hello", other)
        up.send("records", dict(up.records_msg(up.record_items(0, 1)), gateway="station-b"))
        up.send("records", b"{not json")
        up.send("records", b'{"v": 1, "gateway": "station-a", "items": [' + b" " * (1 << 20) + b"]}")
        anchor = dict(up.anchor_items()[0], header_hash="cd" * 32)
        up.send("anchors", {"v": 1, "gateway": gw, "items": [anchor]})
        wait_for(lambda: _status(arch, gw)["rejections"].get("anchor_mismatch") == 1, what="anchor_mismatch")
        rj = _status(arch, gw)["rejections"]
        assert (rj["key_mismatch"], rj["gateway_mismatch"], rj["malformed"], rj["too_large"]) == (1, 1, 1, 1)
        assert arch.reader.status("ghost-gw")["rejections"] == {"unknown_gateway": 1}
        assert arch.reader.unenrolled_rejections() == {"ghost-gw": 1}
        recent = {r.reason: r for r in arch.reader.rejections(limit=50)}
        assert recent["bad_signature"].ref == f"seq {item['seq']}" and recent["bad_signature"].stream == "records"
        assert "1048" in recent["too_large"].detail

        # and it keeps going: the rest of the stream (and the real block 2) verifies
        up.records(b2.first_seq, 10**9)
        up.blocks(2)
        up.anchors()
        wait_for(lambda: acks.acks.get(gw, {}).get("blocks") == up.last_block(), what="everything verified")
        assert acks.acks[gw]["records"] == up.last_seq()
        assert _status(arch, gw)["records"] == up.last_seq() + 1
        assert arch.thread is not None and arch.thread.is_alive()
    finally:
        arch.stop()
        arch.reader.close()
        up.close()
        acks.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_alarms_ahead_and_seqs_pruned_before_forwarding(backend: str, broker: Mosquitto, tmp_path: Path,
                                                       station_a: kit.Built) -> None:
    """Alarms come first on their own stream, then again in order (a no-op); seqs the gateway
    pruned before it ever sent them are a finding, and their blocks keep their headers."""
    arch, up, acks = _setup(backend, broker, tmp_path, station_a)
    gw = up.gw
    try:
        items = up.record_items(0, 10**9)
        alarms = [i for i in items if json.loads(i["body"])["type"] == "alarm"]
        assert alarms, "station A's excursion raises an alarm"
        up.hello()
        up.send("alarms", up.records_msg(alarms, stream="alarms"))
        rest = [i for i in items if i["seq"] >= 5]
        up.send("records", dict(up.records_msg(rest[:6]), skipped_from=0))
        up.send("records", up.records_msg(rest[6:]))
        up.blocks()
        up.anchors()
        wait_for(lambda: acks.acks.get(gw, {}).get("blocks") == up.last_block(), what="every block accepted")
        assert acks.acks[gw]["records"] == up.last_seq()
        s = _status(arch, gw)
        assert s["skipped"] == [[0, 4]] and s["rejections"] == {}
        assert s["counters"]["duplicate_records"] == len([a for a in alarms if a["seq"] >= 5])
        assert [arch.reader.get_block(gw, n).verified for n in (0, 1, 2)] == [2, 2, 1]
        view = ArchiveView(arch.reader, gw)
        with pytest.raises(Exception, match="pruned before forwarding"):
            export_record(view, 6)
        seq = up.j.block(2).first_seq
        assert export_record(view, seq) == export_record(up.j, seq)  # block 1's header still links the chain
    finally:
        arch.stop()
        arch.reader.close()
        up.close()
        acks.close()


def test_postgres_outage_stops_acks_and_resumes_without_loss(broker: Mosquitto, tmp_path: Path,
                                                             station_a: kit.Built) -> None:
    """The database server goes away mid-stream: nothing is acknowledged while it is down
    (the broker keeps the messages), and the archive reconnects and catches up."""
    import psycopg

    from gateway.testing.postgres import Postgres

    with Postgres(tmp_path / "pg") as pg:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute("CREATE DATABASE outage")
        dsn = pg.dsn.rsplit("/", 1)[0] + "/outage"
        prefix = kit.new_prefix()
        toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, f'postgres = "{dsn}"', [station_a])
        arch = kit.start_archive(toml)
        arch.reader = open_store(arch.cfg.store, readonly=True)
        up, acks = kit.Upstream(broker.port, prefix, station_a), kit.AckWatcher(broker.port, prefix)
        try:
            b1 = up.j.block(1)
            assert b1 is not None
            up.hello()
            up.records(0, b1.last_seq)
            up.blocks(0, 1)
            wait_for(lambda: acks.acks.get(up.gw, {}).get("blocks") == 1, what="blocks 0-1 acknowledged")
            pg.stop()
            done = arch.processed
            up.records(b1.last_seq + 1, 10**9)
            up.blocks(2)
            up.anchors()
            wait_for(lambda: not arch.store_ok, what="the archive noticing the outage")
            assert arch.processed == done and acks.acks[up.gw]["blocks"] == 1  # nothing taken, nothing acked
            pg.start()
            wait_for(lambda: acks.acks[up.gw].get("blocks") == up.last_block(), what="caught up", timeout=30)
            assert acks.acks[up.gw]["records"] == up.last_seq() and arch.store_ok
            s = arch.reader.status(up.gw)
            assert s["records"] == up.last_seq() + 1 and s["rejections"] == {}
        finally:
            arch.stop()
            arch.reader.close()
            up.close()
            acks.close()


def test_archive_enrolled_late_starts_the_chain_at_the_first_block_it_gets(tmp_path: Path,
                                                                            station_a: kit.Built) -> None:
    """A gateway that pruned blocks 0-1 before it was enrolled: the chain starts at block 2,
    records before it are a finding, and everything after is acknowledged."""
    from gateway.archive import config as archive_config
    from gateway.archive.consumer import Archive

    toml = kit.archive_toml(tmp_path / "archive.toml", 1883, "p", kit.store_line("sqlite", tmp_path), [station_a])
    cfg = archive_config.load(toml)
    arch = Archive(cfg, open_store(cfg.store))
    j = station_a.journal()
    try:
        b2 = j.block(2)
        assert b2 is not None
        recs = [{"seq": r.seq, "body": bytes(r.body).decode(), "sig": bytes(r.sig).hex()}
                for r in j.records_range(b2.first_seq, 10**9)]
        blocks = [{"block": b.block, "header": bytes(b.header).decode(), "sig": bytes(b.sig).hex()}
                  for b in j.blocks_between(2, 10**9)]
        gw = station_a.gateway_id
        arch.process([(f"p/{gw}/records", json.dumps({"v": 1, "gateway": gw, "items": recs,
                                                      "skipped_from": 0}).encode())])
        assert arch.ack(gw).as_tuple() == (-1, -1, -1)       # records without a verified block: not yet
        arch.process([(f"p/{gw}/blocks", json.dumps({"v": 1, "gateway": gw, "items": blocks}).encode())])
        last = j.last_block()
        assert last is not None
        assert arch.ack(gw).as_tuple()[:2] == (last.last_seq, last.block)
        s = arch.store.status(gw)
        assert s["skipped"] == [[0, b2.first_seq - 1]] and s["rejections"] == {} and s["blocks_pending"] == 0
        # a block from before the chain's start whose predecessor is not here cannot be linked
        b1 = j.block(1)
        assert b1 is not None
        early = [{"block": 1, "header": bytes(b1.header).decode(), "sig": bytes(b1.sig).hex()}]
        arch.process([(f"p/{gw}/blocks", json.dumps({"v": 1, "gateway": gw, "items": early}).encode())])
        assert arch.store.status(gw)["rejections"] == {"chain_gap": 1}
    finally:
        j.close()
        arch.store.close()
