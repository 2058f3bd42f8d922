"""Shared helpers for the bench scripts: results table, /proc CPU and RSS, child processes,
message building, backlog publishing, direct journal fill.

Nothing here is imported by the gateway; the benches only use the gateway's public pieces
(``Gateway``, ``Journal``, ``BlockSealer``, ``export``, ``verify``) as a user would.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# -- results ---------------------------------------------------------------------------------
@dataclass
class Result:
    """One row of the table. ``ratio`` is value/baseline in the direction where higher is better
    unless ``lower_better`` (then baseline/value), so ratio ≥ 1 always means "at least as good"."""

    figure: str
    value: str
    baseline: str = "—"
    ratio: float | None = None
    target: str = "—"
    met: bool | None = None
    note: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        if not self.value:  # a section heading
            return [self.figure, "", "", "", "", ""]
        if self.ratio is None:  # noqa: SIM108 - a nested conditional expression reads worse
            ratio = "—"
        else:
            ratio = f"{self.ratio:,.0f}×" if self.ratio >= 100 else f"{self.ratio:.2f}×"
        met = "—" if self.met is None else ("yes" if self.met else "NO")
        return [self.figure, self.value, self.baseline, ratio, self.target, met]


HEAD = ["figure", "value", "baseline (same run)", "ratio", "target", "met?"]


def print_table(results: Sequence[Result], title: str = "", file: Any = None) -> None:
    file = file or sys.stdout
    rows = [HEAD] + [r.cells() for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEAD))]
    if title:
        print(title, file=file)
    line = "-+-".join("-" * w for w in widths)
    for i, row in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths)), file=file)
        if i == 0:
            print(line, file=file)
    notes = [(i + 1, r.figure, r.note) for i, r in enumerate(results) if r.note]
    if notes:
        print("\nnotes:", file=file)
        for _, fig, note in notes:
            print(f"  - {fig}: {note}", file=file)
    file.flush()


def dump_json(results: Sequence[Result], path: Path) -> None:
    path.write_text(json.dumps([r.__dict__ for r in results], indent=1, default=str))


# -- measurement ----------------------------------------------------------------------------------
def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def proc_rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) in MB (10^6 bytes)."""
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE / 1e6


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))]


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}/s"


def workdir(name: str, base: str | None = None) -> Path:
    """A fresh temp folder, removed when the bench exits (set TRACESEAL_BENCH_KEEP=1 to keep it)."""
    path = Path(tempfile.mkdtemp(prefix=f"traceseal-bench-{name}-", dir=base))
    if not os.environ.get("TRACESEAL_BENCH_KEEP"):
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# -- child processes ------------------------------------------------------------------------------
class Child:
    """A bench child speaking a line protocol on stdin/stdout (see gwproc.py, reference.py)."""

    def __init__(self, args: list[str], *, env: dict[str, str] | None = None) -> None:
        e = dict(os.environ)
        e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
        e.update(env or {})
        self.proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None, text=True, bufsize=1, env=e, cwd=str(REPO))
        self.pid = self.proc.pid
        self.rusage: Any = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()  # no select(): TextIO buffers lines

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, word: str, timeout: float = 60.0) -> str:
        """Read lines until one starts with ``word``; returns the rest of that line."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"child {self.pid}: no {word!r} within {timeout}s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.lines.put(None)
                raise RuntimeError(f"child {self.pid} exited ({self.proc.wait()}) before {word!r}")
            if line.split(" ", 1)[0] == word:
                return line[len(word):].strip()

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for exit, keeping the child's rusage (ru_maxrss = its peak RSS)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status, ru = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.rusage = ru
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                return self.proc.returncode
            time.sleep(0.02)
        self.proc.kill()  # our own child, by pid
        _, status, self.rusage = os.wait4(self.pid, 0)
        return -9

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- messages and publishing ---------------------------------------------------------------------
def build_messages(station: Any, n: int, *, start_ctr: int = 1, t_ms: int | None = None) -> list[tuple[str, bytes]]:
    """``n`` genuine signed firmware messages, round-robin over the station's sensors."""
    from firmware_sim.message import build_message, temperature

    sensors = sorted(station.sensor_keys)
    t0 = int(time.time() * 1000) if t_ms is None else t_ms
    out = []
    for i in range(n):
        sid = sensors[i % len(sensors)]
        ctr = start_ctr + i // len(sensors)
        out.append((station.topic(sid), build_message(station.sensor_keys[sid], sid, ctr, t0 + i,
                                                      [temperature(4000 + (i * 37) % 3000)])))
    return out


def mqtt_publisher(port: int) -> Any:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_backlog(port: int, items: Iterable[tuple[str, bytes]], timeout: float = 300.0) -> float:
    """Publish QoS 1 and wait for every PUBACK (the broker holds them all); returns seconds."""
    c = mqtt_publisher(port)
    t0 = time.perf_counter()
    infos = [c.publish(t, p, qos=1) for t, p in items]
    deadline = time.monotonic() + timeout
    for i in infos:
        i.wait_for_publish(max(0.1, deadline - time.monotonic()))
        if not i.is_published():
            raise TimeoutError("broker did not PUBACK every backlog message")
    dt = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return dt


# -- direct journal fill (export / RSS / verify benches) -----------------------------------------
def fast_signer(key: Any) -> Any:
    """``sign(message) -> 64-byte signature`` for filling journals quickly.

    Ed25519 (RFC 8032) signatures are deterministic, so the system's libsodium, when present,
    gives byte-identical signatures about twice as fast as OpenSSL here; this is checked on
    a sample and anything else falls back to the key's own ``sign``. Bench data only: the
    gateway's code path is not involved.
    """
    import ctypes

    from cryptography.hazmat.primitives import serialization

    try:
        lib = ctypes.CDLL("libsodium.so.23")
        if lib.sodium_init() < 0:
            return key.sign
    except OSError:
        return key.sign
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sk = ctypes.create_string_buffer(seed + pub, 64)
    fn = lib.crypto_sign_ed25519_detached
    fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]

    def sign(message: bytes) -> bytes:
        out = ctypes.create_string_buffer(64)
        fn(out, None, message, len(message), sk)
        return out.raw

    sample = b"traceseal bench signer check"
    return sign if sign(sample) == key.sign(sample) else key.sign


_BODY = ('{{"clock_synced":{synced},"gateway":"{gw}","kind":"temperature","sensor":"{sensor}","seq":{seq},'
         '"source":{{"adapter":"traceseal","auth":"ed25519","ctr":{ctr},"msg_sha256":"{digest}",'
         '"sensor_time_ms":{st},"topic":"{topic}","transport":"mqtt"}},"time_ms":{t},"type":"reading",'
         '"unit":"mC","v":1,"value":{value}}}')


def fill_journal(journal: Any, key: Any, gateway_id: str, n: int, *, sensor: str = "probe-1",
                 topic: str = "bench/sensors/probe-1/reading", batch: int = 5000, max_records: int = 1000,
                 synced: bool | None = None, clock: Any = None, progress: bool = False, seal: bool = True) -> float:
    """Append ``n`` genuine signed reading records (what the gateway would have written), then seal
    blocks with the real BlockSealer. Bodies are formatted straight into RFC 8785 form (checked
    against ``canonical`` on a sample) and signed with the gateway key. Returns seconds taken."""
    from gateway.chain.blocks import BlockSealer
    from gateway.core.clock import SystemClock
    from gateway.journal import RecordRow
    from ledger_client.canonical import canonical, record_message

    clock = clock or SystemClock()
    synced = clock.synced() if synced is None else synced
    t0 = time.perf_counter()
    seq = journal.next_seq()
    end = seq + n
    sealer = BlockSealer(journal, key, gateway_id, clock, max_records, 10**9)
    sign = fast_signer(key)
    sha = hashlib.sha256
    done = 0
    ctr0 = 10**9 + seq  # far from the live sensors' counters (the fill does not touch sensor_state)
    while seq < end:
        now = clock.now_ms()
        rows = []
        for s in range(seq, min(end, seq + batch)):
            digest = sha(b"fill/%d" % s).digest()
            body = _BODY.format(synced="true" if synced else "false", gw=gateway_id, sensor=sensor, seq=s,
                                ctr=ctr0 + s, digest=digest.hex(), st=now, topic=topic, t=now,
                                value=4000 + (s * 37) % 3000).encode()
            rows.append(RecordRow(s, now, "reading", sensor, "temperature", digest, body, sign(record_message(body))))
        if done == 0:
            assert canonical(json.loads(rows[0].body)) == rows[0].body, "fill body is not canonical"
            key.public_key().verify(rows[0].sig, record_message(rows[0].body))  # raises if the signer is wrong
        journal.commit_batch(rows, (), {}, {"records": len(rows)})
        seq += len(rows)
        done += len(rows)
        if seal:
            sealer.maybe_seal()
        if progress and done % 100_000 < batch:
            print(f"  fill {done:,}/{n:,} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if seal:
        sealer.maybe_seal(force=True)
    return time.perf_counter() - t0


def anchor_all(journal: Any, ledger: Any, gateway_id: str, timeout: float = 30.0) -> None:
    """Anchor the newest block with the real Anchorer (one anchor covers the chain)."""
    from gateway.chain.anchoring import Anchorer
    from gateway.core.clock import SystemClock

    a = Anchorer(journal, ledger, SystemClock(), gateway_id, poll_s=0.05)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if a.step() == "confirmed":
            return
        last = journal.last_block()
        if last is not None and last.block <= journal.covered_block() and not journal.open_outbox():
            return
    raise TimeoutError("anchor not confirmed")
