/* traceseal verification page: the user interface (file/drop/paste, pins, result, chart, anchors).
 * Every value from the bundle is shown with textContent / SVG text nodes, never parsed as HTML. */
(function () {
  "use strict";
  var V = window.TraceSealVerify;
  var J = window.TraceSealJCS;
  var SVGNS = "http://www.w3.org/2000/svg";

  var STEP_TITLES = {
    1: "Bundle format and gateway key",
    2: "Readings signed by the gateway",
    3: "Block headers signed by the gateway",
    4: "Readings are inside their blocks",
    5: "Blocks linked with no gaps",
    6: "Anchors valid on the ledger",
    7: "Every block covered by an anchor",
    8: "No time claimed after its anchor",
    9: "Bundle holds what it says it selects",
  };
  var SERIES_COLORS = ["#1f5fa8", "#c26b00", "#6a3fa0", "#0f7f7a", "#a0306a", "#5a6b00"];

  var state = { source: null, running: false };

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c == null || c === false) continue;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return e;
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text != null) e.textContent = text;
    return e;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function isoUtc(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return String(ms);
    var d = new Date(ms);
    if (isNaN(d.getTime())) return String(ms);
    return d.toISOString();
  }

  /** Human time: "2026-01-01 00:02:03 UTC" (ISO UTC, readable). */
  function utc(ms) {
    var s = isoUtc(ms);
    return /^\d{4}-/.test(s) ? s.replace("T", " ").replace(/\.000Z$/, "Z").replace(/Z$/, " UTC") : s;
  }

  /** Integer milli-°C → exact °C text, e.g. 4412 → "4.412", -15250 → "-15.25", 8000 → "8.0". */
  function milliToC(mc) {
    var neg = mc < 0, a = Math.abs(mc);
    var whole = Math.floor(a / 1000), frac = String(a % 1000);
    while (frac.length < 3) frac = "0" + frac;
    frac = frac.replace(/0+$/, "");
    if (!frac) frac = "0";
    return (neg ? "-" : "") + whole + "." + frac;
  }

  function short(hex, n) {
    n = n || 12;
    return typeof hex === "string" && hex.length > 2 * n + 1 ? hex.slice(0, n) + "…" + hex.slice(-6) : String(hex);
  }

  function get(o, k) { return J.isObj(o) && J.has(o, k) ? o[k] : undefined; }

  /** A bundle value as text: strings as they are, anything else as JSON. */
  function txt(v) { return typeof v === "string" ? v : v === undefined ? "(absent)" : J.show(v); }

  // ------------------------------------------------------------------ inputs
  function setSource(src) {
    state.source = src;
    $("source-name").textContent = src ? (src.kind === "file" ? "File: " + src.name + " (" + src.bytes.length + " bytes)" : "Pasted text (" + src.text.length + " characters)") : "";
  }

  function readFile(file) {
    var reader = new FileReader();
    reader.onload = function () {
      setSource({ kind: "file", name: file.name, bytes: new Uint8Array(reader.result) });
      run();
    };
    reader.onerror = function () { showInputError("cannot read the file " + file.name); };
    reader.readAsArrayBuffer(file);
  }

  function showInputError(msg) { $("input-error").textContent = msg || ""; }

  function pinValue(id) {
    var v = $(id).value.trim();
    return v === "" ? null : v;
  }

  function intField(id, what) {
    var v = $(id).value.trim();
    if (v === "") return null;
    if (!/^\d+$/.test(v)) throw new Error(what + " must be a whole number");
    return Number(v);
  }

  function options() {
    return {
      gatewayKey: pinValue("gateway-key"),
      ledgerKey: pinValue("ledger-key"),
      rpcUrl: pinValue("rpc-url"),
      chainId: intField("chain-id", "Expected chain id"),
      sender: pinValue("sender"),
      confirmations: intField("confirmations", "Minimum confirmations"),
    };
  }

  async function run() {
    showInputError("");
    if (!state.source) { showInputError("Choose a bundle file, drop one here, or paste its text first."); return; }
    var opts;
    try { opts = options(); } catch (e) { showInputError(e.message); return; }
    state.running = true;
    document.body.setAttribute("data-state", "running");
    $("verify").disabled = true;
    $("verify").textContent = "Checking…";
    var out;
    try {
      out = state.source.kind === "file" ? await V.verifyBytes(state.source.bytes, opts) : await V.verifyText(state.source.text, opts);
    } catch (e) {
      out = { readable: true, crashed: true, error: String(e && e.stack || e) };
    }
    window.__traceseal_last = out;
    render(out, opts);
    $("verify").disabled = false;
    $("verify").textContent = "Verify again";
    state.running = false;
    document.body.setAttribute("data-state", "done");
  }

  // ------------------------------------------------------------------ rendering
  function render(out, opts) {
    $("result").hidden = false;
    var banner = $("banner");
    clear(banner);
    banner.className = "banner";
    ["steps", "summary", "chart", "chart-caption", "anchors", "records"].forEach(function (id) { clear($(id)); });
    $("chart-card").hidden = true;

    if (!out.readable) {
      banner.classList.add("unread");
      banner.setAttribute("data-result", "unreadable");
      banner.appendChild(el("div", { cls: "big", text: "✘ CANNOT READ THIS BUNDLE" }));
      banner.appendChild(el("div", { cls: "sub", text: "No check was run: the file is not a valid bundle text, so it proves nothing." }));
      banner.appendChild(el("div", { cls: "why", text: "Reason: " + out.error }));
      renderNoSteps("not run: the bundle cannot be read");
      return;
    }
    if (out.noCrypto || out.crashed) {
      banner.classList.add("unread");
      banner.setAttribute("data-result", "error");
      banner.appendChild(el("div", { cls: "big", text: "✘ CANNOT CHECK IN THIS BROWSER" }));
      banner.appendChild(el("div", { cls: "sub", text: out.noCrypto
        ? "This browser withholds its cryptography from this page (plain http from another machine). Open the page from a saved copy on disk, over https, or use traceseal verify."
        : "The page failed while checking; nothing was decided." }));
      banner.appendChild(el("div", { cls: "why", text: out.error }));
      renderNoSteps("not run");
      return;
    }

    var rep = out.report, d = out.details;
    var first = V.firstFailure(rep);
    var failing = rep.steps.filter(function (s) { return !s.ok; });
    if (rep.ok && rep.result === "intact-key-not-pinned") {
      // §9.4: without a pinned key anyone can make a bundle that passes: never say VERIFIED
      banner.classList.add("intact");
      banner.setAttribute("data-result", "intact");
      banner.appendChild(el("div", { cls: "big", text: "◐ INTACT, KEY NOT PINNED — not verified" }));
      banner.appendChild(el("div", { cls: "sub", text: "All 9 checks passed, but against the key the bundle itself names: anyone can make a bundle that passes these checks. Enter the gateway's public key (from its enrolment papers) under “More checks” to verify it. " + describeSelection(out.bundle, rep, d) }));
    } else if (rep.ok) {
      banner.classList.add("ok");
      banner.setAttribute("data-result", "verified");
      banner.appendChild(el("div", { cls: "big", text: "✔ VERIFIED" }));
      banner.appendChild(el("div", { cls: "sub", text: "All 9 checks passed against the pinned gateway key. " + describeSelection(out.bundle, rep, d) }));
      var times = Object.keys(d.anchored).map(function (k) { return d.anchored[k]; });
      if (times.length) {
        banner.appendChild(el("div", { cls: "why", text: "Anchored: every record in it existed no later than " + utc(Math.min.apply(null, times)) + "." }));
      }
    } else {
      banner.classList.add("bad");
      banner.setAttribute("data-result", "failed");
      banner.setAttribute("data-first-step", String(first.step));
      banner.appendChild(el("div", { cls: "big", text: "✘ FAILED at step " + first.step + " (" + first.name + ")" }));
      var needsNode = first.step === 6 && d.anchors.some(function (a) { return a.needsNode; });
      banner.appendChild(el("div", { cls: "sub", text: needsNode
        ? "The EVM anchor cannot be checked without a blockchain node: this page has none of its own. Enter the RPC URL of a node you trust under “More checks” (as traceseal verify --rpc)."
        : STEP_TITLES[first.step] + ": " + (first.failures[0] || "failed") }));
      banner.appendChild(el("div", { cls: "why", text: "Do not rely on this bundle. " + failing.length + " of 9 checks failed (step" +
        (failing.length > 1 ? "s " : " ") + failing.map(function (s) { return s.step; }).join(", ") + ")." }));
    }
    if (!d.malformed && d.keySource === "bundle") {
      banner.appendChild(el("div", { cls: "warn", text: "⚠ Gateway key not pinned: the bundle vouches for itself. Enter the gateway's public key from its enrolment papers to be sure the readings come from that gateway." }));
    }

    renderSteps(rep, first);
    if (d.malformed) {
      $("summary").appendChild(el("dt", { text: "Bundle" }));
      $("summary").appendChild(el("dd", { text: "malformed — nothing else was checked" }));
      $("anchors").appendChild(el("div", { cls: "empty", text: "Not checked: the bundle format is invalid." }));
      return;
    }
    renderSummary(out.bundle, rep, d);
    renderChart(out.bundle, d, rep.ok);
    renderAnchors(d, opts);
    renderRecords(d);
  }

  function renderNoSteps(why) {
    var ol = $("steps");
    V.STEPS.forEach(function (s) {
      ol.appendChild(el("li", { cls: "step skip", "data-step": String(s[0]) },
        el("span", { cls: "num", text: String(s[0]) }),
        el("span", { cls: "title" }, STEP_TITLES[s[0]], el("code", { text: s[1] })),
        el("span", { cls: "pill", text: "—" }),
        el("span", { cls: "detail", text: why })));
    });
    $("summary").appendChild(el("dt", { text: "Bundle" }));
    $("summary").appendChild(el("dd", { text: "unreadable" }));
    $("anchors").appendChild(el("div", { cls: "empty", text: "Not checked." }));
  }

  function renderSteps(rep, first) {
    var ol = $("steps");
    rep.steps.forEach(function (s) {
      var li = el("li", { cls: "step " + (s.ok ? "ok" : "bad") + (first && s.step === first.step ? " first-fail" : ""),
        "data-step": String(s.step), "data-ok": String(s.ok) },
        el("span", { cls: "num", text: String(s.step) }),
        el("span", { cls: "title" }, STEP_TITLES[s.step], el("code", { text: s.name })),
        el("span", { cls: "pill", text: s.ok ? "PASS" : "FAIL" }),
        el("span", { cls: "detail", text: s.checked + " checked" }));
      if (s.failures.length) {
        var ul = el("ul", { cls: "reasons" });
        s.failures.slice(0, 6).forEach(function (f) { ul.appendChild(el("li", { text: f })); });
        if (s.failures.length > 6) ul.appendChild(el("li", { text: "… and " + (s.failures.length - 6) + " more" }));
        li.appendChild(ul);
      }
      if (s.notes.length) {
        var un = el("ul", { cls: "notes" });
        s.notes.slice(0, 3).forEach(function (n) { un.appendChild(el("li", { text: n })); });
        if (s.notes.length > 3) un.appendChild(el("li", { text: "… and " + (s.notes.length - 3) + " more" }));
        li.appendChild(un);
      }
      ol.appendChild(li);
    });
  }

  function describeSelection(bundle, rep, d) {
    var sel = bundle.selection;
    var t = get(sel, "type");
    var n = d.records.filter(function (r) { return r.kept; }).length;
    if (t === "record") return "One record, seq " + txt(get(sel, "seq")) + ".";
    if (t === "range") {
      var from = get(sel, "from_ms"), to = get(sel, "to_ms");
      return n + " record(s) of " + txt(get(sel, "sensor")) + " from " + (typeof from === "number" ? utc(from) : txt(from)) +
        " to " + (typeof to === "number" ? utc(to) : txt(to)) + (get(sel, "open_end") === true ? " (open end)" : "") + ".";
    }
    if (t === "lot") return "History of lot " + txt(get(sel, "lot")) + ": " + n + " record(s).";
    if (t === "route") return "Waste route " + txt(get(sel, "id")) + ": " + n + " record(s).";
    return n + " record(s).";
  }

  function kv(dl, k, v, tag) {
    dl.appendChild(el("dt", { text: k }));
    var dd = el("dd", null, typeof v === "string" ? v : v);
    if (tag) dd.appendChild(el("span", { cls: "tag " + tag[0], text: tag[1] }));
    dl.appendChild(dd);
  }

  function renderSummary(bundle, rep, d) {
    var dl = $("summary");
    var sm = rep.summary;
    kv(dl, "Selection", describeSelection(bundle, rep, d));
    kv(dl, "Gateway", String(sm.gateway));
    var keyTag = d.keySource === "pinned" ? ["ok", "pinned ✔"] : d.keySource === "bundle" ? ["warn", "not pinned"] : ["bad", "≠ pinned key"];
    kv(dl, "Gateway key", el("code", { text: short(sm.public_key, 16) }), keyTag);
    var kept = d.records.filter(function (r) { return r.kept; });
    var good = kept.filter(function (r) { return r.sigOk && r.proven; }).length;
    kv(dl, "Records", sm.records + " in the bundle, " + good + " signed and proven");
    kv(dl, "Blocks", sm.blocks + (sm.block_range ? " (" + sm.block_range[0] + " … " + sm.block_range[1] + ")" : ""));
    var times = Object.keys(d.anchored);
    kv(dl, "Anchored", times.length ? times.map(function (b) { return "block " + b + " at " + utc(d.anchored[b]); }).join("; ") : "no valid anchor",
      times.length ? null : ["bad", "unanchored"]);
    var tms = kept.map(function (r) { return r.record.time_ms; });
    if (tms.length) kv(dl, "Record times", utc(Math.min.apply(null, tms)) + (tms.length > 1 ? " … " + utc(Math.max.apply(null, tms)) : ""));
    var unsynced = kept.filter(function (r) { return r.record.clock_synced !== true; }).length;
    if (unsynced) kv(dl, "Clock", unsynced + " record(s) with an unsynchronised gateway clock: their times are claims", ["warn", "unsynced"]);
    var ex = get(bundle, "exported_ms");
    if (typeof ex === "number") kv(dl, "Exported", utc(ex) + " (not signed)");
  }

  // ------------------------------------------------------------------ chart
  function niceStep(span, target) {
    var raw = span / Math.max(1, target);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * mag >= raw) return steps[i] * mag;
    return 10 * mag;
  }

  function timeTicks(t0, t1, maxTicks) {
    var span = t1 - t0;
    var cands = [1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 2592e6];
    var step = cands[cands.length - 1];
    for (var i = 0; i < cands.length; i++) if (span / cands[i] <= maxTicks) { step = cands[i]; break; }
    var out = [];
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
    return { ticks: out, step: step };
  }

  function fmtTick(t, step, spanMs) {
    var s = new Date(t).toISOString();
    if (spanMs > 2 * 864e5) return s.slice(5, 10) + " " + s.slice(11, 16);
    if (step < 6e4) return s.slice(11, 19);
    return s.slice(11, 16);
  }

  function renderChart(bundle, d, verified) {
    var pts = [];
    d.records.forEach(function (r) {
      var rec = r.record;
      if (!r.kept || !rec) return;
      if (get(rec, "kind") !== "temperature" || get(rec, "unit") !== "mC" || !J.isSafeInt(get(rec, "value"))) return;
      pts.push({ t: rec.time_ms, v: rec.value, sensor: typeof get(rec, "sensor") === "string" ? rec.sensor : "?", good: r.sigOk && r.proven, seq: rec.seq });
    });
    if (!pts.length) return;
    $("chart-card").hidden = false;
    pts.sort(function (a, b) { return a.t - b.t || a.seq - b.seq; });
    var sensors = Array.from(new Set(pts.map(function (p) { return p.sensor; }))).sort();

    // drawn at the container's real width, so its text keeps its size on a phone
    var W = Math.max(300, Math.min(1400, Math.round($("chart").clientWidth || 1000)));
    var narrow = W < 640;
    var H = narrow ? 250 : 340, L = narrow ? 46 : 64, R = 14, T = 16, B = 46;
    var t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    if (t1 - t0 < 60000) { t0 -= 30000; t1 += 30000; }
    var padT = (t1 - t0) * 0.03; t0 -= padT; t1 += padT;
    var vmin = Math.min.apply(null, pts.map(function (p) { return p.v; })) / 1000;
    var vmax = Math.max.apply(null, pts.map(function (p) { return p.v; })) / 1000;
    if (vmax - vmin < 1) { var mid = (vmax + vmin) / 2; vmin = mid - 0.5; vmax = mid + 0.5; }
    var ystep = niceStep(vmax - vmin, narrow ? 4 : 5);
    var y0 = Math.floor(vmin / ystep) * ystep, y1 = Math.ceil(vmax / ystep) * ystep;
    if (y1 - y0 < ystep) y1 = y0 + ystep;
    var X = function (t) { return L + (t - t0) / (t1 - t0) * (W - L - R); };
    var Y = function (c) { return T + (y1 - c) / (y1 - y0) * (H - T - B); };

    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "Temperature in degrees Celsius over time (UTC)", "font-family": "system-ui, DejaVu Sans, Arial, sans-serif" });
    s.appendChild(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fbfcfd", stroke: "#c9d1d9" }));
    var decimals = ystep < 1 ? Math.ceil(-Math.log10(ystep) - 1e-9) : 0;
    for (var yv = y0; yv <= y1 + 1e-9; yv += ystep) {
      var yy = Y(yv);
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, stroke: "#e3e8ed" }));
      s.appendChild(svg("text", { x: L - 8, y: yy + 5, "text-anchor": "end", "font-size": 15, fill: "#4a545e" }, yv.toFixed(decimals)));
    }
    s.appendChild(svg("text", { x: 16, y: T + (H - T - B) / 2, "font-size": 15, fill: "#4a545e", transform: "rotate(-90 16 " + (T + (H - T - B) / 2) + ")", "text-anchor": "middle" }, "°C"));
    var tt = timeTicks(t0, t1, narrow ? 4 : 7);
    tt.ticks.forEach(function (t) {
      var xx = X(t);
      s.appendChild(svg("line", { x1: xx, x2: xx, y1: T, y2: H - B, stroke: "#eef1f4" }));
      var anchor = xx > W - R - 30 ? "end" : xx < L + 30 ? "start" : "middle";
      s.appendChild(svg("text", { x: xx, y: H - B + 20, "text-anchor": anchor, "font-size": 14, fill: "#4a545e" }, fmtTick(t, tt.step, t1 - t0)));
    });
    s.appendChild(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 13, fill: "#6b757f" }, "time (UTC), " + new Date(pts[0].t).toISOString().slice(0, 10)));

    sensors.forEach(function (name, i) {
      var col = SERIES_COLORS[i % SERIES_COLORS.length];
      var ps = pts.filter(function (p) { return p.sensor === name; });
      var line = ps.filter(function (p) { return p.good; });
      // the line breaks where readings are missing (more than 3× the usual spacing): no invented values
      var gaps = line.slice(1).map(function (p, k) { return p.t - line[k].t; }).sort(function (a, b) { return a - b; });
      var usual = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0;
      if (line.length > 1) {
        var dpath = line.map(function (p, k) {
          var jump = k === 0 || (usual > 0 && p.t - line[k - 1].t > 3 * usual);
          return (jump ? "M" : "L") + X(p.t).toFixed(1) + " " + Y(p.v / 1000).toFixed(1);
        }).join(" ");
        s.appendChild(svg("path", { d: dpath, fill: "none", stroke: col, "stroke-width": 2.2, "stroke-linejoin": "round" }));
      }
      var r = ps.length > 150 ? 2 : 4;
      ps.forEach(function (p) {
        var cx = X(p.t), cy = Y(p.v / 1000);
        if (p.good) {
          var c = svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: r, fill: col });
          c.appendChild(svg("title", {}, name + " " + milliToC(p.v) + " °C at " + utc(p.t) + " (seq " + p.seq + ")"));
          s.appendChild(c);
        } else {
          var g = svg("g", { stroke: "#b3261e", "stroke-width": 3 });
          g.appendChild(svg("line", { x1: cx - 7, y1: cy - 7, x2: cx + 7, y2: cy + 7 }));
          g.appendChild(svg("line", { x1: cx - 7, y1: cy + 7, x2: cx + 7, y2: cy - 7 }));
          g.appendChild(svg("title", {}, "NOT VERIFIED: " + name + " " + milliToC(p.v) + " °C at " + utc(p.t) + " (seq " + p.seq + ")"));
          s.appendChild(g);
        }
      });
    });

    if (!verified) {
      $("chart").appendChild(el("div", { cls: "chart-warn", text: "⚠ This bundle FAILED verification: the readings below are what the file claims, not proven facts." }));
    }
    var legend = el("div", { cls: "legend" });
    sensors.forEach(function (name, i) {
      var sw = el("span", { cls: "sw" });
      sw.style.background = SERIES_COLORS[i % SERIES_COLORS.length];
      legend.appendChild(el("span", null, sw, name));
    });
    var bad = pts.filter(function (p) { return !p.good; });
    if (bad.length) legend.appendChild(el("span", { cls: "no", text: "✘ = reading that failed its signature or proof (" + bad.length + ")" }));
    $("chart").appendChild(legend);
    $("chart").appendChild(s);
    var vs = pts.map(function (p) { return p.v; });
    var lo = Math.min.apply(null, vs), hi = Math.max.apply(null, vs);
    $("chart-caption").textContent = pts.length + " temperature reading(s) · lowest " + milliToC(lo) + " °C · highest " + milliToC(hi) +
      " °C · " + utc(pts[0].t) + " to " + utc(pts[pts.length - 1].t) + ". Values are the signed integers in milli-°C, shown in °C.";
  }

  // ------------------------------------------------------------------ anchors
  function renderAnchors(d, opts) {
    var box = $("anchors");
    if (!d.anchors.length) {
      box.appendChild(el("div", { cls: "empty", text: "This bundle carries no anchor: nothing shows when its blocks existed (step 6 fails)." }));
      return;
    }
    d.anchors.forEach(function (ad) {
      var a = ad.anchor || {};
      var card = el("div", { cls: "anchor " + (ad.ok ? "ok" : "bad"), "data-kind": String(ad.kind) });
      var dl = el("dl", { cls: "kv" });
      if (ad.kind === "local") {
        var e = get(a, "entry") || {};
        card.appendChild(el("h3", { text: "Anchor " + (ad.index + 1) + ": local ledger" }));
        kv(dl, "Ledger kind", "local (the gateway's embedded ledger, signed by the ledger key)");
        kv(dl, "Ledger", txt(get(e, "ledger")));
        kv(dl, "Ledger index", txt(get(e, "index")));
        kv(dl, "Ledger time", typeof get(e, "time_ms") === "number" ? utc(e.time_ms) : J.show(get(e, "time_ms")));
        kv(dl, "Anchors block", txt(get(e, "block")) + "  (header " + short(get(e, "header_hash")) + ")");
        kv(dl, "Ledger key", el("code", { text: short(get(a, "ledger_key"), 16) }), opts.ledgerKey ? ["ok", "pinned"] : ["warn", "not pinned"]);
      } else if (ad.kind === "evm") {
        card.appendChild(el("h3", { text: "Anchor " + (ad.index + 1) + ": EVM chain" }));
        kv(dl, "Ledger kind", "evm (a blockchain transaction)");
        kv(dl, "Chain id", txt(get(a, "chain_id")));
        kv(dl, "Transaction", el("code", { text: String(get(a, "tx")) }));
        var f = ad.facts;
        kv(dl, "Block", f ? f.block_number + "  " + short(f.block_hash) : J.show(get(a, "block_number")) + "  " + short(get(a, "block_hash")),
          f ? ["ok", "from the node"] : ["warn", "bundle's hint, not checked"]);
        kv(dl, "From", el("code", { text: String(f ? f.from : get(a, "from")) }));
        kv(dl, "To", el("code", { text: String(f ? f.to : get(a, "to")) }));
        var tms = f ? f.time_ms : get(a, "time_ms");
        kv(dl, "Block time", typeof tms === "number" ? utc(tms) : J.show(tms), f ? ["ok", "from the node"] : ["warn", "bundle's hint, not checked"]);
        if (f) kv(dl, "Confirmations", String(f.confirmations));
        kv(dl, "Anchors header", el("code", { text: short(get(a, "header_hash")) }));
      } else {
        card.appendChild(el("h3", { text: "Anchor " + (ad.index + 1) + ": " + (ad.kind ? "unknown kind " + ad.kind : "not an anchor object") }));
      }
      card.appendChild(dl);
      var status;
      if (ad.ok) status = "✔ Valid: block " + ad.block + " and every block before it in the bundle existed no later than " + utc(ad.time) + ".";
      else if (ad.needsNode) status = "✘ Not checked: this page has no blockchain node of its own, so it cannot check an EVM anchor. Enter the RPC URL of a node of chain " + J.show(get(a, "chain_id")) + " you trust under “More checks”, or run traceseal verify --rpc. Step 6 fails until then.";
      else status = "✘ " + ad.error;
      card.appendChild(el("div", { cls: "status", text: status }));
      if (ad.kind === "local") card.appendChild(el("div", { cls: "trust", text: "A local anchor's time is the ledger's own clock. It proves integrity and order against outsiders; an operator who holds both the gateway and ledger keys could back-date it." }));
      if (ad.kind === "evm" && ad.ok) card.appendChild(el("div", { cls: "trust", text: "The time is the block timestamp read from the node at " + opts.rpcUrl + "; trust it as far as you trust that node and chain." }));
      box.appendChild(card);
    });
  }

  // ------------------------------------------------------------------ records
  function renderRecords(d) {
    var box = $("records");
    var rows = d.records;
    $("records-title").textContent = "Records in the bundle (" + rows.length + ")";
    if (!rows.length) { box.appendChild(el("div", { text: "No records." })); return; }
    var table = el("table", { cls: "recs" });
    table.appendChild(el("thead", null, el("tr", null,
      el("th", { text: "seq" }), el("th", { text: "time (UTC)" }), el("th", { text: "sensor" }), el("th", { text: "kind" }),
      el("th", { text: "value" }), el("th", { text: "signature" }), el("th", { text: "in block" }))));
    var tb = el("tbody");
    rows.slice(0, 1000).forEach(function (r) {
      var rec = r.record || {};
      var val = get(rec, "value"), unit = get(rec, "unit");
      var shown = J.isSafeInt(val) && unit === "mC" ? milliToC(val) + " °C" : val === undefined ? "" : J.show(val) + (typeof unit === "string" && unit ? " " + unit : "");
      tb.appendChild(el("tr", null,
        el("td", { cls: "num", text: J.show(get(rec, "seq")) }),
        el("td", { text: typeof get(rec, "time_ms") === "number" ? utc(rec.time_ms) : J.show(get(rec, "time_ms")) }),
        el("td", { text: typeof get(rec, "sensor") === "string" ? rec.sensor : J.show(get(rec, "sensor")) }),
        el("td", { text: typeof get(rec, "kind") === "string" ? rec.kind : J.show(get(rec, "type")) }),
        el("td", { cls: "num", text: shown }),
        el("td", { cls: r.kept && r.sigOk ? "yes" : "no", text: r.kept ? (r.sigOk ? "✔ valid" : "✘ invalid") : "✘ malformed" }),
        el("td", { cls: r.proven ? "yes" : "no", text: r.proven ? "✔ block " + r.block : "✘ not proven" })));
    });
    table.appendChild(tb);
    box.appendChild(table);
    if (rows.length > 1000) box.appendChild(el("div", { cls: "caption", text: "First 1000 of " + rows.length + " shown." }));
  }

  // ------------------------------------------------------------------ wiring
  function init() {
    var drop = $("drop");
    $("file").addEventListener("change", function (ev) {
      var f = ev.target.files && ev.target.files[0];
      if (f) readFile(f);
    });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (ev) {
      ev.preventDefault();
      var f = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
      if (f) readFile(f);
    });
    // a file dropped outside the drop zone must not make the browser navigate away
    window.addEventListener("dragover", function (ev) { ev.preventDefault(); });
    window.addEventListener("drop", function (ev) {
      ev.preventDefault();
      var f = ev.dataTransfer && ev.dataTransfer.files && ev.dataTransfer.files[0];
      if (f) readFile(f);
    });
    $("paste").addEventListener("input", function () {
      var t = $("paste").value;
      setSource(t.trim() ? { kind: "text", text: t } : null);
    });
    $("verify").addEventListener("click", run);
    // #key=<hex>&ledger_key=<hex>&rpc=<url>: a printed link or QR code can carry the pins
    try {
      var h = new URLSearchParams(location.hash.replace(/^#/, ""));
      if (h.get("key")) $("gateway-key").value = h.get("key");
      if (h.get("ledger_key")) $("ledger-key").value = h.get("ledger_key");
      if (h.get("rpc")) $("rpc-url").value = h.get("rpc");
      if (h.get("ledger_key") || h.get("rpc")) $("more").open = true;
    } catch (e) { /* no pins */ }
    if (!V.cryptoBackend()) {
      showInputError("This browser withholds its cryptography from this page; open a saved copy from disk or over https.");
    }
    document.body.setAttribute("data-state", "ready");
  }

  window.TraceSealPage = { run: run, setSource: setSource, milliToC: milliToC };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
