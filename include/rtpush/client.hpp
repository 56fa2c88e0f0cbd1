//
// rtpush: a client that stays connected: reconnection with backoff, failover, recovery.
//
#ifndef RTPUSH_CLIENT_HPP
#define RTPUSH_CLIENT_HPP

#include <rtpush/client_connection.hpp>
#include <rtpush/detail/backoff.hpp>
#include <rtpush/detail/recovery.hpp>
#include <rtpush/topic.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace rtpush {

/// What a client is told to do.
struct client_config {
    std::vector<std::string> urls; ///< ws:// or wss:// URLs; a failed attempt moves on to the next
    tls_client_options tls;        ///< how wss:// servers are checked
    std::vector<std::pair<std::string, std::string>> headers; ///< added to every handshake
    std::vector<topic> subscriptions; ///< subscribed (and recovered) on every connection
    std::string auth_message;         ///< JSON text sent after `connected`, before subscribing
    /// Fresh tokens for a server that requires them (docs/security.md, "A token's lifetime on
    /// an open connection"): called before every connection attempt, its token sent as
    /// `Authorization: Bearer` (after `headers`), and on the server's `token_expiring`, its
    /// token sent as `authenticate` on the open connection, which then outlives the old token
    /// with its subscriptions. Called on the client's executor (a slow provider holds the client
    /// up meanwhile); an exception or an empty token ends the attempt or the connection like a
    /// network failure: backoff, then the next attempt asks again.
    std::function<std::string()> token_provider;
    /// Sent in `hello` on every connection (after auth_message): the server then re-sends
    /// what this client has not acked, across reconnects (docs/protocol.md, "Acknowledged
    /// delivery"). Empty: an authenticated client is known by its user id, others not at all.
    std::string client_id;
    /// Answer every `update` that carries an `ackId` with `{"type":"ack","id":...}` (before it
    /// is handed to async_receive, and also when it is dropped as a duplicate).
    bool auto_ack = true;
    backoff_config backoff;
    /// A server silent this long is taken for dead; 0 = 2.5 x the `heartbeatInterval` of its
    /// `connected` message (none when it sent no `connected`: not an rtpush server).
    std::chrono::milliseconds heartbeat_timeout{0};
    std::chrono::milliseconds connect_timeout{10000}; ///< TCP connect + handshake
    std::size_t queue_size = 1024; ///< events waiting for async_receive; the reader waits beyond
    std::size_t max_message_size = 64 << 20;
};

enum class client_state {
    connecting,   ///< an attempt to `url` starts
    connected,    ///< the WebSocket handshake with `url` succeeded
    subscribed,   ///< a `subscribed` answer: `topic`, `recovered` (when recovery was asked)
    reconnecting, ///< the connection is gone (`reason`); next attempt `attempt` after `delay`
    stopped,      ///< async_run is over
};

inline std::string_view to_string(client_state s) noexcept {
    switch (s) {
    case client_state::connecting:
        return "connecting";
    case client_state::connected:
        return "connected";
    case client_state::subscribed:
        return "subscribed";
    case client_state::reconnecting:
        return "reconnecting";
    case client_state::stopped:
        return "stopped";
    }
    return "stopped";
}

/// One thing async_receive() hands out: a message from the server, or a state change.
struct client_event {
    enum kind_t { message, state_change } kind = message;
    std::string text;        ///< message: the text as received
    boost::json::value json; ///< message: parsed, or null when the text is not JSON
    client_state state = client_state::connecting;
    std::string url;
    std::string topic;
    std::optional<bool> recovered;
    unsigned attempt = 0;
    std::chrono::milliseconds delay{0};
    std::string reason;
};

/// Connects to the first URL that answers, subscribes, and keeps going: on any disconnect
/// (error, close, or a server silent past the heartbeat timeout) it waits with backoff,
/// reconnects, resubscribes with the last epoch and offsets it saw, and so recovers what it
/// missed, or is told (`recovered: false`) and receives a fresh snapshot. A replay that
/// overlaps what already arrived is deduplicated by (topic, seq): the application never sees
/// an `initial`/`update` twice.
///
/// Thread safety: not thread-safe; use async_run, async_receive, async_send, stop and
/// drop_connection from the executor given to the constructor (one thread or strand). The
/// client must outlive the completion of async_run.
class client {
public:
    client(boost::asio::any_io_executor ex, client_config cfg);
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client();

    /// Runs until stop() or cancellation (terminal, through the completion's cancellation
    /// slot), then queues a `stopped` state and returns. Reconnects forever otherwise.
    boost::asio::awaitable<void> async_run();

    /// The next event. Throws system_error(error::closed) once async_run has ended and every
    /// event was taken. One call at a time.
    boost::asio::awaitable<client_event> async_receive();

    /// Sends one text message on the current connection; throws system_error(error::closed)
    /// when there is none (it is not kept for the next one).
    boost::asio::awaitable<void> async_send(std::string text);

    /// Ends async_run. Idempotent.
    void stop();

    /// Drops the current connection as a network failure would (the client reconnects and
    /// recovers). For tests and tools.
    void drop_connection();

    bool is_connected() const noexcept { return conn_ && conn_->is_open() && connected_; }
    /// `initial`/`update` messages dropped as already seen.
    std::uint64_t duplicates() const noexcept { return duplicates_; }
    /// Gaps seen in a topic's seqs (each one ends the connection so that recovery fills it).
    std::uint64_t gaps() const noexcept { return gaps_; }
    /// Acks sent for messages that required one.
    std::uint64_t acks_sent() const noexcept { return acks_sent_; }
    const detail::stream_tracker& tracker() const noexcept { return tracker_; }

private:
    boost::asio::awaitable<void> run_connection(std::string url);
    boost::asio::awaitable<void> guarded_connection(std::string url, std::string& reason);
    boost::asio::awaitable<void> watchdog();
    boost::asio::awaitable<void> handle_message(std::string text);
    boost::asio::awaitable<void> push(client_event ev);
    client_event make_state(client_state s) const;
    std::string fresh_token(); // from token_provider; throws when it gives none
    void set_deadline(std::chrono::steady_clock::time_point tp);

    boost::asio::any_io_executor ex_;
    client_config cfg_;
    detail::backoff backoff_;
    detail::stream_tracker tracker_;
    std::unique_ptr<client_connection> conn_;
    boost::asio::steady_timer retry_timer_;
    boost::asio::steady_timer watchdog_timer_;
    boost::asio::steady_timer rx_signal_;    // wakes async_receive
    boost::asio::steady_timer space_signal_; // wakes the reader when the queue has room
    std::deque<client_event> queue_;
    std::chrono::steady_clock::time_point deadline_;
    std::chrono::milliseconds heartbeat_timeout_{0};
    std::string url_;
    std::uint64_t duplicates_ = 0;
    std::uint64_t gaps_ = 0;
    std::uint64_t acks_sent_ = 0;
    std::uint64_t next_id_ = 1;
    // ackIds already handed on, so that a re-send (`redelivered`) or a replay of an acked
    // message is not delivered twice; bounded, oldest forgotten first.
    std::unordered_set<std::string> seen_acks_;
    std::deque<std::string> seen_order_;
    bool remember_ack(const std::string& id); // false when already seen
    bool connected_ = false;
    bool stopping_ = false;
    bool finished_ = false;
};

} // namespace rtpush

#include <rtpush/impl/client.hpp>

#endif
