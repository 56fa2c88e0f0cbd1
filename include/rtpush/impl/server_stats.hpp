//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_IMPL_SERVER_STATS_HPP
#define RTPUSH_IMPL_SERVER_STATS_HPP

// What the server counts, and how it shows it: /api/health, /api/stats (seed 001's shape),
// /metrics (Prometheus text, detail/prometheus.hpp). Per-connection details are read on each
// shard's own thread (server_impl::visit_shards) (docs/protocol.md, "Seed parity").

#include <rtpush/detail/io/server_impl.hpp>
#include <rtpush/detail/prometheus.hpp>
#include <rtpush/version.hpp>

#include <algorithm>
#include <charconv>
#include <map>

namespace rtpush::detail {

inline boost::json::object rooms_by_type(const std::map<std::string, std::size_t>& rooms) {
    static constexpr const char* names[] = {"channel", "org", "dept", "queue"};
    std::size_t counts[4] = {};
    for (auto const& [k, n] : rooms) {
        boost::system::error_code ec;
        auto const t = parse_topic(k, ec);
        if (!ec)
            ++counts[t.scope.depth()];
    }
    boost::json::object o;
    for (int i = 0; i < 4; ++i)
        o[names[i]] = counts[i];
    return o;
}

// The refresher's per-source statistics (its /api/stats `sources`) as Prometheus families.
inline void source_metrics(prometheus_writer& w, const boost::json::object& extra) {
    auto const* sources = extra.if_contains("sources");
    if (!sources || !sources->is_array() || sources->get_array().empty())
        return;
    auto num = [](const boost::json::object& o, std::string_view k) -> std::uint64_t {
        auto const* v = o.if_contains(k);
        return v && v->is_number() ? v->to_number<std::uint64_t>() : 0;
    };
    w.family("rtpush_source_refreshes_total", "counter",
             "Fetches of each data source, by result (success, failure).");
    for (auto const& v : sources->get_array()) {
        auto const& o = v.as_object();
        std::string_view const name = o.at("name").as_string();
        w.sample("rtpush_source_refreshes_total", num(o, "successes"),
                 {{"source", name}, {"result", "success"}});
        w.sample("rtpush_source_refreshes_total", num(o, "errors"),
                 {{"source", name}, {"result", "failure"}});
    }
    w.family("rtpush_source_refresh_duration_seconds", "histogram",
             "Duration of each data source's fetches (successful or not).");
    for (auto const& v : sources->get_array()) {
        auto const& o = v.as_object();
        auto const* d = o.if_contains("refresh_duration");
        if (!d || !d->is_object())
            continue;
        auto const& h = d->get_object();
        std::vector<double> bounds;
        std::vector<std::uint64_t> counts;
        for (auto const& b : h.at("le").as_array())
            bounds.push_back(b.to_number<double>());
        for (auto const& c : h.at("counts").as_array())
            counts.push_back(c.to_number<std::uint64_t>());
        if (counts.size() != bounds.size())
            continue;
        w.histogram("rtpush_source_refresh_duration_seconds", bounds, counts,
                    h.at("sum_seconds").to_number<double>(), num(h, "count"), "source",
                    o.at("name").as_string());
    }
}

inline boost::json::object server_impl::health_json() const {
    boost::json::object o;
    o["status"] = stopping_ ? "stopping" : "ok";
    o["version"] = version_string;
    o["connections"] = connection_count();
    o["epoch"] = hub_.epoch();
    o["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
    o["timestamp"] = iso8601_now();
    engine_fields(o);
    o.erase("cluster"); // /health stays small; /api/stats has the cluster view
    return o;
}

inline void server_impl::engine_fields(boost::json::object& o) const {
    if (auto* e = hub_.get_engine())
        for (auto& [k, v] : e->status())
            o[k] = v;
    else
        o["engine"] = "memory";
}

inline counter_totals server_impl::totals() const {
    counter_totals t;
    for (auto const& s : shards_)
        t.add(s->counters());
    return t;
}

inline boost::json::object server_impl::counters() const {
    boost::json::object o;
    auto const t = totals();
    auto const hs = hub_.stats();
    o["active_connections"] = connection_count();
    o["total_messages"] = hs.total_messages;
    o["messages_sent"] = t.frames_sent;
    o["bytes_sent"] = t.bytes_sent;
    o["writes"] = t.writes;
    o["cork_delay_ms"] = static_cast<double>(t.cork_delay_us) / 1000.0;
    o["messages_per_second"] = messages_per_second_.load();
    boost::json::object by_event;
    for (auto const& [k, v] : hs.messages_by_event)
        by_event[k] = v;
    o["messages_by_event"] = std::move(by_event);
    o["average_latency_ms"] = t.latency_samples
                                  ? static_cast<double>(t.latency_us_sum) /
                                        static_cast<double>(t.latency_samples) / 1000.0
                                  : 0.0;
    o["max_latency_ms"] = static_cast<double>(t.latency_us_max) / 1000.0;
    o["error_count"] = t.errors;
    o["dropped_messages"] = t.dropped;
    o["connections_accepted"] = t.accepted;
    o["connections_rejected"] = t.rejected;
    o["messages_rate_limited"] = t.rate_limited;
    o["messages_compressed"] = t.compressed;
    o["topics"] = hs.topics;
    o["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
    o["epoch"] = hub_.epoch();
    o["threads"] = shards_.size();
    engine_fields(o);
    for (auto& [k, v] : hub_.extra_stats())
        o[k] = std::move(v);
    return o;
}

inline boost::asio::awaitable<boost::json::object> server_impl::stats_json() {
    auto o = counters();
    // Each shard's sessions and subscriptions are read on that shard's own thread.
    using counts = std::map<std::string, std::size_t>;
    auto parts = co_await visit_shards([](shard& sh) {
        counts orgs, rooms;
        for (auto const& [id, sess] : sh.sessions())
            ++orgs[sess->organization().empty() ? "unknown" : sess->organization()];
        for (auto const& [id, sse] : sh.sse_sessions())
            ++orgs[sse->organization().empty() ? "unknown" : sse->organization()];
        for (auto const& [key, subs] : sh.subscriptions().entries())
            rooms[key] += subs.size();
        return std::make_pair(std::move(orgs), std::move(rooms));
    });
    counts by_org, rooms;
    for (auto const& [orgs, part_rooms] : parts) {
        for (auto const& [k, v] : orgs)
            by_org[k] += v;
        for (auto const& [k, v] : part_rooms)
            rooms[k] += v;
    }
    boost::json::object org_counts;
    for (auto const& [k, v] : by_org)
        org_counts[k] = v;
    o["connections_by_org"] = std::move(org_counts);
    o["active_rooms"] = rooms.size();
    o["rooms_by_type"] = rooms_by_type(rooms);
    co_return o;
}

inline boost::asio::awaitable<server_impl::queue_depths> server_impl::collect_queue_depths() {
    // A session's queue belongs to its shard's thread: read it there.
    auto parts = co_await visit_shards([](shard& sh) {
        queue_depths q;
        auto add = [&q](std::uint64_t frames, std::uint64_t bytes) {
            q.frames += frames;
            q.bytes += bytes;
            q.max_frames = std::max(q.max_frames, frames);
        };
        for (auto const& [id, sess] : sh.sessions())
            add(sess->queued(), sess->queued_bytes());
        for (auto const& [id, sse] : sh.sse_sessions())
            add(sse->queued(), sse->queued_bytes());
        return q;
    });
    queue_depths total;
    for (auto const& part : parts) {
        total.frames += part.frames;
        total.bytes += part.bytes;
        total.max_frames = std::max(total.max_frames, part.max_frames);
    }
    co_return total;
}

inline boost::asio::awaitable<std::string> server_impl::metrics() {
    auto const q = co_await collect_queue_depths();
    co_return metrics_text(q);
}

// Names follow the Prometheus conventions: rtpush_ prefix, base units (seconds, bytes),
// counters end in _total.
inline std::string server_impl::metrics_text(const queue_depths& q) const {
    auto const t = totals();
    auto const sent = t.frames_sent, bytes = t.bytes_sent, writes = t.writes, dropped = t.dropped,
               errors = t.errors, lat_sum = t.latency_us_sum, lat_n = t.latency_samples,
               slow = t.slow_consumers, accepted = t.accepted, compressed = t.compressed;
    auto const& buckets = t.latency_buckets;
    auto const hs = hub_.stats();
    prometheus_writer w;
    w.family("rtpush_build_info", "gauge", "rtpush version of this server; the value is 1.");
    w.sample("rtpush_build_info", std::uint64_t{1}, {{"version", version_string}});
    w.metric("rtpush_uptime_seconds", "gauge", "Seconds since the server was created.",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());
    w.metric("rtpush_threads", "gauge", "IO threads (shards).",
             static_cast<std::uint64_t>(shards_.size()));
    w.metric("rtpush_connections", "gauge", "Open connections (WebSocket and SSE streams).",
             static_cast<std::uint64_t>(connection_count()));
    if (auto* e = hub_.get_engine(); e && e->status().contains("redis_up")) {
        auto const st = e->status();
        auto const* up = st.if_contains("redis_up");
        w.metric("rtpush_redis_up", "gauge",
                 "1 while this node is connected to Redis (engine redis), else 0.",
                 std::uint64_t{up && up->is_bool() && up->get_bool() ? 1u : 0u});
    }
    w.metric("rtpush_sse_connections", "gauge", "Open Server-Sent Events streams.",
             t.sse_connections);
    w.metric("rtpush_connections_accepted_total", "counter",
             "Connections accepted: WebSocket handshakes completed and SSE streams started.",
             accepted);
    w.family("rtpush_connections_rejected_total", "counter",
             "Connections refused at the handshake (or closed when their organization was over "
             "its limit), by reason.");
    for (std::size_t i = 0; i < reject_reason_count; ++i)
        w.sample("rtpush_connections_rejected_total", t.rejected_by[i],
                 {{"reason", to_string(static_cast<reject_reason>(i))}});
    w.metric("rtpush_messages_published_total", "counter", "Publications through the hub.",
             static_cast<std::uint64_t>(hs.total_messages));
    w.metric("rtpush_messages_sent_total", "counter",
             "Messages written to clients (each subscriber's copy counts).", sent);
    w.family("rtpush_messages_dropped_total", "counter",
             "Messages not delivered because a client's outbound queue was full, by reason.");
    w.sample("rtpush_messages_dropped_total", dropped - std::min(slow, dropped),
             {{"reason", "drop_oldest"}});
    w.sample("rtpush_messages_dropped_total", slow, {{"reason", "slow_consumer"}});
    w.metric("rtpush_messages_compressed_total", "counter",
             "Messages compressed for permessage-deflate clients (a broadcast once).", compressed);
    w.metric("rtpush_sent_bytes_total", "counter", "Bytes of WebSocket frames written to clients.",
             bytes);
    w.metric("rtpush_writes_total", "counter", "Gathered socket writes (each carries 1+ frames).",
             writes);
    w.metric("rtpush_cork_delay_seconds", "gauge",
             "How long the busiest io thread holds writes back to batch them (0 when quiet).",
             static_cast<double>(t.cork_delay_us) / 1e6);
    w.metric("rtpush_errors_total", "counter",
             "Protocol errors: error messages sent to clients and protocol violations.", errors);
    w.metric("rtpush_topics", "gauge", "Topics with a retained value or history.",
             static_cast<std::uint64_t>(hs.topics));
    w.metric("rtpush_queued_messages", "gauge", "Messages waiting in every outbound queue.",
             q.frames);
    w.metric("rtpush_queued_bytes", "gauge", "Bytes waiting in every outbound queue.", q.bytes);
    w.metric("rtpush_queued_messages_max", "gauge",
             "Messages waiting in the longest outbound queue.", q.max_frames);

    w.family("rtpush_publish_to_send_latency_seconds", "histogram",
             "From hub publish to the end of the socket write that carried the message.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        cumulative += buckets[i];
        char le[32];
        auto r = std::to_chars(le, le + sizeof le, static_cast<double>(latency_bounds_us[i]) / 1e6,
                               std::chars_format::fixed); // le="0.0001", not "1e-04"
        w.sample("rtpush_publish_to_send_latency_seconds_bucket", cumulative,
                 {{"le", std::string_view(le, static_cast<std::size_t>(r.ptr - le))}});
    }
    // The counters are read one by one while writers run: keep +Inf >= every bucket.
    std::uint64_t const count = std::max(cumulative, lat_n);
    w.sample("rtpush_publish_to_send_latency_seconds_bucket", count, {{"le", "+Inf"}});
    w.sample("rtpush_publish_to_send_latency_seconds_sum", static_cast<double>(lat_sum) / 1e6);
    w.sample("rtpush_publish_to_send_latency_seconds_count", count);

    w.family("rtpush_fanout_duration_seconds", "histogram",
             "Time one io thread takes to queue a publication on all of its subscribers "
             "(one observation per publication per thread).");
    std::array<double, fanout_bounds_ns.size()> fanout_bounds{};
    for (std::size_t i = 0; i < fanout_bounds.size(); ++i)
        fanout_bounds[i] = static_cast<double>(fanout_bounds_ns[i]) / 1e9;
    w.histogram("rtpush_fanout_duration_seconds", fanout_bounds, t.fanout_buckets,
                static_cast<double>(t.fanout_ns_sum) / 1e9, t.fanout_count);

    source_metrics(w, hub_.extra_stats());
    return w.take();
}

} // namespace rtpush::detail

#endif
