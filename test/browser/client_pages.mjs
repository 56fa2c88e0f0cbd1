// The JavaScript client (clients/js) as rtd serves it, in Debian's chromium: part of the
// browser.dashboard test (dashboard.mjs calls clientChecks with its browser context).
//
// 1. GET/HEAD /client/*.js over plain HTTP: content type, ETag and 304, Cache-Control, 404.
// 2. A plain page on rtd's origin (`import {RtpushClient} from '/client/rtpush.js'`, the
//    README's example) receives what `rtctl broadcast` sends.
// 3. A React page on another origin (a small HTTP server of this test): React 18 from
//    test/browser/node_modules, no bundler. React 18 ships CommonJS and UMD only, no ES
//    modules: the server answers /esm/react.js with the UMD build (run as a module it sets
//    self.React) followed by `export const {createElement, useState, ...} = self.React` (the
//    names are the CommonJS module's own keys), and likewise react-dom/client. An import map
//    names react, react-dom/client and rtpush-client/react (rtd's /client/rtpush-react.js,
//    imported across origins: rtd answers it with Access-Control-Allow-Origin: *). The page
//    renders a KPI tile through useKPIUpdates and follows `rtctl broadcast` live.
// 4. A Socket.IO page (socket.io-client's browser build) on another origin: polling, the
//    upgrade to WebSocket, and what `rtctl broadcast` sends.
import {readFileSync} from "node:fs";
import {createServer} from "node:http";
import {createRequire} from "node:module";
import {dirname, join} from "node:path";

const PLAIN = `<!doctype html><meta charset="utf-8"><title>plain client page</title>
<pre id="out">waiting</pre>
<script type="module">
import { RtpushClient } from '/client/rtpush.js';
const client = new RtpushClient({url: (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws"});
window.received = [];
client.on("connected", (e) => { document.body.dataset.transport = e.transport; });
const unsubscribe = client.subscribe("kpi", {org: "acme"}, (msg) => {
  window.received.push(msg);
  document.getElementById("out").textContent = JSON.stringify(msg.data);
});
unsubscribe.ready.then(() => { document.body.dataset.subscribed = "yes"; });
client.connect();
</script>`;

// A Socket.IO page on another origin: socket.io-client's own browser build, seed 001's
// options (path '/ws'; docs/protocol.md, "Seed parity"), long-polling first and then the upgrade to WebSocket (docs/protocol.md, "Coming from Socket.IO").
function socketioPage(rtd) {
  return `<!doctype html><meta charset="utf-8"><title>Socket.IO page</title>
<pre id="out">waiting</pre>
<script src="/socket.io.min.js"></script>
<script>
const socket = io("http://127.0.0.1:${rtd}", {path: "/ws"});
window.got = [];
socket.on("connect", async () => {
  const r = await socket.emitWithAck("subscribe", {channels: ["kpi"], organization_id: "org_123"});
  document.body.dataset.subscribed = r.success ? "yes" : "no";
});
socket.io.engine.on("upgrade", (t) => { document.body.dataset.upgraded = t.name; });
socket.on("kpi:update", (k) => { window.got.push(k); document.getElementById("out").textContent = JSON.stringify(k); });
</script>`;
}

function reactPage(rtd) {
  const imports = {
    "react": "/esm/react.js",
    "react-dom/client": "/esm/react-dom-client.js",
    "rtpush-client/react": `http://127.0.0.1:${rtd}/client/rtpush-react.js`,
  };
  return `<!doctype html><meta charset="utf-8"><title>React KPI tile</title>
<script type="importmap">${JSON.stringify({imports})}</script>
<div id="root"></div>
<script type="module">
import {createElement as h} from "react";
import {createRoot} from "react-dom/client";
import {RtpushProvider, useKPIUpdates, useWebSocket} from "rtpush-client/react";

function KpiTile() {
  const {latestUpdate} = useKPIUpdates(null, {organization_id: "acme", department_id: "support"});
  const {connectionStatus} = useWebSocket();
  const v = latestUpdate ? latestUpdate.health_score : undefined;
  return h("div", {className: "tile", "data-value": v === undefined ? "" : String(v), "data-status": connectionStatus},
           h("span", null, "Health score "), h("b", null, v === undefined ? "waiting..." : String(v)));
}
createRoot(document.getElementById("root")).render(
  h(RtpushProvider, {options: {url: "ws://127.0.0.1:${rtd}/ws"}}, h(KpiTile)));
</script>`;
}

// /esm/<name>.js: a UMD build of React 18 as an ES module (see the top of the file).
function esmShims(here) {
  const req = createRequire(join(here, "package.json"));
  // The UMD files are not in the packages' "exports": read them from the package folder.
  const file = (pkg, rel) => readFileSync(join(dirname(req.resolve(pkg + "/package.json")), rel), "utf8");
  const names = (mod) => Object.keys(mod).filter((k) => /^[A-Za-z_$][\w$]*$/.test(k) && k !== "default");
  const react = req("react");
  return {
    "/esm/react.js": file("react", "umd/react.production.min.js") +
      `\nconst React = self.React;\nexport default React;\nexport const {${names(react).join(", ")}} = React;\n`,
    "/esm/react-dom-client.js": `import "/esm/react.js";\n` + file("react-dom", "umd/react-dom.production.min.js") +
      `\nconst ReactDOM = self.ReactDOM;\nexport default ReactDOM;\nexport const {createRoot, hydrateRoot} = ReactDOM;\n`,
  };
}

function serve(files) {
  return new Promise((resolve) => {
    const srv = createServer((req, res) => {
      const path = new URL(req.url, "http://x").pathname;
      const body = files[path];
      if (body === undefined) { res.writeHead(404); return res.end(); }
      res.writeHead(200, {"content-type": path.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/html; charset=utf-8",
                          "cache-control": "no-store"});
      res.end(body);
    });
    srv.listen(0, "127.0.0.1", () => resolve(srv));
  });
}

async function httpChecks(port, check) {
  const base = `http://127.0.0.1:${port}/client/`;
  const core = await fetch(base + "rtpush.js");
  const text = await core.text();
  const etag = core.headers.get("etag");
  check(core.status === 200 && core.headers.get("content-type") === "text/javascript; charset=utf-8" &&
        text.includes("RtpushClient"), "GET /client/rtpush.js: 200, text/javascript; charset=utf-8");
  check(/^"[0-9a-f]{16}"$/.test(etag || "") && core.headers.get("cache-control") === "no-cache",
        `ETag ${etag}, Cache-Control: ${core.headers.get("cache-control")}`);
  const again = await fetch(base + "rtpush.js", {headers: {"If-None-Match": etag}});
  check(again.status === 304 && (await again.text()) === "", "If-None-Match with the ETag: 304, no body");
  const head = await fetch(base + "rtpush-react.js", {method: "HEAD"});
  check(head.status === 200 && Number(head.headers.get("content-length")) > 1000 && (await head.text()) === "" &&
        head.headers.get("content-type").startsWith("text/javascript"),
        "HEAD /client/rtpush-react.js: 200, Content-Length " + head.headers.get("content-length") + ", no body");
  const imported = await fetch(base + "client.js");
  check(imported.status === 200, "GET /client/client.js (what ./client.js inside them resolves to): 200");
  const missing = await fetch(base + "nope.js");
  const body = await missing.json().catch(() => null);
  check(missing.status === 404 && body?.error?.code === "NOT_FOUND", "GET /client/nope.js: 404 with a JSON error");
}

/// h: {context, here, startRtd, stopRtd, rtctl, check, artifacts}
export async function clientChecks(h) {
  const {context, check} = h;
  const rtd = await h.startRtd(0, [], false); // no demo data: only what the test sends
  const port = rtd.port;
  const files = {}; // what the test server answers, filled below
  const shims = await serve(files);
  const pageErrors = [];
  let sioRtd = null;
  try {
    await httpChecks(port, check);

    // The plain page, on rtd's origin: rtd serves no test pages, so the tab opens a document
    // of rtd (/api/health) and its content is replaced (same URL, same origin). A document
    // made up by the browser's router instead counts as a public one, and Chromium's local
    // network access checks then block its WebSocket to loopback.
    const plain = await context.newPage();
    plain.setDefaultTimeout(20000);
    plain.on("pageerror", (e) => pageErrors.push(String(e)));
    const modules = [];
    plain.on("response", (r) => { if (r.url().includes("/client/")) modules.push([new URL(r.url()).pathname, r.headers()["content-type"]]); });
    await plain.goto(`http://127.0.0.1:${port}/api/health`);
    await plain.setContent(PLAIN);
    await plain.waitForSelector('body[data-subscribed="yes"][data-transport="websocket"]');
    check(modules.some(([p]) => p === "/client/rtpush.js") && modules.some(([p]) => p === "/client/client.js") &&
          modules.every(([, t]) => t === "text/javascript; charset=utf-8"),
          "plain page: imported " + modules.map(([p]) => p).join(", ") + " as text/javascript, connected, subscribed");
    h.rtctl(port, "broadcast", "kpi", "--org", "acme", "--data", '{"health_score": 4711}');
    await plain.waitForFunction(() => window.received.some((m) => m.type === "update" && m.data.health_score === 4711));
    check(true, "plain page: received what rtctl broadcast sent (health_score 4711)");
    await plain.screenshot({path: join(h.artifacts, "8-client-plain.png")});
    await plain.close();

    // The React page, on the test server's origin, which rtd does not check Origin against
    // here (no --allowed-origin).
    Object.assign(files, esmShims(h.here), {"/react.html": reactPage(port)});
    const app = await context.newPage();
    app.setDefaultTimeout(20000);
    app.on("pageerror", (e) => pageErrors.push(String(e)));
    app.on("console", (m) => { if (m.type() === "error") console.log("# react page console: " + m.text()); });
    h.rtctl(port, "broadcast", "kpi", "--org", "acme", "--dept", "support", "--data", '{"health_score": 61}');
    await app.goto(`http://127.0.0.1:${shims.address().port}/react.html`);
    await app.waitForSelector('.tile[data-value="61"][data-status="connected"]');
    check(true, "React page: useKPIUpdates renders the tile from the retained value (61)");
    for (const v of [62, 63]) {
      h.rtctl(port, "broadcast", "kpi", "--org", "acme", "--dept", "support", "--data", `{"health_score": ${v}}`);
      await app.waitForSelector(`.tile[data-value="${v}"]`);
    }
    check(true, "React page: the tile follows rtctl broadcast live (62, then 63)");
    const conns = JSON.parse(h.rtctl(port, "--json", "connections")).connections;
    check(conns.length === 1, `one WebSocket for the React page (${conns.length} connection(s))`);
    await app.screenshot({path: join(h.artifacts, "9-client-react.png")});
    await app.close();

    // Socket.IO's polling is read across origins: like a Socket.IO server (its `cors`
    // option), rtd lets a browser read it only from an allowed origin.
    const shimOrigin = `http://127.0.0.1:${shims.address().port}`;
    sioRtd = await h.startRtd(0, ["--allowed-origin", shimOrigin], false);
    files["/socket.io.min.js"] = readFileSync(join(h.here, "node_modules", "socket.io-client", "dist", "socket.io.min.js"));
    files["/socketio.html"] = socketioPage(sioRtd.port);
    const sio = await context.newPage();
    sio.setDefaultTimeout(20000);
    sio.on("pageerror", (e) => pageErrors.push(String(e)));
    sio.on("console", (m) => { if (m.type() === "error") console.log("# socket.io page console: " + m.text()); });
    await sio.goto(`${shimOrigin}/socketio.html`);
    await sio.waitForSelector('body[data-subscribed="yes"][data-upgraded="websocket"]');
    check(true, "Socket.IO page (socket.io-client's browser build, path '/ws', another origin): polling, subscribe with an ack, upgrade to WebSocket");
    h.rtctl(sioRtd.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 77}');
    await sio.waitForFunction(() => window.got.some((k) => k.health_score === 77));
    check(true, "Socket.IO page: kpi:update from rtctl broadcast (health_score 77)");
    await sio.screenshot({path: join(h.artifacts, "10-client-socketio.png")});
    await sio.close();
    check(pageErrors.length === 0, "client pages: no JavaScript errors" + (pageErrors.length ? ": " + pageErrors.join("; ") : ""));
  } finally {
    shims.close();
    await h.stopRtd(rtd.proc);
    if (sioRtd)
      await h.stopRtd(sioRtd.proc);
  }
}
