"""TOML configuration (stdlib tomllib), validated once at start: the assembler.

The typed, frozen settings it builds live in ``gateway.core.settings`` (so every layer can
take its slice without importing this module, which imports the web layer's ``parse_web``);
they are re-exported here, as ``gateway.app.config.Config`` etc.

Every error names the key and the problem ("mqtt.port: must be an integer in 1..65535,
got 'x'"), and unknown keys are errors too: a typo such as ``max_recods`` silently
falling back to a default is how a station ends up sealing once a day instead of once a
minute. Relative paths are relative to the config file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.settings import (
    AdmissionConfig,
    BlockConfig,
    Config,
    FilterConfig,
    GpioConfig,
    JournalConfig,
    LedgerConfig,
    MqttConfig,
    RetentionConfig,
    SensorConfig,
    SerialConfig,
    StationConfig,
    UpstreamConfig,
    W1Config,
)
from gateway.core.table import Table, positive, read_toml
from gateway.ingest.sensor_auth import load_key
from gateway.rules import parse_inventory, parse_units
from gateway.rules.custody import parse_custody, parse_operators
from gateway.transports.settings import broker_table
from gateway.web.settings import parse_web

_SECTIONS = {"gateway", "mqtt", "journal", "blocks", "ledger", "admission", "sensors", "include", "serial", "w1",
             "routes", "filters", "units", "inventory", "alarms", "gpio", "operators", "custody", "web",
             "retention", "upstream"}
_SERIAL_ADAPTERS = {"mtsics", "ad_scale", "gs1", "epc", "badge"}
_MQTT_ADAPTERS = {"traceseal", "tasmota", "zigbee2mqtt", "shelly"}


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
    gw_id = g.get("id", str, check=lambda s: 0 < len(s) <= 64 and s.replace("-", "").replace("_", "").replace(".", "").isalnum(),
                  why="must be 1-64 letters, digits, '-', '_' or '.'")
    data_dir = g.req_path("data_dir", str(base))
    key_file = g.req_path("key_file", str(data_dir / "gateway.key"))
    g.done()

    m = Table(raw.get("mqtt", {}), "mqtt", base)
    mqtt = broker_table(m, client_id=lambda: m.get("client_id", str, f"traceseal-{gw_id}"),
                        topics=lambda: tuple(m.get("topics", list, ["traceseal/sensors/+/reading"])),
                        receive_maximum=100, session_expiry_s=7 * 24 * 3600)
    m.done()

    j = Table(raw.get("journal", {}), "journal", base)
    journal = JournalConfig(
        path=j.req_path("path", str(data_dir / "journal.sqlite")),
        synchronous=j.get("synchronous", str, "FULL", check=lambda s: s.upper() in ("FULL", "EXTRA"),
                          why="must be FULL or EXTRA (NORMAL can lose acknowledged readings on power loss)"),
        batch_max=j.get("batch_max", int, 500, check=positive, why="must be positive"),
        batch_wait_ms=j.get("batch_wait_ms", int, 5, check=lambda v: 0 <= v <= 1000, why="must be in 0..1000"),
        quarantine_max_rows=j.get("quarantine_max_rows", int, 100_000, check=positive, why="must be positive"),
        quarantine_raw_bytes=j.get("quarantine_raw_bytes", int, 1024, check=positive, why="must be positive"),
        busy_timeout_ms=j.get("busy_timeout_ms", int, 10_000, check=positive, why="must be positive"),
    )
    j.done()

    b = Table(raw.get("blocks", {}), "blocks", base)
    blocks = BlockConfig(
        max_records=b.get("max_records", int, 1000, check=lambda v: 1 <= v <= 1_000_000, why="must be in 1..1000000"),
        max_seconds=b.get("max_seconds", int, 60, check=positive, why="must be positive"),
    )
    b.done()

    lg = Table(raw.get("ledger", {}), "ledger", base)
    kind = lg.get("kind", str, "local", check=lambda k: k in ("local", "evm"), why="must be 'local' or 'evm'")
    ledger = LedgerConfig(
        kind=kind,
        path=lg.req_path("path", str(data_dir / "ledger.sqlite")),
        key_file=lg.req_path("key_file", str(data_dir / "ledger.key")),
        poll_s=float(lg.get("poll_s", (int, float), 1.0, check=lambda v: v > 0, why="must be positive")),
        min_interval_s=lg.get("min_interval_s", int, 0, check=lambda v: v >= 0, why="must be >= 0"),
        evm=dict(lg.get("evm", dict, {})),
        base_dir=base,
    )
    if kind == "evm":
        for k in ("rpc_url", "chain_id", "key_file"):
            if k not in ledger.evm:
                raise ConfigError(f"ledger.evm.{k}", "is required when ledger.kind = 'evm'")
    lg.done()

    a = Table(raw.get("admission", {}), "admission", base)
    admission = AdmissionConfig(
        max_message_bytes=a.get("max_message_bytes", int, 16384, check=lambda v: 64 <= v <= 1 << 20,
                                why="must be in 64..1048576"),
        temperature_min_mc=a.get("temperature_min_mc", int, -100_000),
        temperature_max_mc=a.get("temperature_max_mc", int, 125_000),
        max_clock_skew_s=a.get("max_clock_skew_s", int, 7 * 24 * 3600, check=positive, why="must be positive"),
        max_counter_jump=a.get("max_counter_jump", int, 1 << 20, check=lambda v: 4096 <= v <= 1 << 40,
                               why="must be in 4096..1099511627776"),
    )
    a.done()

    sensors: dict[str, SensorConfig] = {}
    for i, s in enumerate(sensors_raw):
        t = Table(s, f"sensors[{i}]", base)
        sid = t.get("id", str, check=lambda v: 0 < len(v) <= 64, why="must be 1-64 characters")
        pk = t.get("public_key", str, None,
                   check=lambda v: len(v) == 64 and all(c in "0123456789abcdefABCDEF" for c in v),
                   why="must be 64 hex characters (a raw Ed25519 public key)")
        adapter = t.get("adapter", str, "traceseal")
        hmac_key = _sensor_hmac_key(t, i, pk, adapter)
        if adapter == "traceseal" and pk is None and hmac_key is None:
            raise ConfigError(f"sensors[{i}].public_key", "is required for traceseal firmware sensors "
                                                          "(or hmac_key_file)")
        if sid in sensors:
            raise ConfigError(f"sensors[{i}].id", f"duplicate sensor id {sid!r}")
        sensors[sid] = SensorConfig(id=sid, public_key=pk, kind=t.get("kind", str, "temperature"),
                                    adapter=adapter, unit_id=t.get("unit", str, None), hmac_key=hmac_key)
        t.done()
    serial: list[SerialConfig] = []
    for i, s in enumerate(raw.get("serial", [])):
        t = Table(s, f"serial[{i}]", base)
        name = t.get("name", str, check=lambda v: 0 < len(v) <= 64 and "/" not in v, why="must be 1-64 chars, no '/'")
        adapter = t.get("adapter", str, check=lambda v: v in _SERIAL_ADAPTERS,
                        why=f"must be one of {sorted(_SERIAL_ADAPTERS)}")
        sc = SerialConfig(
            name=name, path=t.get("path", str), adapter=adapter,
            baudrate=t.get("baudrate", int, 9600, check=positive, why="must be positive"),
            poll=t.get("poll", str, None),
            poll_interval_s=float(t.get("poll_interval_s", (int, float), 1.0, check=lambda v: v > 0, why="must be positive")),
            stream=t.get("stream", bool, False))
        t.done()
        if any(x.name == name for x in serial):
            raise ConfigError(f"serial[{i}].name", f"duplicate port name {name!r}")
        serial.append(sc)
        # A device on a local port is admitted by that port (allow-list), without a key.
        sid = f"{adapter}:{name}"
        sensors.setdefault(sid, SensorConfig(id=sid, public_key=None, kind=adapter, adapter=adapter))
    w = Table(raw.get("w1", {}), "w1", base)
    w1 = W1Config(enabled=w.get("enabled", bool, False), base_dir=w.req_path("base_dir", "/sys/bus/w1/devices"),
                  interval_s=float(w.get("interval_s", (int, float), 30.0, check=lambda v: v > 0, why="must be positive")))
    w.done()
    routes: list[tuple[str, str]] = []
    for i, r in enumerate(raw.get("routes", [])):
        t = Table(r, f"routes[{i}]", base)
        routes.append((t.get("topic", str), t.get("adapter", str, check=lambda v: v in _MQTT_ADAPTERS,
                                                  why=f"must be one of {sorted(_MQTT_ADAPTERS)}")))
        t.done()
    f = Table(raw.get("filters", {}), "filters", base)
    filters = FilterConfig(duplicate_scan_s=f.get("duplicate_scan_s", int, 3, check=lambda v: v >= 0, why="must be >= 0"),
                           record_repeat_weights=f.get("record_repeat_weights", bool, False))
    f.done()
    station = _station(raw, base, filters)
    web = parse_web(raw.get("web"), base)
    retention = _retention(raw, base, mqtt)
    upstream = parse_upstream(raw.get("upstream", {}), base, gw_id, mqtt)
    return Config(gw_id, key_file, data_dir, mqtt, journal, blocks, ledger, admission, sensors, source,
                  tuple(serial), w1, tuple(routes), filters, station, web, retention, upstream)


def _sensor_hmac_key(t: Table, i: int, pk: str | None, adapter: str) -> bytes | None:
    """A probe authenticates with exactly one scheme: its Ed25519 key or a shared HMAC key."""
    path = t.path_("hmac_key_file", None)
    if path is None:
        return None
    where = f"sensors[{i}].hmac_key_file"
    if pk is not None:
        raise ConfigError(where, "set either public_key or hmac_key_file, not both")
    if adapter != "traceseal":
        raise ConfigError(where, f"only traceseal firmware sensors use an HMAC key, not adapter {adapter!r}")
    return load_key(path, where)


def _retention(raw: dict[str, Any], base: Path, mqtt: MqttConfig) -> RetentionConfig:
    t = Table(raw.get("retention", {}), "retention", base)
    days = t.get("days", int, 0, check=lambda v: 0 <= v <= 100 * 365, why="must be in 0..36500 (0 = keep forever)")
    if days and days * 86400 <= mqtt.session_expiry_s:
        # The broker may redeliver a message it never saw acknowledged until its session
        # expires; the digest that recognises such a redelivery lives in the record's row.
        least = mqtt.session_expiry_s // 86400 + 1
        raise ConfigError("retention.days", f"must keep records longer than mqtt.session_expiry_s "
                                            f"({mqtt.session_expiry_s / 86400:g} days), so at least {least}, got {days}")
    cfg = RetentionConfig(
        days=days,
        interval_s=t.get("interval_s", int, 3600, check=lambda v: 1 <= v <= 7 * 86400, why="must be in 1..604800"),
        batch=t.get("batch", int, 5000, check=lambda v: 1 <= v <= 1_000_000, why="must be in 1..1000000"),
    )
    t.done()
    return cfg


def _station(raw: dict[str, Any], base: Path, filters: FilterConfig | None = None) -> StationConfig:
    units = parse_units(raw.get("units", []))  # each raises ConfigError naming its key
    inventory = parse_inventory(raw.get("inventory", {}))
    operators = parse_operators(raw.get("operators", []))
    custody = parse_custody(raw.get("custody"))
    if filters is not None:  # custody must know whether repeated weights were filtered out
        custody = dataclasses.replace(custody, repeat_weights_recorded=filters.record_repeat_weights)
    al = Table(raw.get("alarms", {}), "alarms", base)
    power_gap_s = al.get("power_gap_s", int, 300, check=positive, why="must be positive")
    heartbeat_s = al.get("heartbeat_s", int, 60, check=lambda v: 0 < v < power_gap_s,
                         why="must be positive and below alarms.power_gap_s")
    al.done()
    gpio = None
    if "gpio" in raw:
        g = Table(raw["gpio"], "gpio", base)
        pin = (int, str)
        doors = g.get("doors", dict, {})
        for k, v in doors.items():
            if isinstance(v, bool) or not isinstance(v, (int, str)):
                raise ConfigError(f"gpio.doors.{k}", f"must be a pin number or name, got {v!r}")
        gpio = GpioConfig(green=g.get("green", pin), amber=g.get("amber", pin), red=g.get("red", pin),
                          buzzer=g.get("buzzer", pin, None), ack_button=g.get("ack_button", pin, None),
                          doors=dict(doors))
        g.done()
    return StationConfig(units=units, inventory=inventory, power_gap_s=power_gap_s, heartbeat_s=heartbeat_s,
                         gpio=gpio, operators=operators, custody=custody)


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


__all__ = [
    "AdmissionConfig",
    "BlockConfig",
    "Config",
    "FilterConfig",
    "GpioConfig",
    "JournalConfig",
    "LedgerConfig",
    "MqttConfig",
    "RetentionConfig",
    "SensorConfig",
    "SerialConfig",
    "StationConfig",
    "UpstreamConfig",
    "W1Config",
    "broker_table",
    "load",
    "parse",
    "parse_upstream",
    "read_toml",
]
