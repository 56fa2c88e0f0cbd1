//
// rtpush: who may read what. One place for the scope a request names (query or JSON, with
// seed 001's long names) and for topic access, shared by the WebSocket session, SSE and the
// REST reads of tenant data (docs/security.md, "Tenants").
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_ACCESS_HPP
#define RTPUSH_DETAIL_ACCESS_HPP

#include <rtpush/auth.hpp>
#include <rtpush/topic.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

using query_map = std::map<std::string, std::string>;

/// One scope level under its two names: rtpush's short one and seed 001's long one.
struct scope_level_names {
    std::string_view short_name, long_name;
};
inline constexpr scope_level_names scope_names[3] = {
    {"org", "organization_id"}, {"dept", "department_id"}, {"queue", "queue_name"}};

/// A query parameter under either name; the short name wins when both are given.
inline std::string query_param(const query_map& q, scope_level_names n) {
    if (auto it = q.find(std::string(n.short_name)); it != q.end())
        return it->second;
    if (auto it = q.find(std::string(n.long_name)); it != q.end())
        return it->second;
    return {};
}

/// The scope of `?org=&dept=&queue=` (or organization_id, department_id, queue_name).
/// Not validated: validate(topic) does that with the channel.
inline scope scope_from_query(const query_map& q) {
    return scope{query_param(q, scope_names[0]), query_param(q, scope_names[1]),
                 query_param(q, scope_names[2])};
}

/// The scope of a JSON object (a broadcast's target, an ingest payload); string members
/// only, the short name winning as in a query.
inline scope scope_from_json(const boost::json::object& o) {
    auto get = [&](scope_level_names n) {
        for (auto name : {n.short_name, n.long_name})
            if (auto const* v = o.if_contains(name); v && v->is_string())
                return std::string(v->get_string());
        return std::string();
    };
    return scope{get(scope_names[0]), get(scope_names[1]), get(scope_names[2])};
}

/// Must a client hold a verified token before it reads tenant data (WebSocket and SSE
/// subscriptions, REST reads)? Yes once the server can verify tokens (a secret), unless the
/// deployment declares anonymous clients trusted (`allow_anonymous`); `auth_required` asks
/// for it explicitly. The server applies this once, at construction, to its copy of the
/// configuration (`auth_required`), which every transport reads.
inline bool token_required(bool has_secret, bool auth_required, bool allow_anonymous) {
    return auth_required || (has_secret && !allow_anonymous);
}

/// What a connection's token calls for at wall-clock time `now` (seconds since the epoch).
/// The verifier accepts a token up to `exp + leeway`, so the connection lives as long; it is
/// warned once, `warning` before that end (docs/security.md, "A token's lifetime on an open
/// connection").
struct token_expiry {
    enum class step { none, warn, expire };
    step what = step::none;
    std::int64_t expires_in = 0; ///< seconds until the end (warn)
};
inline token_expiry token_expiry_at(std::int64_t exp, std::chrono::seconds leeway,
                                    std::chrono::seconds warning, bool warned, std::int64_t now) {
    if (exp == 0) // a token without exp, or no token
        return {};
    std::int64_t const end = exp + leeway.count();
    if (now >= end)
        return {token_expiry::step::expire, 0};
    if (warned || warning.count() <= 0 || end - now > warning.count())
        return {};
    return {token_expiry::step::warn, end - now};
}

/// Who a connection or a request is, as far as access goes.
struct identity {
    bool authenticated = false;        ///< a verified token (or an authenticate message)
    std::string org;                   ///< its organization
    std::vector<std::string> channels; ///< the token's channels; empty = any

    static identity of(const jwt_claims& c) { return identity{true, c.org, c.channels}; }
};

/// Why a read is refused.
enum class access_denial {
    org_required,       ///< a channel-wide topic spans every organization
    other_organization, ///< another tenant's topic
    channel_not_allowed ///< outside the token's `channels`
};

/// May `who` read (subscribe to, get, stream, publish on) `t`? An authenticated identity
/// stays inside its organization and its token's channels; an anonymous one is not limited
/// here (the server's auth settings decide whether anonymous clients get this far).
inline std::optional<access_denial> may_read(const identity& who, const topic& t) {
    if (!who.authenticated)
        return std::nullopt;
    if (t.scope.org != who.org)
        return t.scope.org.empty() ? access_denial::org_required
                                   : access_denial::other_organization;
    if (!who.channels.empty() &&
        std::find(who.channels.begin(), who.channels.end(), t.channel) == who.channels.end())
        return access_denial::channel_not_allowed;
    return std::nullopt;
}

/// The refusal's text; `subject` names the requester ("this client", "this token") and
/// `org_field` the field that sets the organization ("scope.org", "org").
inline std::string denial_message(access_denial d, const identity& who, const topic& t,
                                  std::string_view subject, std::string_view org_field) {
    switch (d) {
    case access_denial::org_required:
        return std::string(org_field) + " is required: " + std::string(subject) +
               " may only access organization " + who.org;
    case access_denial::other_organization:
        return std::string(subject) + " may not access organization " + t.scope.org;
    case access_denial::channel_not_allowed:
        break;
    }
    return "this token does not allow channel " + t.channel;
}

} // namespace rtpush::detail

#endif
