"""The verifier's per-block memo of node hashes changes speed only: a warm memo never lets a
flipped proof element, leaf or index through."""

from __future__ import annotations

import pytest

from ledger_client.errors import ProofError
from ledger_client.merkle import (
    hash_leaf,
    inclusion_proofs,
    root,
    root_from_inclusion_proof,
    verify_inclusion,
)


@pytest.mark.parametrize("size", [1, 2, 7, 37, 64])
def test_memo_gives_the_same_roots_and_still_refuses_every_flipped_element(size: int) -> None:
    leaves = [hash_leaf(f"record {i}".encode()) for i in range(size)]
    top, proofs = root(leaves), inclusion_proofs(leaves)
    memo: dict[bytes, bytes] = {}
    for i in range(size):  # warm: every upper node of the tree is in the memo
        verify_inclusion(i, size, leaves[i], proofs[i], top, memo)
        assert root_from_inclusion_proof(i, size, leaves[i], proofs[i], memo) == root_from_inclusion_proof(
            i, size, leaves[i], proofs[i])
    assert len(memo) == size - 1  # one entry per internal node: each hashed once
    for i in range(size):
        for k in range(len(proofs[i])):
            for bit in (0, 7 * 8 + 3, 31 * 8 + 7):
                bad = [bytearray(p) for p in proofs[i]]
                bad[k][bit // 8] ^= 1 << (bit % 8)
                with pytest.raises(ProofError, match="does not match expected root"):
                    verify_inclusion(i, size, leaves[i], [bytes(p) for p in bad], top, memo)
        other = leaves[(i + 1) % size]
        if size > 1:
            with pytest.raises(ProofError):
                verify_inclusion(i, size, other, proofs[i], top, memo)  # another leaf at this index
            with pytest.raises(ProofError):
                verify_inclusion((i + 1) % size, size, leaves[i], proofs[i], top, memo)  # wrong index
