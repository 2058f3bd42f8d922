"""The pure verification rules (ledger_client/verify/checks.py): every check, every problem
code, with its got/want, on minimal inputs; and, over the shared bundle vectors
(tests/vectors/bundles/), that the typed problems verify_bundle records sit in the steps
that fail, reach ``--json`` one per failure, and are JSON."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_client.canonical import canonical, header_hash, header_message, record_message
from ledger_client.merkle import hash_leaf, inclusion_proof, root
from ledger_client.verify import (
    ZERO_HASH,
    Problem,
    check_anchor_entry,
    check_anchor_time,
    check_header,
    check_hex_case,
    check_inclusion,
    check_link,
    check_record,
    check_root,
    check_rotation_boundary,
    check_size,
    default_checkers,
    verify_bundle,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "vectors"))
import bundle_vectors as BV  # noqa: E402  found through the sys.path line above

GW = "gw-t"
SK = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY = SK.public_key().public_bytes_raw().hex()


def rec(seq: int, **over: Any) -> dict[str, Any]:
    r = {"v": 1, "gateway": GW, "seq": seq, "time_ms": 1000 + seq, "clock_synced": True, "type": "reading"}
    r.update(over)
    return r


def rsig(r: dict[str, Any]) -> str:
    return SK.sign(record_message(canonical(r))).hex()


RECS = [rec(s) for s in (5, 6, 7)]
LEAVES = [hash_leaf(canonical(r)) for r in RECS]


def header(**over: Any) -> dict[str, Any]:
    h = {"v": 1, "gateway": GW, "block": 1, "first_seq": 5, "last_seq": 7, "size": 3,
         "root": root(LEAVES).hex(), "prev": "ab" * 32, "first_time_ms": 1005, "last_time_ms": 1007,
         "sealed_ms": 1010, "clock_synced": True, "key": KEY}
    h.update(over)
    return h


def hsig(h: dict[str, Any]) -> str:
    return SK.sign(header_message(canonical(h))).hex()


def codes(ps: list[Problem]) -> list[str]:
    return [p.code for p in ps]


# -- check_header (step 3) -----------------------------------------------------------------

def test_header_that_holds_has_no_problem_and_key_is_compared_case_insensitively() -> None:
    h = header()
    assert check_header(h, hsig(h), gateway=GW, key_hex=KEY) == []
    h = header(key=KEY.upper())
    assert check_header(h, hsig(h), gateway=GW, key_hex=KEY) == []


def test_header_fields_come_alone_with_got_and_want() -> None:
    h = header(clock_synced=1)
    del h["root"]
    ps = check_header(h, hsig(h), gateway="other", key_hex=KEY)
    assert ps == [Problem(3, "header-field", ["root missing", "clock_synced=1"],
                          {"root": "str", "clock_synced": "bool"}, "header fields root missing, clock_synced=1")]
    assert codes(check_header([1], "", gateway=GW, key_hex=KEY)) == ["header-field"]
    assert check_header([1], "", gateway=GW, key_hex=KEY)[0].detail == "header fields not an object"


def test_header_version_key_gateway_signature() -> None:
    other = "cd" * 32
    h = header(v=2, key=other, gateway="gw-x")
    ps = check_header(h, hsig(h), gateway=GW, key_hex=KEY)
    assert codes(ps) == ["version", "key", "gateway"]
    assert (ps[0].got, ps[0].want, ps[0].detail) == (2, 1, "header version 2, want 1")
    assert (ps[1].got, ps[1].want) == (other, KEY)
    assert ps[1].detail == f"signed by key {other[:16]}…, not the gateway key {KEY[:16]}…"
    assert (ps[2].got, ps[2].want, ps[2].detail) == ("gw-x", GW, "gateway 'gw-x', want 'gw-t'")
    bad = hsig(header(block=2))
    ps = check_header(header(), bad, gateway=GW, key_hex=KEY)
    assert ps == [Problem(3, "signature", bad, KEY, "header signature does not verify")]
    assert codes(check_header(header(), hsig(header()).upper(), gateway=GW, key_hex=KEY)) == ["signature"]


# -- check_record (step 2) -----------------------------------------------------------------

def test_record_rules() -> None:
    r = RECS[0]
    assert check_record(r, rsig(r), gateway=GW, key_hex=KEY) == []
    assert check_record(r, "00" * 64, gateway=GW, signature_valid=True) == []  # the caller's answer counts
    ps = check_record(rec(5, v=3, gateway="x"), rsig(r), gateway=GW, key_hex=KEY)
    assert codes(ps) == ["version", "gateway", "signature"]
    assert (ps[0].got, ps[0].want, ps[0].detail) == (3, 1, "version 3, want 1")
    assert ps[2].detail == "signature does not verify"
    ps = check_record({**RECS[0], "seq": True}, "", gateway=GW, key_hex=KEY)
    assert ps == [Problem(2, "record-field", ["seq=True"], {"seq": "int"}, "record fields seq=True")]


# -- check_inclusion / check_root (step 4) --------------------------------------------------

def proof(i: int) -> list[str]:
    return [p.hex() for p in inclusion_proof(LEAVES, i)]


def test_inclusion_holds_for_every_leaf() -> None:
    for i, r in enumerate(RECS):
        assert check_inclusion(canonical(r), r["seq"], i, header(), proof(i)) == []
        assert check_inclusion(canonical(r), r["seq"], None, header(), proof(i), check_index=False) == []


@pytest.mark.parametrize("case,code,got,want,detail", [
    ({"seq": 9}, "seq-range", 9, [5, 7], "seq 9 outside block 1 range 5..7"),
    ({"proof": "x"}, "proof-type", "str", "list", "proof is str, want list"),
    ({"index": 2}, "index", 2, 1, "leaf index 2, want 1"),
    ({"proof": ["AB" * 32]}, "proof-hex", None, None, "proof hash 'ABAB"),
    ({"root": "zz"}, "root-hex", "zz", None, "root 'zz' is not 64 lowercase hex characters"),
    ({"proof": ["00" * 32, "00" * 32]}, "inclusion", None, "root", "calculated root"),
    ({"proof": []}, "inclusion", None, "root", "wrong proof size 0: too short"),
])
def test_inclusion_problems(case: dict[str, Any], code: str, got: Any, want: Any, detail: str) -> None:
    r = RECS[1]
    h = header(root=case.get("root", root(LEAVES).hex()))
    ps = check_inclusion(canonical(r), case.get("seq", 6), case.get("index", 1), h, case.get("proof", proof(1)))
    assert len(ps) == 1 and ps[0].step == 4 and ps[0].code == code
    assert ps[0].got == got
    assert ps[0].want == (h["root"] if want == "root" else want)
    assert ps[0].detail.startswith(detail)


def test_whole_block_root() -> None:
    bodies = [canonical(r) for r in RECS]
    assert check_root(bodies, header()) == []
    ps = check_root(bodies[:2], header())
    assert ps == [Problem(4, "record-count", 2, 3, "block 1 has 2 records, size says 3")]
    swapped = [bodies[1], bodies[0], bodies[2]]
    ps = check_root(swapped, header())
    assert codes(ps) == ["root"] and ps[0].want == root(LEAVES).hex()
    assert ps[0].got == root([hash_leaf(b) for b in swapped]).hex() != ps[0].want


def test_rotation_boundary() -> None:
    rot = [(7, 1, KEY, "cd" * 32)]
    assert check_rotation_boundary(header(), rot) == []
    assert check_rotation_boundary(header(block=2), rot) == []  # another block: nothing to say
    ps = check_rotation_boundary(header(), [(6, 1, KEY, "cd" * 32)])
    assert ps == [Problem(4, "rotation-boundary", [5, 7], 6, "block 1 is the old key's last block: it must end "
                                                          "with the rotation record seq 6, not span 5..7")]


# -- check_link / check_size (step 5) --------------------------------------------------------

def test_link_rules() -> None:
    h0 = header(block=0, first_seq=0, last_seq=4, size=5, prev=ZERO_HASH)
    hh0 = header_hash(canonical(h0))
    h1 = header(prev=hh0.hex())
    assert check_link(h0, hh0, h1) == []
    assert check_link(None, None, h0) == []
    assert check_link(None, None, h1) == []  # a later first block has nothing to link to
    ps = check_link(h0, hh0, header(block=3))
    assert ps == [Problem(5, "block-gap", 3, 1, "block 0 is followed by block 3: blocks 1..2 are missing")]
    ps = check_link(h0, hh0, header(prev="ab" * 32, first_seq=6))
    assert codes(ps) == ["prev", "first-seq"]
    assert (ps[0].got, ps[0].want) == ("ab" * 32, hh0.hex())
    assert (ps[1].got, ps[1].want) == (6, 5)
    assert ps[1].detail == "first_seq 6, want 5 (records missing between blocks)"
    ps = check_link(None, None, header(block=0, prev="ab" * 32, first_seq=5))
    assert codes(ps) == ["genesis-prev", "genesis-first-seq"]
    assert (ps[0].want, ps[1].got, ps[1].want) == (ZERO_HASH, 5, 0)


def test_size_rule() -> None:
    assert check_size(header()) == []
    assert check_size(header(size=4)) == [Problem(5, "size", 4, 3, "size 4 does not match seq range 5..7")]
    assert codes(check_size(header(first_seq=5, last_seq=4, size=0))) == ["size"]
    assert codes(check_size({"size": 1})) == ["header-field"]


# -- anchors (step 6) and the archive's wire form -----------------------------------------------

def test_anchor_entry_and_time() -> None:
    a = {"kind": "local", "entry": {"gateway": GW, "block": 4}}
    assert check_anchor_entry(a, gateway=GW, block=4) == []
    assert check_anchor_entry({"kind": "evm"}, gateway=GW, block=4) == []
    ps = check_anchor_entry(a, gateway=GW, block=5)
    assert ps == [Problem(6, "anchor-entry", [GW, 4], [GW, 5],
                          "entry names gateway 'gw-t' block 4, want 'gw-t' block 5")]
    assert codes(check_anchor_entry({"kind": "local", "entry": {"gateway": GW, "block": True}},
                                    gateway=GW, block=1)) == ["anchor-entry"]
    assert check_anchor_time(946_684_800_000) == [] and check_anchor_time(7_258_118_400_000) == []
    for t in (946_684_799_999, 7_258_118_400_001, "5", True, None):
        ps = check_anchor_time(t)
        assert codes(ps) == ["anchor-time"] and ps[0].got == t
        assert ps[0].want == [946_684_800_000, 7_258_118_400_000]


def test_hex_case() -> None:
    h = header()
    assert check_hex_case(h, hsig(h)) == []
    ps = check_hex_case(header(root="AB" * 32, prev=5), hsig(h).upper())
    assert codes(ps) == ["hex-case"] * 3
    assert [p.got for p in ps] == ["AB" * 32, 5, hsig(h).upper()]


# -- through verify_bundle, over the shared vectors -------------------------------------------

VECTORS = [(n, v) for n, v in BV.load_all()
           if "bundle" in v and not (isinstance(v["bundle"], dict)
                                     and v["bundle"].get("format") == "traceseal-set/1")]
SENTENCE_ONLY = {1, 9}  # rotation-chain (step 1) and selection (step 9) failures are sentences


@pytest.mark.parametrize("name,vec", VECTORS, ids=[n for n, _ in VECTORS])
def test_vector_problems_sit_in_the_failing_steps(name: str, vec: dict[str, Any]) -> None:
    keys = vec["keys"]
    r = verify_bundle(copy.deepcopy(vec["bundle"]), gateway_key=keys.get("gateway_key"),
                      checkers=default_checkers(ledger_key=keys.get("ledger_key")))
    failing = sorted(s.step for s in r.steps if not s.ok)
    assert failing == vec["want"]["failing_steps"]
    typed = {p.step for s in r.steps for p in s.problems.values()}
    for s in r.steps:
        assert all(p.step == s.step for p in s.problems.values()), s
        assert all(0 <= i < len(s.failures) for i in s.problems)
    assert typed <= set(failing)
    assert set(failing) - SENTENCE_ONLY <= typed, (failing, typed)
    d = json.loads(json.dumps(r.as_dict()))
    for s in d["steps"]:
        assert [p["message"] for p in s["problems"]] == s["failures"]
        assert all(set(p) == {"message", "code", "got", "want"} for p in s["problems"])


def test_json_got_want_of_a_tampered_header_version() -> None:
    b = BV.example()
    b["blocks"][0]["header"]["v"] = 2
    r = verify_bundle(b, gateway_key=BV.GW_PUB, checkers=default_checkers(ledger_key=BV.LEDGER_PUB))
    s3 = r.as_dict()["steps"][2]
    assert s3["failures"][0] == "block 0: header version 2, want 1"
    assert s3["problems"][0] == {"message": "block 0: header version 2, want 1", "code": "version",
                                 "got": 2, "want": 1}


def test_json_got_is_safe_for_hostile_values() -> None:
    """A 4,301-digit integer cannot be written by json.dumps; got/want say what it is."""
    b = BV.example()
    b["records"][0]["index"] = 10 ** 4400
    r = verify_bundle(b, gateway_key=BV.GW_PUB, checkers=default_checkers(ledger_key=BV.LEDGER_PUB))
    text = json.dumps(r.as_dict())
    p = json.loads(text)["steps"][3]["problems"][0]
    assert p["code"] == "index" and p["got"].startswith("<integer of ") and _is_int_json(p["want"])


def _is_int_json(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
