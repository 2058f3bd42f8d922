"""Property: whatever mix of good, hostile and crashing messages arrives, in whatever batches,
every good message is journaled exactly once, seqs stay dense, blocks keep sealing, every
message is acknowledged once it is durable, and the live state equals what a restart would
rebuild from the journal (issue 14, "a property test").

Crashing messages carry an exception injected at a random stage (admission, change filter,
sealer after it moved its state, the commit itself), either once (transient: the message must
still be journaled) or every time (poison: it must be quarantined as ``internal-error``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.chain.blocks import BlockSealer
from gateway.core.clock import FakeClock
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.hypo import examples
from gateway.testing.station import StationDir, make_station
from gateway.transports.inbound import Inbound

SENSORS = ("probe-1", "probe-2")
STAGES = ("value", "filter", "seal", "commit")
BIG = 2**53 - 1


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> StationDir:
    return make_station(tmp_path_factory.mktemp("poison"), 1883, sensors=2, topic_prefix="site/sensors")


class Faults:
    """Injected exceptions keyed by (sensor, counter): stage, and how many more times to fire
    (None: every time, a poison message)."""

    def __init__(self) -> None:
        self.plan: dict[tuple[str, int], list[Any]] = {}

    def fire(self, stage: str, key: tuple[str, int | None]) -> None:
        p = self.plan.get(key)  # type: ignore[arg-type]
        if p is None or p[0] != stage or p[1] == 0:
            return
        if p[1] is not None:
            p[1] -= 1
        raise RuntimeError(f"injected at {stage}")

    def install(self, pipe: Pipeline) -> None:
        adm, filt, sealer, journal = pipe.admission, pipe.filter, pipe.sealer, pipe.journal
        value, keep, seal, commit = adm.check_value, filt.keep, sealer.seal, journal.commit_batch

        def check_value(obs: Any) -> None:
            self.fire("value", (obs.sensor, obs.counter))
            value(obs)

        def keep_(obs: Any, now: int) -> Any:
            self.fire("filter", (obs.sensor, obs.counter))
            return keep(obs, now)

        def seal_(body: dict[str, Any], **kw: Any) -> Any:
            row = seal(body, **kw)  # the sealer's state moves first: the rollback must undo it
            self.fire("seal", (body.get("sensor"), body.get("source", {}).get("ctr")))
            return row

        def commit_(records: Any, *a: Any) -> None:
            for r in records:
                b = json.loads(r.body)
                self.fire("commit", (b.get("sensor"), b.get("source", {}).get("ctr")))
            commit(records, *a)

        adm.check_value, filt.keep, sealer.seal = check_value, keep_, seal_  # type: ignore[method-assign]
        journal.commit_batch = commit_  # type: ignore[method-assign]


op = st.one_of(
    st.tuples(st.just("good"), st.sampled_from(SENSORS), st.integers(0, 3)),  # next counter, maybe a gap
    st.tuples(st.just("late"), st.sampled_from(SENSORS), st.integers(0, 50)),  # a skipped counter, late
    st.tuples(st.just("crash"), st.sampled_from(SENSORS), st.sampled_from(STAGES), st.booleans()),
    st.tuples(st.just("jump"), st.sampled_from(SENSORS)),  # always the same far counter: never confirmed
    st.tuples(st.just("replay"), st.integers(0, 50), st.booleans()),  # an earlier message again (dup flag?)
    st.tuples(st.just("garbage"), st.binary(max_size=40)),
    st.tuples(st.just("rule"), st.booleans()),  # a rule output, sealable or not
    st.tuples(st.just("cut"),),
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_good_messages_are_journaled_exactly_once_whatever_else_happens(station: StationDir, ops: list[Any]) -> None:
    cfg = configmod.load(station.config_path)
    with tempfile.TemporaryDirectory() as d:
        journal = Journal(Path(d) / "j.sqlite", synchronous="OFF")
        key = Ed25519PrivateKey.generate()
        pipe = Pipeline(cfg.ingest, journal, Sealer(cfg.gateway_id, key, 0), FakeClock())
        faults = Faults()
        faults.install(pipe)
        blocks = BlockSealer(journal, key, cfg.gateway_id, FakeClock(), 7, 3600)
        nxt = {s: 1 for s in SENSORS}
        skipped: dict[str, list[int]] = {s: [] for s in SENSORS}
        sent: list[Inbound] = []
        want: Counter[tuple[str, int]] = Counter()
        want_rules = 0
        acked: Counter[int] = Counter()
        batches: list[tuple[list[Inbound], list[dict[str, Any]]]] = [([], [])]

        def message(sensor: str, ctr: int) -> Inbound:
            m = Inbound("mqtt", station.topic(sensor), build_message(
                station.sensor_keys[sensor], sensor, ctr, 1_767_225_600_000 + ctr % 10**9,
                [temperature(4000 + ctr % 1000)]))
            m.ack = lambda i=len(sent): acked.update([i])  # noqa: B008 - binds the index now
            sent.append(m)
            return m

        for o in ops:
            batch, extra = batches[-1]
            kind = o[0]
            if kind == "good" or kind == "crash":
                sensor = o[1]
                gap = o[2] if kind == "good" else 0
                skipped[sensor] += range(nxt[sensor], nxt[sensor] + gap)
                ctr = nxt[sensor] + gap
                nxt[sensor] = ctr + 1
                if kind == "crash":
                    faults.plan[(sensor, ctr)] = [o[2], None if o[3] else 1]
                if kind == "good" or not o[3]:
                    want[(sensor, ctr)] += 1
                batch.append(message(sensor, ctr))
            elif kind == "late" and skipped[o[1]]:
                ctr = skipped[o[1]].pop(o[2] % len(skipped[o[1]]))
                want[(o[1], ctr)] += 1
                batch.append(message(o[1], ctr))
            elif kind == "jump":
                batch.append(message(o[1], BIG))
            elif kind == "replay" and sent:
                old = sent[o[1] % len(sent)]
                again = Inbound(old.transport, old.topic, old.payload, dup=o[2])
                again.ack = lambda i=len(sent): acked.update([i])  # noqa: B008 - binds the index now
                sent.append(again)
                batch.append(again)
            elif kind == "garbage":
                batch.append(message("probe-1", 1))
                sent[-1].payload = o[1] + os.urandom(2)
            elif kind == "rule":
                extra.append({"type": "note", "n": len(extra)} if o[1] else {"type": "note", "seq": 1})
                want_rules += o[1]
            elif kind == "cut":
                batches.append(([], []))

        for batch, extra in batches:
            if not batch and not extra:
                continue
            res = pipe.process(batch, extra)
            assert res.error is None and res.retry == []
            for m in res.durable:
                m.ack()  # type: ignore[misc]
            blocks.maybe_seal(force=True)  # refuses a non-dense seq range

        rows = [json.loads(b) for (b,) in journal.db.execute("SELECT body FROM records ORDER BY seq")]
        got = Counter((r["sensor"], r["source"]["ctr"]) for r in rows if r["type"] == "reading")
        assert got == want, "every good message exactly once, nothing else"
        assert sum(1 for r in rows if r["type"] == "note") == want_rules
        assert [r["seq"] for r in rows] == list(range(len(rows)))
        assert acked == Counter(range(len(sent))), "every message acknowledged exactly once"
        last = journal.last_block()
        assert (last.last_seq if last else -1) == len(rows) - 1, "blocks cover every record"
        # live state equals what a restart rebuilds from the journal
        assert pipe.sealer.next_seq == journal.next_seq()
        assert pipe.admission.counters == journal.sensor_counters()
        poison = {k for k, p in faults.plan.items() if p[1] is None}
        poison_bytes = {m.payload for m in sent if _key(m) in poison}
        reasons = Counter(r for (r,) in journal.db.execute("SELECT reason FROM quarantine"))
        unsealable = len([o for o in ops if o[0] == "rule" and not o[1]])
        assert reasons["internal-error"] == sum(m.payload in poison_bytes for m in sent) + unsealable
        journal.close()


def _key(m: Inbound) -> tuple[str, int] | None:
    try:
        d = json.loads(m.payload)
        return d["sensor"], d["ctr"]
    except Exception:  # noqa: BLE001 - garbage: whatever it raises, it is not a message
        return None
