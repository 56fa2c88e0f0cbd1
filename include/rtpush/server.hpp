//
// rtpush: the server: one port for HTTP (REST) and WebSocket, one io thread per core.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_SERVER_HPP
#define RTPUSH_SERVER_HPP

#include <rtpush/alerts.hpp>
#include <rtpush/config.hpp>
#include <rtpush/hub.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {
class server_impl; // detail/io/server_impl.hpp: the server's state and its private work
} // namespace rtpush::detail

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

    rtpush::hub& hub() noexcept;
    const server_config& config() const noexcept;

    /// Binds and listens (throws boost::system::system_error on failure, e.g. port in use),
    /// then starts the io threads. Returns at once.
    void start();
    /// Blocks until the server has stopped and every task has ended.
    void wait();
    /// start() then wait().
    void run();
    /// Begins the graceful shutdown. Thread-safe, idempotent.
    void stop();

    /// The bound port (after start()).
    std::uint16_t port() const noexcept;

    /// The executor of the first io thread, where spawn() runs tasks.
    boost::asio::any_io_executor get_executor() noexcept;

    /// Runs a background task (e.g. a data source's refresh loop) until it returns or the
    /// server stops; stop() cancels it (terminal cancellation) and waits for it. Exceptions
    /// other than cancellation are logged. Thread-safe.
    void spawn(std::function<boost::asio::awaitable<void>()> task, std::string name = "task");

    /// Server statistics in the shape of seed 001's /api/stats (computed on the caller's
    /// thread from counters; connection and room details come from handle()) (docs/protocol.md,
    /// "Seed parity").
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
    /// Whether this node does what must happen once per cluster: alert escalation, and a
    /// program's alert rules (rtd's). Always alone; under an engine shared by several nodes
    /// (Redis), true on the one node that holds the lease (docs/operations.md, "Several nodes
    /// (Redis)").
    bool leads() const;
    /// Installs what `POST /api/alerts/evaluate` runs: the program's alert rules, evaluated
    /// now, returning `{"raised": [alert...], "resolved": [alert...]}`. Without one the route
    /// answers 404. Call before start(); the function is called on an io thread, possibly
    /// while the program's own schedule evaluates too, so it must be thread-safe.
    void on_alert_evaluation(std::function<boost::json::object()> evaluate);

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
    std::unique_ptr<detail::server_impl> impl_;
};

} // namespace rtpush

#include <rtpush/impl/server.hpp>

#endif
