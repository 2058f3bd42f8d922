"""``traceseal export``, ``report`` and ``manifest``: bundles out of the journal, the
per-unit report, and the multi-gateway manifest check over bundles.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.app import config as configmod
from gateway.chain import export
from gateway.chain.export import all_records
from gateway.cli.journal import open_journal
from gateway.core.clock import parse_time_ms
from gateway.rules import Inventory, MinMax, excursion_summary, mkt_of_readings
from gateway.rules.custody.manifest import check_manifest
from ledger_client.files import atomic_writer
from ledger_client.verify import default_checkers, loads_strict


def cmd_export(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    j = open_journal(cfg)
    kw: dict[str, Any] = {"allow_unanchored": args.unanchored, "now_ms": int(dt.datetime.now().timestamp() * 1000)}
    if sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            if done % 5000 == 0 or done == total:
                print(f"\rexporting {done}/{total} records", end="" if done < total else "\n",
                      file=sys.stderr, flush=True)
        kw["progress"] = progress
    else:  # a log or a pipe: a line per 100k records, so long exports still show they move
        def progress_lines(done: int, total: int) -> None:
            if done % 100_000 == 0:
                print(f"exporting {done}/{total} records", file=sys.stderr, flush=True)
        kw["progress"] = progress_lines
    run: Callable[..., Any]  # the selection, called with out= once the destination is open
    if args.seq is not None:
        run = functools.partial(export.export_record, j, args.seq)
    elif args.route:
        run = functools.partial(export.export_route, j, args.route)
    elif args.lot:
        run = functools.partial(export.export_lot, j, cfg.station.units, cfg.station.inventory, args.lot,
                                gtin=args.gtin)
    elif args.sensor:
        if args.from_ is None or args.to is None:
            print("traceseal export: --sensor needs --from and --to", file=sys.stderr)
            return 2
        run = functools.partial(export.export_range, j, args.sensor, parse_time_ms(args.from_), parse_time_ms(args.to))
    else:
        print("traceseal export: give --seq N, --sensor ID --from T --to T, or --lot LOT", file=sys.stderr)
        return 2
    # Streamed (export.write_bundle): flat memory whatever the range. A file goes through
    # atomic_writer: a fresh mkstemp file in the target's folder, renamed over the target once
    # complete, so no planted name is ever opened and a failure leaves the old file as it was.
    # Compact, as json.dumps(separators=(",", ":"), ensure_ascii=False), plus a newline on stdout.
    if args.output and str(args.output) != "-":
        with atomic_writer(args.output) as f:
            bundle = run(out=f, **kw)
        print(f"wrote {args.output}: {bundle['records']} records, {bundle['blocks']} blocks, "
              f"{bundle['anchors']} anchors", file=sys.stderr)
    else:
        run(out=sys.stdout.buffer, **kw)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Min/max since the last reset, MKT and the excursion summary per unit, from the journal."""
    cfg = configmod.load(args.config)
    units = cfg.station.units
    if not units:
        print("traceseal report: no [[units]] configured", file=sys.stderr)
        return 2
    j = open_journal(cfg)
    last = j.next_seq() - 1
    records = [r for _, r in all_records(j, last)] if last >= 0 else []
    end = parse_time_ms(args.to) if args.to else (records[-1]["time_ms"] if records else 0)
    start = parse_time_ms(args.from_) if args.from_ else end - 24 * 3600 * 1000
    mm = MinMax([p for u in units.values() for p in u.probes])
    mm.replay(records)
    inv = Inventory(units, cfg.station.inventory)
    inv.replay(records)
    out: dict[str, Any] = {"from_ms": start, "to_ms": end, "minmax_since_reset": mm.stats(), "units": {}}
    for uid, unit in units.items():
        span = [r for r in records if r.get("time_ms", 0) <= end]
        summary = excursion_summary(unit, span, start, end, inv.residency(uid))
        mkt = {}
        for p in unit.probes:
            pts = [(r["time_ms"], r["value"]) for r in span if r.get("sensor") == p and r.get("kind") == "temperature"
                   and r.get("type") == "reading"]
            if pts:
                mkt[p] = mkt_of_readings(pts, start, end)
        out["units"][uid] = {"summary": summary, "mkt_mc": mkt}
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print(f"report {dt.datetime.fromtimestamp(start / 1000, dt.UTC):%Y-%m-%d %H:%M} → "
          f"{dt.datetime.fromtimestamp(end / 1000, dt.UTC):%Y-%m-%d %H:%M} UTC")
    for probe, s in out["minmax_since_reset"].items():
        print(f"  {probe}: " + ", ".join(f"{k} {v}" for k, v in s.items()))
    for uid, u in out["units"].items():
        print(f"unit {uid}: MKT " + ", ".join(f"{p} {v / 1000:.3f} °C" for p, v in u["mkt_mc"].items()))
        print("  " + json.dumps(u["summary"], sort_keys=True))
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    """Verify route bundles from several gateways (each with its own pinned key) and reconcile."""
    keys = {}
    for item in args.key:
        gw, _, hexkey = item.partition("=")
        if not hexkey:
            print(f"traceseal manifest: --key wants GATEWAY=HEX, got {item!r}", file=sys.stderr)
            return 2
        keys[gw] = hexkey.lower()
    try:
        bundles = [loads_strict(p.read_text()) for p in args.bundles]
    except (OSError, ValueError) as exc:
        print(f"traceseal manifest: cannot read a bundle: {exc}", file=sys.stderr)
        return 2
    as_of = parse_time_ms(args.as_of) if args.as_of else None
    report = check_manifest(bundles, keys, as_of_ms=as_of, checkers=default_checkers(rpc_url=args.rpc))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=str))
    else:
        for g in report["gateways"]:
            mark = "VERIFIED" if g["verified"] else "FAILED"
            print(f"bundle {g['bundle']} gateway {g['gateway']}: {mark}, {g['custody_records']} custody records")
            for f in g["failures"][:10]:
                print(f"    ✗ {f}")
        for a in report["findings"]["alarms"]:
            if a.get("state") == "raised":
                print(f"ALARM {a.get('alarm')} route {a.get('route')} bin {a.get('grai') or a.get('sscc')} "
                      f"at {a.get('stage', a.get('last_stage'))}: value {a.get('value')} "
                      f"threshold {a.get('threshold')}")
        print("MANIFEST OK" if report["ok"] else "MANIFEST NOT OK")
    verified = all(g["verified"] for g in report["gateways"])
    return 0 if report["ok"] or (verified and not args.strict) else 1


def add_export_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal export``."""
    e = sub.add_parser("export", help="write a traceseal-bundle/1 for a record or a sensor's range")
    e.add_argument("-c", "--config", type=Path, required=True)
    e.add_argument("--seq", type=int, help="one record by gateway sequence number")
    e.add_argument("--sensor", help="a sensor's records over --from/--to")
    e.add_argument("--from", dest="from_", help="range start: Unix ms or ISO 8601")
    e.add_argument("--to", help="range end: Unix ms or ISO 8601")
    e.add_argument("--route", help="a waste route (manifest number): its custody events and their evidence")
    e.add_argument("--lot", help="a vaccine lot: its scans, and every reading and alarm of the units it sat in")
    e.add_argument("--gtin", help="with --lot: only this product's lot")
    e.add_argument("-o", "--output", type=Path)
    e.add_argument("--unanchored", action="store_true", help="export even when no anchor covers it yet")
    e.set_defaults(fn=cmd_export)


def add_manifest_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal manifest``."""
    mf = sub.add_parser("manifest", help="verify route bundles of several gateways and reconcile the bins")
    mf.add_argument("bundles", nargs="+", type=Path)
    mf.add_argument("--key", action="append", default=[], help="GATEWAY=HEX public key (repeat per gateway)")
    mf.add_argument("--rpc", help="EVM node for EVM anchors")
    mf.add_argument("--as-of", help="judge missing bins at this time (default: the latest handover)")
    mf.add_argument("--strict", action="store_true",
                    help="exit 1 on reconciliation alarms too, not only on failed verification")
    mf.add_argument("--json", action="store_true")
    mf.set_defaults(fn=cmd_manifest)


def add_report_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal report``."""
    rp = sub.add_parser("report", help="min/max since reset, MKT and excursions per unit")
    rp.add_argument("-c", "--config", type=Path, required=True)
    rp.add_argument("--from", dest="from_", help="start (default: 24 h before --to)")
    rp.add_argument("--to", help="end (default: the last record)")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(fn=cmd_report)
