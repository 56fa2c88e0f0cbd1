// Integration test harness: an in-process server on a free loopback port, coroutine clients
// run with a deadline, and a blocking HTTP client for the REST endpoints.
#ifndef RTPUSH_TEST_HARNESS_HPP
#define RTPUSH_TEST_HARNESS_HPP

#include <rtpush.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <future>
#include <string>
#include <utility>
#include <vector>

namespace test {

namespace net = boost::asio;
namespace http = boost::beast::http;
using namespace std::chrono_literals;

inline rtpush::server_config default_config() {
    rtpush::server_config c;
    c.host = "127.0.0.1";
    c.port = 0;
    c.threads = 2;
    return c;
}

struct server_fixture {
    rtpush::server srv;
    explicit server_fixture(rtpush::server_config c = default_config())
        : srv(std::move(c)) {
        srv.start();
    }
    ~server_fixture() {
        srv.stop();
        srv.wait();
    }
    std::string url(std::string_view path = "/ws") const {
        return "ws://127.0.0.1:" + std::to_string(srv.port()) + std::string(path);
    }
};

/// Runs a coroutine on a private io_context with a deadline; fails the test on timeout.
template <class F>
auto run(F f, std::chrono::seconds limit = 30s) {
    net::io_context ioc;
    auto fut = net::co_spawn(ioc, f(ioc), net::use_future);
    ioc.run_for(limit);
    if (fut.wait_for(0s) != std::future_status::ready) {
        ioc.stop();
        BOOST_FAIL("timed out after " << limit.count() << " s");
    }
    return fut.get();
}

/// Reads messages until one of `type` arrives (skipping heartbeats etc.).
inline net::awaitable<boost::json::object> expect(rtpush::client_connection& c,
                                                  std::string_view type) {
    for (;;) {
        auto const text = co_await c.async_receive();
        auto v = boost::json::parse(text);
        auto& o = v.as_object();
        if (o.at("type").as_string() == type)
            co_return o;
        if (o.at("type").as_string() != "heartbeat")
            BOOST_TEST_MESSAGE("skipping " << text);
    }
}

/// Next message that is not a heartbeat.
inline net::awaitable<boost::json::object> next(rtpush::client_connection& c) {
    for (;;) {
        auto v = boost::json::parse(co_await c.async_receive());
        if (v.as_object().at("type").as_string() != "heartbeat")
            co_return v.as_object();
    }
}

inline net::awaitable<void> connect(rtpush::client_connection& c, const std::string& url) {
    co_await c.async_connect(url);
    auto v = boost::json::parse(co_await c.async_receive());
    BOOST_TEST(v.at("type").as_string() == "connected");
}

inline net::awaitable<void> subscribe(rtpush::client_connection& c, std::string channel,
                                      std::string org = {}, std::string dept = {},
                                      std::string queue = {}) {
    boost::json::object scope;
    if (!org.empty())
        scope["org"] = org;
    if (!dept.empty())
        scope["dept"] = dept;
    if (!queue.empty())
        scope["queue"] = queue;
    boost::json::object m;
    m["type"] = "subscribe";
    m["channel"] = channel;
    m["scope"] = scope;
    co_await c.async_send(boost::json::serialize(m));
    auto ack = co_await expect(c, "subscribed");
    BOOST_TEST(ack.at("channel").as_string() == channel);
}

struct http_result {
    unsigned status = 0;
    boost::json::value body;
    std::string raw;
    http::response<http::string_body> res;
};

/// One blocking HTTP request on a fresh connection.
inline http_result http_call(std::uint16_t port, http::verb method, std::string target,
                             std::string body = {}, std::string raw_request = {},
                             std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), port});
    if (!raw_request.empty()) {
        net::write(s, net::buffer(raw_request));
    } else {
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, "127.0.0.1");
        for (auto const& [k, v] : headers)
            req.set(k, v);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        http::write(s, req);
    }
    boost::beast::flat_buffer buf;
    http_result r;
    http::read(s, buf, r.res);
    r.status = r.res.result_int();
    r.raw = r.res.body();
    boost::system::error_code ec;
    r.body = boost::json::parse(r.raw, ec);
    return r;
}

} // namespace test

#endif
