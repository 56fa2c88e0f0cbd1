// Loopback integration tests: a real rtpush::server and real WebSocket and HTTP clients.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include "harness.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace test;
using rtpush::client_connection;

namespace {

// Publications are built outside coroutines (GCC 12 and initializer lists in coroutines).
std::uint64_t pub(rtpush::hub& h, std::string channel, rtpush::scope sc, std::string_view data_json,
                  std::string phase = {}, std::string event = {}) {
    rtpush::publication p;
    p.topic = {std::move(channel), std::move(sc)};
    p.data = boost::json::parse(data_json);
    p.phase = std::move(phase);
    p.event = std::move(event);
    auto r = h.publish(std::move(p));
    BOOST_REQUIRE(!r.ec);
    return r.seq;
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    net::steady_timer t(co_await net::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(net::use_awaitable);
}

std::string frame(rtpush::detail::opcode op, std::string_view payload, bool mask = true) {
    std::string f;
    rtpush::detail::append_frame(f, op, payload, mask, 0x12345678);
    return f;
}

} // namespace

BOOST_AUTO_TEST_SUITE(websocket)

BOOST_AUTO_TEST_CASE(connected_subscribe_and_receive) {
    server_fixture fx;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await c.async_connect(fx.url());
        auto hello = boost::json::parse(co_await c.async_receive()).as_object();
        BOOST_TEST(hello.at("type").as_string() == "connected");
        BOOST_TEST(hello.at("clientId").as_string().starts_with("c"));
        BOOST_TEST(hello.at("heartbeatInterval").as_int64() == 30000);
        BOOST_TEST(hello.at("server").as_string() == "rtpush");
        co_await c.async_send(
            R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"},"id":7})");
        auto ack = co_await expect(c, "subscribed");
        BOOST_TEST(ack.at("id").as_int64() == 7);
        BOOST_TEST(ack.at("topic").as_string() == "kpi:org:acme");
        pub(fx.srv.hub(), "kpi", {"acme", "", ""}, R"({"health_score":88})", "kpis");
        auto u = co_await expect(c, "update");
        BOOST_TEST(u.at("event").as_string() == "kpi:update");
        BOOST_TEST(u.at("phase").as_string() == "kpis");
        BOOST_TEST(u.at("seq").as_int64() == 1);
        BOOST_TEST(u.at("epoch").as_string() == fx.srv.hub().epoch());
        BOOST_TEST(u.at("data").at("health_score").as_int64() == 88);
        BOOST_TEST(u.at("scope").at("org").as_string() == "acme");
        BOOST_TEST(u.at("timestamp").as_string().ends_with("Z"));
        co_await c.async_close();
        BOOST_TEST(c.close_code() == 1000);
    });
}

BOOST_AUTO_TEST_CASE(last_value_on_subscribe_kpis_first) {
    server_fixture fx;
    pub(fx.srv.hub(), "kpi", {"acme", "support", ""}, R"({"big":[1,2,3]})", "complete");
    pub(fx.srv.hub(), "kpi", {"acme", "support", ""}, R"({"health_score":70})", "kpis");
    pub(fx.srv.hub(), "kpi", {"globex", "", ""}, R"({"health_score":1})", "kpis");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "kpi", "acme");
        auto a = co_await next(c);
        auto b = co_await next(c);
        BOOST_TEST(a.at("type").as_string() == "initial");
        BOOST_TEST(a.at("phase").as_string() == "kpis");
        BOOST_TEST(a.at("seq").as_int64() == 2);
        BOOST_TEST(b.at("type").as_string() == "initial");
        BOOST_TEST(b.at("phase").as_string() == "complete");
        BOOST_TEST(b.at("topic").as_string() == "kpi:org:acme:dept:support");
        // nothing from globex: the next message is the answer to our ping
        co_await c.async_send(R"({"type":"ping","id":"p"})");
        auto p = co_await next(c);
        BOOST_TEST(p.at("type").as_string() == "pong");
        BOOST_TEST(p.at("id").as_string() == "p");
    });
}

BOOST_AUTO_TEST_CASE(unsubscribe_stops_delivery) {
    server_fixture fx;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "backlog", "acme");
        co_await c.async_send(
            R"({"type":"unsubscribe","channel":"backlog","scope":{"org":"acme"},"id":2})");
        auto u = co_await next(c);
        BOOST_TEST(u.at("type").as_string() == "unsubscribed");
        BOOST_TEST(u.at("id").as_int64() == 2);
        pub(fx.srv.hub(), "backlog", {"acme", "", ""}, R"({"n":1})");
        co_await c.async_send(R"({"type":"ping"})");
        auto p = co_await next(c);
        BOOST_TEST(p.at("type").as_string() == "pong");
        co_await c.async_send(
            R"({"type":"unsubscribe","channel":"backlog","scope":{"org":"acme"},"id":3})");
        auto e = co_await next(c);
        BOOST_TEST(e.at("type").as_string() == "error");
        BOOST_TEST(e.at("code").as_string() == "ROOM_NOT_FOUND");
        BOOST_TEST(e.at("id").as_int64() == 3);
    });
}

BOOST_AUTO_TEST_CASE(websocket_ping_gets_pong_frame) {
    server_fixture fx;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send_raw(frame(rtpush::detail::opcode::ping, "hello"));
        for (;;) {
            auto ev = co_await c.async_read_event();
            if (ev.kind == client_connection::event::pong) {
                BOOST_TEST(ev.payload == "hello");
                break;
            }
        }
    });
}

BOOST_AUTO_TEST_CASE(heartbeat_and_ping) {
    auto cfg = default_config();
    cfg.heartbeat_interval = 200ms;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await c.async_connect(fx.url());
        bool heartbeat = false, ping = false;
        while (!heartbeat || !ping) {
            auto ev = co_await c.async_read_event();
            if (ev.kind == client_connection::event::ping)
                ping = true;
            if (ev.kind == client_connection::event::message) {
                auto v = boost::json::parse(ev.payload);
                if (v.at("type").as_string() == "heartbeat") {
                    heartbeat = true;
                    BOOST_TEST(v.at("clients").as_int64() == 1);
                    BOOST_TEST(v.at("timestamp").is_string());
                }
            }
        }
    });
}

BOOST_AUTO_TEST_CASE(silent_peer_is_dropped) {
    auto cfg = default_config();
    cfg.heartbeat_interval = 100ms;
    cfg.idle_timeout = 300ms;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        // Handshake, then never read nor answer pings: the server must drop us.
        client_connection c(ioc.get_executor());
        co_await c.async_connect(fx.url());
        co_await sleep_for(1000ms);
        // The connection is gone from the server's view.
        BOOST_TEST(fx.srv.counters().at("active_connections").to_number<std::uint64_t>() == 0u);
    });
}

BOOST_AUTO_TEST_CASE(get_returns_snapshot) {
    server_fixture fx;
    pub(fx.srv.hub(), "metrics", {}, R"({"cpu":12.5})");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send(R"({"type":"get","channel":"metrics","id":"g1"})");
        auto s = co_await next(c);
        BOOST_TEST(s.at("type").as_string() == "snapshot");
        BOOST_TEST(s.at("id").as_string() == "g1");
        BOOST_TEST(s.at("items").as_array().size() == 1u);
        BOOST_TEST(s.at("items").at(0).at("data").at("cpu").as_double() == 12.5);
    });
}

BOOST_AUTO_TEST_CASE(client_publish_permission) {
    auto cfg = default_config();
    {
        server_fixture fx(cfg);
        run([&](net::io_context& ioc) -> net::awaitable<void> {
            client_connection c(ioc.get_executor());
            co_await connect(c, fx.url());
            co_await c.async_send(R"({"type":"publish","channel":"kpi","data":{"x":1},"id":1})");
            auto e = co_await next(c);
            BOOST_TEST(e.at("type").as_string() == "error");
            BOOST_TEST(e.at("code").as_string() == "UNAUTHORIZED");
        });
    }
    cfg.allow_client_publish = true;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection sub(ioc.get_executor()), p(ioc.get_executor());
        co_await connect(sub, fx.url());
        co_await subscribe(sub, "kpi");
        co_await connect(p, fx.url());
        co_await p.async_send(
            R"({"type":"publish","channel":"kpi","scope":{"org":"a"},"data":{"x":1},"id":1})");
        auto ack = co_await next(p);
        BOOST_TEST(ack.at("type").as_string() == "published");
        BOOST_TEST(ack.at("seq").as_int64() == 1);
        auto u = co_await expect(sub, "update");
        BOOST_TEST(u.at("data").at("x").as_int64() == 1);
    });
}

BOOST_AUTO_TEST_CASE(refresh_notifies_and_is_rate_limited) {
    auto cfg = default_config();
    cfg.refresh_min_interval = 10s;
    server_fixture fx(cfg);
    std::atomic<int> refreshes{0};
    fx.srv.hub().on_refresh([&](const rtpush::topic& t) {
        ++refreshes;
        pub(fx.srv.hub(), t.channel, t.scope, R"({"fresh":true})");
    });
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "kpi", "acme");
        co_await c.async_send(R"({"type":"refresh"})");
        auto r = co_await next(c);
        BOOST_TEST(r.at("type").as_string() == "refreshing");
        auto u = co_await next(c);
        BOOST_TEST(u.at("type").as_string() == "update");
        BOOST_TEST(u.at("data").at("fresh").as_bool());
        co_await c.async_send(R"({"type":"refresh","id":5})");
        auto rl = co_await next(c);
        BOOST_TEST(rl.at("type").as_string() == "rate_limit");
        BOOST_TEST(rl.at("retryAfter").as_double() > 0);
        BOOST_TEST(rl.at("retryAfter").as_double() <= 10);
        BOOST_TEST(rl.at("id").as_int64() == 5);
    });
    BOOST_TEST(refreshes == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scoping)

BOOST_AUTO_TEST_CASE(org_sees_departments_sibling_sees_nothing) {
    server_fixture fx;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection org(ioc.get_executor()), dept(ioc.get_executor()),
            sibling(ioc.get_executor()), all(ioc.get_executor());
        co_await connect(org, fx.url());
        co_await connect(dept, fx.url());
        co_await connect(sibling, fx.url());
        co_await connect(all, fx.url());
        co_await subscribe(org, "kpi", "acme");
        co_await subscribe(dept, "kpi", "acme", "support");
        co_await subscribe(sibling, "kpi", "globex");
        co_await subscribe(all, "kpi");
        pub(fx.srv.hub(), "kpi", {"acme", "support", "email"}, R"({"n":1})"); // queue level
        pub(fx.srv.hub(), "kpi", {"acme", "sales", ""}, R"({"n":2})");        // other dept
        pub(fx.srv.hub(), "kpi", {"acme", "", ""}, R"({"n":3})");             // org level
        pub(fx.srv.hub(), "alerts", {"acme", "", ""}, R"({"n":4})");          // other channel
        pub(fx.srv.hub(), "kpi", {"globex", "", ""}, R"({"n":5})");
        for (int want : {1, 2, 3}) {
            auto u = co_await expect(org, "update");
            BOOST_TEST(u.at("data").at("n").as_int64() == want);
        }
        auto d = co_await expect(dept, "update");
        BOOST_TEST(d.at("data").at("n").as_int64() == 1);
        auto s = co_await expect(sibling, "update");
        BOOST_TEST(s.at("data").at("n").as_int64() == 5);
        for (int want : {1, 2, 3, 5}) {
            auto u = co_await expect(all, "update");
            BOOST_TEST(u.at("data").at("n").as_int64() == want);
        }
        // and nothing else arrived before a pong
        for (auto* c : {&org, &dept, &sibling, &all}) {
            co_await c->async_send(R"({"type":"ping"})");
            auto p = co_await next(*c);
            BOOST_TEST(p.at("type").as_string() == "pong");
        }
    });
}

BOOST_AUTO_TEST_CASE(overlapping_subscriptions_deliver_once) {
    server_fixture fx;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "kpi");
        co_await subscribe(c, "kpi", "acme");
        pub(fx.srv.hub(), "kpi", {"acme", "x", ""}, R"({"n":1})");
        auto u = co_await expect(c, "update");
        BOOST_TEST(u.at("data").at("n").as_int64() == 1);
        co_await c.async_send(R"({"type":"ping"})");
        auto p = co_await next(c);
        BOOST_TEST(p.at("type").as_string() == "pong");
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(rest)

BOOST_AUTO_TEST_CASE(health_stats_rooms_connections) {
    server_fixture fx;
    auto const port = fx.srv.port();
    auto h = http_call(port, http::verb::get, "/api/health");
    BOOST_TEST(h.status == 200u);
    BOOST_TEST(h.body.at("status").as_string() == "ok");
    BOOST_TEST(h.res[http::field::content_type] == "application/json");

    net::io_context ioc;
    client_connection c(ioc.get_executor());
    auto setup = [&]() -> net::awaitable<void> {
        co_await c.async_connect(fx.url("/ws?org=acme"));
        co_await c.async_receive();
        co_await subscribe(c, "kpi", "acme", "support");
    };
    auto f = net::co_spawn(ioc, setup, net::use_future);
    ioc.run_for(10s);
    f.get();
    ioc.restart();

    auto b = http_call(
        port, http::verb::post, "/api/broadcast",
        R"({"event":"kpi:update","data":{"v":1,"health_score":70},"target":{"organization_id":"acme","department_id":"support"},"priority":"urgent"})");
    BOOST_TEST(b.status == 200u);
    BOOST_TEST(b.body.at("success").as_bool());
    BOOST_TEST(b.body.at("topic").as_string() == "kpi:org:acme:dept:support");

    auto s = http_call(port, http::verb::get, "/api/stats");
    BOOST_TEST(s.status == 200u);
    auto const& st = s.body.at("stats");
    for (auto k : {"active_connections", "connections_by_org", "active_rooms", "total_messages",
                   "messages_per_second", "messages_by_event", "average_latency_ms",
                   "max_latency_ms", "error_count", "uptime_seconds"})
        BOOST_TEST(st.as_object().contains(k), k);
    BOOST_TEST(st.at("active_connections").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.at("connections_by_org").at("acme").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.at("messages_by_event").at("kpi:update").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(st.at("active_rooms").to_number<std::uint64_t>() == 1u);

    auto alias = http_call(port, http::verb::get, "/api/ws/stats");
    BOOST_TEST(alias.status == 200u);

    auto conns = http_call(port, http::verb::get, "/api/connections?organization_id=acme");
    BOOST_TEST(conns.status == 200u);
    BOOST_TEST(conns.body.at("total_count").to_number<std::uint64_t>() == 1u);
    auto const id = std::string(conns.body.at("connections").at(0).at("socket_id").as_string());
    BOOST_TEST(conns.body.at("connections").at(0).at("subscriptions").at(0).as_string() ==
               "kpi:org:acme:dept:support");
    auto none = http_call(port, http::verb::get, "/api/connections?organization_id=globex");
    BOOST_TEST(none.body.at("total_count").to_number<std::uint64_t>() == 0u);
    auto one = http_call(port, http::verb::get, "/api/connections/" + id);
    BOOST_TEST(one.status == 200u);
    BOOST_TEST(one.body.at("connection").at("socket_id").as_string() == id);
    auto missing = http_call(port, http::verb::get, "/api/connections/c999999");
    BOOST_TEST(missing.status == 404u);
    BOOST_TEST(missing.body.at("error").at("code").as_string() == "NOT_FOUND");

    auto rooms = http_call(port, http::verb::get, "/api/rooms");
    BOOST_TEST(rooms.status == 200u);
    BOOST_TEST(rooms.body.at("rooms").at(0).at("name").as_string() == "kpi:org:acme:dept:support");
    BOOST_TEST(rooms.body.at("rooms").at(0).at("members").to_number<std::uint64_t>() == 1u);

    // the broadcast reached the subscriber with its priority
    auto recv = [&]() -> net::awaitable<boost::json::object> {
        co_return co_await expect(c, "update");
    };
    auto g = net::co_spawn(ioc, recv, net::use_future);
    ioc.run_for(10s);
    auto u = g.get();
    BOOST_TEST(u.at("priority").as_string() == "urgent");
    BOOST_TEST(u.at("data").at("v").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(broadcast_shortcut_and_errors) {
    server_fixture fx;
    auto const port = fx.srv.port();
    auto s =
        http_call(port, http::verb::post, "/api/broadcast/backlog",
                  R"({"organization_id":"acme","queue_name":"q","department_id":"d","total_items":3,
            "avg_wait_time_minutes":1.5,"items_over_sla":1,"sla_compliance_percentage":90})");
    BOOST_TEST(s.status == 200u);
    BOOST_TEST(s.body.at("topic").as_string() == "backlog:org:acme:dept:d:queue:q");
    auto snap = fx.srv.hub().snapshot({"backlog", {"acme", "", ""}});
    BOOST_TEST(snap.size() == 1u);
    BOOST_TEST(snap.at(0).at("data").at("total_items").as_int64() == 3);
    BOOST_TEST(snap.at(0).at("event").as_string() == "backlog:update");
    // the server stamped the payload that came without a time
    BOOST_TEST(rtpush::valid_timestamp(snap.at(0).at("data").at("timestamp").as_string()));

    // seed 003's schema: a bad field is refused with its name, nothing is published
    auto invalid =
        http_call(port, http::verb::post, "/api/broadcast/backlog",
                  R"({"organization_id":"acme","total_items":3,"avg_wait_time_minutes":1.5,
            "items_over_sla":1,"sla_compliance_percentage":190})");
    BOOST_TEST(invalid.status == 400u);
    BOOST_TEST(invalid.body.at("error").at("code").as_string() == "INVALID_MESSAGE");
    BOOST_TEST(invalid.body.at("error").at("field").as_string() == "sla_compliance_percentage");
    BOOST_TEST(fx.srv.hub().snapshot({"backlog", {"acme", "", ""}}).size() == 1u);
    // the generic route validates seed 003's events, with the scope taken from the target
    auto generic = http_call(port, http::verb::post, "/api/broadcast",
                             R"({"event":"kpi:update","target":{"organization_id":"acme"},
                                 "data":{"health_score":"high"}})");
    BOOST_TEST(generic.status == 400u);
    BOOST_TEST(generic.body.at("error").at("field").as_string() == "health_score");
    auto clash = http_call(port, http::verb::post, "/api/broadcast",
                           R"({"event":"kpi:update","target":{"organization_id":"acme"},
                               "data":{"organization_id":"globex","health_score":3}})");
    BOOST_TEST(clash.status == 400u);
    BOOST_TEST(clash.body.at("error").at("field").as_string() == "organization_id");
    auto good = http_call(port, http::verb::post, "/api/broadcast",
                          R"({"event":"kpi:update","target":{"organization_id":"acme"},
                              "data":{"health_score":3}})");
    BOOST_TEST(good.status == 200u);
    BOOST_TEST(good.body.at("topic").as_string() == "kpi:org:acme");
    // other events and channels stay free-form
    auto free = http_call(port, http::verb::post, "/api/broadcast/notifications", R"({"x":1})");
    BOOST_TEST(free.status == 200u);

    auto bad = http_call(port, http::verb::post, "/api/broadcast", "{not json");
    BOOST_TEST(bad.status == 400u);
    BOOST_TEST(bad.body.at("error").at("code").as_string() == "INVALID_MESSAGE");
    auto nodata = http_call(port, http::verb::post, "/api/broadcast", R"({"channel":"kpi"})");
    BOOST_TEST(nodata.status == 400u);
    auto badscope = http_call(port, http::verb::post, "/api/broadcast",
                              R"({"channel":"kpi","target":{"department_id":"d"},"data":1})");
    BOOST_TEST(badscope.status == 400u);
    auto badprio = http_call(port, http::verb::post, "/api/broadcast",
                             R"({"channel":"kpi","priority":"whenever","data":1})");
    BOOST_TEST(badprio.status == 400u);
    auto wrong = http_call(port, http::verb::get, "/api/broadcast");
    BOOST_TEST(wrong.status == 405u);
    BOOST_TEST(wrong.res[http::field::allow] == "POST");
    BOOST_TEST(wrong.body.at("error").at("code").as_string() == "METHOD_NOT_ALLOWED");
    auto wrong2 = http_call(port, http::verb::delete_, "/api/health");
    BOOST_TEST(wrong2.status == 405u);
    auto nf = http_call(port, http::verb::get, "/api/nothing");
    BOOST_TEST(nf.status == 404u);
    BOOST_TEST(nf.body.at("error").at("code").as_string() == "NOT_FOUND");
    auto ws = http_call(port, http::verb::get, "/ws");
    BOOST_TEST(ws.status == 426u);
    auto root = http_call(port, http::verb::get, "/api");
    BOOST_TEST(root.status == 200u);
    BOOST_TEST(root.body.at("websocket").as_string() == "/ws");
}

// Parses the Prometheus text format strictly enough to catch what promtool would reject:
// every sample belongs to a family declared by # HELP and # TYPE before it.
std::map<std::string, double> parse_metrics(const std::string& text) {
    std::map<std::string, double> samples;
    std::set<std::string> families;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        BOOST_REQUIRE(!line.empty());
        if (line.rfind("# HELP ", 0) == 0)
            continue;
        if (line.rfind("# TYPE ", 0) == 0) {
            auto const rest = line.substr(7);
            auto const name = rest.substr(0, rest.find(' '));
            auto const type = rest.substr(rest.find(' ') + 1);
            BOOST_TEST((type == "counter" || type == "gauge" || type == "histogram"), line);
            BOOST_TEST(name.rfind("rtpush_", 0) == 0u, line);
            BOOST_TEST(families.insert(name).second, "family declared twice: " << name);
            continue;
        }
        auto const sp = line.rfind(' ');
        BOOST_REQUIRE(sp != std::string::npos);
        std::string const key = line.substr(0, sp);
        std::string const name = key.substr(0, key.find('{'));
        std::string family = name;
        for (auto const* suffix : {"_bucket", "_sum", "_count"})
            if (!families.count(family) && family.ends_with(suffix))
                family = family.substr(0, family.size() - std::strlen(suffix));
        BOOST_TEST(families.count(family) == 1u, "sample before its # TYPE: " << line);
        std::string const value = line.substr(sp + 1);
        samples[key] = value == "+Inf" ? INFINITY : std::stod(value);
    }
    return samples;
}

BOOST_AUTO_TEST_CASE(prometheus_metrics) {
    server_fixture fx;
    auto const port = fx.srv.port();
    net::io_context ioc;
    client_connection c(ioc.get_executor());
    auto setup = [&]() -> net::awaitable<void> {
        co_await connect(c, fx.url());
        co_await subscribe(c, "kpi", "acme");
    };
    auto f = net::co_spawn(ioc, setup, net::use_future);
    ioc.run_for(10s);
    f.get();
    pub(fx.srv.hub(), "kpi", {"acme", "", ""}, R"({"health_score":1})");

    // The write completes on the server's thread: poll until the histogram has the sample.
    std::map<std::string, double> m;
    http_result r;
    for (int i = 0; i < 100; ++i) {
        r = http_call(port, http::verb::get, "/metrics");
        BOOST_REQUIRE(r.status == 200u);
        m = parse_metrics(r.raw);
        if (m["rtpush_publish_to_send_latency_seconds_count"] >= 1)
            break;
        std::this_thread::sleep_for(50ms);
    }
    BOOST_TEST(r.res[http::field::content_type] == "text/plain; version=0.0.4; charset=utf-8");
    BOOST_TEST(m.at(std::string("rtpush_build_info{version=\"") + rtpush::version_string + "\"}") ==
               1);
    BOOST_TEST(m.at("rtpush_connections") == 1);
    BOOST_TEST(m.at("rtpush_connections_accepted_total") == 1);
    BOOST_TEST(m.at("rtpush_connections_rejected_total{reason=\"connection_limit\"}") == 0);
    BOOST_TEST(m.at("rtpush_messages_published_total") == 1);
    // connected, subscribed, the update
    BOOST_TEST(m.at("rtpush_messages_sent_total") >= 3);
    BOOST_TEST(m.at("rtpush_sent_bytes_total") > 0);
    BOOST_TEST(m.at("rtpush_messages_dropped_total{reason=\"slow_consumer\"}") == 0);
    BOOST_TEST(m.at("rtpush_messages_dropped_total{reason=\"drop_oldest\"}") == 0);
    BOOST_TEST(m.at("rtpush_errors_total") == 0);
    BOOST_TEST(m.at("rtpush_topics") == 1);
    BOOST_TEST(m.count("rtpush_queued_messages") == 1u);
    BOOST_TEST(m.count("rtpush_uptime_seconds") == 1u);
    // Histogram: cumulative buckets, +Inf equals the count, 1 sample under 5 s.
    double prev = 0;
    int buckets = 0;
    for (auto const& [k, v] : m)
        if (k.rfind("rtpush_publish_to_send_latency_seconds_bucket{", 0) == 0 &&
            k.find("+Inf") == std::string::npos) {
            ++buckets;
            prev = std::max(prev, v);
        }
    BOOST_TEST(buckets == 15);
    double const count = m.at("rtpush_publish_to_send_latency_seconds_count");
    BOOST_TEST(count == 1);
    BOOST_TEST(m.at("rtpush_publish_to_send_latency_seconds_bucket{le=\"+Inf\"}") == count);
    BOOST_TEST(m.at("rtpush_publish_to_send_latency_seconds_bucket{le=\"5\"}") == count);
    BOOST_TEST(prev <= count);
    BOOST_TEST(m.at("rtpush_publish_to_send_latency_seconds_sum") >= 0);

    auto post = http_call(port, http::verb::post, "/metrics", "{}");
    BOOST_TEST(post.status == 405u);
}

BOOST_AUTO_TEST_CASE(dashboard_page) {
    server_fixture fx;
    auto const port = fx.srv.port();
    for (auto const* target : {"/", "/index.html"}) {
        auto page = http_call(port, http::verb::get, target);
        BOOST_TEST(page.status == 200u);
        BOOST_TEST(page.res[http::field::content_type].starts_with("text/html"));
        BOOST_TEST(page.raw.find("<title>rtpush dashboard</title>") != std::string::npos);
        // The WebSocket path is filled in, and nothing is loaded from elsewhere.
        BOOST_TEST(page.raw.find(R"(const WS_PATH = "/ws";)") != std::string::npos);
        BOOST_TEST(page.raw.find("__RTPUSH_WS_PATH__") == std::string::npos);
        BOOST_TEST(page.raw.find("http://") == std::string::npos);
        BOOST_TEST(page.raw.find("https://") == std::string::npos);
    }
    auto post = http_call(port, http::verb::post, "/", "{}");
    BOOST_TEST(post.status == 405u);
}

// The JavaScript client as ES modules (detail/client_assets.hpp), through the route table.
BOOST_AUTO_TEST_CASE(client_modules) {
    server_fixture fx;
    auto const port = fx.srv.port();
    for (auto const* target :
         {"/client/rtpush.js", "/client/rtpush-react.js", "/client/client.js"}) {
        auto const js = http_call(port, http::verb::get, target);
        BOOST_TEST(js.status == 200u, target);
        BOOST_TEST(js.res[http::field::content_type] == "text/javascript; charset=utf-8");
        BOOST_TEST(js.raw.find("export ") != std::string::npos);
        std::string const etag(js.res[http::field::etag]);
        auto const again =
            http_call(port, http::verb::get, target, {}, {}, {{"If-None-Match", etag}});
        BOOST_TEST(again.status == 304u, target);
        BOOST_TEST(again.raw.empty());
    }
    auto const missing = http_call(port, http::verb::get, "/client/nope.js");
    BOOST_TEST(missing.status == 404u);
    BOOST_TEST(missing.body.at("error").at("code").as_string() == "NOT_FOUND");
    BOOST_TEST(http_call(port, http::verb::get, "/client/a/b.js").status == 404u);
    BOOST_TEST(http_call(port, http::verb::post, "/client/rtpush.js", "{}").status == 405u);
}

BOOST_AUTO_TEST_CASE(dashboard_off_serves_the_index) {
    auto cfg = default_config();
    cfg.dashboard = false;
    server_fixture fx(cfg);
    auto root = http_call(fx.srv.port(), http::verb::get, "/");
    BOOST_TEST(root.status == 200u);
    BOOST_TEST(root.body.at("websocket").as_string() == "/ws");
}

BOOST_AUTO_TEST_CASE(head_has_headers_and_no_body) {
    server_fixture fx;
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), fx.srv.port()});
    // Two requests on one connection: a body after the HEAD answer would be read as the
    // start of the second answer.
    std::string const req = "HEAD /api/health HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n";
    net::write(s, net::buffer(req));
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> head;
    head.skip(true);
    http::read(s, buf, head);
    BOOST_TEST(head.get().result_int() == 200u);
    BOOST_TEST(head.get().body().empty());
    BOOST_TEST(!head.get()[http::field::content_length].empty());
    http::response<http::string_body> get;
    http::read(s, buf, get);
    BOOST_TEST(get.result_int() == 200u);
    BOOST_TEST(boost::json::parse(get.body()).at("status").as_string() == "ok");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(bad_input)

BOOST_AUTO_TEST_CASE(bad_messages_get_errors_and_connection_stays) {
    auto cfg = default_config();
    cfg.max_subscriptions = 2;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        struct probe {
            const char* send;
            const char* code;
        };
        for (auto const& p :
             {probe{"{oops", "INVALID_MESSAGE"}, probe{"[1,2]", "INVALID_MESSAGE"},
              probe{R"({"type":"teleport","id":"t1"})", "INVALID_MESSAGE"},
              probe{R"({"type":"subscribe"})", "INVALID_MESSAGE"},
              probe{R"({"type":"subscribe","channel":"kpi","scope":{"dept":"d"}})",
                    "INVALID_MESSAGE"},
              probe{R"({"type":"subscribe","channel":"a:b"})", "INVALID_MESSAGE"},
              probe{R"({"type":"subscribe","channel":"kpi","scope":"acme"})", "INVALID_MESSAGE"},
              probe{"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
                    "]]]]]]]]]]",
                    "INVALID_MESSAGE"}}) {
            co_await c.async_send(p.send);
            auto e = co_await next(c);
            BOOST_TEST(e.at("type").as_string() == "error", p.send);
            BOOST_TEST(e.at("code").as_string() == p.code, p.send);
            BOOST_TEST(!e.at("message").as_string().empty());
        }
        co_await c.async_send(R"({"type":"teleport","id":"t1"})");
        auto e = co_await next(c);
        BOOST_TEST(e.at("id").as_string() == "t1");
        // binary frames are not part of the protocol
        co_await c.async_send_raw(frame(rtpush::detail::opcode::binary, "\x01\x02"));
        auto b = co_await next(c);
        BOOST_TEST(b.at("code").as_string() == "INVALID_MESSAGE");
        // subscription limit
        co_await subscribe(c, "a");
        co_await subscribe(c, "b");
        co_await c.async_send(R"({"type":"subscribe","channel":"c","id":9})");
        auto lim = co_await next(c);
        BOOST_TEST(lim.at("code").as_string() == "SUBSCRIPTION_FAILED");
        // still alive
        co_await c.async_send(R"({"type":"ping"})");
        auto p = co_await next(c);
        BOOST_TEST(p.at("type").as_string() == "pong");
    });
}

BOOST_AUTO_TEST_CASE(oversized_message_closes_1009) {
    auto cfg = default_config();
    cfg.max_message_size = 1024;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send(std::string(2000, 'x'));
        auto e = co_await next(c);
        BOOST_TEST(e.at("code").as_string() == "MESSAGE_TOO_LARGE");
        for (;;) {
            auto ev = co_await c.async_read_event();
            if (ev.kind == client_connection::event::close) {
                BOOST_TEST(ev.code == 1009);
                break;
            }
        }
    });
}

BOOST_AUTO_TEST_CASE(protocol_violations_close_with_codes) {
    server_fixture fx;
    struct probe {
        std::string bytes;
        std::uint16_t code;
    };
    std::string bad_utf8 = frame(rtpush::detail::opcode::text, "\xC3\x28");
    std::string unmasked = frame(rtpush::detail::opcode::text, "{}", false);
    std::string rsv = frame(rtpush::detail::opcode::text, "{}");
    rsv[0] = static_cast<char>(rsv[0] | 0x40);
    std::string opcode3 = frame(rtpush::detail::opcode::text, "{}");
    opcode3[0] = static_cast<char>(0x83);
    for (auto const& p :
         {probe{bad_utf8, 1007}, probe{unmasked, 1002}, probe{rsv, 1002}, probe{opcode3, 1002}}) {
        run([&](net::io_context& ioc) -> net::awaitable<void> {
            client_connection c(ioc.get_executor());
            co_await connect(c, fx.url());
            co_await c.async_send_raw(p.bytes);
            for (;;) {
                auto ev = co_await c.async_read_event();
                if (ev.kind == client_connection::event::close) {
                    BOOST_TEST(ev.code == p.code);
                    break;
                }
            }
        });
    }
    // the server is fine afterwards
    BOOST_TEST(http_call(fx.srv.port(), http::verb::get, "/api/health").status == 200u);
}

BOOST_AUTO_TEST_CASE(bad_handshakes_get_http_errors) {
    auto cfg = default_config();
    cfg.max_connections = 1;
    server_fixture fx(cfg);
    auto const port = fx.srv.port();
    std::string const base =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
    auto v8 = http_call(
        port, {}, {}, {},
        base + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    BOOST_TEST(v8.status == 426u);
    BOOST_TEST(v8.res[http::field::sec_websocket_version] == "13");
    auto nokey = http_call(port, {}, {}, {}, base + "Sec-WebSocket-Version: 13\r\n\r\n");
    BOOST_TEST(nokey.status == 400u);
    BOOST_TEST(nokey.body.at("error").at("code").as_string() == "INVALID_MESSAGE");
    auto path = http_call(
        port, {}, {}, {},
        "GET /elsewhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    BOOST_TEST(path.status == 404u);
    auto garbage = http_call(port, {}, {}, {}, "HELLO?? \x01\x02\r\n\r\n");
    BOOST_TEST(garbage.status == 400u);
    // connection limit
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection a(ioc.get_executor()), b(ioc.get_executor());
        co_await connect(a, fx.url());
        bool refused = false;
        try {
            co_await b.async_connect(fx.url());
        } catch (boost::system::system_error const& e) {
            refused = e.code() == rtpush::error::handshake_failed;
        }
        BOOST_TEST(refused);
        BOOST_TEST(b.handshake_status() == 503u);
        BOOST_TEST(b.handshake_body().find("CONNECTION_LIMIT") != std::string::npos);
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(load)

// `clients` subscribers of kpi:acme, then `messages` publications `spacing` apart; every
// subscriber must get every one, in order. Returns how many subscribers got them all.
int receive_all_in_order(server_fixture& fx, int clients, int messages,
                         std::chrono::milliseconds spacing) {
    std::atomic<int> ready{0};
    std::atomic<int> complete{0};
    std::thread publisher([&] {
        while (ready < clients)
            std::this_thread::sleep_for(5ms);
        for (int i = 1; i <= messages; ++i) {
            pub(fx.srv.hub(), "kpi", {"acme", "", ""}, "{\"i\":" + std::to_string(i) + "}");
            if (spacing.count())
                std::this_thread::sleep_for(spacing);
        }
    });
    run(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            auto one = [&]() -> net::awaitable<void> {
                client_connection c(ioc.get_executor());
                co_await connect(c, fx.url());
                co_await subscribe(c, "kpi", "acme");
                ++ready;
                for (std::int64_t want = 1; want <= messages; ++want) {
                    auto u = co_await expect(c, "update");
                    if (u.at("seq").as_int64() != want)
                        BOOST_FAIL("out of order: got " << u.at("seq").as_int64() << " want "
                                                        << want);
                    BOOST_CHECK_EQUAL(u.at("data").at("i").as_int64(), want);
                }
                ++complete;
                co_await c.async_close();
            };
            std::vector<std::future<void>> all;
            for (int i = 0; i < clients; ++i)
                all.push_back(net::co_spawn(ioc, one, net::use_future));
            while (complete < clients)
                co_await sleep_for(20ms);
        },
        60s);
    publisher.join();
    return complete;
}

BOOST_AUTO_TEST_CASE(two_hundred_clients_receive_everything_in_order) {
    server_fixture fx;
    BOOST_TEST(receive_all_in_order(fx, 200, 300, 0ms) == 200);
    auto const c = fx.srv.counters();
    BOOST_TEST(c.at("dropped_messages").to_number<std::uint64_t>() == 0u);
    // the coalescing write path: fewer writes than frames under load
    BOOST_TEST_MESSAGE("frames " << c.at("messages_sent") << " writes " << c.at("writes"));
}

BOOST_AUTO_TEST_CASE(corked_writes_carry_several_frames_in_order) {
    // Publications 5 ms apart: an uncorked shard flushes each one on its own (one write per
    // frame). Corked (the fixed policy, where any load counts here), each subscriber's group
    // is written once per 100 ms with everything queued for it meanwhile, in order.
    auto cfg = default_config();
    cfg.threads = 1;
    cfg.cork_delay = 100ms;
    cfg.cork_mode = rtpush::cork_policy::fixed;
    cfg.cork_threshold = 1;
    server_fixture fx(cfg);
    constexpr int clients = 20;
    constexpr int messages = 200;
    auto const before = fx.srv.counters();
    BOOST_TEST(receive_all_in_order(fx, clients, messages, 5ms) == clients);
    auto const after = fx.srv.counters();
    auto num = [](const boost::json::object& o, const char* k) {
        return o.at(k).to_number<double>();
    };
    double const frames = num(after, "messages_sent") - num(before, "messages_sent");
    double const writes = num(after, "writes") - num(before, "writes");
    BOOST_TEST_MESSAGE("corked: frames " << frames << " writes " << writes);
    BOOST_TEST(frames >= clients * messages);
    BOOST_TEST(writes < 0.5 * frames);
}

BOOST_AUTO_TEST_CASE(slow_consumer_is_disconnected_others_unaffected) {
    auto cfg = default_config();
    cfg.queue_max_bytes = 256 * 1024;
    cfg.queue_max_frames = 64;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection slow(ioc.get_executor()), good(ioc.get_executor());
        co_await connect(slow, fx.url());
        co_await subscribe(slow, "bulk");
        co_await connect(good, fx.url());
        co_await subscribe(good, "bulk");
        // `slow` stops reading; publish far more than its socket buffers and queue hold.
        std::string const payload = "{\"blob\":\"" + std::string(64 * 1024, 'z') + "\",\"i\":";
        int const n = 400; // ~26 MB
        int got = 0;
        for (int i = 1; i <= n; ++i) {
            pub(fx.srv.hub(), "bulk", {}, payload + std::to_string(i) + "}");
            // `good` keeps up
            while (got < i) {
                auto u = co_await expect(good, "update");
                BOOST_REQUIRE_EQUAL(u.at("seq").as_int64(), ++got);
            }
        }
        BOOST_TEST(got == n);
        // now drain `slow`: it must end with close 1008 (slow consumer), never all 400 messages
        int slow_got = 0;
        std::uint16_t code = 0;
        for (;;) {
            try {
                auto ev = co_await slow.async_read_event();
                if (ev.kind == client_connection::event::message)
                    ++slow_got;
                if (ev.kind == client_connection::event::close) {
                    code = ev.code;
                    break;
                }
            } catch (boost::system::system_error const&) {
                break;
            }
        }
        BOOST_TEST(code == 1008);
        BOOST_TEST(slow_got < n);
        BOOST_TEST(fx.srv.counters().at("dropped_messages").to_number<std::uint64_t>() >= 1u);
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(graceful_shutdown)

BOOST_AUTO_TEST_CASE(stop_closes_clients_with_1001) {
    auto fx = std::make_unique<server_fixture>();
    std::atomic<int> connected{0};
    std::thread stopper([&] {
        while (connected < 20)
            std::this_thread::sleep_for(5ms);
        fx->srv.stop();
    });
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        std::atomic<int> closed1001{0};
        auto one = [&]() -> net::awaitable<void> {
            client_connection c(ioc.get_executor());
            co_await connect(c, fx->url());
            co_await subscribe(c, "kpi");
            ++connected;
            for (;;) {
                auto ev = co_await c.async_read_event();
                if (ev.kind == client_connection::event::close) {
                    if (ev.code == 1001)
                        ++closed1001;
                    break;
                }
            }
        };
        std::vector<std::future<void>> all;
        for (int i = 0; i < 20; ++i)
            all.push_back(net::co_spawn(ioc, one, net::use_future));
        while (closed1001 < 20)
            co_await sleep_for(10ms);
        BOOST_TEST(closed1001 == 20);
    });
    stopper.join();
    auto const t0 = std::chrono::steady_clock::now();
    fx->srv.wait();
    BOOST_TEST(static_cast<bool>(std::chrono::steady_clock::now() - t0 < 5s));
    fx.reset();
}

BOOST_AUTO_TEST_SUITE_END()
