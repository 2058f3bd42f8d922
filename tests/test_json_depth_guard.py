"""Deeply nested JSON from a hostile node or bundle must be refused, never crash the process.

``eth_account`` pulls in ``py_ecc``, which raises Python's recursion limit to 100,000 at
import. CPython's C JSON decoder then recurses as deep as the input goes and overflows the C
stack: a segmentation fault, not a RecursionError. So a node answering ``[[[[…`` 200,000
deep killed a gateway that anchors on EVM (found by tests/test_bundle_vectors.py's
100,000-deep vector once eth_account was loaded). Each case runs in a subprocess, so a crash
is an exit status here and not the end of the test run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

PROLOGUE = "import sys; sys.setrecursionlimit(100_000)  # what importing py_ecc does\n"


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROLOGUE + code], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("depth", [1_000, 200_000])
def test_a_deep_bundle_is_unreadable_not_a_crash(depth: int) -> None:
    proc = run(f"""
from ledger_client.verify import loads_strict
try:
    loads_strict('[' * {depth} + ']' * {depth})
except ValueError as exc:
    print('refused:', exc)
""")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert proc.stdout.startswith("refused:"), proc.stdout


def test_a_deep_node_reply_is_a_bad_reply_not_a_crash() -> None:
    proc = run("""
from ledger_client.evm import loads_bounded
try:
    loads_bounded(b'{"jsonrpc": "2.0", "id": 1, "result": ' + b'[' * 200_000 + b']' * 200_000 + b'}')
except ValueError as exc:
    print('refused:', exc)
""")
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-500:])
    assert proc.stdout.startswith("refused:"), proc.stdout


def test_the_recursion_limit_is_restored() -> None:
    proc = run("""
from ledger_client.verify import loads_strict
loads_strict('[[1]]')
print(sys.getrecursionlimit())
""")
    assert proc.stdout.strip() == "100000", proc.stdout + proc.stderr


def test_an_evm_ledger_that_signed_leaves_the_recursion_limit_alone() -> None:
    """The root cause: after EvmLedger loaded eth_account and signed, a deep MQTT payload
    reached the sensor adapter's json.loads with the limit at 100,000 and killed the process."""
    proc = subprocess.run([sys.executable, "-c", """
import sys
before = sys.getrecursionlimit()
from ledger_client.evm import EvmLedger, anchor_input
led = EvmLedger("http://127.0.0.1:9/", chain_id=1337, gas_limit=30000,
                private_key="0x" + "11" * 32)
led._sign(nonce=0, data=anchor_input(b"\\0" * 32), gas=30000, fees={"gas_price": 1})
assert sys.getrecursionlimit() == before, sys.getrecursionlimit()
from gateway.adapters import traceseal_fw
try:
    traceseal_fw.parse("traceseal/sensors/p/reading", b"[" * 200_000 + b"]" * 200_000)
except Exception as exc:
    print("refused", type(exc).__name__)
"""], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-800:])
    assert proc.stdout.startswith("refused"), proc.stdout
