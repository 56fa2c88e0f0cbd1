//
// rtpush: GET /api/history's query string as a history_query. Socket-free; the route table
// answers the errors (docs/protocol.md, "History").
//
#ifndef RTPUSH_DETAIL_HISTORY_QUERY_HPP
#define RTPUSH_DETAIL_HISTORY_QUERY_HPP

#include <rtpush/detail/access.hpp>
#include <rtpush/history.hpp>

#include <charconv>
#include <string>

namespace rtpush::detail {

/// Most items one page holds: a page is built in memory and sent in one answer.
inline constexpr std::size_t max_history_limit = 1000;

struct history_query_error {
    std::string field;
    std::string message;
};

/// Fills `q` from `?channel=&org=&dept=&queue=&since=&until=&limit=&cursor=&order=`; returns
/// the first bad parameter, if any. The scope comes from scope_from_query, like every route's.
inline std::optional<history_query_error> parse_history_query(const query_map& params,
                                                              history_query& q) {
    auto find = [&](const char* name) -> const std::string* {
        auto it = params.find(name);
        return it == params.end() ? nullptr : &it->second;
    };
    auto number = [&](const char* name,
                      std::optional<std::int64_t>& out) -> std::optional<history_query_error> {
        auto const* v = find(name);
        if (!v)
            return std::nullopt;
        std::int64_t n = 0;
        auto const [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (ec != std::errc{} || end != v->data() + v->size() || n < 0)
            return history_query_error{name, std::string(name) + " must be a non-negative integer"};
        out = n;
        return std::nullopt;
    };
    auto const* channel = find("channel");
    if (!channel || channel->empty())
        return history_query_error{"channel", "channel is required"};
    q.topic = topic{*channel, scope_from_query(params)};
    if (validate(q.topic))
        return history_query_error{"channel", "invalid channel or scope (identifiers are "
                                              "[A-Za-z0-9_.@-], a dept needs an org, a queue "
                                              "needs a dept)"};
    if (auto e = number("since", q.since_ms))
        return e;
    if (auto e = number("until", q.until_ms))
        return e;
    if (auto e = number("cursor", q.cursor))
        return e;
    std::optional<std::int64_t> limit;
    if (auto e = number("limit", limit))
        return e;
    if (limit) {
        if (*limit < 1 || *limit > static_cast<std::int64_t>(max_history_limit))
            return history_query_error{"limit",
                                       "limit must be 1.." + std::to_string(max_history_limit)};
        q.limit = static_cast<std::size_t>(*limit);
    }
    if (auto const* order = find("order")) {
        if (*order != "newest" && *order != "oldest")
            return history_query_error{"order", "order must be newest or oldest"};
        q.oldest_first = *order == "oldest";
    }
    return std::nullopt;
}

} // namespace rtpush::detail

#endif
