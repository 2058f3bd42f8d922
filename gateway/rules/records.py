"""Reading fields out of journaled records defensively, and the outbox that dedupes replays.

Rules see every record the journal holds, including ones written by older versions or by
other rules, so a field of the wrong type is skipped, never trusted and never an exception.
The outbox is what makes "rebuild by re-feeding the journal" safe: a rule remembers the
bodies it derived until it sees them come back as sealed records, so a replay re-derives
them silently and only what was derived but never sealed (a crash in between) is returned.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

DAY_MS = 86_400_000


def as_int(x: Any) -> int | None:
    """An int that is really an int: bools and floats are not measurements here."""
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def as_str(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


def record_time(rec: Mapping[str, Any]) -> int | None:
    return as_int(rec.get("time_ms"))


def is_synced(rec: Mapping[str, Any]) -> bool:
    return rec.get("clock_synced") is True


def body_key(body: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """Identity of a derived body: its type, instance id and transition (state or event)."""
    typ, ident = as_str(body.get("type")), as_str(body.get("id"))
    step = as_str(body.get("state")) or as_str(body.get("event")) or ""
    if typ is None or ident is None:
        return None
    return (typ, ident, step)


def epoch_day(ms: int) -> int:
    """Days since 1970-01-01 (UTC) of a Unix-ms instant; floor division keeps it integer."""
    return ms // DAY_MS


class Outbox:
    """Bodies this rule derived that have not yet come back as journaled records.

    Bounded: if the caller never feeds sealed records back, the oldest entries are
    forgotten, which only means a later copy in the journal is applied as foreign instead
    of being recognised as ours (appliers are idempotent, so nothing is doubled in state).
    """

    def __init__(self, limit: int = 4096) -> None:
        self._pending: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._limit = limit

    def derived(self, body: dict[str, Any]) -> dict[str, Any]:
        key = body_key(body)
        if key is not None:
            self._pending[key] = body
            while len(self._pending) > self._limit:
                self._pending.popitem(last=False)
        return body

    def journaled(self, rec: Mapping[str, Any]) -> bool:
        """True if ``rec`` is the sealed copy of a body we derived (and forget it)."""
        key = body_key(rec)
        return key is not None and self._pending.pop(key, None) is not None

    def pending(self) -> list[dict[str, Any]]:
        return list(self._pending.values())
