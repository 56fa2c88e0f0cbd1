#ifndef RTPUSH_IMPL_REDIS_HPP
#define RTPUSH_IMPL_REDIS_HPP

#include <rtpush/detail/random_hex.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/rand.h>

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <rtpush/impl/redis_connection.hpp>

namespace rtpush {

namespace detail {

// KEYS: epoch (on a Cluster the channel's copy), topic hash, topic stream, the channel's set of
// topics, the channel's order counter (history pages across topics). ARGV: epoch if none yet, topic
// key, phase field, publication, MAXLEN, pub/sub channel (empty: the caller publishes once replicas
// hold it, and gets {seq, epoch}), the publish command (PUBLISH, or SPUBLISH on a Cluster). One
// script so that the seq, the stream entry, the latest value and the pub/sub message are one step:
// every node sees the same order, and the stream holds exactly what was published.
inline constexpr std::string_view redis_publish_script = R"lua(
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local n = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[2], ARGV[3], seq .. ' ' .. ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], seq .. '-0', 'm', ARGV[4], 'n', n)
redis.call('SADD', KEYS[4], ARGV[2])
if ARGV[6] == '' then
  return {seq, e}
end
redis.call(ARGV[7], ARGV[6], e .. ' ' .. seq .. ' ' .. ARGV[4])
return seq
)lua";

// KEYS: the lease. ARGV: this node, the lease's time to live (ms). Takes the lease when
// nobody holds it, renews it when this node does; 1 when this node holds it after the call.
inline constexpr std::string_view redis_lease_script = R"lua(
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
)lua";

// KEYS: the shared alert book. ARGV: the alert's id, the seq of its step, "<seq> <payload>".
// Sets the alert unless the book holds a later step of it.
inline constexpr std::string_view redis_share_alert_script = R"lua(
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local seq = tonumber(string.match(held, '^(%d+) '))
  if seq and seq >= tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
)lua";

inline std::string phase_field(std::string_view phase) {
    return phase.empty() ? "none" : std::string(phase);
}

} // namespace detail

inline redis_engine::shard::shard(boost::asio::any_io_executor ex, detail::redis_url url,
                                  const redis_config& cfg, boost::asio::ssl::context* tls)
    : addr{url.host, url.port}
    , cmd(ex, url, cfg.connect_timeout, cfg.command_timeout, tls, cfg.tls.verify)
    , sub(ex, url, cfg.connect_timeout, cfg.command_timeout, tls, cfg.tls.verify) {}

inline redis_engine::redis_engine(rtpush::hub& h, boost::asio::any_io_executor ex,
                                  const spawn_function& spawn, redis_config cfg)
    : hub_(h)
    , cfg_(std::move(cfg))
    , ex_(std::move(ex))
    , event_signal_(std::make_unique<boost::asio::steady_timer>(ex_))
    , retry_(std::make_unique<boost::asio::steady_timer>(ex_)) {
    std::string why;
    endpoints_ = detail::resolve_redis_endpoints(cfg_.url, cfg_.sentinels, cfg_.master_name,
                                                 cfg_.cluster, why);
    if (!why.empty())
        throw std::invalid_argument(why);
    url_ = endpoints_.url;
    keys_ = {cfg_.prefix, endpoints_.is_cluster()};
    relay_channel_ = keys_.relay();
    bool const replicas = endpoints_.sentinel() || endpoints_.is_cluster();
    wait_replicas_ =
        cfg_.wait_replicas >= 0 ? static_cast<unsigned>(cfg_.wait_replicas) : (replicas ? 1u : 0u);
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

inline redis_engine::shard* redis_engine::shard_of(std::string_view channel) {
    if (shards_.empty())
        return nullptr;
    if (!keys_.cluster)
        return shards_.front().get();
    auto const o = slots_.owner[keys_.slot(channel)];
    return o < shards_.size() ? shards_[o].get() : nullptr;
}

inline redis_engine::shard* redis_engine::global_shard() {
    if (shards_.empty())
        return nullptr;
    if (!keys_.cluster)
        return shards_.front().get();
    auto const o = slots_.owner[detail::key_slot(keys_.epoch())];
    return o < shards_.size() ? shards_[o].get() : nullptr;
}

inline redis_engine::shard* redis_engine::shard_at(const detail::host_port& hp) {
    for (auto& s : shards_)
        if (s->addr == hp)
            return s.get();
    return nullptr;
}

inline void redis_engine::end_session() {
    for (auto& s : shards_) {
        s->cmd.close();
        s->sub.close();
    }
}

inline boost::system::error_code
redis_engine::publish(const publication& p, const std::string& timestamp, publish_handler done) {
    if (!up_)
        return error::engine_unavailable;
    auto job = std::make_shared<publish_job>();
    job->body = detail::encode_publication(p, timestamp);
    job->topic_key = p.topic.key();
    job->phase = detail::phase_field(p.phase);
    job->channel = p.topic.channel;
    job->done = std::move(done);
    // Posted in call order, so one publisher's publications of a topic keep their order.
    boost::asio::post(ex_, [this, job = std::move(job)]() mutable {
        shard* s = shard_of(job->channel);
        if (!s || !up_) { // Redis went away in between: the publisher is told
            finish_publish(error::engine_unavailable, "Redis is down", 0, job->done);
            return;
        }
        publish_to(*s, std::move(job), false);
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
        boost::asio::post(ex_, [this] { end_session(); });
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
            if (auto* s = shard_of(channel))
                s->sub.send_push(detail::redis_cmd(keys_.subscribe(), keys_.pubsub(channel)));
        });
    }
    return false;
}

inline void redis_engine::demand(const std::string& channel, std::size_t n) {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(channel);
    auto* s = shard_of(channel);
    if (it == channels_.end() || !s || !up_)
        return;
    auto& c = it->second;
    if (n == 0 && hub_.demand(channel) == 0 && c.waiters.empty() && c.subscribed) {
        // The last client left: stop receiving the channel. The mirror stays; a later
        // subscription reloads it (catching up from the stream) before it reads it.
        c.subscribed = false;
        c.loaded = false;
        s->sub.send_push(detail::redis_cmd(keys_.unsubscribe(), keys_.pubsub(channel)));
    } else if (n > 0 && !c.subscribed) {
        // A subscription that got in between (prepare saw it loaded, then it was released):
        // subscribe again; the load fills what was missed, in order.
        c.subscribed = true;
        s->sub.send_push(detail::redis_cmd(keys_.subscribe(), keys_.pubsub(channel)));
    }
}

inline boost::json::object redis_engine::status() const {
    boost::json::object o;
    o["engine"] = "redis";
    o["redis_up"] = up_.load();
    o["node_id"] = cfg_.node_id;
    o["leads"] = leads_.load(); // holds the lease of once-per-cluster duties (engine::leads)
    std::lock_guard lock(mutex_);
    if (endpoints_.sentinel() || endpoints_.is_cluster()) {
        boost::json::array seeds;
        for (auto const& s : endpoints_.sentinel() ? endpoints_.sentinels : endpoints_.cluster)
            seeds.push_back(boost::json::string(s.to_string()));
        // The master(s) in use; empty while there is none.
        o["redis"] = masters_;
        if (endpoints_.sentinel()) {
            o["redis_topology"] = "sentinel";
            o["redis_master_name"] = endpoints_.master_name;
            o["redis_sentinels"] = std::move(seeds);
            o["redis_master_switches"] = master_switches_;
        } else {
            o["redis_topology"] = "cluster";
            o["redis_cluster_nodes"] = std::move(seeds);
            o["redis_redirects"] = redirects_;
        }
    } else {
        o["redis_topology"] = "single";
        o["redis"] = std::string(url_.tls ? "rediss://" : "redis://") + url_.host + ":" +
                     std::to_string(url_.port) + "/" + std::to_string(url_.db);
    }
    o["redis_published"] = published_;
    o["redis_publish_errors"] = publish_errors_;
    o["redis_gaps_filled"] = gaps_filled_;
    o["redis_reconnects"] = reconnects_;
    if (wait_replicas_ > 0) {
        o["redis_wait_replicas"] = wait_replicas_;
        o["redis_replicas_online"] = replicas_online_.load();
    }
    o["cluster"] = cluster_;
    return o;
}

inline void redis_engine::went_down() {
    shards_.clear();
    events_.clear();
    std::vector<std::function<void()>> waiters;
    {
        std::lock_guard lock(mutex_);
        bool const was_up = up_.exchange(false);
        leads_ = false; // the lease runs out by itself; another node takes it
        if (was_up)
            ++reconnects_;
        cluster_.clear();
        if (endpoints_.sentinel() || endpoints_.is_cluster())
            masters_.clear(); // until they are found again
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
        // A Cluster promotes a replica by itself and says so to no one: look again soon
        // (docs/operations.md, "Redis Cluster").
        auto delay = b.next();
        if (endpoints_.is_cluster())
            delay = std::min(delay, std::chrono::milliseconds(500));
        retry_->expires_after(delay);
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

inline boost::system::error_code redis_engine::relay(std::string text) {
    if (!up_)
        return error::engine_unavailable;
    // Fire and forget, as the notices and targeted broadcasts it carries are: not kept.
    boost::asio::post(ex_, [this, text = std::move(text)]() mutable {
        if (!up_)
            return;
        global_shard()->cmd.send(detail::redis_cmd("PUBLISH", relay_channel_, std::move(text)),
                                 [](boost::system::error_code, const redis_connection::reply&) {});
    });
    return {};
}

inline void redis_engine::subscribe_wanted() {
    // Classic SUBSCRIBE even on a Cluster: a relayed message is for every node.
    global_shard()->sub.send_push(detail::redis_cmd("SUBSCRIBE", relay_channel_));
    std::lock_guard lock(mutex_);
    for (auto& [name, c] : channels_) {
        c.loaded = false;
        c.subscribed = hub_.demand(name) > 0 || !c.waiters.empty();
        if (c.subscribed)
            if (auto* s = shard_of(name))
                s->sub.send_push(detail::redis_cmd(keys_.subscribe(), keys_.pubsub(name)));
    }
}

namespace detail {
// Runs the first of `v[i..]` to end (its exception kept in `ep`), cancelling the others: the
// sessions's loops over any number of connections.
inline boost::asio::awaitable<void> first_of(std::vector<boost::asio::awaitable<void>>& v,
                                             std::size_t i, std::exception_ptr& ep) {
    using namespace boost::asio::experimental::awaitable_operators;
    if (i + 1 == v.size())
        co_await capture(std::move(v[i]), ep);
    else
        co_await (capture(std::move(v[i]), ep) || first_of(v, i + 1, ep));
}
} // namespace detail

inline boost::asio::awaitable<void> redis_engine::session() {
    // Where the masters are: the URL's, the one a Sentinel names, or a Cluster's.
    std::vector<detail::redis_url> masters;
    if (endpoints_.sentinel())
        url_ = co_await discover_master();
    if (endpoints_.is_cluster()) {
        slots_ = co_await discover_slots();
        for (auto const& m : slots_.masters)
            masters.push_back(node_url(m, false));
    } else
        masters.push_back(url_);
    for (auto const& m : masters)
        shards_.push_back(std::make_shared<shard>(ex_, m, cfg_, tls_context_.get()));
    {
        std::string text;
        for (auto const& s : shards_)
            text += (text.empty() ? "" : ",") + s->addr.to_string();
        std::lock_guard lock(mutex_);
        if (endpoints_.sentinel() || endpoints_.is_cluster())
            masters_ = text;
    }
    for (auto& s : shards_) {
        co_await s->cmd.async_connect();
        co_await s->sub.async_connect();
    }
    auto work = [&]() -> boost::asio::awaitable<void> {
        for (auto& s : shards_) {
            if (endpoints_.sentinel()) {
                // A Sentinel's answer may be stale (a failover under way): write only to a
                // master.
                auto role_args = detail::redis_cmd("ROLE");
                auto role = co_await s->cmd.async_exec(std::move(role_args));
                if (!detail::is_master_role(role))
                    throw boost::system::system_error(
                        error::engine_unavailable, s->addr.to_string() + " is not a master (yet)");
            }
            auto load_args =
                detail::redis_cmd("SCRIPT", "LOAD", std::string(detail::redis_publish_script));
            auto sha = co_await s->cmd.async_exec(std::move(load_args));
            if (sha.is_error())
                throw boost::system::system_error(error::redis_error, sha.str);
            script_sha_ = sha.str;
            if (wait_replicas_ > 0) { // before the first publication: replicas to wait for
                auto info_args = detail::redis_cmd("INFO", "replication");
                count_replicas(*s, co_await s->cmd.async_exec(std::move(info_args)));
            }
        }
        auto const epoch_key = keys_.epoch();
        auto setnx_args = detail::redis_cmd("SET", epoch_key, detail::random_hex(8), "NX");
        co_await exec(global_shard(), std::move(setnx_args));
        auto get_args = detail::redis_cmd("GET", epoch_key);
        auto epoch = co_await exec(global_shard(), std::move(get_args));
        if (epoch.type != detail::redis_reply::kind::string)
            throw boost::system::system_error(error::redis_error, "no epoch");
        adopt_epoch(epoch.str);
        events_.clear(); // loads follow the SUBSCRIBE confirmations
        if (shared_alerts_) {
            // The shared alert book first; the alerts channel's history then replays the
            // recent steps (a step the book holds already changes nothing).
            auto hgetall_args = detail::redis_cmd("HGETALL", keys_.alerts());
            auto book = co_await exec(global_shard(), std::move(hgetall_args));
            std::vector<shared_alert> alerts;
            for (std::size_t i = 1; i < book.elements.size(); i += 2) {
                std::string_view v = book.elements[i].str, word;
                std::uint64_t seq = 0;
                boost::system::error_code ec;
                if (!detail::split_word(v, word) || !detail::parse_seq(word, seq))
                    continue;
                auto j = boost::json::parse(v, ec);
                if (!ec && j.is_object())
                    alerts.push_back({seq, std::move(j.get_object())});
            }
            shared_alerts_(std::move(alerts));
        }
        subscribe_wanted();
        up_ = true;
        cfg_.logger.log(log_level::info, "redis_up",
                        detail::log_fields("host", url_.host, "port", url_.port, "masters",
                                           shards_.size(), "epoch", epoch.str));
        std::vector<boost::asio::awaitable<void>> loops;
        for (auto& s : shards_)
            loops.push_back(push_loop(s->sub));
        loops.push_back(apply_loop());
        loops.push_back(announce_loop());
        std::exception_ptr ep;
        co_await detail::first_of(loops, 0, ep);
        if (ep)
            std::rethrow_exception(ep);
    };
    std::vector<boost::asio::awaitable<void>> all;
    for (auto& s : shards_) {
        all.push_back(s->cmd.async_run());
        all.push_back(s->sub.async_run());
    }
    all.push_back(work());
    std::exception_ptr ex;
    co_await detail::first_of(all, 0, ex);
    end_session();
    for (auto& s : shards_)
        settle_batch(*s);
    if (ex)
        std::rethrow_exception(ex);
}

inline boost::asio::awaitable<void> redis_engine::push_loop(redis_connection& sub) {
    for (;;) {
        auto r = co_await sub.async_next_push();
        if (r.is_error()) // a SSUBSCRIBE to a node that no longer serves the slot
            throw boost::system::system_error(error::engine_unavailable, "pub/sub: " + r.str);
        if (!r.is_array() || r.elements.size() < 3)
            continue;
        auto const& kind = r.elements[0].str;
        if (kind == "message" && r.elements[1].str == relay_channel_) {
            hub_.relayed(r.elements[2].str); // for this node's connections, at once
            continue;
        }
        if (kind == "message" || kind == "smessage") {
            events_.push_back({event::kind::message, {}, std::move(r.elements[2].str)});
            event_signal_->cancel();
            continue;
        }
        auto channel = keys_.channel_of_pubsub(r.elements[1].str);
        if (channel.empty())
            continue;
        if (kind == "subscribe" || kind == "ssubscribe") {
            // Subscribed: what is published from now on arrives here; load what came before.
            events_.push_back({event::kind::loaded_channel, std::move(channel), {}});
            event_signal_->cancel();
        } else if (kind == "sunsubscribe") {
            // Not asked for while the channel is wanted: its slot moved to another master
            // (docs/operations.md, "Redis Cluster"). Start again from the new slot map.
            std::lock_guard lock(mutex_);
            auto it = channels_.find(channel);
            if (it != channels_.end() && it->second.subscribed)
                throw boost::system::system_error(error::engine_unavailable,
                                                  "the slot of channel " + channel + " moved");
        }
    }
}

inline boost::asio::awaitable<void> redis_engine::apply_loop() {
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
            co_await handle_message(ev.payload);
            continue;
        }
        co_await load_channel(ev.channel);
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

inline boost::asio::awaitable<void> redis_engine::handle_message(const std::string& payload) {
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
        co_await fill(topic_key, head + 1, m->seq - 1);
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

inline boost::asio::awaitable<void> redis_engine::fill(const std::string& topic_key,
                                                       std::uint64_t from, std::uint64_t to) {
    // The newest history_size entries of from..to, oldest first.
    // (No conditional expression with temporaries in a coroutine: GCC 12 destroys them twice.)
    std::string end = "+";
    if (to)
        end = std::to_string(to) + "-0";
    auto args = detail::redis_cmd("XREVRANGE", keys_.stream(topic_key), std::move(end),
                                  std::to_string(from) + "-0", "COUNT",
                                  std::to_string(std::max<std::size_t>(cfg_.history_size, 1)));
    auto r = co_await exec(shard_of(detail::redis_keys::channel_of(topic_key)), std::move(args));
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

inline void redis_engine::share_alert(const alert& a, std::uint64_t seq) {
    auto value = std::to_string(seq) + " " + boost::json::serialize(a.data);
    boost::asio::post(ex_, [this, id = a.id, seq, value = std::move(value)] {
        auto* s = global_shard();
        if (!s || !up_)
            return; // the next step writes it; a late node also replays the recent steps
        s->cmd.send(detail::redis_cmd("EVAL", std::string(detail::redis_share_alert_script), "1",
                                      keys_.alerts(), id, std::to_string(seq), value),
                    [](boost::system::error_code, detail::redis_reply) {});
    });
}

inline void redis_engine::forget_shared_alert(const std::string& id) {
    boost::asio::post(ex_, [this, id] {
        if (auto* s = global_shard(); s && up_)
            s->cmd.send(detail::redis_cmd("HDEL", keys_.alerts(), id),
                        [](boost::system::error_code, detail::redis_reply) {});
    });
}

inline bool redis_engine::async_history(const history_query& q, history_handler done) {
    if (!up_)
        return false;
    boost::asio::post(ex_, [this, q, done = std::move(done)]() mutable {
        read_history(std::move(q), std::move(done));
    });
    return true;
}

inline void redis_engine::read_history(history_query q, history_handler done) {
    // The channel's topics, then the streams of those the query covers (one shard holds a
    // channel's keys), gathered into one page (detail/stream_history.hpp).
    auto* s = shard_of(q.topic.channel);
    if (!s || !up_) {
        done(error::engine_unavailable, {});
        return;
    }
    auto smembers_args = detail::redis_cmd("SMEMBERS", keys_.topics(q.topic.channel));
    s->cmd.send(std::move(smembers_args), [this, q = std::move(q), done = std::move(done)](
                                              boost::system::error_code ec,
                                              detail::redis_reply topics) mutable {
        if (!ec && topics.is_error())
            ec = error::redis_error;
        auto* s = ec ? nullptr : shard_of(q.topic.channel);
        if (!ec && !s)
            ec = error::engine_unavailable;
        if (ec) {
            done(ec, {});
            return;
        }
        std::string const want = q.topic.key();
        std::vector<std::string> covered;
        for (auto& t : topics.elements)
            if (key_within(t.str, want))
                covered.push_back(std::move(t.str));
        if (covered.empty()) {
            done({}, {});
            return;
        }
        struct gathering {
            std::size_t left;
            std::vector<detail::stream_entry> entries;
            boost::system::error_code ec;
            history_query q;
            history_handler done;
        };
        auto g = std::make_shared<gathering>(
            gathering{covered.size(), {}, {}, std::move(q), std::move(done)});
        std::string const count = std::to_string(std::max<std::size_t>(cfg_.history_size, 1));
        for (auto& key : covered) {
            auto range_args =
                detail::redis_cmd("XREVRANGE", keys_.stream(key), "+", "-", "COUNT", count);
            s->cmd.send(std::move(range_args),
                        [this, g, key](boost::system::error_code ec, detail::redis_reply r) {
                            if (!ec && !r.is_array())
                                ec = error::redis_error;
                            if (ec)
                                g->ec = ec;
                            else
                                for (auto const& e : r.elements)
                                    if (auto entry = detail::parse_stream_entry(e, key))
                                        g->entries.push_back(std::move(*entry));
                            if (--g->left > 0)
                                return;
                            if (g->ec)
                                g->done(g->ec, {});
                            else
                                g->done({}, detail::stream_history_page(std::move(g->entries), g->q,
                                                                        hub_.epoch()));
                        });
        }
    });
}

inline boost::asio::awaitable<void> redis_engine::load_topic(const std::string& channel,
                                                             const std::string& topic_key) {
    // The latest values first, then the stream: the stream then reaches at least as far.
    auto hget_args = detail::redis_cmd("HGETALL", keys_.topic(topic_key));
    auto h = co_await exec(shard_of(channel), std::move(hget_args));
    std::uint64_t const before = hub_.head(topic_key);
    co_await fill(topic_key, before + 1, 0);
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

inline boost::asio::awaitable<void> redis_engine::load_channel(const std::string& channel) {
    auto smembers_args = detail::redis_cmd("SMEMBERS", keys_.topics(channel));
    auto topics = co_await exec(shard_of(channel), std::move(smembers_args));
    if (!topics.is_array())
        co_return;
    for (auto const& t : topics.elements)
        co_await load_topic(channel, t.str);
}

inline boost::asio::awaitable<void> redis_engine::announce_loop() {
    boost::asio::steady_timer t(ex_);
    auto const ttl = cfg_.announce_interval * 3;
    for (;;) {
        boost::json::object info = cfg_.node_info ? cfg_.node_info() : boost::json::object{};
        info.erase("cluster");
        info["node_id"] = cfg_.node_id;
        info["announced_at"] = iso8601_now();
        auto const now_ms = unix_ms_now();
        auto const nodes = keys_.nodes();
        if (wait_replicas_ > 0) // replicas come (back) and go: count them again
            for (auto& s : shards_) {
                auto info_args = detail::redis_cmd("INFO", "replication");
                count_replicas(*s, co_await s->cmd.async_exec(std::move(info_args)));
            }
        auto set_args =
            detail::redis_cmd("SET", keys_.node(cfg_.node_id), boost::json::serialize(info), "PX",
                              std::to_string(ttl.count()));
        co_await exec(global_shard(), std::move(set_args));
        auto zadd_args =
            detail::redis_cmd("ZADD", nodes, std::to_string(now_ms + ttl.count()), cfg_.node_id);
        co_await exec(global_shard(), std::move(zadd_args));
        auto zrem_args =
            detail::redis_cmd("ZREMRANGEBYSCORE", nodes, "-inf", std::to_string(now_ms));
        co_await exec(global_shard(), std::move(zrem_args));
        // One node at a time does what must happen once per cluster; when it goes, its lease
        // runs out (three intervals) and the next node to ask takes it.
        auto lease_args =
            detail::redis_cmd("EVAL", std::string(detail::redis_lease_script), "1", keys_.leader(),
                              cfg_.node_id, std::to_string(ttl.count()));
        auto lease = co_await exec(global_shard(), std::move(lease_args));
        leads_ = lease.type == detail::redis_reply::kind::integer && lease.integer == 1;
        auto zrange_args = detail::redis_cmd("ZRANGE", nodes, "0", "-1");
        auto ids = co_await exec(global_shard(), std::move(zrange_args));
        boost::json::array cluster;
        if (ids.is_array() && !ids.elements.empty()) {
            std::vector<std::string> mget{"MGET"};
            for (auto const& id : ids.elements)
                mget.push_back(keys_.node(id.str));
            auto vals = co_await exec(global_shard(), std::move(mget));
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

#include <rtpush/impl/redis_cluster.hpp>
#include <rtpush/impl/redis_failover.hpp>

#endif
