"""Scenario 9 — store and forward (issue #10): the hop from the gateway's journal to the archive.

One real system, three fault phases under steady QoS 1 load (3 probes on the local broker):
the gateway (``python -m gateway.cli run`` with ``[upstream]``) forwards over a central
Mosquitto with passwords and an ACL (a gateway may only publish its own streams and read
its own ack) to the archive, run as ``python -m gateway.cli archive run`` (SQLite store).

a) the GATEWAY is killed -9 at random moments while it forwards (start-up included), restarted;
b) the CENTRAL broker is restarted repeatedly, down 0-1 s: alternately gracefully (SIGTERM saves
   its persistence) and killed -9 (a crash: it comes back from its last 1 s autosave, so a batch
   it PUBACKed may be gone; the forwarder sends again from the archive's cursor after
   ``resend_s``, 10 s here);
c) the ARCHIVE is killed -9 at random moments (start-up included), restarted.

The cells look through the extra hop: ``journaled`` = of the readings sent in the phase,
those IN THE ARCHIVE (by sensor, counter and value); lost = acknowledged by the local broker
but not in the archive at the end; duplicated = a reading stored twice in the archive (its
primary key is (gateway, seq), so only a reading journaled twice could show up here; the
duplicates the archive RECEIVED and dropped are counted in the note). At the end, with the
load stopped and every block sealed, the archive's records must equal the journal's byte
for byte (seq, canonical body, signature) and its acknowledged records cursor must equal
the journal's last seq.

detected = cycles after which the archive's acknowledgement (the gateway's durable
``archived`` cursor) caught up with the journal's last seq at the moment of the fault, with
zero rejections; for (a) also: the restarted forwarder resumed from its durable ``sent``
cursor, i.e. the archive received as duplicates no more than the records between that
cursor and what it already held (a forwarder starting over would exceed it, one skipping
ahead would leave a gap the ack never passes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

from gateway.journal import Journal
from gateway.testing.mosquitto import Mosquitto
from gateway.testing.station import make_station
from gateway.testing.upstream import ArchiveProcess, Central
from ledger_client.keys import load_private_key, public_hex

from .common import (
    GatewayProcess,
    JournalChecker,
    Key,
    LoadPublisher,
    Row,
    log_grows,
    value_of,
    wait_for,
)

GW = "station-a"
PASSWORDS = {GW: "pw-gateway", "archive": "pw-archive"}
CONNECTED = "upstream connected to"
RESEND = "sending again from the archive's cursors"


class ArchiveProc(ArchiveProcess):
    """The shared archive process (gateway.testing.upstream) with the one gateway's views this scenario reads."""

    def status(self) -> dict[str, Any]:
        """The archive's own view (as `traceseal archive status`): records, counters, rejections."""
        if not Path(self.cfg.store.sqlite).exists():
            return {"records": 0, "counters": {}, "rejections": {}, "unenrolled": {}, "max_seq": -1}
        s = self.store()
        try:
            st = s.status(GW)
            st["unenrolled"] = s.unenrolled_rejections()
            st["max_seq"] = int(s._one("SELECT COALESCE(MAX(seq), -1) FROM records WHERE gateway=?", (GW,))[0])
            return st
        finally:
            s.close()

    def duplicates_received(self) -> int:
        return int(self.status()["counters"].get("duplicate_records", 0))

    def records(self, gw: str = GW) -> list[tuple[int, bytes, bytes]]:
        return super().records(gw)

    def settled_max_seq(self, quiet_s: float = 0.5, timeout: float = 15.0) -> int:
        """The archive's highest stored seq once nothing more arrives for ``quiet_s`` (what the
        broker had taken for it is stored by then)."""
        last, since = self.status()["max_seq"], time.monotonic()
        deadline = since + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.status()["max_seq"]
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
        return int(last)


def _cursors(journal: Path) -> dict[str, tuple[int, int]]:
    """The gateway's durable forwarding cursors: stream -> (sent, archived)."""
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        return {s: (a, b) for s, a, b in db.execute("SELECT stream, sent, archived FROM forward_state")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()


def _archived(journal: Path) -> int:
    return _cursors(journal).get("records", (-1, -1))[1]


def _last_seq(journal: Path) -> int:
    db = sqlite3.connect(f"file:{journal}?mode=ro", uri=True, timeout=30)
    try:
        return int(db.execute("SELECT COALESCE(MAX(seq), -1) FROM records").fetchone()[0])
    finally:
        db.close()


def _archive_readings(records: list[tuple[int, bytes, bytes]]) -> tuple[Counter[Key], dict[Key, Any]]:
    got: Counter[Key] = Counter()
    values: dict[Key, Any] = {}
    for _, body, _ in records:
        rec = json.loads(body)
        src = rec.get("source", {})
        if rec.get("type") == "reading" and "ctr" in src:
            k = (rec["sensor"], src["ctr"])
            got[k] += 1
            values[k] = rec.get("value")
    return got, values


UPSTREAM = """
[upstream]
enabled = true
host = "127.0.0.1"
port = {port}
username = "{gw}"
password_file = "upstream.pw"
batch_max = 50
max_inflight = 4
reconnect_max_s = 1
resend_s = 10
"""


def run_upstream(workdir: Path, *, gateway_kills: int = 3, broker_restarts: int = 2, archive_kills: int = 2,
                 rate: float = 100.0, max_kill_s: float = 1.5, rng: random.Random | None = None) -> list[Row]:
    rng = rng or random.Random()
    ra = Row("9a upstream: kill -9 the forwarding gateway", runs=gateway_kills)
    rb = Row("9b upstream: central broker restarts", runs=broker_restarts)
    rc_ = Row("9c upstream: kill -9 the archive", runs=archive_kills)
    rows = [ra, rb, rc_]
    with Mosquitto(workdir / "local") as local:
        central = Central(workdir / "central", PASSWORDS)
        st = make_station(workdir / "st", local.port, sensors=3, gateway_id=GW, max_records=40, max_seconds=1,
                          extra_toml=UPSTREAM.format(port=central.port, gw=GW))
        (st.root / "upstream.pw").write_text(PASSWORDS[GW] + "\n")
        (st.root / "upstream.pw").chmod(0o600)
        journal = st.root / "data" / "journal.sqlite"
        arch = ArchiveProc(workdir / "archive", central, {GW: public_hex(load_private_key(st.root / "gateway.key"))})
        gw = GatewayProcess(st.config_path, workdir / "gateway.log")
        checker = JournalChecker(journal)
        pub: LoadPublisher | None = None
        try:
            # first: until it has subscribed once, the broker keeps nothing for it
            if not arch.start(30, required=False):
                ra.fail(f"archive did not start: {arch.log.read_text()[-800:]}")
                return rows
            gw.start()
            if not (gw.wait_subscribed() and wait_for(log_grows(gw, CONNECTED, 0), 20)):
                ra.fail(f"gateway did not start forwarding: {gw.log_text()[-800:]}")
                return rows
            pub = LoadPublisher(local.port, st)
            pub.start_load(rate)
            marks = [0]
            phases = [(ra, _gateway_kills), (rb, _broker_restarts), (rc_, _archive_kills)]
            for row, phase in phases:
                t0, log0 = time.monotonic(), len(gw.log_text())
                try:
                    phase(row, rng, max_kill_s, gw=gw, arch=arch, central=central, journal=journal, checker=checker)
                except Exception as exc:  # noqa: BLE001 - the phase fails, the others still run
                    row.fail(f"phase crashed: {exc!r}")
                if "Traceback" in gw.log_text()[log0:]:
                    row.fail(f"gateway traceback: {gw.log_text()[log0:][-1500:]}")
                marks.append(len(pub.sent))
                row.seconds = time.monotonic() - t0
            t0 = time.monotonic()
            _finish(rows, pub, gw, arch, journal, checker, marks)
            rc_.seconds += time.monotonic() - t0
        finally:
            if pub is not None:
                pub.close()
            gw.kill9()
            arch.kill9()
            central.broker.stop()
    return rows


def _caught_up(journal: Path, arch: ArchiveProc, last: int, timeout: float = 60.0) -> bool:
    return wait_for(lambda: _archived(journal) >= last, timeout, interval=0.1)


def _clean(arch: ArchiveProc) -> dict[str, Any]:
    s = arch.status()
    return {**s["rejections"], **{f"unenrolled {k}": v for k, v in s["unenrolled"].items()}}


def _gateway_kills(row: Row, rng: random.Random, max_kill_s: float, *, gw: GatewayProcess, arch: ArchiveProc,
                   journal: Path, checker: JournalChecker, **_: Any) -> None:
    good, resent, dups_total, resent_max, resends = 0, 0, 0, 0, 0
    for i in range(row.runs):
        time.sleep(rng.uniform(0.0, max_kill_s))  # from the start: during start-up, backlog forwarding, steady state
        gw.kill9()
        for f in checker.check():
            row.fail(f"cycle {i}, after kill: {f}")
        last = checker.next_seq - 1
        durable = _cursors(journal).get("records", (-1, -1))[0]
        held = arch.settled_max_seq()  # what the broker took before the kill is in the archive now
        dup0 = arch.duplicates_received()
        gw.start()
        caught = _caught_up(journal, arch, last)
        dups = arch.duplicates_received() - dup0  # all re-sent seqs are <= last: counted by now
        allowed = max(0, held - durable)
        if RESEND in gw.log_text(since_start=True):  # a stall of resend_s: sent again from the archive's cursor
            resends += 1
            allowed = max(allowed, dups)
        bad = _clean(arch)
        if not caught:
            row.fail(f"cycle {i}: the archive's ack did not reach seq {last} within 60 s "
                     f"(archived {_archived(journal)}, archive holds up to {arch.status()['max_seq']}); "
                     f"gateway alive={gw.alive}")
        if dups > allowed:
            row.fail(f"cycle {i}: the restarted forwarder did not resume from its cursor {durable}: the archive "
                     f"held up to {held} and received {dups} duplicates (at most {allowed} expected)")
        if bad:
            row.fail(f"cycle {i}: archive rejections {bad}")
        good += caught and dups <= allowed and not bad
        resent += allowed
        resent_max = max(resent_max, allowed)
        dups_total += dups
        if not gw.alive:
            row.fail(f"gateway died: {gw.log_text(since_start=True)[-800:]}")
            gw.start()
    row.detected = (good, row.runs)
    row.notes.append(f"{row.runs} SIGKILLs of the gateway at uniform 0-{max_kill_s:g} s after its start; "
                     f"{checker.checks} journal verifications; the archive received {dups_total} records again "
                     f"(re-sent from the durable sent cursor: PUBACKed by the central broker, not yet persisted; "
                     f"at most {resent_max} in one cycle; {resends} cycles with a resend_s stall) "
                     f"and stored each once; "
                     f"detected = cycles after which the "
                     f"forwarder resumed from its cursor and the archive's ack reached the journal's last seq "
                     f"at the kill, zero rejections")


def _broker_restarts(row: Row, rng: random.Random, max_kill_s: float, *, gw: GatewayProcess, arch: ArchiveProc,
                     central: Central, journal: Path, **_: Any) -> None:
    good = 0
    dup0 = arch.duplicates_received()
    resend0 = gw.log_text().count(RESEND)
    for i in range(row.runs):
        time.sleep(rng.uniform(0.3, max_kill_s + 0.5))
        before = gw.log_text().count(CONNECTED)
        last = _last_seq(journal)
        if i % 2:  # a crash: what arrived since the last autosave (1 s) is gone from the broker
            proc = central.broker.proc
            assert proc is not None
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            central.broker.proc = None
        else:
            central.broker.stop()
        time.sleep(rng.uniform(0.0, 1.0))
        central.broker.start()
        back = wait_for(log_grows(gw, CONNECTED, before), 45)
        caught = back and _caught_up(journal, arch, last)
        bad = _clean(arch)
        if not back:
            row.fail(f"restart {i}: the forwarder did not reconnect within 45 s")
        elif not caught:
            row.fail(f"restart {i}: the archive's ack did not reach seq {last} within 60 s "
                     f"(archived {_archived(journal)})")
        if bad:
            row.fail(f"restart {i}: archive rejections {bad}")
        good += back and caught and not bad
    row.detected = (good, row.runs)
    resends = gw.log_text().count(RESEND) - resend0
    row.notes.append(f"{row.runs} restarts of the central broker (down 0-1 s) at 0.3-{max_kill_s + 0.5:g} s "
                     f"intervals, alternately graceful (SIGTERM: persistence saved) and SIGKILL (persistence as of "
                     f"the last 1 s autosave); {resends} forwarder resends from the archive's cursor (resend_s 10); "
                     f"the archive received {arch.duplicates_received() - dup0} "
                     f"records again (batches in flight at the restart, re-sent by the persistent session) and "
                     f"stored each once; detected = restarts after which the forwarder reconnected by itself "
                     f"and the archive's ack reached the journal's last seq at the restart, zero rejections")


def _archive_kills(row: Row, rng: random.Random, max_kill_s: float, *, arch: ArchiveProc, journal: Path,
                   **_: Any) -> None:
    good = 0
    dup0 = arch.duplicates_received()
    for i in range(row.runs):
        time.sleep(rng.uniform(0.0, max_kill_s))
        last = _last_seq(journal)
        arch.kill9()
        if not arch.start(30, required=False):
            row.fail(f"kill {i}: the archive did not come back: {arch.log.read_text()[-800:]}")
            continue
        caught = _caught_up(journal, arch, last)
        bad = _clean(arch)
        if not caught:
            row.fail(f"kill {i}: the archive's ack did not reach seq {last} within 60 s "
                     f"(archived {_archived(journal)}, archive holds up to {arch.status()['max_seq']})")
        if bad:
            row.fail(f"kill {i}: archive rejections {bad}")
        good += caught and not bad
    row.detected = (good, row.runs)
    row.notes.append(f"{row.runs} SIGKILLs of the archive at uniform 0-{max_kill_s:g} s after its start; the "
                     f"archive received {arch.duplicates_received() - dup0} records again (committed, not yet "
                     f"PUBACKed: redelivered by the broker) and stored each once; detected = kills after which "
                     f"the archive's ack reached the journal's last seq at the kill, zero rejections")


def _finish(rows: list[Row], pub: LoadPublisher, gw: GatewayProcess, arch: ArchiveProc, journal: Path,
            checker: JournalChecker, marks: list[int]) -> None:
    """No more load: everything acknowledged must reach the archive, once, byte for byte."""
    last_row = rows[-1]
    pub.stop_load()
    marks[-1] = len(pub.sent)  # readings published after the last phase belong to it
    last_row.check(pub.wait_acked(60), "the local broker did not PUBACK every reading")
    acked = pub.acked()
    if not gw.alive:
        gw.start()
    if not checker.settle(acked, 90):
        last_row.fail("acknowledged readings not journaled within 90 s")
    # every record sealed, every block anchored, and the archive's ack at the journal's last seq,
    # last block and last anchor (records, blocks and anchors all forwarded and verified)
    def done() -> bool:
        if checker.check(integrity=False) or checker.state.unsealed or \
                checker.state.anchored_block != checker.state.blocks - 1:
            return False
        cur = _cursors(journal)
        top = checker.state.blocks - 1
        return (cur["records"][1], cur["blocks"][1], cur["anchors"][1]) == (checker.next_seq - 1, top, top)

    final = wait_for(done, timeout=60, interval=0.2)
    last_seq = checker.next_seq - 1
    if not final:
        last_row.fail(f"at the end the archive's ack (records, blocks, anchors) is "
                      f"{[_cursors(journal).get(s, (0, None))[1] for s in ('records', 'blocks', 'anchors')]}, the "
                      f"journal's last seq {last_seq}, last block {checker.state.blocks - 1}, anchored to "
                      f"{checker.state.anchored_block}")
    for f in checker.check():
        last_row.fail(f"final journal: {f}")
    j = Journal(journal, readonly=True)
    try:
        want = [(r.seq, bytes(r.body), bytes(r.sig)) for r in j.records_range(0, last_seq)]
    finally:
        j.close()
    got = arch.records()
    same = got[: len(want)] == want
    if not same:
        diff = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        last_row.fail(f"the archive's records differ from the journal's from index {diff} "
                      f"(archive {len(got)} records, journal {len(want)})")
    status = arch.status()
    rc = gw.stop()
    last_row.check(rc == 0, f"graceful gateway stop exited {rc}")
    rc = arch.stop()
    last_row.check(rc == 0, f"graceful archive stop exited {rc}")
    if "Traceback" in arch.log.read_text():
        last_row.fail(f"archive traceback: {arch.log.read_text()[-1500:]}")
    readings, values = _archive_readings(got)
    sent = pub.sent
    for k, row in enumerate(rows):
        keys = sent[marks[k]:marks[k + 1]]
        mine = set(keys)
        row.sent = len(keys)
        row.acked = len(acked & mine)
        row.journaled = sum(1 for x in keys if readings[x] >= 1)
        lost = sorted(x for x in acked & mine if readings[x] == 0)
        row.lost = len(lost)
        row.duplicated = sum(readings[x] - 1 for x in keys if readings[x] > 1)
        wrong = [x for x in keys if readings[x] and values.get(x) != value_of(*x)]
        if lost:
            q, j_got = checker.state.quarantined, checker.state.readings
            where = [(x, q.get(x) or ("journaled" if j_got[x] else "not in the journal")) for x in lost[:3]]
            row.fail(f"{len(lost)} acknowledged readings are not in the archive, e.g. {where}")
        if row.duplicated:
            row.fail(f"{row.duplicated} readings stored more than once in the archive")
        if wrong:
            row.fail(f"{len(wrong)} archived values differ from what was sent, e.g. {wrong[:3]}")
    last_row.notes.append(
        f"at the end: the archive holds {len(got):,} records, equal to the journal's byte for byte "
        f"(seq, body, signature): {same}; archive ack {_archived(journal)} == journal last seq {last_seq}, "
        f"its block and anchor acks at the last block; {status['blocks_verified']} blocks verified, "
        f"{status['anchors']} anchor rows; duplicates received in all "
        f"{status['counters'].get('duplicate_records', 0)} records, {status['counters'].get('duplicate_blocks', 0)} "
        f"blocks, {status['counters'].get('duplicate_anchors', 0)} anchors; "
        f"rejections {status['rejections'] or 'none'}")
