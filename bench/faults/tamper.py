"""Scenario 7 — tampering sweep: flip bits in a journal record body, a block header and a
whole bundle (the JSON text ``traceseal export`` writes) and show that verification fails.

Each target is swept position by position with single-bit masks (CI: a random sample of
positions; the report: every position, every mask). A flip that makes the text unparseable
counts as detected (``verify`` fails at step 1 / the bundle cannot be read); a flip that keeps
the character a hex digit (``"a"`` → ``"c"``, ``"4"`` → ``"5"``) changes a hash, key or
signature and must still fail. An undetected flip is reported with its JSON path.

The journal is built by the real pipeline, block sealer and anchorer (local ledger) in
process; the bundle comes from ``gateway.chain.export`` and is verified by
``ledger_client.verify.verify_bundle`` with the gateway and ledger keys pinned and the
ledger file given.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from firmware_sim.message import build_message, temperature
from gateway.app import config as configmod
from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_range, export_record
from gateway.chain.ledgers import make_ledger
from gateway.core.clock import FakeClock
from gateway.ingest.pipeline import Pipeline
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from gateway.testing.station import make_station
from gateway.transports.inbound import Inbound
from ledger_client.canonical import canonical
from ledger_client.keys import load_private_key, public_hex
from ledger_client.verify import default_checkers, verify_bundle

from .common import Row

MASKS = (0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80)
HEX = set(b"0123456789abcdef")

# A gateway-side defect this sweep finds (reported; strict xfail in tests/faults/test_fault_tamper.py).
KNOWN_LEDGER_KEY_CASE = (
    "ledger_client/local.py verify_local_anchor(): anchors[].ledger_key is accepted in any letter case "
    "(bytes.fromhex, and the pinned-key comparison lowercases both sides), so flipping the case of a hex "
    "letter in a local anchor's ledger_key changes the bundle without failing verification (no verified value "
    "changes). Every other hex field is checked strictly lowercase (verify_sig, header prev/hash, record and "
    "header signatures); docs/proof-format.md: producers MUST emit lowercase. Fix: require "
    "re.fullmatch('[0-9a-f]{64}', ledger_key) and compare a pinned key exactly"
)


def _lower_hex(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _lower_hex(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_lower_hex(x) for x in v]
    if isinstance(v, str) and v and all(c in "0123456789abcdefABCDEF" for c in v.removeprefix("0x")):
        return v.lower()
    return v


class Fixture:
    """A small real journal: 2 probes, blocks of 8, every block anchored on the local ledger."""

    def __init__(self, root: Path, readings: int = 40) -> None:
        st = make_station(root, 1883, sensors=2, max_records=8, max_seconds=3600, topic_prefix="site/sensors")
        cfg = configmod.load(st.config_path)
        self.clock = FakeClock()
        key = load_private_key(cfg.key_file)
        self.journal = Journal(cfg.journal.path)
        self.journal.bind_identity(cfg.gateway_id, public_hex(key))
        pipe = Pipeline(cfg.ingest, self.journal, Sealer(cfg.gateway_id, key, 0), self.clock)
        sealer = BlockSealer(self.journal, key, cfg.gateway_id, self.clock, cfg.blocks.max_records,
                             cfg.blocks.max_seconds)
        ledger = make_ledger(cfg.ledger, self.clock)
        anchorer = Anchorer(Journal(cfg.journal.path), ledger, self.clock, cfg.gateway_id)
        for c in range(1, readings + 1):
            s = "probe-1" if c % 3 else "probe-2"
            self.clock.advance(60_000)
            msg = build_message(st.sensor_keys[s], s, c, self.clock.now_ms(), [temperature(4000 + c)])
            pipe.process([Inbound("mqtt", st.topic(s), msg)])
            sealer.maybe_seal()
            if c % 16 == 0:  # anchors along the way, as a running gateway makes them
                while anchorer.step() not in ("idle", "waiting"):
                    pass
        sealer.maybe_seal(force=True)
        while anchorer.step() not in ("idle", "waiting"):
            pass
        self.gateway_key = public_hex(key)
        self.checkers = default_checkers(ledger_key=public_hex(load_private_key(cfg.ledger.key_file)),
                                         ledger_file=cfg.ledger.path)
        self.start_ms = FakeClock().now_ms()

    def verifies(self, bundle: Any) -> bool:
        return verify_bundle(bundle, gateway_key=self.gateway_key, checkers=self.checkers).ok


class Sweep:
    def __init__(self, name: str) -> None:
        self.name = name
        self.flips = 0
        self.detected = 0
        self.unparseable = 0
        self.hex_kept = 0
        self.hex_kept_detected = 0
        self.undetected: list[str] = []
        self.known: list[str] = []
        self.claims = 0  # range bundles: flips of the unsigned selection that leave a consistent claim

    def add(self, detected: bool, *, unparseable: bool, hex_kept: bool, where: str = "",
            known: bool = False) -> None:
        self.flips += 1
        self.detected += int(detected)
        if known:
            self.known.append(where)
            return
        self.unparseable += int(unparseable)
        if hex_kept:
            self.hex_kept += 1
            self.hex_kept_detected += int(detected)
        if not detected and len(self.undetected) < 20:
            self.undetected.append(where)


def _diff(a: Any, b: Any, path: str = "$") -> str:
    """The JSON path where two parsed documents first differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k, ...) != b.get(k, ...):
                return _diff(a.get(k), b.get(k), f"{path}.{k}") if k in a and k in b else f"{path}.{k} (key)"
        return path
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return _diff(x, y, f"{path}[{i}]")
    sa, sb = str(a), str(b)
    if len(sa) == len(sb) and len(sa) > 40:  # show where the two differ
        i = next((k for k, (x, y) in enumerate(zip(sa, sb)) if x != y), 0)
        lo = max(0, i - 12)
        return f"{path}: …{sa[lo:i + 12]!r} -> …{sb[lo:i + 12]!r}"
    return f"{path}: {sa[:40]!r} -> {sb[:40]!r}"


def _is_known(original: Any, tampered: Any, where: str) -> bool:
    """The reported ledger_key case defect: only the letter case of anchors[i].ledger_key changed."""
    return ".ledger_key" in where and _lower_hex(original) == _lower_hex(tampered)


def _positions(n: int, sample: int | None, rng: random.Random) -> list[int]:
    if sample is None or sample >= n:
        return list(range(n))
    return sorted(rng.sample(range(n), sample))


def _masks(full: bool, rng: random.Random) -> tuple[int, ...]:
    return MASKS if full else (rng.choice(MASKS),)


def sweep_object(fx: Fixture, bundle: dict[str, Any], sw: Sweep, data: bytes, place: Any, *,
                 sample: int | None, full: bool, rng: random.Random) -> None:
    """Flip bits of ``data`` (canonical bytes of a signed object) and put the parsed result where
    ``place(bundle_copy, obj)`` says."""
    original = json.loads(data)
    for p in _positions(len(data), sample, rng):
        for m in _masks(full, rng):
            b = bytearray(data)
            b[p] ^= m
            hex_kept = data[p] in HEX and b[p] in HEX
            try:
                obj = json.loads(bytes(b))
            except ValueError:  # not UTF-8 or not JSON: the object cannot even be read
                sw.add(True, unparseable=True, hex_kept=hex_kept)
                continue
            copy = json.loads(json.dumps(bundle))
            place(copy, obj)
            ok = fx.verifies(copy)
            where = f"byte {p} ^ {m:#04x}: {_diff(original, obj)}"
            sw.add(not ok, unparseable=False, hex_kept=hex_kept, where=where,
                   known=ok and _is_known(original, obj, where))


def sweep_text(fx: Fixture, text: bytes, sw: Sweep, *, sample: int | None, full: bool, rng: random.Random,
               selection_is_claim: bool = False) -> None:
    original = json.loads(text)
    for p in _positions(len(text), sample, rng):
        for m in _masks(full, rng):
            b = bytearray(text)
            b[p] ^= m
            hex_kept = text[p] in HEX and b[p] in HEX
            try:
                obj = json.loads(bytes(b))
            except ValueError:
                sw.add(True, unparseable=True, hex_kept=hex_kept)
                continue
            ok = fx.verifies(obj)
            where = f"byte {p} ^ {m:#04x}: {_diff(original, obj)}"
            if ok and selection_is_claim and where.split(": ", 1)[1].startswith("$.selection"):
                sw.claims += 1  # a different, still consistent claim of what was exported (unsigned)
                continue
            sw.add(not ok, unparseable=False, hex_kept=hex_kept, where=where,
                   known=ok and _is_known(original, obj, where))


def run_tamper(workdir: Path, *, sample: int | None = 200, full: bool = False,
               rng: random.Random | None = None, range_bundle: bool = False) -> list[Row]:
    rng = rng or random.Random()
    t0 = time.monotonic()
    fx = Fixture(workdir / "st")
    j = fx.journal
    # a record in the middle of a block, so its proof has siblings on both sides
    seq = 13
    rec_bundle = json.loads(json.dumps(export_record(j, seq)))
    assert fx.verifies(rec_bundle), "the untampered bundle must verify"
    body = bytes(j.records_range(seq, seq)[0].body)  # the journal's stored bytes
    assert body == canonical(rec_bundle["records"][0]["record"])
    blk = rec_bundle["records"][0]["block"]
    bi = next(i for i, b in enumerate(rec_bundle["blocks"]) if b["header"]["block"] == blk)
    header = canonical(rec_bundle["blocks"][bi]["header"])

    sweeps: list[tuple[Sweep, float]] = []
    s = Sweep(f"7 tamper: journal record body ({len(body)} B)")
    t = time.monotonic()
    sweep_object(fx, rec_bundle, s, body, lambda b, o: b["records"][0].__setitem__("record", o),
                 sample=sample, full=full, rng=rng)
    sweeps.append((s, time.monotonic() - t))

    s = Sweep(f"7 tamper: block header ({len(header)} B)")
    t = time.monotonic()
    sweep_object(fx, rec_bundle, s, header, lambda b, o: b["blocks"][bi].__setitem__("header", o),
                 sample=sample, full=full, rng=rng)
    sweeps.append((s, time.monotonic() - t))

    text = json.dumps(rec_bundle, indent=1, sort_keys=True).encode()  # as `traceseal export` writes it
    s = Sweep(f"7 tamper: record bundle, JSON text ({len(text):,} B)")
    t = time.monotonic()
    sweep_text(fx, text, s, sample=sample, full=full, rng=rng)
    sweeps.append((s, time.monotonic() - t))

    if range_bundle:
        rb = json.loads(json.dumps(export_range(j, "probe-2", fx.start_ms + 10 * 60_000, fx.start_ms + 30 * 60_000)))
        assert fx.verifies(rb)
        text = json.dumps(rb, indent=1, sort_keys=True).encode()
        s = Sweep(f"7 tamper: range bundle, JSON text ({len(text):,} B)")
        t = time.monotonic()
        sweep_text(fx, text, s, sample=sample, full=full, rng=rng, selection_is_claim=True)
        sweeps.append((s, time.monotonic() - t))

    rows = []
    for s, dt in sweeps:
        row = Row(s.name, runs=1, sent=s.flips, detected=(s.detected, s.flips), seconds=dt)
        for u in s.undetected:
            row.fail(f"undetected flip at {u}")
        if s.claims:
            row.notes.append(f"{s.claims} flips of selection.from_ms/to_ms still verify: the selection is the "
                             f"exporter's unsigned claim (docs/proof-format.md §8-9), step 9 checks the records and "
                             f"blocks against it and verify's report states it; not counted (an auditor compares it "
                             f"with the range they asked for)")
        if s.known:
            row.xfail = KNOWN_LEDGER_KEY_CASE
            row.known += s.known[:3]
            row.notes.append(f"{len(s.known)} flips hit the known ledger_key letter-case defect (counted as not "
                             f"detected; reported, xfail in tests/faults)")
        how = "every position × 8 single-bit masks" if full else f"{sample} sampled positions, one mask each"
        row.notes.append(f"{how}"
                         f": {s.flips:,} flips, {s.unparseable:,} made it unparseable (detected at reading), "
                         f"{s.hex_kept:,} kept a hex digit a hex digit, {s.hex_kept_detected:,} of those detected; "
                         f"detected = flips that fail verification (keys pinned)")
        rows.append(row)
    j.close()
    _ = t0
    return rows
