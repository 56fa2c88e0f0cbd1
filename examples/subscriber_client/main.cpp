// A subscriber that stays connected: rtpush::client reconnects with exponential backoff and
// jitter, tries the next URL on failure, resubscribes with the last epoch and offsets it saw
// (so the server replays what it missed), and never hands out the same update twice.
//
//   subscriber_client [ws://localhost:3001/ws ...]      (Ctrl-C stops it)
#include <rtpush.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>

namespace net = boost::asio;

net::awaitable<void> print_events(rtpush::client& c) {
    for (;;) {
        rtpush::client_event ev;
        try {
            ev = co_await c.async_receive();
        } catch (boost::system::system_error const&) {
            co_return; // async_run ended and every event was taken
        }
        if (ev.kind == rtpush::client_event::state_change) {
            std::cout << "# " << rtpush::to_string(ev.state) << ' ' << ev.url << ev.topic
                      << (ev.reason.empty() ? "" : " (" + ev.reason + ")") << std::endl;
            continue;
        }
        auto const* o = ev.json.if_object();
        auto const* type = o ? o->if_contains("type") : nullptr;
        bool const data = type && type->is_string() &&
                          (type->get_string() == "initial" || type->get_string() == "update");
        if (data) // skip heartbeats, subscribed, ...
            std::cout << std::string_view(o->at("topic").as_string()) << " seq " << o->at("seq")
                      << ": " << o->at("data") << std::endl; // flushed: a pipe shows it at once
    }
}

int main(int argc, char** argv) {
    net::io_context ioc; // one thread: the client is not thread-safe
    rtpush::client_config cfg;
    for (int i = 1; i < argc; ++i)
        cfg.urls.push_back(argv[i]);
    if (cfg.urls.empty())
        cfg.urls.push_back("ws://localhost:3001/ws");
    cfg.subscriptions = {{"kpi", {.org = "acme"}}, {"alerts", {.org = "acme"}}};
    cfg.backoff.initial = std::chrono::milliseconds(500); // then doubling, up to backoff.max
    rtpush::client c(ioc.get_executor(), cfg);

    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { c.stop(); });
    net::co_spawn(ioc, c.async_run(), [&](std::exception_ptr) { signals.cancel(); });
    net::co_spawn(ioc, print_events(c), [](std::exception_ptr) {});
    ioc.run();
}
