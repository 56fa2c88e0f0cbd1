//
// rtpush: when a shard flushes its queued frames.
//
#ifndef RTPUSH_DETAIL_WRITE_CORK_HPP
#define RTPUSH_DETAIL_WRITE_CORK_HPP

#include <rtpush/cork_policy.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>

namespace rtpush::detail {

using ::rtpush::cork_policy;

/// Decides how long a shard holds back what its sessions queued. Every write is a system
/// call that costs far more than the frames it carries (on loopback, the receiver's side of
/// TCP runs in the sender's call), so under load each subscriber should get several
/// publications per write; on a quiet shard, every write should go out at once.
///
/// The adaptive policy measures, per 100 ms window, the frames queued per second and the
/// thread time one write takes. Their product `load` is the share of the thread that writing
/// every frame on its own would take. While the writes fit in a budget of the thread (60%,
/// write_budget) there is no delay: every pass of the thread flushes what it queued. Above it
/// the shard holds writes back (`delay()`, up to `max_delay`) just long enough to keep them
/// within the budget, which shrinks once the unbatched writes would not fit in the thread at
/// all, so a saturated shard batches up to `max_delay`. With a delay the shard flushes its
/// subscribers in staggered groups (shard.hpp), so a frame waits half the delay on average
/// rather than the delay and then the time of a burst of writes.
///
/// I/O-free: the shard feeds it counts, write costs and times and asks for the delay.
class write_cork {
public:
    using clock = std::chrono::steady_clock;

    /// `max_delay` 0 never corks. `threshold` (frames per second) is the fixed policy's.
    write_cork(std::chrono::microseconds max_delay = std::chrono::milliseconds(20),
               double threshold = 50000, cork_policy policy = cork_policy::adaptive,
               std::chrono::microseconds window = std::chrono::milliseconds(100)) noexcept
        : max_delay_(max_delay)
        , threshold_(threshold)
        , policy_(policy)
        , window_(window) {}

    /// Closes the window if it is over by `now` (so that a shard coming back from a quiet
    /// spell decides on the quiet spell, not on the load before it).
    void observe(clock::time_point now) noexcept { roll(now); }

    /// `frames` were queued at `now`.
    void count(std::uint64_t frames, clock::time_point now) noexcept {
        roll(now);
        window_frames_ += frames;
    }

    /// A flush pass that ended at `now` started `writes` writes (one per subscriber) and took
    /// `busy` of the thread.
    void wrote(std::uint64_t writes, clock::duration busy, clock::time_point now) noexcept {
        roll(now);
        window_writes_ += writes;
        window_busy_ += busy;
        ++window_passes_;
    }

    /// How long the shard holds a write back: zero flushes at the end of the current pass.
    std::chrono::microseconds delay() const noexcept { return delay_; }
    bool corked() const noexcept { return delay_.count() > 0; }

    /// Frames per second over the last complete window.
    double rate() const noexcept { return rate_; }
    /// Thread seconds per write (smoothed over windows).
    double write_cost() const noexcept { return cost_; }
    /// Share of the thread that writing each frame on its own would take (rate × cost).
    double load() const noexcept { return rate_ * cost_; }
    /// Share of the thread the writes took in the last complete window.
    double write_share() const noexcept { return share_; }

    /// The share of the thread writes may take at `load` (adaptive policy): 60% while the
    /// unbatched writes would fit in the thread, then falling steeply (with the cube of the
    /// load) once they would not, so that a saturated thread batches up to the longest delay:
    /// each write it saves is time for the fan-out and the reads.
    static double write_budget(double load) noexcept {
        constexpr double light = 0.6;
        if (load <= 1.0)
            return light;
        return light / (load * load * load);
    }

private:
    void roll(clock::time_point now) noexcept {
        if (window_start_ == clock::time_point{})
            window_start_ = now;
        auto const elapsed = now - window_start_;
        if (elapsed < window_)
            return;
        double const secs = std::chrono::duration<double>(elapsed).count();
        rate_ = static_cast<double>(window_frames_) / secs;
        share_ = std::chrono::duration<double>(window_busy_).count() / secs;
        if (window_writes_ > 0) {
            double const c = std::chrono::duration<double>(window_busy_).count() / window_writes_;
            cost_ = cost_ == 0 ? c : 0.7 * cost_ + 0.3 * c;
        }
        decide();
        window_start_ = now;
        window_frames_ = window_writes_ = window_passes_ = 0;
        window_busy_ = {};
    }

    void decide() noexcept {
        using std::chrono::microseconds;
        if (max_delay_.count() <= 0) {
            delay_ = {};
            return;
        }
        if (policy_ == cork_policy::fixed) {
            delay_ = rate_ >= threshold_ ? max_delay_ : microseconds{};
            return;
        }
        double const budget = write_budget(load());
        if (!corked()) {
            if (load() <= budget || window_passes_ == 0)
                return;
            // Uncorked, each pass writes to every subscriber with something queued: holding
            // them back for `delay` costs one pass's writes per `delay`.
            double const per_pass = static_cast<double>(window_writes_) / window_passes_;
            set_delay(per_pass * cost_ / budget);
            return;
        }
        if (load() < 0.8 * budget) { // hysteresis: uncork well below the point of corking
            delay_ = {};
            return;
        }
        // Corked, the writes' share falls as the delay grows (each subscriber is written once
        // per delay): scale the delay by how far the share is from the budget.
        double const now_delay = std::chrono::duration<double>(delay_).count();
        set_delay(now_delay * std::max(share_, 1e-6) / budget);
    }

    void set_delay(double seconds) noexcept {
        constexpr double min_delay = 0.001; // shorter than this is not worth a timer
        double const max = static_cast<double>(max_delay_.count()) / 1e6;
        auto const us = std::llround(std::clamp(seconds, std::min(min_delay, max), max) * 1e6);
        delay_ = std::chrono::microseconds(us);
    }

    std::chrono::microseconds max_delay_;
    double threshold_;
    cork_policy policy_;
    std::chrono::microseconds window_;
    clock::time_point window_start_{};
    std::uint64_t window_frames_ = 0;
    std::uint64_t window_writes_ = 0;
    std::uint64_t window_passes_ = 0;
    clock::duration window_busy_{};
    double rate_ = 0;
    double cost_ = 0;
    double share_ = 0;
    std::chrono::microseconds delay_{};
};

} // namespace rtpush::detail

#endif
