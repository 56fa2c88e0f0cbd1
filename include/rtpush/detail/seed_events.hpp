//
// rtpush: the seeds' event contracts (docs/protocol.md, "Coming from Socket.IO"), read into
// rtpush's own client messages. A seed 001 client sends `{"event":"subscribe","data":
// {"channels":["kpi"],"organization_id":"org_123"}}` as a JSON line, or the same event as a
// Socket.IO EVENT; both become one rtpush `subscribe` per channel, which the client protocol
// (detail/client_protocol.hpp) then handles like any other. Free of I/O.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_SEED_EVENTS_HPP
#define RTPUSH_DETAIL_SEED_EVENTS_HPP

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// What an event asks for.
enum class seed_event_kind {
    messages,    ///< rtpush client messages, in `messages`
    client_ping, ///< seed 001's `client:ping`: answer `client:pong`
    metrics_get, ///< seed 004's `metrics:get`: `messages` holds the rtpush `get`; answer
                 ///< `metrics:data` (seed004_metrics_data) or `metrics:error`
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
           n == "refresh" || n == "ping" || n == "authenticate" || n == "ack" || n == "hello" ||
           n == "history" || n == "presence";
}

/// Seed 004's regions are the first level of scope of its `metrics` channel: `{source:
/// "us-east"}` is the topic `metrics:org:us-east`, and no source the whole channel (every
/// region). docs/protocol.md, "Coming from Socket.IO".
inline constexpr std::string_view seed004_channel = "metrics";

/// Reads one event. `data` is the event's argument (null when it has none).
///   - subscribe / unsubscribe (also `client:subscribe`, `client:unsubscribe`): `channels`
///     (array) or `channel` (string); the scope as `scope: {...}` or flat seed 001 fields
///     (`organization_id`, `department_id`, `queue_name`, or `org`, `dept`, `queue`); every
///     other field (e.g. `recover`) is kept. One message per channel.
///   - subscribe / unsubscribe with a string: that channel, unscoped.
///   - client:ping: client_ping.
///   - seed 004: metrics:subscribe / metrics:unsubscribe / metrics:get `{source?}`.
///   - any other rtpush message name: the data's fields with that `type` (docs/protocol.md, "Coming
///   from Socket.IO").
inline seed_event read_seed_event(std::string_view name, const boost::json::value& data) {
    seed_event r;
    if (name == "client:ping") {
        r.kind = seed_event_kind::client_ping;
        return r;
    }
    if (name == "metrics:subscribe" || name == "metrics:unsubscribe" || name == "metrics:get") {
        if (!data.is_null() && !data.is_object()) {
            r.why = "the data of '" + std::string(name) + "' must be an object: {source?}";
            return r;
        }
        boost::json::object m{{"type", name.substr(8)}, {"channel", seed004_channel}};
        if (auto const* src = data.is_object() ? data.get_object().if_contains("source") : nullptr;
            src && !src->is_null()) {
            if (!src->is_string()) {
                r.why = "'source' must be a region name (a string)";
                return r;
            }
            m["scope"] = boost::json::object{{"org", *src}};
        }
        r.kind = name == "metrics:get" ? seed_event_kind::metrics_get : seed_event_kind::messages;
        r.messages.push_back(std::move(m));
        return r;
    }
    if (name.starts_with("client:"))
        name.remove_prefix(7); // client:subscribe, client:unsubscribe
    if (!rtpush_message_name(name)) {
        r.why = "unknown event '" + std::string(name) +
                "' (events: subscribe, unsubscribe, authenticate, get, history, presence, publish, "
                "refresh, ping, ack, hello, client:ping, metrics:get, metrics:subscribe, "
                "metrics:unsubscribe)";
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

/// Seed 004's `metrics:data` from rtpush's `snapshot` answer to its `get`: for one region
/// `{api, source, data, updatedAt}`, or nullopt when it has no data (`metrics:error`); for
/// every region `{api, data: [{api, source, data, updatedAt}...], count}`. `api` is the
/// data's own `api` field when it has one (seed 004's pollers name their API), else
/// the channel (docs/protocol.md, "Coming from Socket.IO").
inline std::optional<boost::json::object> seed004_metrics_data(const boost::json::object& snapshot,
                                                               std::string_view source) {
    auto entry = [](const boost::json::object& item) {
        boost::json::object e;
        auto const* data = item.if_contains("data");
        auto const* api =
            data && data->is_object() ? data->get_object().if_contains("api") : nullptr;
        e["api"] = api && api->is_string() ? *api : boost::json::value(seed004_channel);
        auto const* scope = item.if_contains("scope");
        auto const* org =
            scope && scope->is_object() ? scope->get_object().if_contains("org") : nullptr;
        e["source"] = org ? *org : boost::json::value(nullptr);
        // A payload already in seed 004's update shape ({api, source, data, timestamp})
        // gives its inner data; any other is the data itself (docs/protocol.md, "Seed parity").
        auto const* inner = api && data->get_object().contains("source")
                                ? data->get_object().if_contains("data")
                                : nullptr;
        e["data"] = inner ? *inner : data ? *data : boost::json::value(nullptr);
        if (auto const* ts = item.if_contains("timestamp"))
            e["updatedAt"] = *ts;
        return e;
    };
    boost::json::array all;
    if (auto const* items = snapshot.if_contains("items"); items && items->is_array())
        for (auto const& it : items->get_array())
            if (it.is_object())
                all.push_back(entry(it.get_object()));
    if (!source.empty()) {
        if (all.empty())
            return std::nullopt;
        return std::move(all.back().get_object()); // the latest phase written last
    }
    boost::json::object o;
    o["api"] = seed004_channel;
    o["count"] = all.size();
    o["data"] = std::move(all);
    return o;
}

} // namespace rtpush::detail

#endif
