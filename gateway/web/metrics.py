"""Prometheus metrics, read from the journal and the gateway's live state at scrape time.

A custom Collector, not counters bumped in the ingest path: the journal already holds
every count durably (records, quarantine by reason, blocks, anchors, the outbox), so the
metrics survive restarts, agree with ``traceseal status`` to the row, and cost the writer
thread nothing. Scrapes use their own read-only connections and cheap indexed queries
(``gateway.web.queries``); per-type record counts come from ``JournalTail``, which reads
each record once by primary key.

Families (``_total`` are counters):

    traceseal_gateway_info{gateway,ledger}          1
    traceseal_readings_total                         readings journaled
    traceseal_records_total{type}                    every record type (alarms, stock, heartbeats, ...)
    traceseal_quarantined_total{reason}              messages refused, by reason
    traceseal_pipeline_events_total{event}           duplicates recognised, filtered repeats, ...
    traceseal_journal_unsealed_records               journal backlog: records not yet in a block
    traceseal_blocks_sealed_total
    traceseal_unanchored_blocks                      sealed blocks no confirmed anchor covers
    traceseal_anchors_confirmed_total
    traceseal_anchors_pending                        outbox rows prepared or submitted
    traceseal_anchor_outbox{state}
    traceseal_last_anchor_timestamp_seconds / traceseal_last_anchor_age_seconds   (NaN: never)
    traceseal_alarms_active{kind,severity}           present alarms
    traceseal_alarms_unacknowledged{kind,severity}   open alarms nobody acknowledged yet
    traceseal_broker_connected                       (absent without MQTT)
    traceseal_ledger_connected, traceseal_journal_ok, traceseal_clock_synced
    traceseal_inbox_messages                         received, waiting for the writer
    traceseal_disk_free_bytes, traceseal_disk_total_bytes
    traceseal_journal_readable                       0 when this scrape could not read the journal
    traceseal_retention_pruned_records_total         records deleted by retention (gateway/chain/retention.py)
    traceseal_retention_pruned_blocks                blocks whose records are gone (headers are kept)
    traceseal_retention_last_prune_timestamp_seconds (NaN: never pruned)
    traceseal_upstream_connected                     1 while the forwarder's broker link is up (with [upstream])
    traceseal_upstream_{sent,archived}{stream}       the forwarder's cursors (seq or block; -1: none)
    traceseal_upstream_backlog{stream}               items not yet PUBACKed by the upstream broker
    traceseal_upstream_unarchived{stream}            items the archive has not acknowledged (retention waits)
    traceseal_upstream_lag_seconds{stream}           age of the oldest item not yet sent (0: none)
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.chain.retention import status
from gateway.forward.state import upstream_stats
from gateway.web import queries
from gateway.web.source import DashboardSource
from gateway.web.tail import JournalTail

log = logging.getLogger("traceseal.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class TracesealCollector(Collector):
    def __init__(self, source: DashboardSource, tail: JournalTail | None = None) -> None:
        self.source = source
        self.tail = tail or JournalTail(source.journal_path)

    def describe(self) -> list[Metric]:
        return []  # do not collect at registration (the journal may not exist yet)

    def collect(self) -> Iterator[Metric]:
        cfg = self.source.cfg
        st = self.source.status()
        yield InfoMetricFamily("traceseal_gateway", "This gateway.",
                               value={"gateway": cfg.gateway_id, "ledger": str(st.get("ledger_kind", cfg.ledger.kind))})
        try:
            yield from self._journal()
            yield from self._retention()
            readable = 1.0
        except Exception:  # a scrape must answer: say the journal was unreadable, with the rest
            log.exception("metrics: journal not readable")
            readable = 0.0
        yield _gauge("traceseal_journal_readable", "1 if this scrape could read the journal.", readable)
        yield from self._alarms()
        if st.get("broker_connected") is not None:
            yield _gauge("traceseal_broker_connected", "1 while connected to the MQTT broker.",
                         float(bool(st["broker_connected"])))
        yield _gauge("traceseal_ledger_connected", "1 while the ledger answered the last anchoring round.",
                     float(bool(st.get("ledger_connected"))))
        yield _gauge("traceseal_journal_ok", "0 while the journal cannot commit (acknowledgements stopped).",
                     float(bool(st.get("journal_ok", True))))
        yield _gauge("traceseal_clock_synced", "1 while the system clock is NTP-synchronised.",
                     float(bool(st.get("clock_synced"))))
        yield _gauge("traceseal_inbox_messages", "Messages received and waiting for the writer.",
                     float(st.get("inbox", 0)))
        try:
            d = queries.disk(self.source.journal_path)
            yield _gauge("traceseal_disk_free_bytes", "Free bytes on the journal's filesystem.", float(d["free_bytes"]))
            yield _gauge("traceseal_disk_total_bytes", "Size of the journal's filesystem.", float(d["total_bytes"]))
        except OSError:
            pass

    def _journal(self) -> Iterator[Metric]:
        self.tail.refresh()
        with queries.connect(self.source.journal_path) as db:
            s = queries.journal_stats(db)
        types = self.tail.counts()
        yield CounterMetricFamily("traceseal_readings", "Readings journaled.", value=types.get("reading", 0))
        rec = CounterMetricFamily("traceseal_records", "Records journaled, by type.", labels=["type"])
        for t, n in sorted(types.items()):
            rec.add_metric([t], n)
        yield rec
        q = CounterMetricFamily("traceseal_quarantined", "Messages quarantined, by reason.", labels=["reason"])
        for reason, n in s["quarantine"].items():
            q.add_metric([reason], n)
        yield q
        ev = CounterMetricFamily("traceseal_pipeline_events", "Pipeline events (duplicates, filtered repeats).",
                                 labels=["event"])
        for name, n in s["counters"].items():
            if name != "records" and not name.startswith("quarantined."):
                ev.add_metric([name], n)
        yield ev
        yield _gauge("traceseal_journal_unsealed_records", "Records not yet sealed into a block.",
                     float(s["unsealed_records"]))
        yield CounterMetricFamily("traceseal_blocks_sealed", "Blocks sealed.", value=s["blocks"])
        yield _gauge("traceseal_unanchored_blocks", "Sealed blocks not yet covered by a confirmed anchor.",
                     float(s["unanchored_blocks"]))
        yield CounterMetricFamily("traceseal_anchors_confirmed", "Anchors confirmed on the ledger.",
                                  value=s["anchors_confirmed"])
        yield _gauge("traceseal_anchors_pending", "Anchors prepared or submitted, not yet confirmed.",
                     float(s["anchors_pending"]))
        ob = GaugeMetricFamily("traceseal_anchor_outbox", "Anchor outbox rows by state.", labels=["state"])
        for state, n in s["outbox"].items():
            ob.add_metric([state], n)
        yield ob
        last = s["last_anchor_ms"]
        now = self.source.now_ms()
        yield _gauge("traceseal_last_anchor_timestamp_seconds", "Ledger time of the newest anchor (NaN: never).",
                     math.nan if last is None else last / 1000)
        yield _gauge("traceseal_last_anchor_age_seconds", "Seconds since the newest anchor (NaN: never).",
                     math.nan if last is None else max(0.0, (now - last) / 1000))
        if getattr(getattr(self.source.cfg, "upstream", None), "enabled", False):
            yield from self._upstream(now)

    def _upstream(self, now: int) -> Iterator[Metric]:
        with queries.connect(self.source.journal_path) as db:
            up = upstream_stats(db, now)
        live = self.source.status().get("upstream_connected")
        connected = bool(live) if live is not None else bool(up and up["connected"])
        yield _gauge("traceseal_upstream_connected", "1 while the forwarder is connected to the upstream broker.",
                     float(connected))
        if up is None:
            return
        for key, name, doc in (("sent", "sent", "Upstream cursor PUBACKed by the broker (seq or block)."),
                               ("archived", "archived", "Upstream cursor acknowledged by the archive."),
                               ("backlog", "backlog", "Items not yet sent upstream."),
                               ("unarchived", "unarchived", "Items the archive has not acknowledged yet."),
                               ("lag_s", "lag_seconds", "Age of the oldest item not yet sent upstream.")):
            g = GaugeMetricFamily(f"traceseal_upstream_{name}", doc, labels=["stream"])
            for stream, st in up["streams"].items():
                g.add_metric([stream], float(st[key]))
            yield g

    def _retention(self) -> Iterator[Metric]:
        with queries.connect(self.source.journal_path) as db:
            r = status(db)
        yield CounterMetricFamily("traceseal_retention_pruned_records", "Records deleted by retention.",
                                  value=r["pruned_records"])
        yield _gauge("traceseal_retention_pruned_blocks", "Blocks whose records retention deleted (headers kept).",
                     float(r["pruned_blocks"]))
        last = r["last_prune_ms"]
        yield _gauge("traceseal_retention_last_prune_timestamp_seconds", "When retention last deleted (NaN: never).",
                     math.nan if last is None else last / 1000)

    def _alarms(self) -> Iterator[Metric]:
        present: Counter[tuple[str, str]] = Counter()
        unacked: Counter[tuple[str, str]] = Counter()
        for a in self.source.active_alarms():
            key = (str(a.get("alarm", "")), str(a.get("severity", "")))
            if a.get("state") != "cleared":
                present[key] += 1
            if not a.get("acknowledged"):
                unacked[key] += 1
        for name, doc, counts in (("traceseal_alarms_active", "Alarms present now.", present),
                                  ("traceseal_alarms_unacknowledged", "Open alarms nobody acknowledged.", unacked)):
            g = GaugeMetricFamily(name, doc, labels=["kind", "severity"])
            for (kind, sev), n in sorted(counts.items()):
                g.add_metric([kind, sev], n)
            yield g


def registry_for(source: DashboardSource, tail: JournalTail | None = None) -> CollectorRegistry:
    """A registry with only traceseal's collector (no process metrics of the test runner)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(TracesealCollector(source, tail))
    return reg


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def start_metrics_server(source: DashboardSource, port: int, addr: str = "127.0.0.1") -> Any:
    """/metrics on a port of its own (for a Prometheus that must not reach the dashboard).

    Returns prometheus_client's (server, thread); ``server.shutdown()`` stops it."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=addr, registry=registry_for(source))
