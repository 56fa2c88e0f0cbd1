//
// rtpush: what one io thread counts (written by its thread, read by anyone) and the sums
// /api/stats and /metrics show. Free of I/O.
//
#ifndef RTPUSH_DETAIL_COUNTERS_HPP
#define RTPUSH_DETAIL_COUNTERS_HPP

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rtpush::detail {

/// Why a connection was refused (or closed right after it became known to be over a limit).
enum class reject_reason {
    connection_limit,      ///< max_connections
    org_connection_limit,  ///< max_connections_per_org
    handshake_rate_limit,  ///< max_handshakes_per_ip
    auth_failed,           ///< a token that does not verify, or none where one is required
    unauthorized,          ///< a valid token that may not read what was asked (SSE)
    origin_not_allowed,    ///< an Origin outside allowed_origins
    shutting_down,         ///< the server is stopping
    user_connection_limit, ///< max_connections_per_user
    room_full,             ///< a stream's room at room_max_size (a WebSocket is told, not refused)
};
inline constexpr std::size_t reject_reason_count = 9;

/// The `reason` label of rtpush_connections_rejected_total.
inline constexpr std::string_view to_string(reject_reason r) noexcept {
    constexpr std::string_view names[reject_reason_count] = {
        "connection_limit", "org_connection_limit",  "handshake_rate_limit",
        "auth_failed",      "unauthorized",          "origin_not_allowed",
        "shutting_down",    "user_connection_limit", "room_full"};
    return names[static_cast<std::size_t>(r)];
}

/// Upper bounds, in microseconds, of the buckets of the publish-to-send latency histogram that
/// /metrics exports (Prometheus buckets: 100 us .. 5 s; above the last is only in the count).
inline constexpr std::array<std::uint64_t, 15> latency_bounds_us{
    100,   250,    500,    1000,   2500,    5000,    10000,  25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};

/// Upper bounds, in nanoseconds, of the buckets of the fan-out duration histogram: the time
/// one io thread takes to queue a publication on all of its subscribers (1 us .. 100 ms).
inline constexpr std::array<std::uint64_t, 14> fanout_bounds_ns{
    1000,   2500,   5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 10000000, 50000000, 100000000};

/// Counters of one shard, written by its thread, read by anyone.
struct shard_counters {
    std::atomic<std::uint64_t> frames_sent{0};
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> latency_us_sum{0};
    std::atomic<std::uint64_t> latency_samples{0};
    std::atomic<std::uint64_t> latency_us_max{0};
    /// Timed frames written, per bucket of latency_bounds_us (not cumulative).
    std::array<std::atomic<std::uint64_t>, latency_bounds_us.size()> latency_buckets{};
    /// Frames dropped because the disconnect policy closed a slow consumer (part of dropped).
    std::atomic<std::uint64_t> slow_consumers{0};
    /// Deliveries (one per publication per shard), per bucket of fanout_bounds_ns.
    std::array<std::atomic<std::uint64_t>, fanout_bounds_ns.size()> fanout_buckets{};
    std::atomic<std::uint64_t> fanout_count{0};
    std::atomic<std::uint64_t> fanout_ns_sum{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> rejected{0}; ///< every reason
    std::array<std::atomic<std::uint64_t>, reject_reason_count> rejected_by{};
    std::atomic<std::uint64_t> rate_limited{0};
    std::atomic<std::size_t> connections{0};     ///< WebSocket and SSE
    std::atomic<std::size_t> sse_connections{0}; ///< SSE only

    void count_rejected(reject_reason r) noexcept {
        rejected.fetch_add(1, std::memory_order_relaxed);
        rejected_by[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
    }
    /// permessage-deflate: messages compressed (a broadcast once, not once per client).
    std::atomic<std::uint64_t> compressed{0};
    /// Write states of quiet sessions freed by the shard's tick (after a heartbeat, nearly
    /// every session's): the server trims the heap after a wave of them.
    std::atomic<std::uint64_t> idle_released{0};
    /// How long the shard holds writes back now (docs/architecture.md, "Corking"), in µs.
    std::atomic<std::uint64_t> cork_delay_us{0};
};

/// shard_counters read and summed over shards (for /api/stats and /metrics).
struct counter_totals {
    std::uint64_t frames_sent = 0, bytes_sent = 0, writes = 0, dropped = 0, errors = 0;
    std::uint64_t latency_us_sum = 0, latency_samples = 0, latency_us_max = 0;
    std::array<std::uint64_t, latency_bounds_us.size()> latency_buckets{};
    std::uint64_t slow_consumers = 0, accepted = 0, rejected = 0, rate_limited = 0;
    std::array<std::uint64_t, reject_reason_count> rejected_by{};
    std::uint64_t sse_connections = 0;
    std::array<std::uint64_t, fanout_bounds_ns.size()> fanout_buckets{};
    std::uint64_t fanout_count = 0, fanout_ns_sum = 0;
    std::uint64_t compressed = 0;
    std::uint64_t cork_delay_us = 0; ///< the longest of the shards'

    void add(const shard_counters& c) noexcept {
        auto get = [](auto const& a) {
            return static_cast<std::uint64_t>(a.load(std::memory_order_relaxed));
        };
        frames_sent += get(c.frames_sent);
        bytes_sent += get(c.bytes_sent);
        writes += get(c.writes);
        dropped += get(c.dropped);
        errors += get(c.errors);
        latency_us_sum += get(c.latency_us_sum);
        latency_samples += get(c.latency_samples);
        latency_us_max = std::max(latency_us_max, get(c.latency_us_max));
        for (std::size_t i = 0; i < latency_buckets.size(); ++i)
            latency_buckets[i] += get(c.latency_buckets[i]);
        slow_consumers += get(c.slow_consumers);
        accepted += get(c.accepted);
        rejected += get(c.rejected);
        for (std::size_t i = 0; i < rejected_by.size(); ++i)
            rejected_by[i] += get(c.rejected_by[i]);
        sse_connections += get(c.sse_connections);
        for (std::size_t i = 0; i < fanout_buckets.size(); ++i)
            fanout_buckets[i] += get(c.fanout_buckets[i]);
        fanout_count += get(c.fanout_count);
        fanout_ns_sum += get(c.fanout_ns_sum);
        rate_limited += get(c.rate_limited);
        compressed += get(c.compressed);
        cork_delay_us = std::max(cork_delay_us, get(c.cork_delay_us));
    }
};

} // namespace rtpush::detail

#endif
