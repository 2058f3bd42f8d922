"""Mettler Toledo MT-SICS replies (one CR LF-terminated line) → weight observations.

Reply shape: ``<ID> <status> [<value> <unit>]``, fields separated by runs of spaces because
balances right-align the value in a fixed-width field (``S S      100.00 g``).

========================  ==========================================================
``S S`` / ``SU S``        stable weight (from ``S``, ``SI``, ``SIR``, ``SR``) → weight,
                          ``attrs["stable"] = True``
``S D`` / ``SU D``        dynamic (not yet stable, from ``SI``) → weight, stable False
``T S|A`` ``TI S|D|A``   tare taken → ``tare`` observation (value = tare weight);
                          ``A`` (executed) is the older levels' form of ``S``
``TA A``                  tare memory value → ``tare``;  ``TAC A`` tare cleared → ``tare`` 0
``Z A`` / ``ZI S|D|A``    zero set → ``zero`` event (value None)
``x I``                   not executable (busy, or no stability before timeout)
``x +`` / ``x -``         overload / underload (for ``Z``: outside the zero range)
``x L``                   logical error (bad parameter)
``ES`` ``ET`` ``EL``      syntax / transmission / logical error
========================  ==========================================================

Every failure is a ParseError with one of the codes in ``STATUS_CODES``/``GENERAL_ERRORS``
so the quarantine counts tell an operator *why* a scale is not delivering. Only the custody
layer decides what an unstable weight is worth; here it is just labelled. The mass is
converted exactly to integer grams (round half to even) and the device's own digits are
kept in ``attrs["raw_value"]``/``attrs["raw_unit"]``: an analytical balance's 2.486 g is
stored as 2 g, and the audit trail still shows what the balance said.

Non-standard status letters (InstrumentKit's ``S A 1.234 g`` fixture) are refused with
``bad-status``: accepting them would let a mis-configured device pass as stable.
"""

from __future__ import annotations

from typing import Any

from gateway.adapters.units import UnitError, mass_to_grams, parse_decimal
from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "mtsics"
MAX_LINE = 128

GENERAL_ERRORS = {"ES": "syntax-error", "ET": "transmission-error", "EL": "logical-error"}
STATUS_CODES = {"I": "not-executable", "+": "overload", "-": "underload", "L": "logical-error"}

# Reply id → (observation kind, statuses meaning success with a value, stable?).
WEIGHT_IDS = {"S", "SU", "SIH", "SX"}
TARE_IDS = {"T", "TI", "TA"}
ZERO_IDS = {"Z", "ZI"}


def _fail(code: str, message: str, field: str | None = None) -> ParseError:
    return ParseError(NAME, code, message, field=field)


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_LINE:
        raise _fail("oversize", f"{len(raw)} bytes > {MAX_LINE}")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _fail("not-ascii", f"byte {exc.start} is 0x{raw[exc.start]:02x}") from exc
    text = text.strip("\r\n")
    if not text.strip():
        raise _fail("empty-line", "no reply text")
    if any(not (c.isprintable() or c == "\t") for c in text):
        raise _fail("bad-format", f"control character in {text!r}")
    return text


def _value_tokens(tokens: list[str]) -> tuple[str, str]:
    """Value and unit from what follows the status; the sign may stand apart (``-  1.2``)."""
    if tokens and tokens[0] in ("+", "-") and len(tokens) >= 2:
        tokens = [tokens[0] + tokens[1], *tokens[2:]]
    if not tokens:
        raise _fail("missing-field", "no weight value", "value")
    if len(tokens) == 1:
        raise _fail("missing-field", f"no unit after {tokens[0]!r}", "unit")
    if len(tokens) > 2:
        raise _fail("bad-format", f"unexpected fields {tokens[2:]!r}")
    return tokens[0], tokens[1]


def _grams(value_text: str, unit: str) -> int:
    try:
        return mass_to_grams(parse_decimal(value_text), unit)
    except UnitError as exc:
        raise _fail(
            exc.code, exc.message, "unit" if exc.code == "unsupported-unit" else "value"
        ) from exc


def parse(port: str, raw: bytes) -> list[Observation]:
    """One MT-SICS reply line from ``port`` → at most one observation, or ParseError."""
    text = _decode(raw)
    tokens = text.split()
    cmd = tokens[0]
    if cmd in GENERAL_ERRORS:
        if len(tokens) != 1:
            raise _fail("bad-format", f"{text!r}: general error with trailing fields")
        raise _fail(GENERAL_ERRORS[cmd], f"balance replied {cmd}")
    if len(tokens) < 2:
        raise _fail("missing-field", f"{text!r} has no status", "status")
    status = tokens[1]
    if cmd not in WEIGHT_IDS | TARE_IDS | ZERO_IDS | {"TAC"}:
        raise _fail(
            "unsupported-response",
            f"reply id {cmd!r} is not a weight, tare or zero reply",
            "command",
        )
    if status in STATUS_CODES:
        if len(tokens) != 2:
            raise _fail("bad-format", f"{text!r}: status {status} with trailing fields")
        what = {
            "I": "command not executable (busy or no stability)",
            "+": "overload range",
            "-": "underload range",
            "L": "logical error (bad parameter)",
        }[status]
        raise _fail(STATUS_CODES[status], f"{cmd} {status}: {what}", "status")
    sensor = f"{NAME}:{port}"
    base: dict[str, Any] = {"command": cmd, "status": status}

    if cmd in ZERO_IDS or cmd == "TAC":
        ok = {"Z": ("A",), "ZI": ("S", "D", "A"), "TAC": ("A",)}[cmd]
        if status not in ok or len(tokens) != 2:
            raise _fail("bad-status", f"{text!r}: want {cmd} {'/'.join(ok)}", "status")
        if cmd == "TAC":  # tare memory cleared: the tare is now zero
            return [Observation(sensor, "tare", 0, "g", NAME, attrs={**base, "stable": True})]
        return [
            Observation(sensor, "zero", None, "", NAME, attrs={**base, "stable": status != "D"})
        ]

    ok_status = {
        "S": ("S", "D"),
        "SU": ("S", "D"),
        "SIH": ("S", "D"),
        "SX": ("S", "D"),
        "T": ("S", "A"),
        "TI": ("S", "D", "A"),
        "TA": ("A",),
    }[cmd]
    if status not in ok_status:
        raise _fail("bad-status", f"{text!r}: status {status!r}, want one of {ok_status}", "status")
    value_text, unit = _value_tokens(tokens[2:])
    grams = _grams(value_text, unit)
    attrs = {**base, "stable": status != "D", "raw_value": value_text, "raw_unit": unit}
    kind = "tare" if cmd in TARE_IDS else "weight"
    return [Observation(sensor, kind, grams, "g", NAME, attrs=attrs)]
