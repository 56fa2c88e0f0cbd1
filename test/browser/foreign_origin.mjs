// Cross-site WebSocket hijacking, from a real browser (docs/security.md, "Origin check").
//
// Usage: node foreign_origin.mjs RTD ARTIFACT_DIR
// Two loopback web servers serve the same page: one at http://127.0.0.1:<a> (the allowed
// origin), one at http://127.0.0.2:<b> (a foreign site). rtd runs with only the first in its
// allow-list. In headless chromium, the foreign page's `new WebSocket(rtd)` must fail: the
// handshake is refused with 403 (chromium's console says so, rtd logs origin_refused for that
// origin) and the page never gets a message; its REST fetch is blocked by CORS. The allowed
// page, open meanwhile, subscribes and receives every publication in order.
// Exit 0 = pass, 1 = fail, 77 = skipped (no chromium or playwright-core).
import {spawn} from "node:child_process";
import {existsSync, mkdirSync, mkdtempSync, rmSync} from "node:fs";
import {createServer} from "node:http";
import {createRequire} from "node:module";
import {tmpdir} from "node:os";
import {dirname, join} from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";

const [RTD, ARTIFACTS] = process.argv.slice(2);
if (!RTD || !ARTIFACTS) {
  console.error("usage: foreign_origin.mjs RTD ARTIFACT_DIR");
  process.exit(2);
}
const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const failures = [];
const servers = [];
let rtd = null;
let context = null;
let profile = null;

function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (!cond) failures.push(what);
}

// browser.dashboard installs chromium and playwright-core when missing; this one only skips.
if (!existsSync(CHROMIUM) || !existsSync(join(HERE, "node_modules", "playwright-core"))) {
  console.log(`SKIP: needs ${CHROMIUM} and test/browser/node_modules/playwright-core ` +
              "(the browser.dashboard test installs both)");
  process.exit(77);
}

// The probe page: opens a WebSocket to rtd, subscribes, records everything in window.probe,
// and tries a REST read (CORS). The same page is served from both origins.
const PAGE = `<!doctype html><meta charset="utf-8"><title>origin probe</title>
<pre id="log">connecting</pre>
<script>
const q = new URLSearchParams(location.search);
const probe = window.probe = {state: "connecting", messages: [], closeCode: null, error: false, rest: "pending"};
const show = () => { document.getElementById("log").textContent = location.origin + "\\n" + JSON.stringify(probe, null, 1); };
const ws = new WebSocket(q.get("ws"));
ws.onopen = () => {
  probe.state = "open";
  ws.send(JSON.stringify({type: "subscribe", channel: "kpi", scope: {org: "acme"}, id: "s"}));
  show();
};
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  probe.messages.push(m);
  if (m.type === "subscribed") probe.state = "subscribed";
  show();
};
ws.onerror = () => { probe.error = true; show(); };
ws.onclose = (e) => { probe.closeCode = e.code; probe.state = "closed"; show(); };
fetch(q.get("api")).then((r) => r.json()).then(() => { probe.rest = "read"; show(); },
                                               (e) => { probe.rest = "blocked: " + e; show(); });
</script>`;

function serve(host) {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      res.writeHead(200, {"content-type": "text/html; charset=utf-8", "cache-control": "no-store"});
      res.end(PAGE);
    });
    servers.push(srv);
    srv.listen(0, host, () => resolve(`http://${host}:${srv.address().port}`));
  });
}

// rtd logs one JSON object per line: "listening" carries the port, "origin_refused" each
// refused handshake.
function startRtd(allowed, log) {
  return new Promise((resolve, reject) => {
    const proc = spawn(RTD, ["--host", "127.0.0.1", "--port", "0", "--allowed-origin", allowed],
                       {stdio: ["ignore", "pipe", "inherit"]});
    const timer = setTimeout(() => reject(new Error("rtd did not start")), 15000);
    createInterface({input: proc.stdout}).on("line", (line) => {
      let ev;
      try { ev = JSON.parse(line); } catch (e) { return; }
      log.push(ev);
      if (ev.event === "listening") {
        clearTimeout(timer);
        resolve({proc, port: ev.port});
      }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error("rtd exited with " + code)); });
  });
}

async function broadcast(port, i) {
  const r = await fetch(`http://127.0.0.1:${port}/api/broadcast`, {
    method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({channel: "kpi", scope: {org: "acme"}, data: {i}})});
  if (r.status !== 200) throw new Error("broadcast answered " + r.status);
}

async function main() {
  mkdirSync(ARTIFACTS, {recursive: true});
  const {chromium} = createRequire(join(HERE, "package.json"))("playwright-core");
  const allowed = await serve("127.0.0.1");
  const foreign = await serve("127.0.0.2");
  const log = [];
  rtd = await startRtd(allowed, log);
  const ws = `ws://127.0.0.1:${rtd.port}/ws`;
  const api = `http://127.0.0.1:${rtd.port}/api/health`;
  const query = `/?ws=${encodeURIComponent(ws)}&api=${encodeURIComponent(api)}`;
  console.log(`# rtd on ${rtd.port}; allowed page ${allowed}, foreign page ${foreign}`);

  profile = mkdtempSync(join(tmpdir(), "rtpush-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 900, height: 600},
    timeout: 30000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage"],
  });

  // The allowed page first: it connects, subscribes and stays open throughout.
  const good = context.pages()[0] || await context.newPage();
  good.setDefaultTimeout(20000);
  await good.goto(allowed + query);
  await good.waitForFunction(() => window.probe.state === "subscribed");
  check(true, "allowed origin: the page's WebSocket opened and subscribed");
  await good.waitForFunction(() => window.probe.rest !== "pending");
  check(await good.evaluate(() => window.probe.rest) === "read", "allowed origin: REST readable (CORS headers)");

  // The foreign page: same script, another origin.
  const evil = await context.newPage();
  evil.setDefaultTimeout(20000);
  const consoleLines = [];
  evil.on("console", (m) => consoleLines.push(m.text()));
  await evil.goto(foreign + query);
  await evil.waitForFunction(() => window.probe.state === "closed" && window.probe.rest !== "pending");
  const p = await evil.evaluate(() => window.probe);
  check(p.error && p.closeCode === 1006, `foreign origin: the WebSocket failed (error, close ${p.closeCode})`);
  check(p.messages.length === 0, "foreign origin: not a single message reached the page");
  check(consoleLines.some((l) => l.includes("403")),
        "foreign origin: chromium reports the handshake refused with 403" +
        (consoleLines.length ? ` (${consoleLines.find((l) => l.includes("WebSocket")) || consoleLines[0]})` : ""));
  // rtd writes a burst's log lines together, up to --log-flush-interval (0.1 s) later.
  const refusedLogged = () => log.some((e) => e.event === "origin_refused" && e.origin === foreign);
  for (let waited = 0; !refusedLogged() && waited < 3000; waited += 50)
    await new Promise((r) => setTimeout(r, 50));
  check(refusedLogged(), `foreign origin: rtd logged origin_refused for ${foreign}`);
  check(!log.some((e) => e.event === "origin_refused" && e.origin === allowed), "allowed origin never refused");
  check(p.rest.startsWith("blocked"), "foreign origin: REST read blocked by CORS (" + p.rest + ")");
  await evil.screenshot({path: join(ARTIFACTS, "foreign-origin-refused.png")});

  // Meanwhile the allowed page receives every publication, in order.
  for (let i = 1; i <= 5; ++i) await broadcast(rtd.port, i);
  await good.waitForFunction(() => window.probe.messages.filter((m) => m.type === "update").length >= 5);
  const updates = (await good.evaluate(() => window.probe.messages)).filter((m) => m.type === "update");
  check(updates.length === 5 && updates.every((m, k) => m.data.i === k + 1 && m.seq === k + 1),
        "allowed origin: all 5 updates arrived, in order");
  check(await good.evaluate(() => window.probe.state) === "subscribed", "allowed origin: still connected");
  await good.screenshot({path: join(ARTIFACTS, "allowed-origin-receives.png")});
}

async function cleanup() {
  if (context) await context.close().catch(() => {});
  if (rtd) rtd.proc.kill("SIGKILL");
  for (const s of servers) s.close();
  if (profile) rmSync(profile, {recursive: true, force: true});
}

// Bounded: whatever hangs, the test ends (and kills what it started) within 90 s.
const deadline = setTimeout(async () => {
  console.log("FAIL overall deadline of 90 s passed");
  await cleanup();
  process.exit(1);
}, 90000);

try {
  await main();
} catch (e) {
  failures.push(String(e && e.stack || e));
  console.log("FAIL " + (e && e.stack || e));
}
await cleanup();
clearTimeout(deadline);
console.log(failures.length ? `${failures.length} failure(s)` : `all passed; screenshots in ${ARTIFACTS}`);
process.exit(failures.length ? 1 : 0);
