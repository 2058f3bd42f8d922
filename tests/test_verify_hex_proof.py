"""verify's one-shot proof decoding refuses every spelling the per-hash check refuses."""

from __future__ import annotations

import pytest

from ledger_client.verify import _hex32, _hex32_list

GOOD = ["ab" * 32, "0123456789abcdef" * 4]


def test_good_proof_decodes_like_hex32():
    assert _hex32_list(GOOD, "proof hash") == [_hex32(v, "proof hash") for v in GOOD]
    assert _hex32_list([], "proof hash") == []


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31 + "a ", " " + "ab" * 31 + "a", "ab" * 31, "ab" * 33,
                                 "gg" * 32, None, 7, "ab" * 31 + "\u0661\u0662"])
def test_bad_element_is_named(bad):
    with pytest.raises(ValueError, match="proof hash .* is not 64 lowercase hex characters"):
        _hex32_list([GOOD[0], bad, GOOD[1]], "proof hash")
