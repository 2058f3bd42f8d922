"""Clocks passed in, never read from a global: tests and replays use a FakeClock.

The Pi has no RTC; after a power cut it boots in the past until NTP syncs. Records carry
``clock_synced`` so a verifier knows which times to trust; the kernel knows whether NTP
has disciplined the clock (adjtimex returns TIME_ERROR while unsynchronised).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def synced(self) -> bool: ...

    def monotonic(self) -> float: ...


class _Timex(ctypes.Structure):
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
                ("constant", ctypes.c_long), ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time_sec", ctypes.c_long), ("time_usec", ctypes.c_long), ("tick", ctypes.c_long),
                ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
                ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("_pad", ctypes.c_int * 11)]


TIME_ERROR = 5


class SystemClock:
    def __init__(self, recheck_s: float = 60.0) -> None:
        self._recheck_s = recheck_s
        self._checked = -1e9
        self._synced = False
        lib = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(lib, use_errno=True) if lib else None

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self._recheck_s:
            self._checked = now
            self._synced = self._kernel_synced()
        return self._synced

    def _kernel_synced(self) -> bool:
        if self._libc is None:
            return False
        tx = _Timex()
        try:
            state = self._libc.adjtimex(ctypes.byref(tx))
        except (AttributeError, OSError):
            return False
        return state not in (-1, TIME_ERROR)


class FakeClock:
    """A settable clock for tests and simulations."""

    def __init__(self, start_ms: int = 1_767_225_600_000, synced: bool = True) -> None:
        self.t_ms = start_ms
        self._synced = synced
        self._mono = 0.0

    def now_ms(self) -> int:
        return self.t_ms

    def synced(self) -> bool:
        return self._synced

    def monotonic(self) -> float:
        return self._mono + self.t_ms / 1000

    def advance(self, ms: int) -> None:
        self.t_ms += ms


def parse_time_ms(text: str) -> int:
    """Unix ms, or an ISO 8601 time (UTC when no offset is given): how the CLIs read a time."""
    if text.lstrip("-").isdigit():
        return int(text)
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1000)
