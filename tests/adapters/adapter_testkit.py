"""Helpers shared by the adapter tests: fixture loading and observation matching."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from gateway.core.observation import Observation

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    with open(FIXTURES / name, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def samples(name: str) -> list[dict[str, Any]]:
    return list(load(name)["samples"])


def raw_bytes(text: str) -> bytes:
    """Vector text → bytes; lone surrogates \\udcXX stand for the raw byte 0xXX."""
    return text.encode("utf-8", "surrogateescape")


def assert_json_safe(value: Any, path: str = "attrs") -> None:
    """Only JSON types, and never a float (or a Decimal, which JSON cannot carry)."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: key {k!r} is not a string"
            assert_json_safe(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_json_safe(v, f"{path}[{i}]")
    else:
        assert value is None or isinstance(value, (str, int, bool)), (
            f"{path} is {type(value).__name__} {value!r}"
        )
        assert not isinstance(value, (float, Decimal))


def assert_observation_ok(obs: Any) -> None:
    assert isinstance(obs, Observation)
    assert isinstance(obs.sensor, str) and obs.sensor
    assert obs.value is None or (isinstance(obs.value, int) and not isinstance(obs.value, bool))
    assert obs.sensor_time_ms is None or isinstance(obs.sensor_time_ms, int)
    assert_json_safe(obs.attrs)


def assert_matches(observations: list[Observation], want: list[dict[str, Any]]) -> None:
    assert len(observations) == len(want), f"got {observations}, want {want}"
    for obs, w in zip(observations, want):
        assert_observation_ok(obs)
        for key in ("sensor", "kind", "value", "unit"):
            assert getattr(obs, key) == w[key], f"{key}: got {getattr(obs, key)!r}, want {w[key]!r}"
        if "sensor_time_ms" in w:
            assert obs.sensor_time_ms == w["sensor_time_ms"]
        for k, v in w.get("attrs", {}).items():
            assert obs.attrs.get(k) == v, f"attrs[{k}]: got {obs.attrs.get(k)!r}, want {v!r}"
        for k in w.get("attrs_has", []):
            assert k in obs.attrs, f"attrs has no {k!r}: {obs.attrs}"
