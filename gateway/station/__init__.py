"""The station at runtime: the rule library (``gateway.rules``) applied to journaled
records (``runtime.Station``: alarms, inventory, custody), and the GPIO panel that shows
and acknowledges them (``gpio``)."""

from __future__ import annotations

from gateway.station.runtime import Station, station_floor

__all__ = ["Station", "station_floor"]
