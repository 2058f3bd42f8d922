"""A station's profile: the parts of its configuration an auditor needs away from the station.

A lot export must know which probes and door watched each unit; at the gateway that comes
from its config, but an archive or a district office has only what the gateway sent. The
forwarder therefore sends the profile signed by the gateway key (domain
``traceseal/profile/v1``), and the archive rebuilds the same config objects from it, so one
``export_lot`` serves both. Integers and strings only: the profile is canonicalised and signed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.rules.inventory import InventoryConfig, Product
from gateway.rules.units import RuleSettings, UnitConfig
from ledger_client.canonical import canonical

PROFILE_DOMAIN = b"traceseal/profile/v1\n"


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def station_profile(gateway_id: str, units: dict[str, UnitConfig], inventory: InventoryConfig | None,
                    time_ms: int) -> dict[str, Any]:
    """The profile object (sign ``PROFILE_DOMAIN + canonical(profile)``)."""
    return {"gateway": gateway_id, "time_ms": time_ms,
            "units": {uid: _plain(u) for uid, u in sorted(units.items())},
            "inventory": _plain(inventory if inventory is not None else InventoryConfig())}


def profile_message(profile: dict[str, Any]) -> bytes:
    return PROFILE_DOMAIN + canonical(profile)


def station_from_profile(profile: dict[str, Any]) -> tuple[dict[str, UnitConfig], InventoryConfig]:
    """Inverse of ``station_profile``: (units, inventory) for ``export_lot``. Raises ValueError."""
    try:
        units = {}
        for uid, u in profile["units"].items():
            u = dict(u)
            u["probes"] = tuple(u["probes"])
            u["scanners"] = tuple(u.get("scanners", ()))
            u["settings"] = RuleSettings(**u.get("settings", {}))
            units[uid] = UnitConfig(**u)
        inv = dict(profile["inventory"])
        inv["products"] = {g: Product(**p) for g, p in inv.get("products", {}).items()}
        return units, InventoryConfig(**inv)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed station profile: {exc}") from exc
