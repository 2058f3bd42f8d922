"""``traceseal-set/1`` (docs/proof-format.md §13): one bundle per gateway for a lot or
route that crossed gateways, each verified on its own, plus the set's own checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .anchors import AnchorChecker, default_checkers
from .report import FAILED, INTACT_NOT_PINNED, VERIFIED, Report
from .steps import verify_bundle

SET_FORMAT = "traceseal-set/1"


@dataclass
class SetReport:
    """A set verifies iff its own checks pass and every inner bundle verifies."""

    failures: list[str]
    bundles: list[tuple[str, Report]]  # (gateway id as the bundle states it, its report)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.bundles) and all(r.ok for _, r in self.bundles)

    @property
    def key_pinned(self) -> bool:
        """Every inner bundle was checked against a pinned key."""
        return bool(self.bundles) and all(r.key_pinned for _, r in self.bundles)

    @property
    def result(self) -> str:
        if not self.ok:
            return FAILED
        return VERIFIED if self.key_pinned else INTACT_NOT_PINNED

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "key_pinned": self.key_pinned, "result": self.result, "format": SET_FORMAT,
                "failures": self.failures, "notes": self.notes,
                "bundles": [{"gateway": g, "ok": r.ok, "result": r.result, "report": r.as_dict()}
                            for g, r in self.bundles]}


def verify_set(doc: Any, *, gateway_keys: dict[str, str] | None = None,
               checkers: dict[str, AnchorChecker] | None = None) -> SetReport:
    """docs/proof-format.md §13. ``gateway_keys`` pins each gateway's key; when any pin is
    given, an inner bundle of a gateway without one fails (a set must not smuggle in a
    gateway the auditor did not vouch for)."""
    checkers = checkers if checkers is not None else default_checkers()
    keys = {g: k.lower() for g, k in (gateway_keys or {}).items()}
    rep = SetReport([], [])
    if not isinstance(doc, dict) or doc.get("format") != SET_FORMAT:
        fmt = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        rep.failures.append(f"format {fmt!r}, want {SET_FORMAT!r}")
        return rep
    sel, bundles = doc.get("selection"), doc.get("bundles")
    if not isinstance(sel, dict) or sel.get("type") not in ("lot", "route"):
        rep.failures.append(f"selection {str(sel)[:80]} is not a lot or route selection")
        return rep
    want = {"lot": ("lot", "gtin"), "route": ("id",)}[sel["type"]]
    if not isinstance(bundles, list) or not bundles:
        rep.failures.append("bundles is not a non-empty list")
        return rep
    seen: set[str] = set()
    for i, b in enumerate(bundles):
        gw = b.get("gateway") if isinstance(b, dict) else None
        gid = gw.get("id") if isinstance(gw, dict) else None
        name = gid if isinstance(gid, str) else f"bundles[{i}]"
        inner = b.get("selection") if isinstance(b, dict) else None
        if not isinstance(inner, dict) or inner.get("type") != sel["type"] or any(
                inner.get(k) != sel.get(k) for k in want):
            rep.failures.append(f"{name}: selection {str(inner)[:120]} is not the set's {sel}")
        if isinstance(gid, str):
            if gid in seen:
                rep.failures.append(f"gateway {gid!r} appears more than once")
            seen.add(gid)
        pin = keys.get(gid) if isinstance(gid, str) else None
        if keys and pin is None:
            rep.failures.append(f"{name}: no pinned key for this gateway (pin every gateway with --key GW=HEX)")
        rep.bundles.append((name, verify_bundle(b, gateway_key=pin, checkers=checkers)))
    if not keys:
        rep.notes.append("gateway keys taken from the bundles; pin each with --key GATEWAY=HEX to trust no one")
    for g in sorted(set(keys) - seen):
        rep.notes.append(f"pinned gateway {g!r} has no bundle in this set")
    return rep
