"""Build the worked example of docs/proof-format.md into docs/example/, deterministically.

Everything is fixed: the Ed25519 keys come from the public RFC 8032 §7.1 test seeds (NOT
secret keys: never use them for anything real), every time comes from a FakeClock, and
Ed25519 signatures are deterministic, so re-running this script rewrites identical files.

It drives the real code paths: firmware_sim.message builds the probe's wire bytes, the
traceseal firmware adapter parses them, gateway.ingest.seal.Sealer seals three readings into a
temporary journal, gateway.chain.blocks.BlockSealer cuts one block, gateway.chain.anchoring.Anchorer
anchors it on ledger_client.local.LocalLedger, and gateway.chain.export.export_record exports
record seq 1 as docs/example/bundle.json, which the reference verifier must accept.

    python scripts/make_spec_example.py            # (re)write docs/example/
    python scripts/make_spec_example.py --check    # exit 1 if docs/example/ is stale
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_sim.message import build_message, temperature
from gateway.adapters import traceseal_fw
from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_record
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer, reading_body
from gateway.journal import Journal
from ledger_client.canonical import (
    HEADER_DOMAIN,
    LEDGER_DOMAIN,
    RECORD_DOMAIN,
    SENSOR_DOMAIN,
    canonical,
    header_hash,
)
from ledger_client.files import write_atomic
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger
from ledger_client.merkle import hash_children, hash_leaf, root_from_inclusion_proof
from ledger_client.verify import default_checkers, verify_bundle

OUT = ROOT / "docs" / "example"

# RFC 8032 §7.1 TEST 1, TEST 2, TEST 3 secret keys: public test values, NOT secret keys.
SEEDS = {
    "gateway": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "sensor": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "ledger": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
}
GATEWAY_ID = "gw-demo-1"
SENSOR = "probe-1"
TOPIC = f"traceseal/sensors/{SENSOR}/reading"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# (gateway receive time, probe's own clock, counter, temperature in mC) per message
MESSAGES = [(T0 + 1_000, T0 + 870, 41, 4350), (T0 + 61_000, T0 + 60_870, 42, 4412),
            (T0 + 121_000, T0 + 120_870, 43, 4475)]
SEALED_AT = T0 + 121_500
ANCHORED_AT = T0 + 123_000
EXPORTED_AT = T0 + 180_000
EXPORT_SEQ = 1


def key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEEDS[name]))


def build(tmp: Path) -> dict[str, bytes]:
    """All example files, name -> exact bytes."""
    files: dict[str, bytes] = {}
    gw_key, sensor_key, ledger_key = key("gateway"), key("sensor"), key("ledger")
    clock = FakeClock(start_ms=T0, synced=True)
    journal = Journal(tmp / "journal.sqlite")
    journal.bind_identity(GATEWAY_ID, public_hex(gw_key))
    sealer = Sealer(GATEWAY_ID, gw_key, journal.next_seq())
    blocks = BlockSealer(journal, gw_key, GATEWAY_ID, clock, max_records=3, max_seconds=300)
    ledger = LocalLedger(tmp / "ledger.sqlite", ledger_key, clock_ms=clock.now_ms, ledger_id="local")
    anchorer = Anchorer(journal, ledger, clock, GATEWAY_ID)

    # 1. three probe messages -> parse -> authenticate -> seal -> journal
    wire: list[bytes] = []
    for recv_ms, sensor_ms, ctr, value in MESSAGES:
        clock.t_ms = recv_ms
        raw = build_message(sensor_key, SENSOR, ctr, sensor_ms, [temperature(value)])
        wire.append(raw)
        (obs,) = traceseal_fw.parse(TOPIC, raw)
        assert obs.proof is not None
        sensor_key.public_key().verify(obs.proof.signature, obs.proof.message)  # as admission does
        digest = hashlib.sha256(raw).digest()
        body = reading_body(obs, transport="mqtt", topic=TOPIC, authenticated=True, digest=digest)
        row = sealer.seal(body, time_ms=clock.now_ms(), synced=clock.synced(), digest=digest)
        journal.commit_batch([row], [], {SENSOR: (ctr, 1)}, {})

    # 2. one block of three records
    clock.t_ms = SEALED_AT
    (block,) = blocks.maybe_seal()
    # 3. anchor it on the local ledger (prepare -> outbox -> submit -> lookup)
    clock.t_ms = ANCHORED_AT
    assert anchorer.step() == "confirmed"
    # 4. export record seq 1
    bundle = export_record(journal, EXPORT_SEQ, now_ms=EXPORTED_AT)
    leaves = [hash_leaf(bytes(r.body)) for r in journal.records_range(block.first_seq, block.last_seq)]
    journal.close()
    ledger.close()

    # -- the files -------------------------------------------------------------------
    def text(s: str) -> bytes:
        return s.encode("utf-8")

    def js(obj: Any) -> bytes:
        return text(json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + "\n")

    pub = {n: public_hex(key(n)) for n in SEEDS}
    files["keys.json"] = js({
        "WARNING": "DEMO KEYS: the RFC 8032 section 7.1 test seeds, published to the world. NOT secret keys; "
                   "never use them for anything real.",
        "gateway": {"id": GATEWAY_ID, "seed": SEEDS["gateway"], "public_key": pub["gateway"],
                    "rfc8032": "TEST 1"},
        "sensor": {"id": SENSOR, "seed": SEEDS["sensor"], "public_key": pub["sensor"], "rfc8032": "TEST 2"},
        "ledger": {"id": "local", "seed": SEEDS["ledger"], "public_key": pub["ledger"], "rfc8032": "TEST 3"},
    })
    files["gateway-public.pem"] = key("gateway").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    # the probe message behind the exported record
    raw = wire[EXPORT_SEQ]
    msg = json.loads(raw)
    signed_sensor = SENSOR_DOMAIN + canonical({k: v for k, v in msg.items() if k != "sig"})
    files["sensor-message.json"] = raw
    files["sensor-message.signed.txt"] = signed_sensor
    files["sensor-message.sha256.hex"] = text(hashlib.sha256(raw).hexdigest() + "\n")

    entry = bundle["records"][0]
    rec = entry["record"]
    rec_c = canonical(rec)
    files["record.json"] = js(rec)
    files["record.canonical.json"] = rec_c
    files["record.signed.hex"] = text((RECORD_DOMAIN + rec_c).hex() + "\n")
    files["record.sig.hex"] = text(entry["sig"] + "\n")

    # Merkle: every leaf of block 0, the inner node, the proof of leaf 1 and the root
    hdr = bundle["blocks"][0]["header"]
    hdr_c = canonical(hdr)
    hh = header_hash(hdr_c)
    node01 = hash_children(leaves[0], leaves[1])
    root = hash_children(node01, leaves[2])
    proof = [bytes.fromhex(p) for p in entry["proof"]]
    assert root.hex() == hdr["root"], "hand-built root differs from the header's"
    assert root_from_inclusion_proof(entry["index"], hdr["size"], hash_leaf(rec_c), proof) == root
    files["merkle.json"] = js({
        "size": hdr["size"], "leaf_hashes": [x.hex() for x in leaves],
        "node_0_1": node01.hex(), "root": root.hex(),
        "index": entry["index"], "proof": entry["proof"], "leaf_hash": hash_leaf(rec_c).hex(),
    })

    files["header.json"] = js(hdr)
    files["header.canonical.json"] = hdr_c
    files["header.signed.hex"] = text((HEADER_DOMAIN + hdr_c).hex() + "\n")
    files["header.sig.hex"] = text(bundle["blocks"][0]["sig"] + "\n")
    files["header.hash.hex"] = text(hh.hex() + "\n")
    assert hh == bytes(block.hash)

    anchor = bundle["anchors"][0]
    led = anchor["entry"]
    led_c = canonical(led)
    files["ledger-entry.json"] = js(led)
    files["ledger-entry.canonical.json"] = led_c
    files["ledger-entry.signed.hex"] = text((LEDGER_DOMAIN + led_c).hex() + "\n")
    files["ledger-entry.sig.hex"] = text(anchor["sig"] + "\n")

    files["bundle.json"] = js(bundle)
    report = verify_bundle(bundle, gateway_key=pub["gateway"],
                           checkers=default_checkers(ledger_key=pub["ledger"]))
    if not report.ok:
        raise SystemExit(f"the example bundle does not verify: {report.as_dict()}")
    return files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="compare with docs/example/ instead of writing")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        files = build(Path(d))
    if args.check:
        stale = [n for n, b in files.items() if not (args.out / n).exists() or (args.out / n).read_bytes() != b]
        for n in stale:
            print(f"stale: {args.out / n}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in sorted(files.items()):
        write_atomic(args.out / name, data)  # complete or the old file: a reader never sees half
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
