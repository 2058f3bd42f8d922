"""``[web]``: where the dashboard listens and who may see or change what.

Defaults are the safe ones: bound to 127.0.0.1, every page behind the token. Opening the
read-only views to the station's network is an explicit ``public_read = true`` because a
fridge's temperatures and stock are not secret to the nurses there, but they are not for
every device on a shared hospital LAN either. Changing state (acknowledging alarms) always
needs the token, so a dashboard without ``token_file`` is read-only and must be public.

    [web]
    bind = "0.0.0.0"            # default 127.0.0.1 (this machine only)
    port = 8080
    token_file = "web.token"    # mode 0600; the password nurses type, and the API's Bearer token
    public_read = true          # read-only pages and /metrics without logging in
    refresh_s = 10              # how often the page polls
    session_hours = 12          # one shift: a login lasts this long
    metrics = true              # serve Prometheus /metrics (same read rule as the pages)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import _Table
from ..errors import ConfigError


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
    t = _Table(raw, "web", base)
    cfg = WebConfig(
        bind=t.get("bind", str, "127.0.0.1", check=_is_address, why="must be an IP address or 'localhost'"),
        port=t.get("port", int, 8080, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        token_file=t.path_("token_file", None),
        public_read=t.get("public_read", bool, False),
        refresh_s=t.get("refresh_s", int, 10, check=lambda v: 2 <= v <= 3600, why="must be in 2..3600"),
        session_hours=t.get("session_hours", int, 12, check=lambda v: 1 <= v <= 24 * 30, why="must be in 1..720"),
        metrics=t.get("metrics", bool, True),
        threads=t.get("threads", int, 4, check=lambda v: 1 <= v <= 32, why="must be in 1..32"),
    )
    t.done()
    if cfg.token_file is None and not cfg.public_read:
        raise ConfigError("web.token_file", "is required unless web.public_read = true "
                                            "(otherwise nobody could open the dashboard)")
    return cfg
