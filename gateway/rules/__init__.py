"""Rules over the journal: cold-chain alarms, inventory, reports. Pure; no clock, no I/O.

Read in data-flow order: ``units`` (the [[units]] config) → ``watches`` (a profile as rules)
→ ``conditions`` (bands and rules) → ``alarms`` (the engine) → ``lifecycle`` (alarm
instances and their record bodies); ``inventory`` (GS1 stock) and ``reports`` (min/max,
MKT, excursion summaries) sit beside it. Every rule takes sealed records in seq order
and returns record *bodies* to seal; ``replay`` rebuilds a rule from the journal.
"""

from .alarms import AlarmEngine
from .inventory import Inventory, InventoryConfig, Residency, parse_inventory
from .reports import MinMax, excursion_summary, mkt_mc, mkt_of_readings
from .units import UnitConfig, parse_units
from .watches import Watch, watches_for

__all__ = ["AlarmEngine", "Inventory", "InventoryConfig", "MinMax", "Residency", "UnitConfig",
           "Watch", "excursion_summary", "mkt_mc", "mkt_of_readings", "parse_inventory",
           "parse_units", "watches_for"]
