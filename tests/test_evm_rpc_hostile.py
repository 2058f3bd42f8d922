"""The JSON-RPC client against a HOSTILE node: a real HTTP server on loopback, written here.

Issue 14 finding 4: the client trusted the node. A node dripping a byte at a time held a call
far past its timeout (requests' timeout is per read), a huge reply was read whole into memory,
and a block timestamp of 2^62 crashed ``verify`` with a traceback. Every case here must end in
a specific ``LedgerError`` (``LedgerUnavailable`` for the deadline, ``BadNodeReply`` for the
rest), or a failed verification step with a message, never anything else.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ledger_client.errors import BadNodeReply, LedgerError, LedgerUnavailable, VerificationError
from ledger_client.evm import TAG_HEX, EvmLedger, JsonRpc, verify_evm_anchor

# anvil's first default account: only used to sign locally, never sent anywhere but loopback
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
SENDER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
TX = "0x" + "ab" * 32
BLOCK_HASH = "0x" + "cd" * 32
HH = hashlib.sha256(b"header").digest()

Reply = Callable[[BaseHTTPRequestHandler, dict[str, Any]], None]


def good_result(method: str, params: list[Any]) -> Any:
    """What an honest node answers, for the calls an anchor check and an anchorer make."""
    return {
        "eth_chainId": "0x539",
        "eth_blockNumber": "0x10",
        "eth_getTransactionCount": "0x0",
        "eth_gasPrice": "0x3b9aca00",
        "eth_maxPriorityFeePerGas": "0x1",
        "eth_estimateGas": "0x5600",
        "eth_getBlockByNumber": {"number": "0x10", "baseFeePerGas": "0x7", "timestamp": "0x6553f100"},
        "eth_getTransactionReceipt": {"transactionHash": TX, "blockNumber": "0x5", "blockHash": BLOCK_HASH,
                                      "transactionIndex": "0x0", "status": "0x1", "gasUsed": "0x5300"},
        "eth_getTransactionByBlockHashAndIndex": {"hash": TX, "from": SENDER, "to": SENDER,
                                                  "input": TAG_HEX + HH.hex()},
        "eth_getBlockByHash": {"number": "0x5", "hash": BLOCK_HASH, "timestamp": "0x6553f100"},
    }.get(method)


def send_json(h: BaseHTTPRequestHandler, obj: Any) -> None:
    body = json.dumps(obj).encode()
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


class HostileNode:
    """An HTTP server on 127.0.0.1 whose every POST is answered by ``self.reply``."""

    def __init__(self) -> None:
        node = self
        self.reply: Reply = lambda h, req: send_json(h, {"jsonrpc": "2.0", "id": req["id"],
                                                         "result": good_result(req["method"], req["params"])})
        self.sent_bytes = 0
        self.stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", "0"))
                req = json.loads(self.rfile.read(n))
                try:
                    node.reply(self, req)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass  # the client hung up on us: that is the point of most tests here

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    # -- behaviours ---------------------------------------------------------------------------
    def answering(self, override: dict[str, Any]) -> None:
        """Honest, except that ``override[method]`` (a JSON-able value) is the result."""
        def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
            m = req["method"]
            result = override[m] if m in override else good_result(m, req["params"])
            send_json(h, {"jsonrpc": "2.0", "id": req["id"], "result": result})
        self.reply = reply

    def raw(self, body: bytes, content_type: str = "application/json") -> None:
        def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
            h.send_response(200)
            h.send_header("Content-Type", content_type)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        self.reply = reply


@pytest.fixture
def hostile() -> Iterator[HostileNode]:
    node = HostileNode()
    yield node
    node.close()


def drip_body(h: BaseHTTPRequestHandler, node: HostileNode, body: bytes, every_s: float) -> None:
    for i in range(len(body)):
        if node.stop.is_set():
            return
        h.wfile.write(body[i:i + 1])
        h.wfile.flush()
        node.sent_bytes += 1
        time.sleep(every_s)


def test_drip_fed_body_hits_the_total_deadline(hostile: HostileNode) -> None:
    """Each byte comes well inside the per-read timeout; the whole reply would take ~12 s,
    past the call's 1 s budget. Before the fix the call waited for all of it and succeeded."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "result": "0x539"}).encode()

    def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.flush()
        drip_body(h, hostile, body, 0.25)
    hostile.reply = reply
    rpc = JsonRpc(hostile.url, timeout_s=1.0)
    with pytest.raises(LedgerUnavailable, match=r"\(eth_chainId\): no complete reply within the 1(\.0)? s deadline"):
        rpc.call("eth_chainId")
    assert hostile.sent_bytes < len(body), "the client read the whole drip instead of giving up"
    rpc.close()


def test_drip_fed_headers_hit_the_total_deadline(hostile: HostileNode) -> None:
    """The status line and headers themselves dripped: requests' per-read timeout never fires."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Pad-%d: y\r\n" % i for i in range(20))

    def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        drip_body(h, hostile, head, 0.2)
    hostile.reply = reply
    rpc = JsonRpc(hostile.url, timeout_s=1.0)
    with pytest.raises(LedgerUnavailable, match="deadline"):
        rpc.call("eth_chainId")
    assert hostile.sent_bytes < len(head)
    rpc.close()


def test_declared_huge_reply_is_refused_before_reading_it(hostile: HostileNode) -> None:
    def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(400 * 1024 * 1024))
        h.end_headers()
        for _ in range(100):  # 6.4 MB at most, then hang up: enough to fill any buffer
            h.wfile.write(b" " * 65536)
            hostile.sent_bytes += 65536
    hostile.reply = reply
    rpc = JsonRpc(hostile.url, max_reply_bytes=1 << 20)
    with pytest.raises(BadNodeReply, match=r"\(eth_chainId\): reply of 419430400 bytes exceeds the cap of 1048576"):
        rpc.call("eth_chainId")
    rpc.close()


def test_undeclared_huge_reply_stops_at_the_cap(hostile: HostileNode) -> None:
    """No Content-Length (read until close): the client counts what it reads and stops."""
    def reply(h: BaseHTTPRequestHandler, req: dict[str, Any]) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        h.wfile.write(b'{"jsonrpc": "2.0", "id": 1, "result": "')
        for _ in range(160):  # 10 MiB
            if hostile.stop.is_set():
                return
            h.wfile.write(b"a" * 65536)
            hostile.sent_bytes += 65536
        h.wfile.write(b'"}')
    hostile.reply = reply
    rpc = JsonRpc(hostile.url, max_reply_bytes=1 << 20)
    with pytest.raises(BadNodeReply, match="exceeds the cap of 1048576 bytes"):
        rpc.call("eth_chainId")
    rpc.close()


def test_default_cap_is_4_mib() -> None:
    assert JsonRpc("http://127.0.0.1:9/").max_reply_bytes == 4 * 1024 * 1024


@pytest.mark.parametrize("body", [b"<html>502 bad gateway</html>", b"[1, 2, 3]", b'"0x1"', b"[" * 100_000,
                                  b'{"jsonrpc": "2.0", "id": 1, "result": ' + b"9" * 5000 + b"}",
                                  b'{"jsonrpc": "2.0", "id": 1, "error": [1]}', b"\xff\xfe\x00"])
def test_not_json_rpc_is_a_bad_reply(hostile: HostileNode, body: bytes) -> None:
    hostile.raw(body)
    rpc = JsonRpc(hostile.url)
    with pytest.raises(LedgerError):
        rpc.call("eth_chainId")
    rpc.close()


BAD_NUMBERS = [
    ("timestamp 2^62", {"eth_getBlockByHash": {"timestamp": hex(2 ** 62), "number": "0x5"}}, "block timestamp"),
    ("timestamp 0", {"eth_getBlockByHash": {"timestamp": "0x0", "number": "0x5"}}, "block timestamp"),
    ("timestamp in 2300", {"eth_getBlockByHash": {"timestamp": hex(10_413_792_000), "number": "0x5"}},
     "block timestamp"),
    ("negative block", {"eth_getTransactionReceipt": {**good_result("eth_getTransactionReceipt", []),
                                                      "blockNumber": "-0x5"}}, "receipt block number"),
    ("block 2^64", {"eth_getTransactionReceipt": {**good_result("eth_getTransactionReceipt", []),
                                                  "blockNumber": hex(2 ** 64)}}, "receipt block number"),
    ("status 7", {"eth_getTransactionReceipt": {**good_result("eth_getTransactionReceipt", []),
                                                "status": "0x7"}}, "receipt status"),
    ("chain id 2^300", {"eth_chainId": hex(2 ** 300)}, "chain id"),
    ("latest 2^70", {"eth_blockNumber": hex(2 ** 70)}, "block number"),
    ("receipt is a list", {"eth_getTransactionReceipt": [1, 2]}, "receipt"),
    ("block is a string", {"eth_getBlockByHash": "yes"}, "block"),
    ("tx is a number", {"eth_getTransactionByBlockHashAndIndex": 5}, "transaction"),
    ("tx index huge", {"eth_getTransactionReceipt": {**good_result("eth_getTransactionReceipt", []),
                                                     "transactionIndex": hex(2 ** 80)}}, "transaction index"),
    ("timestamp as float", {"eth_getBlockByHash": {"timestamp": 1.7e9, "number": "0x5"}}, "block timestamp"),
    ("timestamp as bool", {"eth_getBlockByHash": {"timestamp": True, "number": "0x5"}}, "block timestamp"),
    ("timestamp 5000 hex digits", {"eth_getBlockByHash": {"timestamp": "0x" + "f" * 5000}}, "block timestamp"),
]


def test_honest_fake_node_verifies(hostile: HostileNode) -> None:
    """The fake node's honest answers pass, so every failure below is the bad number's."""
    t = verify_evm_anchor({"kind": "evm", "chain_id": 1337, "tx": TX}, HH, step=6, rpc_url=hostile.url)
    assert t == 0x6553F100 * 1000


@pytest.mark.parametrize("name,override,what", BAD_NUMBERS, ids=[c[0] for c in BAD_NUMBERS])
def test_verify_refuses_absurd_numbers_from_the_node(hostile: HostileNode, name: str, override: dict[str, Any],
                                                     what: str) -> None:
    hostile.answering(override)
    with pytest.raises(VerificationError, match=what) as exc:
        verify_evm_anchor({"kind": "evm", "chain_id": 1337, "tx": TX}, HH, step=6, rpc_url=hostile.url)
    assert exc.value.step == 6 and "node at" in exc.value.message


def ledger(url: str, **kw: Any) -> EvmLedger:
    return EvmLedger(url, chain_id=1337, private_key=KEY, timeout_s=1.0, **kw)


@pytest.mark.parametrize("override,what", [
    ({"eth_getTransactionCount": hex(2 ** 64)}, "pending nonce"),
    ({"eth_getTransactionCount": "0xzz"}, "pending nonce"),
    ({"eth_maxPriorityFeePerGas": hex(2 ** 200)}, "priority fee"),
    ({"eth_getBlockByNumber": {"number": "0x10"}, "eth_gasPrice": hex(2 ** 200)}, "gas price"),
    ({"eth_getBlockByNumber": {"number": "0x10", "baseFeePerGas": hex(2 ** 200)}}, "baseFeePerGas"),
    ({"eth_getBlockByNumber": ["not", "a", "block"]}, "latest block"),
    ({"eth_estimateGas": hex(2 ** 100)}, "eth_estimateGas"),
    ({"eth_chainId": None}, "chain id"),
])
def test_anchorer_start_refuses_absurd_numbers(hostile: HostileNode, override: dict[str, Any], what: str) -> None:
    hostile.answering(override)
    lg = ledger(hostile.url)
    with pytest.raises(BadNodeReply, match=what):
        lg.start()
    lg.close()


def test_anchorer_lookup_refuses_absurd_timestamp(hostile: HostileNode) -> None:
    lg = ledger(hostile.url, gas_limit=30_000)
    lg.start()
    sub = lg.prepare(HH, gateway="gw", block=0, now_ms=0)
    hostile.answering({"eth_getTransactionReceipt": {**good_result("eth_getTransactionReceipt", []),
                                                     "transactionHash": sub["tx"]},
                       "eth_getTransactionByBlockHashAndIndex": {"hash": sub["tx"], "from": SENDER, "to": SENDER,
                                                                 "input": sub["input"]},
                       "eth_getBlockByHash": {"timestamp": hex(2 ** 62)}})
    with pytest.raises(BadNodeReply, match=r"block timestamp 4611686018427387904 is outside 946684800\.\.7258118400"):
        lg.lookup(sub, now_ms=0)
    lg.close()


def test_the_cli_reports_a_hostile_node_as_a_failed_step(hostile: HostileNode, tmp_path: Any) -> None:
    """`verify --rpc` against a node answering timestamp 2^62: step 6 fails with a message
    (exit 1 or 4), no traceback."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    b = json.loads((repo / "docs" / "example" / "bundle.json").read_text())
    hh = b["anchors"][0]["entry"]["header_hash"]
    b["anchors"] = [{"kind": "evm", "chain_id": 1337, "tx": TX, "header_hash": hh}]
    p = tmp_path / "b.json"
    p.write_text(json.dumps(b))
    hostile.answering({"eth_getBlockByHash": {"timestamp": hex(2 ** 62)},
                       "eth_getTransactionByBlockHashAndIndex": {"hash": TX, "from": SENDER, "to": SENDER,
                                                                 "input": TAG_HEX + hh}})
    proc = subprocess.run([sys.executable, "-m", "ledger_client", "verify", str(p), "--rpc", hostile.url],
                          capture_output=True, text=True, timeout=120, cwd=repo, check=False)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "RESULT: FAILED at step 6 (anchors)" in proc.stdout, proc.stdout
    assert "block timestamp 4611686018427387904 is outside" in proc.stdout, proc.stdout


def test_connection_refused_is_unavailable() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rpc = JsonRpc(f"http://127.0.0.1:{port}/")
    with pytest.raises(LedgerUnavailable, match="unreachable"):
        rpc.call("eth_chainId")
    rpc.close()
