"""Inventory from GS1 scans: direction, stock per lot, expiry, stock levels, residency, replay."""

from __future__ import annotations

import re
from typing import Any

import pytest
from coldchain_kit import HOUR, MIN, T0, Station

from gateway.core.errors import ConfigError
from gateway.rules.alarms import AlarmEngine
from gateway.rules.inventory import Inventory, Residency, parse_inventory
from gateway.rules.units import parse_units

DAY = 24 * HOUR
G = "09506000134352"
G2 = "09506000134369"
UNITS = parse_units(
    [
        {
            "id": "fridge-1",
            "profile": "fridge",
            "probes": ["probe-1"],
            "scanners": ["gs1:scanner-1"],
            "scanner_in": "gs1:in-1",
            "scanner_out": "gs1:out-1",
        },
        {
            "id": "freezer-1",
            "profile": "freezer",
            "probes": ["probe-2"],
            "scanners": ["gs1:scanner-2"],
        },
    ]
)
CFG = parse_inventory(
    {"expiry_warn_days": 30, "products": [{"gtin": G, "name": "MMR", "low_stock": 2}]}
)


def scan(st: Station, t: int, scanner: str = "gs1:scanner-1", **attrs: Any) -> dict[str, Any]:
    return st.put({"type": "reading", "sensor": scanner, "kind": "scan", "attrs": attrs}, t)


def pack(lot: str = "A1", expiry: str = "2027-03-31", gtin: str = G) -> dict[str, str]:
    return {"gtin": gtin, "lot": lot, "expiry": expiry}


def command(code: str) -> dict[str, Any]:
    """A GS1-128 label with an internal AI, which the GS1 adapter accepts (plain text it quarantines)."""
    return {"symbology": "]C1", "ai": {"91": code}, "hri": f"(91){code}"}


def stock_events(st: Station) -> list[tuple[str, str, str, int]]:
    return [
        (r["event"], r["unit"], r["lot"], r["stock_after"]) for r in st.journal.of_type("stock")
    ]


def alarms(st: Station) -> list[tuple[str, str, int]]:
    return [(r["alarm"], r["state"], r["at_ms"]) for r in st.journal.of_type("alarm")]


def test_direction_from_mode_command_barcode_and_dedicated_scanners() -> None:
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    for i in range(3):
        scan(st, T0 + i * MIN, **pack())  # default mode: in
    scan(st, T0 + 5 * MIN, **command("TS-MODE-OUT"))
    scan(st, T0 + 6 * MIN, **pack())
    scan(st, T0 + 7 * MIN, text="TS-MODE-IN")  # a scanner/adapter passing raw text works too
    scan(st, T0 + 8 * MIN, **pack("B2"))
    scan(st, T0 + 9 * MIN, "gs1:out-1", **command("TS-MODE-IN"))  # dedicated: commands do nothing
    scan(st, T0 + 10 * MIN, "gs1:out-1", **pack())
    scan(st, T0 + 11 * MIN, "gs1:in-1", **pack("C3"))
    st.put(inv.mode_body("gs1:scanner-2", "in", by="button:GPIO22"), T0 + 12 * MIN)
    scan(st, T0 + 13 * MIN, "gs1:scanner-2", **pack("F1"))
    assert stock_events(st) == [
        ("in", "fridge-1", "A1", 1),
        ("in", "fridge-1", "A1", 2),
        ("in", "fridge-1", "A1", 3),
        ("out", "fridge-1", "A1", 2),
        ("in", "fridge-1", "B2", 1),
        ("out", "fridge-1", "A1", 1),
        ("in", "fridge-1", "C3", 1),
        ("in", "freezer-1", "F1", 1),
    ]
    assert inv.stock("fridge-1") == {
        ("fridge-1", G, "A1"): 1,
        ("fridge-1", G, "B2"): 1,
        ("fridge-1", G, "C3"): 1,
    }
    assert inv.product_stock(G) == 4
    first = st.journal.of_type("stock")[0]
    assert (first["id"], first["scan_seq"], first["scanner"], first["qty"], first["expiry"]) == (
        f"stock/{first['scan_seq']}",
        first["scan_seq"],
        "gs1:scanner-1",
        1,
        "2027-03-31",
    )
    with pytest.raises(ValueError, match="mode: 'sideways' is not one of in, out, discard"):
        inv.mode_body("gs1:scanner-1", "sideways", by="x")


def test_expired_pack_is_rejected_with_an_alarm_and_discard_takes_it_out() -> None:
    inv = Inventory(UNITS, parse_inventory({}))
    eng = AlarmEngine(UNITS, power_gap_s=86_400)
    st = Station([inv, eng])
    scan(st, T0, **pack("OK", expiry="2026-01-01"))  # usable through its expiry day
    scan(st, T0 + MIN, **pack("OLD", expiry="2025-12-31"))
    assert stock_events(st) == [("in", "fridge-1", "OK", 1)]
    rejected = [r for r in st.journal.of_type("alarm") if r["alarm"] == "expired_scan"]
    assert [(r["state"], r["at_ms"]) for r in rejected] == [
        ("raised", T0 + MIN),
        ("cleared", T0 + MIN),
    ]
    assert (
        rejected[0]["lot"],
        rejected[0]["expiry"],
        rejected[0]["value"],
        rejected[0]["direction"],
        rejected[0]["severity"],
    ) == ("OLD", "2025-12-31", -1, "in", "alarm")
    assert any(
        a["alarm"] == "expired_scan" for a in eng.active()
    )  # on the panel until acknowledged
    # the OK lot expires at the end of today; next day it is expired stock; only discard moves it
    st.tick(T0 + DAY)
    scan(st, T0 + DAY + MIN, **command("TS-MODE-OUT"))
    scan(st, T0 + DAY + 2 * MIN, **pack("OK", expiry="2026-01-01"))
    scan(st, T0 + DAY + 3 * MIN, **command("TS-MODE-DISCARD"))
    scan(st, T0 + DAY + 4 * MIN, **pack("OK", expiry="2026-01-01"))
    assert stock_events(st)[-1] == ("discard", "fridge-1", "OK", 0)
    assert [(a, s, t - T0) for a, s, t in alarms(st) if a == "expired_stock"] == [
        ("expired_stock", "raised", DAY),
        ("expired_stock", "cleared", DAY + 4 * MIN),
    ]


def test_expiry_warning_n_days_ahead_at_exact_midnights() -> None:
    inv = Inventory(UNITS, parse_inventory({"expiry_warn_days": 30}))
    st = Station([inv])
    scan(st, T0, **pack("SOON", expiry="2026-01-31"))  # 30 days left on 2026-01-01: warn now
    scan(st, T0 + MIN, **pack("LATER", expiry="2026-03-15"))
    st.tick(T0 + 80 * DAY)  # one late tick: transitions still land on their own midnights
    got = [(r["alarm"], r["state"], r["lot"], r["at_ms"]) for r in st.journal.of_type("alarm")]
    assert got == [
        ("expiry_soon", "raised", "SOON", T0),
        ("expiry_soon", "cleared", "SOON", T0 + 31 * DAY),  # 2026-02-01: SOON has expired
        ("expired_stock", "raised", "SOON", T0 + 31 * DAY),
        ("expiry_soon", "raised", "LATER", T0 + 43 * DAY),  # 2026-02-13 = 30 days before 03-15
        ("expiry_soon", "cleared", "LATER", T0 + 74 * DAY),  # 2026-03-16
        ("expired_stock", "raised", "LATER", T0 + 74 * DAY),
    ]
    soon = st.journal.of_type("alarm")[0]
    assert (soon["value"], soon["threshold"], soon["value_unit"], soon["severity"]) == (
        30,
        30,
        "d",
        "warning",
    )


def test_utc_offset_moves_the_midnight() -> None:
    inv = Inventory(UNITS, parse_inventory({"expiry_warn_days": 0, "utc_offset_minutes": 180}))
    st = Station([inv])
    scan(st, T0, **pack("X", expiry="2026-01-02"))
    st.tick(T0 + 5 * DAY)
    expired = next(r for r in st.journal.of_type("alarm") if r["alarm"] == "expired_stock")
    assert expired["at_ms"] == T0 + 2 * DAY - 3 * HOUR  # 2026-01-03 00:00 at UTC+3


def test_low_and_out_of_stock_per_product_across_units() -> None:
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    st.reading(T0, "probe-1", "temperature", 5_000)  # first record: the product is out of stock
    scan(st, T0 + 1 * MIN, **pack("A1"))
    scan(st, T0 + 2 * MIN, "gs1:scanner-2", **pack("A2"))
    scan(st, T0 + 3 * MIN, **pack("A1"))  # 3 > low_stock 2
    scan(st, T0 + 4 * MIN, **pack("X", gtin=G2))  # not a configured product: no levels
    scan(st, T0 + 5 * MIN, "gs1:out-1", **pack("A1"))  # 2: equal to the threshold is low
    scan(st, T0 + 6 * MIN, "gs1:out-1", **pack("A1"))
    st.put(inv.mode_body("gs1:scanner-2", "out", by="button"), T0 + 7 * MIN)
    scan(st, T0 + 8 * MIN, "gs1:scanner-2", **pack("A2"))
    assert [(a, s, (t - T0) // MIN) for a, s, t in alarms(st)] == [
        ("out_of_stock", "raised", 0),
        ("out_of_stock", "cleared", 1),
        ("low_stock", "raised", 1),
        ("low_stock", "cleared", 3),
        ("low_stock", "raised", 5),
        ("low_stock", "cleared", 8),
        ("out_of_stock", "raised", 8),
    ]
    low = next(r for r in st.journal.of_type("alarm") if r["alarm"] == "low_stock")
    assert (low["gtin"], low["value"], low["threshold"], "unit" not in low) == (G, 1, 2, True)


def test_out_of_a_pack_not_in_stock_is_recorded_short() -> None:
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    scan(st, T0, "gs1:out-1", **pack("NEVER-IN"))
    (body,) = st.journal.of_type("stock")
    assert (body["event"], body["qty"], body["stock_after"], body["short"]) == ("out", 1, 0, 1)
    scan(st, T0 + MIN, "gs1:unknown", **pack())  # not a configured scanner
    scan(st, T0 + MIN, sscc="106141411234567897")  # a pallet label: no GTIN, nothing to book
    assert len(st.journal.of_type("stock")) == 1


def test_lot_residency_intervals() -> None:
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    scan(st, T0, **pack("A1"))
    scan(st, T0 + HOUR, **pack("A1"))
    scan(st, T0 + 2 * HOUR, "gs1:out-1", **pack("A1"))
    scan(st, T0 + 3 * HOUR, "gs1:out-1", **pack("A1"))
    scan(st, T0 + 4 * HOUR, "gs1:in-1", **pack("A1"))
    scan(st, T0 + 4 * HOUR, "gs1:scanner-2", **pack("B1"))
    assert inv.residency("fridge-1") == [
        Residency("fridge-1", G, "A1", T0, T0 + 3 * HOUR),
        Residency("fridge-1", G, "A1", T0 + 4 * HOUR, None),
    ]
    assert inv.lots_present("fridge-1", T0 + 3 * HOUR, T0 + 4 * HOUR) == []
    assert inv.lots_present("fridge-1", T0 + 3 * HOUR - 1, T0 + 4 * HOUR) == [(G, "A1")]
    assert inv.lots_present("freezer-1", T0, T0 + 5 * HOUR) == [(G, "B1")]


def test_a_tick_that_derived_nothing_leaves_the_clock_where_the_records_put_it() -> None:
    """Nothing of such a tick is journaled: a scan the wall clock stepped back behind it is
    taken at its own time, live as in a replay (before, its alarm's at_ms was the tick's)."""
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    scan(st, T0, **pack())
    assert inv.tick(T0 + 30_000) == []
    scan(st, T0 + 20_000, **pack("OLD", expiry="2025-12-31"))  # NTP stepped back 10 s
    assert ("expired_scan", "raised", T0 + 20_000) in alarms(st)
    again = Inventory(UNITS, CFG)
    assert again.replay(st.journal.records) == []
    assert again.active() == inv.active()


def test_replay_rebuilds_stock_without_duplicates() -> None:
    inv = Inventory(UNITS, CFG)
    st = Station([inv])
    scan(st, T0, **pack("A1", expiry="2026-01-20"))
    scan(st, T0 + MIN, **pack("OLD", expiry="2025-01-01"))
    scan(st, T0 + 2 * MIN, **command("TS-MODE-OUT"))
    scan(st, T0 + 3 * MIN, **pack("A1", expiry="2026-01-20"))
    scan(st, T0 + 4 * MIN, "gs1:in-1", **pack("B2", expiry="2026-06-01"))
    st.tick(T0 + 30 * DAY)
    again = Inventory(UNITS, CFG)
    assert again.replay(st.journal.records) == []
    assert (again.stock(), again.residency(), again.active()) == (
        inv.stock(),
        inv.residency(),
        inv.active(),
    )
    assert again.mode("gs1:scanner-1") == "out"
    # crash after the last scan was sealed but before what it caused was: all of it comes back
    recs = st.journal.records
    i = max(i for i, r in enumerate(recs) if r["type"] == "stock")
    lost = [
        r
        for r in recs[i:]
        if r["type"] in ("stock", "alarm") and r["time_ms"] == recs[i]["time_ms"]
    ]
    assert [r["type"] for r in lost] == [
        "stock",
        "alarm",
        "alarm",
    ]  # the move, out_of_stock ends, low_stock begins
    crashed = Inventory(UNITS, CFG)
    pending = crashed.replay(recs[:i])
    assert [(b["id"], b.get("state")) for b in pending] == [(r["id"], r.get("state")) for r in lost]


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"expiry_warn_day": 3}, r"^inventory\.expiry_warn_day: unknown key$"),
        ({"expiry_warn_days": -1}, r"^inventory\.expiry_warn_days: must be >= 0, got -1$"),
        ({"mode_in_code": ""}, r"^inventory\.mode_in_code: expected a non-empty string"),
        ({"products": [{"gtin": "123"}]}, r"^inventory\.products\[0\]\.gtin: expected 14 digits"),
        (
            {"products": [{"gtin": G, "low_stock": True}]},
            r"^inventory\.products\[0\]\.low_stock: expected an integer",
        ),
        (
            {"products": [{"gtin": G}, {"gtin": G}]},
            r"^inventory\.products\[1\]\.gtin: duplicate product",
        ),
        ({"products": [{"gtin": G, "min": 1}]}, r"^inventory\.products\[0\]\.min: unknown key$"),
    ],
)
def test_inventory_config_errors_name_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:  # the key travels apart from the problem
        parse_inventory(raw)
    assert re.search(message, f"{e.value.key}: {e.value.problem}")
