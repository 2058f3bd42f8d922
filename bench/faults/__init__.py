"""The fault suite ("Prove it survives"): one implementation, two sizes.

Every scenario is a function ``run_<name>(workdir, *, size, rng) -> list[Row]`` in its own
module. ``tests/faults`` calls them with the CI sizes (minutes in total); ``bench/faults/run.py``
calls them with the report sizes and prints one table::

    scenario | runs | sent | acked | journaled | lost | duplicated | detected

Everything runs against real components: the gateway as a real process
(``python -m gateway.cli run``) killed with SIGKILL, a real Mosquitto, a real anvil, a real
tmpfs, real SQLite files. See ``bench/faults/README.md`` for what each column means.
"""

from __future__ import annotations

from .common import Row, format_table

__all__ = ["Row", "format_table"]
