"""ledger_client.merkle against the published RFC 6962/9162 vectors, broken probes included."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ledger_client import merkle
from ledger_client.errors import ProofError

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "rfc6962_vectors.json"
if not VECTORS.exists():  # CI clones next to shared/; a copy ships for standalone checkouts
    VECTORS = Path(__file__).parent / "vectors" / "rfc6962_vectors.json"
V = json.loads(VECTORS.read_text())
LEAVES = [bytes.fromhex(h) for h in V["leaf_inputs"]["hex"]]
LEAF_HASHES = [merkle.hash_leaf(x) for x in LEAVES]
ROOTS = {int(k): bytes.fromhex(v) for k, v in V["roots"]["by_tree_size"].items()}


def b64(x: str | None) -> bytes:
    return base64.b64decode(x) if x else b""


@pytest.mark.parametrize("size", sorted(ROOTS))
def test_roots(size: int) -> None:
    assert merkle.root(LEAF_HASHES[:size]) == ROOTS[size]


def test_node_hash_levels() -> None:
    levels = V["node_hashes"]["levels"]
    for lvl, hashes in enumerate(levels):
        for i, h in enumerate(hashes):
            span = 2**lvl
            assert merkle.root(LEAF_HASHES[i * span:(i + 1) * span]).hex() == h, (lvl, i)


@pytest.mark.parametrize("vec", V["inclusion_proofs"]["vectors"], ids=lambda v: f"{v['leaf_index']}-{v['tree_size']}")
def test_inclusion_vectors(vec: dict) -> None:
    i, n = vec["leaf_index"], vec["tree_size"]
    proof = [bytes.fromhex(p) for p in vec["proof"]]
    assert merkle.inclusion_proof(LEAF_HASHES[:n], i) == proof
    merkle.verify_inclusion(i, n, LEAF_HASHES[i], proof, ROOTS[n])


@pytest.mark.parametrize("vec", V["consistency_proofs"]["vectors"], ids=lambda v: f"{v['size1']}-{v['size2']}")
def test_consistency_vectors(vec: dict) -> None:
    m, n = vec["size1"], vec["size2"]
    proof = [bytes.fromhex(p) for p in vec["proof"]]
    assert merkle.consistency_proof(LEAF_HASHES[:n], m) == proof
    merkle.verify_consistency(m, n, proof, ROOTS[m], ROOTS[n])


@pytest.mark.parametrize("p", V["golden_probes"]["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probes(p: dict) -> None:
    proof = [b64(x) for x in (p["proof"] or [])]
    args = (p["leafIdx"], p["treeSize"], b64(p["leafHash"]), proof, b64(p["root"]))
    if p["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("p", V["golden_probes"]["consistency"], ids=lambda p: p["file"])
def test_consistency_probes(p: dict) -> None:
    proof = [b64(x) for x in (p["proof"] or [])]
    args = (p["size1"], p["size2"], proof, b64(p["root1"]), b64(p["root2"]))
    if p["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_all_proofs_match_single_proofs_for_every_size() -> None:
    for n in range(1, 40):
        leaves = [merkle.hash_leaf(bytes([i])) for i in range(n)]
        r = merkle.root(leaves)
        allp = merkle.inclusion_proofs(leaves)
        for i in range(n):
            merkle.verify_inclusion(i, n, leaves[i], allp[i], r)
            if n > 1:
                bad = list(allp[i])
                if bad:
                    bad[0] = bytes(32)
                    with pytest.raises(ProofError, match="does not match"):
                        merkle.verify_inclusion(i, n, leaves[i], bad, r)


def test_wrong_proof_size_is_named() -> None:
    leaves = LEAF_HASHES[:8]
    proof = merkle.inclusion_proof(leaves, 3)
    with pytest.raises(ProofError, match="wrong proof size 2: too short"):
        merkle.verify_inclusion(3, 8, leaves[3], proof[:2], ROOTS[8])
    with pytest.raises(ProofError, match="wrong proof size 4: too long"):
        merkle.verify_inclusion(3, 8, leaves[3], proof + [bytes(32)], ROOTS[8])
