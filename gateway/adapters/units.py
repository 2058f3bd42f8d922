"""Exact unit conversion from a device's decimal text to the integers the gateway stores.

Why not float: ``4.35 * 1000`` is ``4349.999…`` in binary floating point, so a fridge at
4.35 °C would be recorded as 4349 m°C. Every conversion here multiplies an exact
``Decimal`` (as parsed from the device's text) by an exact ``Fraction`` factor and rounds
once, **half to even** (Python's ``round`` on a ``Fraction``). When the input already has no
more decimals than the target unit resolves (e.g. 4.35 °C → 4350 m°C) no rounding happens.

°F → m°C: ``(F − 32) × 5/9 × 1000`` computed as a fraction, then rounded half to even:
70.3 °F → 21277.77… → 21278 m°C; 32.0009 °F → 0.5 m°C → 0 (tie to even).

Mass: every supported unit has an exact definition in grams (the avoirdupois pound is
exactly 453.59237 g by the 1959 agreement; oz = lb/16; the troy ounce 31.1034768 g; the
metric carat 0.2 g; the grain 64.79891 mg; the momme 3.75 g). Ambiguous units (``t`` is
"tola" on A&D balances but "tonne" on CAS indicators; tael differs by country) are refused
rather than guessed.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

# Bounds that keep Fraction arithmetic cheap and stored integers inside SQLite's int64:
# a hostile "1e999999999" must be refused before it becomes a billion-digit integer.
MAX_ADJUSTED_EXPONENT = 12  # |value| < 1e13 in the device unit
MIN_EXPONENT = -12  # at most 12 decimals

GRAMS_PER_UNIT: dict[str, Fraction] = {
    "g": Fraction(1),
    "kg": Fraction(1000),
    "mg": Fraction(1, 1000),
    "ug": Fraction(1, 1_000_000),
    "µg": Fraction(1, 1_000_000),
    "lb": Fraction("453.59237"),
    "oz": Fraction("453.59237") / 16,
    "ozt": Fraction("31.1034768"),
    "dwt": Fraction("31.1034768") / 20,
    "ct": Fraction(1, 5),
    "GN": Fraction("0.06479891"),
    "mom": Fraction("3.75"),
    "mo": Fraction("3.75"),
}


class UnitError(ValueError):
    """A value or unit that cannot be converted; adapters turn it into a ParseError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_decimal(value: Decimal | int) -> Fraction:
    """The exact value as a Fraction, refusing NaN, infinities and absurd magnitudes."""
    if isinstance(value, bool):
        raise UnitError("bad-value", f"boolean {value!r} is not a number")
    if isinstance(value, int):
        value = Decimal(value)
    if not value.is_finite():
        raise UnitError("bad-value", f"{value} is not a finite number")
    if value != 0:
        if value.adjusted() > MAX_ADJUSTED_EXPONENT:
            raise UnitError("out-of-range", f"{value} is too large")
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and exp < MIN_EXPONENT:
            raise UnitError("out-of-range", f"{value} has more than {-MIN_EXPONENT} decimals")
    return Fraction(value)


def scale(value: Decimal | int, factor: Fraction | int) -> int:
    """``value × factor`` rounded half to even; exact for decimal inputs."""
    return round(check_decimal(value) * factor)


def celsius_to_mc(value: Decimal | int) -> int:
    return scale(value, 1000)


def fahrenheit_to_mc(value: Decimal | int) -> int:
    return round((check_decimal(value) - 32) * Fraction(5000, 9))


def temperature_to_mc(value: Decimal | int, unit: str) -> int:
    """Convert a temperature in ``C`` or ``F`` (case-insensitive, ``°`` allowed)."""
    u = unit.strip().lstrip("°").upper()
    if u == "C":
        return celsius_to_mc(value)
    if u == "F":
        return fahrenheit_to_mc(value)
    raise UnitError("unsupported-unit", f"temperature unit {unit!r}, want C or F")


def percent_to_permille(value: Decimal | int) -> int:
    return scale(value, 10)


def percent(value: Decimal | int) -> int:
    return scale(value, 1)


def mass_to_grams(value: Decimal | int, unit: str) -> int:
    factor = GRAMS_PER_UNIT.get(unit)
    if factor is None:
        raise UnitError("unsupported-unit", f"mass unit {unit!r} not in {sorted(GRAMS_PER_UNIT)}")
    return scale(value, factor)


def parse_decimal(text: str) -> Decimal:
    """A plain decimal numeral (optional sign, digits, optional point), nothing else.

    ``Decimal()`` alone would also accept ``"NaN"``, ``"1e5"``, ``"_1"`` and Unicode digits;
    device fields are plain ASCII numerals, so anything else is a corrupted field.
    """
    t = text.strip()
    body = t[1:] if t[:1] in "+-" else t
    if not body or body == "." or body.count(".") > 1 or not all(c in "0123456789." for c in body):
        raise UnitError("bad-value", f"{text!r} is not a decimal number")
    if len(body) > 30:
        raise UnitError("out-of-range", f"{text!r} has too many digits")
    d = Decimal(t)
    check_decimal(d)
    return d
