"""Bin identities and command barcodes, read the same way by every custody module.

A reusable waste bin carries a GRAI (GS1 returnable asset id): on a GRAI-96 RFID tag the
EPC adapter gives it as ``attrs["grai"]`` in AI (8003) form, and a printed GS1 label gives
the very same string, so a bin tagged at the hospital and scanned by label on the truck is
one bin. One-way containers may carry an SSCC (AI 00) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.rules.records import as_str

BIN_KEYS = ("grai", "sscc")


def bin_of(attrs: Any) -> dict[str, str] | None:
    """The bin identity of a tag, label or custody body: GRAI first, else SSCC."""
    if not isinstance(attrs, Mapping):
        return None
    for k in BIN_KEYS:
        v = as_str(attrs.get(k))
        if v is not None:
            return {k: v}
    return None


def bin_key(b: Mapping[str, str]) -> str:
    """``grai:<value>`` or ``sscc:<value>``: one string per bin for ids and messages."""
    k = "grai" if "grai" in b else "sscc"
    return f"{k}:{b[k]}"


def command_text(attrs: Mapping[str, Any]) -> str | None:
    """Text of a command barcode: a plain reader's ``text``, or a GS1 internal AI (91-99)."""
    text = as_str(attrs.get("text"))
    if text is not None:
        return text
    ais = attrs.get("ai")
    if isinstance(ais, Mapping):
        for k, v in ais.items():
            if isinstance(k, str) and k[:1] == "9" and isinstance(v, str) and v:
                return v
    return None
