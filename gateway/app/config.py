"""TOML configuration (stdlib tomllib), validated once at start: the assembler.

Each subsystem owns its typed, frozen slice and that slice's parser, next to its code:
``transports.settings`` (``[mqtt]``, ``[[serial]]``, ``[w1]``), ``core.settings``
(``[journal]``, read by several layers), ``ingest.settings`` (``[[sensors]]``,
``[admission]``, ``[filters]``, ``[[routes]]``), ``chain.settings`` (``[blocks]``,
``[ledger]``, ``[retention]``), ``station.settings`` (units, inventory, operators, custody,
``[alarms]``, ``[gpio]``), ``forward.settings`` (``[upstream]``), ``web.settings``
(``[web]``). This module checks the sections, reads ``[gateway]``, calls the parsers in
file order and holds the result in ``Config``; the slice types are re-exported here, so
``from gateway.app.config import MqttConfig`` keeps working. ``Config.ingest`` and
``Config.forward`` are the composite slices ``Pipeline`` and the forwarders take.

Every error is a ``ConfigError(key, problem)`` ("mqtt.port: must be in 1..65535, got 'x'"),
and unknown keys are errors too: a typo such as ``max_recods`` silently falling back to a
default is how a station ends up sealing once a day instead of once a minute. Relative
paths are relative to the config file's folder.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.chain.settings import (
    BlockConfig,
    LedgerConfig,
    RetentionConfig,
    evm_key_file,
    parse_blocks,
    parse_ledger,
    parse_retention,
)
from gateway.core.configfiles import NamedFile, check_files, read_secret
from gateway.core.errors import ConfigError
from gateway.core.settings import JournalConfig, parse_journal
from gateway.core.table import Table, read_toml
from gateway.forward.settings import ForwardConfig, UpstreamConfig, parse_upstream
from gateway.ingest.settings import (
    AdmissionConfig,
    FilterConfig,
    IngestConfig,
    SensorConfig,
    parse_admission,
    parse_filters,
    parse_routes,
    parse_sensors,
)
from gateway.station.settings import GpioConfig, StationConfig, parse_station
from gateway.transports.settings import (
    MqttConfig,
    SerialConfig,
    W1Config,
    broker_files,
    broker_table,
    parse_mqtt,
    parse_serial,
    parse_w1,
)
from gateway.web.settings import WebConfig, parse_web

_SECTIONS = {"gateway", "mqtt", "journal", "blocks", "ledger", "admission", "sensors", "include", "serial", "w1",
             "routes", "filters", "units", "inventory", "alarms", "gpio", "operators", "custody", "web",
             "retention", "upstream"}
W1_ROUTES = (("*/w1_slave", "ds18b20"), ("*/temperature", "ds18b20"))


@dataclass(frozen=True)
class Config:
    gateway_id: str
    key_file: Path
    data_dir: Path
    mqtt: MqttConfig
    journal: JournalConfig
    blocks: BlockConfig
    ledger: LedgerConfig
    admission: AdmissionConfig
    sensors: dict[str, SensorConfig]
    source: Path | None = None
    serial: tuple[SerialConfig, ...] = ()
    w1: W1Config = field(default_factory=W1Config)
    routes: tuple[tuple[str, str], ...] = ()  # (MQTT topic filter, adapter) for third-party devices
    filters: FilterConfig = field(default_factory=FilterConfig)
    station: StationConfig = field(default_factory=StationConfig)
    web: WebConfig | None = None
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)

    @property
    def ingest(self) -> IngestConfig:
        """``Pipeline``'s slice. Routes, first match wins: traceseal topics, then configured
        third-party topics, then serial ports and 1-Wire files."""
        routes = ([(t, "traceseal") for t in self.mqtt.topics] + list(self.routes)
                  + [(s.name, s.adapter) for s in self.serial] + list(W1_ROUTES))
        return IngestConfig(sensors=self.sensors, admission=self.admission, filters=self.filters,
                            routes=tuple(routes), quarantine_raw_bytes=self.journal.quarantine_raw_bytes)

    @property
    def forward(self) -> ForwardConfig:
        """The forwarders' slice (``Forwarder``, ``HttpsForwarder``)."""
        return ForwardConfig(gateway_id=self.gateway_id, upstream=self.upstream, journal=self.journal,
                             units=self.station.units, inventory=self.station.inventory)


def load(path: Path | str) -> Config:
    raw, path = read_toml(path)
    return parse(raw, path.parent, source=path)


def parse(raw: dict[str, Any], base: Path, *, source: Path | None = None) -> Config:
    raw = dict(raw)
    sensors_raw = list(raw.get("sensors", []))
    for inc in raw.get("include", []):
        p = Path(inc) if Path(inc).is_absolute() else base / inc
        try:
            sensors_raw += tomllib.loads(p.read_text()).get("sensors", [])
        except OSError as exc:
            raise ConfigError("include", f"cannot read {p}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("include", f"{p}: not valid TOML: {exc}") from exc
    for k in raw:
        if k not in _SECTIONS:
            near = difflib.get_close_matches(k, sorted(_SECTIONS), n=1)
            raise ConfigError(k, "unknown section" + (f"; did you mean {near[0]!r}?" if near else ""))

    g = Table(raw.get("gateway", {}), "gateway", base)
    gw_id = g.get("id", str,
                  check=lambda s: 0 < len(s) <= 64 and s.replace("-", "").replace("_", "").replace(".", "").isalnum(),
                  why="must be 1-64 letters, digits, '-', '_' or '.'")
    data_dir = g.req_path("data_dir", str(base))
    key_file = g.req_path("key_file", str(data_dir / "gateway.key"))
    g.done()

    mqtt = parse_mqtt(raw.get("mqtt", {}), base, gw_id)
    journal = parse_journal(raw.get("journal", {}), base, data_dir)
    blocks = parse_blocks(raw.get("blocks", {}), base)
    ledger = parse_ledger(raw.get("ledger", {}), base, data_dir)
    admission = parse_admission(raw.get("admission", {}), base)
    sensors = parse_sensors(sensors_raw, base)
    serial = parse_serial(raw.get("serial", []), base)
    for sc in serial:  # a device on a local port is admitted by that port (allow-list), without a key
        sid = f"{sc.adapter}:{sc.name}"
        sensors.setdefault(sid, SensorConfig(id=sid, public_key=None, kind=sc.adapter, adapter=sc.adapter))
    w1 = parse_w1(raw.get("w1", {}), base)
    routes = parse_routes(raw.get("routes", []), base)
    filters = parse_filters(raw.get("filters", {}), base)
    station = parse_station(raw, base, repeat_weights_recorded=filters.record_repeat_weights)
    web = parse_web(raw.get("web"), base)
    retention = parse_retention(raw.get("retention", {}), base, mqtt.session_expiry_s)
    upstream = parse_upstream(raw.get("upstream", {}), base, gw_id, mqtt)
    return Config(gw_id, key_file, data_dir, mqtt, journal, blocks, ledger, admission, sensors, source,
                  serial, w1, routes, filters, station, web, retention, upstream)


def named_files(cfg: Config) -> list[NamedFile]:
    """Every file ``cfg`` names that the gateway reads, in config order. Not serial device
    paths (a scale unplugged at boot is a device problem `doctor` reports, not a config
    error), nor journal/ledger databases (the gateway creates them). Upstream files only
    when forwarding is enabled: a disabled section's stale paths must not stop a station."""
    out = [NamedFile("gateway.key_file", cfg.key_file, "key", True, "gateway key"), *broker_files("mqtt", cfg.mqtt)]
    if cfg.ledger.kind == "local":
        out.append(NamedFile("ledger.key_file", cfg.ledger.key_file, "key", True, "ledger key"))
    else:
        out.append(NamedFile("ledger.evm.key_file", evm_key_file(cfg.ledger), "Ethereum key", True, "ethereum key"))
    web = cfg.web
    if web is not None:
        for k, p, what, sec, label in (("token_file", web.token_file, "web token", True, "web token"),
                                       ("cert_file", web.cert_file, "TLS certificate", False, "web tls cert"),
                                       ("key_file", web.key_file, "TLS key", True, "web tls key")):
            if p is not None:
                out.append(NamedFile(f"web.{k}", p, what, sec, label))
    up = cfg.upstream
    if up.enabled:
        for k, p, what, sec in (("tls.ca_file", up.tls_ca, "TLS CA certificate", False),
                                ("tls.cert_file", up.tls_cert, "TLS client certificate", False),
                                ("tls.key_file", up.tls_key, "TLS client key", True),
                                ("password_file", up.password_file, "password", True)):
            if p is not None:
                out.append(NamedFile(f"upstream.{k}", p, what, sec, f"upstream {k.split('.')[-1].replace('_', ' ')}"))
    return out


__all__ = [
    "AdmissionConfig",
    "BlockConfig",
    "Config",
    "FilterConfig",
    "ForwardConfig",
    "GpioConfig",
    "IngestConfig",
    "JournalConfig",
    "LedgerConfig",
    "MqttConfig",
    "NamedFile",
    "RetentionConfig",
    "SensorConfig",
    "SerialConfig",
    "StationConfig",
    "UpstreamConfig",
    "W1Config",
    "WebConfig",
    "broker_files",
    "broker_table",
    "check_files",
    "evm_key_file",
    "load",
    "named_files",
    "parse",
    "parse_upstream",
    "read_secret",
    "read_toml",
]
