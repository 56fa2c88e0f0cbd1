// React hooks with seed 001's names and return shapes (docs/getting-started.md, "7. Your own
// page"; docs/protocol.md, "Seed parity"), over one shared RtpushClient per <RtpushProvider>. Plain JavaScript: React.createElement, no JSX.

import {createContext, createElement, useCallback, useContext, useEffect, useRef, useState} from "react";
import {RtpushClient, topicKey, normalizeScope} from "./client.js";

const Context = createContext(null);

/// <RtpushProvider client={c}> or <RtpushProvider options={{url, ...}}>: one connection for
/// every hook below it (created on mount, closed on unmount when the provider made it).
export function RtpushProvider({client, options, children}) {
  const [c] = useState(() => client || new RtpushClient(options));
  useEffect(() => {
    c.connect();
    return () => { if (!client) c.close(); };
  }, [c]);
  return createElement(Context.Provider, {value: c}, children);
}

/// The provider's RtpushClient.
export function useRtpushClient() {
  const c = useContext(Context);
  if (!c) throw new Error("rtpush hooks need an <RtpushProvider> above them");
  return c;
}

function useClientState(c) {
  const [state, setState] = useState(c.state);
  useEffect(() => {
    const offs = ["connecting", "connected", "disconnected", "reconnecting", "closed"].map((s) => c.on(s, () => setState(c.state)));
    setState(c.state);
    return () => offs.forEach((off) => off());
  }, [c]);
  return state;
}

/// useWebSocket({autoAuthenticate, userId, organizationId, token}) ->
/// {isConnected, isAuthenticated, connectionStatus, authenticate, connect, disconnect, client}
export function useWebSocket(options = {}) {
  const c = useRtpushClient();
  const connectionStatus = useClientState(c);
  const [isAuthenticated, setAuthenticated] = useState(false);
  const authenticate = useCallback(async (userId, organizationId, token) => {
    const res = await c.authenticate(token || {user_id: userId, organization_id: organizationId});
    setAuthenticated(true);
    return res;
  }, [c]);
  useEffect(() => c.on("authenticated", () => setAuthenticated(true)), [c]);
  const {autoAuthenticate, userId, organizationId, token} = options;
  useEffect(() => {
    if (autoAuthenticate && (token || (userId && organizationId)))
      authenticate(userId, organizationId, token).catch(() => setAuthenticated(false));
  }, [autoAuthenticate, userId, organizationId, token, authenticate]);
  return {
    isConnected: connectionStatus === "connected",
    isAuthenticated,
    connectionStatus,
    authenticate,
    connect: useCallback(() => c.connect(), [c]),
    disconnect: useCallback(() => c.close(), [c]),
    client: c,
  };
}

/// useWebSocketSubscription(channels, filters, onMessage?) -> {isSubscribed, error, lastMessage}
export function useWebSocketSubscription(channels, filters, onMessage) {
  const c = useRtpushClient();
  const [isSubscribed, setSubscribed] = useState(false);
  const [error, setError] = useState(null);
  const [lastMessage, setLastMessage] = useState(null);
  const cb = useRef(onMessage);
  cb.current = onMessage;
  const list = [].concat(channels || []);
  const key = list.map((ch) => topicKey(ch, filters)).join(",");
  useEffect(() => {
    if (!list.length) return undefined;
    let live = true;
    const scope = normalizeScope(filters);
    const unsubs = list.map((ch) => c.subscribe(ch, scope, (msg) => {
      if (!live) return;
      setLastMessage(msg);
      cb.current?.(msg);
    }));
    Promise.all(unsubs.map((u) => u.ready)).then(() => live && setSubscribed(true), (e) => live && setError(e));
    return () => {
      live = false;
      unsubs.forEach((u) => u());
      setSubscribed(false);
    };
  }, [c, key]);
  return {isSubscribed, error, lastMessage};
}

/// The latest `data` of a channel's publications (initial values included) at `filters`.
function useChannelUpdates(channel, callback, filters) {
  const [latestUpdate, setLatest] = useState(null);
  const cb = useRef(callback);
  cb.current = callback;
  const {isSubscribed, error} = useWebSocketSubscription(channel, filters, (msg) => {
    setLatest(msg.data);
    cb.current?.(msg.data, msg);
  });
  return {latestUpdate, isSubscribed, error};
}

/// useKPIUpdates(callback?, filters) -> {latestUpdate}
export const useKPIUpdates = (callback, filters) => useChannelUpdates("kpi", callback, filters);
/// useBacklogUpdates(callback?, filters) -> {latestUpdate}
export const useBacklogUpdates = (callback, filters) => useChannelUpdates("backlog", callback, filters);
/// useAttendanceUpdates(callback?, filters) -> {latestUpdate}
export const useAttendanceUpdates = (callback, filters) => useChannelUpdates("attendance", callback, filters);

/// useAlertNotifications(callback?, filters) -> {latestAlert, alertCount, clearAlertCount}:
/// counts `alert:triggered` updates (not the retained values sent on subscribe).
export function useAlertNotifications(callback, filters) {
  const [latestAlert, setLatest] = useState(null);
  const [alertCount, setCount] = useState(0);
  const cb = useRef(callback);
  cb.current = callback;
  const {isSubscribed, error} = useWebSocketSubscription("alerts", filters, (msg) => {
    if (msg.type !== "update" || msg.event !== "alert:triggered") return;
    setLatest(msg.data);
    setCount((n) => n + 1);
    cb.current?.(msg.data, msg);
  });
  const clearAlertCount = useCallback(() => setCount(0), []);
  return {latestAlert, alertCount, clearAlertCount, isSubscribed, error};
}

/// useWebSocketHealth(intervalMs = 30000) -> {isHealthy, latency, lastHeartbeat,
/// connectionStatus, reconnectAttempts}: a ping every interval while connected.
export function useWebSocketHealth(intervalMs = 30000) {
  const c = useRtpushClient();
  const connectionStatus = useClientState(c);
  const [latency, setLatency] = useState(null);
  const [lastHeartbeat, setLastHeartbeat] = useState(null);
  const [reconnectAttempts, setAttempts] = useState(0);
  useEffect(() => {
    const offs = [
      c.on("heartbeat", (m) => setLastHeartbeat(m.timestamp || new Date().toISOString())),
      c.on("reconnecting", (e) => setAttempts(e.attempt)),
      c.on("connected", () => setAttempts(0)),
    ];
    return () => offs.forEach((off) => off());
  }, [c]);
  useEffect(() => {
    if (connectionStatus !== "connected" || c.transport !== "websocket") return undefined;
    let live = true;
    const probe = () => c.ping().then((ms) => live && setLatency(ms), () => live && setLatency(null));
    probe();
    const t = setInterval(probe, intervalMs);
    return () => { live = false; clearInterval(t); };
  }, [c, connectionStatus, intervalMs]);
  return {isHealthy: connectionStatus === "connected", latency, lastHeartbeat, connectionStatus, reconnectAttempts};
}
