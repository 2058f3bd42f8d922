"""A&D-style continuous/print output (one CR LF line) → weight or count observations.

The family covers A&D balances (EK-L, EJ, GC, GH, FX), A&D indicators (AD-4404) and the
"A&D format" many other indicators (CAS, generic) offer::

    ST,+00123.45  g         header, 9-char signed zero-padded data, 3-char unit
    ST,OK,+0001.234 kg      comparator result (LO/OK/HI/--) as a second header
    ST,GS,+  1.240kg        indicator: GS gross / NT net / TR tare, space padding
    QT,+00012345 PC         stable count
    OL,+999999.9  g         out of range: the digits are a saturation pattern
    LO,GS,        kg        AD-4404 out of range: data blanked

First header: ``ST`` stable weight, ``US`` unstable, ``QT`` stable count, ``OL`` over
(sign ``-`` → underload), ``LO`` out of range. Padding and sign vary between models
(zeros or spaces, ``+``/``-``/space or no sign; CSV mode puts a comma before the unit), so
the data field is read as ``sign? spaces? digits[.digits]`` rather than by column.

Unstable weights are delivered with ``attrs["stable"] = False``: only the custody layer
decides whether a weight counts. Out-of-range lines are ParseErrors (``overload``,
``underload``, ``out-of-range``), never weights.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.adapters.units import UnitError, mass_to_grams, parse_decimal
from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "ad_scale"
MAX_LINE = 64

STABILITY = {"ST": True, "US": False, "QT": True}
MODES = {"GS": "gross", "NT": "net", "TR": "tare"}
COMPARATORS = {"LO", "OK", "HI", "--"}
COUNT_UNITS = {"PC", "PCS", "pcs", "pc"}

_DATA = re.compile(
    r"^(?P<sign>[+\- ]?) *(?P<num>\d+(?:\.\d*)?|\.\d+) *,? *(?P<unit>[A-Za-z%]{1,4}) *$"
)


def _fail(code: str, message: str, field: str | None = None) -> ParseError:
    return ParseError(NAME, code, message, field=field)


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_LINE:
        raise _fail("oversize", f"{len(raw)} bytes > {MAX_LINE}")
    try:
        text = raw.decode("ascii").strip("\r\n")
    except UnicodeDecodeError as exc:
        raise _fail("not-ascii", f"byte {exc.start} is 0x{raw[exc.start]:02x}") from exc
    if not text.strip():
        raise _fail("empty-line", "no data")
    if not text.isprintable():
        raise _fail("bad-format", f"control character in {text!r}")
    return text


def parse(port: str, raw: bytes) -> list[Observation]:
    """One A&D-format line from ``port`` → one observation, or ParseError."""
    text = _decode(raw)
    if len(text) < 4 or text[2] != ",":
        raise _fail(
            "bad-header", f"{text!r} does not start with a 2-letter header and ','", "header"
        )
    header, rest = text[:2], text[3:]
    if header == "OL":
        under = rest.lstrip()[:1] == "-" or (rest[2:3] == "," and rest[3:].lstrip()[:1] == "-")
        raise _fail(
            "underload" if under else "overload",
            f"{text!r}: out of weighing range ({'under' if under else 'over'})",
            "header",
        )
    if header == "LO":
        raise _fail("out-of-range", f"{text!r}: indicator reports out of range", "header")
    if header not in STABILITY:
        raise _fail("bad-header", f"header {header!r}, want one of ST US QT OL LO", "header")
    attrs: dict[str, Any] = {"header": header, "stable": STABILITY[header]}
    if len(rest) >= 3 and rest[2] == "," and (rest[:2] in MODES or rest[:2] in COMPARATORS):
        second, rest = rest[:2], rest[3:]
        if second in MODES:
            attrs["mode"] = MODES[second]
        else:
            attrs["comparator"] = second
    m = _DATA.match(rest)
    if not m:
        raise _fail("bad-value", f"{rest!r} is not '<sign><digits> <unit>'", "value")
    sign = "-" if m.group("sign") == "-" else ""
    value_text, unit = sign + m.group("num"), m.group("unit")
    attrs["raw_value"], attrs["raw_unit"] = value_text, unit
    sensor = f"{NAME}:{port}"
    try:
        value = parse_decimal(value_text)
        if unit in COUNT_UNITS or header == "QT":
            if unit not in COUNT_UNITS:
                raise _fail("unsupported-unit", f"count in unit {unit!r}", "unit")
            if value != value.to_integral_value():
                raise _fail("bad-value", f"piece count {value_text} is not whole", "value")
            return [Observation(sensor, "count", int(value), "pcs", NAME, attrs=attrs)]
        grams = mass_to_grams(value, unit)
    except UnitError as exc:
        raise _fail(
            exc.code, exc.message, "unit" if exc.code == "unsupported-unit" else "value"
        ) from exc
    kind = "tare" if attrs.get("mode") == "tare" else "weight"
    return [Observation(sensor, kind, grams, "g", NAME, attrs=attrs)]
