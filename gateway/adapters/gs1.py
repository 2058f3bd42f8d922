"""GS1 barcode scans (DataMatrix, GS1-128, QR, DataBar, EAN/UPC) → one ``scan`` observation.

A scanner sends the AIM symbology identifier (``]d2`` GS1 DataMatrix, ``]C1`` GS1-128,
``]Q3`` GS1 QR, ``]e0`` DataBar, ``]E0`` EAN-13) followed by the element string, with
FNC1 separators transmitted as GS (0x1D). The GS1 General Specifications are long and
subtle (fixed vs variable-length AIs, check digits, the YYMMDD century window, day ``00`` =
last day of the month), so decoding is delegated to **biip**; this module only decides
what is an error and flattens the result into string ``attrs``.

biip reports a bad GTIN/SSCC check digit on the element without failing the message
(FACTS.md): we turn it into ``bad-check-digit`` naming the AI. GRAI (8003) check digits
biip does not verify; we do. Impossible dates (``190229``, month 13) are ``bad-date`` with
the AI in ``field``. Caveat: biip resolves the two-digit year with GS1's sliding window
relative to *today*, so a year ≥ 50 years away flips century; for expiry dates this is
the standard's intended reading.

A scanner with FNC1→GS translation off glues ``10 <lot> 17 <date>`` into one lot value;
that cannot be told from a real lot, so we keep it but add ``attrs["warning"]`` when a
lot/serial ends in what looks like a date element (11-17 + YYMMDD) absent from the scan.
"""

from __future__ import annotations

import re
from typing import Any

import biip
from biip.checksums import gs1_standard_check_digit

from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "gs1"
MAX_SCAN = 512

# AI → attrs key for the fields rules read by name; every AI also lands in attrs["ai"].
FIELD_NAMES = {
    "00": "sscc",
    "01": "gtin",
    "02": "content_gtin",
    "10": "lot",
    "21": "serial",
    "11": "production_date",
    "12": "due_date",
    "13": "packaging_date",
    "15": "best_before",
    "16": "sell_by",
    "17": "expiry",
    "37": "count",
    "710": "nhrn_de_pzn",
    "8003": "grai",
}
DATE_AIS = {"11", "12", "13", "15", "16", "17"}
_AI_IN_ERROR = re.compile(r"AI \((\d{2,4})\)")
_QUOTED = re.compile(r"'([^']*)'")
_GLUED_DATE = re.compile(r"(1[1-7])\d{2}(?:0[1-9]|1[0-2])(?:[0-2]\d|3[01])$")
_CONFIG = biip.ParseConfig(separator_chars=("\x1d",))


def _fail(code: str, message: str, field: str | None = None) -> ParseError:
    return ParseError(NAME, code, message, field=field)


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_SCAN:
        raise _fail("oversize", f"{len(raw)} bytes > {MAX_SCAN}")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _fail("not-ascii", f"byte {exc.start} is 0x{raw[exc.start]:02x}") from exc
    text = text.strip("\r\n")
    bad = [c for c in text if not (c.isprintable() or c == "\x1d")]
    if bad:
        raise _fail("bad-format", f"control character 0x{ord(bad[0]):02x} in scan")
    if not text.strip("\x1d "):
        raise _fail("empty-scan", "no data")
    return text


def _classify(error: str) -> ParseError:
    m = _AI_IN_ERROR.search(error)
    ai = m.group(1) if m else None
    if ai in DATE_AIS or "date" in error:
        return _fail("bad-date", error, ai)
    if "check digit" in error:
        return _fail("bad-check-digit", error, ai)
    if "Failed to get GS1 Application Identifier" in error:
        return _fail("not-gs1", error)
    return _fail("bad-format", error, ai)


def _no_message(result: Any) -> ParseError:
    """Why nothing parsed. Without a GS1 symbology identifier a failure on the very first
    element means "not a GS1 code at all" (a plain Code 128, a PZN); once an element has
    parsed, the data *is* GS1 and the failing AI is named."""
    si = result.symbology_identifier
    gs1_symbol = si is not None and si.gs1_symbology is not None
    error = result.gs1_message_error or ""
    if result.gs1_message is not None:
        return _fail("empty-scan", "GS1 symbol with no element strings")
    quoted = _QUOTED.search(error)
    data = result.value[len(si.value) :] if si is not None else result.value
    if error and (gs1_symbol or "date/time" in error or (quoted and quoted.group(1) != data)):
        return _classify(error)
    if result.gtin_error and "check digit" in result.gtin_error:
        return _fail("bad-check-digit", result.gtin_error, "01")
    errors = [e for e in (error, result.gtin_error, result.sscc_error) if e]
    return _fail("not-gs1", "; ".join(errors)[:240] or "not a GS1 code")


def _check_element(es: Any) -> None:
    ai = es.ai.ai
    for err in (es.gtin_error, es.sscc_error, es.gln_error):
        if err:
            raise _fail("bad-check-digit", str(err), ai)
    if ai == "8003":  # "0" + company prefix & asset type (12) + check digit + serial
        digits = es.value[1:14]
        if len(digits) == 13 and digits.isdigit():
            want = gs1_standard_check_digit(digits[:12])
            if int(digits[12]) != want:
                raise _fail(
                    "bad-check-digit",
                    f"GRAI {es.value[:14]}: check digit {digits[12]}, want {want}",
                    ai,
                )


def _attrs(result: Any, elements: list[Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    si = result.symbology_identifier
    if si is not None:
        attrs["symbology"] = si.value
        if si.gs1_symbology is not None:
            attrs["gs1_symbology"] = si.gs1_symbology.name
    ais: dict[str, str] = {}
    for es in elements:
        ai = es.ai.ai
        if ai in ais and ais[ai] != es.value:
            raise _fail("duplicate-ai", f"AI ({ai}) twice: {ais[ai]!r} and {es.value!r}", ai)
        ais[ai] = es.value
        name = FIELD_NAMES.get(ai)
        if name:
            attrs[name] = es.date.isoformat() if ai in DATE_AIS and es.date else es.value
    attrs["ai"] = ais
    attrs["hri"] = "".join(f"({ai}){v}" for ai, v in ais.items())
    for ai in ("10", "21"):
        m = _GLUED_DATE.search(ais.get(ai, ""))
        if m and m.group(1) in DATE_AIS and m.group(1) not in ais:
            attrs["warning"] = (
                f"({ai}) ends in ({m.group(1)})YYMMDD: GS separator probably missing, "
                "the value may contain a date element"
            )
    return attrs


def parse(port: str, raw: bytes) -> list[Observation]:
    """One scan from ``port`` (scanner or MQTT topic) → ``[scan observation]`` or ParseError."""
    text = _decode(raw)
    if text.startswith("]") and len(text) < 3:
        raise _fail(
            "bad-symbology", f"{text!r} is not a ']<symbology><modifier>' identifier", "symbology"
        )
    try:
        result = biip.parse(text, config=_CONFIG)
    except biip.BiipException as exc:  # e.g. an unknown ']xx' symbology identifier
        raise _fail("bad-symbology", str(exc)[:160], "symbology") from exc
    except (IndexError, ValueError) as exc:  # biip 5.2 indexes past a bare "]": found by fuzzing
        raise _fail("bad-symbology", f"{type(exc).__name__}: {exc}"[:160], "symbology") from exc
    elements: list[Any]
    if result.gs1_message is not None and len(result.gs1_message.element_strings) > 0:
        elements = list(result.gs1_message.element_strings)
    elif result.gs1_digital_link_uri is not None:
        elements = list(result.gs1_digital_link_uri.element_strings)
    elif result.gtin is not None:  # plain EAN/UPC: a GTIN and nothing else
        result_attrs = _attrs(result, [])
        gtin14 = result.gtin.as_gtin_14()  # one GTIN form everywhere, as in AI (01) and EPC
        result_attrs.update(gtin=gtin14, ai={"01": gtin14}, hri=f"(01){gtin14}")
        return [Observation(f"{NAME}:{port}", "scan", None, "", NAME, attrs=result_attrs)]
    else:
        raise _no_message(result)
    for es in elements:
        _check_element(es)
    attrs = _attrs(result, elements)
    return [Observation(f"{NAME}:{port}", "scan", None, "", NAME, attrs=attrs)]
