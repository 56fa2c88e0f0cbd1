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

inline detail::redis_url redis_engine::node_url(const detail::host_port& hp, bool sentinel) const {
    detail::redis_url u = endpoints_.url; // credentials, db and TLS of the data nodes
    if (sentinel) {                       // a Sentinel: TLS when the data nodes speak it
        u = {};
        u.tls = endpoints_.url.tls;
        u.password = cfg_.sentinel_password;
    }
    u.host = hp.host;
    u.port = hp.port;
    return u;
}

inline boost::asio::awaitable<detail::redis_url> redis_engine::discover_master() {
    auto const n = endpoints_.sentinels.size();
    std::string why;
    // The one that answered last first, then the others in turn.
    for (std::size_t i = 0; i < n; ++i) {
        auto const k = (seed_first_ + i) % n;
        auto const& s = endpoints_.sentinels[k];
        std::optional<detail::host_port> master;
        try {
            redis_connection c(ex_, node_url(s, true), cfg_.connect_timeout, cfg_.command_timeout,
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
            seed_first_ = k;
            co_return node_url(*master, false);
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
            redis_connection c(ex_, node_url(s, true), cfg_.connect_timeout, cfg_.command_timeout,
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
    if (!shards_.empty() && shards_.front()->addr == to)
        return; // already there
    // Leave the old master (it may still be up, cut off from the Sentinels) and go now rather
    // than after the reconnection's backoff.
    switched_ = true;
    end_session();
    retry_->cancel();
}

inline void redis_engine::publish_to(shard& s, std::shared_ptr<publish_job> job, bool asking) {
    // No online replica to wait for: the script publishes itself (one command, not three).
    bool const wait = std::min(wait_replicas_, s.replicas_online) > 0;
    // On a Cluster the channel's slot keeps a copy of the cluster's epoch; a single Redis
    // creates its epoch with the first publication when it has none.
    std::string epoch = keys_.cluster ? hub_.epoch() : detail::random_hex(8);
    std::vector<std::string> args{"EVALSHA",
                                  script_sha_,
                                  "5",
                                  keys_.channel_epoch(job->channel),
                                  keys_.topic(job->topic_key),
                                  keys_.stream(job->topic_key),
                                  keys_.topics(job->channel),
                                  keys_.order(job->channel),
                                  std::move(epoch),
                                  job->topic_key,
                                  job->phase,
                                  job->body,
                                  std::to_string(std::max<std::size_t>(cfg_.history_size, 1)),
                                  wait ? std::string() : keys_.pubsub(job->channel),
                                  keys_.publish()};
    if (asking) // a slot being migrated: this command only, on the importing master
        s.cmd.send(detail::redis_cmd("ASKING"),
                   [](boost::system::error_code, detail::redis_reply) {});
    if (!wait) {
        s.cmd.send(std::move(args), [this, job](boost::system::error_code ec,
                                                detail::redis_reply r) {
            bool ask = false;
            if (!ec)
                if (auto* t = redirect_of(r, *job, ask)) {
                    publish_to(*t, job, ask);
                    return;
                }
            if (ec) // the connection failed (or timed out) after the command went out:
                // Redis may have run it, so not "unavailable" (that means: not published)
                finish_publish(ec == error::timeout ? ec : boost::asio::error::connection_aborted,
                               ec.message(), 0, job->done);
            else if (r.is_error() || r.type != detail::redis_reply::kind::integer)
                finish_publish(error::redis_error, r.str, 0, job->done);
            else
                finish_publish({}, {}, static_cast<std::uint64_t>(r.integer), job->done);
        });
        return;
    }
    auto p = std::make_shared<replicated>();
    p->job = job;
    s.cmd.send(std::move(args), [this, p](boost::system::error_code ec, detail::redis_reply r) {
        bool ask = false;
        if (!ec)
            if (auto* t = redirect_of(r, *p->job, ask)) {
                p->moved = true;
                publish_to(*t, p->job, ask);
                return;
            }
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
    // One WAIT for every publication taken by this master in this turn of the executor: its
    // answer covers all the writes before it on the connection.
    s.batch.push_back(std::move(p));
    if (!s.wait_posted) {
        s.wait_posted = true;
        std::weak_ptr<shard> ws;
        for (auto const& x : shards_)
            if (x.get() == &s)
                ws = x;
        boost::asio::post(ex_, [this, ws] { send_wait(ws); });
    }
}

inline void redis_engine::send_wait(std::weak_ptr<shard> ws) {
    auto sp = ws.lock();
    if (!sp) // the session ended: settle_batch answered them
        return;
    shard& s = *sp;
    s.wait_posted = false;
    auto batch = std::make_shared<std::vector<std::shared_ptr<replicated>>>(std::move(s.batch));
    s.batch.clear();
    // Every online replica, up to wait_replicas_: a master whose replicas are all gone (the
    // replica just promoted, before the old master returns as its replica) still takes
    // publications; nothing could be promoted in its place to lose them.
    unsigned const need = std::min(wait_replicas_, s.replicas_online);
    auto settle = [this, batch, need, ws](boost::system::error_code ec, detail::redis_reply r) {
        bool const held = !ec && r.type == detail::redis_reply::kind::integer &&
                          r.integer >= static_cast<long long>(need);
        auto sp = ws.lock();
        if (!held && !ec && sp) // a replica may have gone: count them again
            sp->cmd.send(detail::redis_cmd("INFO", "replication"),
                         [this, ws](boost::system::error_code e, detail::redis_reply info) {
                             if (auto s2 = ws.lock(); s2 && !e)
                                 count_replicas(*s2, info);
                         });
        std::string const why = ec ? ec.message()
                                : r.is_error()
                                    ? r.str
                                    : "WAIT: " + std::to_string(r.integer) + " of " +
                                          std::to_string(need) + " replicas acknowledged in time";
        for (auto& p : *batch) {
            if (p->moved)
                continue;
            if (p->ec) {
                finish_publish(p->ec, p->why, 0, p->job->done);
                continue;
            }
            if (!held) {
                // Redis took it but it may not survive a failover: not delivered now and not
                // answered 2xx (a later publication of its topic fills it from the stream
                // while this master lives).
                finish_publish(error::timeout, why, 0, p->job->done);
                continue;
            }
            if (sp) // when it fails, every node fills the gap from the stream
                sp->cmd.send(
                    detail::redis_cmd(keys_.publish(), keys_.pubsub(p->job->channel),
                                      p->epoch + " " + std::to_string(p->seq) + " " + p->job->body),
                    [](boost::system::error_code, detail::redis_reply) {});
            finish_publish({}, {}, p->seq, p->job->done);
        }
    };
    s.cmd.send(
        detail::redis_cmd("WAIT", std::to_string(need), std::to_string(cfg_.wait_timeout.count())),
        std::move(settle));
}

inline void redis_engine::settle_batch(shard& s) {
    auto batch = std::move(s.batch);
    s.batch.clear();
    for (auto& p : batch)
        if (!p->moved)
            finish_publish(p->ec ? p->ec : boost::asio::error::connection_aborted,
                           p->ec ? p->why : "the connection closed before WAIT", 0, p->job->done);
}

inline void redis_engine::count_replicas(shard& s, const detail::redis_reply& info) {
    auto const n = detail::online_replicas(info.str);
    if (n != s.replicas_online)
        cfg_.logger.log(log_level::info, "redis_replicas",
                        detail::log_fields("master", s.addr.to_string(), "online", n, "was",
                                           s.replicas_online));
    s.replicas_online = n;
    unsigned fewest = n;
    for (auto const& x : shards_)
        fewest = std::min(fewest, x->replicas_online);
    replicas_online_ = fewest;
}

} // namespace rtpush

#endif
