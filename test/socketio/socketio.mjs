// Socket.IO compatibility (docs/protocol.md, "Coming from Socket.IO") with the real npm
// socket.io-client 4.8 and raw Engine.IO packets over npm ws, against the rtd binary.
//
// Usage: node socketio.mjs RTD RTCTL
// Checks: seed 001's client flow (path '/ws', authenticate, subscribe with an ack, a
// `kpi:update` sent by `rtctl broadcast`, client:ping), the /socket.io/ path, the publication
// shared as one packet, JWT in auth.token (good, wrong, missing), an unknown namespace,
// polling refused with Engine.IO's error body, garbage packets of every kind (a clear close or
// error; the server keeps serving the others), and seed 001's JSON lines over plain /ws.
// Exit 0 = pass, 1 = fail, 77 = skipped (npm install failed). Every child is killed by pid.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
import {check, connected, emitAck, finish, io, jwt, limit, next, rawSocket, rtctlOf, sleep, startRtd as startRtdOf,
        waitFor} from "./harness.mjs";

const [RTD, RTCTL] = process.argv.slice(2);
if (!RTD || !RTCTL) {
  console.error("usage: socketio.mjs RTD RTCTL");
  process.exit(2);
}
limit(100000);
const startRtd = (extra = []) => startRtdOf(RTD, extra);
const rtctl = rtctlOf(RTCTL);

try {
  const open = await startRtd(["--feed-path", "/ws/metrics=metrics"]);
  const base = `http://127.0.0.1:${open.port}`;

  // Seed 001's client flow, on the WebSocket path (docs/protocol.md, "Seed parity").
  const a = io(base, {path: "/ws", transports: ["websocket"], reconnection: false});
  const ca = await connected(a);
  check(ca.ok && typeof a.id === "string", "seed 001 client connects with path '/ws' (id " + a.id + ")");
  const auth = await emitAck(a, "authenticate", {user_id: "user_123", organization_id: "org_123"});
  check(auth.success === true && auth.results?.[0]?.type === "authenticated" &&
        auth.results[0].organizationId === "org_123", "authenticate answers in its ack: " + JSON.stringify(auth));
  const sub = await emitAck(a, "subscribe", {channels: ["kpi", "alerts"], organization_id: "org_123"});
  check(sub.success === true && sub.results?.length === 2 && sub.results.every((r) => r.type === "subscribed"),
        "subscribe to two channels answers in its ack: " + JSON.stringify(sub));
  const pong = next(a, "client:pong");
  a.emit("client:ping");
  const pongArgs = await pong;
  check(pongArgs && typeof pongArgs[0].timestamp === "string", "client:ping -> client:pong");

  // Another client on /socket.io/: both receive the same publication.
  const b = io(base, {transports: ["websocket"], reconnection: false});
  check((await connected(b)).ok, "a client connects at /socket.io/");
  const subB = await emitAck(b, "subscribe", {channel: "kpi", scope: {org: "org_123"}});
  check(subB.success === true, "subscribe with rtpush's field names");
  const gotA = next(a, "kpi:update");
  const gotB = next(b, "kpi:update");
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 85, "utilization": {"current_utilization": 71}}');
  const [ea, eb] = await Promise.all([gotA, gotB]);
  check(ea && ea[0].health_score === 85 && ea[0].utilization.current_utilization === 71,
        "kpi:update from `rtctl broadcast` reaches the seed 001 client: " + JSON.stringify(ea));
  check(eb && JSON.stringify(eb[0]) === JSON.stringify(ea?.[0]), "... and the /socket.io/ client, the same data");

  // The history of a topic, as an event with an ack (docs/protocol.md, "History").
  const hist = await emitAck(b, "history", {channel: "kpi", scope: {org: "org_123"}, limit: 1});
  check(hist.success === true && hist.results?.[0]?.type === "history" && hist.results[0].items?.[0]?.data?.health_score === 85,
        "history event: the newest publication in the ack: " + JSON.stringify(hist).slice(0, 200));

  // Acknowledged delivery (requires_ack): the event asks the listener's callback for an
  // answer, which acks it; over WebSocket and over polling (docs/protocol.md, "Coming from Socket.IO").
  {
    const ackOrg = "org_ack";
    const acker = io(base, {transports: ["websocket"], reconnection: false});
    const poller = io(base, {transports: ["polling"], reconnection: false});
    const silent = io(base, {transports: ["websocket"], reconnection: false});
    const up = await Promise.all([acker, poller, silent].map((c) => connected(c)));
    check(up.every((u) => u.ok), "acked delivery: three clients connect");
    for (const c of [acker, poller, silent])
      await emitAck(c, "subscribe", {channels: ["notifications"], organization_id: ackOrg});
    const listen = (c, answer) => new Promise((resolve) => c.once("system:notification", (...args) => {
      const ack = args[args.length - 1];
      resolve({data: args[0], n: args.length, ackType: typeof ack});
      if (answer && typeof ack === "function") ack({received: true});
    }));
    const [ga, gp, gs] = [listen(acker, true), listen(poller, true), listen(silent, false)];
    const res = await fetch(base + "/api/broadcast", {method: "POST", headers: {"content-type": "application/json"},
      body: JSON.stringify({channel: "notifications", event: "system:notification", target: {organization_id: ackOrg},
                            data: {msg: "maintenance"}, requires_ack: true})});
    const body = await res.json();
    const [ra, rp, rs] = await Promise.all([ga, gp, gs]);
    check(res.status === 200 && typeof body.id === "string", "acked delivery: POST requires_ack answers an id " + JSON.stringify(body));
    check(ra.data?.msg === "maintenance" && ra.n === 2 && ra.ackType === "function",
          "acked delivery: the listener gets (data, ack) over WebSocket: " + JSON.stringify(ra));
    check(rp.ackType === "function" && rs.ackType === "function", "... and over polling");
    let st = {};
    for (let i = 0; i < 40; ++i) {
      st = await (await fetch(`${base}/api/broadcast/${body.id}`)).json();
      if (st.acked >= 2) break;
      await sleep(100);
    }
    check(st.targeted === 3 && st.acked === 2 && st.pending === 1 && st.not_acked?.length === 1,
          "acked delivery: the two answers ack it, the silent client is pending: " + JSON.stringify(st));
    for (const c of [acker, poller, silent]) c.close();
  }

  // Targeting connections rather than topics (docs/protocol.md, "Targeting connections"):
  // seed 001's `io.emit` (a system event without a target), its org room
  // (target.organization_id) and target.socket_ids; over WebSocket, over polling, after an
  // upgrade (by the id the client was given while polling), and on plain /ws.
  {
    const post = async (body) => {
      const r = await fetch(base + "/api/ws/broadcast", {method: "POST", headers: {"content-type": "application/json"},
                                                          body: JSON.stringify(body)});
      return {status: r.status, body: await r.json()};
    };
    const ws1 = io(base, {path: "/ws", transports: ["websocket"], reconnection: false});
    const pl1 = io(base, {transports: ["polling"], reconnection: false});
    const up1 = io(base, {reconnection: false}); // polling first, then upgraded
    const other = io(base, {transports: ["websocket"], reconnection: false});
    const clients = {ws1, pl1, up1, other};
    const ups = await Promise.all(Object.values(clients).map((c) => connected(c)));
    check(ups.every((u) => u.ok), "targeting: four Socket.IO clients connect");
    await waitFor(() => up1.io.engine.transport.name === "websocket");
    check(up1.io.engine.transport.name === "websocket", "targeting: the default client upgraded to WebSocket");
    for (const c of [ws1, pl1, up1]) await emitAck(c, "authenticate", {user_id: "u1", organization_id: "org_t1"});
    await emitAck(other, "authenticate", {user_id: "u2", organization_id: "org_t2"});
    // A client still on long-polling is a connection like the others: listed, and present in
    // the rooms it joined.
    // socket.id is public (listed, relayed): the Engine.IO sid's secret part is not in it.
    check(/^c[0-9]+$/.test(pl1.id) && /^c[0-9]+$/.test(up1.id) && pl1.io.engine.id !== pl1.id,
          `a polling client's socket.id is its public id (${pl1.id}), not its Engine.IO sid`);
    const conns = await (await fetch(base + "/api/connections?organization_id=org_t1")).json();
    const polled = conns.connections?.find((c) => c.socket_id === pl1.id);
    check(polled?.transport === "polling" && polled.user_id === "u1" && typeof polled.connected_at === "string" &&
          conns.connections.some((c) => c.transport === "socketio"),
          "/api/connections lists a polling client (and the Socket.IO ones): " + JSON.stringify(polled));
    check(!JSON.stringify(conns).includes(pl1.io.engine.id), "... without any Engine.IO sid");
    check(conns.connections.some((c) => c.socket_id === up1.id && c.transport === "socketio"),
          "... and the upgraded client under the socket.id it knows");
    await emitAck(pl1, "subscribe", {channels: ["lobby"], organization_id: "org_t1"});
    const pres = await (await fetch(base + "/api/rooms/lobby:org:org_t1/presence")).json();
    check(pres.presence?.length === 1 && pres.presence[0].client_id === pl1.id && pres.presence[0].transport === "polling",
          "presence lists a polling subscriber: " + JSON.stringify(pres.presence));
    // The presence event's answer comes later than the EVENT is handled: it is in its ACK.
    for (const c of [ws1, pl1]) {
      const asked = await emitAck(c, "presence", {channel: "lobby", scope: {org: "org_t1"}});
      check(asked.success === true && asked.results?.[0]?.type === "presence" && asked.results[0].count === 1 &&
            asked.results[0].members?.[0]?.client_id === pl1.id,
            "the presence event answers in its ack: " + JSON.stringify(asked).slice(0, 200));
    }
    const seen = {};
    for (const [name, c] of Object.entries(clients)) {
      seen[name] = [];
      c.onAny((ev, data) => { if (ev.startsWith("system:")) seen[name].push(data.n); });
    }
    const plain = await rawSocket(`ws://127.0.0.1:${open.port}/ws?org=org_t1`);
    await waitFor(() => plain.got.length >= 1);
    const plainSeen = () => plain.got.map((t) => JSON.parse(t)).filter((m) => m.type === "update" && m.event?.startsWith("system:"));
    const everyone = await post({event: "system:broadcast", data: {n: 1}});
    check(everyone.status === 200 && everyone.body.target?.everyone === true && !("seq" in everyone.body),
          "targeting: a system event without a target goes to every connection: " + JSON.stringify(everyone.body));
    const room = await post({event: "system:maintenance", data: {n: 2}, target: {organization_id: "org_t1"}});
    check(room.status === 200 && room.body.target?.organization_id === "org_t1", "targeting: an organization's connections");
    const ids = await post({event: "system:notification", data: {n: 3}, target: {socket_ids: [pl1.id, up1.id, "c999999"]}});
    check(ids.status === 200 && ids.body.target?.socket_ids?.length === 3, "targeting: listed socket ids");
    const fenced = await post({event: "system:notification", data: {n: 4},
                               target: {socket_ids: [other.id, ws1.id], organization_id: "org_t2"}});
    check(fenced.status === 200, "targeting: listed socket ids within an organization");
    rtctl(open.port, "notify", "--to", `${pl1.id},c999999`, "--data", '{"n": 4.5}'); // rtctl's way to ids
    await post({event: "system:broadcast", data: {n: 5}});
    await waitFor(() => Object.values(seen).every((l) => l.includes(5)) && plainSeen().some((m) => m.data.n === 5));
    await sleep(100);
    const want = {ws1: [1, 2, 5], pl1: [1, 2, 3, 4.5, 5], up1: [1, 2, 3, 5], other: [1, 4, 5]};
    for (const name of Object.keys(want))
      check(JSON.stringify(seen[name]) === JSON.stringify(want[name]),
            `targeting: ${name} got ${JSON.stringify(seen[name])}, wants ${JSON.stringify(want[name])}`);
    const pm = plainSeen();
    check(JSON.stringify(pm.map((m) => m.data.n)) === "[1,2,5]" && pm.every((m) => !("seq" in m)),
          "targeting: a plain /ws client of the organization gets the everyone and org messages, without seq: " +
          JSON.stringify(pm.map((m) => m.data.n)));
    const bad = [
      [{event: "system:notification", data: {}, target: {socket_ids: "c1"}}, "socket_ids must be"],
      [{event: "system:notification", data: {}, target: {socket_ids: []}}, "socket_ids must be"],
      [{event: "system:notification", data: {}, target: {organization_id: "o", department_id: "d"}}, "need a channel"],
      [{event: "alert:triggered", data: {alert_id: "x"}, target: {socket_ids: ["c1"]}}, "an alert goes"],
    ];
    for (const [body, why] of bad) {
      const r = await post(body);
      check(r.status === 400 && r.body.error?.code === "INVALID_MESSAGE" && r.body.error?.field === "target" &&
             r.body.error.message.includes(why), "targeting: refused with 400 naming target: " + JSON.stringify(r.body));
    }
    // Seed 001's `all` channel: every channel of the scope (and narrower), nothing of others.
    const allSub = await emitAck(ws1, "subscribe", {channels: ["all"], organization_id: "org_t1"});
    check(allSub.success === true, "the all channel: subscribed " + JSON.stringify(allSub));
    const allSeen = [];
    ws1.onAny((ev, data) => { if (!ev.startsWith("system:")) allSeen.push(`${ev}:${data.n}`); });
    rtctl(open.port, "broadcast", "kpi", "--org", "org_t1", "--data", '{"n": 1}');
    rtctl(open.port, "broadcast", "backlog", "--org", "org_t2", "--data", '{"n": 2}');
    rtctl(open.port, "broadcast", "notifications", "--org", "org_t1", "--dept", "d1", "--event", "notice:new", "--data", '{"n": 3}');
    rtctl(open.port, "broadcast", "kpi", "--data", '{"n": 4}');
    rtctl(open.port, "broadcast", "attendance", "--org", "org_t1", "--event", "attendance:checkin", "--data", '{"n": 5}');
    await waitFor(() => allSeen.length >= 3);
    await sleep(200);
    check(JSON.stringify(allSeen) === '["kpi:update:1","notice:new:3","attendance:checkin:5"]',
          "the all channel: every channel of org_t1 and its departments, nothing else: " + JSON.stringify(allSeen));
    plain.ws.close();
    for (const c of Object.values(clients)) c.close();
  }

  // room_max_size: a full room refuses a subscriber with ROOM_FULL (an SSE stream with 503),
  // and takes one again once a member leaves (docs/security.md, "Limits").
  {
    const small = await startRtd(["--room-max-size", "2"]);
    const sbase = `http://127.0.0.1:${small.port}`;
    const members = [0, 1, 2].map(() => io(sbase, {transports: ["websocket"], reconnection: false}));
    await Promise.all(members.map((c) => connected(c)));
    const answers = [];
    for (const c of members) answers.push(await emitAck(c, "subscribe", {channels: ["kpi"], organization_id: "org_r"}));
    check(answers[0].success === true && answers[1].success === true, "room_max_size 2: two subscribers enter");
    check(answers[2].success === false && answers[2].results?.[0]?.code === "ROOM_FULL",
          "room_max_size 2: the third gets ROOM_FULL: " + JSON.stringify(answers[2]));
    const other = await emitAck(members[2], "subscribe", {channels: ["kpi"], organization_id: "org_s"});
    check(other.success === true, "room_max_size: another room has room");
    const sse = await fetch(`${sbase}/sse?channel=kpi&org=org_r`);
    const sseBody = await sse.json();
    check(sse.status === 503 && sseBody.error?.code === "ROOM_FULL", "room_max_size: an SSE stream to a full room gets 503 ROOM_FULL: " +
          sse.status + " " + JSON.stringify(sseBody));
    const metrics = await (await fetch(`${sbase}/metrics`)).text();
    check(/rtpush_connections_rejected_total\{reason="room_full"\} 1\b/.test(metrics),
          "room_max_size: the refused stream is counted as rejected (room_full)");
    await emitAck(members[0], "unsubscribe", {channels: ["kpi"], organization_id: "org_r"});
    const again = await emitAck(members[2], "subscribe", {channels: ["kpi"], organization_id: "org_r"});
    check(again.success === true, "room_max_size: a place freed by unsubscribe is taken");
    members[1].close(); // a place freed by the connection's end
    await sleep(300);
    const sse2 = new AbortController();
    const stream = await fetch(`${sbase}/sse?channel=kpi&org=org_r`, {signal: sse2.signal});
    check(stream.status === 200, "room_max_size: a place freed by a disconnect is taken by an SSE stream");
    const full = await emitAck(members[0], "subscribe", {channels: ["kpi"], organization_id: "org_r"});
    check(full.success === false && full.results?.[0]?.code === "ROOM_FULL", "room_max_size: ... which counts as a member");
    sse2.abort();
    for (const c of members) c.close();
    small.proc.kill();
  }

  // Unsubscribe, then a publication is not received.
  const unsub = await emitAck(b, "unsubscribe", {channels: ["kpi"], organization_id: "org_123"});
  check(unsub.success === true, "unsubscribe answers in its ack");
  const none = next(b, "kpi:update", 600);
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 86}');
  check((await none) === null, "nothing after unsubscribe");

  // A refused subscription says why in the ack.
  const bad = await emitAck(a, "subscribe", {channels: ["kpi"], organization_id: "bad org!"});
  check(bad.success === false && bad.results?.[0]?.code === "INVALID_MESSAGE", "an invalid scope: success false with the code");
  const unknown = next(a, "error");
  a.emit("no:such:event", {});
  const ue = await unknown;
  check(ue && ue[0].code === "INVALID_MESSAGE" && /unknown event/.test(ue[0].message), "an unknown event gets an error event");

  // An unknown namespace.
  const admin = io(base + "/admin", {transports: ["websocket"], reconnection: false});
  const cadm = await connected(admin);
  check(!cadm.ok && /Invalid namespace/.test(String(cadm.err?.message)), "an unknown namespace: connect_error Invalid namespace");
  admin.close();

  // socket.io-client's defaults: HTTP long-polling first, then the upgrade to WebSocket.
  const up = io(base, {path: "/ws", reconnection: false});
  check((await connected(up)).ok, "a default client (polling, then upgrade) connects with path '/ws'");
  const upsub = await emitAck(up, "subscribe", {channels: ["kpi"], organization_id: "org_123"});
  check(upsub.success === true, "... subscribes (over polling or WebSocket)");
  const upgraded = await new Promise((resolve) => {
    if (up.io.engine.transport.name === "websocket") return resolve(true);
    const t = setTimeout(() => resolve(false), 5000);
    up.io.engine.once("upgrade", () => { clearTimeout(t); resolve(true); });
  });
  check(upgraded && up.io.engine.transport.name === "websocket", "... upgrades to WebSocket");
  const gotUp = next(up, "kpi:update");
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 89}');
  check((await gotUp)?.[0]?.health_score === 89, "... and its subscription moved with it: kpi:update after the upgrade");
  const upAck = await emitAck(up, "subscribe", {channels: ["alerts"], organization_id: "org_123"});
  check(upAck.success === true, "... acks work after the upgrade");
  up.close();

  // Polling only.
  const p = io(base, {path: "/ws", reconnection: false, transports: ["polling"]});
  check((await connected(p)).ok && p.io.engine.transport.name === "polling",
        "a polling-only client connects with path '/ws'");
  const psub = await emitAck(p, "subscribe", {channels: ["kpi"], organization_id: "org_123"});
  check(psub.success === true, "... subscribes with an ack over polling");
  const gotP = next(p, "kpi:update");
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 90}');
  check((await gotP)?.[0]?.health_score === 90, "... and receives kpi:update over polling");
  const ppong = next(p, "client:pong");
  p.emit("client:ping");
  check((await ppong) !== null, "... client:ping over polling");
  await sleep(2500); // two pings (pingInterval 1 s) answered over polling
  check(p.connected, "... still connected after the server's pings");
  const gotA2 = next(a, "kpi:update");
  const gotP2 = next(p, "kpi:update");
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 91}');
  const [wa2, wp2] = await Promise.all([gotA2, gotP2]);
  check(wa2?.[0]?.health_score === 91 && wp2?.[0]?.health_score === 91, "a WebSocket and a polling client receive the same publication");
  p.close();
  await sleep(100);

  // Connection state recovery: the transport drops, publications go on meanwhile, the client
  // comes back with its pid and offset: socket.recovered, nothing missing, in order. Over
  // WebSocket only, and with the defaults (polling, upgraded; the resume is over polling).
  for (const [label, transports] of [["WebSocket", ["websocket"]], ["polling then upgrade", ["polling", "websocket"]]]) {
    const org = "org_rec_" + transports.length;
    const r = io(base, {path: "/ws", transports, reconnectionDelay: 100, reconnectionDelayMax: 200});
    check((await connected(r)).ok && r.recovered === false, `recovery (${label}): first connect is not a recovery`);
    const seen = [];
    const alerts = [];
    r.on("kpi:update", (d) => seen.push(d.n));
    r.on("system:notification", (d) => alerts.push(d.n));
    const rsub = await emitAck(r, "subscribe", {channels: ["kpi", "notifications"], organization_id: org});
    check(rsub.success === true, `recovery (${label}): subscribed`);
    rtctl(open.port, "broadcast", "kpi", "--org", org, "--data", '{"n": 1}');
    await waitFor(() => seen.length === 1);
    if (transports.length > 1)
      await waitFor(() => r.io.engine.transport.name === "websocket");
    const back = next(r, "connect", 8000);
    r.io.engine.close(); // the connection is lost, as on a network drop
    rtctl(open.port, "broadcast", "kpi", "--org", org, "--data", '{"n": 2}');
    rtctl(open.port, "broadcast", "notifications", "--org", org, "--event", "system:notification", "--data", '{"n": 1}');
    rtctl(open.port, "broadcast", "kpi", "--org", org, "--data", '{"n": 3}');
    check((await back) !== null && r.recovered === true, `recovery (${label}): reconnected with socket.recovered === true`);
    await waitFor(() => seen.length >= 3 && alerts.length >= 1);
    check(JSON.stringify(seen) === "[1,2,3]" && JSON.stringify(alerts) === "[1]",
          `recovery (${label}): the events published while away arrive once, in order: kpi ${JSON.stringify(seen)} notifications ${JSON.stringify(alerts)}`);
    rtctl(open.port, "broadcast", "kpi", "--org", org, "--data", '{"n": 4}');
    await waitFor(() => seen.length >= 4);
    check(JSON.stringify(seen) === "[1,2,3,4]", `recovery (${label}): live events after the resume: ${JSON.stringify(seen)}`);
    r.close();
  }
  // A pid the server does not hold (or a client that left with disconnect()): a fresh session.
  const f = io(base, {path: "/ws", transports: ["websocket"], reconnection: false,
                      auth: {pid: "0123456789abcdef", offset: "x~kpi:org:o~1"}});
  check((await connected(f)).ok && f.recovered === false, "recovery: an unknown pid gets a fresh session (recovered false)");
  f.close();
  const d = io(base, {path: "/ws", transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 200});
  check((await connected(d)).ok, "recovery: a client that disconnects on purpose ...");
  const dseen = [];
  d.on("kpi:update", (x) => dseen.push(x.n));
  await emitAck(d, "subscribe", {channels: ["kpi"], organization_id: "org_left"});
  rtctl(open.port, "broadcast", "kpi", "--org", "org_left", "--data", '{"n": 1}');
  await waitFor(() => dseen.length === 1);
  d.disconnect();
  rtctl(open.port, "broadcast", "kpi", "--org", "org_left", "--data", '{"n": 2}');
  d.connect();
  check((await connected(d)).ok && d.recovered === false, "... connects again afresh (recovered false)");
  await sleep(300);
  check(JSON.stringify(dseen) === "[1]", "... and gets nothing of its old subscriptions: " + JSON.stringify(dseen));
  d.close();

  // Seed 004's metrics events over Socket.IO: regions are scopes of the `metrics` channel (docs/protocol.md, "Coming from Socket.IO").
  const m4 = io(base, {transports: ["websocket"], reconnection: false});
  check((await connected(m4)).ok, "seed 004 client connects");
  const m4err = next(m4, "metrics:error");
  m4.emit("metrics:get", {source: "us-east"});
  check((await m4err)?.[0]?.code === "NOT_FOUND", "metrics:get of a region without data: metrics:error NOT_FOUND");
  const m4sub = await emitAck(m4, "metrics:subscribe", {source: "us-east"});
  check(m4sub.success === true, "metrics:subscribe {source: 'us-east'}");
  const m4upd = next(m4, "metrics-update");
  rtctl(open.port, "broadcast", "metrics", "--org", "us-east", "--event", "metrics-update", "--data",
        '{"api": "aws", "source": "us-east", "data": {"cpu": 3}}');
  check((await m4upd)?.[0]?.data?.cpu === 3, "metrics-update reaches the region's subscriber");
  const m4data = next(m4, "metrics:data");
  m4.emit("metrics:get", {source: "us-east"});
  const md = (await m4data)?.[0];
  check(md?.api === "aws" && md?.source === "us-east" && md?.data?.cpu === 3 && typeof md?.updatedAt === "string",
        "metrics:get {source} -> metrics:data {api, source, data, updatedAt}: " + JSON.stringify(md));
  const m4all = next(m4, "metrics:data");
  m4.emit("metrics:get", {});
  const ma = (await m4all)?.[0];
  check(ma?.count === 1 && ma?.data?.[0]?.source === "us-east", "metrics:get {} -> every region with count");
  await emitAck(m4, "metrics:unsubscribe", {source: "us-east"});
  const m4none = next(m4, "metrics-update", 500);
  rtctl(open.port, "broadcast", "metrics", "--org", "us-east", "--event", "metrics-update", "--data", '{"n": 2}');
  check((await m4none) === null, "metrics:unsubscribe stops the region's updates");
  const m4bad = next(m4, "metrics:error");
  m4.emit("metrics:get", {source: "not a region!"});
  check(typeof (await m4bad)?.[0]?.message === "string", "metrics:get with a bad region name: metrics:error");
  m4.close();

  // Seed 002's plain WebSocket feed at /ws/metrics: subscribed on connect, flat messages (docs/protocol.md, "Feed paths").
  const feed = await rawSocket(`ws://127.0.0.1:${open.port}/ws/metrics`);
  await waitFor(() => feed.got.length >= 1);
  const fconn = JSON.parse(feed.got[0] ?? "{}");
  check(fconn.type === "connected" && typeof fconn.data?.clientId === "string" &&
        JSON.stringify(fconn.data?.subscribedChannels) === '["metrics"]' && typeof fconn.timestamp === "string",
        "feed path: connected {data: {clientId, subscribedChannels}}: " + feed.got[0]);
  await waitFor(() => feed.got.some((t) => JSON.parse(t).type === "subscribed"));
  rtctl(open.port, "broadcast", "metrics", "--data", '{"cpu_usage": 12.5, "memory_percent": 40}');
  await waitFor(() => feed.got.some((t) => JSON.parse(t).data?.cpu_usage === 12.5));
  const fm = feed.got.map((t) => JSON.parse(t)).find((m) => m.data?.cpu_usage === 12.5);
  check(fm?.type === "metrics" && typeof fm?.timestamp === "string" && Object.keys(fm).sort().join() === "data,timestamp,type",
        "feed path: a publication arrives as {type: 'metrics', data, timestamp}: " + JSON.stringify(fm));
  feed.ws.send(JSON.stringify({type: "unsubscribe", channel: "metrics"}));
  await waitFor(() => feed.got.some((t) => JSON.parse(t).type === "unsubscribed"));
  const before = feed.got.length;
  rtctl(open.port, "broadcast", "metrics", "--data", '{"cpu_usage": 13}');
  await sleep(300);
  check(!feed.got.slice(before).some((t) => JSON.parse(t).data?.cpu_usage === 13), "feed path: unsubscribe works as seed 002's");
  feed.ws.close();
  const plainGet = await fetch(`${base}/ws/metrics`);
  check(plainGet.status === 426, "feed path: a plain GET gets 426 like /ws");

  // Raw polling requests: bad ones get Engine.IO's error body.
  const hs = await fetch(base + "/socket.io/?EIO=4&transport=polling");
  const hsText = await hs.text();
  check(hs.status === 200 && hsText.startsWith("0{"), "polling handshake: " + hsText);
  const sid = JSON.parse(hsText.slice(1)).sid;
  const unknownSid = await fetch(base + "/socket.io/?EIO=4&transport=polling&sid=0.1.nope");
  check(unknownSid.status === 400 && (await unknownSid.json()).code === 1, "an unknown sid: 400 code 1");
  const garbage = await fetch(base + `/socket.io/?EIO=4&transport=polling&sid=${sid}`, {method: "POST", body: "bAAAA"});
  const gb = await garbage.json();
  check(garbage.status === 400 && /binary/.test(gb.message), "a binary polling payload: 400 " + JSON.stringify(gb));
  const afterGarbage = await fetch(base + `/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  check(afterGarbage.status === 400, "... and the session is gone");
  const upgrade = await fetch(base + "/socket.io/?EIO=4&transport=websocket");
  check(upgrade.status === 400 && (await upgrade.json()).code === 3, "transport=websocket without an upgrade: 400 code 3");
  // An upgrade must name the whole sid: the same shard and id with another secret is refused
  // and the polling session it aimed at goes on.
  const victimOpen = await (await fetch(base + "/socket.io/?EIO=4&transport=polling")).text();
  const victim = JSON.parse(victimOpen.slice(1)).sid;
  const forged = victim.slice(0, victim.lastIndexOf(".") + 1) + "0000000000000000";
  const thief = await rawSocket(`ws://127.0.0.1:${open.port}/socket.io/?EIO=4&transport=websocket&sid=${forged}`);
  thief.ws.send("2probe");
  await waitFor(() => thief.closed !== null);
  check(thief.closed?.code === 1008 && !thief.got.includes("3probe"),
        "an upgrade with a forged sid secret: no 3probe, closed 1008: " + JSON.stringify(thief.closed));
  const victimPost = await fetch(base + `/socket.io/?EIO=4&transport=polling&sid=${victim}`, {method: "POST", body: "40"});
  check(victimPost.status === 200, "... and the polling session it aimed at is still there");
  const v3 = await fetch(base + "/socket.io/?EIO=3&transport=polling");
  check(v3.status === 400 && (await v3.json()).code === 5, "EIO=3: 400 unsupported protocol version");

  // Garbage of every kind: each connection is told and closed; the others are served.
  const cases = [
    ["42garbage", 1008, /not valid JSON/],
    ["451-[\"x\",{\"_placeholder\":true,\"num\":0}]", 1008, /binary/],
    ["bAAAA", 1008, /binary/],
    ["9", 1008, /unknown packet type/],
    ["42[1,2]", 1008, /event name/],
    ["42[\"connect\"]", 1008, /reserved/],
    ["", 1008, /empty/],
  ];
  for (const [packet, code, why] of cases) {
    const r = await rawSocket(`ws://127.0.0.1:${open.port}/socket.io/?EIO=4&transport=websocket`);
    await waitFor(() => r.got.length >= 1);
    r.ws.send("40");
    await waitFor(() => r.got.some((m) => m.startsWith("40{")));
    r.ws.send(packet);
    await waitFor(() => r.closed);
    check(r.closed && r.closed.code === code && why.test(r.closed.reason),
          `garbage ${JSON.stringify(packet)}: close ${r.closed?.code} ${JSON.stringify(r.closed?.reason)}`);
  }
  {
    const r = await rawSocket(`ws://127.0.0.1:${open.port}/ws?EIO=4&transport=websocket`);
    await waitFor(() => r.got.length >= 1);
    const openPacket = r.got[0] ?? "";
    const o = openPacket.startsWith("0") ? JSON.parse(openPacket.slice(1)) : {};
    check(typeof o.sid === "string" && Array.isArray(o.upgrades) && o.pingInterval === 1000 &&
          o.pingTimeout >= 1000 && o.maxPayload > 0, "open packet: " + openPacket);
    r.ws.send("40");
    await waitFor(() => r.got.some((m) => m.startsWith("40{")));
    r.ws.send(Buffer.from([1, 2, 3]));
    await waitFor(() => r.got.some((m) => m.startsWith("42[\"error\"")));
    check(r.got.some((m) => m.startsWith("42[\"error\"") && /binary/.test(m)), "a binary frame gets an error event");
    await waitFor(() => r.got.includes("2"), 2500);
    check(r.got.includes("2"), "the server pings (Engine.IO \"2\")");
    r.ws.send("3");
    r.ws.send("41");
    await waitFor(() => r.closed);
    check(r.closed !== null, "DISCONNECT closes the connection");
  }
  const still = next(a, "kpi:update");
  rtctl(open.port, "broadcast", "kpi", "--org", "org_123", "--data", '{"health_score": 87}');
  check((await still)?.[0]?.health_score === 87, "after all the garbage the first client is still served");

  // Seed 001's manual test lines, verbatim, over plain /ws (JSON lines, no Socket.IO) (docs/protocol.md, "Coming from Socket.IO").
  {
    const r = await rawSocket(`ws://127.0.0.1:${open.port}/ws`);
    await waitFor(() => r.got.length >= 1);
    r.ws.send('{"event":"authenticate","data":{"user_id":"user_123","organization_id":"org_123"}}');
    r.ws.send('{"event":"subscribe","data":{"channels":["kpi"],"organization_id":"org_123"}}');
    r.ws.send('{"event":"client:ping"}');
    await waitFor(() => r.got.some((m) => m.includes("client:pong")));
    const types = r.got.map((m) => { const j = JSON.parse(m); return j.type ?? j.event; });
    check(types.includes("authenticated") && types.includes("subscribed") && types.includes("client:pong"),
          "seed 001's JSON lines over /ws: " + types.join(","));
    r.ws.send('{"event":"subscribe","data":{}}');
    await waitFor(() => r.got.some((m) => m.includes("'channels'")));
    check(r.got.some((m) => m.includes("INVALID_MESSAGE") && m.includes("'channels'")), "a seed line without channels: INVALID_MESSAGE");
    r.ws.close();
  }
  a.close();
  b.close();

  // JWT in auth.token, with auth required.
  const secret = "socketio-test-secret";
  const locked = await startRtd(["--jwt-secret", secret, "--auth-required"]);
  const lbase = `http://127.0.0.1:${locked.port}`;
  const good = jwt(secret, {sub: "u1", org: "acme", exp: Math.floor(Date.now() / 1000) + 600});
  const g = io(lbase, {path: "/ws", transports: ["websocket"], reconnection: false, auth: {token: good}});
  check((await connected(g)).ok, "a valid token in auth.token connects");
  const gsub = await emitAck(g, "subscribe", {channels: ["kpi"], organization_id: "acme"});
  check(gsub.success === true, "... and may subscribe to its organization");
  const other = await emitAck(g, "subscribe", {channels: ["kpi"], organization_id: "globex"});
  check(other.success === false && other.results?.[0]?.code === "UNAUTHORIZED", "... not to another one");
  g.close();
  const w = io(lbase, {transports: ["websocket"], reconnection: false, auth: {token: jwt("wrong", {sub: "u1", org: "acme"})}});
  const cw = await connected(w);
  check(!cw.ok && cw.err?.data?.code === "AUTH_FAILED", "a wrong token: connect_error with AUTH_FAILED: " + cw.err?.message);
  w.close();
  const n = io(lbase, {transports: ["websocket"], reconnection: false});
  const cn = await connected(n);
  check(!cn.ok && cn.err?.data?.code === "UNAUTHORIZED", "no token: connect_error with UNAUTHORIZED");
  n.close();
  // Seed 001's authenticate without a token ({user_id, organization_id}) is refused once a JWT
  // secret is configured, also as a JSON line on plain /ws; the connection may still send one.
  {
    const r = await rawSocket(`ws://127.0.0.1:${locked.port}/ws`);
    r.ws.send('{"event":"authenticate","data":{"user_id":"user_123","organization_id":"org_123"}}');
    r.ws.send('{"event":"subscribe","data":{"channels":["kpi"],"organization_id":"org_123"}}');
    await waitFor(() => r.got.filter((t) => t.includes('"error"')).length >= 2);
    const errs = r.got.map((t) => JSON.parse(t)).filter((m) => m.type === "error").map((m) => m.code);
    check(errs[0] === "AUTH_FAILED" && errs[1] === "UNAUTHORIZED" && !r.got.some((t) => t.includes('"authenticated"')),
          "a secret configured: authenticate without a token is refused, and so is what follows: " + JSON.stringify(errs));
    r.ws.send(JSON.stringify({event: "authenticate", data: {token: good}}));
    await waitFor(() => r.got.some((t) => t.includes('"authenticated"')));
    check(r.got.some((t) => t.includes('"authenticated"')), "... then a token authenticates the same connection");
    r.ws.close();
  }

  // Token lifetime (docs/security.md, "Token lifetime"): token_expiring before the token's
  // exp, then the connection ends unless an `authenticate` event brought a fresh token. The
  // end is a transport close: a client whose `auth` callback gives a fresh token reconnects
  // and recovers its session, nothing lost. Over WebSocket and over polling.
  const expiring = await startRtd(["--jwt-secret", secret, "--jwt-leeway", "0", "--token-expiry-warning", "2"]);
  const xbase = `http://127.0.0.1:${expiring.port}`;
  const tokenFor = (ttl) => jwt(secret, {sub: "u1", org: "acme", exp: Math.floor(Date.now() / 1000) + ttl});
  {
    const k = io(xbase, {path: "/ws", transports: ["websocket"], reconnection: false, auth: {token: tokenFor(3)}});
    // Listening from the start: the warning may come within the first tick.
    const kWarnings = [];
    k.on("token_expiring", (w) => kWarnings.push(w));
    check((await connected(k)).ok, "expiry: a client with a 3 s token connects");
    await emitAck(k, "subscribe", {channels: ["kpi"], organization_id: "acme"});
    await waitFor(() => kWarnings.length >= 1, 4000);
    const warn = kWarnings.length ? [kWarnings[0]] : null;
    check(warn && warn[0].expiresIn <= 2 && typeof warn[0].expiresAt === "number",
          "expiry: token_expiring before the end: " + JSON.stringify(warn?.[0]));
    const again = await emitAck(k, "authenticate", {token: tokenFor(600)});
    check(again.success === true, "expiry: authenticate with a fresh token answers success: " + JSON.stringify(again));
    await sleep(2500);
    check(k.connected, "expiry: ... and the connection outlives the first token");
    const kept = next(k, "kpi:update");
    rtctl(expiring.port, "broadcast", "kpi", "--org", "acme", "--data", '{"n": 1}');
    check((await kept)?.[0]?.n === 1, "expiry: ... with its subscription");
    k.close();
  }
  for (const [label, transports] of [["WebSocket", ["websocket"]], ["polling", ["polling"]]]) {
    let token = tokenFor(3);
    const r = io(xbase, {path: "/ws", transports, reconnectionDelay: 100, reconnectionDelayMax: 200,
                         auth: (cb) => cb({token})});
    const warnings = [];
    r.on("token_expiring", (w) => warnings.push(w));
    check((await connected(r)).ok, `expiry (${label}): connects with a 3 s token`);
    const seen = [];
    r.on("kpi:update", (d) => seen.push(d.n));
    await emitAck(r, "subscribe", {channels: ["kpi"], organization_id: "acme"});
    // The retained value arrives first (and gives the client an offset to recover from).
    check(await waitFor(() => seen.length === 1), `expiry (${label}): the retained value on subscribe`);
    const n = seen[0] + 1;
    const gone = next(r, "disconnect", 6000);
    check(await waitFor(() => warnings.length >= 1, 4000), `expiry (${label}): token_expiring`);
    token = tokenFor(600); // what the auth callback gives at the reconnection
    const why = await gone;
    check(why !== null && why[0] === "transport close", `expiry (${label}): ended at the token's exp (${why?.[0]})`);
    const back = next(r, "connect", 6000);
    rtctl(expiring.port, "broadcast", "kpi", "--org", "acme", "--data", JSON.stringify({n}));
    check((await back) !== null && r.recovered === true,
          `expiry (${label}): reconnected with the fresh token, socket.recovered === true`);
    await waitFor(() => seen.length >= 2);
    await sleep(200);
    check(JSON.stringify(seen) === JSON.stringify([n - 1, n]),
          `expiry (${label}): what was published meanwhile arrived, once: ${JSON.stringify(seen)}`);
    r.close();
  }
} catch (e) {
  check(false, "unexpected: " + (e?.stack ?? e));
}
finish();
