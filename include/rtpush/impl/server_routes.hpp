//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_IMPL_SERVER_ROUTES_HPP
#define RTPUSH_IMPL_SERVER_ROUTES_HPP

// The REST API (docs/protocol.md, "REST"): a route table and one function per route.

#include <rtpush/detail/client_assets.hpp>
#include <rtpush/detail/dashboard_page.hpp>
#include <rtpush/detail/history_query.hpp>
#include <rtpush/detail/io/async_hub.hpp>
#include <rtpush/detail/io/server_impl.hpp>
#include <rtpush/version.hpp>

#include <map>

namespace rtpush::detail {

namespace http = boost::beast::http;

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

// The page with its WebSocket and SSE paths filled in, as JS literals ('<' escaped so that no
// path can close the script element).
inline http_response dashboard_response(const std::string& ws_path, const std::string& sse_path,
                                        unsigned version) {
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
    http_response res{boost::beast::http::status::ok, version};
    res.set(boost::beast::http::field::content_type, "text/html; charset=utf-8");
    res.set(boost::beast::http::field::cache_control, "no-cache");
    res.body() = std::move(page);
    res.prepare_payload();
    return res;
}

// JSON bodies are built outside coroutines: GCC 12 miscompiles initializer lists in them.
inline boost::json::object index_json(const std::string& ws_path) {
    boost::json::object o;
    o["name"] = "rtpush";
    o["version"] = version_string;
    o["websocket"] = ws_path;
    o["endpoints"] = {
        "GET / (dashboard page)",
        "GET /client/rtpush.js, /client/rtpush-react.js (the JavaScript client)",
        "GET /metrics (Prometheus)",
        "GET /sse?channel=&org=&dept=&queue= (Server-Sent Events)",
        "GET /api/health",
        "GET /api/kpis?channel=&org=&dept=&queue=",
        "GET /api/dashboard?channel=&org=&dept=&queue=",
        "GET /api/history?channel=&org=&dept=&queue=&since=&until=&limit=&cursor=",
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
        "POST /api/alerts/{id}/resolve",
        "POST /api/alerts/evaluate",
        "POST /api/intraday/kpi/compute",
        "POST /api/broadcast/{channel}/batch",
        "POST /api/schedulesbacklog/ingest, /api/schedulesbacklog/batch-ingest",
        "POST /api/intraday/attendance/ingest, /api/intraday/attendance/batch-ingest",
        "GET /api/rooms/{room}/presence",
        "GET /api/v1/health (deep: engine and data sources; 503 names the failing part)",
        "GET /api/v1/info",
        "GET /api/v1/metrics (latest system metrics)",
        "GET /api/v1/metrics/{region} (426: WebSocket events metrics:get, metrics:subscribe)",
        "GET /api/v1/ws/stats"};
    return o;
}

// Seed 000's REST fallback: the retained values of `t` and every narrower topic, the `kpis`
// phase (want_kpis) or the full data (`complete` and unphased values) (docs/protocol.md, "Seed
// parity").
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
    // One topic (the usual dashboard): its data directly, as seed 000's routes answered
    // (docs/protocol.md, "Seed parity").
    if (items.size() == 1)
        o["data"] = items.front().at("data");
    o["items"] = std::move(items);
    o["timestamp"] = iso8601_now();
    return o;
}

inline boost::json::object refresh_json(const topic& t) {
    boost::json::object o;
    o["success"] = true;
    o["topic"] = t.key();
    o["refreshing"] = true;
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

inline bool server_impl::admin_allowed(const http_request& req) const {
    if (cfg_.admin_key.empty())
        return true;
    auto const header = req[boost::beast::http::field::authorization];
    std::string_view key = apikey_token(header);
    if (key.empty())
        key = req["X-API-Key"];
    return !key.empty() && api_key_matches(key, cfg_.admin_key);
}

// One row per route: method, pattern, admin?, handler. The index and the health check stay
// open (load balancers), and so do the reads of tenant data (/api/kpis, /api/dashboard), which
// check a Bearer token themselves; everything else reads other clients' data or acts on them.
inline const std::vector<server_impl::route>& server_impl::routes() {
    using http::verb;
    using s = server_impl;
    static const std::vector<route> table{
        {verb::get, "/", false, &s::route_root},
        {verb::get, "/index.html", false, &s::route_dashboard},
        {verb::get, "/client/{file}", false, &s::route_client},
        {verb::get, "/api", false, &s::route_index},
        {verb::get, "/metrics", false, &s::route_metrics},
        {verb::get, "/api/health", false, &s::route_health},
        {verb::get, "/api/kpis", false, &s::route_retained},
        {verb::get, "/api/dashboard", false, &s::route_retained},
        {verb::get, "/api/history", false, &s::route_history},
        {verb::get, "/api/stats", true, &s::route_stats},
        {verb::get, "/api/connections", true, &s::route_connections},
        {verb::get, "/api/connections/{id}", true, &s::route_connection},
        {verb::get, "/api/rooms", true, &s::route_rooms},
        {verb::post, "/api/refresh/{channel}", true, &s::route_refresh},
        {verb::post, "/api/broadcast", true, &s::route_broadcast},
        {verb::post, "/api/broadcast/{channel}", true, &s::route_broadcast},
        {verb::get, "/api/broadcast/{id}", true, &s::route_broadcast_status},
        {verb::get, "/api/alerts", true, &s::route_alerts},
        {verb::get, "/api/alerts/{id}", true, &s::route_alert},
        {verb::post, "/api/alerts/{id}/acknowledge", true, &s::route_alert_step},
        {verb::post, "/api/alerts/{id}/resolve", true, &s::route_alert_step},
        // The seeds' routes (impl/server_seed_routes.hpp). Health and info stay open like
        // /api/health; presence checks the room's read rule itself, like /api/kpis.
        {verb::get, "/api/v1/health", false, &s::route_v1_health},
        {verb::get, "/api/v1/info", false, &s::route_v1_info},
        {verb::get, "/api/v1/metrics", false, &s::route_v1_metrics},
        {verb::get, "/api/v1/metrics/{region}", false, &s::route_region_metrics},
        {verb::get, "/api/v1/ws/stats", true, &s::route_ws_stats},
        {verb::post, "/api/broadcast/{channel}/batch", true, &s::route_broadcast_batch},
        {verb::post, "/api/schedulesbacklog/ingest", true, &s::route_broadcast},
        {verb::post, "/api/schedulesbacklog/batch-ingest", true, &s::route_broadcast_batch},
        {verb::post, "/api/intraday/attendance/ingest", true, &s::route_broadcast},
        {verb::post, "/api/intraday/attendance/batch-ingest", true, &s::route_broadcast_batch},
        {verb::post, "/api/alerts/evaluate", true, &s::route_alerts_evaluate},
        {verb::post, "/api/intraday/kpi/compute", true, &s::route_kpi_compute},
        {verb::get, "/api/rooms/{room}/presence", false, &s::route_presence},
    };
    return table;
}

/// Matches `path` against a pattern whose `{...}` segments take one non-empty segment each.
inline bool match_route(std::string_view pattern, std::string_view path,
                        std::vector<std::string>& params) {
    params.clear();
    while (!pattern.empty() && !path.empty()) {
        auto const pe = pattern.find('/', 1), te = path.find('/', 1);
        auto const pseg = pattern.substr(0, pe), tseg = path.substr(0, te);
        if (pseg.size() > 2 && pseg[1] == '{') {
            if (tseg.size() < 2)
                return false;
            params.emplace_back(tseg.substr(1));
        } else if (pseg != tseg) {
            return false;
        }
        pattern = pe == std::string_view::npos ? std::string_view{} : pattern.substr(pe);
        path = te == std::string_view::npos ? std::string_view{} : path.substr(te);
    }
    return pattern.empty() && path.empty();
}

inline boost::asio::awaitable<http_response> server_impl::handle(const http_request& req) {
    query_map query;
    std::string path(split_target(req.target(), query));
    co_return co_await handle(req, std::move(path), std::move(query));
}

inline boost::asio::awaitable<http_response>
server_impl::handle(const http_request& req, std::string path, query_map query) {
    route_request r{req, std::move(path), std::move(query), {}, false};
    // Seed 001 served these under /api/ws/...: accept both (docs/protocol.md, "Seed parity").
    if (r.path.rfind("/api/ws/", 0) == 0)
        r.path = "/api/" + r.path.substr(8);
    while (r.path.size() > 1 && r.path.back() == '/')
        r.path.pop_back();
    r.admin = admin_allowed(req);
    bool const get = req.method() == http::verb::get || req.method() == http::verb::head;
    route const* found = nullptr;
    route const* on_path = nullptr; // the first route of the path, for 401 and 405
    std::string allow;
    std::vector<std::string> params;
    for (auto const& rt : routes()) {
        if (!match_route(rt.pattern, r.path, params))
            continue;
        if (!on_path)
            on_path = &rt;
        allow += (allow.empty() ? "" : ", ") + std::string(http::to_string(rt.method));
        if (!found && (rt.method == req.method() || (get && rt.method == http::verb::get))) {
            found = &rt;
            r.params = params;
        }
    }
    if (!r.admin && (found ? found->admin : !on_path || on_path->admin)) {
        auto res = json_error(http::status::unauthorized, "UNAUTHORIZED",
                              "this route needs the admin key (X-API-Key: KEY or "
                              "Authorization: apikey KEY)",
                              req.version());
        res.set(http::field::www_authenticate, "apikey");
        co_return res;
    }
    if (!on_path)
        co_return json_error(http::status::not_found, "NOT_FOUND", "no route for " + r.path,
                             req.version());
    if (!found)
        co_return method_not_allowed(req, r.path, allow);
    co_return co_await (this->*(found->handler))(r);
}

inline boost::asio::awaitable<http_response> server_impl::route_root(route_request& r) {
    if (cfg_.dashboard)
        co_return dashboard_response(cfg_.ws_path, cfg_.sse_path, r.version());
    co_return json_response(http::status::ok, index_json(cfg_.ws_path), r.version());
}

inline boost::asio::awaitable<http_response> server_impl::route_dashboard(route_request& r) {
    if (!cfg_.dashboard)
        co_return json_error(http::status::not_found, "NOT_FOUND", "no route for " + r.path,
                             r.version());
    co_return dashboard_response(cfg_.ws_path, cfg_.sse_path, r.version());
}

// GET /client/{file}: the JavaScript client as ES modules (detail/client_assets.hpp).
inline boost::asio::awaitable<http_response> server_impl::route_client(route_request& r) {
    co_return client_file_response(r.params[0], r.req[http::field::if_none_match], r.version());
}

inline boost::asio::awaitable<http_response> server_impl::route_index(route_request& r) {
    co_return json_response(http::status::ok, index_json(cfg_.ws_path), r.version());
}

inline boost::asio::awaitable<http_response> server_impl::route_metrics(route_request& r) {
    auto text = co_await metrics();
    co_return text_response(std::move(text), "text/plain; version=0.0.4; charset=utf-8", "no-store",
                            r.version());
}

inline boost::asio::awaitable<http_response> server_impl::route_health(route_request& r) {
    co_return json_response(http::status::ok, health_json(), r.version());
}

inline boost::asio::awaitable<http_response> server_impl::route_stats(route_request& r) {
    auto stats = co_await stats_json();
    co_return json_response(http::status::ok, success("stats", std::move(stats)), r.version());
}

// GET /api/connections?org=: every connection (WebSocket and SSE), read on its shard.
inline boost::asio::awaitable<http_response> server_impl::route_connections(route_request& r) {
    std::string const want_org = query_param(r.query, scope_names[0]);
    auto parts = co_await visit_shards([&want_org](shard& sh) {
        boost::json::array a;
        for (auto const& [sid, sess] : sh.sessions())
            if (want_org.empty() || sess->organization() == want_org)
                a.push_back(sess->info());
        for (auto const& [sid, sse] : sh.sse_sessions())
            if (want_org.empty() || sse->organization() == want_org)
                a.push_back(sse->info());
        for (auto const& [sid, p] : sh.polling_sessions())
            if (!p->ended() && (want_org.empty() || p->organization() == want_org))
                a.push_back(p->info());
        return a;
    });
    boost::json::array all;
    for (auto& part : parts)
        for (auto& x : part)
            all.push_back(std::move(x));
    co_return json_response(http::status::ok, success_list("connections", std::move(all)),
                            r.version());
}

// GET /api/connections/c{n}.
inline boost::asio::awaitable<http_response> server_impl::route_connection(route_request& r) {
    std::string const& id = r.params[0];
    if (id.size() < 2 || id[0] != 'c' ||
        id.find_first_not_of("0123456789", 1) != std::string::npos || id.size() > 20)
        co_return json_error(http::status::not_found, "NOT_FOUND", "no connection " + id,
                             r.version());
    std::uint64_t const num = std::stoull(id.substr(1));
    auto parts = co_await visit_shards([num](shard& sh) -> std::optional<boost::json::object> {
        if (auto* sess = sh.find_session(num))
            return sess->info();
        if (auto* sse = sh.find_sse(num))
            return sse->info();
        return std::nullopt;
    });
    for (auto& part : parts)
        if (part)
            co_return json_response(http::status::ok, success("connection", std::move(*part)),
                                    r.version());
    co_return json_error(http::status::not_found, "NOT_FOUND", "no connection " + id, r.version());
}

// With authentication required (or an admin key set): the admin key or a Bearer token whose
// identity may read the topic (detail/access.hpp). Shared by the reads of tenant data.
inline std::optional<http_response> server_impl::read_refusal(route_request& r,
                                                              const topic& t) const {
    if (r.admin && !(cfg_.auth_required && cfg_.admin_key.empty()))
        return std::nullopt;
    std::optional<jwt_claims> claims;
    query_map const no_query; // no tokens in REST URLs (logs)
    auto const why = request_token(r.req, no_query, claims);
    bool const ok = claims && !may_read(identity::of(*claims), t);
    if (ok || (!cfg_.auth_required && cfg_.admin_key.empty()))
        return std::nullopt;
    auto res = json_error(http::status::unauthorized, claims ? "UNAUTHORIZED" : "AUTH_FAILED",
                          !why.empty() ? why
                          : claims     ? "this token may not read " + t.key()
                                       : "this route needs a Bearer token or the admin key",
                          r.version());
    res.set(http::field::www_authenticate, "Bearer");
    return res;
}

// GET /api/kpis and /api/dashboard: a tenant's retained data, as over WebSocket.
inline boost::asio::awaitable<http_response> server_impl::route_retained(route_request& r) {
    unsigned const v = r.version();
    topic t;
    auto const ch = r.query.find("channel");
    t.channel = ch != r.query.end() ? ch->second : cfg_.rest_default_channel;
    t.scope = scope_from_query(r.query);
    if (validate(t))
        co_return json_error(http::status::bad_request, "INVALID_MESSAGE",
                             "invalid channel or scope (identifiers are [A-Za-z0-9_.@-], a dept "
                             "needs an org, a queue needs a dept)",
                             v);
    if (auto refusal = read_refusal(r, t))
        co_return std::move(*refusal);
    // With an engine this node may not hold the channel (no client of it here): load it from
    // the cluster first. Bounded: a node without Redis answers with what it holds.
    if (hub_.get_engine())
        co_await async_prepare(hub_, t.channel, std::chrono::seconds(3));
    auto body = retained_json(hub_, t, r.path == "/api/kpis");
    if (body.at("count").as_uint64() == 0)
        co_return json_error(http::status::not_found, "NOT_FOUND",
                             "no data for " + t.key() + " yet", v);
    co_return json_response(http::status::ok, body, v);
}

// GET /api/history: past publications of a topic and its narrower ones, from the durable
// store (all it keeps), the Redis streams, or else the memory history (what recovery could
// replay), paged.
inline boost::asio::awaitable<http_response> server_impl::route_history(route_request& r) {
    unsigned const v = r.version();
    history_query q;
    if (auto e = parse_history_query(r.query, q))
        co_return field_error(http::status::bad_request, "INVALID_MESSAGE", {e->field, e->message},
                              v);
    if (auto refused = read_refusal(r, q.topic))
        co_return std::move(*refused);
    auto [ec, page] =
        co_await async_read_history(hub_, q, boost::asio::as_tuple(boost::asio::use_awaitable));
    if (ec)
        co_return json_error(http::status::service_unavailable, "INTERNAL_ERROR",
                             "the history cannot be read: " + ec.message(), v);
    boost::json::object head; // GCC 12: no initializer list temporaries in a coroutine
    head["success"] = true;
    co_return json_response(http::status::ok,
                            history_json(q, std::move(page), hub_.epoch(), std::move(head)), v);
}

// POST /api/refresh/{channel}?org=: the admin's `refresh` (rtctl refresh CHANNEL), what a
// client's message does, unlimited.
inline boost::asio::awaitable<http_response> server_impl::route_refresh(route_request& r) {
    topic const t{r.params[0], scope_from_query(r.query)};
    if (validate(t))
        co_return json_error(http::status::bad_request, "INVALID_MESSAGE",
                             "invalid channel or scope", r.version());
    co_return refresh_now(t, r.version());
}

inline http_response server_impl::refresh_now(const topic& t, unsigned version) {
    hub_.notify(t, message::refreshing(t));
    if (!hub_.request_refresh(t))
        return json_error(http::status::not_found, "ROOM_NOT_FOUND",
                          "no data source refreshes " + t.channel, version);
    return json_response(http::status::accepted, refresh_json(t), version);
}

// GET /api/rooms: every subscribed key with its members, summed over the shards.
inline boost::asio::awaitable<http_response> server_impl::route_rooms(route_request& r) {
    auto parts = co_await visit_shards([](shard& sh) {
        std::map<std::string, std::size_t> rooms;
        for (auto const& [key, subs] : sh.subscriptions().entries())
            rooms[key] += subs.size();
        return rooms;
    });
    std::map<std::string, std::size_t> rooms;
    for (auto const& part : parts)
        for (auto const& [k, n] : part)
            rooms[k] += n;
    co_return json_response(http::status::ok, success_list("rooms", rooms_json(rooms)),
                            r.version());
}

// POST /api/broadcast and POST /api/broadcast/{channel} (docs/protocol.md, "REST"), and seed
// 003's single ingest paths (detail/broadcast_request.hpp, seed_ingest_channel).
inline boost::asio::awaitable<http_response> server_impl::route_broadcast(route_request& r) {
    std::string_view const shortcut =
        r.params.empty() ? seed_ingest_channel(r.path) : std::string_view(r.params[0]);
    auto parsed =
        parse_broadcast(shortcut, r.query, r.req.body(), cfg_.max_json_depth, cfg_.ingest);
    if (auto* fault = std::get_if<request_fault>(&parsed))
        co_return fault_response(*fault, r.version());
    co_return co_await publish_broadcast(std::get<broadcast_request>(std::move(parsed)),
                                         r.version());
}

// GET /api/broadcast/{id}: the delivery report of a broadcast sent with requires_ack.
inline boost::asio::awaitable<http_response> server_impl::route_broadcast_status(route_request& r) {
    std::string const& id = r.params[0];
    std::optional<ack_tracker::status> st;
    {
        std::lock_guard lock(acks_->mutex);
        st = acks_->tracker.lookup(id);
    }
    if (!st)
        co_return json_error(http::status::not_found, "NOT_FOUND",
                             "no broadcast with id " + id +
                                 " (only broadcasts sent with requires_ack have one; they are "
                                 "kept " +
                                 std::to_string(cfg_.acks.ttl.count() / 1000) + " s)",
                             r.version());
    co_return json_response(http::status::ok, ack_status_json(*st), r.version());
}

// GET /api/alerts?status=&org=&dept=&queue=&rule_id=.
inline boost::asio::awaitable<http_response> server_impl::route_alerts(route_request& r) {
    auto bad = [&](std::string field, std::string message) {
        return field_error(http::status::bad_request, "INVALID_MESSAGE",
                           {std::move(field), std::move(message)}, r.version());
    };
    alert_filter f;
    auto const st_it = r.query.count("status") ? r.query.find("status") : r.query.find("state");
    std::string const st = st_it == r.query.end() ? std::string{} : st_it->second;
    if (st == "active") {
        f.active = true;
    } else if (!st.empty()) {
        alert_status s;
        if (!parse_alert_status(st, s))
            co_return bad("status", "must be pending, acknowledged, resolved or active");
        f.status = s;
    }
    f.scope = scope_from_query(r.query);
    if (validate(topic{"alerts", f.scope}))
        co_return bad("org", "invalid scope (identifiers are [A-Za-z0-9_.@-], a dept needs an "
                             "org, a queue needs a dept)");
    if (auto it = r.query.find("rule_id"); it != r.query.end())
        f.rule_id = it->second;
    boost::json::array a;
    for (auto const& x : alerts(f))
        a.push_back(x.data);
    co_return json_response(http::status::ok, success_list("alerts", std::move(a)), r.version());
}

// GET /api/alerts/{id}.
inline boost::asio::awaitable<http_response> server_impl::route_alert(route_request& r) {
    auto a = find_alert(r.params[0]);
    if (!a)
        co_return json_error(http::status::not_found, "NOT_FOUND", "no alert " + r.params[0],
                             r.version());
    co_return json_response(http::status::ok, success("alert", a->data), r.version());
}

// POST /api/alerts/{id}/acknowledge|resolve, with {"by": NAME} (or acknowledged_by /
// resolved_by); the body is optional.
inline boost::asio::awaitable<http_response> server_impl::route_alert_step(route_request& r) {
    unsigned const v = r.version();
    std::string const& id = r.params[0];
    bool const acknowledge = r.path.ends_with("/acknowledge");
    std::string by;
    auto body = optional_object_body(r.req.body(), v);
    if (auto* refused = std::get_if<http_response>(&body))
        co_return std::move(*refused);
    auto const& o = std::get<boost::json::object>(body);
    for (auto const* k : {"by", acknowledge ? "acknowledged_by" : "resolved_by"})
        if (auto const* b = o.if_contains(k)) {
            if (!b->is_string() || b->get_string().empty() || b->get_string().size() > 4096)
                co_return field_error(http::status::bad_request, "INVALID_MESSAGE",
                                      {k, "must be a non-empty string"}, v);
            by = std::string(b->get_string());
        }
    auto res = acknowledge ? acknowledge_alert(id, by) : resolve_alert(id, by);
    if (!res)
        co_return alert_error_response(res, v);
    co_return json_response(http::status::ok, alert_json(res, hub_.epoch()), v);
}

} // namespace rtpush::detail

#endif
