"""The dashboard's JSON, built from the journal and the gateway's live state.

Shapes are made for a person at a glance, not for completeness: each unit says whether it
is fine, each alarm comes with plain words and what to check, each health item is
``ok``/``warn``/``fail`` with its reason. Numbers stay integers in their stored units
(milli-degrees, ms, grams); the page formats them, so the JSON is also a stable API.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from gateway.rules.records import DAY_MS
from gateway.web import queries
from gateway.web.source import DashboardSource
from gateway.web.tail import JournalTail

HOUR_MS = 3_600_000
GiB = 1 << 30

# Plain words and a first thing to check, per alarm kind (rules.lifecycle, inventory, custody).
ALARM_TEXT: dict[str, tuple[str, str]] = {
    "high": ("Too warm", "Check the door is shut and the unit has power. "
                         "Keep the vaccines cold; follow your excursion SOP."),
    "low": ("Too cold", "Check the thermostat setting. Follow your excursion SOP."),
    "freeze": ("Freezing risk", "Vaccines may have frozen. Do not use them until assessed (shake test / SOP)."),
    "cumulative": ("Out of range too long in total", "Many short excursions add up. Review the unit and its door use."),
    "silent": ("Probe not reporting", "Check the probe's battery and placement, and the network."),
    "door": ("Door open too long", "Close the door."),
    "power": ("Gateway was off or restarted", "Check the power supply; review temperatures for the gap."),
    "expired_scan": ("Expired pack scanned", "Do not use this pack; discard it."),
    "expiry_soon": ("Expires soon", "Use this lot first."),
    "expired_stock": ("Expired stock in the unit", "Remove the lot and scan it out as discarded."),
    "low_stock": ("Low stock", "Order more."),
    "out_of_stock": ("Out of stock", "Order more."),
    "weight-loss": ("Bin lost weight between stages", "Check the bin and the handover."),
    "missing-bin": ("Bin not delivered in time", "Find the bin; contact the transporter."),
    "unknown-bin": ("Bin received that was never picked up", "Check the manifest."),
}
LEVELS = ("ok", "warn", "fail")
ENVELOPE = frozenset({"v", "gateway", "seq", "time_ms", "clock_synced"})


def worst(levels: list[str]) -> str:
    return max(levels, key=LEVELS.index, default="ok")


def alarm_view(a: dict[str, Any]) -> dict[str, Any]:
    title, hint = ALARM_TEXT.get(str(a.get("alarm")), (str(a.get("alarm", "alarm")).replace("_", " "), ""))
    a = {k: v for k, v in a.items() if k not in ENVELOPE}  # a foreign alarm's view carries its record's envelope
    return {**a, "title": title, "hint": hint, "present": a.get("state") != "cleared",
            "needs_ack": not a.get("acknowledged")}


def alarms(source: DashboardSource) -> list[dict[str, Any]]:
    views = [alarm_view(a) for a in source.active_alarms()]
    # present alarms first, the worst first, then the oldest
    return sorted(views, key=lambda a: (not a["present"], a.get("severity") != "alarm", a.get("raised_ms", 0)))


def units(source: DashboardSource, db: sqlite3.Connection, active: list[dict[str, Any]],
          now: int) -> list[dict[str, Any]]:
    out = []
    for u in source.cfg.station.units.values():
        probes = []
        for p in u.probes:
            last = queries.latest(db, p)
            probe: dict[str, Any] = {"sensor": p, "time_ms": None, "value_mc": None, "in_range": None, "stale": True}
            if last is not None:
                t, v = last
                probe.update(time_ms=t, value_mc=v, in_range=u.low_mc < v < u.high_mc,
                             stale=now - t >= u.settings.silence_s * 1000)
            probes.append(probe)
        door = None
        if u.door:
            d = queries.latest(db, u.door, "door")
            door = {"sensor": u.door, "open": None if d is None else bool(d[1]), "time_ms": None if d is None else d[0]}
        mine = [a for a in active if a.get("unit") == u.id]
        # A reading out of range is amber before its delay runs out and the alarm is raised.
        level = worst(["fail" if a.get("severity") == "alarm" and a["present"] else "warn" for a in mine]
                      + ["warn" for p in probes if p["in_range"] is False or p["stale"]])
        out.append({"id": u.id, "profile": u.profile, "low_mc": u.low_mc, "high_mc": u.high_mc,
                    "freeze_mc": u.freeze_mc, "probes": probes, "door": door, "level": level,
                    "alarms": [a["id"] for a in mine]})
    return out


def series(source: DashboardSource, db: sqlite3.Connection, unit_id: str, now: int,
           hours: int = 24) -> dict[str, Any] | None:
    u = source.cfg.station.units.get(unit_id)
    if u is None:
        return None
    start = now - hours * HOUR_MS
    return {"unit": u.id, "from_ms": start, "to_ms": now, "low_mc": u.low_mc, "high_mc": u.high_mc,
            "freeze_mc": u.freeze_mc,
            "probes": {p: [list(x) for x in queries.series(db, p, start, now)] for p in u.probes}}


def _local_day(now: int, offset_min: int) -> int:
    return (now + offset_min * 60_000) // DAY_MS


def stock(source: DashboardSource, tail: JournalTail, now: int) -> dict[str, Any]:
    inv = source.cfg.station.inventory
    warn_days = int(getattr(inv, "expiry_warn_days", 30))
    offset = int(getattr(inv, "utc_offset_minutes", 0))
    products = dict(getattr(inv, "products", {}) or {})
    today = _local_day(now, offset)
    lots = []
    totals: dict[str, int] = {}
    for lot in tail.stock():
        days = None
        if lot.expiry:
            try:
                days = (dt.date.fromisoformat(lot.expiry) - dt.date(1970, 1, 1)).days - today
            except ValueError:
                days = None
        level = "fail" if days is not None and days < 0 else "warn" if days is not None and days <= warn_days else "ok"
        p = products.get(lot.gtin)
        lots.append({"unit": lot.unit, "gtin": lot.gtin, "product": getattr(p, "name", "") or "", "lot": lot.lot,
                     "qty": lot.qty, "expiry": lot.expiry, "days_left": days, "level": level})
        totals[lot.gtin] = totals.get(lot.gtin, 0) + lot.qty
    prods = []
    for gtin in sorted(set(totals) | set(products)):
        p = products.get(gtin)
        low = int(getattr(p, "low_stock", 0)) if p else 0
        n = totals.get(gtin, 0)
        prods.append({"gtin": gtin, "product": getattr(p, "name", "") or "", "qty": n, "low_stock": low,
                      "level": "warn" if p is not None and n <= low else "ok"})
    return {"expiry_warn_days": warn_days, "lots": lots, "products": prods}


def custody(source: DashboardSource, tail: JournalTail, now: int) -> dict[str, Any] | None:
    cust = source.cfg.station.custody
    if cust is None or not getattr(cust, "stations", None):
        return None
    offset = int(getattr(source.cfg.station.inventory, "utc_offset_minutes", 0))
    midnight = _local_day(now, offset) * DAY_MS - offset * 60_000
    events = [{k: r.get(k) for k in ("type", "seq", "time_ms", "at_ms", "route", "bin", "weight_g", "category",
                                     "stage", "station", "operator", "notice", "reason", "message")}
              for r in tail.custody_since(midnight)]
    bins = tail.reconciliation(now) or []
    counts: dict[str, int] = {}
    for b in bins:
        counts[b["status"]] = counts.get(b["status"], 0) + 1
    attention = [b for b in bins if b["status"] in ("missing", "unknown")]
    return {"since_ms": midnight, "events": events[::-1], "bins": counts, "attention": attention,
            "level": "fail" if counts.get("missing") else "warn" if counts.get("unknown") else "ok"}


def health(source: DashboardSource, stats: dict[str, Any], now: int) -> dict[str, Any]:
    st = source.status()
    cfg = source.cfg
    items: list[dict[str, Any]] = []

    def item(key: str, label: str, level: str, value: Any, note: str = "") -> None:
        items.append({"key": key, "label": label, "level": level, "value": value, "note": note})

    item("journal", "Journal", "ok" if st.get("journal_ok", True) else "fail", bool(st.get("journal_ok", True)),
         "" if st.get("journal_ok", True) else "cannot write: readings are not being acknowledged (disk full?)")
    b = st.get("broker_connected")
    item("broker", "Sensor broker (MQTT)", "ok" if b or b is None else "fail", b,
         "" if b or b is None else "disconnected: no readings arrive")
    item("ledger", f"Ledger ({st.get('ledger_kind', cfg.ledger.kind)})", "ok" if st.get("ledger_connected") else "warn",
         bool(st.get("ledger_connected")), "" if st.get("ledger_connected") else
         f"unreachable; records are kept and anchored later. {st.get('ledger_error', '')}".strip())
    last = stats.get("last_anchor_ms")
    age_s = None if last is None else max(0, (now - int(last)) // 1000)
    late = max(2 * cfg.ledger.min_interval_s, 900)
    backlog = int(stats["unsealed_records"]) + int(stats["unanchored_blocks"])
    lagging = stats["unanchored_blocks"] > 0 and (age_s is None or age_s > late)
    item("backlog", "Backlog", "warn" if lagging else "ok",
         {"unsealed_records": stats["unsealed_records"], "unanchored_blocks": stats["unanchored_blocks"],
          "total": backlog},
         "anchoring is behind" if lagging else "")
    item("last_anchor", "Last anchor", "ok", {"time_ms": last, "age_s": age_s, "block": stats["anchored_block"]})
    c = st.get("clock_synced")
    item("clock", "Clock synchronised", "ok" if c else "warn", bool(c),
         "" if c else "no NTP: record times are marked unsynchronised")
    try:
        d = queries.disk(source.journal_path)
        low = d["free_bytes"] < GiB or d["free_bytes"] < d["total_bytes"] // 10
        item("disk", "Disk free", "warn" if low else "ok", d, "less than 1 GiB or 10 % free" if low else "")
    except OSError as exc:
        item("disk", "Disk free", "warn", None, str(exc))
    return {"gateway": st.get("gateway", cfg.gateway_id), "level": worst([i["level"] for i in items]), "items": items,
            "quarantine": stats["quarantine"], "inbox": st.get("inbox", 0)}
