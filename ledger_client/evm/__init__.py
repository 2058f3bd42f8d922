"""Anchor block-header hashes on any Ethereum JSON-RPC chain, and verify such anchors.

Anchor transaction (normative: docs/proof-format.md §Anchors, kind ``evm``)
------------------------------------------------------------------------------
A plain transaction, value 0, signed offline with the gateway's *Ethereum* key (a
secp256k1 key in its own 0600 file, separate from the Ed25519 record-signing key), whose
input is exactly 36 bytes::

    input = b"TSL1" (0x54534c31) || header_hash (32 bytes, SHA-256 of the canonical header)

The recipient defaults to the sender itself (a self-send), configurable with ``to``:

- an externally owned account has no code, so nothing executes and the transaction
  cannot revert for reasons outside our control (a shared "sink" address could turn out
  to hold code on some chain, or be a precompile);
- the anchor history of a gateway is then simply its own transactions: an auditor pins one
  address (``--sender``) and every anchor both comes from and goes to it;
- no third-party address to allow-list on permissioned chains (Besu account permissioning),
  and nothing that links unrelated traceseal deployments to each other on a public chain.

Gas is estimated once at start with an all-0xff payload (the most expensive calldata of
that length; EIP-7623's calldata floor makes 21000 + 16/byte too low — such a transaction
is accepted then silently dropped) and multiplied by ``gas_margin``. Fees are EIP-1559
(``maxFeePerGas = 2 × baseFee + tip``) when the latest block has a ``baseFeePerGas``,
legacy ``gasPrice`` otherwise.

Configuration (``[ledger.evm]``, read by ``EvmLedger.from_config``)
--------------------------------------------------------------------
=================== ======== ===================================================================
key                 default  meaning
=================== ======== ===================================================================
rpc_url             required JSON-RPC URL of the node (http/https)
chain_id            required checked against ``eth_chainId`` at start; mismatch refuses to run
key_file            required secp256k1 key, hex on one line, mode 0600 (``generate_eth_key``)
to                  sender   anchor recipient address
confirmations       1        blocks (incl. its own) before ``confirmed``; 1 suits BFT chains
                             (Besu/Quorum QBFT/IBFT finality); use ≥ 12 or more on PoW/PoS chains
stuck_after_s       120      a transaction still in the pool this long is replaced (+12.5 % fees)
gas_limit           estimate fixed gas limit (skips the all-0xff ``eth_estimateGas`` at start)
gas_margin          1.25     gas limit = estimate × margin
fee_mode            auto     ``auto`` (EIP-1559 if the chain has a base fee), ``eip1559``, ``legacy``
priority_fee_gwei   node     tip; default ``eth_maxPriorityFeePerGas``
max_fee_gwei        none     ceiling for maxFeePerGas/gasPrice; bumps stop there
timeout_s           10       TOTAL deadline of every JSON-RPC call (connect, headers and body)
connect_timeout_s   3        connect timeout of every JSON-RPC call (within ``timeout_s``)
max_reply_bytes     4194304  a larger reply is refused unread (``BadNodeReply``)
=================== ======== ===================================================================

Submission (what the caller's durable outbox stores, JSON)
-----------------------------------------------------------
``prepare`` signs the transaction and returns everything needed to send it again
byte-for-byte: ``nonce``, ``raw`` (signed transaction hex), ``tx`` (its hash), fees, gas,
the header hash, plus ``replaces`` (hashes of earlier transactions with the same nonce
that this one replaced by a fee bump: any of them landing counts as the anchor).

Nonces and the crash story
--------------------------
The durable outbox, not this object, is the source of truth. ``start()`` reads
``eth_getTransactionCount(sender, "pending")``; afterwards the next nonce is
``max(chain pending count, highest nonce this process has seen sent + 1)``. ``prepare``
*reserves nothing*: the nonce only advances when ``submit`` succeeds (or when the caller
shows us a persisted submission with ``observe``/``start(known=...)``). So two prepares
without a submit between them get the same nonce and at most one of them can ever land,
and no nonce gap (a transaction that would wait forever behind a missing nonce) can be
created by a prepared-but-never-sent submission.

- Crash after ``prepare`` was persisted but before the send: on restart the node's
  pending count has not moved; the caller resubmits the persisted bytes, which take that
  nonce — one anchor.
- Crash between send and receipt: the caller resubmits the same raw transaction. The node
  answers "already known"/"already imported" (still in its pool) or "nonce too low" (it
  was mined); we then check that *our* transaction hash is known or mined, and count that
  as success. The same signed bytes can only ever be included once, so this never makes a
  second anchor. ``lookup`` then finds the receipt by hash.
- Crash between a fee-bump replacement's send and its persistence (the caller should
  persist ``AnchorStatus.replacement`` before submitting it): the outbox still holds the
  original; if the replacement is mined, the original's nonce is "used by another
  transaction" and ``lookup`` reports ``dropped``, so the caller re-anchors once more. An
  extra anchor, never a lost one.
- ``dropped`` (reorged out, evicted, rejected, or its nonce used by another transaction)
  re-reads the chain's pending count, so the next ``prepare`` reuses a freed nonce instead
  of leaving a gap.

``prepare`` never touches the network once ``start()`` has run; if the caller never called
``start()``, the first ``prepare`` (or ``submit``/``lookup``) runs it — reads only, it may
raise ``LedgerUnavailable``. The constructor itself never touches the network, so the
gateway starts (and raises alarms) with the node down.

This package never imports ``gateway`` and needs only ``requests`` to verify anchors;
``eth-account`` (imported lazily) is needed only to sign. Modules: ``rpc`` (JSON-RPC and the
ranges of node numbers), ``anchor`` (the input format and ``verify_evm_anchor``),
``writer`` (``EvmLedger``), ``ethkeys`` (the key file).
"""

from __future__ import annotations

from ..retry import backoff_s
from .anchor import INPUT_LEN, TAG, TAG_HEX, anchor_input, verify_evm_anchor
from .ethkeys import generate_eth_key, load_eth_key
from .fees import FEE_BUMP_DEN, FEE_BUMP_NUM
from .rpc import (
    BLOCK_MAX,
    CHAIN_ID_MAX,
    DEFAULT_MAX_REPLY_BYTES,
    FEE_MAX,
    GAS_MAX,
    INDEX_MAX,
    NONCE_MAX,
    TIME_MAX_S,
    TIME_MIN_S,
    U64,
    JsonRpc,
    RpcError,
    block_time_s,
    loads_bounded,
    obj,
    quantity,
)
from .settings import DEFAULT_CONFIRMATIONS, DEFAULT_GAS_MARGIN, DEFAULT_STUCK_AFTER_S
from .writer import SUBMISSION_VERSION, EvmLedger

__all__ = [
    "BLOCK_MAX", "CHAIN_ID_MAX", "DEFAULT_CONFIRMATIONS", "DEFAULT_GAS_MARGIN", "DEFAULT_MAX_REPLY_BYTES",
    "DEFAULT_STUCK_AFTER_S", "FEE_BUMP_DEN", "FEE_BUMP_NUM", "FEE_MAX", "GAS_MAX", "INDEX_MAX", "INPUT_LEN",
    "NONCE_MAX", "SUBMISSION_VERSION", "TAG", "TAG_HEX", "TIME_MAX_S", "TIME_MIN_S", "U64", "EvmLedger",
    "JsonRpc", "RpcError", "anchor_input", "backoff_s", "block_time_s", "generate_eth_key", "load_eth_key",
    "loads_bounded", "obj", "quantity", "verify_evm_anchor",
]
