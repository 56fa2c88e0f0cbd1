//
// rtpush: a history request (GET /api/history's query string, or the WebSocket `history`
// message) as a history_query, and the page as its answer. Socket-free; the route table and
// the connection's protocol answer the errors (docs/protocol.md, "History").
//
#ifndef RTPUSH_DETAIL_HISTORY_QUERY_HPP
#define RTPUSH_DETAIL_HISTORY_QUERY_HPP

#include <rtpush/detail/access.hpp>
#include <rtpush/history.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json/object.hpp>

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

/// The same from a WebSocket `history` message: its topic (already read) and its fields
/// `since`, `until`, `limit`, `cursor` (numbers, or their decimal text) and `order`, under the
/// rules above.
inline std::optional<history_query_error>
parse_history_message(const topic& t, const boost::json::object& o, history_query& q) {
    query_map params{{"channel", t.channel}};
    if (!t.scope.org.empty())
        params["org"] = t.scope.org;
    if (!t.scope.dept.empty())
        params["dept"] = t.scope.dept;
    if (!t.scope.queue.empty())
        params["queue"] = t.scope.queue;
    for (const char* name : {"since", "until", "limit", "cursor", "order"}) {
        auto const* v = o.if_contains(name);
        if (!v || v->is_null())
            continue;
        if (v->is_string())
            params[name] = std::string(v->get_string());
        else if (v->is_int64())
            params[name] = std::to_string(v->get_int64());
        else if (v->is_uint64())
            params[name] = std::to_string(v->get_uint64());
        else
            return history_query_error{name, std::string(name) + (std::string_view(name) == "order"
                                                                      ? " must be newest or oldest"
                                                                      : " must be a non-negative "
                                                                        "integer")};
    }
    return parse_history_query(params, q);
}

/// A page as both answers carry it: `head`'s fields (the route's `success`, the WebSocket
/// answer's `type` and `id`), then {channel, scope, topic, epoch, order, count, items,
/// next_cursor}.
inline boost::json::object history_json(const history_query& q, history_page page,
                                        const std::string& epoch, boost::json::object head = {}) {
    boost::json::object o = std::move(head);
    o["channel"] = q.topic.channel;
    o["scope"] = scope_to_json(q.topic.scope);
    o["topic"] = q.topic.key();
    o["epoch"] = epoch;
    o["order"] = q.oldest_first ? "oldest" : "newest";
    o["count"] = page.items.size();
    o["items"] = std::move(page.items);
    if (page.next_cursor)
        o["next_cursor"] = *page.next_cursor;
    else
        o["next_cursor"] = nullptr;
    return o;
}

/// The `history` message answering `q` (asked with `id`), or the error that lost the read.
inline std::string history_answer(const history_query& q, const boost::json::value& id,
                                  boost::system::error_code ec, history_page page,
                                  const std::string& epoch) {
    if (ec)
        return message::error(error::internal_error, "the history cannot be read: " + ec.message(),
                              id);
    boost::json::object head{{"type", "history"}};
    if (!id.is_null())
        head["id"] = id;
    auto o = history_json(q, std::move(page), epoch, std::move(head));
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

} // namespace rtpush::detail

#endif
