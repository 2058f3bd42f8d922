"""Start a real Mosquitto on a free loopback port, for tests, benches and the demo.

The config written here mirrors systemd/mosquitto-traceseal.conf in the settings traceseal
relies on (unbounded per-client queue, persistence for the restart tests), so tests
exercise the broker as deployed, not Mosquitto's lossy defaults.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_mosquitto() -> str:
    exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if exe is None:
        raise RuntimeError("mosquitto not found: run scripts/setup (apt-get install mosquitto)")
    return exe


class Mosquitto:
    """``with Mosquitto(tmpdir) as m: m.port`` — stopped (and its files kept) on exit."""

    def __init__(self, workdir: Path, *, port: int | None = None, persistence: bool = True,
                 max_queued_messages: int = 0, anonymous: bool = True, extra: str = "") -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.persistence = persistence
        self.max_queued = max_queued_messages
        self.anonymous = anonymous
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"

    def write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            # As root, Mosquitto drops to user "mosquitto", which cannot write our temp dir:
            # persistence and logs would silently fail. Stay the invoking user.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.anonymous else 'false'}",
            f"max_queued_messages {self.max_queued}",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            self.extra,
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self.write_config()
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err or self.log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within 10 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # SIGTERM makes it save persistence
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
