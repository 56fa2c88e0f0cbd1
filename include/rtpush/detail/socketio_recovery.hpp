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

/// The publications one Socket.IO connection wrote, in write order, and each topic's last
/// seq. Kept only by Socket.IO connections, and written to once per publication per
/// connection, so an entry is a run: consecutive seqs of one topic written one after the
/// other (a subscriber of one topic keeps one entry however much it is sent), the topic
/// being its index in the connection's own list of keys (16 bytes). The last `capacity`
/// runs are kept. The run being written and its key come first in the object: a delivery
/// that extends it touches one cache line of the log (with a thousand subscribers, each
/// delivery is to another connection's log, which is not in the cache).
class written_log {
public:
    static constexpr std::size_t capacity = 512;

    void wrote(std::string_view topic_key, std::uint64_t seq) {
        if (newest_.count != 0 && newest_.first + newest_.count == seq && newest_.count < max_run &&
            newest_key_ == topic_key) {
            ++newest_.count;
            return;
        }
        retire_newest();
        newest_ = {topic_index(topic_key), 1, seq};
        newest_key_ = topic_key;
    }

    /// Where each topic resumes when the client handled `(topic_key, seq)` and maybe nothing
    /// written after it: the seq before the topic's first event written after that one, or
    /// its last written seq when there is none. Nullopt when that event is not in the log
    /// (never written here, or older than the last `capacity` runs): then nothing can be said.
    std::optional<std::map<std::string, std::uint64_t, std::less<>>>
    resume_points(std::string_view topic_key, std::uint64_t seq) const {
        auto const found = index_.find(topic_key);
        if (found == index_.end())
            return std::nullopt;
        auto const t = found->second;
        std::size_t i = runs();
        while (i > 0 && !at(i - 1).holds(t, seq))
            --i;
        if (i == 0)
            return std::nullopt;
        std::vector<bool> seen_after(topics_.size(), false);
        std::vector<std::uint64_t> resume(last_);
        resume[newest_.topic] = newest_.last();
        // The handled event's run goes on with its topic's next seq, if it has one.
        if (seq < at(i - 1).last()) {
            seen_after[t] = true;
            resume[t] = seq;
        }
        for (std::size_t j = i; j < runs(); ++j) {
            auto const& run = at(j);
            if (!seen_after[run.topic]) {
                seen_after[run.topic] = true;
                resume[run.topic] = run.first - 1;
            }
        }
        std::map<std::string, std::uint64_t, std::less<>> out;
        for (std::size_t k = 0; k < topics_.size(); ++k)
            out.emplace(topics_[k], resume[k]);
        return out;
    }

    bool empty() const noexcept { return newest_.count == 0; }

private:
    static constexpr std::uint32_t max_run = 0xffffffff;

    struct run {
        std::uint32_t topic;
        std::uint32_t count; ///< seqs first .. first + count - 1
        std::uint64_t first;

        std::uint64_t last() const noexcept { return first + count - 1; }
        bool holds(std::uint32_t t, std::uint64_t seq) const noexcept {
            return topic == t && seq >= first && seq - first < count;
        }
    };

    /// Runs in the log: the retired ones and the one being written.
    std::size_t runs() const noexcept { return ring_.size() + (newest_.count != 0 ? 1 : 0); }

    /// The i-th run, oldest first.
    const run& at(std::size_t i) const {
        return i == ring_.size() ? newest_ : ring_[(oldest_ + i) % ring_.size()];
    }

    /// The run being written goes to the ring (its oldest run out when it is full).
    void retire_newest() {
        if (newest_.count == 0)
            return;
        last_[newest_.topic] = newest_.last();
        if (ring_.size() < capacity - 1) {
            ring_.push_back(newest_);
            return;
        }
        ring_[oldest_] = newest_;
        oldest_ = (oldest_ + 1) % ring_.size();
    }

    std::uint32_t topic_index(std::string_view key) {
        auto it = index_.find(key);
        if (it != index_.end())
            return it->second;
        auto const t = static_cast<std::uint32_t>(topics_.size());
        topics_.emplace_back(key);
        last_.push_back(0);
        index_.emplace(std::string(key), t);
        return t;
    }

    run newest_{0, 0, 0};
    std::string newest_key_;
    std::vector<run> ring_; ///< retired runs, the oldest at oldest_ once full
    std::size_t oldest_ = 0;
    std::vector<std::string> topics_; ///< every topic written here, by index
    std::vector<std::uint64_t> last_; ///< ... and its last seq among the retired runs
    std::map<std::string, std::uint32_t, std::less<>> index_;
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
