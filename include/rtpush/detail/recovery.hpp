//
// rtpush: recovery decisions, free of I/O: may a reconnecting subscriber be brought up to
// date from history (server side), and what does a client resubscribe with and keep
// (client side). docs/protocol.md, "Recovery".
//
#ifndef RTPUSH_DETAIL_RECOVERY_HPP
#define RTPUSH_DETAIL_RECOVERY_HPP

#include <rtpush/topic.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// A subscriber's position: the epoch it was in and, per topic, the last `seq` (= offset) it
/// received. `offset` is the position in the subscription's own topic, `offsets` those in
/// narrower topics (an org subscription covers its departments, each with its own stream).
struct recover_position {
    std::string epoch;
    std::uint64_t offset = 0;
    std::map<std::string, std::uint64_t, std::less<>> offsets;

    /// The last seq seen on `topic_key` by a subscription to `sub_key`; 0 when none.
    std::uint64_t offset_of(std::string_view topic_key, std::string_view sub_key) const {
        if (topic_key == sub_key && offset != 0)
            return offset;
        auto it = offsets.find(topic_key);
        return it == offsets.end() ? 0 : it->second;
    }
};

/// Why a recovery was refused (or that it succeeded).
enum class recovery_result {
    recovered,
    epoch_mismatch, ///< the server's history is not the one the client saw (restart, failover)
    offset_ahead,   ///< the client claims more than the server published
    history_lost,   ///< what the client missed has left the history (size or age)
    too_many,       ///< the replay would exceed max_replay
};

inline std::string_view to_string(recovery_result r) noexcept {
    switch (r) {
    case recovery_result::recovered:
        return "recovered";
    case recovery_result::epoch_mismatch:
        return "epoch_mismatch";
    case recovery_result::offset_ahead:
        return "offset_ahead";
    case recovery_result::history_lost:
        return "history_lost";
    case recovery_result::too_many:
        return "too_many";
    }
    return "history_lost";
}

/// One topic's stream as the hub holds it: its last seq and the oldest seq still in history
/// (0 when the history is empty).
struct stream_state {
    std::uint64_t head = 0;
    std::uint64_t oldest = 0;
};

/// Decides one topic of a recovery: can everything after `client_offset` be replayed? On
/// success adds the count to `replay_total`, which must stay within `max_replay` over all the
/// topics of the subscription.
inline recovery_result plan_topic(const stream_state& s, std::uint64_t client_offset,
                                  std::size_t& replay_total, std::size_t max_replay) noexcept {
    if (client_offset > s.head)
        return recovery_result::offset_ahead;
    std::uint64_t const missed = s.head - client_offset;
    if (missed == 0)
        return recovery_result::recovered;
    // The history must hold client_offset + 1 .. head without a hole.
    if (s.oldest == 0 || s.oldest > client_offset + 1)
        return recovery_result::history_lost;
    if (missed > max_replay - std::min<std::size_t>(replay_total, max_replay))
        return recovery_result::too_many;
    replay_total += static_cast<std::size_t>(missed);
    return recovery_result::recovered;
}

/// Client side: the epoch and the last seq seen per topic, which decide what a resubscription
/// asks for and which messages are duplicates (a replay may overlap what was already seen) or
/// reveal a gap (a publication the server dropped, e.g. under the drop_oldest policy).
class stream_tracker {
public:
    enum class verdict { fresh, duplicate, gap };

    /// Records an `update` (`initial` false) or an `initial` of `phase`. A new epoch forgets
    /// every position (the seqs of another history mean nothing here).
    ///
    /// Updates arrive in seq order: one at or below the last seen is a duplicate, one beyond
    /// the next is a gap (and is not recorded: recovering from the last seen fills it). An
    /// `initial` is the latest value of its phase, and the phases of a snapshot come kpis
    /// first whatever their seqs, so it is a duplicate only when that phase was already seen
    /// at that seq or later.
    verdict accept(std::string_view topic_key, std::string_view epoch, std::uint64_t seq,
                   bool initial = false, std::string_view phase = {}) {
        if (epoch != epoch_) {
            epoch_ = std::string(epoch);
            streams_.clear();
        }
        auto it = streams_.find(topic_key);
        if (it == streams_.end())
            it = streams_.emplace(std::string(topic_key), stream{}).first;
        stream& st = it->second;
        std::uint64_t& phase_last = st.phases[phase == "kpis" ? 0 : phase == "complete" ? 2 : 1];
        if (initial) {
            if (seq <= phase_last)
                return verdict::duplicate;
        } else {
            if (seq <= st.last)
                return verdict::duplicate;
            if (st.last != 0 && seq > st.last + 1)
                return verdict::gap;
        }
        phase_last = seq;
        st.last = std::max(st.last, seq);
        return verdict::fresh;
    }

    /// Records an `initial`/`update` given as parsed JSON; messages of other types are fresh.
    verdict accept(const boost::json::object& o) {
        auto const* type = o.if_contains("type");
        if (!type || !type->is_string() ||
            (type->get_string() != "initial" && type->get_string() != "update"))
            return verdict::fresh;
        auto const* t = o.if_contains("topic");
        auto const* e = o.if_contains("epoch");
        auto const* s = o.if_contains("seq");
        if (!t || !t->is_string() || !e || !e->is_string() || !s || !s->is_number())
            return verdict::fresh;
        boost::system::error_code ec;
        auto const seq = s->to_number<std::uint64_t>(ec);
        if (ec)
            return verdict::fresh;
        std::string_view phase;
        if (auto const* p = o.if_contains("phase"); p && p->is_string())
            phase = p->get_string();
        return accept(t->get_string(), e->get_string(), seq, type->get_string() == "initial",
                      phase);
    }

    /// What to recover a subscription to `sub_key` from; none before anything was seen.
    std::optional<recover_position> position(std::string_view sub_key) const {
        if (epoch_.empty())
            return std::nullopt;
        recover_position p;
        p.epoch = epoch_;
        for (auto const& [key, st] : streams_)
            if (key_within(key, sub_key))
                p.offsets.emplace(key, st.last);
        if (auto it = p.offsets.find(sub_key); it != p.offsets.end()) {
            p.offset = it->second;
            p.offsets.erase(it);
        }
        return p;
    }

    /// The text of a `subscribe` for `t`, carrying `recover` when there is a position.
    std::string subscribe_message(const topic& t, std::string_view id) const {
        boost::json::object m;
        m["type"] = "subscribe";
        m["channel"] = t.channel;
        boost::json::object sc;
        if (!t.scope.org.empty())
            sc["org"] = t.scope.org;
        if (!t.scope.dept.empty())
            sc["dept"] = t.scope.dept;
        if (!t.scope.queue.empty())
            sc["queue"] = t.scope.queue;
        m["scope"] = std::move(sc);
        if (!id.empty())
            m["id"] = id;
        if (auto p = position(t.key())) {
            boost::json::object r;
            r["epoch"] = p->epoch;
            r["offset"] = p->offset;
            if (!p->offsets.empty()) {
                boost::json::object offs;
                for (auto const& [k, v] : p->offsets)
                    offs[k] = v;
                r["offsets"] = std::move(offs);
            }
            m["recover"] = std::move(r);
        }
        return boost::json::serialize(m);
    }

    const std::string& epoch() const noexcept { return epoch_; }
    /// The last seq seen on a topic, 0 when none.
    std::uint64_t last(std::string_view topic_key) const {
        auto it = streams_.find(topic_key);
        return it == streams_.end() ? 0 : it->second.last;
    }

private:
    struct stream {
        std::uint64_t last = 0;                // highest seq seen: the recovery offset
        std::array<std::uint64_t, 3> phases{}; // highest seq seen per phase (kpis, none, complete)
    };
    std::string epoch_;
    std::map<std::string, stream, std::less<>> streams_;
};

} // namespace rtpush::detail

#endif
