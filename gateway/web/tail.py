"""Follow the journal by sequence number for what has no index: stock, custody, type counts.

Stock levels and custody handovers are spread over the whole records table, and "all
``stock`` records" is a full scan. Instead, this reads each record once, in seq order,
in chunks by primary key (cheap), and keeps the little it needs: the last ``stock_after``
per (unit, GTIN, lot) -- the signed stock records ARE the stock, so no rule is re-run here
-- the last two days of custody events, a ``Reconciler`` fed the custody records (its
bins' statuses are the reconciliation state; its alarms reach the page via the gateway's
own alarm book), and how many records of each type exist (``/metrics``).

The first refresh after start reads the whole journal once, as the station's replay does;
later refreshes read only what is new. The caller's thread does the work under a lock:
no extra thread, and nothing runs while nobody looks.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.journal import reads
from gateway.journal.reads import open_readonly
from gateway.rules.custody import ReconcileConfig, Reconciler
from gateway.rules.custody.reconcile import KINDS as RECONCILE_KINDS
from gateway.rules.records import DAY_MS

WANTED = ("stock", "custody", "custody_notice", "custody_refusal", "alarm")
CUSTODY_TYPES = ("custody", "custody_notice", "custody_refusal")
CHUNK = 20_000


@dataclass(frozen=True, slots=True)
class Lot:
    unit: str
    gtin: str
    lot: str
    qty: int
    expiry: str | None
    at_ms: int


class JournalTail:
    def __init__(self, path: Path, *, reconcile: ReconcileConfig | None = None,
                 keep_custody_ms: int = 2 * DAY_MS) -> None:
        self.path = Path(path)
        self.keep_custody_ms = keep_custody_ms
        self._lock = threading.Lock()
        self._next = 0
        self.type_counts: Counter[str] = Counter()
        self._stock: dict[tuple[str, str, str], Lot] = {}
        self._custody: list[dict[str, Any]] = []
        self._reconciler = Reconciler(reconcile) if reconcile is not None else None
        self._last_time = 0

    def refresh(self) -> int:
        """Read what was committed since the last call; returns the next seq to read."""
        with self._lock:
            if not self.path.exists():
                return self._next
            with open_readonly(self.path) as db:
                top = reads.max_seq(db)
                while top is not None and self._next <= top:
                    hi = min(self._next + CHUNK - 1, top)
                    for typ, n in reads.type_counts(db, self._next, hi):
                        self.type_counts[typ] += n
                    for _seq, t, typ, body in reads.records_of_types(db, self._next, hi, WANTED):
                        self._take(t, typ, body)
                    self._next = hi + 1
            return self._next

    def _take(self, t: int, typ: str, raw: bytes) -> None:
        try:
            rec = json.loads(raw)
        except ValueError:
            return
        if not isinstance(rec, dict):
            return
        self._last_time = max(self._last_time, t)
        if typ == "stock":
            unit, gtin, lot, after = rec.get("unit"), rec.get("gtin"), rec.get("lot", ""), rec.get("stock_after")
            if not (isinstance(unit, str) and isinstance(gtin, str) and isinstance(lot, str)
                    and isinstance(after, int)):
                return
            key = (unit, gtin, lot)
            if after <= 0:
                self._stock.pop(key, None)
            else:
                exp = rec.get("expiry")
                prev = self._stock.get(key)
                self._stock[key] = Lot(unit, gtin, lot, after, exp if isinstance(exp, str) else
                                       (prev.expiry if prev else None), t)
        elif typ in CUSTODY_TYPES:
            self._custody.append(rec)
            horizon = self._last_time - self.keep_custody_ms
            if len(self._custody) > 5000 or (self._custody and self._custody[0].get("time_ms", 0) < horizon):
                self._custody = [r for r in self._custody if r.get("time_ms", 0) >= horizon][-5000:]
        if self._reconciler is not None and (
                typ == "custody" or (typ == "alarm" and rec.get("alarm") in RECONCILE_KINDS)):
            self._reconciler.feed(rec, t)

    # -- views (call refresh() first) ------------------------------------------------------
    def stock(self) -> list[Lot]:
        with self._lock:
            return sorted(self._stock.values(), key=lambda x: (x.unit, x.expiry or "9999", x.gtin, x.lot))

    def custody_since(self, from_ms: int) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self._custody if int(r.get("time_ms", 0)) >= from_ms]

    def reconciliation(self, now_ms: int) -> list[dict[str, Any]] | None:
        """Each bin this gateway saw: route, bin, status (in-transit | delivered | missing |
        unknown) and its stages; None when custody is not configured."""
        if self._reconciler is None:
            return None
        with self._lock:
            self._reconciler.tick(now_ms)  # a bin becomes "missing" by time alone
            return self._reconciler.views()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.type_counts)
