"""``traceseal``: keygen | run | status | export | verify.

Exit codes: 0 success; 1 verification failed (verify) or the gateway stopped on an error;
2 bad usage or configuration (the message names the key); 3 a runtime error (I/O, journal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.app import config as configmod
from gateway.app import doctor
from gateway.app.service import Gateway
from gateway.archive.cli import add_archive_parser
from gateway.chain import export, retention
from gateway.chain.export import all_records
from gateway.chain.retention import status as retention_status
from gateway.cli import rotate as keyrotation
from gateway.core.clock import SystemClock, parse_time_ms
from gateway.app.config import check_files, evm_key_file, named_files
from gateway.core.errors import ConfigError
from gateway.forward.state import upstream_stats
from gateway.journal import Journal
from gateway.rules import Inventory, MinMax, excursion_summary, mkt_of_readings
from gateway.rules.custody.manifest import check_manifest
from gateway.station import station_floor
from gateway.web.auth import write_token
from ledger_client import cli as lcli
from ledger_client.errors import KeyFileError, TracesealError
from ledger_client.files import atomic_writer
from ledger_client.keys import load_private_key, public_hex, write_private_key
from ledger_client.verify import default_checkers, loads_strict


def cmd_keygen(args: argparse.Namespace) -> int:
    paths: list[Path] = []
    if args.config:
        cfg = configmod.load(args.config)
        paths.append(cfg.key_file)
        if cfg.ledger.kind == "local":
            paths.append(cfg.ledger.key_file)
        else:
            from ledger_client.evm import (  # lazy: eth_account is heavy
                generate_eth_key,
                load_eth_key,
            )

            eth = evm_key_file(cfg.ledger)
            if eth.exists():
                print(f"{eth}: exists, kept (Ethereum address {load_eth_key(eth).address}; fund it to pay for anchors)")
            else:
                print(f"{eth}: new Ethereum key, mode 0600 (address {generate_eth_key(eth)}; fund it to pay for anchors)")
    if args.out:
        paths.append(args.out)
    if not paths:
        print("traceseal keygen: give a key path or -c CONFIG", file=sys.stderr)
        return 2
    for p in paths:
        if p.exists() and not args.force:
            key = load_private_key(p)
            print(f"{p}: exists, kept (public key {public_hex(key)})")
            continue
        key = write_private_key(p, overwrite=args.force)
        print(f"{p}: new Ed25519 key, mode 0600 (public key {public_hex(key)})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    check_files(named_files(cfg))  # every key, password, certificate: one line if unusable
    gw = Gateway(cfg)
    gw.run_forever()
    return 0


def _journal(cfg: configmod.Config) -> Any:
    if not cfg.journal.path.exists():
        raise ConfigError("journal.path", f"{cfg.journal.path} does not exist (has the gateway run?)")
    return Journal(cfg.journal.path, readonly=True)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    j = _journal(cfg)
    s = j.stats()
    s["retention"] = {"days": cfg.retention.days, **retention_status(j), "clock_synced": _clock_synced()}
    s["gateway"] = j.meta("gateway_id")
    s["public_key"], s["key_rotations"] = j.current_key(), len(j.key_rotations())
    if cfg.upstream.enabled:
        s["upstream"] = upstream_stats(j, int(dt.datetime.now().timestamp() * 1000))
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    last = s["last_anchor_ms"]
    print(f"gateway        {s['gateway']}")
    print(f"key            {s['public_key']}" + (f" (rotated {s['key_rotations']}×)" if s["key_rotations"] else ""))
    print(f"records        {s['records']} (next seq {s['next_seq']}, {s['unsealed_records']} not yet sealed)")
    print(f"blocks         {s['blocks']} sealed, {s['unanchored_blocks']} not yet anchored")
    print(f"last anchor    block {s['anchored_block']}" + (f" at {dt.datetime.fromtimestamp(last / 1000, dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if last else ""))
    print(f"outbox         {s['outbox_open']} open")
    q = s["quarantine"]
    print(f"quarantined    {sum(q.values())}" + (" (" + ", ".join(f"{k}: {v}" for k, v in q.items()) + ")" if q else ""))
    dup = s["counters"].get("duplicate", 0)
    if dup:
        print(f"duplicates     {dup} redeliveries recognised and kept once")
    _print_retention(cfg, j)
    if "upstream" in s:
        _print_upstream(cfg, s["upstream"])
    return 0


def _print_retention(cfg: configmod.Config, j: Any) -> None:
    r = retention.status(j)
    days = f"days={cfg.retention.days}" if cfg.retention.days else "off (records kept forever)"
    # the service prunes nothing while the clock is unsynchronised: say so rather than look idle
    waiting = "; waiting for a synchronised clock" if cfg.retention.days and not _clock_synced() else ""
    if r["pruned_blocks"] == 0:
        print(f"retention      {days}; nothing pruned{waiting}")
        return
    print(f"retention      {days}; {r['pruned_records']} records of blocks 0..{r['pruned_through_block']} pruned "
          f"(seq ≤ {r['pruned_through_seq']}), last run {_utc(r['last_prune_ms'])}{waiting}")


def _clock_synced() -> bool:
    return SystemClock().synced()


def _utc(ms: int | None) -> str:
    return "never" if ms is None else f"{dt.datetime.fromtimestamp(ms / 1000, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def cmd_prune(args: argparse.Namespace) -> int:
    """Delete the records retention allows (old AND anchored AND, when forwarding, archived)."""
    cfg = configmod.load(args.config)
    if not cfg.journal.path.exists():
        raise ConfigError("journal.path", f"{cfg.journal.path} does not exist (has the gateway run?)")
    clock = SystemClock()
    if not args.dry_run and not args.trust_clock and not clock.synced():
        print("traceseal prune: the system clock is not NTP-synchronised, so it cannot judge what is old; "
              "sync it, or pass --trust-clock", file=sys.stderr)
        return 3
    j = Journal(cfg.journal.path, synchronous=cfg.journal.synchronous, busy_timeout_ms=cfg.journal.busy_timeout_ms)
    try:
        floor = station_floor(cfg.station, j) if cfg.retention.days else None
        res = retention.prune(j, cfg.retention, clock.now_ms(), dry_run=args.dry_run, floor=floor)
        out = {**res.as_dict(), "dry_run": args.dry_run, "status": retention.status(j),
               "clock_synced": clock.synced()}
    finally:
        j.close()
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    p = res.plan
    verb = "would prune" if args.dry_run else "pruned"
    if p.blocks:
        n = p.records if args.dry_run else res.deleted
        print(f"{verb} {n} records of blocks {p.blocks[0][0]}..{p.blocks[-1][0]} "
              f"(seq {p.blocks[0][1]}..{p.blocks[-1][2]}), older than {_utc(p.cutoff_ms)}"
              + ("" if args.dry_run else f", in {res.transactions} transactions"))
    else:
        print(f"nothing to prune (days={cfg.retention.days})")
    if p.stopped_at is not None or p.reason:
        where = f"block {p.stopped_at}" if p.stopped_at is not None else "retention"
        print(f"kept from {where}: {p.reason}")
    if args.dry_run and not out["clock_synced"]:
        print("clock: not NTP-synchronised: the service prunes nothing until it is "
              "(`traceseal prune --trust-clock` prunes anyway)")
    return 0


def _print_upstream(cfg: configmod.Config, up: dict[str, Any] | None) -> None:
    where = cfg.upstream.url if cfg.upstream.transport == "https" else f"{cfg.upstream.host}:{cfg.upstream.port}"
    if up is None:
        print(f"upstream       {where}: the forwarder has not run on this journal yet")
        return
    since = up.get("since_ms")
    at = f" since {dt.datetime.fromtimestamp(since / 1000, dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if since else ""
    state = "connected" if up["connected"] else "disconnected" + (f" ({up['error']})" if up["error"] else "")
    print(f"upstream       {where} {state}{at}")
    for name, st in up["streams"].items():
        print(f"  {name:<12} sent {st['sent']}, archived {st['archived']}; backlog {st['backlog']} unsent, "
              f"{st['unarchived']} unarchived; lag {st['lag_s']:.0f} s")


def cmd_export(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    j = _journal(cfg)
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
    j = _journal(cfg)
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


def cmd_web_token(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    if cfg.web is None or cfg.web.token_file is None:
        print("traceseal web-token: configure [web] token_file first", file=sys.stderr)
        return 2
    try:
        write_token(cfg.web.token_file)
    except FileExistsError:
        print(f"traceseal web-token: {cfg.web.token_file} exists, kept (delete it first to make a new token)",
              file=sys.stderr)
        return 2
    print(f"{cfg.web.token_file}: token written, mode 0600 (it is the dashboard password; it is never printed)")
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
                      f"at {a.get('stage', a.get('last_stage'))}: value {a.get('value')} threshold {a.get('threshold')}")
        print("MANIFEST OK" if report["ok"] else "MANIFEST NOT OK")
    verified = all(g["verified"] for g in report["gateways"])
    return 0 if report["ok"] or (verified and not args.strict) else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="traceseal", description="tamper-evident cold-chain and waste records")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("keygen", help="create Ed25519 key files (mode 0600)")
    k.add_argument("out", nargs="?", type=Path)
    k.add_argument("-c", "--config", type=Path, help="create the keys this config names")
    k.add_argument("--force", action="store_true", help="replace an existing key (old bundles then need the old public key)")
    k.set_defaults(fn=cmd_keygen)
    r = sub.add_parser("run", help="run the gateway")
    r.add_argument("-c", "--config", type=Path, required=True)
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("status", help="journal, blocks, anchors and quarantine at a glance")
    s.add_argument("-c", "--config", type=Path, required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)
    pr = sub.add_parser("prune", help="delete records retention allows: old, anchored (and archived, when forwarding)")
    pr.add_argument("-c", "--config", type=Path, required=True)
    pr.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--trust-clock", action="store_true", help="prune although the clock is not NTP-synchronised")
    pr.set_defaults(fn=cmd_prune)
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
    mf = sub.add_parser("manifest", help="verify route bundles of several gateways and reconcile the bins")
    mf.add_argument("bundles", nargs="+", type=Path)
    mf.add_argument("--key", action="append", default=[], help="GATEWAY=HEX public key (repeat per gateway)")
    mf.add_argument("--rpc", help="EVM node for EVM anchors")
    mf.add_argument("--as-of", help="judge missing bins at this time (default: the latest handover)")
    mf.add_argument("--strict", action="store_true", help="exit 1 on reconciliation alarms too, not only on failed verification")
    mf.add_argument("--json", action="store_true")
    mf.set_defaults(fn=cmd_manifest)
    dr = sub.add_parser("doctor", help="check this deployment and say what to fix")
    doctor.add_doctor_args(dr)
    dr.set_defaults(fn=doctor.cmd_doctor)
    rk = sub.add_parser("rotate-key", help="replace the gateway key with a signed rotation record (gateway stopped)")
    keyrotation.add_rotate_args(rk)
    rk.set_defaults(fn=keyrotation.cmd_rotate_key)
    wt = sub.add_parser("web-token", help="create the dashboard's login token file (mode 0600)")
    wt.add_argument("-c", "--config", type=Path, required=True)
    wt.set_defaults(fn=cmd_web_token)
    rp = sub.add_parser("report", help="min/max since reset, MKT and excursions per unit")
    rp.add_argument("-c", "--config", type=Path, required=True)
    rp.add_argument("--from", dest="from_", help="start (default: 24 h before --to)")
    rp.add_argument("--to", help="end (default: the last record)")
    rp.add_argument("--json", action="store_true")
    rp.set_defaults(fn=cmd_report)
    add_archive_parser(sub)
    v = sub.add_parser("verify", help="verify a bundle; exit 0 only if every step passes against a pinned "
                                      "gateway key (4: every step passed, key not pinned)")
    lcli.add_verify_args(v)
    v.set_defaults(fn=lcli.run_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except BrokenPipeError:
        return _stdout_closed()
    except ConfigError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"traceseal: key: {exc}", file=sys.stderr)
        return 2
    except TracesealError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 3


def _stdout_closed() -> int:
    """The reader went away (`traceseal archive status | head`): end quietly, as a tool killed
    by SIGPIPE would, instead of a traceback. SIGPIPE itself stays ignored (Python's default):
    the gateway's sockets must get EPIPE as an error, not kill the service. stdout is pointed
    at /dev/null so the interpreter's final flush does not complain either."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # 141, the shell's status for a SIGPIPE death

