"""Start a real PostgreSQL server on a free loopback port, for the archive's tests.

``initdb`` into a temp dir, then ``postgres`` itself (not pg_ctl: a test must be able to
kill -9 it like any other process it started). PostgreSQL refuses to run as root, so as
root it runs as the ``postgres`` system user (runuser) in a folder that user owns.
Debian's ``postgresql`` package provides the binaries (scripts/setup --test installs it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from gateway.testing.mosquitto import free_port


def find_pg_bin() -> Path:
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if Path(d, "postgres").exists() and Path(d, "initdb").exists():
            return Path(d)
    exe = shutil.which("postgres")
    if exe and shutil.which("initdb"):
        return Path(exe).resolve().parent
    raise RuntimeError("PostgreSQL server binaries not found: run scripts/setup --test (apt-get install postgresql)")


class Postgres:
    """``with Postgres(tmpdir) as pg: pg.dsn`` — a throwaway cluster, stopped on exit."""

    def __init__(self, workdir: Path, *, port: int | None = None) -> None:
        # As root the server runs as "postgres", which cannot enter pytest's 0700 temp dirs:
        # then the cluster lives in a folder of its own under /tmp, removed by stop().
        self._own_tmp = os.getuid() == 0
        self.workdir = Path(tempfile.mkdtemp(prefix="traceseal-pg-")) if self._own_tmp else Path(workdir)
        self.port = port or free_port()
        self.data = self.workdir / "pgdata"
        self.log = self.workdir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.bin = find_pg_bin()
        self.user = "postgres" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.getuid() == 0 else argv

    def _chown(self, path: Path) -> None:
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> Postgres:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._chown(self.workdir)
        if not (self.data / "PG_VERSION").exists():
            # trust on loopback only: a test server, never a deployment
            subprocess.run(self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                                           "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]),
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        logf = open(self.log, "ab")  # noqa: SIM115  the server process writes it until stop()
        self._chown(self.log)
        self.proc = subprocess.Popen(
            self._as_owner([str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.workdir}",
                            "-c", "max_connections=40", "-c", "shared_buffers=16MB"]),
            stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                r = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if r.returncode == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"postgres did not accept connections on {self.port} within 30 s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # "fast" shutdown: roll back sessions, checkpoint
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_tmp:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
