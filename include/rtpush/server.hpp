//
// rtpush: the server: one port for HTTP (REST) and WebSocket, one io thread per core.
//
#ifndef RTPUSH_SERVER_HPP
#define RTPUSH_SERVER_HPP

#include <rtpush/alerts.hpp>
#include <rtpush/auth.hpp>
#include <rtpush/config.hpp>
#include <rtpush/detail/shard.hpp>
#include <rtpush/detail/sse_session.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/session.hpp>
#include <rtpush/tls.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace rtpush {

/// The push server. It owns one io_context per thread (a shard); connections are spread over
/// the shards, and the hub fans every publication out to all of them.
///
/// Lifecycle: construct, optionally publish and spawn tasks, start() (or run()), stop() from
/// any thread (e.g. a signal handler's completion), wait(). stop() closes every WebSocket
/// with 1001, waits for every task up to `shutdown_timeout`, then wait() returns.
class server {
public:
    using http_request = boost::beast::http::request<boost::beast::http::string_body>;
    using http_response = boost::beast::http::response<boost::beast::http::string_body>;

    /// Throws std::invalid_argument for an inconsistent configuration, e.g. TLS certificate
    /// or key files that cannot be used (the message names the file and the reason).
    explicit server(server_config cfg = {});
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server();

    rtpush::hub& hub() noexcept { return hub_; }
    const server_config& config() const noexcept { return cfg_; }

    /// Binds and listens (throws boost::system::system_error on failure, e.g. port in use),
    /// then starts the io threads. Returns at once.
    void start();
    /// Blocks until the server has stopped and every task has ended.
    void wait();
    /// start() then wait().
    void run() {
        start();
        wait();
    }
    /// Begins the graceful shutdown. Thread-safe, idempotent.
    void stop();

    /// The bound port (after start()).
    std::uint16_t port() const noexcept { return port_; }

    /// The executor of the first io thread, where spawn() runs tasks.
    boost::asio::any_io_executor get_executor() noexcept { return shards_.front()->get_executor(); }

    /// Runs a background task (e.g. a data source's refresh loop) until it returns or the
    /// server stops; stop() cancels it (terminal cancellation) and waits for it. Exceptions
    /// other than cancellation are logged. Thread-safe.
    void spawn(std::function<boost::asio::awaitable<void>()> task, std::string name = "task");

    /// Server statistics in the shape of seed 001's /api/stats (computed on the caller's
    /// thread from counters; connection and room details come from handle()).
    boost::json::object counters() const;

    /// GET /metrics: the server's counters in the Prometheus text format (docs/protocol.md).
    boost::asio::awaitable<std::string> metrics();

    /// The alert lifecycle (seed 003; docs/protocol.md, "Alerts"). Every step that succeeds
    /// is published on channel `alerts` at the alert's scope (`alert:triggered`,
    /// `alert:acknowledged`, `alert:resolved`) with the whole alert as data; the result's
    /// `seq` is that publication's. trigger_alert() checks the payload against the `alert`
    /// schema of `server_config::ingest`. Thread-safe: steps are published in the order they
    /// happen.
    alert_result trigger_alert(boost::json::object data);
    alert_result acknowledge_alert(std::string_view id, std::string_view by = {});
    alert_result resolve_alert(std::string_view id, std::string_view by = {});
    /// Copies of the alerts the filter wants, newest first.
    std::vector<alert> alerts(const alert_filter& f = {}) const;
    std::optional<alert> find_alert(std::string_view id) const;

    /// Answers one REST request (the routes of docs/protocol.md). Exposed so that programs
    /// embedding rtpush in their own HTTP server can forward /api requests. Runs on the
    /// caller's executor (it visits the io threads for connection and room lists).
    boost::asio::awaitable<http_response> handle(const http_request& req);

    /// Takes over a connection that a program's own HTTP server accepted and read `request`
    /// from (examples/embed_beast): a WebSocket upgrade to `ws_path` becomes a WebSocket
    /// session, a GET of `sse_path` an SSE stream, anything else gets its REST answer and the
    /// connection stays with rtpush (keep-alive). rtpush answers on the socket, with the same
    /// checks as for the connections it accepts itself (origin, token, limits), on one of its
    /// io threads; `buffered` holds bytes the caller read past the request (the rest of its
    /// read buffer), which belong to the WebSocket.
    ///
    /// Thread-safe; returns at once. The socket must have no pending operation: it is moved
    /// to an io thread of the server (released and assigned again). After stop() or before
    /// start(), the socket is closed. Use with `listen = false` to serve only connections
    /// handed over, or beside the server's own port.
    void accept_connection(boost::asio::ip::tcp::socket socket, http_request request,
                           std::string buffered = {});

private:
    boost::asio::awaitable<void> accept_loop();
    /// Runs a connection's coroutine on its shard, counted in the shard's live tasks.
    void spawn_connection(detail::shard& sh, boost::asio::awaitable<void> task);
    struct upgrade_state {
        std::optional<boost::asio::ip::tcp::socket> socket;
        std::string leftover;
        std::string org;
        std::string remote;
        std::optional<jwt_claims> claims; ///< from the handshake's token, when it had one
        std::optional<detail::sse_params>
            sse; ///< a GET of sse_path: an SSE stream, not a WebSocket
        std::unique_ptr<session::tls_stream> tls; ///< wss://: the stream (`socket` unused)
        bool deflate = false;                     ///< permessage-deflate negotiated
    };
    boost::asio::awaitable<bool> http_phase(detail::shard& sh, boost::asio::ip::tcp::socket sock,
                                            upgrade_state& up,
                                            std::optional<http_request> first = {},
                                            std::string buffered = {});
    boost::asio::awaitable<bool> tls_phase(detail::shard& sh, boost::asio::ip::tcp::socket sock,
                                           upgrade_state& up);
    template <class Stream>
    boost::asio::awaitable<bool>
    http_exchange(detail::shard& sh, Stream& stream, boost::beast::tcp_stream& tcp,
                  upgrade_state& up, std::optional<http_request> first, std::string buffered);
    /// The checks of a WebSocket upgrade request (path, key, version, org, origin, rate,
    /// token, limits): the refusal to send, or nothing (then `up` has the token's claims).
    std::optional<http_response> upgrade_check(detail::shard& sh, const http_request& req,
                                               bool upgrade, const std::string& path,
                                               std::map<std::string, std::string>& query,
                                               const std::string& remote,
                                               const std::string& remote_ip, upgrade_state& up);
    /// The 101 answer to an accepted upgrade request (sets up.deflate).
    boost::beast::http::response<boost::beast::http::empty_body>
    switching_protocols(const http_request& req, upgrade_state& up);
    /// Makes the session of an upgraded connection (in `block`, of sizeof(session), when
    /// given) and starts it.
    void start_session(detail::shard& sh, upgrade_state& up, void* block = nullptr);
    /// A plain connection just accepted: wait (cheaply) until its request has arrived, then
    /// handle_request_now(); on the shard's thread.
    void await_request(detail::shard& sh, boost::asio::ip::tcp::socket sock);
    /// The request is readable: a complete WebSocket upgrade is answered and becomes a
    /// session within this handler; anything else continues in handle_connection().
    void handle_request_now(detail::shard& sh, boost::asio::ip::tcp::socket sock, void* block);
    boost::asio::awaitable<void> handle_connection(detail::shard& sh,
                                                   boost::asio::ip::tcp::socket sock,
                                                   std::optional<http_request> first = {},
                                                   std::string buffered = {});
    /// Checks a GET of sse_path (scope, token, origin, limits, Last-Event-ID); fills `p` and
    /// returns nothing when the stream may start, else the refusal to send.
    std::optional<http_response> sse_check(detail::shard& sh, const http_request& req,
                                           std::map<std::string, std::string>& query,
                                           const std::string& remote, const std::string& remote_ip,
                                           detail::sse_params& p);
    void start_sse(detail::shard& sh, boost::asio::ip::tcp::socket sock, detail::sse_params p);
    boost::asio::awaitable<void> heartbeat_loop(detail::shard& sh);
    /// Re-sends the un-acked publications due to this shard's sessions (on its thread).
    void resend_unacked(detail::shard& sh, std::chrono::steady_clock::time_point now);
    boost::asio::awaitable<void> stats_loop();
    boost::asio::awaitable<void> drain(detail::shard& sh);
    void shutdown_shard(detail::shard& sh);
    void spawn_on(detail::shard& sh, boost::asio::awaitable<void> task, std::string name,
                  boost::asio::cancellation_slot slot = {});
    std::size_t connection_count() const noexcept;
    detail::counter_totals totals() const;
    boost::asio::awaitable<boost::json::object> stats_json();
    boost::json::object health_json() const;
    void engine_fields(boost::json::object& o) const; // engine status into /health, /api/stats
    /// Outbound queues summed over every session, read on each shard's thread.
    struct queue_depths {
        std::uint64_t frames = 0, bytes = 0, max_frames = 0;
    };
    boost::asio::awaitable<queue_depths> collect_queue_depths();
    std::string metrics_text(const queue_depths& q) const;
    std::string handshake_token(const http_request& req,
                                const std::map<std::string, std::string>& query,
                                std::optional<jwt_claims>& claims) const;
    bool admin_allowed(const http_request& req) const;
    // A broadcast an engine must order before it is answered: the answer carries the
    // cluster's seq, and a publication Redis did not take is a 503, not a 200.
    struct engine_broadcast {
        publication p;
        topic t;
        std::string ack_id;
        unsigned version = 11;
    };
    std::variant<http_response, engine_broadcast>
    broadcast(const std::string& path, const std::map<std::string, std::string>& query,
              const http_request& req);
    boost::asio::awaitable<http_response> finish_broadcast(engine_broadcast b);
    http_response alerts_route(const std::string& path, std::map<std::string, std::string>& query,
                               const http_request& req);
    alert_result published(alert_result r, std::string ack_id = {}); // alerts_mutex_ held
    bool handshake_allowed(const std::string& ip);

    server_config cfg_;
    std::optional<boost::asio::ssl::context> tls_; // set when cfg_ names a certificate
    rtpush::hub hub_;
    // Publications with requires_ack; before the shards, so that it outlives every session.
    std::unique_ptr<detail::ack_registry> acks_;
    std::vector<std::unique_ptr<detail::shard>> shards_;
    std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
    std::vector<std::thread> threads_;
    std::list<boost::asio::cancellation_signal> task_signals_; // shard 0 only
    std::atomic<std::uint64_t> next_id_{1};
    std::atomic<std::size_t> next_shard_{0}; // accept_connection's round robin
    std::atomic<bool> stopping_{false};
    bool started_ = false;
    std::uint16_t port_ = 0;
    std::chrono::steady_clock::time_point started_at_ = std::chrono::steady_clock::now();
    std::atomic<double> messages_per_second_{0};
    detail::org_connections org_connections_;
    std::mutex handshake_mutex_;
    detail::keyed_rate_limiter handshake_limiter_; // per client IP
    mutable std::mutex alerts_mutex_;
    alert_book alerts_;
};

} // namespace rtpush

#include <rtpush/impl/server.hpp>

#endif
