//
// rtpush: the server's state and its private work, behind rtpush::server's one pointer.
// Its members are defined by job: lifecycle (impl/server.hpp), the handshake
// (detail/io/handshake.hpp), REST routes (impl/server_routes.hpp), publishing and alerts
// (impl/server_publish.hpp), counters and metrics (impl/server_stats.hpp), the seeds' routes
// (impl/server_seed_routes.hpp).
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_IO_SERVER_IMPL_HPP
#define RTPUSH_DETAIL_IO_SERVER_IMPL_HPP

#include <rtpush/alerts.hpp>
#include <rtpush/auth.hpp>
#include <rtpush/config.hpp>
#include <rtpush/detail/access.hpp>
#include <rtpush/detail/admission.hpp>
#include <rtpush/detail/broadcast_request.hpp>
#include <rtpush/detail/feed_format.hpp>
#include <rtpush/detail/http_answers.hpp>
#include <rtpush/detail/io/polling_session.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/detail/io/sse_session.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/session.hpp>
#include <rtpush/tls.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

namespace rtpush::detail {

/// A REST request as the routes see it: the target parsed once.
struct route_request {
    const http_request& req;
    std::string path;                ///< normalised (no /api/ws/ alias, no trailing '/')
    query_map query;                 ///< decoded query parameters
    std::vector<std::string> params; ///< the `{...}` segments of the route's pattern
    bool admin = false;              ///< the admin key was given (or none is configured)
    unsigned version() const noexcept { return req.version(); }
};

class server_impl final : public presence_directory {
public:
    explicit server_impl(server_config cfg);
    /// Stops the hub's calls into this server (its engine's tasks ended with the server's).
    ~server_impl() { hub_.on_presence_relay({}); }
    server_impl(const server_impl&) = delete;
    server_impl& operator=(const server_impl&) = delete;

    // ---- lifecycle (impl/server.hpp)
    void start();
    void wait();
    void stop();
    void spawn(std::function<boost::asio::awaitable<void>()> task, std::string name);
    /// Runs a task on a shard, counted in its live tasks; exceptions are logged.
    void spawn_on(shard& sh, boost::asio::awaitable<void> task, std::string name,
                  boost::asio::cancellation_slot slot = {});
    /// Runs a connection's coroutine on its shard, counted in the shard's live tasks.
    void spawn_connection(shard& sh, boost::asio::awaitable<void> task);
    boost::asio::awaitable<void> accept_loop();
    boost::asio::awaitable<void> heartbeat_loop(shard& sh);
    /// Re-sends the un-acked publications due to this shard's sessions (on its thread).
    void resend_unacked(shard& sh, std::chrono::steady_clock::time_point now);
    boost::asio::awaitable<void> housekeeping_loop();
    boost::asio::awaitable<void> drain(shard& sh);
    void shutdown_shard(shard& sh);
    std::size_t connection_count() const noexcept;

    /// Runs `f(shard&)` on every shard's own thread in turn (their sessions and indexes
    /// belong to that thread) and returns the results in shard order.
    template <class F>
    auto visit_shards(F f)
        -> boost::asio::awaitable<std::vector<decltype(f(std::declval<shard&>()))>>;

    // ---- the handshake (detail/io/handshake.hpp)
    struct upgrade_state {
        std::optional<boost::asio::ip::tcp::socket> socket;
        /// The fast path's descriptor (handle_request_now), in no reactor yet.
        unique_fd fd;
        /// ... and its 101 answer, which the session writes with its greeting (session::start).
        std::string handshake;
        std::string leftover;
        std::string org;
        std::string remote;
        std::optional<jwt_claims> claims; ///< from the handshake's token, when it had one
        std::optional<sse_params> sse;    ///< a GET of sse_path: an SSE stream, not a WebSocket
        std::unique_ptr<session::tls_stream> tls; ///< wss://: the stream (`socket` unused)
        bool deflate = false;                     ///< permessage-deflate negotiated
        bool socketio = false; ///< Socket.IO over this WebSocket (session::speak_socketio)
        std::uint64_t socketio_upgrade = 0; ///< ... taking over this polling session
        std::size_t socketio_shard = 0;     ///< ... which lives on this shard
        std::string socketio_sid;           ///< ... under this whole sid
        const feed_path* feed = nullptr;    ///< a feed path's WebSocket (session::speak_feed)
        bool idle = false; ///< not upgraded: a keep-alive connection between requests (`socket`)
    };
    /// A Socket.IO request: at /socket.io/, or on the WebSocket path when the query has EIO
    /// (socket.io-client asks for `path + '/'`: seed 001's `path: '/ws'` is `/ws/`)
    /// (docs/protocol.md, "Coming from Socket.IO").
    bool socketio_request(std::string_view path, const query_map& query) const {
        if (cfg_.echo)
            return false;
        if (path == "/socket.io/" || path == "/socket.io")
            return true;
        if (path.ends_with('/'))
            path.remove_suffix(1);
        return path == cfg_.ws_path && query.contains("EIO");
    }
    /// The WebSocket paths: rtpush's, and the feed paths (any path for the echo).
    bool websocket_path(std::string_view path) const {
        return cfg_.echo || path == cfg_.ws_path || find_feed_path(cfg_.feed_paths, path);
    }
    void accept_connection(boost::asio::ip::tcp::socket socket, http_request request,
                           std::string buffered);
    /// A connection from the accept loop, on its shard's thread: await_request, or over TLS
    /// the coroutine (handle_connection); its failures logged, never thrown.
    void begin_connection(shard& sh, unique_fd fd,
                          const boost::asio::ip::tcp::endpoint& peer) noexcept;
    /// A plain connection (non-blocking, in no reactor): its request read at once when it is
    /// there (handle_request_now), else waited for (wait_for_request); on the shard's thread.
    void await_request(shard& sh, unique_fd fd, const boost::asio::ip::tcp::endpoint& peer);
    /// Waits in the shard's poller (idle_connection) until `fd` is readable, then
    /// await_request again; closed past the handshake timeout.
    void wait_for_request(shard& sh, unique_fd fd, const boost::asio::ip::tcp::endpoint& peer);
    /// The request is readable: a complete WebSocket upgrade is answered and becomes a
    /// session within this handler; anything else continues in handle_connection().
    void handle_request_now(shard& sh, unique_fd fd, const boost::asio::ip::tcp::endpoint& peer,
                            void* block, std::size_t n);
    /// handle_request_now, its exceptions logged (it runs from a poller event or the accept
    /// loop, neither of which may end on one).
    void request_now(shard& sh, unique_fd fd, const boost::asio::ip::tcp::endpoint& peer,
                     void* block, std::size_t n) noexcept;
    boost::asio::awaitable<void> handle_connection(shard& sh, boost::asio::ip::tcp::socket sock,
                                                   std::optional<http_request> first = {},
                                                   std::string buffered = {});
    boost::asio::awaitable<bool> http_phase(shard& sh, boost::asio::ip::tcp::socket sock,
                                            upgrade_state& up,
                                            std::optional<http_request> first = {},
                                            std::string buffered = {});
    boost::asio::awaitable<bool> tls_phase(shard& sh, boost::asio::ip::tcp::socket sock,
                                           upgrade_state& up);
    template <class Stream>
    boost::asio::awaitable<bool>
    http_exchange(shard& sh, Stream& stream, boost::beast::tcp_stream& tcp, upgrade_state& up,
                  std::optional<http_request> first, std::string buffered);
    /// A request of Socket.IO's long-polling transport (detail/io/socketio_polling.hpp): the
    /// handshake, or a GET or POST of a session, run on the session's shard. With a
    /// `park_id` (from sh.reserve_park_id()), a GET with nothing to take returns nothing: the
    /// caller parks its connection on `sh` under that id (shard::parked_poll).
    boost::asio::awaitable<std::optional<http_response>>
    socketio_poll(shard& sh, const http_request& req, const std::string& remote,
                  const std::string& remote_ip, std::uint64_t park_id = 0);
    /// A parked GET's answer (shard::answer_parked): written from a coroutine that then goes
    /// on with the connection's next request.
    void answer_parked_poll(shard& sh, std::uint64_t id, std::string body);
    boost::asio::awaitable<void> resume_connection(shard& sh, boost::asio::ip::tcp::socket sock,
                                                   http_response res);
    /// A plain keep-alive connection between requests: out of Asio's reactor into
    /// wait_for_request, so that an idle one (a polling client's POST connection, a REST client's
    /// pool) holds no coroutine, parser or buffer.
    void await_next_request(shard& sh, boost::asio::ip::tcp::socket sock);
    /// What every HTTP answer of an exchange gets on its way out (a parked poll's too): CORS
    /// for `origin`, the server's name, and keep-alive as the client asked unless stopping.
    void finish_answer(shard& sh, http_response& res, std::string_view origin,
                       bool keep_alive) const {
        add_cors(res, origin, cfg_.allowed_origins);
        res.set(boost::beast::http::field::server, cfg_.server_name);
        res.keep_alive(keep_alive && !sh.stopping);
    }
    /// Its next request is readable: on to await_request (which reads it at once).
    void idle_ready(shard& sh, idle_connection* c);
    /// The shard poller's events: a session's, or an idle connection's (tagged address).
    static void poller_events(void* target, std::uint32_t events) {
        auto const bits = reinterpret_cast<std::uintptr_t>(target);
        if (bits & 1u) {
            auto* c = reinterpret_cast<idle_connection*>(bits & ~std::uintptr_t(1));
            c->owner->on_idle_ready(c);
        } else {
            session::on_poller_events(target, events);
        }
    }
    http_response engine_io_error(const http_request& req, sio::eio_error e,
                                  std::string_view why = {});
    /// The admission of a WebSocket upgrade request (detail/admission.hpp): the refusal to
    /// send, or nothing (then `up` has the token's claims).
    std::optional<http_response> upgrade_check(shard& sh, const http_request& req, bool upgrade,
                                               const std::string& path, const query_map& query,
                                               const std::string& remote,
                                               const std::string& remote_ip, upgrade_state& up);
    /// The 101 answer to an accepted upgrade request (sets up.deflate).
    boost::beast::http::response<boost::beast::http::empty_body>
    switching_protocols(const http_request& req, upgrade_state& up);
    /// What the 101 leaves for the session: bytes past the request, the org, the remote.
    void finish_upgrade(upgrade_state& up, const query_map& query, std::string remote,
                        std::string leftover);
    /// Makes the session of an upgraded connection (in `block`, of sizeof(session), when
    /// given) and starts it.
    void start_session(shard& sh, upgrade_state& up, void* block = nullptr);
    /// Checks a GET of sse_path (scope, token, origin, limits, Last-Event-ID); fills `p` and
    /// returns nothing when the stream may start, else the refusal to send.
    std::optional<http_response> sse_check(shard& sh, const http_request& req,
                                           const query_map& query, const std::string& remote,
                                           const std::string& remote_ip, sse_params& p);
    /// Counts a stream against its organization and its user: the refusal when one is full.
    std::optional<refusal> count_stream(connection_quotas& q, sse_params& p) const;
    void start_sse(shard& sh, boost::asio::ip::tcp::socket sock, sse_params p);
    /// Verifies the token of a request (Authorization: Bearer, or ?token=): why it failed,
    /// or nothing (then `claims` is set when there was one).
    std::string request_token(const http_request& req, const query_map& query,
                              std::optional<jwt_claims>& claims) const;
    bool handshake_allowed(const std::string& ip);
    admission_rules admission() const;

    // ---- REST (impl/server_routes.hpp)
    using route_handler = boost::asio::awaitable<http_response> (server_impl::*)(route_request&);
    struct route {
        boost::beast::http::verb method; ///< GET routes answer HEAD too
        std::string_view pattern;        ///< `/api/alerts/{id}`: `{...}` is one segment
        bool admin;                      ///< needs the admin key (when one is configured)
        route_handler handler;
    };
    static const std::vector<route>& routes();
    boost::asio::awaitable<http_response> handle(const http_request& req);
    /// The same with the target already split (the connection's HTTP phase did it).
    boost::asio::awaitable<http_response> handle(const http_request& req, std::string path,
                                                 query_map query);
    bool admin_allowed(const http_request& req) const;
    boost::asio::awaitable<http_response> route_root(route_request& r);
    boost::asio::awaitable<http_response> route_dashboard(route_request& r);
    boost::asio::awaitable<http_response> route_client(route_request& r);
    boost::asio::awaitable<http_response> route_index(route_request& r);
    boost::asio::awaitable<http_response> route_metrics(route_request& r);
    boost::asio::awaitable<http_response> route_health(route_request& r);
    boost::asio::awaitable<http_response> route_stats(route_request& r);
    boost::asio::awaitable<http_response> route_connections(route_request& r);
    boost::asio::awaitable<http_response> route_connection(route_request& r);
    boost::asio::awaitable<http_response> route_retained(route_request& r);
    boost::asio::awaitable<http_response> route_history(route_request& r);
    boost::asio::awaitable<http_response> route_refresh(route_request& r);
    /// `refreshing` to the subscribers of `t`, then its data sources fetch: 202, or 404
    /// ROOM_NOT_FOUND without one (an admin refresh, seed 003's KPI computation).
    http_response refresh_now(const topic& t, unsigned version);
    boost::asio::awaitable<http_response> route_rooms(route_request& r);
    boost::asio::awaitable<http_response> route_broadcast(route_request& r);
    boost::asio::awaitable<http_response> route_broadcast_status(route_request& r);
    boost::asio::awaitable<http_response> route_alerts(route_request& r);
    boost::asio::awaitable<http_response> route_alert(route_request& r);
    boost::asio::awaitable<http_response> route_alert_step(route_request& r);
    /// Refuses a read of tenant data of `t` (the admin key, else a Bearer token that may read
    /// it, when authentication is on); nothing when the read is allowed.
    std::optional<http_response> read_refusal(route_request& r, const topic& t) const;
    // The seeds' routes (impl/server_seed_routes.hpp).
    boost::asio::awaitable<http_response> route_v1_health(route_request& r);
    boost::asio::awaitable<http_response> route_v1_info(route_request& r);
    boost::asio::awaitable<http_response> route_v1_metrics(route_request& r);
    boost::asio::awaitable<http_response> route_region_metrics(route_request& r);
    boost::asio::awaitable<http_response> route_ws_stats(route_request& r);
    boost::asio::awaitable<http_response> route_broadcast_batch(route_request& r);
    boost::asio::awaitable<http_response> route_alerts_evaluate(route_request& r);
    boost::asio::awaitable<http_response> route_kpi_compute(route_request& r);
    boost::asio::awaitable<http_response> route_presence(route_request& r);
    /// The members of a room on this node, from every io thread (presence: the REST route and
    /// the `presence` message).
    boost::asio::awaitable<boost::json::array> room_members(std::string key);
    /// A room's members on every node: with an engine that relays, each node answers a
    /// relayed query (waited for up to presence_wait); else this node's. `complete` is false
    /// when some node did not answer in time.
    struct room_presence {
        boost::json::array members;
        bool complete = true;
        std::size_t nodes = 1;
    };
    boost::asio::awaitable<room_presence> members_everywhere(std::string key);
    /// A presence query or answer another node relayed (the engine's thread).
    void on_presence_relay(relayed r);
    void async_members(std::size_t shard, std::string key,
                       std::function<void(boost::json::array)> done) override;

    // ---- publishing and alerts (impl/server_publish.hpp)
    /// Publishes a parsed broadcast (or takes it through the alert lifecycle): the answer.
    boost::asio::awaitable<http_response> publish_broadcast(broadcast_request b, unsigned version);
    alert_result trigger_alert(boost::json::object data);
    alert_result acknowledge_alert(std::string_view id, std::string_view by);
    alert_result resolve_alert(std::string_view id, std::string_view by);
    std::vector<alert> alerts(const alert_filter& f) const;
    std::optional<alert> find_alert(std::string_view id) const;
    /// Escalates the pending alerts that waited too long (shard 0's tick, once a second), on
    /// the node that leads.
    void escalate_alerts();
    bool led_ = false; // escalate_alerts' view of the lease at its last tick (shard 0 only)
    /// Under an engine shared by several nodes: the book follows every node's steps.
    void share_alert_book();
    /// server::leads(): always without an engine, else the engine's lease.
    bool leads() const {
        auto const* e = hub_.get_engine();
        return !e || e->leads();
    }
    /// The refusal of an alert step while the engine cannot publish it (alerts_mutex_ held);
    /// nullopt when it can.
    std::optional<alert_result> alert_step_refused() const;
    /// A shard's part of hub::deliver_to: the frame to each of its connections in `to`.
    static std::uint64_t deliver_to(shard& sh, const audience& to, const frame_ptr& f);
    /// Publishes an alert lifecycle step on `alerts` (alerts_mutex_ held).
    alert_result publish_alert_step(alert_result r, std::string ack_id = {});

    // ---- counters, stats and metrics (impl/server_stats.hpp)
    counter_totals totals() const;
    boost::json::object counters() const;
    boost::asio::awaitable<boost::json::object> stats_json();
    boost::json::object health_json() const;
    void engine_fields(boost::json::object& o) const; // engine status into /health, /api/stats
    /// Outbound queues summed over every session, read on each shard's thread.
    struct queue_depths {
        std::uint64_t frames = 0, bytes = 0, max_frames = 0;
    };
    boost::asio::awaitable<queue_depths> collect_queue_depths();
    boost::asio::awaitable<std::string> metrics();
    std::string metrics_text(const queue_depths& q) const;

    server_config cfg_;
    std::optional<boost::asio::ssl::context> tls_; // set when cfg_ names a certificate
    rtpush::hub hub_;
    // The durable store (server_config::data_dir) as the hub's engine; reset by wait().
    std::unique_ptr<rtpush::engine> store_;
    void open_store();
    // Publications with requires_ack; before the shards, so that it outlives every session.
    std::unique_ptr<ack_registry> acks_;
    socketio_session_store sio_sessions_{cfg_.socketio_recovery_window};
    std::vector<std::unique_ptr<shard>> shards_;
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
    connection_quotas quotas_;
    std::mutex handshake_mutex_;
    keyed_rate_limiter handshake_limiter_; // per client IP
    mutable std::mutex alerts_mutex_;
    alert_book alerts_;
    // POST /api/alerts/evaluate: the program's rules run now (set before start()).
    std::function<boost::json::object()> alert_evaluator_;
    // Presence queries this node asked the others, by id, until answered or timed out.
    struct presence_query {
        explicit presence_query(const boost::asio::any_io_executor& ex)
            : done(ex) {}
        boost::asio::steady_timer done; ///< cancelled when every node answered
        std::size_t expected = 1;
        std::size_t answered = 0;
        bool self_answered = false; ///< the cluster view may not list this node yet
        boost::json::array members;
    };
    static constexpr std::chrono::milliseconds presence_wait{1000};
    std::mutex presence_mutex_;
    std::uint64_t presence_seq_ = 0; // under presence_mutex_
    std::unordered_map<std::string, std::shared_ptr<presence_query>> presence_queries_;
};

template <class F>
auto server_impl::visit_shards(F f)
    -> boost::asio::awaitable<std::vector<decltype(f(std::declval<shard&>()))>> {
    namespace net = boost::asio;
    using result = decltype(f(std::declval<shard&>()));
    std::vector<result> out;
    out.reserve(shards_.size());
    for (auto& s : shards_) {
        shard* sp = s.get();
        auto on_shard = [sp, &f]() -> net::awaitable<result> {
            co_return f(*sp);
        };
        out.push_back(co_await net::co_spawn(sp->get_executor(), on_shard, net::use_awaitable));
    }
    co_return out;
}

} // namespace rtpush::detail

#endif
