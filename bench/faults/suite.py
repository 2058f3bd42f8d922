"""The scenario list and its two sizes. ``tests/faults`` runs ``CI``; ``run.py`` runs ``REPORT``
(or ``CI`` with ``--quick``). One implementation, one place for the sizes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .common import Row

CI: dict[str, dict[str, Any]] = {
    "crash": {"cycles": 5},
    "broker": {"restarts": 3, "backlog": 2_000},
    "ledger": {"blocks": 60, "records_per_block": 5, "min_outage_s": 5.0},
    "disk": {"cycles": 1, "readings": 300, "hold_s": 3.0},
    "hostile": {"fast": 20_000, "hypo": 200, "pipeline": 3_000, "flood": 5_000, "quarantine_max_rows": 1_000},
    "spoofing": {"rounds": 3},
    "tamper": {"sample": 200, "full": False},
    "keys": {},
    "retention": {"cycles": 5, "blocks": 120, "per_block": 20},
    "upstream": {"gateway_kills": 3, "broker_restarts": 2, "archive_kills": 2},
    "poison": {"cycles": 3, "poison_per_cycle": 3},
    "archive_flood": {"rounds": 2, "flood": 60, "slow": 8},
    "hostile_rpc": {"hold_s": 6.0},
}

REPORT: dict[str, dict[str, Any]] = {
    "crash": {"cycles": 100},
    "broker": {"restarts": 20, "backlog": 20_000},
    "ledger": {"blocks": 1_440, "records_per_block": 1, "min_outage_s": 10.0},  # a day of one-minute blocks
    "disk": {"cycles": 5, "readings": 2_000, "hold_s": 10.0, "size_mb": 32},
    "hostile": {"fast": 1_000_000, "hypo": 3_000, "pipeline": 50_000, "flood": 100_000,
                "quarantine_max_rows": 10_000},
    "spoofing": {"rounds": 20},
    "tamper": {"sample": None, "full": True, "range_bundle": True},
    "keys": {},
    "retention": {"cycles": 100, "blocks": 2_000, "per_block": 25},
    "upstream": {"gateway_kills": 100, "broker_restarts": 20, "archive_kills": 30},
    "poison": {"cycles": 20, "poison_per_cycle": 10},
    "archive_flood": {"rounds": 20, "flood": 400, "slow": 50, "addresses": 25, "max_connections": 64, "per_ip": 16,
                      "request_timeout_s": 5.0},
    "hostile_rpc": {"hold_s": 20.0},
}


def _scenario(name: str) -> Callable[..., list[Row]]:
    # imported lazily so `--only` does not import what it does not run
    if name == "crash":
        from .crash import run_crash
        return run_crash
    if name == "broker":
        from .broker import run_broker
        return run_broker
    if name == "ledger":
        from .ledger_outage import run_ledger_outage
        return run_ledger_outage
    if name == "disk":
        from .disk_full import run_disk_full
        return run_disk_full
    if name == "hostile":
        from .hostile import run_hostile
        return run_hostile
    if name == "spoofing":
        from .spoofing import run_spoofing
        return run_spoofing
    if name == "tamper":
        from .tamper import run_tamper
        return run_tamper
    if name == "keys":
        from .keys import run_keys
        return run_keys
    if name == "retention":
        from .retention import run_retention
        return run_retention
    if name == "upstream":
        from .upstream import run_upstream
        return run_upstream
    if name == "poison":
        from .poison import run_poison
        return run_poison
    if name == "archive_flood":
        from .archive_flood import run_archive_flood
        return run_archive_flood
    if name == "hostile_rpc":
        from .hostile_rpc import run_hostile_rpc
        return run_hostile_rpc
    raise KeyError(name)


TAKES_RNG = {"crash", "broker", "hostile", "tamper", "retention", "upstream", "poison", "archive_flood"}


def run(name: str, workdir: Path, sizes: dict[str, dict[str, Any]], *, seed: int | None = None,
        **override: Any) -> list[Row]:
    """Run one scenario at the given sizes; returns its rows (each with its wall time)."""
    kw = dict(sizes[name])
    kw.update(override)
    if name in TAKES_RNG:
        kw["rng"] = random.Random(seed)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    rows = _scenario(name)(workdir, **kw)
    dt = time.monotonic() - t0
    for r in rows:
        if not r.seconds:
            r.seconds = dt / len(rows)
    return rows


NAMES = list(CI)
