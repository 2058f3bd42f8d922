"""One bad message must never stop a station (issue 14, findings 1 and 2).

Each test feeds a valid-looking message that makes the code itself fail (a counter jump that
once allocated the universe, an exception injected at a stage of the pipeline or in the
commit) among good messages, and checks what a station depends on: every good message is
journaled exactly once and acknowledged, the bad one is quarantined with a reason, seqs stay
dense, blocks keep sealing, and the in-memory state equals what the journal says.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.chain.blocks import BlockSealer
from gateway.core.clock import FakeClock
from gateway.core.errors import JournalError
from gateway.ingest.admit import REPLAY_WINDOW
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.station import StationDir, make_station
from gateway.transports.inbound import Inbound

BIG = 2**53 - 1


@pytest.fixture
def station(tmp_path: Path) -> StationDir:
    return make_station(tmp_path, 1883, sensors=2, topic_prefix="site/sensors")


@pytest.fixture
def pipe(station: StationDir) -> Pipeline:
    cfg = configmod.load(station.config_path)
    return Pipeline(cfg.ingest, Journal(cfg.journal.path), Sealer(cfg.gateway_id, Ed25519PrivateKey.generate(), 0),
                    FakeClock())


def msg(station: StationDir, ctr: int, sensor: str = "probe-1", value: int = 4000) -> Inbound:
    acks: list[int] = []
    m = Inbound("mqtt", station.topic(sensor),
                build_message(station.sensor_keys[sensor], sensor, ctr, 1_767_225_600_000 + ctr % 10**9,
                              [temperature(value)]))
    m.ack = lambda: acks.append(ctr)
    return m


def ctrs(pipe: Pipeline, sensor: str = "probe-1") -> list[int]:
    import json

    rows = pipe.journal.db.execute("SELECT body FROM records WHERE sensor = ? ORDER BY seq", (sensor,))
    return [json.loads(b)["source"]["ctr"] for (b,) in rows]


def reasons(pipe: Pipeline) -> list[str]:
    return [r for (r,) in pipe.journal.db.execute("SELECT reason FROM quarantine ORDER BY id")]


def assert_consistent(pipe: Pipeline) -> None:
    """Dense seqs from 0, and memory equals the journal (what a restart would rebuild)."""
    seqs = [s for (s,) in pipe.journal.db.execute("SELECT seq FROM records ORDER BY seq")]
    assert seqs == list(range(len(seqs)))
    assert pipe.sealer.next_seq == pipe.journal.next_seq()
    assert pipe.admission.counters == pipe.journal.sensor_counters()


# -- finding 1: a counter jump ------------------------------------------------------------------

def test_a_counter_jump_is_quarantined_and_good_traffic_goes_on(station: StationDir, pipe: Pipeline) -> None:
    res = pipe.process([msg(station, 1), msg(station, BIG), msg(station, 2), msg(station, 1, "probe-2")])
    assert ctrs(pipe) == [1, 2] and ctrs(pipe, "probe-2") == [1]
    assert reasons(pipe) == ["counter-jump"]
    detail = pipe.journal.db.execute("SELECT detail FROM quarantine").fetchone()[0]
    assert f"counter {BIG}" in detail and "max_counter_jump" in detail
    assert len(res.durable) == 4  # the poison is acknowledged too: it is kept, as evidence
    top, window = pipe.admission.counters["probe-1"]
    assert top == 2 and window.bit_length() <= REPLAY_WINDOW
    assert_consistent(pipe)


def test_a_jump_confirmed_by_the_next_message_is_accepted_in_constant_memory(station: StationDir,
                                                                             pipe: Pipeline) -> None:
    far = 10**12
    pipe.process([msg(station, 1)])
    pipe.process([msg(station, far)])  # refused alone: one message cannot move a probe's counter
    pipe.process([msg(station, far + 1), msg(station, far + 2)])
    assert ctrs(pipe) == [1, far + 1, far + 2]
    assert reasons(pipe) == ["counter-jump"]
    top, window = pipe.admission.counters["probe-1"]
    assert top == far + 2 and window == 0b11  # the window restarts at the jump: nothing older is kept
    pipe.process([msg(station, 2)])  # a genuine reading from before the jump is now too old
    assert reasons(pipe)[-1] == "replayed-counter"
    assert_consistent(pipe)


def test_a_jump_beyond_the_window_but_within_the_bound_is_accepted(station: StationDir, pipe: Pipeline) -> None:
    pipe.process([msg(station, 1), msg(station, 1 + 3 * REPLAY_WINDOW), msg(station, 2 + 3 * REPLAY_WINDOW)])
    assert ctrs(pipe) == [1, 1 + 3 * REPLAY_WINDOW, 2 + 3 * REPLAY_WINDOW]
    assert reasons(pipe) == []
    assert pipe.admission.counters["probe-1"][1] == 0b11


def test_a_counter_beyond_i_json_is_refused_at_parse(station: StationDir, pipe: Pipeline) -> None:
    raw = (b'{"v":1,"sensor":"probe-1","ctr":%d,"t":1,"readings":[{"kind":"temperature","value":1,"unit":"mC"}],'
           b'"sig":"%s"}' % (2**64, b"00" * 64))  # no probe can sign it: RFC 8785 refuses the number
    pipe.process([Inbound("mqtt", station.topic("probe-1"), raw), msg(station, 1)])
    assert reasons(pipe) == ["out-of-range"]
    assert ctrs(pipe) == [1]


# -- finding 2: any exception rolls back everything and isolates the message --------------------

def _fail_when(pipe: Pipeline, where: str, pred: Callable[[Any], bool],
               exc: Exception) -> tuple[list[int], Callable[[], None]]:
    """Wrap one collaborator so that it raises ``exc`` for inputs matching ``pred``; returns
    the calls that raised and a function that takes the wrapper away."""
    calls: list[int] = []
    obj, name = {"seal": (pipe.sealer, "seal"), "filter": (pipe.filter, "keep"),
                 "value": (pipe.admission, "check_value"), "commit": (pipe.journal, "commit_batch")}[where]
    inner = getattr(obj, name)

    def wrapped(*args: Any, **kw: Any) -> Any:
        if pred(args[0]):
            calls.append(1)
            if where == "seal":  # fail after the sealer moved its state, the hardest case
                inner(*args, **kw)
            raise exc
        return inner(*args, **kw)

    setattr(obj, name, wrapped)
    return calls, lambda: delattr(obj, name)


def _is_ctr(n: int) -> Callable[[Any], bool]:
    def pred(x: Any) -> bool:
        if isinstance(x, dict):
            return x.get("source", {}).get("ctr") == n
        if isinstance(x, list | tuple):
            return any(b'"ctr":%d' % n in r.body for r in x)
        return getattr(x, "counter", None) == n

    return pred


@pytest.mark.parametrize("where", ["seal", "filter", "value", "commit"])
def test_an_exception_anywhere_quarantines_only_that_message(station: StationDir, pipe: Pipeline, where: str) -> None:
    pipe.process([msg(station, 1)])
    calls, heal = _fail_when(pipe, where, _is_ctr(5), RuntimeError("boom at " + where))
    batch = [msg(station, 4), msg(station, 5), msg(station, 6), msg(station, 2, "probe-2")]
    res = pipe.process(batch)
    assert res.isolated and res.durable == batch and res.error is None
    assert ctrs(pipe) == [1, 4, 6] and ctrs(pipe, "probe-2") == [2]
    row = pipe.journal.db.execute("SELECT reason, detail FROM quarantine").fetchone()
    assert row == ("internal-error", f"RuntimeError: boom at {where}")
    assert len(calls) == 3  # once in the batch, twice alone: never again
    assert_consistent(pipe)
    # the quarantined counter was rolled back: the same message is still new (e.g. sent again
    # after a firmware fix), and the next batch goes through the fast path
    heal()
    res = pipe.process([msg(station, 5), msg(station, 7)])
    assert not res.isolated and ctrs(pipe) == [1, 4, 6, 5, 7]
    assert_consistent(pipe)
    blocks = BlockSealer(pipe.journal, Ed25519PrivateKey.generate(), "station-01", FakeClock(), 1000, 60)
    assert blocks.maybe_seal(force=True) is not None  # "seq range not dense" would refuse this


def test_a_transient_failure_journals_every_message_once(station: StationDir, pipe: Pipeline) -> None:
    state = {"left": 1}
    inner = pipe.sealer.seal

    def flaky(body: dict[str, Any], **kw: Any) -> Any:
        if state["left"]:
            state["left"] -= 1
            raise MemoryError()
        return inner(body, **kw)

    pipe.sealer.seal = flaky  # type: ignore[method-assign]
    res = pipe.process([msg(station, 1), msg(station, 2), msg(station, 3)])
    assert res.isolated and ctrs(pipe) == [1, 2, 3] and reasons(pipe) == []
    assert_consistent(pipe)


def test_a_journal_error_caused_by_a_row_isolates_and_a_full_disk_does_not(station: StationDir,
                                                                           pipe: Pipeline) -> None:
    inner = pipe.journal.commit_batch
    mode = {"err": sqlite3.IntegrityError("UNIQUE constraint failed: records.seq")}

    def commit(records: Any, *a: Any) -> None:
        if any(b'"ctr":2,' in r.body for r in records):
            raise JournalError("journal commit failed") from mode["err"]
        inner(records, *a)

    pipe.journal.commit_batch = commit  # type: ignore[method-assign]
    res = pipe.process([msg(station, 1), msg(station, 2), msg(station, 3)])
    assert ctrs(pipe) == [1, 3] and reasons(pipe) == ["internal-error"] and len(res.durable) == 3
    assert_consistent(pipe)

    mode["err"] = sqlite3.OperationalError("database or disk is full")
    before = (dict(pipe.admission.counters), pipe.sealer.next_seq)
    with pytest.raises(JournalError):
        pipe.process([msg(station, 4), msg(station, 2, "probe-2")])
    n = len(ctrs(pipe))
    # the message itself did nothing wrong: nothing of it was taken, nothing acknowledged... but
    # only when the disk fails for the row that contains ctr 2; the batch stays for a retry
    assert (dict(pipe.admission.counters), pipe.sealer.next_seq) == before
    assert ctrs(pipe, "probe-2") == [] and n == 2


def test_a_full_disk_during_isolation_keeps_the_rest_unacknowledged(station: StationDir, pipe: Pipeline) -> None:
    inner = pipe.journal.commit_batch
    state = {"calls": 0}

    def commit(records: Any, *a: Any) -> None:
        state["calls"] += 1
        if state["calls"] == 1:
            raise RuntimeError("a bug that sends the batch to isolation")
        if state["calls"] >= 3:  # the disk fills up after the first isolated message
            raise JournalError("journal commit failed") from sqlite3.OperationalError("database or disk is full")
        inner(records, *a)

    pipe.journal.commit_batch = commit  # type: ignore[method-assign]
    batch = [msg(station, 1), msg(station, 2), msg(station, 3)]
    res = pipe.process(batch, [{"type": "note", "text": "x"}])
    assert res.durable == batch[:1] and res.retry == batch[1:] and res.retry_extra == [{"type": "note", "text": "x"}]
    assert isinstance(res.error, JournalError)
    pipe.journal.commit_batch = inner  # type: ignore[method-assign]
    assert_consistent(pipe)
    res = pipe.process(res.retry, res.retry_extra)
    assert ctrs(pipe) == [1, 2, 3] and reasons(pipe) == [] and not res.isolated
    assert_consistent(pipe)


def test_a_rule_output_the_sealer_refuses_is_quarantined_not_retried(station: StationDir, pipe: Pipeline) -> None:
    res = pipe.process([msg(station, 1)], [{"type": "alarm", "seq": 3}, {"type": "note", "n": 1}])
    assert res.isolated and ctrs(pipe) == [1]
    q = pipe.journal.db.execute("SELECT source, reason, detail, raw FROM quarantine").fetchone()
    assert q[0] == "rule:alarm" and q[1] == "internal-error" and "ValueError" in q[2]
    assert b'"seq": 3' in q[3]  # the body is kept as evidence
    types = [t for (t,) in pipe.journal.db.execute("SELECT type FROM records ORDER BY seq")]
    assert types == ["reading", "note"]
    assert_consistent(pipe)
