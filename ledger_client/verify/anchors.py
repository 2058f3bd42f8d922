"""The ledger checkers step 6 calls: ``kind -> checker(anchor, header_hash, step=...)``
returning the ledger's time in Unix ms, or raising ``VerificationError``. Kept apart from
the pure rules because these do I/O (the local ledger file, an EVM node)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# kind -> checker(anchor, header_hash, step=...) -> ledger time in Unix ms
AnchorChecker = Callable[..., int]


def _local_checker(**opts: Any) -> AnchorChecker:
    from ..local import verify_local_anchor

    def check(anchor: dict[str, Any], hh: bytes, *, step: int) -> int:
        return verify_local_anchor(anchor, hh, step=step, pinned_key=opts.get("ledger_key"),
                                   ledger_file=opts.get("ledger_file"))
    return check


def default_checkers(*, ledger_key: str | None = None, ledger_file: Any = None, rpc_url: str | None = None,
                     chain_id: int | None = None, sender: str | None = None,
                     min_confirmations: int | None = None) -> dict[str, AnchorChecker]:
    checkers: dict[str, AnchorChecker] = {"local": _local_checker(ledger_key=ledger_key, ledger_file=ledger_file)}

    def evm(anchor: dict[str, Any], hh: bytes, *, step: int) -> int:
        from ..evm import verify_evm_anchor  # imported lazily: only EVM bundles need it

        return verify_evm_anchor(anchor, hh, step=step, rpc_url=rpc_url, expected_chain_id=chain_id,
                                 expected_sender=sender, min_confirmations=min_confirmations)
    checkers["evm"] = evm
    return checkers


def iso(ms: int) -> str:
    import datetime as dt

    try:
        return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    except (OverflowError, ValueError, OSError):  # only reachable for times no step accepts
        return f"{ms} ms"
