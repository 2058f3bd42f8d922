"""The ``[ledger.evm]`` table (keys in the package docstring) as ``EvmLedger`` arguments, and
the defaults it falls back to. Every key is checked by name: a typo is an error, not a
silently ignored setting on a ledger that spends money."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LedgerError
from .rpc import DEFAULT_MAX_REPLY_BYTES

DEFAULT_CONFIRMATIONS = 1
DEFAULT_STUCK_AFTER_S = 120.0
DEFAULT_GAS_MARGIN = 1.25

KNOWN = {"rpc_url", "chain_id", "key_file", "to", "confirmations", "stuck_after_s", "gas_limit",
         "gas_margin", "fee_mode", "priority_fee_gwei", "max_fee_gwei", "timeout_s", "connect_timeout_s",
         "max_reply_bytes"}


def settings_kwargs(cfg: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """``EvmLedger`` keyword arguments from the table; a relative ``key_file`` is under ``base_dir``."""
    unknown = sorted(set(cfg) - KNOWN)
    if unknown:
        raise LedgerError(f"ledger.evm: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN))}")
    for req in ("rpc_url", "chain_id", "key_file"):
        if req not in cfg:
            raise LedgerError(f"ledger.evm.{req} is required")
    key_file = Path(cfg["key_file"])
    if base_dir is not None and not key_file.is_absolute():
        key_file = Path(base_dir) / key_file

    def gwei(name: str) -> int | None:
        v = cfg.get(name)
        return None if v is None else round(float(v) * 1e9)

    return dict(
        rpc_url=str(cfg["rpc_url"]), chain_id=int(cfg["chain_id"]), key_file=key_file, to=cfg.get("to"),
        confirmations=int(cfg.get("confirmations", DEFAULT_CONFIRMATIONS)),
        stuck_after_s=float(cfg.get("stuck_after_s", DEFAULT_STUCK_AFTER_S)),
        gas_limit=None if cfg.get("gas_limit") is None else int(cfg["gas_limit"]),
        gas_margin=float(cfg.get("gas_margin", DEFAULT_GAS_MARGIN)),
        fee_mode=str(cfg.get("fee_mode", "auto")), priority_fee_wei=gwei("priority_fee_gwei"),
        max_fee_cap_wei=gwei("max_fee_gwei"), timeout_s=float(cfg.get("timeout_s", 10.0)),
        connect_timeout_s=float(cfg.get("connect_timeout_s", 3.0)),
        max_reply_bytes=int(cfg.get("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES)),
    )
