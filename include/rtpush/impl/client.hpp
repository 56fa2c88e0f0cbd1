#ifndef RTPUSH_IMPL_CLIENT_HPP
#define RTPUSH_IMPL_CLIENT_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>

namespace rtpush {

inline client::client(boost::asio::any_io_executor ex, client_config cfg)
    : ex_(ex)
    , cfg_(std::move(cfg))
    , backoff_(cfg_.backoff)
    , retry_timer_(ex)
    , watchdog_timer_(ex)
    , rx_signal_(ex)
    , space_signal_(ex) {
    if (cfg_.queue_size == 0)
        cfg_.queue_size = 1;
}

inline client::~client() = default;

inline client_event client::make_state(client_state s) const {
    client_event e;
    e.kind = client_event::state_change;
    e.state = s;
    e.url = url_;
    return e;
}

inline void client::set_deadline(std::chrono::steady_clock::time_point tp) {
    // The watchdog sleeps until the deadline it last saw and then looks again: a later one
    // needs nothing, an earlier one must wake it.
    if (tp < deadline_)
        watchdog_timer_.cancel();
    deadline_ = tp;
}

inline void client::stop() {
    stopping_ = true;
    retry_timer_.cancel();
    watchdog_timer_.cancel();
    space_signal_.cancel();
    drop_connection();
}

inline void client::drop_connection() {
    if (!conn_)
        return;
    // Closing the socket fails the pending read, as a network error would.
    boost::system::error_code ec;
    conn_->socket().close(ec);
}

inline boost::asio::awaitable<client_event> client::async_receive() {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    while (queue_.empty()) {
        if (finished_)
            throw boost::system::system_error(error::closed, "client stopped");
        rx_signal_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await rx_signal_.async_wait(as_tuple(use_awaitable));
    }
    client_event ev = std::move(queue_.front());
    queue_.pop_front();
    space_signal_.cancel();
    co_return ev;
}

inline boost::asio::awaitable<void> client::async_send(std::string text) {
    if (!is_connected())
        throw boost::system::system_error(error::closed, "not connected");
    co_await conn_->async_send(text);
}

inline boost::asio::awaitable<void> client::push(client_event ev) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    while (queue_.size() >= cfg_.queue_size && !stopping_) {
        // The application is behind: stop reading (TCP pushes back on the server) and do not
        // take our own pause for a dead server.
        set_deadline(std::chrono::steady_clock::time_point::max());
        space_signal_.expires_at(std::chrono::steady_clock::time_point::max());
        co_await space_signal_.async_wait(as_tuple(use_awaitable));
        if ((co_await boost::asio::this_coro::cancellation_state).cancelled() !=
            boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
        if (heartbeat_timeout_.count() > 0)
            set_deadline(std::chrono::steady_clock::now() + heartbeat_timeout_);
    }
    queue_.push_back(std::move(ev));
    rx_signal_.cancel();
}

inline boost::asio::awaitable<void> client::watchdog() {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    // The deadline moves forward with every frame received; this wakes at the deadline it
    // knew and looks again, so the reader never has to touch the timer.
    for (;;) {
        if (std::chrono::steady_clock::now() >= deadline_)
            co_return;
        watchdog_timer_.expires_at(deadline_);
        co_await watchdog_timer_.async_wait(as_tuple(use_awaitable));
        if (stopping_ || (co_await boost::asio::this_coro::cancellation_state).cancelled() !=
                             boost::asio::cancellation_type::none)
            co_return;
    }
}

namespace detail {
inline std::string ack_message(std::string_view id) {
    boost::json::object o;
    o["type"] = "ack";
    o["id"] = id;
    return boost::json::serialize(o);
}
inline std::string hello_message(std::string_view client_id) {
    boost::json::object o;
    o["type"] = "hello";
    o["clientId"] = client_id;
    return boost::json::serialize(o);
}
inline std::string authenticate_message(std::string_view token) {
    boost::json::object o;
    o["type"] = "authenticate";
    o["token"] = token;
    return boost::json::serialize(o);
}
} // namespace detail

inline std::string client::fresh_token() {
    std::string token;
    try {
        token = cfg_.token_provider();
    } catch (std::exception const& e) {
        throw boost::system::system_error(error::auth_failed,
                                          std::string("token provider failed: ") + e.what());
    }
    if (token.empty())
        throw boost::system::system_error(error::auth_failed, "token provider gave no token");
    return token;
}

inline bool client::remember_ack(const std::string& id) {
    if (!seen_acks_.insert(id).second)
        return false;
    seen_order_.push_back(id);
    if (seen_order_.size() > 4096) {
        seen_acks_.erase(seen_order_.front());
        seen_order_.pop_front();
    }
    return true;
}

inline boost::asio::awaitable<void> client::handle_message(std::string text) {
    client_event e;
    e.kind = client_event::message;
    e.text = std::move(text);
    boost::system::error_code ec;
    e.json = boost::json::parse(e.text, ec);
    if (ec || !e.json.is_object()) {
        if (ec)
            e.json = nullptr;
        co_await push(std::move(e));
        co_return;
    }
    auto const& o = e.json.get_object();
    auto const* t = o.if_contains("type");
    std::string const type = t && t->is_string() ? std::string(t->get_string()) : std::string();
    if (type == "initial" || type == "update") {
        bool first_seen = true;
        bool redelivered = false;
        if (auto const* a = o.if_contains("ackId"); a && a->is_string()) {
            std::string const ack_id(a->get_string());
            if (cfg_.auto_ack) {
                std::string const msg = detail::ack_message(ack_id);
                co_await conn_->async_send(msg);
                ++acks_sent_;
            }
            first_seen = remember_ack(ack_id);
            if (auto const* r = o.if_contains("redelivered"); r && r->is_bool())
                redelivered = r->get_bool();
        }
        if (redelivered) {
            // A re-send is outside the topic's stream order (it may come before a replay or
            // after newer updates): hand it on once, and leave the seq positions alone.
            if (!first_seen) {
                ++duplicates_;
                co_return;
            }
            co_await push(std::move(e));
            co_return;
        }
        auto const v = tracker_.accept(o);
        if (v == detail::stream_tracker::verdict::fresh && !first_seen) {
            ++duplicates_; // already handed on as a re-send; the position moves on
            co_return;
        }
        if (v == detail::stream_tracker::verdict::duplicate) {
            ++duplicates_;
            co_return;
        }
        if (v == detail::stream_tracker::verdict::gap) {
            // The server dropped something (e.g. its drop_oldest policy): reconnect and
            // recover from the last seq seen, rather than hand on a hole.
            ++gaps_;
            auto const* k = o.if_contains("topic");
            throw boost::system::system_error(
                error::closed,
                "gap on " +
                    (k && k->is_string() ? std::string(k->get_string()) : std::string("a topic")) +
                    ": recovering");
        }
        co_await push(std::move(e));
        co_return;
    }
    if (type == "connected") {
        std::chrono::milliseconds hb{0};
        if (auto const* h = o.if_contains("heartbeatInterval"); h && h->is_number())
            hb = std::chrono::milliseconds(static_cast<std::int64_t>(h->to_number<double>()));
        heartbeat_timeout_ = cfg_.heartbeat_timeout.count() > 0 ? cfg_.heartbeat_timeout
                             : hb.count() > 0                   ? hb * 5 / 2
                                                                : std::chrono::milliseconds(0);
        set_deadline(heartbeat_timeout_.count() > 0
                         ? std::chrono::steady_clock::now() + heartbeat_timeout_
                         : std::chrono::steady_clock::time_point::max());
        co_await push(std::move(e));
        if (!cfg_.auth_message.empty())
            co_await conn_->async_send(cfg_.auth_message);
        if (!cfg_.client_id.empty()) {
            std::string const hello = detail::hello_message(cfg_.client_id);
            co_await conn_->async_send(hello);
        }
        // Resubscribe with where we were: the server replays what we missed or says it can't.
        for (auto const& sub : cfg_.subscriptions) {
            std::string const id = "rtpush-client-" + std::to_string(next_id_++);
            std::string const msg = tracker_.subscribe_message(sub, id);
            co_await conn_->async_send(msg);
        }
        co_return;
    }
    if (type == "token_expiring" && cfg_.token_provider) {
        // Re-authenticate on this connection: it and its subscriptions stay.
        co_await push(std::move(e));
        std::string const msg = detail::authenticate_message(fresh_token());
        co_await conn_->async_send(msg);
        co_return;
    }
    if (type == "subscribed") {
        client_event s = make_state(client_state::subscribed);
        if (auto const* k = o.if_contains("topic"); k && k->is_string())
            s.topic = std::string(k->get_string());
        if (auto const* r = o.if_contains("recovered"); r && r->is_bool())
            s.recovered = r->get_bool();
        if (auto const* r = o.if_contains("reason"); r && r->is_string())
            s.reason = std::string(r->get_string());
        co_await push(std::move(e));
        co_await push(std::move(s));
        co_return;
    }
    co_await push(std::move(e));
}

inline boost::asio::awaitable<void> client::run_connection(std::string url) {
    conn_ = std::make_unique<client_connection>(ex_, cfg_.max_message_size, cfg_.tls);
    if (cfg_.token_provider) {
        auto headers = cfg_.headers;
        headers.emplace_back("Authorization", "Bearer " + fresh_token());
        co_await conn_->async_connect(url, headers);
    } else {
        co_await conn_->async_connect(url, cfg_.headers);
    }
    connected_ = true;
    backoff_.connected(std::chrono::steady_clock::now());
    // No deadline until the server says its heartbeat interval (in `connected`).
    set_deadline(std::chrono::steady_clock::time_point::max());
    co_await push(make_state(client_state::connected));
    for (;;) {
        auto ev = co_await conn_->async_read_event();
        if (heartbeat_timeout_.count() > 0)
            set_deadline(std::chrono::steady_clock::now() + heartbeat_timeout_);
        if (ev.kind == client_connection::event::close)
            throw boost::system::system_error(error::closed, "closed by the server (" +
                                                                 std::to_string(ev.code) + ")");
        if (ev.kind == client_connection::event::message)
            co_await handle_message(std::move(ev.payload));
    }
}

inline boost::asio::awaitable<void> client::guarded_connection(std::string url,
                                                               std::string& reason) {
    // `||` ends at the first branch that *succeeds*: a failed connection must return, not
    // throw, or the watchdog would keep the pair alive until its deadline.
    try {
        co_await run_connection(std::move(url));
    } catch (std::exception const& e) {
        reason = e.what();
    }
}

inline boost::asio::awaitable<void> client::async_run() {
    using namespace boost::asio::experimental::awaitable_operators;
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    struct finish {
        client& c;
        ~finish() {
            c.finished_ = true;
            c.conn_.reset();
            c.queue_.push_back(c.make_state(client_state::stopped));
            c.rx_signal_.cancel();
        }
    } guard{*this};
    std::size_t index = 0;
    auto const n = cfg_.urls.size();
    while (!stopping_ && n > 0) {
        url_ = cfg_.urls[index % n];
        co_await push(make_state(client_state::connecting));
        set_deadline(std::chrono::steady_clock::now() + cfg_.connect_timeout);
        heartbeat_timeout_ = std::chrono::milliseconds(0);
        std::string reason;
        try {
            auto r = co_await (guarded_connection(url_, reason) || watchdog());
            if (r.index() == 1)
                reason = "timed out: no data from the server";
        } catch (std::exception const& e) {
            reason = e.what();
        }
        bool const reached = connected_;
        connected_ = false;
        conn_.reset();
        if (stopping_ || (co_await boost::asio::this_coro::cancellation_state).cancelled() !=
                             boost::asio::cancellation_type::none)
            break;
        backoff_.disconnected(std::chrono::steady_clock::now());
        if (!reached)
            ++index; // that server did not answer: fail over to the next
        auto const delay = backoff_.next();
        url_ = cfg_.urls[index % n];
        client_event e = make_state(client_state::reconnecting);
        e.attempt = backoff_.attempt();
        e.delay = delay;
        e.reason = std::move(reason);
        co_await push(std::move(e));
        retry_timer_.expires_after(delay);
        co_await retry_timer_.async_wait(as_tuple(use_awaitable));
        if ((co_await boost::asio::this_coro::cancellation_state).cancelled() !=
            boost::asio::cancellation_type::none)
            break;
    }
}

} // namespace rtpush

#endif
