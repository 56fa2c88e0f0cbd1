// Types of rtpush-client (hand-written; the code is plain JavaScript).

export interface Scope {
  org?: string;
  dept?: string;
  queue?: string;
  /** seed 001's synonyms (docs/protocol.md, "Topics and scopes") */
  organization_id?: string;
  department_id?: string;
  queue_name?: string;
}

export interface ReconnectOptions {
  initialDelay?: number;
  maxDelay?: number;
  multiplier?: number;
  /** ms a connection must stay up to reset the schedule (default 60000) */
  resetAfter?: number;
}

export interface RtpushClientOptions {
  /** ws:// or wss:// URL of the WebSocket endpoint, e.g. ws://host:3001/ws */
  url: string;
  token?: string;
  getToken?: () => string | Promise<string>;
  clientId?: string;
  reconnect?: ReconnectOptions | false;
  /** a WebSocket constructor (npm ws in Node < 22) */
  WebSocket?: unknown;
  /** an EventSource constructor for the SSE fallback (default: the global one) */
  EventSource?: unknown;
  /** the SSE URL (default: the http(s) URL of `url` with path /sse); false disables SSE */
  sseUrl?: string | false;
  /** WebSocket attempts in a row that got no `connected` from the server before SSE is used (default 3; 0: SSE only) */
  sseAfter?: number;
  /** ms without any message before the connection is taken for dead (default 2.5 heartbeats) */
  heartbeatTimeout?: number;
  connectTimeout?: number;
  requestTimeout?: number;
  autoAck?: boolean;
}

export type Phase = "kpis" | "complete";
export type Priority = "low" | "medium" | "high" | "urgent";

export interface Publication<T = any> {
  type: "initial" | "update";
  event: string;
  channel: string;
  scope: Scope;
  topic: string;
  seq: number;
  offset: number;
  epoch: string;
  phase?: Phase;
  priority?: Priority;
  data: T;
  timestamp: string;
  ackId?: string;
  redelivered?: boolean;
}

export interface ServerMessage {
  type: string;
  id?: string | number;
  [field: string]: any;
}

export interface SubscribedMessage extends ServerMessage {
  type: "subscribed";
  channel: string;
  scope: Scope;
  topic: string;
  epoch: string;
  recovered?: boolean;
  reason?: string;
}

export interface SnapshotMessage extends ServerMessage {
  type: "snapshot";
  channel: string;
  scope: Scope;
  topic: string;
  items: Publication[];
}

export interface HistoryMessage extends ServerMessage {
  type: "history";
  channel: string;
  scope: Scope;
  topic: string;
  epoch: string;
  order: "newest" | "oldest";
  count: number;
  items: Publication[];
  next_cursor: number | null;
}

export interface HistoryOptions {
  since?: number;
  until?: number;
  limit?: number;
  cursor?: number | null;
  order?: "newest" | "oldest";
}

export interface PublishedMessage extends ServerMessage {
  type: "published";
  topic: string;
  seq: number;
  ackId?: string;
}

export interface RtpushError {
  code: string;
  message: string;
  id?: string | number;
  retryAfter?: number;
  channel?: string;
  scope?: Scope;
}

export type ClientState = "disconnected" | "connecting" | "connected" | "reconnecting" | "closed";

export interface ClientEvents {
  connecting: {url: string; attempt: number};
  connected: {transport: "websocket" | "sse"; clientId?: string; server?: string; heartbeatInterval?: number};
  disconnected: {code: number; reason: string; willReconnect: boolean};
  reconnecting: {attempt: number; delay: number; reason: string; code: number};
  recovered: {topic: string; recovered: boolean; reason?: string; epoch: string};
  subscribed: SubscribedMessage;
  gap: {topic: string; expected: number; received: number};
  error: RtpushError;
  heartbeat: ServerMessage & {timestamp: string; clients?: number};
  authenticated: ServerMessage & {userId?: string; organizationId?: string};
  message: ServerMessage;
  closed: undefined;
}

export interface Unsubscribe {
  (): void;
  /** the first `subscribed` answer (rejects with the first error) */
  ready: Promise<SubscribedMessage>;
}

export class RtpushClient {
  constructor(options: RtpushClientOptions);
  readonly state: ClientState;
  readonly transport: "websocket" | "sse" | null;
  readonly url: string;
  connect(): this;
  close(): void;
  /** drops the connection as a network failure would (reconnects and recovers) */
  reconnect(): void;
  subscribe<T = any>(channel: string, scope: Scope | undefined, handler: (msg: Publication<T>) => void): Unsubscribe;
  get(channel: string, scope?: Scope): Promise<SnapshotMessage>;
  history(channel: string, scope?: Scope, options?: HistoryOptions): Promise<HistoryMessage>;
  refresh(channel?: string, scope?: Scope): Promise<ServerMessage>;
  publish(channel: string, scope: Scope | undefined, data: unknown,
          options?: {event?: string; phase?: Phase; requiresAck?: boolean}): Promise<PublishedMessage>;
  authenticate(tokenOrData: string | {user_id: string; organization_id: string}): Promise<ServerMessage | undefined>;
  ping(): Promise<number>;
  on<K extends keyof ClientEvents>(event: K, fn: (arg: ClientEvents[K]) => void): () => void;
  off<K extends keyof ClientEvents>(event: K, fn: (arg: ClientEvents[K]) => void): void;
}

export class StreamTracker {
  epoch: string;
  accept(msg: ServerMessage): "fresh" | "duplicate" | "gap";
  position(topicKey: string): {epoch: string; offset: number; offsets?: Record<string, number>} | undefined;
}

export function normalizeScope(scope?: Scope): {org?: string; dept?: string; queue?: string};
export function topicKey(channel: string, scope?: Scope): string;
export function keyWithin(key: string, sub: string): boolean;

export interface Seed001Options extends Partial<RtpushClientOptions> {
  url?: string;
  path?: string;
  reconnection?: boolean;
  reconnectionAttempts?: number;
  reconnectionDelay?: number;
  timeout?: number;
  autoConnect?: boolean;
}

export interface SubscriptionFilters {
  organization_id?: string;
  department_id?: string;
  queue_name?: string;
}

type DataHandler = (payload: any, message: Publication) => void;

export interface Seed001Handlers {
  onConnect?: (info: ClientEvents["connected"]) => void;
  onDisconnect?: (reason: string, info: ClientEvents["disconnected"]) => void;
  onReconnecting?: (attempt: number, info: ClientEvents["reconnecting"]) => void;
  onRecovered?: (info: ClientEvents["recovered"]) => void;
  onAuthenticated?: (answer: ClientEvents["authenticated"]) => void;
  onError?: (error: RtpushError) => void;
  onMessage?: (event: string, payload: any, message: Publication) => void;
  onKPIUpdate?: DataHandler;
  onKPIComputed?: DataHandler;
  onKPIAlert?: DataHandler;
  onBacklogUpdate?: DataHandler;
  onBacklogSnapshot?: DataHandler;
  onBacklogAlert?: DataHandler;
  onAttendanceUpdate?: DataHandler;
  onAttendanceCheckin?: DataHandler;
  onAttendanceCheckout?: DataHandler;
  onAttendanceAlert?: DataHandler;
  onAlertTriggered?: DataHandler;
  onAlertAcknowledged?: DataHandler;
  onAlertResolved?: DataHandler;
  onAlertEscalated?: DataHandler;
  onNotification?: DataHandler;
  onBroadcast?: DataHandler;
  onMaintenance?: DataHandler;
}

export const EVENT_HANDLERS: Record<string, keyof Seed001Handlers>;

export class Seed001Client {
  constructor(options?: Seed001Options | string);
  client: RtpushClient | null;
  initialize(options?: Seed001Options | string): this;
  authenticate(userId: string, organizationId: string, token?: string): Promise<ServerMessage | undefined>;
  subscribe(channels: string | string[], filters?: SubscriptionFilters): Promise<void>;
  unsubscribe(channels: string | string[], filters?: SubscriptionFilters): Promise<void>;
  on(handlers: Seed001Handlers): () => void;
  off(handlers?: Seed001Handlers): void;
  isConnected(): boolean;
  getConnectionStatus(): ClientState;
  ping(): Promise<number>;
  disconnect(): void;
}

export const websocketClient: Seed001Client;
export default RtpushClient;
