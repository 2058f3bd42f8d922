"""Files a config names (keys, passwords, certificates): one check, one line naming the key.

Loading a config does not open them: `keygen -c` and `web-token` load the config to CREATE
them. The commands that use them (`run`, `archive run`, `doctor`) check them all first, so a
missing, unreadable or (for a secret) group/other-readable file is one ConfigError naming
the config key and the path, exit 2, never a traceback from deep inside a library. The rule
itself is ledger_client.files.file_problem, which also guards the key files.

Which files a config names is its slices' business: ``transports.settings.broker_files``,
``chain.settings.evm_key_file``, ``gateway.app.config.named_files`` (the whole Config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.core.errors import ConfigError
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


def check_files(files: list[NamedFile]) -> None:
    """ConfigError for the first file that cannot serve (``run`` and ``archive run`` at start)."""
    for f in files:
        check_file(f.key, f.path, f.what, secret=f.secret)
