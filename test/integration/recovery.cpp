// Loopback tests of history and recovery (docs/protocol.md, "Recovery").
#include "harness.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
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

rtpush::client_config client_config(std::vector<std::string> urls) {
    rtpush::client_config c;
    c.urls = std::move(urls);
    c.subscriptions.push_back({"kpi", {"acme", "", ""}});
    c.backoff.initial = std::chrono::milliseconds(20);
    c.backoff.max = std::chrono::milliseconds(200);
    return c;
}

std::string type_of(const rtpush::client_event& e) {
    if (e.kind != rtpush::client_event::message || !e.json.is_object())
        return {};
    return std::string(e.json.at("type").as_string());
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    net::steady_timer t(co_await net::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(net::use_awaitable);
}

// Next state event, skipping messages.
net::awaitable<rtpush::client_event> next_state(rtpush::client& c) {
    for (;;) {
        auto e = co_await c.async_receive();
        if (e.kind == rtpush::client_event::state_change)
            co_return e;
    }
}

// Next initial/update.
net::awaitable<rtpush::client_event> next_publication(rtpush::client& c) {
    for (;;) {
        auto e = co_await c.async_receive();
        auto const t = type_of(e);
        if (t == "initial" || t == "update")
            co_return e;
    }
}

// Spawns async_run with a completion that records its end.
void start(net::io_context& ioc, rtpush::client& c, bool& ended, net::cancellation_slot slot = {}) {
    auto done = [&ended](std::exception_ptr e) {
        ended = true;
        BOOST_TEST(!e);
    };
    net::co_spawn(ioc, c.async_run(), net::bind_cancellation_slot(slot, done));
}

net::awaitable<void> finish(net::io_context&, rtpush::client& c, bool& ended) {
    c.stop();
    for (;;) {
        try {
            co_await c.async_receive();
        } catch (boost::system::system_error const&) {
            break;
        }
    }
    BOOST_TEST(ended);
}

// Stops the client and counts the messages still queued that carry `ack_id`.
net::awaitable<int> finish_counting(rtpush::client& c, bool& ended, const std::string& ack_id) {
    c.stop();
    int n = 0;
    for (;;) {
        try {
            auto e = co_await c.async_receive();
            if (e.kind == rtpush::client_event::message && e.json.is_object())
                if (auto const* a = e.json.as_object().if_contains("ackId");
                    a && a->is_string() && a->get_string() == ack_id)
                    ++n;
        } catch (boost::system::system_error const&) {
            break;
        }
    }
    BOOST_TEST(ended);
    co_return n;
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

BOOST_AUTO_TEST_SUITE(client)

// The connection is killed six times while the server keeps publishing: the application sees
// every seq exactly once, in order.
BOOST_AUTO_TEST_CASE(dropped_connections_lose_and_repeat_nothing) {
    auto cfg = default_config();
    cfg.history.history_size = 20000;
    cfg.history.max_replay = 20000;
    // On a loaded machine the publisher can run thousands ahead of the client: let a replay
    // of all of it fit in half the session queue, so every recovery can succeed.
    cfg.queue_max_frames = 40000;
    cfg.queue_max_bytes = 64 << 20;
    server_fixture fx(cfg);
    constexpr std::uint64_t total = 10000;
    std::thread publisher;
    std::uint64_t duplicates = 0;
    int drops = 0, recovered = 0;
    run(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            rtpush::client c(ioc.get_executor(), client_config({fx.url()}));
            bool ended = false;
            start(ioc, c, ended);
            std::uint64_t expected = 1;
            while (expected <= total) {
                auto e = co_await c.async_receive();
                if (e.kind == rtpush::client_event::state_change) {
                    if (e.state == rtpush::client_state::subscribed && !publisher.joinable())
                        publisher = std::thread([&] {
                            for (std::uint64_t i = 0; i < total; ++i) {
                                publish_n(fx.srv.hub(), {"acme", "", ""}, 1);
                                if (i % 20 == 0)
                                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                            }
                        });
                    else if (e.state == rtpush::client_state::subscribed && e.recovered)
                        recovered += *e.recovered ? 1 : 0;
                    continue;
                }
                auto const t = type_of(e);
                if (t != "update" && t != "initial")
                    continue;
                auto const seq = seq_of(e.json.as_object());
                if (seq != expected) {
                    BOOST_ERROR("expected seq " << expected << ", got " << seq << " (" << t << ")");
                    break;
                }
                ++expected;
                if (expected % 1500 == 0) {
                    c.drop_connection();
                    ++drops;
                }
            }
            duplicates = c.duplicates();
            co_await finish(ioc, c, ended);
        },
        60s);
    publisher.join();
    BOOST_TEST(drops == 6);
    BOOST_TEST(recovered == drops);
    BOOST_TEST_MESSAGE("duplicates dropped by the client: " << duplicates);
}

// What the client missed has left the history: it is told, and gets the current value.
BOOST_AUTO_TEST_CASE(history_exceeded_gives_fresh_snapshot) {
    auto cfg = default_config();
    cfg.history.history_size = 5;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        rtpush::client c(ioc.get_executor(), client_config({fx.url()}));
        bool ended = false;
        start(ioc, c, ended);
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state == rtpush::client_state::subscribed)
                break;
        }
        publish_n(fx.srv.hub(), {"acme", "", ""}, 1);
        auto first = co_await next_publication(c);
        BOOST_TEST(seq_of(first.json.as_object()) == 1u);
        // This thread runs the client: nothing reconnects before these 20 are published.
        c.drop_connection();
        publish_n(fx.srv.hub(), {"acme", "", ""}, 20);
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state != rtpush::client_state::subscribed)
                continue;
            BOOST_TEST(e.recovered.has_value());
            BOOST_TEST(!*e.recovered);
            BOOST_TEST(e.reason == "history_lost");
            break;
        }
        auto e = co_await next_publication(c);
        BOOST_TEST(e.json.at("type").as_string() == "initial");
        BOOST_TEST(seq_of(e.json.as_object()) == 21u);
        publish_n(fx.srv.hub(), {"acme", "", ""}, 1);
        e = co_await next_publication(c);
        BOOST_TEST(e.json.at("type").as_string() == "update");
        BOOST_TEST(seq_of(e.json.as_object()) == 22u);
        co_await finish(ioc, c, ended);
    });
}

// A restarted server has a new epoch: recovered:false and the fresh state of the new one.
BOOST_AUTO_TEST_CASE(server_restart_gives_fresh_snapshot) {
    std::optional<rtpush::server> srv;
    srv.emplace(default_config());
    srv->start();
    auto const port = srv->port();
    std::string const url = "ws://127.0.0.1:" + std::to_string(port) + "/ws";
    std::string const old_epoch = srv->hub().epoch();
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        rtpush::client c(ioc.get_executor(), client_config({url}));
        bool ended = false;
        start(ioc, c, ended);
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state == rtpush::client_state::subscribed)
                break;
        }
        publish_n(srv->hub(), {"acme", "", ""}, 3);
        for (std::uint64_t i = 1; i <= 3; ++i) {
            auto e = co_await next_publication(c);
            BOOST_TEST(seq_of(e.json.as_object()) == i);
        }
        std::atomic<bool> stopped{false};
        std::thread stopper([&] {
            srv->stop();
            srv->wait();
            stopped = true;
        });
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state == rtpush::client_state::reconnecting)
                break;
        }
        while (!stopped)
            co_await sleep_for(std::chrono::milliseconds(10));
        stopper.join();
        auto cfg = default_config();
        cfg.port = port;
        srv.emplace(cfg);
        srv->start();
        BOOST_TEST(srv->hub().epoch() != old_epoch);
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state != rtpush::client_state::subscribed)
                continue;
            BOOST_TEST(e.recovered.has_value());
            BOOST_TEST(!*e.recovered);
            BOOST_TEST(e.reason == "epoch_mismatch");
            break;
        }
        publish_n(srv->hub(), {"acme", "", ""}, 1);
        auto e = co_await next_publication(c);
        BOOST_TEST(seq_of(e.json.as_object()) == 1u); // not a duplicate of the old seq 1
        BOOST_TEST(e.json.at("epoch").as_string() == srv->hub().epoch());
        co_await finish(ioc, c, ended);
    });
    srv->stop();
    srv->wait();
}

// The first URL refuses; the client moves on to the second. Cancellation ends async_run.
BOOST_AUTO_TEST_CASE(failover_to_second_url_and_cancellation) {
    server_fixture fx;
    std::uint16_t dead_port = 0;
    {
        net::io_context tmp;
        net::ip::tcp::acceptor a(tmp, {net::ip::make_address("127.0.0.1"), 0});
        dead_port = a.local_endpoint().port();
    }
    std::string const dead = "ws://127.0.0.1:" + std::to_string(dead_port) + "/ws";
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        rtpush::client c(ioc.get_executor(), client_config({dead, fx.url()}));
        net::cancellation_signal cancel;
        bool ended = false;
        start(ioc, c, ended, cancel.slot());
        auto e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::connecting));
        BOOST_TEST(e.url == dead);
        e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::reconnecting));
        BOOST_TEST(e.attempt == 1u);
        BOOST_TEST(e.delay <= std::chrono::milliseconds(20));
        BOOST_TEST(e.url == fx.url());
        e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::connecting));
        BOOST_TEST(e.url == fx.url());
        e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::connected));
        e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::subscribed));
        BOOST_TEST(e.topic == "kpi:org:acme");
        BOOST_TEST(!e.recovered.has_value()); // nothing to recover on a first subscribe
        cancel.emit(net::cancellation_type::terminal);
        e = co_await next_state(c);
        BOOST_TEST((e.state == rtpush::client_state::stopped));
        BOOST_TEST(ended);
    });
}

// A server that says hello and then goes silent (TCP still up) is taken for dead.
BOOST_AUTO_TEST_CASE(silent_server_detected_by_missed_heartbeats) {
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        net::ip::tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
        std::string const url = "ws://127.0.0.1:" + std::to_string(a.local_endpoint().port());
        auto cfg = client_config({url});
        rtpush::client c(ioc.get_executor(), cfg);
        bool ended = false;
        start(ioc, c, ended);
        net::ip::tcp::socket s = co_await a.async_accept(net::use_awaitable);
        std::string req;
        co_await net::async_read_until(s, net::dynamic_buffer(req), "\r\n\r\n", net::use_awaitable);
        auto const k = req.find("Sec-WebSocket-Key: ");
        std::string const key = req.substr(k + 19, req.find("\r\n", k) - k - 19);
        std::string res = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                          rtpush::detail::websocket_accept_key(key) + "\r\n\r\n";
        rtpush::detail::append_frame(res, rtpush::detail::opcode::text,
                                     R"({"type":"connected","heartbeatInterval":100})");
        co_await net::async_write(s, net::buffer(res), net::use_awaitable);
        auto const t0 = std::chrono::steady_clock::now();
        for (;;) {
            auto e = co_await next_state(c);
            if (e.state != rtpush::client_state::reconnecting)
                continue;
            BOOST_TEST(e.reason.find("timed out") != std::string::npos, e.reason);
            break;
        }
        auto const waited = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(waited >= std::chrono::milliseconds(200)); // 2.5 x 100 ms
        BOOST_TEST(waited < std::chrono::milliseconds(2000));
        co_await finish(ioc, c, ended);
    });
}

// Acknowledged delivery through rtpush::client: a client that goes away without acking gets
// the message when it comes back under the same client_id, hands it on once, acks it, and the
// server's report counts the ack.
BOOST_AUTO_TEST_CASE(unacked_message_follows_the_client_across_reconnects) {
    auto cfg = default_config();
    cfg.acks.resend_after = 200ms;
    server_fixture fx(cfg);
    std::string ack_id;
    int first_life = 0, second_life = 0;
    std::uint64_t acks_sent = 0;
    run(
        [&](net::io_context& ioc) -> net::awaitable<void> {
            {
                auto cc = client_config({fx.url()});
                cc.client_id = "dash-7";
                cc.auto_ack = false; // receives, never acks, then leaves
                rtpush::client c(ioc.get_executor(), cc);
                bool ended = false;
                start(ioc, c, ended);
                while ((co_await next_state(c)).state != rtpush::client_state::subscribed) {
                }
                auto const r = http_call(fx.srv.port(), http::verb::post, "/api/broadcast",
                                         R"({"channel":"kpi","target":{"organization_id":"acme"},)"
                                         R"("data":{"alert":1},"requires_ack":true})");
                BOOST_TEST(r.status == 200u);
                ack_id = std::string(r.body.at("id").as_string());
                auto e = co_await next_publication(c);
                BOOST_TEST(e.json.at("ackId").as_string() == ack_id);
                co_await sleep_for(500ms); // re-sent at 200 ms: handed on once all the same
                first_life = 1 + co_await finish_counting(c, ended, ack_id);
            }
            auto const away = http_call(fx.srv.port(), http::verb::get, "/api/broadcast/" + ack_id);
            BOOST_TEST(away.body.at("not_acked").as_array().size() == 1u);
            BOOST_TEST(away.body.at("not_acked").as_array()[0].as_string() == "client:dash-7");
            {
                auto cc = client_config({fx.url()});
                cc.client_id = "dash-7";
                rtpush::client c(ioc.get_executor(), cc);
                bool ended = false;
                start(ioc, c, ended);
                auto e = co_await next_publication(c);
                BOOST_TEST(e.json.at("ackId").as_string() == ack_id);
                BOOST_TEST(e.json.at("redelivered").as_bool());
                co_await sleep_for(700ms); // past two re-send times, had the ack not counted
                acks_sent = c.acks_sent();
                second_life = 1 + co_await finish_counting(c, ended, ack_id);
            }
        },
        30s);
    BOOST_TEST(first_life == 1);
    BOOST_TEST(second_life == 1);
    BOOST_TEST(acks_sent >= 1u);
    auto const rep = http_call(fx.srv.port(), http::verb::get, "/api/broadcast/" + ack_id);
    BOOST_TEST(rep.status == 200u);
    BOOST_TEST(rep.body.at("targeted").as_int64() == 1);
    BOOST_TEST(rep.body.at("acked").as_int64() == 1);
    BOOST_TEST(rep.body.at("not_acked").as_array().empty());
}

BOOST_AUTO_TEST_SUITE_END()
