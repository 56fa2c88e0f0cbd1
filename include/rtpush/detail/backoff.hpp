//
// rtpush: reconnection delays, free of I/O: exponential backoff with full jitter.
//
#ifndef RTPUSH_DETAIL_BACKOFF_HPP
#define RTPUSH_DETAIL_BACKOFF_HPP

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>

namespace rtpush {

/// How long a client waits before reconnecting. The n-th consecutive attempt (from 0) waits a
/// uniformly random time in [0, min(max, initial * factor^n)] ("full jitter": clients cut off
/// together do not come back together). A connection that stayed up for `reset_after`
/// starts the schedule again.
struct backoff_config {
    std::chrono::milliseconds initial{500};
    double factor = 2.0;
    std::chrono::milliseconds max{30000};
    std::chrono::milliseconds reset_after{60000};
};

namespace detail {

class backoff {
public:
    using clock = std::chrono::steady_clock;

    explicit backoff(backoff_config cfg = {}, std::uint64_t seed = std::random_device{}())
        : cfg_(cfg)
        , rng_(seed) {}

    /// The upper bound of the next delay.
    std::chrono::milliseconds ceiling() const {
        double const c = static_cast<double>(cfg_.initial.count()) *
                         std::pow(std::max(cfg_.factor, 1.0), static_cast<double>(attempt_));
        double const cap = static_cast<double>(cfg_.max.count());
        return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(c, cap)));
    }

    /// The delay before the next attempt; counts the attempt.
    std::chrono::milliseconds next() {
        auto const c = ceiling().count();
        ++attempt_;
        if (c <= 0)
            return std::chrono::milliseconds(0);
        std::uniform_int_distribution<std::int64_t> d(0, c);
        return std::chrono::milliseconds(d(rng_));
    }

    /// Consecutive attempts since the last reset.
    unsigned attempt() const noexcept { return attempt_; }
    void reset() noexcept { attempt_ = 0; }

    /// A connection is up (the server answered).
    void connected(clock::time_point now) noexcept {
        connected_at_ = now;
        up_ = true;
    }
    /// The connection is gone: if it was up for `reset_after`, it was a stable one and the
    /// schedule starts again; a connection that fails at once keeps backing off.
    void disconnected(clock::time_point now) noexcept {
        if (up_ && now - connected_at_ >= cfg_.reset_after)
            reset();
        up_ = false;
    }

    const backoff_config& config() const noexcept { return cfg_; }

private:
    backoff_config cfg_;
    std::mt19937_64 rng_;
    unsigned attempt_ = 0;
    bool up_ = false;
    clock::time_point connected_at_{};
};

} // namespace detail
} // namespace rtpush

#endif
