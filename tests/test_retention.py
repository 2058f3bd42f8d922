"""Retention: only whole blocks that are old AND anchored (AND archived, when forwarding) lose
their records; headers, anchors and the chain stay; exports of what is gone say so."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway import cli
from gateway.app import config as configmod
from gateway.app.config import RetentionConfig
from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import ExportError, export_lot, export_range, export_record
from gateway.chain.retention import DAY_MS, prune
from gateway.core.clock import FakeClock
from gateway.core.errors import ConfigError
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.hypo import examples
from gateway.testing.station import make_station
from ledger_client.keys import load_private_key, public_hex
from ledger_client.local import LocalLedger
from ledger_client.verify import verify_bundle

DAYS = 30


class Rig:
    """A real journal, sealer, block sealer and local ledger on a fake clock."""

    def __init__(self, tmp: Path, key: Ed25519PrivateKey | None = None, journal_cls: type[Journal] = Journal,
                 path: Path | None = None, per_block: int = 3) -> None:
        self.clock = FakeClock()
        self.key = key or Ed25519PrivateKey.generate()
        self.path = path or tmp / "j.sqlite"
        self.journal = journal_cls(self.path)
        self.journal.bind_identity("gw", public_hex(self.key))
        self.sealer = Sealer("gw", self.key, self.journal.next_seq())
        self.per_block = per_block
        self.blocks = BlockSealer(self.journal, self.key, "gw", self.clock, max_records=per_block, max_seconds=10**9)
        self.ledger = LocalLedger(tmp / "l.sqlite", Ed25519PrivateKey.generate(), clock_ms=self.clock.now_ms)
        self.anchorer = Anchorer(self.journal, self.ledger, self.clock, "gw")

    def block(self, n: int | None = None) -> int:
        """One full block of readings at the clock's time; returns its number."""
        n = n or self.per_block
        rows = [self.sealer.seal({"type": "reading", "sensor": "p", "kind": "temperature", "value": 4000 + i,
                                  "unit": "mC"}, time_ms=self.clock.now_ms(), synced=True) for i in range(n)]
        self.journal.commit_batch(rows, [], {}, {})
        sealed = self.blocks.maybe_seal()
        assert sealed
        return sealed[-1].block

    def anchor(self) -> None:
        while self.anchorer.step() not in ("idle",):
            pass

    def counts(self) -> dict[int, int]:
        """Records present per block."""
        out = {}
        for b, f, last in self.journal.db.execute("SELECT block, first_seq, last_seq FROM blocks ORDER BY block"):
            out[b] = self.journal.db.execute("SELECT COUNT(*) FROM records WHERE seq BETWEEN ? AND ?",
                                             (f, last)).fetchone()[0]
        return out

    def close(self) -> None:
        self.journal.close()
        self.ledger.close()


def cfg(days: int = DAYS, batch: int = 5000) -> RetentionConfig:
    return RetentionConfig(days=days, interval_s=60, batch=batch)


def build_mixed(rig: Rig) -> None:
    """Blocks 0-3 old and anchored, 4-5 old but never anchored, 6-7 new and anchored later."""
    for _ in range(4):
        rig.block()
        rig.clock.advance(DAY_MS)
    rig.anchor()  # anchors block 3 (covers 0..3), 40-odd days before "now"
    for _ in range(2):
        rig.block()
        rig.clock.advance(DAY_MS)
    rig.clock.advance(45 * DAY_MS)


def test_prune_takes_exactly_old_anchored_blocks_and_kept_records_still_verify(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    build_mixed(rig)
    n_blocks = rig.journal.last_block().block + 1  # type: ignore[union-attr]
    res = prune(rig.journal, cfg(), rig.clock.now_ms())
    assert res.deleted == 4 * rig.per_block
    assert [b for b, n in rig.counts().items() if n == 0] == [0, 1, 2, 3]
    assert all(n == rig.per_block for b, n in rig.counts().items() if b >= 4)  # unanchored 4, 5: untouched
    assert res.plan.stopped_at == 4 and "not anchored" in res.plan.reason
    # headers and anchors stay; the journal is sound; next_seq does not go back
    assert rig.journal.db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == n_blocks
    assert rig.journal.db.execute("SELECT COUNT(*) FROM anchors").fetchone()[0] == 1
    assert rig.journal.integrity_check() == "ok"
    assert rig.journal.next_seq() == 6 * rig.per_block
    # the log says what went
    log = rig.journal.db.execute(
        "SELECT first_block, last_block, first_seq, last_seq, records, days FROM pruned").fetchall()
    assert log == [(0, 3, 0, 4 * rig.per_block - 1, 4 * rig.per_block, DAYS)]
    # again: a no-op
    again = prune(rig.journal, cfg(), rig.clock.now_ms())
    assert again.deleted == 0 and again.transactions == 0
    assert rig.journal.db.execute("SELECT COUNT(*) FROM pruned").fetchone()[0] == 1

    # a pruned record: a clear error naming the retention, not "no record" or a crash
    with pytest.raises(ExportError, match=r"record seq 1 was pruned on \d{4}-\d\d-\d\d .* by retention \(days=30\); "
                                          r"ask the archive"):
        export_record(rig.journal, 1)
    with pytest.raises(ExportError, match=r"reaches into blocks 0\.\.3 .*retention \(days=30\)"):
        export_range(rig.journal, "p", 0, 2**52, allow_unanchored=True)

    # new blocks come and everything gets anchored: the kept records export, and the bundle
    # proves its chain from the kept header of the last pruned block on to the anchor
    rig.block()
    rig.anchor()
    first_kept = json.loads(rig.journal.block(4).header)["first_time_ms"]  # type: ignore[union-attr]
    bundle = export_range(rig.journal, "p", first_kept, 2**52)
    rep = verify_bundle(bundle, gateway_key=public_hex(rig.key))
    assert rep.ok, rep.as_dict()
    assert bundle["blocks"][0]["header"]["block"] == 3  # the pruned block's header is still there
    assert len(bundle["records"]) == 3 * rig.per_block
    assert verify_bundle(export_record(rig.journal, 4 * rig.per_block), gateway_key=public_hex(rig.key)).ok
    rig.close()


def test_retention_days_zero_never_prunes(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    build_mixed(rig)
    rig.block()
    rig.anchor()
    rig.clock.advance(10_000 * DAY_MS)
    res = prune(rig.journal, cfg(days=0), rig.clock.now_ms())
    assert res.deleted == 0 and "kept forever" in res.plan.reason
    assert all(n == rig.per_block for n in rig.counts().values())
    rig.close()


def test_newest_block_is_kept_even_when_old_and_anchored(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.block()
    rig.block()
    rig.anchor()
    rig.clock.advance(100 * DAY_MS)
    res = prune(rig.journal, cfg(), rig.clock.now_ms())
    assert res.deleted == rig.per_block and rig.counts() == {0: 0, 1: rig.per_block}
    assert "newest block" in res.plan.reason
    assert rig.journal.next_seq() == 2 * rig.per_block  # so the sequence can never restart
    rig.close()


def test_a_block_anchored_only_recently_is_kept(tmp_path: Path) -> None:
    """Records stamped long ago (a Pi booted in the past) but anchored yesterday are not old."""
    rig = Rig(tmp_path)
    rig.block()
    rig.block()
    rig.clock.advance(40 * DAY_MS)  # the ledger saw them only now
    rig.anchor()
    rig.clock.advance(DAY_MS)
    res = prune(rig.journal, cfg(), rig.clock.now_ms())
    assert res.deleted == 0 and "confirmed after the cutoff" in res.plan.reason
    rig.close()


def test_batches_are_whole_blocks_and_each_transaction_logs_itself(tmp_path: Path) -> None:
    rig = Rig(tmp_path, per_block=4)
    for _ in range(7):
        rig.block()
    rig.anchor()
    rig.clock.advance(40 * DAY_MS)
    res = prune(rig.journal, cfg(batch=10), rig.clock.now_ms())  # 10 rows -> 2 blocks of 4 per transaction
    assert res.transactions == 3 and res.deleted == 6 * 4
    spans = rig.journal.db.execute("SELECT first_block, last_block, records FROM pruned ORDER BY id").fetchall()
    assert spans == [(0, 1, 8), (2, 3, 8), (4, 5, 8)]
    rig.close()


def test_delete_is_refused_outside_retention(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.block()
    rig.anchor()
    db = rig.journal.db
    for sql, msg in (("DELETE FROM records WHERE seq = 0", "deleted only by retention"),
                     ("DELETE FROM blocks", "kept forever"), ("DELETE FROM anchors", "kept forever")):
        with pytest.raises(sqlite3.DatabaseError, match=msg):
            db.execute(sql)
    assert rig.counts() == {0: rig.per_block}
    rig.close()


class ForwardingJournal(Journal):
    """Stand-in for the upstream forwarder's ``archived_seq`` (issue 10), for this rule only."""

    archived: int | None = -1

    def archived_seq(self) -> int | None:
        return self.archived


def test_forwarding_keeps_what_the_archive_has_not_acknowledged(tmp_path: Path) -> None:
    rig = Rig(tmp_path, journal_cls=ForwardingJournal)
    for _ in range(5):
        rig.block()
    rig.anchor()
    rig.clock.advance(40 * DAY_MS)
    j: ForwardingJournal = rig.journal  # type: ignore[assignment]
    j.archived = -1  # forwarding on, nothing acknowledged: nothing goes
    res = prune(j, cfg(), rig.clock.now_ms())
    assert res.deleted == 0 and "not yet acknowledged by the archive" in res.plan.reason
    j.archived = 2 * rig.per_block  # blocks 0 and 1 acknowledged, block 2 only in part
    res = prune(j, cfg(), rig.clock.now_ms())
    assert [b for b, n in rig.counts().items() if n == 0] == [0, 1] and res.plan.stopped_at == 2
    assert j.db.execute("SELECT archived_seq FROM pruned").fetchone()[0] == 2 * rig.per_block
    j.archived = None  # forwarding switched off: only age and anchors decide
    prune(j, cfg(), rig.clock.now_ms())
    assert [b for b, n in rig.counts().items() if n == 0] == [0, 1, 2, 3]
    rig.close()


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=10),
       tail_days=st.integers(0, 40), days=st.integers(8, 30))
def test_property_never_prunes_unanchored_or_young(steps: list[tuple[int, bool]], tail_days: int, days: int) -> None:
    """Random block ages and anchor positions: what goes is exactly the longest prefix of
    blocks that are old, covered by an anchor confirmed before the cutoff, and not the newest."""
    with tempfile.TemporaryDirectory() as d:
        rig = Rig(Path(d), per_block=2)
        anchor_time: dict[int, int] = {}  # anchored block -> ledger time
        last_time: dict[int, int] = {}
        for gap_days, anchor_now in steps:
            rig.clock.advance(gap_days * DAY_MS)
            b = rig.block()
            last_time[b] = rig.clock.now_ms()
            if anchor_now:
                rig.anchor()
                anchor_time[b] = rig.clock.now_ms()
        rig.clock.advance(tail_days * DAY_MS)
        now = rig.clock.now_ms()
        cutoff = now - days * DAY_MS
        newest = max(last_time)
        expected = []
        for b in sorted(last_time):
            cover = [a for a in sorted(anchor_time) if a >= b]
            if b == newest or not cover or last_time[b] >= cutoff or anchor_time[cover[0]] >= cutoff:
                break
            expected.append(b)
        before = rig.counts()
        prune(rig.journal, cfg(days=days, batch=3), now)
        after = rig.counts()
        gone = [b for b in after if after[b] == 0]
        assert gone == expected
        for b in gone:  # the safety property on its own: anchored, old, and whole
            assert any(a >= b for a in anchor_time) and last_time[b] < cutoff
        assert all(after[b] == before[b] for b in after if b not in gone)
        assert rig.journal.integrity_check() == "ok"
        rig.close()


def test_config_section(tmp_path: Path) -> None:
    base = {"gateway": {"id": "gw"}}
    assert configmod.parse(base, tmp_path).retention == RetentionConfig(days=0, interval_s=3600, batch=5000)
    c = configmod.parse({**base, "retention": {"days": 400, "interval_s": 600, "batch": 2000}}, tmp_path)
    assert c.retention == RetentionConfig(days=400, interval_s=600, batch=2000)
    for bad, key in (({"days": -1}, "retention.days"), ({"days": "30"}, "retention.days"),
                     ({"batch": 0}, "retention.batch"), ({"interval_s": 0}, "retention.interval_s"),
                     ({"dayz": 30}, "retention.dayz"), ({"days": 7}, "retention.days")):
        with pytest.raises(ConfigError) as e:
            configmod.parse({**base, "retention": bad}, tmp_path)
        assert e.value.key == key
    with pytest.raises(ConfigError, match="did you mean 'days'"):
        configmod.parse({**base, "retention": {"dayz": 30}}, tmp_path)
    with pytest.raises(ConfigError, match="session_expiry_s"):  # a redelivery must still find its digest
        configmod.parse({**base, "retention": {"days": 7}}, tmp_path)
    with pytest.raises(ConfigError, match=r"session_expiry_s \(7 days\), so at least 8, got 7"):  # in days, not seconds
        configmod.parse({**base, "retention": {"days": 7}}, tmp_path)


def _station_journal(tmp_path: Path, *, extra: str = "", blocks: int = 6, per_block: int = 50) -> tuple[Path, Rig]:
    st = make_station(tmp_path / "st", 1, extra_toml=extra)
    cfgobj = configmod.load(st.config_path)
    rig = Rig(tmp_path, key=load_private_key(st.root / "gateway.key"), path=cfgobj.journal.path, per_block=per_block)
    rig.journal.db.execute("UPDATE meta SET v=? WHERE k='gateway_id'", (st.gateway_id,))
    rig.sealer.gateway_id = rig.blocks.gateway_id = rig.anchorer.gateway_id = st.gateway_id
    for _ in range(blocks):
        rig.block()
        rig.clock.advance(60_000)
    rig.anchor()
    return st.config_path, rig


def test_cli_prune_dry_run_then_prune_and_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # FakeClock's 2026-01-01 journal is far older than 30 days by the real clock
    config, rig = _station_journal(tmp_path, extra="[retention]\ndays = 30\n", blocks=4, per_block=5)
    rig.close()
    assert cli.main(["prune", "-c", str(config), "--dry-run", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] and out["records"] == 15 and (out["first_block"], out["last_block"]) == (0, 2)
    assert out["deleted"] == 0 and "newest block" in out["reason"]
    j = Journal(rig.path, readonly=True)
    assert j.stats()["records"] == 20  # a dry run deletes nothing
    j.close()
    assert cli.main(["prune", "-c", str(config), "--trust-clock"]) == 0
    text = capsys.readouterr().out
    assert "pruned 15 records of blocks 0..2 (seq 0..14)" in text and "kept from block 3" in text
    assert cli.main(["status", "-c", str(config)]) == 0
    assert "retention      days=30; 15 records of blocks 0..2 pruned (seq ≤ 14)" in capsys.readouterr().out
    assert cli.main(["status", "-c", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["retention"]["pruned_records"] == 15
    assert cli.main(["prune", "-c", str(config), "--trust-clock"]) == 0
    assert "nothing to prune" in capsys.readouterr().out
    # the kept records export and `traceseal verify` passes, the chain starting at a pruned block's header
    j = Journal(rig.path, readonly=True)
    first_kept = json.loads(j.block(3).header)["first_time_ms"]  # type: ignore[union-attr]
    j.close()
    out_file = tmp_path / "kept.json"
    assert cli.main(["export", "-c", str(config), "--sensor", "p", "--from", str(first_kept), "--to", str(2**50),
                     "-o", str(out_file)]) == 0
    bundle = json.loads(out_file.read_text())
    assert bundle["blocks"][0]["header"]["block"] == 2 and len(bundle["records"]) == 5
    capsys.readouterr()
    assert cli.main(["verify", str(out_file), "--gateway-key", public_hex(rig.key),
                     "--ledger-file", str(tmp_path / "l.sqlite")]) == 0
    assert "FAIL" not in capsys.readouterr().out
    assert cli.main(["export", "-c", str(config), "--seq", "3"]) == 3
    assert "record seq 3 was pruned on" in capsys.readouterr().err


def test_lot_export_refuses_once_the_journal_was_pruned(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for _ in range(3):
        rig.block()
    rig.anchor()
    rig.clock.advance(40 * DAY_MS)
    prune(rig.journal, cfg(), rig.clock.now_ms())
    with pytest.raises(ExportError, match=r"history of lot 'L1' reaches into blocks 0\.\.1 .*ask the archive"):
        export_lot(rig.journal, {}, None, "L1")
    rig.close()


_PRUNE_CHILD = textwrap.dedent("""
    import sys
    from gateway.app.config import RetentionConfig
    from gateway.journal import Journal
    from gateway.chain.retention import prune
    j = Journal(sys.argv[1])
    print("go", flush=True)
    prune(j, RetentionConfig(days=30, batch=int(sys.argv[2])), int(sys.argv[3]))
    print("done", flush=True)
""")


def test_kill_9_mid_prune_leaves_a_consistent_journal(tmp_path: Path) -> None:
    rig = Rig(tmp_path, per_block=50)
    for _ in range(300):  # 15,000 records in 300 blocks
        rig.block()
    rig.anchor()
    rig.clock.advance(40 * DAY_MS)
    now = rig.clock.now_ms()
    rig.journal.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    # one block per transaction: ~300 fsynced commits, so the kill lands in the middle
    child = subprocess.Popen([sys.executable, "-c", _PRUNE_CHILD, str(rig.path), "50", str(now)],
                             stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "go"
    probe = sqlite3.connect(rig.path, timeout=10)
    deadline = time.monotonic() + 30
    while probe.execute("SELECT COUNT(*) FROM pruned").fetchone()[0] < 20 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    probe.close()
    j = Journal(rig.path)
    assert j.integrity_check() == "ok"
    gone = j.db.execute("SELECT MAX(last_block) FROM pruned").fetchone()[0]
    assert 19 <= gone < 298, "the kill should land mid-prune"
    assert j.db.execute("SELECT COUNT(*) FROM prune_guard").fetchone()[0] == 0  # never committed
    per = {b: n for b, n in j.db.execute(
        "SELECT b.block, (SELECT COUNT(*) FROM records r WHERE r.seq BETWEEN b.first_seq AND b.last_seq) "
        "FROM blocks b")}
    # exactly the logged prefix is gone, every later block whole: no half-pruned block
    assert all(per[b] == 0 for b in range(gone + 1)) and all(per[b] == 50 for b in range(gone + 1, 300))
    assert j.db.execute("SELECT SUM(records) FROM pruned").fetchone()[0] == (gone + 1) * 50
    res = prune(j, cfg(), now)  # resumes where it stopped
    assert res.plan.blocks[0][0] == gone + 1 and j.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 50
    j.close()
    rig.ledger.close()


def test_running_gateway_prunes_on_its_own_thread_and_a_restart_keeps_what_is_open(tmp_path: Path) -> None:
    """A real gateway (alarm rules, local ledger, FakeClock): its retention thread waits while
    an unacknowledged alarm needs the old records, prunes once it is acknowledged, while
    ingest goes on; /metrics and status show it; a restart's replay of the pruned journal
    loses no unacknowledged alarm."""
    from gateway.app.dashboard import GatewaySource
    from gateway.station import Station
    from gateway.testing.dashboard import make_rig, wait_for
    from gateway.web import metrics

    rig = make_rig(tmp_path / "rig", scanners=False, extra_toml="[retention]\ndays = 30\ninterval_s = 1\n")
    pruned = lambda: rig.journal.db.execute("SELECT COUNT(*) FROM pruned").fetchone()[0]  # noqa: E731
    try:
        assert rig.gw.pruner is not None and rig.gw.pruner.journal is not rig.gw.journal  # not the writer's
        for mc in (5000, 5000, 9500, 9800, 9900, 9900, 9900, 9900, 9900, 5000, 5000):  # a high alarm, then back
            rig.reading(mc)
        wait_for(lambda: bool(rig.alarm_records("cleared")), what="alarm raised and cleared")
        rig.clock.advance(2 * 3600_000)
        wait_for(lambda: rig.journal.stats()["blocks"] >= 1 and rig.journal.stats()["unanchored_blocks"] == 0,
                 what="old blocks sealed and anchored")
        rig.clock.advance(40 * DAY_MS)

        def new_anchored_block() -> None:
            for _ in range(3):
                rig.reading(5000)
            rig.clock.advance(2 * 3600_000)
            n = rig.journal.stats()["blocks"]
            rig.reading(5000)  # the writer seals the due block, the anchor thread anchors it
            wait_for(lambda: rig.journal.stats()["blocks"] > n and rig.journal.stats()["unanchored_blocks"] == 0,
                     what="a new block sealed and anchored")

        new_anchored_block()
        # old and anchored, but the high alarm was never acknowledged: a restart needs its records
        wait_for(lambda: "unacknowledged alarm" in rig.gw.status()["retention"]["last_run"].get("reason", ""),
                 what="retention ran and kept the alarm's records")
        assert pruned() == 0
        rig.gw.station.acknowledge("nurse")
        wait_for(lambda: not any(not a.get("acknowledged") for a in rig.gw.station.active()), what="acknowledged")
        new_anchored_block()
        wait_for(lambda: pruned() > 0, what="pruned")
        h = rig.journal.db.execute("SELECT MAX(last_seq), SUM(records) FROM pruned").fetchone()
        first_alarm = rig.journal.db.execute("SELECT MIN(seq) FROM records WHERE type='alarm'").fetchone()[0]
        assert rig.journal.db.execute("SELECT COUNT(*) FROM records WHERE seq <= ?", (h[0],)).fetchone()[0] == 0
        assert first_alarm is None or first_alarm > h[0]
        assert rig.gw.status()["retention"]["last_run"]["deleted"] >= 11
        scraped = metrics.render(metrics.registry_for(GatewaySource(rig.gw))).decode()
        assert f"traceseal_retention_pruned_records_total {float(h[1])}" in scraped
        rig.reading(5000)  # ingest goes on after pruning
        live = rig.gw.station.active()
    finally:
        rig.close()
    # a restart: the station rebuilds from what is kept, and copes with the missing prefix
    j = Journal(rig.cfg.journal.path, readonly=True)
    st = Station(rig.cfg.station)
    out = st.replay(j)
    assert out[-1] == {"type": "gateway_started"}
    rebuilt = {a["id"] for a in st.active()}
    assert {a["id"] for a in live if not a.get("acknowledged")} <= rebuilt
    # and the restarted gateway seals what its replay derived and goes on journaling
    # (it did not: a replayed alarm it had not derived carried the record envelope into
    # its next body, the sealer refused it, and the writer retried that batch forever)
    started = j.db.execute("SELECT COUNT(*) FROM records WHERE type='gateway_started'").fetchone()[0]
    from gateway.app.service import Gateway

    gw = Gateway(rig.cfg, clock=FakeClock(start_ms=rig.clock.now_ms()), with_mqtt=False)
    gw.start()
    try:
        wait_for(lambda: j.db.execute("SELECT COUNT(*) FROM records WHERE type='gateway_started'").fetchone()[0]
                 > started, what="the restarted gateway sealed its start")
    finally:
        gw.stop()
    j.close()


def test_station_floor_holds_back_pruning(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    times = []
    for _ in range(5):
        rig.block()
        times.append(rig.clock.now_ms())
        rig.clock.advance(DAY_MS)
    rig.anchor()
    rig.clock.advance(40 * DAY_MS)
    res = prune(rig.journal, cfg(), rig.clock.now_ms(), floor=(times[2], "lot L1 of 0950 still in fridge-1"))
    assert [b for b, n in rig.counts().items() if n == 0] == [0, 1]
    assert res.plan.stopped_at == 2 and "a restart needs it: lot L1 of 0950 still in fridge-1" in res.plan.reason
    rig.close()


def test_cli_says_when_an_unsynchronised_clock_holds_retention(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A user saw `nothing pruned` and no word about the clock; the service waits silently for NTP."""
    from gateway.core.clock import SystemClock

    config, rig = _station_journal(tmp_path, extra="[retention]\ndays = 30\n", blocks=3, per_block=5)
    rig.close()
    monkeypatch.setattr(SystemClock, "synced", lambda self: False)  # this host's clock may well be synced
    assert cli.main(["prune", "-c", str(config), "--dry-run"]) == 0
    assert "clock: not NTP-synchronised: the service prunes nothing until it is" in capsys.readouterr().out
    assert cli.main(["status", "-c", str(config)]) == 0
    assert "retention      days=30; nothing pruned; waiting for a synchronised clock" in capsys.readouterr().out
    assert cli.main(["prune", "-c", str(config)]) == 3  # refused without --trust-clock
    monkeypatch.setattr(SystemClock, "synced", lambda self: True)
    assert cli.main(["prune", "-c", str(config), "--dry-run"]) == 0
    assert "clock:" not in capsys.readouterr().out
    assert cli.main(["status", "-c", str(config)]) == 0
    assert "waiting for a synchronised clock" not in capsys.readouterr().out
