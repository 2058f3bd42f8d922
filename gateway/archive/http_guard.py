"""What one client of the archive's HTTPS ingest may hold or cost (issue 14, finding 3): the
table of open connections (a cap in total and per source address, and each connection's
deadline), and failed-login rate limiting per source address and per user name.

No I/O here and the clock is passed in, so the rules are tested without sockets or sleeps;
gateway/archive/http_server.py applies them at accept time and around each request.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class Conn:
    """One accepted connection. ``deadline`` (monotonic seconds) is when it must have
    delivered its current request in full (None while the archive works on a request);
    ``authenticated`` once a request on it passed the password check."""

    sock: Any
    ip: str
    accepted: float
    deadline: float | None
    authenticated: bool = False
    auth_header: str | None = None  # the Authorization header that passed (no hash per request)
    user: str = ""
    cut: str = ""  # why the archive closed it ("deadline", "displaced"); "" while it is served


class ConnectionTable:
    """Open connections, at most ``max_total`` served at once and ``max_per_ip`` per source.

    At the total cap a new connection displaces the oldest one that never authenticated (a
    flood of silent or half-open connections cannot lock a station out, and a station's
    authenticated keep-alive connection is never the one displaced); with none to displace
    it is refused. Connections being closed still count towards a hard bound of twice the
    cap, so a connection storm cannot grow the table (or the worker queue) either.
    """

    def __init__(self, max_total: int, max_per_ip: int, timeout_s: float) -> None:
        self.max_total, self.max_per_ip, self.timeout_s = max_total, max_per_ip, timeout_s
        self.conns: dict[Any, Conn] = {}  # socket -> Conn, in accept order
        self.counts: Counter[str] = Counter()  # live (not cut) connections per source address
        self.live = 0

    def admit(self, sock: Any, ip: str, now: float) -> tuple[Conn | None, Conn | None]:
        """(the new connection or None if refused, a connection displaced to make room or None)."""
        if self.counts[ip] >= self.max_per_ip or len(self.conns) >= 2 * self.max_total:
            return None, None
        displaced = None
        if self.live >= self.max_total:
            displaced = next((c for c in self.conns.values() if not c.cut and not c.authenticated), None)
            if displaced is None:
                return None, None
            self._cut(displaced, "displaced")
        c = Conn(sock, ip, now, now + self.timeout_s)
        self.conns[sock] = c
        self.counts[ip] += 1
        self.live += 1
        return c, displaced

    def _cut(self, c: Conn, why: str) -> None:
        c.cut = why
        self.live -= 1
        self.counts[c.ip] -= 1
        if not self.counts[c.ip]:
            del self.counts[c.ip]

    def expired(self, now: float) -> list[Conn]:
        """Connections past their deadline, marked cut (the caller closes their sockets)."""
        out = [c for c in self.conns.values() if not c.cut and c.deadline is not None and c.deadline <= now]
        for c in out:
            self._cut(c, "deadline")
        return out

    def release(self, c: Conn) -> None:
        """The connection's worker is done with it."""
        if self.conns.pop(c.sock, None) is not None and not c.cut:
            self._cut(c, "closed")


class AuthLimiter:
    """Failed logins, as token buckets per source address and per user name.

    A bucket holds ``per_source`` (or ``per_user``) tries and refills at that many per
    ``window_s``; a failure takes one. While either bucket of a request is empty it is
    answered 429 with the seconds until one try is back, and its password is not checked (a
    guess costs the archive nothing, and tells the guesser nothing). Only the names in
    ``known_users`` get a per-user bucket (None: every name): guessing an invented name can
    never succeed, so it is limited per address alone and cannot evict a real user's
    bucket. Each table keeps its ``max_entries`` most recently failed keys; a key forgotten
    counts as a full bucket. Arithmetic in integer milliseconds: "1/window tokens" units.
    """

    def __init__(self, *, per_source: int, per_user: int, window_s: int, max_entries: int,
                 known_users: Collection[str] | None, now: Callable[[], float]) -> None:
        self.window_ms = window_s * 1000
        self.max_entries = max_entries
        self.known = None if known_users is None else frozenset(known_users)
        self.now = now
        self.tables: tuple[tuple[int, OrderedDict[str, tuple[int, int]]], ...] = (
            (per_source, OrderedDict()), (per_user, OrderedDict()))

    def sizes(self) -> tuple[int, int]:
        return len(self.tables[0][1]), len(self.tables[1][1])

    def _keys(self, ip: str, user: str | None) -> tuple[str | None, str | None]:
        tracked = user is not None and (self.known is None or user in self.known)
        return ip, user if tracked else None

    def _level(self, cap: int, entry: tuple[int, int] | None, now_ms: int) -> int:
        if entry is None:
            return cap * self.window_ms
        level, at = entry
        return min(cap * self.window_ms, level + max(0, now_ms - at) * cap)

    def retry_after(self, ip: str, user: str | None) -> int | None:
        """Seconds until this address and user may try again; None: they may now."""
        now_ms = int(self.now() * 1000)
        wait_ms = 0
        for key, (cap, table) in zip(self._keys(ip, user), self.tables):
            if key is None:
                continue
            level = self._level(cap, table.get(key), now_ms)
            if level < self.window_ms:
                wait_ms = max(wait_ms, -(-(self.window_ms - level) // cap))
        return None if wait_ms == 0 else max(1, -(-wait_ms // 1000))

    def failed(self, ip: str, user: str | None) -> None:
        now_ms = int(self.now() * 1000)
        for key, (cap, table) in zip(self._keys(ip, user), self.tables):
            if key is None:
                continue
            level = self._level(cap, table.pop(key, None), now_ms)
            table[key] = (max(0, level - self.window_ms), now_ms)  # newest last
            while len(table) > self.max_entries:
                table.popitem(last=False)


class Tally:
    """Counts of what the guard refused, and when to say so in the log: the first time and
    then at most once per ``every_s`` (a flood must not become a flood of log lines)."""

    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self.counts: Counter[str] = Counter()
        self._logged: Counter[str] = Counter()
        self._last: dict[str, float] = {}

    def note(self, kind: str, now: float) -> int | None:
        """Count one; the number since the last log line when it is time to log one, else None."""
        self.counts[kind] += 1
        last = self._last.get(kind)
        if last is not None and now - last < self.every_s:
            return None
        self._last[kind] = now
        n = self.counts[kind] - self._logged[kind]
        self._logged[kind] = self.counts[kind]
        return n
