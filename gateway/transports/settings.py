"""The transports' config slices: ``[mqtt]``, ``[[serial]]``, ``[w1]``, and reading a broker
connection's keys the same way for the gateway's ``[mqtt]`` and the archive's ``[broker]``
(so the archive shares the rule without importing the gateway's config assembler)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.configfiles import NamedFile
from gateway.core.errors import ConfigError
from gateway.core.table import Table, positive

SERIAL_ADAPTERS = {"mtsics", "ad_scale", "gs1", "epc", "badge"}


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    topics: tuple[str, ...] = ("traceseal/sensors/+/reading",)
    username: str | None = None
    password_file: Path | None = None
    tls_ca: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    receive_maximum: int = 100
    keepalive: int = 30
    session_expiry_s: int = 7 * 24 * 3600


@dataclass(frozen=True)
class SerialConfig:
    name: str  # logical port name: routes match it, and the device's sensor id is "<adapter>:<name>"
    path: str
    adapter: str
    baudrate: int = 9600
    poll: str | None = None  # e.g. "SI" for MT-SICS; CR LF is appended
    poll_interval_s: float = 1.0
    stream: bool = False  # continuous-output device: resync on open


@dataclass(frozen=True)
class W1Config:
    enabled: bool = False
    base_dir: Path = Path("/sys/bus/w1/devices")
    interval_s: float = 30.0


def broker_table(m: Table, *, client_id: Callable[[], str], topics: Callable[[], tuple[str, ...]],
                 receive_maximum: int, session_expiry_s: int) -> MqttConfig:
    """The keys a broker connection takes, read the same way for the gateway's ``[mqtt]`` and
    the archive's ``[broker]``. ``client_id`` and ``topics`` differ in default and rule, so the
    caller reads them (called in key order, so the first bad key is still the one reported)."""
    return MqttConfig(
        host=m.get("host", str, "127.0.0.1"),
        port=m.get("port", int, 1883, check=lambda p: 0 < p < 65536, why="must be in 1..65535"),
        client_id=client_id(),
        topics=topics(),
        username=m.get("username", str, None),
        password_file=m.path_("password_file", None),
        tls_ca=m.path_("tls_ca", None), tls_cert=m.path_("tls_cert", None), tls_key=m.path_("tls_key", None),
        receive_maximum=m.get("receive_maximum", int, receive_maximum, check=lambda v: 1 <= v <= 65535,
                              why="must be in 1..65535"),
        keepalive=m.get("keepalive", int, 30, check=positive, why="must be positive"),
        session_expiry_s=m.get("session_expiry_s", int, session_expiry_s, check=positive, why="must be positive"),
    )


def broker_files(section: str, m: MqttConfig) -> list[NamedFile]:
    """The files a broker table names (the gateway's ``[mqtt]``, the archive's ``[broker]``)."""
    out = []
    if m.password_file is not None:
        out.append(NamedFile(f"{section}.password_file", m.password_file, "MQTT password", True,
                             f"{section} password"))
    for k, p, what, sec in (("tls_ca", m.tls_ca, "TLS CA certificate", False),
                            ("tls_cert", m.tls_cert, "TLS client certificate", False),
                            ("tls_key", m.tls_key, "TLS client key", True)):
        if p is not None:
            out.append(NamedFile(f"{section}.{k}", p, what, sec, f"{section} {k.replace('_', ' ')}"))
    return out


def parse_mqtt(raw: Any, base: Path, gateway_id: str) -> MqttConfig:
    """``[mqtt]``: the ingest broker; the client id defaults to ``traceseal-<gateway id>``."""
    m = Table(raw, "mqtt", base)
    mqtt = broker_table(m, client_id=lambda: str(m.get("client_id", str, f"traceseal-{gateway_id}")),
                        topics=lambda: tuple(m.get("topics", list, ["traceseal/sensors/+/reading"])),
                        receive_maximum=100, session_expiry_s=7 * 24 * 3600)
    m.done()
    return mqtt


def parse_serial(raw: Any, base: Path) -> tuple[SerialConfig, ...]:
    """``[[serial]]``: local ports, each with a unique name and a known adapter."""
    serial: list[SerialConfig] = []
    for i, s in enumerate(raw):
        t = Table(s, f"serial[{i}]", base)
        name = t.get("name", str, check=lambda v: 0 < len(v) <= 64 and "/" not in v, why="must be 1-64 chars, no '/'")
        adapter = t.get("adapter", str, check=lambda v: v in SERIAL_ADAPTERS,
                        why=f"must be one of {sorted(SERIAL_ADAPTERS)}")
        sc = SerialConfig(
            name=name, path=t.get("path", str), adapter=adapter,
            baudrate=t.get("baudrate", int, 9600, check=positive, why="must be positive"),
            poll=t.get("poll", str, None),
            poll_interval_s=float(t.get("poll_interval_s", (int, float), 1.0, check=lambda v: v > 0,
                                        why="must be positive")),
            stream=t.get("stream", bool, False))
        t.done()
        if any(x.name == name for x in serial):
            raise ConfigError(f"serial[{i}].name", f"duplicate port name {name!r}")
        serial.append(sc)
    return tuple(serial)


def parse_w1(raw: Any, base: Path) -> W1Config:
    """``[w1]``: the 1-Wire poller (off unless enabled)."""
    w = Table(raw, "w1", base)
    w1 = W1Config(enabled=w.get("enabled", bool, False), base_dir=w.req_path("base_dir", "/sys/bus/w1/devices"),
                  interval_s=float(w.get("interval_s", (int, float), 30.0, check=lambda v: v > 0,
                                         why="must be positive")))
    w.done()
    return w1
