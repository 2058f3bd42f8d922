"""Scenario 7b — key files readable by others. Already covered by tests/test_config_keys.py
(not duplicated in tests/faults); the report runs the real CLI once per key so the table
counts it: ``traceseal run`` must exit 2 and say ``chmod 600``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gateway.testing.mosquitto import free_port
from gateway.testing.station import make_station

from .common import REPO, GatewayProcess, Row, append_toml, wait_for


def run_keys(workdir: Path) -> list[Row]:
    row = Row("7b keys: key file readable by group/others", runs=0)
    t0 = time.monotonic()
    refused = 0
    for name, mode in (("gateway.key", 0o644), ("gateway.key", 0o640), ("ledger.key", 0o644), ("ledger.key", 0o604)):
        st = make_station(workdir / f"{name}-{mode:o}", free_port(), sensors=1)
        os.chmod(st.root / name, mode)
        p = subprocess.run([sys.executable, "-m", "gateway.cli", "run", "-c", str(st.config_path)], cwd=str(REPO),
                           capture_output=True, text=True, timeout=30, check=False)
        row.runs += 1
        ok = p.returncode == 2 and "chmod 600" in p.stderr
        refused += int(ok)
        row.check(ok, f"{name} mode {mode:o}: exit {p.returncode}, stderr {p.stderr.strip()[-200:]!r}")
    row.detected = (refused, row.runs)
    row.notes.append(f"`traceseal run` with gateway.key or ledger.key mode 0644/0640/0604: exit 2 and 'chmod 600' "
                     f"({refused}/{row.runs}); unit tests: tests/test_config_keys.py; detected = refusals")
    # not a signing key, but a credential: does the gateway accept a world-readable MQTT password file?
    st = make_station(workdir / "mqtt-password", free_port(), sensors=1)
    (st.root / "mqtt.password").write_text("secret\n")
    os.chmod(st.root / "mqtt.password", 0o644)
    append_toml(st, "mqtt", 'username = "traceseal-gateway"\npassword_file = "mqtt.password"')
    gw = GatewayProcess(st.config_path, workdir / "mqtt-password.log").start()
    started = wait_for(lambda: "started" in gw.log_text() or not gw.alive, 15)
    accepted = started and gw.alive
    gw.stop()
    # a credential like the keys: refused the same way (gateway/transports/mqtt.py checks it)
    row.check(not accepted, "mqtt.password_file mode 0644: the gateway started with a world-readable password")
    row.notes.append(f"mqtt.password_file mode 0644: {'ACCEPTED (the gateway starts)' if accepted else 'refused'}, "
                     f"like the key files")
    row.seconds = time.monotonic() - t0
    return [row]
