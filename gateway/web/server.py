"""Serve the dashboard from inside the gateway process, on a thread of its own.

waitress: a production WSGI server in pure Python (nothing to compile on a Pi), with a
small fixed thread pool, so a stuck browser cannot grow the gateway's threads or memory.
The web threads only read the journal through their own connections and put
acknowledgements on the station's queue; they never block ingest.

    self.web = WebServer(GatewaySource(self), cfg.web)   # in Gateway.__init__ (errors: exit 2)
    self.web.start()                                      # in Gateway.start()
    self.web.stop()                                       # first thing in Gateway.stop()
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from waitress.server import create_server  # type: ignore[import-untyped]

from .app import create_app
from .settings import WebConfig
from .source import DashboardSource

log = logging.getLogger("traceseal.web")


class WebServer:
    def __init__(self, source: DashboardSource, cfg: WebConfig) -> None:
        self.cfg = cfg
        self.app = create_app(source, cfg)  # token file problems surface here, at start-up
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port = cfg.port

    @property
    def port(self) -> int:
        """The bound port (useful with ``port = 0`` in tests)."""
        return self._port

    @property
    def url(self) -> str:
        host = self.cfg.bind if ":" not in self.cfg.bind else f"[{self.cfg.bind}]"
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        self._server = create_server(self.app, host=self.cfg.bind, port=self.cfg.port, threads=self.cfg.threads,
                                     ident="traceseal", channel_timeout=60, connection_limit=64,
                                     clear_untrusted_proxy_headers=True)
        self._port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)
        self._thread.start()
        log.info("dashboard on %s (public read: %s)", self.url, self.cfg.public_read)

    def _run(self) -> None:
        try:
            self._server.run()
        except Exception:  # the dashboard failing must never take the gateway down
            log.exception("dashboard server stopped")

    def stop(self) -> None:
        srv, self._server = self._server, None
        if srv is None:
            return
        srv.task_dispatcher.shutdown(cancel_pending=True, timeout=5)  # requests in progress finish first
        for channel in list(srv._map.values()):  # then the listener, the trigger, keep-alive connections
            try:
                channel.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
