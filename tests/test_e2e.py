"""The spine end to end over a real Mosquitto: publish → journal → seal → anchor → export → verify."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.app.service import Gateway
from gateway.chain.export import export_range, export_record
from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.mqttpub import Publisher
from gateway.testing.station import StationDir, make_station
from gateway.testing.waiting import wait_for
from ledger_client.verify import verify_bundle


@pytest.fixture
def station(tmp_path: Path, broker: Mosquitto) -> StationDir:
    return make_station(tmp_path / "station", broker.port, sensors=3, max_records=5, max_seconds=1)


@pytest.fixture
def gateway(station: StationDir) -> Iterator[Gateway]:
    gw = Gateway(configmod.load(station.config_path))
    gw.start()
    assert gw.mqtt is not None
    assert gw.mqtt.connected.wait(10), "gateway did not connect to the broker"
    yield gw
    gw.stop()


def readings(station: StationDir, n: int, start_ctr: int = 1) -> list[tuple[str, bytes, int]]:
    out = []
    sensors = sorted(station.sensor_keys)
    for i in range(n):
        sid = sensors[i % len(sensors)]
        value = -20000 + 37 * i
        msg = build_message(station.sensor_keys[sid], sid, start_ctr + i, 1_767_225_600_000 + i, [temperature(value)])
        out.append((station.topic(sid), msg, value))
    return out


def journal_of(station: StationDir) -> Journal:
    return Journal(station.root / "data" / "journal.sqlite", readonly=True)


def test_readings_travel_to_a_verified_bundle(station: StationDir, gateway: Gateway, broker: Mosquitto) -> None:
    items = readings(station, 12)
    with Publisher(broker.port) as pub:
        pub.publish_all((t, p) for t, p, _ in items)
    j = journal_of(station)
    wait_for(lambda: j.stats()["records"] == 12, what="12 records journaled")
    wait_for(lambda: j.stats()["unsealed_records"] == 0 and j.stats()["unanchored_blocks"] == 0
             and j.stats()["anchored_block"] >= 0, what="all blocks sealed and anchored")

    # every published value is in the journal as a signed integer record, in order
    bodies = [json.loads(r.body) for r in j.records_range(0, 11)]
    assert [b["value"] for b in bodies] == [v for _, _, v in items]
    assert all(b["unit"] == "mC" and b["source"]["auth"] == "ed25519" for b in bodies)
    assert [b["seq"] for b in bodies] == list(range(12))

    bundle = export_record(j, 7)
    report = verify_bundle(bundle, gateway_key=gateway.public_key)
    assert report.ok, report.as_dict()
    assert bundle["records"][0]["record"]["value"] == items[7][2]
    assert len(bundle["anchors"]) == 1 and bundle["anchors"][0]["kind"] == "local"

    rng = export_range(j, "probe-2", 0, 2**52)
    report = verify_bundle(rng, gateway_key=gateway.public_key)
    assert report.ok, report.as_dict()
    assert [r["record"]["value"] for r in rng["records"]] == [v for t, _, v in items if "/probe-2/" in t]
    # a range bundle carries every block from the first to the anchored one
    nums = [b["header"]["block"] for b in rng["blocks"]]
    assert nums == list(range(nums[0], nums[-1] + 1))


def test_cli_export_and_verify(station: StationDir, gateway: Gateway, broker: Mosquitto, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    with Publisher(broker.port) as pub:
        pub.publish_all((t, p) for t, p, _ in readings(station, 6))
    j = journal_of(station)
    wait_for(lambda: j.stats()["records"] == 6 and j.stats()["unanchored_blocks"] == 0
             and j.stats()["unsealed_records"] == 0, what="sealed and anchored")
    out = tmp_path / "b.json"
    assert main(["export", "-c", str(station.config_path), "--seq", "2", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["verify", str(out), "--gateway-key", gateway.public_key]) == 0
    text = capsys.readouterr().out
    assert "RESULT: VERIFIED" in text and "[4] inclusion    PASS" in text
    bundle = json.loads(out.read_text())
    bundle["records"][0]["record"]["value"] += 1
    out.write_text(json.dumps(bundle))
    assert main(["verify", str(out), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and rep["steps"][1]["failures"] == ["record seq 2: signature does not verify"]


# -- tampering: each change fails at the step that owns it ------------------------------------

@pytest.fixture
def sealed_bundles(station: StationDir, gateway: Gateway, broker: Mosquitto) -> tuple[dict, dict, str]:
    with Publisher(broker.port) as pub:
        pub.publish_all((t, p) for t, p, _ in readings(station, 20))
    j = journal_of(station)
    wait_for(lambda: j.stats()["records"] == 20 and j.stats()["unsealed_records"] == 0
             and j.stats()["unanchored_blocks"] == 0, what="20 records sealed and anchored")
    return export_record(j, 3), export_range(j, "probe-1", 0, 2**52), gateway.public_key


def first_failure(bundle: dict, key: str) -> tuple[int, list[str]]:
    rep = verify_bundle(bundle, gateway_key=key)
    assert not rep.ok
    f = rep.first_failure
    assert f is not None
    return f.step, f.failures


def test_changed_record_byte_fails_signature(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, key = copy.deepcopy(sealed_bundles)
    b["records"][0]["record"]["value"] += 1
    step, failures = first_failure(b, key)
    assert step == 2 and failures == ["record seq 3: signature does not verify"]


def test_changed_proof_hash_fails_inclusion(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, key = copy.deepcopy(sealed_bundles)
    p = b["records"][0]["proof"]
    p[0] = ("0" if p[0][0] != "0" else "1") + p[0][1:]
    step, failures = first_failure(b, key)
    assert step == 4
    assert "record seq 3 in block" in failures[0] and "does not match expected root" in failures[0]


def test_changed_header_fails_header_signature(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, key = copy.deepcopy(sealed_bundles)
    b["blocks"][0]["header"]["sealed_ms"] += 1
    step, failures = first_failure(b, key)
    assert step == 3 and failures[0].endswith("header signature does not verify")


def test_dropped_block_in_range_breaks_chain(sealed_bundles: tuple[dict, dict, str]) -> None:
    _, r, key = copy.deepcopy(sealed_bundles)
    assert len(r["blocks"]) >= 3
    dropped = r["blocks"][1]["header"]["block"]
    del r["blocks"][1]
    r["records"] = [x for x in r["records"] if x["block"] != dropped]
    step, failures = first_failure(r, key)
    assert step == 5
    assert f"blocks {dropped}..{dropped} are missing" in failures[0]


def test_wrong_gateway_key_is_named(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, _ = copy.deepcopy(sealed_bundles)
    step, failures = first_failure(b, "ab" * 32)
    assert step == 1 and "is not the pinned key" in failures[0]


def test_forged_anchor_fails(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, key = copy.deepcopy(sealed_bundles)
    b["anchors"][0]["entry"]["time_ms"] -= 3_600_000  # back-date the anchor by an hour
    step, failures = first_failure(b, key)
    assert step == 6 and "ledger signature does not verify" in failures[0]


def test_missing_anchor_fails(sealed_bundles: tuple[dict, dict, str]) -> None:
    b, _, key = copy.deepcopy(sealed_bundles)
    b["anchors"] = []
    step, failures = first_failure(b, key)
    assert step == 6 and failures == ["no anchors in the bundle"]
