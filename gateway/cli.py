"""``traceseal``: keygen | run | status | export | verify.

Exit codes: 0 success; 1 verification failed (verify) or the gateway stopped on an error;
2 bad usage or configuration (the message names the key); 3 a runtime error (I/O, journal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Any

from ledger_client import cli as lcli
from ledger_client.errors import KeyFileError, TracesealError
from ledger_client.keys import public_hex, write_private_key

from . import config as configmod
from .errors import ConfigError


def _time_ms(text: str) -> int:
    """Unix ms, or an ISO 8601 time (UTC when no offset is given)."""
    if text.lstrip("-").isdigit():
        return int(text)
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return int(t.timestamp() * 1000)


def cmd_keygen(args: argparse.Namespace) -> int:
    paths: list[Path] = []
    if args.config:
        cfg = configmod.load(args.config)
        paths.append(cfg.key_file)
        if cfg.ledger.kind == "local":
            paths.append(cfg.ledger.key_file)
        else:
            from ledger_client.evm import generate_eth_key, load_eth_key

            eth = Path(cfg.ledger.evm["key_file"])
            eth = eth if eth.is_absolute() else cfg.ledger.base_dir / eth
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
            from ledger_client.keys import load_private_key

            key = load_private_key(p)
            print(f"{p}: exists, kept (public key {public_hex(key)})")
            continue
        key = write_private_key(p, overwrite=args.force)
        print(f"{p}: new Ed25519 key, mode 0600 (public key {public_hex(key)})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .service import Gateway

    cfg = configmod.load(args.config)
    gw = Gateway(cfg)
    gw.run_forever()
    return 0


def _journal(cfg: configmod.Config) -> Any:
    from .journal import Journal

    if not cfg.journal.path.exists():
        raise ConfigError("journal.path", f"{cfg.journal.path} does not exist (has the gateway run?)")
    return Journal(cfg.journal.path, readonly=True)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    j = _journal(cfg)
    s = j.stats()
    s["gateway"] = j.meta("gateway_id")
    if args.json:
        print(json.dumps(s, indent=2))
        return 0
    last = s["last_anchor_ms"]
    print(f"gateway        {s['gateway']}")
    print(f"records        {s['records']} (next seq {s['next_seq']}, {s['unsealed_records']} not yet sealed)")
    print(f"blocks         {s['blocks']} sealed, {s['unanchored_blocks']} not yet anchored")
    print(f"last anchor    block {s['anchored_block']}" + (f" at {dt.datetime.fromtimestamp(last / 1000, dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC" if last else ""))
    print(f"outbox         {s['outbox_open']} open")
    q = s["quarantine"]
    print(f"quarantined    {sum(q.values())}" + (" (" + ", ".join(f"{k}: {v}" for k, v in q.items()) + ")" if q else ""))
    dup = s["counters"].get("duplicate", 0)
    if dup:
        print(f"duplicates     {dup} redeliveries recognised and kept once")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from . import export

    cfg = configmod.load(args.config)
    j = _journal(cfg)
    kw: dict[str, Any] = {"allow_unanchored": args.unanchored, "now_ms": int(dt.datetime.now().timestamp() * 1000)}
    if args.seq is not None:
        bundle = export.export_record(j, args.seq, **kw)
    elif args.sensor:
        if args.from_ is None or args.to is None:
            print("traceseal export: --sensor needs --from and --to", file=sys.stderr)
            return 2
        bundle = export.export_range(j, args.sensor, _time_ms(args.from_), _time_ms(args.to), **kw)
    else:
        print("traceseal export: give --seq N or --sensor ID --from T --to T", file=sys.stderr)
        return 2
    text = json.dumps(bundle, indent=1, sort_keys=True)
    if args.output and str(args.output) != "-":
        args.output.write_text(text)
        print(f"wrote {args.output}: {len(bundle['records'])} records, {len(bundle['blocks'])} blocks, "
              f"{len(bundle['anchors'])} anchors", file=sys.stderr)
    else:
        print(text)
    return 0


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
    e = sub.add_parser("export", help="write a traceseal-bundle/1 for a record or a sensor's range")
    e.add_argument("-c", "--config", type=Path, required=True)
    e.add_argument("--seq", type=int, help="one record by gateway sequence number")
    e.add_argument("--sensor", help="a sensor's records over --from/--to")
    e.add_argument("--from", dest="from_", help="range start: Unix ms or ISO 8601")
    e.add_argument("--to", help="range end: Unix ms or ISO 8601")
    e.add_argument("-o", "--output", type=Path)
    e.add_argument("--unanchored", action="store_true", help="export even when no anchor covers it yet")
    e.set_defaults(fn=cmd_export)
    v = sub.add_parser("verify", help="verify a bundle; exit 0 only if every step passes")
    lcli.add_verify_args(v)
    v.set_defaults(fn=lcli.run_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.fn(args))
    except ConfigError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 2
    except KeyFileError as exc:
        print(f"traceseal: key: {exc}", file=sys.stderr)
        return 2
    except TracesealError as exc:
        print(f"traceseal: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
