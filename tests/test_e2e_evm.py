"""The gateway anchored on a real EVM node (anvil): `traceseal verify --rpc` passes against that
node, and fails at step 6 against another chain or when the transaction does not carry the hash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_range
from gateway.cli import main
from gateway.journal import Journal
from gateway.testing.anvil import Anvil
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from ledger_client.evm import EvmLedger


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Anvil]:
    with Anvil(workdir=tmp_path / "anvil") as n:
        yield n



def test_gateway_on_anvil_verifies_with_rpc(tmp_path: Path, broker: Mosquitto, node: Anvil,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    ledger = node.ledger_toml(tmp_path / "st")
    st = make_station(tmp_path / "st", broker.port, sensors=2, max_records=4, max_seconds=1, ledger_toml=ledger)
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        with Publisher(broker.port) as pub:
            pub.publish_all((st.topic(s), build_message(st.sensor_keys[s], s, c, c, [temperature(4000 + c)]))
                            for c in range(1, 11) for s in ("probe-1", "probe-2"))
        j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
        wait_for(lambda: j.stats()["records"] == 20 and j.stats()["unsealed_records"] == 0
                 and j.stats()["unanchored_blocks"] == 0, what="sealed and anchored on anvil")
    finally:
        gw.stop()
    sender = EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[3]).address
    bundle = export_range(j, "probe-1", 0, 2**52)
    assert bundle["anchors"][0]["kind"] == "evm" and bundle["anchors"][0]["from"] == sender.lower()
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    key = j.meta("public_key") or ""

    args = ["verify", str(path), "--json", "--gateway-key", key, "--rpc", node.url, "--chain-id", str(node.chain_id),
            "--sender", sender]
    assert main(args) == 0, capsys.readouterr().out
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] and rep["steps"][5]["checked"] == 1

    # without a node the EVM anchor cannot be checked: the step fails and says why
    assert main(["verify", str(path), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert "without --rpc" in rep["steps"][5]["failures"][0]

    # a node of another chain
    with Anvil(chain_id=4242, workdir=tmp_path / "other") as other:
        assert main(["verify", str(path), "--json", "--rpc", other.url]) == 1
        rep = json.loads(capsys.readouterr().out)
        assert rep["steps"][5]["ok"] is False and "4242" in rep["steps"][5]["failures"][0]

    # a real anchor transaction, but of another header: the input does not carry this hash
    led = EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[3])
    sub = led.submit(led.prepare(b"\x11" * 32, gateway="x", block=0, now_ms=0))
    wait_for(lambda: led.lookup(sub, now_ms=0).state == "confirmed", what="decoy anchor")
    forged = json.loads(path.read_text())
    forged["anchors"][0]["tx"] = sub["tx"]
    path.write_text(json.dumps(forged))
    assert main(["verify", str(path), "--json", "--rpc", node.url]) == 1
    rep = json.loads(capsys.readouterr().out)
    first = next(s for s in rep["steps"] if not s["ok"])
    assert first["step"] == 6 and "input" in first["failures"][0]
