//
// rtpush: who may open a connection. The handshake's rules in their order, as verdicts
// (status, code, message, the reason counted in rtpush_connections_rejected_total), shared by
// the WebSocket upgrade and the SSE stream; free of I/O: the server asks the rate limiter and
// the token verifier through callables and writes the answer (docs/security.md).
//
#ifndef RTPUSH_DETAIL_ADMISSION_HPP
#define RTPUSH_DETAIL_ADMISSION_HPP

#include <rtpush/detail/access.hpp>
#include <rtpush/detail/counters.hpp>
#include <rtpush/detail/http_answers.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/topic.hpp>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// A refused handshake: the answer and, when it counts as a rejection, why.
struct refusal {
    refusal() = default;
    refusal(boost::beast::http::status s, std::string c, std::string m)
        : status(s)
        , code(std::move(c))
        , message(std::move(m)) {}

    boost::beast::http::status status = boost::beast::http::status::bad_request;
    std::string code;    ///< rtpush error code (INVALID_MESSAGE, AUTH_FAILED, ...)
    std::string message; ///< for the client and the log
    std::optional<reject_reason> reason;
    bool retry_after = false;       ///< `Retry-After: 1` (rate limit)
    bool bearer_challenge = false;  ///< `WWW-Authenticate: Bearer`
    bool websocket_version = false; ///< `Sec-WebSocket-Version: 13`
    std::string allow;              ///< `Allow` of a 405
};

/// The refusal as an HTTP answer.
inline http_response to_response(const refusal& r, unsigned version = 11) {
    namespace http = boost::beast::http;
    auto res = json_error(r.status, r.code, r.message, version);
    if (r.retry_after)
        res.set(http::field::retry_after, "1");
    if (r.bearer_challenge)
        res.set(http::field::www_authenticate, "Bearer");
    if (r.websocket_version)
        res.set(http::field::sec_websocket_version, "13");
    if (!r.allow.empty())
        res.set(http::field::allow, r.allow);
    return res;
}

/// What the wire part of a WebSocket upgrade request says.
struct upgrade_request {
    std::string_view path;
    bool upgrade = false; ///< `Connection: upgrade` and `Upgrade: websocket`
    bool get = false;
    unsigned version = 11;
    std::string_view key;               ///< Sec-WebSocket-Key
    std::string_view websocket_version; ///< Sec-WebSocket-Version
    std::string org;                    ///< ?org= (or organization_id)
};

/// The request's own faults, before anything is counted: wrong path, not an upgrade,
/// malformed, an org that could not be listed, an unsupported version.
inline std::optional<refusal> check_upgrade_request(const upgrade_request& r,
                                                    std::string_view ws_path) {
    namespace http = boost::beast::http;
    if (r.path != ws_path)
        return refusal{http::status::not_found, "NOT_FOUND",
                       "no WebSocket endpoint at " + std::string(r.path) + " (try " +
                           std::string(ws_path) + ")"};
    if (!r.upgrade)
        return refusal{http::status::upgrade_required, "INVALID_MESSAGE",
                       "this endpoint speaks WebSocket only"};
    if (!r.get || r.version < 11 || !valid_websocket_key(r.key))
        return refusal{http::status::bad_request, "INVALID_MESSAGE",
                       "malformed WebSocket handshake"};
    // It would be counted and listed (/api/connections) as given: raw bytes there would make
    // the answer not JSON.
    if (!r.org.empty() && !valid_identifier(r.org))
        return refusal{http::status::bad_request, "INVALID_MESSAGE",
                       "org must be 1-128 characters of [A-Za-z0-9_.@-]"};
    if (r.websocket_version != "13") {
        refusal f{http::status::upgrade_required, "INVALID_MESSAGE",
                  "unsupported WebSocket version (13 is supported)"};
        f.websocket_version = true;
        return f;
    }
    return std::nullopt;
}

/// How refusals name the connection being opened.
struct admission_words {
    std::string_view opens;    ///< "a WebSocket", "a stream"
    std::string_view arrivals; ///< "WebSocket handshakes", "connections"
};
inline constexpr admission_words websocket_words{"a WebSocket", "WebSocket handshakes"};
inline constexpr admission_words stream_words{"a stream", "connections"};

/// The server's side of admission: its limits and state at the moment of the handshake.
struct admission_rules {
    const std::vector<std::string>* allowed_origins = nullptr;
    bool auth_required = false;
    std::size_t max_connections = 0;
    std::size_t connections = 0; ///< open now
    bool stopping = false;
};

/// The rules every connection passes, in order: origin (cross-site WebSocket hijacking; a
/// non-browser client sends none), rate per address (`take_rate()` consumes a token only
/// when the origin passed), the token (`verify_token()` returns why it failed, or nothing),
/// `after_token()` (the transport's own checks, e.g. SSE's auth_required and topic access),
/// shutdown, the connection limit.
template <class TakeRate, class VerifyToken, class AfterToken>
std::optional<refusal> admit(const admission_rules& rules, std::string_view origin,
                             const admission_words& words, TakeRate&& take_rate,
                             VerifyToken&& verify_token, AfterToken&& after_token) {
    namespace http = boost::beast::http;
    if (!origin.empty() && rules.allowed_origins &&
        !origin_allowed(origin, *rules.allowed_origins)) {
        refusal f{http::status::forbidden, "ORIGIN_NOT_ALLOWED",
                  "origin " + std::string(origin) + " may not open " + std::string(words.opens) +
                      " on this server"};
        f.reason = reject_reason::origin_not_allowed;
        return f;
    }
    if (!take_rate()) {
        refusal f{http::status::too_many_requests, "RATE_LIMIT_EXCEEDED",
                  "too many " + std::string(words.arrivals) + " from this address"};
        f.reason = reject_reason::handshake_rate_limit;
        f.retry_after = true;
        return f;
    }
    if (std::string why = verify_token(); !why.empty()) {
        refusal f{http::status::unauthorized, "AUTH_FAILED", std::move(why)};
        f.reason = reject_reason::auth_failed;
        f.bearer_challenge = true;
        return f;
    }
    if (auto f = after_token())
        return f;
    if (rules.stopping) {
        refusal f{http::status::service_unavailable, "CONNECTION_LIMIT", "server shutting down"};
        f.reason = reject_reason::shutting_down;
        return f;
    }
    if (rules.connections >= rules.max_connections) {
        refusal f{http::status::service_unavailable, "CONNECTION_LIMIT",
                  "connection limit of " + std::to_string(rules.max_connections) + " reached"};
        f.reason = reject_reason::connection_limit;
        return f;
    }
    return std::nullopt;
}

/// SSE's checks between the token and the capacity: a token where one is required, then
/// every topic inside the token's organization and channels.
inline std::optional<refusal> check_stream_access(bool auth_required,
                                                  const std::optional<identity>& who,
                                                  const std::vector<topic>& topics) {
    namespace http = boost::beast::http;
    if (auth_required && !who) {
        refusal f{http::status::unauthorized, "AUTH_FAILED",
                  "this server needs a token (?token= or Authorization: Bearer)"};
        f.reason = reject_reason::auth_failed;
        f.bearer_challenge = true;
        return f;
    }
    if (who)
        for (auto const& t : topics)
            if (auto d = may_read(*who, t)) {
                refusal f{http::status::forbidden, "UNAUTHORIZED",
                          denial_message(*d, *who, t, "this token", "org")};
                f.reason = reject_reason::unauthorized;
                return f;
            }
    return std::nullopt;
}

/// The topics of `?channel=a,b&org=...`: one per channel, all at the query's scope,
/// duplicates dropped, at most `max_topics`.
inline std::optional<refusal> parse_stream_topics(const query_map& query, std::string_view sse_path,
                                                  std::size_t max_topics, std::vector<topic>& out) {
    namespace http = boost::beast::http;
    auto const sc = scope_from_query(query);
    auto const it = query.find("channel");
    std::string_view channels = it == query.end() ? std::string_view{} : it->second;
    if (channels.empty())
        return refusal{http::status::bad_request, "INVALID_MESSAGE",
                       "channel is required (e.g. " + std::string(sse_path) +
                           "?channel=kpi&org=acme)"};
    while (!channels.empty()) {
        auto const comma = channels.find(',');
        topic t{std::string(channels.substr(0, comma)), sc};
        channels =
            comma == std::string_view::npos ? std::string_view{} : channels.substr(comma + 1);
        if (validate(t))
            return refusal{http::status::bad_request, "INVALID_MESSAGE",
                           "invalid channel or scope (identifiers are [A-Za-z0-9_.@-], a dept "
                           "needs an org, a queue needs a dept)"};
        if (std::find(out.begin(), out.end(), t) == out.end())
            out.push_back(std::move(t));
    }
    if (out.size() > max_topics)
        return refusal{http::status::bad_request, "SUBSCRIPTION_FAILED",
                       "more than " + std::to_string(max_topics) + " channels"};
    return std::nullopt;
}

} // namespace rtpush::detail

#endif
