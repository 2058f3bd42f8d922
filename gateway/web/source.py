"""What the dashboard and the metrics need from a running gateway, as a small Protocol.

The web layer never touches the writer thread's objects directly: the journal is read
through its OWN read-only SQLite connections (WAL lets readers run beside the writer), and
the only live state it asks for is what the journal does not hold (connectivity, alarm
book, clock). So tests can run the dashboard against a real journal without MQTT, and a
slow page can never stall ingest.

``GatewaySource`` adapts ``gateway.service.Gateway`` without the Gateway knowing about the
web. Its ``status()`` deliberately does not call ``Gateway.status()``: that one runs
``journal.stats()`` on the writer thread's connection, from the web thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..service import Gateway


def dedupe(alarms: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per alarm id. ``Station.active()`` lists an inventory alarm twice: the alarm
    engine's book also applies journaled alarms it did not derive. The later entry (the
    owning rule's own view) wins; the order of first appearance is kept."""
    out: dict[str, dict[str, Any]] = {}
    for a in alarms:
        out[str(a.get("id"))] = a
    return list(out.values())


class DashboardSource(Protocol):
    """The seam between a gateway and its operator surfaces (dashboard, /metrics)."""

    @property
    def cfg(self) -> Config:
        """Units and thresholds, inventory products, custody settings, journal path."""
        ...

    @property
    def journal_path(self) -> Path:
        """Opened read-only, one connection per request."""
        ...

    def now_ms(self) -> int:
        """The gateway's clock (a FakeClock in tests), so "last 24 h" means the gateway's day."""
        ...

    def status(self) -> dict[str, Any]:
        """Live state the journal does not hold: journal_ok, broker_connected (None without
        MQTT), ledger_kind, ledger_connected, ledger_error, clock_synced, inbox, upstream_connected
        (None without ``[upstream]``)."""
        ...

    def active_alarms(self) -> list[dict[str, Any]]:
        """Open alarms (``Alarm.view()`` dicts): present, or cleared but unacknowledged."""
        ...

    def acknowledge(self, by: str) -> None:
        """Ask for every open alarm to be acknowledged by ``by``; sealed by the writer."""
        ...


class GatewaySource:
    """``DashboardSource`` over a running ``Gateway`` (``GatewaySource(gw)``)."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    @property
    def cfg(self) -> Config:
        return self.gw.cfg

    @property
    def journal_path(self) -> Path:
        return Path(self.gw.cfg.journal.path)

    def now_ms(self) -> int:
        return self.gw.clock.now_ms()

    def status(self) -> dict[str, Any]:
        gw = self.gw
        a = gw.anchorer.status()
        return {
            "gateway": gw.cfg.gateway_id,
            "public_key": gw.public_key,
            "journal_ok": bool(gw.journal_ok),
            "broker_connected": None if gw.mqtt is None else bool(gw.mqtt.connected.is_set()),
            "ledger_kind": gw.ledger.kind,
            "ledger_connected": bool(a.get("connected")),
            "ledger_error": str(a.get("last_error") or ""),
            "clock_synced": bool(gw.clock.synced()),
            "inbox": gw.inbox.qsize(),
            "upstream_connected": None if getattr(gw, "forwarder", None) is None
            else bool(gw.forwarder.connected.is_set()),
        }

    def active_alarms(self) -> list[dict[str, Any]]:
        # The alarm book belongs to the writer thread; a copy taken while it changes a dict
        # raises RuntimeError. Retry: the book is small and changes rarely.
        # Never answer "no alarms" on a failed read: the page would go green.
        for attempt in range(5):
            try:
                return dedupe(self.gw.station.active())
            except RuntimeError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def acknowledge(self, by: str) -> None:
        self.gw.station.acknowledge(by)
