// The dashboard page in a real browser: Debian's chromium driven by playwright-core.
//
// Usage: node dashboard.mjs RTD RTCTL ARTIFACT_DIR
// Starts `rtd --demo` on a free port, loads the page, checks that the KPI tiles paint, that
// `rtctl broadcast kpi` updates them, that acknowledging and resolving an alert works, and
// that the page reconnects after rtd restarts on the same port. Then the JavaScript client
// as rtd serves it (/client/*.js): a plain page and a React page (client_pages.mjs).
// Screenshots go to ARTIFACT_DIR. Exit 0 = pass, 1 = fail, 77 = skipped (no chromium or playwright-core).
import {execFileSync, spawn, spawnSync} from "node:child_process";
import {existsSync, mkdirSync, mkdtempSync, rmSync} from "node:fs";
import {createRequire} from "node:module";
import {tmpdir} from "node:os";
import {dirname, join} from "node:path";
import {connect as tcpConnect} from "node:net";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";
import {clientChecks} from "./client_pages.mjs";

const [RTD, RTCTL, ARTIFACTS] = process.argv.slice(2);
if (!RTD || !RTCTL || !ARTIFACTS) {
  console.error("usage: dashboard.mjs RTD RTCTL ARTIFACT_DIR");
  process.exit(2);
}
const HERE = dirname(fileURLToPath(import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const SKIP = 77;
const failures = [];
const children = new Set();
let context = null;
let profile = null;

function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (!cond) failures.push(what);
}

// The browser and the driver are installed here, by the test, never by scripts/deps:
// a Debian package and an npm package in this folder. No browser is ever downloaded.
function ensureTools() {
  if (!existsSync(CHROMIUM)) {
    console.log("# installing Debian chromium (apt-get)");
    const env = {...process.env, DEBIAN_FRONTEND: "noninteractive"};
    const sudo = process.getuid && process.getuid() !== 0 ? ["sudo", "-n"] : [];
    const run = (args) => spawnSync(sudo[0] || args[0], sudo.length ? [...sudo.slice(1), ...args] : args.slice(1),
                                    {stdio: "inherit", env, timeout: 240000});
    run(["apt-get", "update"]);
    run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"]);
    if (!existsSync(CHROMIUM)) {
      console.log(`SKIP: ${CHROMIUM} is missing and apt-get could not install chromium`);
      process.exit(SKIP);
    }
  }
  const needed = ["playwright-core", "react", "react-dom", "socket.io-client"];
  const missing = () => needed.filter((p) => !existsSync(join(HERE, "node_modules", p, "package.json")));
  if (missing().length) {
    console.log("# npm install (" + needed.join(", ") + ")");
    const r = spawnSync("npm", ["install", "--no-audit", "--no-fund"], {cwd: HERE, stdio: "inherit", timeout: 240000});
    if (r.status !== 0 || missing().length) {
      console.log("SKIP: npm install of " + missing().join(", ") + " failed");
      process.exit(SKIP);
    }
  }
}

// rtd logs one JSON object per line; the "listening" line carries the port it bound.
function startRtd(port, extra = [], demo = true) {
  return new Promise((resolve, reject) => {
    // --deflate with a low threshold: Chromium offers permessage-deflate, so the page runs on
    // compressed frames (shared ones for broadcasts) and sends compressed messages.
    const proc = spawn(RTD, ["--host", "127.0.0.1", "--port", String(port), ...(demo ? ["--demo", "--demo-interval", "500"] : []),
                             "--heartbeat-interval", "5", "--deflate", "--deflate-threshold", "64", ...extra],
                       {stdio: ["ignore", "pipe", "inherit"]});
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    const timer = setTimeout(() => reject(new Error("rtd did not start")), 15000);
    const lines = createInterface({input: proc.stdout});
    lines.on("line", (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === "listening") {
          clearTimeout(timer);
          resolve({proc, port: ev.port});
        }
      } catch (e) { /* not JSON: ignore */ }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error("rtd exited with " + code)); });
  });
}

function stopRtd(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    const kill = setTimeout(() => proc.kill("SIGKILL"), 10000);
    proc.once("exit", (code) => { clearTimeout(kill); resolve(code); });
    proc.kill("SIGTERM");
  });
}

function rtctl(port, ...args) {
  return execFileSync(RTCTL, ["--server", `http://127.0.0.1:${port}`, ...args], {encoding: "utf8", timeout: 10000});
}

const tileValue = (page, key) => page.locator(`.tile[data-kpi="${key}"] .value`).innerText();

async function main() {
  mkdirSync(ARTIFACTS, {recursive: true});
  const {chromium} = createRequire(join(HERE, "package.json"))("playwright-core");

  let rtd = await startRtd(0);
  const port = rtd.port;
  console.log(`# rtd on port ${port}`);

  // A fresh profile per run: nothing cached, nothing remembered between runs.
  profile = mkdtempSync(join(tmpdir(), "rtpush-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: {width: 1280, height: 900},
    timeout: 30000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage"],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(20000);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") console.log("# console: " + m.text()); });

  // 1. The page loads, connects and paints numbers in the KPI tiles.
  const res = await page.goto(`http://127.0.0.1:${port}/`);
  check(res.status() === 200 && (res.headers()["content-type"] || "").startsWith("text/html"), "GET / is an HTML page");
  await page.waitForSelector('#status[data-state="connected"]');
  check(true, "status shows connected");
  await page.waitForFunction(() => /\d/.test(document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent || ""));
  check(/\d/.test(await tileValue(page, "utilization")), "KPI tiles show numbers (" + await tileValue(page, "utilization") + " utilization)");
  await page.waitForSelector("#backlog tr td.num");
  await page.waitForSelector("#attendance tr td.num");
  check(true, "backlog and attendance tables filled");
  await page.waitForFunction(() => document.querySelectorAll("#chart polyline").length >= 3);
  check(true, "KPI history chart drawn");
  await page.waitForFunction(() => /\d/.test(document.querySelector("#stats")?.textContent || ""));
  check(true, "server stats shown");
  check((await page.locator("#org").inputValue()) === "acme", "scope defaults to org acme");
  const conns = JSON.parse(rtctl(port, "--json", "connections")).connections;
  const stats = JSON.parse(rtctl(port, "--json", "stats")).stats;
  check(conns.length > 0 && conns.every((c) => c.permessage_deflate === true) && stats.messages_compressed > 0,
        "Chromium negotiated permessage-deflate; " + stats.messages_compressed + " messages compressed");
  await page.screenshot({path: join(ARTIFACTS, "1-loaded.png"), fullPage: true});

  // 2. rtctl broadcast kpi at org scope: the org's tiles show exactly that value.
  rtctl(port, "broadcast", "kpi", "--org", "acme", "--data",
        '{"health_score": 12345, "utilization": 55.5, "sla_risk": 7, "headcount_gap": -2}');
  await page.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "12345");
  check(true, "health_score tile shows 12345 after rtctl broadcast");
  check((await tileValue(page, "utilization")) === "55.5%", "utilization tile shows 55.5%");

  // A `kpis` phase paints the tiles on its own, before any `complete` phase arrives.
  rtctl(port, "broadcast", "kpi", "--org", "acme", "--phase", "kpis", "--data", '{"health_score": 777}');
  await page.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "777");
  check((await page.locator('.tile[data-kpi="health_score"] .phase').innerText()) === "kpis",
        "a kpis-phase publication paints the tile (777, badge kpis)");
  rtctl(port, "broadcast", "kpi", "--org", "acme", "--phase", "complete", "--data", '{"health_score": 778, "detail": [1, 2, 3]}');
  await page.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "778");
  check((await page.locator('.tile[data-kpi="health_score"] .phase').innerText()) === "complete",
        "the complete phase that follows repaints it (778, badge complete)");
  check((await page.locator('.tile[data-kpi="health_score"] .delta').innerText()).includes("+1"), "the change arrow shows +1");

  // The scope picker: a department narrows the tables and aggregates its queues in the tiles.
  await page.selectOption("#dept", "support");
  await page.waitForFunction(() => document.getElementById("scope-name").textContent.includes("dept:support"));
  const depts = await page.locator("#backlog tr td:first-child").allInnerTexts();
  check(depts.length === 3 && depts.every((d) => d === "support"), "dept support: backlog shows its 3 queues only");
  check(/\d/.test(await tileValue(page, "health_score")) && (await tileValue(page, "health_score")) !== "778",
        "dept support: tiles aggregate its queues (" + await tileValue(page, "health_score") + ")");
  await page.selectOption("#dept", "");
  await page.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "778");
  check(true, "back to the whole org: the org-level value again");

  // 3. An alert arrives; acknowledge then resolve it through the page's buttons.
  rtctl(port, "broadcast", "alerts", "--org", "acme", "--event", "alert:triggered", "--priority", "urgent", "--data",
        '{"alert_id":"al-browser","severity":"critical","rule_name":"Browser test alert","status":"pending",' +
        '"message":"raised by the browser test"}');
  const alert = page.locator('.alert[data-alert="al-browser"]');
  await alert.waitFor();
  check((await alert.getAttribute("data-status")) === "pending", "alert listed as pending");
  await alert.locator('button[data-act="acknowledged"]').click();
  await page.waitForSelector('.alert[data-alert="al-browser"][data-status="acknowledged"]');
  check(true, "acknowledge: the alert shows acknowledged (from the server's alert:acknowledged)");
  // The page changed nothing locally: the button moved the server's alert lifecycle.
  const stored = await (await fetch(`http://127.0.0.1:${port}/api/alerts/al-browser`)).json();
  check(stored.alert && stored.alert.status === "acknowledged" && stored.alert.acknowledged_by === "dashboard",
        "the server's lifecycle has al-browser acknowledged by the dashboard");
  await page.screenshot({path: join(ARTIFACTS, "2-broadcast-and-ack.png"), fullPage: true});
  await alert.locator('button[data-act="resolved"]').click();
  await page.waitForSelector('.alert[data-alert="al-browser"][data-status="resolved"]');
  check(true, "resolve: the alert shows resolved");

  // 4. rtd restarts on the same port: the page notices, backs off, reconnects, repaints.
  const code = await stopRtd(rtd.proc);
  check(code === 0, "rtd stopped cleanly (exit " + code + ")");
  await page.waitForFunction(() => document.getElementById("status").dataset.state !== "connected");
  check(true, "status leaves connected while rtd is down: " + await page.locator("#status").innerText());
  await page.screenshot({path: join(ARTIFACTS, "3-disconnected.png"), fullPage: true});
  rtd = await startRtd(port);
  await page.waitForSelector('#status[data-state="connected"]', {timeout: 30000});
  check(true, "status returns to connected after the restart");
  // A new epoch: the page resubscribed with recover and got a fresh snapshot; the org-level
  // value is gone with the old server, the tiles show the demo's values again.
  await page.waitForFunction(() => {
    const t = document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent || "";
    return /\d/.test(t) && t !== "778";
  });
  check(true, "tiles repaint from the restarted server");
  await page.screenshot({path: join(ARTIFACTS, "4-reconnected.png"), fullPage: true});

  // 5. Server-Sent Events: forced with ?transport=sse, and as the fallback when the page's
  // WebSocket cannot open (routed here to a socket that closes without a word).
  await sseChecks(port, pageErrors);

  await stopRtd(rtd.proc);

  // 6. The admin view (/#admin) of a server with an admin key: the key entry, then the test's
  // own connections and rooms, listed from /api/connections and /api/rooms.
  await adminChecks(pageErrors);

  // 7. The JavaScript client served by rtd, in a plain page and a React page.
  await clientChecks({context, here: HERE, startRtd, stopRtd, rtctl, check, artifacts: ARTIFACTS});

  check(pageErrors.length === 0, "no JavaScript errors" + (pageErrors.length ? ": " + pageErrors.join("; ") : ""));
}

async function adminChecks(pageErrors) {
  const KEY = "browser-admin-key";
  const admin = await startRtd(0, ["--admin-key", KEY]);
  // A connection of the test's own beside the page's: an SSE stream of globex's alerts.
  const sse = tcpConnect(admin.port, "127.0.0.1");
  sse.on("error", () => {});
  sse.write("GET /sse?channel=alerts&org=globex HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${admin.port}/#admin`);
  await page.waitForSelector('#admin[data-state="unauthorized"]');
  check(await page.locator("#admin").isVisible(), "/#admin shows the admin view; without the key: " +
        await page.locator("#admin-status").innerText());
  await page.fill("#admin-key", KEY);
  await page.click("#admin-refresh");
  await page.waitForSelector('#admin[data-state="ok"]');
  await page.waitForSelector('#connections tr[data-transport="sse"][data-org="globex"]');
  check(true, "with the key: the test's SSE stream (globex) is listed");
  await page.waitForSelector('#connections tr[data-transport="websocket"][data-org="acme"]');
  check(true, "the page's own WebSocket (acme) is listed");
  const members = await page.locator('#rooms tr[data-room="alerts:org:globex"] td.num').innerText();
  check(members === "1", "room alerts:org:globex has 1 member (" + members + ")");
  check(await page.locator('#rooms tr[data-room="kpi:org:acme"]').count() === 1, "room kpi:org:acme is listed");
  const listed = Number(await page.locator("#conn-count").innerText());
  const api = await (await fetch(`http://127.0.0.1:${admin.port}/api/connections`, {headers: {"X-API-Key": KEY}})).json();
  check(listed === api.total_count, `the count matches /api/connections (${listed})`);
  await page.waitForFunction(() => /\d/.test(document.querySelector("#stats")?.textContent || ""));
  check(true, "with the key, the server panel shows /api/stats too");
  await page.screenshot({path: join(ARTIFACTS, "7-admin.png"), fullPage: true});
  await page.click('#admin a[href="#"]');
  await page.waitForSelector("#admin", {state: "hidden"});
  check(true, "close hides the admin view");
  sse.destroy();
  await page.close();
  await stopRtd(admin.proc);
}

async function sseChecks(port, pageErrors) {
  const watch = (p) => p.on("pageerror", (e) => pageErrors.push(String(e)));
  const forced = await context.newPage();
  forced.setDefaultTimeout(20000);
  watch(forced);
  await forced.goto(`http://127.0.0.1:${port}/?transport=sse`);
  await forced.waitForSelector('#status[data-state="connected"][data-transport="sse"]');
  check(true, "?transport=sse: connected over SSE (" + await forced.locator("#status").innerText() + ")");
  await forced.waitForFunction(() => /\d/.test(document.querySelector('.tile[data-kpi="utilization"] .value')?.textContent || ""));
  check(true, "SSE: KPI tiles paint from the initial values");
  rtctl(port, "broadcast", "kpi", "--org", "acme", "--data", '{"health_score": 4242}');
  await forced.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "4242");
  check(true, "SSE: rtctl broadcast kpi updates the tile (4242)");
  await forced.waitForSelector("#backlog tr td.num");
  check(true, "SSE: backlog table filled");
  const conns = await (await fetch(`http://127.0.0.1:${port}/api/connections`)).json();
  check(conns.connections.some((c) => c.transport === "sse" && c.subscriptions.includes("kpi:org:acme")),
        "/api/connections shows the page's SSE stream");
  await forced.screenshot({path: join(ARTIFACTS, "5-sse-forced.png"), fullPage: true});
  await forced.close();

  const blocked = await context.newPage();
  blocked.setDefaultTimeout(20000);
  watch(blocked);
  let wsAttempts = 0;
  // A middlebox that lets the upgrade through and then cuts the connection: never a message.
  await blocked.routeWebSocket(/\/ws$/, (ws) => { wsAttempts++; ws.close(); });
  await blocked.goto(`http://127.0.0.1:${port}/`);
  await blocked.waitForSelector('#status[data-state="connected"][data-transport="sse"]');
  check(wsAttempts >= 1, `WebSocket blocked (${wsAttempts} attempt(s)): the page fell back to SSE`);
  rtctl(port, "broadcast", "kpi", "--org", "acme", "--data", '{"health_score": 4343}');
  await blocked.waitForFunction(() => document.querySelector('.tile[data-kpi="health_score"] .value')?.textContent === "4343");
  check(true, "fallback SSE: live tile update (4343)");
  await blocked.screenshot({path: join(ARTIFACTS, "6-sse-fallback.png"), fullPage: true});
  await blocked.close();
}

async function cleanup() {
  if (context) await context.close().catch(() => {});
  for (const c of children) c.kill("SIGKILL");
  if (profile) rmSync(profile, {recursive: true, force: true});
}

// Installing (apt-get, npm) is bounded on its own; the test proper starts its clock after.
ensureTools();
// Bounded: whatever hangs, the test ends (and kills what it started) within three minutes.
const deadline = setTimeout(async () => {
  console.log("FAIL overall deadline of 180 s passed");
  await cleanup();
  process.exit(1);
}, 180000);

try {
  await main();
} catch (e) {
  failures.push(String(e && e.stack || e));
  console.log("FAIL " + (e && e.stack || e));
}
await cleanup();
clearTimeout(deadline);
console.log(failures.length ? `${failures.length} failure(s); screenshots in ${ARTIFACTS}` : `all passed; screenshots in ${ARTIFACTS}`);
process.exit(failures.length ? 1 : 0);
