#ifndef RTPUSH_IMPL_SERVER_HPP
#define RTPUSH_IMPL_SERVER_HPP

#include <rtpush/detail/dashboard_page.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/detail/prometheus.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <cstring>
#include <exception>
#if !defined(_WIN32)
#include <unistd.h>
#endif
#include <map>
#include <new>
#include <utility>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rtpush {
namespace detail {

inline server::http_response json_response(boost::beast::http::status status,
                                           const boost::json::value& body, unsigned version = 11) {
    server::http_response res{status, version};
    res.set(boost::beast::http::field::content_type, "application/json");
    res.set(boost::beast::http::field::cache_control, "no-store");
    res.body() = boost::json::serialize(body);
    res.body().push_back('\n');
    res.prepare_payload();
    return res;
}

inline server::http_response json_error(boost::beast::http::status status, std::string_view code,
                                        std::string_view message, unsigned version = 11) {
    boost::json::object e;
    e["code"] = code;
    e["message"] = printable(message); // it may echo a request's path or Origin
    boost::json::object o;
    o["error"] = std::move(e);
    return json_response(status, o, version);
}

// A bad field of a request body: the message names it, and so does `field` (for programs).
inline server::http_response field_error(boost::beast::http::status status, std::string_view code,
                                         const validation_error& e, unsigned version = 11) {
    boost::json::object err;
    err["code"] = code;
    // A field's path may hold a key of the request: printable like every echo.
    err["message"] = printable(e.field.empty() ? e.message : e.field + ": " + e.message);
    err["field"] = printable(e.field);
    boost::json::object o;
    o["error"] = std::move(err);
    return json_response(status, o, version);
}

// Fills a payload's missing scope fields from the request's target (the generic broadcast
// keeps the scope apart from the data); a field given in both must agree.
inline std::optional<validation_error> merge_scope(boost::json::object& data, const scope& s) {
    std::pair<const char*, const std::string*> const levels[] = {
        {"organization_id", &s.org}, {"department_id", &s.dept}, {"queue_name", &s.queue}};
    for (auto const& [name, value] : levels) {
        if (value->empty())
            continue;
        if (auto const* have = data.if_contains(name)) {
            if (!have->is_string() || have->get_string() != *value)
                return validation_error{name, "differs from the target's " + *value};
        } else {
            data[name] = *value;
        }
    }
    return std::nullopt;
}

// A refused lifecycle step as an HTTP answer; a conflict shows the alert as it is.
inline server::http_response alert_error_response(const alert_result& r, unsigned version) {
    namespace http = boost::beast::http;
    if (r.ec == alert_errc::invalid)
        return field_error(http::status::bad_request, "INVALID_MESSAGE", {r.field, r.message},
                           version);
    auto const status = r.ec == alert_errc::not_found ? http::status::not_found
                        : r.ec == alert_errc::full    ? http::status::service_unavailable
                                                      : http::status::conflict;
    std::string_view const code = r.ec == alert_errc::not_found ? "NOT_FOUND"
                                  : r.ec == alert_errc::full    ? "ALERT_LIMIT"
                                                                : "CONFLICT";
    boost::json::object e;
    e["code"] = code;
    e["message"] = printable(r.message); // it may hold the id of the request's path
    if (r.value)
        e["status"] = to_string(r.value->status);
    boost::json::object o;
    o["error"] = std::move(e);
    return json_response(status, o, version);
}

inline boost::json::object alert_json(const alert_result& r, const std::string& epoch) {
    boost::json::object o;
    o["success"] = true;
    o["event"] = r.event;
    o["topic"] = topic{"alerts", r.value->scope()}.key();
    o["seq"] = r.seq;
    o["epoch"] = epoch;
    o["alert"] = r.value->data;
    return o;
}

// The page with its WebSocket and SSE paths filled in, as JS literals ('<' escaped so that no
// path can close the script element).
inline server::http_response dashboard_response(const std::string& ws_path,
                                                const std::string& sse_path, unsigned version) {
    auto literal = [](const std::string& path) {
        std::string lit = path.empty() ? "null" : boost::json::serialize(boost::json::value(path));
        for (std::size_t i = 0; (i = lit.find('<', i)) != std::string::npos;)
            lit.replace(i, 1, "\\u003c");
        return lit;
    };
    std::string page(dashboard_page);
    auto fill = [&](std::string_view placeholder, const std::string& value) {
        if (auto at = page.find(placeholder); at != std::string::npos)
            page.replace(at, placeholder.size(), value);
    };
    fill("__RTPUSH_WS_PATH__", literal(ws_path));
    fill("__RTPUSH_SSE_PATH__", literal(sse_path));
    server::http_response res{boost::beast::http::status::ok, version};
    res.set(boost::beast::http::field::content_type, "text/html; charset=utf-8");
    res.set(boost::beast::http::field::cache_control, "no-cache");
    res.body() = std::move(page);
    res.prepare_payload();
    return res;
}

inline server::http_response prometheus_response(std::string body, unsigned version) {
    server::http_response res{boost::beast::http::status::ok, version};
    res.set(boost::beast::http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(boost::beast::http::field::cache_control, "no-store");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

// CORS for the REST API: only origins of the allow-list get the headers (a browser then
// refuses the answer to any other page); with an empty list, none (same-origin only).
inline void add_cors(server::http_response& res, std::string_view origin,
                     const std::vector<std::string>& allowed) {
    namespace http = boost::beast::http;
    if (origin.empty() || allowed.empty() || !origin_allowed(origin, allowed))
        return;
    res.set(http::field::access_control_allow_origin, origin);
    res.set(http::field::vary, "Origin");
    res.set(http::field::access_control_allow_methods, "GET, POST, OPTIONS");
    res.set(http::field::access_control_allow_headers, "Authorization, Content-Type, X-API-Key");
    res.set(http::field::access_control_max_age, "600");
}

// The access log: one line per REST answer and refused handshake. The path without the query
// string, which may carry a token.
inline void log_access(const logger& log, const server::http_request& req, std::string_view path,
                       unsigned status, std::chrono::steady_clock::time_point t0,
                       const std::string& remote) {
    if (!log.enabled(log_level::info))
        return;
    auto const us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    boost::json::object o;
    o["method"] = printable(req.method_string());
    o["path"] = printable(path);
    o["status"] = status;
    o["duration_ms"] = static_cast<double>(us) / 1000.0;
    o["remote"] = remote;
    log.log(log_level::info, "http_access", o);
}

inline server::http_response preflight_response(unsigned version) {
    server::http_response res{boost::beast::http::status::no_content, version};
    res.prepare_payload();
    return res;
}

// Seed 001's target object names the scope levels organization_id/department_id/queue_name.
inline scope scope_from_json(const boost::json::object& o) {
    scope s;
    auto get = [&](std::initializer_list<std::string_view> names, std::string& out) {
        for (auto n : names)
            if (auto const* v = o.if_contains(n); v && v->is_string())
                out = std::string(v->get_string());
    };
    get({"org", "organization_id"}, s.org);
    get({"dept", "department_id"}, s.dept);
    get({"queue", "queue_name"}, s.queue);
    return s;
}

// JSON bodies are built outside coroutines: GCC 12 miscompiles initializer lists in them.
inline boost::json::object index_json(const std::string& ws_path) {
    boost::json::object o;
    o["name"] = "rtpush";
    o["version"] = version_string;
    o["websocket"] = ws_path;
    o["endpoints"] = {"GET / (dashboard page)",
                      "GET /metrics (Prometheus)",
                      "GET /sse?channel=&org=&dept=&queue= (Server-Sent Events)",
                      "GET /api/health",
                      "GET /api/kpis?channel=&org=&dept=&queue=",
                      "GET /api/dashboard?channel=&org=&dept=&queue=",
                      "GET /api/stats",
                      "GET /api/connections",
                      "GET /api/connections/{id}",
                      "GET /api/rooms",
                      "POST /api/broadcast",
                      "POST /api/refresh/{channel}?org=&dept=&queue=",
                      "POST /api/broadcast/{channel}",
                      "GET /api/broadcast/{id}",
                      "GET /api/alerts?status=&org=&dept=&queue=&rule_id=",
                      "GET /api/alerts/{id}",
                      "POST /api/alerts/{id}/acknowledge",
                      "POST /api/alerts/{id}/resolve"};
    return o;
}

// The task function lives in this coroutine's frame for as long as the task runs: a
// capturing coroutine lambda reads its captures through the function object.
inline boost::asio::awaitable<void> run_task(std::function<boost::asio::awaitable<void>()> f) {
    co_await f();
}

inline boost::json::object success(std::string_view key, boost::json::value v) {
    boost::json::object o;
    o["success"] = true;
    o[key] = std::move(v);
    return o;
}

inline boost::json::object success_list(std::string_view key, boost::json::array a) {
    boost::json::object o;
    o["success"] = true;
    o["total_count"] = a.size();
    o[key] = std::move(a);
    return o;
}

inline boost::json::array rooms_json(const std::map<std::string, std::size_t>& rooms) {
    boost::json::array a;
    for (auto const& [k, n] : rooms) {
        boost::system::error_code ec;
        auto const t = parse_topic(k, ec);
        boost::json::object r;
        r["name"] = k;
        r["channel"] = t.channel;
        r["scope"] = scope_to_json(t.scope);
        r["members"] = n;
        a.push_back(std::move(r));
    }
    return a;
}

inline boost::json::object rooms_by_type(const std::map<std::string, std::size_t>& rooms) {
    static constexpr const char* names[] = {"channel", "org", "dept", "queue"};
    std::size_t counts[4] = {};
    for (auto const& [k, n] : rooms) {
        boost::system::error_code ec;
        auto const t = parse_topic(k, ec);
        if (!ec)
            ++counts[t.scope.depth()];
    }
    boost::json::object o;
    for (int i = 0; i < 4; ++i)
        o[names[i]] = counts[i];
    return o;
}

// Seed 000's REST fallback: the retained values of `t` and every narrower topic, the `kpis`
// phase (want_kpis) or the full data (`complete` and unphased values).
inline boost::json::object retained_json(const hub& h, const topic& t, bool want_kpis) {
    boost::json::array items;
    for (auto& v : h.snapshot(t)) {
        auto& o = v.as_object();
        auto const* ph = o.if_contains("phase");
        bool const is_kpis = ph && ph->as_string() == "kpis";
        if (is_kpis == want_kpis)
            items.push_back(std::move(v));
    }
    boost::json::object o;
    o["success"] = true;
    o["channel"] = t.channel;
    o["scope"] = scope_to_json(t.scope);
    o["topic"] = t.key();
    o["epoch"] = h.epoch();
    o["count"] = items.size();
    // One topic (the usual dashboard): its data directly, as seed 000's routes answered.
    if (items.size() == 1)
        o["data"] = items.front().at("data");
    o["items"] = std::move(items);
    o["timestamp"] = iso8601_now();
    return o;
}

// The refresher's per-source statistics (its /api/stats `sources`) as Prometheus families.
inline void source_metrics(prometheus_writer& w, const boost::json::object& extra) {
    auto const* sources = extra.if_contains("sources");
    if (!sources || !sources->is_array() || sources->get_array().empty())
        return;
    auto num = [](const boost::json::object& o, std::string_view k) -> std::uint64_t {
        auto const* v = o.if_contains(k);
        return v && v->is_number() ? v->to_number<std::uint64_t>() : 0;
    };
    w.family("rtpush_source_refreshes_total", "counter",
             "Fetches of each data source, by result (success, failure).");
    for (auto const& v : sources->get_array()) {
        auto const& o = v.as_object();
        std::string_view const name = o.at("name").as_string();
        w.sample("rtpush_source_refreshes_total", num(o, "successes"),
                 {{"source", name}, {"result", "success"}});
        w.sample("rtpush_source_refreshes_total", num(o, "errors"),
                 {{"source", name}, {"result", "failure"}});
    }
    w.family("rtpush_source_refresh_duration_seconds", "histogram",
             "Duration of each data source's fetches (successful or not).");
    for (auto const& v : sources->get_array()) {
        auto const& o = v.as_object();
        auto const* d = o.if_contains("refresh_duration");
        if (!d || !d->is_object())
            continue;
        auto const& h = d->get_object();
        std::vector<double> bounds;
        std::vector<std::uint64_t> counts;
        for (auto const& b : h.at("le").as_array())
            bounds.push_back(b.to_number<double>());
        for (auto const& c : h.at("counts").as_array())
            counts.push_back(c.to_number<std::uint64_t>());
        if (counts.size() != bounds.size())
            continue;
        w.histogram("rtpush_source_refresh_duration_seconds", bounds, counts,
                    h.at("sum_seconds").to_number<double>(), num(h, "count"), "source",
                    o.at("name").as_string());
    }
}

inline boost::json::object refresh_json(const topic& t) {
    boost::json::object o;
    o["success"] = true;
    o["topic"] = t.key();
    o["refreshing"] = true;
    return o;
}

inline boost::json::object broadcast_json(const topic& t, std::uint64_t seq,
                                          const std::string& epoch,
                                          const std::string& ack_id = {}) {
    boost::json::object o;
    o["success"] = true;
    o["topic"] = t.key();
    o["seq"] = seq;
    o["epoch"] = epoch;
    if (!ack_id.empty()) {
        o["id"] = ack_id;
        o["requires_ack"] = true;
    }
    return o;
}

// GET /api/broadcast/{id}: who was sent an acknowledged broadcast and who has not acked it.
inline boost::json::object ack_status_json(const ack_tracker::status& st) {
    boost::json::object o;
    o["success"] = true;
    o["id"] = st.id;
    o["topic"] = st.topic;
    auto const age = std::chrono::steady_clock::now() - st.created;
    o["created_at"] = iso8601(std::chrono::system_clock::now() -
                              std::chrono::duration_cast<std::chrono::system_clock::duration>(age));
    o["targeted"] = st.targeted;
    o["acked"] = st.acked;
    o["pending"] = st.not_acked.size() - st.given_up;
    o["given_up"] = st.given_up;
    boost::json::array clients;
    for (auto const& c : st.not_acked)
        clients.emplace_back(c);
    o["not_acked"] = std::move(clients);
    return o;
}

} // namespace detail

inline std::string server::handshake_token(const http_request& req,
                                           const std::map<std::string, std::string>& query,
                                           std::optional<jwt_claims>& claims) const {
    // A token at the handshake (browsers cannot set headers on a WebSocket: hence ?token=)
    // authenticates the connection from its first byte. A bad one refuses the upgrade; none
    // leaves the `authenticate` message.
    std::string token(detail::bearer_token(req[boost::beast::http::field::authorization]));
    if (token.empty())
        if (auto it = query.find("token"); it != query.end())
            token = it->second;
    if (token.empty() || cfg_.jwt_secret.empty())
        return {};
    jwt_claims c;
    std::string why;
    if (jwt_verifier(cfg_.jwt_secret, cfg_.jwt_leeway).verify(token, c, why))
        return why;
    claims = std::move(c);
    return {};
}

inline bool server::handshake_allowed(const std::string& ip) {
    if (cfg_.max_handshakes_per_ip <= 0)
        return true;
    std::lock_guard<std::mutex> lock(handshake_mutex_);
    return handshake_limiter_.try_take(ip, std::chrono::steady_clock::now());
}

namespace detail {

// The answer to a broadcast the hub or the engine refused or lost.
inline server::http_response broadcast_error(boost::system::error_code ec, unsigned version) {
    namespace http = boost::beast::http;
    if (ec == error::invalid_message)
        return json_error(http::status::bad_request, "INVALID_MESSAGE",
                          "invalid channel or target scope (identifiers are [A-Za-z0-9_.@-], "
                          "a dept needs an org, a queue needs a dept)",
                          version);
    // Refused before it was sent (Redis is down), or lost in flight: the caller may retry.
    std::string const message = ec == error::engine_unavailable
                                    ? ec.message()
                                    : "the publication may not have been taken: " + ec.message();
    return json_error(http::status::service_unavailable, "ENGINE_UNAVAILABLE", message, version);
}

// Publishes through the hub and completes with (error, seq) once the publication has its
// seq: at once without an engine, when the engine has ordered it otherwise (from the
// engine's thread: the completion is posted to the caller's executor).
template <class CompletionToken>
auto async_publish(hub& h, publication p, CompletionToken&& token) {
    namespace net = boost::asio;
    return net::async_initiate<CompletionToken, void(boost::system::error_code, std::uint64_t)>(
        [&h](auto handler, publication p) {
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            auto complete = [shared](boost::system::error_code ec, std::uint64_t seq) {
                auto ex = net::get_associated_executor(*shared);
                net::post(ex, [shared, ec, seq]() mutable {
                    auto& handler = *shared;
                    std::move(handler)(ec, seq);
                });
            };
            auto r = h.publish(std::move(p), complete);
            if (!r.pending)
                complete(r.ec, r.seq);
        },
        token, std::move(p));
}

// Waits (at most `limit`) until the hub holds the cluster's state of `channel`: a REST read
// on a node none of whose clients use the channel (see engine::prepare). The node stays
// subscribed to the channel afterwards, so later reads are current.
inline boost::asio::awaitable<void> async_prepare(hub& h, const std::string& channel,
                                                  std::chrono::milliseconds limit) {
    namespace net = boost::asio;
    auto ex = co_await net::this_coro::executor;
    auto loaded = std::make_shared<net::steady_timer>(ex, limit);
    // Called from the engine's thread: the timer is touched on its own executor only.
    bool const ready = h.prepare(
        channel, [loaded] { net::post(loaded->get_executor(), [loaded] { loaded->cancel(); }); });
    if (!ready)
        co_await loaded->async_wait(net::as_tuple(net::use_awaitable));
}

} // namespace detail

// POST /api/broadcast and its shortcuts. Not a coroutine (GCC 12 mishandles initializer lists
// in coroutines): with an engine it returns the publication for finish_broadcast to await.
inline std::variant<server::http_response, server::engine_broadcast>
server::broadcast(const std::string& path, const std::map<std::string, std::string>& query,
                  const http_request& req) {
    namespace http = boost::beast::http;
    unsigned const v = req.version();
    auto bad = [&](std::string message) {
        return detail::json_error(http::status::bad_request, "INVALID_MESSAGE", message, v);
    };
    boost::system::error_code ec;
    boost::json::parse_options opt;
    opt.max_depth = cfg_.max_json_depth;
    auto body = boost::json::parse(req.body(), ec, {}, opt);
    if (ec || !body.is_object() || !finite_numbers(body))
        return bad(ec                 ? "malformed JSON body: " + ec.message()
                   : body.is_object() ? "a number is out of range"
                                      : "body must be a JSON object");
    auto& b = body.get_object();
    bool requires_ack = false;
    if (auto it = query.find("requires_ack"); it != query.end())
        requires_ack = it->second == "true" || it->second == "1";
    if (auto const* ra = b.if_contains("requires_ack"); ra && !ra->is_null()) {
        if (!ra->is_bool())
            return bad("'requires_ack' must be a boolean");
        requires_ack = ra->get_bool();
        b.erase("requires_ack"); // a shortcut's body is the data: not part of it
    }
    publication p;
    std::string kind; // the schema the payload follows, when it has one
    scope target;     // where the request (not the payload) says it goes
    if (path.size() > 15) {
        // Shortcut (seed 001's /broadcast/kpi): the body is the data, its scope fields target.
        p.topic.channel = path.substr(15);
        kind = ingest_validator::kind_of_channel(p.topic.channel);
        if (kind == "alert")
            p.topic.channel = "alerts"; // seed 001's channel and seed 003's rooms
        target = detail::scope_from_json(b);
        if (auto const* d = b.if_contains("data"); d && b.size() <= 4)
            p.data = *d;
        else
            p.data = b;
    } else {
        auto str = [&](std::string_view k) -> std::string {
            auto const* x = b.if_contains(k);
            return x && x->is_string() ? std::string(x->get_string()) : std::string{};
        };
        p.event = str("event");
        p.topic.channel = str("channel");
        if (p.topic.channel.empty() && !p.event.empty())
            p.topic.channel = p.event.substr(0, p.event.find(':')); // "kpi:update" -> "kpi"
        for (auto const* k : {"target", "scope"})
            if (auto const* t = b.if_contains(k); t && t->is_object())
                target = detail::scope_from_json(t->get_object());
        // Seed 003's events carry seed 003's payloads: validated like the shortcuts. Other
        // events (and none) are free-form.
        kind = ingest_validator::kind_of_event(p.event);
        p.phase = str("phase");
        if (auto const* d = b.if_contains("data"))
            p.data = *d;
        else
            return bad("'data' is required");
        if (auto pr = str("priority"); !pr.empty() && !parse_priority(pr, p.priority))
            return bad("priority is low, medium, high or urgent");
        if (!p.phase.empty() && p.phase != "kpis" && p.phase != "complete")
            return bad("phase is \"kpis\" or \"complete\"");
    }
    p.topic.scope = target;
    // `alert:acknowledged` and `alert:resolved` events say the status their payload may leave
    // out; one that says otherwise is a contradiction.
    if (kind == "alert" && p.data.is_object() && p.event != "alert:triggered" && !p.event.empty()) {
        std::string const status = p.event.substr(6);
        auto& d = p.data.get_object();
        if (auto const* st = d.if_contains("status"); !st)
            d["status"] = status;
        else if (!st->is_string() || st->get_string() != status)
            return detail::field_error(http::status::bad_request, "INVALID_MESSAGE",
                                       {"status", "differs from the event " + p.event}, v);
    }
    // An alert payload that changes a known alert's status names it by id; its scope is the
    // alert's.
    bool update = false;
    if (kind == "alert" && p.data.is_object())
        if (auto const* st = p.data.get_object().if_contains("status"))
            update = st->is_string() &&
                     (st->get_string() == "acknowledged" || st->get_string() == "resolved");
    std::string const schema = update ? "alert_update" : kind;
    if (kind == "alert" && !p.data.is_object())
        return detail::field_error(http::status::bad_request, "INVALID_MESSAGE",
                                   {"", "the payload must be a JSON object"}, v);
    if (!kind.empty() && cfg_.ingest.has(schema)) {
        if (!p.data.is_object())
            return detail::field_error(http::status::bad_request, "INVALID_MESSAGE",
                                       {"", "the payload must be a JSON object"}, v);
        auto& d = p.data.get_object();
        if (!update)
            if (auto e = detail::merge_scope(d, target))
                return detail::field_error(http::status::bad_request, "INVALID_MESSAGE", *e, v);
        if (auto e = cfg_.ingest.validate(schema, p.data))
            return detail::field_error(http::status::bad_request, "INVALID_MESSAGE", *e, v);
        // The payload's own scope fields are its room (seed 003); a payload without a time
        // gets the server's.
        p.topic.scope = detail::scope_from_json(d);
        if (kind != "alert" && !d.contains("timestamp"))
            d["timestamp"] = iso8601_now();
        if (kind != "alert" && p.event.empty())
            p.event = kind + ":update";
    }
    if (kind == "alert") {
        // Alerts go through their lifecycle, which publishes them (and refuses what it
        // cannot do: an unknown id, an illegal transition).
        if (!update)
            if (auto e = detail::merge_scope(p.data.get_object(), target))
                return detail::field_error(http::status::bad_request, "INVALID_MESSAGE", *e, v);
        // requires_ack (seed 001's use of it: alerts) rides the lifecycle's publication.
        std::string const ack_id =
            requires_ack ? acks_->create(topic{"alerts", p.topic.scope}.key()) : std::string();
        alert_result r;
        {
            std::lock_guard lock(alerts_mutex_);
            r = published(alerts_.apply(std::move(p.data.get_object()), iso8601_now()), ack_id);
        }
        if (!r) {
            acks_->cancel(ack_id);
            return detail::alert_error_response(r, v);
        }
        auto o = detail::alert_json(r, hub_.epoch());
        if (!ack_id.empty())
            o["id"] = ack_id;
        return detail::json_response(http::status::ok, o, v);
    }
    topic const t = p.topic;
    if (requires_ack)
        p.ack_id = acks_->create(t.key());
    std::string const ack_id = p.ack_id;
    if (hub_.get_engine())
        return engine_broadcast{std::move(p), t, ack_id, v};
    auto r = hub_.publish(std::move(p));
    if (r.ec) {
        acks_->cancel(ack_id);
        return detail::broadcast_error(r.ec, v);
    }
    return detail::json_response(http::status::ok,
                                 detail::broadcast_json(t, r.seq, hub_.epoch(), ack_id), v);
}

inline boost::asio::awaitable<server::http_response> server::finish_broadcast(engine_broadcast b) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    auto [ec, seq] =
        co_await detail::async_publish(hub_, std::move(b.p), net::as_tuple(net::use_awaitable));
    if (ec) {
        acks_->cancel(b.ack_id);
        co_return detail::broadcast_error(ec, b.version);
    }
    co_return detail::json_response(
        http::status::ok, detail::broadcast_json(b.t, seq, hub_.epoch(), b.ack_id), b.version);
}

inline alert_result server::published(alert_result r, std::string ack_id) {
    if (!r)
        return r;
    auto const& a = *r.value;
    publication p;
    p.topic = topic{"alerts", a.scope()};
    p.event = r.event;
    auto const* sev = a.data.if_contains("severity");
    bool const severe =
        sev && sev->is_string() && (sev->get_string() == "critical" || sev->get_string() == "high");
    // A new severe alert is the most urgent thing a dashboard can be told.
    p.priority = r.event == "alert:triggered" && severe ? priority::urgent : priority::high;
    p.data = a.data;
    p.ack_id = std::move(ack_id);
    auto const res = hub_.publish(std::move(p));
    if (res.ec) {
        // The alert's scope fields are valid identifiers (the schema), so this is a bug.
        r.ec = alert_errc::invalid;
        r.field = "organization_id";
        r.message = "the alert's scope is not a valid room";
        return r;
    }
    r.seq = res.seq;
    return r;
}

inline alert_result server::trigger_alert(boost::json::object data) {
    boost::json::value const v(data);
    if (auto e = cfg_.ingest.validate("alert", v)) {
        alert_result r;
        r.ec = alert_errc::invalid;
        r.field = e->field;
        r.message = e->message;
        return r;
    }
    std::lock_guard lock(alerts_mutex_);
    return published(alerts_.trigger(std::move(data), iso8601_now()));
}

inline alert_result server::acknowledge_alert(std::string_view id, std::string_view by) {
    std::lock_guard lock(alerts_mutex_);
    return published(alerts_.acknowledge(id, by, iso8601_now()));
}

inline alert_result server::resolve_alert(std::string_view id, std::string_view by) {
    std::lock_guard lock(alerts_mutex_);
    return published(alerts_.resolve(id, by, iso8601_now()));
}

inline std::vector<alert> server::alerts(const alert_filter& f) const {
    std::lock_guard lock(alerts_mutex_);
    std::vector<alert> out;
    for (auto const* a : alerts_.list(f))
        out.push_back(*a);
    return out;
}

inline std::optional<alert> server::find_alert(std::string_view id) const {
    std::lock_guard lock(alerts_mutex_);
    if (auto const* a = alerts_.find(id))
        return *a;
    return std::nullopt;
}

// GET /api/alerts[/{id}], POST /api/alerts/{id}/acknowledge|resolve.
inline server::http_response server::alerts_route(const std::string& path,
                                                  std::map<std::string, std::string>& query,
                                                  const http_request& req) {
    namespace http = boost::beast::http;
    unsigned const v = req.version();
    bool const get = req.method() == http::verb::get || req.method() == http::verb::head;
    auto not_allowed = [&](std::string_view allow) {
        auto r =
            detail::json_error(http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
                               std::string(req.method_string()) + " is not allowed on " + path, v);
        r.set(http::field::allow, allow);
        return r;
    };
    auto bad = [&](std::string field, std::string message) {
        return detail::field_error(http::status::bad_request, "INVALID_MESSAGE",
                                   {std::move(field), std::move(message)}, v);
    };
    if (path == "/api/alerts") {
        if (!get)
            return not_allowed("GET");
        alert_filter f;
        std::string const st = query.count("status") ? query["status"] : query["state"];
        if (st == "active") {
            f.active = true;
        } else if (!st.empty()) {
            alert_status s;
            if (!parse_alert_status(st, s))
                return bad("status", "must be pending, acknowledged, resolved or active");
            f.status = s;
        }
        f.scope.org = query.count("org") ? query["org"] : query["organization_id"];
        f.scope.dept = query.count("dept") ? query["dept"] : query["department_id"];
        f.scope.queue = query.count("queue") ? query["queue"] : query["queue_name"];
        if (validate(topic{"alerts", f.scope}))
            return bad("org", "invalid scope (identifiers are [A-Za-z0-9_.@-], a dept needs an "
                              "org, a queue needs a dept)");
        f.rule_id = query["rule_id"];
        boost::json::array a;
        for (auto const& x : alerts(f))
            a.push_back(x.data);
        return detail::json_response(http::status::ok, detail::success_list("alerts", std::move(a)),
                                     v);
    }
    // /api/alerts/{id}[/{action}]
    std::string rest = path.substr(12);
    auto const slash = rest.find('/');
    std::string const id = rest.substr(0, slash);
    std::string const action = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (action.empty()) {
        if (!get)
            return not_allowed("GET");
        auto a = find_alert(id);
        if (!a)
            return detail::json_error(http::status::not_found, "NOT_FOUND", "no alert " + id, v);
        return detail::json_response(http::status::ok, detail::success("alert", a->data), v);
    }
    if (action != "acknowledge" && action != "resolve")
        return detail::json_error(http::status::not_found, "NOT_FOUND", "no route for " + path, v);
    if (req.method() != http::verb::post)
        return not_allowed("POST");
    // Who did it: {"by": NAME} (or acknowledged_by / resolved_by); the body is optional.
    std::string by;
    if (!req.body().empty()) {
        boost::system::error_code ec;
        auto body = boost::json::parse(req.body(), ec);
        if (ec || !body.is_object())
            return bad("",
                       ec ? "malformed JSON body: " + ec.message() : "body must be a JSON object");
        auto const& o = body.get_object();
        for (auto const* k : {"by", action == "acknowledge" ? "acknowledged_by" : "resolved_by"})
            if (auto const* b = o.if_contains(k)) {
                if (!b->is_string() || b->get_string().empty() || b->get_string().size() > 4096)
                    return bad(k, "must be a non-empty string");
                by = std::string(b->get_string());
            }
    }
    auto r = action == "acknowledge" ? acknowledge_alert(id, by) : resolve_alert(id, by);
    if (!r)
        return detail::alert_error_response(r, v);
    return detail::json_response(http::status::ok, detail::alert_json(r, hub_.epoch()), v);
}

inline bool server::admin_allowed(const http_request& req) const {
    if (cfg_.admin_key.empty())
        return true;
    auto const header = req[boost::beast::http::field::authorization];
    std::string_view key = detail::apikey_token(header);
    if (key.empty())
        key = req["X-API-Key"];
    return !key.empty() && api_key_matches(key, cfg_.admin_key);
}

inline boost::json::object server::health_json() const {
    boost::json::object o;
    o["status"] = stopping_ ? "stopping" : "ok";
    o["version"] = version_string;
    o["connections"] = connection_count();
    o["epoch"] = hub_.epoch();
    o["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
    o["timestamp"] = iso8601_now();
    engine_fields(o);
    o.erase("cluster"); // /health stays small; /api/stats has the cluster view
    return o;
}

inline void server::engine_fields(boost::json::object& o) const {
    if (auto* e = hub_.get_engine())
        for (auto& [k, v] : e->status())
            o[k] = v;
    else
        o["engine"] = "memory";
}

inline server::server(server_config cfg)
    : cfg_(std::move(cfg))
    , hub_(cfg_.history)
    , handshake_limiter_(cfg_.max_handshakes_per_ip, std::max(1.0, cfg_.max_handshakes_per_ip))
    , alerts_(cfg_.max_alerts) {
    unsigned n = cfg_.threads ? cfg_.threads : std::thread::hardware_concurrency();
    if (n == 0)
        n = 1;
    std::vector<detail::shard*> raw;
    // Ack ids start with the hub's epoch: an id from before a restart is unknown, never another's.
    acks_ = std::make_unique<detail::ack_registry>(cfg_.acks, hub_.epoch().substr(0, 8) + "-");
    for (unsigned i = 0; i < n; ++i) {
        shards_.push_back(std::make_unique<detail::shard>(i));
        shards_.back()->orgs = &org_connections_;
        shards_.back()->acks = acks_.get();
        shards_.back()->set_cork(cfg_.cork_delay, cfg_.cork_threshold);
        raw.push_back(shards_.back().get());
    }
    if (cfg_.idle_timeout.count() == 0)
        cfg_.idle_timeout = cfg_.heartbeat_interval * 5 / 2;
    if (cfg_.auth_required && cfg_.jwt_secret.empty())
        throw std::invalid_argument("auth_required needs a jwt_secret to verify tokens with");
    if (!cfg_.tls_cert_file.empty() || !cfg_.tls_key_file.empty())
        tls_.emplace(make_server_tls_context(cfg_.tls_cert_file, cfg_.tls_key_file));
    hub_.attach(std::move(raw));
}

inline server::~server() {
    stop();
    if (!started_) {
        // never started: let posted work run down
        for (auto& s : shards_) {
            s->release_work();
            s->context().run();
        }
    }
    wait();
}

inline void server::start() {
    if (started_)
        return;
    namespace net = boost::asio;
    auto& s0 = *shards_.front();
    if (cfg_.listen) {
        auto const addr = net::ip::make_address(cfg_.host);
        net::ip::tcp::endpoint ep{addr, cfg_.port};
        acceptor_.emplace(s0.get_executor());
        acceptor_->open(ep.protocol());
        acceptor_->set_option(net::socket_base::reuse_address(true));
        acceptor_->bind(ep);
        acceptor_->listen(net::socket_base::max_listen_connections);
        port_ = acceptor_->local_endpoint().port();
    }
    started_ = true;
    started_at_ = std::chrono::steady_clock::now();

    if (cfg_.listen)
        spawn_on(s0, accept_loop(), "accept");
    spawn_on(s0, stats_loop(), "stats");
    for (auto& s : shards_)
        spawn_on(*s, heartbeat_loop(*s), "heartbeat");
    for (auto& s : shards_) {
        detail::shard* sp = s.get();
        threads_.emplace_back([sp] { sp->context().run(); });
    }
    cfg_.logger.log(log_level::info, cfg_.listen ? "listening" : "started",
                    {{"host", cfg_.listen ? cfg_.host : std::string()},
                     {"port", port_},
                     {"ws_path", cfg_.ws_path},
                     {"tls", tls_.has_value()},
                     {"threads", shards_.size()},
                     {"version", version_string}});
    if (stopping_)
        boost::asio::post(s0.get_executor(), [this] {
            stopping_ = false;
            stop();
        });
}

inline void server::wait() {
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
}

inline void server::stop() {
    if (stopping_.exchange(true) || !started_)
        return;
    boost::asio::post(shards_.front()->get_executor(), [this] {
        cfg_.logger.log(log_level::info, "shutdown", {{"connections", connection_count()}});
        boost::system::error_code ec;
        if (acceptor_)
            acceptor_->close(ec);
        for (auto& sig : task_signals_)
            sig.emit(boost::asio::cancellation_type::terminal);
        for (auto& s : shards_) {
            detail::shard* sp = s.get();
            boost::asio::post(sp->get_executor(), [this, sp] { shutdown_shard(*sp); });
        }
    });
}

inline void server::shutdown_shard(detail::shard& sh) {
    sh.stopping = true;
    // Copy: closing may remove sessions from the map.
    std::vector<session*> sessions;
    for (auto const& [id, s] : sh.sessions())
        sessions.push_back(s);
    for (auto* s : sessions)
        s->close(1001, "server shutting down");
    // An SSE stream has no closing handshake; the browser reconnects with Last-Event-ID.
    std::vector<detail::sse_session*> streams;
    for (auto const& [id, s] : sh.sse_sessions())
        streams.push_back(s);
    for (auto* s : streams)
        s->abort("server shutting down");
    for (auto* t : sh.timers)
        t->cancel();
    for (auto* sock : sh.http_sockets) {
        boost::system::error_code ec;
        sock->cancel(ec);
    }
    sh.expire_waits({}, true);
    auto on_drained = [this, &sh](std::exception_ptr) {
        sh.release_work();
        if (sh.live_tasks > 0 || !sh.sessions().empty())
            sh.context().stop(); // something ignored every request to end; do not hang
    };
    boost::asio::co_spawn(sh.get_executor(), drain(sh), std::move(on_drained));
}

inline boost::asio::awaitable<void> server::drain(detail::shard& sh) {
    using namespace std::chrono;
    boost::asio::steady_timer t(sh.get_executor());
    auto const deadline = steady_clock::now() + cfg_.shutdown_timeout;
    while ((sh.live_tasks > 0 || !sh.sessions().empty()) && steady_clock::now() < deadline) {
        t.expires_after(milliseconds(5));
        co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    if (sh.live_tasks > 0 || !sh.sessions().empty()) {
        cfg_.logger.log(log_level::warning, "shutdown_forced",
                        {{"tasks", sh.live_tasks}, {"sessions", sh.sessions().size()}});
        std::vector<session*> sessions;
        for (auto const& [id, s] : sh.sessions())
            sessions.push_back(s);
        for (auto* s : sessions)
            s->abort();
        auto const hard = steady_clock::now() + seconds(1);
        while ((sh.live_tasks > 0 || !sh.sessions().empty()) && steady_clock::now() < hard) {
            t.expires_after(milliseconds(5));
            co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
    }
}

inline void server::spawn_on(detail::shard& sh, boost::asio::awaitable<void> task, std::string name,
                             boost::asio::cancellation_slot slot) {
    ++sh.live_tasks;
    auto done = [this, &sh, name = std::move(name)](std::exception_ptr e) {
        --sh.live_tasks;
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (boost::system::system_error const& se) {
            if (se.code() != boost::asio::error::operation_aborted)
                cfg_.logger.log(log_level::error, "task_failed",
                                {{"task", name}, {"what", se.what()}});
        } catch (std::exception const& ex) {
            cfg_.logger.log(log_level::error, "task_failed", {{"task", name}, {"what", ex.what()}});
        }
    };
    boost::asio::co_spawn(sh.get_executor(), std::move(task),
                          boost::asio::bind_cancellation_slot(slot, std::move(done)));
}

inline void server::spawn(std::function<boost::asio::awaitable<void>()> task, std::string name) {
    auto& s0 = *shards_.front();
    boost::asio::post(
        s0.get_executor(), [this, &s0, task = std::move(task), name = std::move(name)]() mutable {
            if (stopping_)
                return;
            auto it = task_signals_.emplace(task_signals_.end());
            ++s0.live_tasks;
            auto done = [this, &s0, it, name](std::exception_ptr e) {
                --s0.live_tasks;
                task_signals_.erase(it);
                if (!e)
                    return;
                try {
                    std::rethrow_exception(e);
                } catch (boost::system::system_error const& se) {
                    if (se.code() != boost::asio::error::operation_aborted)
                        cfg_.logger.log(log_level::error, "task_failed",
                                        {{"task", name}, {"what", se.what()}});
                } catch (std::exception const& ex) {
                    cfg_.logger.log(log_level::error, "task_failed",
                                    {{"task", name}, {"what", ex.what()}});
                }
            };
            boost::asio::co_spawn(s0.get_executor(), detail::run_task(std::move(task)),
                                  boost::asio::bind_cancellation_slot(it->slot(), std::move(done)));
        });
}

inline void server::accept_connection(boost::asio::ip::tcp::socket socket, http_request request,
                                      std::string buffered) {
    namespace net = boost::asio;
    if (!started_ || stopping_) {
        boost::system::error_code ec;
        socket.close(ec);
        return;
    }
    // The socket belongs to the caller's io_context: move its descriptor to one of ours.
    boost::system::error_code ec;
    auto const protocol = socket.local_endpoint(ec).protocol();
    if (ec) {
        socket.close(ec);
        return;
    }
    auto const fd = socket.release(ec);
    if (ec) {
        socket.close(ec);
        return;
    }
    auto& sh = *shards_[next_shard_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
    // Registering a descriptor with another io_context is thread-safe; the socket object is
    // then only touched on that context's thread.
    net::ip::tcp::socket sock(sh.get_executor());
    sock.assign(protocol, fd, ec);
    if (ec) {
        detail::close_native(fd);
        return;
    }
    detail::shard* sp = &sh;
    net::post(sh.get_executor(), [this, sp, sock = std::move(sock), req = std::move(request),
                                  rest = std::move(buffered)]() mutable {
        if (sp->stopping)
            return; // closed with `sock`
        spawn_connection(*sp,
                         handle_connection(*sp, std::move(sock), std::move(req), std::move(rest)));
    });
}

inline void server::spawn_connection(detail::shard& sh, boost::asio::awaitable<void> task) {
    // Counted on the shard, so that shutdown waits for it; an exception is logged, not lost.
    ++sh.live_tasks;
    detail::shard* sp = &sh;
    auto done = [this, sp](std::exception_ptr e) {
        --sp->live_tasks;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                cfg_.logger.log(log_level::error, "connection_failed", {{"what", ex.what()}});
            }
        }
    };
    boost::asio::co_spawn(sh.get_executor(), std::move(task), std::move(done));
}

inline std::size_t server::connection_count() const noexcept {
    std::size_t n = 0;
    for (auto const& s : shards_)
        n += s->counters().connections.load(std::memory_order_relaxed);
    return n;
}

inline boost::asio::awaitable<void> server::accept_loop() {
    namespace net = boost::asio;
    std::size_t next = 0;
    net::steady_timer backoff(shards_.front()->get_executor());
    for (;;) {
        auto& sh = *shards_[next++ % shards_.size()];
        auto [ec, sock] =
            co_await acceptor_->async_accept(sh.get_executor(), net::as_tuple(net::use_awaitable));
        if (stopping_ || ec == net::error::operation_aborted || !acceptor_->is_open())
            co_return;
        if (ec) {
            // e.g. EMFILE: log, breathe, go on; an accept error must not end the server
            cfg_.logger.log(log_level::error, "accept_failed", {{"what", ec.message()}});
            backoff.expires_after(std::chrono::milliseconds(50));
            co_await backoff.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        // The one-handler upgrade only on this thread's own shard: the socket was registered
        // with its reactor within this handler, so the readiness of a request that came
        // first is still to be reported when the wait starts. Another shard's reactor may
        // report it before a posted wait exists, and a readiness wait does not look back
        // (Asio starts waits without a speculative check): such connections take the
        // coroutine, whose first read does.
        if (!tls_ && &sh == shards_.front().get())
            await_request(sh, std::move(sock));
        else
            spawn_connection(sh, handle_connection(sh, std::move(sock)));
    }
}

inline void server::await_request(detail::shard& sh, boost::asio::ip::tcp::socket sock) {
    // A readiness wait, not a coroutine with its frames, stream and buffers: a connection
    // costs little until its request is there, however many arrive at once (see
    // handle_request_now). The wait is made in the block that becomes the session, so a
    // backlog of waiting connections leaves no holes between sessions either. The shard's
    // tick enforces the handshake timeout.
    static_assert(sizeof(detail::request_wait) <= sizeof(session) &&
                  alignof(detail::request_wait) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    void* const block = ::operator new(sizeof(session));
    auto* w = new (block) detail::request_wait(std::move(sock), std::chrono::steady_clock::now() +
                                                                    cfg_.handshake_timeout);
    sh.add_wait(w);
    ++sh.live_tasks;
    w->socket.async_wait(
        boost::asio::ip::tcp::socket::wait_read,
        boost::asio::bind_allocator(
            detail::request_wait::allocator<void>(w), [this, &sh, w](boost::system::error_code ec) {
                sh.remove_wait(w);
                --sh.live_tasks;
                auto s = std::move(w->socket);
                w->~request_wait();
                void* const block = w;
                if (ec || sh.stopping) { // silent past the timeout, or shutdown
                    boost::system::error_code cec;
                    s.close(cec);
                    ::operator delete(block, sizeof(session));
                    return;
                }
                try {
                    handle_request_now(sh, std::move(s), block);
                } catch (std::exception const& e) {
                    cfg_.logger.log(log_level::error, "connection_failed", {{"what", e.what()}});
                }
            }));
}

inline void server::handle_request_now(detail::shard& sh, boost::asio::ip::tcp::socket sock,
                                       void* block) {
    // Nearly every WebSocket client sends its whole upgrade request in one segment. Read
    // into the shard's buffer, parse, check and answer it and start the session, all in
    // this handler: whatever the handshake allocates is freed before the next connection's
    // turn, so it leaves no holes between sessions however far behind the server is (with
    // a coroutine per handshake, a backlog of thousands in flight left their buffers
    // scattered between the sessions made meanwhile: up to 1 KiB more per connection).
    // Anything else (a partial request, REST, SSE) continues in handle_connection().
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    struct block_guard { // `block` (sizeof(session)) is freed unless the session takes it
        void* p;
        ~block_guard() {
            if (p)
                ::operator delete(p, sizeof(session));
        }
    } guard{block};
    auto& buf = sh.read_buffer();
    boost::system::error_code ec;
    sock.non_blocking(true, ec);
    std::size_t n = 0;
    if (!ec)
        n = sock.read_some(net::buffer(buf), ec);
    if (ec == net::error::would_block || ec == net::error::try_again)
        ec = {}; // a spurious wakeup: n == 0
    if (ec) {
        sock.close(ec); // EOF or reset before a request
        return;
    }
    auto const t0 = std::chrono::steady_clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(cfg_.max_http_body);
    parser.eager(true);
    std::size_t used = 0;
    if (n > 0)
        used = parser.put(net::buffer(buf.data(), n), ec);
    bool fast = n > 0 && !ec && parser.is_done();
    std::map<std::string, std::string> query;
    std::string path;
    if (fast) {
        auto const& req = parser.get();
        path = detail::split_target(req.target(), query);
        fast = path == cfg_.ws_path &&
               detail::header_has_token(req[http::field::connection], "upgrade") &&
               detail::iequals(req[http::field::upgrade], "websocket");
    }
    if (!fast) {
        spawn_connection(
            sh, handle_connection(sh, std::move(sock), std::nullopt, std::string(buf.data(), n)));
        return;
    }
    auto const& req = parser.get();
    std::string remote, remote_ip;
    if (auto ep = sock.remote_endpoint(ec); !ec) {
        remote_ip = ep.address().to_string();
        remote = remote_ip + ":" + std::to_string(ep.port());
    }
    upgrade_state up;
    if (auto refusal = upgrade_check(sh, req, true, path, query, remote, remote_ip, up)) {
        refusal->keep_alive(false);
        refusal->set(http::field::server, cfg_.server_name);
        detail::log_access(cfg_.logger, req, path, refusal->result_int(), t0, remote);
        // A few hundred bytes into an empty socket buffer: one non-blocking write.
        http::write(sock, *refusal, ec);
        sock.shutdown(net::ip::tcp::socket::shutdown_both, ec);
        sock.close(ec);
        return;
    }
    auto res = switching_protocols(req, up);
    http::write(sock, res, ec);
    if (ec) {
        // Would block on an empty socket buffer (not seen), or the peer is gone.
        sh.counters().errors.fetch_add(1, std::memory_order_relaxed);
        cfg_.logger.log(log_level::info, "handshake_failed",
                        {{"remote", remote}, {"what", ec.message()}});
        sock.close(ec);
        return;
    }
    // Bytes the client sent right after its request belong to the WebSocket stream.
    up.leftover.assign(buf.data() + used, n - used);
    up.org = query.count("org") ? query["org"] : query["organization_id"];
    up.remote = std::move(remote);
    up.socket.emplace(std::move(sock));
    start_session(sh, up, std::exchange(guard.p, nullptr));
}

inline boost::asio::awaitable<void> server::heartbeat_loop(detail::shard& sh) {
    namespace net = boost::asio;
    net::steady_timer t(sh.get_executor());
    // The ping frame is the same for everyone; the heartbeat message is built once per tick.
    auto const ping = detail::make_shared_frame(detail::make_frame(detail::opcode::ping, ""));
    sh.timers.push_back(&t);
    // A short tick also enforces close handshake deadlines; the heartbeat itself goes out
    // every heartbeat_interval. One timer per shard, none per connection.
    auto const tick = std::min<std::chrono::steady_clock::duration>(cfg_.heartbeat_interval,
                                                                    std::chrono::milliseconds(250));
    auto next_heartbeat = std::chrono::steady_clock::now() + cfg_.heartbeat_interval;
    std::vector<session*> sessions;
    while (!sh.stopping) {
        t.expires_after(tick);
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        if (sh.stopping)
            break;
        auto const now = std::chrono::steady_clock::now();
        sh.expire_waits(now); // connections silent past the handshake timeout
        sessions.clear();
        for (auto const& [id, s] : sh.sessions())
            sessions.push_back(s);
        for (auto* s : sessions) {
            s->check_close_deadline(now);
            s->check_auth_deadline(now);
            s->release_idle(now);
        }
        resend_unacked(sh, now);
        if (now < next_heartbeat)
            continue;
        next_heartbeat = now + cfg_.heartbeat_interval;
        auto const hb = detail::make_shared_frame(
            detail::make_frame(detail::opcode::text, message::heartbeat(connection_count())));
        for (auto* s : sessions)
            s->on_heartbeat(hb, ping, now, cfg_.idle_timeout);
        for (auto const& [id, s] : sh.sse_sessions())
            s->on_heartbeat(hb);
    }
}

inline void server::resend_unacked(detail::shard& sh, std::chrono::steady_clock::time_point now) {
    std::vector<detail::ack_tracker::resend> due;
    {
        std::lock_guard lock(acks_->mutex);
        due = acks_->tracker.due(sh.index(), now);
    }
    for (auto const& r : due)
        if (auto* s = sh.find_session(r.session))
            s->push(r.frame);
}

inline boost::asio::awaitable<void> server::stats_loop() {
    namespace net = boost::asio;
    net::steady_timer t(shards_.front()->get_executor());
    shards_.front()->timers.push_back(&t);
    std::uint64_t last = hub_.stats().total_messages;
    [[maybe_unused]] std::uint64_t last_accepted = 0;
    [[maybe_unused]] int quiet_ticks = 0;
    [[maybe_unused]] std::uint64_t last_released = 0;
    auto last_t = std::chrono::steady_clock::now();
    while (!shards_.front()->stopping) {
        t.expires_after(std::chrono::seconds(1));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        auto const now = std::chrono::steady_clock::now();
        auto const total = hub_.stats().total_messages;
        double const secs = std::chrono::duration<double>(now - last_t).count();
        messages_per_second_ = static_cast<double>(total - last) / secs;
        last = total;
        last_t = now;
        if (cfg_.max_handshakes_per_ip > 0) {
            std::lock_guard<std::mutex> lock(handshake_mutex_);
            handshake_limiter_.prune(now); // forget addresses that went quiet
        }
#if defined(__GLIBC__)
        // After a wave of connections the handshake buffers are free but scattered between
        // live sessions; glibc keeps such pages resident. Hand them back once things settle.
        // Connections opened on any shard (each io thread allocates from its own arena, and
        // malloc_trim visits them all).
        // Likewise after a heartbeat: it gave every quiet session a queue and a write batch for
        // a moment, and those blocks, freed a second later, sit between the sessions (measured:
        // 19,000 idle connections held 0.83 KiB each before their first heartbeat, 1.29 after).
        std::uint64_t accepted = 0, released = 0;
        for (auto const& sp : shards_) {
            accepted += sp->counters().accepted.load(std::memory_order_relaxed);
            released += sp->counters().idle_released.load(std::memory_order_relaxed);
        }
        if ((accepted != last_accepted && ++quiet_ticks >= 2) || released - last_released >= 1024) {
            ::malloc_trim(0);
            last_accepted = accepted;
            last_released = released;
            quiet_ticks = 0;
        }
#endif
    }
}

inline boost::asio::awaitable<void> server::handle_connection(detail::shard& sh,
                                                              boost::asio::ip::tcp::socket sock,
                                                              std::optional<http_request> first,
                                                              std::string buffered) {
    // The HTTP phase runs in its own coroutine so that its buffers, parser and stream are
    // freed before the session starts: an idle subscriber keeps only what it needs.
    upgrade_state up;
    bool upgraded = false;
    if (tls_)
        upgraded = co_await tls_phase(sh, std::move(sock), up);
    else
        upgraded =
            co_await http_phase(sh, std::move(sock), up, std::move(first), std::move(buffered));
    if (!upgraded)
        co_return;
    if (up.sse) {
        start_sse(sh, std::move(*up.socket), std::move(*up.sse));
        co_return;
    }
    start_session(sh, up);
}

inline void server::start_session(detail::shard& sh, upgrade_state& up, void* block) {
    auto const id = next_id_.fetch_add(1, std::memory_order_relaxed);
    sh.counters().accepted.fetch_add(1, std::memory_order_relaxed);
    // The session outlives this coroutine: it runs on completion handlers, registered with
    // the shard (which shutdown waits on), and deletes itself through `done` at its end
    // (`delete`: `block`, when given, is ::operator new(sizeof(session))).
    auto make = [&](void* where) {
        return new (where) session(sh, hub_, cfg_, std::move(*up.socket), id,
                                   std::move(up.leftover), std::move(up.org), std::move(up.remote),
                                   std::move(up.claims), std::move(up.tls), up.deflate);
    };
    session* s = nullptr;
    if (!block)
        block = ::operator new(sizeof(session));
    try {
        s = make(block);
    } catch (...) {
        ::operator delete(block, sizeof(session));
        throw;
    }
    if (cfg_.logger.enabled(log_level::info))
        cfg_.logger.log(log_level::info, "connection_open",
                        {{"client", s->client_id()},
                         {"transport", "websocket"},
                         {"remote", s->remote()},
                         {"org", s->organization()}});
    // A function pointer and `this`, not a capturing std::function: every idle connection
    // stores it. The duration counts from the session's creation.
    s->start(
        [](void* context, session* ended) {
            auto* self = static_cast<server*>(context);
            if (self->cfg_.logger.enabled(log_level::info))
                self->cfg_.logger.log(
                    log_level::info, "connection_close",
                    {{"client", ended->client_id()},
                     {"transport", "websocket"},
                     {"remote", ended->remote()},
                     {"org", ended->organization()},
                     {"reason", ended->end_reason()},
                     {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - ended->opened_at())
                                         .count()}});
            delete ended;
        },
        this);
}

namespace detail {

// Registers a socket in its HTTP phase with the shard (shutdown cancels it) for a scope.
struct http_socket_guard {
    shard& sh;
    boost::asio::ip::tcp::socket* s;
    http_socket_guard(shard& h, boost::asio::ip::tcp::socket* p)
        : sh(h)
        , s(p) {
        sh.http_sockets.insert(s);
    }
    http_socket_guard(const http_socket_guard&) = delete;
    http_socket_guard& operator=(const http_socket_guard&) = delete;
    ~http_socket_guard() { sh.http_sockets.erase(s); }
};

} // namespace detail

inline boost::asio::awaitable<bool>
server::http_phase(detail::shard& sh, boost::asio::ip::tcp::socket sock, upgrade_state& up,
                   std::optional<http_request> first, std::string buffered) {
    boost::beast::tcp_stream stream(std::move(sock));
    detail::http_socket_guard guard(sh, &stream.socket());
    if (!co_await http_exchange(sh, stream, stream, up, std::move(first), std::move(buffered))) {
        boost::system::error_code ec;
        stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        co_return false;
    }
    up.socket.emplace(stream.release_socket());
    co_return true;
}

inline boost::asio::awaitable<bool>
server::tls_phase(detail::shard& sh, boost::asio::ip::tcp::socket sock, upgrade_state& up) {
    namespace net = boost::asio;
    auto tls = std::make_unique<session::tls_stream>(std::move(sock), *tls_);
    auto& tcp = tls->next_layer();
    detail::http_socket_guard guard(sh, &tcp.socket());
    // The handshake timeout covers the TLS handshake and the HTTP request after it.
    tcp.expires_after(cfg_.handshake_timeout);
    auto [ec] = co_await tls->async_handshake(net::ssl::stream_base::server,
                                              net::as_tuple(net::use_awaitable));
    if (ec) {
        // A plain-HTTP client, a client that distrusts our certificate, a slowloris: each
        // only loses its own connection.
        sh.counters().errors.fetch_add(1, std::memory_order_relaxed);
        boost::system::error_code rec;
        auto ep = tcp.socket().remote_endpoint(rec);
        cfg_.logger.log(log_level::info, "tls_handshake_failed",
                        {{"remote", rec ? std::string() : ep.address().to_string()},
                         {"what", detail::tls_error_text(ec)}});
        tcp.socket().close(rec);
        co_return false;
    }
    if (!co_await http_exchange(sh, *tls, tcp, up, {}, {})) {
        // close_notify, so that clients see the end of the stream and not a truncation.
        if (tcp.socket().is_open() && !sh.stopping) {
            tcp.expires_after(std::min<std::chrono::milliseconds>(cfg_.handshake_timeout,
                                                                  std::chrono::seconds(2)));
            SSL_set_shutdown(tls->native_handle(), SSL_RECEIVED_SHUTDOWN); // send, not wait
            co_await tls->async_shutdown(net::as_tuple(net::use_awaitable));
        }
        boost::system::error_code ec2;
        tcp.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec2);
        co_return false;
    }
    up.tls = std::move(tls);
    up.socket.emplace(sh.get_executor()); // unused: the session talks through `tls`
    co_return true;
}

template <class Stream>
boost::asio::awaitable<bool>
server::http_exchange(detail::shard& sh, Stream& stream, boost::beast::tcp_stream& tcp,
                      upgrade_state& up, std::optional<http_request> first, std::string buffered) {
    namespace net = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    std::string remote, remote_ip;
    {
        boost::system::error_code ec;
        auto ep = tcp.socket().remote_endpoint(ec);
        if (!ec) {
            remote_ip = ep.address().to_string();
            remote = remote_ip + ":" + std::to_string(ep.port());
        }
    }

    beast::flat_buffer buf;
    if (!buffered.empty()) { // read by the embedding program past its request
        auto b = buf.prepare(buffered.size());
        std::memcpy(b.data(), buffered.data(), buffered.size());
        buf.commit(buffered.size());
    }
    for (;;) {
        if (sh.stopping)
            co_return false;
        tcp.expires_after(cfg_.handshake_timeout);
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(cfg_.max_http_body);
        boost::system::error_code ec;
        if (first) {
            parser.get() = std::move(*first); // read by the embedding program
            first.reset();
        } else {
            auto [rec, n] =
                co_await http::async_read(stream, buf, parser, net::as_tuple(net::use_awaitable));
            ec = rec;
        }
        auto const t0 = std::chrono::steady_clock::now();
        if (ec) {
            std::optional<http_response> res;
            if (ec == http::error::body_limit)
                res = detail::json_error(http::status::payload_too_large, "MESSAGE_TOO_LARGE",
                                         "request body exceeds " +
                                             std::to_string(cfg_.max_http_body) + " bytes");
            else if (ec == http::error::header_limit)
                res = detail::json_error(http::status::request_header_fields_too_large,
                                         "INVALID_MESSAGE", "request headers too large");
            else if (ec.category() == make_error_code(http::error::end_of_stream).category() &&
                     ec != http::error::end_of_stream && ec != http::error::partial_message)
                res = detail::json_error(http::status::bad_request, "INVALID_MESSAGE",
                                         "malformed HTTP request: " + ec.message());
            if (res) {
                res->keep_alive(false);
                co_await http::async_write(stream, *res, net::as_tuple(net::use_awaitable));
            }
            break;
        }
        auto& req = parser.get();
        std::map<std::string, std::string> query;
        std::string const path(detail::split_target(req.target(), query));

        bool const upgrade = detail::header_has_token(req[http::field::connection], "upgrade") &&
                             detail::iequals(req[http::field::upgrade], "websocket");
        if (upgrade || path == cfg_.ws_path) {
            auto refusal = upgrade_check(sh, req, upgrade, path, query, remote, remote_ip, up);
            if (refusal) {
                refusal->keep_alive(false);
                refusal->set(http::field::server, cfg_.server_name);
                detail::log_access(cfg_.logger, req, path, refusal->result_int(), t0, remote);
                co_await http::async_write(stream, *refusal, net::as_tuple(net::use_awaitable));
                break;
            }
            auto res = switching_protocols(req, up);
            auto [wec, wn] =
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
            if (wec)
                break;
            tcp.expires_never();
            // Bytes the client sent right after its request belong to the WebSocket stream.
            up.leftover.assign(static_cast<const char*>(buf.data().data()), buf.size());
            up.org = query.count("org") ? query["org"] : query["organization_id"];
            up.remote = remote;
            co_return true;
        }

        if (!cfg_.sse_path.empty() && path == cfg_.sse_path &&
            req.method() != http::verb::options) {
            detail::sse_params p;
            if (auto refusal = sse_check(sh, req, query, remote, remote_ip, p)) {
                refusal->keep_alive(false);
                refusal->set(http::field::server, cfg_.server_name);
                detail::add_cors(*refusal, req[http::field::origin], cfg_.allowed_origins);
                detail::log_access(cfg_.logger, req, path, refusal->result_int(), t0, remote);
                co_await http::async_write(stream, *refusal, net::as_tuple(net::use_awaitable));
                break;
            }
            if constexpr (!std::is_same_v<Stream, boost::beast::tcp_stream>) {
                // An SSE stream is written by detail::sse_session on a plain socket.
                auto res = detail::json_error(http::status::not_implemented, "INVALID_MESSAGE",
                                              "Server-Sent Events are not served over TLS yet; "
                                              "use the WebSocket endpoint");
                res.keep_alive(false);
                detail::log_access(cfg_.logger, req, path, res.result_int(), t0, remote);
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
                break;
            } else {
                // With an engine, the node must hold (and follow) the stream's channels before
                // the stream's snapshot reads them, as for a WebSocket subscription.
                if (hub_.get_engine())
                    for (auto const& t : p.topics)
                        co_await detail::async_prepare(hub_, t.channel, std::chrono::seconds(3));
                tcp.expires_never();
                up.sse = std::move(p);
                co_return true;
            }
        }

        http_response res;
        if (req.method() == http::verb::options)
            res = detail::preflight_response(req.version()); // CORS preflight
        else
            res = co_await handle(req);
        detail::add_cors(res, req[http::field::origin], cfg_.allowed_origins);
        res.set(http::field::server, cfg_.server_name);
        res.keep_alive(req.keep_alive() && !sh.stopping);
        if (req.method() == http::verb::head)
            res.body().clear(); // the headers (Content-Length included) of the GET, no body
        detail::log_access(cfg_.logger, req, path, res.result_int(), t0, remote);
        auto [wec, wn] = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
        if (wec || !res.keep_alive())
            break;
    }
    co_return false;
}

inline std::optional<server::http_response>
server::upgrade_check(detail::shard& sh, const http_request& req, bool upgrade,
                      const std::string& path, std::map<std::string, std::string>& query,
                      const std::string& remote, const std::string& remote_ip, upgrade_state& up) {
    namespace http = boost::beast::http;
    std::optional<http_response> refusal;
    auto const key = req[http::field::sec_websocket_key];
    if (path != cfg_.ws_path)
        refusal =
            detail::json_error(http::status::not_found, "NOT_FOUND",
                               "no WebSocket endpoint at " + path + " (try " + cfg_.ws_path + ")");
    else if (!upgrade)
        refusal = detail::json_error(http::status::upgrade_required, "INVALID_MESSAGE",
                                     "this endpoint speaks WebSocket only");
    else if (req.method() != http::verb::get || req.version() < 11 ||
             !detail::valid_websocket_key(key))
        refusal = detail::json_error(http::status::bad_request, "INVALID_MESSAGE",
                                     "malformed WebSocket handshake");
    else if (auto const org = query.count("org") ? query["org"] : query["organization_id"];
             !org.empty() && !valid_identifier(org))
        // it would be counted and listed (/api/connections) as given: raw bytes there
        // would make the answer not JSON
        refusal = detail::json_error(http::status::bad_request, "INVALID_MESSAGE",
                                     "org must be 1-128 characters of [A-Za-z0-9_.@-]");
    else if (req[http::field::sec_websocket_version] != "13") {
        refusal = detail::json_error(http::status::upgrade_required, "INVALID_MESSAGE",
                                     "unsupported WebSocket version (13 is supported)");
        refusal->set(http::field::sec_websocket_version, "13");
    } else if (auto const origin = req[http::field::origin];
               !origin.empty() && !detail::origin_allowed(origin, cfg_.allowed_origins)) {
        // Cross-site WebSocket hijacking: a foreign page's socket would carry the
        // user's cookies. Non-browser clients send no Origin and are not affected.
        refusal = detail::json_error(http::status::forbidden, "ORIGIN_NOT_ALLOWED",
                                     "origin " + std::string(origin) +
                                         " may not open a WebSocket on this server");
        sh.counters().count_rejected(detail::reject_reason::origin_not_allowed);
        cfg_.logger.log(log_level::info, "origin_refused",
                        {{"remote", remote}, {"origin", detail::printable(origin)}});
    } else if (!handshake_allowed(remote_ip)) {
        sh.counters().count_rejected(detail::reject_reason::handshake_rate_limit);
        refusal = detail::json_error(http::status::too_many_requests, "RATE_LIMIT_EXCEEDED",
                                     "too many WebSocket handshakes from this address");
        refusal->set(http::field::retry_after, "1");
    } else if (auto why = handshake_token(req, query, up.claims); !why.empty()) {
        refusal = detail::json_error(http::status::unauthorized, "AUTH_FAILED", why);
        refusal->set(http::field::www_authenticate, "Bearer");
        sh.counters().count_rejected(detail::reject_reason::auth_failed);
        cfg_.logger.log(log_level::info, "auth_failed", {{"remote", remote}, {"reason", why}});
    } else if (sh.stopping) {
        sh.counters().count_rejected(detail::reject_reason::shutting_down);
        refusal = detail::json_error(http::status::service_unavailable, "CONNECTION_LIMIT",
                                     "server shutting down");
    } else if (connection_count() >= cfg_.max_connections) {
        sh.counters().count_rejected(detail::reject_reason::connection_limit);
        refusal = detail::json_error(http::status::service_unavailable, "CONNECTION_LIMIT",
                                     "connection limit of " + std::to_string(cfg_.max_connections) +
                                         " reached");
    }
    return refusal;
}

inline boost::beast::http::response<boost::beast::http::empty_body>
server::switching_protocols(const http_request& req, upgrade_state& up) {
    namespace http = boost::beast::http;
    auto const key = req[http::field::sec_websocket_key];
    http::response<http::empty_body> res{http::status::switching_protocols, 11};
    res.set(http::field::server, cfg_.server_name);
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::sec_websocket_accept, detail::websocket_accept_key(key));
    if (detail::header_has_token(req[http::field::sec_websocket_protocol], "rtpush.v1"))
        res.set(http::field::sec_websocket_protocol, "rtpush.v1");
    if (cfg_.permessage_deflate)
        if (auto ext = detail::negotiate_deflate(req[http::field::sec_websocket_extensions])) {
            res.set(http::field::sec_websocket_extensions, *ext);
            up.deflate = true;
        }
    return res;
}

inline std::optional<server::http_response>
server::sse_check(detail::shard& sh, const http_request& req,
                  std::map<std::string, std::string>& query, const std::string& remote,
                  const std::string& remote_ip, detail::sse_params& p) {
    namespace http = boost::beast::http;
    using detail::reject_reason;
    unsigned const v = req.version();
    auto refuse = [&](std::optional<reject_reason> r, http::status st, std::string_view code,
                      std::string msg) {
        if (r)
            sh.counters().count_rejected(*r);
        cfg_.logger.log(log_level::info, "sse_refused",
                        {{"remote", remote},
                         {"status", static_cast<int>(st)},
                         {"reason", detail::printable(msg)}});
        return detail::json_error(st, code, msg, v);
    };
    if (req.method() != http::verb::get) {
        auto r = detail::json_error(
            http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
            std::string(req.method_string()) + " is not allowed on " + cfg_.sse_path, v);
        r.set(http::field::allow, "GET");
        return r;
    }
    // The topics: one per channel of `channel` (comma-separated), all at one scope.
    auto param = [&](std::string_view a, std::string_view b) {
        auto it = query.find(std::string(a));
        if (it == query.end())
            it = query.find(std::string(b));
        return it == query.end() ? std::string{} : it->second;
    };
    scope sc;
    sc.org = param("org", "organization_id");
    sc.dept = param("dept", "department_id");
    sc.queue = param("queue", "queue_name");
    std::string_view channels = query["channel"];
    if (channels.empty())
        return refuse({}, http::status::bad_request, "INVALID_MESSAGE",
                      "channel is required (e.g. " + cfg_.sse_path + "?channel=kpi&org=acme)");
    while (!channels.empty()) {
        auto const comma = channels.find(',');
        topic t{std::string(channels.substr(0, comma)), sc};
        channels =
            comma == std::string_view::npos ? std::string_view{} : channels.substr(comma + 1);
        if (validate(t))
            return refuse({}, http::status::bad_request, "INVALID_MESSAGE",
                          "invalid channel or scope (identifiers are [A-Za-z0-9_.@-], a dept "
                          "needs an org, a queue needs a dept)");
        if (std::find(p.topics.begin(), p.topics.end(), t) == p.topics.end())
            p.topics.push_back(std::move(t));
    }
    if (p.topics.size() > cfg_.max_subscriptions)
        return refuse({}, http::status::bad_request, "SUBSCRIPTION_FAILED",
                      "more than " + std::to_string(cfg_.max_subscriptions) + " channels");
    // The WebSocket handshake's rules, in the same order.
    if (auto const origin = req[http::field::origin];
        !origin.empty() && !detail::origin_allowed(origin, cfg_.allowed_origins))
        return refuse(reject_reason::origin_not_allowed, http::status::forbidden,
                      "ORIGIN_NOT_ALLOWED",
                      "origin " + std::string(origin) + " may not open a stream on this server");
    if (!handshake_allowed(remote_ip)) {
        auto r = refuse(reject_reason::handshake_rate_limit, http::status::too_many_requests,
                        "RATE_LIMIT_EXCEEDED", "too many connections from this address");
        r.set(http::field::retry_after, "1");
        return r;
    }
    std::optional<jwt_claims> claims;
    if (auto why = handshake_token(req, query, claims); !why.empty()) {
        auto r = refuse(reject_reason::auth_failed, http::status::unauthorized, "AUTH_FAILED", why);
        r.set(http::field::www_authenticate, "Bearer");
        return r;
    }
    if (cfg_.auth_required && !claims) {
        auto r = refuse(reject_reason::auth_failed, http::status::unauthorized, "AUTH_FAILED",
                        "this server needs a token (?token= or Authorization: Bearer)");
        r.set(http::field::www_authenticate, "Bearer");
        return r;
    }
    if (claims) {
        // An authenticated stream stays inside its organization and its token's channels,
        // as a WebSocket client's subscriptions do.
        for (auto const& t : p.topics) {
            if (t.scope.org != claims->org)
                return refuse(reject_reason::unauthorized, http::status::forbidden, "UNAUTHORIZED",
                              t.scope.org.empty()
                                  ? "org is required: this token may only read organization " +
                                        claims->org
                                  : "this token may not read organization " + t.scope.org);
            if (!claims->allows_channel(t.channel))
                return refuse(reject_reason::unauthorized, http::status::forbidden, "UNAUTHORIZED",
                              "this token does not allow channel " + t.channel);
        }
        p.authenticated = true;
        p.user = claims->user;
        p.org = claims->org;
    } else if (!cfg_.auth_required) {
        p.org = sc.org;
    }
    if (sh.stopping)
        return refuse(reject_reason::shutting_down, http::status::service_unavailable,
                      "CONNECTION_LIMIT", "server shutting down");
    if (connection_count() >= cfg_.max_connections)
        return refuse(reject_reason::connection_limit, http::status::service_unavailable,
                      "CONNECTION_LIMIT",
                      "connection limit of " + std::to_string(cfg_.max_connections) + " reached");
    // Resumption: EventSource sends the last id it saw as Last-Event-ID when it reconnects; a
    // page that reconnects by itself passes it as ?lastEventId=.
    std::string last_id(req["Last-Event-ID"]);
    if (last_id.empty())
        last_id = query["lastEventId"];
    if (!last_id.empty()) {
        std::string why;
        if (!detail::sse_ids::parse(last_id, sc, p.topics, hub_.epoch(), p.resume, why))
            return refuse({}, http::status::bad_request, "INVALID_MESSAGE", why);
    }
    if (!p.org.empty() && sh.orgs && !sh.orgs->try_add(p.org, cfg_.max_connections_per_org))
        return refuse(reject_reason::org_connection_limit, http::status::service_unavailable,
                      "CONNECTION_LIMIT",
                      "connection limit of " + std::to_string(cfg_.max_connections_per_org) +
                          " for organization " + p.org + " reached");
    // The response head; the body is the event stream, until either side closes.
    http_response res{http::status::ok, 11};
    res.set(http::field::server, cfg_.server_name);
    res.set(http::field::content_type, "text/event-stream; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.set(http::field::connection, "close");
    res.set("X-Accel-Buffering", "no"); // nginx: pass events through at once
    detail::add_cors(res, req[http::field::origin], cfg_.allowed_origins);
    p.head = "HTTP/1.1 200 OK\r\n";
    for (auto const& f : res) {
        p.head.append(f.name_string());
        p.head += ": ";
        p.head.append(f.value());
        p.head += "\r\n";
    }
    p.head += "\r\n";
    p.remote = remote;
    return std::nullopt;
}

inline void server::start_sse(detail::shard& sh, boost::asio::ip::tcp::socket sock,
                              detail::sse_params p) {
    auto const id = next_id_.fetch_add(1, std::memory_order_relaxed);
    sh.counters().accepted.fetch_add(1, std::memory_order_relaxed);
    auto* s = new detail::sse_session(sh, hub_, cfg_, std::move(sock), id, std::move(p));
    ++sh.live_tasks; // shutdown waits for the stream's end
    std::string subs;
    for (auto const& t : s->topics())
        subs += (subs.empty() ? "" : ",") + t.key();
    cfg_.logger.log(log_level::info, "connection_open",
                    {{"client", s->client_id()},
                     {"transport", "sse"},
                     {"remote", s->remote()},
                     {"org", s->organization()},
                     {"subscriptions", subs}});
    auto const t0 = std::chrono::steady_clock::now();
    s->start([this, &sh, t0](detail::sse_session* ended) {
        --sh.live_tasks;
        cfg_.logger.log(log_level::info, "connection_close",
                        {{"client", ended->client_id()},
                         {"transport", "sse"},
                         {"remote", ended->remote()},
                         {"reason", ended->end_reason()},
                         {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - t0)
                                             .count()}});
        delete ended;
    });
}

inline detail::counter_totals server::totals() const {
    detail::counter_totals t;
    for (auto const& s : shards_)
        t.add(s->counters());
    return t;
}

inline boost::json::object server::counters() const {
    boost::json::object o;
    auto const t = totals();
    auto const hs = hub_.stats();
    o["active_connections"] = connection_count();
    o["total_messages"] = hs.total_messages;
    o["messages_sent"] = t.frames_sent;
    o["bytes_sent"] = t.bytes_sent;
    o["writes"] = t.writes;
    o["messages_per_second"] = messages_per_second_.load();
    boost::json::object by_event;
    for (auto const& [k, v] : hs.messages_by_event)
        by_event[k] = v;
    o["messages_by_event"] = std::move(by_event);
    o["average_latency_ms"] = t.latency_samples
                                  ? static_cast<double>(t.latency_us_sum) /
                                        static_cast<double>(t.latency_samples) / 1000.0
                                  : 0.0;
    o["max_latency_ms"] = static_cast<double>(t.latency_us_max) / 1000.0;
    o["error_count"] = t.errors;
    o["dropped_messages"] = t.dropped;
    o["connections_accepted"] = t.accepted;
    o["connections_rejected"] = t.rejected;
    o["messages_rate_limited"] = t.rate_limited;
    o["messages_compressed"] = t.compressed;
    o["topics"] = hs.topics;
    o["uptime_seconds"] = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::steady_clock::now() - started_at_)
                              .count();
    o["epoch"] = hub_.epoch();
    o["threads"] = shards_.size();
    engine_fields(o);
    for (auto& [k, v] : hub_.extra_stats())
        o[k] = std::move(v);
    return o;
}

inline boost::asio::awaitable<boost::json::object> server::stats_json() {
    namespace net = boost::asio;
    auto o = counters();
    boost::json::object by_org;
    std::map<std::string, std::size_t> rooms;
    for (auto& s : shards_) {
        detail::shard* sp = s.get();
        // Each shard's sessions and subscriptions are read on that shard's own thread.
        auto collect = [sp]() -> net::awaitable<std::pair<std::map<std::string, std::size_t>,
                                                          std::map<std::string, std::size_t>>> {
            std::map<std::string, std::size_t> orgs, rooms;
            for (auto const& [id, sess] : sp->sessions())
                ++orgs[sess->organization().empty() ? "unknown" : sess->organization()];
            for (auto const& [id, sse] : sp->sse_sessions())
                ++orgs[sse->organization().empty() ? "unknown" : sse->organization()];
            for (auto const& [key, subs] : sp->subscriptions())
                rooms[key] += subs.size();
            co_return std::make_pair(std::move(orgs), std::move(rooms));
        };
        auto part = co_await net::co_spawn(sp->get_executor(), collect, net::use_awaitable);
        for (auto const& [k, v] : part.first)
            by_org[k] = (by_org.contains(k) ? by_org[k].to_number<std::size_t>() : 0) + v;
        for (auto const& [k, v] : part.second)
            rooms[k] += v;
    }
    o["connections_by_org"] = std::move(by_org);
    o["active_rooms"] = rooms.size();
    o["rooms_by_type"] = detail::rooms_by_type(rooms);
    co_return o;
}

inline boost::asio::awaitable<server::queue_depths> server::collect_queue_depths() {
    namespace net = boost::asio;
    queue_depths total;
    for (auto& s : shards_) {
        detail::shard* sp = s.get();
        // A session's queue belongs to its shard's thread: read it there.
        auto collect = [sp]() -> net::awaitable<queue_depths> {
            queue_depths q;
            for (auto const& [id, sess] : sp->sessions()) {
                q.frames += sess->queued();
                q.bytes += sess->queued_bytes();
                q.max_frames = std::max<std::uint64_t>(q.max_frames, sess->queued());
            }
            for (auto const& [id, sse] : sp->sse_sessions()) {
                q.frames += sse->queued();
                q.bytes += sse->queued_bytes();
                q.max_frames = std::max<std::uint64_t>(q.max_frames, sse->queued());
            }
            co_return q;
        };
        auto part = co_await net::co_spawn(sp->get_executor(), collect, net::use_awaitable);
        total.frames += part.frames;
        total.bytes += part.bytes;
        total.max_frames = std::max(total.max_frames, part.max_frames);
    }
    co_return total;
}

inline boost::asio::awaitable<std::string> server::metrics() {
    auto const q = co_await collect_queue_depths();
    co_return metrics_text(q);
}

// Names follow the Prometheus conventions: rtpush_ prefix, base units (seconds, bytes),
// counters end in _total.
inline std::string server::metrics_text(const queue_depths& q) const {
    auto const t = totals();
    auto const sent = t.frames_sent, bytes = t.bytes_sent, writes = t.writes, dropped = t.dropped,
               errors = t.errors, lat_sum = t.latency_us_sum, lat_n = t.latency_samples,
               slow = t.slow_consumers, accepted = t.accepted, compressed = t.compressed;
    auto const& buckets = t.latency_buckets;
    auto const hs = hub_.stats();
    detail::prometheus_writer w;
    w.family("rtpush_build_info", "gauge", "rtpush version of this server; the value is 1.");
    w.sample("rtpush_build_info", std::uint64_t{1}, {{"version", version_string}});
    w.metric("rtpush_uptime_seconds", "gauge", "Seconds since the server was created.",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count());
    w.metric("rtpush_threads", "gauge", "IO threads (shards).",
             static_cast<std::uint64_t>(shards_.size()));
    w.metric("rtpush_connections", "gauge", "Open connections (WebSocket and SSE streams).",
             static_cast<std::uint64_t>(connection_count()));
    if (auto* e = hub_.get_engine()) {
        auto const st = e->status();
        auto const* up = st.if_contains("redis_up");
        w.metric("rtpush_redis_up", "gauge",
                 "1 while this node is connected to Redis (engine redis), else 0.",
                 std::uint64_t{up && up->is_bool() && up->get_bool() ? 1u : 0u});
    }
    w.metric("rtpush_sse_connections", "gauge", "Open Server-Sent Events streams.",
             t.sse_connections);
    w.metric("rtpush_connections_accepted_total", "counter",
             "Connections accepted: WebSocket handshakes completed and SSE streams started.",
             accepted);
    w.family("rtpush_connections_rejected_total", "counter",
             "Connections refused at the handshake (or closed when their organization was over "
             "its limit), by reason.");
    for (std::size_t i = 0; i < detail::reject_reason_count; ++i)
        w.sample("rtpush_connections_rejected_total", t.rejected_by[i],
                 {{"reason", detail::to_string(static_cast<detail::reject_reason>(i))}});
    w.metric("rtpush_messages_published_total", "counter", "Publications through the hub.",
             static_cast<std::uint64_t>(hs.total_messages));
    w.metric("rtpush_messages_sent_total", "counter",
             "Messages written to clients (each subscriber's copy counts).", sent);
    w.family("rtpush_messages_dropped_total", "counter",
             "Messages not delivered because a client's outbound queue was full, by reason.");
    w.sample("rtpush_messages_dropped_total", dropped - std::min(slow, dropped),
             {{"reason", "drop_oldest"}});
    w.sample("rtpush_messages_dropped_total", slow, {{"reason", "slow_consumer"}});
    w.metric("rtpush_messages_compressed_total", "counter",
             "Messages compressed for permessage-deflate clients (a broadcast once).", compressed);
    w.metric("rtpush_sent_bytes_total", "counter", "Bytes of WebSocket frames written to clients.",
             bytes);
    w.metric("rtpush_writes_total", "counter", "Gathered socket writes (each carries 1+ frames).",
             writes);
    w.metric("rtpush_errors_total", "counter",
             "Protocol errors: error messages sent to clients and protocol violations.", errors);
    w.metric("rtpush_topics", "gauge", "Topics with a retained value or history.",
             static_cast<std::uint64_t>(hs.topics));
    w.metric("rtpush_queued_messages", "gauge", "Messages waiting in every outbound queue.",
             q.frames);
    w.metric("rtpush_queued_bytes", "gauge", "Bytes waiting in every outbound queue.", q.bytes);
    w.metric("rtpush_queued_messages_max", "gauge",
             "Messages waiting in the longest outbound queue.", q.max_frames);

    w.family("rtpush_publish_to_send_latency_seconds", "histogram",
             "From hub publish to the end of the socket write that carried the message.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        cumulative += buckets[i];
        char le[32];
        auto r = std::to_chars(le, le + sizeof le,
                               static_cast<double>(detail::latency_bounds_us[i]) / 1e6,
                               std::chars_format::fixed); // le="0.0001", not "1e-04"
        w.sample("rtpush_publish_to_send_latency_seconds_bucket", cumulative,
                 {{"le", std::string_view(le, static_cast<std::size_t>(r.ptr - le))}});
    }
    // The counters are read one by one while writers run: keep +Inf >= every bucket.
    std::uint64_t const count = std::max(cumulative, lat_n);
    w.sample("rtpush_publish_to_send_latency_seconds_bucket", count, {{"le", "+Inf"}});
    w.sample("rtpush_publish_to_send_latency_seconds_sum", static_cast<double>(lat_sum) / 1e6);
    w.sample("rtpush_publish_to_send_latency_seconds_count", count);

    w.family("rtpush_fanout_duration_seconds", "histogram",
             "Time one io thread takes to queue a publication on all of its subscribers "
             "(one observation per publication per thread).");
    std::array<double, detail::fanout_bounds_ns.size()> fanout_bounds{};
    for (std::size_t i = 0; i < fanout_bounds.size(); ++i)
        fanout_bounds[i] = static_cast<double>(detail::fanout_bounds_ns[i]) / 1e9;
    w.histogram("rtpush_fanout_duration_seconds", fanout_bounds, t.fanout_buckets,
                static_cast<double>(t.fanout_ns_sum) / 1e9, t.fanout_count);

    detail::source_metrics(w, hub_.extra_stats());
    return w.take();
}

inline boost::asio::awaitable<server::http_response> server::handle(const http_request& req) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    std::map<std::string, std::string> query;
    std::string path(detail::split_target(req.target(), query));
    // Seed 001 served these under /api/ws/...: accept both.
    if (path.rfind("/api/ws/", 0) == 0)
        path = "/api/" + path.substr(8);
    while (path.size() > 1 && path.back() == '/')
        path.pop_back();
    unsigned const v = req.version();
    auto method_not_allowed = [&](std::string_view allow) {
        auto r =
            detail::json_error(http::status::method_not_allowed, "METHOD_NOT_ALLOWED",
                               std::string(req.method_string()) + " is not allowed on " + path, v);
        r.set(http::field::allow, allow);
        return r;
    };
    bool const get = req.method() == http::verb::get || req.method() == http::verb::head;

    if (cfg_.dashboard && (path == "/" || path == "/index.html")) {
        if (!get)
            co_return method_not_allowed("GET");
        co_return detail::dashboard_response(cfg_.ws_path, cfg_.sse_path, v);
    }
    if (path == "/" || path == "/api") {
        if (!get)
            co_return method_not_allowed("GET");
        co_return detail::json_response(http::status::ok, detail::index_json(cfg_.ws_path), v);
    }
    if (path == "/metrics") {
        if (!get)
            co_return method_not_allowed("GET");
        auto text = co_await metrics();
        co_return detail::prometheus_response(std::move(text), v);
    }
    if (path == "/api/health") {
        if (!get)
            co_return method_not_allowed("GET");
        co_return detail::json_response(http::status::ok, health_json(), v);
    }
    // Everything below reads other clients' data or acts on them: admin only, when an admin
    // key is configured. The index and the health check stay open (load balancers).
    bool const data_route = path == "/api/kpis" || path == "/api/dashboard";
    bool const admin = admin_allowed(req);
    if (!admin && !data_route) {
        auto r = detail::json_error(http::status::unauthorized, "UNAUTHORIZED",
                                    "this route needs the admin key (X-API-Key: KEY or "
                                    "Authorization: apikey KEY)",
                                    v);
        r.set(http::field::www_authenticate, "apikey");
        co_return r;
    }
    if (path == "/api/stats") {
        if (!get)
            co_return method_not_allowed("GET");
        auto stats = co_await stats_json();
        co_return detail::json_response(http::status::ok,
                                        detail::success("stats", std::move(stats)), v);
    }
    if (path == "/api/connections" || path.rfind("/api/connections/", 0) == 0) {
        if (!get)
            co_return method_not_allowed("GET");
        std::string const want_org =
            query.count("organization_id") ? query["organization_id"] : query["org"];
        std::string const id = path.size() > 17 ? path.substr(17) : std::string{};
        std::uint64_t num = 0;
        if (!id.empty()) {
            if (id.size() < 2 || id[0] != 'c' ||
                id.find_first_not_of("0123456789", 1) != std::string::npos || id.size() > 20)
                co_return detail::json_error(http::status::not_found, "NOT_FOUND",
                                             "no connection " + id, v);
            num = std::stoull(id.substr(1));
        }
        boost::json::array all;
        for (auto& s : shards_) {
            detail::shard* sp = s.get();
            auto collect = [sp, num, want_org]() -> net::awaitable<boost::json::array> {
                boost::json::array a;
                if (num) {
                    if (auto* sess = sp->find_session(num))
                        a.push_back(sess->info());
                    else if (auto* sse = sp->find_sse(num))
                        a.push_back(sse->info());
                    co_return a;
                }
                for (auto const& [sid, sess] : sp->sessions())
                    if (want_org.empty() || sess->organization() == want_org)
                        a.push_back(sess->info());
                for (auto const& [sid, sse] : sp->sse_sessions())
                    if (want_org.empty() || sse->organization() == want_org)
                        a.push_back(sse->info());
                co_return a;
            };
            auto part = co_await net::co_spawn(sp->get_executor(), collect, net::use_awaitable);
            for (auto& x : part)
                all.push_back(std::move(x));
        }
        if (num) {
            if (all.empty())
                co_return detail::json_error(http::status::not_found, "NOT_FOUND",
                                             "no connection " + id, v);
            co_return detail::json_response(http::status::ok,
                                            detail::success("connection", all.front()), v);
        }
        co_return detail::json_response(http::status::ok,
                                        detail::success_list("connections", std::move(all)), v);
    }
    if (path == "/api/kpis" || path == "/api/dashboard") {
        if (!get)
            co_return method_not_allowed("GET");
        topic t;
        t.channel = query.count("channel") ? query["channel"] : "kpi";
        t.scope.org = query.count("org") ? query["org"] : query["organization_id"];
        t.scope.dept = query.count("dept") ? query["dept"] : query["department_id"];
        t.scope.queue = query.count("queue") ? query["queue"] : query["queue_name"];
        if (validate(t))
            co_return detail::json_error(http::status::bad_request, "INVALID_MESSAGE",
                                         "invalid channel or scope (identifiers are "
                                         "[A-Za-z0-9_.@-], a dept needs an org, a queue needs "
                                         "a dept)",
                                         v);
        // A tenant's data, as over WebSocket: with authentication required (or an admin key
        // set), the admin key or a Bearer token of the topic's organization.
        if (!admin || (cfg_.auth_required && cfg_.admin_key.empty())) {
            std::optional<jwt_claims> claims;
            std::map<std::string, std::string> const no_query; // no tokens in REST URLs (logs)
            auto const why = handshake_token(req, no_query, claims);
            bool const ok =
                claims && claims->org == t.scope.org && claims->allows_channel(t.channel);
            if (!ok && (cfg_.auth_required || !cfg_.admin_key.empty())) {
                auto r = detail::json_error(
                    http::status::unauthorized, claims ? "UNAUTHORIZED" : "AUTH_FAILED",
                    !why.empty() ? why
                    : claims     ? "this token may not read " + t.key()
                                 : "this route needs a Bearer token or the admin key",
                    v);
                r.set(http::field::www_authenticate, "Bearer");
                co_return r;
            }
        }
        // With an engine this node may not hold the channel (no client of it here): load it
        // from the cluster first. Bounded: a node without Redis answers with what it holds.
        if (hub_.get_engine())
            co_await detail::async_prepare(hub_, t.channel, std::chrono::seconds(3));
        auto body = detail::retained_json(hub_, t, path == "/api/kpis");
        if (body.at("count").as_uint64() == 0)
            co_return detail::json_error(http::status::not_found, "NOT_FOUND",
                                         "no data for " + t.key() + " yet", v);
        co_return detail::json_response(http::status::ok, body, v);
    }
    if (path.rfind("/api/refresh/", 0) == 0) {
        // The admin's `refresh` (rtctl refresh CHANNEL): what a client's message does, unlimited.
        if (req.method() != http::verb::post)
            co_return method_not_allowed("POST");
        topic t;
        t.channel = path.substr(13);
        t.scope.org = query.count("org") ? query["org"] : query["organization_id"];
        t.scope.dept = query.count("dept") ? query["dept"] : query["department_id"];
        t.scope.queue = query.count("queue") ? query["queue"] : query["queue_name"];
        if (validate(t))
            co_return detail::json_error(http::status::bad_request, "INVALID_MESSAGE",
                                         "invalid channel or scope", v);
        hub_.notify(t, message::refreshing(t));
        if (!hub_.request_refresh(t))
            co_return detail::json_error(http::status::not_found, "ROOM_NOT_FOUND",
                                         "no data source refreshes " + t.channel, v);
        co_return detail::json_response(http::status::accepted, detail::refresh_json(t), v);
    }
    if (path == "/api/rooms") {
        if (!get)
            co_return method_not_allowed("GET");
        std::map<std::string, std::size_t> rooms;
        for (auto& s : shards_) {
            detail::shard* sp = s.get();
            auto collect = [sp]() -> net::awaitable<std::map<std::string, std::size_t>> {
                std::map<std::string, std::size_t> r;
                for (auto const& [key, subs] : sp->subscriptions())
                    r[key] += subs.size();
                co_return r;
            };
            auto part = co_await net::co_spawn(sp->get_executor(), collect, net::use_awaitable);
            for (auto const& [k, n] : part)
                rooms[k] += n;
        }
        co_return detail::json_response(
            http::status::ok, detail::success_list("rooms", detail::rooms_json(rooms)), v);
    }
    if (path == "/api/broadcast" || path.rfind("/api/broadcast/", 0) == 0) {
        if (get && path.size() > 15) {
            // The delivery report of a broadcast sent with requires_ack.
            std::optional<detail::ack_tracker::status> st;
            {
                std::lock_guard lock(acks_->mutex);
                st = acks_->tracker.lookup(path.substr(15));
            }
            if (!st)
                co_return detail::json_error(
                    http::status::not_found, "NOT_FOUND",
                    "no broadcast with id " + path.substr(15) +
                        " (only broadcasts sent with requires_ack have one; they are kept " +
                        std::to_string(cfg_.acks.ttl.count() / 1000) + " s)",
                    v);
            co_return detail::json_response(http::status::ok, detail::ack_status_json(*st), v);
        }
        if (req.method() != http::verb::post)
            co_return method_not_allowed(path.size() > 15 ? "GET, POST" : "POST");
        auto answer = broadcast(path, query, req);
        if (auto* pending = std::get_if<engine_broadcast>(&answer))
            co_return co_await finish_broadcast(std::move(*pending));
        co_return std::get<http_response>(std::move(answer));
    }
    if (path == "/api/alerts" || path.rfind("/api/alerts/", 0) == 0)
        co_return alerts_route(path, query, req);
    co_return detail::json_error(http::status::not_found, "NOT_FOUND", "no route for " + path, v);
}

} // namespace rtpush

#endif
