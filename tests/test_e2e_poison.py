"""A real station with a real Mosquitto keeps journaling every good reading around a poison
message, before and after a restart (issue 14, "Done means").

Poison here is (a) one correctly signed probe message whose counter is 2^53−1, which once made
the anti-replay window allocate without bound, so the writer retried the batch forever and a
restart did not help (the broker redelivered it); (b) a valid-looking message that makes the
code itself raise, every time; (c) a rule that raises on a record.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.journal import Journal
from gateway.rules import Inventory
from gateway.station import Station as RuleStation
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import StationDir, make_station
from gateway.testing.waiting import wait_for

BIG = 2**53 - 1
T0 = 1_767_225_600_000

UNIT = textwrap.dedent("""\
    [[units]]
    id = "fridge-1"
    profile = "fridge"
    probes = ["probe-1"]
    """)


@pytest.fixture
def station(tmp_path: Path, broker: Mosquitto) -> StationDir:
    return make_station(tmp_path / "station", broker.port, sensors=2, max_records=5, max_seconds=1,
                        extra_toml=UNIT)


def start(station: StationDir) -> Gateway:
    gw = Gateway(configmod.load(station.config_path))
    gw.start()
    assert gw.mqtt is not None and gw.mqtt.connected.wait(10), "gateway did not connect"
    return gw


def reading(station: StationDir, sensor: str, ctr: int, value: int = 4000) -> tuple[str, bytes]:
    return station.topic(sensor), build_message(station.sensor_keys[sensor], sensor, ctr, T0 + ctr % 10**9,
                                                [temperature(value)])


def journal_of(station: StationDir) -> Journal:
    return Journal(station.root / "data" / "journal.sqlite", readonly=True)


def good_ctrs(j: Journal) -> list[tuple[str, int]]:
    rows = j.db.execute("SELECT body FROM records WHERE type = 'reading' ORDER BY seq").fetchall()
    return sorted((json.loads(b)["sensor"], json.loads(b)["source"]["ctr"]) for (b,) in rows)


def reasons(j: Journal) -> list[str]:
    return [r for (r,) in j.db.execute("SELECT reason FROM quarantine ORDER BY id")]


def test_a_counter_jump_among_good_traffic_never_stops_the_station(station: StationDir, broker: Mosquitto) -> None:
    gw = start(station)
    try:
        msgs = [reading(station, f"probe-{1 + i % 2}", 1 + i // 2) for i in range(10)]
        poison = reading(station, "probe-1", BIG)
        with Publisher(broker.port) as pub:
            pub.publish_all(msgs[:5] + [poison] + msgs[5:])
        j = journal_of(station)
        wait_for(lambda: len(good_ctrs(j)) == 10 and "counter-jump" in reasons(j), what="10 readings + poison")
    finally:
        gw.stop()
    # while the gateway is down: more good traffic, and the poison again (a redelivery or a retry)
    more = [reading(station, f"probe-{1 + i % 2}", 6 + i // 2) for i in range(6)]
    with Publisher(broker.port) as pub:
        pub.publish_all(more[:3] + [poison] + more[3:])
    gw = start(station)
    try:
        j = journal_of(station)
        want = sorted([(f"probe-{s}", c) for s in (1, 2) for c in range(1, 9)])
        wait_for(lambda: good_ctrs(j) == want, what="all 16 good readings after the restart")
        assert reasons(j) == ["counter-jump", "counter-jump"]
        wait_for(lambda: (j.last_block() or None) is not None and j.last_block().last_seq == j.next_seq() - 1,  # type: ignore[union-attr]
                 what="blocks sealed over everything")
        seqs = [s for (s,) in j.db.execute("SELECT seq FROM records ORDER BY seq")]
        assert seqs == list(range(len(seqs)))
        top, window = gw.pipeline.admission.counters["probe-1"]
        assert top == 8 and window.bit_length() <= 4096
    finally:
        gw.stop()


def test_a_message_that_always_crashes_is_quarantined_once_and_acknowledged(station: StationDir,
                                                                            broker: Mosquitto) -> None:
    gw = start(station)
    try:
        check_value = gw.pipeline.admission.check_value

        def crash_on_7(obs: Any) -> None:  # a valid-looking reading that trips a bug, every time
            if obs.counter == 7:
                raise KeyError("calibration")
            check_value(obs)

        gw.pipeline.admission.check_value = crash_on_7  # type: ignore[method-assign]
        with Publisher(broker.port) as pub:
            pub.publish_all([reading(station, "probe-2", c) for c in range(1, 11)])
        j = journal_of(station)
        wait_for(lambda: len(good_ctrs(j)) == 9, what="the 9 good readings")
        assert [c for _, c in good_ctrs(j)] == [1, 2, 3, 4, 5, 6, 8, 9, 10]
        detail = j.db.execute("SELECT reason, detail FROM quarantine").fetchall()
        assert detail == [("internal-error", "KeyError: 'calibration'")]
        assert gw.status()["journal_ok"] is True
    finally:
        gw.stop()
    gw = start(station)  # acknowledged: the broker does not hand the poison back
    try:
        with Publisher(broker.port) as pub:
            pub.publish_all([reading(station, "probe-2", 11)])
        j = journal_of(station)
        wait_for(lambda: len(good_ctrs(j)) == 10, what="reading 11 after the restart")
        assert reasons(j) == ["internal-error"]
    finally:
        gw.stop()


def test_a_rule_that_raises_degrades_rules_not_ingest(station: StationDir, broker: Mosquitto,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Inventory, record: Any, now_ms: int) -> list[dict[str, Any]]:
        raise ZeroDivisionError("a rule bug")

    monkeypatch.setattr(Inventory, "feed", broken)
    gw = start(station)
    try:
        with Publisher(broker.port) as pub:
            pub.publish_all([reading(station, "probe-1", c, 12_000) for c in range(1, 6)])
        j = journal_of(station)
        wait_for(lambda: len(good_ctrs(j)) == 5, what="readings journaled despite the rule bug")
        # the station sees records after their commit, in the same writer pass: wait for it
        wait_for(lambda: gw.station.rule_errors["Inventory.feed: ZeroDivisionError"] >= 5,
                 what="the rule error counted for every reading")
        active = {a.get("alarm") for a in gw.station.active()}
        assert "rules-degraded" in active  # said on the panel, not silent
        live = [a for a in gw.station.alarms.active()]
    finally:
        gw.stop()
    replayed = RuleStation(configmod.load(station.config_path).station)
    replayed.replay(journal_of(station))
    assert [a for a in replayed.alarms.active()] == live  # the other rules' state equals a replay
