"""[[units]] parsing: profile defaults, overrides, and errors that name the key."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.core.errors import ConfigError
from gateway.rules.units import RuleSettings, parse_units


def fridge(**kw: Any) -> dict[str, Any]:
    return {"id": "fridge-1", "profile": "fridge", "probes": ["probe-1"], **kw}


def test_profiles_carry_cdc_ranges_and_defaults() -> None:
    units = parse_units(
        [
            fridge(door="door-1"),
            {"id": "freezer-1", "profile": "freezer", "probes": ["probe-2", "probe-3"]},
            {"id": "ult-1", "profile": "ultra-cold", "probes": ["probe-4"]},
            {
                "id": "box",
                "profile": "custom",
                "probes": ["probe-5"],
                "low_mc": 15_000,
                "high_mc": 25_000,
            },
        ]
    )
    f = units["fridge-1"]
    assert (f.low_mc, f.high_mc, f.freeze_mc, f.door) == (2_000, 8_000, -500, "door-1")
    assert f.settings == RuleSettings()
    assert f.settings.high_delay_s == 600 and f.settings.freeze_delay_s == 3_600
    z = units["freezer-1"]
    assert (z.low_mc, z.high_mc, z.freeze_mc, z.probes) == (
        -50_000,
        -15_000,
        None,
        ("probe-2", "probe-3"),
    )
    assert (units["ult-1"].low_mc, units["ult-1"].high_mc) == (-80_000, -60_000)
    assert (units["box"].low_mc, units["box"].high_mc, units["box"].freeze_mc) == (
        15_000,
        25_000,
        None,
    )


def test_overrides_and_scanners() -> None:
    u = parse_units(
        [
            fridge(
                high_delay_s=0,
                cumulative_window_s=36_000,
                cumulative_limit_s=36_000,
                silence_s=900,
                door_open_s=120,
                escalate_s=60,
                high_mc=8_500,
                scanners=["gs1:scanner-1"],
                scanner_in="gs1:in",
                scanner_out="gs1:out",
            )
        ]
    )["fridge-1"]
    s = u.settings
    assert (
        s.high_delay_s,
        s.cumulative_window_s,
        s.cumulative_limit_s,
        s.silence_s,
        s.door_open_s,
        s.escalate_s,
        s.low_delay_s,
    ) == (0, 36_000, 36_000, 900, 120, 60, 600)
    assert u.high_mc == 8_500 and u.low_mc == 2_000
    assert (u.scanners, u.scanner_in, u.scanner_out) == (("gs1:scanner-1",), "gs1:in", "gs1:out")


@pytest.mark.parametrize(
    "raw,message",
    [
        (
            [fridge(profile="fridgee")],
            r"^units\[0\]\.profile: unknown profile 'fridgee'; did you mean 'fridge'\?$",
        ),
        (
            [fridge(profile="walk-in")],
            r"^units\[0\]\.profile: unknown profile 'walk-in'; choose one of custom, ",
        ),
        (
            [fridge(high_delay=60)],
            r"^units\[0\]\.high_delay: unknown key; did you mean 'high_delay_s'\?$",
        ),
        ([fridge(), fridge()], r"^units\[1\]\.id: duplicate unit id 'fridge-1'$"),
        ([fridge(id="")], r"^units\[0\]\.id: required"),
        ([fridge(probes=[])], r"^units\[0\]\.probes: required, a non-empty list"),
        (
            [fridge(probes=["p", 3])],
            r"^units\[0\]\.probes\[1\]: expected a non-empty sensor id string, got 3$",
        ),
        (
            [fridge(), fridge(id="fridge-2")],
            r"^units\[1\]\.probes\[0\]: sensor 'probe-1' already belongs to unit 'fridge-1'$",
        ),
        (
            [fridge(door="probe-1")],
            r"^units\[0\]\.door: sensor 'probe-1' already belongs to unit 'fridge-1'$",
        ),
        ([fridge(silence_s=0)], r"^units\[0\]\.silence_s: must be >= 1, got 0$"),
        ([fridge(high_delay_s=-1)], r"^units\[0\]\.high_delay_s: must be >= 0, got -1$"),
        ([fridge(escalate_s=True)], r"^units\[0\]\.escalate_s: expected an integer, got True$"),
        ([fridge(high_mc=8.0)], r"^units\[0\]\.high_mc: expected an integer, got 8\.0$"),
        ([fridge(low_mc=9_000)], r"^units\[0\]\.low_mc: 9000 must be below high_mc 8000$"),
        (
            [fridge(cumulative_limit_s=90_000)],
            r"^units\[0\]\.cumulative_limit_s: 90000 exceeds cumulative_window_s 86400$",
        ),
        (
            [{"id": "x", "profile": "custom", "probes": ["p"], "high_mc": 1}],
            r"^units\[0\]\.low_mc: required for profile 'custom'$",
        ),
        ([fridge(scanners="gs1:a")], r"^units\[0\]\.scanners: expected a list"),
        (["fridge"], r"^units\[0\]: expected a table, got str$"),
        ({"id": "fridge-1"}, r"^units: expected a list of \[\[units\]\] tables, got dict$"),
    ],
)
def test_errors_name_the_key(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:  # the key travels apart from the problem
        parse_units(raw)
    assert re.search(message, f"{e.value.key}: {e.value.problem}")
