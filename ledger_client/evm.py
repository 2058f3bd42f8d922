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

This module never imports ``gateway`` and needs only ``requests`` to verify anchors;
``eth-account`` (imported lazily) is needed only to sign.
"""

from __future__ import annotations

import math
import socket
import stat
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from . import safejson
from .errors import BadNodeReply, KeyFileError, LedgerError, LedgerUnavailable, VerificationError
from .files import write_atomic
from .ledger import AnchorStatus
from .retry import backoff_s  # noqa: F401  (re-exported: part of this module's API)

TAG = b"TSL1"
TAG_HEX = "0x" + TAG.hex()  # 0x54534c31
INPUT_LEN = len(TAG) + 32
SUBMISSION_VERSION = 1
DEFAULT_CONFIRMATIONS = 1
DEFAULT_STUCK_AFTER_S = 120.0
DEFAULT_GAS_MARGIN = 1.25
DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024  # the largest honest reply we ask for is a few KiB
FEE_BUMP_NUM, FEE_BUMP_DEN = 9, 8  # +12.5 %: above geth's 10 % and Besu's/Nethermind's rules

# Substrings (lower case) of node errors from geth, Besu, Nethermind, Erigon and anvil.
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "alreadyknown",
                  "already in pool", "already exists")
_NONCE_USED = ("nonce too low", "nonce is too low", "oldnonce", "old nonce", "nonce has already been used")
_UNDERPRICED = ("underpriced", "fee cap less than block base fee", "max fee per gas less than block base fee",
                "gas price too low", "feetoolow", "fee too low", "gas price below")


def anchor_input(header_hash: bytes) -> bytes:
    """The 36-byte transaction input for ``header_hash``: ``b"TSL1" || header_hash``."""
    if not isinstance(header_hash, (bytes, bytearray)) or len(header_hash) != 32:
        raise ValueError(f"header hash must be 32 bytes, got {len(header_hash) if isinstance(header_hash, (bytes, bytearray)) else type(header_hash).__name__}")
    return TAG + bytes(header_hash)


# -- JSON-RPC -------------------------------------------------------------------------------

class RpcError(LedgerError):
    """The node answered with a JSON-RPC error object; ``.message`` is the node's text."""

    def __init__(self, method: str, code: Any, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message} (JSON-RPC error {code})")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class JsonRpc:
    """Minimal JSON-RPC 2.0 over HTTP that never trusts the node.

    - a TOTAL deadline per call (``timeout_s``, connect included): requests' own timeout is
      per read, so a node dripping one byte every few seconds would hold a call forever. A
      watchdog timer shuts the call's sockets when the deadline passes, whether the node is
      dripping the status line, the headers or the body; the call then raises
      ``LedgerUnavailable`` ("no complete reply within the deadline");
    - a cap on the reply (``max_reply_bytes``, 4 MiB by default; the largest honest reply we
      ask for, a block without transactions, is a few KiB): refused as soon as the declared
      Content-Length or the bytes read exceed it, without reading the rest (``BadNodeReply``);
    - a reply that is not a JSON-RPC object is ``BadNodeReply``; the values inside are
      range-checked by the caller (``quantity``, ``obj``).

    Calls are serialised (one in flight per client): the watchdog then knows which sockets
    are the late call's, and the anchorer and ``verify`` make one call at a time anyway.
    """

    def __init__(self, url: str, *, session: requests.Session | None = None, timeout_s: float = 10.0,
                 connect_timeout_s: float = 3.0, max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise LedgerError(f"JSON-RPC timeouts must be positive, got {timeout_s}, {connect_timeout_s}")
        if max_reply_bytes < 1024:
            raise LedgerError(f"max_reply_bytes must be at least 1024, got {max_reply_bytes}")
        self.url = url
        self.session = session if session is not None else requests.Session()
        self._own_session = session is None
        self.deadline_s = float(timeout_s)
        self.connect_timeout_s = min(float(connect_timeout_s), self.deadline_s)
        self.max_reply_bytes = int(max_reply_bytes)
        self._conns: weakref.WeakSet[Any] = weakref.WeakSet()
        adapter = _tracking_adapter(self._conns)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._id = 0
        self._lock = threading.Lock()

    def call(self, method: str, *params: Any) -> Any:
        deadline = time.monotonic() + self.deadline_s
        late = LedgerUnavailable(f"{self.url} ({method}): no complete reply within the {self.deadline_s:g} s "
                                 f"deadline (a slow or drip-feeding node)")
        if not self._lock.acquire(timeout=self.deadline_s):
            raise late
        try:
            self._id += 1
            body: dict[str, Any] = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
            fired = threading.Event()

            def expire() -> None:
                fired.set()
                for conn in list(self._conns):
                    sock = getattr(conn, "sock", None)
                    if sock is not None:
                        try:
                            sock.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
            watchdog = threading.Timer(self.deadline_s, expire)
            watchdog.daemon = True
            watchdog.start()
            try:
                status, raw = self._exchange(method, body, deadline, fired, late)
            finally:
                watchdog.cancel()
        finally:
            self._lock.release()
        return self._result(method, status, raw)

    def _exchange(self, method: str, body: dict[str, Any], deadline: float, fired: threading.Event,
                  late: LedgerUnavailable) -> tuple[int, bytes]:
        """POST and read the reply within the deadline and the cap: (HTTP status, body bytes)."""
        resp = None
        try:
            resp = self.session.post(self.url, json=body, stream=True,
                                     headers={"Accept-Encoding": "identity"},
                                     timeout=(self.connect_timeout_s, self.deadline_s))
            declared = resp.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > self.max_reply_bytes:
                raise BadNodeReply(f"{self.url} ({method}): reply of {int(declared)} bytes exceeds the cap of "
                                   f"{self.max_reply_bytes} bytes (ledger.evm.max_reply_bytes)")
            chunks: list[bytes] = []
            size = 0
            for chunk in resp.iter_content(chunk_size=16384):
                size += len(chunk)
                if size > self.max_reply_bytes:
                    raise BadNodeReply(f"{self.url} ({method}): reply exceeds the cap of {self.max_reply_bytes} "
                                       f"bytes (ledger.evm.max_reply_bytes)")
                if time.monotonic() > deadline:
                    raise late
                chunks.append(chunk)
            if fired.is_set():
                raise late
            return resp.status_code, b"".join(chunks)
        except (BadNodeReply, LedgerUnavailable):
            raise
        except Exception as exc:  # requests, urllib3 and socket errors: all mean the same here
            if fired.is_set() or time.monotonic() > deadline:
                raise late from exc
            if isinstance(exc, (requests.ConnectionError, requests.Timeout, OSError)):
                raise LedgerUnavailable(f"{self.url} unreachable ({method}): {type(exc).__name__}: {exc}") from exc
            if isinstance(exc, requests.RequestException):
                raise LedgerError(f"{self.url} ({method}): {type(exc).__name__}: {exc}") from exc
            raise
        finally:
            if resp is not None:
                resp.close()

    def _result(self, method: str, status: int, raw: bytes) -> Any:
        try:
            reply = loads_bounded(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            if status in (429, 502, 503, 504):
                raise LedgerUnavailable(f"{self.url} ({method}): HTTP {status}")
            raise BadNodeReply(f"{self.url} ({method}): HTTP {status}, not a JSON-RPC reply: {raw[:200]!r}")
        err = reply.get("error")
        if err is not None:
            if isinstance(err, dict):
                raise RpcError(method, err.get("code"), str(err.get("message", ""))[:500], err.get("data"))
            raise BadNodeReply(f"{self.url} ({method}): JSON-RPC error that is not an object: {str(err)[:200]}")
        if "result" not in reply:
            raise BadNodeReply(f"{self.url} ({method}): JSON-RPC reply without result: {str(reply)[:200]}")
        return reply["result"]

    def close(self) -> None:
        if self._own_session:
            self.session.close()


def loads_bounded(raw: bytes) -> Any:
    """JSON from a node, or ValueError: bad UTF-8, absurd nesting (RecursionError) and
    numbers too long for Python (ValueError past 4300 digits) all mean "not JSON-RPC"."""
    try:
        return safejson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from exc


def _tracking_adapter(conns: weakref.WeakSet[Any]) -> HTTPAdapter:
    """An adapter whose connections register themselves in ``conns`` when they connect, so
    the call's watchdog can shut their sockets (requests gives no handle on the socket while
    it reads the status line and headers)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class Conn(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            conns.add(self)

    class TlsConn(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            conns.add(self)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = TlsConn

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}

    return Adapter()


# Ranges of the numbers we take from a node (a hostile node answers 2^300 as readily as 5).
U64 = 2 ** 64 - 1
BLOCK_MAX = 2 ** 63 - 1  # geth, Besu and Nethermind keep block numbers in 64 bits
NONCE_MAX = 2 ** 64 - 2  # EIP-2681
CHAIN_ID_MAX = U64
GAS_MAX = U64
FEE_MAX = 2 ** 128  # wei per gas; 3.4e20 ether: beyond this nothing is a price any more
INDEX_MAX = 2 ** 32
TIME_MIN_S = 946_684_800  # 2000-01-01T00:00:00Z
TIME_MAX_S = 7_258_118_400  # 2200-01-01T00:00:00Z: a block from outside these is a lie, not a time


def quantity(value: Any, what: str, lo: int = 0, hi: int = U64) -> int:
    """A JSON-RPC quantity ("0x"-hex, or a JSON integer) within ``lo..hi``, else BadNodeReply."""
    if isinstance(value, int) and not isinstance(value, bool):
        v = value
    elif isinstance(value, str) and 0 < len(value) <= 80:
        try:
            v = int(value, 16) if value[:2].lower() == "0x" else int(value)
        except ValueError:
            raise BadNodeReply(f"{what}: not a quantity: {value!r}") from None
    else:
        raise BadNodeReply(f"{what}: not a quantity: {str(value)[:80]!r}")
    if not lo <= v <= hi:
        raise BadNodeReply(f"{what} {v} is outside {lo}..{hi}")
    return v


def block_time_s(value: Any, what: str = "block timestamp") -> int:
    """A block timestamp in seconds, between 2000 and 2200."""
    return quantity(value, what, TIME_MIN_S, TIME_MAX_S)


def obj(value: Any, what: str) -> dict[str, Any] | None:
    """A JSON-RPC object result (a block, a receipt, a transaction) or null, else BadNodeReply."""
    if value is None or isinstance(value, dict):
        return value
    raise BadNodeReply(f"{what}: want an object or null, got {type(value).__name__} {str(value)[:80]!r}")


def _int(value: Any, what: str, lo: int = 0, hi: int = U64) -> int:
    return quantity(value, what, lo, hi)


def _hex(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def _eth_account() -> Any:
    """``eth_account.Account``, imported with Python's recursion limit kept as it was.

    ``eth_account`` imports ``py_ecc``, which raises the limit to 100,000 for the whole
    process. CPython's C JSON decoder relies on that limit to stop on deep nesting, so with it
    one deeply nested message (an MQTT payload, a node's reply, a bundle) overflowed the C
    stack and killed the gateway with SIGSEGV. Signing secp256k1 transactions does not need
    the deep recursion (py_ecc's pairing code is for BLS)."""
    import sys

    limit = sys.getrecursionlimit()
    try:
        from eth_account import Account
    finally:
        sys.setrecursionlimit(limit)
    return Account


# -- keys -----------------------------------------------------------------------------------

def generate_eth_key(path: Path | str, *, overwrite: bool = False) -> str:
    """Write a new secp256k1 key (hex, one line) to a 0600 file; return its 0x address."""
    Account = _eth_account()

    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key")
    acct = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # 0600 from the first byte, never through a planted link, never half written
        write_atomic(path, ("0x" + bytes(acct.key).hex() + "\n").encode(), mode=0o600, overwrite=overwrite)
    except FileExistsError:
        raise KeyFileError(f"{path}: already exists; refusing to overwrite a key") from None
    return str(acct.address)


def load_eth_key(path: Path | str) -> Any:
    """The ``LocalAccount`` in a key file; refuses a file group or others can read."""
    Account = _eth_account()

    path = Path(path)
    if not path.exists():
        raise KeyFileError(f"{path}: no such Ethereum key file (create one with generate_eth_key)")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(f"{path}: mode {mode:04o} lets group/others read the Ethereum key; run: chmod 600 {path}")
    text = path.read_text().strip()
    try:
        return Account.from_key(text)
    except Exception as exc:  # eth-keys raises several types for bad input
        raise KeyFileError(f"{path}: not a hex secp256k1 private key ({type(exc).__name__})") from exc


# -- the ledger ----------------------------------------------------------------------------

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
        """Build from the ``[ledger.evm]`` table; see the module docstring for the keys."""
        known = {"rpc_url", "chain_id", "key_file", "to", "confirmations", "stuck_after_s", "gas_limit",
                 "gas_margin", "fee_mode", "priority_fee_gwei", "max_fee_gwei", "timeout_s", "connect_timeout_s",
                 "max_reply_bytes"}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise LedgerError(f"ledger.evm: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for req in ("rpc_url", "chain_id", "key_file"):
            if req not in cfg:
                raise LedgerError(f"ledger.evm.{req} is required")
        key_file = Path(cfg["key_file"])
        if base_dir is not None and not key_file.is_absolute():
            key_file = Path(base_dir) / key_file

        def gwei(name: str) -> int | None:
            v = cfg.get(name)
            return None if v is None else round(float(v) * 1e9)

        return cls(
            str(cfg["rpc_url"]), chain_id=int(cfg["chain_id"]), key_file=key_file, to=cfg.get("to"),
            confirmations=int(cfg.get("confirmations", DEFAULT_CONFIRMATIONS)),
            stuck_after_s=float(cfg.get("stuck_after_s", DEFAULT_STUCK_AFTER_S)),
            gas_limit=None if cfg.get("gas_limit") is None else int(cfg["gas_limit"]),
            gas_margin=float(cfg.get("gas_margin", DEFAULT_GAS_MARGIN)),
            fee_mode=str(cfg.get("fee_mode", "auto")), priority_fee_wei=gwei("priority_fee_gwei"),
            max_fee_cap_wei=gwei("max_fee_gwei"), timeout_s=float(cfg.get("timeout_s", 10.0)),
            connect_timeout_s=float(cfg.get("connect_timeout_s", 3.0)), session=session,
            max_reply_bytes=int(cfg.get("max_reply_bytes", DEFAULT_MAX_REPLY_BYTES)),
        )

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
                    tip = _int(self.rpc.call("eth_maxPriorityFeePerGas"), "priority fee (eth_maxPriorityFeePerGas)", 0, FEE_MAX)
                except RpcError:  # not offered by every node: derive it from the legacy price
                    tip = max(0, _int(self.rpc.call("eth_gasPrice"), "gas price (eth_gasPrice)", 0, FEE_MAX) - base_fee)
            max_fee = 2 * base_fee + tip
            if self.max_fee_cap_wei is not None:
                max_fee = min(max_fee, self.max_fee_cap_wei)
                tip = min(tip, max_fee)
            return {"max_fee_per_gas": max_fee, "max_priority_fee_per_gas": tip}
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
            max_fee = 2 * _int(base, "baseFeePerGas", 0, FEE_MAX) + tip
            if self.max_fee_cap_wei is not None:
                max_fee = min(max_fee, self.max_fee_cap_wei)
            self._fees = {"max_fee_per_gas": max(max_fee, tip), "max_priority_fee_per_gas": tip}

    def _estimate_gas(self) -> int:
        probe = {"from": self.address, "to": self.to, "value": "0x0", "data": TAG_HEX + "ff" * 32}
        try:
            return _int(self.rpc.call("eth_estimateGas", probe), "gas (eth_estimateGas)", 21_000, GAS_MAX)
        except RpcError as exc:
            raise LedgerError(f"cannot estimate gas for an anchor from {self.address} to {self.to} on chain "
                              f"{self.chain_id}: {exc.message} (set ledger.evm.gas_limit to skip the estimate)") from exc

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
            if any(s in msg for s in _ALREADY_KNOWN):
                pass  # the node has exactly these bytes already: the crash-retry case
            elif any(s in msg for s in _NONCE_USED) or any(s in msg for s in _UNDERPRICED):
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
            raise LedgerError(f"submission is for chain id {sub.get('chain_id')}, this ledger is chain id {self.chain_id}")
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
                                                 f"gas used {_int(rc.get('gasUsed', 0), 'gasUsed', 0, GAS_MAX)} of {sub.get('gas')}",
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
                            extra={"confirmations": confs, "gas_used": _int(rc.get("gasUsed", 0), "gasUsed", 0, GAS_MAX)})

    def _replacement(self, sub: dict[str, Any], now_ms: int) -> dict[str, Any] | None:
        """The same transaction (nonce, input, gas) with fees bumped by at least 12.5 %."""
        cur = self._current_fees()
        with self._lock:
            self._fees = dict(cur)

        def bump(old: int) -> int:
            return max(old + 1, -(-old * FEE_BUMP_NUM // FEE_BUMP_DEN))

        if "gas_price" in sub:
            fees = {"gas_price": max(bump(int(sub["gas_price"])), cur.get("gas_price", 0))}
            top = fees["gas_price"]
        else:
            tip = max(bump(int(sub["max_priority_fee_per_gas"])), cur.get("max_priority_fee_per_gas", 0))
            fee = max(bump(int(sub["max_fee_per_gas"])), cur.get("max_fee_per_gas", 0), tip)
            fees = {"max_fee_per_gas": fee, "max_priority_fee_per_gas": tip}
            top = fee
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
    name = "anchor"

    def fail(msg: str) -> VerificationError:
        return VerificationError(step, name, msg)

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

    rpc = JsonRpc(rpc_url, session=session, timeout_s=timeout_s)
    try:
        def call(method: str, *params: Any) -> Any:
            try:
                return rpc.call(method, *params)
            except LedgerUnavailable as exc:
                raise fail(f"cannot reach the node at {rpc_url}: {exc}") from exc
            except LedgerError as exc:
                raise fail(f"node at {rpc_url} failed {method}: {exc}") from exc

        def q(value: Any, what: str, lo: int = 0, hi: int = U64) -> int:
            try:
                return quantity(value, what, lo, hi)
            except LedgerError as exc:
                raise fail(f"node at {rpc_url} returned a malformed {what}: {exc}") from exc

        def o(value: Any, what: str) -> dict[str, Any] | None:
            try:
                return obj(value, what)
            except LedgerError as exc:
                raise fail(f"node at {rpc_url} returned a malformed {what}: {exc}") from exc

        node_chain = q(call("eth_chainId"), "chain id", 1, CHAIN_ID_MAX)
        if node_chain != chain_id:
            raise fail(f"node at {rpc_url} is on chain id {node_chain}, but the anchor is on chain id {chain_id}")
        rc = o(call("eth_getTransactionReceipt", txh), "receipt")
        if not rc:
            raise fail(f"transaction {txh} not found on chain id {chain_id} (no receipt: never mined, dropped or "
                       f"reorged out)")
        number = q(rc.get("blockNumber"), "receipt block number", 0, BLOCK_MAX)
        status = q(rc.get("status"), "receipt status", 0, 1)
        if status != 1:
            raise fail(f"transaction {txh} failed: receipt status {status} in block {number}, want 1")
        block_hash = _hex(rc.get("blockHash"))
        index = q(rc.get("transactionIndex"), "transaction index", 0, INDEX_MAX)
        tx = o(call("eth_getTransactionByBlockHashAndIndex", block_hash, hex(index)), "transaction")
        if not tx or _hex(tx.get("hash")) != txh:
            raise fail(f"block {block_hash} at index {index} holds "
                       f"{_hex(tx.get('hash')) if tx else 'nothing'}, not transaction {txh}")
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
        required = min_confirmations if min_confirmations is not None else anchor.get("confirmations_required", 1)
        if not isinstance(required, int) or required < 1:
            raise fail(f"confirmations required {required!r} is not a positive integer")
        latest = q(call("eth_blockNumber"), "block number", 0, BLOCK_MAX)
        confs = latest - number + 1
        if confs < required:
            raise fail(f"transaction {txh} has {confs} confirmation(s) (block {number}, latest {latest}), "
                       f"want at least {required}")
        blk = o(call("eth_getBlockByHash", block_hash, False), "block")
        if not blk:
            raise fail(f"block {block_hash} of transaction {txh} not found on the node")
        return q(blk.get("timestamp"), "block timestamp", TIME_MIN_S, TIME_MAX_S) * 1000
    finally:
        rpc.close()
