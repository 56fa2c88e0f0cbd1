// clients/js (rtpush-client) end to end against a real rtd.
//
// Usage: node client.mjs RTD
// Starts rtd on free loopback ports (one open, one with --jwt-secret --auth-required) and a TCP
// proxy in front of the first, through which the network is cut and frozen. Checks: subscribe,
// REST broadcast, get, publish, unsubscribe, recovery after a cut (nothing missing, nothing
// twice), the heartbeat watchdog, acks, a server restart, the seed 001 facade, JWT auth, the
// React hooks on one shared connection, the SSE fallback, `tsc --noEmit` on a .ts user, and
// the package `npm pack` makes (files, exports, types; the core module's minified size).
// Exit 0 = pass, 1 = fail, 77 = skipped (npm install failed). Every child is killed by pid.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
import {spawn, spawnSync} from "node:child_process";
import {createHmac} from "node:crypto";
import {existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync} from "node:fs";
import {register} from "node:module";
import {createServer, connect as tcpConnect} from "node:net";
import {tmpdir} from "node:os";
import {gzipSync} from "node:zlib";
import {dirname, join} from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath, pathToFileURL} from "node:url";

const RTD = process.argv[2];
if (!RTD) {
  console.error("usage: client.mjs RTD");
  process.exit(2);
}
const HERE = dirname(fileURLToPath(import.meta.url));
const PKG = join(HERE, "..", "..", "clients", "js");
const failures = [];
let passed = 0;
const children = new Set();
const deadline = setTimeout(() => { console.log("FAIL the test ran out of time"); finish(1); }, 150000);

function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (cond) passed++;
  else failures.push(what);
}

function finish(code) {
  for (const p of children) { try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ } }
  console.log(`${passed} passed, ${failures.length} failed`);
  process.exit(code);
}

if (["ws", "react-test-renderer", "typescript", "esbuild"].some((p) => !existsSync(join(HERE, "node_modules", p, "package.json")))) {
  console.log("# npm install (ws, react, react-test-renderer, typescript, esbuild)");
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund"], {cwd: HERE, stdio: "inherit", timeout: 240000});
  if (r.status !== 0 || !existsSync(join(HERE, "node_modules", "ws"))) {
    console.log("SKIP: npm install failed");
    process.exit(77);
  }
}
// clients/js/src/react.js imports 'react': resolve it from test/js/node_modules, as the
// application's own node_modules would.
register("data:text/javascript," + encodeURIComponent(`
  export async function resolve(spec, ctx, next) {
    if (spec === "react" || spec.startsWith("react/"))
      return next(spec, {...ctx, parentURL: ${JSON.stringify(pathToFileURL(join(HERE, "client.mjs")).href)}});
    return next(spec, ctx);
  }`));

const {WebSocket} = await import("ws");
const {RtpushClient, Seed001Client, StreamTracker} = await import(pathToFileURL(join(PKG, "src", "index.js")).href);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(cond, ms = 8000, step = 20) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(step);
  }
  return false;
}
const once = (client, event, pred = () => true, ms = 8000) => new Promise((resolve) => {
  const t = setTimeout(() => { off(); resolve(null); }, ms);
  const off = client.on(event, (e) => { if (pred(e)) { clearTimeout(t); off(); resolve(e ?? true); } });
});

function startRtd(port, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(RTD, ["--host", "127.0.0.1", "--port", String(port), "--heartbeat-interval", "1", ...extra],
                       {stdio: ["ignore", "pipe", "inherit"]});
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    const timer = setTimeout(() => reject(new Error("rtd did not start")), 15000);
    createInterface({input: proc.stdout}).on("line", (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === "listening") { clearTimeout(timer); resolve({proc, port: ev.port}); }
      } catch { /* not JSON */ }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error("rtd exited with " + code)); });
  });
}
function stopRtd(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once("exit", () => resolve());
    process.kill(proc.pid, "SIGKILL");
  });
}

// A TCP proxy in front of rtd: down() cuts every connection and refuses new ones (a network
// failure), freeze() keeps them open but forwards nothing (a dead peer), up() restores.
function startProxy(targetPort) {
  const conns = new Set();
  let mode = "up";
  const server = createServer((c) => {
    if (mode !== "up") return c.destroy();
    const s = tcpConnect(targetPort, "127.0.0.1");
    const pair = {c, s};
    conns.add(pair);
    const forward = (from, to) => from.on("data", (d) => { if (mode === "up") to.write(d); });
    forward(c, s);
    forward(s, c);
    const end = () => { conns.delete(pair); c.destroy(); s.destroy(); };
    c.on("close", end); s.on("close", end); c.on("error", end); s.on("error", end);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({
    port: server.address().port,
    down() { mode = "down"; for (const {c, s} of conns) { c.destroy(); s.destroy(); } },
    freeze() { mode = "frozen"; },
    up() { mode = "up"; },
    close() { for (const {c, s} of conns) { c.destroy(); s.destroy(); } server.close(); },
  })));
}

async function rest(port, method, path, body) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method, headers: {"Content-Type": "application/json"}, body: body === undefined ? undefined : JSON.stringify(body)});
  return {status: res.status, body: await res.json().catch(() => null)};
}
const broadcast = (port, channel, org, data, extra = {}) =>
  rest(port, "POST", "/api/broadcast", {channel, event: channel + ":update", data, target: {organization_id: org}, ...extra});

function jwt(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({alg: "HS256", typ: "JWT"}) + "." + b64(claims);
  return head + "." + createHmac("sha256", secret).update(head).digest("base64url");
}

// A minimal EventSource over fetch, as a browser's global would be (Node 20 has none).
class FetchEventSource {
  constructor(url) {
    this.url = url;
    this.ctrl = new AbortController();
    this.onmessage = this.onerror = null;
    fetch(url, {headers: {Accept: "text/event-stream"}, signal: this.ctrl.signal}).then(async (res) => {
      let buf = "";
      for await (const chunk of res.body) {
        buf += Buffer.from(chunk).toString("utf8");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data && this.onmessage) this.onmessage({data});
        }
      }
    }).catch(() => { if (!this.ctrl.signal.aborted) this.onerror?.({}); });
  }
  close() { this.ctrl.abort(); }
}

async function main() {
  // The tracker alone: duplicates, gaps, the recover position.
  const tr = new StreamTracker();
  const m = (seq, extra = {}) => ({type: "update", topic: "m:org:a:dept:d", epoch: "e1", seq, ...extra});
  check(tr.accept(m(1)) === "fresh" && tr.accept(m(1)) === "duplicate" && tr.accept(m(3)) === "gap" && tr.accept(m(2)) === "fresh",
        "StreamTracker: fresh, duplicate, gap");
  const pos = tr.position("m:org:a");
  check(pos.epoch === "e1" && pos.offset === 0 && pos.offsets["m:org:a:dept:d"] === 2, "StreamTracker: recover {epoch, offset, offsets}");

  let rtd = await startRtd(0, ["--allow-publish"]);
  const port = rtd.port;
  const proxy = await startProxy(port);
  console.log(`# rtd on ${port}, proxy on ${proxy.port}`);

  // 1. connect, subscribe, a REST broadcast arrives, get, publish, unsubscribe.
  const c = new RtpushClient({url: `ws://127.0.0.1:${proxy.port}/ws`, WebSocket, clientId: "js-main",
                              reconnect: {initialDelay: 100, maxDelay: 400, multiplier: 2}});
  const states = [];
  for (const s of ["connecting", "connected", "disconnected", "reconnecting"]) c.on(s, () => states.push(s));
  const connected = once(c, "connected");
  c.connect();
  check(await connected && c.state === "connected" && c.transport === "websocket", "connects (state connected over websocket)");
  const got = [];
  const unsub = c.subscribe("metrics", {org: "acme"}, (msg) => got.push(msg));
  const sub = await unsub.ready;
  check(sub.type === "subscribed" && sub.topic === "metrics:org:acme", "subscribe answered: " + sub.topic);
  const b = await broadcast(port, "metrics", "acme", {n: 1});
  check(b.status === 200 && await until(() => got.some((x) => x.data?.n === 1)), "a POST /api/broadcast arrives as an update");
  await broadcast(port, "metrics", "acme", {n: 2}, {target: {organization_id: "acme", department_id: "support"}});
  check(await until(() => got.some((x) => x.data?.n === 2 && x.topic === "metrics:org:acme:dept:support")),
        "a narrower topic's publication reaches the org subscription");
  const snap = await c.get("metrics", {organization_id: "acme"});
  check(snap.type === "snapshot" && snap.items.length >= 1, `get: a snapshot with ${snap.items.length} items`);
  const pub = await c.publish("metrics", {org: "acme"}, {n: 3}, {event: "metrics:custom"});
  check(pub.type === "published" && pub.topic === "metrics:org:acme" && pub.seq > 0, "publish answered published, seq " + pub.seq);
  check(await until(() => got.some((x) => x.data?.n === 3 && x.event === "metrics:custom")), "the published message comes back with its event");
  const hist = await c.history("metrics", {organization_id: "acme"}, {limit: 2});
  check(hist.type === "history" && hist.count === 2 && hist.items[0].data?.n === 3 && hist.next_cursor !== null,
        "history: the newest page first: " + JSON.stringify(hist.items.map((i) => i.data)));
  const hist2 = await c.history("metrics", {organization_id: "acme"}, {limit: 2, cursor: hist.next_cursor});
  check(hist2.items[0]?.data?.n === 1, "history: the next page with its cursor: " + JSON.stringify(hist2.items.map((i) => i.data)));
  const herr = await c.history("metrics", {org: "acme"}, {limit: 5000}).catch((e) => e);
  check(herr && herr.code === "INVALID_MESSAGE", "history: a bad limit rejects with INVALID_MESSAGE: " + herr?.code);
  const err = await c.get("metrics", {org: "bad org!"}).catch((e) => e);
  check(err && err.code === "INVALID_MESSAGE", "a bad request rejects with the error {code, message}: " + err?.code);
  const other = [];
  const unsubOther = c.subscribe("gone", {org: "acme"}, (msg) => other.push(msg));
  await unsubOther.ready;
  unsubOther();
  await sleep(200);
  await broadcast(port, "gone", "acme", {n: 4});
  await broadcast(port, "metrics", "acme", {n: 5});
  await until(() => got.some((x) => x.data?.n === 5));
  check(other.length === 0, "after the unsubscribe function, nothing arrives");

  // 2. A network cut: publications meanwhile are recovered, nothing missing, nothing twice.
  const seqs = () => got.filter((x) => x.topic === "metrics:org:acme").map((x) => x.seq);
  const before = seqs().length;
  const down = once(c, "disconnected");
  proxy.down();
  check(!!(await down), "the cut is noticed (disconnected)");
  for (let i = 0; i < 5; i++) await broadcast(port, "metrics", "acme", {cut: i});
  await sleep(300);
  const recovered = once(c, "recovered", (e) => e.topic === "metrics:org:acme");
  proxy.up();
  const rec = await recovered;
  check(rec && rec.recovered === true, "reconnected with recovered: true");
  check(await until(() => seqs().length === before + 5), "the 5 publications of the cut arrive");
  const s = seqs();
  check(s.every((v, i) => i === 0 || v === s[i - 1] + 1), "seqs contiguous, none twice: " + s.join(","));
  check(states.includes("reconnecting"), "reconnecting event with backoff");

  // 3. The heartbeat watchdog: a frozen connection is taken for dead.
  const w = new RtpushClient({url: `ws://127.0.0.1:${proxy.port}/ws`, WebSocket, heartbeatTimeout: 1200,
                              reconnect: {initialDelay: 50, maxDelay: 200}});
  const wConnected = once(w, "connected");
  w.connect();
  await wConnected;
  const timedOut = once(w, "reconnecting", (e) => /timed out/.test(e.reason));
  proxy.freeze();
  const to = await timedOut;
  check(!!to, "a silent server is dropped by the watchdog: " + to?.reason);
  proxy.up();
  check(!!(await once(w, "connected")), "and reconnected when the network is back");
  w.close();
  check(w.state === "closed", "close(): state closed");

  // 4. Acknowledged delivery: the client acks automatically.
  const notes = [];
  const un = c.subscribe("notes", {org: "acme"}, (msg) => notes.push(msg));
  await un.ready;
  const ab = await rest(port, "POST", "/api/broadcast",
                        {channel: "notes", event: "system:notification", data: {text: "hi"}, target: {organization_id: "acme"}, requires_ack: true});
  check(ab.status === 200 && ab.body.id, "a requires_ack broadcast has id " + ab.body?.id);
  check(await until(() => notes.some((x) => x.ackId === ab.body.id)), "the update carries the ackId");
  let report = null;
  await until(async () => {
    report = (await rest(port, "GET", `/api/broadcast/${ab.body.id}`)).body;
    return report && report.acked === 1;
  });
  check(report && report.acked === 1 && report.pending === 0, `GET /api/broadcast/{id}: acked ${report?.acked}, pending ${report?.pending}`);

  // 5. A server restart on the same port: another epoch, a fresh snapshot, live again.
  await stopRtd(rtd.proc);
  rtd = await startRtd(port, ["--allow-publish"]);
  const afterRestart = await once(c, "recovered", (e) => e.topic === "metrics:org:acme", 10000);
  check(afterRestart && afterRestart.recovered === false && afterRestart.reason === "epoch_mismatch",
        "after a restart: recovered false, " + afterRestart?.reason);
  await broadcast(port, "metrics", "acme", {n: "after"});
  check(await until(() => got.some((x) => x.data?.n === "after")), "updates flow after the restart");

  // 6. Seed 001's facade.
  const seed = new Seed001Client();
  const seen = {};
  seed.on({
    onConnect: () => { seen.connect = true; },
    onKPIUpdate: (p) => { seen.kpi = p; },
    onAlertTriggered: (p) => { seen.alert = p; },
    onDisconnect: () => { seen.disconnect = true; },
  });
  seed.initialize({url: `http://127.0.0.1:${port}`, path: "/ws", WebSocket, reconnectionDelay: 100});
  const auth = await until(() => seed.isConnected()) && await seed.authenticate("user_123", "acme");
  check(seen.connect && auth && auth.type === "authenticated", "facade: initialize, onConnect, authenticate(userId, orgId)");
  await seed.subscribe(["kpi", "alerts"], {organization_id: "acme", department_id: "support", queue_name: "email"});
  const k = await rest(port, "POST", "/api/broadcast/kpi",
                       {organization_id: "acme", department_id: "support", queue_name: "email", health_score: 85, utilization: 0.5});
  check(k.status === 200 && await until(() => seen.kpi?.health_score === 85), "facade: onKPIUpdate(payload) from POST /api/broadcast/kpi");
  const a = await rest(port, "POST", "/api/broadcast/alert",
                       {organization_id: "acme", department_id: "support", queue_name: "email", severity: "high", message: "SLA risk"});
  check(a.status === 200 && await until(() => seen.alert?.message === "SLA risk"), "facade: onAlertTriggered from POST /api/broadcast/alert");
  await seed.unsubscribe(["kpi"], {organization_id: "acme", department_id: "support", queue_name: "email"});
  seed.disconnect();
  check(!seed.isConnected() && seen.disconnect, "facade: disconnect(), onDisconnect");

  // 7. JWT authentication: getToken on every connection; a wrong token is an error event.
  const SECRET = "js-client-secret";
  const authed = await startRtd(0, ["--jwt-secret", SECRET, "--auth-required"]);
  let tokens = 0;
  const j = new RtpushClient({url: `ws://127.0.0.1:${authed.port}/ws`, WebSocket, reconnect: {initialDelay: 50, maxDelay: 200},
                              getToken: async () => { tokens++; return jwt(SECRET, {sub: "alice", org: "acme", exp: Math.floor(Date.now() / 1000) + 600}); }});
  const jAuth = once(j, "authenticated");
  j.connect();
  const ja = await jAuth;
  check(ja && ja.userId === "alice" && ja.organizationId === "acme", "JWT: authenticated as alice of acme");
  const jgot = [];
  await j.subscribe("metrics", {org: "acme"}, (msg) => jgot.push(msg)).ready;
  await broadcast(authed.port, "metrics", "acme", {secure: 1});
  check(await until(() => jgot.some((x) => x.data?.secure === 1)), "JWT: the authenticated client receives its org's updates");
  const jReconnected = once(j, "authenticated");
  j.reconnect();
  check(await jReconnected && tokens === 2, "JWT: getToken() called again on reconnect (" + tokens + " calls)");
  j.close();
  const bad = new RtpushClient({url: `ws://127.0.0.1:${authed.port}/ws`, WebSocket, token: jwt("wrong", {sub: "eve", org: "acme"}),
                                reconnect: false});
  const badErr = once(bad, "error", (e) => e.code === "AUTH_FAILED");
  bad.connect();
  check(!!(await badErr), "a wrong token: error event AUTH_FAILED");
  bad.close();
  let sockets7 = 0, auths = 0;
  class Counting7 extends WebSocket { constructor(...args) { super(...args); sockets7++; } }
  const short = new RtpushClient({url: `ws://127.0.0.1:${authed.port}/ws`, WebSocket: Counting7, reconnect: false,
                                  getToken: async () => jwt(SECRET, {sub: "bob", org: "acme", exp: Math.floor(Date.now() / 1000) + 3})});
  short.on("authenticated", () => auths++);
  short.connect();
  check(await until(() => auths >= 2, 6000) && sockets7 === 1 && short.state === "connected",
        `a token about to expire is renewed on the same connection (${auths} authenticate answers)`);
  short.close();
  await stopRtd(authed.proc);

  // 8. The React hooks: one shared connection for every hook under the provider.
  const React = (await import("react")).default;
  const {act, create} = (await import("react-test-renderer")).default;
  const hooks = await import(pathToFileURL(join(PKG, "src", "react.js")).href);
  globalThis.IS_REACT_ACT_ENVIRONMENT = true;
  let sockets = 0;
  class CountingWS extends WebSocket { constructor(...args) { super(...args); sockets++; } }
  const view = {};
  function Dashboard() {
    view.ws = hooks.useWebSocket({autoAuthenticate: true, userId: "u1", organizationId: "acme"});
    view.kpi = hooks.useKPIUpdates(null, {organization_id: "acme", queue_name: undefined});
    view.alerts = hooks.useAlertNotifications(null, {organization_id: "acme"});
    view.health = hooks.useWebSocketHealth(500);
    view.sub = hooks.useWebSocketSubscription(["metrics"], {organization_id: "acme"});
    return null;
  }
  const rc = new RtpushClient({url: `ws://127.0.0.1:${port}/ws`, WebSocket: CountingWS});
  let tree;
  const origError = console.error;
  // Updates from the socket land outside act(): expected here, where settle() polls in act.
  console.error = (...args) => { if (!/react-test-renderer is deprecated|not wrapped in act/.test(String(args[0]))) origError(...args); };
  await act(async () => { tree = create(React.createElement(hooks.RtpushProvider, {client: rc}, React.createElement(Dashboard))); });
  const settle = (cond) => until(async () => { await act(async () => { await sleep(20); }); return cond(); });
  check(await settle(() => view.ws.isConnected && view.ws.isAuthenticated), "useWebSocket: isConnected, isAuthenticated, " + view.ws.connectionStatus);
  check(await settle(() => view.kpi.isSubscribed && view.alerts.isSubscribed && view.sub.isSubscribed), "hooks subscribed");
  await rest(port, "POST", "/api/broadcast/kpi", {organization_id: "acme", health_score: 66});
  check(await settle(() => view.kpi.latestUpdate?.health_score === 66), "useKPIUpdates: latestUpdate.health_score 66");
  await rest(port, "POST", "/api/broadcast/alert", {organization_id: "acme", severity: "critical", message: "down"});
  check(await settle(() => view.alerts.alertCount === 1 && view.alerts.latestAlert?.message === "down"), "useAlertNotifications: latestAlert, alertCount 1");
  await act(async () => view.alerts.clearAlertCount());
  check(view.alerts.alertCount === 0, "clearAlertCount()");
  check(await settle(() => view.health.isHealthy && typeof view.health.latency === "number"), "useWebSocketHealth: healthy, latency " + view.health.latency + " ms");
  check(sockets === 1 && view.sub.lastMessage !== null, "one shared connection for all hooks (" + sockets + " WebSocket)");
  await act(async () => tree.unmount());
  rc.close();
  console.error = origError;

  // 9. The SSE fallback: WebSocket cannot connect, EventSource can.
  class NoWS { constructor() { throw new Error("blocked by a proxy"); } }
  const sse = new RtpushClient({url: `ws://127.0.0.1:${port}/ws`, WebSocket: NoWS, EventSource: FetchEventSource, sseAfter: 2,
                                reconnect: {initialDelay: 20, maxDelay: 50}});
  sse.on("error", () => {});
  const sseGot = [];
  const sseSub = sse.subscribe("metrics", {org: "acme"}, (msg) => sseGot.push(msg));
  const sseConnected = once(sse, "connected");
  sse.connect();
  const sc = await sseConnected;
  check(sc && sc.transport === "sse" && sse.transport === "sse", "after 2 failed WebSocket attempts: connected over SSE");
  await sseSub.ready;
  await broadcast(port, "metrics", "acme", {sse: 1});
  check(await until(() => sseGot.some((x) => x.data?.sse === 1)), "SSE: a broadcast arrives");
  const ro = await sse.publish("metrics", {org: "acme"}, {}).catch((e) => e);
  check(ro && ro.code === "READ_ONLY", "SSE is read-only: publish rejects " + ro?.code);
  sse.close();
  c.close();

  // 10. The types: tsc --noEmit on a TypeScript user of the package.
  const dir = mkdtempSync(join(tmpdir(), "rtpush-js-tsc-"));
  const src = pathToFileURL(join(PKG, "src")).pathname;
  writeFileSync(join(dir, "use.ts"), `
import {RtpushClient, websocketClient, type Publication, type SnapshotMessage} from "${src}/index.js";
import {useKPIUpdates, useAlertNotifications, useWebSocket, useWebSocketHealth, RtpushProvider} from "${src}/react.js";
const c = new RtpushClient({url: "ws://localhost:3001/ws", getToken: async () => "t", reconnect: {initialDelay: 100}});
c.on("reconnecting", ({attempt, delay}) => console.log(attempt + delay));
c.on("recovered", (e) => { const r: boolean = e.recovered; void r; });
const off: () => void = c.subscribe<{n: number}>("kpi", {org: "acme"}, (m: Publication<{n: number}>) => console.log(m.data.n + m.seq));
off();
const s: Promise<SnapshotMessage> = c.get("kpi", {organization_id: "acme"});
void s;
c.history("kpi", {org: "acme"}, {limit: 10, order: "oldest"}).then((h) => h.items.length + (h.next_cursor ?? 0));
c.publish("kpi", {org: "acme"}, {x: 1}, {requiresAck: true}).then((p) => p.seq.toFixed(), (e) => e.code);
websocketClient.initialize({url: "http://localhost:3001", autoConnect: false});
websocketClient.on({onKPIUpdate: (p) => console.log(p), onDisconnect: (reason: string) => console.log(reason)});
export function Widget() {
  const {latestUpdate} = useKPIUpdates<{health_score: number}>(undefined, {organization_id: "acme"});
  const {alertCount, clearAlertCount} = useAlertNotifications();
  const {isConnected, connectionStatus} = useWebSocket();
  const {latency} = useWebSocketHealth();
  clearAlertCount();
  return [latestUpdate?.health_score, alertCount, isConnected, connectionStatus, latency, RtpushProvider];
}
// @ts-expect-error: subscribe needs a handler
c.subscribe("kpi", {org: "acme"});
`);
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: {strict: true, noEmit: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext",
                      skipLibCheck: false, types: [], lib: ["es2022", "dom"],
                      paths: {"react": [join(HERE, "node_modules", "@types", "react", "index.d.ts")]}},
    files: ["use.ts"],
  }));
  const tsc = spawnSync(process.execPath, [join(HERE, "node_modules", "typescript", "bin", "tsc"), "-p", dir], {encoding: "utf8", timeout: 120000});
  if (tsc.status !== 0) console.log(tsc.stdout + tsc.stderr);
  check(tsc.status === 0, "tsc --noEmit on a TypeScript user of index.d.ts and react.d.ts");
  rmSync(dir, {recursive: true, force: true});

  await packageChecks();

  proxy.close();
  await stopRtd(rtd.proc);
}

// 11. The package as npm publishes it: `npm pack` into a temporary folder, unpacked as
// node_modules/rtpush-client of a consumer; its two entry points import by name through
// `exports`, tsc resolves their types through the same map; and the core's minified size.
async function packageChecks() {
  const dir = mkdtempSync(join(tmpdir(), "rtpush-js-pack-"));
  try {
    const pack = spawnSync("npm", ["pack", "--json", "--pack-destination", dir], {cwd: PKG, encoding: "utf8", timeout: 60000});
    const info = pack.status === 0 ? JSON.parse(pack.stdout)[0] : null;
    const files = info ? info.files.map((f) => f.path).sort() : [];
    const expected = ["README.md", "package.json", "src/client.js", "src/index.d.ts", "src/index.js", "src/react.d.ts",
                      "src/react.js", "src/seed001.js"];
    check(JSON.stringify(files) === JSON.stringify(expected), "npm pack: the package holds " + files.join(" "));
    if (!info) return console.log(pack.stdout + pack.stderr);
    const pkg = JSON.parse(readFileSync(join(PKG, "package.json"), "utf8"));
    const targets = [pkg.main, pkg.types, ...Object.values(pkg.exports).flatMap((e) => Object.values(e))];
    check(targets.every((t) => files.includes(t.replace(/^\.\//, ""))), "every main/types/exports target is in the package");
    check(!pkg.dependencies && pkg.peerDependenciesMeta?.react?.optional === true, "no runtime dependencies; react an optional peer");

    const nm = join(dir, "node_modules");
    mkdirSync(join(nm, "@types"), {recursive: true});
    spawnSync("tar", ["xzf", join(dir, info.filename), "-C", dir]);
    renameSync(join(dir, "package"), join(nm, "rtpush-client"));
    symlinkSync(join(HERE, "node_modules", "react"), join(nm, "react"));
    symlinkSync(join(HERE, "node_modules", "@types", "react"), join(nm, "@types", "react"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({name: "consumer", private: true, type: "module"}));
    writeFileSync(join(dir, "use.mjs"), `import {RtpushClient, websocketClient} from "rtpush-client";
import {useKPIUpdates, RtpushProvider} from "rtpush-client/react";
console.log([typeof RtpushClient, typeof websocketClient.initialize, typeof useKPIUpdates, typeof RtpushProvider].join(" "));`);
    const run = spawnSync(process.execPath, [join(dir, "use.mjs")], {cwd: dir, encoding: "utf8", timeout: 30000});
    check(run.stdout.trim() === "function function function function",
          "a consumer imports rtpush-client and rtpush-client/react from the packed package" + (run.status ? ": " + run.stderr : ""));
    writeFileSync(join(dir, "use.ts"), `import {RtpushClient, type Publication} from "rtpush-client";
import {useKPIUpdates} from "rtpush-client/react";
const c = new RtpushClient({url: "ws://localhost:3001/ws"});
c.subscribe<{n: number}>("kpi", {org: "acme"}, (m: Publication<{n: number}>) => console.log(m.data.n));
export function Tile() { const {latestUpdate} = useKPIUpdates<{n: number}>(null, {organization_id: "acme"}); return latestUpdate?.n; }
// @ts-expect-error: the url is required
new RtpushClient({});
`);
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
      compilerOptions: {strict: true, noEmit: true, target: "es2022", module: "nodenext", moduleResolution: "nodenext",
                        types: [], lib: ["es2022", "dom"]},
      files: ["use.ts"],
    }));
    const tsc = spawnSync(process.execPath, [join(HERE, "node_modules", "typescript", "bin", "tsc"), "-p", dir], {encoding: "utf8", timeout: 120000});
    if (tsc.status !== 0) console.log(tsc.stdout + tsc.stderr);
    check(tsc.status === 0, "tsc --noEmit resolves the packed package's types through its exports");

    // The core module (client.js) minified by esbuild: the figure the issue bounds (12 KB).
    const esbuild = await import(pathToFileURL(join(HERE, "node_modules", "esbuild", "lib", "main.js")).href);
    const src = readFileSync(join(PKG, "src", "client.js"), "utf8");
    const min = (await esbuild.transform(src, {minify: true, format: "esm", target: "es2022"})).code;
    const gz = gzipSync(min).length;
    console.log(`# core module src/client.js: ${src.length} bytes source, ${min.length} minified (esbuild), ${gz} gzipped`);
    check(min.length < 12 * 1024, `the core module stays under 12 KB minified (${(min.length / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped)`);
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
}

main().then(() => { clearTimeout(deadline); finish(failures.length ? 1 : 0); },
            (e) => { console.log("FAIL " + (e && e.stack || JSON.stringify(e))); finish(1); });
