"""``traceseal rotate-key -c CONFIG --new-key PATH``: the command around
``gateway.chain.rotation`` (which documents the steps), with the gateway stopped."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from gateway.app import config as configmod
from gateway.chain.rotation import JournalLock, RotationError, install_key, rotate
from gateway.core.clock import SystemClock
from gateway.journal import Journal
from ledger_client.keys import load_private_key, public_hex


def add_rotate_args(p: Any) -> None:
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("--new-key", type=Path, required=True,
                   help="the new Ed25519 key file (mode 0600; make one with `traceseal keygen NEW.key`)")
    p.add_argument("--reason", help="why (signed into the rotation record, e.g. 'scheduled renewal')")


def cmd_rotate_key(args: Any) -> int:
    cfg = configmod.load(args.config)
    old = load_private_key(cfg.key_file)  # KeyFileError -> exit 2, nothing touched
    new = load_private_key(args.new_key)
    if public_hex(new) == public_hex(old):
        raise RotationError(f"{args.new_key} holds the key already configured; give a new key")
    if not cfg.journal.path.exists():
        raise RotationError(f"{cfg.journal.path}: no journal yet (has the gateway run?); nothing to rotate")
    lock = JournalLock(cfg.journal.path)
    lock.acquire()
    try:
        journal = Journal(cfg.journal.path, synchronous=cfg.journal.synchronous,
                          busy_timeout_ms=cfg.journal.busy_timeout_ms)
        try:
            rot = rotate(journal, cfg.gateway_id, old, new, SystemClock(), max_records=cfg.blocks.max_records,
                         reason=args.reason)
        finally:
            journal.close()
        try:
            install_key(cfg.key_file, new)
        except Exception as exc:
            raise RotationError(f"the rotation is recorded (seq {rot.seq}), but installing the new key failed: {exc}; "
                                f"copy {args.new_key} to {cfg.key_file} with mode 0600") from exc
    finally:
        lock.release()
    print(f"rotated: record seq {rot.seq} in block {rot.last_block}, the last block signed by {rot.old_key}")
    print(f"{cfg.key_file}: now the new key {rot.new_key} (mode 0600); the old private key is gone")
    print(f"delete {args.new_key} if it is a copy; start the gateway: it anchors block {rot.last_block} first",
          file=sys.stderr)
    return 0
