"""Fee arithmetic for ``EvmLedger`` (pure: no node, no state) and the node errors a send
can meet. Kept apart so the writer is the state machine only, and the numbers that decide
whether a replacement is accepted by a node's pool can be read (and tested) on their own."""

from __future__ import annotations

from typing import Any

FEE_BUMP_NUM, FEE_BUMP_DEN = 9, 8  # +12.5 %: above geth's 10 % and Besu's/Nethermind's rules

# Substrings (lower case) of node errors from geth, Besu, Nethermind, Erigon and anvil.
ALREADY_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown",
                 "already in pool", "already exists")
NONCE_USED = ("nonce too low", "nonce is too low", "oldnonce", "old nonce", "nonce has already been used")
UNDERPRICED = ("underpriced", "fee cap less than block base fee", "max fee per gas less than block base fee",
               "gas price too low", "feetoolow", "fee too low", "gas price below")


def max_fee(base_fee: int, tip: int, cap: int | None) -> int:
    """EIP-1559 fee cap: 2 × base fee + tip (room for two full blocks), at most ``cap``."""
    fee = 2 * base_fee + tip
    return fee if cap is None else min(fee, cap)


def bump(old: int) -> int:
    """At least +12.5 % (rounded up), and at least +1 wei."""
    return max(old + 1, -(-old * FEE_BUMP_NUM // FEE_BUMP_DEN))


def replacement_fees(sub: dict[str, Any], cur: dict[str, int]) -> tuple[dict[str, int], int]:
    """The submission's fees bumped (never below what the node asks now), and the highest
    per-gas price among them (what the configured cap is compared with)."""
    if "gas_price" in sub:
        fees = {"gas_price": max(bump(int(sub["gas_price"])), cur.get("gas_price", 0))}
        return fees, fees["gas_price"]
    tip = max(bump(int(sub["max_priority_fee_per_gas"])), cur.get("max_priority_fee_per_gas", 0))
    fee = max(bump(int(sub["max_fee_per_gas"])), cur.get("max_fee_per_gas", 0), tip)
    return {"max_fee_per_gas": fee, "max_priority_fee_per_gas": tip}, fee
