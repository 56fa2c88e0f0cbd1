//
// rtpush: rate limits as plain state machines (token buckets), free of I/O and clocks: the
// caller passes the time, so tests drive them without sleeping.
//
#ifndef RTPUSH_DETAIL_RATE_LIMIT_HPP
#define RTPUSH_DETAIL_RATE_LIMIT_HPP

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace rtpush::detail {

/// A token bucket: `rate` tokens per second, at most `burst` banked. A rate of 0 means
/// unlimited. Starts full.
class token_bucket {
public:
    using clock = std::chrono::steady_clock;

    token_bucket(double rate, double burst, clock::time_point now)
        : rate_(rate)
        , burst_(std::max(burst, 1.0))
        , tokens_(burst_)
        , last_(now) {}

    /// Takes one token if there is one.
    bool try_take(clock::time_point now) {
        if (rate_ <= 0)
            return true;
        refill(now);
        if (tokens_ < 1.0)
            return false;
        tokens_ -= 1.0;
        return true;
    }

    /// True when the bucket is full again: it then holds no information and can be dropped.
    bool idle(clock::time_point now) {
        refill(now);
        return tokens_ >= burst_;
    }

private:
    void refill(clock::time_point now) {
        if (now <= last_)
            return;
        double const secs = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + secs * rate_);
        last_ = now;
    }

    double rate_;
    double burst_;
    double tokens_;
    clock::time_point last_;
};

/// A client's inbound messages: up to `rate` per second (bursts of `rate`); beyond that each
/// message is refused, and a client that keeps sending at `abuse_factor` times the rate (its
/// refused messages within one second reach (abuse_factor - 1) * rate) is an abuser, to be
/// disconnected rather than answered forever.
class message_rate {
public:
    using clock = std::chrono::steady_clock;
    enum class verdict { ok, limited, abuse };

    /// The configured limits, the same for every connection: passed in, not kept by each.
    struct limits {
        limits(double rate, double abuse_factor)
            : rate(static_cast<float>(rate))
            // The refusals within a second that make an abuser, worked out once in double
            // (the rule is refused >= (abuse_factor - 1) * rate).
            , abuse_after(static_cast<std::uint32_t>(
                  std::clamp(std::ceil((abuse_factor - 1.0) * rate), 0.0, 4294967295.0))) {}
        float rate;
        std::uint32_t abuse_after;
    };

    message_rate(const limits& l, clock::time_point now)
        : tokens_(std::max(l.rate, 1.0f))
        , last_(now.time_since_epoch().count())
        , window_start_(last_) {}

    verdict on_message(clock::time_point now, const limits& l) {
        auto const rate = l.rate;
        if (rate <= 0)
            return verdict::ok;
        // A token bucket of `rate` tokens per second, bursts of `rate` (token_bucket's rule,
        // inlined: every session holds one of these, so it keeps 24 bytes, not 64).
        auto const t = now.time_since_epoch().count();
        if (t > last_) {
            double const secs = std::chrono::duration<double>(clock::duration(t - last_)).count();
            tokens_ =
                static_cast<float>(std::min<double>(std::max(rate, 1.0f), tokens_ + secs * rate));
            last_ = t;
        }
        if (tokens_ >= 1.0f) {
            tokens_ -= 1.0f;
            return verdict::ok;
        }
        if (clock::duration(t - window_start_) >= std::chrono::seconds(1)) {
            window_start_ = t;
            refused_ = 0;
        }
        if (refused_ < UINT32_MAX)
            ++refused_;
        if (refused_ >= l.abuse_after)
            return verdict::abuse;
        return verdict::limited;
    }

private:
    // Single precision: a token count is exact far beyond any per-connection message rate
    // (floats count whole tokens exactly up to 2^24 per second).
    float tokens_;
    std::uint32_t refused_ = 0;
    clock::rep last_;
    clock::rep window_start_;
};

/// One token bucket per key (a client IP for handshakes). Not thread-safe: the server guards
/// it with a mutex. Buckets that refilled completely are forgotten by prune(), so memory is
/// bounded by the keys active within the last `burst / rate` seconds.
class keyed_rate_limiter {
public:
    using clock = std::chrono::steady_clock;

    keyed_rate_limiter(double rate, double burst)
        : rate_(rate)
        , burst_(burst) {}

    bool try_take(const std::string& key, clock::time_point now) {
        if (rate_ <= 0)
            return true;
        auto it = buckets_.find(key);
        if (it == buckets_.end())
            it = buckets_.emplace(key, token_bucket(rate_, burst_, now)).first;
        return it->second.try_take(now);
    }

    void prune(clock::time_point now) {
        for (auto it = buckets_.begin(); it != buckets_.end();)
            it = it->second.idle(now) ? buckets_.erase(it) : std::next(it);
    }

    std::size_t size() const noexcept { return buckets_.size(); }

private:
    double rate_;
    double burst_;
    std::unordered_map<std::string, token_bucket> buckets_;
};

/// Connections per key (an organization, a user) across all shards (one mutex: taken once
/// per connection when its key becomes known and once when it ends, never per message).
class connection_counts {
public:
    /// Counts one more connection of `key` unless `limit` (0: none) is reached.
    bool try_add(const std::string& key, std::size_t limit) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = counts_.find(key);
        std::size_t const n = it == counts_.end() ? 0 : it->second;
        if (limit && n >= limit)
            return false;
        if (it == counts_.end())
            counts_.emplace(key, 1);
        else
            ++it->second;
        return true;
    }

    void remove(const std::string& key) {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = counts_.find(key);
        if (it != counts_.end() && --it->second == 0)
            counts_.erase(it);
    }

    std::size_t count(const std::string& key) const {
        std::lock_guard<std::mutex> lock(mutex_);
        auto it = counts_.find(key);
        return it == counts_.end() ? 0 : it->second;
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::size_t> counts_;
};

/// The server's connection quotas, shared by every shard: per organization
/// (max_connections_per_org), per user, the verified token's `sub`
/// (max_connections_per_user), and the subscribers of each room (room_max_size).
struct connection_quotas {
    connection_counts orgs;
    connection_counts users;
    /// Subscribers per room (topic key), counted only with a room_max_size.
    connection_counts rooms;

    /// The rule of room_max_size for every transport: one more subscriber of room `key`;
    /// false when it holds `max` already (0: no limit, nothing counted).
    bool enter_room(const std::string& key, std::size_t max) {
        return max == 0 || rooms.try_add(key, max);
    }
    void leave_room(const std::string& key, std::size_t max) {
        if (max != 0)
            rooms.remove(key);
    }
    /// What a subscriber refused by enter_room() is told (ROOM_FULL).
    static std::string room_full(const std::string& key, std::size_t max) {
        return "room " + key + " is full (" + std::to_string(max) + " subscribers)";
    }
};

} // namespace rtpush::detail

#endif
