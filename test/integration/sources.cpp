// Data sources end to end: a refresher on a real server, clients refreshing and subscribing.
#include "harness.hpp"

#include <rtpush/refresher.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>

using namespace test;
using rtpush::client_connection;

namespace {

// Counts fetches; each fetch returns {"n": fetch number} as KPIs and a bigger complete part.
struct counting_upstream {
    std::atomic<int> calls{0};

    static rtpush::snapshot make(int n) {
        boost::json::object k;
        k["n"] = n;
        boost::json::object c;
        c["n"] = n;
        c["rows"] = boost::json::array(100, n);
        return {k, c};
    }
    net::awaitable<rtpush::snapshot> fetch() {
        int const n = ++calls;
        co_return make(n);
    }
};

rtpush::source dash_source(counting_upstream& u) {
    rtpush::source s;
    s.name = "dash";
    s.topic = {"dash", {"acme", "", ""}};
    s.fetch = [&u] {
        return u.fetch();
    };
    return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(sources)

BOOST_AUTO_TEST_CASE(subscribe_starts_source_refresh_sends_kpis_then_complete) {
    auto cfg = default_config();
    cfg.refresh_min_interval = 10s;
    server_fixture fx(cfg);
    counting_upstream u;
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.refresh_interval = 1h;
    o.on_demand = true;
    o.linger = 0ms;
    r.add(dash_source(u), o);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "dash", "acme");
        // the first subscriber starts the demand-driven source: KPIs first
        auto k1 = co_await next(c);
        BOOST_TEST(k1.at("type").as_string() == "update");
        BOOST_TEST(k1.at("phase").as_string() == "kpis");
        BOOST_TEST(k1.at("priority").as_string() == "high");
        BOOST_TEST(k1.at("data").at("n").as_int64() == 1);
        auto c1 = co_await next(c);
        BOOST_TEST(c1.at("phase").as_string() == "complete");
        co_await c.async_send(R"({"type":"refresh","channel":"dash","scope":{"org":"acme"}})");
        auto rf = co_await next(c);
        BOOST_TEST(rf.at("type").as_string() == "refreshing");
        auto k2 = co_await next(c);
        BOOST_TEST(k2.at("phase").as_string() == "kpis");
        BOOST_TEST(k2.at("data").at("n").as_int64() == 2);
        BOOST_TEST(k2.at("data").at("changes").at("n_change").as_int64() == 1);
        auto c2 = co_await next(c);
        BOOST_TEST(c2.at("phase").as_string() == "complete");
        BOOST_TEST(c2.at("data").at("rows").as_array().size() == 100u);
        co_await c.async_send(R"({"type":"refresh","id":9})");
        auto rl = co_await next(c);
        BOOST_TEST(rl.at("type").as_string() == "rate_limit");
        // a second client gets the cached values on subscribe, without a fetch
        client_connection d(ioc.get_executor());
        co_await connect(d, fx.url());
        co_await subscribe(d, "dash");
        auto i1 = co_await next(d);
        BOOST_TEST(i1.at("type").as_string() == "initial");
        BOOST_TEST(i1.at("phase").as_string() == "kpis");
        auto i2 = co_await next(d);
        BOOST_TEST(i2.at("phase").as_string() == "complete");
    });
    BOOST_TEST(u.calls == 2);
    auto const st = http_call(fx.srv.port(), http::verb::get, "/api/stats");
    auto const& src = st.body.at("stats").at("sources").at(0);
    BOOST_TEST(src.at("name").as_string() == "dash");
    BOOST_TEST(src.at("fetches").to_number<std::uint64_t>() == 2u);
    BOOST_TEST(src.at("errors").to_number<std::uint64_t>() == 0u);
}

BOOST_AUTO_TEST_CASE(refresh_without_source_is_room_not_found) {
    server_fixture fx;
    counting_upstream u;
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.on_demand = true;
    r.add(dash_source(u), o);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        // not subscribed, so no `refreshing` either: straight to the error
        co_await c.async_send(R"({"type":"refresh","channel":"nosource","id":1})");
        auto e = co_await next(c);
        BOOST_TEST(e.at("type").as_string() == "error");
        BOOST_TEST(e.at("code").as_string() == "ROOM_NOT_FOUND");
    });
}

BOOST_AUTO_TEST_CASE(demand_follows_sessions_and_disconnects) {
    server_fixture fx;
    counting_upstream u;
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.refresh_interval = 1h;
    o.on_demand = true;
    o.linger = 0ms;
    r.add(dash_source(u), o);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        {
            client_connection c(ioc.get_executor());
            co_await connect(c, fx.url());
            co_await subscribe(c, "dash", "acme", "support");
            co_await subscribe(c, "dash");
            BOOST_TEST(fx.srv.hub().subscribers("dash") == 2u);
            co_await c.async_send(R"({"type":"unsubscribe","channel":"dash","id":1})");
            co_await expect(c, "unsubscribed");
            BOOST_TEST(fx.srv.hub().subscribers("dash") == 1u);
            co_await c.async_close();
        }
        net::steady_timer t(ioc);
        for (int i = 0; i < 200 && fx.srv.hub().subscribers("dash") != 0; ++i) {
            t.expires_after(5ms);
            co_await t.async_wait(net::use_awaitable);
        }
        BOOST_TEST(fx.srv.hub().subscribers("dash") == 0u);
    });
    BOOST_TEST(u.calls >= 1);
}

BOOST_AUTO_TEST_SUITE_END()
