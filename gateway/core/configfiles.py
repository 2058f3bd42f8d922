"""Files a config names (keys, passwords, certificates): one check, one line naming the key.

Loading a config does not open them: `keygen -c` and `web-token` load the config to CREATE
them. The commands that use them (`run`, `archive run`, `doctor`) check them all first, so a
missing, unreadable or (for a secret) group/other-readable file is one ConfigError naming
the config key and the path, exit 2, never a traceback from deep inside a library. The rule
itself is ledger_client.files.file_problem, which also guards the key files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import ConfigError
from gateway.core.settings import Config, LedgerConfig, MqttConfig
from ledger_client.files import file_problem


@dataclass(frozen=True)
class NamedFile:
    """A file a config key names: ``what`` it is (for messages) and whether it is a secret."""

    key: str  # "mqtt.password_file"
    path: Path
    what: str  # "MQTT password"
    secret: bool
    label: str  # doctor's check name: "mqtt password"


def check_file(key: str, path: Path, what: str, *, secret: bool) -> None:
    """The one check for a file named by config key ``key``: present, a regular file, readable
    by this user and, for a secret, by nobody else (ledger_client.files.file_problem, which
    also guards key files). ConfigError naming the key and the path otherwise."""
    problem = file_problem(path, what, private=secret)
    if problem is not None:
        raise ConfigError(key, problem)


def read_secret(key: str, path: Path, what: str) -> str:
    """The stripped text of a secret file (a password) named by ``key``, checked first."""
    check_file(key, path, what, secret=True)
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(key, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    if not text:
        raise ConfigError(key, f"{path} is empty")
    return text


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


def evm_key_file(lg: LedgerConfig) -> Path:
    p = Path(str(lg.evm["key_file"]))
    return p if p.is_absolute() else lg.base_dir / p


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
        for k, what, sec, label in (("token_file", "web token", True, "web token"),
                                    ("cert_file", "TLS certificate", False, "web tls cert"),
                                    ("key_file", "TLS key", True, "web tls key")):
            p = getattr(web, k, None)
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


def check_files(files: list[NamedFile]) -> None:
    """ConfigError for the first file that cannot serve (``run`` and ``archive run`` at start)."""
    for f in files:
        check_file(f.key, f.path, f.what, secret=f.secret)
