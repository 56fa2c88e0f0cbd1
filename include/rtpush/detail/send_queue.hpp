//
// rtpush: a session's bounded outbound queue, free of I/O.
//
#ifndef RTPUSH_DETAIL_SEND_QUEUE_HPP
#define RTPUSH_DETAIL_SEND_QUEUE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace rtpush::detail {

/// One ready-to-send WebSocket frame (header + payload). Immutable once built, shared by every
/// session it is queued on: a broadcast to 10,000 clients is serialised and framed once.
struct outbound_frame {
    std::string bytes;
    std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
    bool timed = false; ///< a publication: its publish-to-write latency is measured
};
using frame_ptr = std::shared_ptr<const outbound_frame>;

inline frame_ptr make_shared_frame(std::string bytes, bool timed = false) {
    auto f = std::make_shared<outbound_frame>();
    f->bytes = std::move(bytes);
    f->timed = timed;
    return f;
}

/// What a full queue does with one more frame.
enum class overflow_policy {
    drop_oldest, ///< discard the oldest queued data frame (the client sees a gap in `seq`)
    disconnect,  ///< refuse the frame; the session closes the connection with 1008
};

/// A FIFO of shared frames bounded in count and bytes, stored in a ring that starts empty and
/// grows on demand (an idle subscriber holds no queue memory). Control frames (pong, close)
/// go to the front and are exempt from the bound: they are tiny and must never be dropped.
class send_queue {
public:
    enum class push_result { queued, dropped_oldest, overflow };

    send_queue(std::size_t max_frames, std::size_t max_bytes, overflow_policy policy) noexcept
        : max_frames_(max_frames ? max_frames : 1)
        , max_bytes_(max_bytes)
        , policy_(policy) {}

    std::size_t size() const noexcept { return count_; }
    std::size_t bytes() const noexcept { return bytes_; }
    bool empty() const noexcept { return count_ == 0; }
    std::uint64_t dropped() const noexcept { return dropped_; }
    overflow_policy policy() const noexcept { return policy_; }

    push_result push(frame_ptr f) {
        std::size_t const n = f->bytes.size();
        push_result r = push_result::queued;
        // Only data frames count against the bound: control frames are exempt.
        while (count_ > control_ && (count_ - control_ >= max_frames_ ||
                                     (max_bytes_ && bytes_ - control_bytes_ + n > max_bytes_))) {
            if (policy_ == overflow_policy::disconnect)
                return push_result::overflow;
            pop_front();
            ++dropped_;
            r = push_result::dropped_oldest;
        }
        push_back_raw(std::move(f));
        return r;
    }

    /// Queues a control frame ahead of all data frames (but behind other control frames).
    void push_control(frame_ptr f) {
        grow_if_full();
        // insert at position `control_` (after earlier control frames)
        head_ = (head_ + cap_ - 1) & (cap_ - 1);
        for (std::size_t i = 0; i < control_; ++i)
            slot(i) = std::move(slot(i + 1));
        bytes_ += f->bytes.size();
        control_bytes_ += f->bytes.size();
        slot(control_) = std::move(f);
        ++control_;
        ++count_;
    }

    /// Moves frames from the front into `out` until `max_frames` or `max_bytes` is reached
    /// (at least one frame when not empty): the batch for one gathered write.
    void take(std::vector<frame_ptr>& out, std::size_t max_frames, std::size_t max_bytes) {
        std::size_t taken_bytes = 0;
        while (count_ > 0 && out.size() < max_frames) {
            std::size_t const n = slot(0)->bytes.size();
            if (!out.empty() && taken_bytes + n > max_bytes)
                break;
            taken_bytes += n;
            out.push_back(std::move(slot(0)));
            pop_front_moved(n);
        }
    }

    /// Releases the ring's memory once the queue drained (idle sessions keep nothing).
    void shrink() {
        if (count_ == 0) {
            ring_.reset();
            cap_ = head_ = 0;
        }
    }

private:
    frame_ptr& slot(std::size_t i) noexcept { return ring_[(head_ + i) & (cap_ - 1)]; }

    void grow_if_full() {
        if (count_ < cap_)
            return;
        std::size_t const ncap = cap_ ? cap_ * 2 : 4;
        std::unique_ptr<frame_ptr[]> n(new frame_ptr[ncap]);
        for (std::size_t i = 0; i < count_; ++i)
            n[i] = std::move(slot(i));
        ring_ = std::move(n);
        cap_ = ncap;
        head_ = 0;
    }

    void push_back_raw(frame_ptr f) {
        grow_if_full();
        bytes_ += f->bytes.size();
        slot(count_) = std::move(f);
        ++count_;
    }

    // Drops the oldest data frame, which sits right behind the control frames (never one of
    // those). Requires count_ > control_.
    void pop_front() {
        std::size_t const victim = control_;
        bytes_ -= slot(victim)->bytes.size();
        for (std::size_t i = victim; i > 0; --i)
            slot(i) = std::move(slot(i - 1));
        slot(0).reset();
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
    }

    void pop_front_moved(std::size_t n) {
        bytes_ -= n;
        slot(0).reset();
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
        if (control_ > 0) {
            --control_;
            control_bytes_ -= n;
        }
    }

    std::unique_ptr<frame_ptr[]> ring_;
    std::size_t cap_ = 0;
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::size_t control_ = 0; // control frames at the front
    std::size_t bytes_ = 0;
    std::size_t control_bytes_ = 0;
    std::size_t max_frames_;
    std::size_t max_bytes_;
    overflow_policy policy_;
    std::uint64_t dropped_ = 0;
};

} // namespace rtpush::detail

#endif
