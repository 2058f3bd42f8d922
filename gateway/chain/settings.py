"""The chain's config slices: ``[blocks]`` (sealing), ``[ledger]`` (anchoring) and
``[retention]`` (pruning), each with its parser (errors are ``ConfigError(key, problem)``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import Table, positive


@dataclass(frozen=True)
class BlockConfig:
    max_records: int = 1000
    max_seconds: int = 60


@dataclass(frozen=True)
class LedgerConfig:
    kind: str = "local"
    path: Path = Path("ledger.sqlite")
    key_file: Path = Path("ledger.key")
    poll_s: float = 1.0
    min_interval_s: int = 0  # at most one anchor per this many seconds (cost control on public chains)
    evm: dict[str, Any] = field(default_factory=dict)  # handed as is to ledger_client.evm.EvmLedger.from_config
    base_dir: Path = Path(".")


@dataclass(frozen=True)
class RetentionConfig:
    days: int = 0  # 0 = keep every record forever; else prune anchored blocks older than this
    interval_s: int = 3600  # how often the gateway prunes
    batch: int = 5000  # records per delete transaction (rounded up to whole blocks)


def parse_blocks(raw: Any, base: Path) -> BlockConfig:
    b = Table(raw, "blocks", base)
    blocks = BlockConfig(
        max_records=b.get("max_records", int, 1000, check=lambda v: 1 <= v <= 1_000_000, why="must be in 1..1000000"),
        max_seconds=b.get("max_seconds", int, 60, check=positive, why="must be positive"),
    )
    b.done()
    return blocks


def parse_ledger(raw: Any, base: Path, data_dir: Path) -> LedgerConfig:
    """``[ledger]``; an EVM ledger needs its ``rpc_url``, ``chain_id`` and ``key_file``."""
    lg = Table(raw, "ledger", base)
    kind = lg.get("kind", str, "local", check=lambda k: k in ("local", "evm"), why="must be 'local' or 'evm'")
    ledger = LedgerConfig(
        kind=kind,
        path=lg.req_path("path", str(data_dir / "ledger.sqlite")),
        key_file=lg.req_path("key_file", str(data_dir / "ledger.key")),
        poll_s=float(lg.get("poll_s", (int, float), 1.0, check=lambda v: v > 0, why="must be positive")),
        min_interval_s=lg.get("min_interval_s", int, 0, check=lambda v: v >= 0, why="must be >= 0"),
        evm=dict(lg.get("evm", dict, {})),
        base_dir=base,
    )
    if kind == "evm":
        for k in ("rpc_url", "chain_id", "key_file"):
            if k not in ledger.evm:
                raise ConfigError(f"ledger.evm.{k}", "is required when ledger.kind = 'evm'")
    lg.done()
    return ledger


def evm_key_file(lg: LedgerConfig) -> Path:
    """The Ethereum key an EVM ledger signs with (``ledger.evm.key_file``, relative to the config)."""
    p = Path(str(lg.evm["key_file"]))
    return p if p.is_absolute() else lg.base_dir / p


def parse_retention(raw: Any, base: Path, session_expiry_s: int) -> RetentionConfig:
    """``[retention]``. ``session_expiry_s`` is the ingest broker's (``mqtt.session_expiry_s``):
    records must outlive it (see below)."""
    t = Table(raw, "retention", base)
    days = t.get("days", int, 0, check=lambda v: 0 <= v <= 100 * 365, why="must be in 0..36500 (0 = keep forever)")
    if days and days * 86400 <= session_expiry_s:
        # The broker may redeliver a message it never saw acknowledged until its session
        # expires; the digest that recognises such a redelivery lives in the record's row.
        least = session_expiry_s // 86400 + 1
        raise ConfigError("retention.days", f"must keep records longer than mqtt.session_expiry_s "
                                            f"({session_expiry_s / 86400:g} days), so at least {least}, got {days}")
    cfg = RetentionConfig(
        days=days,
        interval_s=t.get("interval_s", int, 3600, check=lambda v: 1 <= v <= 7 * 86400, why="must be in 1..604800"),
        batch=t.get("batch", int, 5000, check=lambda v: 1 <= v <= 1_000_000, why="must be in 1..1000000"),
    )
    t.done()
    return cfg
