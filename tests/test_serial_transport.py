"""Serial transport: line framing (pure) and real ptys driven by the simulated devices.

Every pty test goes through pyserial exactly as a USB adapter would: the simulator owns
the pty master, the transport opens the slave through a by-id style symlink.
"""

from __future__ import annotations

import itertools
import queue
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from firmware_sim.serial_devices import AdScale, BarcodeScanner, MtSicsScale, PtyDevice, RfidReader
from gateway.adapters import ad_scale, gs1, mtsics
from gateway.core.errors import ParseError
from gateway.testing.pty import open_pty, read_until
from gateway.transports.serial import LineFramer, SerialPortConfig, SerialReader, SerialTransport

SCAN_A = "01034531200000111719112510ABCD1234\x1d2110EW354EWER"
SCAN_B = "0100349281424885172506001012345"
FAST = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "read_timeout_s": 0.02}


# -- framing, no I/O -------------------------------------------------------------------------
def test_framer_splits_on_cr_lf_and_both() -> None:
    f = LineFramer()
    assert f.feed(b"S S 1 g\r\nS S 2 g\nS S 3 g\rS S") == [b"S S 1 g", b"S S 2 g", b"S S 3 g"]
    assert f.feed(b" 4 g\r\n\r\n\n") == [b"S S 4 g"]


def test_framer_drops_a_line_with_noise_whole_and_resyncs_at_the_terminator() -> None:
    f = LineFramer()
    # "S S 1?00.00 g" must not become the plausible "S S 100.00 g"
    assert f.feed(b"S S 1\xff00.00 g\r\nS S 2.00 g\r\n") == [b"S S 2.00 g"]
    assert f.dropped_garbage == 1


def test_framer_bounds_line_length() -> None:
    f = LineFramer(max_line=16)
    assert f.feed(b"A" * 40 + b"\r\nOK\r\n") == [b"OK"]
    assert f.dropped_long == 1
    assert f.feed(b"\x00" * 40 + b"\nOK\n") == [b"OK"]
    assert f.dropped_garbage == 1


def test_framer_resync_after_open_drops_the_partial_first_line() -> None:
    f = LineFramer()
    f.reset(resync=True)
    assert f.feed(b"0001.234 kg\r\nST,+0001.234 kg\r\n") == [b"ST,+0001.234 kg"]
    assert f.dropped_partial == 1


def test_framer_keeps_gs1_separators() -> None:
    assert LineFramer().feed(b"]d2" + SCAN_A.encode() + b"\r") == [b"]d2" + SCAN_A.encode()]


# -- real ptys ---------------------------------------------------------------------------------
class Lines:
    """Collects (port, line) from the transport's threads."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[str, bytes]] = queue.Queue()

    def __call__(self, port: str, raw: bytes) -> None:
        self.q.put((port, raw))

    def take(self, n: int, timeout_s: float = 3.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        out = []
        while len(out) < n:
            try:
                out.append(self.q.get(timeout=max(0.0, deadline - time.monotonic()))[1])
            except queue.Empty:
                raise AssertionError(f"got {len(out)} of {n} lines: {out}") from None
        return out

    def drain(self, quiet_s: float = 0.3) -> list[bytes]:
        out = []
        while True:
            try:
                out.append(self.q.get(timeout=quiet_s)[1])
            except queue.Empty:
                return out


def wait_for(pred: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[list[PtyDevice]]:
    started: list[PtyDevice] = []
    yield started
    for d in started:
        d.close()


def run(cfgs: list[SerialPortConfig], lines: Lines) -> SerialTransport:
    t = SerialTransport(cfgs, lines)
    t.start()
    return t


def test_mtsics_polling_stable_dynamic_overload(tmp_path: Path, devices: list[PtyDevice]) -> None:
    scale = MtSicsScale(str(tmp_path / "usb-Mettler_Toledo-if00")).start()
    devices.append(scale)
    scale.set_weight("100.00")
    lines = Lines()
    t = run(
        [
            SerialPortConfig(
                "scale-1", scale.port, poll_command=b"SI\r\n", poll_interval_s=0.05, **FAST
            )
        ],
        lines,
    )
    try:
        (obs,) = mtsics.parse("scale-1", lines.take(1)[0])
        assert (obs.kind, obs.value, obs.attrs["stable"]) == ("weight", 100, True)
        scale.set_weight("12.34", stable=False)
        got = [mtsics.parse("scale-1", raw)[0] for raw in lines.take(8)]
        assert (got[-1].value, got[-1].attrs["stable"]) == (12, False)
        scale.set_overload()
        raw = lines.take(8)[-1]  # the port is polled continuously: take, never wait for quiet
        with pytest.raises(ParseError) as info:
            mtsics.parse("scale-1", raw)
        assert info.value.code == "overload"
    finally:
        t.stop()
    assert scale.commands.count("SI") >= 10
    assert set(scale.commands) == {"SI"}
    assert t.readers[0].status()["polls"] >= 10


def test_noise_then_resync(tmp_path: Path, devices: list[PtyDevice]) -> None:
    scanner = BarcodeScanner(str(tmp_path / "usb-scanner")).start()
    devices.append(scanner)
    lines = Lines()
    t = run([SerialPortConfig("scanner-1", scanner.port, **FAST)], lines)
    try:
        wait_for(t.readers[0].connected.is_set)
        time.sleep(0.1)
        scanner.write(b"\x00\xff\x13\x8a\xfe")  # noise with no terminator: poisons the next line
        scanner.scan(SCAN_A)
        scanner.scan(SCAN_B)
        scanner.write(b"\xff\xfe\r\x00\x81")  # a CR inside the noise: its tail still poisons
        scanner.scan(SCAN_B)
        scanner.write(b"\x95\x00\r\n")  # noise that ends in a terminator spoils nothing after it
        scanner.scan(SCAN_A)
        got = lines.take(2)
        assert got == [f"]d2{SCAN_B}".encode(), f"]d2{SCAN_A}".encode()]
        assert lines.drain(0.2) == []
        assert t.readers[0].framer.dropped_garbage == 4
        # random noise from the simulator, then a clean line: every delivered line still parses
        scanner.inject_noise(200)
        scanner.write(b"\r\n")
        for _ in range(3):
            scanner.scan(SCAN_B)
        delivered = lines.drain(0.3)
        assert delivered[-3:] == [f"]d2{SCAN_B}".encode()] * 3
        assert all(b < 0x80 for raw in delivered for b in raw)
    finally:
        t.stop()


def test_truncated_line_is_quarantined_not_misread(
    tmp_path: Path, devices: list[PtyDevice]
) -> None:
    scanner = BarcodeScanner(str(tmp_path / "usb-scanner")).start()
    devices.append(scanner)
    lines = Lines()
    t = run([SerialPortConfig("scanner-1", scanner.port, **FAST)], lines)
    try:
        wait_for(t.readers[0].connected.is_set)
        time.sleep(0.1)
        scanner.send_truncated("]d2" + SCAN_A, keep=12)  # power dip mid-line
        scanner.scan(SCAN_B)
        scanner.scan(SCAN_B, repeat=2)  # duplicate scans are delivered; admission dedupes
        merged, b1, b2 = lines.take(3)
        assert merged == b"]d2010345312" + b"]d2" + SCAN_B.encode()
        with pytest.raises(ParseError):
            gs1.parse("scanner-1", merged)
        assert b1 == b2 == f"]d2{SCAN_B}".encode()
        assert gs1.parse("scanner-1", b1)[0].attrs["expiry"] == "2025-06-30"
    finally:
        t.stop()


def test_unplug_then_replug(tmp_path: Path, devices: list[PtyDevice]) -> None:
    reader = RfidReader(str(tmp_path / "usb-rfid")).start()
    devices.append(reader)
    lines = Lines()
    t = run([SerialPortConfig("rfid-1", reader.port, **FAST)], lines)
    r = t.readers[0]
    try:
        wait_for(r.connected.is_set)
        time.sleep(0.1)
        reader.read("3074257BF7194E4000001A85", repeat=2)
        assert lines.take(2) == [b"3074257BF7194E4000001A85"] * 2
        reader.unplug()
        wait_for(lambda: not r.connected.is_set())
        assert "read/write" in r.last_error or "open" in r.last_error
        time.sleep(0.3)  # several failed reopen attempts with backoff
        reader.replug()
        wait_for(r.connected.is_set)
        time.sleep(0.1)
        reader.read("33B4257BF40C0E4000000190")
        assert lines.take(1) == [b"33B4257BF40C0E4000000190"]
        assert r.opens == 2
    finally:
        t.stop()
    assert not r.connected.is_set()


def test_ad_scale_settles_and_drifts(tmp_path: Path, devices: list[PtyDevice]) -> None:
    scale = AdScale(
        str(tmp_path / "usb-AND"), period_s=0.02, settle_lines=4, stable_after=3
    ).start()
    devices.append(scale)
    lines = Lines()
    t = run([SerialPortConfig("bal-1", scale.port, resync_on_open=True, **FAST)], lines)
    try:
        lines.take(5)
        scale.place(Decimal("1.234"))
        seen = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            obs = ad_scale.parse("bal-1", lines.take(1)[0])[0]
            seen.append((obs.value, obs.attrs["stable"]))
            if seen[-1] == (1234, True):
                break
        assert seen[-1] == (1234, True)
        assert any(not stable for _, stable in seen)  # the pan settled through unstable readings
        scale.drift_per_line = Decimal("0.0006")
        drifted = [ad_scale.parse("bal-1", raw)[0] for raw in lines.take(20)]
        assert drifted[-1].value > 1234
        assert any(not o.attrs["stable"] for o in drifted)
    finally:
        t.stop()


def test_stop_is_prompt_and_callback_errors_do_not_kill_the_reader(
    tmp_path: Path, devices: list[PtyDevice]
) -> None:
    scanner = BarcodeScanner(str(tmp_path / "usb-scanner")).start()
    devices.append(scanner)
    got: list[bytes] = []

    def on_line(port: str, raw: bytes) -> None:
        got.append(raw)
        if len(got) == 1:
            raise RuntimeError("consumer bug")

    reader = SerialReader(SerialPortConfig("scanner-1", scanner.port, **FAST), on_line)
    reader.start()
    wait_for(reader.connected.is_set)
    time.sleep(0.1)
    scanner.scan(SCAN_A)
    scanner.scan(SCAN_B)
    wait_for(lambda: len(got) == 2)
    assert reader.callback_errors == 1
    start = time.monotonic()
    reader.stop()
    assert time.monotonic() - start < 1.0
    assert reader.thread is not None and not reader.thread.is_alive()


def test_missing_port_retries_with_backoff(tmp_path: Path) -> None:
    lines = Lines()
    reader = SerialReader(
        SerialPortConfig(
            "ghost", str(tmp_path / "nope"), reconnect_min_s=0.02, reconnect_max_s=0.05
        ),
        lines,
    )
    reader.start()
    time.sleep(0.3)
    reader.stop()
    assert reader.opens == 0 and "could not open port" in reader.last_error


def test_pty_helper_round_trip() -> None:
    import serial

    pair = open_pty()
    try:
        with serial.Serial(pair.path, timeout=1) as s:
            s.write(b"SI\r\n")
            assert read_until(pair, b"\r\n") == b"SI\r\n"
            pair.write(b"S S 1.00 g\r\n")
            assert s.read_until(b"\r\n") == b"S S 1.00 g\r\n"
    finally:
        pair.close()


def test_duplicate_port_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        SerialTransport(
            [SerialPortConfig("a", "/dev/null"), SerialPortConfig("a", "/dev/zero")], Lines()
        )


class DeadPort:
    """Opens fine, fails on the first read: a half-dead USB adapter."""

    in_waiting = 0

    def read(self, size: int = 1) -> bytes:
        raise OSError(5, "Input/output error")

    def write(self, data: bytes) -> int:
        return len(data)

    def close(self) -> None:
        pass


def test_a_port_that_fails_right_after_open_backs_off() -> None:
    opens: list[float] = []

    def opener(cfg: SerialPortConfig) -> DeadPort:
        opens.append(time.monotonic())
        return DeadPort()

    cfg = SerialPortConfig("dead", "/dev/fake", reconnect_min_s=0.01, reconnect_max_s=0.08)
    reader = SerialReader(cfg, Lines(), opener=opener)
    reader.start()
    time.sleep(0.6)
    reader.stop()
    gaps = [b - a for a, b in itertools.pairwise(opens)]
    assert 4 <= len(opens) <= 14  # without backoff it would reopen ~60 times
    assert gaps[-1] >= 0.07
    assert "Input/output error" in reader.last_error
