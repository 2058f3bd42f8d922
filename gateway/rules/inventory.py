"""Vaccine stock per unit from GS1 scans: in, out, discard; expiry and stock-level warnings.

A scan's direction comes from a dedicated scanner (``scanner_in``/``scanner_out`` of the
unit), or, for a unit's ``scanners``, from the scanner's mode, set by a command barcode
(GS1-128 with an internal AI, e.g. ``(91)TS-MODE-OUT``, which the GS1 adapter passes; or
``attrs["text"]``) or by a sealed ``inventory_mode`` record (a mode button: see
``mode_body``). Expired packs scanned in or out are rejected with an ``expired_scan`` alarm
(no stock moves); ``discard`` is how expired stock leaves. Lot residency intervals (when
each lot entered and left each unit) feed lot-exposure bundles and excursion summaries.

Same feed/replay contract as the alarm engine: state comes only from records; derived
bodies (``stock`` movements, ``alarm`` warnings) are deduplicated through the outbox.
Dates are calendar days at ``utc_offset_minutes``; a pack is usable through its expiry day.

Bodies: ``stock`` {id "stock/<scan seq>", event in|out|discard, unit, scanner, gtin, lot,
qty, stock_after, scan_seq, at_ms, expiry?, serial?, short? (qty not found in stock)};
``alarm`` (lifecycle schema) for expired_scan (raised+cleared at once), expiry_soon,
expired_stock (unit, gtin, lot; value days left, value_unit "d"), low_stock and
out_of_stock (gtin; value stock count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.core.errors import ConfigError
from gateway.rules.lifecycle import Alarm, AlarmBook, Key, alarm_key
from gateway.rules.records import DAY_MS, Outbox, as_int, as_str, record_time
from gateway.rules.units import UnitConfig

MODES = ("in", "out", "discard")
KINDS = ("expiry_soon", "expired_stock", "low_stock", "out_of_stock")
SEVERITY = {"expiry_soon": "warning", "expired_stock": "alarm", "low_stock": "warning",
            "out_of_stock": "warning"}
_EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class Product:
    gtin: str
    name: str = ""
    low_stock: int = 0  # warn when the station holds this many packs or fewer


@dataclass(frozen=True, slots=True)
class InventoryConfig:
    expiry_warn_days: int = 30
    mode_in_code: str = "TS-MODE-IN"
    mode_out_code: str = "TS-MODE-OUT"
    mode_discard_code: str = "TS-MODE-DISCARD"
    utc_offset_minutes: int = 0
    residency_keep_days: int = 400  # closed residency intervals kept in memory (journal has all)
    products: Mapping[str, Product] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Residency:
    unit: str
    gtin: str
    lot: str
    entered_ms: int
    left_ms: int | None  # None: still inside


def parse_inventory(raw: Any) -> InventoryConfig:
    """``[inventory]`` (with ``[[inventory.products]]``) → config; ConfigError names the key."""
    if raw is None:
        return InventoryConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError("inventory", f"expected a table, got {type(raw).__name__}")
    base = InventoryConfig()
    vals: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "products":
            continue
        if k not in ("expiry_warn_days", "mode_in_code", "mode_out_code", "mode_discard_code",
                     "utc_offset_minutes", "residency_keep_days"):
            raise ConfigError(f"inventory.{k}", "unknown key")
        want = type(getattr(base, k))
        if not isinstance(v, want) or isinstance(v, bool) or (want is str and not v):
            what = "a non-empty string" if want is str else "an integer"
            raise ConfigError(f"inventory.{k}", f"expected {what}, got {v!r}")
        if want is int and k != "utc_offset_minutes" and v < 0:
            raise ConfigError(f"inventory.{k}", f"must be >= 0, got {v}")
        vals[k] = v
    products: dict[str, Product] = {}
    for i, p in enumerate(raw.get("products", [])):
        where = f"inventory.products[{i}]"
        if not isinstance(p, Mapping):
            raise ConfigError(where, "expected a table")
        for k in p:
            if k not in ("gtin", "name", "low_stock"):
                raise ConfigError(f"{where}.{k}", "unknown key")
        gtin, low = p.get("gtin"), p.get("low_stock", 0)
        if not isinstance(gtin, str) or len(gtin) != 14 or not gtin.isdigit():
            raise ConfigError(f"{where}.gtin", f"expected 14 digits (GTIN-14), got {gtin!r}")
        if not isinstance(low, int) or isinstance(low, bool) or low < 0:
            raise ConfigError(f"{where}.low_stock", f"expected an integer >= 0, got {low!r}")
        if gtin in products:
            raise ConfigError(f"{where}.gtin", f"duplicate product {gtin}")
        products[gtin] = Product(gtin, str(p.get("name", "")), low)
    return InventoryConfig(**vals, products=products)


def expiry_day(text: Any) -> int | None:
    """ISO date → days since 1970-01-01; None if absent or not a date."""
    if not isinstance(text, str):
        return None
    try:
        return (dt.date.fromisoformat(text) - _EPOCH).days
    except ValueError:
        return None


Lot = tuple[str, str, str]  # (unit, gtin, lot)


class Inventory:
    """``feed`` every sealed record in seq order; ``tick`` so dates roll over."""

    def __init__(self, units: Mapping[str, UnitConfig],
                 cfg: InventoryConfig = InventoryConfig()) -> None:
        self.cfg = cfg
        self._offset_ms = cfg.utc_offset_minutes * 60_000
        self._scanners: dict[str, tuple[str, str | None]] = {}  # scanner -> (unit, fixed mode)
        for u in units.values():
            self._scanners.update({s: (u.id, None) for s in u.scanners})
            if u.scanner_in:
                self._scanners[u.scanner_in] = (u.id, "in")
            if u.scanner_out:
                self._scanners[u.scanner_out] = (u.id, "out")
        self._codes = {cfg.mode_in_code: "in", cfg.mode_out_code: "out",
                       cfg.mode_discard_code: "discard"}
        self._mode: dict[str, str] = {}
        self._stock: dict[Lot, int] = {}
        self._expiry: dict[Lot, int] = {}
        self._open: dict[Lot, int] = {}
        self._closed: list[Residency] = []
        self.book = AlarmBook()
        self.outbox = Outbox()
        self._now: int | None = None
        self._out: list[dict[str, Any]] = []

    # -- queries --------------------------------------------------------------------------
    def stock(self, unit: str | None = None) -> dict[Lot, int]:
        return {k: q for k, q in sorted(self._stock.items()) if unit in (None, k[0])}

    def product_stock(self, gtin: str) -> int:
        return sum(q for (_, g, _), q in self._stock.items() if g == gtin)

    def mode(self, scanner: str) -> str:
        fixed = self._scanners.get(scanner, ("", None))[1]
        return fixed or self._mode.get(scanner, "in")

    def residency(self, unit: str | None = None) -> list[Residency]:
        rs = self._closed + [Residency(*k, t, None) for k, t in self._open.items()]
        return sorted((r for r in rs if unit in (None, r.unit)),
                      key=lambda r: (r.entered_ms, r.gtin, r.lot))

    def lots_present(self, unit: str, start_ms: int, end_ms: int) -> list[tuple[str, str]]:
        return sorted({(r.gtin, r.lot) for r in self.residency(unit)
                       if r.entered_ms < end_ms and (r.left_ms is None or r.left_ms > start_ms)})

    def active(self) -> list[dict[str, Any]]:
        return self.book.views()

    # -- inputs ---------------------------------------------------------------------------
    def mode_body(self, scanner: str, mode: str, by: str) -> dict[str, Any]:
        """Body to seal when a mode button or switch changes; effective when fed."""
        if mode not in MODES:
            raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        return {"type": "inventory_mode", "scanner": scanner, "mode": mode, "by": by}

    def feed(self, record: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
        self._out = []
        if not isinstance(record, Mapping):
            return []
        t = record_time(record)
        t = now_ms if t is None else t
        changed = self._now is None  # the first record sets the initial stock levels
        if self._now is None:
            self._now = t
        t = max(t, self._now)  # time never runs backwards here either
        self._advance(t)
        typ = record.get("type")
        if typ in ("alarm", "stock"):
            ours = self.outbox.journaled(record)
            if not ours and typ == "alarm" and record.get("state") == "acknowledged":
                self.book.apply(record, t)  # lets cleared warnings close
        elif typ == "inventory_mode":
            scanner, mode = as_str(record.get("scanner")), record.get("mode")
            if scanner in self._scanners and mode in MODES:
                self._mode[scanner] = str(mode)
        elif typ == "reading" and record.get("kind") == "scan":
            self._scan(record, t)
            changed = True
        if changed:  # levels change only with stock (here) or with dates (in _advance)
            self._evaluate(t)
        return self._out

    def tick(self, now_ms: int) -> list[dict[str, Any]]:
        self._out = []
        if self._now is not None:
            before = self._now
            self._advance(now_ms)
            if not self._out:  # nothing journaled: a record the wall clock stepped back behind
                self._now = before  # this tick is taken at its own time, as a replay takes it
        return self._out

    def replay(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            t = record_time(r) if isinstance(r, Mapping) else None
            self.feed(r, 0 if t is None else t)
        self._out = []
        return self.outbox.pending()

    # -- internals ------------------------------------------------------------------------
    def _emit(self, body: dict[str, Any]) -> None:
        self._out.append(self.outbox.derived(body))

    def _day(self, t: int) -> int:
        return (t + self._offset_ms) // DAY_MS

    def _midnight(self, day: int) -> int:
        return day * DAY_MS - self._offset_ms

    def _scan(self, rec: Mapping[str, Any], t: int) -> None:
        scanner, attrs, seq = as_str(rec.get("sensor")), rec.get("attrs"), as_int(rec.get("seq"))
        if scanner not in self._scanners or not isinstance(attrs, Mapping) or seq is None:
            return
        unit, fixed = self._scanners[scanner]
        ai = attrs.get("ai")
        ais: Mapping[Any, Any] = ai if isinstance(ai, Mapping) else {}
        internal = [v for k, v in ais.items() if isinstance(k, str) and k[:1] == "9"]  # AI 90-99
        texts = [attrs.get("text"), *internal]
        for text in texts:
            if isinstance(text, str) and text in self._codes:
                if fixed is None:
                    self._mode[scanner] = self._codes[text]
                return
        gtin, lot = as_str(attrs.get("gtin")), as_str(attrs.get("lot")) or ""
        if gtin is None:
            return
        mode, exp = self.mode(scanner), expiry_day(attrs.get("expiry"))
        count = attrs.get("count")
        qty = 1  # a pack; AI (37) "count" if the label carries one
        if isinstance(count, str) and count.isascii() and count.isdigit():
            qty = int(count) if 0 < int(count) <= 10_000 else 1
        subject = {"unit": unit, "gtin": gtin, "lot": lot}
        if exp is not None and exp < self._day(t) and mode != "discard":
            a = Alarm(f"expired_scan/{unit}/{seq}", "expired_scan", "alarm", subject, t, t,
                      exp - self._day(t), 0, "d",
                      {"expiry": str(attrs["expiry"]), "direction": mode, "scanner": scanner,
                       "scan_seq": seq})
            self._emit(self.book.open(a))
            self._emit(self.book.clear(a, t, None))
            return
        key: Lot = (unit, gtin, lot)
        have = self._stock.get(key, 0)
        moved = qty if mode == "in" else min(qty, have)
        after = have + moved if mode == "in" else have - moved
        body: dict[str, Any] = {"type": "stock", "id": f"stock/{seq}", "event": mode, "unit": unit,
                                "scanner": scanner, "gtin": gtin, "lot": lot, "qty": qty,
                                "stock_after": after, "scan_seq": seq, "at_ms": t}
        if exp is not None:
            body["expiry"] = str(attrs["expiry"])
            self._expiry[key] = exp
        if (serial := as_str(attrs.get("serial"))) is not None:
            body["serial"] = serial
        if moved < qty and mode != "in":
            body["short"] = qty - moved
        self._emit(body)
        self._set_stock(key, after, t)

    def _set_stock(self, key: Lot, qty: int, t: int) -> None:
        had = self._stock.get(key, 0)
        if qty > 0:
            self._stock[key] = qty
            if had == 0:
                self._open[key] = t
            return
        self._stock.pop(key, None)
        self._expiry.pop(key, None)
        if key in self._open:
            self._closed.append(Residency(*key, self._open.pop(key), t))
            horizon = t - self.cfg.residency_keep_days * DAY_MS
            self._closed = [r for r in self._closed if r.left_ms is None or r.left_ms >= horizon]

    def _desired(self, t: int) -> dict[Key, tuple[dict[str, str], int, int, str]]:
        """Warnings that should be present at ``t``: key -> (subject, value, threshold, unit)."""
        want = {}
        for gtin, p in self.cfg.products.items():
            total = self.product_stock(gtin)
            kind = "out_of_stock" if total == 0 else "low_stock" if total <= p.low_stock else None
            if kind:
                want[alarm_key(kind, {"gtin": gtin})] = ({"gtin": gtin}, total, p.low_stock, "")
        today = self._day(t)
        for (unit, gtin, lot), exp in self._expiry.items():
            left = exp - today
            soon = left <= self.cfg.expiry_warn_days
            kind = "expired_stock" if left < 0 else "expiry_soon" if soon else None
            if kind:
                subject = {"unit": unit, "gtin": gtin, "lot": lot}
                limit = 0 if kind == "expired_stock" else self.cfg.expiry_warn_days
                want[alarm_key(kind, subject)] = (subject, left, limit, "d")
        return want

    def _evaluate(self, t: int) -> None:
        want = self._desired(t)
        for key, ident in list(self.book.present.items()):
            old = self.book.alarms[ident]
            if old.alarm in KINDS and key not in want:
                self._emit(self.book.clear(old, t, None))
        for key, (subject, value, limit, vu) in want.items():
            found = self.book.find(key)
            if found is not None:
                found.value = value
                continue
            base = "/".join([key[0], *subject.values(), str(t)])
            ident, n = base, 1
            while ident in self.book.alarms:
                n, ident = n + 1, f"{base}.{n + 1}"
            a = Alarm(ident, key[0], SEVERITY[key[0]], subject, t, t, value, limit, vu)
            self._emit(self.book.open(a))

    def _next_boundary(self) -> int | None:
        assert self._now is not None
        cands = []
        for exp in self._expiry.values():
            for day in (exp - self.cfg.expiry_warn_days, exp + 1):
                if (m := self._midnight(day)) > self._now:
                    cands.append(m)
        return min(cands, default=None)

    def _advance(self, t: int) -> None:
        assert self._now is not None
        while (b := self._next_boundary()) is not None and b <= t:
            self._now = b
            self._evaluate(b)
        self._now = max(self._now, t)
