"""The in-browser verification page (gateway/web/static/verify/) agrees with `traceseal verify`.

The page verifies a bundle with no server: strict JSON, JCS, Ed25519 and SHA-256 (WebCrypto,
or plain JavaScript where a browser withholds WebCrypto), Merkle proofs, the header chain and
the anchors, in the nine numbered steps of docs/proof-format.md §9. Every bundle here is run
through the CLI (``python -m ledger_client verify FILE --json``, a subprocess, as a black box)
and through the page in a real headless Chromium (Debian's package, driven by Playwright with
``executable_path``; no browser is downloaded). Both must agree: readable or not, ok or not,
the first failing step, and the whole set of failing steps.

Bundles:
* made by the project's own code (journal, sealer, block sealer, local ledger, anchorer,
  ``gateway.chain.export``), good and tampered, run through the page's real UI (file input, key
  field) with screenshots in tests/screenshots/;
* docs/example/bundle.json;
* the whole spec-audit corpus of tests/independent/test_independent_verifier.py (its
  example, rich-chain, closed-gap, normative, lot/route and required-member variants);
* EVM anchors on a real anvil node, without a node (step 6 fails, as the CLI without
  --rpc) and with the node's RPC URL (the page asks the node itself).
"""

from __future__ import annotations

import base64
import copy
import functools
import importlib.util
import json
import math
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.chain.anchoring import Anchorer
from gateway.chain.blocks import BlockSealer
from gateway.chain.export import export_range, export_record
from gateway.core.clock import FakeClock
from gateway.ingest.seal import Sealer
from gateway.journal import Journal
from ledger_client.canonical import canonical
from ledger_client.keys import public_hex
from ledger_client.local import LocalLedger
from ledger_client.verify import loads_strict

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "gateway" / "web" / "static" / "verify"
PAGE = STATIC / "index.html"
SHOTS = REPO / "tests" / "screenshots"
EXAMPLE = REPO / "docs" / "example" / "bundle.json"

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]

GW_ID = "station-01"
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, FakeClock's start
MIN = 60_000


# ---------------------------------------------------------------------------------------------
# Chromium (Debian package) and Playwright
# ---------------------------------------------------------------------------------------------

def _find_chromium() -> str | None:
    override = os.environ.get("TRACESEAL_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    return next((c for c in CHROMIUM_CANDIDATES if Path(c).is_file()), None)


def _install_chromium() -> str:
    """apt-get install chromium (root, or passwordless sudo); returns what went wrong, if anything."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    prefix: list[str] = []
    if os.geteuid() != 0:
        if (shutil.which("sudo") is None
                or subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode):
            return "not root and no passwordless sudo for apt-get"
        prefix = ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log = []
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        try:
            proc = subprocess.run(prefix + cmd, capture_output=True, text=True, timeout=900, env=env,
                                  check=False)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} timed out"
        log.append(f"$ {' '.join(cmd)} -> {proc.returncode}\n{proc.stderr[-600:]}")
    return "" if _find_chromium() else "apt-get install chromium did not install it:\n" + "\n".join(log)


@pytest.fixture(scope="session")
def vp_chromium() -> str:
    path = _find_chromium()
    if path is None:
        problem = _install_chromium()
        path = _find_chromium()
        if path is None:
            pytest.skip(f"Chromium (Debian package `chromium`) is missing and cannot be installed: {problem}")
    return path


@pytest.fixture(scope="session")
def vp_browser(vp_chromium: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # a missing dev dependency is an error, not a reason to skip
        raise RuntimeError("the Python package `playwright` is needed for tests/web (pip install playwright; "
                           "never `playwright install`: the tests use Debian's Chromium)") from exc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=vp_chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class VpPage:
    """One browser tab on the page (file://), with every page error collected."""

    def __init__(self, browser: Any, *, no_webcrypto: bool = False, url: str | None = None,
                 viewport: tuple[int, int] = (1280, 900)) -> None:
        self.ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=1)
        if no_webcrypto:  # as a browser does for a page served over plain http from another machine
            self.ctx.add_init_script("Object.defineProperty(globalThis.crypto, 'subtle', {value: undefined});")
        self.page = self.ctx.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url or PAGE.as_uri())
        self.page.wait_for_selector("body[data-state=ready]")

    def close(self) -> None:
        self.ctx.close()

    # -- the page's verifier, called directly (same code the UI runs) --------------------
    def verify_bytes(self, data: bytes, pins: dict[str, Any]) -> dict[str, Any]:
        return self.page.evaluate(JS_VERIFY, [base64.b64encode(data).decode(), page_opts(pins)])

    # -- the real UI: file input and key fields -----------------------------------------------
    def verify_file_ui(self, path: Path, pins: dict[str, Any]) -> dict[str, Any]:
        pg = self.page
        pg.evaluate("document.getElementById('more').open = true")
        pg.fill("#gateway-key", pins.get("gateway_key") or "")
        pg.fill("#ledger-key", pins.get("ledger_key") or "")
        pg.fill("#rpc-url", pins.get("rpc") or "")
        pg.fill("#chain-id", "" if pins.get("chain_id") is None else str(pins["chain_id"]))
        pg.fill("#sender", pins.get("sender") or "")
        pg.evaluate("document.getElementById('more').open = false")
        pg.evaluate("document.body.setAttribute('data-state', 'waiting')")
        pg.set_input_files("#file", str(path))
        pg.wait_for_selector("body[data-state=done]", timeout=60_000)
        return read_ui_result(pg)


JS_VERIFY = """async ([b64, opts]) => {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const r = await TraceSealVerify.verifyBytes(bytes, opts);
  if (!r.readable) return {readable: false, error: r.error};
  if (r.noCrypto) return {readable: true, noCrypto: true};
  const failing = r.report.steps.filter(s => !s.ok).map(s => s.step);
  return {readable: true, ok: r.report.ok, result: r.report.result, failing, first: failing.length ? failing[0] : null,
          names: r.report.steps.map(s => s.name), summary: r.report.summary,
          failures: Object.fromEntries(r.report.steps.map(s => [s.step, s.failures.slice(0, 4)]))};
}"""


def read_ui_result(pg: Any) -> dict[str, Any]:
    banner = pg.locator("#banner")
    kind = banner.get_attribute("data-result")
    text = banner.inner_text()
    if kind == "unreadable":
        return {"readable": False, "banner": text}
    steps = pg.locator("#steps li.step")
    failing = [int(steps.nth(i).get_attribute("data-step") or 0) for i in range(steps.count())
               if steps.nth(i).get_attribute("data-ok") == "false"]
    names = [steps.nth(i).locator("code").inner_text() for i in range(steps.count())]
    first = int(banner.get_attribute("data-first-step")) if kind == "failed" else None
    result = {"verified": "verified", "intact": "intact-key-not-pinned", "failed": "failed"}[kind or ""]
    return {"readable": True, "ok": kind in ("verified", "intact"), "result": result, "first": first,
            "failing": failing, "names": names, "banner": text}


def page_opts(pins: dict[str, Any]) -> dict[str, Any]:
    return {"gatewayKey": pins.get("gateway_key"), "ledgerKey": pins.get("ledger_key"), "rpcUrl": pins.get("rpc"),
            "chainId": pins.get("chain_id"), "sender": pins.get("sender"), "confirmations": pins.get("confirmations")}


@pytest.fixture
def vp_page(vp_browser: Any) -> Iterator[VpPage]:
    p = VpPage(vp_browser)
    yield p
    p.close()
    assert not p.errors, f"errors in the page: {p.errors}"


@pytest.fixture(scope="module")
def vp_api_page(vp_browser: Any) -> Iterator[VpPage]:
    p = VpPage(vp_browser)
    yield p
    p.close()
    assert not p.errors, f"errors in the page: {p.errors}"


# ---------------------------------------------------------------------------------------------
# The reference: the CLI as a black box
# ---------------------------------------------------------------------------------------------

STEP_NAMES = ["format", "record-sigs", "header-sigs", "inclusion", "chain", "anchors", "coverage", "anchor-time",
              "selection"]


def cli_args(pins: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for k, opt in (("gateway_key", "--gateway-key"), ("ledger_key", "--ledger-key"), ("rpc", "--rpc"),
                   ("chain_id", "--chain-id"), ("sender", "--sender"), ("confirmations", "--confirmations")):
        if pins.get(k) is not None:
            out += [opt, str(pins[k])]
    return out


def run_cli(path: Path, pins: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "ledger_client", "verify", str(path), "--json", *cli_args(pins)],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode == 2:
        assert "cannot read bundle" in proc.stderr, proc.stderr
        return {"readable": False, "stderr": proc.stderr.strip()}
    if proc.returncode not in (0, 1, 4) or not proc.stdout.strip() or "Traceback" in proc.stderr:
        return {"readable": True, "crash": True, "rc": proc.returncode, "stderr": proc.stderr[-800:]}
    rep = json.loads(proc.stdout)
    failing = [s["step"] for s in rep["steps"] if not s["ok"]]
    assert [s["name"] for s in rep["steps"]] == STEP_NAMES
    # exit 0 VERIFIED (key pinned), 4 INTACT (every step passed, key not pinned), 1 FAILED
    assert proc.returncode == {"verified": 0, "intact-key-not-pinned": 4, "failed": 1}[rep["result"]]
    assert rep["ok"] == (rep["result"] != "failed") and rep["key_pinned"] == (pins.get("gateway_key") is not None)
    return {"readable": True, "ok": rep["ok"], "result": rep["result"], "failing": failing,
            "first": failing[0] if failing else None,
            "failures": {s["step"]: s["failures"][:4] for s in rep["steps"]}}


def outcome(r: dict[str, Any]) -> Any:
    if r.get("crash"):
        return "crash"
    if not r["readable"]:
        return "unreadable"
    return {"ok": r["ok"], "result": r["result"], "first": r["first"], "failing": r["failing"]}


def assert_agree(name: str, cli: dict[str, Any], page: dict[str, Any]) -> None:
    assert outcome(page) == outcome(cli), (
        f"{name}: page {outcome(page)} vs CLI {outcome(cli)}\n"
        f"page failures: {page.get('failures') or page.get('banner')}\n"
        f"CLI failures: {cli.get('failures') or cli.get('stderr')}")


# ---------------------------------------------------------------------------------------------
# Bundles made by the project's own code
# ---------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    text: str | None = None
    data: bytes | None = None
    pins: dict[str, Any] = field(default_factory=dict)
    expect_first: Any = "any"  # a step number, None (verified), "unreadable", or "any" (no claim)

    def bytes(self) -> bytes:
        return self.data if self.data is not None else (self.text or "").encode("utf-8")


class VpStation:
    """A vaccine fridge station: two probes every 5 minutes for 6 hours, 12-record blocks,
    anchored hourly on the embedded local ledger. Built with the gateway's own code paths."""

    def __init__(self, tmp: Path, hours: int = 6) -> None:
        self.clock = FakeClock()
        self.key = Ed25519PrivateKey.generate()
        self.ledger_key = Ed25519PrivateKey.generate()
        self.journal = Journal(tmp / "journal.sqlite")
        self.journal.bind_identity(GW_ID, public_hex(self.key))
        self.sealer = Sealer(GW_ID, self.key, 0)
        self.blocks = BlockSealer(self.journal, self.key, GW_ID, self.clock, max_records=12, max_seconds=3600)
        self.ledger = LocalLedger(tmp / "ledger.sqlite", self.ledger_key, clock_ms=self.clock.now_ms)
        self.anchorer = Anchorer(self.journal, self.ledger, self.clock, GW_ID)
        rng = random.Random(7)
        ctr = {"probe-1": 100, "probe-2": 500}
        for i in range(hours * 12):
            rows = []
            for probe, base in (("probe-1", 4600), ("probe-2", 5200)):
                v = base + int(500 * math.sin(i / 9)) + rng.randint(-80, 80)
                if probe == "probe-1" and 30 <= i < 35:  # door left open around 02:30: an excursion
                    v = 8400 + 250 * (i - 30)
                ctr[probe] += 1
                rows.append(self.sealer.seal(
                    {"type": "reading", "sensor": probe, "kind": "temperature", "value": v, "unit": "mC",
                     "source": {"adapter": "traceseal", "transport": "mqtt", "auth": "ed25519", "ctr": ctr[probe],
                                "topic": f"traceseal/sensors/{probe}/reading"}},
                    time_ms=self.clock.now_ms(), synced=True))
            self.journal.commit_batch(rows, [], {}, {})
            self.clock.advance(5 * MIN)
            self.blocks.maybe_seal()
            if i % 12 == 11:
                self.clock.advance(2000)
                while self.anchorer.step() != "idle":
                    pass
        self.blocks.maybe_seal(force=True)
        while self.anchorer.step() != "idle":
            pass

    @property
    def pub(self) -> str:
        return public_hex(self.key)


def dumps(b: Any) -> str:
    return json.dumps(b, indent=1, sort_keys=True, ensure_ascii=False)


def _flip_hex(h: str) -> str:
    return ("0" if h[0] != "0" else "1") + h[1:]


def station_cases(st: VpStation) -> list[Case]:
    key = st.pub
    other = public_hex(Ed25519PrivateKey.generate())
    pinned = {"gateway_key": key}
    rng_b = export_range(st.journal, "probe-1", T0 + 60 * MIN, T0 + 240 * MIN, now_ms=T0 + 400 * MIN)
    assert len(rng_b["blocks"]) >= 7 and len(rng_b["records"]) >= 30, (len(rng_b["blocks"]), len(rng_b["records"]))
    seq = next(r["record"]["seq"] for r in rng_b["records"]
               if r["record"]["time_ms"] >= T0 + 150 * MIN and r["record"]["sensor"] == "probe-1")
    rec_b = export_record(st.journal, seq, now_ms=T0 + 400 * MIN)
    cases = [
        Case("range-good-pinned", dumps(rng_b), pins=pinned, expect_first=None),
        Case("range-good-unpinned", dumps(rng_b), expect_first=None),
        Case("record-good-pinned", dumps(rec_b), pins=pinned, expect_first=None),
    ]

    def variant(name: str, base: dict[str, Any], mutate: Any, expect: Any, pins: dict[str, Any] | None = None) -> None:
        b = copy.deepcopy(base)
        mutate(b)
        cases.append(Case(name, dumps(b), pins=pinned if pins is None else pins, expect_first=expect))

    mid = len(rng_b["blocks"]) // 2
    mid_block = rng_b["blocks"][mid]["header"]["block"]

    def changed_value(b: Any) -> None:
        b["records"][3]["record"]["value"] += 1  # one milli-degree

    def changed_proof(b: Any) -> None:
        b["records"][2]["proof"][0] = _flip_hex(b["records"][2]["proof"][0])

    def changed_header(b: Any) -> None:
        b["blocks"][2]["header"]["last_time_ms"] += 1

    def dropped_block(b: Any) -> None:
        del b["blocks"][mid]

    def dropped_block_and_records(b: Any) -> None:
        del b["blocks"][mid]
        b["records"] = [r for r in b["records"] if r["block"] != mid_block]

    def forged_anchor_time(b: Any) -> None:
        b["anchors"][0]["entry"]["time_ms"] -= 3_600_000

    def removed_anchors(b: Any) -> None:
        b["anchors"] = []

    def anchors_member_absent(b: Any) -> None:
        del b["anchors"]

    def other_sensor(b: Any) -> None:
        b["selection"]["sensor"] = "probe-2"

    def reordered(b: Any) -> None:
        b["blocks"].reverse()
        b["records"].reverse()

    def record_value_float(b: Any) -> None:
        b["records"][0]["record"]["value"] = 4.5

    variant("range-changed-record-value", rng_b, changed_value, 2)
    variant("range-changed-proof-hash", rng_b, changed_proof, 4)
    variant("range-changed-header-field", rng_b, changed_header, 3)
    variant("range-dropped-middle-block", rng_b, dropped_block, 4)
    variant("range-dropped-middle-block-and-its-records", rng_b, dropped_block_and_records, 5)
    variant("range-forged-anchor-time", rng_b, forged_anchor_time, 6)
    variant("range-removed-anchors", rng_b, removed_anchors, 6)
    variant("range-anchors-member-absent", rng_b, anchors_member_absent, 1)
    variant("range-selection-other-sensor", rng_b, other_sensor, 9)
    variant("range-reordered-arrays", rng_b, reordered, None)
    variant("range-record-value-float", rng_b, record_value_float, 2)
    variant("range-wrong-pinned-key", rng_b, lambda b: None, 1, {"gateway_key": other})
    def changed_only_value(b: Any) -> None:
        b["records"][0]["record"]["value"] += 1

    variant("record-changed-record-value", rec_b, changed_only_value, 2)
    variant("record-wrong-pinned-key", rec_b, lambda b: None, 1, {"gateway_key": other})

    text = dumps(rng_b)
    v0 = rng_b["records"][0]["record"]["value"]
    dup = text.replace(f'"value": {v0}', f'"value": {v0 + 1000}, "value": {v0}', 1)
    assert dup != text
    cases.append(Case("range-duplicate-member-name", dup, pins=pinned, expect_first="unreadable"))
    cases.append(Case("range-NaN", text.replace(f'"value": {v0}', '"value": NaN', 1), pins=pinned,
                      expect_first="unreadable"))
    cases.append(Case("range-byte-order-mark", data=b"\xef\xbb\xbf" + text.encode(), pins=pinned,
                      expect_first="unreadable"))
    cases.append(Case("range-truncated", text[: len(text) // 2], pins=pinned, expect_first="unreadable"))
    cases.append(Case("range-not-utf8", data=text.encode().replace(b'"probe-1"', b'"probe-\xff"', 1), pins=pinned,
                      expect_first="unreadable"))
    return cases


@pytest.fixture(scope="module")
def vp_station(tmp_path_factory: pytest.TempPathFactory) -> VpStation:
    return VpStation(tmp_path_factory.mktemp("vp-station"))


@pytest.fixture(scope="module")
def vp_station_cases(vp_station: VpStation, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Case, Path]]:
    d = tmp_path_factory.mktemp("vp-station-bundles")
    out = {}
    for c in station_cases(vp_station):
        p = d / f"{c.name}.json"
        p.write_bytes(c.bytes())
        out[c.name] = (c, p)
    return out


def example_cases() -> list[Case]:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = json.loads((REPO / "docs" / "example" / "keys.json").read_text())
    gw, lk = keys["gateway"]["public_key"], keys["ledger"]["public_key"]
    b = json.loads(text)
    changed = copy.deepcopy(b)
    changed["records"][0]["record"]["value"] = 4413  # §12: fails steps 2 and 4
    return [
        Case("example", text, expect_first=None),
        Case("example-pinned", text, pins={"gateway_key": gw, "ledger_key": lk}, expect_first=None),
        Case("example-pinned-uppercase", text, pins={"gateway_key": gw.upper()}, expect_first=None),
        Case("example-value-4413", dumps(changed), pins={"gateway_key": gw}, expect_first=2),
        Case("example-wrong-ledger-key", text, pins={"ledger_key": gw}, expect_first=6),
    ]


# ---------------------------------------------------------------------------------------------
# The spec-audit corpus (tests/independent), reused as bundles
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _independent() -> Any:
    path = REPO / "tests" / "independent" / "test_independent_verifier.py"
    spec = importlib.util.spec_from_file_location("vp_independent_corpus", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def independent_cases() -> tuple[list[Case], list[tuple[Case, Any]]]:
    """Every bundle the spec audit builds (minus --ledger-file pins, which a page cannot use);
    and separately the §9.5 cases where the CLI departs from the spec, with the spec's steps."""
    T = _independent()
    V = T.V
    cases: list[Case] = []

    def add(name: str, b: Any = None, raw: str | None = None, pins: dict[str, Any] | None = None) -> None:
        pins = dict(pins or {})
        if "ledger_file" in pins:
            return
        cases.append(Case(name, raw if raw is not None else T.dumps(b), pins=pins))

    for name, mutate, pins, _ in T.EXAMPLE_VARIANTS:
        b = T.example_bundle()
        mutate(b)
        add(f"ex:{name}", b, pins=pins)
    chain = T.rich_chain()
    for name, mutate, pins, _ in T.RICH_VARIANTS:
        b = T.range_bundle(chain)
        mutate(chain, b)
        add(f"rich:{name}", b, pins=pins)
    for s in range(len(chain.records)):
        add(f"rich:record-{s}", chain.export_record(s), pins={"gateway_key": T.GW_PUB, "ledger_key": T.LEDGER_PUB})
    b = T.range_bundle(chain)
    b["anchors"].insert(0, chain.anchor_obj(1))
    add("rich:two-anchors", b)
    for gap, name, mutate, pins, _ in T.CLOSED_GAPS:
        b, raw = T.build_gap_case(mutate)
        add(f"gap:{gap}-{name}", b, raw=raw, pins=pins)
    for name, build, _ in T.NORMATIVE_VARIANTS:
        add(f"norm:{name}", build())
    for name, build, _ in T.LOT_ROUTE_CASES:
        add(f"lotroute:{name}", build())
    for name, build, pins, _ in T.ROTATION_CASES:
        add(f"rotation:{name}", build(), pins=pins)
    wrong = T.HEADER_WRONG_TYPE
    for fld, typ in sorted(V.HEADER_FIELDS.items()):
        for how in ("missing", "wrong-type"):
            b = T.example_bundle()
            if how == "missing":
                del b["blocks"][0]["header"][fld]
            else:
                b["blocks"][0]["header"][fld] = wrong[typ]
            T.resign_header(b)
            T.reanchor(b)
            add(f"hdr:{fld}-{how}", b)
    for fld, typ in sorted(V.RECORD_FIELDS.items()):
        for how in ("missing", "wrong-type"):
            b = T.example_bundle()
            if how == "missing":
                del b["records"][0]["record"][fld]
            else:
                b["records"][0]["record"][fld] = wrong[typ]
            T.resign_record(b)
            add(f"rec:{fld}-{how}", b)
    hh = T.example_bundle()["anchors"][0]["entry"]["header_hash"]
    for name, value in (("same", hh), ("null", None), ("other", "ab" * 32), ("uppercase", hh.upper())):
        b = T.example_bundle()
        b["anchors"][0]["header_hash"] = value
        add(f"top-header-hash:{name}", b)
    add("rich:range-end-between-blocks", chain.export_range("probe-1", T.t(8) - 100, T.t(12) + 100))
    old = chain.export({"type": "range", "sensor": "probe-1", "from_ms": T.t(8) - 100, "to_ms": T.t(12) + 100},
                       [8, 10, 12], 1, 3, [chain.anchored_blocks()[3]])
    add("rich:range-old-rule", old)
    c = T.Chain()
    for s in range(4):
        c.add("probe-1", T.t(s), 4000, clock_synced=(s < 2))
    c.seal(2)
    c.seal(2, clock_synced=False, sealed_delay=10**9)
    c.anchor(1, T.t(3) - 5000)
    add("unsynced-after-anchor", c.export_record(3))

    divergences = []
    for item, name, build, mine_steps, _cli in T.REMAINING_DIVERGENCES:
        divergences.append((Case(f"9.5.{item}:{name}", T.dumps(build())), mine_steps))
    return cases, divergences


def _write_all(tmp: Path, cases: list[Case]) -> list[Path]:
    paths = []
    for i, c in enumerate(cases):
        p = tmp / f"case{i:03d}.json"
        p.write_bytes(c.bytes())
        paths.append(p)
    return paths


def _cli_all(paths: list[Path], cases: list[Case]) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=4) as ex:
        return list(ex.map(lambda pc: run_cli(pc[0], pc[1].pins), zip(paths, cases)))


# ---------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------

def test_page_is_static_and_offline(vp_page: VpPage, vp_station_cases: dict[str, tuple[Case, Path]]) -> None:
    """Static files only, nothing from another host: every request the page makes while
    loading and verifying stays on file://."""
    html = PAGE.read_text()
    for name in ("jcs.js", "verify.js", "page.js", "ed25519.js", "style.css"):
        assert (STATIC / name).is_file(), name
        assert name in html
    for f in STATIC.iterdir():
        text = f.read_text()
        for bad in ("<script src=\"http", "<link href=\"http", "src=\"//", "@import", "url(http", "cdn"):
            assert bad not in text, (f.name, bad)
    case, path = vp_station_cases["range-good-pinned"]
    res = vp_page.verify_file_ui(path, case.pins)
    assert res["ok"] and res["result"] == "verified", res
    assert vp_page.requests and all(u.startswith("file://") for u in vp_page.requests), vp_page.requests


def test_strict_json_and_jcs_match_the_reference(vp_api_page: VpPage) -> None:
    """The page reads JSON as the CLI does (§1, §9.1) and its JCS bytes equal the reference's."""
    pg = vp_api_page.page
    texts = [
        '{"a":1,"a":2}', '{"x":{"y":[{"k":1,"k":1}]}}', '{"a":NaN}', '{"a":Infinity}', '{"a":-Infinity}',
        "\ufeff{}", "[1,]", "{'a':1}", "01", "1.", "-", '"\\x"', '"a\nb"', "", " ", "nul", "[1] x",
        "1" * 4301, "1" * 4300, '{"a":1.0}', '{"a":1e3}', '{"a":-0}', '{"a":"\\ud800"}', '{"\\u00e9":1,"é":2}',
        '{"\\ud83d\\ude00":1,"😀":2}', '[9007199254740993]', ' {"a" : [ true , false , null ] } ', '"\\u2028\u007f"',
    ]
    for t in texts:
        try:
            loads_strict(t)
            want = True
        except ValueError:
            want = False
        got = pg.evaluate("t => { try { TraceSealJCS.parseStrict(t); return true; } catch (e) { return false; } }", t)
        assert got == want, (t[:40], got, want)

    values = [
        {"b": 1, "a": [True, False, None, -5, 0, 9007199254740991], "é": "x", "\ue000": 1, "😀": 2, "A": {}},
        {"s": "quote\" back\\ slash/ \b\t\n\f\r \x00\x01\x1f \x7f \u2028 é 😀 \ud7ff"},
        {"gateway": "gw-demo-1", "seq": 1, "source": {"topic": "a/b", "ctr": 42}, "v": 1},
        [], {}, "", -9007199254740991,
    ]
    for v in values:
        text = json.dumps(v, ensure_ascii=True)
        got = pg.evaluate("t => TraceSealJCS.canonicalText(TraceSealJCS.parseStrict(t))", text)
        assert got.encode("utf-8") == canonical(v), (v, got)
    for t in ('{"a":1.0}', '{"a":1e3}', '{"a":9007199254740992}', '{"a":"\\udc00"}', '{"a":[0.5]}'):
        msg = pg.evaluate("t => { try { TraceSealJCS.canonicalText(TraceSealJCS.parseStrict(t)); return 'ok'; }"
                          " catch (e) { return e.name; } }", t)
        assert msg == "MalformedError", t


def test_project_bundles_in_the_ui_agree_with_the_cli(vp_browser: Any,
                                                      vp_station_cases: dict[str, tuple[Case, Path]],
                                                      tmp_path: Path) -> None:
    """Bundles exported by the gateway's code, good and tampered, opened through the page's file
    input with the key typed into its field: same verdict and same first failing step as the CLI."""
    cases = list(vp_station_cases.values())
    for c in example_cases():
        p = tmp_path / f"{c.name}.json"
        p.write_bytes(c.bytes())
        cases.append((c, p))
    clis = _cli_all([p for _, p in cases], [c for c, _ in cases])
    page = VpPage(vp_browser)
    try:
        for (case, path), cli in zip(cases, clis):
            if case.expect_first != "any":
                assert outcome(cli) == "unreadable" if case.expect_first == "unreadable" else \
                    cli.get("first") == case.expect_first, (case.name, cli)
            ui = page.verify_file_ui(path, case.pins)
            assert_agree(case.name, cli, ui)
            if ui["readable"]:
                assert ui["names"] == STEP_NAMES
                want = {"verified": "✔ VERIFIED", "intact-key-not-pinned": "INTACT, KEY NOT PINNED",
                        "failed": f"FAILED at step {ui['first']}"}[ui["result"]]
                assert want in ui["banner"], (case.name, ui["banner"])
                if ui["result"] != "verified":
                    assert "✔ VERIFIED" not in ui["banner"]
            else:
                assert "CANNOT READ" in ui["banner"]
    finally:
        page.close()
    assert not page.errors, page.errors


def test_spec_audit_corpus_agrees_with_the_cli(vp_api_page: VpPage, tmp_path: Path) -> None:
    """Every bundle of the spec audit (tests/independent): the page and the CLI agree on
    readable, ok, the first failing step and the set of failing steps."""
    cases, _ = independent_cases()
    assert len(cases) > 150, len(cases)
    paths = _write_all(tmp_path, cases)
    clis = _cli_all(paths, cases)
    disagreements = []
    for case, cli in zip(cases, clis):
        page = vp_api_page.verify_bytes(case.bytes(), case.pins)
        if outcome(page) != outcome(cli):
            disagreements.append(f"{case.name}: page {outcome(page)} CLI {outcome(cli)}\n"
                                 f"   page: {page.get('failures') or page.get('error')}\n"
                                 f"   CLI:  {cli.get('failures') or cli.get('stderr')}")
    assert not disagreements, f"{len(disagreements)} of {len(cases)} disagree:\n" + "\n".join(disagreements)


def test_formerly_divergent_cases_agree_with_the_cli(vp_api_page: VpPage, tmp_path: Path) -> None:
    """Hostile inputs on which the CLI once crashed or read true as 1 (spec §9.5): the CLI was
    fixed, and now the page, the CLI and the spec give the same failing steps on every one."""
    _, divergences = independent_cases()
    assert divergences
    paths = _write_all(tmp_path, [c for c, _ in divergences])
    clis = _cli_all(paths, [c for c, _ in divergences])
    for (case, spec_steps), cli in zip(divergences, clis):
        page = vp_api_page.verify_bytes(case.bytes(), case.pins)
        assert page["readable"] and page["failing"] == spec_steps, (case.name, page, spec_steps)
        assert cli.get("failing") == spec_steps, (case.name, cli)


def test_paste_and_drop(vp_page: VpPage, vp_station_cases: dict[str, tuple[Case, Path]]) -> None:
    pg = vp_page.page
    case, path = vp_station_cases["record-good-pinned"]
    pg.click("#paste-box summary")
    pg.fill("#paste", path.read_text())
    pg.fill("#gateway-key", "  " + case.pins["gateway_key"] + "\n")  # whitespace around a pasted key is trimmed
    pg.click("#verify")
    pg.wait_for_selector("body[data-state=done]")
    assert read_ui_result(pg)["ok"]

    tampered, tpath = vp_station_cases["range-changed-proof-hash"]
    pg.fill("#gateway-key", tampered.pins["gateway_key"])
    pg.evaluate("document.body.setAttribute('data-state', 'waiting')")
    pg.evaluate("""t => {
        const dt = new DataTransfer();
        dt.items.add(new File([t], 'dropped.json', {type: 'application/json'}));
        document.getElementById('drop').dispatchEvent(
            new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", tpath.read_text())
    pg.wait_for_selector("body[data-state=done]")
    res = read_ui_result(pg)
    assert res["first"] == 4 and not res["ok"], res
    assert "dropped.json" in pg.inner_text("#source-name")


def test_without_webcrypto_the_javascript_fallback_agrees(vp_browser: Any,
                                                          vp_station_cases: dict[str, tuple[Case, Path]]) -> None:
    """A dashboard served over plain http on the LAN gets no crypto.subtle: the page then uses
    its own SHA-256/Ed25519 and must reach the same verdicts."""
    page = VpPage(vp_browser, no_webcrypto=True)
    try:
        assert page.page.evaluate("TraceSealVerify.cryptoBackend()") == "javascript"
        names = ["record-good-pinned", "range-changed-record-value", "range-wrong-pinned-key",
                 "range-changed-header-field", "range-forged-anchor-time", "range-changed-proof-hash"]
        for name in names:
            case, path = vp_station_cases[name]
            assert_agree(name, run_cli(path, case.pins), page.verify_bytes(case.bytes(), case.pins))
    finally:
        page.close()
    assert not page.errors, page.errors


# The Content-Security-Policy the dashboard (gateway/web/app.py) sends with every response,
# static files included: the page must work under it when the dashboard serves it.
DASHBOARD_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
                 "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


class _CspHandler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", DASHBOARD_CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def vp_http_url() -> Iterator[str]:
    """The static folder over http on loopback, as /static/verify/, with the dashboard's CSP."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_CspHandler, directory=str(STATIC.parents[1])))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/static/verify/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_served_over_http_under_the_dashboard_csp(vp_browser: Any, vp_http_url: str,
                                                  vp_station_cases: dict[str, tuple[Case, Path]]) -> None:
    page = VpPage(vp_browser, url=vp_http_url)
    try:
        for name in ("range-good-pinned", "range-changed-proof-hash", "range-duplicate-member-name"):
            case, path = vp_station_cases[name]
            assert_agree(name, run_cli(path, case.pins), page.verify_file_ui(path, case.pins))
        origin = vp_http_url.split("/static/")[0]
        assert all(u.startswith(origin) for u in page.requests), page.requests
    finally:
        page.close()
    assert not page.errors, f"errors (CSP violations included) in the page: {page.errors}"


# ---------------------------------------------------------------------------------------------
# EVM anchors on a real anvil
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vp_evm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from gateway.testing.anvil import Anvil, find_anvil
    from ledger_client.evm import EvmLedger

    try:
        find_anvil()
    except RuntimeError as exc:
        pytest.skip(f"anvil (npm @foundry-rs/anvil, used by the EVM tests) is not installed: {exc}")
    tmp = tmp_path_factory.mktemp("vp-evm")
    with Anvil(workdir=tmp / "anvil") as node:
        # the anchor's time is anvil's block time (the real clock): keep the gateway's clock behind it
        clock = FakeClock(start_ms=int(time.time() * 1000) - 3_600_000)
        key = Ed25519PrivateKey.generate()
        journal = Journal(tmp / "j.sqlite")
        journal.bind_identity(GW_ID, public_hex(key))
        sealer = Sealer(GW_ID, key, 0)
        blocks = BlockSealer(journal, key, GW_ID, clock, max_records=4, max_seconds=60)
        ledger = EvmLedger(node.url, chain_id=node.chain_id, private_key=node.private_keys[4])
        anchorer = Anchorer(journal, ledger, clock, GW_ID)
        for i in range(12):
            rows = [sealer.seal({"type": "reading", "sensor": "probe-1", "kind": "temperature", "value": 4000 + 37 * i,
                                 "unit": "mC"}, time_ms=clock.now_ms(), synced=True)]
            journal.commit_batch(rows, [], {}, {})
            clock.advance(30_000)
            blocks.maybe_seal()
        for _ in range(200):
            if anchorer.step() == "idle":
                break
        bundle = export_range(journal, "probe-1", 0, clock.now_ms())
        assert bundle["anchors"] and bundle["anchors"][0]["kind"] == "evm", bundle["anchors"]
        yield {"bundle": bundle, "key": public_hex(key), "url": node.url, "chain_id": node.chain_id,
               "sender": ledger.address.lower(), "tmp": tmp}


def test_evm_anchor_without_a_node_fails_step_6_like_the_cli(vp_page: VpPage, vp_evm_bundle: dict[str, Any]) -> None:
    p = vp_evm_bundle["tmp"] / "evm.json"
    p.write_text(dumps(vp_evm_bundle["bundle"]))
    pins = {"gateway_key": vp_evm_bundle["key"]}
    cli = run_cli(p, pins)
    ui = vp_page.verify_file_ui(p, pins)
    assert_agree("evm-no-node", cli, ui)
    assert ui["first"] == 6
    assert "cannot be checked without a node" in vp_page.page.inner_text("#steps li[data-step='6']")
    assert "no blockchain node of its own" in vp_page.page.inner_text("#anchors")
    SHOTS.mkdir(parents=True, exist_ok=True)
    vp_page.page.screenshot(path=str(SHOTS / "verify-evm-no-node.png"), full_page=True)


def test_evm_anchor_checked_against_the_node(vp_page: VpPage, vp_evm_bundle: dict[str, Any]) -> None:
    ev = vp_evm_bundle
    p = ev["tmp"] / "evm.json"
    p.write_text(dumps(ev["bundle"]))
    good = {"gateway_key": ev["key"], "rpc": ev["url"], "chain_id": ev["chain_id"], "sender": ev["sender"]}
    cli = run_cli(p, good)
    assert cli["ok"], cli
    ui = vp_page.verify_file_ui(p, good)
    assert_agree("evm-with-node", cli, ui)
    assert "from the node" in vp_page.page.inner_text("#anchors")
    SHOTS.mkdir(parents=True, exist_ok=True)
    vp_page.page.screenshot(path=str(SHOTS / "verify-evm-node.png"), full_page=True)
    for name, pins in (("wrong-chain-pin", dict(good, chain_id=ev["chain_id"] + 1)),
                       ("wrong-sender-pin", dict(good, sender="0x" + "11" * 20))):
        assert_agree(name, run_cli(p, pins), vp_page.verify_bytes(p.read_bytes(), pins))
    b = copy.deepcopy(ev["bundle"])
    b["anchors"][0]["tx"] = "0x" + "ab" * 32  # a transaction the chain never saw
    p2 = ev["tmp"] / "evm-other-tx.json"
    p2.write_text(dumps(b))
    assert_agree("evm-unknown-tx", run_cli(p2, good), vp_page.verify_bytes(p2.read_bytes(), good))


# ---------------------------------------------------------------------------------------------
# Screenshots (tests/screenshots/, gitignored): what a nurse or an auditor sees
# ---------------------------------------------------------------------------------------------

def test_screenshots(vp_browser: Any, vp_station_cases: dict[str, tuple[Case, Path]]) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, shot, want in (("range-good-pinned", "verify-good.png", "VERIFIED"),
                             ("range-changed-record-value", "verify-tampered.png", "FAILED at step 2"),
                             ("range-dropped-middle-block-and-its-records", "verify-dropped-block.png",
                              "FAILED at step 5"),
                             ("range-good-unpinned", "verify-unpinned.png", "INTACT, KEY NOT PINNED"),
                             ("range-duplicate-member-name", "verify-unreadable.png", "CANNOT READ")):
        page = VpPage(vp_browser)
        try:
            case, path = vp_station_cases[name]
            res = page.verify_file_ui(path, case.pins)
            assert want in res["banner"], res
            if res["readable"]:
                assert page.page.locator("#chart svg").count() == 1
                assert page.page.locator("#anchors .anchor").count() >= 0
            page.page.screenshot(path=str(SHOTS / shot), full_page=True)
            page.page.screenshot(path=str(SHOTS / shot.replace(".png", "-top.png")))
        finally:
            page.close()
        assert not page.errors, page.errors
    phone = VpPage(vp_browser, viewport=(390, 844))
    try:
        case, path = vp_station_cases["range-changed-record-value"]
        res = phone.verify_file_ui(path, case.pins)
        assert res["first"] == 2
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page scrolls sideways on a phone: {width}px"
        phone.page.screenshot(path=str(SHOTS / "verify-tampered-phone.png"), full_page=True)
    finally:
        phone.close()
    assert not phone.errors, phone.errors


# ---------------------------------------------------------------------------------------------
# Key rotation (docs/proof-format.md §8.1) on bundles the gateway's own code made
# ---------------------------------------------------------------------------------------------

def rotated_station_cases(tmp: Path) -> tuple[list[Case], str, str]:
    """Readings, `gateway.chain.rotation.rotate`, readings with the new key, anchors; bundles
    before, across and after the rotation, and tampered ones."""
    from gateway.chain.rotation import rotate

    clock = FakeClock()
    old, new, lk = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    j = Journal(tmp / "journal.sqlite")
    j.bind_identity(GW_ID, public_hex(old))
    ledger = LocalLedger(tmp / "ledger.sqlite", lk, clock_ms=clock.now_ms)
    anchorer = Anchorer(j, ledger, clock, GW_ID)

    def readings(key: Ed25519PrivateKey, n: int) -> None:
        sealer = Sealer(GW_ID, key, j.next_seq())
        blocks = BlockSealer(j, key, GW_ID, clock, max_records=4, max_seconds=3600)
        for i in range(n):
            j.commit_batch([sealer.seal({"type": "reading", "sensor": f"probe-{1 + i % 2}", "kind": "temperature",
                                         "value": 4000 + i, "unit": "mC"}, time_ms=clock.now_ms(), synced=True)],
                           [], {}, {})
            clock.advance(MIN)
            blocks.maybe_seal()
        blocks.maybe_seal(force=True)
        clock.advance(2000)
        while anchorer.step() != "idle":
            pass

    readings(old, 10)
    before = export_record(j, 3)
    rot = rotate(j, GW_ID, old, new, clock, max_records=4)
    readings(new, 10)
    p_old, p_new = public_hex(old), public_hex(new)
    last = j.next_seq() - 1
    across = export_range(j, "probe-1", T0, T0 + 60 * MIN)
    after = export_record(j, last)
    assert across["gateway"]["rotations"] and {b["header"]["key"] for b in across["blocks"]} == {p_old, p_new}
    cases = []
    for name, b in (("before-exported-before", before), ("record-before", export_record(j, 3)),
                    ("rotation-record", export_record(j, rot.seq)), ("across", across), ("after", after)):
        for pin_name, pin in (("old", p_old), ("new", p_new)):
            cases.append(Case(f"rot:{name}-pin-{pin_name}", dumps(b), pins={"gateway_key": pin}))

    def variant(name: str, base: dict[str, Any], mutate: Any) -> None:
        b = copy.deepcopy(base)
        mutate(b)
        cases.append(Case(f"rot:{name}", dumps(b), pins={"gateway_key": p_old}))

    variant("across-rotation-removed", across, lambda b: b["gateway"].pop("rotations"))
    variant("after-rotation-removed", after, lambda b: b["gateway"].pop("rotations"))
    variant("across-rotation-sig-flipped", across, lambda b: b["gateway"]["rotations"][0].update(
        sig=_flip_hex(b["gateway"]["rotations"][0]["sig"])))
    variant("across-new-key-sig-flipped", across, lambda b: b["gateway"]["rotations"][0]["record"].update(
        new_key_sig=_flip_hex(b["gateway"]["rotations"][0]["record"]["new_key_sig"])))
    variant("across-public-key-is-new", across, lambda b: b["gateway"].update(public_key=p_new))
    variant("across-rotation-proof-added", across, lambda b: b["gateway"]["rotations"][0].update(proof=["00" * 32]))
    return cases, p_old, p_new


def test_rotated_gateway_bundles_agree_across_page_cli_and_spec(vp_api_page: VpPage, tmp_path: Path) -> None:
    """Bundles from a gateway whose key was rotated: the page, the CLI and the independent
    verifier give the same verdict; untampered ones verify with the old pin and the new."""
    cases, _, _ = rotated_station_cases(tmp_path)
    V = _independent().V
    paths = _write_all(tmp_path, cases)
    clis = _cli_all(paths, cases)
    for case, cli, path in zip(cases, clis, paths):
        page = vp_api_page.verify_bytes(case.bytes(), case.pins)
        assert_agree(case.name, cli, page)
        spec = V.verify_file(str(path), gateway_key=case.pins["gateway_key"])
        assert spec.failing_steps == cli["failing"], (case.name, spec.as_dict(), cli)
        tampered = not case.name.endswith(("-pin-old", "-pin-new"))
        expect_ok = not tampered and case.name != "rot:before-exported-before-pin-new"
        assert cli["ok"] == expect_ok, (case.name, cli)


# ---------------------------------------------------------------------------------------------
# The shared hostile vectors (tests/vectors/bundles/) and random mutants: page = CLI = spec
# ---------------------------------------------------------------------------------------------

def _vectors_module() -> Any:
    sys.path.insert(0, str(REPO / "tests" / "vectors"))
    import bundle_vectors

    return bundle_vectors


JS_VERDICT = """async ([b64, opts]) => {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const r = await TraceSealVerify.verifyBytes(bytes, opts);
  if (!r.readable) return {readable: false};
  return {readable: true, result: r.report.result, failing: r.report.steps.filter(s => !s.ok).map(s => s.step)};
}"""


def _page_verdict(page: VpPage, text: str, keys: dict[str, Any]) -> tuple[str, list[int]]:
    """Only the verdict leaves the page (a mutant's summary may nest too deep to serialise)."""
    r = page.page.evaluate(JS_VERDICT, [base64.b64encode(text.encode("utf-8")).decode(),
                                        page_opts({"gateway_key": keys.get("gateway_key")})])
    return ("unreadable", []) if not r["readable"] else (r["result"], r["failing"])


def test_page_reaches_every_vector_result(vp_api_page: VpPage) -> None:
    """Every vector's ``want`` (the CLI and the spec verifier reach the same, in
    tests/test_bundle_vectors.py). Sets are a CLI feature: the page reads single bundles."""
    BV = _vectors_module()
    wrong = []
    for name, vec in BV.load_all():
        if isinstance(vec.get("bundle"), dict) and vec["bundle"].get("format") == "traceseal-set/1":
            continue
        got = _page_verdict(vp_api_page, BV.bundle_text(vec), vec["keys"])
        want = (vec["want"]["result"], vec["want"]["failing_steps"])
        if got != want:
            wrong.append((name, got, want))
    assert not wrong, wrong


def test_page_and_cli_agree_on_random_mutants(vp_api_page: VpPage, tmp_path: Path) -> None:
    """The same deterministic mutants as tests/test_bundle_vectors.py (odd numbers, huge
    integers, duplicates, deep nesting, wrong types): the CLI never crashes, exits only 0, 1,
    2 or 4, and the page reaches the same result and failing steps."""
    import contextlib
    import io

    from ledger_client import cli as lcli

    BV = _vectors_module()
    disagree = []
    for seed in range(300):
        text, keys = BV.mutant(seed)
        p = tmp_path / "m.json"
        p.write_text(text)
        out, err = io.StringIO(), io.StringIO()
        args = ["verify", str(p), "--json"] + (["--gateway-key", keys["gateway_key"]] if keys else [])
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = lcli.main(args)
        assert rc in (0, 1, 2, 4), (seed, rc, err.getvalue())
        if rc == 2:
            cli = ("unreadable", [])
        else:
            rep = json.loads(out.getvalue())
            cli = (rep["result"], [s["step"] for s in rep["steps"] if not s["ok"]])
        page = _page_verdict(vp_api_page, text, keys)
        if page != cli:
            disagree.append((seed, cli, page))
    assert not disagree, disagree[:10]
