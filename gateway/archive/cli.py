"""``traceseal archive run | enroll | status | export``.

Exit codes as ``traceseal``: 0 success; 2 bad usage or configuration (the message names the
key); 3 a runtime error (store, I/O).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from gateway.archive import config as configmod
from gateway.archive.config import GATEWAY_ID, valid_key
from gateway.archive.consumer import Archive
from gateway.archive.http import HttpIngest
from gateway.archive.store import open_store
from gateway.archive.view import ArchiveView, export_set
from gateway.chain import export
from gateway.core.clock import parse_time_ms
from gateway.core.configfiles import check_files
from gateway.core.errors import ConfigError
from ledger_client.files import write_atomic


def _store(cfg: configmod.ArchiveConfig, *, readonly: bool = False) -> Any:
    return open_store(cfg.store, readonly=readonly, rejections_max_rows=cfg.rejections_max_rows)


def _now_ms() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp() * 1000)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    check_files(configmod.named_files(cfg))  # a missing or loose password/TLS file: one line, exit 2
    archive = Archive(cfg, _store(cfg))
    ingest = None
    if cfg.http is not None:  # HTTPS ingest beside MQTT, through the same writer
        ingest = HttpIngest(archive, cfg.http)
        ingest.start()
    try:
        archive.run_forever()
    finally:
        if ingest is not None:
            ingest.stop()
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    if not GATEWAY_ID.fullmatch(args.id):
        raise ConfigError("--id", "must be 1-64 letters, digits, '.', '_' or '-'")
    key = args.public_key.lower()
    if not valid_key(key):
        raise ConfigError("--public-key", "must be 64 hex characters (the gateway's Ed25519 public key)")
    cfg = configmod.load(args.config)
    store = _store(cfg)
    try:
        for gid, row in store.gateways().items():  # a key copied between stations, or pasted to the wrong id
            if gid != args.id and key in (row.public_key, *(r[3] for r in store.key_rotations(gid))):
                raise ConfigError("--public-key", f"{key[:16]}… is already enrolled for gateway {gid!r}; two "
                                                  "stations never share a key: take this one's from "
                                                  "`traceseal status --json` (public_key) on the station itself")
        new = store.enroll(args.id, key, _now_ms())
    finally:
        store.close()
    print(f"gateway {args.id}: {'enrolled' if new else 'already enrolled'} with key {key[:16]}…")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    store = _store(cfg, readonly=True)
    try:
        out = {g: {"public_key": row.public_key, "profile_ms": row.profile_ms, **store.status(g),
                   "rotations": [dict(zip(("seq", "last_block", "old_key", "new_key"), r))
                                 for r in store.key_rotations(g)]}
               for g, row in store.gateways().items()}
        recent = [dataclasses.asdict(r) for r in store.rejections(limit=args.recent)]
        others = store.unenrolled_rejections()
    finally:
        store.close()
    if args.json:
        print(json.dumps({"store": cfg.store.describe(), "gateways": out, "unenrolled_rejections": others,
                          "recent_rejections": recent}, indent=2))
        return 0
    print(f"archive        {cfg.store.describe()}")
    for g, s in out.items():
        print(f"gateway {g}  key {s['public_key'][:16]}…" + ("" if s["profile_ms"] else "  (no profile yet)"))
        print(f"  records      {s['records']} (highest contiguous seq {s['highest_contiguous_seq']})")
        print(f"  blocks       {s['blocks']} ({s['blocks_verified']} verified, {s['blocks_pending']} pending; "
              f"highest verified {s['highest_verified_block']})")
        print(f"  anchors      {s['anchors']} (highest anchored block {s['anchored_block']})")
        for r in s["rotations"]:
            print(f"  key rotated  at seq {r['seq']}, after block {r['last_block']}: now {r['new_key'][:16]}…")
        if s["skipped"]:
            print(f"  skipped      seqs pruned before forwarding: {s['skipped']}")
        rj = s["rejections"]
        print(f"  rejections   {sum(rj.values())}" + (" (" + ", ".join(f"{k}: {v}" for k, v in rj.items()) + ")"
                                                       if rj else ""))
        dups = {k: v for k, v in s["counters"].items() if k.startswith("duplicate")}
        if dups:
            print("  duplicates   " + ", ".join(f"{k.split('_', 1)[1]}: {v}" for k, v in dups.items()))
    if others:
        print("not enrolled   " + ", ".join(f"{g}: {n} rejected" for g, n in others.items()))
    for r in recent:
        print(f"rejected {r['gateway']} {r['stream']} {r['ref']}: {r['reason']}: {r['detail']}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    store = _store(cfg, readonly=True)
    kw: dict[str, Any] = {"allow_unanchored": args.unanchored, "now_ms": _now_ms()}
    try:
        if args.gateway is None:
            if args.lot:
                sel: dict[str, Any] = {"type": "lot", "lot": args.lot}
                if args.gtin:
                    sel["gtin"] = args.gtin
            elif args.route:
                sel = {"type": "route", "id": args.route}
            else:
                print("traceseal archive export: --seq and --sensor need --gateway; without it give --lot or --route",
                      file=sys.stderr)
                return 2
            doc = export_set(store, sel, **kw)
            summary = (f"{len(doc['bundles'])} bundles "
                       f"(gateways {', '.join(b['gateway']['id'] for b in doc['bundles'])})")
        else:
            view = ArchiveView(store, args.gateway)
            if args.seq is not None:
                doc = export.export_record(view, args.seq, **kw)
            elif args.route:
                doc = export.export_route(view, args.route, **kw)
            elif args.lot:
                units, inv = view.station()
                doc = export.export_lot(view, units, inv, args.lot, gtin=args.gtin, **kw)
            elif args.sensor:
                if args.from_ is None or args.to is None:
                    print("traceseal archive export: --sensor needs --from and --to", file=sys.stderr)
                    return 2
                doc = export.export_range(view, args.sensor, parse_time_ms(args.from_), parse_time_ms(args.to), **kw)
            else:
                print("traceseal archive export: give --seq N, --sensor ID --from T --to T, --lot LOT or --route R",
                      file=sys.stderr)
                return 2
            summary = f"{len(doc['records'])} records, {len(doc['blocks'])} blocks, {len(doc['anchors'])} anchors"
    finally:
        store.close()
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    if args.output and str(args.output) != "-":
        write_atomic(args.output, text)  # complete or not at all; never through a planted link
        print(f"wrote {args.output}: {summary}", file=sys.stderr)
    else:
        print(text)
    return 0


def add_archive_parser(sub: Any) -> None:
    a = sub.add_parser("archive", help="central archive: receive, verify and store what gateways forward")
    asub = a.add_subparsers(dest="archive_cmd", required=True)
    r = asub.add_parser("run", help="run the archive consumer")
    r.add_argument("-c", "--config", type=Path, required=True, help="archive.toml")
    r.set_defaults(fn=cmd_run)
    en = asub.add_parser("enroll", help="enroll a gateway by id and public key")
    en.add_argument("-c", "--config", type=Path, required=True)
    en.add_argument("--id", required=True, help="the gateway id (its config's gateway.id)")
    en.add_argument("--public-key", required=True, help="its Ed25519 public key, hex (`traceseal status --json`)")
    en.set_defaults(fn=cmd_enroll)
    st = asub.add_parser("status", help="per gateway: records, blocks, anchors, progress, rejections")
    st.add_argument("-c", "--config", type=Path, required=True)
    st.add_argument("--json", action="store_true")
    st.add_argument("--recent", type=int, default=10, help="show this many recent rejections")
    st.set_defaults(fn=cmd_status)
    e = asub.add_parser("export", help="a traceseal-bundle/1 of one gateway, or a traceseal-set/1 across gateways")
    e.add_argument("-c", "--config", type=Path, required=True)
    e.add_argument("--gateway", help="one gateway's bundle; omit with --lot/--route for a set across gateways")
    e.add_argument("--seq", type=int)
    e.add_argument("--sensor")
    e.add_argument("--from", dest="from_")
    e.add_argument("--to")
    e.add_argument("--lot")
    e.add_argument("--gtin")
    e.add_argument("--route")
    e.add_argument("-o", "--output", type=Path)
    e.add_argument("--unanchored", action="store_true")
    e.set_defaults(fn=cmd_export)
