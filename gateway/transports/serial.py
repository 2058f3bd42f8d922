"""Serial devices (scales, scanners, RFID/badge readers) → raw lines, one thread per port.

The transport only moves bytes: it frames lines, polls request/response devices, and
hands each line to ``on_line(port_name, raw)`` from the port's reader thread. It never
interprets a line; the adapter named in the routing config does.

Why the framing is defensive: RS-232 and USB-serial links deliver line noise (a cable
touched, a motor starting), a partial line at open (a continuously sending scale is
mid-line when we connect), and endless unterminated junk (wrong baud rate). So:

* a line ends at CR or LF (CR LF, LF CR or a lone one); empty lines are skipped;
* a line containing a byte outside ``ALLOWED`` (printable ASCII, TAB, GS/RS/EOT used by
  GS1/ISO 15434 barcodes) is dropped *whole* and counted: stripping the bad byte could turn
  ``S S 1?00.00 g`` into a plausible but wrong weight;
* a line longer than ``max_line`` is dropped and reading resyncs at the next terminator;
* with ``resync_on_open`` (for stream-mode devices: a continuously sending scale is
  mid-line when we connect), everything up to the first terminator after (re)opening is
  dropped. It is off by default because event devices (scanners, readers) start every
  transmission with a fresh line, and their first line after a reconnect is a real scan.

Unplug/replug: any read/write error closes the port and the reader reopens the same
path with exponential backoff (``reconnect_min_s`` doubling to ``reconnect_max_s``). Use
stable paths (``/dev/serial/by-id/…``) so a replugged adapter is found again.

MT-SICS balances only answer when asked: ``poll_command`` (e.g. ``b"SI\\r\\n"``) is sent
right after opening and then every ``poll_interval_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import serial  # type: ignore[import-untyped]  # pyserial ships no stubs

log = logging.getLogger("traceseal.serial")

LineCallback = Callable[[str, bytes], None]
ALLOWED = frozenset(range(0x20, 0x7F)) | {0x09, 0x1D, 0x1E, 0x04}
TERMINATORS = (0x0D, 0x0A)


class Port(Protocol):
    """The part of ``serial.Serial`` the reader uses; tests may pass a fake."""

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    def close(self) -> None: ...
    @property
    def in_waiting(self) -> int: ...


@dataclass(frozen=True)
class SerialPortConfig:
    name: str  # logical name handed to on_line (what routes match), e.g. "scale-1"
    path: str  # device path or pyserial URL, e.g. /dev/serial/by-id/usb-FTDI_…-if00-port0
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    poll_command: bytes | None = None
    poll_interval_s: float = 1.0
    max_line: int = 256
    read_timeout_s: float = 0.05
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 30.0
    resync_on_open: bool = False  # True for stream-mode devices (A&D continuous output)
    exclusive: bool = True  # flock the device: a second reader would steal bytes


@dataclass
class LineFramer:
    """Bytes → complete lines, per the rules in the module docstring. Pure, no I/O."""

    max_line: int = 256
    discarding: bool = False  # inside a line we will drop (garbage, overlong, partial)
    buf: bytearray = field(default_factory=bytearray)
    dropped_garbage: int = 0
    dropped_long: int = 0
    dropped_partial: int = 0
    _tainted: bool = False
    _why: str = ""

    def reset(self, *, resync: bool) -> None:
        """Forget any partial line; with ``resync`` also drop up to the next terminator."""
        self.buf.clear()
        self.discarding = resync
        self._tainted = False
        self._why = "partial" if resync else ""

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        for b in data:
            if b in TERMINATORS:
                self._end_line(lines)
            elif self.discarding:
                continue
            elif b not in ALLOWED:
                self._tainted = True
                self.buf.append(b)
                if len(self.buf) > self.max_line:
                    self._drop("garbage")
            else:
                self.buf.append(b)
                if len(self.buf) > self.max_line:
                    self._drop("garbage" if self._tainted else "long")
        return lines

    def _drop(self, why: str) -> None:
        self.buf.clear()
        self.discarding = True
        self._why = why

    def _end_line(self, lines: list[bytes]) -> None:
        if self.discarding:
            self._count(self._why)
        elif self._tainted:
            self._count("garbage")
        elif self.buf:
            lines.append(bytes(self.buf))
        self.buf.clear()
        self.discarding = False
        self._tainted = False
        self._why = ""

    def _count(self, why: str) -> None:
        if why == "garbage":
            self.dropped_garbage += 1
        elif why == "long":
            self.dropped_long += 1
        elif why == "partial":
            self.dropped_partial += 1


def open_serial(cfg: SerialPortConfig) -> Port:
    port = serial.serial_for_url(
        cfg.path,
        baudrate=cfg.baudrate,
        bytesize=cfg.bytesize,
        parity=cfg.parity,
        stopbits=cfg.stopbits,
        timeout=cfg.read_timeout_s,
        write_timeout=1.0,
        exclusive=cfg.exclusive,
    )
    return cast(Port, port)


class SerialReader:
    """One port: open, read, frame, poll, and reopen after any failure, until stopped."""

    def __init__(
        self,
        cfg: SerialPortConfig,
        on_line: LineCallback,
        *,
        opener: Callable[[SerialPortConfig], Port] = open_serial,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.on_line = on_line
        self.opener = opener
        self.clock = clock
        self.framer = LineFramer(max_line=cfg.max_line)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.connected = threading.Event()
        self.opens = 0
        self.lines = 0
        self.polls = 0
        self.callback_errors = 0
        self.last_error = ""

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name=f"serial:{self.cfg.name}", daemon=True)
        self.thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout_s)

    def status(self) -> dict[str, Any]:
        f = self.framer
        return {
            "port": self.cfg.name,
            "connected": self.connected.is_set(),
            "opens": self.opens,
            "lines": self.lines,
            "polls": self.polls,
            "dropped_garbage": f.dropped_garbage,
            "dropped_long": f.dropped_long,
            "dropped_partial": f.dropped_partial,
            "callback_errors": self.callback_errors,
            "last_error": self.last_error,
        }

    def run(self) -> None:
        delay = self.cfg.reconnect_min_s
        while not self.stop_event.is_set():
            try:
                port = self.opener(self.cfg)
            except (serial.SerialException, OSError, ValueError) as exc:
                self._failed("open", exc)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)
                continue
            self.opens += 1
            self.connected.set()
            log.info("serial %s: opened %s", self.cfg.name, self.cfg.path)
            lines_before = self.lines
            try:
                self._serve(port)
            except (serial.SerialException, OSError) as exc:
                self._failed("read/write", exc)
            finally:
                self.connected.clear()
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
            # Back off again only if the session was useful: a port that opens and fails at
            # once (half-dead adapter) must not spin at the minimum delay forever.
            if self.lines > lines_before:
                delay = self.cfg.reconnect_min_s
            if not self.stop_event.is_set():
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.cfg.reconnect_max_s)

    def _failed(self, what: str, exc: BaseException) -> None:
        msg = f"{what} {self.cfg.path}: {type(exc).__name__}: {exc}"
        if msg != self.last_error:  # one log line per distinct failure, not one per retry
            log.warning("serial %s: %s", self.cfg.name, msg)
        self.last_error = msg

    def _serve(self, port: Port) -> None:
        self.framer.reset(resync=self.cfg.resync_on_open)
        next_poll = self.clock()
        while not self.stop_event.is_set():
            if self.cfg.poll_command is not None and self.clock() >= next_poll:
                port.write(self.cfg.poll_command)
                self.polls += 1
                next_poll = self.clock() + self.cfg.poll_interval_s
            data = port.read(max(1, min(port.in_waiting, 4096)))
            if data:
                for line in self.framer.feed(data):
                    self._deliver(line)

    def _deliver(self, line: bytes) -> None:
        self.lines += 1
        try:
            self.on_line(self.cfg.name, line)
        except Exception:  # the consumer's bug must not silence the port; it is counted
            self.callback_errors += 1
            log.exception("serial %s: on_line failed", self.cfg.name)


class SerialTransport:
    """All configured ports; ``on_line`` is called from each port's own thread."""

    def __init__(
        self,
        ports: Sequence[SerialPortConfig],
        on_line: LineCallback,
        *,
        opener: Callable[[SerialPortConfig], Port] = open_serial,
    ) -> None:
        names = [p.name for p in ports]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate serial port names in {names}")
        self.readers = [SerialReader(p, on_line, opener=opener) for p in ports]

    def start(self) -> None:
        for r in self.readers:
            r.start()

    def stop(self) -> None:
        for r in self.readers:
            r.stop_event.set()
        for r in self.readers:
            r.stop()

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.readers]
