"""Strict reading of TOML-shaped tables for the custody settings.

A typo in a custody setting silently weakens the chain of custody (a misspelt
``weight_timeout_s`` would fall back to a default nobody chose), so every unknown key is
an error and every error names its key path (``custody.stations[1].stage: ...``). Every
problem is a ``ValueError``, as in ``gateway.rules.units``: callers catch one error kind.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any


class Table:
    """One table; ``get`` each key you accept, then ``done`` reports leftovers."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected a table, got {type(data).__name__}")  # noqa: TRY004
        self.data, self.path = data, path
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def get(self, k: str, typ: type, default: Any = ..., *,
            check: Callable[[Any], bool] | None = None, why: str = "") -> Any:
        """Value of ``k`` of type ``typ`` (bools are never ints); ``...`` means required."""
        self.used.add(k)
        if k not in self.data:
            if default is ...:
                raise ValueError(f"{self.key(k)}: is required")
            return default
        v = self.data[k]
        if (typ is int and isinstance(v, bool)) or not isinstance(v, typ) or (typ is str and not v):
            want = "a non-empty string" if typ is str else f"{typ.__name__}"
            raise ValueError(f"{self.key(k)}: expected {want}, got {v!r}")
        if check is not None and not check(v):
            raise ValueError(f"{self.key(k)}: {why}, got {v!r}")
        return v

    def str_list(self, k: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of non-empty strings; ``default`` None means required."""
        v = self.get(k, list, ... if default is None else list(default))
        for i, x in enumerate(v):
            if not isinstance(x, str) or not x:
                raise ValueError(f"{self.key(k)}[{i}]: expected a non-empty string, got {x!r}")
        return tuple(v)

    def done(self) -> None:
        for k in sorted(set(self.data) - self.used, key=str):
            near = difflib.get_close_matches(str(k), sorted(self.used), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{self.key(str(k))}: unknown key{hint}")


def nonneg(v: int) -> bool:
    return v >= 0


def positive(v: int) -> bool:
    return v > 0
