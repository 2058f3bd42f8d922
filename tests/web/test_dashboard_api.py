"""Dashboard JSON against a running in-process gateway (real journal, rules, ledger; no MQTT):
live temperatures and thresholds, the 24 h series, an excursion alarm, stock and expiry,
health; and that acknowledging from the dashboard reaches the station and is sealed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app.dashboard import GatewaySource
from gateway.testing.dashboard import Rig, gs1_pack, make_rig, wait_for
from gateway.web.app import create_app
from gateway.web.auth import write_token
from gateway.web.settings import WebConfig

HOUR = 3_600_000


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path / "rig")
    yield r
    r.close()


def excursion(rig: Rig) -> None:
    """A normal night, then the fridge warms past 8 °C for more than high_delay_s (300 s)."""
    rig.history("probe-1", [5000 + 100 * (i % 5) for i in range(48)], 1_800_000)  # 24 h, every 30 min
    rig.history("probe-2", [-20000] * 24, HOUR)
    rig.reading(-20000, "probe-2", advance_ms=0)
    for mc in (7900, 8000, 9200, 10100, 10900, 11300, 11500):  # 8.000 °C counts as out of range
        rig.reading(mc)
    wait_for(lambda: bool(rig.alarm_records("raised")), what="high alarm raised")


def test_overview_units_series_and_alarm(rig: Rig) -> None:
    excursion(rig)
    app = create_app(GatewaySource(rig.gw), WebConfig(public_read=True))
    c = app.test_client()
    d = c.get("/api/overview").get_json()
    assert d["gateway"] == "station-01" and d["now_ms"] == rig.clock.now_ms()
    units = {u["id"]: u for u in d["units"]}
    fridge, freezer = units["fridge-1"], units["freezer-1"]
    assert (fridge["low_mc"], fridge["high_mc"], fridge["freeze_mc"]) == (2000, 8000, -500)
    (p1,) = fridge["probes"]
    assert p1["sensor"] == "probe-1" and p1["value_mc"] == 11500 and p1["in_range"] is False
    assert fridge["level"] == "fail" and freezer["level"] == "ok"
    assert freezer["probes"][0]["value_mc"] == -20000 and freezer["probes"][0]["in_range"] is True
    high = [a for a in d["alarms"] if a["alarm"] == "high"]
    assert len(high) == 1 and high[0]["unit"] == "fridge-1" and high[0]["present"] and high[0]["needs_ack"]
    assert high[0]["title"] == "Too warm" and high[0]["threshold"] == 8000
    assert d["level"] == "fail" and d["alarm_level"] == "fail"
    assert len({a["id"] for a in d["alarms"]}) == len(d["alarms"])  # each alarm once

    s = c.get("/api/units/fridge-1/series?hours=24").get_json()
    assert s["to_ms"] == rig.clock.now_ms() and s["to_ms"] - s["from_ms"] == 24 * HOUR
    pts = s["probes"]["probe-1"]
    assert max(v for _, v in pts) == 11500 and min(v for _, v in pts) == 5000
    assert all(s["from_ms"] <= t <= s["to_ms"] for t, _ in pts)
    assert (s["low_mc"], s["high_mc"]) == (2000, 8000)
    assert c.get("/api/units/nope/series").status_code == 404

    h = c.get("/api/health").get_json()
    items = {i["key"]: i for i in h["items"]}
    assert items["journal"]["level"] == "ok" and items["broker"]["value"] is None  # no MQTT in this rig
    assert items["clock"]["value"] is True and items["disk"]["value"]["free_bytes"] > 0
    assert h["journal"]["next_seq"] > 60


def test_stock_and_expiry(rig: Rig) -> None:
    rig.reading(5000)
    rig.scan("in-1", gs1_pack("LOT-A7", "260120", "S1"))  # expires in 19 days: warning
    rig.scan("in-1", gs1_pack("LOT-A7", "260120", "S2"))
    rig.scan("in-1", gs1_pack("LOT-B2", "270630", "S3"))
    rig.scan("out-1", gs1_pack("LOT-A7", "260120", "S1"))
    app = create_app(GatewaySource(rig.gw), WebConfig(public_read=True))
    st = app.test_client().get("/api/stock").get_json()
    lots = {x["lot"]: x for x in st["lots"]}
    assert lots["LOT-A7"]["qty"] == 1 and lots["LOT-A7"]["days_left"] == 19 and lots["LOT-A7"]["level"] == "warn"
    assert lots["LOT-B2"]["qty"] == 1 and lots["LOT-B2"]["level"] == "ok"
    assert lots["LOT-A7"]["product"] == "Measles-Rubella (MR)" and lots["LOT-A7"]["unit"] == "fridge-1"
    (prod,) = st["products"]
    assert prod["qty"] == 2 and prod["low_stock"] == 10 and prod["level"] == "warn"
    rig.scan("out-1", gs1_pack("LOT-B2", "270630", "S3"))  # the tail picks up what is new
    lots = {x["lot"]: x for x in app.test_client().get("/api/stock").get_json()["lots"]}
    assert set(lots) == {"LOT-A7"}


def test_acknowledge_from_dashboard_is_sealed(rig: Rig, tmp_path: Path) -> None:
    excursion(rig)
    tok = tmp_path / "web.token"
    token = write_token(tok)
    app = create_app(GatewaySource(rig.gw), WebConfig(token_file=tok))
    c = app.test_client()
    assert c.post("/api/alarms/ack").status_code == 401
    assert not rig.alarm_records("acknowledged")
    assert c.post("/login", data={"name": "Ana Ruiz", "password": token}).status_code == 302
    page = c.get("/").get_data(as_text=True)
    csrf = page.split('name="csrf" content="')[1].split('"')[0]
    assert len(csrf) > 20
    r = c.post("/api/alarms/ack", headers={"X-CSRF-Token": csrf}, json={})
    assert r.status_code == 202 and r.get_json()["by"] == "web:Ana Ruiz"
    wait_for(lambda: bool(rig.alarm_records("acknowledged")), what="acknowledgement sealed")
    acks = rig.alarm_records("acknowledged")
    assert {a["by"] for a in acks} == {"web:Ana Ruiz"}
    assert any(a["alarm"] == "high" for a in acks)
    wait_for(lambda: all(a["acknowledged"] for a in c.get("/api/alarms").get_json()["alarms"] if a["present"]),
             what="dashboard shows it acknowledged")
    high = next(a for a in c.get("/api/alarms").get_json()["alarms"] if a["alarm"] == "high")
    assert high["acked_by"] == "web:Ana Ruiz" and high["present"]  # acknowledged, still too warm
