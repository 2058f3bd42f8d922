"""Exact decimal → integer unit conversion, and the registry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.adapters import registry, units
from gateway.core.errors import ConfigError


@pytest.mark.parametrize(
    "text,want",
    [
        ("4.35", 4350),
        ("-16.38", -16380),
        ("-4.095", -4095),
        ("-20.125", -20125),
        ("0.0625", 62),
        ("0.0635", 64),
        ("-0.0005", 0),
        ("100", 100000),
    ],
)
def test_celsius_exact_then_half_even(text: str, want: int) -> None:
    assert units.celsius_to_mc(Decimal(text)) == want


@pytest.mark.parametrize("text,exact", [("-16.38", -16380), ("-4.095", -4095), ("-32.76", -32760)])
def test_the_float_path_is_the_bug_we_avoid(text: str, exact: int) -> None:
    assert int(float(text) * 1000) == exact + 1  # binary float: -16379.999… truncates to -16379
    assert units.celsius_to_mc(Decimal(text)) == exact


@pytest.mark.parametrize(
    "text,want",
    [
        ("32", 0),
        ("212", 100000),
        ("-40", -40000),
        ("70.3", 21278),
        ("39.2", 4000),
        ("32.0009", 0),
        ("32.0027", 2),
    ],
)
def test_fahrenheit(text: str, want: int) -> None:
    assert units.fahrenheit_to_mc(Decimal(text)) == want


@pytest.mark.parametrize(
    "value,unit,want",
    [
        ("1", "lb", 454),
        ("1", "oz", 28),
        ("1", "ozt", 31),
        ("5", "ct", 1),
        ("1.2345", "kg", 1234),
        ("1.2355", "kg", 1236),
        ("2500", "mg", 2),
        ("3500", "mg", 4),
        ("10", "GN", 1),
    ],
)
def test_mass(value: str, unit: str, want: int) -> None:
    assert units.mass_to_grams(Decimal(value), unit) == want


@pytest.mark.parametrize(
    "text", ["NaN", "1e5", "1_0", "", ".", "+", "1.2.3", "١٢", " 1 2", "Infinity"]
)
def test_parse_decimal_refuses_anything_but_plain_numerals(text: str) -> None:
    with pytest.raises(units.UnitError):
        units.parse_decimal(text)


def test_magnitude_limits_refuse_billion_digit_integers() -> None:
    with pytest.raises(units.UnitError) as info:
        units.celsius_to_mc(Decimal("1e999999999"))
    assert info.value.code == "out-of-range"
    with pytest.raises(units.UnitError):
        units.celsius_to_mc(Decimal("1e-999999999"))


def test_unknown_units() -> None:
    with pytest.raises(units.UnitError, match="tonne|'t'"):
        units.mass_to_grams(Decimal(1), "t")
    with pytest.raises(units.UnitError):
        units.temperature_to_mc(Decimal(1), "K")
    assert units.temperature_to_mc(Decimal(1), "°c") == 1000


def test_registry_names_every_adapter() -> None:
    assert set(registry.PARSERS) == {
        "traceseal",
        "tasmota",
        "zigbee2mqtt",
        "shelly",
        "mtsics",
        "ad_scale",
        "gs1",
        "epc",
        "badge",
        "ds18b20",
    }
    assert registry.get("gs1") is registry.PARSERS["gs1"]
    with pytest.raises(ConfigError, match="unknown adapter 'nope'"):
        registry.get("nope")
