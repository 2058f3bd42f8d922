"""The change filter keeps what a person did: placed loads and distinct scans, not repeats."""

from __future__ import annotations

from gateway.app.config import FilterConfig
from gateway.core.observation import Observation
from gateway.ingest.filters import ChangeFilter


def w(value: int, stable: bool = True, sensor: str = "mtsics:scale-1") -> Observation:
    return Observation(sensor, "weight", value, "g", "mtsics", attrs={"stable": stable})


def scan(gtin: str, sensor: str = "gs1:scanner-1") -> Observation:
    return Observation(sensor, "scan", None, "", "gs1", attrs={"gtin": gtin})


def test_weights() -> None:
    f = ChangeFilter(FilterConfig())
    seq = [w(0), w(3100, False), w(3275), w(3275), w(3275, False), w(3275), w(0), w(3275), w(3280),
           w(3275, sensor="mtsics:scale-2")]
    got = [f.keep(o, 0) for o in seq]
    assert got == ["dropped.empty-scale", "dropped.unstable-weight", None, "dropped.repeat-weight",
                   "dropped.unstable-weight", None, "dropped.empty-scale", None, None, None]


def test_repeat_weights_can_be_kept() -> None:
    f = ChangeFilter(FilterConfig(record_repeat_weights=True))
    assert [f.keep(w(5), 0), f.keep(w(5), 0)] == [None, None]


def test_duplicate_scans_within_window() -> None:
    f = ChangeFilter(FilterConfig(duplicate_scan_s=3))
    assert f.keep(scan("A"), 0) is None
    assert f.keep(scan("A"), 2_999) == "dropped.duplicate-read"
    assert f.keep(scan("B"), 3_000) is None          # another item
    assert f.keep(scan("A", "gs1:scanner-2"), 3_000) is None  # another reader
    assert f.keep(scan("A"), 6_000) is None          # a deliberate second scan, later
