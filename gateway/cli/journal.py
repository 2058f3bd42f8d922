"""``traceseal status`` and ``traceseal prune``: the journal at a glance, and retention by hand.

Both read the journal a running gateway writes (``status`` read-only, ``prune`` in its own
short transactions), so they are safe next to the service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from gateway.app import config as configmod
from gateway.chain import retention
from gateway.chain.retention import status as retention_status
from gateway.core.clock import SystemClock
from gateway.core.errors import ConfigError
from gateway.forward.state import upstream_stats
from gateway.journal import Journal
from gateway.station import station_floor


def open_journal(cfg: configmod.Config) -> Any:
    """The configured journal, read-only; a missing file is a configuration error (exit 2)."""
    if not cfg.journal.path.exists():
        raise ConfigError("journal.path", f"{cfg.journal.path} does not exist (has the gateway run?)")
    return Journal(cfg.journal.path, readonly=True)


def cmd_status(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)
    j = open_journal(cfg)
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
    print(f"last anchor    block {s['anchored_block']}"
          + (f" at {dt.datetime.fromtimestamp(last / 1000, dt.UTC):%Y-%m-%d %H:%M:%S} UTC" if last else ""))
    print(f"outbox         {s['outbox_open']} open")
    q = s["quarantine"]
    print(f"quarantined    {sum(q.values())}"
          + (" (" + ", ".join(f"{k}: {v}" for k, v in q.items()) + ")" if q else ""))
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


def add_status_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal status``."""
    s = sub.add_parser("status", help="journal, blocks, anchors and quarantine at a glance")
    s.add_argument("-c", "--config", type=Path, required=True)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)


def add_prune_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal prune``."""
    pr = sub.add_parser("prune", help="delete records retention allows: old, anchored (and archived, when forwarding)")
    pr.add_argument("-c", "--config", type=Path, required=True)
    pr.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    pr.add_argument("--json", action="store_true")
    pr.add_argument("--trust-clock", action="store_true", help="prune although the clock is not NTP-synchronised")
    pr.set_defaults(fn=cmd_prune)
