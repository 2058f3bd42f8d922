"""The archive's verification rules are the verifier's: this module calls the pure checks of
``ledger_client.verify.checks`` (one owner per rule, issue 15) and maps their Problem codes
to the archive's stable rejection reasons in ONE table (docs/upstream.md §Archive-side
verification). The archive applies the union of its wire rules (lowercase hex, ``first_seq``
≥ 0, the rotation boundary) and the verifier's (every signed member present and typed,
``v`` = 1), so a validly signed item that ``traceseal verify`` would refuse is refused on
arrival, not discovered by an auditor later. The gateway's own output satisfies the union.

What needs the archive's state (``key_unknown_yet``: is the key perhaps introduced by a
rotation not received yet?) stays in the consumer; these functions only see one item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger_client.verify.checks import (
    Problem,
    check_header,
    check_hex_case,
    check_link,
    check_record,
    check_root,
    check_rotation_boundary,
    check_size,
)

# Problem code -> archive rejection reason. "key" and "signature" may become
# ``key_unknown_yet`` in the consumer (archive context, not a rule).
REASONS: dict[str, str] = {
    "header-field": "malformed",
    "record-field": "malformed",
    "version": "malformed",
    "size": "malformed",
    "first-seq-negative": "malformed",   # the archive's own rule (no shared check: verify has none)
    "hex-case": "malformed",             # root/prev; a sig in another spelling is "signature"
    "gateway": "gateway_mismatch",
    "key": "key_mismatch",
    "rotation-boundary": "bad_rotation",
    "signature": "bad_signature",
    "prev": "chain_mismatch",
    "first-seq": "chain_mismatch",
    "genesis-prev": "chain_mismatch",
    "genesis-first-seq": "chain_mismatch",
    "block-gap": "chain_gap",
    "root": "root_mismatch",
    "record-count": "root_mismatch",
}

# Which problem decides an item's reason when it breaks several rules: the archive's order
# before the shared checks (gateway, malformed, key, rotation, signature), so a rejection
# keeps the reason it always had. A missing or mistyped member is returned alone by the
# checks, so such a header is ``malformed`` whatever else is wrong with it.
_ORDER = ["gateway", "header-field", "record-field", "version", "hex-case", "size", "first-seq-negative",
          "key", "rotation-boundary", "signature"]


def first(problems: Sequence[Problem]) -> Problem | None:
    """The problem that names the rejection (``_ORDER``; link/root problems keep their order)."""
    if not problems:
        return None
    return min(problems, key=lambda p: _ORDER.index(p.code) if p.code in _ORDER else len(_ORDER))


def header_problem(h: dict[str, Any], sig: Any, data: bytes, *, gateway: str, key_hex: str, sig_key: Any,
                   rotations: Sequence[tuple[int, int, str, str]]) -> Problem | None:
    """One header against the key in force ``key_hex`` (already loaded as ``sig_key``): the
    verifier's step 3 (members, ``v``, key, gateway, signature), its size rule, the archive's
    wire rules (lowercase hex, ``first_seq`` ≥ 0, an exact key) and the rotation boundary."""
    probs = check_header(h, sig, gateway=gateway, key_hex=key_hex, sig_key=sig_key, data=data)
    if probs and probs[0].code == "header-field":
        return probs[0]
    probs += check_size(h) + check_rotation_boundary(h, rotations)
    for p in check_hex_case(h, sig):
        probs.append(p if str(p.want).startswith("64") else Problem(3, "signature", p.got, key_hex, p.detail))
    if h["first_seq"] < 0:
        probs.append(Problem(5, "first-seq-negative", h["first_seq"], 0, f"first_seq {h['first_seq']} is negative"))
    if h["key"] != key_hex and not any(p.code == "key" for p in probs):
        # the verifier lowercases (§9.3 step 3); the archive compares the text it stores
        probs.append(Problem(3, "key", h["key"], key_hex, "header key is not spelled as the key in force"))
    return first(probs)


def record_problem(rec: dict[str, Any], sig: Any, data: bytes, *, gateway: str, key_hex: str,
                   sig_key: Any) -> Problem | None:
    """One record under the key in force for its seq: the verifier's step 2."""
    return first(check_record(rec, sig, gateway=gateway, key_hex=key_hex, sig_key=sig_key, data=data))


def rotation_problems(header: dict[str, Any], seq: int, last_block: int) -> list[Problem]:
    """A rotation at ``seq`` closing ``last_block``, against a stored header (the block may
    have arrived before the rotation record): that block must end with it."""
    return check_rotation_boundary(header, [(seq, last_block, "", "")])


def link_problems(prev: dict[str, Any] | None, prev_hash: bytes | None, h: dict[str, Any]) -> list[Problem]:
    """Step 5 between a header and the stored one before it (None: block 0's genesis rule)."""
    return check_link(prev, prev_hash, h)


def root_problem(bodies: Sequence[bytes], header: dict[str, Any]) -> Problem | None:
    """Step 4 for a whole stored block: its records hash to the header's root."""
    probs = check_root(bodies, header)
    return probs[0] if probs else None
