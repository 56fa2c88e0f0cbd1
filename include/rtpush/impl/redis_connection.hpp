//
// rtpush: redis_connection's definitions, included by impl/redis.hpp: a pipelined Redis
// client on Asio coroutines (hiredis formats and parses).
//
#ifndef RTPUSH_IMPL_REDIS_CONNECTION_HPP
#define RTPUSH_IMPL_REDIS_CONNECTION_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace rtpush {

inline redis_connection::redis_connection(boost::asio::any_io_executor ex, detail::redis_url url,
                                          std::chrono::milliseconds connect_timeout,
                                          std::chrono::milliseconds command_timeout,
                                          boost::asio::ssl::context* tls, bool verify)
    : ex_(ex)
    , url_(std::move(url))
    , connect_timeout_(connect_timeout)
    , command_timeout_(command_timeout)
    , socket_(ex)
    , tls_context_(tls)
    , verify_(verify)
    , write_signal_(ex, std::chrono::steady_clock::time_point::max())
    , push_signal_(ex, std::chrono::steady_clock::time_point::max()) {}

namespace detail {
// Runs `a` and keeps its exception instead of throwing it: awaitable operator || (Boost 1.81)
// ends at the first branch that *succeeds*, so a failing branch must return to end the others.
inline boost::asio::awaitable<void> capture(boost::asio::awaitable<void> a,
                                            std::exception_ptr& ep) {
    try {
        co_await std::move(a);
    } catch (...) {
        if (!ep)
            ep = std::current_exception();
    }
}

// Reads replies straight off the stream (before async_run: the AUTH/SELECT handshake).
template <class Stream>
boost::asio::awaitable<redis_reply> read_reply(Stream& s, redis_parser& parser) {
    char buf[4096];
    for (;;) {
        if (auto r = parser.next())
            co_return std::move(*r);
        std::size_t const n =
            co_await s.async_read_some(boost::asio::buffer(buf), boost::asio::use_awaitable);
        if (!parser.feed(std::string_view(buf, n)))
            throw std::runtime_error("Redis protocol error");
    }
}
} // namespace detail

inline boost::asio::awaitable<void> redis_connection::async_connect() {
    namespace net = boost::asio;
    using namespace net::experimental::awaitable_operators;
    if (url_.tls && !tls_context_)
        throw std::invalid_argument("a rediss:// connection needs a TLS context");
    net::ip::tcp::resolver resolver(ex_);
    net::steady_timer timer(ex_);
    timer.expires_after(connect_timeout_);
    auto const port = std::to_string(url_.port);
    auto connect = [&]() -> net::awaitable<void> {
        auto eps = co_await resolver.async_resolve(url_.host, port, net::use_awaitable);
        co_await net::async_connect(socket_, eps, net::use_awaitable);
        socket_.set_option(net::ip::tcp::no_delay(true));
        if (url_.tls) {
            tls_.emplace(socket_, *tls_context_);
            prepare_client_tls(*tls_, url_.host, verify_);
            co_await tls_->async_handshake(net::ssl::stream_base::client, net::use_awaitable);
        }
    };
    std::exception_ptr ep;
    auto r = co_await (detail::capture(connect(), ep) || timer.async_wait(net::use_awaitable));
    if (ep)
        std::rethrow_exception(ep); // e.g. connection refused
    if (r.index() == 1) {
        boost::system::error_code ec;
        socket_.close(ec);
        throw boost::system::system_error(error::timeout, "connecting to Redis");
    }
    std::string hello;
    int expected = 0;
    if (!url_.password.empty()) {
        if (url_.user.empty())
            hello += detail::format_command(detail::redis_cmd("AUTH", url_.password));
        else
            hello += detail::format_command(detail::redis_cmd("AUTH", url_.user, url_.password));
        ++expected;
    }
    if (url_.db != 0) {
        hello += detail::format_command(detail::redis_cmd("SELECT", std::to_string(url_.db)));
        ++expected;
    }
    if (expected > 0) {
        co_await with_stream(
            [&](auto& s) { return net::async_write(s, net::buffer(hello), net::use_awaitable); });
        timer.expires_after(connect_timeout_);
        for (int i = 0; i < expected; ++i) {
            detail::redis_reply reply;
            auto read = [&]() -> net::awaitable<void> {
                reply =
                    co_await with_stream([&](auto& s) { return detail::read_reply(s, parser_); });
            };
            auto rr =
                co_await (detail::capture(read(), ep) || timer.async_wait(net::use_awaitable));
            if (ep)
                std::rethrow_exception(ep);
            if (rr.index() == 1)
                throw boost::system::system_error(error::timeout, "Redis AUTH/SELECT");
            if (reply.is_error())
                throw boost::system::system_error(error::redis_error, reply.str);
        }
    }
    open_ = true;
}

inline boost::asio::awaitable<void> redis_connection::async_run() {
    using namespace boost::asio::experimental::awaitable_operators;
    std::exception_ptr ex;
    co_await (detail::capture(read_loop(), ex) || detail::capture(write_loop(), ex) ||
              detail::capture(watchdog(), ex));
    close();
    if (ex)
        std::rethrow_exception(ex);
    throw boost::system::system_error(error::engine_unavailable, "Redis connection closed");
}

inline boost::asio::awaitable<void> redis_connection::read_loop() {
    char buf[16384];
    for (;;) {
        std::size_t const n = co_await with_stream([&](auto& s) {
            return s.async_read_some(boost::asio::buffer(buf), boost::asio::use_awaitable);
        });
        if (!parser_.feed(std::string_view(buf, n)))
            throw std::runtime_error("Redis protocol error");
        while (auto r = parser_.next()) {
            if (!pending_.empty()) {
                auto p = std::move(pending_.front());
                pending_.pop_front();
                p.done({}, std::move(*r));
            } else {
                pushes_.push_back(std::move(*r));
                wake(push_signal_);
            }
        }
    }
}

inline boost::asio::awaitable<void> redis_connection::write_loop() {
    std::string writing;
    for (;;) {
        if (out_.empty()) {
            write_signal_.expires_at(std::chrono::steady_clock::time_point::max());
            co_await write_signal_.async_wait(
                boost::asio::as_tuple(boost::asio::use_awaitable)); // woken by cancel
            // Woken by close() or by the cancellation of async_run's other branches (a
            // parallel group cancels once: waiting again would never end).
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            if (!open_ || cs.cancelled() != boost::asio::cancellation_type::none)
                throw boost::system::system_error(boost::asio::error::operation_aborted);
            continue;
        }
        writing.clear();
        writing.swap(out_); // everything queued goes in one write (pipelining)
        co_await with_stream([&](auto& s) {
            return boost::asio::async_write(s, boost::asio::buffer(writing),
                                            boost::asio::use_awaitable);
        });
    }
}

inline boost::asio::awaitable<void> redis_connection::watchdog() {
    boost::asio::steady_timer t(ex_);
    for (;;) {
        t.expires_after(std::chrono::milliseconds(250));
        co_await t.async_wait(boost::asio::use_awaitable);
        if (!pending_.empty() && std::chrono::steady_clock::now() > pending_.front().deadline)
            throw boost::system::system_error(error::timeout, "Redis did not answer");
    }
}

inline void redis_connection::send(std::vector<std::string> args,
                                   std::function<void(boost::system::error_code, reply)> done) {
    if (!open_) {
        done(error::engine_unavailable, {});
        return;
    }
    out_ += detail::format_command(args);
    pending_.push_back({std::move(done), std::chrono::steady_clock::now() + command_timeout_});
    wake(write_signal_);
}

inline void redis_connection::send_push(std::vector<std::string> args) {
    if (!open_)
        return;
    out_ += detail::format_command(args);
    wake(write_signal_);
}

inline boost::asio::awaitable<redis_connection::reply>
redis_connection::async_exec(std::vector<std::string> args) {
    struct state {
        boost::asio::steady_timer timer;
        bool done = false;
        boost::system::error_code ec;
        reply r;
    };
    auto st = std::make_shared<state>(
        state{boost::asio::steady_timer(ex_, std::chrono::steady_clock::time_point::max())});
    send(std::move(args), [st](boost::system::error_code ec, reply r) {
        st->done = true;
        st->ec = ec;
        st->r = std::move(r);
        st->timer.cancel();
    });
    if (!st->done)
        co_await st->timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    if (!st->done) // our own cancellation
        throw boost::system::system_error(boost::asio::error::operation_aborted);
    if (st->ec)
        throw boost::system::system_error(st->ec);
    co_return std::move(st->r);
}

inline boost::asio::awaitable<redis_connection::reply> redis_connection::async_next_push() {
    while (pushes_.empty()) {
        if (!open_)
            throw boost::system::system_error(error::engine_unavailable);
        push_signal_.expires_at(std::chrono::steady_clock::time_point::max());
        auto [ec] =
            co_await push_signal_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        (void)ec;
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
    }
    auto r = std::move(pushes_.front());
    pushes_.pop_front();
    co_return r;
}

inline void redis_connection::fail_all(boost::system::error_code ec) {
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& p : pending)
        p.done(ec, {});
}

inline void redis_connection::close() {
    boost::system::error_code ec;
    open_ = false;
    socket_.close(ec);
    wake(write_signal_);
    wake(push_signal_);
    fail_all(boost::asio::error::operation_aborted);
}

namespace detail {
// One command on a connection of its own (a question to a Sentinel): connect, ask, close.
inline boost::asio::awaitable<redis_reply> exec_once(redis_connection& c,
                                                     std::vector<std::string> args) {
    using namespace boost::asio::experimental::awaitable_operators;
    co_await c.async_connect();
    redis_reply r;
    bool answered = false;
    std::exception_ptr ep;
    auto ask = [&]() -> boost::asio::awaitable<void> {
        r = co_await c.async_exec(std::move(args));
        answered = true;
    };
    co_await (capture(c.async_run(), ep) || capture(ask(), ep));
    c.close();
    if (!answered) // else ep is async_run's end, cancelled by the answer
        std::rethrow_exception(ep ? ep
                                  : std::make_exception_ptr(boost::system::system_error(
                                        error::engine_unavailable, "no answer")));
    co_return r;
}
} // namespace detail

} // namespace rtpush

#endif
