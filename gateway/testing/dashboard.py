"""A running in-process station for dashboard tests, browser tests and demos.

A real ``Gateway`` (real journal, signing, blocks, local ledger, alarm rules) on a
``FakeClock``, without MQTT: probe messages are the exact signed bytes a probe publishes
(``firmware_sim.message``), put straight on the gateway's inbox as the MQTT transport
would; scans come through real pseudo-terminal scanners and the serial transport. So the
dashboard is exercised against exactly the records a deployment writes.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_sim.message import build_message, door, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.core.clock import FakeClock
from gateway.journal import Journal
from gateway.journal.reads import count_records, record_bodies
from gateway.testing.station import StationDir, make_station
from gateway.transports.inbound import Inbound

START_MS = 1_767_258_000_000  # 2026-01-01 09:00 UTC: a working morning
GTIN = "09506000134352"

UNITS_TOML = """
[[units]]
id = "fridge-1"
profile = "fridge"
probes = ["probe-1"]
door = "door-1"
{scanners}
high_delay_s = 300
escalate_s = 3600

[[units]]
id = "freezer-1"
profile = "freezer"
probes = ["probe-2"]

[alarms]
power_gap_s = 7200
heartbeat_s = 3600

[inventory]
expiry_warn_days = 30

[[inventory.products]]
gtin = "{gtin}"
name = "Measles-Rubella (MR)"
low_stock = 10

[[sensors]]
id = "door-1"
public_key = "{door_key}"
kind = "door"
"""


def wait_for(cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out: {what}")


def gs1_pack(lot: str, expiry_yymmdd: str, serial: str) -> str:
    """A GS1 DataMatrix element string: GTIN, expiry, lot (FNC1 after it), serial."""
    return f"01{GTIN}17{expiry_yymmdd}10{lot}\x1d21{serial}"


@dataclass
class Rig:
    station: StationDir
    cfg: configmod.Config
    clock: FakeClock
    gw: Gateway
    journal: Journal
    scanners: dict[str, Any] = field(default_factory=dict)
    _ctr: dict[str, int] = field(default_factory=dict)


    def send(self, sensor: str, readings: list[dict[str, Any]]) -> None:
        """One signed probe message, waited for until journaled."""
        ctr = self._ctr[sensor] = self._ctr.get(sensor, 0) + 1
        before = count_records(self.journal, type="reading", sensor=sensor)
        msg = build_message(self.station.sensor_keys[sensor], sensor, ctr, self.clock.now_ms(), readings)
        self.gw.inbox.put(Inbound("mqtt", self.station.topic(sensor), msg))
        wait_for(lambda: count_records(self.journal, type="reading", sensor=sensor) > before,
                 what=f"{sensor} reading {ctr} journaled")

    def reading(self, mc: int, sensor: str = "probe-1", advance_ms: int = 60_000) -> None:
        self.send(sensor, [temperature(mc)])
        self.clock.advance(advance_ms)

    def door(self, is_open: bool) -> None:
        self.send("door-1", [door(is_open)])

    def history(self, sensor: str, values: list[int], step_ms: int) -> None:
        """Readings spread over the past: ``values[i]`` at now - (n - i) * step, then back to now."""
        now = self.clock.now_ms()
        self.clock.t_ms = now - len(values) * step_ms
        for v in values:
            self.reading(v, sensor, advance_ms=step_ms)
        self.clock.t_ms = now

    def scan(self, scanner: str, data: str) -> None:
        before = count_records(self.journal, type="stock")
        self.scanners[scanner].scan(data)
        wait_for(lambda: count_records(self.journal, type="stock") > before, what="stock record")

    def alarm_records(self, state: str | None = None) -> list[dict[str, Any]]:
        return [a for a in (json.loads(b) for b in record_bodies(self.journal, "alarm"))
                if state in (None, a.get("state"))]

    def close(self) -> None:
        try:
            self.gw.stop()
        finally:
            self.journal.close()
            for s in self.scanners.values():
                s.close()


def make_rig(root: Path, *, scanners: bool = True, extra_toml: str = "", start_ms: int = START_MS) -> Rig:
    """Station with a fridge (probe-1, door-1, scan in/out) and a freezer (probe-2), started."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger_client.keys import public_hex, write_private_key

    root.mkdir(parents=True, exist_ok=True)
    devices: dict[str, Any] = {}
    scan_toml = ""
    serial_toml = ""
    if scanners:
        from firmware_sim.serial_devices import BarcodeScanner

        for name in ("in-1", "out-1"):
            devices[name] = BarcodeScanner(str(root / f"scan-{name}")).start()
            serial_toml += f'[[serial]]\nname = "{name}"\npath = "{devices[name].port}"\nadapter = "gs1"\n'
        scan_toml = 'scanner_in = "gs1:in-1"\nscanner_out = "gs1:out-1"'
    door_key: Ed25519PrivateKey = write_private_key(root / "door-1.key")
    units = UNITS_TOML.format(scanners=scan_toml, gtin=GTIN, door_key=public_hex(door_key))
    st = make_station(root / "st", 1, sensors=2, max_records=1000, max_seconds=3600,
                      extra_toml=textwrap.dedent(serial_toml) + units + extra_toml)
    st.sensor_keys["door-1"] = door_key
    cfg = configmod.load(st.config_path)
    clock = FakeClock(start_ms=start_ms)
    gw = Gateway(cfg, clock=clock, with_mqtt=False)
    gw.start()
    wait_for(lambda: cfg.journal.path.exists(), what="journal created")
    journal = Journal(cfg.journal.path, readonly=True)
    # The writer's first pass (replay, the sealed restart record, its first tick) must run at
    # the start time: a test rewinds the clock right after (Rig.history), and a first pass that
    # a slow first import delays into that rewind judged silence and gaps against the wrong time.
    wait_for(lambda: count_records(journal, type="gateway_started") > 0, what="gateway start sealed")
    return Rig(st, cfg, clock, gw, journal, devices)


class StaticSource:
    """A ``DashboardSource`` over a journal file and a config, with no gateway running:
    alarms and live state are whatever the test sets; acknowledgements are recorded."""

    def __init__(self, cfg: configmod.Config, clock: FakeClock, *, alarms: list[dict[str, Any]] | None = None,
                 status: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.alarms = list(alarms or [])
        self.acks: list[str] = []
        self.live = {"gateway": cfg.gateway_id, "journal_ok": True, "broker_connected": None, "ledger_kind": "local",
                     "ledger_connected": True, "ledger_error": "", "clock_synced": True, "inbox": 0, **(status or {})}

    @property
    def journal_path(self) -> Path:
        return Path(self.cfg.journal.path)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def status(self) -> dict[str, Any]:
        return dict(self.live)

    def active_alarms(self) -> list[dict[str, Any]]:
        return list(self.alarms)

    def acknowledge(self, by: str) -> None:
        self.acks.append(by)
