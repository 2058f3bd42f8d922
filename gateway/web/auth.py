"""Who may see and change what on the dashboard.

One secret, from a 0600 file: the password nurses type at the login form and the Bearer
token scripts and Prometheus send. A station has a handful of staff and no directory
service; a per-person account system would be more to get wrong than it protects. Who
acknowledged is still recorded: the login asks for a name, and it goes into the signed
``acknowledged`` record as ``web:<name>``.

- Comparison is constant time over SHA-256 digests (no length or prefix leak).
- Sessions are server-side (``SessionStore``): the cookie is a random id, revoked at sign-out,
  with idle and absolute expiry; in memory, so a restart signs everyone out. The cookie is
  HttpOnly, SameSite=Strict, and Secure when the dashboard serves HTTPS.
- CSRF: a state change needs either ``Authorization: Bearer`` (a browser never adds it
  cross-site) or the session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf`` form
  field, plus an Origin, if the browser sent one, naming this host.
- Every check of the token, form or Bearer, goes through one ``CredentialLimiter``: per
  source and for all sources together (a LAN is not a trusted network).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import ipaddress
import math
import os
import secrets
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gateway.core.errors import ConfigError
from ledger_client.files import write_atomic

MIN_TOKEN_CHARS = 12


def check_secret_file(path: Path, key: str = "web.token_file") -> None:
    """Refuse a secret others can read or someone else owns, as the gateway does for keys."""
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ConfigError(key, f"{path}: no such file (create it: "
                               f"python3 -c 'import secrets; print(secrets.token_urlsafe(18))' > {path}; "
                               f"chmod 600 {path})") from exc
    if st.st_mode & 0o077:
        raise ConfigError(key, f"{path} is mode {stat.S_IMODE(st.st_mode):04o}, readable by others: chmod 600 {path}")
    if st.st_uid != os.geteuid():
        raise ConfigError(key, f"{path} is owned by uid {st.st_uid}, not by this user (uid {os.geteuid()}): "
                               f"chown it to the user the gateway runs as")


def load_token(path: Path) -> str:
    check_secret_file(path)
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError("web.token_file", f"{path}: the token must be at least {MIN_TOKEN_CHARS} characters")
    return token


def write_token(path: Path) -> str:
    """A new random token in a new 0600 file (never overwrites; complete or absent:
    ledger_client.files). FileExistsError if the name is taken."""
    token = secrets.token_urlsafe(18)
    write_atomic(path, token + "\n", mode=0o600, overwrite=False)
    return token


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class TokenCheck:
    def __init__(self, token: str | None) -> None:
        self._digest = None if token is None else _digest(token)

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def matches(self, candidate: str | None) -> bool:
        if self._digest is None or candidate is None:
            return False
        return hmac.compare_digest(self._digest, _digest(candidate))

    def bearer(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        return scheme.lower() == "bearer" and self.matches(value.strip())


def same_csrf(expected: str | None, got: str | None) -> bool:
    if not expected or not got:
        return False
    return hmac.compare_digest(expected.encode(), got.encode())


def origin_ok(origin: str | None, host: str | None) -> bool:
    """A browser's Origin (when sent) must name the host the request was sent to."""
    if not origin:
        return True
    if origin == "null" or not host:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def clean_name(text: str | None) -> str:
    """A person's name as it goes into a signed record: printable, bounded."""
    name = " ".join("".join(c for c in (text or "") if c.isprintable()).split())
    return name[:48]


def source_key(addr: str) -> str:
    """The unit a limit applies to: one IPv4 address, or one IPv6 /64 (what a single host
    or LAN segment is handed; counting single IPv6 addresses would give it 2^64 tries)."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))
    return str(ip)


class CredentialLimiter:
    """One limit for every check of the token, whether typed at the login form or sent as
    ``Authorization: Bearer``: at most ``per_source`` failures per source (``source_key``)
    and ``global_failures`` from all sources together within ``window_s``.

    While a source (or, after a spray from many addresses, everyone) is over its limit, its
    checks are not made at all: the answer is 429 with the seconds to wait, even for the right
    token, so a correct guess inside a lock-out cannot be told apart from a wrong one. Refused
    tries are not counted, so a lock-out ends ``window_s`` after the failures that caused it.
    Sessions already signed in are unaffected (their cookie is not a guess of the token).
    Successes do not reset a source's count: another client behind the same address (NAT,
    a Prometheus on the attacker's host) must not hand out fresh tries.

    Memory: at most ``global_failures`` failures fall in one window, so pruning sources whose
    failures are all older than the window keeps at most that many sources. ``now`` is a
    monotonic clock reading passed in by the caller.
    """

    def __init__(self, per_source: int = 5, global_failures: int = 30, window_s: float = 60.0) -> None:
        self.per_source, self.global_failures, self.window_s = per_source, global_failures, window_s
        self._by_source: dict[str, collections.deque[float]] = {}
        self._all: collections.deque[float] = collections.deque(maxlen=global_failures)
        self._lock = threading.Lock()

    def _wait(self, times: collections.deque[float] | None, limit: int, now: float) -> float:
        if times is None or len(times) < limit:
            return 0.0
        return max(0.0, times[-limit] + self.window_s - now)

    def retry_after(self, addr: str, now: float) -> int:
        """0 when a check may be made now; else whole seconds to wait (at least 1)."""
        with self._lock:
            wait = max(self._wait(self._by_source.get(source_key(addr)), self.per_source, now),
                       self._wait(self._all, self.global_failures, now))
        return 0 if wait <= 0 else max(1, math.ceil(wait))

    def failed(self, addr: str, now: float) -> None:
        key = source_key(addr)
        with self._lock:
            self._all.append(now)
            times = self._by_source.get(key)
            if times is None:
                if len(self._by_source) >= self.global_failures:
                    self._prune(now)
                times = self._by_source[key] = collections.deque(maxlen=self.per_source)
            times.append(now)

    def _prune(self, now: float) -> None:
        old = [k for k, t in self._by_source.items() if t[-1] + self.window_s <= now]
        for k in old:
            del self._by_source[k]

    def sources(self) -> int:
        """How many sources are remembered (for tests of the memory bound)."""
        with self._lock:
            return len(self._by_source)


@dataclass
class Session:
    name: str
    csrf: str
    created: float
    last_seen: float


class SessionStore:
    """Signed-in browsers, held in this process: the cookie carries only a random id.

    So "Sign out" really ends a session (a cookie copied before it is worthless after it),
    and a session ends ``idle_s`` after its last request or ``max_s`` after sign-in, whichever
    comes first. Kept in memory on purpose: a gateway restart signs everyone out, which on
    a station is a minor nuisance, and nothing secret is written to disk. At most
    ``max_sessions`` (the oldest is dropped first): a station has a handful of screens.
    """

    def __init__(self, idle_s: float, max_s: float, max_sessions: int = 256) -> None:
        self.idle_s, self.max_s, self.max_sessions = idle_s, max_s, max_sessions
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, name: str, now: float) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        s = Session(name=name, csrf=secrets.token_urlsafe(24), created=now, last_seen=now)
        with self._lock:
            for k in [k for k, v in self._sessions.items() if not self._alive(v, now)]:
                del self._sessions[k]
            while len(self._sessions) >= self.max_sessions:
                del self._sessions[next(iter(self._sessions))]  # dicts keep insertion order: oldest first
            self._sessions[sid] = s
        return sid, s

    def _alive(self, s: Session, now: float) -> bool:
        return now - s.last_seen < self.idle_s and now - s.created < self.max_s

    def get(self, sid: str | None, now: float) -> Session | None:
        """The live session for a cookie value, touched; None (and forgotten) when expired."""
        if not sid:
            return None
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            if not self._alive(s, now):
                del self._sessions[sid]
                return None
            s.last_seen = now
            return s

    def remaining_s(self, s: Session, now: float) -> int:
        """Seconds until the absolute end: the cookie's Max-Age."""
        return max(0, int(s.created + self.max_s - now))

    def revoke(self, sid: str | None) -> None:
        with self._lock:
            self._sessions.pop(sid or "", None)
