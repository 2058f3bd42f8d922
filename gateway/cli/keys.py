"""``traceseal keygen`` and ``traceseal web-token``: the secrets a station needs, written
mode 0600 and never printed (only public keys and addresses are).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gateway.app import config as configmod
from gateway.app.config import evm_key_file
from gateway.web.auth import write_token
from ledger_client.keys import load_private_key, public_hex, write_private_key


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
                print(f"{eth}: new Ethereum key, mode 0600 "
                      f"(address {generate_eth_key(eth)}; fund it to pay for anchors)")
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


def add_keygen_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal keygen``."""
    k = sub.add_parser("keygen", help="create Ed25519 key files (mode 0600)")
    k.add_argument("out", nargs="?", type=Path)
    k.add_argument("-c", "--config", type=Path, help="create the keys this config names")
    k.add_argument("--force", action="store_true",
                   help="replace an existing key (old bundles then need the old public key)")
    k.set_defaults(fn=cmd_keygen)


def add_web_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``traceseal web-token``."""
    wt = sub.add_parser("web-token", help="create the dashboard's login token file (mode 0600)")
    wt.add_argument("-c", "--config", type=Path, required=True)
    wt.set_defaults(fn=cmd_web_token)
