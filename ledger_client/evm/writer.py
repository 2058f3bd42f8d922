"""``EvmLedger``: anchors block-header hashes by signed self-send transactions (the
nonce, fee and crash story is in the package docstring, ``ledger_client/evm/__init__.py``).
The nonce/fee/replacement state machine reads best in one class; the fee arithmetic
and the node-error texts are in ``fees``."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from ..errors import KeyFileError, LedgerError
from ..ledger import AnchorStatus
from .anchor import TAG_HEX, _checksum, anchor_input
from .ethkeys import _eth_account, load_eth_key
from .fees import ALREADY_KNOWN, NONCE_USED, UNDERPRICED, max_fee, replacement_fees
from .rpc import (
    BLOCK_MAX,
    CHAIN_ID_MAX,
    DEFAULT_MAX_REPLY_BYTES,
    FEE_MAX,
    GAS_MAX,
    INDEX_MAX,
    NONCE_MAX,
    JsonRpc,
    RpcError,
    _hex,
    _int,
    block_time_s,
    obj,
)
from .settings import DEFAULT_CONFIRMATIONS, DEFAULT_GAS_MARGIN, DEFAULT_STUCK_AFTER_S, settings_kwargs

SUBMISSION_VERSION = 1


class EvmLedger:
    """``Ledger`` backend for any Ethereum JSON-RPC node (anvil, Besu, Quorum, geth)."""

    kind = "evm"

    def __init__(self, rpc_url: str, *, chain_id: int, key_file: Path | str | None = None,
                 private_key: str | bytes | None = None, to: str | None = None,
                 confirmations: int = DEFAULT_CONFIRMATIONS, stuck_after_s: float = DEFAULT_STUCK_AFTER_S,
                 gas_limit: int | None = None, gas_margin: float = DEFAULT_GAS_MARGIN,
                 fee_mode: str = "auto", priority_fee_wei: int | None = None, max_fee_cap_wei: int | None = None,
                 timeout_s: float = 10.0, connect_timeout_s: float = 3.0,
                 session: requests.Session | None = None, max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> None:
        if (key_file is None) == (private_key is None):
            raise LedgerError("EvmLedger needs exactly one of key_file or private_key")
        if not isinstance(chain_id, int) or isinstance(chain_id, bool) or chain_id <= 0:
            raise LedgerError(f"chain_id must be a positive integer, got {chain_id!r}")
        if confirmations < 1:
            raise LedgerError(f"confirmations must be at least 1, got {confirmations}")
        if fee_mode not in ("auto", "eip1559", "legacy"):
            raise LedgerError(f"fee_mode must be auto, eip1559 or legacy, got {fee_mode!r}")
        if gas_margin < 1.0:
            raise LedgerError(f"gas_margin must be >= 1.0, got {gas_margin}")
        if key_file is not None:
            self._account = load_eth_key(key_file)
        else:
            Account = _eth_account()

            try:
                self._account = Account.from_key(private_key)
            except Exception as exc:
                raise KeyFileError(f"private_key is not a secp256k1 key ({type(exc).__name__})") from exc
        self.address = str(self._account.address).lower()
        self.to = (to or self.address).lower()
        if not (self.to.startswith("0x") and len(self.to) == 42):
            raise LedgerError(f"recipient {to!r} is not a 0x-prefixed 20-byte address")
        self.rpc_url = rpc_url
        self.chain_id = chain_id
        self.confirmations = int(confirmations)
        self.stuck_after_ms = int(stuck_after_s * 1000)
        self.gas_margin = gas_margin
        self.fee_mode = fee_mode
        self.priority_fee_wei = priority_fee_wei
        self.max_fee_cap_wei = max_fee_cap_wei
        self.rpc = JsonRpc(rpc_url, session=session, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s,
                           max_reply_bytes=max_reply_bytes)
        self._configured_gas = gas_limit
        self.gas_limit: int | None = gas_limit
        self.gas_estimate: int | None = None
        self._fees: dict[str, int] | None = None  # {"max_fee_per_gas","max_priority_fee_per_gas"} or {"gas_price"}
        self._next_nonce: int | None = None
        self._highest_sent = -1
        self._first_pending_ms: dict[str, int] = {}
        self._started = False
        self._lock = threading.RLock()

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, base_dir: Path | None = None,
                    session: requests.Session | None = None) -> EvmLedger:
        """Build from the ``[ledger.evm]`` table; see the package docstring for the keys."""
        return cls(**settings_kwargs(cfg, base_dir), session=session)

    # -- start / nonce -------------------------------------------------------------------
    def start(self, known: Iterable[dict[str, Any]] = ()) -> EvmLedger:
        """Check the chain id, sync the nonce, read fees, estimate gas. Reads only.

        ``known``: submissions from the caller's outbox (sent or not); their nonces count as
        used so a fresh ``prepare`` never collides with a persisted one.
        """
        with self._lock:
            got = _int(self.rpc.call("eth_chainId"), "chain id (eth_chainId)", 1, CHAIN_ID_MAX)
            if got != self.chain_id:
                raise LedgerError(f"node {self.rpc_url} is on chain id {got}, but chain id {self.chain_id} is "
                                  f"configured: refusing to anchor on the wrong chain")
            for sub in known:
                self.observe(sub)
            self._sync_nonce(keep_known=True)
            self._refresh_fees()
            if self._configured_gas is None:
                self.gas_estimate = self._estimate_gas()
                self.gas_limit = math.ceil(self.gas_estimate * self.gas_margin)
            self._started = True
        return self

    def observe(self, submission: dict[str, Any]) -> None:
        """Tell the ledger about a persisted submission (its nonce is taken)."""
        nonce = submission.get("nonce")
        if isinstance(nonce, int) and submission.get("from", self.address).lower() == self.address:
            with self._lock:
                self._highest_sent = max(self._highest_sent, nonce)
                if self._next_nonce is not None:
                    self._next_nonce = max(self._next_nonce, nonce + 1)

    @property
    def next_nonce(self) -> int | None:
        return self._next_nonce

    def _pending_count(self) -> int:
        return _int(self.rpc.call("eth_getTransactionCount", self.address, "pending"), "pending nonce", 0, NONCE_MAX)

    def _sync_nonce(self, *, keep_known: bool) -> None:
        chain = self._pending_count()
        self._next_nonce = max(chain, self._highest_sent + 1) if keep_known else chain
        if not keep_known:
            self._highest_sent = chain - 1

    def _ensure_started(self) -> None:
        if not self._started:
            self.start()

    # -- fees / gas ------------------------------------------------------------------------
    def _current_fees(self) -> dict[str, int]:
        latest = obj(self.rpc.call("eth_getBlockByNumber", "latest", False), "latest block")
        base = latest.get("baseFeePerGas") if latest is not None else None
        if self.fee_mode == "eip1559" and base is None:
            raise LedgerError(f"fee_mode eip1559, but the latest block of chain {self.chain_id} has no baseFeePerGas")
        if base is not None and self.fee_mode != "legacy":
            base_fee = _int(base, "baseFeePerGas", 0, FEE_MAX)
            tip = self.priority_fee_wei
            if tip is None:
                try:
                    tip = _int(self.rpc.call("eth_maxPriorityFeePerGas"), "priority fee (eth_maxPriorityFeePerGas)",
                               0, FEE_MAX)
                except RpcError:  # not offered by every node: derive it from the legacy price
                    tip = max(0, _int(self.rpc.call("eth_gasPrice"), "gas price (eth_gasPrice)", 0, FEE_MAX) - base_fee)
            fee = max_fee(base_fee, tip, self.max_fee_cap_wei)
            if self.max_fee_cap_wei is not None:
                tip = min(tip, fee)
            return {"max_fee_per_gas": fee, "max_priority_fee_per_gas": tip}
        price = _int(self.rpc.call("eth_gasPrice"), "gas price (eth_gasPrice)", 0, FEE_MAX)
        if self.max_fee_cap_wei is not None:
            price = min(price, self.max_fee_cap_wei)
        return {"gas_price": price}

    def _refresh_fees(self) -> None:
        self._fees = self._current_fees()

    def _follow_base_fee(self, head: Any) -> None:
        """Keep the cached EIP-1559 fee cap at 2 × the latest base fee + tip, for free (no extra call)."""
        with self._lock:
            fees = self._fees
            base = head.get("baseFeePerGas") if isinstance(head, dict) else None
            if fees is None or "max_priority_fee_per_gas" not in fees or base is None:
                return
            tip = fees["max_priority_fee_per_gas"]
            fee = max_fee(_int(base, "baseFeePerGas", 0, FEE_MAX), tip, self.max_fee_cap_wei)
            self._fees = {"max_fee_per_gas": max(fee, tip), "max_priority_fee_per_gas": tip}

    def _estimate_gas(self) -> int:
        probe = {"from": self.address, "to": self.to, "value": "0x0", "data": TAG_HEX + "ff" * 32}
        try:
            return _int(self.rpc.call("eth_estimateGas", probe), "gas (eth_estimateGas)", 21_000, GAS_MAX)
        except RpcError as exc:
            raise LedgerError(f"cannot estimate gas for an anchor from {self.address} to {self.to} on chain "
                              f"{self.chain_id}: {exc.message} "
                              "(set ledger.evm.gas_limit to skip the estimate)") from exc

    # -- signing -------------------------------------------------------------------------
    def _sign(self, *, nonce: int, data: bytes, gas: int, fees: dict[str, int]) -> tuple[str, str]:
        tx: dict[str, Any] = {"chainId": self.chain_id, "nonce": nonce, "to": _checksum(self.to), "value": 0,
                              "data": "0x" + data.hex(), "gas": gas}
        if "gas_price" in fees:
            tx["gasPrice"] = fees["gas_price"]
        else:
            tx["type"] = 2
            tx["maxFeePerGas"] = fees["max_fee_per_gas"]
            tx["maxPriorityFeePerGas"] = fees["max_priority_fee_per_gas"]
        signed = self._account.sign_transaction(tx)
        return "0x" + bytes(signed.raw_transaction).hex(), "0x" + bytes(signed.hash).hex()

    # -- Ledger protocol --------------------------------------------------------------------
    def prepare(self, header_hash: bytes, *, gateway: str, block: int, now_ms: int) -> dict[str, Any]:
        """Sign an anchor for ``header_hash`` with the next nonce. No network once started."""
        data = anchor_input(header_hash)
        with self._lock:
            self._ensure_started()
            assert self._next_nonce is not None and self._fees is not None and self.gas_limit is not None
            nonce, fees, gas = self._next_nonce, dict(self._fees), self.gas_limit
            raw, txh = self._sign(nonce=nonce, data=data, gas=gas, fees=fees)
        return {
            "kind": self.kind, "v": SUBMISSION_VERSION, "chain_id": self.chain_id,
            "from": self.address, "to": self.to, "nonce": nonce, "gas": gas, **fees,
            "input": "0x" + data.hex(), "header_hash": bytes(header_hash).hex(),
            "gateway": gateway, "block": block, "prepared_ms": now_ms,
            "raw": raw, "tx": txh, "replaces": [],
        }

    def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        """Send the persisted raw transaction; idempotent. Raises LedgerUnavailable/LedgerError."""
        self._check_submission(submission)
        with self._lock:
            self._ensure_started()
        sub = dict(submission)
        sub.pop("rejected", None)
        try:
            got = self.rpc.call("eth_sendRawTransaction", sub["raw"])
            if _hex(got) != sub["tx"].lower():
                raise LedgerError(f"node returned hash {got} for our transaction {sub['tx']}")
        except RpcError as exc:
            msg = exc.message.lower()
            if any(s in msg for s in ALREADY_KNOWN):
                pass  # the node has exactly these bytes already: the crash-retry case
            elif any(s in msg for s in NONCE_USED) or any(s in msg for s in UNDERPRICED):
                if not self._any_known(sub):
                    # The nonce is taken by (or in the pool for) another transaction, or the fee is
                    # below what the node takes now: lookup() will report this as dropped.
                    sub["rejected"] = exc.message
                    return sub
            else:
                raise
        self.observe(sub)
        return sub

    def lookup(self, submission: dict[str, Any], *, now_ms: int) -> AnchorStatus:
        """Where the anchor stands. Raises LedgerUnavailable.

        - a receipt for ``tx`` or any hash in ``replaces``: status 0 → ``failed``; fewer than
          ``confirmations`` blocks → ``pending``; else ``confirmed`` with the anchor object;
        - no receipt, transaction in the node's pool → ``pending``; once this object has seen
          it pending for ``stuck_after_s`` (by the caller's ``now_ms``; kept in memory, so a
          restart restarts the wait) ``replacement`` holds the same nonce with fees +12.5 %:
          the caller should persist it, then submit it;
        - no receipt and unknown to the node, or stuck behind a nonce gap → ``dropped``
          (and the next nonce is re-read from the chain).
        """
        self._check_submission(submission)
        with self._lock:
            self._ensure_started()
        hashes = [submission["tx"], *submission.get("replaces", [])]
        for h in hashes:
            rc = obj(self.rpc.call("eth_getTransactionReceipt", h), "receipt")
            if rc:
                return self._landed(submission, rc)
        # No receipt for any of our transactions with this nonce.
        known = None
        for h in hashes:
            known = obj(self.rpc.call("eth_getTransactionByHash", h), "transaction")
            if known:
                break
        nonce = int(submission["nonce"])
        sender = str(submission.get("from", self.address))  # signed by an earlier key? ask about that one
        if not known:
            for h in hashes:  # mined between the two reads?
                rc = obj(self.rpc.call("eth_getTransactionReceipt", h), "receipt")
                if rc:
                    return self._landed(submission, rc)
            mined_count = _int(self.rpc.call("eth_getTransactionCount", sender, "latest"), "nonce", 0, NONCE_MAX)
            if submission.get("rejected"):
                reason = f"node rejected the transaction: {submission['rejected']}"
            elif mined_count > nonce:
                reason = f"nonce {nonce} was used by another transaction (account nonce is now {mined_count})"
            else:
                reason = "transaction unknown to the node (evicted from its pool or reorged out)"
            return self._dropped(hashes, reason)
        if known.get("blockHash"):
            return AnchorStatus("pending", reason="mined; receipt not yet available")
        pending_count = _int(self.rpc.call("eth_getTransactionCount", sender, "pending"), "pending nonce", 0, NONCE_MAX)
        if pending_count <= nonce:
            return self._dropped(hashes, f"nonce gap: the node's next nonce is {pending_count}, this transaction "
                                         f"has {nonce} and can never be mined")
        first = self._first_pending_ms.setdefault(submission["tx"], now_ms)
        waited = now_ms - first
        if waited < self.stuck_after_ms:
            return AnchorStatus("pending", reason=f"in the node's pool for {waited} ms")
        replacement = self._replacement(submission, now_ms)
        if replacement is None:
            return AnchorStatus("pending", reason=f"stuck for {waited} ms; fee cap "
                                                  f"{self.max_fee_cap_wei} wei reached, not bumping")
        return AnchorStatus("pending", reason=f"stuck for {waited} ms; replacing with higher fees",
                            replacement=replacement)

    def close(self) -> None:
        self.rpc.close()

    # -- helpers --------------------------------------------------------------------------
    def _check_submission(self, sub: dict[str, Any]) -> None:
        if not isinstance(sub, dict) or sub.get("kind") != self.kind:
            raise LedgerError(f"not an evm submission: kind {sub.get('kind') if isinstance(sub, dict) else sub!r}")
        if sub.get("chain_id") != self.chain_id:
            raise LedgerError(f"submission is for chain id {sub.get('chain_id')}, "
                              f"this ledger is chain id {self.chain_id}")
        for k in ("raw", "tx", "nonce"):
            if k not in sub:
                raise LedgerError(f"evm submission lacks {k!r}")

    def _any_known(self, sub: dict[str, Any]) -> bool:
        for h in [sub["tx"], *sub.get("replaces", [])]:
            if (obj(self.rpc.call("eth_getTransactionReceipt", h), "receipt")
                    or obj(self.rpc.call("eth_getTransactionByHash", h), "transaction")):
                return True
        return False

    def _dropped(self, hashes: list[str], reason: str) -> AnchorStatus:
        with self._lock:
            for h in hashes:
                self._first_pending_ms.pop(h, None)
            self._sync_nonce(keep_known=False)  # a freed nonce must be reused, or later anchors wait forever
            self._refresh_fees()
        return AnchorStatus("dropped", reason=reason)

    def _landed(self, sub: dict[str, Any], rc: dict[str, Any]) -> AnchorStatus:
        self.observe(sub)
        for h in [sub["tx"], *sub.get("replaces", [])]:
            self._first_pending_ms.pop(h, None)
        txh = _hex(rc.get("transactionHash"))
        number = _int(rc.get("blockNumber"), "receipt block number", 0, BLOCK_MAX)
        if _int(rc.get("status"), "receipt status", 0, 1) != 1:
            return AnchorStatus("failed", reason=f"transaction {txh} reverted (receipt status 0) in block {number}, "
                                                 f"gas used {_int(rc.get('gasUsed', 0), 'gasUsed', 0, GAS_MAX)} "
                                                 f"of {sub.get('gas')}",
                                extra={"tx": txh, "block_number": number})
        head = obj(self.rpc.call("eth_getBlockByNumber", "latest", False), "latest block")
        latest = _int(head.get("number") if head is not None else None, "latest block number", 0, BLOCK_MAX)
        self._follow_base_fee(head)
        confs = latest - number + 1
        if confs < self.confirmations:
            return AnchorStatus("pending", reason=f"{confs} of {self.confirmations} confirmations",
                                extra={"tx": txh, "block_number": number, "confirmations": confs})
        block_hash = _hex(rc.get("blockHash"))
        # Read the transaction by block hash and index: getTransactionByHash may still say
        # "pending" for a few ms after the receipt exists (anvil).
        index = _int(rc.get("transactionIndex"), "transaction index", 0, INDEX_MAX)
        tx = obj(self.rpc.call("eth_getTransactionByBlockHashAndIndex", block_hash, hex(index)), "transaction")
        blk = obj(self.rpc.call("eth_getBlockByHash", block_hash, False), "block")
        if not tx or not blk or _hex(tx.get("hash")) != txh:
            return AnchorStatus("pending", reason=f"block {block_hash} changed while reading it (reorg?)")
        time_ms = block_time_s(blk.get("timestamp")) * 1000
        anchor = {
            "kind": self.kind, "chain_id": self.chain_id, "tx": txh, "block_number": number,
            "block_hash": block_hash, "from": _hex(tx.get("from")), "to": _hex(tx.get("to")),
            "input": _hex(tx.get("input")), "header_hash": sub["header_hash"], "time_ms": time_ms,
            "confirmations_required": self.confirmations,
        }
        return AnchorStatus("confirmed", anchor=anchor, time_ms=time_ms,
                            extra={"confirmations": confs,
                                   "gas_used": _int(rc.get("gasUsed", 0), "gasUsed", 0, GAS_MAX)})

    def _replacement(self, sub: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
        """The same transaction (nonce, input, gas) with fees bumped by at least 12.5 %."""
        cur = self._current_fees()
        with self._lock:
            self._fees = dict(cur)
        fees, top = replacement_fees(sub, cur)
        if self.max_fee_cap_wei is not None and top > self.max_fee_cap_wei:
            return None
        data = bytes.fromhex(sub["input"][2:])
        raw, txh = self._sign(nonce=int(sub["nonce"]), data=data, gas=int(sub["gas"]), fees=fees)
        new = {k: v for k, v in sub.items() if k not in ("gas_price", "max_fee_per_gas", "max_priority_fee_per_gas",
                                                           "rejected")}
        new.update(fees)
        new.update({"raw": raw, "tx": txh, "prepared_ms": now_ms,
                    "replaces": [sub["tx"], *sub.get("replaces", [])]})
        return new

