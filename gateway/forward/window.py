"""Bounded in-flight batches of one stream, and the contiguous ``sent`` cursor they allow.

The broker may PUBACK batches 2 and 3 before 1 (or 1 may be lost with a connection): the
cursor may only pass a batch once it and every batch before it are acknowledged, else a
restart would resume after a batch the broker never took. No I/O; the forwarder feeds it.
"""

from __future__ import annotations

from collections import deque


class Window:
    def __init__(self, sent: int, limit: int) -> None:
        self.sent = sent  # everything at or below is PUBACKed
        self.head = sent  # the last cursor handed to MQTT (== sent when nothing is in flight)
        self.limit = limit
        self.peak = 0  # most batches ever in flight at once (visible in status and tests)
        self._q: deque[list[int]] = deque()  # [mid, last cursor, acked]

    @property
    def in_flight(self) -> int:
        return len(self._q)

    def room(self) -> bool:
        return len(self._q) < self.limit

    def push(self, mid: int, last: int) -> None:
        self._q.append([mid, last, 0])
        self.head = last
        self.peak = max(self.peak, len(self._q))

    def ack(self, mid: int) -> bool:
        """Mark ``mid`` acknowledged; True if ``sent`` moved."""
        for entry in self._q:
            if entry[0] == mid:
                entry[2] = 1
                break
        else:
            return False
        moved = False
        while self._q and self._q[0][2]:
            self.sent = self._q.popleft()[1]
            moved = True
        return moved

    def advance(self, cursor: int) -> None:
        """Another path already covered everything up to ``cursor`` (only when idle)."""
        if not self._q and cursor > self.sent:
            self.sent = self.head = cursor

    def rewind(self, cursor: int) -> None:
        """Send again from ``cursor + 1`` (the archive never got what the broker took; only when idle)."""
        if not self._q and cursor < self.sent:
            self.sent = self.head = cursor

    def reset(self) -> None:
        """Forget what is in flight (the broker refused it): the next batch starts after ``sent``."""
        self._q.clear()
        self.head = self.sent
