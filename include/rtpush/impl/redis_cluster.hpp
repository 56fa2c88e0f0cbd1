//
// rtpush: the Redis engine on a Redis Cluster, included by impl/redis.hpp: the slot map from
// CLUSTER SLOTS, and commands that follow MOVED and ASK (docs/operations.md, "Redis Cluster").
//
#ifndef RTPUSH_IMPL_REDIS_CLUSTER_HPP
#define RTPUSH_IMPL_REDIS_CLUSTER_HPP

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>

namespace rtpush {

inline boost::asio::awaitable<detail::slot_map> redis_engine::discover_slots() {
    auto const n = endpoints_.cluster.size();
    std::string why;
    // The node that answered last first, then the others in turn.
    for (std::size_t i = 0; i < n; ++i) {
        auto const k = (seed_first_ + i) % n;
        auto const& seed = endpoints_.cluster[k];
        detail::slot_map m;
        bool got = false;
        try {
            redis_connection c(ex_, node_url(seed, false), cfg_.connect_timeout,
                               cfg_.command_timeout, tls_context_.get(), cfg_.tls.verify);
            auto args = detail::redis_cmd("CLUSTER", "SLOTS");
            auto r = co_await detail::exec_once(c, std::move(args));
            got = detail::parse_cluster_slots(r, seed, m) && m.complete();
            if (!got)
                why = seed.to_string() + ": " +
                      (r.is_error() ? r.str : "slots without a master (a failover under way?)");
        } catch (std::exception const& e) {
            why = seed.to_string() + ": " + e.what();
        }
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            throw boost::system::system_error(boost::asio::error::operation_aborted);
        if (got) {
            seed_first_ = k;
            co_return m;
        }
    }
    throw boost::system::system_error(error::engine_unavailable,
                                      "no Cluster node gives a complete slot map (" + why + ")");
}

// The master a MOVED or ASK names. MOVED: the slot is that master's from now on. nullptr for a
// master this session has no connection to (a new map): the session starts again.
inline redis_engine::shard* redis_engine::redirect_of(const detail::redis_reply& r,
                                                      publish_job& job, bool& asking) {
    if (!keys_.cluster || !r.is_error() || job.redirected)
        return nullptr;
    auto rd = detail::parse_redirect(r.str);
    if (!rd)
        return nullptr;
    {
        std::lock_guard lock(mutex_);
        ++redirects_;
    }
    for (std::size_t i = 0; i < shards_.size(); ++i)
        if (shards_[i]->addr == rd->to) {
            if (!rd->ask)
                slots_.owner[rd->slot] = static_cast<std::uint16_t>(i);
            job.redirected = true;
            asking = rd->ask;
            return shards_[i].get();
        }
    boost::asio::post(ex_, [this] { end_session(); });
    return nullptr;
}

inline boost::asio::awaitable<detail::redis_reply>
redis_engine::exec(shard* s, std::vector<std::string> args) {
    if (!s)
        throw boost::system::system_error(error::engine_unavailable, "no master serves the slot");
    std::vector<std::string> again;
    if (keys_.cluster)
        again = args;
    auto r = co_await s->cmd.async_exec(std::move(args));
    publish_job probe; // redirect_of's bookkeeping, for a read
    bool asking = false;
    if (!keys_.cluster || !r.is_error())
        co_return r;
    shard* t = redirect_of(r, probe, asking);
    if (!t) {
        if (detail::parse_redirect(r.str))
            throw boost::system::system_error(error::engine_unavailable, "Redis Cluster: " + r.str);
        co_return r;
    }
    if (asking)
        t->cmd.send(detail::redis_cmd("ASKING"),
                    [](boost::system::error_code, detail::redis_reply) {});
    r = co_await t->cmd.async_exec(std::move(again));
    co_return r;
}

} // namespace rtpush

#endif
