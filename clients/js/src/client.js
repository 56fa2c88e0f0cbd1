// rtpush-client: a reconnecting client of the rtpush protocol (docs/protocol.md), for browsers
// and Node >= 20. It mirrors rtpush::client (include/rtpush/client.hpp): exponential backoff
// with full jitter, resubscription with `recover` (epoch and offsets), deduplication by
// (topic, seq) and by ackId, gap detection, automatic acks, a heartbeat watchdog, and a
// read-only Server-Sent Events fallback when WebSocket cannot get through.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.

const RECONNECT = {initialDelay: 500, maxDelay: 30000, multiplier: 2, resetAfter: 60000};

/// Normalizes a scope: {org, dept, queue}, seed 001's synonyms accepted, empty parts dropped.
export function normalizeScope(scope) {
  const s = scope || {};
  const out = {};
  const org = s.org ?? s.organization_id, dept = s.dept ?? s.department_id, queue = s.queue ?? s.queue_name;
  if (org) out.org = String(org);
  if (dept) out.dept = String(dept);
  if (queue) out.queue = String(queue);
  return out;
}

/// The topic key of a channel and scope: `kpi:org:acme:dept:support` (docs/protocol.md).
export function topicKey(channel, scope) {
  const s = normalizeScope(scope);
  let k = channel;
  if (s.org) {
    k += ":org:" + s.org;
    if (s.dept) {
      k += ":dept:" + s.dept;
      if (s.queue) k += ":queue:" + s.queue;
    }
  }
  return k;
}

/// Whether topic `key` is `sub` or narrower (a publication on it reaches a subscription to `sub`).
export function keyWithin(key, sub) {
  return key === sub || (key.startsWith(sub) && key[sub.length] === ":");
}

/// Client side of recovery, as rtpush::detail::stream_tracker: the epoch and the last seq seen
/// per topic (and per phase, for `initial` values), which decide duplicates, gaps, and what a
/// resubscription asks for.
export class StreamTracker {
  epoch = "";
  streams = new Map(); // topic -> {last, phases: [kpis, none, complete]}

  /// 'fresh', 'duplicate' or 'gap' for an `initial`/`update` message; other messages are fresh.
  accept(msg) {
    if ((msg.type !== "initial" && msg.type !== "update") || typeof msg.topic !== "string" ||
        typeof msg.epoch !== "string" || typeof msg.seq !== "number")
      return "fresh";
    if (msg.epoch !== this.epoch) {
      this.epoch = msg.epoch; // another history: its seqs mean nothing here
      this.streams.clear();
    }
    let st = this.streams.get(msg.topic);
    if (!st) this.streams.set(msg.topic, (st = {last: 0, phases: [0, 0, 0]}));
    const p = msg.phase === "kpis" ? 0 : msg.phase === "complete" ? 2 : 1;
    if (msg.type === "initial") {
      // The latest value of its phase; a snapshot lists kpis before complete whatever the seqs.
      if (msg.seq <= st.phases[p]) return "duplicate";
    } else {
      if (msg.seq <= st.last) return "duplicate";
      if (st.last !== 0 && msg.seq > st.last + 1) return "gap"; // not recorded: recovery fills it
    }
    st.phases[p] = msg.seq;
    st.last = Math.max(st.last, msg.seq);
    return "fresh";
  }

  /// The `recover` field of a subscription to `sub`: {epoch, offset, offsets?}, or undefined.
  position(sub) {
    if (!this.epoch) return undefined;
    const r = {epoch: this.epoch, offset: 0};
    const offsets = {};
    for (const [key, st] of this.streams) {
      if (key === sub) r.offset = st.last;
      else if (keyWithin(key, sub)) offsets[key] = st.last;
    }
    if (Object.keys(offsets).length) r.offsets = offsets;
    return r;
  }
}

/// The `exp` claim of a JWT (seconds), or undefined.
function jwtExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4))).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/// The SSE URL derived from a ws(s):// URL: same host, http(s)://, path /sse.
function deriveSseUrl(url) {
  try {
    const u = new URL(url);
    u.protocol = u.protocol === "wss:" ? "https:" : u.protocol === "ws:" ? "http:" : u.protocol;
    u.pathname = "/sse";
    u.search = "";
    return u.toString();
  } catch {
    return undefined;
  }
}

export class RtpushClient {
  #opts;
  #reconnect;
  #WebSocket;
  #EventSource;
  #listeners = new Map(); // event -> Set(fn)
  #subs = new Map(); // topic key -> {channel, scope, key, handlers: Set}
  #tracker = new StreamTracker();
  #seenAcks = new Set(); // ackIds handed on (bounded, oldest first out)
  #pending = new Map(); // request id -> {resolve, reject, timer}
  #outbox = []; // messages waiting for the connection to be ready
  #nextId = 1;
  #state = "disconnected";
  #ws = null;
  #wsOpened = false;
  #greeted = false; // the server's `connected` arrived on this WebSocket
  #sse = new Map(); // scope key -> {es, channels, lastEventId}
  #transport = null; // 'websocket' | 'sse' | null
  #sseUp = false; // a message arrived over SSE since the transport was chosen
  #ready = false;
  #attempt = 0;
  #failures = 0; // consecutive WebSocket attempts that never got the server's `connected`
  #connectedAt = 0;
  #retryTimer = null;
  #watchdog = null;
  #watchdogMs = 0;
  #connectTimer = null;
  #tokenTimer = null;
  #token = undefined;
  #authData = undefined; // seed 001's {user_id, organization_id}, for servers without a token secret
  #closed = true;

  /// opts: {url, token?, getToken?, clientId?, reconnect?: {initialDelay, maxDelay, multiplier,
  /// resetAfter} | false, WebSocket?, EventSource?, sseUrl? (or false), sseAfter? (failed
  /// WebSocket attempts before SSE, default 3), heartbeatTimeout?, connectTimeout?,
  /// requestTimeout?, autoAck? (default true)}
  constructor(opts) {
    if (!opts || !opts.url) throw new TypeError("RtpushClient: `url` is required");
    this.#opts = {sseAfter: 3, connectTimeout: 10000, requestTimeout: 10000, autoAck: true, ...opts};
    this.#reconnect = opts.reconnect === false ? null : {...RECONNECT, ...(opts.reconnect || {})};
    this.#WebSocket = opts.WebSocket || globalThis.WebSocket;
    this.#EventSource = opts.EventSource || globalThis.EventSource;
    this.#token = opts.token;
  }

  /// 'disconnected', 'connecting', 'connected', 'reconnecting' or 'closed'.
  get state() { return this.#state; }
  /// 'websocket' or 'sse' while connected, else null.
  get transport() { return this.#transport; }
  get url() { return this.#opts.url; }

  on(event, fn) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }
  off(event, fn) { this.#listeners.get(event)?.delete(fn); }

  #emit(event, arg) {
    for (const fn of [...(this.#listeners.get(event) || [])]) {
      try { fn(arg); } catch (e) { if (event !== "error") this.#emit("error", {code: "HANDLER_ERROR", message: String(e), error: e}); }
    }
  }

  #setState(s, arg) {
    this.#state = s;
    this.#emit(s, arg);
  }

  /// Starts connecting (and keeps reconnecting until close()). Idempotent.
  connect() {
    if (!this.#closed) return this;
    this.#closed = false;
    this.#attempt = this.#failures = 0;
    this.#open();
    return this;
  }

  /// Closes for good: no reconnection; pending requests are rejected.
  close() {
    if (this.#closed && this.#state === "closed") return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#teardown({code: 1000, reason: "closed by the client"}, false);
    this.#setState("closed");
  }

  /// Drops the current connection as a network failure would: the client reconnects and
  /// recovers (rtpush::client::drop_connection). For tests and tools.
  reconnect() {
    if (this.#ws) this.#lost({code: 4000, reason: "dropped by the client"});
  }

  /// Subscribes `handler(message)` to `channel` at `scope` (it receives the `initial` and
  /// `update` messages of the topic and every narrower one). Returns the unsubscribe function.
  subscribe(channel, scope, handler) {
    if (typeof scope === "function") [scope, handler] = [undefined, scope];
    const key = topicKey(channel, scope);
    let sub = this.#subs.get(key);
    if (!sub) {
      sub = {channel, scope: normalizeScope(scope), key, handlers: new Set()};
      sub.ready = new Promise((resolve, reject) => Object.assign(sub, {resolve, reject}));
      sub.ready.catch(() => {}); // also reported as an 'error' event
      this.#subs.set(key, sub);
      if (this.#transport === "sse") this.#openSse();
      else if (this.#ready) this.#sendSubscribe(sub);
    }
    const h = handler || (() => {});
    sub.handlers.add(h);
    let done = false;
    const unsubscribe = () => {
      if (done) return;
      done = true;
      sub.handlers.delete(h);
      if (sub.handlers.size || this.#subs.get(key) !== sub) return;
      this.#subs.delete(key);
      if (this.#transport === "sse") this.#openSse();
      else if (this.#ready) this.#request({type: "unsubscribe", channel, scope: sub.scope}).catch((e) => this.#emit("error", e));
    };
    // Resolves with the first `subscribed` answer (rejects with the first error).
    unsubscribe.ready = sub.ready;
    return unsubscribe;
  }

  /// The retained values `scope` covers, without subscribing: the `snapshot` message.
  get(channel, scope) { return this.#request({type: "get", channel, scope: normalizeScope(scope)}); }

  /// A page of past publications, as GET /api/history: {since, until, limit, cursor, order};
  /// the answer's next_cursor asks for the next page (null: the last).
  history(channel, scope, {since, until, limit, cursor, order} = {}) {
    const m = {type: "history", channel, scope: normalizeScope(scope)};
    for (const [k, v] of Object.entries({since, until, limit, cursor, order})) if (v !== undefined && v !== null) m[k] = v;
    return this.#request(m);
  }

  /// Asks the data sources to refresh (every subscribed topic without a channel).
  refresh(channel, scope) {
    const m = {type: "refresh"};
    if (channel) Object.assign(m, {channel, scope: normalizeScope(scope)});
    return this.#request(m);
  }

  /// Publishes (when the server allows it): the `published` answer {topic, seq, ackId?}.
  publish(channel, scope, data, {event, phase, requiresAck} = {}) {
    const m = {type: "publish", channel, scope: normalizeScope(scope), data};
    if (event) m.event = event;
    if (phase) m.phase = phase;
    if (requiresAck) m.requires_ack = true;
    return this.#request(m);
  }

  /// A round trip to the server: resolves with the latency in milliseconds.
  async ping() {
    const t0 = Date.now();
    await this.#request({type: "ping"});
    return Date.now() - t0;
  }

  /// Sends a protocol message and resolves with the answer carrying the same id; rejects
  /// with the `error` ({code, message}), on `rate_limit`, on timeout or disconnection.
  #request(msg) {
    if (this.#transport === "sse")
      return Promise.reject({code: "READ_ONLY", message: `'${msg.type}' needs the WebSocket transport (connected over SSE)`});
    if (this.#closed) return Promise.reject({code: "CLOSED", message: "the client is closed"});
    const id = "js-" + this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject({code: "TIMEOUT", message: `no answer to '${msg.type}' within ${this.#opts.requestTimeout} ms`});
      }, this.#opts.requestTimeout);
      const p = {resolve, reject, timer, sent: this.#ready};
      this.#pending.set(id, p);
      if (p.sent) this.#send({...msg, id});
      else this.#outbox.push({msg: {...msg, id}, p}); // sent once the connection is ready
    });
  }

  #send(msg) {
    if (this.#ws && this.#ws.readyState === 1) this.#ws.send(JSON.stringify(msg));
  }

  #sendSubscribe(sub) {
    const m = {type: "subscribe", channel: sub.channel, scope: sub.scope};
    const recover = this.#tracker.position(sub.key);
    if (recover) m.recover = recover;
    this.#request(m).then(sub.resolve, (e) => {
      if (e.code === "DISCONNECTED" || e.code === "CLOSED") return;
      sub.reject(e);
      this.#emit("error", {...e, channel: sub.channel, scope: sub.scope});
    });
  }

  // ---- WebSocket transport ----

  #open() {
    if (this.#closed) return;
    const WS = this.#WebSocket;
    if (!WS || (this.#failures >= this.#opts.sseAfter && this.#sseUsable())) {
      if (this.#sseUsable()) return this.#openSse();
      this.#emit("error", {code: "NO_TRANSPORT", message: "no WebSocket implementation (pass `WebSocket`) and no usable EventSource"});
      return this.close();
    }
    this.#setState("connecting", {url: this.#opts.url, attempt: this.#attempt});
    let ws;
    try {
      ws = new WS(this.#opts.url);
    } catch (e) {
      this.#failures++;
      this.#emit("error", {code: "CONNECT_FAILED", message: String(e.message || e)});
      return this.#scheduleReconnect({code: 1006, reason: String(e.message || e)});
    }
    this.#ws = ws;
    this.#wsOpened = this.#greeted = false;
    this.#connectTimer = setTimeout(() => this.#lost({code: 4001, reason: "connect timeout"}), this.#opts.connectTimeout);
    // A failure is an attempt that never got `connected`, not one that never opened: a proxy
    // may let the upgrade through and then cut the connection (or pass no frame).
    ws.onopen = () => { this.#wsOpened = true; this.#connectedAt = Date.now(); };
    ws.onmessage = (ev) => this.#onFrame(typeof ev.data === "string" ? ev.data : String(ev.data));
    ws.onerror = () => {}; // onclose follows with the reason
    ws.onclose = (ev) => this.#lost({code: ev.code, reason: ev.reason || (this.#wsOpened ? "connection closed" : "connection failed")});
  }

  #onFrame(text) {
    this.#kickWatchdog();
    let msg;
    try { msg = JSON.parse(text); } catch { return this.#emit("error", {code: "INVALID_MESSAGE", message: "not JSON: " + text.slice(0, 100)}); }
    if (msg && msg.type === "connected") return void this.#onConnected(msg);
    this.#handle(msg);
  }

  async #onConnected(msg) {
    clearTimeout(this.#connectTimer);
    this.#greeted = true;
    this.#failures = 0;
    const ws = this.#ws;
    const hb = Number(msg.heartbeatInterval) || 0;
    this.#watchdogMs = this.#opts.heartbeatTimeout || (hb ? hb * 2.5 : 0);
    this.#kickWatchdog();
    try {
      await this.#authenticate();
    } catch (e) {
      if (ws !== this.#ws) return;
      this.#emit("error", e);
    }
    if (ws !== this.#ws) return; // lost meanwhile
    if (this.#opts.clientId) this.#send({type: "hello", clientId: this.#opts.clientId});
    this.#ready = true;
    this.#transport = "websocket";
    for (const sub of this.#subs.values()) this.#sendSubscribe(sub);
    for (const {msg: m, p} of this.#outbox.splice(0)) {
      p.sent = true;
      this.#send(m);
    }
    this.#setState("connected", {transport: "websocket", clientId: msg.clientId, server: msg.server, heartbeatInterval: hb});
  }

  /// Authenticates with `token` (a JWT) or, for a server without a token secret, seed 001's
  /// `{user_id, organization_id}`; kept and sent again on every reconnection. Resolves with
  /// the `authenticated` answer (at once when not connected: it is sent on connection).
  authenticate(tokenOrData) {
    if (typeof tokenOrData === "string") [this.#token, this.#authData] = [tokenOrData, undefined];
    else [this.#token, this.#authData] = [undefined, tokenOrData];
    if (this.#transport !== "websocket") return Promise.resolve(undefined);
    return this.#authenticate(false);
  }

  /// Sends `authenticate` with the current token (getToken() asked for a fresh one), waits for
  /// the answer, and schedules a renewal shortly before the token's exp.
  async #authenticate(fresh = true) {
    clearTimeout(this.#tokenTimer);
    if (fresh && this.#opts.getToken) this.#token = await this.#opts.getToken();
    if (!this.#token && !this.#authData) return;
    const id = "js-" + this.#nextId++;
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject({code: "TIMEOUT", message: "no answer to 'authenticate'"}); }, this.#opts.requestTimeout);
      this.#pending.set(id, {resolve, reject, timer, sent: true});
    });
    const m = this.#token ? {type: "authenticate", token: this.#token, id} : {type: "authenticate", data: this.#authData, id};
    if (this.#opts.clientId) m.clientId = this.#opts.clientId;
    this.#send(m);
    const res = await answer;
    this.#emit("authenticated", res);
    const exp = this.#token && jwtExpiry(this.#token);
    if (exp && this.#opts.getToken) {
      const left = exp * 1000 - Date.now();
      const renewIn = Math.max(1000, left - Math.min(60000, left / 5)); // shortly before expiry
      this.#tokenTimer = setTimeout(() => {
        if (this.#transport === "websocket") this.#authenticate().catch((e) => this.#emit("error", e));
      }, renewIn);
    }
    return res;
  }

  #kickWatchdog() {
    clearTimeout(this.#watchdog);
    if (this.#watchdogMs > 0 && this.#ws)
      this.#watchdog = setTimeout(() => this.#lost({code: 4002, reason: "timed out: no data from the server"}), this.#watchdogMs);
  }

  /// The connection is gone (or must go): forget it and schedule the next attempt.
  #lost(info) {
    if (this.#ws && !this.#greeted) this.#failures++;
    this.#teardown(info, true);
    this.#scheduleReconnect(info);
  }

  #teardown(info, willReconnect) {
    clearTimeout(this.#watchdog);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#tokenTimer);
    const ws = this.#ws;
    const wasUp = this.#transport !== null;
    this.#ws = null;
    this.#ready = false;
    this.#transport = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {};
      try { ws.close(info.code === 1000 ? 1000 : undefined); } catch { /* already closing */ }
      if (ws.terminate && info.code !== 1000) try { ws.terminate(); } catch { /* gone */ }
    }
    for (const {es} of this.#sse.values()) es.close();
    this.#sse.clear();
    // Requests sent on this connection get no answer now; those not sent yet wait for the next.
    for (const [id, p] of this.#pending) {
      if (p.sent || !willReconnect) {
        clearTimeout(p.timer);
        this.#pending.delete(id);
        p.reject({code: willReconnect ? "DISCONNECTED" : "CLOSED", message: info.reason, id});
      }
    }
    if (!willReconnect) this.#outbox.length = 0;
    if (wasUp) this.#setState("disconnected", {code: info.code, reason: info.reason, willReconnect});
  }

  #scheduleReconnect(info) {
    if (this.#closed) return;
    if (!this.#reconnect) return this.close();
    const r = this.#reconnect;
    // A connection that stayed up for resetAfter was a stable one: start the schedule again.
    if (this.#connectedAt && Date.now() - this.#connectedAt >= r.resetAfter) this.#attempt = 0;
    this.#connectedAt = 0;
    const ceiling = Math.min(r.maxDelay, r.initialDelay * Math.pow(Math.max(r.multiplier, 1), this.#attempt));
    const delay = Math.round(Math.random() * ceiling); // full jitter
    this.#attempt++;
    this.#setState("reconnecting", {attempt: this.#attempt, delay, reason: info.reason, code: info.code});
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#open(), delay);
  }

  // ---- messages, whatever the transport ----

  #rememberAck(id) {
    if (this.#seenAcks.has(id)) return false;
    this.#seenAcks.add(id);
    if (this.#seenAcks.size > 4096) this.#seenAcks.delete(this.#seenAcks.values().next().value);
    return true;
  }

  #handle(msg) {
    if (!msg || typeof msg !== "object") return;
    this.#emit("message", msg);
    const type = msg.type;
    if (type === "initial" || type === "update") return this.#onPublication(msg);
    if (type === "heartbeat") return this.#emit("heartbeat", msg);
    if (type === "subscribed") {
      this.#emit("subscribed", msg);
      if (typeof msg.recovered === "boolean")
        this.#emit("recovered", {topic: msg.topic, recovered: msg.recovered, reason: msg.reason, epoch: msg.epoch});
    }
    const p = msg.id !== undefined ? this.#pending.get(msg.id) : undefined;
    if (p) {
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (type === "error") p.reject({code: msg.code, message: msg.message, id: msg.id});
      else if (type === "rate_limit") p.reject({code: "RATE_LIMIT", message: `retry after ${msg.retryAfter} s`, retryAfter: msg.retryAfter, id: msg.id});
      else p.resolve(msg);
    } else if (type === "error") {
      this.#emit("error", {code: msg.code, message: msg.message, id: msg.id});
    }
  }

  #onPublication(msg) {
    let firstSeen = true;
    if (typeof msg.ackId === "string") {
      if (this.#opts.autoAck && this.#transport !== "sse") this.#send({type: "ack", id: msg.ackId});
      firstSeen = this.#rememberAck(msg.ackId);
    }
    if (msg.redelivered) {
      // A re-send travels outside the topic's seq order: hand it on once, positions untouched.
      if (firstSeen) this.#dispatch(msg);
      return;
    }
    const verdict = this.#tracker.accept(msg);
    if (verdict === "duplicate" || (verdict === "fresh" && !firstSeen)) return;
    if (verdict === "gap") {
      // The server dropped something: reconnect and recover from the last seq seen.
      const last = this.#tracker.streams.get(msg.topic)?.last;
      this.#emit("gap", {topic: msg.topic, expected: last + 1, received: msg.seq});
      if (this.#transport === "sse") this.#openSse(true);
      else this.#lost({code: 4003, reason: `gap on ${msg.topic}: recovering`});
      return;
    }
    this.#dispatch(msg);
  }

  #dispatch(msg) {
    for (const sub of this.#subs.values()) {
      if (!keyWithin(msg.topic, sub.key)) continue;
      for (const h of [...sub.handlers]) {
        try { h(msg); } catch (e) { this.#emit("error", {code: "HANDLER_ERROR", message: String(e), error: e}); }
      }
    }
  }

  // ---- Server-Sent Events transport (read-only) ----

  #sseUsable() {
    return this.#opts.sseUrl !== false && !!this.#EventSource && !!(this.#opts.sseUrl || deriveSseUrl(this.#opts.url));
  }

  /// One EventSource per scope, carrying that scope's channels; reopened when they change
  /// (with the last event id when the channels are the same, so the server resumes).
  async #openSse(forceFresh = false) {
    if (this.#closed) return;
    const wasReady = this.#transport === "sse";
    if (this.#opts.getToken && !wasReady) {
      try { this.#token = await this.#opts.getToken(); } catch (e) { this.#emit("error", e); }
      if (this.#closed) return;
    }
    this.#transport = "sse";
    this.#ready = true;
    if (!wasReady) this.#sseUp = false;
    const groups = new Map();
    for (const sub of this.#subs.values()) {
      const k = topicKey("", sub.scope);
      if (!groups.has(k)) groups.set(k, {scope: sub.scope, channels: new Set()});
      groups.get(k).channels.add(sub.channel);
    }
    for (const [k, s] of this.#sse) {
      const g = groups.get(k);
      const same = g && [...g.channels].sort().join(",") === s.channels;
      if (!same || forceFresh) { s.es.close(); this.#sse.delete(k); }
    }
    for (const [k, g] of groups) {
      if (this.#sse.has(k)) continue;
      const channels = [...g.channels].sort().join(",");
      const u = new URL(this.#opts.sseUrl || deriveSseUrl(this.#opts.url));
      u.searchParams.set("channel", channels);
      for (const f of ["org", "dept", "queue"]) if (g.scope[f]) u.searchParams.set(f, g.scope[f]);
      if (this.#token) u.searchParams.set("token", this.#token);
      const es = new this.#EventSource(u.toString());
      const entry = {es, channels};
      es.onmessage = (ev) => {
        if (!this.#sseUp) {
          this.#sseUp = true; // the server answered: `connected` now, not when the stream was asked for
          this.#setState("connected", {transport: "sse"});
        }
        let msg;
        try { msg = JSON.parse(ev.data); } catch { return; }
        if (msg.type === "subscribed") this.#subs.get(msg.topic)?.resolve(msg);
        if (msg.type !== "connected") this.#handle(msg);
      };
      es.onerror = () => {
        // EventSource retries a dropped stream by itself, but gives up on an HTTP error
        // (CLOSED). That, or a stream that never delivered anything (the server is down, not
        // just WebSocket blocked): a new round, WebSocket first (unless sseAfter is 0).
        if (es.readyState !== 2 && this.#sseUp) return this.#emit("error", {code: "SSE_ERROR", message: "the event stream failed; EventSource retries"});
        this.#failures = 0;
        this.#lost({code: 4004, reason: "the event stream was refused"});
      };
      this.#sse.set(k, entry);
    }
    if (!wasReady && !this.#sse.size) {
      this.#sseUp = true; // nothing subscribed: nothing to wait for
      this.#setState("connected", {transport: "sse"});
    }
  }
}

export default RtpushClient;
