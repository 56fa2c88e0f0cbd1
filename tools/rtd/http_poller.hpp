// rtd: the HTTP JSON poller (seeds 000 and 004; docs/configuration.md, "Data sources"): GETs
// an http:// or https:// URL, publishes the JSON body as the `complete` phase and the fields
// chosen by JSON pointers as the `kpis` phase.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#ifndef RTD_HTTP_POLLER_HPP
#define RTD_HTTP_POLLER_HPP

#include <rtpush/client_connection.hpp>
#include <rtpush/refresher.hpp>
#include <rtpush/source.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rtd {

/// One poller, as the config file describes it.
struct poller_config {
    std::string name;
    std::string url;     ///< http://host[:port]/path or https://...
    std::string ca_file; ///< https: PEM file of trusted CAs; empty: the system's CAs
    rtpush::topic topic;
    std::string event;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string bearer_token_env;        ///< sends "Authorization: Bearer $VAR" when set
    std::vector<rtpush::kpi_field> kpis; ///< empty: the body is published as `complete` only
    std::string data_pointer; ///< the part of the body that is the complete data ("" = all)
    std::chrono::milliseconds timeout{10000};
    std::size_t max_body = 8 << 20;
    rtpush::refresh_options refresh;
};

namespace detail {

// The request and response on a connected (and, for https, handshaken) stream.
template <class Stream>
boost::asio::awaitable<boost::beast::http::response<boost::beast::http::string_body>>
exchange(Stream& stream, const poller_config& cfg, const rtpush::ws_url& u) {
    namespace net = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    req.set(http::field::host, u.host + ":" + u.port);
    req.set(http::field::user_agent, std::string("rtd/") + rtpush::version_string);
    req.set(http::field::accept, "application/json");
    for (auto const& [k, v] : cfg.headers)
        req.set(k, v);
    if (!cfg.bearer_token_env.empty())
        if (char const* tok = std::getenv(cfg.bearer_token_env.c_str()))
            req.set(http::field::authorization, std::string("Bearer ") + tok);
    auto [wec, wn] = co_await http::async_write(stream, req, net::as_tuple(net::use_awaitable));
    if (wec)
        throw std::runtime_error(wec == beast::error::timeout ? "timeout" : wec.message());
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(cfg.max_body);
    auto [hec, hn] =
        co_await http::async_read(stream, buf, parser, net::as_tuple(net::use_awaitable));
    if (hec)
        throw std::runtime_error(hec == beast::error::timeout ? "timeout reading the response"
                                                              : "bad response: " + hec.message());
    co_return parser.release();
}

inline rtpush::snapshot
to_snapshot(const poller_config& cfg,
            const boost::beast::http::response<boost::beast::http::string_body>& res) {
    if (res.result_int() != 200)
        throw std::runtime_error("HTTP " + std::to_string(res.result_int()));
    boost::system::error_code ec;
    auto body = boost::json::parse(res.body(), ec);
    if (ec)
        throw std::runtime_error("body is not JSON: " + ec.message());
    rtpush::snapshot s;
    if (!cfg.data_pointer.empty()) {
        auto const* p = body.find_pointer(cfg.data_pointer, ec);
        if (!p)
            throw std::runtime_error("no " + cfg.data_pointer + " in the body");
        s.complete = *p;
    } else {
        s.complete = std::move(body);
    }
    if (!cfg.kpis.empty())
        s.kpis = rtpush::pick_kpis(s.complete, cfg.kpis);
    return s;
}

} // namespace detail

/// Fetches one snapshot. Throws with a message naming what went wrong: connection, TLS,
/// timeout, HTTP status, body that is not JSON. `timeout` bounds connect, handshake, request
/// and response together (name resolution is not bounded: use addresses or a local resolver).
inline boost::asio::awaitable<rtpush::snapshot> http_poll(poller_config cfg) {
    namespace net = boost::asio;
    namespace beast = boost::beast;
    namespace ssl = net::ssl;
    boost::system::error_code ec;
    bool const tls = cfg.url.rfind("https://", 0) == 0;
    if (!tls && cfg.url.rfind("http://", 0) != 0)
        throw std::runtime_error("only http:// and https:// URLs are supported");
    auto const u =
        rtpush::parse_ws_url((tls ? "wss://" : "ws://") + cfg.url.substr(tls ? 8 : 7), ec);
    if (ec)
        throw std::runtime_error("bad URL " + cfg.url);
    auto ex = co_await net::this_coro::executor;
    net::ip::tcp::resolver resolver(ex);
    auto [rec, eps] =
        co_await resolver.async_resolve(u.host, u.port, net::as_tuple(net::use_awaitable));
    if (rec)
        throw std::runtime_error("cannot resolve " + u.host + ": " + rec.message());
    auto connect_error = [&](boost::system::error_code e) {
        return std::runtime_error(e == beast::error::timeout
                                      ? "timeout connecting to " + u.host + ":" + u.port
                                      : "cannot connect to " + u.host + ":" + u.port + ": " +
                                            e.message());
    };
    if (!tls) {
        beast::tcp_stream stream(ex);
        stream.expires_after(cfg.timeout); // one deadline for the whole exchange
        auto [cec, ep] = co_await stream.async_connect(eps, net::as_tuple(net::use_awaitable));
        if (cec)
            throw connect_error(cec);
        auto res = co_await detail::exchange(stream, cfg, u);
        stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
        co_return detail::to_snapshot(cfg, res);
    }
    ssl::context ctx(ssl::context::tls_client);
    if (cfg.ca_file.empty())
        ctx.set_default_verify_paths();
    else
        ctx.load_verify_file(cfg.ca_file);
    ctx.set_verify_mode(ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(ex, ctx);
    // SNI, and the certificate must name the host we asked for.
    if (!SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str()))
        throw std::runtime_error("cannot set the TLS server name");
    stream.set_verify_callback(ssl::host_name_verification(u.host));
    beast::get_lowest_layer(stream).expires_after(cfg.timeout);
    auto [cec, ep] = co_await beast::get_lowest_layer(stream).async_connect(
        eps, net::as_tuple(net::use_awaitable));
    if (cec)
        throw connect_error(cec);
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                 net::as_tuple(net::use_awaitable));
    if (hec)
        throw std::runtime_error(hec == beast::error::timeout ? "timeout in the TLS handshake"
                                                              : "TLS handshake: " + hec.message());
    auto res = co_await detail::exchange(stream, cfg, u);
    // No TLS close_notify exchange: the response is complete, and many servers just close.
    beast::get_lowest_layer(stream).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    co_return detail::to_snapshot(cfg, res);
}

/// The source that polls `cfg.url`.
inline rtpush::source make_http_source(const poller_config& cfg) {
    rtpush::source s;
    s.name = cfg.name;
    s.topic = cfg.topic;
    s.event = cfg.event;
    s.fetch = [cfg] {
        return http_poll(cfg);
    };
    return s;
}

} // namespace rtd

#endif
