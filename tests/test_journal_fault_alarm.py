"""A journal that cannot commit (disk full, I/O error) raises a LOCAL alarm at once — red LED
and buzzer, needing no disk, network or ledger — and once it writes again, the fault becomes a
signed raised/cleared alarm record, and the readings held meanwhile are journaled."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from gateway.transports.inbound import Inbound

EXTRA = textwrap.dedent("""
    [[units]]
    id = "fridge-1"
    profile = "fridge"
    probes = ["probe-1"]
    [alarms]
    power_gap_s = 7200
    heartbeat_s = 3600
    [gpio]
    green = 17
    amber = 27
    red = 22
    buzzer = 23
    """)


def test_unwritable_journal_alarms_locally_then_is_recorded(tmp_path: Path) -> None:
    st = make_station(tmp_path / "st", 1883, sensors=1, extra_toml=EXTRA)
    st.config_path.write_text(st.config_path.read_text().replace(
        'path = "data/journal.sqlite"', 'path = "data/journal.sqlite"\nbusy_timeout_ms = 100'))
    pins = MockFactory()
    clock = FakeClock(start_ms=1_767_225_600_000)
    gw = Gateway(configmod.load(st.config_path), clock=clock, with_mqtt=False, pin_factory=pins)
    gw.start()
    path = st.root / "data" / "journal.sqlite"

    def leds() -> tuple[bool, ...]:
        return tuple(bool(pins.pin(n).state) for n in (17, 27, 22, 23))

    try:
        wait_for(lambda: path.exists() and Journal(path, readonly=True).stats()["records"] >= 1,
                 what="gateway_started record")
        assert leds() == (True, False, False, False)
        blocker = Journal(path)
        blocker.db.execute("BEGIN EXCLUSIVE")  # as good as a full disk: no commit can succeed
        t0 = clock.now_ms()
        msg = build_message(st.sensor_keys["probe-1"], "probe-1", 1, t0, [temperature(5000)])
        gw.inbox.put(Inbound("mqtt", st.topic("probe-1"), msg))
        wait_for(lambda: leds() == (False, False, True, True), what="red LED and buzzer")
        assert not gw.journal_ok and gw.station.active()[0]["alarm"] == "journal-unwritable"
        clock.advance(90_000)
        blocker.db.execute("ROLLBACK")
        blocker.close()
        j = Journal(path, readonly=True)
        wait_for(lambda: len([r for r in j.records_range(0, 10**6) if r.type == "alarm"]) == 2,
                 what="fault recorded")
        wait_for(lambda: leds() == (False, True, False, False), what="amber: cleared, not yet acknowledged")
    finally:
        gw.stop()
    recs = [json.loads(r.body) for r in j.records_range(0, 10**6)]
    assert [r["value"] for r in recs if r["type"] == "reading"] == [5000]  # held, then journaled
    alarms = [r for r in recs if r["type"] == "alarm"]
    assert [(a["alarm"], a["state"]) for a in alarms] == [("journal-unwritable", "raised"),
                                                          ("journal-unwritable", "cleared")]
    assert alarms[0]["since_ms"] == t0 and alarms[1]["value"] == 90_000 and "locked" in alarms[0]["reason"]
