"""The dashboard as a Flask app: ``create_app(source, web_cfg)``.

Why Flask (served by waitress, see ``server.py``) and not Starlette/uvicorn or a hand-rolled
``http.server``: every data access here is synchronous SQLite, so an async framework buys
nothing and adds an event loop to reason about; Flask is small, pure Python on the Pi, long
maintained, autoescapes its Jinja templates (sensor ids and operator names are untrusted
text), and has a test client, so the tests exercise the real routing and auth without a
socket. (Its signed-cookie session is not used: a signed cookie cannot be revoked at sign-out,
so sessions live server-side, ``auth.SessionStore``.) Two runtime dependencies: ``flask`` and ``waitress``.

Routes: ``/`` page, ``/login``, ``/logout``, ``/api/overview`` (everything the page polls),
``/api/units/<id>/series``, ``/api/alarms``, ``/api/stock``, ``/api/custody``,
``/api/health``, ``POST /api/alarms/ack`` (and ``POST /ack``, the same as a plain form for
browsers without JavaScript), ``/metrics``, ``/healthz``. Reads are open only with
``public_read``; every state change needs the token (see ``auth.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    Response,
    abort,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from gateway.web import metrics, queries, views
from gateway.web.auth import (
    CredentialLimiter,
    Session,
    SessionStore,
    TokenCheck,
    clean_name,
    load_token,
    origin_ok,
    same_csrf,
)
from gateway.web.settings import WebConfig
from gateway.web.source import DashboardSource
from gateway.web.tail import JournalTail

HERE = Path(__file__).resolve().parent
COOKIE = "traceseal_session"


@dataclass
class Dashboard:
    """What every route shares: the data source, the settings, the auth state and the clock.

    One per app (``app.extensions["traceseal"]`` holds the same objects for tests); the
    ``register_*`` functions below each add one group of routes over it.
    """

    source: DashboardSource
    web: WebConfig
    clock: Callable[[], float]
    tokens: TokenCheck
    tail: JournalTail
    registry: Any
    limiter: CredentialLimiter
    sessions: SessionStore

    def current(self) -> Session | None:
        """This request's live server-side session (looked up once per request)."""
        if "session" not in g:
            g.session = self.sessions.get(request.cookies.get(COOKIE), self.clock()) if self.tokens.enabled else None
        return g.session  # type: ignore[no-any-return]

    def logged_in(self) -> bool:
        return self.current() is not None

    def bearer(self) -> bool:
        return bool(g.get("bearer"))

    def can_read(self) -> bool:
        return self.web.public_read or self.logged_in() or self.bearer()

    def api_read(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def inner(*a: Any, **kw: Any) -> Any:
            if not self.can_read():
                return jsonify(error="login required"), 401
            if not self.source.journal_path.exists():
                return jsonify(error="the journal does not exist yet"), 503
            return fn(*a, **kw)
        return inner

    def ack_by(self) -> tuple[str | None, int]:
        """Who is acknowledging, or (None, status) when not allowed (401 no auth, 403 CSRF/origin)."""
        if not origin_ok(request.headers.get("Origin"), request.host):
            return None, 403
        if self.bearer():
            body = request.get_json(silent=True) or {}
            name = clean_name(body.get("by") if isinstance(body, dict) else None)
            return f"api:{name}" if name else "api", 0
        s = self.current()
        if s is None:
            return None, 401
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if not same_csrf(s.csrf, sent):
            return None, 403
        return f"web:{s.name or 'unknown'}", 0


def _too_many(wait_s: int) -> Response:
    resp = Response(f"Too many wrong tokens or passwords from this address. Try again in {wait_s} s.\n",
                    status=429, mimetype="text/plain")
    resp.headers["Retry-After"] = str(wait_s)
    return resp


def create_app(source: DashboardSource, web: WebConfig | None = None, *,
               clock: Callable[[], float] = time.monotonic) -> Flask:
    """``clock``: monotonic seconds for session expiry and the credential limiter (passed in
    so tests can move time; wall-clock jumps on a Pi without RTC must not end sessions)."""
    web = web or WebConfig(public_read=True)
    tokens = TokenCheck(load_token(web.token_file) if web.token_file is not None else None)
    cust = source.cfg.station.custody
    tail = JournalTail(source.journal_path,
                       reconcile=cust.reconcile if cust is not None and getattr(cust, "stations", None) else None)
    registry = metrics.registry_for(source, tail)
    limiter = CredentialLimiter()
    sessions = SessionStore(idle_s=web.session_idle_minutes * 60, max_s=web.session_hours * 3600)

    app = Flask("gateway.web", template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=16 * 1024)  # no Flask session: see auth.SessionStore
    app.extensions["traceseal"] = {"source": source, "tail": tail, "registry": registry, "web": web,
                                   "sessions": sessions, "limiter": limiter}
    ctx = Dashboard(source, web, clock, tokens, tail, registry, limiter, sessions)
    register_guards(app, ctx)
    register_pages(app, ctx)
    register_acks(app, ctx)
    register_api(app, ctx)
    register_metrics(app, ctx)
    return app


def register_guards(app: Flask, ctx: Dashboard) -> None:
    """Bearer check before every request, security headers after it, ``/healthz``."""
    tokens, limiter, clock, too_many = ctx.tokens, ctx.limiter, ctx.clock, _too_many

    @app.before_request
    def check_bearer() -> Any:
        """Every ``Authorization`` header is a check of the token, so it goes through the limiter
        (before the comparison) like the login form; a wrong one is refused outright rather
        than served as if absent, so each try costs the guesser one of their few."""
        header = request.headers.get("Authorization")
        g.bearer = False
        if header is None or not tokens.enabled:
            return None
        addr = request.remote_addr or "?"
        wait = limiter.retry_after(addr, clock())
        if wait:
            return too_many(wait)
        if tokens.bearer(header):
            g.bearer = True
            return None
        limiter.failed(addr, clock())
        return Response("Bearer token refused\n", status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="traceseal"'})


    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" makes browsers send Origin: null on POST
        resp.headers["X-Frame-Options"] = "DENY"
        if request.path.startswith(("/api/", "/metrics")):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.get("/healthz")
    def healthz() -> Any:
        return Response("ok\n", mimetype="text/plain")



def register_pages(app: Flask, ctx: Dashboard) -> None:
    """``/`` and sign-in/out: the HTML pages, with a server-side session cookie."""
    source, web, tokens, sessions = ctx.source, ctx.web, ctx.tokens, ctx.sessions
    limiter, clock, current, can_read = ctx.limiter, ctx.clock, ctx.current, ctx.can_read

    @app.get("/")
    def index() -> Any:
        if not can_read():
            return redirect(url_for("login_form"))
        s = current()
        return render_template("dashboard.html", gateway=source.cfg.gateway_id, refresh_s=web.refresh_s,
                               user=s.name if s else None, csrf=s.csrf if s else "", can_login=tokens.enabled)

    @app.get("/login")
    def login_form() -> Any:
        s = current()
        return render_template("login.html", gateway=source.cfg.gateway_id, error=None, enabled=tokens.enabled,
                               name=s.name if s else "")

    @app.post("/login")
    def login() -> Any:
        addr = request.remote_addr or "?"
        if not origin_ok(request.headers.get("Origin"), request.host):
            abort(403)
        wait = limiter.retry_after(addr, clock()) if tokens.enabled else 0
        if wait:
            page = Response(render_template(
                "login.html", gateway=source.cfg.gateway_id, enabled=tokens.enabled, name="",
                error=f"Too many wrong passwords from this device. Wait {wait} seconds and try again."), status=429)
            page.headers["Retry-After"] = str(wait)
            return page
        name = clean_name(request.form.get("name"))
        if not tokens.matches(request.form.get("password", "")):
            if tokens.enabled:
                limiter.failed(addr, clock())
            return render_template("login.html", gateway=source.cfg.gateway_id, enabled=tokens.enabled, name=name,
                                   error="Wrong password."), 401
        if not name:
            return render_template("login.html", gateway=source.cfg.gateway_id, enabled=tokens.enabled, name="",
                                   error="Please type your name: it is recorded with each acknowledgement."), 400
        sessions.revoke(request.cookies.get(COOKIE))  # a new id at every sign-in (no session fixation)
        sid, s = sessions.create(name, clock())
        resp = redirect(url_for("index"))
        resp.set_cookie(COOKIE, sid, max_age=sessions.remaining_s(s, clock()), path="/", httponly=True,
                        samesite="Strict", secure=web.tls)
        return resp

    @app.post("/logout")
    def logout() -> Any:
        s = current()
        if s is not None and same_csrf(s.csrf, request.form.get("csrf")):
            sessions.revoke(request.cookies.get(COOKIE))
        resp = redirect(url_for("index"))
        if s is None or same_csrf(s.csrf, request.form.get("csrf")):
            resp.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=web.tls)
        return resp



def register_acks(app: Flask, ctx: Dashboard) -> None:
    """Alarm acknowledgement, as JSON (``/api/alarms/ack``) and as a plain form (``/ack``)."""
    source, ack_by = ctx.source, ctx.ack_by

    @app.post("/api/alarms/ack")
    def ack() -> Any:
        by, status = ack_by()
        if by is None:
            return jsonify(error="login required" if status == 401
                           else "forbidden (missing CSRF token or foreign origin)"), status
        waiting = sum(1 for a in source.active_alarms() if not a.get("acknowledged"))
        source.acknowledge(by)
        return jsonify(requested=True, by=by, unacknowledged=waiting), 202

    @app.post("/ack")
    def ack_form() -> Any:
        by, status = ack_by()
        if by is None:
            return redirect(url_for("login_form")) if status == 401 else abort(403)
        source.acknowledge(by)
        return redirect(url_for("index"))



def register_api(app: Flask, ctx: Dashboard) -> None:
    """The read-only JSON the page polls (``/api/*``)."""
    source, web, tail, current, api_read = ctx.source, ctx.web, ctx.tail, ctx.current, ctx.api_read

    def overview_data() -> dict[str, Any]:
        now = source.now_ms()
        tail.refresh()
        active = views.alarms(source)
        with queries.connect(source.journal_path) as db:
            units = views.units(source, db, active, now)
            stats = queries.journal_stats(db)
        health = views.health(source, stats, now)
        stock = views.stock(source, tail, now)
        custody = views.custody(source, tail, now)
        alarm_level = views.worst(["fail" if a["present"] and a.get("severity") == "alarm" else "warn" for a in active])
        return {"gateway": source.cfg.gateway_id, "now_ms": now, "refresh_s": web.refresh_s,
                "level": views.worst([alarm_level, health["level"]]), "alarm_level": alarm_level,
                "units": units, "alarms": active, "stock": stock, "custody": custody, "health": health,
                "user": s.name if (s := current()) else None}

    @app.get("/api/overview")
    @api_read
    def overview() -> Any:
        return jsonify(overview_data())

    @app.get("/api/units/<unit_id>/series")
    @api_read
    def unit_series(unit_id: str) -> Any:
        hours = request.args.get("hours", 24, type=int) or 24
        with queries.connect(source.journal_path) as db:
            data = views.series(source, db, unit_id, source.now_ms(), max(1, min(hours, 24 * 31)))
        return jsonify(data) if data is not None else (jsonify(error=f"no unit {unit_id!r}"), 404)

    @app.get("/api/alarms")
    @api_read
    def alarms() -> Any:
        return jsonify(alarms=views.alarms(source))

    @app.get("/api/stock")
    @api_read
    def stock() -> Any:
        tail.refresh()
        return jsonify(views.stock(source, tail, source.now_ms()))

    @app.get("/api/custody")
    @api_read
    def custody() -> Any:
        tail.refresh()
        return jsonify(views.custody(source, tail, source.now_ms()))

    @app.get("/api/health")
    @api_read
    def health() -> Any:
        with queries.connect(source.journal_path) as db:
            stats = queries.journal_stats(db)
        return jsonify({**views.health(source, stats, source.now_ms()), "journal": stats})



def register_metrics(app: Flask, ctx: Dashboard) -> None:
    """``/metrics`` (Prometheus text), when ``[web] metrics`` is on; reads need the same access as the API."""
    web, can_read, registry = ctx.web, ctx.can_read, ctx.registry
    if web.metrics:
        @app.get("/metrics")
        def metrics_endpoint() -> Any:
            if not can_read():
                return Response("Bearer token required\n", status=401, mimetype="text/plain",
                                headers={"WWW-Authenticate": 'Bearer realm="traceseal"'})
            return Response(metrics.render(registry), mimetype=None, content_type=metrics.CONTENT_TYPE)
