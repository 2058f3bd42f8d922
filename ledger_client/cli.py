"""``traceseal verify`` (also ``python -m ledger_client verify``): the auditor's command.

Exit status (also in ``--help`` and README's exit-code table):

- 0 VERIFIED: every step passed, against the gateway key you pinned (``--gateway-key``; for a
  set, ``--key`` for every gateway);
- 1 FAILED: a step failed;
- 2 the bundle could not be read, or the arguments are wrong;
- 4 INTACT, key not pinned: every step passed, but no gateway key was pinned, so the bundle
  vouched for itself, and anyone can make a bundle that passes these checks.

Human output by default, the full report with ``--json`` (``result``, ``key_pinned``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .verify import (
    FAILED,
    INTACT_NOT_PINNED,
    SET_FORMAT,
    VERIFIED,
    Report,
    default_checkers,
    loads_strict,
    verify_bundle,
    verify_set,
)

EXIT = {VERIFIED: 0, FAILED: 1, INTACT_NOT_PINNED: 4}
EPILOG = ("exit status: 0 VERIFIED (every step passed against the pinned gateway key); 1 FAILED (a step "
          "failed); 2 bundle unreadable or bad arguments; 4 INTACT, key not pinned (every step passed, but "
          "without --gateway-key the bundle vouches for itself: anyone can make one that passes)")
NOT_PINNED = ("INTACT, key not pinned (anyone can make a bundle that passes these checks; "
              "pin the gateway key with --gateway-key)")


def add_verify_args(p: argparse.ArgumentParser) -> None:
    p.epilog = EPILOG
    p.add_argument("bundle", type=Path, help="bundle JSON file (- for stdin)")
    p.add_argument("--json", action="store_true", help="print the machine-readable report")
    p.add_argument("--gateway-key", help="pin the gateway public key (hex) instead of trusting the bundle")
    p.add_argument("--ledger-key", help="pin the local ledger's public key (hex)")
    p.add_argument("--ledger-file", type=Path, help="a copy of the local ledger file to look the anchor up in")
    p.add_argument("--rpc", help="EVM JSON-RPC URL of a node YOU choose, to check EVM anchors")
    p.add_argument("--chain-id", type=int, help="expected EVM chain id")
    p.add_argument("--sender", help="expected EVM sender address of anchors")
    p.add_argument("--confirmations", type=int, help="required confirmations (default: the anchor's own)")
    p.add_argument("--key", action="append", default=[], metavar="GATEWAY=HEX",
                   help="a traceseal-set/1: pin this gateway's key (repeat per gateway)")


def _fmt_time(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(report: Report) -> str:
    lines = []
    for s in report.steps:
        mark = "PASS" if s.ok else "FAIL"
        lines.append(f"[{s.step}] {s.name:<12} {mark}  ({s.checked} checked)")
        for f in s.failures[:20]:
            lines.append(f"      ✗ {f}")
        if len(s.failures) > 20:
            lines.append(f"      … and {len(s.failures) - 20} more")
        for n in s.notes[:5]:
            lines.append(f"      · {n}")
    sm = report.summary
    if sm:
        lines.append(f"gateway {sm.get('gateway')} key {str(sm.get('public_key'))[:16]}…  "
                     f"{sm.get('records')} records in blocks {sm.get('block_range')}")
        for b, t in sm.get("anchor_time_ms", {}).items():
            lines.append(f"block {b} anchored at {_fmt_time(t)} — every record above existed before then")
    first = report.first_failure
    if first is not None:
        lines.append(f"RESULT: FAILED at step {first.step} ({first.name})")
    else:
        lines.append("RESULT: VERIFIED" if report.key_pinned else f"RESULT: {NOT_PINNED}")
    return "\n".join(lines)


def run_verify(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if str(args.bundle) == "-" else args.bundle.read_text()
        bundle: Any = loads_strict(text)
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        print(f"traceseal verify: cannot read bundle {args.bundle}: {exc}", file=sys.stderr)
        return 2
    for name in ("gateway_key", "ledger_key"):
        pin = getattr(args, name)
        if pin is not None and (len(pin) != 64 or any(c not in "0123456789abcdefABCDEF" for c in pin)):
            print(f"traceseal verify: --{name.replace('_', '-')} must be 64 hex characters", file=sys.stderr)
            return 2
    checkers = default_checkers(ledger_key=args.ledger_key, ledger_file=args.ledger_file, rpc_url=args.rpc,
                                chain_id=args.chain_id, sender=args.sender, min_confirmations=args.confirmations)
    if isinstance(bundle, dict) and bundle.get("format") == SET_FORMAT:
        return _run_verify_set(args, bundle, checkers)
    progress: Callable[[int, int], None] | None = None
    recs = bundle.get("records") if isinstance(bundle, dict) else None
    n = len(recs) if isinstance(recs, list) else 0
    if n > 5000 and sys.stderr.isatty() and not args.json:
        def show(done: int, total: int) -> None:
            if done % 2000 == 0 or done == total:
                print(f"\rverifying {done}/{total}", end="", file=sys.stderr, flush=True)
        progress = show
    report = verify_bundle(bundle, gateway_key=args.gateway_key, checkers=checkers, progress=progress)
    if progress:
        print(file=sys.stderr)
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return EXIT[report.result]


def _run_verify_set(args: argparse.Namespace, doc: dict[str, Any], checkers: Any) -> int:
    """A ``traceseal-set/1``: every inner bundle against its gateway's pinned key."""
    if args.gateway_key is not None:
        print("traceseal verify: a set holds several gateways: pin each with --key GATEWAY=HEX", file=sys.stderr)
        return 2
    keys: dict[str, str] = {}
    for item in args.key:
        gw, _, hexkey = item.partition("=")
        if not gw or len(hexkey) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexkey):
            print(f"traceseal verify: --key wants GATEWAY=64-hex-characters, got {item!r}", file=sys.stderr)
            return 2
        keys[gw] = hexkey.lower()
    rep = verify_set(doc, gateway_keys=keys, checkers=checkers)
    if args.json:
        print(json.dumps(rep.as_dict(), indent=2))
        return EXIT[rep.result]
    word = {VERIFIED: "VERIFIED", FAILED: "FAILED", INTACT_NOT_PINNED: "INTACT, key not pinned"}
    lines = [f"set of {len(rep.bundles)} bundle(s), selection {json.dumps(doc.get('selection'), sort_keys=True)}"]
    for gw, r in rep.bundles:
        lines.append(f"== bundle of gateway {gw}: {word[r.result]}")
        lines.append(render(r))
    lines += [f"✗ {f}" for f in rep.failures] + [f"· {n}" for n in rep.notes]
    lines.append("SET RESULT: " + (word[rep.result] if rep.result != INTACT_NOT_PINNED else
                                   "INTACT, keys not pinned (anyone can make a set that passes these checks; "
                                   "pin each gateway key with --key GATEWAY=HEX)"))
    print("\n".join(lines))
    return EXIT[rep.result]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="ledger_client")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_verify_args(sub.add_parser("verify", help="verify a traceseal bundle"))
    args = p.parse_args(argv)
    return run_verify(args)
