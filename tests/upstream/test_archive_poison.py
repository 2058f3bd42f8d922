"""One message must never stop the archive either (issue 14's lesson, applied wherever a batch
is processed): a payload that makes the archive's own code raise, every time, becomes an
``internal_error`` rejection; the other messages of its batch, and every later one, are
stored and acknowledged. Before, the writer kept the batch "for retry" for ever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import archive_kit as kit
import pytest
from test_archive_store import BACKENDS, _setup, _status, station_a  # noqa: F401 (fixture)

from gateway.testing.mosquitto import Mosquitto
from gateway.testing.waiting import wait_for


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_message_that_crashes_the_archive_is_rejected_and_the_rest_stored(
        backend: str, broker: Mosquitto, tmp_path: Path, station_a: kit.Built) -> None:
    arch, up, acks = _setup(backend, broker, tmp_path, station_a)
    gw = up.gw
    records = arch._records
    poisoned = {"calls": 0}

    def crash_on_seq_3(g: str, stream: str, keys: Any, msg: dict[str, Any], items: list[Any], rej: Any) -> None:
        if any(isinstance(i, dict) and i.get("seq") == 3 for i in items):
            poisoned["calls"] += 1
            raise IndexError("a bug one payload trips")
        records(g, stream, keys, msg, items, rej)

    arch._records = crash_on_seq_3
    try:
        up.hello()
        last = up.j.block(1).last_seq
        up.records(0, last, batch=3)  # messages of seqs 0-2, 3-5, 6-8, ...: the second one is poison
        wait_for(lambda: _status(arch, gw)["records"] == last + 1 - 3, what="every other record stored")
        rej = [(r.reason, r.detail) for r in arch.reader.rejections(gw)]
        assert rej == [("internal_error", "IndexError: a bug one payload trips")]
        assert poisoned["calls"] == 3  # in its batch, then twice alone: never again
        # later traffic goes on, and the seqs the poison held arrive (e.g. after a fix) and complete the chain
        arch._records = records
        up.records(3, 5)
        up.blocks(0, 1)
        wait_for(lambda: _status(arch, gw)["blocks_verified"] == 2, what="blocks 0-1 verified")
        wait_for(lambda: acks.acks.get(gw, {}).get("records") == last, what="ack up to the last record")
    finally:
        arch.stop()
        arch.reader.close()
        up.close()
        acks.close()
