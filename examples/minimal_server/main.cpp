// A minimal rtpush server: WebSocket at ws://localhost:3001/ws, a KPI published every second.
#include <rtpush.hpp>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

namespace net = boost::asio;

int main() {
    rtpush::server srv({.port = 3001});

    srv.spawn([&]() -> net::awaitable<void> {
        net::steady_timer timer(co_await net::this_coro::executor);
        for (int tick = 0;; ++tick) {
            rtpush::publication p;
            p.topic = {"kpi", {.org = "acme"}};
            p.phase = "kpis";
            p.data.emplace_object()["tick"] = tick; // no initializer lists in coroutines (GCC 12)
            srv.hub().publish(std::move(p)); // serialised once, fanned out to every subscriber
            timer.expires_after(std::chrono::seconds(1));
            co_await timer.async_wait(net::use_awaitable); // cancelled by stop()
        }
    });

    net::io_context signals_ctx;
    net::signal_set signals(signals_ctx, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { srv.stop(); });
    std::thread t([&] { signals_ctx.run(); });
    srv.run(); // returns after stop() has closed every client and ended every task
    signals.cancel();
    t.join();
}
