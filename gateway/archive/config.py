"""``archive.toml``: broker, store and enrolled gateways, validated once at start.

Errors name the key, and unknown keys are errors, as in the gateway's config
(gateway/app/config.py): a typo in ``[store]`` must not silently archive into a default file.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.configfiles import NamedFile
from gateway.core.errors import ConfigError
from gateway.core.table import Table, positive, read_toml
from gateway.journal import UPSTREAM_TOPICS
from gateway.transports.settings import MqttConfig, broker_files, broker_table

GATEWAY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SECTIONS = {"prefix", "broker", "store", "gateways", "limits", "metrics", "http"}


@dataclass(frozen=True)
class StoreConfig:
    sqlite: Path | None = None
    postgres: str | None = None  # a libpq DSN; its password belongs in ~/.pgpass, not here

    def describe(self) -> str:
        if self.postgres is not None:
            return "postgres " + re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", self.postgres)
        return f"sqlite {self.sqlite}"


@dataclass(frozen=True)
class HttpConfig:
    """``[http]`` of archive.toml."""

    listen: str
    port: int
    cert_file: Path
    key_file: Path
    password_file: Path
    path: str = "/upstream"
    # what one client may hold or cost (README §archive HTTPS, docs/upstream.md §HTTPS)
    max_connections: int = 64  # open at once; over it a never-authenticated one is displaced, else refused
    max_connections_per_ip: int = 16  # from one source address; over it refused at accept
    request_timeout_s: float = 30  # handshake/idle wait + headers + body of one request, in total
    max_header_bytes: int = 16384  # request line and headers: over it 431
    max_headers: int = 64
    auth_failures: int = 10  # failed logins per source address per auth_window_s; then 429
    auth_failures_per_user: int = 50  # the same per (known) user name, from any address
    auth_window_s: int = 60
    auth_table_max: int = 4096  # addresses (and user names) tracked; the least recent are forgotten


def parse_http(data: Any, base: Path) -> HttpConfig | None:
    """``[http]``; absent = no HTTPS ingest. TLS is not optional: records and passwords
    never travel in clear."""
    if data is None:
        return None
    t = Table(data, "http", base)
    cfg = HttpConfig(
        listen=t.get("listen", str, "0.0.0.0", check=bool, why="must not be empty"),
        port=t.get("port", int, 8443, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        cert_file=t.path_("cert_file"),  # type: ignore[arg-type]  # required: path_ raises when absent
        key_file=t.path_("key_file"),  # type: ignore[arg-type]
        password_file=t.path_("password_file"),  # type: ignore[arg-type]
        path="/" + t.get("path", str, "/upstream", check=lambda v: "?" not in v and "#" not in v,
                         why="must be a URL path").strip("/"),
        max_connections=t.get("max_connections", int, 64, check=lambda v: 1 <= v <= 10_000,
                              why="must be in 1..10000"),
        max_connections_per_ip=t.get("max_connections_per_ip", int, 16, check=positive, why="must be positive"),
        request_timeout_s=t.get("request_timeout_s", (int, float), 30,
                                check=lambda v: not isinstance(v, bool) and 0 < v <= 3600,
                                why="must be a number of seconds in (0, 3600]"),
        max_header_bytes=t.get("max_header_bytes", int, 16384, check=lambda v: 1024 <= v <= 2**20,
                               why="must be in 1024..1 MiB"),
        max_headers=t.get("max_headers", int, 64, check=lambda v: 1 <= v <= 1000, why="must be in 1..1000"),
        auth_failures=t.get("auth_failures", int, 10, check=positive, why="must be positive"),
        auth_failures_per_user=t.get("auth_failures_per_user", int, 50, check=positive, why="must be positive"),
        auth_window_s=t.get("auth_window_s", int, 60, check=lambda v: 1 <= v <= 86_400,
                            why="must be in 1..86400"),
        auth_table_max=t.get("auth_table_max", int, 4096, check=lambda v: 1 <= v <= 1_000_000,
                             why="must be in 1..1000000"),
    )
    t.done()
    if cfg.max_connections_per_ip > cfg.max_connections:
        raise ConfigError("http.max_connections_per_ip",
                          f"must be at most max_connections ({cfg.max_connections}), got {cfg.max_connections_per_ip}")
    return cfg


@dataclass(frozen=True)
class ArchiveConfig:
    prefix: str
    broker: MqttConfig
    store: StoreConfig
    gateways: dict[str, str]  # id -> public key (hex)
    max_payload: int = 256 * 1024
    inbox: int = 64
    batch_messages: int = 32
    rejections_max_rows: int = 100_000
    source: Path | None = None
    metrics_listen: tuple[str, int] | None = None  # [metrics] listen: Prometheus /metrics, off by default
    http: HttpConfig | None = None  # HTTPS ingest beside MQTT (None: off)


def valid_key(v: str) -> bool:
    return isinstance(v, str) and bool(_HEX64.fullmatch(v))


def load(path: Path | str) -> ArchiveConfig:
    raw, path = read_toml(path)
    return parse(raw, path.parent, source=path)


def parse(raw: dict[str, Any], base: Path, *, source: Path | None = None) -> ArchiveConfig:
    for k in raw:
        if k not in _SECTIONS:
            near = difflib.get_close_matches(k, sorted(_SECTIONS), n=1)
            raise ConfigError(k, "unknown section" + (f"; did you mean {near[0]!r}?" if near else ""))
    top = Table({"prefix": raw["prefix"]} if "prefix" in raw else {}, "", base)
    prefix = top.get("prefix", str, "traceseal/up",
                     check=lambda s: bool(s) and not any(c in s for c in "+#") and not s.endswith("/"),
                     why="must be a topic prefix without '+', '#' or a trailing '/'")

    m = Table(raw.get("broker", {}), "broker", base)
    broker = broker_table(m, client_id=lambda: m.get("client_id", str, "traceseal-archive", check=bool,
                                                     why="must not be empty"),
                          topics=lambda: tuple(f"{prefix}/+/{s}" for s in UPSTREAM_TOPICS),
                          receive_maximum=32, session_expiry_s=30 * 24 * 3600)
    m.done()

    s = Table(raw.get("store", {}), "store", base)
    sqlite = s.path_("sqlite", None)
    postgres = s.get("postgres", str, None, check=bool, why="must be a non-empty libpq DSN")
    s.done()
    if sqlite is not None and postgres is not None:
        raise ConfigError("store", "give either sqlite or postgres, not both")
    if sqlite is None and postgres is None:
        sqlite = base / "archive.sqlite"
    store = StoreConfig(sqlite=sqlite, postgres=postgres)

    lim = Table(raw.get("limits", {}), "limits", base)
    limits = {
        "max_payload": lim.get("max_payload", int, 256 * 1024, check=lambda v: 1024 <= v <= 16 * 2**20,
                               why="must be in 1024..16 MiB"),
        "inbox": lim.get("inbox", int, 64, check=positive, why="must be positive"),
        "batch_messages": lim.get("batch_messages", int, 32, check=positive, why="must be positive"),
        "rejections_max_rows": lim.get("rejections_max_rows", int, 100_000, check=positive, why="must be positive"),
    }
    lim.done()

    gws: dict[str, str] = {}
    items = raw.get("gateways", [])
    if not isinstance(items, list):
        raise ConfigError("gateways", "must be an array of tables ([[gateways]])")
    for i, item in enumerate(items):
        t = Table(item, f"gateways[{i}]", base)
        gid = t.get("id", str, check=lambda v: bool(GATEWAY_ID.fullmatch(v)),
                    why="must be 1-64 letters, digits, '.', '_' or '-'")
        key = t.get("public_key", str, check=valid_key, why="must be 64 lowercase hex characters")
        t.done()
        if gid in gws:
            raise ConfigError(f"gateways[{i}].id", f"{gid!r} is enrolled twice")
        gws[gid] = key
    return ArchiveConfig(prefix=prefix, broker=broker, store=store, gateways=gws, source=source,
                         metrics_listen=_metrics(raw.get("metrics", {}), base),
                         http=parse_http(raw.get("http"), base), **limits)


def _listen(v: str) -> tuple[str, int] | None:
    host, _, port = v.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]:9465
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _metrics(raw: Any, base: Path) -> tuple[str, int] | None:
    """``[metrics] listen = "127.0.0.1:9465"``: where Prometheus scrapes the archive."""
    t = Table(raw, "metrics", base)
    listen = t.get("listen", str, None, check=lambda v: _listen(v) is not None,
                   why='must be "host:port", e.g. "127.0.0.1:9465"')
    t.done()
    return None if listen is None else _listen(listen)


def named_files(cfg: ArchiveConfig) -> list[NamedFile]:
    """Every file archive.toml names, for ``configfiles.check_files`` at ``archive run``: the
    broker's password and TLS files, and ``[http]``'s certificate, key and password hashes."""
    out = broker_files("broker", cfg.broker)
    h = cfg.http
    if h is not None:
        out += [NamedFile("http.cert_file", h.cert_file, "TLS certificate", False, "http cert"),
                NamedFile("http.key_file", h.key_file, "TLS key", True, "http key"),
                NamedFile("http.password_file", h.password_file, "password hashes", True, "http passwords")]
    return out
