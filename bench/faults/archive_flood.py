"""Scenario 11 — the archive's HTTPS ingest under a connection flood and slow clients (issue 14,
finding 3): a real station forwards over HTTPS (``[upstream] transport = "https"``, the
gateway as ``python -m gateway.cli run``) to ``python -m gateway.cli archive run`` with an
``[http]`` table, under steady QoS 1 load, while an attacker on other loopback addresses
(127.0.0.2, …) keeps opening connections that never say a word (``flood``) and TLS clients
that drip a request one header byte every 0.5 s (``slow``), ``rounds`` times.

Before the fix 400 idle connections took 358 threads and a drip-feeding client held its
thread for ever; the station's batches then wait behind them. Here the archive must close
every attack connection (at accept when over ``max_connections`` or
``max_connections_per_ip``, displaced at the cap, or at ``request_timeout_s``), keep its
threads within the cap, and take every batch the whole time.

The cells look through the extra hop, as row 9: ``journaled`` = of the readings sent, those
IN THE ARCHIVE; lost = PUBACKed by the local broker but not in the archive at the end;
duplicated = stored twice there. detected = attack connections the archive closed (refused,
displaced or cut at the deadline) of those the attacker opened. A round in which the archive
does not hold the journal's last seq at the round's start within 30 s is a stall, and fails
the row; at the end (load stopped) the archive's ack must reach the journal's last seq.

The stall is judged on what the archive holds, not on its ack: under steady load the HTTPS
forwarder (gateway/forward/https.py, one request at a time, ``records`` before ``blocks`` in
every round) keeps finding a records batch due, so blocks, and with them the ack, wait until
the load pauses; that happens with no attack at all (reported with issue 14's work).
"""

from __future__ import annotations

import json
import random
import selectors
import socket
import ssl
import subprocess
import time
from pathlib import Path

from gateway.archive import config as archive_config
from gateway.testing.mosquitto import Mosquitto, free_port
from gateway.testing.pki import make_pki
from gateway.testing.station import make_station
from gateway.testing.upstream import ArchiveProcess, Central
from ledger_client.keys import load_private_key, public_hex

from .common import GatewayProcess, JournalChecker, LoadPublisher, Row, value_of, wait_for
from .upstream import _archive_readings, _archived, _last_seq

GW = "station-a"
PASSWORDS = {"archive": "pw-archive"}
GW_PASSWORD = "pw-gateway"
REACHABLE = "upstream reachable at"

UPSTREAM = """
[upstream]
enabled = true
transport = "https"
url = "https://127.0.0.1:{port}/upstream"
username = "{gw}"
password_file = "upstream.pw"
batch_max = 50
reconnect_max_s = 1
[upstream.tls]
ca_file = "{ca}"
"""

HTTP = """
[http]
listen = "127.0.0.1"
port = {port}
cert_file = "{cert}"
key_file = "{key}"
password_file = "http.passwd"
max_connections = {max_connections}
max_connections_per_ip = {per_ip}
request_timeout_s = {timeout}
"""


def _held(arch: ArchiveProcess) -> int:
    """The archive's highest stored seq of the station (-1: none yet)."""
    if not Path(arch.cfg.store.sqlite).exists():
        return -1
    s = arch.store()
    try:
        return int(s._one("SELECT COALESCE(MAX(seq), -1) FROM records WHERE gateway=?", (GW,))[0])
    finally:
        s.close()


def _threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Attack:
    """One round's attack connections, from ``addresses`` in turn: ``flood`` silent TCP
    connections and ``slow`` TLS clients dripping one header byte every ``drip_s``. Counts
    how many the archive closes (EOF or reset, or a handshake refused)."""

    def __init__(self, port: int, ctx: ssl.SSLContext, addresses: list[str]) -> None:
        self.port, self.ctx, self.addresses = port, ctx, addresses
        self.sel = selectors.DefaultSelector()
        self.open: dict[socket.socket, str] = {}  # socket -> kind
        self.drips: list[ssl.SSLSocket] = []
        self.opened = self.closed = 0
        self._n = 0

    def _source(self) -> str:
        self._n += 1
        return self.addresses[self._n % len(self.addresses)]

    def _connect(self) -> socket.socket | None:
        self.opened += 1
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=(self._source(), 0))
        except OSError:
            self.closed += 1  # not even let in
            return None

    def flood(self, n: int) -> None:
        for _ in range(n):
            s = self._connect()
            if s is not None:
                s.setblocking(False)
                self.sel.register(s, selectors.EVENT_READ)
                self.open[s] = "flood"

    def slow(self, n: int) -> None:
        for _ in range(n):
            raw = self._connect()
            if raw is None:
                continue
            try:
                s = self.ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"GET /upstream/" + GW.encode() + b"/ack HTTP/1.1\r\n")
            except OSError:  # refused over the cap: closed during the handshake
                raw.close()
                self.closed += 1
                continue
            s.setblocking(False)
            self.drips.append(s)
            self.open[s] = "slow"

    def tick(self) -> None:
        """One drip byte per slow client; collect the connections the archive closed."""
        for s in list(self.drips):
            try:
                s.send(b"a")
            except ssl.SSLWantWriteError:
                pass
            except OSError:
                self._gone(s)
        for key, _ in self.sel.select(0):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                if s.recv(4096):
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass
            self._gone(s)
        for s in list(self.drips):  # a TLS socket's EOF shows on read
            try:
                if s.recv(4096) == b"":
                    self._gone(s)
            except (ssl.SSLWantReadError, BlockingIOError):
                pass
            except OSError:
                self._gone(s)

    def _gone(self, s: socket.socket) -> None:
        if self.open.pop(s, None) is None:
            return
        self.closed += 1
        if s in self.drips:
            self.drips.remove(s)  # type: ignore[arg-type]
        else:
            self.sel.unregister(s)
        s.close()

    def close(self) -> None:
        for s in list(self.open):
            if s not in self.drips:
                self.sel.unregister(s)
            s.close()
        self.open.clear()
        self.drips.clear()
        self.sel.close()


def run_archive_flood(workdir: Path, *, rounds: int = 2, flood: int = 60, slow: int = 8, addresses: int = 6,
                      max_connections: int = 16, per_ip: int = 8, request_timeout_s: float = 2.0,
                      rate: float = 50.0, drip_s: float = 0.5, rng: random.Random | None = None) -> list[Row]:
    rng = rng or random.Random()
    row = Row("11 archive HTTPS: connection flood and slow clients", runs=rounds)
    sources = [f"127.0.0.{2 + i}" for i in range(addresses)]
    pki = make_pki(workdir / "pki")
    port = free_port()
    with Mosquitto(workdir / "local") as local:
        central = Central(workdir / "central", PASSWORDS)
        st = make_station(workdir / "st", local.port, sensors=3, gateway_id=GW, max_records=40, max_seconds=1,
                          extra_toml=UPSTREAM.format(port=port, gw=GW, ca=pki["ca"]))
        (st.root / "upstream.pw").write_text(GW_PASSWORD + "\n")
        (st.root / "upstream.pw").chmod(0o600)
        journal = st.root / "data" / "journal.sqlite"
        arch = ArchiveProcess(workdir / "archive", central, {GW: public_hex(load_private_key(st.root / "gateway.key"))})
        pw = workdir / "archive" / "http.passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), GW, GW_PASSWORD], check=True, capture_output=True)
        pw.chmod(0o600)
        with arch.toml.open("a") as fh:
            fh.write(HTTP.format(port=port, cert=pki["server"], key=pki["server_key"], max_connections=max_connections,
                                 per_ip=per_ip, timeout=request_timeout_s))
        arch.cfg = archive_config.load(arch.toml)
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(journal)
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        pub: LoadPublisher | None = None
        peak = 0
        try:
            if not arch.start(30, required=False):
                row.fail(f"archive did not start: {arch.log.read_text()[-800:]}")
                return [row]
            gw.start()
            if not (gw.wait_subscribed() and wait_for(lambda: REACHABLE in gw.log_text(), 20)):
                row.fail(f"gateway did not start forwarding: {gw.log_text()[-800:]}")
                return [row]
            pub = LoadPublisher(local.port, st)
            pub.start_load(rate)
            opened = closed = good = 0
            assert arch.proc is not None
            for i in range(rounds):
                time.sleep(rng.uniform(0.0, 1.0))
                last = _last_seq(journal)
                attack = Attack(port, ctx, sources)
                try:
                    attack.flood(flood // 2)
                    attack.slow(slow)
                    attack.flood(flood - flood // 2)
                    # hold them while the station forwards: until the archive closed all, or past the deadline
                    deadline = time.monotonic() + request_timeout_s + 5
                    while attack.open and time.monotonic() < deadline:
                        attack.tick()
                        peak = max(peak, _threads(arch.proc.pid))
                        time.sleep(drip_s)
                    left = len(attack.open)  # still open after the deadline (+5 s): not closed by the archive
                    progressed = wait_for(lambda: _held(arch) >= last, 30, interval=0.1)  # noqa: B023 - called in this iteration
                finally:
                    attack.close()
                opened += attack.opened
                closed += attack.closed
                row.check(progressed, f"round {i}: stalled: the archive did not hold seq {last} within 30 s "
                                      f"(it holds up to {_held(arch)})")
                row.check(not left, f"round {i}: {left} attack connections still open after "
                                           f"{request_timeout_s + 5:g} s")
                good += progressed
            row.detected = (closed, opened)
            row.check(peak <= max_connections + 12, f"archive threads peaked at {peak} (cap {max_connections})")
            _finish(row, pub, gw, arch, journal, checker)
            row.notes.append(f"{rounds} rounds of {flood} silent TCP connections and {slow} TLS clients dripping a "
                             f"header byte every {drip_s:g} s, from {addresses} addresses, against max_connections "
                             f"{max_connections}, max_connections_per_ip {per_ip}, request_timeout_s "
                             f"{request_timeout_s:g}; archive threads peaked at {peak}; {good}/{rounds} rounds without "
                             f"a stall (the archive held the journal's last seq at the round's start within 30 s); "
                             f"detected = "
                             f"attack connections the archive refused, displaced or cut at the deadline")
        finally:
            if pub is not None:
                pub.close()
            gw.kill9()
            arch.kill9()
            central.broker.stop()
    return [row]


def _finish(row: Row, pub: LoadPublisher, gw: GatewayProcess, arch: ArchiveProcess, journal: Path,
            checker: JournalChecker) -> None:
    """No more load: every reading the local broker acknowledged must be in the archive, once."""
    pub.stop_load()
    row.check(pub.wait_acked(60), "the local broker did not PUBACK every reading")
    acked = pub.acked()
    row.check(checker.settle(acked, 90), "acknowledged readings not journaled within 90 s")
    row.check(wait_for(lambda: _archived(journal) >= _last_seq(journal), 60, interval=0.2),
              f"the archive's ack {_archived(journal)} did not reach the journal's last seq {_last_seq(journal)}")
    for f in checker.check():
        row.fail(f"final journal: {f}")
    readings, values = _archive_readings(arch.records(GW))
    sent = pub.sent
    row.sent, row.acked = len(sent), len(acked)
    row.journaled = sum(1 for k in sent if readings[k] >= 1)
    lost = sorted(k for k in acked if readings[k] == 0)
    row.lost = len(lost)
    row.duplicated = sum(readings[k] - 1 for k in sent if readings[k] > 1)
    if lost:
        row.fail(f"{len(lost)} acknowledged readings are not in the archive, e.g. {lost[:3]}")
    wrong = [k for k in sent if readings[k] and values.get(k) != value_of(*k)]
    if wrong:
        row.fail(f"{len(wrong)} archived values differ from what was sent, e.g. {wrong[:3]}")
    rc = gw.stop()
    row.check(rc == 0, f"graceful gateway stop exited {rc}")
    rc = arch.stop()
    row.check(rc == 0, f"graceful archive stop exited {rc}")
    for name, text in (("archive", arch.log.read_text()), ("gateway", gw.log_text())):
        if "Traceback" in text:
            row.fail(f"{name} traceback: {text[-1500:]}")
    refusals = [json.dumps(line[:160]) for line in arch.log.read_text().splitlines() if "HTTPS ingest:" in line]
    row.notes.append(f"archive log: {len(refusals)} HTTPS ingest lines (refusals are logged once a minute with a "
                     f"count), e.g. {refusals[:2]}")
