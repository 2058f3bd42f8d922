"""DS18B20 adapter against every sample in w1_slave_samples.json, and the w1 poller on a fake sysfs."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from adapter_testkit import assert_observation_ok, load, samples

from gateway.adapters import ds18b20
from gateway.core.errors import ParseError
from gateway.transports.w1 import W1Poller

W1 = samples("w1_slave_samples.json")
INVALID_CODES = {
    "real_85000_linux61_regression": "power-on-value",
    "empty_read_modern_kernel": "empty-read",
}


@pytest.mark.parametrize("sample", W1, ids=[s["id"] for s in W1])
def test_every_w1_sample(sample: dict[str, Any]) -> None:
    path = "/sys/bus/w1/devices/28-031655c9d5ff/w1_slave"
    raw = sample["content"].encode("ascii")
    if sample["expected"]["valid"]:
        (obs,) = ds18b20.parse(path, raw)
        assert_observation_ok(obs)
        want = int(Decimal(str(sample["expected"]["temperature_c"])) * 1000)
        assert (obs.sensor, obs.kind, obs.value, obs.unit) == (
            "w1:28-031655c9d5ff",
            "temperature",
            want,
            "mC",
        )
        check = sample["crc_check_run_here"]
        assert ds18b20.crc8_maxim(bytes.fromhex(obs.attrs["scratchpad"])[:8]) == int(
            check["crc8_of_bytes_0_7"], 16
        )
        assert obs.value == check["kernel_t_millideg"]
    else:
        with pytest.raises(ParseError) as info:
            ds18b20.parse(path, raw)
        assert info.value.code == INVALID_CODES[sample["id"]]


def test_truncation_toward_zero_matches_the_kernel() -> None:
    """−4.8125 °C is register 0xFFB3; C division truncates to −4812, not −4813 (floor)."""
    assert ds18b20.kernel_millidegrees(bytes.fromhex("b3ff")) == -4812
    assert ds18b20.kernel_millidegrees(bytes.fromhex("7301")) == 23187  # 23.1875 → 23187


def test_sensor_id_from_paths() -> None:
    assert (
        ds18b20.sensor_id("/sys/bus/w1/devices/w1_bus_master1/28-0416927dcdff/w1_slave")
        == "w1:28-0416927dcdff"
    )
    assert ds18b20.sensor_id("probe-a") == "w1:probe-a"


def test_format_documented_in_the_sample_file_matches_our_crc() -> None:
    fmt = load("w1_slave_samples.json")["format"]
    assert "CRC8" in fmt["line1"]
    assert ds18b20.crc8_maxim(bytes(8)) == 0  # why an all-zero read passes the kernel's CRC


def _probe(base: Path, name: str, content: str) -> Path:
    d = base / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "w1_slave").write_text(content)
    return d / "w1_slave"


def test_w1_poller_reads_every_probe_and_delivers_raw_bytes(tmp_path: Path) -> None:
    good = W1[0]["content"]
    _probe(tmp_path, "28-031655c9d5ff", good)
    _probe(tmp_path, "28-0416927dcdff", "")  # failed conversion: empty file
    _probe(tmp_path, "10-000802b4ba2a", good)  # DS18S20 family: not matched by 28-*
    (tmp_path / "w1_bus_master1").mkdir()
    got: list[tuple[str, bytes]] = []
    poller = W1Poller(lambda p, raw: got.append((p, raw)), base_dir=str(tmp_path), interval_s=0.01)
    assert poller.poll_once() == 2
    assert [(Path(p).parent.name, raw) for p, raw in got] == [
        ("28-031655c9d5ff", good.encode()),
        ("28-0416927dcdff", b""),
    ]
    # The adapter, not the transport, decides what the bytes mean.
    assert ds18b20.parse(*got[0])[0].value == 23187
    with pytest.raises(ParseError, match="empty-read"):
        ds18b20.parse(*got[1])


def test_w1_poller_picks_up_hotplugged_probes_and_survives_callback_errors(tmp_path: Path) -> None:
    seen: list[str] = []

    def on_read(path: str, raw: bytes) -> None:
        seen.append(Path(path).parent.name)
        if len(seen) == 1:
            raise RuntimeError("consumer bug")

    poller = W1Poller(on_read, base_dir=str(tmp_path), interval_s=0.01)
    assert poller.poll_once() == 0
    _probe(tmp_path, "28-000000000001", W1[1]["content"])
    _probe(tmp_path, "28-000000000002", W1[1]["content"])
    assert poller.poll_once() == 2
    assert seen == ["28-000000000001", "28-000000000002"]
    assert poller.callback_errors == 1


def test_w1_poller_thread_polls_at_interval(tmp_path: Path) -> None:
    import threading

    _probe(tmp_path, "28-000000000001", W1[0]["content"])
    reads = threading.Semaphore(0)
    poller = W1Poller(lambda p, raw: reads.release(), base_dir=str(tmp_path), interval_s=0.02)
    poller.start()
    try:
        assert all(reads.acquire(timeout=2) for _ in range(3))
    finally:
        poller.stop()
    assert poller.thread is not None and not poller.thread.is_alive()
