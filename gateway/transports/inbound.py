"""What a transport delivers: one message, and how to acknowledge it once it is durable.

Declared with the transports (not the pipeline that consumes it), so transports, the
archive's HTTPS ingest and the pipeline share it without importing one another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Inbound:
    """One message from a transport. ``ack`` is called only after it is durable."""

    transport: str
    topic: str
    payload: bytes
    dup: bool = False
    ack: Callable[[], None] | None = None
