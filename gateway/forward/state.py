"""What ``traceseal status`` and /metrics show about forwarding, read from the journal alone.

From an open journal (the status command's read-only one) or a plain read-only connection
(a metrics scrape's own), so an operator sees the backlog even while the gateway is down.
Whether the link is up is the forwarder's to say; it records each change in ``meta`` so the
status command can show it too (``since_ms`` tells how stale that is after a crash). The
queries are the journal's (``gateway.journal.forwarding``); this module shapes their answer.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.journal import FORWARD_STREAMS, Readable
from gateway.journal.forwarding import LINK_META, upstream_backlog

STREAMS = FORWARD_STREAMS  # the journal keeps one cursor row per stream

__all__ = ["LINK_META", "STREAMS", "upstream_stats"]


def upstream_stats(src: Readable, now_ms: int) -> dict[str, Any] | None:
    """``{"enabled", "connected", "since_ms", "error", "streams": {stream: {sent, archived,
    backlog, unarchived, lag_s}}}``; None when the forwarder never ran on this journal.

    ``backlog``: items not yet PUBACKed by the upstream broker; ``unarchived``: items the
    archive has not acknowledged; ``lag_s``: age of the oldest item not yet sent (0: none).
    The alarms stream's ``archived`` is the records cursor: the archive acknowledges
    records by seq, whichever stream brought them.
    """
    got = upstream_backlog(src)
    if got is None:
        return None
    cur, meta, counts = got
    link = json.loads(meta.get(LINK_META) or "{}")
    streams: dict[str, Any] = {}
    for s in STREAMS:
        sent, archived = cur.get(s, (-1, -1))
        if s == "alarms":
            archived = cur.get("records", (-1, -1))[1]
        backlog, oldest, unarchived = counts[s]
        streams[s] = {"sent": sent, "archived": archived, "backlog": backlog, "unarchived": unarchived,
                      "lag_s": 0.0 if oldest is None else max(0.0, (now_ms - oldest) / 1000)}
    return {"enabled": meta.get("upstream_enabled") == "1", "connected": bool(link.get("connected")),
            "since_ms": link.get("since_ms"), "error": str(link.get("error", "")), "streams": streams}
