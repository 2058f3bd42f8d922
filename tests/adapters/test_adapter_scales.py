"""MT-SICS and A&D-style scale adapters against every sample in scale_lines.json."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from adapter_testkit import assert_observation_ok, samples

from gateway.adapters import ad_scale, mtsics
from gateway.core.errors import ParseError

SCALE = samples("scale_lines.json")
PARSERS = {
    "mt_sics": mtsics.parse,
    "and_standard_balance": ad_scale.parse,
    "and_indicator_like": ad_scale.parse,
}
GRAMS = {"g": 1, "kg": 1000}


def grams(value: Any, unit: str) -> int:
    return round(Fraction(Decimal(str(value))) * GRAMS[unit])


@pytest.mark.parametrize("sample", SCALE, ids=[s["id"] for s in SCALE])
def test_every_scale_sample(sample: dict[str, Any]) -> None:
    parse = PARSERS[sample["protocol"]]
    line = sample["line"].encode("ascii") + b"\r\n"  # 'line' excludes the terminator
    exp = sample["expected"]
    status = exp.get("status")
    if status in ("stable", "executed"):
        (obs,) = parse("port", line)
        assert_observation_ok(obs)
        value = exp.get("value", exp.get("tare_value"))
        assert (obs.value, obs.unit, obs.attrs["raw_unit"]) == (
            grams(value, exp["unit"]),
            "g",
            exp["unit"],
        )
        assert obs.attrs["stable"] is True
        assert obs.kind == ("tare" if exp.get("command") == "tare" else "weight")
        assert obs.attrs.get("mode") == exp.get("mode")
        assert obs.attrs.get("comparator") == exp.get("comparator")
    else:
        with pytest.raises(ParseError) as info:
            parse("port", line)
        err = info.value
        if status == "underload":
            assert (err.code, err.field) == ("underload", "status")
        elif status == "overload":
            assert err.code == "overload"
        elif status == "error":
            assert err.code == f"{exp['error']}-error"
        else:  # InstrumentKit's non-standard "S A": refused, not taken as stable
            assert sample["id"] == "mtsics_fixture_quirk_S_A"
            assert (err.code, err.field) == ("bad-status", "status")


def test_mtsics_stable_and_dynamic_are_labelled_not_dropped() -> None:
    (stable,) = mtsics.parse("s", b"S S      100.00 g\r\n")
    (dynamic,) = mtsics.parse("s", b"S D      100.07 g\r\n")
    assert (stable.value, stable.attrs["stable"]) == (100, True)
    assert (dynamic.value, dynamic.attrs["stable"]) == (100, False)


@pytest.mark.parametrize(
    "line,want",
    [
        ("S S     12.3456 kg", 12346),  # 12345.6 g
        ("S S        0.5 g", 0),  # tie → even
        ("S S        1.5 g", 2),  # tie → even
        ("S S       16 oz", 454),  # 453.59237 g
        ("S S      2.20462 lb", 1000),
        ("SU S     5.000 ct", 1),  # carats: 1.000 g
    ],
)
def test_mtsics_unit_conversion_is_exact(line: str, want: int) -> None:
    (obs,) = mtsics.parse("s", line.encode())
    assert obs.value == want


def test_ad_unstable_then_stable_sequence_from_a_settling_scale() -> None:
    lines = [b"US,+0000.617 kg", b"US,+0001.233 kg", b"ST,+0001.234 kg"]
    got = [(o.value, o.attrs["stable"]) for line in lines for o in ad_scale.parse("bal", line)]
    assert got == [(617, False), (1233, False), (1234, True)]


@pytest.mark.parametrize(
    "line,code",
    [
        ("OL,+999999.9  g", "overload"),
        ("OL,GS,+9999999kg", "overload"),
        ("OL,GS,-9999999kg", "underload"),
        ("LO,NT,        kg", "out-of-range"),
    ],
)
def test_ad_out_of_range_is_never_a_weight(line: str, code: str) -> None:
    with pytest.raises(ParseError) as info:
        ad_scale.parse("bal", line.encode())
    assert info.value.code == code
