"""``GatewaySource``: the running ``Gateway`` seen as the web layer's ``DashboardSource``.

It lives with the service, not in ``gateway.web``, so the web never imports what starts it
(and the Gateway need not know about the web beyond constructing this). Its ``status()``
deliberately does not call ``Gateway.status()``: that one runs ``journal.stats()`` on the
writer thread's connection, from the web thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.app.config import Config
from gateway.web.source import dedupe


class GatewaySource:
    """``DashboardSource`` over a running ``Gateway`` (``GatewaySource(gw)``)."""

    def __init__(self, gw: Any) -> None:  # a gateway.app.service.Gateway (typed Any: no cycle)
        self.gw = gw

    @property
    def cfg(self) -> Config:
        cfg: Config = self.gw.cfg
        return cfg

    @property
    def journal_path(self) -> Path:
        return Path(self.gw.cfg.journal.path)

    def now_ms(self) -> int:
        now: int = self.gw.clock.now_ms()
        return now

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
