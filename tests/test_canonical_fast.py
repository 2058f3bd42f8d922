"""canonical()'s C-encoder fast path against the rfc8785 package, byte for byte.

These bytes are signed: a fast path that disagreed with RFC 8785 on one escape or one key
order would make records that every other verifier rejects. The property tests draw nested
objects with the strings most likely to differ (control characters, U+007F, U+2028/2029,
quotes, backslashes, non-BMP characters, E000-FFFF characters that sort differently in
UTF-16) in values and keys.
"""

from __future__ import annotations

import enum

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.testing.hypo import examples
from ledger_client import canonical as canon
from ledger_client.canonical import MAX_SAFE_INT, canonical
from ledger_client.errors import EncodingError

NASTY = ["\x00", "\x01", "\x08", "\t", "\n", "\x0b", "\x0c", "\r", "\x1f", " ", '"', "\\", "/", "\x7f",
         "\x80", "\u2028", "\u2029", "\ud7ff", "\ue000", "\uffff", "\ufeff", "é", "\U0001f600",
         "\U00010000", "\U0010ffff", "a", "Z", "0"]

chars = st.one_of(st.sampled_from(NASTY), st.characters(blacklist_categories=("Cs",)))
text = st.text(chars, max_size=12)
ints = st.one_of(st.integers(-MAX_SAFE_INT, MAX_SAFE_INT),
                 st.sampled_from([0, -1, MAX_SAFE_INT, -MAX_SAFE_INT, 2**31, -(2**31)]))
scalars = st.one_of(st.none(), st.booleans(), ints, text)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                       st.dictionaries(text, inner, max_size=6)),
                      max_leaves=30)
PROPS = settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(values)
def test_canonical_equals_rfc8785(value):
    assert canonical(value) == rfc8785.dumps(value)


@PROPS
@given(st.dictionaries(text, values, max_size=8))
def test_fast_path_bytes_equal_rfc8785_whenever_taken(obj):
    """The claim behind the fast path, checked directly on the C encoder's output."""
    if canon._fast_ok(obj):
        assert canon._fast(obj).encode("utf-8") == rfc8785.dumps(obj)


def test_records_take_the_fast_path():
    rec = {"v": 1, "gateway": "gw-1", "seq": 7, "time_ms": 1_700_000_000_000, "clock_synced": True,
           "type": "reading", "sensor": "probe-1", "kind": "temperature", "value": -20125, "unit": "mC",
           "source": {"adapter": "traceseal", "topic": "t/probe-1", "ctr": 3, "msg_sha256": "ab" * 32},
           "attrs": {"note": "ä\n\"q\"\u2028"}}
    assert canon._fast_ok(rec)
    assert canonical(rec) == rfc8785.dumps(rec)


def test_utf16_key_order_goes_to_rfc8785():
    """U+E000 sorts after U+1F600 in UTF-16 (surrogates are D800-DFFF) but before it by code point."""
    obj = {"\ue000": 1, "\U0001f600": 2}
    assert not canon._fast_ok(obj)
    assert canon._fast(obj).encode("utf-8") != rfc8785.dumps(obj)  # why the guard exists
    assert canonical(obj) == rfc8785.dumps(obj) == '{"\U0001f600":2,"\ue000":1}'.encode()


def test_control_characters_escape_as_lowercase_u00xx():
    assert canonical({"k\x1f": "\x00\x0b\x7f\u2028"}) == b'{"k\\u001f":"\\u0000\\u000b\x7f\xe2\x80\xa8"}'


@pytest.mark.parametrize("bad", [
    {"a": 1.5}, {"a": [1, 2.0]}, {"a": 2**53}, {"a": -(2**53)}, {"a": float("nan")}, {1: 2},
    {"a": b"x"}, {"a": "\ud800"}, {"\udfff": 1}, {"a": {"b": set()}},
])
def test_refused_values_still_raise(bad):
    with pytest.raises(EncodingError):
        canonical(bad)


def test_subclasses_use_rfc8785():
    class Level(enum.IntEnum):
        HIGH = 2

    obj = {"level": Level.HIGH}
    assert not canon._fast_ok(obj)
    assert canonical(obj) == rfc8785.dumps(obj) == b'{"level":2}'


def test_float_error_names_the_path():
    with pytest.raises(EncodingError, match=r"\$\.a\[1\]: float"):
        canonical({"a": [1, 2.5]})
