"""Errors of the gateway, as a tree.

    TracesealError (ledger_client.errors)
    └── GatewayError
        ├── ConfigError        a config key is missing or wrong; names the key
        ├── ParseError         an adapter could not read a device's bytes; names the field
        ├── Rejected           input refused with a stable reason ``code`` and a ``message``:
        │   │                  admission refused an observation (unknown sensor, bad
        │   │                  signature, replay, counter jump, implausible value)
        │   └── ItemRejected   (gateway.archive.items) the archive refused a forwarded
        │                      item; ``reason``/``detail`` name the same two fields
        ├── JournalError       the journal cannot take writes (disk full, I/O error)
        └── StoreError         (gateway.archive.store) the archive's store cannot take writes
            └── PartialCommit  (gateway.archive.items) it failed while a batch was
                               isolated: the first ``done`` messages are stored

Rows, not errors: a refused gateway message becomes a ``QuarantineRow`` (gateway.journal),
a refused archive item a ``Rejection`` row (gateway.archive.store). ParseError and Rejected
never escape the pipeline: they become quarantine rows whose ``reason`` is the error's
``code`` and whose ``detail`` is its message. Verification failures are not exceptions at all:
ledger_client.verify reports each failed step with typed ``Problem``s. A JournalError (or
the archive's StoreError) is "environmental" unless ``caused_by_data`` says a row caused it:
only then is retrying the same rows pointless, and the batch is isolated instead.
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


# DB-API error classes that a row's content causes (a constraint, a value that cannot be
# bound), as opposed to the disk, the file or the server failing. Named, not imported, so
# that sqlite3 and psycopg errors are classified alike without importing psycopg here.
_DATA_ERROR_NAMES = frozenset({"IntegrityError", "DataError", "ProgrammingError"})


def caused_by_data(exc: BaseException) -> bool:
    """A store error that retrying the same rows would hit again (so: isolate, not wait)."""
    cause = exc.__cause__
    if cause is None:
        return False
    names = {c.__name__ for c in type(cause).__mro__}
    # sqlite3 raises InterfaceError for a value it cannot bind; psycopg for a lost connection
    return bool(names & _DATA_ERROR_NAMES) or (type(cause).__module__ == "sqlite3" and "InterfaceError" in names)
