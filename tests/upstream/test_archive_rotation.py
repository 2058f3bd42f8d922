"""The archive follows a gateway's key chain (docs/upstream.md §Key rotation): a real gateway
journal with readings, `traceseal rotate-key`, more readings, a second rotation, more
readings, all anchored; published per the contract to an archive that enrolled the FIRST
key, on both stores. Everything is stored, the only rejections are what came ahead of the
rotation records (an alarm and the hello: `key_unknown_yet`), and bundles exported from the
archive across and after the rotation verify with the enrolment key pinned. Forged rotations
are rejected and the forger's records with them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import archive_kit as kit
import pytest

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.archive.store import open_store
from gateway.archive.view import ArchiveView
from gateway.chain.export import export_range, export_record
from gateway.cli import main
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import make_station
from gateway.testing.waiting import wait_for
from ledger_client.canonical import canonical, record_message
from ledger_client.keys import load_private_key, public_hex, write_private_key
from ledger_client.rotation import rotation_statement
from ledger_client.verify import verify_bundle

BACKENDS = ["sqlite", "postgres"]


def _readings(st: Any, broker: Mosquitto, start: int, n: int) -> None:
    sensors = sorted(st.sensor_keys)
    with Publisher(broker.port) as pub:
        pub.publish_all((st.topic(sensors[i % 2]), build_message(st.sensor_keys[sensors[i % 2]], sensors[i % 2],
                                                                 start + i, kit.T0 + start + i,
                                                                 [temperature(4000 + start + i)]))
                        for i in range(n))


def _run(st: Any, broker: Mosquitto, start: int, n: int, total: int) -> None:
    gw = Gateway(configmod.load(st.config_path))
    gw.start()
    try:
        assert gw.mqtt is not None and gw.mqtt.connected.wait(10)
        _readings(st, broker, start, n)
        j = Journal(st.root / "data" / "journal.sqlite", readonly=True)
        try:
            wait_for(lambda: (s := j.stats())["records"] >= total and s["unsealed_records"] == 0
                     and s["unanchored_blocks"] == 0, what=f"{total} records anchored")
        finally:
            j.close()
    finally:
        gw.stop()


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto) -> Iterator[dict[str, Any]]:
    """A gateway run, rotated with `traceseal rotate-key`, run, rotated again, run; built once,
    copied per test. Keys: old (enrolled) -> new -> cur (the gateway's key at the end)."""
    tmp = tmp_path_factory.mktemp("archive-rotation")
    st = make_station(tmp / "station", broker.port, sensors=2, gateway_id="station-r", max_records=4, max_seconds=1)
    old = load_private_key(st.root / "gateway.key")
    _run(st, broker, 1, 10, 10)
    new_path = tmp / "new.key"
    new_hex = public_hex(write_private_key(new_path))
    assert main(["rotate-key", "-c", str(st.config_path), "--new-key", str(new_path), "--reason", "renewal"]) == 0
    _run(st, broker, 11, 10, 21)
    cur_path = tmp / "cur.key"
    cur_hex = public_hex(write_private_key(cur_path))
    assert main(["rotate-key", "-c", str(st.config_path), "--new-key", str(cur_path)]) == 0
    _run(st, broker, 21, 6, 28)
    yield {"built": kit.Built(st.root, st.gateway_id, st.config_path), "old": old, "old_hex": public_hex(old),
           "new_hex": new_hex, "cur_hex": cur_hex}


@pytest.fixture
def setup(rotated: dict[str, Any], backend: str, broker: Mosquitto, tmp_path: Path) -> Iterator[dict[str, Any]]:
    built = rotated["built"].copy(tmp_path / "gw")
    prefix = kit.new_prefix()
    enrolled = SimpleNamespace(gateway_id=built.gateway_id, public_key=lambda: rotated["old_hex"])
    toml = kit.archive_toml(tmp_path / "archive.toml", broker.port, prefix, kit.store_line(backend, tmp_path),
                            [enrolled])  # type: ignore[list-item]
    arch = kit.start_archive(toml)
    reader = open_store(arch.cfg.store, readonly=True)
    up = kit.Upstream(broker.port, prefix, built)
    acks = kit.AckWatcher(broker.port, prefix)
    (rot_seq, last_block, _, _), (rot2_seq, _, _, _) = up.j.key_rotations()
    try:
        yield {**rotated, "arch": arch, "reader": reader, "up": up, "acks": acks, "rot_seq": rot_seq,
               "last_block": last_block, "rot2_seq": rot2_seq, "toml": toml}
    finally:
        arch.stop()
        reader.close()
        up.close()
        acks.close()


def _signed(key: Any, rec: dict[str, Any]) -> dict[str, Any]:
    body = canonical(rec)
    return {"seq": rec["seq"], "body": body.decode(), "sig": key.sign(record_message(body)).hex()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_archive_follows_the_rotation_and_exports_verify_with_the_enrolled_key(
        setup: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arch, reader, up, acks = setup["arch"], setup["reader"], setup["up"], setup["acks"]
    rot_seq, last_block = setup["rot_seq"], setup["last_block"]
    last_seq, top_block = up.last_seq(), up.last_block()
    anchored = max(i["block"] for i in up.anchor_items())
    # an alarm forwarded ahead of the backlog, signed by the new key: the archive cannot know
    # that key before the rotation record arrives in the ordered stream
    up.send("alarms", up.records_msg(up.record_items(rot_seq + 3, rot_seq + 3), "alarms"))
    wait_for(lambda: arch.processed >= 1, what="alarm processed")
    assert reader.status(up.gw)["rejections"] == {"key_unknown_yet": 1}
    assert reader.records_between(up.gw, rot_seq + 3, rot_seq + 3) == []  # not stored, not acknowledged
    up.everything()  # hello (signed by the current key), records, blocks, anchors
    wait_for(lambda: acks.acks.get(up.gw, {}).get("anchors") == anchored, what="final ack")
    ack = acks.acks[up.gw]
    assert (ack["records"], ack["blocks"]) == (last_seq, top_block)
    s = reader.status(up.gw)
    assert s["records"] == last_seq + 1 and s["blocks_verified"] == top_block + 1 and s["blocks_pending"] == 0
    # the early alarm, and the hello (current key) that came before the rotation records; the
    # ordered copy of the alarm was accepted, the hello was applied once the rotation to its key came
    assert s["rejections"] == {"key_unknown_yet": 2}
    assert reader.key_rotations(up.gw) == up.j.key_rotations()
    assert reader.gateways()[up.gw].profile is not None  # hello with the current key accepted
    view = ArchiveView(reader, up.gw)
    first_after = up.j.block(last_block + 1).header_obj["first_time_ms"]
    bundles = {"record-before": export_record(view, 2), "record-after": export_record(view, up.anchored_seq()),
               "range-across": export_range(view, "probe-1", 0, 2**52),
               "range-after": export_range(view, "probe-2", first_after, 2**52)}
    assert bundles["range-across"] == export_range(up.j, "probe-1", 0, 2**52)  # as the gateway exports it
    for name, b in bundles.items():
        assert [r["record"]["seq"] for r in b["gateway"]["rotations"]] == [rot_seq, setup["rot2_seq"]], name
        rep = verify_bundle(b, gateway_key=setup["old_hex"])
        assert rep.ok, (name, rep.as_dict())
    assert {x["header"]["key"] for x in bundles["range-across"]["blocks"]} == {setup["old_hex"], setup["new_hex"],
                                                                               setup["cur_hex"]}
    # the same through the commands an operator and an auditor run
    out = tmp_path / "probe-2.json"
    assert main(["archive", "export", "-c", str(setup["toml"]), "--gateway", up.gw, "--sensor", "probe-2",
                 "--from", "0", "--to", str(2**52), "-o", str(out)]) == 0
    assert main(["verify", str(out), "--gateway-key", setup["old_hex"]]) == 0
    capsys.readouterr()
    assert main(["archive", "status", "-c", str(setup["toml"]), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["gateways"][up.gw]
    assert st["rotations"][0] == {"seq": rot_seq, "last_block": last_block, "old_key": setup["old_hex"],
                                  "new_key": setup["new_hex"]}
    assert [r["new_key"] for r in st["rotations"]] == [setup["new_hex"], setup["cur_hex"]]
    # an operator who "updates" the archive to the new key is told what to do instead
    assert main(["archive", "enroll", "-c", str(setup["toml"]), "--id", up.gw, "--public-key", setup["new_hex"]]) != 0
    assert "is the key it rotated to" in capsys.readouterr().err
    assert main(["archive", "status", "-c", str(setup["toml"])]) == 0
    assert f"key rotated  at seq {rot_seq}, after block {last_block}: now {setup['new_hex'][:16]}" \
        in capsys.readouterr().out


@pytest.mark.parametrize("backend", BACKENDS)
def test_forged_rotations_and_the_forgers_records_are_rejected(setup: dict[str, Any]) -> None:
    arch, reader, up = setup["arch"], setup["reader"], setup["up"]
    rot_seq = setup["rot_seq"]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forger = Ed25519PrivateKey.generate()
    f_hex = public_hex(forger)
    real = json.loads(up.j.records_range(rot_seq, rot_seq)[0].body)
    up.records(0, rot_seq - 1)
    up.blocks(0, setup["last_block"] - 1)
    n = -(-rot_seq // 10) + -(-setup["last_block"] // 5)
    wait_for(lambda: arch.processed >= n, what="the old key's records and blocks")
    assert reader.status(up.gw)["rejections"] == {}
    forged = {**real, "new_key": f_hex,
              "new_key_sig": forger.sign(rotation_statement(up.gw, real["old_key"], f_hex, real["last_block"])).hex()}
    # 1: a stranger signs a rotation to its own key
    up.send("records", up.records_msg([_signed(forger, forged)]))
    # 2: the old key signs it, but the new_key_sig is not by the named new key
    bad_pop = {**forged, "new_key_sig": Ed25519PrivateKey.generate().sign(
        rotation_statement(up.gw, real["old_key"], f_hex, real["last_block"])).hex()}
    up.send("records", up.records_msg([_signed(setup["old"], bad_pop)]))
    # then the forger's records and a block signed by it
    later = [_signed(forger, {**json.loads(it["body"])}) for it in up.record_items(rot_seq + 1, rot_seq + 4)]
    up.send("records", up.records_msg(later))
    wait_for(lambda: arch.processed >= n + 3, what="forgeries processed")
    s = reader.status(up.gw)
    assert s["rejections"] == {"bad_signature": 5, "bad_rotation": 1}, s
    assert reader.key_rotations(up.gw) == [] and s["highest_contiguous_seq"] == rot_seq - 1
    assert any(r.reason == "bad_rotation" and r.ref == f"seq {rot_seq}" and "new_key_sig" in r.detail
               for r in reader.rejections(up.gw, 20))
    # a hello with the forger's key is outside the chain
    hello = up.hello_msg()
    hello["public_key"] = f_hex
    up.send("hello", hello)
    wait_for(lambda: arch.processed >= n + 4, what="hello processed")
    assert reader.status(up.gw)["rejections"].get("key_mismatch") == 1
    # the real rotation still extends the chain afterwards, and the real records follow it
    up.records(rot_seq, up.last_seq())
    wait_for(lambda: reader.status(up.gw)["records"] == up.last_seq() + 1, what="real records after the forgeries")
    assert reader.key_rotations(up.gw) == up.j.key_rotations()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_hello_with_any_key_of_the_chain_is_accepted_a_stranger_is_not(setup: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    arch, reader, up = setup["arch"], setup["reader"], setup["up"]
    cur_key, stranger = up.key, Ed25519PrivateKey.generate()
    up.key = stranger  # self-consistent: signs its own profile; the archive cannot tell it yet
    up.send("hello", up.hello_msg(kit.T0))
    up.key = cur_key
    mixed = up.hello_msg(kit.T0 + 1)
    mixed["public_key"] = public_hex(stranger)  # names a key that did not sign it
    up.send("hello", mixed)
    wait_for(lambda: arch.processed >= 2, what="hellos")
    assert reader.status(up.gw)["rejections"] == {"key_unknown_yet": 1, "key_mismatch": 1}
    held = [r for r in reader.rejections(up.gw, 20) if r.reason == "key_unknown_yet"]
    assert "its enrolment key is wrong (compare with `traceseal status --json` public_key" in held[0].detail
    up.records()  # both rotations: neither names the stranger's key, which stays held
    wait_for(lambda: reader.status(up.gw)["records"] == up.last_seq() + 1, what="records")
    assert reader.status(up.gw)["rejections"] == {"key_unknown_yet": 1, "key_mismatch": 1}
    assert reader.gateways()[up.gw].profile is None
    up.send("hello", up.hello_msg(kit.T0 + 2))  # the current key, now in the chain: the stranger's is refused
    wait_for(lambda: reader.gateways()[up.gw].profile_ms == kit.T0 + 2, what="current key's hello stored")
    assert reader.status(up.gw)["rejections"] == {"key_unknown_yet": 1, "key_mismatch": 2}
    up.key = setup["old"]
    up.send("hello", up.hello_msg(kit.T0 + 3))  # the enrolled key is still a key of the chain
    wait_for(lambda: reader.gateways()[up.gw].profile_ms == kit.T0 + 3, what="enrolled key's hello stored")
    up.key = stranger
    up.send("hello", up.hello_msg(kit.T0 + 4))
    up.key = cur_key
    up.send("hello", up.hello_msg(kit.T0 + 5))
    wait_for(lambda: reader.gateways()[up.gw].profile_ms == kit.T0 + 5, what="last hello stored")
    assert reader.status(up.gw)["rejections"] == {"key_unknown_yet": 2, "key_mismatch": 3}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_retired_key_cannot_sign_past_the_rotation(setup: dict[str, Any]) -> None:
    """Whoever still holds the old key (the reason to rotate) signs a record after the
    rotation seq and a block after its last block: the record, stored early as an alarm,
    is dropped when the rotation arrives; the header is refused."""
    reader, up = setup["reader"], setup["up"]
    rot_seq, last_block, old = setup["rot_seq"], setup["last_block"], setup["old"]
    real = up.record_items(rot_seq + 2, rot_seq + 2)[0]
    fake = _signed(old, {**json.loads(real["body"]), "value": 99999})
    up.send("alarms", up.records_msg([fake], "alarms"))
    wait_for(lambda: reader.records_between(up.gw, rot_seq + 2, rot_seq + 2) != [], what="early alarm stored")
    up.records()
    wait_for(lambda: reader.status(up.gw)["records"] == up.last_seq() + 1, what="records")
    (seq, body, _), = reader.records_between(up.gw, rot_seq + 2, rot_seq + 2)
    assert body.decode() == real["body"]  # the gateway's record replaced the retired key's
    assert reader.status(up.gw)["rejections"] == {"bad_signature": 1}
    assert any(r.ref == f"seq {seq}" and "retired key" in r.detail for r in reader.rejections(up.gw, 5))
    up.blocks(0, last_block)
    h = json.loads(up.block_items(last_block + 1, last_block + 1)[0]["header"])
    data = canonical({**h, "key": setup["old_hex"]})
    from ledger_client.canonical import header_message

    up.send("blocks", {"v": 1, "gateway": up.gw, "items": [{"block": last_block + 1, "header": data.decode(),
                                                             "sig": old.sign(header_message(data)).hex()}]})
    wait_for(lambda: sum(reader.status(up.gw)["rejections"].values()) == 2, what="forged header refused")
    assert reader.status(up.gw)["rejections"] == {"bad_signature": 1, "key_mismatch": 1}
    up.blocks(last_block + 1)
    wait_for(lambda: reader.status(up.gw)["blocks_verified"] == up.last_block() + 1, what="real blocks verified")
