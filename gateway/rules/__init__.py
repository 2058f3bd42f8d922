"""Rules over the journal: cold-chain alarms, inventory, reports. Pure; no clock, no I/O.

Read in data-flow order: ``units`` (the [[units]] config) → ``watches`` (a profile as rules)
→ ``conditions`` (bands and rules) → ``alarms`` (the engine) → ``lifecycle`` (alarm
instances and their record bodies); ``inventory`` (GS1 stock) and ``reports`` (min/max,
MKT, excursion summaries) sit beside it. Every rule takes sealed records in seq order
and returns record *bodies* to seal; ``replay`` rebuilds a rule from the journal.

Beside them: ``custody`` (the medical-waste chain of custody), ``profile`` (a station's rule
settings as a signed profile, so an archive can apply the same rules) and ``records``
(reading journaled fields defensively). This is the pure domain library: the station
runtime, the chain's lot/route export and the archive all import it; it imports only the
core and ``ledger_client``.
"""

from gateway.rules.alarms import AlarmEngine
from gateway.rules.inventory import Inventory, InventoryConfig, Residency, parse_inventory
from gateway.rules.reports import MinMax, excursion_summary, mkt_mc, mkt_of_readings
from gateway.rules.units import UnitConfig, parse_units
from gateway.rules.watches import Watch, watches_for

__all__ = ["AlarmEngine", "Inventory", "InventoryConfig", "MinMax", "Residency", "UnitConfig",
           "Watch", "excursion_summary", "mkt_mc", "mkt_of_readings", "parse_inventory",
           "parse_units", "watches_for"]
