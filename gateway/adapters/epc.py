"""UHF RFID EPC-bank hex (SGTIN, SSCC, GRAI) and badge UIDs → ``rfid``/``badge`` observations.

Why **epcpy** and not pyepc: pyepc 0.5.0 drops the filter value on decode (the GS1 TDS
worked example ``3074257BF7194E4000001A85`` comes back with filter 1 instead of 3, and
re-encodes to a different hex) and cannot decode GRAI-96 at all (header 0x33), which is
exactly what our reusable waste bins carry. epcpy decodes SGTIN, SSCC and GRAI in both
the 96-bit and the long forms. epcpy does not expose the filter either, so we read the
3 filter bits ourselves (bits 8-10, right after the 8-bit header) and build the tag URI
from them.

Only the schemes the gateway has a use for are accepted (packs, pallets, bins); any other
header is ``unsupported-scheme`` rather than a guessed identity. ``attrs`` use the same
names as the GS1 barcode adapter (``gtin``, ``serial``, ``sscc``, ``grai``) so a rule can
match a tagged bin with its printed label.

Badge readers (``parse_badge``) send a plain hex UID (4, 7 or 10 bytes for ISO 14443
cards, 5 for EM4100), sometimes with ``:``/``-``/space between bytes; the UID is
normalised to upper-case hex in ``attrs["uid"]``. As for tags, the observation's
``sensor`` is the reader (``badge:<reader>``): the reader is what is allow-listed, the
card is what was seen.
"""

from __future__ import annotations

import re
from typing import Any

from epcpy.epc_schemes.grai import GRAI
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import hex_to_tag_encodable

from gateway.core.errors import ParseError
from gateway.core.observation import Observation

NAME = "epc"
BADGE = "badge"

# EPC header → tag URI scheme name
SCHEMES = {
    0x30: "sgtin-96",
    0x36: "sgtin-198",
    0x31: "sscc-96",
    0x33: "grai-96",
    0x37: "grai-170",
}
# EPC bank lengths in hex digits: 96-bit tags, and the long forms padded to 16-bit words.
HEX_LENGTHS = {24, 44, 52}
BADGE_BYTES = {4, 5, 7, 10}

_HEX = re.compile(r"^[0-9A-F]+$")
_BADGE_SEP = re.compile(r"[:\- ]")


def _fail(adapter: str, code: str, message: str, field: str | None = None) -> ParseError:
    return ParseError(adapter, code, message, field=field)


def _text(adapter: str, raw: bytes, limit: int) -> str:
    if len(raw) > limit:
        raise _fail(adapter, "oversize", f"{len(raw)} bytes > {limit}")
    try:
        text = raw.decode("ascii").strip().upper()
    except UnicodeDecodeError as exc:
        raise _fail(adapter, "not-hex", f"byte {exc.start} is not ASCII") from exc
    if not text:
        raise _fail(adapter, "empty-read", "no data")
    return text


def decode_epc(hex_text: str) -> dict[str, Any]:
    """The identity fields of one EPC as strings, or ParseError."""
    h = hex_text.removeprefix("0X")
    if not _HEX.match(h):
        raise _fail(NAME, "not-hex", f"{hex_text[:40]!r} is not hexadecimal", "epc")
    if len(h) not in HEX_LENGTHS:
        raise _fail(
            NAME, "bad-length", f"{len(h)} hex digits, want one of {sorted(HEX_LENGTHS)}", "epc"
        )
    header = int(h[:2], 16)
    scheme = SCHEMES.get(header)
    if scheme is None:
        raise _fail(
            NAME,
            "unsupported-scheme",
            f"EPC header 0x{header:02X} is not SGTIN, SSCC or GRAI",
            "header",
        )
    if len(h) == 24 and not scheme.endswith("-96"):
        raise _fail(NAME, "bad-length", f"{scheme} needs more than 96 bits", "epc")
    bits = int(h[2:4], 16)
    filter_value, partition = bits >> 5, (bits >> 2) & 0b111
    try:
        tag = hex_to_tag_encodable(h)
    except (ConvertException, ValueError, IndexError, KeyError) as exc:  # epcpy's decode failures
        raise _fail(NAME, "bad-epc", f"{scheme}: {exc}"[:200], "epc") from exc
    if not isinstance(tag, (SGTIN, SSCC, GRAI)):  # the header table above rules this out
        raise _fail(NAME, "unsupported-scheme", f"decoded as {type(tag).__name__}", "header")
    pure = tag.epc_uri  # urn:epc:id:<scheme>:<fields>
    fields = pure.split(":", 4)[4]
    element_string = tag.gs1_element_string()
    attrs: dict[str, Any] = {
        "epc": h,
        "scheme": scheme,
        "filter": filter_value,
        "partition": partition,
        "pure_identity": pure,
        "tag_uri": f"urn:epc:tag:{scheme}:{filter_value}.{fields}",
        "element_string": element_string,
    }
    parts = fields.split(".")
    attrs["company_prefix"] = parts[0]
    if isinstance(tag, SGTIN):
        attrs.update(indicator_item_ref=parts[1], serial=parts[2], gtin=tag.gs1_key())
    elif isinstance(tag, SSCC):
        attrs.update(serial_reference=parts[1], sscc=tag.gs1_key())
    else:
        # AI (8003) value: "0" + GRAI-13 + serial, as a printed bin label would carry it.
        grai = element_string[len("(8003)") :]
        attrs.update(asset_type=parts[1], serial=parts[2], grai=grai)
    return attrs


def parse(reader: str, raw: bytes) -> list[Observation]:
    """One EPC (hex) read by ``reader`` → ``rfid`` observation with the decoded identity."""
    text = _text(NAME, raw, 128)
    attrs = decode_epc(text)
    return [Observation(f"{NAME}:{reader}", "rfid", None, "", NAME, attrs=attrs)]


def parse_badge(reader: str, raw: bytes) -> list[Observation]:
    """One badge UID read by ``reader`` → ``badge`` observation; the UID is the identity."""
    text = _BADGE_SEP.sub("", _text(BADGE, raw, 64))
    if not _HEX.match(text):
        raise _fail(BADGE, "not-hex", f"{text[:40]!r} is not a hex UID", "uid")
    if len(text) % 2 or len(text) // 2 not in BADGE_BYTES:
        raise _fail(
            BADGE, "bad-length", f"{len(text)} hex digits, want {sorted(BADGE_BYTES)} bytes", "uid"
        )
    if text.strip("0") == "" or text.strip("F") == "":
        raise _fail(BADGE, "bad-uid", f"UID {text} is all 00 or FF (no card / read error)", "uid")
    return [Observation(f"{BADGE}:{reader}", "badge", None, "", BADGE, attrs={"uid": text})]
