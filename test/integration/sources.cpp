// Data sources end to end: a refresher on a real server, clients refreshing and subscribing.
#include "harness.hpp"

#include "../../tools/rtd/http_poller.hpp"

#include <rtpush/refresher.hpp>

#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

using namespace test;
using rtpush::client_connection;

namespace {

// Counts fetches; each fetch returns {"n": fetch number} as KPIs and a bigger complete part.
struct counting_upstream {
    std::atomic<int> calls{0};
    std::chrono::milliseconds delay{0};

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
        if (delay.count() > 0) {
            net::steady_timer t(co_await net::this_coro::executor);
            t.expires_after(delay);
            co_await t.async_wait(net::use_awaitable);
        }
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

// A tiny HTTP upstream on its own thread: answers every GET with the configured status and
// body (after an optional delay) and remembers the last request's headers.
class fake_http {
public:
    fake_http()
        : acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
        auto loop = [this]() -> net::awaitable<void> {
            co_await accept_loop();
        };
        net::co_spawn(ioc_, loop, [](std::exception_ptr) {});
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~fake_http() {
        ioc_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
    void set(unsigned status, std::string body, std::chrono::milliseconds delay = 0ms) {
        std::lock_guard lock(mutex_);
        status_ = status;
        body_ = std::move(body);
        delay_ = delay;
    }
    std::string last_header(const std::string& name) {
        std::lock_guard lock(mutex_);
        return std::string(last_[name]);
    }
    std::string last_target() {
        std::lock_guard lock(mutex_);
        return std::string(last_.target());
    }

private:
    net::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, s] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
            if (ec)
                co_return;
            net::co_spawn(ioc_, serve(std::move(s)), [](std::exception_ptr) {});
        }
    }
    net::awaitable<void> serve(net::ip::tcp::socket s) {
        boost::beast::flat_buffer b;
        http::request<http::string_body> req;
        auto [ec, n] = co_await http::async_read(s, b, req, net::as_tuple(net::use_awaitable));
        if (ec)
            co_return;
        unsigned status;
        std::string body;
        std::chrono::milliseconds delay;
        {
            std::lock_guard lock(mutex_);
            last_ = req;
            status = status_;
            body = body_;
            delay = delay_;
        }
        if (delay.count() > 0) {
            net::steady_timer t(ioc_);
            t.expires_after(delay);
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        http::response<http::string_body> res{static_cast<http::status>(status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = body;
        res.keep_alive(false);
        res.prepare_payload();
        co_await http::async_write(s, res, net::as_tuple(net::use_awaitable));
        boost::system::error_code ignored;
        s.shutdown(net::ip::tcp::socket::shutdown_both, ignored);
    }

    net::io_context ioc_;
    net::ip::tcp::acceptor acceptor_;
    std::thread thread_;
    std::mutex mutex_;
    unsigned status_ = 200;
    std::string body_ = "{}";
    std::chrono::milliseconds delay_{0};
    http::request<http::string_body> last_;
};

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

BOOST_AUTO_TEST_CASE(channel_refresh_tells_narrower_subscribers) {
    server_fixture fx;
    counting_upstream u;
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.refresh_interval = 1h;
    o.on_demand = true;
    o.linger = 1h;
    r.add(dash_source(u), o); // publishes on dash:org:acme
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection c(ioc.get_executor());
        co_await connect(c, fx.url());
        co_await subscribe(c, "dash", "acme");
        auto k1 = co_await next(c); // the first subscriber started the source
        BOOST_TEST(k1.at("phase").as_string() == "kpis");
        co_await next(c);
        // an admin refreshes the whole channel
        auto const res = http_call(fx.srv.port(), http::verb::post, "/api/refresh/dash");
        BOOST_TEST(res.status == 202u);
        auto rf = co_await next(c);
        BOOST_TEST(rf.at("type").as_string() == "refreshing");
        BOOST_TEST(rf.at("topic").as_string() == "dash:org:acme");
        auto k2 = co_await next(c);
        BOOST_TEST(k2.at("phase").as_string() == "kpis");
        BOOST_TEST(k2.at("data").at("n").as_int64() == 2);
    });
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
            BOOST_TEST(fx.srv.hub().demand("dash") == 2u);
            co_await c.async_send(R"({"type":"unsubscribe","channel":"dash","id":1})");
            co_await expect(c, "unsubscribed");
            BOOST_TEST(fx.srv.hub().demand("dash") == 1u);
            co_await c.async_close();
        }
        net::steady_timer t(ioc);
        for (int i = 0; i < 200 && fx.srv.hub().demand("dash") != 0; ++i) {
            t.expires_after(5ms);
            co_await t.async_wait(net::use_awaitable);
        }
        BOOST_TEST(fx.srv.hub().demand("dash") == 0u);
    });
    BOOST_TEST(u.calls >= 1);
}

BOOST_AUTO_TEST_CASE(kpis_overtake_queued_complete_payloads) {
    auto cfg = default_config();
    cfg.write_batch_bytes = 16 << 10; // small batches: most of the backlog stays queued
    cfg.write_batch_frames = 4;
    cfg.queue_max_bytes = 256 << 20;
    server_fixture fx(cfg);
    int const bulk = 24;
    std::string const blob(1 << 20, 'x');
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        // Three subscribers (one of them at the channel scope) read nothing while 24 MiB of
        // `complete` and then one `kpis` are published.
        std::vector<std::unique_ptr<client_connection>> clients;
        for (int n = 0; n < 3; ++n) {
            clients.push_back(std::make_unique<client_connection>(ioc.get_executor()));
            co_await connect(*clients.back(), fx.url());
            co_await subscribe(*clients.back(), "dash", n == 2 ? "" : "acme");
        }
        for (int i = 0; i < bulk; ++i) {
            rtpush::publication p;
            p.topic = {"dash", {"acme", "", ""}};
            p.phase = "complete";
            p.priority = rtpush::priority::medium;
            boost::json::object d;
            d["i"] = i;
            d["blob"] = blob;
            p.data = std::move(d);
            fx.srv.hub().publish(std::move(p));
        }
        rtpush::publication k;
        k.topic = {"dash", {"acme", "", ""}};
        k.phase = "kpis";
        k.priority = rtpush::priority::high;
        k.data = boost::json::parse(R"({"n":1})");
        fx.srv.hub().publish(std::move(k));
        for (auto& c : clients) {
            int seen_complete = 0, kpis_at = -1;
            while (seen_complete < bulk) {
                auto m = co_await next(*c);
                if (m.at("phase").as_string() == "kpis")
                    kpis_at = seen_complete;
                else
                    BOOST_TEST(m.at("data").at("i").as_int64() == seen_complete++); // FIFO
            }
            if (kpis_at < 0) {
                auto m = co_await next(*c);
                BOOST_TEST(m.at("phase").as_string() == "kpis");
            }
            BOOST_TEST_MESSAGE("kpis arrived after " << kpis_at << " of " << bulk << " complete");
            BOOST_TEST(kpis_at >= 0);
            BOOST_TEST(kpis_at < bulk - 1);
        }
    });
}

BOOST_AUTO_TEST_CASE(fifty_client_refreshes_share_one_fetch) {
    auto cfg = default_config();
    cfg.max_connections = 1000;
    server_fixture fx(cfg);
    counting_upstream u;
    u.delay = 200ms; // long enough for every refresh to arrive while the fetch runs
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.refresh_interval = 1h;
    o.on_demand = true;
    o.linger = 1h;
    r.add(dash_source(u), o);
    int const n = 50;
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        std::vector<std::unique_ptr<client_connection>> clients;
        for (int i = 0; i < n; ++i) {
            clients.push_back(std::make_unique<client_connection>(ioc.get_executor()));
            co_await connect(*clients.back(), fx.url());
            co_await subscribe(*clients.back(), "dash", "acme");
        }
        // the first subscription started the source: everyone sees fetch 1
        for (auto& c : clients) {
            for (;;) {
                auto m = co_await next(*c);
                if (m.at("type").as_string() != "refreshing" &&
                    m.at("phase").as_string() == "complete")
                    break;
            }
        }
        for (auto& c : clients)
            co_await c->async_send(R"({"type":"refresh","channel":"dash","scope":{"org":"acme"}})");
        for (auto& c : clients) {
            int refreshing = 0;
            for (;;) {
                auto m = co_await next(*c);
                if (m.at("type").as_string() == "refreshing") {
                    ++refreshing;
                    continue;
                }
                BOOST_TEST(m.at("type").as_string() == "update");
                BOOST_TEST(m.at("phase").as_string() == "kpis");
                BOOST_TEST(m.at("data").at("n").as_int64() == 2);
                break;
            }
            BOOST_TEST(refreshing >= 1);
        }
    });
    BOOST_TEST(u.calls == 2);
    BOOST_TEST(r.stats().at(0).at("shared").as_uint64() >= 40u);
}

BOOST_AUTO_TEST_CASE(rest_fallback_serves_retained_values) {
    server_fixture fx;
    counting_upstream u;
    rtpush::refresher r(fx.srv);
    rtpush::refresh_options o;
    o.refresh_interval = 1h;
    r.add(dash_source(u), o); // runs always: fetches once at start
    for (int i = 0; i < 400 && fx.srv.hub().snapshot({"dash", {"acme", "", ""}}).size() < 2; ++i)
        std::this_thread::sleep_for(5ms);
    auto const k = http_call(fx.srv.port(), http::verb::get, "/api/kpis?channel=dash&org=acme");
    BOOST_TEST(k.status == 200u);
    BOOST_TEST(k.body.at("success").as_bool());
    BOOST_TEST(k.body.at("count").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(k.body.at("data").at("n").as_int64() == 1);
    BOOST_TEST(k.body.at("items").at(0).at("phase").as_string() == "kpis");
    auto const d = http_call(fx.srv.port(), http::verb::get, "/api/dashboard?channel=dash");
    BOOST_TEST(d.status == 200u);
    BOOST_TEST(d.body.at("topic").as_string() == "dash");
    BOOST_TEST(d.body.at("data").at("rows").as_array().size() == 100u);
    auto const none = http_call(fx.srv.port(), http::verb::get, "/api/kpis?channel=dash&org=x");
    BOOST_TEST(none.status == 404u);
    BOOST_TEST(none.body.at("error").at("code").as_string() == "NOT_FOUND");
    auto const bad = http_call(fx.srv.port(), http::verb::get, "/api/kpis?channel=dash&dept=d");
    BOOST_TEST(bad.status == 400u);
    auto const post = http_call(fx.srv.port(), http::verb::post, "/api/kpis", "{}");
    BOOST_TEST(post.status == 405u);
    BOOST_TEST(u.calls == 1);
}

BOOST_AUTO_TEST_CASE(http_poller_kpis_headers_failures_and_recovery) {
    fake_http up;
    up.set(200, R"({"summary":{"total":5,"ok":4},"items":[1,2,3]})");
    ::setenv("RTD_TEST_TOKEN", "s3cret", 1);
    server_fixture fx;
    rtd::poller_config p;
    p.name = "gh";
    p.url = "http://127.0.0.1:" + std::to_string(up.port()) + "/metrics?x=1";
    p.topic = {"copilot", {"acme", "", ""}};
    p.headers = {{"X-Api-Key", "k1"}};
    p.bearer_token_env = "RTD_TEST_TOKEN";
    p.kpis = {{"total", "/summary/total"}, {"ok", "/summary/ok"}};
    p.timeout = 300ms;
    p.refresh.refresh_interval = 40ms;
    p.refresh.retry_initial = 20ms;
    p.refresh.retry_max = 40ms;
    rtpush::refresher r(fx.srv);
    r.add(rtd::make_http_source(p), p.refresh);
    rtpush::topic const t{"copilot", {"acme", "", ""}};
    auto kpi = [&](std::string_view field) -> std::int64_t {
        auto const items = fx.srv.hub().snapshot(t);
        if (items.empty())
            return -1;
        return items.at(0).at("data").at(field).as_int64();
    };
    auto stat = [&](std::string_view key) {
        return r.stats().at(0).at(key);
    };
    auto wait_for = [&](auto pred) {
        for (int i = 0; i < 1000 && !pred(); ++i)
            std::this_thread::sleep_for(5ms);
        return pred();
    };
    BOOST_TEST_REQUIRE(wait_for([&] { return kpi("total") == 5; }));
    BOOST_TEST(kpi("ok") == 4);
    BOOST_TEST(fx.srv.hub().snapshot(t).at(1).at("data").at("items").as_array().size() == 3u);
    BOOST_TEST(up.last_header("Authorization") == "Bearer s3cret");
    BOOST_TEST(up.last_header("X-Api-Key") == "k1");
    BOOST_TEST(up.last_target() == "/metrics?x=1");

    up.set(200, "<html>not json</html>");
    BOOST_TEST_REQUIRE(wait_for([&] { return stat("errors").as_uint64() >= 1; }));
    BOOST_TEST(std::string(stat("last_error").as_string()).find("not JSON") != std::string::npos);
    BOOST_TEST(kpi("total") == 5); // the last good value stays

    up.set(503, "{}");
    BOOST_TEST_REQUIRE(wait_for([&] { return stat("last_error").as_string() == "HTTP 503"; }));

    up.set(200, "{}", 2000ms); // slower than the 300 ms timeout
    BOOST_TEST_REQUIRE(wait_for([&] {
        return std::string(stat("last_error").as_string()).find("timeout") != std::string::npos;
    }));
    BOOST_TEST(kpi("total") == 5);

    up.set(200, R"({"summary":{"total":7,"ok":4}})");
    BOOST_TEST_REQUIRE(wait_for([&] { return kpi("total") == 7; }));
    auto const items = fx.srv.hub().snapshot(t);
    BOOST_TEST(items.at(0).at("data").at("changes").at("total_change").as_int64() == 2);
    BOOST_TEST(items.at(0).at("data").at("changes").at("ok_change").as_int64() == 0);
    BOOST_TEST(wait_for([&] { return stat("consecutive_errors").as_uint64() == 0; }));
    BOOST_TEST(stat("errors").as_uint64() >= 3u);
}

BOOST_AUTO_TEST_CASE(http_poller_connection_refused) {
    std::uint16_t closed_port;
    {
        net::io_context ioc;
        net::ip::tcp::acceptor a(ioc, {net::ip::make_address("127.0.0.1"), 0});
        closed_port = a.local_endpoint().port();
    }
    rtd::poller_config p;
    p.name = "down";
    p.url = "http://127.0.0.1:" + std::to_string(closed_port) + "/";
    p.topic = {"down", {}};
    auto const o = run([&](net::io_context&) -> net::awaitable<std::string> {
        try {
            co_await rtd::http_poll(p);
        } catch (std::exception const& e) {
            co_return std::string(e.what());
        }
        co_return std::string();
    });
    BOOST_TEST(o.find("cannot connect") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
