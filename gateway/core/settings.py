"""The typed, frozen settings of every subsystem, and ``Config`` that holds them all.

Pure data, no parsing: ``gateway.app.config`` reads ``gateway.toml`` into these (every error
a ``ConfigError`` naming its key). They live in the core so each layer can import the slice
it uses (``MqttConfig`` in transports, ``FilterConfig`` in ingest, ``RetentionConfig`` in
the chain...) without importing the assembler, which sits on top of the web layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SensorConfig:
    id: str
    public_key: str | None  # hex Ed25519; None = third-party device admitted by allow-list only
    kind: str = "temperature"
    adapter: str = "traceseal"
    unit_id: str | None = None
    # 32-byte HMAC-SHA256 key (gateway/sensor_mac.py) instead of public_key; never printed
    hmac_key: bytes | None = field(default=None, repr=False)


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
class JournalConfig:
    path: Path = Path("journal.sqlite")
    synchronous: str = "FULL"
    batch_max: int = 500
    batch_wait_ms: int = 5
    quarantine_max_rows: int = 100_000
    quarantine_raw_bytes: int = 1024
    busy_timeout_ms: int = 10_000


@dataclass(frozen=True)
class BlockConfig:
    max_records: int = 1000
    max_seconds: int = 60


@dataclass(frozen=True)
class LedgerConfig:
    kind: str = "local"
    path: Path = Path("ledger.sqlite")
    key_file: Path = Path("ledger.key")
    poll_s: float = 1.0
    min_interval_s: int = 0  # at most one anchor per this many seconds (cost control on public chains)
    evm: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = Path(".")


@dataclass(frozen=True)
class AdmissionConfig:
    max_message_bytes: int = 16384
    temperature_min_mc: int = -100_000
    temperature_max_mc: int = 125_000
    max_clock_skew_s: int = 7 * 24 * 3600
    max_counter_jump: int = 1 << 20  # see Admission: a bigger jump needs a second message to confirm it


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


@dataclass(frozen=True)
class FilterConfig:
    duplicate_scan_s: int = 3  # the same scan/tag from the same reader within this is one scan
    record_repeat_weights: bool = False  # a scale re-reporting the same stable weight


@dataclass(frozen=True)
class GpioConfig:
    green: int | str
    amber: int | str
    red: int | str
    buzzer: int | str | None = None
    ack_button: int | str | None = None
    doors: dict[str, int | str] = field(default_factory=dict)  # door sensor id -> input pin


@dataclass(frozen=True)
class StationConfig:
    units: dict[str, Any] = field(default_factory=dict)  # id -> rules.UnitConfig
    inventory: Any = None  # rules.InventoryConfig
    power_gap_s: int = 300
    heartbeat_s: int = 60
    gpio: GpioConfig | None = None
    operators: dict[str, Any] = field(default_factory=dict)  # badge -> custody.Operator
    custody: Any = None  # custody.CustodyConfig


@dataclass(frozen=True)
class RetentionConfig:
    days: int = 0  # 0 = keep every record forever; else prune anchored blocks older than this
    interval_s: int = 3600  # how often the gateway prunes
    batch: int = 5000  # records per delete transaction (rounded up to whole blocks)


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
    w1: W1Config = W1Config()
    routes: tuple[tuple[str, str], ...] = ()  # (MQTT topic filter, adapter) for third-party devices
    filters: FilterConfig = FilterConfig()
    station: StationConfig = StationConfig()
    web: Any = None  # gateway.web.settings.WebConfig | None
    retention: RetentionConfig = RetentionConfig()
    upstream: UpstreamConfig = UpstreamConfig()
