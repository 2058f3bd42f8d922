"""Forwarding's config slice: ``[upstream]`` (``UpstreamConfig``, ``parse_upstream``) and
``ForwardConfig``, everything a forwarder reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.settings import JournalConfig
from gateway.core.table import Table, positive
from gateway.rules import InventoryConfig, UnitConfig
from gateway.transports.settings import MqttConfig


@dataclass(frozen=True)
class UpstreamConfig:
    """``[upstream]``: the central broker the forwarder ships to (docs/upstream.md)."""

    enabled: bool = False
    transport: str = "mqtt"  # "mqtt" (host, port) or "https" (url)
    url: str = ""
    host: str = ""
    port: int = 1883
    prefix: str = "traceseal/up"
    client_id: str = ""
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    batch_max: int = 500
    max_inflight: int = 4  # batches per stream awaiting PUBACK; an alarm waits behind at most these
    keepalive: int = 30
    session_expiry_s: int = 7 * 24 * 3600
    reconnect_max_s: int = 60  # backoff cap between reconnect attempts (full jitter below it)
    resend_s: int = 300  # sent but not archived this long, and the archive spoke since: send again (MQTT)


@dataclass(frozen=True)
class ForwardConfig:
    """What a forwarder (MQTT or HTTPS) reads: its ``[upstream]`` slice, the gateway id that
    names its topics, the journal it reads on its own connection, and the units and
    inventory its signed hello (the station profile) describes."""

    gateway_id: str
    upstream: UpstreamConfig
    journal: JournalConfig = field(default_factory=JournalConfig)
    units: dict[str, UnitConfig] = field(default_factory=dict)
    inventory: InventoryConfig = field(default_factory=InventoryConfig)


def _topic_level(v: str) -> bool:
    return bool(v) and not any(c in v for c in "+#\0") and not v.startswith("/") and not v.endswith("/")


def parse_upstream(data: Any, base: Path, gateway_id: str, mqtt: MqttConfig) -> UpstreamConfig:
    """``[upstream]`` (and ``[upstream.tls]``). Disabled by default; when enabled, ``host`` (MQTT)
    or ``url`` (HTTPS) is required, because forwarding to a default address would ship a
    station's records to whatever answers there."""
    u = Table(data, "upstream", base)
    enabled = u.get("enabled", bool, False)
    transport = u.get("transport", str, "mqtt", check=lambda t: t in ("mqtt", "https"), why="must be 'mqtt' or 'https'")
    url = u.get("url", str, "", check=lambda v: v.startswith("https://") and len(v) > 8,
                why="must be an https:// URL (records and credentials never travel in clear)")
    if enabled and transport == "mqtt" and "host" not in u.data:
        raise ConfigError("upstream.host", "is required when upstream.enabled = true")
    if enabled and transport == "https" and not url:
        raise ConfigError("upstream.url", "is required when upstream.transport = 'https'")
    tls = Table(u.get("tls", dict, {}), "upstream.tls", base)
    tls_ca, tls_cert, tls_key = tls.path_("ca_file", None), tls.path_("cert_file", None), tls.path_("key_file", None)
    tls.done()
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("upstream.tls.cert_file" if tls_cert is None else "upstream.tls.key_file",
                          "client certificates need both cert_file and key_file")
    if tls_cert is not None and tls_ca is None:
        raise ConfigError("upstream.tls.ca_file", "is required when a client certificate is configured")
    up = UpstreamConfig(
        enabled=enabled, transport=transport, url=url.rstrip("/"),
        host=u.get("host", str, "", check=lambda h: bool(h.strip()), why="must not be empty"),
        port=u.get("port", int, 8883 if tls_ca is not None else 1883, check=lambda p: 0 < p < 65536,
                   why="must be in 1..65535"),
        prefix=u.get("prefix", str, "traceseal/up", check=_topic_level,
                     why="must be a topic prefix without '+', '#', or a leading/trailing '/'"),
        client_id=u.get("client_id", str, f"traceseal-up-{gateway_id}", check=lambda v: 0 < len(v) <= 128,
                        why="must be 1-128 characters"),
        tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
        username=u.get("username", str, None),
        password_file=u.path_("password_file", None),
        batch_max=u.get("batch_max", int, 500, check=lambda v: 1 <= v <= 10_000, why="must be in 1..10000"),
        max_inflight=u.get("max_inflight", int, 4, check=lambda v: 1 <= v <= 100, why="must be in 1..100"),
        keepalive=u.get("keepalive", int, 30, check=lambda v: 5 <= v <= 65535, why="must be in 5..65535"),
        session_expiry_s=u.get("session_expiry_s", int, 7 * 24 * 3600, check=positive, why="must be positive"),
        reconnect_max_s=u.get("reconnect_max_s", int, 60, check=lambda v: 1 <= v <= 3600, why="must be in 1..3600"),
        resend_s=u.get("resend_s", int, 300, check=lambda v: 1 <= v <= 86400, why="must be in 1..86400"),
    )
    u.done()
    if up.password_file is not None and up.username is None:
        raise ConfigError("upstream.username", "is required when upstream.password_file is set")
    if enabled:
        if not all(c.isascii() and (c.isalnum() or c in "._-") for c in gateway_id):
            raise ConfigError("gateway.id", f"must be ASCII letters, digits, '.', '_' or '-' to name upstream "
                                            f"topics, got {gateway_id!r}")
        if transport == "mqtt" and (up.host, up.port, up.client_id) == (mqtt.host, mqtt.port, mqtt.client_id):
            raise ConfigError("upstream.client_id", f"{up.client_id!r} is the ingest client's id on the same broker; "
                                                    "two sessions with one id disconnect each other")
    return up
