// Peer: an idiomatic uWebSockets fan-out server speaking rtpush's minimal protocol, the same
// as ws_server.js: {type:"subscribe",channel} subscribes to the channel's topic and is
// answered {"type":"subscribed","channel":...}; {type:"publish",channel,data} is serialised
// once as {"type":"update","channel":...,"data":...} and published to the channel's topic,
// which reaches every subscriber except the sender.
//
// Path /ws on 127.0.0.1; port from argv[1] (0 = any free port); prints one line
// {"event":"listening","port":N} when listening (bench/run reads it). SIGTERM exits at once.
// No SSL, no compression; the per-connection user data is empty, so idle memory is uWS's own.
// Built by bench/peers/build-uws.
#include "App.h"

#include <boost/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace {

struct per_socket {}; // nothing of ours per connection

// The channel as a topic name: a string as is, anything else as its JSON text (ws_server.js
// keys its Map by the value; a peer only ever sees strings from rtload).
std::string topic_of(boost::json::value const& ch) {
    if (auto const* s = ch.if_string())
        return std::string(s->data(), s->size());
    return boost::json::serialize(ch);
}

} // namespace

int main(int argc, char** argv) {
    int const port = argc > 1 ? std::atoi(argv[1]) : 0;
    std::signal(SIGPIPE, SIG_IGN);
    std::signal(SIGTERM, [](int) { _exit(0); });

    uWS::App app;
    app.ws<per_socket>(
        "/ws",
        {
            .compression = uWS::DISABLED,
            .maxPayloadLength = 16 * 1024 * 1024,
            .idleTimeout = 120,
            // 0 = unbounded send buffers, as Node `ws` has: a slow subscriber is buffered for, not
            // silently skipped (uWS's 64 KiB default drops what a publication would add beyond it).
            .maxBackpressure = 0,
            .closeOnBackpressureLimit = false,
            .resetIdleTimeoutOnSend = false,
            .sendPingsAutomatically = true,
            .message =
                [&app](auto* ws, std::string_view raw, uWS::OpCode) {
                    boost::system::error_code ec;
                    boost::json::value v = boost::json::parse(raw, ec);
                    auto const* m = ec ? nullptr : v.if_object();
                    if (!m)
                        return;
                    auto const* type = m->if_contains("type");
                    auto const* channel = m->if_contains("channel");
                    if (!type || !type->is_string() || !channel)
                        return;
                    if (type->get_string() == "subscribe") {
                        ws->subscribe(topic_of(*channel));
                        boost::json::object reply;
                        reply["type"] = "subscribed";
                        reply["channel"] = *channel;
                        ws->send(boost::json::serialize(reply), uWS::OpCode::TEXT);
                    } else if (type->get_string() == "publish") {
                        boost::json::object out;
                        out["type"] = "update";
                        out["channel"] = *channel;
                        auto const* data = m->if_contains("data");
                        out["data"] = data ? *data : boost::json::value();
                        std::string const text = boost::json::serialize(out); // once, for everyone
                        std::string const topic = topic_of(*channel);
                        // ws->publish skips the sender but publishes nothing if the sender
                        // subscribes to no topic at all; one not subscribed to this topic cannot
                        // receive it anyway.
                        if (ws->isSubscribed(topic))
                            ws->publish(topic, text, uWS::OpCode::TEXT);
                        else
                            app.publish(topic, text, uWS::OpCode::TEXT);
                    }
                },
        });
    app.listen("127.0.0.1", port, [port](us_listen_socket_t* ls) {
        if (!ls) {
            std::fprintf(stderr, "uws_server: cannot listen on 127.0.0.1:%d\n", port);
            std::exit(1);
        }
        int const p = us_socket_local_port(0, reinterpret_cast<us_socket_t*>(ls));
        std::printf("{\"event\":\"listening\",\"port\":%d}\n", p);
        std::fflush(stdout);
    });
    app.run();
    return 0;
}
