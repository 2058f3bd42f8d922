"""The dashboard in a real browser (Debian's Chromium through Playwright): a live excursion
in a running gateway turns the page red, the nurse acknowledges it with the button, and
the acknowledgement is sealed in the journal under her name. Screenshots go to
tests/screenshots/ (gitignored) for a person to look at.

Skipped when Chromium or the playwright package is missing; never runs `playwright install`
(the browser comes from Debian: apt-get install chromium).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.dashboard import GatewaySource
from gateway.testing.dashboard import Rig, gs1_pack, make_rig, wait_for
from gateway.web.auth import load_token, write_token
from gateway.web.server import WebServer
from gateway.web.settings import WebConfig

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Chromium not installed (apt-get install chromium)", allow_module_level=True)

SHOTS = Path(__file__).resolve().parents[1] / "screenshots"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
HOUR = 3_600_000


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def station(tmp_path: Path) -> Iterator[tuple[Rig, WebServer, str]]:
    rig = make_rig(tmp_path / "rig")
    tok = tmp_path / "web.token"
    write_token(tok)
    web = WebServer(GatewaySource(rig.gw), WebConfig(port=0, token_file=tok, refresh_s=2))
    web.start()
    try:
        yield rig, web, load_token(tok)
    finally:
        web.stop()
        rig.close()


def normal_day(rig: Rig) -> None:
    """24 h of a healthy fridge and freezer, stock booked in, old warnings acknowledged."""
    rig.history("probe-1", [4600 + (i * 37) % 900 for i in range(96)], 900_000)  # every 15 min
    rig.history("probe-2", [-20500 + (i * 53) % 1500 for i in range(48)], 1_800_000)
    rig.reading(-20300, "probe-2", advance_ms=0)
    rig.door(False)
    for n in range(11):
        rig.scan("in-1", gs1_pack("LOT-B2", "270630", f"S{n}"))
    rig.gw.station.acknowledge("test-setup")  # the start-up out-of-stock warning
    wait_for(lambda: not [a for a in rig.gw.station.active() if not a.get("acknowledged")], what="setup acknowledged")


def test_live_excursion_and_acknowledge(browser: Any, station: tuple[Rig, WebServer, str]) -> None:
    rig, web, token = station
    SHOTS.mkdir(exist_ok=True)
    normal_day(rig)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(web.url + "/")
    assert page.url.endswith("/login")
    page.fill("input[name=name]", "Ana Ruiz")
    page.fill("input[name=password]", token)
    page.screenshot(path=str(SHOTS / "dashboard-login.png"))
    page.click("button[type=submit]")
    page.wait_for_selector("#banner.level-ok", timeout=15_000)
    page.wait_for_selector("[data-chart='fridge-1'] svg path", timeout=15_000)
    assert "All OK" in page.inner_text("#banner-text")
    assert page.is_hidden("#alarms-section")
    page.screenshot(path=str(SHOTS / "dashboard-ok.png"), full_page=True)

    for mc in (7800, 8000, 9200, 10100, 10900, 11300, 11500):  # out of range >= 5 min: high alarm
        rig.reading(mc)
    wait_for(lambda: bool(rig.alarm_records("raised")), what="high alarm sealed")
    page.wait_for_selector("#banner.level-fail", timeout=15_000)
    banner = page.inner_text("#banner-text")
    assert "ALARM" in banner and "fridge-1" in banner and "too warm" in banner
    page.wait_for_selector("#alarms li.alarm[data-alarm=high]")
    assert "Not acknowledged" in page.inner_text("#alarms")
    assert page.inner_text("[data-unit='fridge-1'] .temp").startswith("11.5")
    page.wait_for_selector("[data-chart='fridge-1'] svg circle[fill='#d32f2f']", timeout=15_000)  # red last point
    page.screenshot(path=str(SHOTS / "dashboard-alarm.png"), full_page=True)

    assert page.is_enabled("#ack-button")
    page.click("#ack-button")
    page.wait_for_selector("#alarms li[data-alarm=high] .state:has-text('Acknowledged by Ana Ruiz (dashboard)')",
                           timeout=15_000)  # (the page's CSP forbids wait_for_function's eval)
    acks = rig.alarm_records("acknowledged")
    assert any(a["alarm"] == "high" and a["by"] == "web:Ana Ruiz" for a in acks)
    assert page.is_disabled("#ack-button")
    banner = page.inner_text("#banner-text")
    assert "ALARM" in banner and "acknowledged" in banner  # acknowledged is not fixed: still too warm
    page.screenshot(path=str(SHOTS / "dashboard-acknowledged.png"), full_page=True)

    for mc in (7000, 5500, 5000):  # the fridge recovers: the acknowledged alarm closes
        rig.reading(mc)
    page.wait_for_selector("#banner.level-ok", timeout=15_000)
    phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    phone.context.add_cookies(page.context.cookies())
    phone.goto(web.url + "/")
    phone.wait_for_selector("#banner.level-ok", timeout=15_000)
    phone.wait_for_selector("[data-chart='fridge-1'] svg path", timeout=15_000)
    phone.screenshot(path=str(SHOTS / "dashboard-phone.png"), full_page=True)
    assert not errors, errors


def test_waste_gateway_in_trouble(browser: Any, tmp_path: Path) -> None:
    """A custody gateway whose broker and ledger are down and a bin is overdue: every panel
    says what is wrong in words, not only in colour."""
    from test_dashboard_custody import DAY0, a_day_of_waste, custody_journal

    from gateway.core.clock import FakeClock
    from gateway.testing.dashboard import StaticSource

    cfg, seal = custody_journal(tmp_path)
    a_day_of_waste(seal)
    missing = {"id": "missing-bin/R2/grai:B1/1", "alarm": "missing-bin", "state": "raised", "severity": "alarm",
               "route": "R2", "grai": "B1", "since_ms": DAY0 + 9 * HOUR, "raised_ms": DAY0 + 17 * HOUR,
               "value": 8 * HOUR, "threshold": 8 * HOUR, "value_unit": "ms", "acknowledged": False}
    source = StaticSource(cfg, FakeClock(start_ms=DAY0 + 18 * HOUR), alarms=[missing],
                          status={"broker_connected": False, "ledger_connected": False, "clock_synced": False,
                                  "ledger_error": "connection refused"})
    web = WebServer(source, WebConfig(port=0, public_read=True, refresh_s=2))
    web.start()
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(web.url + "/")
        page.wait_for_selector("#banner.level-fail", timeout=15_000)
        banner = page.inner_text("#banner-text")
        assert "R2" in banner and "bin not delivered in time" in banner
        page.wait_for_selector("#custody tr")
        assert page.locator("#custody tr").count() == 3
        assert "MISSING" in page.inner_text("#bins")
        assert page.is_hidden("#units-section")  # a waste gateway has no fridges
        assert "NOT connected" in page.inner_text("[data-health=broker]")
        assert "NOT connected" in page.inner_text("[data-health=ledger]")
        assert page.is_hidden("#ack-button") or page.locator("#ack-button").count() == 0  # no token: read-only
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SHOTS / "dashboard-waste-trouble.png"), full_page=True)
    finally:
        web.stop()


def test_https_sign_in_acknowledge_and_sign_out(browser: Any, tmp_path: Path) -> None:
    """Over HTTPS (a throwaway CA; the browser told to accept it as a pinned tablet would):
    the session cookie is Secure, the acknowledge button works, and after "Sign out" a copy
    of the cookie taken before it opens nothing."""
    import dataclasses

    from test_dashboard_security import ALARM, make_ca_and_cert

    from gateway.app import config as configmod
    from gateway.core.clock import FakeClock
    from gateway.journal import Journal
    from gateway.testing.dashboard import StaticSource
    from gateway.testing.station import make_station
    from gateway.web.settings import parse_web

    st = make_station(tmp_path / "st", 1, sensors=1)
    cfg = configmod.load(st.config_path)
    j = Journal(cfg.journal.path)
    j.bind_identity(cfg.gateway_id, "00" * 32)
    j.close()
    source = StaticSource(cfg, FakeClock(), alarms=[ALARM])
    _, cert, key = make_ca_and_cert(tmp_path)
    tok = tmp_path / "web.token"
    write_token(tok)
    web_cfg = parse_web({"token_file": str(tok), "cert_file": str(cert), "key_file": str(key), "refresh_s": 2},
                        tmp_path)
    assert web_cfg is not None
    web = WebServer(source, dataclasses.replace(web_cfg, port=0))
    web.start()
    try:
        ctx = browser.new_context(ignore_https_errors=True)
        page = ctx.new_page()
        page.goto(web.url + "/")
        assert page.url == web.url + "/login"
        page.fill("input[name=name]", "Ana Ruiz")
        page.fill("input[name=password]", load_token(tok))
        page.click("button[type=submit]")
        page.wait_for_selector("#alarms li.alarm[data-alarm=high]", timeout=15_000)
        cookies = ctx.cookies()
        assert [(c["name"], c["secure"], c["httpOnly"], c["sameSite"]) for c in cookies] == \
            [("traceseal_session", True, True, "Strict")]
        page.click("#ack-button")
        wait_for(lambda: source.acks == ["web:Ana Ruiz"], what="acknowledged over HTTPS")
        page.click("text=Sign out")
        page.wait_for_selector("a.signin, #ack-login, input[name=password]", timeout=15_000)
        thief = browser.new_context(ignore_https_errors=True)
        thief.add_cookies(cookies)
        stolen = thief.new_page()
        stolen.goto(web.url + "/")
        assert stolen.url == web.url + "/login"  # the copied cookie names a revoked session
        assert stolen.request.post(web.url + "/api/alarms/ack").status == 401
        assert source.acks == ["web:Ana Ruiz"]
        thief.close()
        ctx.close()
    finally:
        web.stop()
