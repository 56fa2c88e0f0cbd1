//
// rtpush: reading past publications (GET /api/history, docs/protocol.md "History").
//
#ifndef RTPUSH_HISTORY_HPP
#define RTPUSH_HISTORY_HPP

#include <rtpush/topic.hpp>

#include <boost/json/array.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace rtpush {

/// Which past publications to read: those of `topic` and of every narrower topic, published
/// within [since_ms, until_ms] (Unix milliseconds), one page at a time.
struct history_query {
    rtpush::topic topic;
    std::optional<std::int64_t> since_ms;
    std::optional<std::int64_t> until_ms;
    std::size_t limit = 100;
    /// The `next_cursor` of the previous page; empty: the first page.
    std::optional<std::int64_t> cursor;
    bool oldest_first = false; ///< default: newest first
};

/// One page: items as {topic, channel, scope, event, phase, seq, epoch, data, timestamp}.
struct history_page {
    boost::json::array items;
    /// Where the next page starts; empty when this page is the last.
    std::optional<std::int64_t> next_cursor;
};

} // namespace rtpush

#endif
