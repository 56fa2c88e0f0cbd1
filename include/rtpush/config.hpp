//
// rtpush: server configuration as a plain struct with defaults.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_CONFIG_HPP
#define RTPUSH_CONFIG_HPP

#include <rtpush/cork_policy.hpp>
#include <rtpush/ingest.hpp>
#include <rtpush/log.hpp>
#include <rtpush/overflow_policy.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rtpush {

/// The hub's per-topic history, from which a reconnecting client recovers what it missed
/// (docs/protocol.md, "Recovery"). An entry leaves when either bound is passed.
struct hub_config {
    std::size_t history_size = 1000;               ///< publications kept per topic; 0 = none
    std::chrono::milliseconds history_ttl{600000}; ///< ... and for at most this long
    std::size_t history_bytes = 4 << 20; ///< ... and in at most this many frame bytes per topic
    std::size_t max_replay = 5000; ///< a recovery needing more replays sends `initial` instead
};

/// Acknowledged delivery: how often and how long a publication with `requires_ack` is re-sent
/// to a client that has not acked it (docs/protocol.md, "Acknowledged delivery").
struct ack_config {
    /// The first re-send goes this long after a delivery; each later one waits `factor` times
    /// longer, up to `max_resend_delay`.
    std::chrono::milliseconds resend_after{2000};
    double factor = 2.0;
    std::chrono::milliseconds max_resend_delay{30000};
    /// Deliveries to one client (the first one included) before the server gives up on it.
    /// A reconnect sends what is pending once more, whatever the count.
    unsigned max_attempts = 10;
    /// A broadcast is forgotten this long after it was published (its GET answers 404).
    std::chrono::milliseconds ttl{600000};
    std::size_t max_broadcasts = 10000;        ///< the oldest is forgotten beyond this
    std::size_t max_pending_per_client = 1000; ///< the oldest un-acked one is given up beyond
    /// (client, broadcast) pairs tracked in all (about 150 bytes each): beyond, the oldest
    /// broadcasts are forgotten, and a broadcast reaching more clients than this is tracked
    /// for the first ones only.
    std::size_t max_tracked = 1000000;
};

/// Everything a server can be told. Tools map flags, environment variables and config files
/// onto this struct; programs fill it with designated initialisers.

/// A feed path (docs/protocol.md, "Feed paths"): a WebSocket endpoint whose clients are
/// subscribed to `channels` on connect and receive `{"type":"<channel>","data":...,
/// "timestamp":...}` (seed 002's `ws` back end at `/ws/metrics`).
struct feed_path {
    std::string path;                  ///< e.g. "/ws/metrics"
    std::vector<std::string> channels; ///< subscribed on connect (unscoped, or the token's org)
};

struct server_config {
    std::string host = "0.0.0.0";
    std::uint16_t port = 3001; ///< 0 picks a free port (see server::port())
    /// false: no listening socket; connections come only through server::accept_connection
    /// (rtpush embedded in another HTTP server, examples/embed_beast).
    bool listen = true;
    /// SO_REUSEPORT on the listening socket: several rtd processes bind the same port and the
    /// kernel spreads connections over them (docs/operations.md, "Several processes on one
    /// port"); with the Redis engine they are one cluster. Linux and the BSDs.
    bool reuse_port = false;
    std::string ws_path = "/ws"; ///< path of the WebSocket endpoint
    /// The channel of GET /api/kpis and /api/dashboard without `channel` (rtd: `dashboard`
    /// when it polls seed 000's Copilot metrics, which publish there).
    std::string rest_default_channel = "kpi";
    std::string sse_path = "/sse";      ///< Server-Sent Events fallback; empty: none
    std::vector<feed_path> feed_paths;  ///< plain WebSocket feeds (seed 002), besides ws_path
    std::string server_name = "rtpush"; ///< sent in `connected` and the Server header
    bool dashboard = true; ///< serve the live dashboard page at GET / (else / is the JSON index)
    unsigned threads = 0;  ///< io threads; 0 = one per core

    std::chrono::milliseconds heartbeat_interval{30000}; ///< `heartbeat` message and ping cadence
    /// Socket.IO connection state recovery: how long a Socket.IO session that lost its
    /// connection is kept for its client to resume (Socket.IO's maxDisconnectionDuration,
    /// docs/protocol.md "Coming from Socket.IO"); 0 turns recovery off.
    std::chrono::milliseconds socketio_recovery_window{120000};
    std::chrono::milliseconds idle_timeout{0}; ///< silent peer dropped after; 0 = 2.5 heartbeats
    std::chrono::milliseconds handshake_timeout{10000}; ///< HTTP request + upgrade deadline
    std::chrono::milliseconds close_timeout{3000};      ///< wait for the peer's close frame
    std::chrono::milliseconds shutdown_timeout{5000};   ///< graceful shutdown bound

    std::size_t max_message_size = 1024 * 1024; ///< inbound frame/message bytes (close 1009 above)
    std::size_t max_json_depth = 32;
    std::size_t max_http_body = 1024 * 1024;
    std::size_t max_connections = 100000; ///< total WebSocket connections (CONNECTION_LIMIT)
    std::size_t max_subscriptions = 256;  ///< per client (SUBSCRIPTION_FAILED above)

    std::size_t queue_max_frames = 4096;    ///< outbound queue bound per client, in frames
    std::size_t queue_max_bytes = 16 << 20; ///< ... and in bytes
    overflow_policy queue_policy = overflow_policy::disconnect;
    std::size_t write_batch_frames = 256; ///< frames gathered into one write
    std::size_t write_batch_bytes = 256 << 10;
    /// Corking (docs/architecture.md, "Corking"): an io thread whose writes would take most of
    /// its time holds them back, up to `cork_delay`, so that each system call carries several
    /// frames; a quiet one writes at once. A zero delay turns corking off. `cork_threshold`
    /// (frames per second per io thread) is used by the `fixed` policy only.
    std::chrono::milliseconds cork_delay{20};
    cork_policy cork_mode = cork_policy::adaptive;
    double cork_threshold = 50000;

    bool allow_client_publish = false; ///< accept `publish` from WebSocket clients
    /// Conformance echo (docs/protocol.md, "Conformance"): a WebSocket upgrade on any path
    /// becomes a session that echoes every text and binary message, through the same reader,
    /// limits and permessage-deflate, and speaks nothing else: no `connected`, no `heartbeat`
    /// (pings only), no Socket.IO or feed paths. For conformance suites (examples/echo_server).
    bool echo = false;

    /// permessage-deflate (RFC 7692) for clients that offer it, without context takeover:
    /// a broadcast is compressed once and shared (docs/protocol.md, "Compression"). Off by
    /// default: it costs CPU per publication and memory per retained one, and pays off for
    /// large payloads over slow links, not for small KPI updates.
    bool permessage_deflate = false;
    std::size_t deflate_threshold = 512; ///< payloads under this many bytes go uncompressed

    // TLS (docs/security.md): both set, the port serves wss:// and https:// only.
    std::string tls_cert_file; ///< PEM certificate chain, leaf first
    std::string tls_key_file;  ///< PEM private key of the leaf certificate

    // Authentication and authorization (docs/security.md).
    std::string jwt_secret; ///< HS256 key of client tokens; empty: tokens are not verified
    /// Only `authenticate` and `ping` before a valid token, on every transport, and REST
    /// reads of tenant data need one. Implied by `jwt_secret` unless `allow_anonymous`.
    bool auth_required = false;
    /// Trusted networks only: with a `jwt_secret`, clients without a token may still read
    /// (and, without `auth_required`, do what an unauthenticated client could before:
    /// subscribe to any organization). Contradicts `auth_required`. docs/security.md.
    bool allow_anonymous = false;
    std::chrono::milliseconds auth_timeout{10000}; ///< unauthenticated clients closed (1008)
    std::chrono::seconds jwt_leeway{30};           ///< clock skew allowed on exp and nbf
    /// A connection whose token expires gets `token_expiring` this long before it is closed
    /// (1008 "token expired", at `exp` + `jwt_leeway`); `authenticate` again with a fresh
    /// token keeps it and its subscriptions. 0: no warning.
    std::chrono::seconds token_expiry_warning{60};
    std::size_t max_auth_failures = 5; ///< failed `authenticate`s before close 1008; 0 = no limit
    std::string admin_key;             ///< required on admin REST routes when set (X-API-Key)
    /// Browser origins (scheme://host[:port]) that may open a WebSocket and get CORS headers
    /// on REST; "*" allows any. Empty: no Origin check and no CORS headers.
    std::vector<std::string> allowed_origins;

    // Limits (docs/security.md); 0 disables each.
    std::size_t max_connections_per_org = 0; ///< once the org is known (CONNECTION_LIMIT, 1008)
    /// Per user, the verified token's `sub`, once the token is known (CONNECTION_LIMIT, 1008;
    /// an SSE stream: 503); 0 = none. Connections without a token do not count.
    std::size_t max_connections_per_user = 0;
    /// Subscribers per room (a topic key) on this node (ROOM_FULL above; an SSE stream: 503);
    /// 0 = none. Seed 001's `room_max_size` (docs/security.md, "Limits").
    std::size_t room_max_size = 0;
    double max_handshakes_per_ip = 0;     ///< WebSocket handshakes per second per IP (HTTP 429)
    double max_messages_per_second = 100; ///< per client (RATE_LIMIT_EXCEEDED)
    double rate_abuse_factor = 3; ///< sustained sending at this multiple of the rate: close 1008
    std::chrono::milliseconds refresh_min_interval{10000}; ///< per-client `refresh` rate limit

    rtpush::hub_config history; ///< per-topic history for recovery
    rtpush::ack_config acks;    ///< re-sending of publications with `requires_ack`
    /// Keep the latest values, the history and the epoch in this directory (SQLite; link
    /// rtpush::sqlite), so that a restart loses nothing answered (docs/operations.md,
    /// "Durable state"). Empty: memory only. A directory that cannot be used is an error of
    /// the server's constructor, never a silent memory-only run.
    std::string data_dir;
    /// With data_dir: fsync at every commit (SQLite synchronous=FULL), so that an answered
    /// publication survives a power cut too. false (the default): WAL with synchronous=NORMAL,
    /// fsync at checkpoints only: an answered publication survives a crash or `kill -9` of the
    /// process (it is in the operating system's cache), and the store commits an order of
    /// magnitude more publications per second (docs/operations.md, "Durable state").
    bool fsync_every_commit = false;

    /// Schemas of POST /api/broadcast/{kpi,backlog,attendance,alert} bodies and of the
    /// generic broadcast's seed 003 events (docs/protocol.md, "Ingest"); `{}` validates none.
    rtpush::ingest_validator ingest = rtpush::ingest_validator::intraday();
    /// Alerts kept by the lifecycle (GET /api/alerts); when full, the oldest resolved one
    /// makes room, and a trigger with none resolved is refused (HTTP 503).
    std::size_t max_alerts = 10000;
    /// Channels whose subscribers are told when a client subscribes to one of its topics
    /// (`join`) and when it unsubscribes or goes (`leave`); "*" = every channel; empty: none
    /// (docs/protocol.md, "Presence").
    std::vector<std::string> join_leave_channels;
    /// A pending alert nobody acknowledged this long is escalated (`alert:escalated`, its
    /// severity one level up), again each period until critical; an alert's own
    /// `escalate_after` wins. 0: never (docs/protocol.md, "Alerts").
    std::chrono::seconds alert_escalation_after{0};

    rtpush::logger logger; ///< no sink: silent
};

} // namespace rtpush

#endif
