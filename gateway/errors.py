"""Errors of the gateway, as a tree.

    TracesealError (ledger_client.errors)
    └── GatewayError
        ├── ConfigError        a config key is missing or wrong; names the key
        ├── ParseError         an adapter could not read a device's bytes; names the field
        ├── Rejected           admission refused an observation (unknown sensor, bad
        │                      signature, replay, implausible value); carries a reason code
        └── JournalError       the journal cannot take writes (disk full, I/O error)

ParseError and Rejected never escape the pipeline: they become quarantine rows whose
``reason`` is the error's ``code`` and whose ``detail`` is its message.
"""

from __future__ import annotations

from ledger_client.errors import TracesealError


class GatewayError(TracesealError):
    """Root of gateway-side errors."""


class ConfigError(GatewayError):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config {key}: {problem}")
        self.key = key
        self.problem = problem


class ParseError(GatewayError, ValueError):
    """Bytes from a device that an adapter cannot turn into observations.

    ``code`` is a short stable reason for counters and the quarantine table
    (``malformed-json``, ``missing-field``, ``bad-check-digit``, …); ``field`` names the
    offending field when there is one.
    """

    def __init__(self, adapter: str, code: str, message: str, *, field: str | None = None) -> None:
        where = f" [{field}]" if field else ""
        super().__init__(f"{adapter}: {code}{where}: {message}")
        self.adapter = adapter
        self.code = code
        self.field = field
        self.message = message


class Rejected(GatewayError):
    """Admission refused an observation that parsed fine."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JournalError(GatewayError):
    """The journal cannot persist; the caller must stop acknowledging."""
