"""[[operators]] and [custody] parsing: strict, and every error names its key."""

from __future__ import annotations

import tomllib

import pytest

from firmware_sim.waste_route import waste_route
from gateway.core.errors import ConfigError
from gateway.rules.custody.operators import ROLE_STAGES, parse_operators
from gateway.rules.custody.settings import DEFAULT_CODES, ReconcileConfig, parse_custody

TOML = """
[[operators]]
badge = "04:A2:3B:1C"
name = "Ana Ruiz"
org = "St. Mary Hospital"
role = "generator"

[[operators]]
badge = "8F3A2B1C"
name = "Chen Li"
org = "Clearwater"
role = "facility"
stages = ["received"]

[custody]
weight_timeout_s = 45

[custody.categories]
"TS-CAT-SHARPS" = "sharps"
"TS-CAT-CYTO" = "cytotoxic"

[[custody.stations]]
id = "plant-intake"
stage = "received"
location = "Clearwater intake"
sensors = ["badge:r", "epc:r", "mtsics:w"]
session_idle_s = 120

[[custody.stations]]
id = "autoclave"
stage = "treated"
location = "Clearwater autoclave"
sensors = ["badge:a", "mtsics:a"]
treatment = "autoclave"

[custody.reconcile]
loss_abs_g = 100
loss_pct = 5
combine = "either"
missing_after_s = 3600
"""


def test_full_example_parses() -> None:
    raw = tomllib.loads(TOML)
    ops = parse_operators(raw)
    assert set(ops) == {"04A23B1C", "8F3A2B1C"}
    assert ops["04A23B1C"].stages == ("handed_over",) and ops["8F3A2B1C"].stages == ("received",)
    cfg = parse_custody(raw["custody"])
    assert cfg.categories == {"TS-CAT-SHARPS": "sharps", "TS-CAT-CYTO": "cytotoxic"}
    a, b = cfg.stations
    assert (a.weight_timeout_s, a.session_idle_s, a.require_category) == (45, 120, False)
    assert (b.stage, b.treatment, b.session_idle_s) == ("treated", "autoclave", 600)
    assert cfg.reconcile == ReconcileConfig(100, 5, "either", 3600, True)


def test_defaults() -> None:
    cfg = parse_custody(None)
    assert cfg.categories == DEFAULT_CODES and cfg.categories["TS-CAT-SHARPS"] == "sharps"
    assert set(DEFAULT_CODES.values()) == {"infectious", "sharps", "pathological", "pharmaceutical", "chemical"}
    st = parse_custody({"stations": [{"id": "h", "stage": "handed_over", "location": "x", "sensors": ["a"]}]})
    assert st.stations[0].require_category is True  # the generator declares the category
    assert parse_custody(waste_route().custody_table()).stations[2].stage == "received"


@pytest.mark.parametrize(("ops", "msg"), [
    ([{"badge": "04A23B1C", "name": "A", "org": "O"}], "operators[0].role: is required"),
    ([{"badge": "04A23B1C", "name": "A", "org": "O", "role": "driver"}], "operators[0].role: expected one of"),
    ([{"badge": "XYZ", "name": "A", "org": "O", "role": "generator"}], "operators[0].badge: expected a 4, 5, 7"),
    ([{"badge": "04A23B1C", "name": "", "org": "O", "role": "generator"}], "operators[0].name: expected a non-empty"),
    ([{"badge": "04A23B1C", "name": "A", "org": "O", "role": "transporter", "stages": ["received"]}],
     "operators[0].stages[0]: a transporter may record only loaded"),
    ([{"badge": "04A23B1C", "name": "A", "org": "O", "role": "generator", "stagez": []}],
     "operators[0].stagez: unknown key; did you mean 'stages'?"),
    ([{"badge": "04A23B1C", "name": "A", "org": "O", "role": "generator"},
      {"badge": "04:a2:3b:1c", "name": "B", "org": "O", "role": "generator"}],
     "operators[1].badge: duplicate badge 04A23B1C (also operators[0].badge)"),
    ("nope", "operators: expected a list of tables"),
])
def test_operator_errors_name_the_key(ops: object, msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_operators(ops)
    assert msg in f"{e.value.key}: {e.value.problem}"


@pytest.mark.parametrize(("raw", "msg"), [
    ({"weight_timeout": 3}, "custody.weight_timeout: unknown key; did you mean 'weight_timeout_s'?"),
    ({"weight_timeout_s": 0}, "custody.weight_timeout_s: must be > 0"),
    ({"session_idle_s": True}, "custody.session_idle_s: expected int"),
    ({"stations": [{"id": "a", "stage": "shipped", "location": "x", "sensors": ["s"]}]},
     "custody.stations[0].stage: expected one of handed_over, loaded, received, treated"),
    ({"stations": [{"id": "a", "stage": "loaded", "location": "x", "sensors": []}]},
     "custody.stations[0].sensors: must name at least one sensor"),
    ({"stations": [{"id": "a", "stage": "loaded", "location": "x"}]}, "custody.stations[0].sensors: is required"),
    ({"stations": [{"id": "a", "stage": "loaded", "location": "x", "sensors": ["s"]},
                   {"id": "a", "stage": "loaded", "location": "y", "sensors": ["t"]}]},
     "custody.stations[1].id: duplicate station 'a'"),
    ({"categories": {"TS-ROUTE-X": "sharps"}}, "custody.categories.TS-ROUTE-X: clashes"),
    ({"reconcile": {"combine": "and"}}, "custody.reconcile.combine: expected one of both, either, abs, pct"),
    ({"reconcile": {"loss_pct": 150}}, "custody.reconcile.loss_pct: must be 0..100"),
    ({"reconcile": {"missing_after": 1}}, "custody.reconcile.missing_after: unknown key"),
])
def test_custody_errors_name_the_key(raw: dict[str, object], msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_custody(raw)
    assert msg in f"{e.value.key}: {e.value.problem}"


def test_role_stage_table_is_the_manifest_order() -> None:
    assert ROLE_STAGES == {"generator": ("handed_over",), "transporter": ("loaded",),
                           "facility": ("received", "treated")}


@pytest.mark.parametrize(("combine", "pickup", "allowed"), [
    ("both", 1000, 200), ("both", 9500, 950), ("both", 2000, 200), ("both", 2001, 200), ("both", 2010, 201),
    ("either", 1000, 100), ("either", 9500, 200), ("abs", 9500, 200), ("pct", 1000, 100), ("pct", 999, 99),
])
def test_tolerance_is_exact_in_integers(combine: str, pickup: int, allowed: int) -> None:
    assert ReconcileConfig(combine=combine).allowed_loss_g(pickup) == allowed
