//
// rtpush: when a shard flushes its queued frames.
//
#ifndef RTPUSH_DETAIL_WRITE_CORK_HPP
#define RTPUSH_DETAIL_WRITE_CORK_HPP

#include <chrono>
#include <cstdint>

namespace rtpush::detail {

/// Decides when a shard writes what its sessions queued. Every write is a system call that
/// costs about as much as the kernel's copy of a small frame, so under load the shard holds
/// its flush back (corks) for up to `max_delay` after the previous one: a subscriber then gets
/// several publications in one gathered write. Below `threshold` queued frames per second
/// it flushes at once, so a quiet server adds no latency (docs/architecture.md, "Corking").
///
/// I/O-free: the shard feeds it counts and times and asks when to flush.
class write_cork {
public:
    using clock = std::chrono::steady_clock;

    /// `max_delay` 0 never corks. `threshold` is in frames queued per second on this shard.
    write_cork(std::chrono::microseconds max_delay = std::chrono::milliseconds(20),
               double threshold = 50000,
               std::chrono::microseconds window = std::chrono::milliseconds(100)) noexcept
        : max_delay_(max_delay)
        , threshold_(threshold)
        , window_(window) {}

    /// `frames` were queued at `now`. The load is re-estimated once per window from the
    /// frames counted in the window that just ended.
    void count(std::uint64_t frames, clock::time_point now) noexcept {
        if (window_start_ == clock::time_point{})
            window_start_ = now;
        auto const elapsed = now - window_start_;
        if (elapsed >= window_) {
            double const secs = std::chrono::duration<double>(elapsed).count();
            rate_ = static_cast<double>(window_frames_) / secs;
            corked_ = max_delay_.count() > 0 && rate_ >= threshold_;
            window_start_ = now;
            window_frames_ = 0;
        }
        window_frames_ += frames;
    }

    /// When the next flush should run, if one is to be scheduled at `now`.
    clock::time_point flush_at(clock::time_point now) const noexcept {
        if (!corked_ || last_flush_ == clock::time_point{})
            return now;
        auto const at = last_flush_ + max_delay_;
        return at > now ? at : now;
    }

    /// A flush ran at `now`.
    void flushed(clock::time_point now) noexcept { last_flush_ = now; }

    bool corked() const noexcept { return corked_; }
    /// Frames per second measured over the last complete window.
    double rate() const noexcept { return rate_; }

private:
    std::chrono::microseconds max_delay_;
    double threshold_;
    std::chrono::microseconds window_;
    clock::time_point window_start_{};
    std::uint64_t window_frames_ = 0;
    double rate_ = 0;
    bool corked_ = false;
    clock::time_point last_flush_{};
};

} // namespace rtpush::detail

#endif
