"""Forwarding upstream: the gateway's half of ``traceseal-upstream/1`` (docs/upstream.md).

``wire`` builds and reads the payloads (no I/O), ``window`` keeps in-flight batches and the
contiguous cursor, ``forwarder`` is the thread that moves them, ``state`` is what status
and metrics show.
"""

from .forwarder import Forwarder, read_password

__all__ = ["Forwarder", "read_password"]
