//
// rtpush: what the durable store (rtpush/sqlite_store.hpp) writes and how it bounds a topic's
// history, without a database: a publication as one row's JSON text, and the window that
// decides which rows of a topic to delete. Socket-free and file-free, tested alone.
//
#ifndef RTPUSH_DETAIL_STORE_CODEC_HPP
#define RTPUSH_DETAIL_STORE_CODEC_HPP

#include <rtpush/config.hpp>
#include <rtpush/error.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// A publication as stored: everything a replay or an `initial` needs to rebuild its frame.
/// Short member names: a row is written for every publication.
inline std::string encode_publication(const publication& p) {
    boost::json::object o;
    o["c"] = p.topic.channel;
    if (!p.topic.scope.org.empty())
        o["o"] = p.topic.scope.org;
    if (!p.topic.scope.dept.empty())
        o["d"] = p.topic.scope.dept;
    if (!p.topic.scope.queue.empty())
        o["q"] = p.topic.scope.queue;
    o["e"] = p.event;
    if (!p.phase.empty())
        o["ph"] = p.phase;
    o["pr"] = to_string(p.priority);
    if (!p.ack_id.empty())
        o["a"] = p.ack_id;
    o["data"] = p.data;
    return boost::json::serialize(o);
}

/// The inverse of encode_publication; error::store_corrupt for anything it did not write.
inline publication decode_publication(std::string_view text, boost::system::error_code& ec) {
    publication p;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) {
        ec = error::store_corrupt;
        return p;
    }
    auto& o = v.get_object();
    auto str = [&](const char* k, std::string& out) {
        if (auto const* s = o.if_contains(k)) {
            if (!s->is_string())
                return false;
            out = s->get_string();
        }
        return true;
    };
    std::string prio = "medium";
    bool const ok = str("c", p.topic.channel) && str("o", p.topic.scope.org) &&
                    str("d", p.topic.scope.dept) && str("q", p.topic.scope.queue) &&
                    str("e", p.event) && str("ph", p.phase) && str("pr", prio) &&
                    str("a", p.ack_id) && o.contains("data");
    if (!ok || validate(p.topic) || !parse_priority(prio, p.priority)) {
        ec = error::store_corrupt;
        return p;
    }
    p.data = std::move(o["data"]);
    ec = {};
    return p;
}

/// The stored history of one topic, as the writer sees it: which rows to delete so that it
/// keeps the hub's limits (count, bytes, age; see hub_config). Seqs are consecutive.
class history_window {
public:
    void push(std::uint64_t seq, std::size_t bytes, std::int64_t at_ms) {
        rows_.push_back({seq, bytes, at_ms});
        bytes_ += bytes;
    }

    /// Drops the oldest rows beyond the limits at `now_ms`; returns the first seq kept (rows
    /// below it are to be deleted), or 0 when none was dropped.
    std::uint64_t trim(const hub_config& limits, std::int64_t now_ms) {
        std::uint64_t first_kept = 0;
        auto const ttl = limits.history_ttl.count();
        while (!rows_.empty() &&
               (rows_.size() > limits.history_size || bytes_ > limits.history_bytes ||
                now_ms - rows_.front().at_ms > ttl)) {
            bytes_ -= rows_.front().bytes;
            rows_.pop_front();
            first_kept = rows_.empty() ? 0 : rows_.front().seq;
            if (rows_.empty())
                first_kept = UINT64_MAX; // everything goes
        }
        return first_kept;
    }

    bool empty() const noexcept { return rows_.empty(); }
    std::size_t size() const noexcept { return rows_.size(); }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    struct row {
        std::uint64_t seq;
        std::size_t bytes;
        std::int64_t at_ms;
    };
    std::deque<row> rows_;
    std::size_t bytes_ = 0;
};

/// One history item as GET /api/history answers it.
inline boost::json::object history_item(const publication& p, const std::string& topic_key,
                                        std::uint64_t seq, const std::string& epoch,
                                        const std::string& timestamp) {
    boost::json::object o;
    o["topic"] = topic_key;
    o["channel"] = p.topic.channel;
    o["scope"] = scope_to_json(p.topic.scope);
    o["event"] = p.event;
    if (!p.phase.empty())
        o["phase"] = p.phase;
    o["seq"] = seq;
    o["epoch"] = epoch;
    o["data"] = p.data;
    o["timestamp"] = timestamp;
    return o;
}

} // namespace rtpush::detail

#endif
