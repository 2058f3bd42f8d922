"""Pieces shared by the MQTT JSON adapters: exact JSON loading and declarative field maps.

Field maps follow Home Assistant's pattern (a table of frozen dataclasses, each with a
``value_fn``) so a deployment can add or override a device's fields without touching the
parsing loop. A ``value_fn`` raises ``FieldProblem`` for a bad value; the loop, which knows
the adapter name and the path to the field, turns it into a ``ParseError``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gateway.adapters.units import UnitError, check_decimal
from gateway.core.errors import ParseError

MAX_JSON_BYTES = 64 * 1024  # far above any device payload; bounds the work per message
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FieldProblem(Exception):
    """A field-level failure, raised inside ``value_fn``s, without adapter context."""

    def __init__(self, code: str, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.key = key


@dataclass(frozen=True, slots=True)
class MeasureSpec:
    """One measurement to extract from a JSON object.

    ``value_fn(obj, ctx)`` gets the object that holds the field (a sensor, a component
    status, the whole payload) and the enclosing message; it returns the integer value in
    ``unit``, or None when the field is absent or null (nothing to record).
    """

    name: str  # short label, also used as the field name in errors
    kind: str
    unit: str
    value_fn: Callable[[Mapping[str, Any], Mapping[str, Any]], int | None]


def _no_constants(text: str) -> Any:
    raise ValueError(f"non-finite number {text}")


def load_json_object(adapter: str, raw: bytes) -> dict[str, Any]:
    """Parse a JSON object with every non-integer number as an exact ``Decimal``."""
    if len(raw) > MAX_JSON_BYTES:
        raise ParseError(adapter, "oversize", f"{len(raw)} bytes > {MAX_JSON_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(adapter, "not-utf8", f"byte {exc.start} is not UTF-8") from exc
    try:
        msg = json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ParseError(adapter, "malformed-json", str(exc)[:120]) from exc
    if not isinstance(msg, dict):
        raise ParseError(
            adapter, "malformed-json", f"top level is {type(msg).__name__}, want object"
        )
    return msg


def number(obj: Mapping[str, Any], key: str) -> Decimal | None:
    """``obj[key]`` as an exact Decimal; None when absent or null; FieldProblem otherwise."""
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, Decimal)):
        raise FieldProblem("bad-field", f"{key}={v!r} is {type(v).__name__}, want a number", key)
    try:
        check_decimal(v)
    except UnitError as exc:
        raise FieldProblem(exc.code, exc.message, key) from exc
    return Decimal(v)


def convert(fn: Callable[..., int], *args: Any, key: str) -> int:
    """Run a units conversion, reporting its failure as a FieldProblem on ``key``."""
    try:
        return fn(*args)
    except UnitError as exc:
        raise FieldProblem(exc.code, exc.message, key) from exc


def fail_field(adapter: str, problem: FieldProblem, path: str) -> ParseError:
    where = f"{path}.{problem.key}" if path and problem.key else (problem.key or path or None)
    return ParseError(adapter, problem.code, problem.message, field=where)


def iso_time_ms(adapter: str, value: Any, field: str) -> tuple[int | None, str]:
    """Unix ms for an ISO 8601 time with an offset; (None, text) when it has no offset.

    Tasmota's ``Time`` carries no offset unless SetOption52 is on: it is the device's
    local wall time, which we keep verbatim rather than guess a zone for.
    """
    if not isinstance(value, str) or len(value) > 40:
        raise ParseError(adapter, "bad-time", f"{value!r} is not an ISO 8601 string", field=field)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ParseError(
            adapter, "bad-time", f"{value!r} is not an ISO 8601 time", field=field
        ) from exc
    if dt.tzinfo is None or dt.utcoffset() is None:
        return None, value
    delta = dt - _EPOCH  # integer arithmetic: no float on the way to ms
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000, value
