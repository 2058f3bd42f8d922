"""The one reader of TOML-shaped config tables, for the gateway's, the station rules' and the
archive's configs alike.

A typo in a setting silently weakens what it configures (a misspelt ``weight_timeout_s``
would fall back to a default nobody chose), so every unknown key is an error, and every
error is a ``ConfigError(key, problem)`` naming the full key path
(``custody.stations[1].stage``): callers never parse a key back out of a message.

``Table`` reads the gateway's own sections; ``StrictTable`` is the same reader with the
custody wording ("expected int") and empty strings refused, which the custody settings and
operator lists have always used.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError


class Table:
    """Reads one TOML table, remembering which keys were used so leftovers are reported."""

    def __init__(self, data: Any, path: str, base: Path | None = None) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, f"must be a table, got {type(data).__name__}")
        self.data, self.path = data, path
        self.base = base if base is not None else Path.cwd()
        self.used: set[str] = set()

    def key(self, k: str) -> str:
        return f"{self.path}.{k}" if self.path else k

    def _type_problem(self, typ: type | tuple[type, ...], v: Any) -> str | None:
        if (typ is int and isinstance(v, bool)) or not isinstance(v, typ):
            names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            return f"must be {names}, got {type(v).__name__} {v!r}"
        return None

    def get(self, k: str, typ: type | tuple[type, ...], default: Any = ..., *,
            check: Callable[[Any], bool] | None = None, why: str = "") -> Any:
        """Value of ``k`` of type ``typ`` (bools are never ints); ``...`` means required."""
        self.used.add(k)
        if k not in self.data:
            if default is ...:
                raise ConfigError(self.key(k), "is required")
            return default
        v = self.data[k]
        problem = self._type_problem(typ, v)
        if problem is not None:
            raise ConfigError(self.key(k), problem)
        if check is not None and not check(v):
            raise ConfigError(self.key(k), f"{why}, got {v!r}")
        return v

    def path_(self, k: str, default: Any = ...) -> Path | None:
        v = self.get(k, str, default)
        if v is None or isinstance(v, Path):
            return v
        p = Path(v)
        return p if p.is_absolute() else (self.base / p)

    def req_path(self, k: str, default: str) -> Path:
        p = self.path_(k, default)
        assert p is not None
        return p

    def done(self) -> None:
        for k in sorted(set(self.data) - self.used, key=str):
            near = difflib.get_close_matches(str(k), sorted(self.used), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            if k == "include" and self.path:  # TOML puts a key written after [table] inside that table
                hint = "; include is a top-level key: put it before the first [table]"
            raise ConfigError(self.key(str(k)), f"unknown key{hint}")


class StrictTable(Table):
    """The custody settings' reader: any mapping, "expected X" wording, no empty strings."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(path, f"expected a table, got {type(data).__name__}")
        self.data, self.path, self.base = data, path, Path.cwd()
        self.used = set()

    def _type_problem(self, typ: type | tuple[type, ...], v: Any) -> str | None:
        if (typ is int and isinstance(v, bool)) or not isinstance(v, typ) or (typ is str and not v):
            want = "a non-empty string" if typ is str else getattr(typ, "__name__", str(typ))
            return f"expected {want}, got {v!r}"
        return None

    def str_list(self, k: str, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of non-empty strings; ``default`` None means required."""
        v = self.get(k, list, ... if default is None else list(default))
        for i, x in enumerate(v):
            if not isinstance(x, str) or not x:
                raise ConfigError(f"{self.key(k)}[{i}]", f"expected a non-empty string, got {x!r}")
        return tuple(v)


def positive(v: int) -> bool:
    return v > 0


def nonneg(v: int) -> bool:
    return v >= 0


def read_toml(path: Path | str) -> tuple[dict[str, Any], Path]:
    """(table, resolved path) of a TOML config file; a ConfigError naming the file otherwise
    (shared by the gateway's and the archive's configs)."""
    path = Path(path).resolve()
    try:
        return tomllib.loads(path.read_text()), path
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "no such config file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
