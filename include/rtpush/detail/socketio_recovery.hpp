//
// rtpush: Socket.IO connection state recovery, free of I/O (docs/protocol.md, "Coming from
// Socket.IO"; the mapping onto rtpush's per-topic recovery is in detail/socketio.hpp's header
// comment). A connection logs the publications it writes; when it ends without the client
// asking, its subscriptions and that log are kept under its private id (pid) for a while; a
// client coming back with the pid and the offset of the last event it handled gets, per
// subscription, the position rtpush's `recover` resumes from.
//
#ifndef RTPUSH_DETAIL_SOCKETIO_RECOVERY_HPP
#define RTPUSH_DETAIL_SOCKETIO_RECOVERY_HPP

#include <rtpush/detail/recovery.hpp>
#include <rtpush/detail/socketio.hpp>
#include <rtpush/topic.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rtpush::detail {

/// The publications one Socket.IO connection wrote, in write order: the last `capacity`
/// (topic key, seq) pairs, and each topic's last seq. Kept only by Socket.IO connections,
/// and written to once per publication per connection: an entry is the topic's index in the
/// connection's own list of keys and the seq (16 bytes, no allocation once the ring is full).
class written_log {
public:
    static constexpr std::size_t capacity = 512;

    void wrote(std::string_view topic_key, std::uint64_t seq) {
        auto const t = topic_index(topic_key);
        last_[t] = seq;
        if (ring_.size() < capacity) {
            ring_.push_back({t, seq});
            return;
        }
        ring_[oldest_] = {t, seq};
        oldest_ = (oldest_ + 1) % capacity;
    }

    /// Where each topic resumes when the client handled `(topic_key, seq)` and maybe nothing
    /// written after it: the seq before the topic's first event written after that one, or
    /// its last written seq when there is none. Nullopt when that event is not in the log
    /// (never written here, or older than the last `capacity`): then nothing can be said.
    std::optional<std::map<std::string, std::uint64_t, std::less<>>>
    resume_points(std::string_view topic_key, std::uint64_t seq) const {
        auto const found = index_.find(topic_key);
        if (found == index_.end())
            return std::nullopt;
        auto const t = found->second;
        std::size_t i = ring_.size();
        while (i > 0 && !(at(i - 1).seq == seq && at(i - 1).topic == t))
            --i;
        if (i == 0)
            return std::nullopt;
        std::vector<bool> seen_after(topics_.size(), false);
        std::vector<std::uint64_t> resume(last_);
        for (std::size_t j = i; j < ring_.size(); ++j) {
            auto const& e = at(j);
            if (!seen_after[e.topic]) {
                seen_after[e.topic] = true;
                resume[e.topic] = e.seq - 1;
            }
        }
        std::map<std::string, std::uint64_t, std::less<>> out;
        for (std::size_t k = 0; k < topics_.size(); ++k)
            out.emplace(topics_[k], resume[k]);
        return out;
    }

    bool empty() const noexcept { return ring_.empty(); }

private:
    struct entry {
        std::uint32_t topic;
        std::uint64_t seq;
    };

    /// The i-th entry, oldest first.
    const entry& at(std::size_t i) const { return ring_[(oldest_ + i) % ring_.size()]; }

    std::uint32_t topic_index(std::string_view key) {
        // Most publications are of the topic the previous one was of.
        if (last_topic_ < topics_.size() && topics_[last_topic_] == key)
            return last_topic_;
        auto it = index_.find(key);
        if (it == index_.end()) {
            auto const t = static_cast<std::uint32_t>(topics_.size());
            topics_.emplace_back(key);
            last_.push_back(0);
            it = index_.emplace(std::string(key), t).first;
        }
        return last_topic_ = it->second;
    }

    std::vector<std::string> topics_; ///< every topic written here, by index
    std::vector<std::uint64_t> last_; ///< ... and its last written seq
    std::map<std::string, std::uint32_t, std::less<>> index_;
    std::uint32_t last_topic_ = 0;
    std::vector<entry> ring_;
    std::size_t oldest_ = 0; ///< where the oldest entry is, once the ring is full
};

/// A Socket.IO session kept after its connection ended, for the client to resume.
struct kept_socketio_session {
    std::string pid;
    std::vector<std::string> topic_keys; ///< its subscriptions
    written_log log;
    std::chrono::steady_clock::time_point ended_at;
};

/// The subscriptions of a kept session with the `recover` position each resumes from, when
/// the client's offset is one of this server's (same epoch) and in the session's log.
struct planned_resubscription {
    std::string topic_key;
    recover_position position;
};

inline std::optional<std::vector<planned_resubscription>>
plan_socketio_recovery(const kept_socketio_session& kept, std::string_view client_offset,
                       std::string_view epoch) {
    sio::event_offset off;
    if (!sio::parse_offset(client_offset, off) || off.epoch != epoch)
        return std::nullopt;
    auto points = kept.log.resume_points(off.topic_key, off.seq);
    if (!points)
        return std::nullopt;
    std::vector<planned_resubscription> out;
    out.reserve(kept.topic_keys.size());
    for (auto const& key : kept.topic_keys) {
        planned_resubscription r;
        r.topic_key = key;
        r.position.epoch = std::string(epoch);
        // The subscription's own stream, and the narrower ones it covers (an org's
        // departments); a stream never written here resumes from 0: all its history.
        for (auto const& [topic, seq] : *points) {
            if (topic == key)
                r.position.offset = seq;
            else if (key_within(topic, key))
                r.position.offsets.emplace(topic, seq);
        }
        out.push_back(std::move(r));
    }
    return out;
}

/// The kept sessions of one server, shared by its io threads: a client may come back on any
/// of them. Bounded by age (`window`, Socket.IO's maxDisconnectionDuration) and count.
class socketio_session_store {
public:
    explicit socketio_session_store(std::chrono::milliseconds window,
                                    std::size_t max_sessions = 10000)
        : window_(window)
        , max_sessions_(max_sessions) {}

    std::chrono::milliseconds window() const noexcept { return window_; }

    void keep(kept_socketio_session s) {
        if (window_.count() <= 0)
            return;
        std::lock_guard lock(mutex_);
        expire(s.ended_at);
        if (sessions_.size() >= max_sessions_)
            return; // a flood of ended sessions: the newest go without recovery
        order_.push_back({s.ended_at, s.pid});
        auto pid = s.pid;
        sessions_.insert_or_assign(std::move(pid), std::move(s));
    }

    /// Takes the session kept under `pid` (it can be resumed once), if still within the window.
    std::optional<kept_socketio_session> take(std::string_view pid,
                                              std::chrono::steady_clock::time_point now) {
        std::lock_guard lock(mutex_);
        expire(now);
        auto it = sessions_.find(std::string(pid));
        if (it == sessions_.end())
            return std::nullopt;
        auto s = std::move(it->second);
        sessions_.erase(it);
        return s;
    }

    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return sessions_.size();
    }

private:
    // Sessions are kept in the order they ended: the expired ones are at the front.
    void expire(std::chrono::steady_clock::time_point now) {
        while (!order_.empty() && now - order_.front().first > window_) {
            auto it = sessions_.find(order_.front().second);
            if (it != sessions_.end() && it->second.ended_at == order_.front().first)
                sessions_.erase(it);
            order_.pop_front();
        }
    }

    std::chrono::milliseconds window_;
    std::size_t max_sessions_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, kept_socketio_session> sessions_;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> order_;
};

} // namespace rtpush::detail

#endif
