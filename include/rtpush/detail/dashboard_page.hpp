//
// rtpush: the live dashboard page served at GET / (HTML, CSS and JS in one string).
//
// Self-contained on purpose: nothing is fetched from the internet and there is no build step,
// so the page works on an air-gapped network and ships inside the binary. Its connection is the
// JavaScript client of clients/js, which the same server answers at /client/rtpush.js
// (detail/client_assets.hpp): one client implementation for this page and every other. The
// server replaces the placeholders __RTPUSH_WS_PATH__ and __RTPUSH_SSE_PATH__ with the
// WebSocket path and the Server-Sent Events path (null when there is none) as JSON strings.
//
#ifndef RTPUSH_DETAIL_DASHBOARD_PAGE_HPP
#define RTPUSH_DETAIL_DASHBOARD_PAGE_HPP

#include <string_view>

namespace rtpush::detail {

inline constexpr std::string_view dashboard_page = R"rtpush(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rtpush dashboard</title>
<link rel="icon" href="data:,">
<style>
:root { --bg:#0f172a; --panel:#1e293b; --line:#334155; --text:#e2e8f0; --dim:#94a3b8;
        --ok:#22c55e; --warn:#f59e0b; --bad:#ef4444; --accent:#38bdf8; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       background:var(--bg); color:var(--text); }
header { display:flex; flex-wrap:wrap; gap:12px; align-items:center; padding:10px 16px;
         background:var(--panel); border-bottom:1px solid var(--line); }
header h1 { font-size:18px; margin:0 12px 0 0; }
label { color:var(--dim); font-size:12px; display:flex; flex-direction:column; gap:2px; }
input, select, button { font:inherit; color:var(--text); background:#0b1220;
        border:1px solid var(--line); border-radius:6px; padding:4px 8px; }
button { cursor:pointer; }
button:hover { border-color:var(--accent); }
#status { padding:4px 10px; border-radius:999px; font-weight:600; font-size:12px; }
#status[data-state="connected"] { background:#14532d; color:#bbf7d0; }
#status[data-state="connecting"], #status[data-state="reconnecting"] { background:#78350f; color:#fde68a; }
#status[data-state="disconnected"] { background:#7f1d1d; color:#fecaca; }
main { display:grid; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); gap:14px; padding:14px 16px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
section h2 { font-size:13px; text-transform:uppercase; letter-spacing:.06em; color:var(--dim); margin:0 0 10px; }
.wide { grid-column:1 / -1; }
#tiles { display:grid; grid-template-columns:repeat(auto-fit, minmax(180px, 1fr)); gap:12px; }
.tile { background:#0b1220; border:1px solid var(--line); border-radius:10px; padding:12px; }
.tile .name { color:var(--dim); font-size:12px; }
.tile .value { font-size:32px; font-weight:700; font-variant-numeric:tabular-nums; }
.tile .delta { font-size:13px; font-variant-numeric:tabular-nums; }
.up { color:var(--ok); } .down { color:var(--bad); } .flat { color:var(--dim); }
.tile .phase { float:right; font-size:11px; color:var(--dim); }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.num, th.num { text-align:right; }
.empty { color:var(--dim); font-style:italic; }
.alert { display:flex; gap:10px; align-items:center; padding:6px 0; border-bottom:1px solid var(--line); }
.alert .sev { font-size:11px; font-weight:700; padding:2px 6px; border-radius:4px; text-transform:uppercase; }
.sev.critical { background:var(--bad); } .sev.high { background:var(--warn); color:#111; }
.sev.medium, .sev.low { background:var(--line); }
.alert .body { flex:1; }
.alert .meta { color:var(--dim); font-size:12px; }
.alert[data-status="resolved"] { opacity:.55; }
.st { font-size:12px; font-weight:600; }
.st.pending { color:var(--warn); } .st.acknowledged { color:var(--accent); } .st.resolved { color:var(--ok); }
#chart { width:100%; height:200px; display:block; }
.legend { display:flex; gap:14px; font-size:12px; color:var(--dim); margin-top:4px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; }
dl.kv { display:grid; grid-template-columns:auto 1fr; gap:4px 14px; margin:0; font-variant-numeric:tabular-nums; }
dl.kv dt { color:var(--dim); } dl.kv dd { margin:0; text-align:right; }
#log { color:var(--dim); font-size:12px; margin-left:auto; }
a { color:var(--accent); }
#admin h3 { font-size:12px; color:var(--dim); margin:14px 0 6px; font-weight:600; }
#admin .bar { display:flex; gap:12px; align-items:flex-end; flex-wrap:wrap; }
#admin td { font-size:12px; }
#admin-status { color:var(--dim); font-size:12px; }
#admin[data-state="unauthorized"] #admin-status { color:var(--bad); }
</style>
</head>
<body>
<header>
  <h1>rtpush dashboard</h1>
  <span id="status" data-state="connecting">connecting</span>
  <label>Organization<input id="org" list="orgs" value="acme" size="10"></label>
  <label>Department<select id="dept"><option value="">all</option></select></label>
  <label>Queue<select id="queue"><option value="">all</option></select></label>
  <label>Token<input id="token" type="password" placeholder="optional" size="14"></label>
  <button id="apply">Apply</button>
  <span id="log"></span>
  <a id="admin-link" href="#admin">Admin</a>
  <datalist id="orgs"></datalist>
</header>
<main>
  <section id="admin" class="wide" hidden>
    <h2>Admin · connections and rooms</h2>
    <div class="bar">
      <label>Admin key<input id="admin-key" type="password" placeholder="when the server has one" size="18"></label>
      <button id="admin-refresh">Refresh</button>
      <span id="admin-status"></span>
      <a href="#">close</a>
    </div>
    <h3>Connections (<span id="conn-count">0</span>)</h3>
    <table><thead><tr><th>Id</th><th>Transport</th><th>Organization</th><th>User</th><th>Remote</th>
      <th>Subscriptions</th><th>Connected</th><th class="num">Sent</th><th class="num">Received</th><th class="num">Queued</th></tr></thead>
      <tbody id="connections"></tbody></table>
    <h3>Rooms (<span id="room-count">0</span>)</h3>
    <table><thead><tr><th>Room</th><th>Channel</th><th>Scope</th><th class="num">Members</th></tr></thead>
      <tbody id="rooms"></tbody></table>
  </section>
  <section class="wide">
    <h2>KPIs <span id="scope-name"></span></h2>
    <div id="tiles"></div>
  </section>
  <section>
    <h2>KPI history</h2>
    <svg id="chart" viewBox="0 0 600 200" preserveAspectRatio="none" role="img" aria-label="KPI history"></svg>
    <div class="legend" id="legend"></div>
  </section>
  <section>
    <h2>Alerts</h2>
    <div id="alerts"><div class="empty">no alerts</div></div>
  </section>
  <section>
    <h2>Backlog</h2>
    <table><thead><tr><th>Department</th><th>Queue</th><th class="num">Items</th><th class="num">Avg wait (min)</th>
      <th class="num">Over SLA</th><th class="num">SLA %</th><th>Trend</th></tr></thead>
      <tbody id="backlog"></tbody></table>
  </section>
  <section>
    <h2>Attendance</h2>
    <table><thead><tr><th>Department</th><th class="num">Scheduled</th><th class="num">Present</th>
      <th class="num">Absent</th><th class="num">Late</th><th class="num">Rate %</th></tr></thead>
      <tbody id="attendance"></tbody></table>
  </section>
  <section>
    <h2>Server</h2>
    <dl class="kv" id="stats"></dl>
  </section>
  <section>
    <h2>System metrics</h2>
    <dl class="kv" id="metrics"><dt class="empty">none published (rtd --system-metrics)</dt><dd></dd></dl>
  </section>
</main>
<script type="module">
// The connection is rtpush's JavaScript client (clients/js): reconnection with backoff and full
// jitter, recovery from the last offsets, deduplication, the heartbeat watchdog and the SSE
// fallback all live there. This page only draws what it hands over.
import {RtpushClient} from "/client/rtpush.js";

const WS_PATH = __RTPUSH_WS_PATH__;
const SSE_PATH = __RTPUSH_SSE_PATH__;   // the fallback transport, or null
// ?transport=sse uses Server-Sent Events only; otherwise WebSocket first, SSE when a WebSocket
// cannot get through (a proxy or firewall that blocks it or cuts it).
const FORCE_SSE = new URLSearchParams(location.search).get("transport") === "sse" && !!SSE_PATH;
const CHANNELS = ["kpi", "backlog", "attendance", "alerts"];
const KPIS = [
  {key: "utilization", name: "Utilization", unit: "%", good: +1, agg: "mean", color: "#38bdf8"},
  {key: "health_score", name: "Health score", unit: "", good: +1, agg: "mean", color: "#22c55e"},
  {key: "sla_risk", name: "SLA risk", unit: "%", good: -1, agg: "mean", color: "#f59e0b"},
  {key: "headcount_gap", name: "Headcount gap", unit: "", good: -1, agg: "sum", color: "#a78bfa"},
];
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (v, d = 1) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(d)) : (v == null ? "–" : String(v));

// Everything received, per topic key: {scope, seq, phase, data}. The view filters by scope, so
// changing the department or queue needs no new subscription.
const store = {kpi: new Map(), backlog: new Map(), attendance: new Map(), metrics: new Map()};
const alerts = new Map();               // alert_id -> {data, status}
const known = {orgs: new Set(["acme"]), depts: new Set(), queues: new Set()};
let scope = {org: "acme", dept: "", queue: ""};
let subscribedOrg = null;
let history = [];                       // [{t, values}] of the selected scope
let lastTiles = null;
let deltas = {};                        // KPI -> its last change, for the arrows
let client = null;                      // the RtpushClient of the current token
let orgSubs = [];                       // unsubscribe functions of the org's channels

function setStatus(state, text) {
  const el = $("status");
  el.dataset.state = state;
  el.dataset.transport = client && client.transport === "sse" ? "sse" : "ws";
  el.textContent = text || state;
}

function topicKey(channel, s) {
  let k = channel;
  if (s.org) { k += ":org:" + s.org; if (s.dept) { k += ":dept:" + s.dept; if (s.queue) k += ":queue:" + s.queue; } }
  return k;
}
function scopeOf(m) {
  const s = m.scope || {};
  return {org: s.org || s.organization_id || "", dept: s.dept || s.department_id || "", queue: s.queue || s.queue_name || ""};
}
function covers(wide, narrow) {
  return (!wide.org || wide.org === narrow.org) && (!wide.dept || wide.dept === narrow.dept) &&
         (!wide.queue || wide.queue === narrow.queue);
}

// --- connection -----------------------------------------------------------------------------
// One client per token (a new token needs a new connection: authenticate goes first). One
// WebSocket attempt that got no `connected` (refused, or cut by a middlebox) is enough to try
// Server-Sent Events; the client comes back to WebSocket when that fails too.
function connect() {
  const token = $("token").value.trim();
  const c = new RtpushClient({
    url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + WS_PATH,
    token: token || undefined,
    sseUrl: SSE_PATH ? new URL(SSE_PATH, location.href).href : false,
    sseAfter: FORCE_SSE ? 0 : 1,
    reconnect: {initialDelay: 500, maxDelay: 15000},
  });
  client = c;
  const on = (event, fn) => c.on(event, (e) => { if (c === client) fn(e); }); // not a replaced one's
  on("connecting", ({attempt}) => setStatus(attempt ? "reconnecting" : "connecting",
                                            attempt ? "reconnecting (attempt " + attempt + ")" : "connecting"));
  on("reconnecting", ({attempt, delay}) =>
     setStatus("reconnecting", "reconnecting in " + (delay / 1000).toFixed(1) + " s (attempt " + attempt + ")"));
  on("disconnected", () => setStatus("disconnected", "disconnected"));
  // Every org with data, for the picker (a WebSocket request; SSE is read-only).
  on("connected", ({transport}) => { if (transport === "websocket") c.get("kpi").then(onSnapshot, () => {}); });
  on("subscribed", onSubscribed);
  on("error", (e) => {
    // A fault of this page's own handlers: thrown again, so that it is seen as one.
    if (e.code === "HANDLER_ERROR") setTimeout(() => { throw e.error; });
    else if (e.code !== "SSE_ERROR") $("log").textContent = "server: " + e.code + " " + (e.message || "");
  });
  subscribedOrg = null;
  subscribe();
  // The channel-wide system metrics; not with a token, which stays inside its organization.
  if (!token) c.subscribe("metrics", null, onPublication);
  c.connect();
}

function reconnect() {
  const old = client;
  client = null;
  if (old) old.close();
  connect();
}

// The org's channels; a new org unsubscribes the old one's (over SSE: a stream per org).
function subscribe() {
  if (subscribedOrg === scope.org) return;
  for (const off of orgSubs) off();
  subscribedOrg = scope.org;
  orgSubs = CHANNELS.map((ch) => client.subscribe(ch, {org: scope.org}, onPublication));
}

// --- messages -------------------------------------------------------------------------------
function onSubscribed(m) {
  // Not recovered (a new server epoch, or history lost): the `initial` messages that follow
  // are the whole current state, so what was kept from before is dropped, not mixed in.
  if (m.recovered !== true && store[m.channel]) {
    const wide = scopeOf(m);
    for (const [k, e] of store[m.channel]) if (covers(wide, e.scope)) store[m.channel].delete(k);
    schedule();
  }
  if (m.channel === "kpi")
    setStatus("connected", (m.recovered === true ? "connected (recovered)" : "connected") +
              (client.transport === "sse" ? " · SSE" : ""));
}

function onSnapshot(m) {
  for (const it of m.items || []) learnScope(scopeOf(it));
  renderPickers();
}

function learnScope(s) {
  if (s.org) known.orgs.add(s.org);
  if (s.org === scope.org) { if (s.dept) known.depts.add(s.dept); if (s.queue) known.queues.add(s.queue); }
}

// An `initial` or `update` message, once (the client drops what a replay repeats).
function onPublication(m) {
  const phase = m.phase || "update";
  const s = scopeOf(m);
  learnScope(s);
  const d = m.data || {};
  if (m.channel === "alerts") { onAlert(m, d); return; }
  const map = store[m.channel];
  if (!map) return;
  // Each phase's latest value, merged in seq order: the newest value of a field wins even
  // when an older phase arrives after a newer one.
  const entry = map.get(m.topic) || {scope: s, phases: {}};
  entry.phases[phase] = {seq: m.seq, data: d};
  const parts = Object.entries(entry.phases).sort((a, b) => a[1].seq - b[1].seq);
  entry.data = Object.assign({}, ...parts.map((p) => p[1].data));
  entry.phase = parts[parts.length - 1][0];
  entry.seq = parts[parts.length - 1][1].seq;
  entry.at = Date.now();
  map.set(m.topic, entry);
  schedule();
}

function onAlert(m, d) {
  const id = d.alert_id || d.id;
  if (!id) return;
  const a = alerts.get(id) || {data: {}, status: "pending"};
  if (m.event === "alert:acknowledged") a.status = a.status === "resolved" ? "resolved" : "acknowledged";
  else if (m.event === "alert:resolved") a.status = "resolved";
  else a.status = d.status || a.status;
  a.data = Object.assign({}, a.data, d);
  if (!a.data.organization_id) a.data.organization_id = scopeOf(m).org;
  a.at = a.at || Date.now();
  alerts.set(id, a);
  schedule();
}

// With an admin key on the server, the admin routes (/api/stats, /api/broadcast, ...) need it.
function apiHeaders(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("admin-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function alertAction(id, action) {
  const a = alerts.get(id);
  if (!a) return;
  // The server's alert lifecycle publishes alert:acknowledged / alert:resolved to every page.
  const verb = action === "acknowledged" ? "acknowledge" : "resolve";
  try {
    const r = await fetch("/api/alerts/" + encodeURIComponent(id) + "/" + verb, {method: "POST", headers: apiHeaders({"Content-Type": "application/json"}), body: JSON.stringify({by: "dashboard"})});
    if (!r.ok) $("log").textContent = "alert " + action + " failed: HTTP " + r.status;
  } catch (err) { $("log").textContent = "alert " + action + " failed: " + err; }
}

// --- rendering (coalesced to one pass per animation frame) ----------------------------------
let pending = false;
function schedule() { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; render(); }); } }

function selected(map) { return [...map.entries()].filter(([, e]) => covers(scope, e.scope)).sort((a, b) => a[0] < b[0] ? -1 : 1); }

function currentKpis() {
  // The value published at exactly the selected scope wins; otherwise aggregate its children.
  const exact = store.kpi.get(topicKey("kpi", scope));
  if (exact) return {values: exact.data, phase: exact.phase, n: 1};
  const rows = selected(store.kpi).map(([, e]) => e);
  if (!rows.length) return null;
  const values = {};
  for (const k of KPIS) {
    const xs = rows.map((e) => e.data[k.key]).filter((v) => typeof v === "number");
    if (!xs.length) continue;
    const sum = xs.reduce((a, b) => a + b, 0);
    values[k.key] = k.agg === "sum" ? sum : Math.round(sum / xs.length * 10) / 10;
  }
  const phases = new Set(rows.map((e) => e.phase));
  return {values: values, phase: [...phases].join("+"), n: rows.length};
}

function render() {
  $("scope-name").textContent = "· " + topicKey("kpi", scope).replace(/^kpi:?/, "") ;
  renderTiles();
  renderBacklog();
  renderAttendance();
  renderAlerts();
  renderMetrics();
  renderPickers();
}

function renderTiles() {
  const cur = currentKpis();
  const html = [];
  for (const k of KPIS) {
    const v = cur ? cur.values[k.key] : undefined;
    const p = lastTiles ? lastTiles[k.key] : undefined;
    // The arrow shows the last change of the value, kept while the value stays the same.
    if (typeof v === "number" && typeof p === "number" && v !== p) deltas[k.key] = Math.round((v - p) * 10) / 10;
    let arrow = "", cls = "flat";
    const d = deltas[k.key];
    if (typeof d === "number") {
      if (d !== 0) cls = (d > 0) === (k.good > 0) ? "up" : "down";
      arrow = (d > 0 ? "▲ +" : d < 0 ? "▼ " : "▬ ") + fmt(d);
    }
    html.push('<div class="tile" data-kpi="' + k.key + '"><span class="phase">' + esc(cur ? cur.phase : "") +
              '</span><div class="name">' + k.name + '</div><div class="value">' +
              (typeof v === "number" ? esc(fmt(v)) + k.unit : "–") + '</div><div class="delta ' + cls + '">' +
              (arrow || "&nbsp;") + "</div></div>");
  }
  $("tiles").innerHTML = html.join("");
  if (cur) {
    const changed = !lastTiles || KPIS.some((k) => lastTiles[k.key] !== cur.values[k.key]);
    if (changed) {
      history.push({t: Date.now(), values: Object.assign({}, cur.values)});
      if (history.length > 120) history.shift();
      renderChart();
    }
    lastTiles = Object.assign({}, cur.values);
  }
}

function renderChart() {
  const W = 600, H = 200, pad = 6;
  const svg = $("chart");
  const series = KPIS.filter((k) => k.key !== "headcount_gap");
  let lo = 0, hi = 100;
  for (const h of history) for (const k of series) { const v = h.values[k.key]; if (typeof v === "number") { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  const n = Math.max(history.length - 1, 1);
  const x = (i) => pad + (W - 2 * pad) * i / n;
  const y = (v) => H - pad - (H - 2 * pad) * (v - lo) / (hi - lo || 1);
  let out = "";
  for (const g of [0.25, 0.5, 0.75]) out += '<line x1="0" x2="' + W + '" y1="' + (H * g) + '" y2="' + (H * g) + '" stroke="#334155" stroke-width="1"/>';
  for (const k of series) {
    const pts = history.map((h, i) => typeof h.values[k.key] === "number" ? x(i).toFixed(1) + "," + y(h.values[k.key]).toFixed(1) : null).filter(Boolean);
    if (pts.length) out += '<polyline fill="none" stroke="' + k.color + '" stroke-width="2" vector-effect="non-scaling-stroke" points="' + pts.join(" ") + '"/>';
  }
  svg.innerHTML = out;
  $("legend").innerHTML = series.map((k) => '<span><i style="background:' + k.color + '"></i>' + k.name + "</span>").join("") +
    '<span>scale ' + fmt(lo) + "–" + fmt(hi) + "</span>";
}

function renderBacklog() {
  const rows = selected(store.backlog).map(([, e]) => {
    const d = e.data;
    return "<tr><td>" + esc(e.scope.dept || "–") + "</td><td>" + esc(e.scope.queue || "–") + '</td><td class="num">' +
      esc(fmt(d.total_items)) + '</td><td class="num">' + esc(fmt(d.avg_wait_time_minutes)) + '</td><td class="num">' +
      esc(fmt(d.items_over_sla)) + '</td><td class="num">' + esc(fmt(d.sla_compliance_percentage)) + "</td><td>" +
      esc(d.backlog_trend || "") + "</td></tr>";
  });
  $("backlog").innerHTML = rows.join("") || '<tr><td colspan="7" class="empty">no backlog data for this scope</td></tr>';
}

function renderAttendance() {
  const rows = selected(store.attendance).filter(([, e]) => !scope.queue || !e.scope.queue).map(([, e]) => {
    const d = e.data;
    return "<tr><td>" + esc(e.scope.dept || "–") + '</td><td class="num">' + esc(fmt(d.scheduled_count)) + '</td><td class="num">' +
      esc(fmt(d.present_count)) + '</td><td class="num">' + esc(fmt(d.absent_count)) + '</td><td class="num">' +
      esc(fmt(d.late_count)) + '</td><td class="num">' + esc(fmt(d.attendance_rate)) + "</td></tr>";
  });
  // Attendance is per department: with a queue selected, show its department.
  const all = scope.queue ? [...store.attendance.values()].filter((e) => e.scope.org === scope.org && e.scope.dept === scope.dept) : null;
  if (all && !rows.length) for (const e of all) rows.push("<tr><td>" + esc(e.scope.dept) + '</td><td class="num">' + esc(fmt(e.data.scheduled_count)) +
      '</td><td class="num">' + esc(fmt(e.data.present_count)) + '</td><td class="num">' + esc(fmt(e.data.absent_count)) +
      '</td><td class="num">' + esc(fmt(e.data.late_count)) + '</td><td class="num">' + esc(fmt(e.data.attendance_rate)) + "</td></tr>");
  $("attendance").innerHTML = rows.join("") || '<tr><td colspan="6" class="empty">no attendance data for this scope</td></tr>';
}

function renderAlerts() {
  const list = [...alerts.entries()].filter(([, a]) => !a.data.organization_id || a.data.organization_id === scope.org)
    .sort((a, b) => b[1].at - a[1].at).slice(0, 50);
  $("alerts").innerHTML = list.map(([id, a]) => {
    const d = a.data;
    const buttons = (a.status === "pending" ? '<button data-act="acknowledged" data-id="' + esc(id) + '">Acknowledge</button> ' : "") +
      (a.status !== "resolved" ? '<button data-act="resolved" data-id="' + esc(id) + '">Resolve</button>' : "");
    return '<div class="alert" data-alert="' + esc(id) + '" data-status="' + esc(a.status) + '"><span class="sev ' + esc(d.severity || "medium") + '">' +
      esc(d.severity || "info") + '</span><div class="body"><div>' + esc(d.rule_name || d.message || id) + '</div><div class="meta">' +
      esc(id) + " · " + esc(d.message || "") + " · " + esc(d.triggered_at || "") + '</div></div><span class="st ' + esc(a.status) + '">' +
      esc(a.status) + "</span>" + buttons + "</div>";
  }).join("") || '<div class="empty">no alerts</div>';
}

function renderMetrics() {
  const e = [...store.metrics.values()].sort((a, b) => b.at - a.at)[0];
  if (!e) return;
  const flat = [];
  const walk = (o, prefix) => { for (const [k, v] of Object.entries(o)) {
    if (typeof v === "number") flat.push([prefix + k, v]);
    else if (v && typeof v === "object" && !Array.isArray(v) && prefix.split(".").length < 3) walk(v, prefix + k + "."); } };
  walk(e.data, "");
  $("metrics").innerHTML = flat.slice(0, 16).map(([k, v]) => "<dt>" + esc(k) + "</dt><dd>" + esc(fmt(v, 2)) + "</dd>").join("");
}

let pickerState = "";
function renderPickers() {
  const state = [...known.orgs].join() + "|" + [...known.depts].join() + "|" + [...known.queues].join();
  if (state === pickerState) return;
  pickerState = state;
  $("orgs").innerHTML = [...known.orgs].sort().map((o) => '<option value="' + esc(o) + '">').join("");
  const fill = (el, values, cur) => {
    el.innerHTML = '<option value="">all</option>' + [...values].sort().map((v) => '<option' + (v === cur ? " selected" : "") + ">" + esc(v) + "</option>").join("");
  };
  fill($("dept"), known.depts, scope.dept);
  fill($("queue"), known.queues, scope.queue);
}

async function refreshStats() {
  try {
    const r = await fetch("/api/stats", {cache: "no-store", headers: apiHeaders()});
    const s = (await r.json()).stats || {};
    const rows = [["connections", s.active_connections], ["publications", s.total_messages], ["frames sent", s.messages_sent],
      ["messages / s", s.messages_per_second], ["avg latency (ms)", s.average_latency_ms], ["max latency (ms)", s.max_latency_ms],
      ["dropped", s.dropped_messages], ["errors", s.error_count], ["rooms", s.active_rooms], ["uptime (s)", s.uptime_seconds]];
    $("stats").innerHTML = rows.map(([k, v]) => "<dt>" + k + "</dt><dd>" + esc(fmt(v, 2)) + "</dd>").join("");
  } catch (err) {
    $("stats").innerHTML = '<dt class="empty">server unreachable</dt><dd></dd>';
  }
}

// --- admin view (/#admin): connections and rooms from the REST API ---------------------------
async function refreshAdmin() {
  if (location.hash !== "#admin") return;
  const el = $("admin");
  try {
    const opts = {cache: "no-store", headers: apiHeaders()};
    const [c, r] = await Promise.all([fetch("/api/connections", opts), fetch("/api/rooms", opts)]);
    if (c.status === 401 || r.status === 401) {
      el.dataset.state = "unauthorized";
      $("admin-status").textContent = "this server needs its admin key (401)";
      return;
    }
    if (!c.ok || !r.ok) throw new Error("HTTP " + (c.ok ? r.status : c.status));
    const conns = (await c.json()).connections || [], rooms = (await r.json()).rooms || [];
    conns.sort((a, b) => String(a.connected_at).localeCompare(String(b.connected_at)));
    $("conn-count").textContent = conns.length;
    $("connections").innerHTML = conns.map((x) => '<tr data-conn="' + esc(x.socket_id) + '" data-transport="' + esc(x.transport || "websocket") +
      '" data-org="' + esc(x.organization_id || "") + '"><td>' + esc(x.socket_id) + "</td><td>" + esc(x.transport || "websocket") + "</td><td>" +
      esc(x.organization_id || "–") + "</td><td>" + esc(x.user_id || "–") + "</td><td>" + esc(x.remote_address || "") + "</td><td>" +
      esc((x.subscriptions || []).join(" ")) + "</td><td>" + esc(String(x.connected_at || "").replace("T", " ").replace(/\.\d+Z$/, "Z")) +
      '</td><td class="num">' + esc(fmt(x.messages_sent)) + '</td><td class="num">' + esc(fmt(x.messages_received)) +
      '</td><td class="num">' + esc(fmt(x.queued)) + "</td></tr>").join("") || '<tr><td colspan="10" class="empty">no connections</td></tr>';
    $("room-count").textContent = rooms.length;
    $("rooms").innerHTML = rooms.map((x) => '<tr data-room="' + esc(x.name) + '"><td>' + esc(x.name) + "</td><td>" + esc(x.channel) + "</td><td>" +
      esc(Object.entries(x.scope || {}).map(([k, v]) => k + "=" + v).join(" ") || "(channel)") + '</td><td class="num">' +
      esc(fmt(x.members)) + "</td></tr>").join("") || '<tr><td colspan="4" class="empty">no rooms</td></tr>';
    el.dataset.state = "ok";
    $("admin-status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    el.dataset.state = "error";
    $("admin-status").textContent = "server unreachable: " + err;
  }
}
function showAdmin() {
  const on = location.hash === "#admin";
  $("admin").hidden = !on;
  if (on) refreshAdmin();
}
window.addEventListener("hashchange", showAdmin);
$("admin-refresh").addEventListener("click", () => {
  try { localStorage.setItem("rtpush.adminKey", $("admin-key").value); } catch (err) {}
  refreshAdmin();
  refreshStats();
});
try { $("admin-key").value = localStorage.getItem("rtpush.adminKey") || ""; } catch (err) {}

// --- controls -------------------------------------------------------------------------------
function applyScope() {
  const org = $("org").value.trim() || "acme";
  if (org !== scope.org) { known.depts.clear(); known.queues.clear(); scope = {org: org, dept: "", queue: ""}; }
  else scope = {org: org, dept: $("dept").value, queue: $("dept").value ? $("queue").value : ""};
  lastTiles = null;
  deltas = {};
  history = [];
  renderChart();
  pickerState = "";
  for (const [k, e] of store.kpi) learnScope(e.scope);
  subscribe();
  render();
}
$("org").addEventListener("change", applyScope);
$("dept").addEventListener("change", applyScope);
$("queue").addEventListener("change", applyScope);
$("apply").addEventListener("click", () => {
  try { localStorage.setItem("rtpush.token", $("token").value); } catch (err) {}
  applyScope();
  reconnect(); // a new token only counts on a new connection: authenticate is sent first

});
$("alerts").addEventListener("click", (e) => {
  const b = e.target.closest("button[data-act]");
  if (b) { b.disabled = true; alertAction(b.dataset.id, b.dataset.act); }
});
try { $("token").value = localStorage.getItem("rtpush.token") || ""; } catch (err) {}

render();
renderChart();
connect();
refreshStats();
setInterval(refreshStats, 3000);
showAdmin();
setInterval(refreshAdmin, 3000);
</script>
</body>
</html>
)rtpush";

} // namespace rtpush::detail

#endif
