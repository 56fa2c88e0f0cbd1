// A custom data source: the refresher calls `fetch` on a schedule (and when a client sends
// `refresh`), publishes the KPIs first and the complete data after, and only when the content
// changed. Subscribe with: rtcat -c ws://localhost:3001/ws --subscribe backlog:acme
#include <rtpush.hpp>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <random>

namespace net = boost::asio;

// Stands in for a database query or an HTTP call. Not a coroutine itself: it builds JSON and
// calls pick_kpis with initializer lists, which GCC 12 miscompiles inside coroutines.
rtpush::snapshot query_backlog(std::mt19937& rng) {
    std::uniform_int_distribution<int> items(20, 60), over(0, 8);
    boost::json::array queues;
    std::int64_t total = 0, total_over = 0;
    for (auto const* name : {"email", "phone", "chat"}) {
        boost::json::object q;
        q["queue"] = name;
        q["items"] = items(rng);
        q["over_sla"] = over(rng);
        total += q["items"].as_int64();
        total_over += q["over_sla"].as_int64();
        queues.push_back(std::move(q));
    }
    rtpush::snapshot s;
    auto& complete = s.complete.emplace_object();
    complete["summary"] = {{"total_items", total}, {"over_sla", total_over}};
    complete["queues"] = std::move(queues);
    // The small `kpis` phase reaches dashboards first; the refresher adds `changes`.
    s.kpis = rtpush::pick_kpis(
        s.complete, {{"total_items", "/summary/total_items"}, {"over_sla", "/summary/over_sla"}});
    return s;
}

int main(int argc, char** argv) {
    rtpush::server srv({.port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 3001)});
    rtpush::refresher refresher(srv); // its tasks run on the server's first io thread

    auto rng = std::make_shared<std::mt19937>(42);
    rtpush::source src;
    src.name = "backlog-db";
    src.topic = {"backlog", {.org = "acme"}};
    src.fetch = [rng]() -> net::awaitable<rtpush::snapshot> {
        // A real source awaits its I/O here, bounded by a timeout, and throws on failure: the
        // refresher then retries with backoff and keeps the last good snapshot meanwhile.
        net::steady_timer latency(co_await net::this_coro::executor, std::chrono::milliseconds(50));
        co_await latency.async_wait(net::use_awaitable);
        co_return query_backlog(*rng);
    };
    refresher.add(std::move(src), {.refresh_interval = std::chrono::seconds(2),
                                   .on_demand = true}); // fetch only while someone watches

    net::io_context signals_ctx;
    net::signal_set signals(signals_ctx, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { srv.stop(); });
    std::thread t([&] { signals_ctx.run(); });
    srv.run(); // stop() cancels the refresher's tasks along with everything else
    signals.cancel();
    t.join();
}
