"""EvmLedger and verify_evm_anchor against a REAL anvil (no mocks of the node).

anvil comes from npm (`npm install` in the repo root); when it is missing every test here
fails with a message saying so — nothing is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.testing.anvil import Anvil
from ledger_client.errors import KeyFileError, LedgerError, LedgerUnavailable, VerificationError
from ledger_client.evm import (
    TAG,
    EvmLedger,
    JsonRpc,
    RpcError,
    anchor_input,
    backoff_s,
    generate_eth_key,
    load_eth_key,
    verify_evm_anchor,
)

ANCHOR_KEYS = {"kind", "chain_id", "tx", "block_number", "block_hash", "from", "to", "input", "header_hash",
               "time_ms", "confirmations_required"}
REVERT_RUNTIME = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT: every call reverts


def hh(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Anvil]:
    # Fails (not skips) with "run `npm install` ..." when the binary is missing.
    with Anvil(workdir=tmp_path / "anvil") as n:
        yield n


def ledger_for(node: Anvil, key_index: int = 1, **kw: Any) -> EvmLedger:
    return EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[key_index], **kw)


def persist(sub: dict[str, Any]) -> dict[str, Any]:
    """What the caller's outbox does: JSON on disk; we read back exactly what would survive a crash."""
    return json.loads(json.dumps(sub, sort_keys=True))


def settle(led: EvmLedger, sub: dict[str, Any], *, now_ms: int = 0, timeout_s: float = 5.0) -> Any:
    """Lookup until the transaction is out of the pool (anvil's automine answers the send before
    the block exists, so an immediate lookup may still see it pending) — always time-boxed."""
    deadline = time.monotonic() + timeout_s
    while True:
        st = led.lookup(sub, now_ms=now_ms)
        if st.state != "pending" or "confirmations" in st.extra or time.monotonic() > deadline:
            return st
        time.sleep(0.005)


def anchor_once(led: EvmLedger, h: bytes, *, block: int = 1, now_ms: int = 0) -> tuple[dict[str, Any], Any]:
    sub = persist(led.prepare(h, gateway="gw", block=block, now_ms=now_ms))
    sub = persist(led.submit(sub))
    return sub, settle(led, sub, now_ms=now_ms)


# -- pure helpers ---------------------------------------------------------------------------

def test_anchor_input_encoding() -> None:
    h = bytes(range(32))
    assert anchor_input(h) == b"TSL1" + h
    assert anchor_input(h)[:4].hex() == "54534c31" and len(anchor_input(h)) == 36
    with pytest.raises(ValueError):
        anchor_input(b"short")


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    assert backoff_s(0, lambda: 0.9) == 0.0
    assert ([backoff_s(a, lambda: 0.999999, base=1.0, cap=300) for a in (1, 2, 3, 4)]
            == pytest.approx([1, 2, 4, 8], rel=1e-5))
    assert backoff_s(50, lambda: 0.5, base=1.0, cap=300) == 150.0
    assert backoff_s(10_000, lambda: 1.0, cap=60) == 60.0  # no overflow for huge attempt numbers
    assert backoff_s(3, lambda: 0.0) == 0.0
    rng = random.Random(7)
    delays = [backoff_s(5, rng, base=0.5, cap=10) for _ in range(200)]
    assert all(0 <= d <= 8 for d in delays) and len(set(delays)) > 150  # jitter spreads the fleet


def test_eth_key_file_is_0600_and_loose_modes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "eth.key"
    addr = generate_eth_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_eth_key(path).address == addr
    with pytest.raises(KeyFileError, match="already exists"):
        generate_eth_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_eth_key(path)
    with pytest.raises(KeyFileError, match="chmod 600"):
        EvmLedger("http://127.0.0.1:1", chain_id=1, key_file=path)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a hex secp256k1"):
        load_eth_key(bad)


def test_ledger_client_evm_does_not_import_gateway() -> None:
    code = ("import sys, ledger_client.evm, ledger_client.verify; "
            "bad = [m for m in sys.modules if m == 'gateway' or m.startswith('gateway.')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def test_constructor_does_not_touch_the_network(tmp_path: Path) -> None:
    led = EvmLedger("http://127.0.0.1:9", chain_id=5, private_key="0x" + "11" * 32)  # nothing listens on :9
    with pytest.raises(LedgerUnavailable, match="unreachable"):
        led.prepare(hh("x"), gateway="gw", block=0, now_ms=0)  # first prepare has to start() first
    led.close()


# -- against anvil ------------------------------------------------------------------------------

def test_anchor_confirmed_and_verified(node: Anvil, tmp_path: Path) -> None:
    key = tmp_path / "eth.key"
    addr = generate_eth_key(key).lower()
    node.fund(addr)
    led = EvmLedger.from_config({"rpc_url": node.url, "chain_id": node.chain_id, "key_file": "eth.key"},
                                base_dir=tmp_path).start()
    assert led.address == addr and led.to == addr  # default recipient: the sender itself
    assert led.gas_estimate == 22440 and led.gas_limit > led.gas_estimate  # all-0xff estimate plus margin
    h = hh("block 7")
    sub, st = anchor_once(led, h, block=7, now_ms=123)
    assert sub["nonce"] == 0 and sub["header_hash"] == h.hex()
    assert st.state == "confirmed", st
    a = st.anchor
    assert set(a) == ANCHOR_KEYS
    rc = node.receipt(sub["tx"])
    blk = node.rpc("eth_getBlockByHash", rc["blockHash"], False)
    assert a["kind"] == "evm" and a["chain_id"] == 31337 and a["tx"] == sub["tx"]
    assert a["block_number"] == int(rc["blockNumber"], 16) and a["block_hash"] == rc["blockHash"]
    assert a["from"] == addr and a["to"] == addr and a["input"] == "0x54534c31" + h.hex()
    assert a["time_ms"] == int(blk["timestamp"], 16) * 1000 == st.time_ms
    assert a["confirmations_required"] == 1
    assert int(rc["gasUsed"], 16) == 22440
    # the verifier reads everything from the node; the anchor's own time is not trusted
    assert verify_evm_anchor(a, h, step=6, rpc_url=node.url, expected_chain_id=31337,
                             expected_sender=addr) == st.time_ms
    forged = dict(a, time_ms=1)
    assert verify_evm_anchor(forged, h, step=6, rpc_url=node.url) == st.time_ms
    # idempotent: submitting the same bytes again changes nothing
    assert led.submit(sub)["tx"] == sub["tx"]
    assert node.tx_count(addr) == 1
    led.close()


def test_wrong_chain_id_at_start(node: Anvil) -> None:
    led = EvmLedger(node.url, chain_id=1, private_key=node.private_keys[1])
    with pytest.raises(LedgerError) as ei:
        led.start()
    assert "31337" in str(ei.value) and "chain id 1 is configured" in str(ei.value)


def test_verify_needs_rpc(node: Anvil) -> None:
    led = ledger_for(node).start()
    h = hh("x")
    _, st = anchor_once(led, h)
    with pytest.raises(VerificationError) as ei:
        verify_evm_anchor(st.anchor, h, step=6)
    assert ei.value.step == 6 and "cannot be checked without --rpc" in ei.value.message


def test_verify_against_another_chain_fails_at_chain_id(node: Anvil, tmp_path: Path) -> None:
    led = ledger_for(node).start()
    h = hh("x")
    _, st = anchor_once(led, h)
    with Anvil(chain_id=4242, workdir=tmp_path / "other") as other, pytest.raises(VerificationError) as ei:
        verify_evm_anchor(st.anchor, h, step=6, rpc_url=other.url)
    assert "is on chain id 4242, but the anchor is on chain id 31337" in ei.value.message
    with pytest.raises(VerificationError, match=r"anchor is on chain id 31337, want chain id 4242 \(--chain-id\)"):
        verify_evm_anchor(st.anchor, h, step=6, rpc_url=node.url, expected_chain_id=4242)


def test_verify_input_mismatch_quotes_got_and_want(node: Anvil) -> None:
    led = ledger_for(node).start()
    h, other = hh("real"), hh("other")
    _, st = anchor_once(led, h)
    with pytest.raises(VerificationError) as ei:  # the anchor object names another header
        verify_evm_anchor(st.anchor, other, step=6, rpc_url=node.url)
    assert f"anchor names header hash {h.hex()}, want {other.hex()}" in ei.value.message
    relabelled = dict(st.anchor, header_hash=other.hex(), input="0x54534c31" + other.hex())  # a forger's edit
    with pytest.raises(VerificationError) as ei:
        verify_evm_anchor(relabelled, other, step=6, rpc_url=node.url)
    msg = ei.value.message
    assert f"input is 0x54534c31{h.hex()}, want 0x54534c31{other.hex()}" in msg


def test_verify_sender_recipient_and_confirmations(node: Anvil) -> None:
    led = ledger_for(node, confirmations=3).start()
    h = hh("x")
    sub, st = anchor_once(led, h)
    assert st.state == "pending" and st.extra["confirmations"] == 1  # 1 of 3
    node.mine(2)
    st = led.lookup(sub, now_ms=0)
    assert st.state == "confirmed" and st.anchor["confirmations_required"] == 3
    a = st.anchor
    stranger = node.accounts[5]
    with pytest.raises(VerificationError, match=f"is from {led.address}, want {stranger} \\(--sender\\)"):
        verify_evm_anchor(a, h, step=6, rpc_url=node.url, expected_sender=stranger)
    with pytest.raises(VerificationError, match=f"anchor names sender {stranger}, but the chain says"):
        verify_evm_anchor(dict(a, **{"from": stranger}), h, step=6, rpc_url=node.url)
    with pytest.raises(VerificationError, match=f"anchor names recipient {stranger}"):
        verify_evm_anchor(dict(a, to=stranger), h, step=6, rpc_url=node.url)
    with pytest.raises(VerificationError, match="has 3 confirmation\\(s\\).*want at least 10"):
        verify_evm_anchor(a, h, step=6, rpc_url=node.url, min_confirmations=10)
    node.mine(7)
    assert verify_evm_anchor(a, h, step=6, rpc_url=node.url, min_confirmations=10) == st.time_ms
    with pytest.raises(VerificationError, match="not found on chain id 31337"):
        verify_evm_anchor(dict(a, tx="0x" + "ab" * 32), h, step=6, rpc_url=node.url)
    node.stop()
    with pytest.raises(VerificationError, match="cannot reach the node"):
        verify_evm_anchor(a, h, step=6, rpc_url=node.url)


def test_reverted_anchor_is_failed(node: Anvil) -> None:
    sink = node.deploy(REVERT_RUNTIME)
    with pytest.raises(LedgerError, match="cannot estimate gas.*gas_limit"):
        ledger_for(node, to=sink).start()  # the estimate itself reverts: refuse early
    led = ledger_for(node, to=sink, gas_limit=60_000).start()
    h = hh("x")
    sub, st = anchor_once(led, h)
    assert st.state == "failed" and "status 0" in st.reason, st
    assert node.receipt(sub["tx"])["status"] == "0x0"
    fake = {"kind": "evm", "chain_id": 31337, "tx": sub["tx"], "header_hash": h.hex()}
    with pytest.raises(VerificationError, match="receipt status 0 .* want 1"):
        verify_evm_anchor(fake, h, step=6, rpc_url=node.url)
    # the nonce was consumed: the next anchor uses the next one
    assert led.prepare(hh("y"), gateway="gw", block=2, now_ms=0)["nonce"] == 1


def test_reorg_drops_the_anchor_and_resubmission_confirms(node: Anvil) -> None:
    led = ledger_for(node).start()
    h = hh("x")
    snap = node.snapshot()
    sub, st = anchor_once(led, h)
    assert st.state == "confirmed"
    node.revert(snap)  # the block holding the anchor is gone
    st2 = led.lookup(sub, now_ms=0)
    assert st2.state == "dropped" and "unknown to the node" in st2.reason, st2
    with pytest.raises(VerificationError, match="not found"):
        verify_evm_anchor(st.anchor, h, step=6, rpc_url=node.url)
    assert led.next_nonce == 0  # re-synced: the freed nonce is reused, no gap
    again = led.submit(sub)  # the same signed bytes are valid again
    st3 = settle(led, again)
    assert st3.state == "confirmed" and st3.anchor["tx"] == sub["tx"]
    assert verify_evm_anchor(st3.anchor, h, step=6, rpc_url=node.url) == st3.time_ms
    nxt = led.prepare(hh("y"), gateway="gw", block=2, now_ms=0)
    assert nxt["nonce"] == 1
    assert node.tx_count(led.address) == 1


def test_reorg_then_fresh_prepare_reuses_the_freed_nonce(node: Anvil) -> None:
    led = ledger_for(node).start()
    snap = node.snapshot()
    sub, st = anchor_once(led, hh("x"))
    assert st.state == "confirmed" and led.next_nonce == 1
    node.revert(snap)
    assert led.lookup(sub, now_ms=0).state == "dropped"
    sub2, st2 = anchor_once(led, hh("x"))  # what the Anchorer does after "dropped"
    assert sub2["nonce"] == 0 and st2.state == "confirmed"
    assert node.tx_count(led.address) == 1


def test_node_outage_then_one_anchor_for_the_backlog(node: Anvil) -> None:
    led = ledger_for(node).start()
    outbox: list[dict[str, Any]] = []  # the caller's durable outbox (JSON rows)
    sealed = [hh("block 0")]
    node.stop()
    delays = []
    rng = random.Random(1)
    for failures, n in enumerate(range(1, 6), start=1):  # five blocks sealed while the node is down
        sealed.append(hh(f"block {n}"))
        if not outbox:  # no open row: prepare for the newest header, persist BEFORE sending
            outbox.append(persist(led.prepare(sealed[-1], gateway="gw", block=n, now_ms=n)))
        with pytest.raises(LedgerUnavailable):
            led.submit(outbox[-1])
        with pytest.raises(LedgerUnavailable):
            led.lookup(outbox[-1], now_ms=n)
        delays.append(backoff_s(failures, rng, base=0.5, cap=30))
    assert len(outbox) == 1 and outbox[0]["block"] == 1
    assert all(0 <= d <= 30 for d in delays)
    node.start()  # same port, chain state kept
    sub = persist(led.submit(outbox[0]))
    st = settle(led, sub, now_ms=10)
    assert st.state == "confirmed"
    assert node.tx_count(led.address) == 1  # exactly one transaction for the whole outage


def test_crash_after_send_before_receipt_in_pool(node: Anvil) -> None:
    node.set_automine(False)
    led1 = ledger_for(node).start()
    sub = persist(led1.prepare(hh("x"), gateway="gw", block=1, now_ms=0))
    led1.submit(sub)
    led1.close()  # crash: the receipt was never read
    led2 = ledger_for(node).start(known=[sub])  # a new process; the outbox row is the truth
    assert led2.next_nonce == 1
    resent = led2.submit(sub)  # "already imported": harmless
    assert "rejected" not in resent
    assert led2.lookup(resent, now_ms=0).state == "pending"
    node.mine()
    st = led2.lookup(resent, now_ms=0)
    assert st.state == "confirmed" and st.anchor["tx"] == sub["tx"]
    assert node.tx_count(led2.address) == 1


def test_crash_after_send_before_receipt_mined(node: Anvil) -> None:
    led1 = ledger_for(node).start()
    sub = persist(led1.prepare(hh("x"), gateway="gw", block=1, now_ms=0))
    led1.submit(sub)  # automine: mined at once
    del led1  # crash
    led2 = ledger_for(node).start()
    resent = led2.submit(sub)  # "nonce too low", but our hash is mined: success
    assert "rejected" not in resent
    st = settle(led2, resent)
    assert st.state == "confirmed" and st.anchor["tx"] == sub["tx"]
    assert node.tx_count(led2.address) == 1
    assert led2.prepare(hh("y"), gateway="gw", block=2, now_ms=0)["nonce"] == 1


def test_crash_after_prepare_before_send(node: Anvil) -> None:
    led1 = ledger_for(node).start()
    sub = persist(led1.prepare(hh("x"), gateway="gw", block=1, now_ms=0))
    del led1  # crashed before the send
    led2 = ledger_for(node).start()
    assert led2.next_nonce == 0  # nothing reserved: the persisted submission takes nonce 0
    st = settle(led2, led2.submit(sub))
    assert st.state == "confirmed" and node.tx_count(led2.address) == 1
    assert led2.next_nonce == 1


def test_two_prepares_without_submit_cannot_both_land(node: Anvil) -> None:
    led = ledger_for(node).start()
    a = persist(led.prepare(hh("a"), gateway="gw", block=1, now_ms=0))
    b = persist(led.prepare(hh("b"), gateway="gw", block=2, now_ms=0))
    assert a["nonce"] == b["nonce"] == 0
    assert settle(led, led.submit(a)).state == "confirmed"
    b2 = led.submit(b)  # nonce 0 is taken by a
    assert "nonce too low" in b2["rejected"]
    st = led.lookup(b2, now_ms=0)
    assert st.state == "dropped" and "rejected" in st.reason
    assert node.tx_count(led.address) == 1
    assert led.next_nonce == 1


def test_stuck_transaction_is_replaced_and_exactly_one_lands(node: Anvil) -> None:
    node.set_automine(False)
    led = ledger_for(node, stuck_after_s=30).start()
    h = hh("x")
    sub = persist(led.submit(persist(led.prepare(h, gateway="gw", block=1, now_ms=0))))
    st = led.lookup(sub, now_ms=1_000)
    assert st.state == "pending" and st.replacement is None
    st = led.lookup(sub, now_ms=40_000)
    assert st.state == "pending" and st.replacement is not None, st
    rep = persist(st.replacement)
    assert rep["nonce"] == sub["nonce"] and rep["input"] == sub["input"] and rep["tx"] != sub["tx"]
    assert rep["replaces"] == [sub["tx"]]
    assert rep["max_fee_per_gas"] * 8 >= sub["max_fee_per_gas"] * 9
    assert rep["max_priority_fee_per_gas"] * 8 >= sub["max_priority_fee_per_gas"] * 9
    rep = persist(led.submit(rep))
    assert "rejected" not in rep
    node.mine()
    st = led.lookup(rep, now_ms=41_000)
    assert st.state == "confirmed" and st.anchor["tx"] == rep["tx"]
    landed = [t for t in (sub["tx"], rep["tx"]) if node.receipt(t)]
    assert landed == [rep["tx"]]
    assert node.tx_count(led.address) == 1
    assert verify_evm_anchor(st.anchor, h, step=6, rpc_url=node.url) == st.time_ms


def test_replacement_whose_original_lands_still_confirms(node: Anvil) -> None:
    node.set_automine(False)
    led = ledger_for(node, stuck_after_s=30).start()
    sub = persist(led.submit(persist(led.prepare(hh("x"), gateway="gw", block=1, now_ms=0))))
    led.lookup(sub, now_ms=0)
    rep = persist(led.lookup(sub, now_ms=60_000).replacement)  # persisted, not yet sent...
    node.mine()  # ...and the original gets mined first
    rep = persist(led.submit(rep))  # "nonce too low", but an earlier tx of this nonce is ours
    assert "rejected" not in rep
    st = led.lookup(rep, now_ms=61_000)
    assert st.state == "confirmed" and st.anchor["tx"] == sub["tx"]
    assert node.tx_count(led.address) == 1


def test_fee_cap_stops_bumping(node: Anvil) -> None:
    node.set_automine(False)
    led = ledger_for(node, stuck_after_s=1, max_fee_cap_wei=3_000_000_000).start()
    sub = persist(led.submit(persist(led.prepare(hh("x"), gateway="gw", block=1, now_ms=0))))
    assert sub["max_fee_per_gas"] <= 3_000_000_000
    led.lookup(sub, now_ms=0)
    st = led.lookup(sub, now_ms=10_000)
    assert st.state == "pending" and st.replacement is None and "fee cap" in st.reason


def test_legacy_fees_when_the_chain_has_no_base_fee(tmp_path: Path) -> None:
    with Anvil(workdir=tmp_path / "berlin", extra_args=("--hardfork", "berlin")) as old:
        led = ledger_for(old).start()
        sub, st = anchor_once(led, hh("x"))
        assert "gas_price" in sub and "max_fee_per_gas" not in sub
        assert st.state == "confirmed"
        assert verify_evm_anchor(st.anchor, hh("x"), step=6, rpc_url=old.url) == st.time_ms


def test_forced_legacy_mode_on_an_eip1559_chain(node: Anvil) -> None:
    led = ledger_for(node, fee_mode="legacy").start()
    sub, st = anchor_once(led, hh("x"))
    assert "gas_price" in sub and st.state == "confirmed"
    assert node.rpc("eth_getTransactionByHash", sub["tx"])["type"] == "0x0"


def test_rpc_errors_carry_the_node_message(node: Anvil) -> None:
    rpc = JsonRpc(node.url)
    with pytest.raises(RpcError) as ei:
        rpc.call("eth_no_such_method")
    assert ei.value.method == "eth_no_such_method" and ei.value.message
    led = ledger_for(node).start()
    sub = led.prepare(hh("x"), gateway="gw", block=1, now_ms=0)
    broken = dict(sub, raw=sub["raw"][:-10])
    with pytest.raises(LedgerError) as ei2:
        led.submit(broken)
    assert "eth_sendRawTransaction" in str(ei2.value)
    with pytest.raises(LedgerError, match="chain id 1, this ledger is chain id 31337"):
        led.submit(dict(sub, chain_id=1))


def test_unfunded_sender_is_an_error_not_a_drop(node: Anvil, tmp_path: Path) -> None:
    key = tmp_path / "poor.key"
    generate_eth_key(key)
    led = EvmLedger(node.url, chain_id=node.chain_id, key_file=key).start()
    sub = led.prepare(hh("x"), gateway="gw", block=1, now_ms=0)
    with pytest.raises(LedgerError) as ei:
        led.submit(sub)
    assert "funds" in str(ei.value).lower()
    assert not isinstance(ei.value, LedgerUnavailable)


def test_tag_constant() -> None:
    assert TAG == bytes.fromhex("54534c31")  # noqa: SIM300 - TAG is the value under test
