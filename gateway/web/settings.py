"""``[web]``: where the dashboard listens and who may see or change what.

Defaults are the safe ones: bound to 127.0.0.1, every page behind the token. Opening the
read-only views to the station's network is an explicit ``public_read = true`` because a
fridge's temperatures and stock are not secret to the nurses there, but they are not for
every device on a shared hospital LAN either. Changing state (acknowledging alarms) always
needs the token, so a dashboard without ``token_file`` is read-only and must be public.

Plain HTTP is for this machine only: a ``bind`` that is not a loopback address needs
``cert_file`` and ``key_file`` (HTTPS), because on a LAN the password and the session cookie
would otherwise cross the network readable by anyone on it.

    [web]
    bind = "0.0.0.0"            # default 127.0.0.1 (this machine only); any other needs cert_file/key_file
    port = 8443
    cert_file = "web.crt"       # PEM certificate (chain) for HTTPS
    key_file = "web.key"        # its private key, mode 0600
    token_file = "web.token"    # mode 0600; the password nurses type, and the API's Bearer token
    public_read = true          # read-only pages and /metrics without logging in
    refresh_s = 10              # how often the page polls
    session_hours = 12          # one shift: a sign-in lasts at most this long
    session_idle_minutes = 60   # ...and ends this long after the browser's last request
    metrics = true              # serve Prometheus /metrics (same read rule as the pages)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import Table
from gateway.web.tls import is_loopback


@dataclass(frozen=True)
class WebConfig:
    bind: str = "127.0.0.1"
    port: int = 8080
    token_file: Path | None = None
    public_read: bool = False
    refresh_s: int = 10
    session_hours: int = 12
    metrics: bool = True
    threads: int = 4
    cert_file: Path | None = None
    key_file: Path | None = None
    session_idle_minutes: int = 60

    @property
    def tls(self) -> bool:
        return self.cert_file is not None and self.key_file is not None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text == "localhost"
    return True


def parse_web(raw: Any, base: Path) -> WebConfig | None:
    """``raw`` is the ``[web]`` table (or None when absent: no dashboard). Errors name the key."""
    if raw is None:
        return None
    t = Table(raw, "web", base)
    cfg = WebConfig(
        bind=t.get("bind", str, "127.0.0.1", check=_is_address, why="must be an IP address or 'localhost'"),
        port=t.get("port", int, 8080, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        token_file=t.path_("token_file", None),
        public_read=t.get("public_read", bool, False),
        refresh_s=t.get("refresh_s", int, 10, check=lambda v: 2 <= v <= 3600, why="must be in 2..3600"),
        session_hours=t.get("session_hours", int, 12, check=lambda v: 1 <= v <= 24 * 30, why="must be in 1..720"),
        metrics=t.get("metrics", bool, True),
        threads=t.get("threads", int, 4, check=lambda v: 1 <= v <= 32, why="must be in 1..32"),
        cert_file=t.path_("cert_file", None),
        key_file=t.path_("key_file", None),
        session_idle_minutes=t.get("session_idle_minutes", int, 60, check=lambda v: 5 <= v <= 24 * 30 * 60,
                                   why="must be in 5..43200"),
    )
    t.done()
    if cfg.token_file is None and not cfg.public_read:
        raise ConfigError("web.token_file", "is required unless web.public_read = true "
                                            "(otherwise nobody could open the dashboard)")
    if (cfg.cert_file is None) != (cfg.key_file is None):
        missing = "web.key_file" if cfg.key_file is None else "web.cert_file"
        raise ConfigError(missing, "is not set: HTTPS needs both web.cert_file and web.key_file")
    # The files themselves are read when the server is built (``WebServer``, at start) and by
    # ``doctor``, like every other secret the config names: loading a config (``status``,
    # ``export`` by another user) must not need the dashboard's key.
    if not cfg.tls and not is_loopback(cfg.bind):
        raise ConfigError("web.bind", f"{cfg.bind!r} is not a loopback address, and plain HTTP would carry the "
                                      f"dashboard password and session cookies across the network in clear: "
                                      f"set web.cert_file and web.key_file to serve HTTPS (README: Dashboard, "
                                      f"HTTPS on a LAN), or bind = \"127.0.0.1\"")
    return cfg
