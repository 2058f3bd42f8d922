"""Simulated serial devices on ptys: MT-SICS and A&D scales, a GS1 scanner, an RFID reader.

Each device owns a pty (``gateway.testing.pty``) and is reachable at ``port``, a stable
symlink like the ``/dev/serial/by-id`` links udev makes, so the gateway opens it exactly as
it would open a USB adapter. A thread per device plays the firmware: it answers commands
(MT-SICS) or sends on its own (A&D continuous output, scanner, reader).

Fault injection, for the transport's robustness tests and the demo:

- ``inject_noise(n)``        n random bytes, as a touched cable or wrong baud rate makes
- ``send_truncated(line)``   a line cut off before its terminator (power dip mid-line)
- ``unplug()`` / ``replug()`` the pty closes and the link disappears; replug brings a new
                             pty back under the same link
- unstable weight: ``MtSicsScale.set_weight(..., stable=False)``, ``AdScale`` settling/drift
- duplicate scans/reads: ``repeat=`` on ``BarcodeScanner.scan`` and ``RfidReader.read``

Weights are ``Decimal`` so the simulated display shows exactly what a test asserts.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
from decimal import Decimal

from gateway.testing.pty import PtyPair, StableLink, open_pty


class PtyDevice:
    """A device at ``port``; subclasses override ``on_command`` and/or ``tick``."""

    tick_s = 0.05  # how often ``tick`` runs, for devices that talk unprompted

    def __init__(self, port: str, *, rng: random.Random | None = None) -> None:
        self.port = port
        self.rng = rng or random.Random(0)
        self.link = StableLink(port)
        self.lock = threading.RLock()
        self.pty: PtyPair | None = None
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.received = bytearray()  # everything the gateway sent, for assertions
        self._cmd = bytearray()

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> PtyDevice:
        self.replug()
        self.thread = threading.Thread(target=self._serve, name=f"sim:{self.port}", daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(2)
        self.unplug()

    def unplug(self) -> None:
        """Close the pty (reads on the gateway side fail) and remove the link."""
        with self.lock:
            self.link.remove()
            if self.pty is not None:
                self.pty.close()
                self.pty = None
            self._cmd.clear()

    def replug(self) -> None:
        with self.lock:
            if self.pty is not None:
                return
            self.pty = open_pty()
            self.link.point(self.pty.path)

    @property
    def plugged(self) -> bool:
        return self.pty is not None

    # -- output ------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        with self.lock:
            if self.pty is not None:
                self.pty.write(data)

    def send_line(self, line: str, terminator: bytes = b"\r\n") -> None:
        self.write(line.encode("ascii") + terminator)

    def inject_noise(self, n: int = 32) -> bytes:
        noise = bytes(self.rng.randrange(256) for _ in range(n))
        self.write(noise)
        return noise

    def send_truncated(self, line: str, keep: int | None = None) -> None:
        cut = len(line) // 2 if keep is None else keep
        self.write(line[:cut].encode("ascii"))

    # -- device behaviour ----------------------------------------------------------------
    def on_command(self, command: str) -> None:
        """A CR LF-terminated command from the gateway. Default: ignore (output-only device)."""

    def tick(self, now: float) -> None:
        """Called every ``tick_s`` seconds while running."""

    def _serve(self) -> None:
        next_tick = time.monotonic()
        while not self.stop_event.is_set():
            pty = self.pty
            if pty is None:
                self.stop_event.wait(self.tick_s)
                continue
            try:
                ready, _, _ = select.select([pty.master], [], [], self.tick_s)
            except (OSError, ValueError):  # closed under us by unplug()
                continue
            if ready:
                try:
                    data = os.read(pty.master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                self._commands(data)
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + self.tick_s
                with self.lock:
                    if self.pty is not None:
                        self.tick(now)

    def _commands(self, data: bytes) -> None:
        with self.lock:
            self.received += data
            self._cmd += data
            while b"\n" in self._cmd:
                raw, _, rest = bytes(self._cmd).partition(b"\n")
                self._cmd = bytearray(rest)
                cmd = raw.rstrip(b"\r").decode("ascii", "replace")
                if cmd:
                    self.on_command(cmd)


def _mt_value(weight: Decimal, decimals: int) -> str:
    return f"{weight:.{decimals}f}".rjust(10)


class MtSicsScale(PtyDevice):
    """A Mettler Toledo balance speaking MT-SICS level 0/1 (S, SI, Z, T, TAC, I4, @)."""

    def __init__(
        self,
        port: str,
        *,
        unit: str = "g",
        decimals: int = 2,
        serial_no: str = "B123456789",
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(port, rng=rng)
        self.unit = unit
        self.decimals = decimals
        self.serial_no = serial_no
        self.gross = Decimal(0)
        self.zero = Decimal(0)
        self.tare = Decimal(0)
        self.stable = True
        self.overload = False
        self.underload = False  # pan removed: the load cell reads below its zero range
        self.busy = False
        self.commands: list[str] = []

    def set_weight(self, gross: Decimal | str, *, stable: bool = True) -> None:
        with self.lock:
            self.gross, self.stable = Decimal(gross), stable
            self.overload = self.underload = False

    def set_overload(self, on: bool = True) -> None:
        with self.lock:
            self.overload = on

    def set_underload(self, on: bool = True) -> None:
        with self.lock:
            self.underload = on

    @property
    def net(self) -> Decimal:
        return self.gross - self.zero - self.tare

    def on_command(self, command: str) -> None:
        self.commands.append(command)
        c = command.strip()
        if self.busy:
            reply = f"{c.split(' ')[0]} I"
        elif c in ("S", "SI"):
            reply = self._weight_reply(immediate=(c == "SI"))
        elif c == "Z":
            reply = "Z I" if not self.stable else ("Z +" if self.overload else "Z A")
            if reply == "Z A":
                self.zero, self.tare = self.gross, Decimal(0)
        elif c == "T":
            if not self.stable or self.overload:
                reply = "T I"
            else:
                self.tare = self.gross - self.zero
                reply = f"T S {_mt_value(self.tare, self.decimals)} {self.unit}"
        elif c == "TAC":
            self.tare, reply = Decimal(0), "TAC A"
        elif c == "I4":
            reply = f'I4 A "{self.serial_no}"'
        elif c == "@":
            self.zero, self.tare = Decimal(0), Decimal(0)
            reply = f'I4 A "{self.serial_no}"'
        else:
            reply = "ES"
        self.send_line(reply)

    def _weight_reply(self, *, immediate: bool) -> str:
        if self.overload:
            return "S +"
        if self.underload:
            return "S -"
        if not self.stable and not immediate:
            return "S I"  # S waits for stability; the simulated balance times out at once
        status = "S" if self.stable else "D"
        return f"S {status} {_mt_value(self.net, self.decimals)} {self.unit}"


class AdScale(PtyDevice):
    """An A&D balance/indicator in stream mode: a line every ``period_s``, settling and drift.

    ``place(weight)`` moves the display toward ``weight`` over ``settle_lines`` lines
    (``US``), then reports ``ST``. ``drift_per_line`` is added to the reading while stable;
    each displayed change makes the next ``stable_after`` lines unstable again, as a real
    balance's stability detector does.
    """

    def __init__(
        self,
        port: str,
        *,
        unit: str = "kg",
        decimals: int = 3,
        style: str = "balance",
        period_s: float = 0.1,
        settle_lines: int = 4,
        stable_after: int = 2,
        drift_per_line: Decimal = Decimal(0),
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(port, rng=rng)
        self.unit, self.decimals, self.style = unit, decimals, style
        self.tick_s = period_s
        self.settle_lines, self.stable_after = settle_lines, stable_after
        self.drift_per_line = drift_per_line
        self.target = Decimal(0)
        self.shown = Decimal(0)
        self.exact = Decimal(0)
        self.steps_left = 0
        self.unchanged = stable_after
        self.overload_at: Decimal | None = None
        self.sent: list[str] = []

    def place(self, weight: Decimal | str) -> None:
        with self.lock:
            self.target = Decimal(weight)
            self.steps_left = self.settle_lines

    def tick(self, now: float) -> None:
        if self.steps_left > 0:
            self.exact += (self.target - self.exact) / self.steps_left
            self.steps_left -= 1
        else:
            self.exact += self.drift_per_line
        quantum = Decimal(1).scaleb(-self.decimals)
        shown = self.exact.quantize(quantum)
        self.unchanged = self.unchanged + 1 if shown == self.shown else 0
        self.shown = shown
        self.send_line(self.format_line())

    def format_line(self) -> str:
        if self.overload_at is not None and self.shown >= self.overload_at:
            line = "OL,+9999999E+19" if self.style == "balance" else "OL,GS,+9999999" + self.unit
        else:
            header = "ST" if self.unchanged >= self.stable_after else "US"
            sign = "-" if self.shown < 0 else "+"
            digits = f"{abs(self.shown):.{self.decimals}f}"
            if self.style == "balance":  # ST,+0001.234 kg  (9-char zero-padded data, 3-char unit)
                line = f"{header},{sign}{digits.rjust(8, '0')}{self.unit.rjust(3)}"
            else:  # indicator: ST,GS,+  1.240kg (space padding, 2-char unit)
                line = f"{header},GS,{sign}{digits.rjust(7)}{self.unit.rjust(2)}"
        self.sent.append(line)
        return line


class BarcodeScanner(PtyDevice):
    """A 2D scanner with AIM identifiers on and FNC1 sent as GS; lines end in CR."""

    def scan(self, data: str, *, aim: str = "]d2", repeat: int = 1) -> None:
        for _ in range(repeat):
            self.send_line(aim + data, terminator=b"\r")


class RfidReader(PtyDevice):
    """A UHF reader in "EPC hex per line" mode; a tag in the field is read repeatedly."""

    def read(self, epc_hex: str, *, repeat: int = 1) -> None:
        for _ in range(repeat):
            self.send_line(epc_hex.upper())


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware_sim.serial_devices DIR``: all four devices at DIR/<name> for a demo.

    The scale is loaded and unloaded, the scanner scans a vaccine pack and the reader reads
    a waste bin every few seconds, until Ctrl-C.
    """
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="firmware_sim.serial_devices", description=main.__doc__)
    p.add_argument("dir", help="directory for the by-id style links")
    p.add_argument("--period", type=float, default=3.0, help="seconds between events")
    args = p.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # so the links are removed on SIGTERM too

    signal.signal(signal.SIGTERM, _terminate)
    devices: list[PtyDevice] = [
        MtSicsScale(os.path.join(args.dir, "mtsics")),
        AdScale(os.path.join(args.dir, "ad"), period_s=0.5),
        BarcodeScanner(os.path.join(args.dir, "scanner")),
        RfidReader(os.path.join(args.dir, "rfid")),
    ]
    for d in devices:
        d.start()
        print(f"{type(d).__name__}: {d.port}", flush=True)
    scale, ad, scanner, reader = devices
    assert isinstance(scale, MtSicsScale) and isinstance(ad, AdScale)
    assert isinstance(scanner, BarcodeScanner) and isinstance(reader, RfidReader)
    try:
        loaded = False
        while True:
            loaded = not loaded
            scale.set_weight("1234.5" if loaded else "0.00")
            ad.place(Decimal("12.345") if loaded else Decimal(0))
            scanner.scan("01034531200000111719112510ABCD1234\x1d2110EW354EWER")
            reader.read("33B4257BF40C0E4000000190")
            time.sleep(args.period)
    except KeyboardInterrupt:
        return 130
    finally:
        for d in devices:
            d.close()


if __name__ == "__main__":
    raise SystemExit(main())
