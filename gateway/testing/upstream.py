"""The central side of docs/upstream.md, as deployed, for tests and the fault suite: a
password- and ACL-protected central Mosquitto and ``traceseal archive run`` as a process.

One copy serves tests/upstream (functional end to end) and bench/faults (scenario 9), so the
ACL both exercise is the same: a gateway (user name = gateway id) may only publish its own
streams and read its own ack; the archive reads and writes everything.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.archive import config as archive_config
from gateway.archive.store import open_store
from gateway.journal import UPSTREAM_TOPICS
from gateway.testing.mosquitto import Mosquitto

PREFIX = "traceseal/up"
STREAMS = UPSTREAM_TOPICS
REPO = Path(__file__).resolve().parents[2]


class Central:
    """The central Mosquitto; ``users`` maps user name → password (gateway ids and "archive")."""

    def __init__(self, root: Path, users: dict[str, str], *, prefix: str = PREFIX) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.passwords = dict(users)
        self.prefix = prefix
        pw, acl = root / "passwd", root / "acl"
        for i, (user, secret) in enumerate(self.passwords.items()):
            subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(pw), user, secret],
                           check=True, capture_output=True)
        acl.write_text("".join(f"pattern write {prefix}/%u/{s}\n" for s in STREAMS)
                       + f"pattern read {prefix}/%u/ack\nuser archive\ntopic readwrite {prefix}/#\n")
        self.broker = Mosquitto(root / "mq", anonymous=False, extra=f"password_file {pw}\nacl_file {acl}")
        self.broker.start()
        self.port = self.broker.port

    def client(self, user: str, client_id: str | None = None) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"{user}-{uuid.uuid4().hex[:6]}",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set(user, self.passwords[user])
        return c

    def stop(self) -> None:
        self.broker.stop()


class ArchiveProcess:
    """``traceseal archive run`` in its own session (so SIGKILL takes it whole), SQLite store,
    the gateways in ``keys`` (id → public key hex) enrolled by public key."""

    def __init__(self, root: Path, central: Central, keys: dict[str, str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        (root / "archive.pw").write_text(central.passwords["archive"] + "\n")
        (root / "archive.pw").chmod(0o600)
        self.toml = root / "archive.toml"
        self.toml.write_text(textwrap.dedent(f"""\
            prefix = "{central.prefix}"
            [broker]
            host = "127.0.0.1"
            port = {central.port}
            client_id = "archive-{uuid.uuid4().hex[:6]}"
            username = "archive"
            password_file = "archive.pw"
            [store]
            sqlite = "archive.sqlite"
            """) + "".join(f'[[gateways]]\nid = "{g}"\npublic_key = "{k}"\n' for g, k in keys.items()))
        self.cfg = archive_config.load(self.toml)
        self.log = root / "archive.log"
        self.central = central
        self.keys = dict(keys)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 20.0, *, required: bool = True) -> bool:
        """Start it; True once it is subscribed, seen by its first retained acks (it publishes
        every enrolled gateway's ack at connect, after subscribing): from then on the broker
        keeps its persistent session's messages even while it is down. ``required``: raise
        instead of returning False."""
        got: set[str] = set()
        t0 = int(time.time() * 1000)
        w = self.central.client("archive")
        w.on_connect = lambda c, u, f, r, p: c.subscribe(f"{self.central.prefix}/+/ack", qos=1)
        w.on_message = lambda c, u, m: got.add(m.topic.split("/")[-2]) if json.loads(m.payload)["time_ms"] >= t0 \
            else None  # a retained ack of an earlier run does not count
        w.connect("127.0.0.1", self.central.port)
        w.loop_start()
        try:
            with self.log.open("ab") as fh:
                self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "archive", "run", "-c",
                                              str(self.toml)], stdout=subprocess.DEVNULL, stderr=fh,
                                             start_new_session=True, cwd=str(REPO))
            self.starts += 1
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not got >= set(self.keys):
                time.sleep(0.02)
        finally:
            w.loop_stop()
            w.disconnect()
        ok = got >= set(self.keys)
        if required and not ok:
            raise RuntimeError(f"the archive did not subscribe within {timeout:g} s (log: {self.log})")
        return ok

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> int | None:
        """SIGTERM and its exit code (None: it was not running)."""
        if self.proc is None:
            return None
        rc: int | None = self.proc.poll()
        if rc is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        return rc

    def store(self) -> Any:
        return open_store(self.cfg.store, readonly=True)

    def records(self, gw: str) -> list[tuple[int, bytes, bytes]]:
        """(seq, canonical body, signature) of every record of ``gw`` the archive holds."""
        if self.cfg.store.sqlite is None or not Path(self.cfg.store.sqlite).exists():
            return []
        s = self.store()
        try:
            return [(seq, bytes(b), bytes(sig)) for seq, b, sig in s.records_between(gw, 0, 10**12)]
        finally:
            s.close()

    def stored(self, gw: str) -> int:
        if self.cfg.store.sqlite is None or not Path(self.cfg.store.sqlite).exists():
            return 0
        s = self.store()
        try:
            return int(s.status(gw)["records"])
        finally:
            s.close()
