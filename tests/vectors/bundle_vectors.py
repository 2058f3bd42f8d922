"""Make (or check) the shared bundle vectors in tests/vectors/bundles/<case>.json.

Each vector is data that every verifier (the CLI, the browser page, the spec verifier in
tests/independent/) reads the same way::

    {"description": str,
     "bundle": <the bundle, a JSON value>            or  "bundle_text": <raw text, for unreadable ones>,
     "keys": {"gateway_key": hex | absent, "ledger_key": hex | absent},
     "want": {"result": "verified" | "intact-key-not-pinned" | "failed" | "unreadable",
              "failing_steps": [int, ...]}}

``want`` is what docs/proof-format.md says. The bundles are mutations of docs/example/bundle.json,
re-signed where the case needs it with the PUBLISHED RFC 8032 test seeds of docs/example/keys.json
(so an attacker could make every one of them), using only ``cryptography`` and the spec
verifier's JCS: no project code makes these vectors.

    python tests/vectors/bundle_vectors.py           # (re)write the folder
    python tests/vectors/bundle_vectors.py --check   # exit 1 if a file differs from what this makes
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
OUT = HERE / "bundles"
sys.path.insert(0, str(REPO / "tests" / "independent"))
import verify_from_spec as V

EX = REPO / "docs" / "example"
KEYS = json.loads((EX / "keys.json").read_text())
GW_PUB = KEYS["gateway"]["public_key"]
LEDGER_PUB = KEYS["ledger"]["public_key"]
GW = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["gateway"]["seed"]))
LEDGER = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["ledger"]["seed"]))
MAX_SAFE = 2 ** 53 - 1
T_MIN, T_MAX = 946_684_800_000, 7_258_118_400_000  # anchor times: 2000-01-01 .. 2200-01-01 (§7.4)


def example() -> dict[str, Any]:
    return json.loads((EX / "bundle.json").read_text())


def _sign(key: Ed25519PrivateKey, domain: bytes, obj: Any) -> str:
    return key.sign(domain + V.jcs(obj)).hex()


def _root(index: int, size: int, leaf: bytes, proof: list[str]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to (written from the RFC)."""
    fn, sn, r = index, size - 1, leaf
    for p in (bytes.fromhex(x) for x in proof):
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn, sn = fn >> 1, sn >> 1
    return r


def resign(b: dict[str, Any], *, anchor_time: int | None = None) -> dict[str, Any]:
    """Re-sign record 0, the block's root and header, and the local anchor, as an attacker
    holding the (published) keys would after changing any of them."""
    e = b["records"][0]
    e["sig"] = _sign(GW, V.RECORD_DOMAIN, e["record"])
    h = b["blocks"][0]["header"]
    h["root"] = _root(e["index"], h["size"], V.leaf_hash(e["record"]), e["proof"]).hex()
    b["blocks"][0]["sig"] = _sign(GW, V.HEADER_DOMAIN, h)
    a = b["anchors"][0]
    a["entry"]["header_hash"] = V.header_hash(h).hex()
    if anchor_time is not None:
        a["entry"]["time_ms"] = anchor_time
    a["sig"] = _sign(LEDGER, V.LEDGER_DOMAIN, a["entry"])
    return b


def route_bundle(route: str = "R1") -> dict[str, Any]:
    b = example()
    b["records"][0]["record"]["route"] = route
    b["selection"] = {"type": "route", "id": route}
    return resign(b)


def nest(depth: int) -> Any:
    """A value that makes a bundle ``depth`` containers deep as a member of the bundle object."""
    v: Any = 0
    for i in range(depth - 1):
        v = [v] if i % 2 else {"n": v}
    return v


# The key a rotation vector hands over to: a seed anyone can derive (the vectors are attacks
# an attacker holding published keys could make, not secrets).
NEW = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"traceseal vector: rotated-to key").digest())
NEW_PUB = NEW.public_key().public_bytes_raw().hex()


def rotation_bundle(rot_seq: int) -> dict[str, Any]:
    """Block 0 re-made with three records, seq ``rot_seq`` a key rotation (§8.1) closing
    block 0, signed by the gateway key and accepted by ``NEW``; the bundle holds record 0
    and the rotation in ``gateway.rotations``. §8.1: the old key's last block ends with the
    rotation record, so only ``rot_seq`` = 2 (the block's last seq) verifies."""
    b = example()
    base = b["records"][0]["record"]
    recs: list[dict[str, Any]] = []
    for seq in range(3):
        t = base["time_ms"] + 1000 * seq
        if seq == rot_seq:
            stmt = {"gateway": base["gateway"], "old_key": GW_PUB, "new_key": NEW_PUB, "last_block": 0}
            recs.append({"v": 1, "gateway": base["gateway"], "seq": seq, "time_ms": t, "clock_synced": True,
                         "type": "key_rotation", "old_key": GW_PUB, "new_key": NEW_PUB, "last_block": 0,
                         "new_key_sig": NEW.sign(V.ROTATE_DOMAIN + V.jcs(stmt)).hex()})
        else:
            recs.append(dict(copy.deepcopy(base), seq=seq, time_ms=t))
    leaves = [V.leaf_hash(r) for r in recs]
    h = b["blocks"][0]["header"]
    h.update(root=V.mth(leaves).hex(), first_time_ms=recs[0]["time_ms"], last_time_ms=recs[-1]["time_ms"],
             sealed_ms=recs[-1]["time_ms"] + 500)
    b["blocks"][0]["sig"] = _sign(GW, V.HEADER_DOMAIN, h)
    entry = lambda i: [x.hex() for x in V.inclusion_path(i, leaves)]  # noqa: E731
    b["records"] = [{"block": 0, "index": 0, "proof": entry(0), "record": recs[0],
                     "sig": _sign(GW, V.RECORD_DOMAIN, recs[0])}]
    b["selection"] = {"seq": 0, "type": "record"}
    b["gateway"]["rotations"] = [{"record": recs[rot_seq], "sig": _sign(GW, V.RECORD_DOMAIN, recs[rot_seq]),
                                  "proof": entry(rot_seq)}]
    a = b["anchors"][0]
    a["entry"]["header_hash"] = V.header_hash(h).hex()
    a["sig"] = _sign(LEDGER, V.LEDGER_DOMAIN, a["entry"])
    return b


PINNED = {"gateway_key": GW_PUB}
Case = tuple[str, str, Callable[[], Any], dict[str, str], str, list[int]]


def _mut(f: Callable[[dict[str, Any]], Any]) -> Callable[[], Any]:
    def make() -> Any:
        b = example()
        out = f(b)
        return b if out is None else out
    return make


def _set(b: dict[str, Any], k: str, v: Any) -> None:
    b[k] = v


CASES: list[Case] = [
    # name, description, make, keys, result, failing steps
    ("example-pinned", "the worked example, gateway key pinned", example, PINNED, "verified", []),
    ("example-unpinned", "the worked example, no key pinned: intact, but anyone could have made it",
     example, {}, "intact-key-not-pinned", []),
    ("attacker-key-unpinned", "a bundle signed with an attacker's key passes every step when nothing is pinned",
     _mut(lambda b: _attacker(b)), {}, "intact-key-not-pinned", []),
    ("attacker-key-pinned", "the same bundle against the real gateway key: steps 1-3 fail",
     _mut(lambda b: _attacker(b)), PINNED, "failed", [1, 2, 3]),
    ("anchor-time-max-safe-int", "a local anchor re-signed with time 2^53-1 (year 287396)",
     _mut(lambda b: resign(b, anchor_time=MAX_SAFE)), PINNED, "failed", [6, 7]),
    ("anchor-time-min-safe-int", "a local anchor re-signed with time -(2^53-1)",
     _mut(lambda b: resign(b, anchor_time=-MAX_SAFE)), PINNED, "failed", [6, 7]),
    ("anchor-time-zero", "a local anchor re-signed with time 0 (1970)",
     _mut(lambda b: resign(b, anchor_time=0)), PINNED, "failed", [6, 7]),
    ("anchor-time-just-before-2000", "anchor time 1999-12-31T23:59:59.999Z",
     _mut(lambda b: resign(b, anchor_time=T_MIN - 1)), PINNED, "failed", [6, 7]),
    ("anchor-time-just-after-2200", "anchor time 2200-01-01T00:00:00.001Z",
     _mut(lambda b: resign(b, anchor_time=T_MAX + 1)), PINNED, "failed", [6, 7]),
    ("anchor-time-2200", "anchor time 2200-01-01T00:00:00Z, the last instant accepted",
     _mut(lambda b: resign(b, anchor_time=T_MAX)), PINNED, "verified", []),
    ("anchor-time-2-pow-60-unsigned", "anchor time 2^60, not signable (outside ±(2^53-1)): the entry is unreadable",
     _mut(lambda b: b["anchors"][0]["entry"].update(time_ms=2 ** 60)), PINNED, "failed", [6, 7]),
    ("anchor-time-string", "anchor time as a string", _mut(lambda b: resign(b, anchor_time="1767225723000")),  # type: ignore[arg-type]
     PINNED, "failed", [6, 7]),
    ("record-listed-twice", "the same record entry twice: step 2 owns records and refuses the second",
     _mut(lambda b: _set(b, "records", b["records"] * 2)), PINNED, "failed", [2]),
    ("record-listed-50-times", "the same record entry 50 times (the issue saw 200,000 counted as 200,000 records)",
     _mut(lambda b: _set(b, "records", b["records"] * 50)), PINNED, "failed", [2]),
    ("record-seq-twice-other-content", "a second entry with the same seq and other (unsigned-for) content",
     _mut(lambda b: b["records"].append(_other_value(b["records"][0]))), PINNED, "failed", [2]),
    ("record-listed-twice-unpinned", "a duplicate fails whether or not the key is pinned",
     _mut(lambda b: _set(b, "records", b["records"] * 2)), {}, "failed", [2]),
    ("record-seq-huge", "record seq 2^64 (not signable): the record is malformed and not kept",
     _mut(lambda b: b["records"][0]["record"].update(seq=2 ** 64)), PINNED, "failed", [2, 9]),
    ("entry-block-huge", "an entry's block 2^64 (unsigned): no such block",
     _mut(lambda b: b["records"][0].update(block=2 ** 64)), PINNED, "failed", [4]),
    ("entry-index-float", "an entry's index 1.0: not an integer (§1)",
     _mut(lambda b: b["records"][0].update(index=1.0)), PINNED, "failed", [4]),
    ("selection-seq-huge", "selection seq 10^30", _mut(lambda b: b["selection"].update(seq=10 ** 30)),
     PINNED, "failed", [9]),
    ("exported-ms-huge", "an unsigned, unchecked member holding 10^400",
     _mut(lambda b: _set(b, "exported_ms", 10 ** 400)),
     PINNED, "verified", []),
    ("records-is-object", "records is an object", _mut(lambda b: _set(b, "records", {"0": b["records"][0]})),
     PINNED, "failed", [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("anchors-is-string", "anchors is a string", _mut(lambda b: _set(b, "anchors", "local")),
     PINNED, "failed", [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("bundle-is-array", "the bundle is an array", lambda: [example()], PINNED, "failed", [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("gateway-id-number", "gateway.id is a number", _mut(lambda b: b["gateway"].update(id=7)),
     PINNED, "failed", [1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("record-entry-is-list", "a record entry is a list", _mut(lambda b: _set(b, "records", [[1, 2]])),
     PINNED, "failed", [2, 9]),
    ("block-entry-is-number", "a block entry is a number", _mut(lambda b: b["blocks"].append(5)),
     PINNED, "failed", [3]),
    ("anchor-is-null", "an anchor is null", _mut(lambda b: b["anchors"].append(None)), PINNED, "failed", [6]),
    ("anchor-kind-object", "an anchor's kind is an object", _mut(lambda b: b["anchors"][0].update(kind={"x": 1})),
     PINNED, "failed", [6, 7]),
    ("record-deep-attrs-resigned", "a record carrying 200 levels of nesting, validly signed: fine",
     _mut(lambda b: (b["records"][0]["record"].update(attrs=nest(200)), resign(b))[1]), PINNED, "verified", []),
    ("nesting-901-deep", "an unsigned member nesting 901 levels deep: unreadable (§9.1)",
     _mut(lambda b: _set(b, "extra", nest(901))), PINNED, "unreadable", []),
    ("nesting-900-deep", "an unsigned member nesting exactly 900 levels deep: readable",
     _mut(lambda b: _set(b, "extra", nest(900))), PINNED, "verified", []),
    ("rotation-ends-block", "a key rotation that is the last record of the old key's last block (§8.1)",
     lambda: rotation_bundle(2), PINNED, "verified", []),
    ("rotation-mid-block", "a validly signed rotation sealed in the middle of its last_block, not at its end: "
     "the old key's last block must end with it (§8.1), step 4", lambda: rotation_bundle(1), PINNED, "failed", [4]),
    ("route-set-unpinned", "a traceseal-set/1 of one route bundle, no key pinned",
     lambda: {"format": "traceseal-set/1", "selection": {"type": "route", "id": "R1"}, "bundles": [route_bundle()]},
     {}, "intact-key-not-pinned", []),
]

TEXT_CASES: list[tuple[str, str, Callable[[], str], dict[str, str], str]] = [
    ("integer-4301-digits", "an integer literal of 4301 digits: unreadable (§9.1)",
     lambda: json.dumps(example())[:-1] + ', "extra": ' + "9" * 4301 + "}", PINNED, "unreadable"),
    ("integer-4300-digits", "an integer literal of 4300 digits in an unchecked member: readable",
     lambda: json.dumps(example())[:-1] + ', "extra": ' + "9" * 4300 + "}", PINNED, "verified"),
    ("nesting-100000-deep", "100,000 nested arrays: unreadable",
     lambda: json.dumps(example())[:-1] + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", PINNED, "unreadable"),
    ("duplicate-member", "a repeated member name: unreadable (§1)",
     lambda: json.dumps(example())[:-1] + ', "format": "traceseal-bundle/1"}', PINNED, "unreadable"),
    ("nan", "NaN: unreadable (§1)", lambda: json.dumps(example())[:-1] + ', "extra": NaN}', PINNED, "unreadable"),
    ("number-1e400", "1e400 as an entry's index: a non-integer, step 4",
     lambda: json.dumps(example()).replace('"index": 1,', '"index": 1e400,'), PINNED, "failed"),
]


def _attacker(b: dict[str, Any]) -> dict[str, Any]:
    global GW
    real = GW
    GW = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    try:
        pub = GW.public_key().public_bytes_raw().hex()
        b["gateway"]["public_key"] = pub
        b["blocks"][0]["header"]["key"] = pub
        return resign(b)
    finally:
        GW = real


def _other_value(entry: dict[str, Any]) -> dict[str, Any]:
    e = copy.deepcopy(entry)
    e["record"]["value"] = 9999
    return e


def vectors() -> dict[str, str]:
    """file name -> file text, deterministic (Ed25519 signatures are)."""
    out: dict[str, str] = {}
    for name, desc, make, keys, result, steps in CASES:
        doc = {"description": desc, "bundle": make(), "keys": keys,
               "want": {"result": result, "failing_steps": steps}}
        if name.startswith("nesting-"):  # compact text: indented, 900 levels take 400 KB
            doc["bundle_text"] = json.dumps(doc.pop("bundle"))
        out[f"{name}.json"] = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    text_steps = {"number-1e400": [4]}
    for name, desc, make_text, keys, result in TEXT_CASES:
        doc = {"description": desc, "bundle_text": make_text(), "keys": keys,
               "want": {"result": result, "failing_steps": text_steps.get(name, [])}}
        out[f"{name}.json"] = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    return out


# -- random mutants: the same deterministic corpus for every verifier --------------------------

ODD_VALUES: list[Any] = [2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 64, -(2 ** 64), 10 ** 30, 0, -1, 1.0, 1.5, True,
                         False, None, "", "x", "0" * 64, "00" * 64, [], {}, [[[]]], {"a": {"b": {}}}, [0] * 5]


def _paths(v: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, path + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:3]):
            out += _paths(x, path + (i,))
    return out


def _at(v: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        v = v[k]
    return v


def mutant(seed: int) -> tuple[str, dict[str, str]]:
    """Bundle text and pins for mutant ``seed``: 1-3 random edits (odd values, duplicated or
    dropped members and entries, deep nesting), then, half the time, re-signed with the
    published keys so the mutant reaches the later steps."""
    import random

    rng = random.Random(seed)
    b: Any = route_bundle() if seed % 5 == 0 else example()
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(b) if p]
        path = rng.choice(paths)
        parent, key = _at(b, path[:-1]), path[-1]
        op = rng.random()
        if op < 0.6:
            parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif op < 0.7:
            parent[key] = nest(rng.choice([2, 50, 300]))
        elif op < 0.8 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.9 and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))  # an entry listed twice
        else:
            parent[key] = str(parent[key])[:70] if not isinstance(parent[key], str) else parent[key].upper()
    if rng.random() < 0.5:
        with contextlib.suppress(Exception):  # the mutant broke what re-signing needs: use it unsigned
            resign(b, anchor_time=rng.choice([None, None, MAX_SAFE, -MAX_SAFE, T_MAX, T_MIN - 1]))
    pins = {} if rng.random() < 0.25 else dict(PINNED)
    text = json.dumps(b, sort_keys=True)
    if rng.random() < 0.1 and text.endswith("}"):  # what json.dumps cannot write: §9.1's unreadable cases
        extra = rng.choice(["[" * 901 + "]" * 901, "[" * 899 + "]" * 899, "9" * 4301, "-" + "9" * 4300, "NaN",
                            '1, "extra": 2', "1e999"])
        text = text[:-1] + ', "extra": ' + extra + "}"
    return text, pins


def load_all() -> list[tuple[str, dict[str, Any]]]:
    """Every vector in the folder, parsed (a vector file is plain JSON; its bundle_text is not)."""
    return [(p.stem, json.loads(p.read_text())) for p in sorted(OUT.glob("*.json"))]


def bundle_text(vec: dict[str, Any]) -> str:
    return vec["bundle_text"] if "bundle_text" in vec else json.dumps(vec["bundle"], indent=1, sort_keys=True)


def main(argv: list[str]) -> int:
    want = vectors()
    if "--check" in argv:
        have = {p.name: p.read_text() for p in OUT.glob("*.json")}
        bad = sorted(n for n in set(want) | set(have) if want.get(n) != have.get(n))
        for n in bad:
            print(f"tests/vectors/bundles/{n}: differs from what bundle_vectors.py makes", file=sys.stderr)
        return 1 if bad else 0
    OUT.mkdir(exist_ok=True)
    for p in OUT.glob("*.json"):
        if p.name not in want:
            p.unlink()
    for n, text in want.items():
        (OUT / n).write_text(text)
    print(f"wrote {len(want)} vectors to {OUT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
