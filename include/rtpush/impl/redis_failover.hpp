//
// rtpush: the Redis engine beyond one server, included by impl/redis.hpp: the master found
// through Sentinels, their +switch-master followed, and publications delivered and answered
// only once replicas hold them (docs/operations.md, "Redis Sentinel").
//
#ifndef RTPUSH_IMPL_REDIS_FAILOVER_HPP
#define RTPUSH_IMPL_REDIS_FAILOVER_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace rtpush {

// A publication between its script and the WAIT that says replicas hold it.
struct redis_engine::replicated {
    std::string channel; // pub/sub
    std::string body;
    engine::publish_handler done;
    boost::system::error_code ec; // of the script
    std::string why;
    std::uint64_t seq = 0;
    std::string epoch;
};

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

inline detail::redis_url redis_engine::sentinel_url(const detail::host_port& hp) const {
    detail::redis_url u;
    u.tls = endpoints_.url.tls; // Sentinels speak TLS when the data nodes do
    u.host = hp.host;
    u.port = hp.port;
    u.password = cfg_.sentinel_password;
    return u;
}

inline boost::asio::awaitable<detail::redis_url> redis_engine::discover_master() {
    auto const n = endpoints_.sentinels.size();
    std::string why;
    // The one that answered last first, then the others in turn.
    for (std::size_t i = 0; i < n; ++i) {
        auto const k = (sentinel_first_ + i) % n;
        auto const& s = endpoints_.sentinels[k];
        std::optional<detail::host_port> master;
        try {
            redis_connection c(ex_, sentinel_url(s), cfg_.connect_timeout, cfg_.command_timeout,
                               tls_context_.get(), cfg_.tls.verify);
            auto args =
                detail::redis_cmd("SENTINEL", "get-master-addr-by-name", endpoints_.master_name);
            auto r = co_await detail::exec_once(c, std::move(args));
            master = detail::sentinel_master(r);
            if (!master)
                why = s.to_string() + ": " +
                      (r.is_error() ? r.str : "knows no master " + endpoints_.master_name);
        } catch (std::exception const& e) {
            why = s.to_string() + ": " + e.what();
        }
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
        if (master) {
            sentinel_first_ = k;
            detail::redis_url u = endpoints_.url;
            u.host = master->host;
            u.port = master->port;
            std::lock_guard lock(mutex_);
            master_ = master->to_string();
            co_return u;
        }
    }
    throw boost::system::system_error(error::engine_unavailable,
                                      "no Sentinel names a master (" + why + ")");
}

inline boost::asio::awaitable<void> redis_engine::sentinel_watch() {
    using namespace boost::asio::experimental::awaitable_operators;
    boost::asio::steady_timer t(ex_);
    auto const n = endpoints_.sentinels.size();
    for (std::size_t i = 0;; ++i) {
        auto const& s = endpoints_.sentinels[i % n];
        std::string why;
        try {
            redis_connection c(ex_, sentinel_url(s), cfg_.connect_timeout, cfg_.command_timeout,
                               tls_context_.get(), cfg_.tls.verify);
            co_await c.async_connect();
            c.send_push(detail::redis_cmd("SUBSCRIBE", "+switch-master"));
            std::exception_ptr ep;
            co_await (detail::capture(c.async_run(), ep) || detail::capture(watch_switches(c), ep));
            if (ep)
                std::rethrow_exception(ep);
        } catch (std::exception const& e) {
            why = e.what();
        }
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            co_return;
        // Meanwhile a lost master is still found by asking (discover_master).
        cfg_.logger.log(log_level::debug, "redis_sentinel_lost",
                        detail::log_fields("sentinel", s.to_string(), "error", why));
        t.expires_after(std::chrono::milliseconds(500));
        co_await t.async_wait(boost::asio::use_awaitable); // throws when cancelled
    }
}

inline boost::asio::awaitable<void> redis_engine::watch_switches(redis_connection& s) {
    for (;;) {
        auto r = co_await s.async_next_push();
        if (!r.is_array() || r.elements.size() < 3 || r.elements[0].str != "message")
            continue;
        if (auto to = detail::switch_master(r.elements[2].str, endpoints_.master_name))
            master_switched(*to);
    }
}

inline void redis_engine::master_switched(const detail::host_port& to) {
    cfg_.logger.log(
        log_level::info, "redis_switch_master",
        detail::log_fields("master_name", endpoints_.master_name, "to", to.to_string()));
    {
        std::lock_guard lock(mutex_);
        ++master_switches_;
    }
    if (cmd_ && url_.host == to.host && url_.port == to.port)
        return; // already there
    // Leave the old master (it may still be up, cut off from the Sentinels) and go now rather
    // than after the reconnection's backoff.
    switched_ = true;
    if (cmd_)
        cmd_->close();
    if (sub_)
        sub_->close();
    retry_->cancel();
}

inline void redis_engine::publish_replicated(std::vector<std::string> args, std::string channel,
                                             std::string body, publish_handler done) {
    auto p = std::make_shared<replicated>();
    p->channel = std::move(channel);
    p->body = std::move(body);
    p->done = std::move(done);
    cmd_->send(std::move(args), [p](boost::system::error_code ec, detail::redis_reply r) {
        if (ec) {
            p->ec = ec == error::timeout ? ec : boost::asio::error::connection_aborted;
            p->why = ec.message();
        } else if (!r.is_array() || r.elements.size() != 2 ||
                   r.elements[0].type != detail::redis_reply::kind::integer) {
            p->ec = error::redis_error;
            p->why = r.is_error() ? r.str : "unexpected reply to the publish script";
        } else {
            p->seq = static_cast<std::uint64_t>(r.elements[0].integer);
            p->epoch = r.elements[1].str;
        }
    });
    // One WAIT for every publication taken in this turn of the executor: its answer covers
    // all the writes before it on the connection.
    batch_.push_back(std::move(p));
    if (!wait_posted_) {
        wait_posted_ = true;
        boost::asio::post(ex_, [this] { send_wait(); });
    }
}

inline void redis_engine::send_wait() {
    wait_posted_ = false;
    auto batch = std::make_shared<std::vector<std::shared_ptr<replicated>>>(std::move(batch_));
    batch_.clear();
    // Every online replica, up to wait_replicas_: a master whose replicas are all gone (the
    // replica just promoted, before the old master returns as its replica) still takes
    // publications; nothing could be promoted in its place to lose them.
    unsigned const need = std::min(wait_replicas_, replicas_online_.load());
    auto settle = [this, batch, need](boost::system::error_code ec, detail::redis_reply r) {
        bool const held = !ec && r.type == detail::redis_reply::kind::integer &&
                          r.integer >= static_cast<long long>(need);
        if (!held && !ec && cmd_) // a replica may have gone: count them again
            cmd_->send(detail::redis_cmd("INFO", "replication"),
                       [this](boost::system::error_code e, detail::redis_reply info) {
                           if (!e)
                               count_replicas(info);
                       });
        std::string const why = ec ? ec.message()
                                : r.is_error()
                                    ? r.str
                                    : "WAIT: " + std::to_string(r.integer) + " of " +
                                          std::to_string(need) + " replicas acknowledged in time";
        for (auto& p : *batch) {
            if (p->ec) {
                finish_publish(p->ec, p->why, 0, p->done);
                continue;
            }
            if (!held) {
                // Redis took it but it may not survive a failover: not delivered now and not
                // answered 2xx (a later publication of its topic fills it from the stream
                // while this master lives).
                finish_publish(error::timeout, why, 0, p->done);
                continue;
            }
            if (cmd_) // when it fails, every node fills the gap from the stream
                cmd_->send(
                    detail::redis_cmd("PUBLISH", p->channel,
                                      p->epoch + " " + std::to_string(p->seq) + " " + p->body),
                    [](boost::system::error_code, detail::redis_reply) {});
            finish_publish({}, {}, p->seq, p->done);
        }
    };
    if (!cmd_) { // the connection is gone: every script has had its error
        settle(error::engine_unavailable, {});
        return;
    }
    cmd_->send(
        detail::redis_cmd("WAIT", std::to_string(need), std::to_string(cfg_.wait_timeout.count())),
        std::move(settle));
}

inline void redis_engine::count_replicas(const detail::redis_reply& info) {
    auto const n = detail::online_replicas(info.str);
    if (n != replicas_online_)
        cfg_.logger.log(log_level::info, "redis_replicas",
                        detail::log_fields("online", n, "was", replicas_online_.load()));
    replicas_online_ = n;
}

} // namespace rtpush

#endif
