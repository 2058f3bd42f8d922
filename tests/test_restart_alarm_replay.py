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
from gateway import config as configmod
from gateway.clock import FakeClock
from gateway.journal import Journal
from gateway.pipeline import Inbound
from gateway.service import Gateway
from gateway.station import Station
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for

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
    again = Station(cfg)
    j = Journal(path)
    try:
        assert again.replay(j) == [{"type": "gateway_started"}]  # nothing derived was left unsealed
    finally:
        j.close()
    assert again.active() == live
    assert [(a["alarm"], a["state"]) for a in live] == [("power", "cleared")]
    assert not [r for r in records() if r.get("alarm") == "silent"]
