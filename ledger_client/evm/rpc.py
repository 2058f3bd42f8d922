"""JSON-RPC to an Ethereum node, with a TOTAL deadline per call, a reply-size cap, and
range checks on every number a node returns (a hostile node answers 2^300 as readily as 5).
Used by the anchorer (``writer``) and by the verifier (``anchor``)."""

from __future__ import annotations

import socket
import threading
import time
import weakref
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .. import safejson
from ..errors import BadNodeReply, LedgerError, LedgerUnavailable

DEFAULT_MAX_REPLY_BYTES = 4 * 1024 * 1024  # the largest honest reply we ask for is a few KiB


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

