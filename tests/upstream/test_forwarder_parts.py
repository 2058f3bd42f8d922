"""The forwarder's pure parts and its configuration: batch cuts, the contiguous cursor, the
ack parser, ``[upstream]`` errors that name the key, and the password file's permissions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.core.errors import ConfigError
from gateway.forward import Forwarder, read_password
from gateway.forward.window import Window
from gateway.forward.wire import MAX_BATCH_BYTES, AckError, anchors_batch, parse_ack, records_batch
from gateway.journal import Journal
from gateway.testing.station import make_station
from ledger_client.keys import load_private_key

BASE = {"gateway": {"id": "gw-1"}}


def up(**kw: object) -> configmod.UpstreamConfig:
    return configmod.parse({**BASE, "upstream": {"enabled": True, "host": "archive.example", **kw}},
                           Path("/tmp")).upstream


# -- config ---------------------------------------------------------------------------------

def test_defaults_and_tls_port() -> None:
    u = up()
    assert (u.port, u.prefix, u.client_id, u.batch_max, u.max_inflight) == (1883, "traceseal/up", "traceseal-up-gw-1",
                                                                             500, 4)
    t = up(tls={"ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem"})
    assert t.port == 8883 and t.tls_ca == Path("/tmp/ca.pem") and t.tls_key == Path("/tmp/k.pem")
    assert configmod.parse(BASE, Path("/tmp")).upstream.enabled is False


@pytest.mark.parametrize("upstream, key, problem", [
    ({"enabled": True}, "upstream.host", "is required when upstream.enabled = true"),
    ({"enabled": "yes", "host": "h"}, "upstream.enabled", "must be bool"),
    ({"enabled": True, "host": "h", "port": 0}, "upstream.port", "must be in 1..65535"),
    ({"enabled": True, "host": "h", "prefix": "up/#"}, "upstream.prefix", "without '\\+', '#'"),
    ({"enabled": True, "host": "h", "prefix": "/up"}, "upstream.prefix", "leading/trailing"),
    ({"enabled": True, "host": "h", "batch_max": 0}, "upstream.batch_max", "must be in 1..10000"),
    ({"enabled": True, "host": "h", "max_inflight": 101}, "upstream.max_inflight", "must be in 1..100"),
    ({"enabled": True, "host": "h", "keepalive": 1}, "upstream.keepalive", "must be in 5..65535"),
    ({"enabled": True, "host": "h", "password_file": "pw"}, "upstream.username", "is required when"),
    ({"enabled": True, "host": "h", "tls": {"cert_file": "c.pem"}}, "upstream.tls.key_file", "both cert_file"),
    ({"enabled": True, "host": "h", "tls": {"cert_file": "c", "key_file": "k"}}, "upstream.tls.ca_file",
     "is required"),
    ({"enabled": True, "host": "h", "tls": {"cafile": "x"}}, "upstream.tls.cafile",
     "unknown key; did you mean 'ca_file'"),
    ({"enabled": True, "host": "h", "batchmax": 5}, "upstream.batchmax", "did you mean 'batch_max'"),
    ({"enabled": True, "host": "h", "transport": "http"}, "upstream.transport", "must be 'mqtt' or 'https'"),
    ({"enabled": True, "transport": "https"}, "upstream.url", "is required when upstream.transport = 'https'"),
    ({"enabled": True, "transport": "https", "url": "http://a.example/up"}, "upstream.url",
     "must be an https:// URL"),
])
def test_bad_upstream_config_names_the_key(upstream: dict, key: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as exc:
        configmod.parse({**BASE, "upstream": upstream}, Path("/tmp"))
    assert exc.value.key == key


def test_gateway_id_must_be_a_topic_level_and_client_ids_must_differ() -> None:
    with pytest.raises(ConfigError, match="ASCII letters") as exc:
        configmod.parse({"gateway": {"id": "gwé"}, "upstream": {"enabled": True, "host": "h"}}, Path("/tmp"))
    assert exc.value.key == "gateway.id"
    with pytest.raises(ConfigError, match="disconnect each other") as exc:
        configmod.parse({**BASE, "mqtt": {"client_id": "same"},
                         "upstream": {"enabled": True, "host": "127.0.0.1", "client_id": "same"}}, Path("/tmp"))
    assert exc.value.key == "upstream.client_id"


def test_password_file_must_be_private(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret-upstream\n")
    pw.chmod(0o644)
    u = configmod.parse({**BASE, "upstream": {"enabled": True, "host": "h", "username": "gw",
                                              "password_file": str(pw)}}, tmp_path).upstream
    with pytest.raises(ConfigError, match="mode 0644 lets group/others read the password") as exc:
        read_password(u)
    assert exc.value.key == "upstream.password_file" and "s3cret" not in str(exc.value)
    pw.chmod(0o600)
    assert read_password(u) == "s3cret-upstream"
    pw.unlink()
    with pytest.raises(ConfigError, match=f"upstream.password_file: {pw}: no such password file"):
        read_password(u)


def test_gateway_refuses_to_start_with_a_readable_password_file(tmp_path: Path) -> None:
    pw = tmp_path / "st" / "up.pw"
    st = make_station(tmp_path / "st", 1883, extra_toml=f"""
[upstream]
enabled = true
host = "127.0.0.1"
username = "gw"
password_file = "{pw}"
""")
    pw.write_text("pw")
    pw.chmod(0o644)
    cfg = configmod.load(st.config_path)
    with pytest.raises(ConfigError, match="upstream.password_file: .*mode 0644"):
        Forwarder(cfg.forward, load_private_key(cfg.key_file), FakeClock())


# -- the in-flight window --------------------------------------------------------------------

def test_sent_moves_only_over_contiguous_acks() -> None:
    w = Window(sent=9, limit=3)
    for mid, last in ((1, 19), (2, 29), (3, 39)):
        assert w.room()
        w.push(mid, last)
    assert not w.room() and w.head == 39 and w.peak == 3
    assert w.ack(2) is False and w.ack(3) is False  # 1 still missing: a restart must resend it
    assert w.sent == 9
    assert w.ack(1) is True and w.sent == 39 and w.in_flight == 0
    assert w.ack(1) is False  # a second PUBACK for the same id changes nothing
    w.push(4, 49)
    w.reset()  # the broker refused it: resend from the cursor
    assert (w.sent, w.head, w.in_flight) == (39, 39, 0)
    w.advance(60)
    assert (w.sent, w.head) == (60, 60)


# -- batches ---------------------------------------------------------------------------------

def rows(seqs: list[int], body_bytes: int = 100) -> list[tuple[int, int, bytes, bytes]]:
    return [(s, 1000 + s, json.dumps({"seq": s, "pad": "x" * body_bytes}).encode(), bytes(64)) for s in seqs]


def test_records_batch_cuts_at_count_bytes_and_holes() -> None:
    b = records_batch("gw-1", "records", rows(list(range(10, 30))), 9, batch_max=5)
    assert b is not None and b.items == 5 and b.last == 14
    obj = json.loads(b.payload)
    assert obj["stream"] == "records" and obj["gateway"] == "gw-1" and "skipped_from" not in obj
    assert [i["seq"] for i in obj["items"]] == [10, 11, 12, 13, 14] and obj["items"][0]["sig"] == "00" * 64
    big = records_batch("gw-1", "records", rows(list(range(0, 400)), body_bytes=2000), -1, batch_max=10_000)
    assert big is not None and len(big.payload) <= MAX_BATCH_BYTES and 90 < big.items < 400
    # seqs 0..4 were pruned before they were sent; 8 is missing further in
    gap = records_batch("gw-1", "records", rows([5, 6, 7, 9]), -1, batch_max=10)
    assert gap is not None and json.loads(gap.payload)["skipped_from"] == 0 and gap.last == 7
    sparse = records_batch("gw-1", "alarms", rows([5, 50, 500]), -1, batch_max=10)
    assert sparse is not None and sparse.last == 500 and "skipped_from" not in json.loads(sparse.payload)
    assert records_batch("gw-1", "records", [], 3, batch_max=10) is None


def test_anchors_of_one_block_are_never_split() -> None:
    a = [(b, bytes(32), "local", json.dumps({"k": i}), 5) for i, b in enumerate((1, 2, 2, 3))]
    b = anchors_batch("gw-1", a, batch_max=2)
    assert b is not None and b.last == 1 and b.items == 1
    b = anchors_batch("gw-1", a[1:], batch_max=1)
    assert b is not None and b.last == 2 and b.items == 2
    items = json.loads(b.payload)["items"]
    assert [i["anchor"] for i in items] == [{"k": 1}, {"k": 2}] and items[0]["header_hash"] == "00" * 32


@pytest.mark.parametrize("payload, problem", [
    (b"nope", "not JSON"),
    (b'{"v": 2, "gateway": "gw-1", "records": 1, "blocks": 1, "anchors": 1}', "no \"v\": 1"),
    (b'{"v": 1, "gateway": "gw-2", "records": 1, "blocks": 1, "anchors": 1}', "for gateway 'gw-2'"),
    (b'{"v": 1, "gateway": "gw-1", "records": "1", "blocks": 1, "anchors": 1}', "records must be an integer"),
    (b'{"v": 1, "gateway": "gw-1", "records": 1, "blocks": -2, "anchors": 1}', "blocks must be an integer >= -1"),
    (b'{"v": 1, "gateway": "gw-1", "records": 1, "blocks": 1}', "anchors must be"),
])
def test_bad_acks_are_refused(payload: bytes, problem: str) -> None:
    with pytest.raises(AckError, match=problem):
        parse_ack(payload, "gw-1")


def test_cursors_and_archived_seq(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    assert j.archived_seq() is None  # forwarding never enabled: retention needs no ack
    j.set_forwarding(True)
    assert j.archived_seq() == -1 and j.forward_cursors()["records"] == (-1, -1)
    j.save_forward_cursors(sent={"records": 41, "blocks": 3})
    j.save_forward_cursors(archived={"records": 30, "alarms": 30})
    assert j.forward_cursors() == {"records": (41, 30), "alarms": (-1, 30), "blocks": (3, -1), "anchors": (-1, -1)}
    assert j.archived_seq() == 30
    j.set_forwarding(False)
    assert j.archived_seq() is None
    plan = " ".join(r[3] for r in j.db.execute(
        "EXPLAIN QUERY PLAN SELECT seq FROM records WHERE type = 'alarm' AND seq > 5 ORDER BY seq LIMIT 9"))
    assert "records_alarms" in plan  # a new alarm is found without scanning the readings


def test_https_rounds_are_fair_so_blocks_move_under_steady_load() -> None:
    """The HTTPS forwarder sends one batch per round. With records always due (steady load),
    starting every round at records starved blocks, so the archive's ack stood still (found by
    fault row 11). Alarms stay first; the other streams take turns."""
    from gateway.forward.streams import fair_order

    always_due = {"records", "blocks", "anchors"}
    sent: list[str] = []
    last = None
    for _ in range(9):
        stream = next(s for s in fair_order(last) if s in always_due)
        sent.append(stream)
        last = stream
    assert sent == ["records", "blocks", "anchors"] * 3
    assert all(fair_order(s)[0] == "alarms" for s in (None, "records", "blocks", "anchors"))
    assert sorted(fair_order("blocks")) == sorted(["alarms", "records", "blocks", "anchors"])
