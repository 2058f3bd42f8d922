"""The streamed export (export.write_bundle, what `traceseal export` writes) is byte for byte
the in-memory bundle as json.dumps(separators=(",", ":"), ensure_ascii=False) writes it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.faults.tamper import Fixture
from gateway import cli
from gateway.chain.export import ExportError, export_range, export_record
from gateway.testing.hypo import examples
from ledger_client.canonical import canonical
from ledger_client.verify import verify_bundle


def compact(bundle: dict) -> bytes:
    return json.dumps(bundle, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    root = tmp_path_factory.mktemp("stream") / "st"
    fixture = Fixture(root, readings=60)
    fixture.config_path = root / "traceseal.toml"  # make_station writes it there
    return fixture


def streamed(fn, *args, **kw) -> tuple[bytes, dict]:
    buf = io.BytesIO()
    counts = fn(*args, out=buf, **kw)
    return buf.getvalue(), counts


@pytest.mark.parametrize("seq", [0, 1, 7, 8, 13, 39])
def test_record_export_bytes_identical(fx: Fixture, seq: int) -> None:
    mem = export_record(fx.journal, seq, now_ms=123)
    data, counts = streamed(export_record, fx.journal, seq, now_ms=123)
    assert data == compact(mem)
    assert counts == {"records": 1, "blocks": len(mem["blocks"]), "anchors": len(mem["anchors"])}


@pytest.mark.parametrize("sensor,lo_min,hi_min", [("probe-1", 0, 10**6), ("probe-2", 5, 20), ("probe-1", 30, 31),
                                                  ("probe-1", 59, 10**6)])
def test_range_export_bytes_identical(fx: Fixture, sensor: str, lo_min: int, hi_min: int) -> None:
    lo, hi = fx.start_ms + lo_min * 60_000, fx.start_ms + hi_min * 60_000
    mem = export_range(fx.journal, sensor, lo, hi)
    data, counts = streamed(export_range, fx.journal, sensor, lo, hi)
    assert data == compact(mem)
    assert counts["records"] == len(mem["records"]) > 0
    assert verify_bundle(json.loads(data), gateway_key=fx.gateway_key, checkers=fx.checkers).ok


def test_unsealed_record_same_error(fx: Fixture) -> None:
    with pytest.raises(ExportError) as mem:
        export_record(fx.journal, 10**6)
    with pytest.raises(ExportError) as stream:
        streamed(export_record, fx.journal, 10**6)
    assert str(stream.value) == str(mem.value)


def test_cli_writes_the_bundle_atomically(fx: Fixture, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cfg_path = fx.config_path
    out = tmp_path / "range.json"
    lo, hi = fx.start_ms, fx.start_ms + 10**9
    assert cli.main(["export", "-c", str(cfg_path), "--sensor", "probe-1", "--from", str(lo), "--to", str(hi),
                     "-o", str(out)]) == 0
    bundle = json.loads(out.read_bytes())
    assert bundle["records"] and "exported_ms" in bundle
    mem = export_range(fx.journal, "probe-1", lo, hi, now_ms=bundle["exported_ms"])
    assert out.read_bytes() == compact(mem)
    assert not list(tmp_path.glob("*.partial"))
    assert f"{len(mem['records'])} records" in capsys.readouterr().err


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
                              st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.text(max_size=6).filter(
                                                lambda k: max(k, default="") < "\ud800"), inner, max_size=4)),
                    max_leaves=20)


@settings(max_examples=examples(300), deadline=None)
@given(JSON)
def test_canonical_body_is_what_json_dumps_writes_back(value) -> None:
    """Why bodies can be copied verbatim: json.dumps(json.loads(jcs)) == jcs (keys below U+D800,
    the only ones whose JCS order Python keeps when re-dumping an already sorted object)."""
    body = canonical(value)
    assert json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False).encode("utf-8") == body


def test_unsorted_duplicate_seqs_as_lot_exports_pass_them(fx: Fixture) -> None:
    from gateway.chain.export import build_bundle, write_bundle

    seqs = [33, 2, 17, 2, 40, 9, 33]
    sel = {"type": "lot", "lot": "L1", "windows": []}
    mem = build_bundle(fx.journal, seqs, sel, extra_blocks=(0, 3), now_ms=5)
    buf = io.BytesIO()
    write_bundle(buf, fx.journal, iter(seqs), sel, extra_blocks=(0, 3), now_ms=5)
    assert buf.getvalue() == compact(mem)
    assert [e["record"]["seq"] for e in json.loads(buf.getvalue())["records"]] == [2, 9, 17, 33, 40]
