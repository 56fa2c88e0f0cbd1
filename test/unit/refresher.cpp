// The refresher on an io_context with a hub and no sockets: single-flight, cache, change
// detection, failure and recovery, schedule and demand.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include <rtpush/refresher.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <stdexcept>

namespace net = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

net::awaitable<void> run_fn(std::function<net::awaitable<void>()> f) {
    co_await f();
}

// Starts tasks on `ioc`, failing the test on an unexpected exception.
rtpush::refresher::spawn_function spawner(net::io_context& ioc) {
    return [&ioc](std::function<net::awaitable<void>()> f, std::string name) {
        auto done = [name](std::exception_ptr e) {
            if (!e)
                return;
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                BOOST_ERROR("task " << name << " failed: " << ex.what());
            }
        };
        net::co_spawn(ioc, run_fn(std::move(f)), std::move(done));
    };
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    net::steady_timer t(co_await net::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(net::use_awaitable);
}

// A fake upstream: counts calls, takes `delay`, returns {"n": value} or throws when failing.
struct upstream {
    int calls = 0;
    int value = 1;
    bool failing = false;
    std::chrono::milliseconds delay{0};

    net::awaitable<rtpush::snapshot> fetch() {
        ++calls;
        if (delay.count() > 0)
            co_await sleep_for(delay);
        if (failing)
            throw std::runtime_error("upstream down");
        co_return make(value);
    }
    static rtpush::snapshot make(int v) {
        json::object k;
        k["n"] = v;
        json::object c;
        c["n"] = v;
        c["rows"] = json::array(3, v);
        return {k, c};
    }
};

rtpush::source make_source(upstream& u, std::string name = "s", std::string channel = "dash") {
    rtpush::source s;
    s.name = std::move(name);
    s.topic = {std::move(channel), {"acme", "", ""}};
    s.fetch = [&u] {
        return u.fetch();
    };
    return s;
}

// Options under which the source's loop never fetches by itself.
rtpush::refresh_options idle_options() {
    rtpush::refresh_options o;
    o.on_demand = true; // and nobody subscribes
    o.refresh_interval = 1h;
    return o;
}

json::value stat(const rtpush::refresher& r, std::string_view key) {
    return r.stats().at(0).at(key);
}

template <class F>
void run(net::io_context& ioc, F f, std::chrono::milliseconds limit = 10000ms) {
    bool done = false;
    auto body = [&]() -> net::awaitable<void> {
        co_await f();
        done = true;
    };
    net::co_spawn(ioc, body, [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    ioc.run_for(limit);
    BOOST_TEST_REQUIRE(done, "test coroutine did not finish");
}

} // namespace

BOOST_AUTO_TEST_SUITE(refresher)

BOOST_AUTO_TEST_CASE(single_flight_50_concurrent_refreshes_one_fetch) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    u.delay = 50ms;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    r.add(make_source(u), idle_options());
    int ok = 0, finished = 0;
    run(ioc, [&]() -> net::awaitable<void> {
        for (int i = 0; i < 50; ++i) {
            auto one = [&]() -> net::awaitable<void> {
                if (co_await r.async_refresh("s"))
                    ++ok;
                ++finished;
            };
            net::co_spawn(ioc, one, [](std::exception_ptr) {});
        }
        while (finished < 50)
            co_await sleep_for(5ms);
        r.stop();
    });
    BOOST_TEST(u.calls == 1);
    BOOST_TEST(ok == 50);
    BOOST_TEST(stat(r, "fetches").as_uint64() == 1u);
    BOOST_TEST(stat(r, "shared").as_uint64() == 49u);
    BOOST_TEST(h.stats().total_messages == 2u); // kpis + complete, once
}

BOOST_AUTO_TEST_CASE(publishes_kpis_then_complete_with_changes) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    r.add(make_source(u), idle_options());
    rtpush::topic const t{"dash", {"acme", "", ""}};
    run(ioc, [&]() -> net::awaitable<void> {
        bool const first = co_await r.async_refresh("s");
        u.value = 4;
        bool const second = co_await r.async_refresh("s");
        BOOST_TEST(first);
        BOOST_TEST(second);
        r.stop();
    });
    auto const items = h.snapshot(t);
    BOOST_TEST_REQUIRE(items.size() == 2u);
    auto const& k = items.at(0).as_object();
    BOOST_TEST(k.at("phase").as_string() == "kpis");
    BOOST_TEST(k.at("seq").as_uint64() == 3u);
    BOOST_TEST(k.at("event").as_string() == "dash:update");
    BOOST_TEST(k.at("data").at("n").as_int64() == 4);
    BOOST_TEST(k.at("data").at("changes").at("n_change").as_int64() == 3);
    auto const& c = items.at(1).as_object();
    BOOST_TEST(c.at("phase").as_string() == "complete");
    BOOST_TEST(c.at("seq").as_uint64() == 4u);
    BOOST_TEST(c.at("data").at("rows").as_array().size() == 3u);
    // Seed 004's change detection names what changed: in the complete data and the stats.
    BOOST_TEST(!c.at("data").as_object().contains("changed_fields")); // not asked for

    BOOST_TEST(stat(r, "last_changed_fields") == json::parse(R"(["/n","/rows"])"));
    BOOST_TEST(stat(r, "last_change_at").is_string());
}

BOOST_AUTO_TEST_CASE(changed_fields_in_the_complete_data_when_asked) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    auto o = idle_options();
    o.changed_fields = true;
    r.add(make_source(u), o);
    run(ioc, [&]() -> net::awaitable<void> {
        co_await r.async_refresh("s");
        u.value = 7;
        co_await r.async_refresh("s");
        r.stop();
    });
    auto const items = h.snapshot(rtpush::topic{"dash", {"acme", "", ""}});
    BOOST_TEST_REQUIRE(items.size() == 2u);
    BOOST_TEST(items.at(1).at("data").at("changed_fields") == json::parse(R"(["/n","/rows"])"));
    BOOST_TEST(!items.at(0).at("data").as_object().contains("changed_fields")); // KPIs: `changes`
}

BOOST_AUTO_TEST_CASE(unchanged_content_is_not_published) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    r.add(make_source(u), idle_options());
    run(ioc, [&]() -> net::awaitable<void> {
        co_await r.async_refresh("s");
        co_await r.async_refresh("s");
        co_await r.async_refresh("s");
        r.stop();
    });
    BOOST_TEST(u.calls == 3);
    BOOST_TEST(h.stats().total_messages == 2u);
    BOOST_TEST(stat(r, "publishes").as_uint64() == 1u);
    BOOST_TEST(stat(r, "unchanged").as_uint64() == 2u);
}

BOOST_AUTO_TEST_CASE(cache_ttl_serves_unforced_refreshes) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    auto o = idle_options();
    o.cache_ttl = 200ms;
    r.add(make_source(u), o);
    run(ioc, [&]() -> net::awaitable<void> {
        co_await r.async_refresh("s", false); // empty cache: fetches
        co_await r.async_refresh("s", false); // fresh: cached
        co_await r.async_refresh("s", true);  // forced: fetches
        co_await sleep_for(250ms);
        co_await r.async_refresh("s", false); // expired: fetches
        r.stop();
    });
    BOOST_TEST(u.calls == 3);
    BOOST_TEST(stat(r, "cache_hits").as_uint64() == 1u);
}

BOOST_AUTO_TEST_CASE(unknown_source_name) {
    net::io_context ioc;
    rtpush::hub h;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    bool ok = true;
    run(ioc, [&]() -> net::awaitable<void> { ok = co_await r.async_refresh("nope"); });
    BOOST_TEST(!ok);
}

BOOST_AUTO_TEST_CASE(invalid_sources_are_refused) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    auto bad = make_source(u, "bad", "no:colons");
    BOOST_CHECK_THROW(r.add(bad), std::invalid_argument);
    auto nofetch = make_source(u, "nofetch");
    nofetch.fetch = nullptr;
    BOOST_CHECK_THROW(r.add(nofetch), std::invalid_argument);
    r.add(make_source(u), idle_options());
    BOOST_CHECK_THROW(r.add(make_source(u), idle_options()), std::invalid_argument);
    r.stop();
    ioc.run_for(1s);
}

BOOST_AUTO_TEST_CASE(failure_keeps_last_good_value_and_recovers_with_backoff) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    rtpush::refresh_options o;
    o.refresh_interval = 30ms;
    o.retry_initial = 20ms;
    o.retry_max = 40ms;
    r.add(make_source(u), o);
    rtpush::topic const t{"dash", {"acme", "", ""}};
    run(ioc, [&]() -> net::awaitable<void> {
        while (u.calls < 1)
            co_await sleep_for(2ms);
        co_await sleep_for(5ms);
        u.failing = true;
        u.value = 2;
        while (stat(r, "errors").as_uint64() < 3)
            co_await sleep_for(2ms);
        // the last good value is still what subscribers get
        auto const items = h.snapshot(t);
        BOOST_TEST(items.at(0).at("data").at("n").as_int64() == 1);
        BOOST_TEST(stat(r, "consecutive_errors").as_uint64() >= 3u);
        BOOST_TEST(stat(r, "last_error").as_string() == "upstream down");
        u.failing = false;
        while (h.snapshot(t).at(0).at("data").at("n").as_int64() != 2)
            co_await sleep_for(2ms);
        BOOST_TEST(stat(r, "consecutive_errors").as_uint64() == 0u);
        r.stop();
    });
}

BOOST_AUTO_TEST_CASE(scheduled_refresh_timing) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    rtpush::refresh_options o;
    o.refresh_interval = 50ms;
    o.jitter = 10ms;
    r.add(make_source(u), o);
    run(ioc, [&]() -> net::awaitable<void> {
        co_await sleep_for(330ms);
        r.stop();
    });
    // at 0, then every 50..60 ms: 6 or 7 fetches in 330 ms; never more, fewer on a loaded
    // machine (timers fire late)
    BOOST_TEST(u.calls >= 3);
    BOOST_TEST(u.calls <= 7);
}

BOOST_AUTO_TEST_CASE(demand_driven_start_and_stop_with_linger) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    rtpush::refresh_options o;
    o.refresh_interval = 20ms;
    o.cache_ttl = 0ms;
    o.on_demand = true;
    o.linger = 60ms;
    r.add(make_source(u, "m", "metrics"), o);
    run(ioc, [&]() -> net::awaitable<void> {
        co_await sleep_for(80ms);
        BOOST_TEST(u.calls == 0); // nobody subscribed
        BOOST_TEST(!stat(r, "active").as_bool());
        h.add_demand("metrics");
        h.add_demand("metrics");
        co_await sleep_for(100ms);
        BOOST_TEST(u.calls >= 2);
        BOOST_TEST(stat(r, "active").as_bool());
        h.remove_demand("metrics");
        int const before = u.calls;
        co_await sleep_for(50ms);
        BOOST_TEST(u.calls > before); // one subscriber left
        h.remove_demand("metrics");
        co_await sleep_for(150ms); // linger (60 ms) passes
        BOOST_TEST(!stat(r, "active").as_bool());
        int const stopped = u.calls;
        co_await sleep_for(100ms);
        BOOST_TEST(u.calls == stopped);
        h.add_demand("metrics");
        co_await sleep_for(30ms);
        BOOST_TEST(u.calls > stopped); // started again
        h.remove_demand("metrics");
        r.stop();
    });
}

BOOST_AUTO_TEST_CASE(demand_restart_within_ttl_uses_the_cache) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    rtpush::refresh_options o;
    o.refresh_interval = 20ms; // scheduled fetches while watched
    o.cache_ttl = 1h;          // but a restart serves the cached value
    o.on_demand = true;
    o.linger = 0ms;
    r.add(make_source(u), o);
    int idle_calls = 0;
    run(ioc, [&]() -> net::awaitable<void> {
        h.add_demand("dash");
        while (u.calls < 2)
            co_await sleep_for(2ms);
        h.remove_demand("dash");
        co_await sleep_for(40ms);
        BOOST_TEST(!stat(r, "active").as_bool());
        idle_calls = u.calls;
        h.add_demand("dash"); // back after the interval but within the TTL: no fetch
        co_await sleep_for(60ms);
        BOOST_TEST(stat(r, "active").as_bool());
        h.remove_demand("dash");
        r.stop();
    });
    BOOST_TEST(u.calls == idle_calls);
    BOOST_TEST(stat(r, "cache_hits").as_uint64() == 1u);
}

BOOST_AUTO_TEST_CASE(hub_refresh_dispatches_by_channel) {
    net::io_context ioc;
    rtpush::hub h;
    upstream a, b;
    int fallback = 0;
    h.on_refresh([&](const rtpush::topic&) { ++fallback; });
    rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
    r.add(make_source(a, "a", "dash"), idle_options());
    r.add(make_source(b, "b", "metrics"), idle_options());
    BOOST_TEST(h.request_refresh({"dash", {"acme", "", ""}}));
    BOOST_TEST(h.request_refresh({"dash", {}}));                   // wider: covers the source
    BOOST_TEST(h.request_refresh({"metrics", {"acme", "d", ""}})); // narrower: covered
    BOOST_TEST(r.request_refresh({"metrics", {"globex", "", ""}}) == 0u); // unrelated scope
    BOOST_TEST(h.request_refresh({"other", {}}));
    run(ioc, [&]() -> net::awaitable<void> {
        while (a.calls + b.calls < 2)
            co_await sleep_for(2ms);
        co_await sleep_for(20ms);
        r.stop();
    });
    BOOST_TEST(a.calls >= 1); // two requests may share one fetch
    BOOST_TEST(a.calls <= 2);
    BOOST_TEST(b.calls == 1);
    BOOST_TEST(fallback == 1);
}

BOOST_AUTO_TEST_CASE(destroying_the_refresher_unregisters_it) {
    net::io_context ioc;
    rtpush::hub h;
    upstream u;
    {
        rtpush::refresher r(h, ioc.get_executor(), spawner(ioc));
        r.add(make_source(u), idle_options());
        BOOST_TEST(h.extra_stats().at("sources").as_array().size() == 1u);
    }
    BOOST_TEST(!h.request_refresh({"dash", {"acme", "", ""}}));
    BOOST_TEST(h.extra_stats().empty());
    h.add_demand("dash"); // the demand watcher is gone too
    h.remove_demand("dash");
    ioc.run_for(200ms);
    BOOST_TEST(u.calls == 0);
}

BOOST_AUTO_TEST_SUITE_END()
