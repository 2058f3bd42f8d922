"""Every bad-input kind is quarantined with its reason, and never blocks good data beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.message import body, build_message, encode, sign_body, temperature
from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.station import StationDir, make_station
from gateway.transports.inbound import Inbound


@pytest.fixture
def station(tmp_path: Path) -> StationDir:
    return make_station(tmp_path, 1883, sensors=2, topic_prefix="site/sensors")


@pytest.fixture
def pipe(station: StationDir) -> Pipeline:
    cfg = configmod.load(station.config_path)
    j = Journal(cfg.journal.path)
    return Pipeline(cfg.ingest, j, Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 0), FakeClock())


def good(station: StationDir, sensor: str = "probe-1", ctr: int = 1, value: int = 4000) -> Inbound:
    return Inbound("mqtt", station.topic(sensor),
                   build_message(station.sensor_keys[sensor], sensor, ctr, 1, [temperature(value)]))


def raw_msg(station: StationDir, sensor: str, fields: dict, key: Ed25519PrivateKey | None = None) -> bytes:
    m = dict(fields)
    m["sig"] = sign_body(key or station.sensor_keys[sensor], m)
    return encode(m)


def quarantine(pipe: Pipeline) -> list[tuple[str, str]]:
    return [(r, d) for r, d in pipe.journal.db.execute("SELECT reason, detail FROM quarantine ORDER BY id")]


def bad_inputs(st: StationDir) -> list[tuple[str, Inbound, str, str]]:
    """(name, message, expected reason, a phrase the detail must contain)."""
    p1 = st.topic("probe-1")
    unknown_key = Ed25519PrivateKey.generate()
    tampered = json.loads(build_message(st.sensor_keys["probe-1"], "probe-1", 50, 1, [temperature(5000)]))
    tampered["readings"][0]["value"] = 9000
    other_key_sig = raw_msg(st, "probe-1", body("probe-1", 51, 1, [temperature(5000)]), key=unknown_key)
    return [
        ("garbage", Inbound("mqtt", p1, os.urandom(40) + b"\xff"), "not-utf8", "not UTF-8"),
        ("malformed json", Inbound("mqtt", p1, b'{"v":1,"sensor":'), "malformed-json", ""),
        ("bad signature", Inbound("mqtt", p1, encode(tampered)), "bad-signature", "does not verify with 'probe-1'"),
        ("signed by another key", Inbound("mqtt", p1, other_key_sig), "bad-signature", "enrolled key"),
        ("unknown sensor", Inbound("mqtt", st.topic("probe-9"),
                                   build_message(unknown_key, "probe-9", 1, 1, [temperature(4000)])),
         "unknown-sensor", "'probe-9' is not enrolled"),
        ("missing field", Inbound("mqtt", p1, raw_msg(st, "probe-1", {"v": 1, "sensor": "probe-1", "t": 1,
                                                                      "readings": [temperature(1)]})),
         "missing-field", "[ctr]"),
        ("float value", Inbound("mqtt", p1, b'{"v":1,"sensor":"probe-1","ctr":60,"t":1,"readings":'
                                            b'[{"kind":"temperature","value":4.5,"unit":"mC"}],"sig":"00"}'),
         "non-integer", "float 4.5"),
        ("string value", Inbound("mqtt", p1, raw_msg(st, "probe-1", body("probe-1", 61, 1, [
            {"kind": "temperature", "value": "4500", "unit": "mC"}]))), "non-integer", "readings[0].value"),
        ("absurd value", Inbound("mqtt", p1, build_message(st.sensor_keys["probe-1"], "probe-1", 62, 1,
                                                           [temperature(900_000)])), "implausible-value", "900000"),
        ("wrong unit", Inbound("mqtt", p1, raw_msg(st, "probe-1", body("probe-1", 63, 1, [
            {"kind": "temperature", "value": 4500, "unit": "C"}]))), "bad-unit", "readings[0].unit"),
        ("huge message", Inbound("mqtt", p1, b"{" + b" " * 2_000_000 + b"}"), "oversize", "> limit 16384"),
        ("topic of another sensor",
         Inbound("mqtt", st.topic("probe-2"),
                 build_message(st.sensor_keys["probe-1"], "probe-1", 64, 1, [temperature(1)])),
         "topic-mismatch", "published on topic"),
        ("no adapter for topic", Inbound("mqtt", "elsewhere/x", b"{}"), "no-adapter", "elsewhere/x"),
    ]


def test_each_bad_input_is_quarantined_with_its_reason(station: StationDir, pipe: Pipeline) -> None:
    cases = bad_inputs(station)
    # good readings before and after every bad one, in ONE batch
    batch: list[Inbound] = []
    for i, (_, msg, _, _) in enumerate(cases):
        batch.append(good(station, "probe-2", ctr=i + 1, value=i))
        batch.append(msg)
    batch.append(good(station, "probe-2", ctr=1000, value=1000))
    res = pipe.process(batch)
    assert [json.loads(r.body)["value"] for r in res.records] == list(range(len(cases))) + [1000]
    got = quarantine(pipe)
    assert [r for r, _ in got] == [c[2] for c in cases]
    for (name, _, _, phrase), (_, detail) in zip(cases, got):
        assert phrase in detail, f"{name}: {detail!r} lacks {phrase!r}"
    # raw bytes are kept, but bounded
    (n_raw, max_len) = pipe.journal.db.execute("SELECT MAX(raw_len), MAX(length(raw)) FROM quarantine").fetchone()
    assert n_raw == 2_000_002 and max_len == 1024
    assert pipe.journal.stats()["quarantine"]["oversize"] == 1


def test_replayed_counter_is_quarantined(station: StationDir, pipe: Pipeline) -> None:
    pipe.process([good(station, ctr=5000, value=1)])
    res = pipe.process([good(station, ctr=5000, value=2),   # a counter re-used with other content
                        good(station, ctr=4990, value=3),   # late but never seen: a resent reading, kept
                        good(station, ctr=5001, value=4),
                        good(station, ctr=4990, value=5),   # now it has been seen
                        good(station, ctr=5001 - 4096, value=6)])  # older than the replay window
    assert [json.loads(r.body)["value"] for r in res.records] == [3, 4]
    q = quarantine(pipe)
    assert [r for r, _ in q] == ["replayed-counter"] * 3
    assert "counter 5000 was already accepted" in q[0][1] and "counter 4990 was already accepted" in q[1][1]
    assert "older than the replay window (4096 below the newest, 5001)" in q[2][1]


def test_reordered_delivery_after_reconnect_keeps_every_reading(station: StationDir, pipe: Pipeline) -> None:
    """An MQTT client sends what it queued while disconnected after newer messages (measured
    with paho 2.2 across broker restarts): every reading must still be journaled once."""
    order = [1, 2, 3, 50, 51, 4, 5, 6, 52, 7]
    for c in order:
        pipe.process([good(station, ctr=c, value=c)])
    vals = [json.loads(r.body)["value"] for r in pipe.journal.records_range(0, 100)]
    assert vals == order and quarantine(pipe) == []


def test_verbatim_replay_vs_broker_redelivery(station: StationDir, pipe: Pipeline) -> None:
    msg = good(station, ctr=7)
    pipe.process([msg])
    # the same bytes again without the DUP flag: someone replayed a captured message
    pipe.process([Inbound("mqtt", msg.topic, msg.payload)])
    # with DUP set (the broker resending what we may not have acked): kept once, not alarming
    res = pipe.process([Inbound("mqtt", msg.topic, msg.payload, dup=True)])
    assert res.records == [] and res.counts["duplicate"] == 1
    assert [r for r, _ in quarantine(pipe)] == ["replay"]
    assert pipe.journal.stats()["records"] == 1


def test_counters_survive_restart(station: StationDir, pipe: Pipeline) -> None:
    pipe.process([good(station, ctr=10), good(station, ctr=8)])
    cfg = configmod.load(station.config_path)
    again = Pipeline(cfg.ingest, pipe.journal, Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 2), FakeClock())
    res = again.process([good(station, ctr=10, value=7), good(station, ctr=8, value=7), good(station, ctr=9)])
    assert [r for r, _ in quarantine(again)] == ["replayed-counter", "replayed-counter"]  # the window survived
    assert len(res.records) == 1  # 9 was never seen


def test_failed_commit_leaves_no_state_behind(station: StationDir, pipe: Pipeline) -> None:
    from gateway.core.errors import JournalError

    blocker = Journal(pipe.journal.path)
    blocker.db.execute("PRAGMA busy_timeout=0")
    pipe.journal.db.execute("PRAGMA busy_timeout=50")
    blocker.db.execute("BEGIN EXCLUSIVE")
    with pytest.raises(JournalError):
        pipe.process([good(station, ctr=3)])
    blocker.db.execute("ROLLBACK")
    # the same message is accepted on retry: counters and seq were rolled back too
    res = pipe.process([good(station, ctr=3)])
    assert [json.loads(r.body)["seq"] for r in res.records] == [0]


def test_quarantine_is_bounded(station: StationDir, pipe: Pipeline) -> None:
    pipe.journal.quarantine_max_rows = 50
    for _ in range(4):
        pipe.process([Inbound("mqtt", station.topic("probe-1"), b"nope")] * 30)
    n, = pipe.journal.db.execute("SELECT COUNT(*) FROM quarantine").fetchone()
    assert n == 50
    assert pipe.journal.stats()["quarantine"] == {"malformed-json": 120}
