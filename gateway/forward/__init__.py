"""Forwarding upstream: the gateway's half of ``traceseal-upstream/1`` (docs/upstream.md).

``wire`` builds and reads the payloads (no I/O), ``window`` keeps in-flight batches and the
contiguous cursor, ``streams`` decides what is due and keeps the cursors, ``forwarder``
(MQTT) and ``https`` are the threads that move it, ``state`` is what status and metrics show.
"""

from gateway.forward.forwarder import Forwarder, read_password
from gateway.forward.https import HttpsForwarder

__all__ = ["Forwarder", "HttpsForwarder", "read_password"]
