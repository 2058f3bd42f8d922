"""biip and epcpy (~18 MB of RSS) load only for stations that route to gs1/epc/badge."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from gateway.ingest.pipeline import default_parsers
parsers = default_parsers(sys.argv[1:])
before = sorted(m for m in ("biip", "epcpy") if m in sys.modules)
obs = parsers["gs1"]("scanner", b"]C1010950110153000317250101" + b"\\r\\n") if "--scan" in sys.argv else None
after = sorted(m for m in ("biip", "epcpy") if m in sys.modules)
print(json.dumps({"before": before, "after": after, "sensor": obs[0].kind if obs else None}))
"""


def probe(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_traceseal_only_station_loads_neither_library():
    assert probe("traceseal", "tasmota") == {"before": [], "after": [], "sensor": None}


def test_routed_adapter_is_imported_at_start():
    assert probe("traceseal", "gs1")["before"] == ["biip"]
    assert probe("badge")["before"] == ["epcpy"]


def test_unrouted_adapter_imports_on_first_use_and_parses():
    r = probe("traceseal", "--scan")
    assert r["before"] == [] and r["after"] == ["biip"]
    assert r["sensor"] == "scan"
