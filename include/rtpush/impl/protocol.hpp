//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_IMPL_PROTOCOL_HPP
#define RTPUSH_IMPL_PROTOCOL_HPP

#include <cmath>
#include <cstdio>
#include <ctime>
#include <vector>

namespace rtpush {

inline std::string_view to_string(priority p) noexcept {
    switch (p) {
    case priority::low:
        return "low";
    case priority::medium:
        return "medium";
    case priority::high:
        return "high";
    case priority::urgent:
        return "urgent";
    }
    return "medium";
}

inline bool parse_priority(std::string_view s, priority& out) noexcept {
    if (s == "low")
        out = priority::low;
    else if (s == "medium")
        out = priority::medium;
    else if (s == "high")
        out = priority::high;
    else if (s == "urgent")
        out = priority::urgent;
    else
        return false;
    return true;
}

namespace detail {

inline bool read_string(const boost::json::object& o, std::string_view key, std::string& out,
                        std::string& detail) {
    auto const* v = o.if_contains(key);
    if (!v || v->is_null())
        return true;
    if (!v->is_string()) {
        detail = std::string("'") + std::string(key) + "' must be a string";
        return false;
    }
    out = std::string(v->get_string());
    return true;
}

// Reads channel and scope; accepts seed 001's field names (organization_id, department_id,
// queue_name) beside org/dept/queue so clients written for that back end port one to one
// (docs/protocol.md, "Topics and scopes" and "Seed parity").
inline bool read_topic(const boost::json::object& o, topic& t, std::string& detail) {
    auto const* ch = o.if_contains("channel");
    if (!ch || !ch->is_string()) {
        detail = "'channel' (string) is required";
        return false;
    }
    t.channel = std::string(ch->get_string());
    if (auto const* sc = o.if_contains("scope"); sc && !sc->is_null()) {
        if (!sc->is_object()) {
            detail = "'scope' must be an object";
            return false;
        }
        auto const& so = sc->get_object();
        if (!read_string(so, "org", t.scope.org, detail) ||
            !read_string(so, "organization_id", t.scope.org, detail) ||
            !read_string(so, "dept", t.scope.dept, detail) ||
            !read_string(so, "department_id", t.scope.dept, detail) ||
            !read_string(so, "queue", t.scope.queue, detail) ||
            !read_string(so, "queue_name", t.scope.queue, detail))
            return false;
    }
    if (validate(t)) {
        detail = "invalid channel or scope: identifiers are 1-128 of [A-Za-z0-9_.@-], and a "
                 "dept needs an org, a queue needs a dept";
        return false;
    }
    return true;
}

// Reads an optional `clientId` (hello, authenticate).
inline bool read_client_id(const boost::json::object& o, std::string& out, std::string& detail) {
    auto const* c = o.if_contains("clientId");
    if (!c || c->is_null())
        return true;
    if (!c->is_string() || !valid_client_id(c->get_string())) {
        detail = "'clientId' is 1-128 characters of [A-Za-z0-9_.@:-]";
        return false;
    }
    out = std::string(c->get_string());
    return true;
}

// Reads `recover: {epoch, offset?, offsets?: {topic: offset}}` of a subscribe.
inline bool read_recover(const boost::json::value& v, recover_position& out, std::string& detail) {
    auto offset_of = [](const boost::json::value& x, std::uint64_t& n) {
        boost::system::error_code ec;
        if (!x.is_number())
            return false;
        n = x.to_number<std::uint64_t>(ec);
        return !ec;
    };
    detail = "'recover' is {epoch: string, offset?: integer >= 0, offsets?: {topic: integer}}";
    if (!v.is_object())
        return false;
    auto const& o = v.get_object();
    auto const* e = o.if_contains("epoch");
    if (!e || !e->is_string())
        return false;
    out.epoch = std::string(e->get_string());
    if (auto const* off = o.if_contains("offset"); off && !offset_of(*off, out.offset))
        return false;
    if (auto const* offs = o.if_contains("offsets"); offs && !offs->is_null()) {
        if (!offs->is_object() || offs->get_object().size() > 4096)
            return false;
        for (auto const& kv : offs->get_object()) {
            std::uint64_t n = 0;
            if (!offset_of(kv.value(), n))
                return false;
            out.offsets.emplace(std::string(kv.key()), n);
        }
    }
    detail.clear();
    return true;
}

} // namespace detail

inline bool finite_numbers(const boost::json::value& v) {
    // An explicit stack: values built in code are not bounded by a parser's depth limit.
    std::vector<const boost::json::value*> todo{&v};
    while (!todo.empty()) {
        auto const* x = todo.back();
        todo.pop_back();
        if (x->is_double()) {
            if (!std::isfinite(x->get_double()))
                return false;
        } else if (x->is_array()) {
            for (auto const& e : x->get_array())
                todo.push_back(&e);
        } else if (x->is_object()) {
            for (auto const& kv : x->get_object())
                todo.push_back(&kv.value());
        }
    }
    return true;
}

inline client_message parse_client_message(std::string_view text, const parse_limits& limits,
                                           boost::system::error_code& ec, std::string& detail) {
    client_message m;
    ec = {};
    if (text.size() > limits.max_size) {
        ec = error::message_too_large;
        detail = "message exceeds " + std::to_string(limits.max_size) + " bytes";
        return m;
    }
    boost::json::parse_options opt;
    opt.max_depth = limits.max_depth;
    boost::system::error_code jec;
    boost::json::value v = boost::json::parse(text, jec, {}, opt);
    if (jec) {
        ec = error::invalid_message;
        detail = "malformed JSON: " + jec.message();
        return m;
    }
    if (!finite_numbers(v)) {
        ec = error::invalid_message;
        detail = "a number is out of range (JSON has no Infinity)";
        return m;
    }
    if (!v.is_object()) {
        ec = error::invalid_message;
        detail = "a message is a JSON object";
        return m;
    }
    auto& o = v.get_object();
    if (auto* id = o.if_contains("id")) {
        if (id->is_string() || id->is_number())
            m.id = *id;
    }
    auto const* type = o.if_contains("type");
    if (!type || !type->is_string()) {
        ec = error::invalid_message;
        detail = "'type' (string) is required";
        return m;
    }
    std::string_view const t = type->get_string();
    bool needs_topic = true;
    if (t == "subscribe")
        m.type = client_message_type::subscribe;
    else if (t == "unsubscribe")
        m.type = client_message_type::unsubscribe;
    else if (t == "get")
        m.type = client_message_type::get;
    else if (t == "history")
        m.type = client_message_type::history; // its paging fields: detail/history_query.hpp
    else if (t == "presence")
        m.type = client_message_type::presence;
    else if (t == "publish")
        m.type = client_message_type::publish;
    else if (t == "refresh") {
        // A bare {"type":"refresh"} (seed 000's, docs/protocol.md "Client → server"): the
        // channel is then optional
        m.type = client_message_type::refresh;
        needs_topic = o.contains("channel");
    } else if (t == "ping") {
        m.type = client_message_type::ping;
        needs_topic = false;
    } else if (t == "authenticate") {
        m.type = client_message_type::authenticate;
        needs_topic = false;
        if (!detail::read_client_id(o, m.client_id, detail)) {
            ec = error::invalid_message;
            return m;
        }
        if (auto* d = o.if_contains("data")) {
            if (d->is_object() && m.client_id.empty() &&
                !detail::read_client_id(d->get_object(), m.client_id, detail)) {
                ec = error::invalid_message;
                return m;
            }
            m.data = std::move(*d);
        } else
            m.data = v; // credentials may sit at the top level too
    } else if (t == "ack") {
        m.type = client_message_type::ack;
        needs_topic = false;
        if (m.id.is_null()) {
            ec = error::invalid_message;
            detail = "'id' (the ackId of the message being acknowledged) is required";
            return m;
        }
    } else if (t == "hello") {
        m.type = client_message_type::hello;
        needs_topic = false;
        if (!detail::read_client_id(o, m.client_id, detail)) {
            ec = error::invalid_message;
            return m;
        }
        if (m.client_id.empty()) {
            ec = error::invalid_message;
            detail = "'clientId' is required";
            return m;
        }
    } else {
        ec = error::invalid_message;
        detail = "unknown message type '" + std::string(t) + "'";
        return m;
    }
    if (needs_topic && !detail::read_topic(o, m.topic, detail)) {
        ec = error::invalid_message;
        return m;
    }
    if (m.type == client_message_type::history)
        m.data = o; // since, until, limit, cursor, order: read where GET /api/history reads them
    if (m.type == client_message_type::subscribe) {
        if (auto const* r = o.if_contains("recover"); r && !r->is_null()) {
            m.recover.emplace();
            if (!detail::read_recover(*r, *m.recover, detail)) {
                ec = error::invalid_message;
                return m;
            }
        }
    }
    if (m.type == client_message_type::publish) {
        if (!detail::read_string(o, "event", m.event, detail) ||
            !detail::read_string(o, "phase", m.phase, detail)) {
            ec = error::invalid_message;
            return m;
        }
        if (!m.phase.empty() && m.phase != "kpis" && m.phase != "complete") {
            ec = error::invalid_message;
            detail = "'phase' is \"kpis\" or \"complete\"";
            return m;
        }
        auto* d = o.if_contains("data");
        if (!d) {
            ec = error::invalid_message;
            detail = "'data' is required";
            return m;
        }
        m.data = std::move(*d);
        if (auto const* ra = o.if_contains("requires_ack"); ra && !ra->is_null()) {
            if (!ra->is_bool()) {
                ec = error::invalid_message;
                detail = "'requires_ack' must be a boolean";
                return m;
            }
            m.requires_ack = ra->get_bool();
        }
    }
    return m;
}

inline bool valid_client_id(std::string_view s) noexcept {
    if (s.empty() || s.size() > 128)
        return false;
    for (char c : s) {
        bool const ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '@' || c == ':' ||
                        c == '-';
        if (!ok)
            return false;
    }
    return true;
}

inline std::string iso8601(std::chrono::system_clock::time_point tp) {
    using namespace std::chrono;
    auto const ms = duration_cast<milliseconds>(tp.time_since_epoch()).count();
    auto const whole = ms >= 0 ? ms / 1000 : (ms - 999) / 1000; // floor, before 1970 too
    auto const milli = static_cast<int>(ms - whole * 1000);
    // Every log line and message has a timestamp, thousands per second in the same second:
    // the calendar part is formatted once per second and thread, the milliseconds each time.
    thread_local std::time_t cached_secs = -1;
    thread_local char cached[96] = {};
    std::time_t const secs = static_cast<std::time_t>(whole);
    if (secs != cached_secs || cached[0] == 0) {
        std::tm tm{};
        gmtime_r(&secs, &tm);
        std::snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_secs = secs;
    }
    std::string out(cached);
    out.push_back(static_cast<char>('0' + milli / 100));
    out.push_back(static_cast<char>('0' + milli / 10 % 10));
    out.push_back(static_cast<char>('0' + milli % 10));
    out.push_back('Z');
    return out;
}

inline boost::json::object scope_to_json(const scope& s) {
    boost::json::object o;
    if (!s.org.empty())
        o["org"] = s.org;
    if (!s.dept.empty())
        o["dept"] = s.dept;
    if (!s.queue.empty())
        o["queue"] = s.queue;
    return o;
}

namespace message {
namespace detail {

inline boost::json::object base(std::string_view type) {
    boost::json::object o;
    o["type"] = type;
    return o;
}

inline void put_topic(boost::json::object& o, const topic& t, std::string_view key) {
    o["channel"] = t.channel;
    o["scope"] = scope_to_json(t.scope);
    o["topic"] = key;
}

inline void put_topic(boost::json::object& o, const topic& t) {
    put_topic(o, t, t.key());
}

inline void put_id(boost::json::object& o, const boost::json::value& id) {
    if (!id.is_null())
        o["id"] = id;
}

} // namespace detail

inline std::string connected(std::string_view client_id, std::string_view server,
                             std::chrono::milliseconds heartbeat) {
    auto o = detail::base("connected");
    o["clientId"] = client_id;
    o["server"] = server;
    o["heartbeatInterval"] = heartbeat.count();
    o["protocol"] = 1;
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string subscribed(const topic& t, const boost::json::value& id,
                              std::optional<bool> recovered, std::string_view epoch,
                              std::string_view reason) {
    auto o = detail::base("subscribed");
    detail::put_topic(o, t);
    detail::put_id(o, id);
    if (!epoch.empty())
        o["epoch"] = epoch;
    if (recovered) {
        o["recovered"] = *recovered;
        if (!*recovered && !reason.empty())
            o["reason"] = reason;
    }
    return boost::json::serialize(o);
}

inline std::string unsubscribed(const topic& t, const boost::json::value& id) {
    auto o = detail::base("unsubscribed");
    detail::put_topic(o, t);
    detail::put_id(o, id);
    return boost::json::serialize(o);
}

inline std::string pong(const boost::json::value& id) {
    auto o = detail::base("pong");
    detail::put_id(o, id);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string heartbeat(std::size_t clients) {
    auto o = detail::base("heartbeat");
    o["timestamp"] = iso8601_now();
    o["clients"] = clients;
    return boost::json::serialize(o);
}

inline std::string error(rtpush::error code, std::string_view msg, const boost::json::value& id) {
    auto o = detail::base("error");
    o["code"] = wire_code(code);
    o["message"] = msg;
    detail::put_id(o, id);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string rate_limit(double retry_after, const boost::json::value& id) {
    auto o = detail::base("rate_limit");
    o["retryAfter"] = retry_after;
    detail::put_id(o, id);
    return boost::json::serialize(o);
}

inline std::string refreshing(const topic& t) {
    auto o = detail::base("refreshing");
    detail::put_topic(o, t);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string published(const topic& t, std::uint64_t seq, const boost::json::value& id,
                             std::string_view ack_id) {
    auto o = detail::base("published");
    detail::put_topic(o, t);
    o["seq"] = seq;
    if (!ack_id.empty())
        o["ackId"] = ack_id;
    detail::put_id(o, id);
    return boost::json::serialize(o);
}

inline std::string authenticated(std::string_view user, std::string_view org,
                                 const boost::json::value& id) {
    auto o = detail::base("authenticated");
    o["userId"] = user;
    o["organizationId"] = org;
    detail::put_id(o, id);
    return boost::json::serialize(o);
}

inline std::string presence(const topic& t, boost::json::array members,
                            const boost::json::value& id) {
    auto o = detail::base("presence");
    o["channel"] = t.channel;
    o["scope"] = scope_to_json(t.scope);
    o["topic"] = t.key();
    o["count"] = members.size();
    o["members"] = std::move(members);
    detail::put_id(o, id);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string membership(std::string_view type, const topic& t, std::string_view client_id,
                              std::string_view user, std::string_view org) {
    auto o = detail::base(type);
    o["channel"] = t.channel;
    o["scope"] = scope_to_json(t.scope);
    o["topic"] = t.key();
    boost::json::object who;
    who["client_id"] = client_id;
    who["user_id"] = user;
    who["organization_id"] = org;
    o["client"] = std::move(who);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string token_expiring(std::int64_t expires_at, std::int64_t expires_in) {
    auto o = detail::base("token_expiring");
    o["expiresAt"] = expires_at;
    o["expiresIn"] = expires_in;
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

inline std::string publication(std::string_view type, const rtpush::publication& p,
                               std::uint64_t seq, std::string_view epoch,
                               std::string_view timestamp, bool redelivered,
                               std::string_view topic_key) {
    auto o = detail::base(type);
    o["event"] = p.event.empty() ? p.topic.channel + ":update" : p.event;
    detail::put_topic(o, p.topic, topic_key);
    o["seq"] = seq;
    o["offset"] = seq;
    o["epoch"] = epoch;
    if (!p.phase.empty())
        o["phase"] = p.phase;
    o["priority"] = to_string(p.priority);
    o["data"] = p.data;
    o["timestamp"] = timestamp;
    if (!p.ack_id.empty() && type == "update") {
        o["ackId"] = p.ack_id;
        if (redelivered)
            o["redelivered"] = true;
    }
    return boost::json::serialize(o);
}

inline std::string publication(std::string_view type, const rtpush::publication& p,
                               std::uint64_t seq, std::string_view epoch,
                               std::string_view timestamp, bool redelivered) {
    return publication(type, p, seq, epoch, timestamp, redelivered, p.topic.key());
}

inline std::string targeted(const rtpush::publication& p, std::string_view timestamp,
                            std::string_view topic_key, bool redelivered) {
    auto o = detail::base("update");
    o["event"] = p.event.empty() ? p.topic.channel + ":update" : p.event;
    detail::put_topic(o, p.topic, topic_key);
    if (!p.phase.empty())
        o["phase"] = p.phase;
    o["priority"] = to_string(p.priority);
    o["data"] = p.data;
    o["timestamp"] = timestamp;
    if (!p.ack_id.empty()) {
        o["ackId"] = p.ack_id;
        if (redelivered)
            o["redelivered"] = true;
    }
    return boost::json::serialize(o);
}

inline std::string hello(std::string_view client_id, std::size_t pending,
                         const boost::json::value& id) {
    auto o = detail::base("hello");
    o["clientId"] = client_id;
    o["pending"] = pending;
    detail::put_id(o, id);
    return boost::json::serialize(o);
}

} // namespace message

} // namespace rtpush

#endif
