"""Every vector in fixtures/vendor_examples.json and fixtures/derived_cases.json, by adapter.

Vendor examples are device output quoted in manuals, vendor docs, library fixtures and
field captures (each with its source); derived cases are our own edge cases. Both are
data so that a new capture is a JSON edit, not new test code.
"""

from __future__ import annotations

from typing import Any

import pytest
from adapter_testkit import assert_matches, load, raw_bytes

from gateway.adapters.registry import PARSERS
from gateway.core.errors import ParseError

VECTORS = [(f"vendor/{v['id']}", v) for v in load("vendor_examples.json")["vectors"]] + [
    (f"derived/{v['id']}", v) for v in load("derived_cases.json")["vectors"]
]


@pytest.mark.parametrize("vector", [v for _, v in VECTORS], ids=[i for i, _ in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    parse = PARSERS[vector["adapter"]]
    raw = raw_bytes(vector["raw"])
    if "want_error" in vector:
        want = vector["want_error"]
        with pytest.raises(ParseError) as info:
            parse(vector["topic"], raw)
        assert info.value.code == want["code"], str(info.value)
        assert info.value.adapter == vector["adapter"]
        if "field" in want:
            assert info.value.field == want["field"], str(info.value)
    else:
        assert_matches(parse(vector["topic"], raw), vector["want"])


def test_every_adapter_has_vectors() -> None:
    covered = {v["adapter"] for _, v in VECTORS}
    assert covered >= set(PARSERS) - {"traceseal"}


def test_vendor_examples_cite_a_source() -> None:
    for v in load("vendor_examples.json")["vectors"]:
        assert v["source"] and v["provenance"] in {
            "vendor_doc",
            "vendor_manual",
            "test_fixture",
            "field_capture",
        }
