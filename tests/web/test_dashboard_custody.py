"""Today's waste handovers and the reconciliation state, from a real signed journal: the
custody records are sealed with the gateway's key into a real Journal, and the dashboard
reads them incrementally (only new seqs on each refresh)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.dashboard import StaticSource
from gateway.testing.station import make_station
from gateway.web.app import create_app
from gateway.web.settings import WebConfig
from ledger_client.keys import load_private_key, public_hex

HOUR = 3_600_000
DAY0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
CUSTODY = """
[[operators]]
badge = "04:A2:3B:1C"
name = "Ana Ruiz"
org = "St. Mary Hospital"
role = "generator"

[[operators]]
badge = "04:A2:3B:1D"
name = "Tom Lee"
org = "Plant"
role = "facility"

[custody]
[[custody.stations]]
id = "hospital-dock"
stage = "handed_over"
location = "St. Mary Hospital, dock B"
sensors = ["badge:dock-badge", "gs1:dock-scanner", "mtsics:dock-scale"]

[[custody.stations]]
id = "plant-gate"
stage = "received"
location = "Plant gate"
sensors = ["badge:plant-badge", "gs1:plant-scanner", "mtsics:plant-scale"]
"""
ANA = {"badge": "04A23B1C", "name": "Ana Ruiz", "org": "St. Mary Hospital", "role": "generator"}
TOM = {"badge": "04A23B1D", "name": "Tom Lee", "org": "Plant", "role": "facility"}


def handover(route: str, grai: str, stage: str, grams: int, t: int, op: dict[str, str]) -> dict[str, Any]:
    return {"type": "custody", "id": f"custody/{route}/grai:{grai}/{stage}", "route": route, "bin": {"grai": grai},
            "weight_g": grams, "stage": stage, "operator": op, "location": "x", "station": "hospital-dock",
            "session": "s", "at_ms": t, "scan_ms": t, "weight_ms": t, "category": "sharps"}


def custody_journal(tmp_path: Path,
                    extra_toml: str = "") -> tuple[configmod.Config, Callable[[dict[str, Any], int], None]]:
    """A station with two custody stations and a real journal; returns (config, seal)."""
    st = make_station(tmp_path / "st", 1, sensors=0, extra_toml=CUSTODY + extra_toml)
    cfg = configmod.load(st.config_path)
    key = load_private_key(cfg.key_file)
    j = Journal(cfg.journal.path)
    j.bind_identity(cfg.gateway_id, public_hex(key))
    sealer = Sealer(cfg.gateway_id, key, 0)

    def seal(body: dict[str, Any], t: int) -> None:
        j.commit_batch([sealer.seal(body, time_ms=t, synced=True)], [], {}, {})

    return cfg, seal


def a_day_of_waste(seal: Callable[[dict[str, Any], int], None]) -> None:
    yesterday, today = DAY0 - 3 * HOUR, DAY0 + 9 * HOUR
    seal(handover("R1", "A1", "handed_over", 5000, yesterday, ANA), yesterday)   # picked up yesterday...
    seal(handover("R1", "A1", "received", 4900, DAY0 + 1 * HOUR, TOM), DAY0 + 1 * HOUR)  # ...delivered overnight
    seal(handover("R2", "B1", "handed_over", 7000, today, ANA), today)           # today, still on the way
    seal({"type": "custody_refusal", "id": "refusal/hospital-dock/1/x", "reason": "no-session",
          "message": "Badge in first", "station": "hospital-dock", "stage": "handed_over", "at_ms": today + 60_000},
         today + 60_000)


def test_custody_today_and_reconciliation(tmp_path: Path) -> None:
    cfg, seal = custody_journal(tmp_path)
    a_day_of_waste(seal)
    today = DAY0 + 9 * HOUR
    clock = FakeClock(start_ms=today + HOUR)
    c = create_app(StaticSource(cfg, clock), WebConfig(public_read=True)).test_client()

    d = c.get("/api/custody").get_json()
    assert d["since_ms"] == DAY0
    kinds = [(e["type"], e.get("route"), e.get("stage")) for e in d["events"]]
    assert kinds == [("custody_refusal", None, "handed_over"), ("custody", "R2", "handed_over"),
                     ("custody", "R1", "received")]  # newest first; yesterday's pickup is not "today"
    assert d["events"][1]["operator"]["name"] == "Ana Ruiz" and d["events"][1]["weight_g"] == 7000
    assert d["bins"] == {"delivered": 1, "in-transit": 1} and d["attention"] == [] and d["level"] == "ok"

    clock.t_ms = today + 9 * HOUR  # R2's bin was picked up 9 h ago: past missing_after_s (8 h)
    d = c.get("/api/custody").get_json()
    assert d["bins"] == {"delivered": 1, "missing": 1} and d["level"] == "fail"
    assert d["attention"][0]["route"] == "R2" and d["attention"][0]["bin"] == {"grai": "B1"}

    seal(handover("R2", "B1", "received", 6950, today + 9 * HOUR, TOM), today + 9 * HOUR)  # turns up late
    d = c.get("/api/custody").get_json()
    assert d["bins"] == {"delivered": 2} and d["events"][0]["route"] == "R2"
    assert c.get("/api/overview").get_json()["custody"]["bins"] == {"delivered": 2}


def test_no_custody_section_means_no_custody_panel(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", 1, sensors=1)
    cfg = configmod.load(st.config_path)
    Journal(cfg.journal.path).close()
    c = create_app(StaticSource(cfg, FakeClock()), WebConfig(public_read=True)).test_client()
    d = c.get("/api/overview").get_json()
    assert d["custody"] is None and d["units"] == [] and d["stock"]["lots"] == []
    assert d["level"] == "ok"
