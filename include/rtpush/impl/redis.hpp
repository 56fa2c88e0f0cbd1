#ifndef RTPUSH_IMPL_REDIS_HPP
#define RTPUSH_IMPL_REDIS_HPP

#include <rtpush/hub.hpp>
#include <rtpush/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/rand.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace rtpush {

// ---- redis_connection ----

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

// ---- redis_engine ----

namespace detail {

// KEYS: epoch, topic hash, topic stream, the channel's set of topics.
// ARGV: epoch if none yet, topic key, phase field, publication, MAXLEN, pub/sub channel (empty:
// the caller publishes once replicas hold it, and gets {seq, epoch}).
// One script so that the seq, the stream entry, the latest value and the pub/sub message are
// one step: every node sees the same order, and the stream holds exactly what was published.
inline constexpr std::string_view redis_publish_script = R"lua(
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('HSET', KEYS[2], ARGV[3], seq .. ' ' .. ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'm', ARGV[4])
redis.call('SADD', KEYS[4], ARGV[2])
if ARGV[6] == '' then
  return {seq, e}
end
redis.call('PUBLISH', ARGV[6], e .. ' ' .. seq .. ' ' .. ARGV[4])
return seq
)lua";

inline std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> r(bytes);
    if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) {
        auto const t = std::chrono::steady_clock::now().time_since_epoch().count();
        for (std::size_t i = 0; i < r.size(); ++i)
            r[i] = static_cast<unsigned char>(t >> (8 * (i % 8)));
    }
    std::string s;
    char buf[3];
    for (auto c : r) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        s += buf;
    }
    return s;
}

inline std::string phase_field(std::string_view phase) {
    return phase.empty() ? "none" : std::string(phase);
}

} // namespace detail

inline redis_engine::redis_engine(rtpush::hub& h, boost::asio::any_io_executor ex,
                                  const spawn_function& spawn, redis_config cfg)
    : hub_(h)
    , cfg_(std::move(cfg))
    , ex_(std::move(ex))
    , event_signal_(std::make_unique<boost::asio::steady_timer>(ex_))
    , retry_(std::make_unique<boost::asio::steady_timer>(ex_)) {
    std::string why;
    endpoints_ = detail::resolve_redis_endpoints(cfg_.url, cfg_.sentinels, cfg_.master_name, why);
    if (!why.empty())
        throw std::invalid_argument(why);
    url_ = endpoints_.url;
    wait_replicas_ = cfg_.wait_replicas >= 0 ? static_cast<unsigned>(cfg_.wait_replicas)
                                             : (endpoints_.sentinel() ? 1u : 0u);
    if (url_.tls) // built once: the CA and client certificate are read here, errors thrown now
        tls_context_ =
            std::make_unique<boost::asio::ssl::context>(make_client_tls_context(cfg_.tls));
    if (cfg_.node_id.empty()) {
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        cfg_.node_id = std::string(host) + "-" + std::to_string(::getpid());
    }
    hub_.set_engine(this);
    spawn([this] { return run(); }, "redis");
    if (endpoints_.sentinel())
        spawn([this] { return sentinel_watch(); }, "redis-sentinel");
}

inline redis_engine::~redis_engine() {
    hub_.set_engine(nullptr);
    std::lock_guard lock(mutex_);
    for (auto& [name, c] : channels_)
        if (c.watch)
            hub_.remove_demand_handler(c.watch);
}

inline std::string redis_engine::key(std::string_view kind, std::string_view name) const {
    std::string k = cfg_.prefix;
    k += ':';
    k += kind;
    k += ':';
    k += name;
    return k;
}

inline boost::system::error_code
redis_engine::publish(const publication& p, const std::string& timestamp, publish_handler done) {
    if (!up_)
        return error::engine_unavailable;
    std::string body = detail::encode_publication(p, timestamp);
    std::string topic_key = p.topic.key();
    std::string phase = detail::phase_field(p.phase);
    std::string channel = p.topic.channel;
    // Posted in call order, so one publisher's publications of a topic keep their order.
    boost::asio::post(ex_, [this, body = std::move(body), topic_key = std::move(topic_key),
                            phase = std::move(phase), channel = std::move(channel),
                            done = std::move(done)]() mutable {
        if (!cmd_ || !up_) { // Redis went away in between: the publisher is told
            finish_publish(error::engine_unavailable, "Redis is down", 0, done);
            return;
        }
        bool const replicated = wait_replicas_ > 0;
        std::vector<std::string> args{"EVALSHA",
                                      script_sha_,
                                      "4",
                                      key("epoch", "current"),
                                      key("t", topic_key),
                                      key("s", topic_key),
                                      key("topics", channel),
                                      detail::random_hex(8),
                                      topic_key,
                                      std::move(phase),
                                      body,
                                      std::to_string(std::max<std::size_t>(cfg_.history_size, 1)),
                                      replicated ? std::string() : pubsub_channel(channel)};
        if (replicated) {
            publish_replicated(std::move(args), pubsub_channel(channel), std::move(body),
                               std::move(done));
            return;
        }
        cmd_->send(std::move(args), [this, done = std::move(done)](boost::system::error_code ec,
                                                                   detail::redis_reply r) {
            if (ec) // the connection failed (or timed out) after the command went out:
                // Redis may have run it, so not "unavailable" (that means: not published)
                finish_publish(ec == error::timeout ? ec : boost::asio::error::connection_aborted,
                               ec.message(), 0, done);
            else if (r.is_error() || r.type != detail::redis_reply::kind::integer)
                finish_publish(error::redis_error, r.str, 0, done);
            else
                finish_publish({}, {}, static_cast<std::uint64_t>(r.integer), done);
        });
    });
    return {};
}

inline void redis_engine::finish_publish(boost::system::error_code ec, const std::string& why,
                                         std::uint64_t seq, const publish_handler& done) {
    {
        std::lock_guard lock(mutex_);
        if (!ec)
            ++published_;
        else {
            ++publish_errors_;
            // Aborted: the connection was closed (shutdown, or its failure is logged as
            // redis_down); unavailable: refused before it was sent.
            bool const quiet = ec == boost::asio::error::connection_aborted ||
                               ec == boost::asio::error::operation_aborted ||
                               ec == error::engine_unavailable;
            cfg_.logger.log(quiet ? log_level::debug : log_level::warning, "redis_publish_failed",
                            {{"error", why}});
        }
    }
    if (ec == error::redis_error && detail::is_demoted_error(why))
        // A demoted master keeps its clients: find the master again (docs/operations.md,
        // "Redis Sentinel").
        boost::asio::post(ex_, [this] {
            if (cmd_)
                cmd_->close();
        });
    if (done)
        done(ec, seq);
}

inline bool redis_engine::prepare(const std::string& channel, std::function<void()> ready) {
    std::lock_guard lock(mutex_);
    auto& c = channels_[channel];
    if (c.watch == 0) // follow the channel's demand on this node: unsubscribe when it ends
        c.watch = hub_.on_demand(channel, [this, channel](std::size_t n) {
            boost::asio::post(ex_, [this, channel, n] { demand(channel, n); });
        });
    // Without Redis a node serves what it holds; it catches up when Redis is back.
    if (!up_ || c.loaded)
        return true;
    c.waiters.push_back(std::move(ready));
    if (!c.subscribed) {
        c.subscribed = true;
        boost::asio::post(ex_, [this, channel] {
            if (sub_)
                sub_->send_push(detail::redis_cmd("SUBSCRIBE", pubsub_channel(channel)));
        });
    }
    return false;
}

inline void redis_engine::demand(const std::string& channel, std::size_t n) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    if (it == channels_.end() || !sub_ || !up_)
        return;
    auto& c = it->second;
    if (n == 0 && hub_.demand(channel) == 0 && c.waiters.empty() && c.subscribed) {
        // The last client left: stop receiving the channel. The mirror stays; a later
        // subscription reloads it (catching up from the stream) before it reads it.
        c.subscribed = false;
        c.loaded = false;
        sub_->send_push(detail::redis_cmd("UNSUBSCRIBE", pubsub_channel(channel)));
    } else if (n > 0 && !c.subscribed) {
        // A subscription that got in between (prepare saw it loaded, then it was released):
        // subscribe again; the load fills what was missed, in order.
        c.subscribed = true;
        sub_->send_push(detail::redis_cmd("SUBSCRIBE", pubsub_channel(channel)));
    }
}

inline boost::json::object redis_engine::status() const {
    boost::json::object o;
    o["engine"] = "redis";
    o["redis_up"] = up_.load();
    o["node_id"] = cfg_.node_id;
    std::lock_guard lock(mutex_);
    if (endpoints_.sentinel()) {
        o["redis_topology"] = "sentinel";
        o["redis_master_name"] = endpoints_.master_name;
        // The master a Sentinel named last; empty while there is none.
        o["redis"] = master_;
        boost::json::array sentinels;
        for (auto const& s : endpoints_.sentinels)
            sentinels.push_back(boost::json::string(s.to_string()));
        o["redis_sentinels"] = std::move(sentinels);
    } else {
        o["redis_topology"] = "single";
        o["redis"] = std::string(url_.tls ? "rediss://" : "redis://") + url_.host + ":" +
                     std::to_string(url_.port) + "/" + std::to_string(url_.db);
    }
    o["redis_published"] = published_;
    o["redis_publish_errors"] = publish_errors_;
    o["redis_gaps_filled"] = gaps_filled_;
    o["redis_reconnects"] = reconnects_;
    if (endpoints_.sentinel())
        o["redis_master_switches"] = master_switches_;
    if (wait_replicas_ > 0) {
        o["redis_wait_replicas"] = wait_replicas_;
        o["redis_replicas_online"] = replicas_online_.load();
    }
    o["cluster"] = cluster_;
    return o;
}

inline void redis_engine::went_down() {
    cmd_ = nullptr;
    sub_ = nullptr;
    events_.clear();
    std::vector<std::function<void()>> waiters;
    {
        std::lock_guard lock(mutex_);
        bool const was_up = up_.exchange(false);
        if (was_up)
            ++reconnects_;
        cluster_.clear();
        if (endpoints_.sentinel())
            master_.clear(); // until a Sentinel names one again
        for (auto& [name, c] : channels_) {
            c.subscribed = false;
            c.loaded = false;
            for (auto& w : c.waiters)
                waiters.push_back(std::move(w));
            c.waiters.clear();
        }
    }
    for (auto& w : waiters) // they subscribe again and get what this node holds
        w();
}

inline boost::asio::awaitable<void> redis_engine::run() {
    detail::backoff b(cfg_.reconnect);
    bool told = false; // of a failure to connect: once, then the retries are debug lines
    for (;;) {
        std::string why;
        try {
            co_await session();
        } catch (std::exception const& e) {
            why = e.what();
        }
        // At shutdown (the task is cancelled) losing Redis is expected: not a warning.
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        bool const stopping = cs.cancelled() != boost::asio::cancellation_type::none;
        if (!why.empty()) {
            cfg_.logger.log((up_ || !told) && !stopping ? log_level::warning : log_level::debug,
                            "redis_down", detail::log_fields("error", why, "host", url_.host));
            told = true;
        }
        if (up_ || switched_)
            b.reset(); // it was up, or a Sentinel named a new master: try again soon
        switched_ = false;
        went_down();
        if (stopping)
            co_return;
        // Ended early by a switch of master (sentinel_watch), or by the server's cancellation.
        retry_->expires_after(b.next());
        co_await retry_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        auto cs2 = co_await boost::asio::this_coro::cancellation_state;
        if (cs2.cancelled() != boost::asio::cancellation_type::none)
            co_return;
    }
}

inline void redis_engine::adopt_epoch(const std::string& epoch) {
    if (epoch == hub_.epoch())
        return;
    cfg_.logger.log(log_level::info, "redis_epoch", {{"epoch", epoch}});
    // A new history: seqs restart, nothing held here belongs to it any more.
    hub_.reset(epoch);
    std::lock_guard lock(mutex_);
    for (auto& [name, c] : channels_)
        if (c.subscribed) {
            c.loaded = false;
            events_.push_back({event::kind::loaded_channel, name, {}});
        }
    event_signal_->cancel();
}

inline void redis_engine::subscribe_wanted(redis_connection& sub) {
    std::lock_guard lock(mutex_);
    for (auto& [name, c] : channels_) {
        c.loaded = false;
        c.subscribed = hub_.demand(name) > 0 || !c.waiters.empty();
        if (c.subscribed)
            sub.send_push(detail::redis_cmd("SUBSCRIBE", pubsub_channel(name)));
    }
}

inline boost::asio::awaitable<void> redis_engine::session() {
    using namespace boost::asio::experimental::awaitable_operators;
    if (endpoints_.sentinel())
        url_ = co_await discover_master();
    redis_connection cmd(ex_, url_, cfg_.connect_timeout, cfg_.command_timeout, tls_context_.get(),
                         cfg_.tls.verify);
    redis_connection sub(ex_, url_, cfg_.connect_timeout, cfg_.command_timeout, tls_context_.get(),
                         cfg_.tls.verify);
    co_await cmd.async_connect();
    co_await sub.async_connect();
    auto work = [&]() -> boost::asio::awaitable<void> {
        if (endpoints_.sentinel()) {
            // A Sentinel's answer may be stale (a failover under way): write only to a master.
            auto role_args = detail::redis_cmd("ROLE");
            auto role = co_await cmd.async_exec(std::move(role_args));
            if (!detail::is_master_role(role))
                throw boost::system::system_error(error::engine_unavailable,
                                                  url_.host + ":" + std::to_string(url_.port) +
                                                      " is not a master (yet)");
        }
        auto load_args =
            detail::redis_cmd("SCRIPT", "LOAD", std::string(detail::redis_publish_script));
        auto sha = co_await cmd.async_exec(std::move(load_args));
        if (sha.is_error())
            throw boost::system::system_error(error::redis_error, sha.str);
        script_sha_ = sha.str;
        auto const epoch_key = key("epoch", "current");
        auto setnx_args = detail::redis_cmd("SET", epoch_key, detail::random_hex(8), "NX");
        co_await cmd.async_exec(std::move(setnx_args));
        auto get_args = detail::redis_cmd("GET", epoch_key);
        auto epoch = co_await cmd.async_exec(std::move(get_args));
        if (epoch.type != detail::redis_reply::kind::string)
            throw boost::system::system_error(error::redis_error, "no epoch");
        adopt_epoch(epoch.str);
        if (wait_replicas_ > 0) { // before the first publication: how many replicas to wait for
            auto info_args = detail::redis_cmd("INFO", "replication");
            count_replicas(co_await cmd.async_exec(std::move(info_args)));
        }
        events_.clear(); // loads follow the SUBSCRIBE confirmations
        cmd_ = &cmd;
        sub_ = &sub;
        subscribe_wanted(sub);
        up_ = true;
        cfg_.logger.log(
            log_level::info, "redis_up",
            detail::log_fields("host", url_.host, "port", url_.port, "epoch", epoch.str));
        std::exception_ptr ep;
        co_await (detail::capture(push_loop(sub), ep) || detail::capture(apply_loop(cmd), ep) ||
                  detail::capture(announce_loop(cmd), ep));
        if (ep)
            std::rethrow_exception(ep);
    };
    std::exception_ptr ex;
    co_await (detail::capture(cmd.async_run(), ex) || detail::capture(sub.async_run(), ex) ||
              detail::capture(work(), ex));
    cmd_ = nullptr;
    sub_ = nullptr;
    cmd.close();
    sub.close();
    if (ex)
        std::rethrow_exception(ex);
}

inline boost::asio::awaitable<void> redis_engine::push_loop(redis_connection& sub) {
    std::string const prefix = key("c", "");
    for (;;) {
        auto r = co_await sub.async_next_push();
        if (!r.is_array() || r.elements.size() < 3)
            continue;
        auto const& kind = r.elements[0].str;
        auto const& ch = r.elements[1].str;
        if (kind == "message")
            events_.push_back({event::kind::message, {}, std::move(r.elements[2].str)});
        else if (kind == "subscribe" && ch.starts_with(prefix))
            // Subscribed: what is published from now on arrives here; load what came before.
            events_.push_back({event::kind::loaded_channel, ch.substr(prefix.size()), {}});
        else
            continue;
        event_signal_->cancel();
    }
}

inline boost::asio::awaitable<void> redis_engine::apply_loop(redis_connection& cmd) {
    for (;;) {
        while (events_.empty()) {
            event_signal_->expires_at(std::chrono::steady_clock::time_point::max());
            co_await event_signal_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            if (cs.cancelled() != boost::asio::cancellation_type::none)
                throw boost::system::system_error(boost::asio::error::operation_aborted);
        }
        auto ev = std::move(events_.front());
        events_.pop_front();
        if (ev.type == event::kind::message) {
            co_await handle_message(cmd, ev.payload);
            continue;
        }
        co_await load_channel(cmd, ev.channel);
        std::vector<std::function<void()>> waiters;
        {
            std::lock_guard lock(mutex_);
            auto& c = channels_[ev.channel];
            c.loaded = true;
            waiters.swap(c.waiters);
        }
        for (auto& w : waiters)
            w();
    }
}

inline boost::asio::awaitable<void> redis_engine::handle_message(redis_connection& cmd,
                                                                 const std::string& payload) {
    auto m = detail::parse_engine_message(payload);
    if (!m)
        co_return;
    if (m->epoch != hub_.epoch()) {
        adopt_epoch(m->epoch);
        co_return; // the channel reloads from the stream, this one included
    }
    auto sp = detail::decode_publication(m->body);
    if (!sp)
        co_return;
    std::string const topic_key = sp->pub.topic.key();
    std::uint64_t const head = hub_.head(topic_key);
    switch (detail::classify(head, m->seq)) {
    case detail::arrival::duplicate:
        co_return;
    case detail::arrival::gap:
        co_await fill(cmd, topic_key, head + 1, m->seq - 1);
        {
            std::lock_guard lock(mutex_);
            ++gaps_filled_;
        }
        break;
    case detail::arrival::next:
        break;
    }
    hub_.apply(std::move(sp->pub), m->seq, std::move(sp->timestamp));
}

inline boost::asio::awaitable<void> redis_engine::fill(redis_connection& cmd,
                                                       const std::string& topic_key,
                                                       std::uint64_t from, std::uint64_t to) {
    // The newest history_size entries of from..to, oldest first.
    // (No conditional expression with temporaries in a coroutine: GCC 12 destroys them twice.)
    std::string end = "+";
    if (to)
        end = std::to_string(to) + "-0";
    auto args = detail::redis_cmd("XREVRANGE", key("s", topic_key), std::move(end),
                                  std::to_string(from) + "-0", "COUNT",
                                  std::to_string(std::max<std::size_t>(cfg_.history_size, 1)));
    auto r = co_await cmd.async_exec(std::move(args));
    if (!r.is_array())
        co_return;
    for (auto it = r.elements.rbegin(); it != r.elements.rend(); ++it) {
        if (!it->is_array() || it->elements.size() < 2 || !it->elements[1].is_array() ||
            it->elements[1].elements.size() < 2)
            continue;
        std::uint64_t const seq = detail::stream_id_seq(it->elements[0].str);
        auto sp = detail::decode_publication(it->elements[1].elements[1].str);
        if (seq && sp)
            hub_.apply(std::move(sp->pub), seq, std::move(sp->timestamp));
    }
}

inline boost::asio::awaitable<void> redis_engine::load_topic(redis_connection& cmd,
                                                             const std::string& topic_key) {
    // The latest values first, then the stream: the stream then reaches at least as far.
    auto hget_args = detail::redis_cmd("HGETALL", key("t", topic_key));
    auto h = co_await cmd.async_exec(std::move(hget_args));
    std::uint64_t const before = hub_.head(topic_key);
    co_await fill(cmd, topic_key, before + 1, 0);
    bool const stream_empty = hub_.head(topic_key) == before;
    if (!h.is_array())
        co_return;
    for (std::size_t i = 0; i + 1 < h.elements.size(); i += 2) {
        if (h.elements[i].str == "seq")
            continue;
        std::string_view v = h.elements[i + 1].str, q;
        std::uint64_t seq = 0;
        if (!detail::split_word(v, q) || !detail::parse_seq(q, seq))
            continue;
        if (seq > hub_.head(topic_key) && !stream_empty)
            continue; // published since the stream was read: it arrives as a message
        if (auto sp = detail::decode_publication(v))
            hub_.set_latest(std::move(sp->pub), seq, std::move(sp->timestamp));
    }
}

inline boost::asio::awaitable<void> redis_engine::load_channel(redis_connection& cmd,
                                                               const std::string& channel) {
    auto smembers_args = detail::redis_cmd("SMEMBERS", key("topics", channel));
    auto topics = co_await cmd.async_exec(std::move(smembers_args));
    if (!topics.is_array())
        co_return;
    for (auto const& t : topics.elements)
        co_await load_topic(cmd, t.str);
}

inline boost::asio::awaitable<void> redis_engine::announce_loop(redis_connection& cmd) {
    boost::asio::steady_timer t(ex_);
    auto const ttl = cfg_.announce_interval * 3;
    for (;;) {
        boost::json::object info = cfg_.node_info ? cfg_.node_info() : boost::json::object{};
        info.erase("cluster");
        info["node_id"] = cfg_.node_id;
        info["announced_at"] = iso8601_now();
        auto const now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        auto const nodes = key("nodes", "all");
        if (wait_replicas_ > 0) { // replicas come (back) and go: count them again
            auto info_args = detail::redis_cmd("INFO", "replication");
            count_replicas(co_await cmd.async_exec(std::move(info_args)));
        }
        auto set_args =
            detail::redis_cmd("SET", key("node", cfg_.node_id), boost::json::serialize(info), "PX",
                              std::to_string(ttl.count()));
        co_await cmd.async_exec(std::move(set_args));
        auto zadd_args =
            detail::redis_cmd("ZADD", nodes, std::to_string(now_ms + ttl.count()), cfg_.node_id);
        co_await cmd.async_exec(std::move(zadd_args));
        auto zrem_args =
            detail::redis_cmd("ZREMRANGEBYSCORE", nodes, "-inf", std::to_string(now_ms));
        co_await cmd.async_exec(std::move(zrem_args));
        auto zrange_args = detail::redis_cmd("ZRANGE", nodes, "0", "-1");
        auto ids = co_await cmd.async_exec(std::move(zrange_args));
        boost::json::array cluster;
        if (ids.is_array() && !ids.elements.empty()) {
            std::vector<std::string> mget{"MGET"};
            for (auto const& id : ids.elements)
                mget.push_back(key("node", id.str));
            auto vals = co_await cmd.async_exec(std::move(mget));
            for (auto const& v : vals.elements) {
                if (v.type != detail::redis_reply::kind::string)
                    continue;
                boost::system::error_code ec;
                auto j = boost::json::parse(v.str, ec);
                if (!ec && j.is_object())
                    cluster.push_back(std::move(j));
            }
        }
        {
            std::lock_guard lock(mutex_);
            cluster_ = std::move(cluster);
        }
        t.expires_after(cfg_.announce_interval);
        co_await t.async_wait(boost::asio::use_awaitable);
    }
}

} // namespace rtpush

#include <rtpush/impl/redis_failover.hpp>

#endif
