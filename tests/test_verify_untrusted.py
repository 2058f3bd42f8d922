"""`traceseal verify` on bundles an attacker made (issue 14, finding 7), through the CLI as a
black box (``python -m ledger_client verify``):

* an anchor time of ±(2^53−1) (a ledger key the attacker holds; nothing pinned) gave a
  traceback with exit 1: now step 6 fails with a message, exit 1, and no traceback;
* one record listed many times verified and was counted as that many records: now a seq
  listed twice fails step 2 (record-sigs, the step that decides which records are kept);
* without ``--gateway-key`` a good bundle printed ``RESULT: VERIFIED`` and exited 0, though
  anyone can make such a bundle: now it reads ``RESULT: INTACT, key not pinned …``, exits 4,
  and ``--json`` says ``key_pinned: false``; the same for sets.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_client.canonical import LEDGER_DOMAIN, canonical

sys.path.insert(0, str(Path(__file__).resolve().parent / "vectors"))
from bundle_vectors import route_bundle

REPO = Path(__file__).resolve().parents[1]
EX = REPO / "docs" / "example"
KEYS = json.loads((EX / "keys.json").read_text())
GW_PUB = KEYS["gateway"]["public_key"]
LEDGER = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["ledger"]["seed"]))


def example() -> dict[str, Any]:
    return json.loads((EX / "bundle.json").read_text())


def cli(tmp: Path, doc: Any, *args: str) -> subprocess.CompletedProcess[str]:
    p = tmp / "bundle.json"
    p.write_text(json.dumps(doc))
    return subprocess.run([sys.executable, "-m", "ledger_client", "verify", str(p), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def resign_anchor(b: dict[str, Any], time_ms: int) -> None:
    """What someone holding a local ledger key can do: any time, validly signed."""
    e = b["anchors"][0]["entry"]
    e["time_ms"] = time_ms
    b["anchors"][0]["sig"] = LEDGER.sign(LEDGER_DOMAIN + canonical(e)).hex()


def test_absurd_anchor_times_fail_step_6_without_a_traceback(tmp_path: Path) -> None:
    for t in (2 ** 53 - 1, -(2 ** 53 - 1), 0, 946_684_799_999, 7_258_118_400_001):
        b = example()
        resign_anchor(b, t)
        proc = cli(tmp_path, b, "--gateway-key", GW_PUB)
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == 1, (t, proc.returncode, proc.stdout, proc.stderr)
        assert "RESULT: FAILED at step 6 (anchors)" in proc.stdout, proc.stdout
        assert f"anchor time {t} is outside 946684800000..7258118400000" in proc.stdout, proc.stdout


def test_anchor_times_inside_the_range_still_verify(tmp_path: Path) -> None:
    b = example()
    resign_anchor(b, 7_258_118_400_000)  # 2200-01-01T00:00:00Z, the last accepted instant
    proc = cli(tmp_path, b, "--gateway-key", GW_PUB)
    assert proc.returncode == 0, proc.stdout


def test_a_record_listed_twice_fails_record_sigs(tmp_path: Path) -> None:
    b = example()
    b["records"] = b["records"] * 2000
    proc = cli(tmp_path, b, "--gateway-key", GW_PUB, "--json")
    assert proc.returncode == 1, proc.stdout[-2000:]
    rep = json.loads(proc.stdout)
    failing = [s["step"] for s in rep["steps"] if not s["ok"]]
    assert failing == [2], failing
    assert rep["steps"][1]["failures"][0] == "records[1]: record seq 1 appears twice (first at records[0])"
    assert len(rep["steps"][1]["failures"]) == 1999
    assert rep["summary"]["records"] == 1


def test_the_same_seq_with_other_content_is_also_a_duplicate(tmp_path: Path) -> None:
    b = example()
    other = copy.deepcopy(b["records"][0])
    other["record"]["value"] = 9999
    b["records"].append(other)
    proc = cli(tmp_path, b, "--gateway-key", GW_PUB)
    assert proc.returncode == 1
    assert "record seq 1 appears twice" in proc.stdout and "RESULT: FAILED at step 2 (record-sigs)" in proc.stdout


def test_without_a_pinned_key_the_result_is_intact_not_verified(tmp_path: Path) -> None:
    proc = cli(tmp_path, example())
    assert proc.returncode == 4, (proc.returncode, proc.stdout)
    last = proc.stdout.strip().splitlines()[-1]
    assert last == ("RESULT: INTACT, key not pinned (anyone can make a bundle that passes these checks; "
                    "pin the gateway key with --gateway-key)")
    assert "VERIFIED" not in proc.stdout
    rep = json.loads(cli(tmp_path, example(), "--json").stdout)
    assert rep["ok"] is True and rep["key_pinned"] is False and rep["result"] == "intact-key-not-pinned"


def test_with_the_pinned_key_the_result_is_verified(tmp_path: Path) -> None:
    proc = cli(tmp_path, example(), "--gateway-key", GW_PUB)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("RESULT: VERIFIED"), proc.stdout
    rep = json.loads(cli(tmp_path, example(), "--gateway-key", GW_PUB, "--json").stdout)
    assert rep["ok"] is True and rep["key_pinned"] is True and rep["result"] == "verified"


def test_a_failed_bundle_without_a_key_still_exits_1(tmp_path: Path) -> None:
    b = example()
    b["records"][0]["record"]["value"] += 1
    proc = cli(tmp_path, b)
    assert proc.returncode == 1 and "RESULT: FAILED at step 2" in proc.stdout


def test_a_set_without_pinned_keys_is_intact_not_verified(tmp_path: Path) -> None:
    doc = {"format": "traceseal-set/1", "selection": {"type": "route", "id": "R1"}, "bundles": [route_bundle()]}
    proc = cli(tmp_path, doc)
    assert proc.returncode == 4, (proc.returncode, proc.stdout)
    assert proc.stdout.strip().splitlines()[-1].startswith("SET RESULT: INTACT, keys not pinned")
    assert "VERIFIED" not in proc.stdout
    rep = json.loads(cli(tmp_path, doc, "--json").stdout)
    assert rep["key_pinned"] is False and rep["result"] == "intact-key-not-pinned"
    proc = cli(tmp_path, doc, "--key", f"gw-demo-1={GW_PUB}")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("SET RESULT: VERIFIED"), proc.stdout


def test_help_documents_exit_4() -> None:
    proc = subprocess.run([sys.executable, "-m", "ledger_client", "verify", "--help"], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert "4" in proc.stdout and "not pinned" in proc.stdout
