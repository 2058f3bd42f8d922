"""The shared bundle vectors (tests/vectors/bundles/, made by tests/vectors/bundle_vectors.py)
through the CLI as a black box and through the independent spec verifier: each must reach
the vector's ``want`` (result and failing steps), the CLI exits only 0, 1, 2 or 4 and never
prints a traceback. Then a deterministic corpus of random mutants (odd numbers, huge ints,
duplicates, deep nesting, wrong types) through the CLI in-process and the spec verifier,
which must agree. tests/web/test_verify_page.py runs the same vectors and mutants through
the browser page."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "vectors"))
sys.path.insert(0, str(HERE / "independent"))
import bundle_vectors as BV
import verify_from_spec as V

from ledger_client import cli as lcli

VECTORS = BV.load_all()
EXIT = {"verified": 0, "failed": 1, "unreadable": 2, "intact-key-not-pinned": 4}
MUTANTS = 300


def pins_args(keys: dict[str, str]) -> list[str]:
    return ["--gateway-key", keys["gateway_key"]] if "gateway_key" in keys else []


def test_the_folder_is_what_the_generator_makes() -> None:
    assert BV.main(["--check"]) == 0, "run: python tests/vectors/bundle_vectors.py"
    assert len(VECTORS) >= 30


@pytest.mark.parametrize("name,vec", VECTORS, ids=[n for n, _ in VECTORS])
def test_cli_reaches_the_vector_result(tmp_path: Path, name: str, vec: dict[str, Any]) -> None:
    p = tmp_path / "b.json"
    p.write_text(BV.bundle_text(vec))
    proc = subprocess.run([sys.executable, "-m", "ledger_client", "verify", str(p), "--json",
                           *pins_args(vec["keys"])], cwd=REPO, capture_output=True, text=True, timeout=300,
                          check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    want = vec["want"]
    assert proc.returncode == EXIT[want["result"]], (proc.returncode, proc.stdout[-1500:], proc.stderr[-500:])
    if want["result"] == "unreadable":
        assert "cannot read bundle" in proc.stderr and proc.stdout == ""
        return
    rep = json.loads(proc.stdout)
    assert rep["result"] == want["result"]
    steps = rep["steps"] if "steps" in rep else [s for b in rep["bundles"] for s in b["report"]["steps"]]
    assert sorted({s["step"] for s in steps if not s["ok"]}) == want["failing_steps"], rep


def spec_outcome(text: str, keys: dict[str, str]) -> tuple[str, list[int]]:
    try:
        doc = V.parse_bundle_bytes(text.encode("utf-8"))
    except V.BundleReadError:
        return "unreadable", []
    if isinstance(doc, dict) and doc.get("format") == "traceseal-set/1":
        rs = [V.verify_bundle(b, gateway_key=keys.get("gateway_key")) for b in doc["bundles"]]
        failing = sorted({n for r in rs for n in r.failing_steps})
        return ("failed" if failing else rs[0].result), failing
    r = V.verify_bundle(doc, gateway_key=keys.get("gateway_key"))
    return r.result, r.failing_steps


@pytest.mark.parametrize("name,vec", VECTORS, ids=[n for n, _ in VECTORS])
def test_spec_verifier_reaches_the_vector_result(name: str, vec: dict[str, Any]) -> None:
    want = vec["want"]
    assert spec_outcome(BV.bundle_text(vec), vec["keys"]) == (want["result"], want["failing_steps"])


def cli_in_process(tmp: Path, text: str, keys: dict[str, str]) -> tuple[int, str, str]:
    """``traceseal verify FILE --json`` in this process: any exception escaping it is what a
    user would see as a traceback, so it is re-raised with the input named."""
    p = tmp / "m.json"
    p.write_text(text)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = lcli.main(["verify", str(p), "--json", *pins_args(keys)])
    return rc, out.getvalue(), err.getvalue()


def cli_outcome(rc: int, out: str) -> tuple[str, list[int]]:
    if rc == 2:
        return "unreadable", []
    rep = json.loads(out)
    steps = rep["steps"] if "steps" in rep else [s for b in rep["bundles"] for s in b["report"]["steps"]]
    assert rc == EXIT[rep["result"]]
    return rep["result"], sorted({s["step"] for s in steps if not s["ok"]})


def test_random_mutants_never_crash_and_agree_with_the_spec_verifier(tmp_path: Path) -> None:
    disagree = []
    results: dict[str, int] = {}
    for seed in range(MUTANTS):
        text, keys = BV.mutant(seed)
        rc, out, err = cli_in_process(tmp_path, text, keys)
        assert rc in (0, 1, 2, 4), (seed, rc, err)
        mine = cli_outcome(rc, out)
        results[mine[0]] = results.get(mine[0], 0) + 1
        spec = spec_outcome(text, keys)
        if mine != spec:
            disagree.append((seed, mine, spec))
    assert not disagree, disagree[:10]
    # the corpus reaches every verdict, so agreement is not only on "failed at step 2"
    assert set(results) == {"verified", "failed", "unreadable", "intact-key-not-pinned"}, results
