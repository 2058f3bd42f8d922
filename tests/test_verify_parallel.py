"""Record signatures checked on several threads give exactly the sequential report: the same
verdict, the same failures in the same order, the same progress calls, for good and
tampered bundles alike (ledger_client.verify.records.record_signatures).

The thresholds are patched in ``ledger_client.verify.records``, the module that reads them;
each run also records which threads checked signatures, so a patch that lands in the wrong
module (the package re-exports nothing of PARALLEL_*) fails instead of silently comparing
two sequential runs."""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ledger_client.verify as verify
import ledger_client.verify.records as records
from bench.faults.tamper import Fixture
from gateway.chain.export import export_range


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("par") / "st", readings=80)


@pytest.fixture(scope="module")
def bundle(fx: Fixture) -> dict[str, Any]:
    b = json.loads(json.dumps(export_range(fx.journal, "probe-1", fx.start_ms, fx.start_ms + 10**9)))
    assert len(b["records"]) >= 40
    return b


def _flip_sig(b: dict[str, Any]) -> None:
    e = b["records"][17]
    e["sig"] = ("0" if e["sig"][0] != "0" else "1") + e["sig"][1:]


def _flip_value(b: dict[str, Any]) -> None:
    b["records"][30]["record"]["time_ms"] += 1


def _not_a_record(b: dict[str, Any]) -> None:
    b["records"][3] = {"record": [1, 2], "sig": "00" * 64, "block": 0, "index": 0, "proof": []}


def _float_in_record(b: dict[str, Any]) -> None:
    b["records"][5]["record"]["value"] = 1.5


def _no_sig(b: dict[str, Any]) -> None:
    del b["records"][8]["sig"]


def _wrong_block(b: dict[str, Any]) -> None:
    b["records"][25]["block"] = "x"


TAMPER: list[Callable[[dict[str, Any]], None] | None] = [None, _flip_sig, _flip_value, _not_a_record,
                                                         _float_in_record, _no_sig, _wrong_block]


def _report(b: dict[str, Any], fx: Fixture, *, parallel: bool, monkeypatch: pytest.MonkeyPatch
            ) -> tuple[dict[str, Any], list[tuple[int, int]]]:
    monkeypatch.setattr(records, "PARALLEL_MIN_RECORDS", 1 if parallel else 10**12)
    monkeypatch.setattr(records, "PARALLEL_CHUNK", 7)  # many chunks, so ordering across them is exercised
    threads = _spy_threads(monkeypatch)
    calls: list[tuple[int, int]] = []
    r = verify.verify_bundle(b, gateway_key=fx.gateway_key, checkers=fx.checkers,
                             progress=lambda d, t: calls.append((d, t)))
    _assert_path(threads, parallel=parallel)
    return r.as_dict(), calls


def _spy_threads(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Names of the threads that verify record signatures during the run."""
    names: set[str] = set()
    real = records.verify_sig

    def spy(*args: Any) -> bool:
        names.add(threading.current_thread().name)
        return real(*args)
    monkeypatch.setattr(records, "verify_sig", spy)
    return names


def _assert_path(threads: set[str], *, parallel: bool) -> None:
    """The run took the path it was meant to: pool threads for the parallel run (on a
    machine with two cores or more), the caller's thread only for the sequential one."""
    pooled = {t for t in threads if t.startswith("verify")}
    if not parallel:
        assert not pooled, threads
    elif (os.cpu_count() or 1) >= 2:
        assert pooled, f"the parallel run checked signatures on {threads} only"


@pytest.mark.parametrize("tamper", TAMPER, ids=lambda t: "intact" if t is None else t.__name__)
def test_parallel_report_equals_sequential(fx: Fixture, bundle: dict[str, Any], tamper: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    b = copy.deepcopy(bundle)
    if tamper is not None:
        tamper(b)
    seq, seq_calls = _report(copy.deepcopy(b), fx, parallel=False, monkeypatch=monkeypatch)
    par, par_calls = _report(copy.deepcopy(b), fx, parallel=True, monkeypatch=monkeypatch)
    assert par == seq
    assert par_calls == seq_calls and par_calls == sorted(par_calls)
    assert seq["ok"] is (tamper is None)


def test_the_parallel_path_checks_every_signature(fx: Fixture, bundle: dict[str, Any],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every record's signature is checked once, with its own message: a bad signature in the
    last chunk is caught, and so is one in the first."""
    monkeypatch.setattr(records, "PARALLEL_MIN_RECORDS", 1)
    monkeypatch.setattr(records, "PARALLEL_CHUNK", 5)
    threads = _spy_threads(monkeypatch)
    for k in (0, len(bundle["records"]) - 1):
        b = copy.deepcopy(bundle)
        e = b["records"][k]
        e["sig"] = ("0" if e["sig"][-1] != "0" else "1").join([e["sig"][:-1], ""])
        r = verify.verify_bundle(b, gateway_key=fx.gateway_key, checkers=fx.checkers)
        step2 = r.steps[1]
        assert step2.failures == [f"record seq {e['record']['seq']}: signature does not verify"]
    _assert_path(threads, parallel=True)
