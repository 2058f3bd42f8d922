"""Seal: turn an admitted observation (or a rule's output) into a signed gateway record.

A record is the JCS-canonical JSON object of docs/proof-format.md §Records; its signature
is Ed25519 over ``RECORD_DOMAIN + canonical``. The domain prefix keeps a record signature
from ever being valid as a header or ledger signature.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.observation import Observation
from gateway.journal import RecordRow
from ledger_client.canonical import canonical, record_message
from ledger_client.keys import signer

RESERVED = frozenset({"v", "gateway", "seq", "time_ms", "clock_synced"})  # the envelope: the sealer sets these


class Sealer:
    def __init__(self, gateway_id: str, key: Ed25519PrivateKey, next_seq: int) -> None:
        self.gateway_id = gateway_id
        self._key = key
        self._sign = signer(key)
        self.next_seq = next_seq

    def seal(self, body: dict[str, Any], *, time_ms: int, synced: bool, digest: bytes | None = None) -> RecordRow:
        """Assign the next sequence number, canonicalise and sign. ``body`` holds the type-specific fields."""
        clash = RESERVED & body.keys()
        if clash:
            raise ValueError(f"record body may not set {sorted(clash)}: the sealer owns them")
        seq = self.next_seq
        rec = {"v": 1, "gateway": self.gateway_id, "seq": seq, "time_ms": time_ms, "clock_synced": synced, **body}
        data = canonical(rec)
        sig = self._sign(record_message(data))
        self.next_seq = seq + 1
        return RecordRow(seq=seq, time_ms=time_ms, type=str(body["type"]), sensor=body.get("sensor"),
                         kind=body.get("kind"), digest=digest, body=data, sig=sig)


def reading_body(obs: Observation, *, transport: str, topic: str, authenticated: bool,
                 digest: bytes | None) -> dict[str, Any]:
    source: dict[str, Any] = {"adapter": obs.source, "transport": transport, "topic": topic,
                              "auth": _auth(obs) if authenticated else "allowlist"}
    if obs.counter is not None:
        source["ctr"] = obs.counter
    if obs.sensor_time_ms is not None:
        source["sensor_time_ms"] = obs.sensor_time_ms
    if digest is not None:
        source["msg_sha256"] = digest.hex()
    body: dict[str, Any] = {"type": "reading", "sensor": obs.sensor, "kind": obs.kind, "source": source}
    if obs.value is not None:
        body["value"] = obs.value
        body["unit"] = obs.unit
    if obs.attrs:
        body["attrs"] = obs.attrs
    return body


def _auth(obs: Observation) -> str:
    """The scheme admission checked: "ed25519" (a probe's signature) or "hmac-sha256"."""
    return obs.proof.scheme if obs.proof is not None else "ed25519"
