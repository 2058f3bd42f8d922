"""Prometheus metrics for the archive, read from its store at scrape time.

As for the gateway (gateway/web/metrics.py): a custom Collector, not counters bumped by the
writer, so the numbers survive restarts and agree with ``traceseal archive status`` to the
row. Scrapes use their own read-only store connection (never the writer's, which may be
inside a transaction), opened on first scrape and again after an error.

Families (``_total`` are counters; every per-gateway family has a ``gateway`` label):

    traceseal_archive_info{store}                         1
    traceseal_archive_records_total{gateway}              records stored
    traceseal_archive_blocks{gateway,state}               blocks by state: verified (or header-verified), pending
    traceseal_archive_highest_contiguous_seq{gateway}     every seq at or below it stored (-1: none)
    traceseal_archive_highest_verified_block{gateway}     the acknowledged block cursor (-1: none)
    traceseal_archive_anchored_block{gateway}             highest block with a stored anchor (-1: none)
    traceseal_archive_rejections_total{gateway,reason}    rejections by stable reason code (docs/upstream.md)
    traceseal_archive_key_rotations{gateway}              rotations of the gateway's key accepted
    traceseal_archive_last_message_age_seconds{gateway}   since this process last received from it (NaN: not yet)
    traceseal_archive_unenrolled_rejections_total{source} rejected messages from sources not enrolled
    traceseal_archive_store_ok                            0 while the store cannot commit (acks stopped)
    traceseal_archive_store_readable                      0 when this scrape could not read the store
    traceseal_archive_broker_connected
    traceseal_archive_inbox_messages                      received, waiting for the writer
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.archive.store import open_store

log = logging.getLogger("traceseal.archive.metrics")


class ArchiveCollector(Collector):
    def __init__(self, archive: Any) -> None:
        self.archive = archive
        self.reader: Any = None
        self.lock = threading.Lock()  # one scrape at a time on the one reader connection

    def describe(self) -> list[Metric]:
        return []  # do not collect at registration

    def _read(self) -> Iterator[Metric]:
        if self.reader is None:
            self.reader = open_store(self.archive.cfg.store, readonly=True)
        st = self.reader
        per = {g: st.status(g) for g in st.gateways()}
        rec = CounterMetricFamily("traceseal_archive_records", "Records stored.", labels=["gateway"])
        blocks = GaugeMetricFamily("traceseal_archive_blocks", "Blocks stored, by state.", labels=["gateway", "state"])
        seq = GaugeMetricFamily("traceseal_archive_highest_contiguous_seq",
                                "Highest seq with every seq at or below it stored (-1: none).", labels=["gateway"])
        blk = GaugeMetricFamily("traceseal_archive_highest_verified_block",
                                "Highest block with every block of the chain up to it verified (-1: none).",
                                labels=["gateway"])
        anc = GaugeMetricFamily("traceseal_archive_anchored_block", "Highest block with a stored anchor (-1: none).",
                                labels=["gateway"])
        rej = CounterMetricFamily("traceseal_archive_rejections", "Rejections by reason (docs/upstream.md).",
                                  labels=["gateway", "reason"])
        rot = GaugeMetricFamily("traceseal_archive_key_rotations", "Rotations of the gateway's key accepted.",
                                labels=["gateway"])
        for g, s in per.items():
            rec.add_metric([g], s["records"])
            blocks.add_metric([g, "verified"], float(s["blocks_verified"]))  # header-only ones included
            blocks.add_metric([g, "pending"], float(s["blocks_pending"]))
            seq.add_metric([g], float(s["highest_contiguous_seq"]))
            blk.add_metric([g], float(s["highest_verified_block"]))
            anc.add_metric([g], float(s["anchored_block"]))
            for reason, n in sorted(s["rejections"].items()):
                rej.add_metric([g, reason], n)
            rot.add_metric([g], float(len(st.key_rotations(g))))
        yield from (rec, blocks, seq, blk, anc, rej, rot)
        other = CounterMetricFamily("traceseal_archive_unenrolled_rejections",
                                    "Rejected messages from sources that are not enrolled gateways.", labels=["source"])
        for src, n in st.unenrolled_rejections().items():
            other.add_metric([src], n)
        yield other

    def collect(self) -> Iterator[Metric]:
        a = self.archive
        yield InfoMetricFamily("traceseal_archive", "This archive.", value={"store": a.store.kind})
        with self.lock:
            try:
                out = list(self._read())
                readable = 1.0
            except Exception:  # a scrape must answer: say the store was unreadable, with the rest
                log.exception("metrics: archive store not readable")
                out, readable = [], 0.0
                if self.reader is not None:
                    try:
                        self.reader.close()
                    except Exception:  # noqa: BLE001  closing a broken reader: nothing to save
                        pass
                    self.reader = None
        yield from out
        yield GaugeMetricFamily("traceseal_archive_store_readable", "1 if this scrape could read the store.",
                                value=readable)
        age = GaugeMetricFamily("traceseal_archive_last_message_age_seconds",
                                "Seconds since this process last received a message from the gateway (NaN: not yet).",
                                labels=["gateway"])
        now = time.monotonic()
        for g in sorted(a.keys):
            t = a.last_seen.get(g)
            age.add_metric([g], math.nan if t is None else now - t)
        yield age
        yield GaugeMetricFamily("traceseal_archive_store_ok",
                                "0 while the store cannot commit (acknowledgements stopped).",
                                value=float(bool(a.store_ok)))
        t = a.transport
        if t is not None:
            yield GaugeMetricFamily("traceseal_archive_broker_connected", "1 while connected to the central broker.",
                                    value=float(t.connected.is_set()))
        yield GaugeMetricFamily("traceseal_archive_inbox_messages", "Messages received, waiting for the writer.",
                                value=float(a.inbox.qsize()))

    def close(self) -> None:
        with self.lock:
            if self.reader is not None:
                self.reader.close()
                self.reader = None


def serve(archive: Any, host: str, port: int) -> tuple[Any, ArchiveCollector]:
    """Serve /metrics on ``host:port`` (a daemon thread); returns (server, collector) to stop."""
    registry = CollectorRegistry()
    collector = ArchiveCollector(archive)
    registry.register(collector)
    server, _ = start_http_server(port, addr=host, registry=registry)
    log.info("archive metrics on http://%s:%d/metrics", host, port)
    return server, collector
