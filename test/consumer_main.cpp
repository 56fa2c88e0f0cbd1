// A tiny program built against rtpush by the consumer tests: it runs a server on a free port,
// publishes, and reads the value back through a WebSocket client.
#include <rtpush.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iostream>

int main() {
    rtpush::server srv({.host = "127.0.0.1", .port = 0, .threads = 1});
    srv.hub().publish(
        {{"kpi", {"acme", "", ""}}, "", "kpis", rtpush::priority::high, {{"health_score", 91}}});
    srv.start();
    boost::asio::io_context ioc;
    auto client = [&]() -> boost::asio::awaitable<std::string> {
        rtpush::client_connection c(ioc.get_executor());
        co_await c.async_connect("ws://127.0.0.1:" + std::to_string(srv.port()) + "/ws");
        co_await c.async_receive(); // connected
        co_await c.async_send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})");
        co_await c.async_receive(); // subscribed
        auto initial = co_await c.async_receive();
        co_await c.async_close();
        co_return initial;
    };
    auto f = boost::asio::co_spawn(ioc, client, boost::asio::use_future);
    ioc.run_for(std::chrono::seconds(10));
    srv.stop();
    srv.wait();
    auto const text = f.get();
    auto const v = boost::json::parse(text);
    bool const ok = v.at("type") == "initial" && v.at("data").at("health_score") == 91;
    std::cout << text << "\n" << (ok ? "ok" : "FAILED") << "\n";
    return ok ? 0 : 1;
}
