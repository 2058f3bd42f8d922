"""What the dashboard and the metrics need from a running gateway, as a small Protocol.

The web layer never touches the writer thread's objects directly: the journal is read
through its OWN read-only SQLite connections (WAL lets readers run beside the writer), and
the only live state it asks for is what the journal does not hold (connectivity, alarm
book, clock). So tests can run the dashboard against a real journal without MQTT, and a
slow page can never stall ingest.

``gateway.app.dashboard.GatewaySource`` adapts the running ``Gateway`` to it: the web
layer never imports the service that starts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from gateway.chain.settings import LedgerConfig
from gateway.forward.settings import UpstreamConfig
from gateway.station.settings import StationConfig


class GatewaySettings(Protocol):
    """The parts of the gateway's configuration the pages read (``gateway.app.config.Config``
    has them all; the web layer does not import the assembler above it)."""

    @property
    def gateway_id(self) -> str: ...

    @property
    def station(self) -> StationConfig: ...

    @property
    def ledger(self) -> LedgerConfig: ...

    @property
    def upstream(self) -> UpstreamConfig: ...


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
    def cfg(self) -> GatewaySettings:
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
