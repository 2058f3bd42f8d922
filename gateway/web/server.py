"""Serve the dashboard from inside the gateway process, on a thread of its own.

waitress: a production WSGI server in pure Python (nothing to compile on a Pi), with a
small fixed thread pool, so a stuck browser cannot grow the gateway's threads or memory.
The web threads only read the journal through their own connections and put
acknowledgements on the station's queue; they never block ingest.

With ``[web] cert_file``/``key_file`` it serves HTTPS: waitress still parses HTTP and runs
the app, but its listener hands each connection to ``tls.TlsHandoff`` (see ``tls.py`` for
why this and not another server). Without them it serves plain HTTP, which ``settings``
allows on a loopback address only.

    self.web = WebServer(GatewaySource(self), cfg.web)   # in Gateway.__init__ (errors: exit 2)
    self.web.start()                                      # in Gateway.start()
    self.web.stop()                                       # first thing in Gateway.stop()
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments  # type: ignore[import-untyped]
from waitress.server import TcpWSGIServer, create_server  # type: ignore[import-untyped]
from waitress.task import ThreadedTaskDispatcher  # type: ignore[import-untyped]

from gateway.web.app import create_app
from gateway.web.settings import WebConfig
from gateway.web.source import DashboardSource
from gateway.web.tls import TlsHandoff, server_context

log = logging.getLogger("traceseal.web")


class _TlsWSGIServer(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP listener, except that an accepted connection goes to the TLS hand-off
    instead of straight into a channel; the hand-off attaches the plaintext end later."""

    handoff: TlsHandoff

    def handle_accept(self) -> None:
        try:
            v = self.accept()
        except OSError:
            return
        if v is not None:
            conn, addr = v
            self.handoff.accepted(conn, addr)

    def attach(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        """From a TLS thread: make ``sock`` a channel, on the loop thread (the socket map is
        not thread-safe), with the client's own address for REMOTE_ADDR and the limiter."""
        self.trigger.pull_trigger(lambda: self.channel_class(self, sock, addr, self.adj, map=self._map))


_SERVER_OPTIONS: dict[str, Any] = {"ident": "traceseal", "channel_timeout": 60, "connection_limit": 64,
                                   "clear_untrusted_proxy_headers": True}


class WebServer:
    def __init__(self, source: DashboardSource, cfg: WebConfig, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``clock`` (monotonic seconds) times sessions and the credential limiter; tests move it."""
        self.cfg = cfg
        self.app = create_app(source, cfg, clock=clock)  # token file problems surface here, at start-up
        self.ctx = server_context(cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
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
        return f"{'https' if self.ctx is not None else 'http'}://{host}:{self.port}"

    def start(self) -> None:
        if self.ctx is None:
            self._server = create_server(self.app, host=self.cfg.bind, port=self.cfg.port, threads=self.cfg.threads,
                                         **_SERVER_OPTIONS)
        else:
            adj = Adjustments(host=self.cfg.bind, port=self.cfg.port, threads=self.cfg.threads, url_scheme="https",
                              **_SERVER_OPTIONS)
            dispatcher = ThreadedTaskDispatcher()
            dispatcher.set_thread_count(adj.threads)
            srv = _TlsWSGIServer(self.app, map={}, dispatcher=dispatcher, adj=adj, sockinfo=adj.listen[0])
            srv.handoff = TlsHandoff(self.ctx, srv.attach, max_connections=adj.connection_limit)
            self._server = srv
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
        if isinstance(srv, _TlsWSGIServer):
            srv.handoff.closed = True
        srv.task_dispatcher.shutdown(cancel_pending=True, timeout=5)  # requests in progress finish first
        for channel in list(srv._map.values()):  # then the listener, the trigger, keep-alive connections
            try:
                channel.close()
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
