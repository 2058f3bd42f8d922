"""The transport-independent half of forwarding: what is due on each stream, and how far.

One ``Streams`` per forwarder thread: its own journal connection, one in-flight ``Window``
per stream, the archive's acknowledged cursors and the signed hello. A transport (MQTT,
HTTPS) only moves the batches it hands out and reports back which ones the other side took.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.clock import Clock
from gateway.forward import wire
from gateway.forward.settings import ForwardConfig
from gateway.forward.state import LINK_META, STREAMS
from gateway.forward.window import Window
from gateway.journal import Journal
from gateway.rules.profile import profile_message, station_profile
from ledger_client.canonical import canonical
from ledger_client.keys import public_hex

log = logging.getLogger("traceseal.forward")

ORDER = ("alarms", "records", "blocks", "anchors")  # each round fills the windows in this order


def fair_order(after: str | None) -> tuple[str, ...]:
    """Alarms first, then the other streams starting after ``after`` (the last one sent).

    A sender that takes one batch per round (HTTPS) and always started with records never
    sent blocks under steady load, so the archive could not verify anything and its ack (the
    only cursor retention trusts) stood still while the load lasted."""
    rest = ORDER[1:]
    i = rest.index(after) + 1 if after in rest else 0
    return (ORDER[0],) + rest[i:] + rest[:i]
_PROFILE_META = "upstream_profile"


class Streams:
    def __init__(self, cfg: ForwardConfig, key: Ed25519PrivateKey, clock: Clock, max_inflight: int) -> None:
        self.gateway = cfg.gateway_id
        self.batch_max = cfg.upstream.batch_max
        self.clock = clock
        self.journal = Journal(cfg.journal.path, synchronous=cfg.journal.synchronous,
                               busy_timeout_ms=cfg.journal.busy_timeout_ms)
        cursors = self.journal.forward_cursors()
        self.windows = {s: Window(cursors[s][0], max_inflight) for s in STREAMS}
        self.archived = {s: cursors[s][1] for s in STREAMS}
        self._saved = {s: cursors[s][0] for s in STREAMS}
        self.hello = self._make_hello(cfg, key)
        self.last_error = ""
        self._link_state: tuple[bool, str] | None = None

    def close(self) -> None:
        self.journal.close()

    def status(self) -> dict[str, Any]:
        return {s: {"sent": w.sent, "in_flight": w.in_flight, "peak_in_flight": w.peak, "archived": self.archived[s]}
                for s, w in self.windows.items()}

    def next_batch(self, stream: str, after: int) -> wire.Batch | None:
        """The batch following cursor ``after`` on ``stream``, or None when nothing is due."""
        j, n = self.journal, self.batch_max
        rec = self.windows["records"]
        if stream == "records":
            return wire.records_batch(self.gateway, stream, j.forward_records(after, n), after, n)
        if stream == "alarms":  # alarms the ordered stream already delivered need not go again
            after = max(after, rec.sent)
            return wire.records_batch(self.gateway, stream, j.forward_records(after, n, alarms_only=True), after, n)
        if stream == "blocks":  # only blocks whose records the other side already has
            return wire.blocks_batch(self.gateway, j.forward_blocks(after, rec.sent, n), n)
        return wire.anchors_batch(self.gateway, j.forward_anchors(after, self.windows["blocks"].sent, n), n)

    def persist(self) -> None:
        """Store every ``sent`` cursor that moved, in one fsynced transaction."""
        self.windows["alarms"].advance(self.windows["records"].sent)
        moved = {s: w.sent for s, w in self.windows.items() if w.sent != self._saved[s]}
        if moved:
            self.journal.save_forward_cursors(sent=moved)
            self._saved.update(moved)

    def link(self, connected: bool, error: str = "") -> None:
        """Record a change of the link for ``traceseal status`` (only changes: an SD card
        should not pay an fsync per reconnect attempt)."""
        self.last_error = error
        if self._link_state == (connected, error):
            return
        self._link_state = (connected, error)
        self.journal.set_meta(LINK_META, json.dumps({"connected": connected, "since_ms": self.clock.now_ms(),
                                                     "error": error}))

    def take_ack(self, payload: bytes, where: str) -> None:
        """The archive's acknowledgement becomes the durable ``archived`` cursors."""
        try:
            ack = wire.parse_ack(payload, self.gateway)
        except wire.AckError as exc:
            log.warning("upstream: ignoring an ack from %s: %s", where, exc)
            return
        new = {"records": ack["records"], "alarms": ack["records"], "blocks": ack["blocks"],
               "anchors": ack["anchors"]}
        if new == self.archived:
            return
        if any(new[s] < self.archived[s] for s in new):
            # An older ack re-sent after a reconnect, or an archive restored from a backup:
            # either way retention must not trust more than the archive says now.
            log.info("upstream: the archive's acknowledgement went back (%s -> %s)", self.archived, new)
        self.journal.save_forward_cursors(archived=new)
        self.archived = new

    def _make_hello(self, cfg: ForwardConfig, key: Ed25519PrivateKey) -> bytes:
        """The signed profile; an unchanged profile keeps its time so the archive sees the
        same bytes (a duplicate) instead of a new version at every restart."""
        prof = station_profile(self.gateway, cfg.units, cfg.inventory, self.clock.now_ms())
        stored = self.journal.meta(_PROFILE_META)
        if stored is not None:
            old = json.loads(stored)
            if {**old, "time_ms": prof["time_ms"]} == json.loads(canonical(prof)):
                prof = old
        text = canonical(prof).decode()
        if text != stored:
            self.journal.set_meta(_PROFILE_META, text)
        return wire.hello(self.gateway, public_hex(key), text, key.sign(profile_message(prof)))
