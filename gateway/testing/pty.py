"""Pseudo-terminals standing in for serial ports in tests and the demo.

A pty's slave side (``/dev/pts/N``) is a real tty: pyserial opens and configures it like a
USB adapter, so the serial transport is tested through the same code path as in the field.
Unplugging a USB adapter makes reads fail and the device path disappear; closing the pty
master does the first, and ``StableLink`` (a symlink like ``/dev/serial/by-id/…``) does the
second and lets a "replugged" device come back on a new pty under the same name.
"""

from __future__ import annotations

import contextlib
import os
import select
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class PtyPair:
    """Both ends of one pty. ``master`` plays the device; ``path`` is what the gateway opens."""

    master: int
    slave: int
    path: str
    closed: bool = field(default=False)

    def write(self, data: bytes) -> int:
        """Write as the device would; bytes nobody reads are dropped, like a UART's."""
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0

    def read(self, timeout_s: float = 1.0, max_bytes: int = 4096) -> bytes:
        """What the gateway wrote to the device, waiting up to ``timeout_s`` for the first byte."""
        ready, _, _ = select.select([self.master], [], [], timeout_s)
        if not ready:
            return b""
        try:
            return os.read(self.master, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def open_pty() -> PtyPair:
    """A raw-mode pty: no echo, no CR/LF translation, non-blocking master."""
    master, slave = os.openpty()
    tty.setraw(slave)  # otherwise the line discipline echoes device output back as "commands"
    os.set_blocking(master, False)
    return PtyPair(master=master, slave=slave, path=os.ttyname(slave))


@contextlib.contextmanager
def pty_pair() -> Iterator[PtyPair]:
    pair = open_pty()
    try:
        yield pair
    finally:
        pair.close()


class StableLink:
    """A symlink whose target can be swapped atomically, like udev's by-id links."""

    def __init__(self, path: str) -> None:
        self.path = path

    def point(self, target: str) -> None:
        tmp = f"{self.path}.tmp{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def read_until(pair: PtyPair, terminator: bytes, timeout_s: float = 2.0) -> bytes:
    """Accumulate what the gateway wrote until ``terminator`` or the deadline."""
    deadline = time.monotonic() + timeout_s
    buf = b""
    while terminator not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        buf += pair.read(timeout_s=left)
    return buf
