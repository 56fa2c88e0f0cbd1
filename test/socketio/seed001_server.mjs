// The Node side of side_by_side.mjs: a Socket.IO 4 back end written the way seed 001
// describes its own (path '/ws', JWT in auth.token checked by a middleware, rooms
// `<channel>:org:<org>`, acks for subscribe, connection state recovery on), plus the one REST
// route the test publishes with (POST /api/broadcast {channel, event, target, data}).
// Usage: node seed001_server.mjs SECRET. Prints {"event":"listening","port":N}.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
import {createHmac, timingSafeEqual} from "node:crypto";
import {createServer} from "node:http";
import {Server} from "socket.io";

const secret = process.argv[2] || "";

function verify(token) {
  const [h, p, sig] = String(token).split(".");
  if (!sig) return null;
  const want = createHmac("sha256", secret).update(h + "." + p).digest();
  const got = Buffer.from(sig, "base64url");
  if (got.length !== want.length || !timingSafeEqual(got, want)) return null;
  const claims = JSON.parse(Buffer.from(p, "base64url").toString());
  return claims.exp && claims.exp * 1000 < Date.now() ? null : claims;
}

const http = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/api/broadcast") { res.writeHead(404); return res.end(); }
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const m = JSON.parse(body);
    io.to(`${m.channel}:org:${m.target.organization_id}`).emit(m.event || `${m.channel}:update`, m.data);
    res.writeHead(200, {"content-type": "application/json"});
    res.end(JSON.stringify({success: true}));
  });
});
const io = new Server(http, {
  path: "/ws",
  connectionStateRecovery: {maxDisconnectionDuration: 120000, skipMiddlewares: true},
});
io.use((socket, next) => {
  const token = socket.handshake.auth?.token;
  if (!secret || (token === undefined && !socket.handshake.auth?.pid)) return next();
  const claims = verify(token);
  if (!claims) {
    const err = new Error("invalid token signature");
    err.data = {code: "AUTH_FAILED"};
    return next(err);
  }
  socket.data.org = claims.org;
  next();
});
io.on("connection", (socket) => {
  socket.on("subscribe", (data, ack) => {
    const org = data?.organization_id || socket.data.org;
    const results = (data?.channels || []).map((c) => {
      socket.join(`${c}:org:${org}`);
      return {type: "subscribed", channel: c};
    });
    if (typeof ack === "function") ack({success: true, results});
  });
});
http.listen(0, "127.0.0.1", () => console.log(JSON.stringify({event: "listening", port: http.address().port})));
process.on("SIGTERM", () => process.exit(0));
