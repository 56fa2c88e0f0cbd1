// Types of rtpush-client/react (hand-written).
import type {ReactNode, ReactElement} from "react";
import type {RtpushClient, RtpushClientOptions, ClientState, Publication, RtpushError, SubscriptionFilters, ServerMessage} from "./index.js";

export function RtpushProvider(props: {client?: RtpushClient; options?: RtpushClientOptions; children?: ReactNode}): ReactElement;
export function useRtpushClient(): RtpushClient;

export function useWebSocket(options?: {
  autoAuthenticate?: boolean; userId?: string; organizationId?: string; token?: string;
}): {
  isConnected: boolean;
  isAuthenticated: boolean;
  connectionStatus: ClientState;
  authenticate: (userId: string, organizationId: string, token?: string) => Promise<ServerMessage | undefined>;
  connect: () => void;
  disconnect: () => void;
  client: RtpushClient;
};

export function useWebSocketSubscription<T = any>(
  channels: string | string[], filters?: SubscriptionFilters, onMessage?: (msg: Publication<T>) => void
): {isSubscribed: boolean; error: RtpushError | null; lastMessage: Publication<T> | null};

export interface UpdatesResult<T> {latestUpdate: T | null; isSubscribed: boolean; error: RtpushError | null}
export function useKPIUpdates<T = any>(callback?: ((payload: T, msg: Publication<T>) => void) | null, filters?: SubscriptionFilters): UpdatesResult<T>;
export function useBacklogUpdates<T = any>(callback?: ((payload: T, msg: Publication<T>) => void) | null, filters?: SubscriptionFilters): UpdatesResult<T>;
export function useAttendanceUpdates<T = any>(callback?: ((payload: T, msg: Publication<T>) => void) | null, filters?: SubscriptionFilters): UpdatesResult<T>;

export function useAlertNotifications<T = any>(callback?: ((alert: T, msg: Publication<T>) => void) | null, filters?: SubscriptionFilters): {
  latestAlert: T | null; alertCount: number; clearAlertCount: () => void; isSubscribed: boolean; error: RtpushError | null;
};

export function useWebSocketHealth(intervalMs?: number): {
  isHealthy: boolean; latency: number | null; lastHeartbeat: string | null; connectionStatus: ClientState; reconnectAttempts: number;
};
