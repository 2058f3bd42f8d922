"""Build the configured ledger backend (the only place that knows every kind)."""

from __future__ import annotations

from gateway.chain.settings import LedgerConfig
from gateway.core.clock import Clock
from gateway.core.errors import ConfigError
from ledger_client.keys import load_private_key
from ledger_client.ledger import Ledger
from ledger_client.local import LocalLedger


def make_ledger(cfg: LedgerConfig, clock: Clock) -> Ledger:
    if cfg.kind == "local":
        return LocalLedger(cfg.path, load_private_key(cfg.key_file), clock_ms=clock.now_ms)
    if cfg.kind == "evm":
        from ledger_client.evm import EvmLedger  # lazy: eth_account is heavy, evm ledgers only

        return EvmLedger.from_config(cfg.evm, base_dir=cfg.base_dir)
    raise ConfigError("ledger.kind", f"unknown ledger kind {cfg.kind!r}")
