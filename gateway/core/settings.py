"""The one settings slice several layers read: ``[journal]``.

Every other slice lives next to the code that uses it (``transports.settings.MqttConfig``,
``ingest.settings.IngestConfig``, ``chain.settings.LedgerConfig``, ``station.settings``,
``forward.settings``, ``web.settings``) with its parser, and ``gateway.app.config`` assembles
them into ``Config``. The journal's settings are read by ingest (batching), the chain and
the forwarder (their own connections), the web layer and the CLI, so they sit below all of
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.table import Table, positive


@dataclass(frozen=True)
class JournalConfig:
    path: Path = Path("journal.sqlite")
    synchronous: str = "FULL"
    batch_max: int = 500
    batch_wait_ms: int = 5
    quarantine_max_rows: int = 100_000
    quarantine_raw_bytes: int = 1024
    busy_timeout_ms: int = 10_000


def parse_journal(raw: Any, base: Path, data_dir: Path) -> JournalConfig:
    """``[journal]``; the database defaults to ``<data_dir>/journal.sqlite``."""
    j = Table(raw, "journal", base)
    journal = JournalConfig(
        path=j.req_path("path", str(data_dir / "journal.sqlite")),
        synchronous=j.get("synchronous", str, "FULL", check=lambda s: s.upper() in ("FULL", "EXTRA"),
                          why="must be FULL or EXTRA (NORMAL can lose acknowledged readings on power loss)"),
        batch_max=j.get("batch_max", int, 500, check=positive, why="must be positive"),
        batch_wait_ms=j.get("batch_wait_ms", int, 5, check=lambda v: 0 <= v <= 1000, why="must be in 0..1000"),
        quarantine_max_rows=j.get("quarantine_max_rows", int, 100_000, check=positive, why="must be positive"),
        quarantine_raw_bytes=j.get("quarantine_raw_bytes", int, 1024, check=positive, why="must be positive"),
        busy_timeout_ms=j.get("busy_timeout_ms", int, 10_000, check=positive, why="must be positive"),
    )
    j.done()
    return journal
