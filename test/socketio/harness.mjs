// What the Socket.IO tests share (socketio.mjs, side_by_side.mjs): checks and their tally,
// children killed by pid at the end, npm packages installed when missing (exit 77 when that
// fails), rtd started on a free loopback port, and small waiting helpers.
import {execFileSync, spawn, spawnSync} from "node:child_process";
import {createHmac} from "node:crypto";
import {existsSync} from "node:fs";
import {dirname, join} from "node:path";
import {createInterface} from "node:readline";
import {fileURLToPath} from "node:url";

export const HERE = dirname(fileURLToPath(import.meta.url));
const failures = [];
let passed = 0;
const children = new Set();
let deadline = null;

export function check(cond, what) {
  console.log((cond ? "ok   " : "FAIL ") + what);
  if (cond) passed++;
  else failures.push(what);
}
export function finish(code = failures.length ? 1 : 0) {
  clearTimeout(deadline);
  for (const p of children) { try { process.kill(p.pid, "SIGKILL"); } catch { /* gone */ } }
  console.log(`${passed} passed, ${failures.length} failed`);
  process.exit(code);
}
export function limit(ms) {
  deadline = setTimeout(() => { console.log("FAIL the test ran out of time"); finish(1); }, ms);
}

const PACKAGES = ["socket.io-client", "ws", "socket.io"];
if (PACKAGES.some((p) => !existsSync(join(HERE, "node_modules", p, "package.json")))) {
  console.log("# npm install (" + PACKAGES.join(", ") + ")");
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund"], {cwd: HERE, stdio: "inherit", timeout: 240000});
  if (r.status !== 0 || PACKAGES.some((p) => !existsSync(join(HERE, "node_modules", p, "package.json")))) {
    console.log("SKIP: npm install failed");
    process.exit(77);
  }
}
export const {io} = await import("socket.io-client");
export const {WebSocket} = await import("ws");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts a server that prints a JSON {"event":"listening","port":N} line: rtd, or a Node peer.
export function startServer(cmd, args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, {stdio: ["ignore", "pipe", "inherit"]});
    children.add(proc);
    proc.on("exit", () => children.delete(proc));
    const timer = setTimeout(() => reject(new Error(cmd + " did not start")), 15000);
    createInterface({input: proc.stdout}).on("line", (line) => {
      try {
        const ev = JSON.parse(line);
        if (ev.event === "listening") { clearTimeout(timer); resolve({proc, port: ev.port}); }
      } catch { /* not JSON */ }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(cmd + " exited with " + code)); });
  });
}
export const startRtd = (rtd, extra = []) =>
  startServer(rtd, ["--host", "127.0.0.1", "--port", "0", "--heartbeat-interval", "1", ...extra]);
export const rtctlOf = (rtctl) => (port, ...args) =>
  execFileSync(rtctl, ["--server", `http://127.0.0.1:${port}`, ...args], {encoding: "utf8", timeout: 10000});

// Resolves with the first (event, args) that `pred` accepts, or null after `ms`.
export function next(socket, event, ms = 5000, pred = () => true) {
  return new Promise((resolve) => {
    const t = setTimeout(() => { socket.off(event, h); resolve(null); }, ms);
    const h = (...args) => { if (pred(...args)) { clearTimeout(t); socket.off(event, h); resolve(args); } };
    socket.on(event, h);
  });
}
export const connected = (socket, ms = 5000) => Promise.race([
  next(socket, "connect", ms).then((a) => (a ? {ok: true} : {ok: false, err: "timeout"})),
  next(socket, "connect_error", ms).then((a) => (a ? {ok: false, err: a[0]} : {ok: false, err: "timeout"})),
]);
export const emitAck = (socket, ...args) => socket.timeout(5000).emitWithAck(...args).catch((e) => ({timeout: String(e)}));

export function jwt(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const head = b64({alg: "HS256", typ: "JWT"}) + "." + b64(claims);
  return head + "." + createHmac("sha256", secret).update(head).digest("base64url");
}

// A raw Engine.IO client over ws: every text frame it receives, and how it closed.
export function rawSocket(url) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const got = [];
    const r = {ws, got, closed: null};
    ws.on("message", (d, binary) => got.push(binary ? "<binary>" : d.toString()));
    ws.on("close", (code, reason) => { r.closed = {code, reason: reason.toString()}; });
    ws.on("open", () => resolve(r));
    ws.on("error", () => resolve(r));
  });
}
export async function waitFor(cond, ms = 4000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return true; await sleep(20); }
  return false;
}
