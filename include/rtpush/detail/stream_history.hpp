//
// rtpush: a page of GET /api/history from the Redis engine's topic streams, free of I/O
// (docs/protocol.md, "History"; docs/operations.md, "Several nodes (Redis)").
//
#ifndef RTPUSH_DETAIL_STREAM_HISTORY_HPP
#define RTPUSH_DETAIL_STREAM_HISTORY_HPP

#include <rtpush/detail/iso8601.hpp>
#include <rtpush/detail/redis_proto.hpp>
#include <rtpush/detail/store_codec.hpp>
#include <rtpush/history.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace rtpush::detail {

/// One entry of a topic's stream: its seq, its place in the channel's order (the publish
/// script numbers every publication of a channel, whichever topic: the `n` field), and the
/// publication with its timestamp.
struct stream_entry {
    std::string topic_key;
    std::uint64_t seq = 0;
    std::int64_t order = 0;
    std::int64_t at_ms = 0; ///< the timestamp in Unix milliseconds (0: unreadable)
    stored_publication stored;
};

/// A stream entry as XRANGE/XREVRANGE give it: [id, [field, value, ...]] with fields `m`
/// (the publication) and `n` (its place in the channel's order; absent in entries written
/// before it existed, which then sort first). nullopt for what is not one.
inline std::optional<stream_entry> parse_stream_entry(const redis_reply& r, std::string topic_key) {
    if (!r.is_array() || r.elements.size() < 2 || !r.elements[1].is_array())
        return std::nullopt;
    stream_entry e;
    e.topic_key = std::move(topic_key);
    e.seq = stream_id_seq(r.elements[0].str);
    std::optional<stored_publication> pub;
    auto const& fields = r.elements[1].elements;
    for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "m")
            pub = decode_publication(fields[i + 1].str);
        else if (fields[i].str == "n") {
            std::uint64_t n = 0;
            if (parse_seq(fields[i + 1].str, n))
                e.order = static_cast<std::int64_t>(n);
        }
    }
    if (!pub || e.seq == 0)
        return std::nullopt;
    e.stored = std::move(*pub);
    e.at_ms = unix_ms_of_iso8601(e.stored.timestamp).value_or(0);
    return e;
}

/// The page `q` asks for among `entries` (every entry of the topics it covers, in any
/// order): ordered by the channel's order, newest first unless `oldest_first`, after the
/// cursor (a place in that order, the same on every node), within since..until.
inline history_page stream_history_page(std::vector<stream_entry> entries, const history_query& q,
                                        const std::string& epoch) {
    std::erase_if(entries, [&](const stream_entry& e) {
        return (q.cursor && (q.oldest_first ? e.order <= *q.cursor : e.order >= *q.cursor)) ||
               (q.since_ms && e.at_ms < *q.since_ms) || (q.until_ms && e.at_ms > *q.until_ms);
    });
    // Entries written before the order existed all have 0: they sort by topic and seq, and
    // a page never ends among them (a cursor could not tell them apart), so it takes them
    // all; they are bounded by the streams' length.
    auto before = [](const stream_entry& a, const stream_entry& b) {
        return std::tie(a.order, a.topic_key, a.seq) < std::tie(b.order, b.topic_key, b.seq);
    };
    if (q.oldest_first)
        std::sort(entries.begin(), entries.end(), before);
    else
        std::sort(entries.begin(), entries.end(),
                  [&](const stream_entry& a, const stream_entry& b) { return before(b, a); });
    history_page page;
    std::size_t n = std::min(entries.size(), q.limit);
    while (n > 0 && n < entries.size() && entries[n - 1].order == 0 && entries[n].order == 0)
        ++n;
    for (std::size_t i = 0; i < n; ++i) {
        auto& e = entries[i];
        page.items.push_back(
            history_item(e.stored.pub, e.topic_key, e.seq, epoch, e.stored.timestamp));
    }
    if (n > 0 && n < entries.size())
        page.next_cursor = entries[n - 1].order;
    return page;
}

} // namespace rtpush::detail

#endif
