"""Operator surfaces served by the gateway: the local dashboard and its /metrics.

``create_app(source, web_cfg)`` builds the Flask app over a ``DashboardSource`` (the
Gateway, through ``gateway.app.dashboard.GatewaySource``); ``WebServer`` runs it under waitress on a thread of
the gateway process. Modules: ``settings`` ([web]), ``source`` (the seam), ``auth``,
``queries`` (read-only journal), ``tail`` (stock, custody), ``views`` (JSON), ``app``,
``server``, ``tls`` (HTTPS in front of waitress). Imports are lazy so ``gateway.web.metrics``
can use ``queries`` without Flask.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DashboardSource", "WebConfig", "WebServer", "create_app", "parse_web"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from gateway.web.app import create_app

        return create_app
    if name == "WebServer":
        from gateway.web.server import WebServer

        return WebServer
    if name in ("WebConfig", "parse_web"):
        from gateway.web import settings

        return getattr(settings, name)
    if name == "DashboardSource":
        from gateway.web import source

        return getattr(source, name)
    raise AttributeError(name)
