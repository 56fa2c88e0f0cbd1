// Loopback tests of history and recovery (docs/protocol.md, "Recovery").
#include "harness.hpp"

#include <string>
#include <vector>

using namespace test;
using rtpush::client_connection;

namespace {

std::uint64_t publish_n(rtpush::hub& h, rtpush::scope sc, int n) {
    std::uint64_t seq = 0;
    for (int i = 0; i < n; ++i) {
        rtpush::publication p;
        p.topic = {"kpi", sc};
        p.data = i;
        seq = h.publish(std::move(p)).seq;
    }
    return seq;
}

// Built outside coroutines (GCC 12 and initializer lists in coroutines).
std::string recover_subscribe(std::string_view epoch, std::uint64_t offset) {
    boost::json::object r;
    r["epoch"] = epoch;
    r["offset"] = offset;
    boost::json::object scope;
    scope["org"] = "acme";
    boost::json::object m;
    m["type"] = "subscribe";
    m["channel"] = "kpi";
    m["scope"] = std::move(scope);
    m["recover"] = std::move(r);
    return boost::json::serialize(m);
}

std::uint64_t seq_of(const boost::json::object& o) {
    return o.at("seq").to_number<std::uint64_t>();
}

} // namespace

BOOST_AUTO_TEST_SUITE(recovery)

BOOST_AUTO_TEST_CASE(reconnect_replays_missed_updates) {
    server_fixture fx;
    auto& h = fx.srv.hub();
    std::string epoch;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "kpi", "acme");
        publish_n(h, {"acme", "", ""}, 5);
        for (std::uint64_t i = 1; i <= 5; ++i) {
            auto u = co_await expect(c, "update");
            BOOST_TEST(seq_of(u) == i);
            epoch = std::string(u.at("epoch").as_string());
        }
        co_await c.async_close();
    });
    // missed while away: 6..10 on the org, 1..3 on a department it covers
    publish_n(h, {"acme", "", ""}, 5);
    publish_n(h, {"acme", "support", ""}, 3);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send(recover_subscribe(epoch, 5));
        auto ack = co_await expect(c, "subscribed");
        BOOST_TEST(ack.at("recovered").as_bool() == true);
        BOOST_TEST(ack.at("epoch").as_string() == epoch);
        std::vector<std::uint64_t> org, dept;
        for (int i = 0; i < 8; ++i) {
            auto u = co_await next(c);
            BOOST_TEST(u.at("type").as_string() == "update");
            BOOST_TEST(u.at("offset") == u.at("seq"));
            (u.at("topic").as_string() == "kpi:org:acme" ? org : dept).push_back(seq_of(u));
        }
        BOOST_TEST(org == (std::vector<std::uint64_t>{6, 7, 8, 9, 10}),
                   boost::test_tools::per_element());
        BOOST_TEST(dept == (std::vector<std::uint64_t>{1, 2, 3}), boost::test_tools::per_element());
        // and live from there, nothing repeated
        publish_n(h, {"acme", "", ""}, 1);
        auto live = co_await next(c);
        BOOST_TEST(live.at("type").as_string() == "update");
        BOOST_TEST(seq_of(live) == 11u);
    });
}

BOOST_AUTO_TEST_CASE(history_exceeded_gives_fresh_initial) {
    auto cfg = default_config();
    cfg.history.history_size = 3;
    server_fixture fx(cfg);
    auto& h = fx.srv.hub();
    publish_n(h, {"acme", "", ""}, 10);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send(recover_subscribe(h.epoch(), 5)); // 6 has left the history
        auto ack = co_await expect(c, "subscribed");
        BOOST_TEST(ack.at("recovered").as_bool() == false);
        BOOST_TEST(ack.at("reason").as_string() == "history_lost");
        auto i = co_await next(c);
        BOOST_TEST(i.at("type").as_string() == "initial");
        BOOST_TEST(seq_of(i) == 10u);
        // within history: recovered
        co_await c.async_send(recover_subscribe(h.epoch(), 8));
        auto ack2 = co_await expect(c, "subscribed");
        BOOST_TEST(ack2.at("recovered").as_bool() == true);
    });
}

BOOST_AUTO_TEST_CASE(other_epoch_gives_fresh_initial) {
    server_fixture fx;
    publish_n(fx.srv.hub(), {"acme", "", ""}, 2);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await c.async_send(recover_subscribe("0123456789abcdef", 1));
        auto ack = co_await expect(c, "subscribed");
        BOOST_TEST(ack.at("recovered").as_bool() == false);
        BOOST_TEST(ack.at("reason").as_string() == "epoch_mismatch");
        auto i = co_await next(c);
        BOOST_TEST(i.at("type").as_string() == "initial");
        BOOST_TEST(seq_of(i) == 2u);
    });
}

BOOST_AUTO_TEST_SUITE_END()
