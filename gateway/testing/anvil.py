"""Start a real anvil (Foundry's EVM node) on a free loopback port, for tests and benches.

The binary comes from npm (``package.json`` at the repo root pins ``@foundry-rs/anvil``
1.7.1; the linux binary is its *optional* dependency ``@foundry-rs/anvil-linux-amd64``, so
never install with ``--omit=optional``). It is run directly, not through npx (npx adds
~0.7 s and 120 MB). The chain state is dumped to ``<workdir>/state.json`` on a graceful
stop and loaded on start, so ``stop()``/``start()`` on the same port simulates a node
outage without losing the chain.

    with Anvil() as node:
        node.url, node.chain_id, node.private_keys[0]
        snap = node.snapshot(); ...; node.revert(snap)     # a reorg, as far as clients see
        node.set_automine(False); ...; node.mine()          # hold transactions in the pool
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Self

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL_VERSION = "1.7.1"
ANVIL_BIN = REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_anvil() -> str:
    """Path of the anvil binary (``$TRACESEAL_ANVIL`` overrides); a clear error if absent."""
    override = os.environ.get("TRACESEAL_ANVIL")
    if override:
        if not Path(override).is_file():
            raise RuntimeError(f"TRACESEAL_ANVIL={override} is not a file")
        return override
    if ANVIL_BIN.is_file():
        return str(ANVIL_BIN)
    raise RuntimeError(
        f"anvil not found at {ANVIL_BIN}: run `npm install` in {REPO_ROOT} (installs @foundry-rs/anvil "
        f"{ANVIL_VERSION} from package.json; do not pass --omit=optional, the binary is an optional dependency)"
    )


class AnvilRpcError(RuntimeError):
    pass


class Anvil:
    """A running anvil; ``with Anvil(chain_id=...) as node`` stops it (and removes a temp workdir) on exit."""

    def __init__(self, *, chain_id: int = 31337, port: int | None = None, workdir: Path | None = None,
                 automine: bool = True, block_time: float | None = None, accounts: int = 10,
                 extra_args: tuple[str, ...] = (), start_timeout_s: float = 10.0) -> None:
        self.chain_id = chain_id
        self.port = port or free_port()
        self._tmp = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="anvil-"))
        self.automine = automine
        self.block_time = block_time
        self.n_accounts = accounts
        self.extra_args = tuple(extra_args)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.accounts: list[str] = []
        self.private_keys: list[str] = []
        self._session = requests.Session()
        self._id = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [find_anvil(), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", str(self.chain_id),
               "--accounts", str(self.n_accounts), "--config-out", str(self.workdir / "anvil-config.json"),
               "--state", str(self.state_file), "--preserve-historical-states"]
        if not self.automine:
            cmd.append("--no-mining")
        if self.block_time is not None:
            cmd += ["--block-time", str(self.block_time)]
        return cmd + list(self.extra_args)

    def start(self) -> Self:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / "anvil.log", "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            return self._wait_ready()
        except BaseException:
            self.stop(graceful=False)  # never leave an orphan node behind a failed start
            raise

    def _wait_ready(self) -> Self:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.workdir / "anvil.log").read_text(errors="replace")[-2000:]
                self.proc = None
                raise RuntimeError(f"anvil exited at start (port {self.port}): {tail}")
            try:
                got = int(self.rpc("eth_chainId", timeout=0.5), 16)
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.01)
                continue
            if got != self.chain_id:
                self.stop()
                raise RuntimeError(f"anvil on port {self.port} answers chain id {got}, want {self.chain_id}")
            try:  # --config-out may be written just after the server answers
                cfg = json.loads((self.workdir / "anvil-config.json").read_text())
            except (OSError, ValueError):
                time.sleep(0.01)
                continue
            self.accounts = [a.lower() for a in cfg["available_accounts"]]
            self.private_keys = list(cfg["private_keys"])
            return self
        self.stop()
        raise RuntimeError(f"anvil did not answer JSON-RPC on {self.url} within {self.start_timeout_s} s")

    def stop(self, *, graceful: bool = True) -> None:
        """Stop the node; ``graceful`` lets it dump its state so a later ``start()`` resumes the chain."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self) -> Self:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._session.close()
        if self._tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- JSON-RPC helpers ------------------------------------------------------------------
    def ledger_toml(self, root: Path, *, account: int = 3, **evm: int) -> str:
        """A station's ``[ledger]`` on this node: writes anvil account ``account``'s key to
        ``root/eth.key`` (0600, as the gateway insists) and returns the TOML; ``evm`` adds
        integer keys to ``[ledger.evm]`` (e.g. ``timeout_s=2``)."""
        root.mkdir(parents=True, exist_ok=True)
        key = root / "eth.key"
        key.write_text(self.private_keys[account] + "\n")
        key.chmod(0o600)
        extra = "".join(f"{k} = {v}\n" for k, v in evm.items())
        return (f'[ledger]\nkind = "evm"\npoll_s = 0.2\n[ledger.evm]\nrpc_url = "{self.url}"\n'
                f'chain_id = {self.chain_id}\nkey_file = "eth.key"\nconfirmations = 1\n{extra}')

    def rpc(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        self._id += 1
        r = self._session.post(self.url, json={"jsonrpc": "2.0", "id": self._id, "method": method,
                                               "params": list(params)}, timeout=timeout)
        reply = r.json()
        if reply.get("error"):
            raise AnvilRpcError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result")

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        """``anvil_mine``: mine ``blocks`` blocks at once (pool transactions go in the first)."""
        self.rpc("anvil_mine", hex(blocks))

    def evm_mine(self) -> None:
        self.rpc("evm_mine")

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.rpc("evm_revert", snapshot_id))

    def set_automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", on)

    def tx_count(self, address: str, tag: str = "latest") -> int:
        return int(self.rpc("eth_getTransactionCount", address, tag), 16)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        result = self.rpc("eth_getTransactionReceipt", tx_hash)
        return result if result else None

    def wait_receipt(self, tx_hash: str, timeout_s: float = 5.0) -> dict[str, Any]:
        """The receipt, waiting for it (automine answers the send before the block exists)."""
        deadline = time.monotonic() + timeout_s
        while True:
            rc = self.receipt(tx_hash)
            if rc:
                return rc
            if time.monotonic() > deadline:
                raise TimeoutError(f"no receipt for {tx_hash} within {timeout_s} s")
            time.sleep(0.005)

    def fund(self, address: str, wei: int = 10**20) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def send(self, *, frm: str, to: str | None = None, data: str = "0x", value: int = 0,
             gas: int | None = None) -> str:
        """``eth_sendTransaction`` from an unlocked dev account (tests only; production nodes lack it)."""
        tx: dict[str, Any] = {"from": frm, "data": data, "value": hex(value)}
        if to is not None:
            tx["to"] = to
        if gas is not None:
            tx["gas"] = hex(gas)
        return str(self.rpc("eth_sendTransaction", tx))

    def deploy(self, runtime_hex: str, *, frm: str | None = None) -> str:
        """Deploy ``runtime_hex`` (≤ 32 bytes) with a tiny init code; returns the contract address."""
        runtime = bytes.fromhex(runtime_hex.removeprefix("0x"))
        if not 0 < len(runtime) <= 32:
            raise ValueError("runtime must be 1..32 bytes")
        n = len(runtime)
        # PUSHn runtime; PUSH1 0; MSTORE; PUSH1 n; PUSH1 32-n; RETURN
        init = bytes([0x5F + n]) + runtime + bytes([0x60, 0x00, 0x52, 0x60, n, 0x60, 32 - n, 0xF3])
        h = self.send(frm=frm or self.accounts[0], data="0x" + init.hex())
        if not self.automine:
            self.mine()
        rc = self.wait_receipt(h)
        if int(rc["status"], 16) != 1 or not rc.get("contractAddress"):
            raise RuntimeError(f"deploying {runtime_hex} failed: {rc}")
        return str(rc["contractAddress"]).lower()
