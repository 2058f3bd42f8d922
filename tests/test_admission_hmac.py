"""HMAC-SHA256 sensor authentication: a mixed fleet, every bad tag quarantined, key files guarded."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.cli import main as sim_main
from firmware_sim.enroll import load_keys
from firmware_sim.message import HmacKey, body, build_message, encode, sign_body, temperature
from gateway.app import config as configmod
from gateway.core.clock import FakeClock
from gateway.core.errors import ConfigError
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.station import StationDir, enroll_hmac, make_station
from gateway.transports.inbound import Inbound


@pytest.fixture
def station(tmp_path: Path) -> StationDir:
    st = make_station(tmp_path, 1883, sensors=2, topic_prefix="site/sensors")
    enroll_hmac(st, ["probe-3", "probe-4"])
    return st


@pytest.fixture
def pipe(station: StationDir) -> Pipeline:
    cfg = configmod.load(station.config_path)
    return Pipeline(cfg.ingest, Journal(cfg.journal.path), Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 0),
                    FakeClock())


def msg(st: StationDir, sensor: str, ctr: int, value: int = 4000, key: object = None) -> Inbound:
    return Inbound("mqtt", st.topic(sensor), build_message(key or st.sensor_keys[sensor], sensor, ctr, 1,
                                                           [temperature(value)]))


def quarantine(pipe: Pipeline) -> list[tuple[str, str]]:
    return list(pipe.journal.db.execute("SELECT reason, detail FROM quarantine ORDER BY id"))


def test_mixed_fleet_records_say_which_scheme_admitted_them(station: StationDir, pipe: Pipeline) -> None:
    wire = json.loads(msg(station, "probe-3", 1).payload)
    assert len(wire["mac"]) == 64 and "sig" not in wire
    res = pipe.process([msg(station, s, 1, value=i)
                        for i, s in enumerate(["probe-1", "probe-3", "probe-2", "probe-4"])])
    auth = {json.loads(r.body)["sensor"]: json.loads(r.body)["source"]["auth"] for r in res.records}
    assert auth == {"probe-1": "ed25519", "probe-2": "ed25519", "probe-3": "hmac-sha256", "probe-4": "hmac-sha256"}
    assert quarantine(pipe) == []


def test_bad_wrong_missing_and_mismatched_tags_are_quarantined(station: StationDir, pipe: Pipeline) -> None:
    st = station
    flipped = json.loads(msg(st, "probe-3", 10).payload)
    flipped["mac"] = ("0" if flipped["mac"][0] != "0" else "1") + flipped["mac"][1:]
    tampered = json.loads(msg(st, "probe-3", 11).payload)
    tampered["readings"][0]["value"] = 9999
    unsigned = body("probe-3", 12, 1, [temperature(1)])
    both = body("probe-3", 13, 1, [temperature(1)])
    both["mac"] = sign_body(st.sensor_keys["probe-3"], both)
    both["sig"] = "00" * 64
    short = body("probe-3", 14, 1, [temperature(1)])
    short["mac"] = "ab" * 16
    p3 = st.topic("probe-3")
    cases = [
        ("flipped tag", Inbound("mqtt", p3, encode(flipped)), "bad-mac", "does not verify with 'probe-3'"),
        ("tampered value", Inbound("mqtt", p3, encode(tampered)), "bad-mac", "does not verify"),
        ("another sensor's key", msg(st, "probe-3", 15, key=st.sensor_keys["probe-4"]), "bad-mac", "does not verify"),
        ("a random key", msg(st, "probe-3", 16, key=HmacKey(bytes(32))), "bad-mac", "does not verify"),
        ("no tag at all", Inbound("mqtt", p3, encode(unsigned)), "missing-field", "no signature"),
        ("sig and mac", Inbound("mqtt", p3, encode(both)), "bad-mac", "both sig and mac"),
        ("short mac", Inbound("mqtt", p3, encode(short)), "bad-mac", "16 bytes, want 32"),
        # a scheme downgrade either way: the enrolled scheme is the only one accepted
        ("Ed25519 signature from an HMAC probe", msg(st, "probe-3", 17, key=Ed25519PrivateKey.generate()),
         "bad-mac", "carries an ed25519 signature"),
        ("HMAC tag from an Ed25519 probe", msg(st, "probe-1", 18, key=HmacKey(bytes(32))),
         "bad-signature", "carries an hmac-sha256 tag"),
        ("on another probe's topic", Inbound("mqtt", st.topic("probe-4"), msg(st, "probe-3", 19).payload),
         "topic-mismatch", "published on topic"),
    ]
    batch = []
    for i, (_, bad, _, _) in enumerate(cases):
        batch += [msg(st, "probe-4", i + 1, value=i), bad]
    res = pipe.process(batch)
    assert [json.loads(r.body)["value"] for r in res.records] == list(range(len(cases)))
    got = quarantine(pipe)
    assert [r for r, _ in got] == [c[2] for c in cases]
    for (name, _, _, phrase), (_, detail) in zip(cases, got):
        assert phrase in detail, f"{name}: {detail!r} lacks {phrase!r}"


def test_replay_window_applies_to_hmac_probes(station: StationDir, pipe: Pipeline) -> None:
    pipe.process([msg(station, "probe-3", 5000, value=1)])
    res = pipe.process([msg(station, "probe-3", 5000, value=2), msg(station, "probe-3", 4990, value=3),
                        msg(station, "probe-3", 5000 - 4096, value=4)])
    assert [json.loads(r.body)["value"] for r in res.records] == [3]
    assert [r for r, _ in quarantine(pipe)] == ["replayed-counter"] * 2


def _config_with(tmp_path: Path, sensor_toml: str) -> Path:
    st = make_station(tmp_path / "st", 1883, sensors=1)
    with st.config_path.open("a") as f:
        f.write("\n[[sensors]]\n" + sensor_toml + "\n")
    return st.config_path


def test_key_file_is_checked_and_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "k.hmac"
    key.write_text("5a" * 32 + "\n")
    key.chmod(0o644)
    path = _config_with(tmp_path, f'id = "h-1"\nhmac_key_file = "{key}"')
    with pytest.raises(ConfigError, match=r"sensors\[1\].hmac_key_file.*mode 0644.*chmod 600") as e:
        configmod.load(path)
    assert "5a5a" not in str(e.value)
    key.chmod(0o600)
    cfg = configmod.load(path)
    assert cfg.sensors["h-1"].hmac_key == bytes([0x5A]) * 32
    assert "ZZZZ" not in repr(cfg) and "5a5a" not in repr(cfg)  # 0x5a is "Z": neither spelling is shown
    key.write_bytes(bytes(range(32)))  # 32 raw bytes are accepted as they are
    assert configmod.load(path).sensors["h-1"].hmac_key == bytes(range(32))
    key.write_text("5a" * 31)
    with pytest.raises(ConfigError, match=r"want 32 raw bytes or 64 hex characters \(got 62 bytes\)"):
        configmod.load(path)
    with pytest.raises(ConfigError, match="No such file or directory"):
        configmod.load(_config_with(tmp_path / "b", f'id = "h-1"\nhmac_key_file = "{tmp_path}/none"'))
    both = _config_with(tmp_path / "c", f'id = "h-1"\nhmac_key_file = "{key}"\npublic_key = "{"ab" * 32}"')
    with pytest.raises(ConfigError, match="either public_key or hmac_key_file, not both"):
        configmod.load(both)


def test_sim_enroll_hmac_keys_are_0600_reused_and_verify_at_the_gateway(tmp_path: Path) -> None:
    keys, out = tmp_path / "keys", tmp_path / "sensors.toml"
    assert sim_main(["enroll", "--hmac", "--sensors", "2", "--key-dir", str(keys), "--out", str(out)]) == 0
    import tomllib

    first = tomllib.loads(out.read_text())["sensors"]
    assert [s["id"] for s in first] == ["probe-1", "probe-2"] and all("public_key" not in s for s in first)
    assert stat.S_IMODE((keys / "probe-1.hmac").stat().st_mode) == 0o600
    before = (keys / "probe-1.hmac").read_text()
    assert sim_main(["enroll", "--hmac", "--sensors", "3", "--key-dir", str(keys), "--out", str(out)]) == 0
    assert (keys / "probe-1.hmac").read_text() == before  # re-enrolling never re-keys installed probes
    # the gateway reads the very files the simulator signs with
    st = make_station(tmp_path / "st", 1883, sensors=0)
    with st.config_path.open("a") as f:
        f.write("\n" + out.read_text())
    cfg = configmod.load(st.config_path)
    pipe = Pipeline(cfg.ingest, Journal(cfg.journal.path), Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 0),
                    FakeClock())
    sim_keys = dict(load_keys(keys, ["probe-1", "probe-2", "probe-3"]))
    res = pipe.process([Inbound("mqtt", st.topic(s), build_message(k, s, 1, 1, [temperature(3000)]))
                        for s, k in sim_keys.items()])
    assert [json.loads(r.body)["source"]["auth"] for r in res.records] == ["hmac-sha256"] * 3
