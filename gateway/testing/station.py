"""A throwaway station on disk: gateway and ledger keys, enrolled sensors, a config file.

Shared by the tests, the benches and the demo so all three run the gateway exactly as a
user would configure it.
"""

from __future__ import annotations

import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger_client.keys import public_hex, write_private_key


@dataclass
class StationDir:
    """A test station's folder (config, keys, data): not the runtime ``gateway.station.Station``."""

    root: Path
    config_path: Path
    gateway_id: str
    topic_prefix: str
    sensor_keys: dict[str, Any] = field(default_factory=dict)  # an Ed25519PrivateKey or a firmware_sim HmacKey

    def topic(self, sensor: str) -> str:
        return f"{self.topic_prefix}/{sensor}/reading"


def make_station(root: Path, port: int, *, sensors: int = 3, gateway_id: str = "station-01",
                 max_records: int = 1000, max_seconds: int = 60, extra_toml: str = "",
                 topic_prefix: str | None = None, ledger_toml: str | None = None) -> StationDir:
    root.mkdir(parents=True, exist_ok=True)
    prefix = topic_prefix or f"ts-{uuid.uuid4().hex[:8]}/sensors"  # unique topics per test
    keys = {}
    sensor_tables = []
    for i in range(1, sensors + 1):
        sid = f"probe-{i}"
        key = write_private_key(root / "sensors" / f"{sid}.key")
        keys[sid] = key
        sensor_tables.append(f'[[sensors]]\nid = "{sid}"\npublic_key = "{public_hex(key)}"\nkind = "temperature"\n')
    write_private_key(root / "gateway.key")
    write_private_key(root / "ledger.key")
    cfg = textwrap.dedent(f"""\
        [gateway]
        id = "{gateway_id}"
        key_file = "gateway.key"
        data_dir = "data"

        [mqtt]
        host = "127.0.0.1"
        port = {port}
        client_id = "traceseal-{gateway_id}-{uuid.uuid4().hex[:6]}"
        topics = ["{prefix}/+/reading"]

        [journal]
        path = "data/journal.sqlite"

        [blocks]
        max_records = {max_records}
        max_seconds = {max_seconds}

        """) + (ledger_toml or textwrap.dedent("""\
        [ledger]
        kind = "local"
        path = "data/ledger.sqlite"
        key_file = "ledger.key"
        poll_s = 0.2
        """)) + extra_toml + "\n" + "\n".join(sensor_tables)
    path = root / "traceseal.toml"
    path.write_text(cfg)
    (root / "data").mkdir(exist_ok=True)
    return StationDir(root, path, gateway_id, prefix, keys)


def enroll_hmac(st: StationDir, ids: list[str]) -> None:
    """Enroll ``ids`` with HMAC keys as ``firmware_sim enroll --hmac`` does (files under
    ``sensors/``, 0600) and add them to the station's config; their keys join ``sensor_keys``."""
    from firmware_sim.enroll import enroll, load_keys, sensors_toml

    key_dir = st.root / "sensors"
    entries = enroll(key_dir, ids, hmac=True)
    with st.config_path.open("a") as f:
        f.write("\n" + sensors_toml(entries).split("\n", 2)[2])  # without the header comment
    st.sensor_keys.update(load_keys(key_dir, ids))


def fridge_with_scanners_toml(unit: str, scan_in: str, scan_out: str) -> str:
    """A fridge unit watched by probe-1, with a GS1 scanner for packs in and one for packs out
    on the given serial paths (ptys in tests): the station lot tests drive. Alarms wait 300 s
    above range; the long power gap lets a test's fake clock jump without power alarms."""
    return textwrap.dedent(f"""
        [[serial]]
        name = "in-1"
        path = "{scan_in}"
        adapter = "gs1"
        [[serial]]
        name = "out-1"
        path = "{scan_out}"
        adapter = "gs1"
        [[units]]
        id = "{unit}"
        profile = "fridge"
        probes = ["probe-1"]
        scanner_in = "gs1:in-1"
        scanner_out = "gs1:out-1"
        high_delay_s = 300
        [alarms]
        power_gap_s = 7200
        heartbeat_s = 3600
        """)
