#ifndef RTPUSH_IMPL_SERVER_SEED_ROUTES_HPP
#define RTPUSH_IMPL_SERVER_SEED_ROUTES_HPP

// The routes the seed back ends served that rtd answers too (docs/protocol.md, "Seed parity"):
// seed 004's /api/v1 (deep health, info, the region routes moved to WebSocket), seed 002's
// WebSocket stats and system metrics, seed 003's batch ingest and manual alert evaluation,
// and presence. Listed in the route table of impl/server_routes.hpp like every route.

#include <rtpush/detail/health.hpp>
#include <rtpush/detail/io/async_hub.hpp>
#include <rtpush/detail/io/server_impl.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <map>

namespace rtpush::detail {

// The channel of seed 002's system metrics (rtd's `--system-metrics` source publishes on it)
// (docs/protocol.md, "Seed parity").
inline constexpr std::string_view system_metrics_channel = "metrics";

// The refresher's per-source statistics, or null when no refresher runs.
inline boost::json::value sources_stats(const hub& h) {
    auto extra = h.extra_stats();
    if (auto* s = extra.if_contains("sources"))
        return std::move(*s);
    return nullptr;
}

// The statistics of the source publishing on `channel`, or nullptr.
inline const boost::json::object* source_on_channel(const boost::json::value& sources,
                                                    std::string_view channel) {
    if (auto const* a = sources.if_array())
        for (auto const& v : *a)
            if (auto const* o = v.if_object())
                if (auto const* t = o->if_contains("topic"); t && t->is_string()) {
                    std::string_view const key = t->get_string();
                    if (key.substr(0, key.find(':')) == channel)
                        return o;
                }
    return nullptr;
}

// GET /api/v1/health: 200 when every part is healthy, else 503 naming the failing ones. The
// shallow /api/health stays as it is: a liveness probe that a failing upstream API must not
// turn into restarts.
inline boost::asio::awaitable<http_response> server_impl::route_v1_health(route_request& r) {
    boost::json::object engine;
    engine_fields(engine);
    auto const sources = sources_stats(hub_);
    auto const failures = health_failures(engine, sources, stopping_);
    auto body = health_report(health_json(), engine, sources, failures);
    co_return json_response(failures.empty() ? http::status::ok : http::status::service_unavailable,
                            body, r.version());
}

inline boost::json::object info_json(const server_config& cfg, const boost::json::object& engine,
                                     const boost::json::value& sources, bool alert_rules,
                                     std::int64_t uptime_seconds) {
    boost::json::object o;
    o["name"] = cfg.server_name;
    o["version"] = version_string;
    o["uptime_seconds"] = uptime_seconds;
    o["engine"] = engine.contains("engine") ? engine.at("engine") : boost::json::value("memory");
    if (auto const* n = engine.if_contains("node_id"))
        o["node_id"] = *n;
    boost::json::object t;
    t["websocket"] = cfg.ws_path;
    t["socketio"] = "/socket.io/";
    if (!cfg.sse_path.empty())
        t["sse"] = cfg.sse_path;
    o["transports"] = std::move(t);
    boost::json::object f;
    f["tls"] = !cfg.tls_cert_file.empty();
    f["permessage_deflate"] = cfg.permessage_deflate;
    f["auth_required"] = cfg.auth_required;
    f["jwt"] = !cfg.jwt_secret.empty();
    f["admin_key"] = !cfg.admin_key.empty();
    f["client_publish"] = cfg.allow_client_publish;
    f["dashboard"] = cfg.dashboard;
    f["origin_check"] = !cfg.allowed_origins.empty();
    f["system_metrics"] = source_on_channel(sources, system_metrics_channel) != nullptr;
    f["alert_rules"] = alert_rules;
    o["features"] = std::move(f);
    boost::json::array names;
    if (auto const* a = sources.if_array())
        for (auto const& v : *a)
            if (auto const* s = v.if_object())
                names.push_back(s->at("name"));
    o["sources"] = std::move(names);
    boost::json::object limits;
    limits["max_connections"] = cfg.max_connections;
    limits["max_connections_per_org"] = cfg.max_connections_per_org;
    limits["max_connections_per_user"] = cfg.max_connections_per_user;
    limits["max_message_size"] = cfg.max_message_size;
    limits["max_subscriptions"] = cfg.max_subscriptions;
    limits["room_max_size"] = cfg.room_max_size;
    limits["heartbeat_interval_ms"] = cfg.heartbeat_interval.count();
    o["limits"] = std::move(limits);
    o["timestamp"] = iso8601_now();
    return o;
}

// GET /api/v1/info: seed 004's "system configuration and enabled features". Names no secret,
// only whether one is set: the route is open like the health check (docs/protocol.md, "Seed
// parity").
inline boost::asio::awaitable<http_response> server_impl::route_v1_info(route_request& r) {
    boost::json::object engine;
    engine_fields(engine);
    auto const uptime = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now() - started_at_)
                            .count();
    co_return json_response(
        http::status::ok,
        info_json(cfg_, engine, sources_stats(hub_), static_cast<bool>(alert_evaluator_), uptime),
        r.version());
}

// GET /api/v1/metrics: seed 002's HTTP fallback, the latest system metrics. A source that runs
// on demand may hold no value yet while nobody subscribes: it is asked for one and awaited,
// bounded, before the answer says there is none (docs/protocol.md, "Coming from Socket.IO").
inline boost::asio::awaitable<http_response> server_impl::route_v1_metrics(route_request& r) {
    topic const t{std::string(system_metrics_channel), {}};
    auto latest = [&] {
        return retained_json(hub_, t, false);
    };
    auto body = latest();
    if (body.at("count").as_uint64() == 0 && hub_.request_refresh(t)) {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        for (int i = 0; i < 40 && body.at("count").as_uint64() == 0; ++i) {
            timer.expires_after(std::chrono::milliseconds(50));
            co_await timer.async_wait(boost::asio::use_awaitable);
            body = latest();
        }
    }
    if (body.at("count").as_uint64() == 0)
        co_return json_error(http::status::service_unavailable, "METRICS_UNAVAILABLE",
                             "no system metrics: the source does not run (rtd --system-metrics) "
                             "or has not produced a value",
                             r.version());
    // The metrics themselves, as seed 002 answered, with where they came from (docs/protocol.md,
    // "Seed parity").
    boost::json::object o;
    o["success"] = true;
    o["data"] = body.contains("data") ? body.at("data") : body.at("items").at(0).at("data");
    o["topic"] = t.key();
    o["timestamp"] = body.at("timestamp");
    co_return json_response(http::status::ok, o, r.version());
}

inline boost::json::object upgrade_required_json(const std::string& region,
                                                 const std::string& ws_path) {
    boost::json::object e;
    e["code"] = "UPGRADE_REQUIRED";
    e["message"] = "metrics are served over WebSocket only: emit metrics:get or "
                   "metrics:subscribe with {\"source\": \"" +
                   region + "\"}";
    boost::json::object o;
    o["error"] = std::move(e);
    o["region"] = region;
    boost::json::object w;
    w["path"] = ws_path;
    w["socketio"] = "/socket.io/";
    o["websocket"] = std::move(w);
    boost::json::object ev;
    ev["get"] = "metrics:get";
    ev["subscribe"] = "metrics:subscribe";
    ev["unsubscribe"] = "metrics:unsubscribe";
    ev["data"] = "metrics:data";
    ev["update"] = "metrics-update";
    ev["error"] = "metrics:error";
    o["events"] = std::move(ev);
    boost::json::object data;
    data["source"] = region;
    o["data"] = std::move(data);
    return o;
}

// GET /api/v1/metrics/{region}: seed 004 moved region metrics to WebSocket and answers 426
// naming the events to use instead (docs/protocol.md, "Seed parity").
inline boost::asio::awaitable<http_response> server_impl::route_region_metrics(route_request& r) {
    std::string const& region = r.params[0];
    if (!valid_identifier(region))
        co_return json_error(http::status::bad_request, "INVALID_MESSAGE",
                             "a region is an identifier ([A-Za-z0-9_.@-])", r.version());
    auto res = json_response(http::status::upgrade_required,
                             upgrade_required_json(region, cfg_.ws_path), r.version());
    res.set(http::field::upgrade, "websocket"); // RFC 9110: a 426 names the protocol
    co_return res;
}

// GET /api/v1/ws/stats: seed 002's connection statistics: the clients with their channels,
// subscriptions per channel, and the system metrics interval (docs/protocol.md, "Seed parity").
inline boost::asio::awaitable<http_response> server_impl::route_ws_stats(route_request& r) {
    auto parts = co_await visit_shards([](shard& sh) {
        boost::json::array a;
        for (auto const& [id, sess] : sh.sessions())
            a.push_back(sess->info());
        for (auto const& [id, sse] : sh.sse_sessions())
            a.push_back(sse->info());
        return a;
    });
    boost::json::array clients;
    std::map<std::string, std::size_t> channels;
    for (auto& part : parts)
        for (auto& v : part) {
            auto& info = v.as_object();
            boost::json::object c;
            c["client_id"] = info.at("socket_id");
            c["transport"] = info.contains("transport") ? info.at("transport") : "websocket";
            c["connected_at"] = info.at("connected_at");
            boost::json::array subscribed;
            for (auto const& k : info.at("subscriptions").as_array()) {
                std::string_view const key = k.as_string();
                ++channels[std::string(key.substr(0, key.find(':')))];
                subscribed.push_back(k);
            }
            c["subscribed_channels"] = std::move(subscribed);
            clients.push_back(std::move(c));
        }
    boost::json::object o;
    o["success"] = true;
    o["connected_clients"] = clients.size();
    boost::json::object by_channel;
    for (auto const& [k, n] : channels)
        by_channel[k] = n;
    o["channels"] = std::move(by_channel);
    auto const sources = sources_stats(hub_);
    if (auto const* m = source_on_channel(sources, system_metrics_channel))
        o["metrics_interval_ms"] = m->at("refresh_interval_ms");
    else
        o["metrics_interval_ms"] = nullptr;
    o["clients"] = std::move(clients);
    o["timestamp"] = iso8601_now();
    co_return json_response(http::status::ok, o, r.version());
}

// POST /api/broadcast/{channel}/batch and seed 003's batch-ingest paths: every item read as the
// body of POST /api/broadcast/{channel} (the same parse and ingest rules) and published in
// order; the answer has one result per item, each what the single route would have answered
// (docs/protocol.md, "Seed parity").
inline boost::asio::awaitable<http_response> server_impl::route_broadcast_batch(route_request& r) {
    unsigned const v = r.version();
    std::string const channel =
        r.params.empty() ? std::string(seed_ingest_channel(r.path)) : r.params[0];
    auto parsed = parse_batch(r.req.body(), cfg_.max_json_depth);
    if (auto* fault = std::get_if<request_fault>(&parsed))
        co_return fault_response(*fault, v);
    auto& items = std::get<boost::json::array>(parsed);
    std::vector<http_response> answers;
    answers.reserve(items.size());
    for (auto& item : items) {
        auto one = parse_broadcast_value(channel, r.query, std::move(item), cfg_.ingest);
        if (auto* fault = std::get_if<request_fault>(&one))
            answers.push_back(fault_response(*fault, v));
        else
            answers.push_back(
                co_await publish_broadcast(std::get<broadcast_request>(std::move(one)), v));
    }
    auto const [status, body] = batch_answer(answers);
    co_return json_response(status, body, v);
}

// POST /api/alerts/evaluate: seed 003's manual evaluation, the program's rules run now
// (docs/protocol.md, "Seed parity").
inline boost::asio::awaitable<http_response> server_impl::route_alerts_evaluate(route_request& r) {
    if (!alert_evaluator_)
        co_return json_error(http::status::not_found, "NOT_FOUND",
                             "no alert rules to evaluate (rtd: `alerts.rules` in --config)",
                             r.version());
    auto result = alert_evaluator_();
    result["success"] = true;
    co_return json_response(http::status::ok, result, r.version());
}

// POST /api/intraday/kpi/compute {organization_id?, department_id?, queue_name?}: seed 003's
// manual computation. rtd's KPIs come from its data sources (or a producer's ingest): the
// `kpi` sources of the scope, or of narrower and wider ones, fetch now, as POST
// /api/refresh/kpi makes them (docs/protocol.md, "Seed parity").
inline boost::asio::awaitable<http_response> server_impl::route_kpi_compute(route_request& r) {
    unsigned const v = r.version();
    auto body = optional_object_body(r.req.body(), v);
    if (auto* refused = std::get_if<http_response>(&body))
        co_return std::move(*refused);
    topic const t{"kpi", scope_from_json(std::get<boost::json::object>(body))};
    if (validate(t))
        co_return json_error(http::status::bad_request, "INVALID_MESSAGE", "invalid scope", v);
    // Only a source the refresh reaches computes anything: another scope's is a 404 here.
    bool reached = false;
    auto const stats = hub_.extra_stats();
    if (auto const* sources = stats.if_contains("sources"); sources && sources->is_array())
        for (auto const& src : sources->get_array()) {
            boost::system::error_code ec;
            auto const* key = src.is_object() ? src.get_object().if_contains("topic") : nullptr;
            if (key && key->is_string())
                if (auto const st = parse_topic(key->get_string(), ec); !ec)
                    reached = reached || refresh_reaches(t, st);
        }
    if (!reached)
        co_return json_error(http::status::not_found, "ROOM_NOT_FOUND",
                             "no data source computes " + t.key(), v);
    co_return refresh_now(t, v);
}

// GET /api/rooms/{room}/presence: who is subscribed to the room on this node, with the read
// rule of the room's data (a token of another organization may not list its clients).
inline boost::asio::awaitable<http_response> server_impl::route_presence(route_request& r) {
    boost::system::error_code ec;
    auto const t = parse_topic(r.params[0], ec);
    if (ec || validate(t))
        co_return json_error(http::status::bad_request, "INVALID_MESSAGE",
                             "a room is a topic key: channel[:org:O[:dept:D[:queue:Q]]]",
                             r.version());
    if (auto refusal = read_refusal(r, t))
        co_return std::move(*refusal);
    std::string const key = t.key();
    auto found = co_await members_everywhere(key);
    boost::json::object o;
    o["success"] = true;
    o["room"] = key;
    o["channel"] = t.channel;
    o["scope"] = scope_to_json(t.scope);
    o["node_only"] = !found.complete; // some node did not answer: its clients are missing
    o["nodes"] = found.nodes;
    o["total_count"] = found.members.size();
    o["presence"] = std::move(found.members);
    co_return json_response(http::status::ok, o, r.version());
}

inline boost::asio::awaitable<boost::json::array> server_impl::room_members(std::string key) {
    auto parts = co_await visit_shards([&key](shard& sh) {
        boost::json::array a;
        auto add = [&](boost::json::object info, std::string_view transport) {
            auto const& subs = info.at("subscriptions").as_array();
            if (std::find(subs.begin(), subs.end(), boost::json::value(key)) == subs.end())
                return;
            boost::json::object p;
            p["client_id"] = info.at("socket_id");
            p["user_id"] = info.at("user_id");
            p["organization_id"] = info.at("organization_id");
            p["authenticated"] = info.at("authenticated");
            p["transport"] = transport;
            p["connected_at"] = info.at("connected_at");
            a.push_back(std::move(p));
        };
        for (auto const& [id, sess] : sh.sessions())
            add(sess->info(), "websocket");
        for (auto const& [id, sse] : sh.sse_sessions())
            add(sse->info(), "sse");
        for (auto const& [id, p] : sh.polling_sessions())
            if (!p->ended())
                add(p->info(), "polling");
        return a;
    });
    boost::json::array members;
    for (auto& part : parts)
        for (auto& x : part)
            members.push_back(std::move(x));
    co_return members;
}

inline boost::asio::awaitable<server_impl::room_presence>
server_impl::members_everywhere(std::string key) {
    namespace net = boost::asio;
    room_presence out;
    auto* e = hub_.get_engine();
    if (!e || !e->relays()) {
        out.members = co_await room_members(std::move(key));
        co_return out;
    }
    // Every node (this one too, through the echo) answers with its own members; the answers
    // come to on_presence_relay, which wakes this wait when the last expected one is in.
    auto q = std::make_shared<presence_query>(co_await net::this_coro::executor);
    std::string const node = e->node();
    std::string id;
    {
        std::lock_guard lock(presence_mutex_);
        id = node + "-" + std::to_string(++presence_seq_);
        q->expected = e->live_nodes();
        presence_queries_.emplace(id, q);
    }
    q->done.expires_after(presence_wait);
    if (e->relay(encode_presence_query(id, node, key))) {
        // The engine is down: this node's members only.
        {
            std::lock_guard lock(presence_mutex_);
            presence_queries_.erase(id);
        }
        out.members = co_await room_members(std::move(key));
        out.complete = false;
        co_return out;
    }
    co_await q->done.async_wait(net::as_tuple(net::use_awaitable));
    std::lock_guard lock(presence_mutex_);
    presence_queries_.erase(id);
    out.members = std::move(q->members);
    out.nodes = q->answered;
    out.complete = q->answered >= q->expected && q->self_answered;
    co_return out;
}

inline void server_impl::on_presence_relay(relayed r) {
    namespace net = boost::asio;
    auto* e = hub_.get_engine();
    if (!e || stopping_)
        return;
    if (r.what == relayed::kind::presence_query) {
        // Answered from shard 0, which gathers the members from every io thread.
        auto& sh = *shards_.front();
        net::post(sh.get_executor(), [this, &sh, r = std::move(r)]() mutable {
            if (stopping_ || sh.stopping)
                return;
            auto task = [](server_impl* self, relayed r) -> net::awaitable<void> {
                auto members = co_await self->room_members(r.topic_key);
                if (auto* e = self->hub_.get_engine())
                    e->relay(encode_presence_answer(r.id, r.from, e->node(), std::move(members)));
            };
            spawn_on(sh, task(this, std::move(r)), "presence-answer");
        });
        return;
    }
    if (r.to_node != e->node())
        return; // another node's question
    std::lock_guard lock(presence_mutex_);
    auto it = presence_queries_.find(r.id);
    if (it == presence_queries_.end())
        return; // answered too late: the query is over
    auto& q = *it->second;
    for (auto& m : r.members) {
        if (auto* o = m.if_object())
            (*o)["node_id"] = r.node;
        q.members.push_back(std::move(m));
    }
    if (r.node == e->node())
        q.self_answered = true;
    if (++q.answered >= q.expected && q.self_answered)
        net::post(q.done.get_executor(), [q = it->second] { q->done.cancel(); });
}

inline void server_impl::async_members(std::size_t shard_index, std::string key,
                                       std::function<void(boost::json::array)> done) {
    // On the caller's io thread, counted there: shutdown waits for it. None once stopping
    // (the other io threads may no longer answer); the connection is going anyway.
    auto& sh = *shards_.at(shard_index);
    if (stopping_ || sh.stopping)
        return;
    auto task = [](server_impl* self, std::string key,
                   std::function<void(boost::json::array)> done) -> boost::asio::awaitable<void> {
        auto found = co_await self->members_everywhere(std::move(key));
        done(std::move(found.members));
    };
    spawn_on(sh, task(this, std::move(key), std::move(done)), "presence");
}

} // namespace rtpush::detail

#endif
