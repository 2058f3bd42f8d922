"""Scenario "hostile RPC node": the gateway anchors on a real EVM node (anvil) reached through
a proxy on loopback that turns hostile on command (issue 14, finding 4):

- ``drip``: answers with one byte every ``drip_s`` (requests' per-read timeout never fires);
- ``huge``: declares a 400 MB reply and streams megabytes of it;
- ``absurd``: forwards to anvil but rewrites the numbers in every reply (block timestamps of
  2^62, block numbers of 2^70, nonces past 2^64).

While the node is hostile, readings keep arriving: every one must be journaled and sealed (0
lost, 0 stalled), the gateway must not crash or print a traceback, and each hostile mode must
show in its log as the specific error (deadline, cap, out of range). Once the proxy forwards
honestly again, the backlog is anchored and the newest block's bundle verifies against the
node itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from gateway.chain.export import export_record
from gateway.journal import Journal
from gateway.testing.anvil import Anvil
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station
from ledger_client.evm import load_eth_key
from ledger_client.verify import default_checkers, verify_bundle

from .common import GatewayProcess, JournalChecker, LoadPublisher, Row, compare, wait_for

# what each mode must leave in the gateway's log (ledger_client.evm's messages)
SIGNS = {"drip": "deadline", "huge": "exceeds the cap", "absurd": "is outside"}


class HostileProxy:
    """JSON-RPC proxy on 127.0.0.1 in front of ``upstream``; ``mode`` picks its behaviour."""

    def __init__(self, upstream: str, *, drip_s: float = 0.5) -> None:
        self.upstream = upstream
        self.mode = "good"
        self.drip_s = drip_s
        self.stop = threading.Event()
        self.requests: dict[str, int] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                mode = proxy.mode
                proxy.requests[mode] = proxy.requests.get(mode, 0) + 1
                try:
                    proxy.answer(self, mode, body)
                except OSError:
                    pass  # the gateway hung up: what a deadline or a cap does

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

    def answer(self, h: BaseHTTPRequestHandler, mode: str, body: bytes) -> None:
        if mode == "huge":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(400 * 1024 * 1024))
            h.end_headers()
            h.wfile.write(b'{"jsonrpc": "2.0", "id": 1, "result": "')
            for _ in range(160):  # up to 10 MiB, until the client hangs up
                if self.stop.is_set():
                    return
                h.wfile.write(b"f" * 65536)
            return
        reply = requests.post(self.upstream, data=body, headers={"Content-Type": "application/json"},
                              timeout=10).content
        if mode == "absurd":
            reply = json.dumps(_absurd(json.loads(reply), json.loads(body))).encode()
        if mode == "drip":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(reply)))
            h.end_headers()
            for i in range(len(reply)):
                if self.stop.is_set():
                    return
                h.wfile.write(reply[i:i + 1])
                h.wfile.flush()
                time.sleep(self.drip_s)
            return
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(reply)))
        h.end_headers()
        h.wfile.write(reply)


def _absurd(reply: Any, request: Any) -> Any:
    """The node's reply with every number a hostile node might lie about pushed out of range."""
    if not isinstance(reply, dict) or "result" not in reply:
        return reply
    method = request.get("method") if isinstance(request, dict) else None
    r = reply["result"]
    if method in ("eth_blockNumber", "eth_getTransactionCount"):
        reply["result"] = hex(2 ** 70)
    elif isinstance(r, dict):
        for k, v in (("timestamp", 2 ** 62), ("number", 2 ** 70), ("blockNumber", 2 ** 70), ("status", 7)):
            if k in r:
                r[k] = hex(v)
    return reply


@contextmanager
def _proxy(url: str) -> Iterator[HostileProxy]:
    p = HostileProxy(url)
    try:
        yield p
    finally:
        p.close()


def run_hostile_rpc(workdir: Path, *, modes: tuple[str, ...] = ("drip", "huge", "absurd"), hold_s: float = 6.0,
                    records_per_block: int = 5, rate: float = 50.0) -> list[Row]:
    row = Row("12 hostile RPC node (drip, huge reply, absurd numbers)", runs=len(modes))
    t0 = time.monotonic()
    with Mosquitto(workdir / "mosquitto") as broker, Anvil(workdir=workdir / "anvil") as node, \
            _proxy(node.url) as proxy:
        root = workdir / "st"
        root.mkdir(parents=True, exist_ok=True)
        ledger = node.ledger_toml(root, timeout_s=2, connect_timeout_s=1, max_reply_bytes=1 << 20)
        ledger = ledger.replace(f'rpc_url = "{node.url}"', f'rpc_url = "{proxy.url}"')
        sender = str(load_eth_key(root / "eth.key").address).lower()
        st = make_station(root, broker.port, sensors=3, max_records=records_per_block, max_seconds=86_400,
                          ledger_toml=ledger)
        journal = root / "data" / "journal.sqlite"
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(journal)
        pub = LoadPublisher(broker.port, st)
        try:
            gw.start()
            if not gw.wait_subscribed():
                row.fail(f"gateway did not start: {gw.log_text()[-800:]}")
                return [row]
            pub.publish_burst(2 * records_per_block)  # two blocks, anchored while the node is honest
            if not row.check(wait_for(lambda: not checker.check(integrity=False) and checker.state.blocks == 2
                                      and checker.state.anchored_block == 1, 60, interval=0.2),
                             f"warm-up blocks not anchored: {checker.state}"):
                return [row]
            seen = 0
            sealed = 2
            for mode in modes:
                before = len(gw.log_text(since_start=True))
                proxy.mode = mode
                n = int(hold_s * rate) // records_per_block * records_per_block
                pub.publish_paced(n, rate)
                row.check(pub.wait_acked(60), f"{mode}: broker did not PUBACK every reading")
                sealed += n // records_per_block
                row.check(wait_for(lambda want=sealed: not checker.check(integrity=False)
                                   and checker.state.blocks == want and checker.state.unsealed == 0, 60, interval=0.25),
                          f"{mode}: readings not journaled and sealed while the node was hostile (stalled): "
                          f"{checker.state}")
                noticed = wait_for(lambda m=mode, b=before: SIGNS[m] in gw.log_text(since_start=True)[b:], 30,
                                   interval=0.25)
                row.check(noticed, f"{mode}: the gateway's log does not show {SIGNS[mode]!r}")
                seen += int(noticed)
                row.check(gw.alive, f"{mode}: the gateway died")
            proxy.mode = "good"
            anchored = wait_for(lambda: not checker.check(integrity=False)
                                and checker.state.anchored_block == sealed - 1, timeout=120, interval=0.25)
            row.check(anchored, f"backlog not anchored within 120 s of the node turning honest: {checker.state}")
            log = gw.log_text(since_start=True)
            row.check("Traceback" not in log, f"a traceback in the gateway's log: {log[log.find('Traceback'):][:600]}")
            rc = gw.stop()
            row.check(rc == 0, f"graceful stop exited {rc}")
            for f in checker.check():
                row.fail(f)
            compare(row, pub.acked(), pub.sent, checker.state)
            _verify_newest(row, journal, node, sender)
            row.detected = (seen, len(modes))
            row.notes.append(
                f"{sealed - 2} blocks sealed while the node was hostile ({', '.join(modes)}, {hold_s:.0f} s each; "
                f"requests per mode {proxy.requests}); every reading journaled, no traceback, the gateway "
                f"logged each mode's error in one line and retried; after the node turned honest the backlog was "
                f"anchored and the newest block's bundle verifies against the node; detected = modes whose "
                f"specific error (deadline, reply cap, out of range) shows in the log")
        finally:
            pub.close()
            gw.stop()
    row.seconds = time.monotonic() - t0
    return [row]


def _verify_newest(row: Row, journal: Path, node: Anvil, sender: str) -> None:
    j = Journal(journal, readonly=True)
    try:
        last = j.last_block()
        if last is None:
            row.fail("no block")
            return
        b = j.block(last.block)
        bundle = json.loads(json.dumps(export_record(j, b.first_seq)))  # type: ignore[union-attr]
        checkers = default_checkers(rpc_url=node.url, chain_id=node.chain_id, sender=sender)
        rep = verify_bundle(bundle, gateway_key=j.meta("public_key"), checkers=checkers)
        if rep.result != "verified":
            bad = rep.first_failure
            row.fail(f"bundle of the newest block: {rep.result}: step {bad.step if bad else '?'}: "
                     f"{(bad.failures if bad else [])[:2]}")
    finally:
        j.close()
