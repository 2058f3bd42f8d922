"""``[custody]`` settings: command barcodes, stations, and the reconciliation tolerances.

Shape (TOML)::

    [custody]
    route_prefix = "TS-ROUTE-"       # route (manifest number) barcode: TS-ROUTE-<route id>
    sign_out_code = "TS-SIGN-OUT"    # explicit badge-out barcode
    session_idle_s = 600             # a session with nothing done for this long ends
    badge_repeat_s = 5               # the same badge again within this is the same read
    refusal_repeat_s = 60            # the same refusal is not re-issued within this
    weight_timeout_s = 60            # a scanned bin must get a stable weight within this
    weight_lookback_s = 10           # a stable weight up to this long BEFORE the bin read counts

    [custody.categories]             # command barcode text -> waste category (default below)
    "TS-CAT-SHARPS" = "sharps"

    [[custody.stations]]
    id = "hospital-dock"             # station name in bodies
    stage = "handed_over"            # handed_over | loaded | received | treated
    location = "St. Mary, waste room B"
    sensors = ["badge:dock", "epc:dock", "gs1:dock", "mtsics:dock"]   # record sensor ids
    require_category = true          # default: true only for handed_over (the generator declares)
    route = "R-FIXED"                # optional default route when none is scanned
    treatment = "autoclave"          # optional, carried on treated records (manifest field)
    # session_idle_s / weight_timeout_s / weight_lookback_s: per-station overrides

    [custody.reconcile]
    loss_abs_g = 200                 # grams
    loss_pct = 10                    # percent of the pickup weight (integer)
    combine = "both"                 # both: loss > max(abs, pct); either: > min; abs; pct
    missing_after_s = 28800          # picked up, not received after this -> missing-bin; 0 = off
    unknown_bin = true               # received, never picked up -> unknown-bin

Command barcodes arrive as GS1-128 with an internal AI (``]C191TS-CAT-SHARPS``, which the
GS1 adapter passes as ``attrs["ai"]["91"]``) or as ``attrs["text"]`` from a plain reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.core.errors import ConfigError
from gateway.core.table import StrictTable as Table
from gateway.core.table import nonneg, positive
from gateway.rules.custody.operators import STAGES

CATEGORIES = ("infectious", "sharps", "pathological", "pharmaceutical", "chemical")
DEFAULT_CODES: Mapping[str, str] = {f"TS-CAT-{c.upper()}": c for c in CATEGORIES}
COMBINE = ("both", "either", "abs", "pct")


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    loss_abs_g: int = 200
    loss_pct: int = 10
    combine: str = "both"
    missing_after_s: int = 8 * 3600
    unknown_bin: bool = True
    pickup_stages: tuple[str, ...] = ("handed_over", "loaded")
    delivery_stages: tuple[str, ...] = ("received", "treated")

    def allowed_loss_g(self, pickup_g: int) -> int:
        """The largest loss in grams that is NOT an alarm. Exact in integers: for a whole
        number of grams, ``loss > pct * w / 100`` iff ``loss > floor(pct * w / 100)``."""
        pct = self.loss_pct * max(pickup_g, 0) // 100
        return {"both": max(self.loss_abs_g, pct), "either": min(self.loss_abs_g, pct),
                "abs": self.loss_abs_g, "pct": pct}[self.combine]


@dataclass(frozen=True, slots=True)
class CustodyStationConfig:
    id: str
    stage: str
    location: str
    sensors: tuple[str, ...]
    require_category: bool
    route: str | None = None
    treatment: str | None = None
    session_idle_s: int = 600
    weight_timeout_s: int = 60
    weight_lookback_s: int = 10


@dataclass(frozen=True, slots=True)
class CustodyConfig:
    route_prefix: str = "TS-ROUTE-"
    sign_out_code: str = "TS-SIGN-OUT"
    badge_repeat_s: int = 5
    refusal_repeat_s: int = 60
    categories: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CODES))
    stations: tuple[CustodyStationConfig, ...] = ()
    reconcile: ReconcileConfig = ReconcileConfig()
    # Copy of ``[filters] record_repeat_weights`` (not a [custody] key): when False, the
    # ChangeFilter already dropped re-reported weights, so every stable weight RECORD is a
    # new load, even one of exactly the same grams as the bin before.
    repeat_weights_recorded: bool = False


def station(id: str, stage: str, location: str, sensors: tuple[str, ...] | list[str],
            **kw: Any) -> CustodyStationConfig:
    """A station built in code (tests, simulators) with the same defaults as the parser."""
    kw.setdefault("require_category", stage == "handed_over")
    return CustodyStationConfig(id, stage, location, tuple(sensors), **kw)


def _reconcile(raw: Any) -> ReconcileConfig:
    t = Table(raw, "custody.reconcile")
    base = ReconcileConfig()
    cfg = replace(base, loss_abs_g=t.get("loss_abs_g", int, base.loss_abs_g, check=nonneg, why="must be >= 0"),
                  loss_pct=t.get("loss_pct", int, base.loss_pct, check=lambda v: 0 <= v <= 100,
                                 why="must be 0..100"),
                  combine=t.get("combine", str, base.combine, check=lambda v: v in COMBINE,
                                why=f"expected one of {', '.join(COMBINE)}"),
                  missing_after_s=t.get("missing_after_s", int, base.missing_after_s, check=nonneg,
                                        why="must be >= 0 (0 = off)"),
                  unknown_bin=t.get("unknown_bin", bool, base.unknown_bin))
    t.done()
    return cfg


def parse_custody(raw: Any) -> CustodyConfig:
    """The ``[custody]`` table → config; a ConfigError names the offending key."""
    if raw is None:
        return CustodyConfig()
    t = Table(raw, "custody")
    base = CustodyConfig()
    prefix = t.get("route_prefix", str, base.route_prefix)
    sign_out = t.get("sign_out_code", str, base.sign_out_code)
    idle = t.get("session_idle_s", int, 600, check=positive, why="must be > 0")
    repeat = t.get("badge_repeat_s", int, base.badge_repeat_s, check=nonneg, why="must be >= 0")
    refusal = t.get("refusal_repeat_s", int, base.refusal_repeat_s, check=nonneg, why="must be >= 0")
    timeout = t.get("weight_timeout_s", int, 60, check=positive, why="must be > 0")
    lookback = t.get("weight_lookback_s", int, 10, check=nonneg, why="must be >= 0")
    cats = dict(t.get("categories", Mapping, DEFAULT_CODES))
    for code, cat in cats.items():
        if not isinstance(cat, str) or not cat or not code:
            raise ConfigError(f"custody.categories.{code}", f"expected a non-empty category name, got {cat!r}")
        if code.startswith(prefix) or code == sign_out:
            raise ConfigError(f"custody.categories.{code}", "clashes with the route or sign-out code")
    stations: list[CustodyStationConfig] = []
    for i, s in enumerate(t.get("stations", list, [])):
        st = Table(s, f"custody.stations[{i}]")
        stage = st.get("stage", str, check=lambda v: v in STAGES, why=f"expected one of {', '.join(STAGES)}")
        cfg = CustodyStationConfig(
            id=st.get("id", str), stage=stage, location=st.get("location", str),
            sensors=st.str_list("sensors"),
            require_category=st.get("require_category", bool, stage == "handed_over"),
            route=st.get("route", str, None), treatment=st.get("treatment", str, None),
            session_idle_s=st.get("session_idle_s", int, idle, check=positive, why="must be > 0"),
            weight_timeout_s=st.get("weight_timeout_s", int, timeout, check=positive, why="must be > 0"),
            weight_lookback_s=st.get("weight_lookback_s", int, lookback, check=nonneg, why="must be >= 0"))
        st.done()
        if not cfg.sensors:
            raise ConfigError(f"custody.stations[{i}].sensors", "must name at least one sensor")
        if any(c.id == cfg.id for c in stations):
            raise ConfigError(f"custody.stations[{i}].id", f"duplicate station {cfg.id!r}")
        stations.append(cfg)
    rec = _reconcile(t.get("reconcile", Mapping, {}))
    t.done()
    return CustodyConfig(prefix, sign_out, repeat, refusal, cats, tuple(stations), rec)
