"""What staff and inspectors read: min/max since the morning reset, MKT, daily excursion summaries.

CDC asks for min/max to be recorded each workday morning and then reset; here the reset
is a record (``minmax_reset``, made by ``MinMax.reset_body``) and, when it is fed back, the
closing period's figures become a derived ``minmax`` body, so the recorded min/max are
exactly those of the readings before the reset in seq order. Mean kinetic temperature
follows USP <1079.2> with dH/R = 10,000 K, each reading weighted by the time it stands
for (until the next reading). Everything returned is integer (milli-°C, ms).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.rules.inventory import Residency
from gateway.rules.records import Outbox, as_int, as_str, record_time
from gateway.rules.units import UnitConfig

DH_R_K = 10_000.0  # activation energy / gas constant: 83.144 kJ/mol / 8.3144 J/(mol K)
ZERO_C_K = 273.15


def mkt_mc(weighted: Iterable[tuple[int, int]]) -> int:
    """MKT of (duration_ms, value_mc) pairs, in milli-°C (rounded half to even).

    T = (dH/R) / -ln(sum t_i exp(-(dH/R)/T_i) / sum t_i). Exponents are shifted by their
    maximum before exp (log-sum-exp) so ultra-cold values do not lose precision.
    """
    pairs = [(d, v) for d, v in weighted if d > 0]
    total = sum(d for d, _ in pairs)
    if total <= 0:
        raise ValueError("MKT needs a positive total duration; got no time-weighted readings")
    exps = [-DH_R_K / (v / 1000.0 + ZERO_C_K) for _, v in pairs]
    top = max(exps)
    log_mean = top + math.log(sum(d * math.exp(x - top) for (d, _), x in zip(pairs, exps)) / total)
    return round((DH_R_K / -log_mean - ZERO_C_K) * 1000.0)


def held_segments(readings: Sequence[tuple[int, int]], start_ms: int,
                  end_ms: int) -> list[tuple[int, int, int]]:
    """(from_ms, to_ms, value) each reading stands for within [start, end): sample-and-hold."""
    rs = sorted(readings, key=lambda r: r[0])
    out = []
    for i, (t, v) in enumerate(rs):
        nxt = rs[i + 1][0] if i + 1 < len(rs) else end_ms
        a, b = max(t, start_ms), min(nxt, end_ms)
        if b > a:
            out.append((a, b, v))
    return out


def mkt_of_readings(readings: Sequence[tuple[int, int]], start_ms: int, end_ms: int) -> int:
    """MKT of (time_ms, value_mc) readings over [start, end), each held until the next."""
    return mkt_mc((b - a, v) for a, b, v in held_segments(readings, start_ms, end_ms))


def _is_temperature(r: Mapping[str, Any]) -> bool:
    return (r.get("type") == "reading" and r.get("kind") == "temperature"
            and r.get("unit", "mC") == "mC")


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def temperature_readings(records: Iterable[Mapping[str, Any]],
                         sensor: str) -> list[tuple[int, int]]:
    out = []
    for r in records:
        t, v = record_time(r), as_int(r.get("value"))
        if (_is_temperature(r) and r.get("sensor") == sensor and t is not None
                and v is not None):
            out.append((t, v))
    return out


def excursion_summary(unit: UnitConfig, records: Iterable[Mapping[str, Any]], start_ms: int,
                      end_ms: int, residency: Iterable[Residency] = ()) -> dict[str, Any]:
    """A unit's day (or any span) as a body to seal: time out of range, excursions, min/max,
    MKT per probe, and the lots that were inside the unit during an excursion.

    Pass the records of the span plus the last reading before it (its value holds into the
    span). An excursion is a continuous run at/below low or at/above high (no delay), on any
    probe; runs crossing the span's edges are cut there.
    """
    recs = list(records)
    probes: dict[str, Any] = {}
    out_all: list[tuple[int, int]] = []
    covered: list[tuple[int, int]] = []
    lo_all: int | None = None
    hi_all: int | None = None
    for p in unit.probes:
        segs = held_segments(temperature_readings(recs, p), start_ms, end_ms)
        if not segs:
            probes[p] = {"covered_ms": 0}
            continue
        outside = _merge((a, b) for a, b, v in segs if v <= unit.low_mc or v >= unit.high_mc)
        lo, hi = min(v for _, _, v in segs), max(v for _, _, v in segs)
        probes[p] = {"covered_ms": sum(b - a for a, b, _ in segs), "min_mc": lo, "max_mc": hi,
                     "mkt_mc": mkt_mc((b - a, v) for a, b, v in segs),
                     "out_of_range_ms": sum(b - a for a, b in outside), "excursions": len(outside)}
        out_all += outside
        covered += [(a, b) for a, b, _ in segs]
        lo_all = lo if lo_all is None else min(lo_all, lo)
        hi_all = hi if hi_all is None else max(hi_all, hi)
    merged = _merge(out_all)
    lots = sorted({(r.gtin, r.lot) for r in residency if r.unit == unit.id
                   for a, b in merged if r.entered_ms < b and (r.left_ms is None or r.left_ms > a)})
    body: dict[str, Any] = {
        "type": "excursion_summary", "id": f"excursions/{unit.id}/{start_ms}", "unit": unit.id,
        "from_ms": start_ms, "to_ms": end_ms, "low_mc": unit.low_mc, "high_mc": unit.high_mc,
        "covered_ms": sum(b - a for a, b in _merge(covered)),
        "out_of_range_ms": sum(b - a for a, b in merged), "excursions": len(merged),
        "probes": probes, "lots": [{"gtin": g, "lot": lot} for g, lot in lots]}
    if lo_all is not None and hi_all is not None:
        body.update(min_mc=lo_all, max_mc=hi_all)
    return body


@dataclass(slots=True)
class ProbeStats:
    current: int
    current_ms: int
    min: int
    min_ms: int
    max: int
    max_ms: int
    since_ms: int

    def as_dict(self) -> dict[str, int]:
        return {"current": self.current, "current_ms": self.current_ms, "min": self.min,
                "min_ms": self.min_ms, "max": self.max, "max_ms": self.max_ms,
                "since_ms": self.since_ms}


class MinMax:
    """Current/min/max per probe since the last reset; ``feed`` every sealed record."""

    def __init__(self, probes: Iterable[str] | None = None) -> None:
        self._only = set(probes) if probes is not None else None
        self._stats: dict[str, ProbeStats] = {}
        self.outbox = Outbox()

    def stats(self) -> dict[str, dict[str, int]]:
        return {p: s.as_dict() for p, s in sorted(self._stats.items())}

    def reset_body(self, now_ms: int, by: str,
                   sensors: Sequence[str] | None = None) -> dict[str, Any]:
        """The reset request to seal (e.g. each workday morning); effective when fed."""
        body: dict[str, Any] = {"type": "minmax_reset", "at_ms": now_ms, "by": by}
        if sensors is not None:
            body["sensors"] = sorted(sensors)
        return body

    def feed(self, record: Mapping[str, Any], now_ms: int) -> list[dict[str, Any]]:
        if not isinstance(record, Mapping):
            return []
        t = record_time(record)
        t = now_ms if t is None else t
        typ = record.get("type")
        if typ == "minmax":
            self.outbox.journaled(record)
        elif typ == "minmax_reset":
            return self._reset(record, t)
        elif _is_temperature(record):
            sensor, v = as_str(record.get("sensor")), as_int(record.get("value"))
            if sensor is None or v is None or (self._only is not None and sensor not in self._only):
                return []
            s = self._stats.get(sensor)
            if s is None:
                self._stats[sensor] = ProbeStats(v, t, v, t, v, t, t)
                return []
            s.current, s.current_ms = v, t
            if v < s.min:
                s.min, s.min_ms = v, t
            if v > s.max:
                s.max, s.max_ms = v, t
        return []

    def _reset(self, record: Mapping[str, Any], t: int) -> list[dict[str, Any]]:
        wanted = record.get("sensors")
        names = [p for p in sorted(self._stats) if not isinstance(wanted, list) or p in wanted]
        seq = as_int(record.get("seq"))
        body: dict[str, Any] = {"type": "minmax", "id": f"minmax/{t if seq is None else seq}",
                                "event": "period", "to_ms": t, "probes": {}}
        if seq is not None:
            body["reset_seq"] = seq
        if (by := as_str(record.get("by"))) is not None:
            body["by"] = by
        for p in names:
            s = self._stats[p]
            body["probes"][p] = s.as_dict()
            # a fresh period starts from the temperature standing now, like a min/max thermometer
            self._stats[p] = ProbeStats(s.current, t, s.current, t, s.current, t, t)
        return [self.outbox.derived(body)]

    def replay(self, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            t = record_time(r) if isinstance(r, Mapping) else None
            self.feed(r, 0 if t is None else t)
        return self.outbox.pending()
