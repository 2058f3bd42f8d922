"""Prometheus metrics read from a real gateway's journal and live state at scrape time:
the families are there, with the values the journal and the alarm book hold."""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client.parser import text_string_to_metric_families

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.dashboard import GatewaySource
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.dashboard import Rig, StaticSource, make_rig, wait_for
from gateway.testing.mosquitto import free_port
from gateway.testing.station import make_station
from gateway.transports.inbound import Inbound
from gateway.web import metrics
from gateway.web.app import create_app
from gateway.web.settings import WebConfig


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path / "rig", scanners=False)
    yield r
    r.close()


def test_metrics_families_and_values(rig: Rig) -> None:
    for _ in range(5):
        rig.reading(5000)
    for mc in (8100, 9000, 9500, 9900, 10000, 10100, 10200):  # high alarm after 5 min
        rig.reading(mc)
    wait_for(lambda: bool(rig.alarm_records("raised")), what="alarm")
    topic = rig.station.topic("probe-1")
    forged = build_message(Ed25519PrivateKey.generate(), "probe-1", 999, rig.clock.now_ms(), [temperature(4000)])
    for payload in (b"not json", b"\xff\xfe", forged):
        rig.gw.inbox.put(Inbound("mqtt", topic, payload))
    wait_for(lambda: sum(rig.journal.stats()["quarantine"].values()) == 3, what="quarantined")
    wait_for(lambda: rig.journal.stats()["anchored_block"] >= 0, what="the alarm's block anchored")

    c = create_app(GatewaySource(rig.gw), WebConfig(public_read=True)).test_client()
    r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = r.get_data(as_text=True)
    assert {"traceseal_readings", "traceseal_records", "traceseal_quarantined", "traceseal_journal_unsealed_records",
            "traceseal_blocks_sealed", "traceseal_unanchored_blocks", "traceseal_anchors_confirmed",
            "traceseal_anchors_pending", "traceseal_anchor_outbox", "traceseal_last_anchor_age_seconds",
            "traceseal_alarms_active", "traceseal_alarms_unacknowledged", "traceseal_ledger_connected",
            "traceseal_journal_ok", "traceseal_clock_synced", "traceseal_disk_free_bytes",
            "traceseal_gateway_info"} <= families(text)
    m = scrape(text)
    stats = rig.journal.stats()
    assert m[("traceseal_readings_total", ())] == 12
    assert m[("traceseal_records_total", (("type", "reading"),))] == 12
    assert m[("traceseal_records_total", (("type", "alarm"),))] == len(rig.alarm_records())
    assert m[("traceseal_quarantined_total", (("reason", "bad-signature"),))] == 1
    assert sum(v for (n, _), v in m.items() if n == "traceseal_quarantined_total") == 3
    assert m[("traceseal_blocks_sealed_total", ())] == stats["blocks"] >= 1  # the alarm sealed its block at once
    assert m[("traceseal_journal_unsealed_records", ())] == stats["unsealed_records"]
    assert (m[("traceseal_anchors_confirmed_total", ())]
            == rig.journal.db.execute("SELECT COUNT(*) FROM anchors").fetchone()[0])
    assert m[("traceseal_unanchored_blocks", ())] == stats["blocks"] - 1 - stats["anchored_block"]
    assert m[("traceseal_alarms_active", (("kind", "high"), ("severity", "alarm")))] == 1
    assert m[("traceseal_alarms_unacknowledged", (("kind", "high"), ("severity", "alarm")))] == 1
    last_ms = rig.journal.db.execute("SELECT MAX(time_ms) FROM anchors").fetchone()[0]
    assert m[("traceseal_last_anchor_timestamp_seconds", ())] == last_ms / 1000
    assert m[("traceseal_last_anchor_age_seconds", ())] == (rig.clock.now_ms() - last_ms) / 1000
    assert m[("traceseal_ledger_connected", ())] == 1 and m[("traceseal_journal_ok", ())] == 1
    assert m[("traceseal_clock_synced", ())] == 1 and m[("traceseal_journal_readable", ())] == 1
    assert ("traceseal_broker_connected", ()) not in m  # this rig has no MQTT
    assert m[("traceseal_gateway_info", (("gateway", "station-01"), ("ledger", "local")))] == 1

    rig.gw.station.acknowledge("nurse")  # the book changes: the next scrape says so
    wait_for(lambda: bool(rig.alarm_records("acknowledged")), what="ack")
    for _ in range(3):
        rig.reading(10300)
    m = scrape(c.get("/metrics").get_data(as_text=True))
    assert m[("traceseal_readings_total", ())] == 15  # counted once each, across scrapes
    assert ("traceseal_alarms_unacknowledged", (("kind", "high"), ("severity", "alarm"))) not in m
    assert m[("traceseal_alarms_active", (("kind", "high"), ("severity", "alarm")))] == 1


def test_metrics_of_an_empty_and_an_unreadable_journal(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    cfg = configmod.load(st.config_path)
    source = StaticSource(cfg, FakeClock(), status={"broker_connected": False, "ledger_connected": False,
                                                    "journal_ok": False, "clock_synced": False})
    reg = metrics.registry_for(source)
    m = scrape(metrics.render(reg).decode())
    assert m[("traceseal_journal_readable", ())] == 0  # no journal yet: said, not raised
    assert m[("traceseal_broker_connected", ())] == 0 and m[("traceseal_journal_ok", ())] == 0
    Journal(cfg.journal.path).close()
    m = scrape(metrics.render(reg).decode())
    assert m[("traceseal_journal_readable", ())] == 1
    assert m[("traceseal_unanchored_blocks", ())] == 0  # (Journal.stats() says 1 here: no blocks, no anchors)
    assert m[("traceseal_blocks_sealed_total", ())] == 0 and m[("traceseal_readings_total", ())] == 0
    assert math.isnan(m[("traceseal_last_anchor_age_seconds", ())])  # never anchored


def test_metrics_on_their_own_port(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", free_port(), sensors=1)
    cfg = configmod.load(st.config_path)
    Journal(cfg.journal.path).close()
    port = free_port()
    server, thread = metrics.start_metrics_server(StaticSource(cfg, FakeClock()), port)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "traceseal_readings_total 0.0" in text and "python_gc" not in text
    finally:
        server.shutdown()
        thread.join(5)
    assert json.dumps(cfg.gateway_id)
