// Embedding rtpush in an existing Beast HTTP server. The program keeps its own acceptor,
// io_context and routes (here GET /hello); it hands WebSocket upgrades and SSE streams to
// rtpush with server::accept_connection, and forwards /api/... to server::handle. rtpush runs
// with `listen = false`: no port of its own, only its io threads.
//
//   embed_beast [PORT]      prints {"port":N} once it listens; Ctrl-C stops it
#include <rtpush.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <iostream>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// The application's own HTTP connection loop, as it was before rtpush came along.
net::awaitable<void> serve(rtpush::server& rt, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    for (;;) {
        http::request_parser<http::string_body> parser;
        auto [ec, n] =
            co_await http::async_read(stream, buf, parser, net::as_tuple(net::use_awaitable));
        if (ec)
            co_return;
        auto const target = parser.get().target();
        if (beast::websocket::is_upgrade(parser.get()) || target.starts_with("/sse")) {
            // From here on the connection is rtpush's: it answers the request on this socket
            // (101 Switching Protocols, or the event stream) on one of its own io threads.
            // Bytes read past the request belong to the WebSocket: hand them over too.
            std::string rest(static_cast<const char*>(buf.data().data()), buf.size());
            rt.accept_connection(stream.release_socket(), parser.release(), std::move(rest));
            co_return;
        }
        http::response<http::string_body> res;
        if (target.starts_with("/api/"))
            res = co_await rt.handle(parser.get()); // rtpush's REST routes, same JSON
        else if (target == "/hello") {
            res.result(http::status::ok);
            res.set(http::field::content_type, "text/plain");
            res.body() = "hello from the application\n";
        } else {
            res.result(http::status::not_found);
            res.body() = "not found\n";
        }
        res.version(parser.get().version());
        res.keep_alive(parser.get().keep_alive());
        res.prepare_payload();
        co_await http::async_write(stream, res, net::use_awaitable);
        if (!res.keep_alive())
            co_return;
    }
}

net::awaitable<void> listen(rtpush::server& rt, tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
        if (ec)
            co_return; // closed by the signal handler
        net::co_spawn(acceptor.get_executor(), serve(rt, std::move(socket)),
                      [](std::exception_ptr) {});
    }
}

int main(int argc, char** argv) {
    rtpush::server rt({.listen = false, .threads = 1}); // ws_path "/ws", sse_path "/sse"
    rt.start();                                         // its io thread; no acceptor
    rtpush::publication p;
    p.topic = {"kpi", {.org = "acme"}};
    p.data = {{"health_score", 97}};
    rt.hub().publish(std::move(p)); // retained: every subscriber gets it as `initial`

    net::io_context ioc; // the application's own context and thread
    tcp::acceptor acceptor(ioc,
                           {net::ip::make_address("127.0.0.1"),
                            static_cast<net::ip::port_type>(argc > 1 ? std::atoi(argv[1]) : 8080)});
    std::cout << "{\"port\":" << acceptor.local_endpoint().port() << "}" << std::endl;
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) {
        acceptor.close();
        rt.stop(); // closes the connections it was handed
    });
    net::co_spawn(ioc, listen(rt, acceptor), [](std::exception_ptr) {});
    ioc.run();
    rt.wait();
}
