"""A per-sensor message counter that survives restarts without ever repeating a value.

The gateway rejects a counter it has seen before as a replay, so a simulator restart that
reused counters would look like an attack. Like real firmware saving flash writes, we
persist a *lease*: before handing out counter ``n`` we durably record a value above ``n``;
after a crash or restart we resume from the recorded value. Counters may skip (up to one
lease) but never repeat or go backwards.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from ledger_client.files import open_lock_file, write_atomic

from .errors import SimConfigError

DEFAULT_LEASE = 64


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` so that a crash leaves either the old or the new value, never half
    (and never through a link someone planted beside it: ledger_client.files)."""
    write_atomic(path, text.encode("ascii"), mode=0o600)


class CounterStore:
    """Strictly increasing counter backed by a small text file (e.g. ``probe-1.ctr``).

    The file holds the first value *not* covered by the current lease; every value below
    it may already have been sent.
    """

    def __init__(self, path: Path, lease: int = DEFAULT_LEASE) -> None:
        if lease < 1:
            raise SimConfigError(f"counter lease must be >= 1, got {lease}")
        self.path = Path(path)
        self.lease = lease
        self._next = self._load()
        self._reserved = self._next  # nothing leased yet in this process

    def _load(self) -> int:
        if not self.path.exists():
            return 1
        text = self.path.read_text("ascii").strip()
        try:
            value = int(text)
        except ValueError as exc:
            raise SimConfigError(
                f"{self.path}: counter file holds {text[:20]!r}, want an integer; "
                "do not delete or edit it, or the gateway will see replays"
            ) from exc
        if value < 1:
            raise SimConfigError(f"{self.path}: counter {value} is below 1")
        return value

    def peek(self) -> int:
        """The value the next call to ``take`` will return."""
        return self._next

    def take(self) -> int:
        """Hand out the next counter, persisting a new lease first when the old one is used up."""
        if self._next >= self._reserved:
            self._reserved = self._next + self.lease
            _write_atomic(self.path, f"{self._reserved}\n")
        value = self._next
        self._next += 1
        return value


class DirLock:
    """Exclusive lock on a key directory, so two simulators cannot share counters."""

    def __init__(self, key_dir: Path) -> None:
        self.path = Path(key_dir) / "firmware_sim.lock"
        self._fd: int | None = None

    def __enter__(self) -> DirLock:
        try:
            fd = open_lock_file(self.path)
        except OSError as exc:  # ELOOP: a symlink planted at the lock's name is not followed
            raise SimConfigError(f"{self.path}: cannot open the lock file ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SimConfigError(
                f"{self.path}: another simulator is using this key directory; two runs "
                "would reuse counters"
            ) from exc
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
