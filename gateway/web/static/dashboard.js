// traceseal dashboard: polls /api/overview, draws 24 h charts as inline SVG. No libraries,
// no CDN: it must work on a station with no internet. Data is only ever set as text
// (textContent / SVG attributes), never as HTML: sensor ids and names are untrusted.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_S = Number(document.querySelector('meta[name="refresh-s"]').content) || 10;
const CSRF = document.querySelector('meta[name="csrf"]').content;
const SERIES_EVERY_MS = 60_000;
const PROBE_COLOURS = ["#1a4fb8", "#6a1b9a", "#00695c", "#37474f"];
const ICON = { ok: "\u2713", warn: "!", fail: "\u2715", unknown: "\u2026" };
let lastOk = 0;
const seriesAt = {};

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}
function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

// -- formatting -------------------------------------------------------------------------
function degC(mc, digits = 1) {
  if (mc === null || mc === undefined) return "\u2013";
  const v = mc / 1000;
  return (Number.isInteger(v) && digits === 0 ? String(v) : v.toFixed(digits)).replace("-", "\u2212") + " \u00b0C";
}
function limitC(mc) { return degC(mc, Number.isInteger(mc / 1000) ? 0 : 1); }
function duration(ms) {
  const m = Math.round(ms / 60000);
  if (m < 1) return "under a minute";
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60), r = m % 60;
  if (h < 48) return h + " h" + (r ? " " + r + " min" : "");
  return Math.round(h / 24) + " days";
}
function clock(ms, now) {
  const d = new Date(ms), n = new Date(now);
  const t = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return d.toDateString() === n.toDateString() ? t : d.toLocaleDateString([], { day: "numeric", month: "short" }) + " " + t;
}
function ago(ms, now) { return now - ms < 60000 ? "just now" : duration(now - ms) + " ago"; }
function measure(v, unit) {
  if (v === null || v === undefined) return "";
  if (unit === "mC") return degC(v);
  if (unit === "ms") return duration(v);
  if (unit === "d") return v < 0 ? "expired " + (-v) + " days ago" : v + " days left";
  if (unit === "g") return v + " g";
  return String(v);
}

// -- alarms -----------------------------------------------------------------------------
function who(by) {  // "web:Ana Ruiz" -> "Ana Ruiz (dashboard)"; "button" -> "the panel button"
  if (!by) return "?";
  if (by === "button") return "the panel button";
  const [src, name] = by.includes(":") ? [by.slice(0, by.indexOf(":")), by.slice(by.indexOf(":") + 1)] : ["", by];
  return src === "web" ? name + " (dashboard)" : src === "api" ? (name || "a script") + " (API)" : by;
}
function alarmWhere(a) {
  return [a.unit, a.sensor, a.gtin && "GTIN " + a.gtin, a.lot && "lot " + a.lot, a.route && "route " + a.route,
          a.grai || a.sscc].filter(Boolean).join(" \u00b7 ");
}
function alarmItem(a, now) {
  const cls = !a.present ? "cleared" : a.severity === "alarm" ? "" : "warn";
  const facts = [];
  if (a.value_unit === "mC") {
    facts.push("Now " + degC(a.value), "limit " + limitC(a.threshold));
    if (a.extreme !== undefined) facts.push("worst " + degC(a.extreme));
  } else if (a.value !== undefined) {
    facts.push(measure(a.value, a.value_unit) + (a.threshold !== undefined && a.value_unit !== "d" ? " (limit " + measure(a.threshold, a.value_unit) + ")" : ""));
  }
  facts.push("since " + clock(a.since_ms, now) + " (" + duration(now - a.since_ms) + ")");
  if (!a.present) facts.push("back to normal at " + clock(a.cleared_ms, now));
  const state = a.acknowledged ? "Acknowledged by " + who(a.acked_by) : "Not acknowledged";
  return el("li", { class: "alarm " + cls, "data-alarm": a.alarm },
    el("span", { class: "state" }, state),
    el("div", { class: "title" }, (a.present ? "" : "Was: ") + a.title),
    el("div", { class: "where" }, alarmWhere(a)),
    el("div", { class: "facts" }, facts.join(" \u00b7 ")),
    a.hint ? el("div", { class: "hint" }, a.hint) : null);
}
function renderAlarms(d) {
  const sec = document.getElementById("alarms-section");
  sec.classList.toggle("hidden", d.alarms.length === 0);
  clear(document.getElementById("alarms")).append(...d.alarms.map(a => alarmItem(a, d.now_ms)));
  const waiting = d.alarms.filter(a => a.needs_ack).length;
  const btn = document.getElementById("ack-button");
  if (btn) {
    btn.disabled = waiting === 0;
    btn.textContent = waiting ? "Acknowledge " + (waiting === 1 ? "alarm" : waiting + " alarms") : "All acknowledged";
  }
  const login = document.getElementById("ack-login");
  if (login) login.classList.toggle("hidden", waiting === 0);
}

// -- banner -----------------------------------------------------------------------------
function renderBanner(d) {
  const b = document.getElementById("banner");
  const present = d.alarms.filter(a => a.present);
  let level = d.level, text;
  const first = present[0] || d.alarms[0];
  if (first && d.alarm_level !== "ok") {
    const where = first.unit || first.route || first.gtin || "";
    const val = first.value_unit === "mC" && first.present ? " (" + degC(first.value) + ")" : "";
    const more = (first.acknowledged ? " \u2013 acknowledged" : "") + (d.alarms.length > 1 ? "  +" + (d.alarms.length - 1) + " more" : "");
    text = (d.alarm_level === "fail" ? "ALARM: " : "Check: ") + (where ? where + " \u2013 " : "") +
           (first.present ? "" : "was ") + first.title.toLowerCase() + val + more;
  } else if (d.health.level !== "ok") {
    const bad = d.health.items.filter(i => i.level !== "ok");
    text = "Gateway: " + bad.map(i => i.label.toLowerCase() + (i.note ? " \u2013 " + i.note : "")).join("; ");
  } else {
    text = "All OK \u2013 " + (d.units.length ? d.units.length + (d.units.length === 1 ? " unit" : " units") + " in range" : "gateway healthy");
  }
  b.className = "banner level-" + level;
  document.getElementById("banner-icon").textContent = ICON[level] || "?";
  document.getElementById("banner-text").textContent = text;
  document.title = (level === "fail" ? "\u26a0 ALARM \u00b7 " : "") + d.gateway + " \u00b7 traceseal";
}

// -- units and charts -------------------------------------------------------------------
function niceStep(span) {
  for (const s of [500, 1000, 2000, 5000, 10000, 20000, 50000]) if (span / s <= 6) return s;
  return 100000;
}
const LIMIT_STYLE = { high: ["#b3261e", "8 4", "max"], low: ["#1a4fb8", "8 4", "min"], freeze: ["#6a1b9a", "2 3", "freeze"] };
// Drawn at the box's real pixel width (not scaled from a fixed viewBox), so the labels stay
// readable on a phone; limits are labelled on the axis and in an HTML legend, never clipped.
function chart(s, width) {
  const W = Math.max(280, Math.round(width || 640)), H = Math.round(Math.min(260, Math.max(180, W * 0.38)));
  const L = 50, R = 14, T = 10, B = 26;
  const all = Object.values(s.probes).flat();
  const vals = all.map(p => p[1]);
  const limits = [["high", s.high_mc], ["low", s.low_mc]].concat(s.freeze_mc !== null ? [["freeze", s.freeze_mc]] : []);
  const lo = Math.min(...limits.map(l => l[1]), ...vals) - 1000, hi = Math.max(...limits.map(l => l[1]), ...vals) + 1000;
  const x = t => L + (t - s.from_ms) / (s.to_ms - s.from_ms) * (W - L - R);
  const y = v => T + (hi - v) / (hi - lo) * (H - T - B);
  const g = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                         "aria-label": `Temperatures of ${s.unit} over the last 24 hours, limits ${limitC(s.low_mc)} to ${limitC(s.high_mc)}` });
  const id = "c" + s.unit.replace(/[^A-Za-z0-9]/g, "_");
  const defs = svg("defs");
  const inside = svg("clipPath", { id: id + "in" });
  inside.append(svg("rect", { x: L, y: y(s.high_mc), width: W - L - R, height: y(s.low_mc) - y(s.high_mc) }));
  const outside = svg("clipPath", { id: id + "out" });
  outside.append(svg("rect", { x: L, y: 0, width: W - L - R, height: y(s.high_mc) }),
                 svg("rect", { x: L, y: y(s.low_mc), width: W - L - R, height: H }));
  defs.append(inside, outside);
  g.append(defs);
  g.append(svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fafafa", stroke: "#d6d8dc" }));
  g.append(svg("rect", { x: L, y: y(s.high_mc), width: W - L - R, height: y(s.low_mc) - y(s.high_mc), fill: "#e6f4ea" }));
  const tick = (v, colour, bold) => g.append(svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 12,
    "font-weight": bold ? "bold" : "normal", fill: colour }, degC(v, Number.isInteger(v / 1000) ? 0 : 1).replace(" \u00b0C", "\u00b0")));
  const step = niceStep(hi - lo);
  for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
    g.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e5e8" }));
    if (limits.every(([, lv]) => Math.abs(y(v) - y(lv)) > 13)) tick(v, "#5f6368", false);
  }
  const hour = 3600000, every = (W < 520 ? 6 : 3) * hour;
  for (let t = Math.ceil(s.from_ms / every) * every; t <= s.to_ms; t += every) {
    g.append(svg("line", { x1: x(t), x2: x(t), y1: T, y2: H - B, stroke: "#eceef1" }));
    g.append(svg("text", { x: x(t), y: H - 8, "text-anchor": "middle", "font-size": 12, fill: "#5f6368" },
                 new Date(t).toLocaleTimeString([], { hour: "numeric" })));
  }
  for (const [kind, v] of limits) {
    const [colour, dash] = LIMIT_STYLE[kind];
    g.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: colour, "stroke-width": 2, "stroke-dasharray": dash }));
    tick(v, colour, true);
  }
  Object.entries(s.probes).forEach(([probe, pts], i) => {
    if (!pts.length) return;
    let d = "";
    pts.forEach((p, j) => {
      const gap = j === 0 || p[0] - pts[j - 1][0] > 30 * 60000;
      d += (gap ? "M" : "L") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1);
    });
    const colour = PROBE_COLOURS[i % PROBE_COLOURS.length];
    g.append(svg("path", { d, fill: "none", stroke: colour, "stroke-width": 2.5, "clip-path": `url(#${id}in)` }));
    g.append(svg("path", { d, fill: "none", stroke: "#d32f2f", "stroke-width": 3.5, "clip-path": `url(#${id}out)` }));
    const last = pts[pts.length - 1];
    const out = last[1] >= s.high_mc || last[1] <= s.low_mc;
    g.append(svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 5, fill: out ? "#d32f2f" : colour, stroke: "#fff", "stroke-width": 1.5 }));
  });
  if (!all.length) {
    g.append(svg("text", { x: (W - R + L) / 2, y: H / 2, "text-anchor": "middle", "font-size": 15, fill: "#5f6368" }, "No readings in the last 24 hours"));
  }
  return g;
}
function legend(s) {
  const item = (colour, dashed, text) => {
    const sw = el("i", { class: dashed ? "dash" : "" });
    sw.style.borderColor = colour;
    return el("span", {}, sw, text);
  };
  const probes = Object.keys(s.probes);
  const kids = [];
  if (probes.length > 1) probes.forEach((p, i) => kids.push(item(PROBE_COLOURS[i % PROBE_COLOURS.length], false, p)));
  kids.push(item(LIMIT_STYLE.high[0], true, "max " + limitC(s.high_mc)), item(LIMIT_STYLE.low[0], true, "min " + limitC(s.low_mc)));
  if (s.freeze_mc !== null) kids.push(item(LIMIT_STYLE.freeze[0], true, "freeze " + limitC(s.freeze_mc)));
  kids.push(item("#d32f2f", false, "out of range"));
  return el("div", { class: "legend" }, ...kids);
}
function drawChart(unitId) {
  const box = document.querySelector(`[data-chart="${CSS.escape(unitId)}"]`);
  const c = seriesAt[unitId];
  if (!box || !c) return;
  clear(box).append(chart(c.data, box.clientWidth), legend(c.data));
}
async function loadSeries(unitId) {
  const r = await fetch(`api/units/${encodeURIComponent(unitId)}/series?hours=24`, { credentials: "same-origin" });
  if (!r.ok) return;
  seriesAt[unitId] = { at: Date.now(), data: await r.json() };
  drawChart(unitId);
}
function unitCard(u, now) {
  const status = u.level === "fail" ? "ALARM" : u.level === "warn" ? "Check" : "In range";
  const probes = u.probes.map(p => el("div", { class: "probe" },
    el("div", { class: "temp " + (p.in_range === false ? "out" : p.in_range ? "in" : "") }, degC(p.value_mc)),
    el("div", { class: "label" }, p.sensor + " \u00b7 " + (p.time_ms ? ago(p.time_ms, now) : "no reading yet") +
                                   (p.stale && p.time_ms ? " \u2013 silent" : ""))));
  const door = u.door ? el("div", { class: "door" + (u.door.open ? " open" : "") },
                           "Door: " + (u.door.open === null ? "unknown" : u.door.open ? "OPEN" : "closed")) : null;
  return el("article", { class: "unit level-" + u.level, "data-unit": u.id },
    el("div", { class: "unit-head" },
      el("span", { class: "unit-name" }, u.id),
      el("span", { class: "unit-range" }, u.profile + " " + limitC(u.low_mc) + " to " + limitC(u.high_mc)),
      el("span", { class: "unit-status level-" + u.level }, status)),
    el("div", { class: "probes" }, ...probes), door,
    el("div", { class: "chart-box", "data-chart": u.id }));
}
function renderUnits(d) {
  const box = document.getElementById("units");
  document.getElementById("units-section").classList.toggle("hidden", !d.units.length);  // e.g. a waste truck
  if (!d.units.length) return;
  clear(box).append(...d.units.map(u => unitCard(u, d.now_ms)));
  const alarmNow = d.units.some(u => u.level !== "ok");
  for (const u of d.units) {
    drawChart(u.id);
    const c = seriesAt[u.id];
    if (!c || Date.now() - c.at > (alarmNow ? REFRESH_S * 1000 : SERIES_EVERY_MS)) loadSeries(u.id);
  }
}
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => Object.keys(seriesAt).forEach(drawChart), 150);
});

// -- stock, custody, health -------------------------------------------------------------
function renderStock(d) {
  const st = d.stock;
  document.getElementById("stock-section").classList.toggle("hidden", !st.lots.length && !st.products.length);
  clear(document.getElementById("stock")).append(...st.lots.map(l => el("tr", { class: "level-" + l.level },
    el("td", { class: "nowrap" }, l.unit), el("td", {}, l.product || l.gtin), el("td", { class: "nowrap" }, l.lot),
    el("td", { class: "num" }, l.qty), el("td", { class: "nowrap" }, l.expiry || "\u2013"),
    el("td", {}, el("span", { class: "tag level-" + l.level },
      l.days_left === null ? "" : l.days_left < 0 ? "EXPIRED" : l.days_left === 0 ? "expires today" :
      l.days_left <= st.expiry_warn_days ? "expires in " + l.days_left + " days" : "")))));
  document.getElementById("products").textContent = st.products.map(p =>
    (p.product || p.gtin) + ": " + p.qty + " packs" + (p.level === "warn" ? " (LOW, reorder at " + p.low_stock + ")" : "")).join(" \u00b7 ");
}
function renderCustody(d) {
  const c = d.custody;
  document.getElementById("custody-section").classList.toggle("hidden", !c);
  if (!c) return;
  const words = { delivered: "delivered", "in-transit": "on the way", missing: "MISSING", unknown: "unknown" };
  document.getElementById("bins").textContent = "Bins: " + (Object.entries(c.bins).map(([k, n]) => n + " " + (words[k] || k)).join(", ") || "none yet");
  clear(document.getElementById("attention")).append(...c.attention.map(b => el("li", { class: "alarm" },
    el("div", { class: "title" }, b.status === "missing" ? "Bin missing" : "Bin never picked up"),
    el("div", { class: "where" }, "route " + b.route + " \u00b7 " + Object.values(b.bin).join(" ")))));
  const what = e => e.type === "custody" ? (e.stage || "").replace("_", " ") + (e.category ? " (" + e.category + ")" : "")
                   : e.type === "custody_refusal" ? "REFUSED: " + (e.message || e.reason) : "Note: " + (e.message || e.notice);
  clear(document.getElementById("custody")).append(...c.events.map(e => el("tr", { class: e.type === "custody" ? "" : "level-warn" },
    el("td", {}, clock(e.at_ms || e.time_ms, d.now_ms)), el("td", {}, what(e)), el("td", {}, e.route || ""),
    el("td", {}, e.bin ? Object.values(e.bin).join(" ") : ""), el("td", { class: "num" }, e.weight_g !== null && e.weight_g !== undefined ? (e.weight_g / 1000).toFixed(2) + " kg" : ""),
    el("td", {}, e.operator ? e.operator.name || e.operator.badge : ""))));
}
function healthValue(i, now) {
  const n = (k, word) => k + " " + word + (k === 1 ? "" : "s");
  if (i.key === "backlog") return i.value.total === 0 ? "nothing waiting" : n(i.value.unsealed_records, "record") + " to seal, " + n(i.value.unanchored_blocks, "block") + " to anchor";
  if (i.key === "last_anchor") return i.value.time_ms ? clock(i.value.time_ms, now) + " (" + ago(i.value.time_ms, now) + ")" : "none yet";
  if (i.key === "disk") return i.value ? (i.value.free_bytes / 2 ** 30).toFixed(1) + " GiB free of " + (i.value.total_bytes / 2 ** 30).toFixed(0) : "?";
  if (i.value === null) return "not used";
  if (i.key === "broker" || i.key === "ledger") return i.value ? "connected" : "NOT connected";
  if (i.key === "clock") return i.value ? "yes" : "NO";
  if (i.key === "journal") return i.value ? "writing" : "NOT writing";
  return String(i.value);
}
function renderHealth(d) {
  clear(document.getElementById("health")).append(...d.health.items.map(i => el("li", { class: "level-" + i.level, "data-health": i.key },
    el("span", { class: "k" }, i.label), el("span", { class: "v" }, ICON[i.level] + " " + healthValue(i, d.now_ms)),
    i.note ? el("span", { class: "n" }, i.note) : null)));
}

// -- polling and acknowledging ----------------------------------------------------------
async function refresh() {
  try {
    const r = await fetch("api/overview", { credentials: "same-origin" });
    if (r.status === 401) { location.href = "login"; return; }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    lastOk = Date.now();
    renderBanner(d); renderAlarms(d); renderUnits(d); renderStock(d); renderCustody(d); renderHealth(d);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    const b = document.getElementById("banner");
    if (Date.now() - lastOk > 3 * REFRESH_S * 1000) {
      b.className = "banner stale";
      document.getElementById("banner-icon").textContent = "?";
      document.getElementById("banner-text").textContent = "No data from the gateway" + (lastOk ? " since " + new Date(lastOk).toLocaleTimeString() : "") + " \u2013 check it is running";
    }
  }
}
async function acknowledge(ev) {
  ev.preventDefault();
  const btn = document.getElementById("ack-button"), msg = document.getElementById("ack-msg");
  btn.disabled = true;
  const r = await fetch("api/alarms/ack", { method: "POST", credentials: "same-origin",
                                            headers: { "X-CSRF-Token": CSRF, "Content-Type": "application/json" }, body: "{}" });
  if (r.status === 401) { location.href = "login"; return; }
  msg.textContent = r.ok ? "Acknowledgement recorded." : "Could not acknowledge (HTTP " + r.status + "). Sign in again.";
  setTimeout(refresh, 800);
  setTimeout(() => { msg.textContent = ""; }, 8000);
}
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("ack-form");
  if (form) form.addEventListener("submit", acknowledge);
  refresh();
  setInterval(refresh, REFRESH_S * 1000);
});
