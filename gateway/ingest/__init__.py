"""Ingest: what happens to a message between the transport and the journal, in order.

``pipeline`` (bound → route → parse → admit → seal → journal, one transaction per batch),
``admit`` (who may speak: sensor keys, counters, plausibility), ``sensor_auth`` (HMAC
sensors), ``filters`` (unchanged values not re-sealed), ``seal`` (sign a record body).
"""

from __future__ import annotations

from gateway.ingest.admit import Admission
from gateway.ingest.pipeline import BatchResult, Pipeline
from gateway.ingest.seal import RESERVED, Sealer, reading_body

__all__ = ["RESERVED", "Admission", "BatchResult", "Pipeline", "Sealer", "reading_body"]
