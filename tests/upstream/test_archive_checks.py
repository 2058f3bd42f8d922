"""The archive applies the verifier's own rules (ledger_client.verify.checks, issue 15): the
union of its old wire rules and the verifier's, so a validly signed item that ``traceseal
verify`` would refuse is refused on arrival too (docs/upstream.md §Archive-side verification).
Each test sends real gateway output with one member changed and re-signed with the
gateway's own key, in-process (the rule does not depend on the broker or the store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import archive_kit as kit
import pytest
from test_archive_store import station_a  # noqa: F401 (fixture)

from gateway.archive import config as archive_config
from gateway.archive.consumer import Archive
from gateway.archive.store import open_store
from ledger_client.canonical import canonical, header_message, record_message


@pytest.fixture
def arch(tmp_path: Path, station_a: kit.Built) -> Iterator[tuple[Archive, kit.Built, Any]]:
    toml = kit.archive_toml(tmp_path / "archive.toml", 1883, "p", kit.store_line("sqlite", tmp_path), [station_a])
    cfg = archive_config.load(toml)
    a = Archive(cfg, open_store(cfg.store))
    j = station_a.journal()
    try:
        yield a, station_a, j
    finally:
        j.close()
        a.store.close()


def _send(a: Archive, gw: str, stream: str, items: list[dict[str, Any]]) -> None:
    a.process([(f"p/{gw}/{stream}", json.dumps({"v": 1, "gateway": gw, "items": items}).encode())])


def _records(j: Any, lo: int, hi: int) -> list[dict[str, Any]]:
    return [{"seq": r.seq, "body": bytes(r.body).decode(), "sig": bytes(r.sig).hex()} for r in j.records_range(lo, hi)]


def _header_item(j: Any, n: int, key: Any, edit: Any = None) -> dict[str, Any]:
    b = j.block(n)
    h = json.loads(bytes(b.header))
    if edit is not None:
        edit(h)
    data = canonical(h)
    return {"block": n, "header": data.decode(), "sig": key.sign(header_message(data)).hex()}


def _record_item(j: Any, seq: int, key: Any, edit: Any) -> dict[str, Any]:
    rec = json.loads(bytes(j.records_range(seq, seq)[0].body))
    edit(rec)
    body = canonical(rec)
    return {"seq": seq, "body": body.decode(), "sig": key.sign(record_message(body)).hex()}


def _reasons(a: Archive, gw: str) -> dict[str, int]:
    return a.store.status(gw)["rejections"]


def _details(a: Archive, gw: str) -> list[tuple[str, str, str]]:
    return [(r.ref, r.reason, r.detail) for r in a.store.rejections(gw)]


@pytest.mark.parametrize("edit,why", [
    (lambda h: h.update(v=2), "version"),
    (lambda h: h.pop("clock_synced"), "clock_synced missing"),
    (lambda h: h.update(clock_synced=1), "clock_synced not a bool"),
    (lambda h: h.pop("key"), "key missing"),
    (lambda h: h.update(last_time_ms="1"), "a string time"),
], ids=["v2", "no-clock-synced", "clock-synced-int", "no-key", "time-string"])
def test_a_validly_signed_header_the_verifier_refuses_is_malformed(arch: Any, edit: Any, why: str) -> None:
    a, built, j = arch
    gw, key = built.gateway_id, kit.load_private_key(built.key_path)
    b0 = j.block(0)
    _send(a, gw, "records", _records(j, 0, b0.last_seq))
    _send(a, gw, "blocks", [_header_item(j, 0, key, edit)])
    assert _reasons(a, gw) == {"malformed": 1}, why
    assert a.store.get_block(gw, 0) is None
    _send(a, gw, "blocks", [_header_item(j, 0, key)])  # the gateway's own header still verifies
    assert a.store.status(gw)["blocks_verified"] == 1


def test_a_header_key_in_other_case_is_a_key_mismatch(arch: Any) -> None:
    """The verifier compares keys lowercased (§9.3 step 3); the archive keeps the exact compare
    (the union: it stores keys as the gateway writes them, lowercase, and compares them as text)."""
    a, built, j = arch
    gw, key = built.gateway_id, kit.load_private_key(built.key_path)
    b0 = j.block(0)
    _send(a, gw, "records", _records(j, 0, b0.last_seq))
    _send(a, gw, "blocks", [_header_item(j, 0, key, lambda h: h.update(key=h["key"].upper()))])
    assert _reasons(a, gw) == {"key_mismatch": 1}
    assert a.store.get_block(gw, 0) is None


@pytest.mark.parametrize("edit,why", [
    (lambda r: r.update(v=2), "version"),
    (lambda r: r.pop("clock_synced"), "clock_synced missing"),
    (lambda r: r.pop("v"), "v missing"),
], ids=["v2", "no-clock-synced", "no-v"])
def test_a_validly_signed_record_the_verifier_refuses_is_malformed(arch: Any, edit: Any, why: str) -> None:
    a, built, j = arch
    gw, key = built.gateway_id, kit.load_private_key(built.key_path)
    _send(a, gw, "records", [_record_item(j, 1, key, edit)])
    assert _reasons(a, gw) == {"malformed": 1}, why
    assert not a.store.has_record(gw, 1)
