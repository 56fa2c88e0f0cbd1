//
// rtpush: a session's bounded outbound queue, free of I/O.
//
#ifndef RTPUSH_DETAIL_SEND_QUEUE_HPP
#define RTPUSH_DETAIL_SEND_QUEUE_HPP

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <rtpush/overflow_policy.hpp>
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
    /// Goes in the bulk lane, which every other data frame overtakes: a `medium` or `low`
    /// publication (a `complete` phase), and the final close frame (it must come last).
    bool bulk = false;
    /// Not a message: the HTTP answer to the upgrade, written together with the session's
    /// first frames (one send call for both). Not counted as a message sent.
    bool handshake = false;
    /// Publications: the topic key and the phase slot (0 kpis, 1 none, 2 complete). A frame
    /// of the fast lane never overtakes a bulk frame of the same topic and phase, so a topic's
    /// updates of one phase keep their `seq` order; `kpis` overtaking `complete` is the point.
    std::string topic;
    int phase = 1;
    /// A publication with `requires_ack`: its ack id, and the frame a re-send uses (the same
    /// message marked `redelivered`). Sessions hand such frames to the ack tracker.
    std::string ack_id;
    std::shared_ptr<const outbound_frame> redelivery;
    /// Publications: their `seq` in the topic's stream (a Server-Sent Events stream names its
    /// events by it, see detail/sse.hpp); 0 for every other frame.
    std::uint64_t seq = 0;
    /// permessage-deflate (detail/deflate.hpp): the same message compressed, made by the
    /// first deflate session that sends it and shared by all the others; `deflate_plain`
    /// when it goes uncompressed (under the threshold, a control frame, or it does not shrink).
    enum : int { deflate_unknown = 0, deflate_plain = 1 };
    mutable std::atomic<int> deflate_state{deflate_unknown};
    mutable std::atomic<std::shared_ptr<const outbound_frame>> deflated;
    /// The same message as a Socket.IO EVENT (detail/socketio_protocol.hpp), made by the
    /// first Socket.IO connection that sends it and shared by all the others.
    mutable std::atomic<std::shared_ptr<const outbound_frame>> socketio;
    /// ... and in the flat shape of a feed path (detail/feed_format.hpp).
    mutable std::atomic<std::shared_ptr<const outbound_frame>> feed;
};
using frame_ptr = std::shared_ptr<const outbound_frame>;

/// `bytes` (a whole frame: the same message in another form) as a frame of its own that keeps
/// f's lane, topic, phase, seq and timing.
inline frame_ptr twin_of(const frame_ptr& f, std::string bytes) {
    auto t = std::make_shared<outbound_frame>();
    t->bytes = std::move(bytes);
    t->created = f->created;
    t->timed = f->timed;
    t->bulk = f->bulk;
    t->topic = f->topic;
    t->phase = f->phase;
    t->seq = f->seq;
    return t;
}

/// Installs `bytes` as `f`'s twin (twin_of) in `slot`, one of f's atomic twin members, unless
/// another thread did it first; returns the twin that is shared from then on.
inline frame_ptr share_twin(const frame_ptr& f, std::atomic<frame_ptr>& slot, std::string bytes) {
    frame_ptr expected;
    frame_ptr made = twin_of(f, std::move(bytes));
    if (!slot.compare_exchange_strong(expected, made, std::memory_order_acq_rel))
        return expected; // another thread made it first
    return made;
}

inline frame_ptr make_shared_frame(std::string bytes, bool timed = false) {
    auto f = std::make_shared<outbound_frame>();
    f->bytes = std::move(bytes);
    f->timed = timed;
    return f;
}

using rtpush::overflow_policy;

/// A FIFO ring of shared frames that starts empty and grows on demand (an idle subscriber
/// holds no queue memory). Positions are 32-bit: every session holds three rings, and a
/// queue is bounded far below 2^32 frames.
class frame_ring {
public:
    std::size_t size() const noexcept { return count_; }
    bool empty() const noexcept { return count_ == 0; }
    const frame_ptr& operator[](std::size_t i) const noexcept {
        return ring_[(head_ + i) & (cap_ - 1)];
    }
    const frame_ptr& front() const noexcept { return (*this)[0]; }

    void push_back(frame_ptr f) {
        if (count_ == cap_) {
            std::uint32_t const ncap = cap_ ? cap_ * 2 : 4;
            std::unique_ptr<frame_ptr[]> n(new frame_ptr[ncap]);
            for (std::uint32_t i = 0; i < count_; ++i)
                n[i] = std::move(slot(i));
            ring_ = std::move(n);
            cap_ = ncap;
            head_ = 0;
        }
        slot(count_) = std::move(f);
        ++count_;
    }

    /// Requires !empty(). Leaves no reference behind in the ring.
    frame_ptr pop_front() noexcept {
        frame_ptr f = std::move(slot(0));
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
        return f;
    }

private:
    frame_ptr& slot(std::size_t i) noexcept { return ring_[(head_ + i) & (cap_ - 1)]; }

    std::unique_ptr<frame_ptr[]> ring_;
    std::uint32_t cap_ = 0;
    std::uint32_t head_ = 0;
    std::uint32_t count_ = 0;
};

/// A session's outbound queue, bounded in count and bytes, in three lanes taken in order:
/// control frames (pong, close on overflow: exempt from the bound, never dropped), then the
/// fast lane (urgent and high publications, and the protocol's own messages), then the bulk
/// lane (medium and low publications). FIFO within a lane. So KPIs published after a large
/// `complete` payload still reach the client first when the payload is queued, not yet written.
///
/// The lanes live in a block of their own, made by the first push and freed by shrink() once
/// the queue drained: an idle subscriber (most of them, most of the time) pays 32 bytes for
/// its queue, not the lanes' 88.
class send_queue {
public:
    enum class push_result { queued, dropped_oldest, overflow };

    send_queue(std::size_t max_frames, std::size_t max_bytes, overflow_policy policy) noexcept
        : max_frames_(clamp(max_frames ? max_frames : 1, std::size_t(1) << 30))
        , max_bytes_(clamp(max_bytes, UINT32_MAX))
        , policy_(policy) {}

    std::size_t size() const noexcept { return lanes_ ? lanes_->control.size() + data_count() : 0; }
    std::size_t bytes() const noexcept {
        return lanes_ ? lanes_->control_bytes + lanes_->data_bytes : 0;
    }
    bool empty() const noexcept { return size() == 0; }
    std::uint64_t dropped() const noexcept { return dropped_; }
    overflow_policy policy() const noexcept { return policy_; }

    push_result push(frame_ptr f) {
        auto& l = lanes();
        std::size_t const n = f->bytes.size();
        push_result r = push_result::queued;
        // Only data frames count against the bound: control frames are exempt.
        while (data_count() > 0 &&
               (data_count() >= max_frames_ || (max_bytes_ && l.data_bytes + n > max_bytes_))) {
            if (policy_ == overflow_policy::disconnect)
                return push_result::overflow;
            // Bulk first: a dashboard would rather lose a stale full payload than its KPIs.
            auto& victim = l.bulk.empty() ? l.fast : l.bulk;
            l.data_bytes -= victim.pop_front()->bytes.size();
            ++dropped_;
            r = push_result::dropped_oldest;
        }
        lane_of(l, *f).push_back(std::move(f));
        l.data_bytes += n;
        return r;
    }

    /// Queues a control frame ahead of all data frames (but behind other control frames).
    void push_control(frame_ptr f) {
        auto& l = lanes();
        l.control_bytes += f->bytes.size();
        l.control.push_back(std::move(f));
    }

    /// Moves frames from the front into `out` until `max_frames` or `max_bytes` is reached
    /// (at least one frame when not empty): the batch for one gathered write.
    void take(std::vector<frame_ptr>& out, std::size_t max_frames, std::size_t max_bytes) {
        if (!lanes_)
            return;
        auto& l = *lanes_;
        std::size_t taken_bytes = 0;
        for (frame_ring* lane : {&l.control, &l.fast, &l.bulk}) {
            while (!lane->empty() && out.size() < max_frames) {
                std::size_t const n = lane->front()->bytes.size();
                if (!out.empty() && taken_bytes + n > max_bytes)
                    return;
                taken_bytes += n;
                (lane == &l.control ? l.control_bytes : l.data_bytes) -= n;
                out.push_back(lane->pop_front());
            }
        }
    }

    /// Releases the lanes' memory once the queue drained (idle sessions keep nothing).
    void shrink() noexcept {
        if (empty())
            lanes_.reset();
    }

private:
    struct lane_set {
        frame_ring control, fast, bulk;
        std::size_t control_bytes = 0;
        std::size_t data_bytes = 0;
    };

    static std::uint32_t clamp(std::size_t n, std::size_t most) noexcept {
        return static_cast<std::uint32_t>(std::min(n, most));
    }
    lane_set& lanes() {
        if (!lanes_)
            lanes_ = std::make_unique<lane_set>();
        return *lanes_;
    }
    std::size_t data_count() const noexcept {
        return lanes_ ? lanes_->fast.size() + lanes_->bulk.size() : 0;
    }

    static frame_ring& lane_of(lane_set& l, const outbound_frame& f) noexcept {
        if (f.bulk)
            return l.bulk;
        if (!f.topic.empty())
            for (std::size_t i = 0; i < l.bulk.size(); ++i)
                if (l.bulk[i]->phase == f.phase && l.bulk[i]->topic == f.topic)
                    return l.bulk; // behind its own topic's earlier frame of this phase
        return l.fast;
    }

    std::unique_ptr<lane_set> lanes_;
    std::uint64_t dropped_ = 0;
    // Bounds, cut to at most 2^30 frames (a ring's 32-bit capacity doubles up to 2^31) and
    // 4 GiB: larger ones are no bound in practice (a client's queue never gets there).
    std::uint32_t max_frames_;
    std::uint32_t max_bytes_; // 0: frames only
    overflow_policy policy_;
};

} // namespace rtpush::detail

#endif
