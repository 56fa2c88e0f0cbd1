//
// rtpush: the seeds' event contracts (docs/protocol.md, "Coming from Socket.IO"), read into
// rtpush's own client messages. A seed 001 client sends `{"event":"subscribe","data":
// {"channels":["kpi"],"organization_id":"org_123"}}` as a JSON line, or the same event as a
// Socket.IO EVENT; both become one rtpush `subscribe` per channel, which the client protocol
// (detail/client_protocol.hpp) then handles like any other. Free of I/O.
//
#ifndef RTPUSH_DETAIL_SEED_EVENTS_HPP
#define RTPUSH_DETAIL_SEED_EVENTS_HPP

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// What an event asks for.
enum class seed_event_kind {
    messages,    ///< rtpush client messages, in `messages`
    client_ping, ///< seed 001's `client:ping`: answer `client:pong`
    refused,     ///< not an event rtpush knows, or bad data: `why` says which
};

struct seed_event {
    seed_event_kind kind = seed_event_kind::refused;
    std::vector<boost::json::object> messages; ///< each with its "type"
    std::string why;
};

/// The rtpush message names an event may carry directly (`42["get",{"channel":"kpi"}]`).
inline bool rtpush_message_name(std::string_view n) noexcept {
    return n == "subscribe" || n == "unsubscribe" || n == "get" || n == "publish" ||
           n == "refresh" || n == "ping" || n == "authenticate" || n == "ack" || n == "hello";
}

/// Reads one event. `data` is the event's argument (null when it has none).
///   - subscribe / unsubscribe (also `client:subscribe`, `client:unsubscribe`): `channels`
///     (array) or `channel` (string); the scope as `scope: {...}` or flat seed 001 fields
///     (`organization_id`, `department_id`, `queue_name`, or `org`, `dept`, `queue`); every
///     other field (e.g. `recover`) is kept. One message per channel.
///   - subscribe / unsubscribe with a string: that channel, unscoped.
///   - client:ping: client_ping.
///   - any other rtpush message name: the data's fields with that `type`.
inline seed_event read_seed_event(std::string_view name, const boost::json::value& data) {
    seed_event r;
    if (name == "client:ping") {
        r.kind = seed_event_kind::client_ping;
        return r;
    }
    if (name.starts_with("client:"))
        name.remove_prefix(7); // client:subscribe, client:unsubscribe
    if (!rtpush_message_name(name)) {
        r.why = "unknown event '" + std::string(name) +
                "' (events: subscribe, unsubscribe, authenticate, get, publish, refresh, ping, "
                "ack, hello, client:ping)";
        return r;
    }
    if (data.is_string() && (name == "subscribe" || name == "unsubscribe")) {
        // `socket.emit('subscribe', 'kpi')`: a room name alone
        boost::json::object m{{"type", name}, {"channel", data}};
        r.kind = seed_event_kind::messages;
        r.messages.push_back(std::move(m));
        return r;
    }
    if (!data.is_null() && !data.is_object()) {
        r.why = "the data of '" + std::string(name) + "' must be an object";
        return r;
    }
    boost::json::object base = data.is_object() ? data.get_object() : boost::json::object{};
    base["type"] = name;
    if (name != "subscribe" && name != "unsubscribe") {
        r.kind = seed_event_kind::messages;
        r.messages.push_back(std::move(base));
        return r;
    }
    // The scope's flat fields move into `scope` (an explicit `scope` wins).
    if (!base.contains("scope")) {
        boost::json::object sc;
        for (std::string_view f :
             {"organization_id", "department_id", "queue_name", "org", "dept", "queue"})
            if (auto it = base.find(f); it != base.end()) {
                sc[f] = it->value();
                base.erase(it);
            }
        if (!sc.empty())
            base["scope"] = std::move(sc);
    }
    std::vector<boost::json::value> channels;
    if (auto const* cs = base.if_contains("channels")) {
        if (!cs->is_array() || cs->get_array().empty()) {
            r.why = "'channels' must be a non-empty array of channel names";
            return r;
        }
        for (auto const& c : cs->get_array())
            channels.push_back(c);
        base.erase("channels");
    } else if (auto const* c = base.if_contains("channel")) {
        channels.push_back(*c);
    } else {
        r.why = "'channels' (array) or 'channel' (string) is required";
        return r;
    }
    for (auto const& c : channels) {
        if (!c.is_string()) {
            r.why = "channel names must be strings";
            r.messages.clear();
            return r;
        }
        auto m = base;
        m["channel"] = c;
        r.messages.push_back(std::move(m));
    }
    r.kind = seed_event_kind::messages;
    return r;
}

} // namespace rtpush::detail

#endif
