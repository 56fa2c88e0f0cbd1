// A WebSocket echo for conformance suites (Autobahn|Testsuite, test/integration/conformance.py):
// every text and binary message comes back as it was sent, on any path, through rtpush's own
// session (the same frame reader, UTF-8 checks, fragmentation, control frames, close
// handshake, limits and permessage-deflate as every rtpush server). No greeting, no heartbeat
// message (pings only), no rate limit. docs/protocol.md, "Conformance".
//
//   echo_server [--host 127.0.0.1] [--port 9001] [--max-message-size BYTES] [--threads N]
//
// Prints one JSON line per event (the first: "listening" with the port); Ctrl-C stops it.
#include <rtpush.hpp>

#include <boost/asio/signal_set.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string_view>

namespace net = boost::asio;

namespace {

// A flag's number, or exit 2 with the flag named.
std::uint64_t number(std::string_view flag, std::string_view text, std::uint64_t max) {
    std::uint64_t v = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || end != text.data() + text.size() || v > max) {
        std::cerr << "echo_server: " << flag << " needs a number up to " << max << ", not '" << text
                  << "'\n";
        std::exit(2);
    }
    return v;
}

} // namespace

int main(int argc, char** argv) {
    rtpush::server_config cfg{.host = "127.0.0.1", .port = 9001, .threads = 1};
    cfg.echo = true;
    cfg.permessage_deflate = true; // when the client offers it
    cfg.deflate_threshold = 0;     // compress every echo that shrinks
    cfg.max_messages_per_second = 0;
    cfg.dashboard = false;
    cfg.sse_path.clear();
    for (int i = 1; i < argc; ++i) {
        std::string_view const a = argv[i];
        if (i + 1 >= argc || !a.starts_with("--")) {
            std::cerr << "usage: echo_server [--host H] [--port N] [--max-message-size BYTES] "
                         "[--threads N]\n";
            return 2;
        }
        std::string_view const v = argv[++i];
        if (a == "--host")
            cfg.host = v;
        else if (a == "--port")
            cfg.port = static_cast<std::uint16_t>(number(a, v, 65535));
        else if (a == "--max-message-size")
            cfg.max_message_size = number(a, v, std::uint64_t(1) << 30);
        else if (a == "--threads")
            cfg.threads = static_cast<unsigned>(number(a, v, 64));
        else {
            std::cerr << "echo_server: unknown option " << a << "\n";
            return 2;
        }
    }
    static std::mutex out;
    cfg.logger.sink = [](rtpush::log_level, std::string_view event,
                         const boost::json::object& fields) {
        boost::json::object line = fields;
        line["event"] = event;
        std::lock_guard lock(out);
        std::cout << boost::json::serialize(line) << std::endl;
    };

    try {
        rtpush::server srv(std::move(cfg));
        net::io_context signals_ctx;
        net::signal_set signals(signals_ctx, SIGINT, SIGTERM);
        signals.async_wait([&](auto, int) { srv.stop(); });
        std::thread t([&] { signals_ctx.run(); });
        try {
            srv.run();
        } catch (...) {
            signals.cancel();
            t.join();
            throw;
        }
        signals.cancel();
        t.join();
    } catch (std::exception const& e) {
        std::cerr << "echo_server: " << e.what() << "\n";
        return 1;
    }
}
