"""Who may see and change what on the dashboard.

One secret, from a 0600 file: the password nurses type at the login form and the Bearer
token scripts and Prometheus send. A station has a handful of staff and no directory
service; a per-person account system would be more to get wrong than it protects. Who
acknowledged is still recorded: the login asks for a name, and it goes into the signed
``acknowledged`` record as ``web:<name>``.

- Comparison is constant time over SHA-256 digests (no length or prefix leak).
- The session cookie is signed with a key derived from the token, so changing the token
  logs everyone out, and sessions survive a gateway restart. HttpOnly, SameSite=Strict.
- CSRF: a state change needs either ``Authorization: Bearer`` (a browser never adds it
  cross-site) or the session's CSRF token in the ``X-CSRF-Token`` header or a ``csrf`` form
  field, plus an Origin, if the browser sent one, naming this host.
- Failed logins are rate limited per client address (a LAN is not a trusted network).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from ledger_client.files import write_atomic

from ..errors import ConfigError

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
        # Signs session cookies: derived, so a token change invalidates every session.
        self.session_key = (hmac.new(token.encode(), b"traceseal-web-session/1", hashlib.sha256).digest()
                            if token is not None else secrets.token_bytes(32))

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


class LoginLimiter:
    """At most ``burst`` failed logins per address per ``window_s``; then wait the window out."""

    def __init__(self, burst: int = 5, window_s: float = 60.0) -> None:
        self.burst, self.window_s = burst, window_s
        self._fails: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, addr: str) -> bool:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._fails.get(addr, []) if now - t < self.window_s]
            self._fails[addr] = recent
            return len(recent) >= self.burst

    def failed(self, addr: str) -> None:
        with self._lock:
            self._fails.setdefault(addr, []).append(time.monotonic())
            if len(self._fails) > 10_000:  # bounded memory under a scan of addresses
                self._fails.clear()

    def succeeded(self, addr: str) -> None:
        with self._lock:
            self._fails.pop(addr, None)
