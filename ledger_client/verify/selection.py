"""Step 9: the records are what the selection says (sensor, range, lot, route) and the blocks
cover the whole selected range, so gaps show. Only reads what the earlier steps parsed."""

from __future__ import annotations

from typing import Any

from .checks import _is_int
from .report import StepResult


def check_selection(sel: Any, recs: list[tuple[int, int, dict[str, Any]]], headers: dict[int, dict[str, Any]],
                     order: list[int], s9: StepResult) -> None:
    if not isinstance(sel, dict) or "type" not in sel:
        s9.failures.append(f"selection {sel!r} has no type")
        return
    kind = sel["type"]
    s9.checked = len(recs)
    if kind == "record":
        if not _is_int(sel.get("seq")) or [r[0] for r in recs] != [sel.get("seq")]:
            s9.failures.append(f"selection is record seq {sel.get('seq')}, bundle has seqs {[r[0] for r in recs][:5]}")
        return
    if kind == "range":
        lo, hi, sensor = sel.get("from_ms"), sel.get("to_ms"), sel.get("sensor")
        if not (_is_int(lo) and _is_int(hi) and isinstance(sensor, str)):
            s9.failures.append("range selection needs integer from_ms/to_ms and a sensor, "
                               f"got {lo!r}, {hi!r}, {sensor!r}")
            return
        for seq, _, rec in recs:
            if sensor is not None and rec.get("sensor") != sensor:
                s9.failures.append(f"record seq {seq}: sensor {rec.get('sensor')!r} is not the selected {sensor!r}")
            t = rec.get("time_ms")
            if isinstance(lo, int) and isinstance(hi, int) and isinstance(t, int) and not lo <= t <= hi:
                s9.failures.append(f"record seq {seq}: time {t} outside selected range {lo}..{hi}")
        if not order:
            s9.failures.append("range bundle has no blocks")
            return
        first, last = headers[order[0]], headers[order[-1]]
        if isinstance(lo, int) and order[0] != 0 and first.get("first_time_ms", lo) > lo:
            s9.failures.append(f"first block {order[0]} starts at {first.get('first_time_ms')}, "
                               f"after the range start {lo}: earlier blocks are missing")
        if isinstance(hi, int) and last.get("last_time_ms", hi) < hi:
            if sel.get("open_end") is True:
                s9.notes.append(f"open end: the exporter says nothing after block {order[-1]} "
                                f"({last.get('last_time_ms')}) was anchored at export time; this claim is not signed")
            else:
                s9.failures.append(f"last block {order[-1]} ends at {last.get('last_time_ms')}, "
                                   f"before the range end {hi}: later blocks are missing")
        return
    if kind == "lot":
        _check_lot(sel, recs, headers, order, s9)
        return
    if kind == "route":
        _check_route(sel, recs, s9)
        return
    if kind == "records":
        s9.notes.append(f"{kind} selection: {sel.get('id', '')}")
        return
    s9.failures.append(f"unknown selection type {kind!r}")


def _check_lot(sel: dict[str, Any], recs: list[tuple[int, int, dict[str, Any]]], headers: dict[int, dict[str, Any]],
               order: list[int], s9: StepResult) -> None:
    """A lot bundle holds the lot's own scans/movements, and per residency window the unit's
    sensor readings and unit alarms inside that window; the blocks span every window."""
    lot, windows = sel.get("lot"), sel.get("windows")
    if not isinstance(lot, str) or not isinstance(windows, list):
        s9.failures.append(f"lot selection needs a lot string and a windows list, got {lot!r}, {windows!r}")
        return
    for i, w in enumerate(windows):
        if not (isinstance(w, dict) and isinstance(w.get("unit"), str) and _is_int(w.get("from_ms"))
                and _is_int(w.get("to_ms")) and isinstance(w.get("sensors"), list)):
            s9.failures.append(f"lot window {i} is malformed: {w!r}")
            return
    # The windows are the exporter's claim; the signed stock records in the bundle must back
    # each one: an "in" movement where it starts, and an "out" leaving no stock where it ends.
    stock = [r for _, _, r in recs if r.get("type") == "stock" and r.get("lot") == lot]
    for i, w in enumerate(windows):
        if not any(r.get("event") == "in" and r.get("unit") == w["unit"] and _is_int(r.get("at_ms"))
                   and r.get("at_ms") == w["from_ms"] for r in stock):
            s9.failures.append(f"lot window {i} ({w['unit']} from {w['from_ms']}) has no signed stock-in record")
        if w.get("open") is True:
            if order and headers[order[-1]].get("last_time_ms", 0) > w["to_ms"]:
                s9.failures.append(f"lot window {i} is open but ends at {w['to_ms']}, before the bundle's last block")
        elif not any(r.get("event") in ("out", "discard") and r.get("unit") == w["unit"]
                     and _is_int(r.get("at_ms")) and r.get("at_ms") == w["to_ms"]
                     and _is_int(r.get("stock_after")) and r.get("stock_after") == 0 for r in stock):
            s9.failures.append(f"lot window {i} ({w['unit']} to {w['to_ms']}) "
                               "has no signed stock-out record emptying it")
    for seq, _, rec in recs:
        attrs = rec.get("attrs")
        attrs = attrs if isinstance(attrs, dict) else {}
        if rec.get("lot") == lot or attrs.get("lot") == lot:
            continue
        t = rec.get("time_ms")
        sensor = rec.get("sensor")
        if any(w["from_ms"] <= t <= w["to_ms"] and ((isinstance(sensor, str) and sensor in w["sensors"])
               or (rec.get("type") == "alarm" and rec.get("unit") == w["unit"])) for w in windows):
            continue
        s9.failures.append(f"record seq {seq} is neither about lot {lot!r} nor inside one of its unit windows")
    if windows and order:
        lo, hi = min(w["from_ms"] for w in windows), max(w["to_ms"] for w in windows)
        first, last = headers[order[0]], headers[order[-1]]
        if order[0] != 0 and first.get("first_time_ms", lo) > lo:
            s9.failures.append(f"first block {order[0]} starts at {first.get('first_time_ms')}, "
                               f"after the lot's first window {lo}: earlier blocks are missing")
        if last.get("last_time_ms", hi) < hi:
            s9.failures.append(f"last block {order[-1]} ends at {last.get('last_time_ms')}, "
                               f"before the lot's last window ends {hi}: later blocks are missing")
    s9.notes.append(f"lot {lot}: {len(windows)} residency window(s) in unit(s) {sorted({w['unit'] for w in windows})}")


def _check_route(sel: dict[str, Any], recs: list[tuple[int, int, dict[str, Any]]], s9: StepResult) -> None:
    """A route bundle holds records naming the route, and only the sessions and readings
    those records cite (by session id and by badge/scan/weight seq)."""
    route = sel.get("id")
    if not isinstance(route, str):
        s9.failures.append(f"route selection needs an id string, got {route!r}")
        return
    own = [r for _, _, r in recs if r.get("route") == route]
    cited_sessions = {s for r in own if isinstance(s := r.get("session"), str)}
    sessions = [r for _, _, r in recs if r.get("type") == "custody_session" and isinstance(r.get("id"), str)
                and r["id"] in cited_sessions]
    cited_seqs = {v for r in own + sessions for k in ("scan_seq", "weight_seq", "badge_seq") if _is_int(v := r.get(k))}
    for seq, _, rec in recs:
        if rec.get("route") == route:
            continue
        if rec.get("type") == "custody_session" and isinstance(rec.get("id"), str) and rec["id"] in cited_sessions:
            continue
        if seq in cited_seqs:
            continue
        s9.failures.append(f"record seq {seq} ({rec.get('type')}) neither names route {route!r} "
                           "nor is cited by its records")
    s9.notes.append(f"route {route}: {sum(1 for r in own if r.get('type') == 'custody')} custody records")

