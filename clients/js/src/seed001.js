// A facade with the interface of seed 001's `websocketClient` service (docs/getting-started.md,
// "7. Your own page"; docs/protocol.md, "Seed parity"): code written for that Socket.IO client
// runs on rtpush unchanged.
// Handlers are chosen by the message's `event` (kpi:update, alert:triggered, ...) and get the
// publication's `data` (then the whole message).
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.

import {RtpushClient, topicKey} from "./client.js";

/// event -> the handler of seed 001's `on({...})` that receives it.
export const EVENT_HANDLERS = {
  "kpi:update": "onKPIUpdate",
  "kpi:computed": "onKPIComputed",
  "kpi:alert": "onKPIAlert",
  "backlog:update": "onBacklogUpdate",
  "backlog:snapshot": "onBacklogSnapshot",
  "backlog:alert": "onBacklogAlert",
  "attendance:update": "onAttendanceUpdate",
  "attendance:checkin": "onAttendanceCheckin",
  "attendance:checkout": "onAttendanceCheckout",
  "attendance:alert": "onAttendanceAlert",
  "alert:triggered": "onAlertTriggered",
  "alert:acknowledged": "onAlertAcknowledged",
  "alert:resolved": "onAlertResolved",
  "alert:escalated": "onAlertEscalated",
  "system:notification": "onNotification",
  "notifications:update": "onNotification",
  "system:broadcast": "onBroadcast",
  "system:maintenance": "onMaintenance",
};

/// seed 001's `url` (http(s)://host:port, or ws(s)://) and `path` ('/ws') as a WebSocket URL.
function wsUrl(url, path = "/ws") {
  if (!url) {
    const loc = globalThis.location;
    if (!loc) throw new TypeError("initialize(): `url` is required outside a browser");
    url = loc.origin;
  }
  const u = new URL(url);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.pathname === "/" || u.pathname === "") u.pathname = path;
  return u.toString();
}

export class Seed001Client {
  /// The RtpushClient underneath (null before initialize()).
  client = null;
  #handlers = [];
  #subs = new Map(); // topic key -> unsubscribe function
  #auth = null;

  constructor(options) {
    if (options) this.initialize(options);
  }

  /// initialize(url?) or initialize({url, path, reconnection, reconnectionAttempts,
  /// reconnectionDelay, timeout, autoConnect, token, getToken, clientId, WebSocket, ...}).
  initialize(options = {}) {
    const o = typeof options === "string" ? {url: options} : options;
    if (this.client) this.client.close();
    const c = new RtpushClient({
      ...o,
      url: wsUrl(o.url, o.path),
      reconnect: o.reconnection === false ? false : {initialDelay: o.reconnectionDelay ?? 1000, maxDelay: 30000, multiplier: 2, ...(o.reconnect || {})},
      connectTimeout: o.timeout ?? 20000,
    });
    this.client = c;
    c.on("connected", (e) => this.#call("onConnect", e));
    c.on("disconnected", (e) => this.#call("onDisconnect", e.reason, e));
    c.on("reconnecting", (e) => this.#call("onReconnecting", e.attempt, e));
    c.on("recovered", (e) => this.#call("onRecovered", e));
    c.on("error", (e) => this.#call("onError", e));
    c.on("authenticated", (e) => this.#call("onAuthenticated", e));
    if (this.#auth) c.authenticate(this.#auth).catch(() => {});
    if (o.autoConnect !== false) c.connect();
    return this;
  }

  #need() {
    if (!this.client) throw new Error("websocketClient: call initialize() first");
    return this.client;
  }

  #call(name, ...args) {
    for (const h of this.#handlers) {
      const fn = h[name];
      if (typeof fn === "function") {
        try { fn(...args); } catch (e) { if (name !== "onError") this.#call("onError", {code: "HANDLER_ERROR", message: String(e), error: e}); }
      }
    }
  }

  #dispatch(msg) {
    const name = EVENT_HANDLERS[msg.event];
    if (name) this.#call(name, msg.data, msg);
    this.#call("onMessage", msg.event, msg.data, msg);
  }

  /// authenticate(userId, organizationId, token?): with a token (a JWT) when the server
  /// verifies tokens, else seed 001's {user_id, organization_id}. Kept for reconnections.
  authenticate(userId, organizationId, token) {
    this.#auth = token || {user_id: userId, organization_id: organizationId};
    return this.#need().authenticate(this.#auth);
  }

  /// subscribe(['kpi', 'alerts'], {organization_id, department_id, queue_name}): resolves once
  /// the server has answered every subscription.
  async subscribe(channels, filters = {}) {
    const c = this.#need();
    const ready = [];
    for (const ch of [].concat(channels)) {
      const key = topicKey(ch, filters);
      if (this.#subs.has(key)) continue;
      const unsub = c.subscribe(ch, filters, (msg) => this.#dispatch(msg));
      this.#subs.set(key, unsub);
      ready.push(unsub.ready);
    }
    await Promise.all(ready);
  }

  async unsubscribe(channels, filters = {}) {
    for (const ch of [].concat(channels)) {
      const key = topicKey(ch, filters);
      this.#subs.get(key)?.();
      this.#subs.delete(key);
    }
  }

  /// on({onConnect, onDisconnect, onKPIUpdate, onAlertTriggered, ..., onError, onMessage}):
  /// adds handlers; returns a function that removes them.
  on(handlers) {
    this.#handlers.push(handlers);
    return () => { this.#handlers = this.#handlers.filter((h) => h !== handlers); };
  }

  /// Removes handlers added with on() (all of them without an argument).
  off(handlers) {
    this.#handlers = handlers ? this.#handlers.filter((h) => h !== handlers) : [];
  }

  isConnected() { return this.client?.state === "connected"; }
  getConnectionStatus() { return this.client ? this.client.state : "disconnected"; }
  ping() { return this.#need().ping(); }

  disconnect() {
    this.client?.close();
    this.#subs.clear();
  }
}

/// The shared instance, imported the way seed 001's front end imports its `websocketClient`.
export const websocketClient = new Seed001Client();
