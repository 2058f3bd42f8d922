"""RFC 9162 §2.1 Merkle trees: leaf/node hashing, roots, inclusion and consistency proofs.

Pure functions over 32-byte SHA-256 hashes, named as verbs after transparency-dev/merkle.
Roots are built level by level with the odd last node promoted, which gives exactly the
RFC's recursive split (k = largest power of two < n) in O(n) hashes and no recursion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from .errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves (already hashed with :func:`hash_leaf`)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index``, bottom-up, as RFC 9162 §2.1.3.1 PATH."""
    if not 0 <= index < len(leaf_hashes):
        raise ProofError(f"leaf index {index} out of range for tree size {len(leaf_hashes)}")
    return inclusion_proofs(leaf_hashes)[index]


def inclusion_proofs(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Audit paths for every leaf at once, in O(n log n) total; export uses this per block."""
    n = len(leaf_hashes)
    proofs: list[list[bytes]] = [[] for _ in range(n)]
    level = list(leaf_hashes)
    span = 1  # node j of the current level covers leaves [j*span, (j+1)*span)
    while len(level) > 1:
        for j in range(len(level)):
            sib = j ^ 1
            if sib < len(level):
                first = j * span
                for leaf in range(first, min(first + span, n)):
                    proofs[leaf].append(level[sib])
        nxt = [hash_children(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        span *= 2
    return proofs


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, want {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes],
                              memo: dict[bytes, bytes] | None = None) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` leads to from ``leaf_hash``.

    ``memo`` (node input → SHA-256) lets a verifier checking many records of one block hash
    each shared upper node once: the key is the full hash input, so every proof element still
    enters the computation and a flipped one misses the memo and changes the root.
    """
    if size <= 0 or not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            _check_hash(f"proof[{i}]", p)
    sha = hashlib.sha256  # hash_children inlined: this loop runs ~log2(n) times per verified record
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError(f"wrong proof size {len(proof)}: too long for index {index} in size {size}")
        if fn & 1 or fn == sn:
            node = b"\x01" + p + r
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            node = b"\x01" + r + p
        if memo is None:
            r = sha(node).digest()
        else:
            known = memo.get(node)
            if known is None:
                known = memo[node] = sha(node).digest()
            r = known
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"wrong proof size {len(proof)}: too short for index {index} in size {size}")
    return r


def verify_inclusion(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root_hash: bytes,
                     memo: dict[bytes, bytes] | None = None) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``leaf_hash`` at ``index`` under ``root_hash``."""
    _check_hash("root", root_hash)
    got = root_from_inclusion_proof(index, size, leaf_hash, proof, memo)
    if got != root_hash:
        raise ProofError(f"calculated root {got.hex()} does not match expected root {root_hash.hex()}")


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root(leaves[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(size1, D[size2]) for the first ``size1`` leaves."""
    if not 0 < size1 <= len(leaf_hashes):
        raise ProofError(f"size1 {size1} out of range for tree size {len(leaf_hashes)}")
    return _subproof(size1, leaf_hashes, True)


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """RFC 9162 §2.1.4.2; a proof from the empty tree is refused as meaningless."""
    if size1 <= 0:
        raise ProofError(f"size1 {size1}: a proof from an empty tree proves nothing")
    if size2 < size1:
        raise ProofError(f"size2 {size2} < size1 {size1}")
    if size1 == size2:  # as transparency-dev: equal trees need equal roots and nothing else
        if proof:
            raise ProofError(f"wrong proof size {len(proof)}, want 0 for equal sizes")
        if root1 != root2:
            raise ProofError(f"roots differ for equal sizes: {root1.hex()} != {root2.hex()}")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p)
    if not proof:
        raise ProofError("empty proof for different sizes")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"wrong proof size {len(proof)}: too long")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"wrong proof size {len(proof)}: too short")
    if fr != root1:
        raise ProofError(f"calculated root1 {fr.hex()} does not match {root1.hex()}")
    if sr != root2:
        raise ProofError(f"calculated root2 {sr.hex()} does not match {root2.hex()}")
