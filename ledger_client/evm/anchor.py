"""The evm anchor itself (docs/proof-format.md §Anchors, kind ``evm``): the 36-byte input
``b"TSL1" || header_hash``, and ``verify_evm_anchor``, which checks an anchor against a node
the auditor chooses, reading every fact from the node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from ..errors import LedgerError, LedgerUnavailable, VerificationError
from .rpc import (
    BLOCK_MAX,
    CHAIN_ID_MAX,
    INDEX_MAX,
    TIME_MAX_S,
    TIME_MIN_S,
    U64,
    JsonRpc,
    _hex,
    obj,
    quantity,
)

TAG = b"TSL1"
TAG_HEX = "0x" + TAG.hex()  # 0x54534c31
INPUT_LEN = len(TAG) + 32


def anchor_input(header_hash: bytes) -> bytes:
    """The 36-byte transaction input for ``header_hash``: ``b"TSL1" || header_hash``."""
    if not isinstance(header_hash, (bytes, bytearray)) or len(header_hash) != 32:
        got = len(header_hash) if isinstance(header_hash, (bytes, bytearray)) else type(header_hash).__name__
        raise ValueError(f"header hash must be 32 bytes, got {got}")
    return TAG + bytes(header_hash)


def _checksum(addr: str) -> str:
    from eth_utils.address import to_checksum_address  # installed with eth-account

    return str(to_checksum_address(addr))


# -- verification ---------------------------------------------------------------------------

def verify_evm_anchor(anchor: dict[str, Any], header_hash: bytes, *, step: int, rpc_url: str | None = None,
                      expected_chain_id: int | None = None, expected_sender: str | None = None,
                      min_confirmations: int | None = None, session: requests.Session | None = None,
                      expected_recipient: str | None = None, timeout_s: float = 10.0) -> int:
    """Check an ``evm`` anchor against a node the auditor chooses; return the block time (Unix ms).

    Every fact is read from the node, never taken from the anchor object: the anchor only
    says where to look (chain id, transaction hash). Checks, each with its own message:
    chain id (node = anchor, and = ``expected_chain_id``), header hash named, transaction
    exists (receipt), receipt status 1, the transaction at the receipt's block and index is
    this one, sender (= anchor's, and = ``expected_sender``), recipient (= anchor's, and =
    ``expected_recipient``), input = ``b"TSL1" || header_hash``, confirmations ≥ required
    (``min_confirmations`` if given, else the anchor's ``confirmations_required``), and
    the time from the block's timestamp. The anchor's ``block_number``/``block_hash`` and
    ``time_ms`` are hints only (a shallow reorg may move the transaction to another block).
    """
    fail = _failer(step)
    chain_id, txh = _anchor_fields(anchor, header_hash, fail, rpc_url, expected_chain_id)
    assert rpc_url is not None  # _anchor_fields refused None
    node = _Node(JsonRpc(rpc_url, session=session, timeout_s=timeout_s), rpc_url, fail)
    try:
        number, block_hash, tx = _find_tx(node, chain_id, txh)
        _check_tx(anchor, tx, txh, header_hash, fail, expected_sender, expected_recipient)
        return _confirmed_time(node, anchor, txh, number, block_hash, min_confirmations)
    finally:
        node.rpc.close()


Fail = Callable[[str], VerificationError]


def _failer(step: int) -> Fail:
    def fail(msg: str) -> VerificationError:
        return VerificationError(step, "anchor", msg)
    return fail


def _anchor_fields(anchor: Any, header_hash: bytes, fail: Fail, rpc_url: str | None,
                   expected_chain_id: int | None) -> tuple[int, str]:
    """What the anchor object says, checked for shape before any node is asked: (chain id, tx hash)."""
    if not isinstance(anchor, dict):
        raise fail(f"evm anchor is {type(anchor).__name__}, want an object")
    for k in ("chain_id", "tx"):
        if k not in anchor:
            raise fail(f"evm anchor lacks field {k!r}")
    chain_id, txh = anchor["chain_id"], anchor["tx"]
    if not isinstance(chain_id, int) or isinstance(chain_id, bool):
        raise fail(f"evm anchor chain_id {chain_id!r} is not an integer")
    if not (isinstance(txh, str) and txh.startswith("0x") and len(txh) == 66):
        raise fail(f"evm anchor tx {txh!r} is not a 0x-prefixed 32-byte hash")
    txh = txh.lower()
    if rpc_url is None:
        raise fail(f"EVM anchor (chain {chain_id}, tx {txh}) cannot be checked without --rpc: give the URL of a "
                   f"node of chain {chain_id} that you trust")
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise fail(f"anchor is on chain id {chain_id}, want chain id {expected_chain_id} (--chain-id)")
    named = anchor.get("header_hash")
    if named is not None and str(named).lower() != header_hash.hex():
        raise fail(f"anchor names header hash {named}, want {header_hash.hex()}")
    return chain_id, txh


class _Node:
    """The auditor's node: every failure (unreachable, error, malformed answer) a verification failure."""

    def __init__(self, rpc: JsonRpc, rpc_url: str, fail: Fail) -> None:
        self.rpc, self.rpc_url, self.fail = rpc, rpc_url, fail

    def call(self, method: str, *params: Any) -> Any:
        try:
            return self.rpc.call(method, *params)
        except LedgerUnavailable as exc:
            raise self.fail(f"cannot reach the node at {self.rpc_url}: {exc}") from exc
        except LedgerError as exc:
            raise self.fail(f"node at {self.rpc_url} failed {method}: {exc}") from exc

    def q(self, value: Any, what: str, lo: int = 0, hi: int = U64) -> int:
        try:
            return quantity(value, what, lo, hi)
        except LedgerError as exc:
            raise self.fail(f"node at {self.rpc_url} returned a malformed {what}: {exc}") from exc

    def o(self, value: Any, what: str) -> dict[str, Any] | None:
        try:
            return obj(value, what)
        except LedgerError as exc:
            raise self.fail(f"node at {self.rpc_url} returned a malformed {what}: {exc}") from exc


def _find_tx(node: _Node, chain_id: int, txh: str) -> tuple[int, str, dict[str, Any]]:
    """Node on the anchor's chain, receipt with status 1, and the transaction at the receipt's
    block and index is this one: (block number, block hash, transaction)."""
    fail, rpc_url = node.fail, node.rpc_url
    node_chain = node.q(node.call("eth_chainId"), "chain id", 1, CHAIN_ID_MAX)
    if node_chain != chain_id:
        raise fail(f"node at {rpc_url} is on chain id {node_chain}, but the anchor is on chain id {chain_id}")
    rc = node.o(node.call("eth_getTransactionReceipt", txh), "receipt")
    if not rc:
        raise fail(f"transaction {txh} not found on chain id {chain_id} (no receipt: never mined, dropped or "
                   f"reorged out)")
    number = node.q(rc.get("blockNumber"), "receipt block number", 0, BLOCK_MAX)
    status = node.q(rc.get("status"), "receipt status", 0, 1)
    if status != 1:
        raise fail(f"transaction {txh} failed: receipt status {status} in block {number}, want 1")
    block_hash = _hex(rc.get("blockHash"))
    index = node.q(rc.get("transactionIndex"), "transaction index", 0, INDEX_MAX)
    tx = node.o(node.call("eth_getTransactionByBlockHashAndIndex", block_hash, hex(index)), "transaction")
    if not tx or _hex(tx.get("hash")) != txh:
        raise fail(f"block {block_hash} at index {index} holds "
                   f"{_hex(tx.get('hash')) if tx else 'nothing'}, not transaction {txh}")
    return number, block_hash, tx


def _check_tx(anchor: dict[str, Any], tx: dict[str, Any], txh: str, header_hash: bytes, fail: Fail,
              expected_sender: str | None, expected_recipient: str | None) -> None:
    """Sender and recipient as the anchor (and the auditor) say; input ``b"TSL1" || header_hash``."""
    sender, recipient = _hex(tx.get("from")), _hex(tx.get("to"))
    if anchor.get("from") is not None and str(anchor["from"]).lower() != sender:
        raise fail(f"anchor names sender {anchor['from']}, but the chain says transaction {txh} is from {sender}")
    if expected_sender is not None and sender != expected_sender.lower():
        raise fail(f"transaction {txh} is from {sender}, want {expected_sender.lower()} (--sender)")
    if anchor.get("to") is not None and str(anchor["to"]).lower() != recipient:
        raise fail(f"anchor names recipient {anchor['to']}, but the chain says transaction {txh} goes to "
                   f"{recipient or 'contract creation'}")
    if expected_recipient is not None and recipient != expected_recipient.lower():
        raise fail(f"transaction {txh} goes to {recipient}, want {expected_recipient.lower()}")
    got_input = _hex(tx.get("input"))
    want_input = TAG_HEX + header_hash.hex()
    if got_input != want_input:
        raise fail(f"transaction {txh} input is {got_input}, want {want_input} (tag {TAG.decode()} + header hash)")


def _confirmed_time(node: _Node, anchor: dict[str, Any], txh: str, number: int, block_hash: str,
                    min_confirmations: int | None) -> int:
    """Enough confirmations; then the block's own timestamp, in Unix ms."""
    fail = node.fail
    required = min_confirmations if min_confirmations is not None else anchor.get("confirmations_required", 1)
    if not isinstance(required, int) or required < 1:
        raise fail(f"confirmations required {required!r} is not a positive integer")
    latest = node.q(node.call("eth_blockNumber"), "block number", 0, BLOCK_MAX)
    confs = latest - number + 1
    if confs < required:
        raise fail(f"transaction {txh} has {confs} confirmation(s) (block {number}, latest {latest}), "
                   f"want at least {required}")
    blk = node.o(node.call("eth_getBlockByHash", block_hash, False), "block")
    if not blk:
        raise fail(f"block {block_hash} of transaction {txh} not found on the node")
    return node.q(blk.get("timestamp"), "block timestamp", TIME_MIN_S, TIME_MAX_S) * 1000
