"""A restart after an outage, through the real writer loop: the state the restarted gateway
shows must be the state a replay of its journal rebuilds (the next restart's state).

The writer replays the journal, then asks the station what time produced (a tick at the
start time) before it seals ``gateway_started``. That tick used to run the alarm engine's
clock through the whole outage and raise (then escalate) 'silent' for a probe nobody could
hear, while a replay of the same journal sees the restart first, counts silence afresh
and clears the alarm: the panel said 'escalated', the next start said 'cleared'."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.station import Station
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from gateway.transports.inbound import Inbound

EXTRA = textwrap.dedent("""
    [[units]]
    id = "fridge-1"
    profile = "fridge"
    probes = ["probe-1"]
    """)  # defaults: silence 30 min, escalation 30 min, power gap 5 min, heartbeat 1 min


def test_restart_after_an_outage_shows_what_a_replay_rebuilds(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", 1883, sensors=1, extra_toml=EXTRA)
    cfg = configmod.load(st.config_path)
    path = st.root / "data" / "journal.sqlite"
    clock = FakeClock(start_ms=1_767_225_600_000)

    def records() -> list[dict]:
        j = Journal(path, readonly=True)
        try:
            return [json.loads(r.body) for r in j.records_range(0, 10**6)]
        finally:
            j.close()

    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    gw.start()
    try:
        msg = build_message(st.sensor_keys["probe-1"], "probe-1", 1, clock.now_ms(),
                            [temperature(5000)])
        gw.inbox.put(Inbound("mqtt", st.topic("probe-1"), msg))
        wait_for(lambda: path.exists() and any(r["type"] == "reading" for r in records()),
                 what="the reading journaled")
    finally:
        gw.stop()
    clock.advance(5 * 3_600_000)  # off for 5 h: silence and its escalation fall in the outage
    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    gw.start()
    try:
        wait_for(lambda: [r.get("state") for r in records() if r.get("alarm") == "power"]
                 == ["raised", "cleared"], what="the outage recorded")
        wait_for(lambda: not gw.station.alarms.pending(), what="derived alarms sealed")
        live = gw.station.active()
    finally:
        gw.stop()
    again = Station(cfg.station)
    j = Journal(path)
    try:
        assert again.replay(j) == [{"type": "gateway_started"}]  # nothing derived was left unsealed
    finally:
        j.close()
    assert again.active() == live
    assert [(a["alarm"], a["state"]) for a in live] == [("power", "cleared")]
    assert not [r for r in records() if r.get("alarm") == "silent"]


def test_readings_waiting_at_start_come_after_the_restart(tmp_path: Path) -> None:
    """Readings already in the inbox when the writer starts (an MQTT session's queue, a serial
    line) belong to the new run: ``gateway_started`` and what the start tick derived are
    sealed before them, so the outage is reported as a restart, not as a gap in readings."""
    st = make_station(tmp_path / "st", 1883, sensors=1, extra_toml=EXTRA)
    cfg = configmod.load(st.config_path)
    path = st.root / "data" / "journal.sqlite"
    clock = FakeClock(start_ms=1_767_225_600_000)

    def records() -> list[dict]:
        j = Journal(path, readonly=True)
        try:
            return [json.loads(r.body) for r in j.records_range(0, 10**6)]
        finally:
            j.close()

    def reading(ctr: int) -> Inbound:
        msg = build_message(st.sensor_keys["probe-1"], "probe-1", ctr, clock.now_ms(),
                            [temperature(5000)])
        return Inbound("mqtt", st.topic("probe-1"), msg)

    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    gw.start()
    try:
        gw.inbox.put(reading(1))
        wait_for(lambda: path.exists() and any(r["type"] == "reading" for r in records()),
                 what="the reading journaled")
    finally:
        gw.stop()
    last_before = max(r["time_ms"] for r in records())
    clock.advance(3_600_000)  # off for 1 h: over the 5 min power gap
    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    for ctr in (2, 3):
        gw.inbox.put(reading(ctr))  # waiting before the writer runs
    gw.start()
    try:
        wait_for(lambda: [r.get("state") for r in records() if r.get("alarm") == "power"]
                 == ["raised", "cleared"], what="the outage recorded")
        wait_for(lambda: not gw.station.alarms.pending(), what="derived alarms sealed")
        live = gw.station.active()
    finally:
        gw.stop()
    recs = records()
    started = max(r["seq"] for r in recs if r["type"] == "gateway_started")  # this run's
    run = [r["seq"] for r in recs if r["type"] == "reading" and r["time_ms"] > last_before]
    assert len(run) == 2 and started < min(run)
    power = [r for r in recs if r.get("alarm") == "power"]
    assert [(p["state"], p["reason"], p["since_ms"]) for p in power] == [
        ("raised", "restart", last_before), ("cleared", "restart", last_before)]
    again = Station(cfg.station)
    j = Journal(path)
    try:
        assert again.replay(j) == [{"type": "gateway_started"}]
    finally:
        j.close()
    assert again.active() == live
