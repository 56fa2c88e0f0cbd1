// rtload: WebSocket fan-out load generator for rtd and peer servers.
//
// One process, one io thread by default: each subscriber is a lean coroutine on a raw socket
// with rtpush's frame codec (no per-message JSON parse: the sequence number and send time are
// found by substring), so thousands of connections cost little of the generator's own CPU,
// which the report states.
#include <rtpush/detail/fd_limit.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/histogram.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace net = boost::asio;
namespace po = boost::program_options;
using net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using rtpush::detail::histogram;

namespace {

enum class protocol { rtpush, socketio };

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3001;
    std::uint16_t publish_port = 0; ///< the publisher's port when not `port` (another node)
    std::string path = "/ws";
    protocol proto = protocol::rtpush;
    std::size_t clients = 1000;
    std::string channel = "kpi";
    std::string org, dept, queue;
    double duration = 10;
    double ramp = 2000;
    double publish_rate = 0;
    std::size_t size = 200;
    bool publish_http = true; // POST /api/broadcast on a keep-alive connection (rtpush default)
    std::string api_key;      // X-API-Key of the HTTP publisher
    bool reconnect = false;   // subscribers reconnect (and resubscribe) after a drop
    double drain = 2;
    std::string json_out;
    int server_pid = 0;
    int sources = 0; // source addresses 127.0.0.2 .. ; 0 = automatic
    std::size_t handshakes = 0;
    std::size_t concurrency = 100;
    std::size_t read_buffer = 0;
    bool quiet = false;
};

double parse_seconds(std::string s) {
    double mult = 1;
    if (s.ends_with("ms")) {
        mult = 0.001;
        s.resize(s.size() - 2);
    } else if (s.ends_with("s")) {
        s.pop_back();
    } else if (s.ends_with("m")) {
        mult = 60;
        s.pop_back();
    }
    std::size_t pos = 0;
    double const v = std::stod(s, &pos);
    if (pos != s.size() || v < 0)
        throw std::invalid_argument("bad duration");
    return v * mult;
}

double parse_rate(std::string s) {
    if (s.ends_with("/s"))
        s.resize(s.size() - 2);
    std::size_t pos = 0;
    double const v = std::stod(s, &pos);
    if (pos != s.size() || v < 0)
        throw std::invalid_argument("bad rate");
    return v;
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

struct proc_sample {
    double user = 0, sys = 0; // seconds
    long rss_kib = 0;
};

std::optional<proc_sample> sample_process(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return std::nullopt;
    auto const close = line.rfind(')');
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    proc_sample s;
    double const tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            s.user = std::stod(field) / tick;
        if (i == 15)
            s.sys = std::stod(field) / tick;
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0)
            s.rss_kib = std::stol(line.substr(6));
    return s;
}

proc_sample self_usage() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    proc_sample s;
    s.user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    s.sys =
        static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    s.rss_kib = ru.ru_maxrss;
    return s;
}

// Finds `"key":<integer>` in a message; false when absent.
bool find_int(std::string_view text, std::string_view key, std::int64_t& out) {
    auto const p = text.find(key);
    if (p == std::string_view::npos)
        return false;
    std::size_t i = p + key.size();
    std::int64_t v = 0;
    bool any = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        v = v * 10 + (text[i] - '0');
        ++i;
        any = true;
    }
    out = v;
    return any;
}

struct stats {
    histogram latency_us;
    histogram answer_us; ///< --publish-via http: request written to its answer read
    std::uint64_t received = 0, bytes = 0, gaps = 0, duplicates = 0, out_of_order = 0;
    std::uint64_t connect_failures = 0, handshake_failures = 0, disconnects = 0, handshakes = 0;
    std::uint64_t reconnects = 0; ///< connections re-established after a drop (--reconnect)
    std::size_t connected = 0;
    std::uint64_t published = 0, publish_errors = 0;
};

class load {
public:
    load(net::io_context& ioc, options o)
        : ioc_(ioc)
        , o_(std::move(o))
        , target_(net::ip::make_address(o_.host), o_.port) {
        // At most ~8,000 connections per source address (28,000 ephemeral ports each, and
        // earlier runs leave theirs in TIME_WAIT for a minute); a run starts at an address
        // block picked by its pid, so back-to-back runs do not compete for the same ports.
        if (o_.sources == 0)
            o_.sources = static_cast<int>(std::max<std::size_t>(2, o_.clients / 8000 + 2));
        source_base_ = net::ip::make_address_v4("127.0.0.2").to_uint() +
                       (static_cast<unsigned>(getpid()) % 200u) * 65536u;
        if (o_.read_buffer == 0)
            o_.read_buffer = o_.clients > 20000 ? 2048 : 16384;
    }

    stats& st() { return st_; }
    const options& opts() const { return o_; }
    bool stop = false;
    bool publishing_done = false;
    bool publisher_ready_ = false;
    /// Why the run stopped at once: the server refused the first publication.
    std::string refused;
    std::uint64_t accepted_ = 0; ///< publications the server answered with success

    // The first publication was refused: nothing this run would measure is worth waiting
    // for, so stop now and say what to change.
    void refuse(std::string_view answer, std::string_view advice) {
        if (accepted_ > 0 || !refused.empty())
            return;
        refused = "the server refused the first publication:\n  " + std::string(answer) + "\n" +
                  std::string(advice);
        stop = true;
        publishing_done = true;
        ioc_.stop();
    }

    std::string upgrade_request() const {
        std::string target =
            o_.proto == protocol::socketio ? "/socket.io/?EIO=4&transport=websocket" : o_.path;
        return "GET " + target + " HTTP/1.1\r\nHost: " + o_.host + ":" + std::to_string(o_.port) +
               "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
               "dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\nUser-Agent: rtload\r\n\r\n";
    }

    std::string frame(std::string_view payload) const {
        std::string f;
        rtpush::detail::append_frame(f, rtpush::detail::opcode::text, payload, true, 0x1a2b3c4d);
        return f;
    }

    std::string subscribe_payload() const {
        if (o_.proto == protocol::socketio)
            return "42[\"subscribe\",\"" + o_.channel + "\"]";
        boost::json::object m;
        m["type"] = "subscribe";
        m["channel"] = o_.channel;
        boost::json::object sc;
        if (!o_.org.empty())
            sc["org"] = o_.org;
        if (!o_.dept.empty())
            sc["dept"] = o_.dept;
        if (!o_.queue.empty())
            sc["queue"] = o_.queue;
        m["scope"] = sc;
        return boost::json::serialize(m);
    }

    tcp::endpoint source(std::size_t i) const {
        // Beyond one address's ephemeral port range, spread over 127.0.0.2, .3, ...
        auto const n = static_cast<std::size_t>(o_.sources);
        auto const b = source_base_ + static_cast<unsigned>(i % n);
        return {net::ip::address_v4(b), 0};
    }

    // Connects and upgrades; returns leftover bytes after the 101, or nullopt.
    net::awaitable<std::optional<std::string>> open(tcp::socket& s, std::size_t i) {
        boost::system::error_code ec;
        s.open(tcp::v4(), ec);
        s.set_option(net::socket_base::reuse_address(true), ec);
        if (o_.host.rfind("127.", 0) == 0)
            s.bind(source(i), ec);
        if (ec) {
            ++st_.connect_failures;
            co_return std::nullopt;
        }
        // The publisher (index `clients`) may publish on another node of a cluster.
        tcp::endpoint target = target_;
        if (i == o_.clients && o_.publish_port != 0)
            target.port(o_.publish_port);
        auto [cec] = co_await s.async_connect(target, net::as_tuple(net::use_awaitable));
        if (cec) {
            ++st_.connect_failures;
            co_return std::nullopt;
        }
        s.set_option(tcp::no_delay(true), ec);
        auto const req = upgrade_request();
        auto [wec, wn] =
            co_await net::async_write(s, net::buffer(req), net::as_tuple(net::use_awaitable));
        std::string buf;
        auto [rec, rn] = co_await net::async_read_until(s, net::dynamic_buffer(buf), "\r\n\r\n",
                                                        net::as_tuple(net::use_awaitable));
        if (wec || rec || buf.compare(0, 12, "HTTP/1.1 101") != 0) {
            ++st_.handshake_failures;
            co_return std::nullopt;
        }
        ++st_.handshakes;
        co_return buf.substr(rn);
    }

    void on_message(std::string_view text, std::int64_t& last_n, std::int64_t recv_ns) {
        std::int64_t n = 0, t = 0;
        if (!find_int(text, "\"n\":", n) || !find_int(text, "\"t\":", t))
            return;
        ++st_.received;
        st_.bytes += text.size();
        st_.latency_us.record(
            static_cast<std::uint64_t>(std::max<std::int64_t>(0, recv_ns - t) / 1000));
        if (n == last_n + 1) {
            last_n = n;
        } else if (n > last_n + 1) {
            st_.gaps += static_cast<std::uint64_t>(n - last_n - 1);
            last_n = n;
        } else if (n == last_n) {
            ++st_.duplicates;
        } else {
            ++st_.out_of_order;
        }
    }

    // One subscriber; with --reconnect it comes back after a drop (backoff 100 ms doubling up
    // to 2 s, with jitter) and resubscribes. Its sequence position carries over, so what it
    // missed while away counts as lost.
    net::awaitable<void> subscriber(std::size_t i) {
        std::int64_t last_n = 0;
        bool ever = false;
        unsigned attempt = 0;
        std::minstd_rand rng(static_cast<unsigned>(i) + 1);
        net::steady_timer wait(ioc_);
        for (;;) {
            bool const connected = co_await subscribe_once(i, last_n, ever);
            if (connected) {
                ever = true;
                attempt = 0;
            }
            if (stop || !o_.reconnect || (!ever && attempt >= 5))
                co_return;
            auto const ceiling = std::min(2000u, 100u << std::min(attempt, 5u));
            ++attempt;
            wait.expires_after(std::chrono::milliseconds(rng() % (ceiling + 1)));
            co_await wait.async_wait(net::as_tuple(net::use_awaitable));
            if (stop)
                co_return;
        }
    }

    // Returns whether the connection was established (and so counted).
    net::awaitable<bool> subscribe_once(std::size_t i, std::int64_t& last_n, bool again) {
        tcp::socket s(ioc_);
        auto left = co_await open(s, i);
        if (!left)
            co_return false;
        if (again)
            ++st_.reconnects;
        std::string rbuf = std::move(*left);
        std::size_t used = rbuf.size();
        rbuf.resize(std::max(o_.read_buffer, used + 1024));
        rtpush::detail::frame_reader reader(64 << 20, false);
        bool subscribed = false;
        if (o_.proto == protocol::rtpush) {
            auto f = frame(subscribe_payload());
            co_await net::async_write(s, net::buffer(f), net::as_tuple(net::use_awaitable));
            subscribed = true;
            ++st_.connected;
        }
        std::string reply;
        for (;;) {
            std::size_t off = 0;
            auto const recv = now_ns();
            while (off < used) {
                rtpush::detail::frame_event ev;
                std::size_t const n = reader.read(rbuf.data() + off, used - off, ev);
                if (n == 0)
                    break;
                off += n;
                if (ev.kind == rtpush::detail::frame_event::message) {
                    if (o_.proto == protocol::socketio) {
                        auto const p = ev.payload;
                        if (p.starts_with("0"))
                            reply += frame("40");
                        else if (p.starts_with("40") && !subscribed) {
                            reply += frame(subscribe_payload());
                            subscribed = true;
                            ++st_.connected;
                        } else if (p == "2")
                            reply += frame("3");
                        else if (p.starts_with("42"))
                            on_message(p, last_n, recv);
                    } else if (!ev.payload.starts_with("{\"type\":\"initial\"")) {
                        // a retained value from before the run is not part of it
                        on_message(ev.payload, last_n, recv);
                    }
                } else if (ev.kind == rtpush::detail::frame_event::ping) {
                    std::string f;
                    rtpush::detail::append_frame(f, rtpush::detail::opcode::pong, ev.payload, true,
                                                 0x1a2b3c4d);
                    reply += f;
                } else if (ev.kind == rtpush::detail::frame_event::close ||
                           ev.kind == rtpush::detail::frame_event::fail) {
                    used = 0;
                    goto closed;
                }
            }
            if (off > 0) {
                std::memmove(rbuf.data(), rbuf.data() + off, used - off);
                used -= off;
            }
            if (!reply.empty()) {
                co_await net::async_write(s, net::buffer(reply), net::as_tuple(net::use_awaitable));
                reply.clear();
            }
            if (used == rbuf.size())
                rbuf.resize(rbuf.size() * 2);
            auto [ec, n] =
                co_await s.async_read_some(net::buffer(rbuf.data() + used, rbuf.size() - used),
                                           net::as_tuple(net::use_awaitable));
            if (ec || stop)
                break;
            used += n;
        }
    closed:
        if (!stop)
            ++st_.disconnects;
        if (subscribed)
            --st_.connected;
        co_return true;
    }

    std::string publish_payload(std::uint64_t n, std::size_t pad) const {
        std::string data = "{\"n\":" + std::to_string(n) + ",\"t\":" + std::to_string(now_ns()) +
                           ",\"pad\":\"" + std::string(pad, 'x') + "\"}";
        if (o_.proto == protocol::socketio)
            return "42[\"publish\",{\"channel\":\"" + o_.channel + "\",\"data\":" + data + "}]";
        std::string scope;
        if (!o_.org.empty()) {
            scope = ",\"scope\":{\"org\":\"" + o_.org + "\"";
            if (!o_.dept.empty())
                scope += ",\"dept\":\"" + o_.dept + "\"";
            if (!o_.queue.empty())
                scope += ",\"queue\":\"" + o_.queue + "\"";
            scope += "}";
        }
        return "{\"type\":\"publish\",\"channel\":\"" + o_.channel + "\"" + scope +
               ",\"data\":" + data + "}";
    }

    // The same message as publish_payload, as a POST /api/broadcast request.
    std::string http_request(std::uint64_t n, std::size_t pad) const {
        boost::json::object b;
        b["channel"] = o_.channel;
        boost::json::object target;
        if (!o_.org.empty())
            target["organization_id"] = o_.org;
        if (!o_.dept.empty())
            target["department_id"] = o_.dept;
        if (!o_.queue.empty())
            target["queue_name"] = o_.queue;
        b["target"] = std::move(target);
        std::string const head = boost::json::serialize(b);
        // {"n":..,"t":..} is spliced in last so that `t` is taken as late as possible
        std::string body =
            head.substr(0, head.size() - 1) + ",\"data\":{\"n\":" + std::to_string(n) +
            ",\"t\":" + std::to_string(now_ns()) + ",\"pad\":\"" + std::string(pad, 'x') + "\"}}";
        std::string req = "POST /api/broadcast HTTP/1.1\r\nHost: " + o_.host + ":" +
                          std::to_string(o_.port) +
                          "\r\nContent-Type: application/json\r\nUser-Agent: rtload\r\n";
        if (!o_.api_key.empty())
            req += "X-API-Key: " + o_.api_key + "\r\n";
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        return req + body;
    }

    // Reads the answers of the pipelined requests: counts errors and frees window room.
    net::awaitable<void> http_responses(tcp::socket& s, std::size_t& in_flight, bool& broken,
                                        std::deque<clock_type::time_point>& sent_at) {
        std::string buf;
        for (;;) {
            auto const end = buf.find("\r\n\r\n");
            if (end == std::string::npos) {
                std::size_t const used = buf.size();
                buf.resize(used + 16384);
                auto [ec, n] = co_await s.async_read_some(net::buffer(buf.data() + used, 16384),
                                                          net::as_tuple(net::use_awaitable));
                buf.resize(used + (ec ? 0 : n));
                if (ec) {
                    broken = true;
                    co_return;
                }
                continue;
            }
            std::int64_t length = 0;
            std::string_view const head(buf.data(), end);
            if (auto const p = head.find("Content-Length: "); p != std::string_view::npos)
                find_int(head.substr(p), "Content-Length: ", length);
            std::size_t const total = end + 4 + static_cast<std::size_t>(length);
            if (buf.size() < total) {
                std::size_t const used = buf.size();
                buf.resize(total);
                auto [ec, n] =
                    co_await net::async_read(s, net::buffer(buf.data() + used, total - used),
                                             net::as_tuple(net::use_awaitable));
                if (ec) {
                    broken = true;
                    co_return;
                }
            }
            if (!sent_at.empty()) { // answers come in the order of the pipelined requests
                st_.answer_us.record(static_cast<std::uint64_t>(
                    std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() -
                                                                          sent_at.front())
                        .count()));
                sent_at.pop_front();
            }
            if (buf.compare(0, 12, "HTTP/1.1 200") == 0) {
                ++accepted_;
            } else {
                if (st_.publish_errors++ == 0) {
                    std::string const status = buf.substr(0, buf.find("\r\n"));
                    std::string const body = buf.substr(end + 4, total - end - 4);
                    std::string advice =
                        "  POST /api/broadcast was refused; check the channel and --scope";
                    if (status.find(" 401") != std::string::npos ||
                        status.find(" 403") != std::string::npos)
                        advice = "  pass the server's admin key with --api-key (rtd --admin-key), "
                                 "or use --publish-via ws against an rtd with --allow-publish";
                    else if (status.find(" 404") != std::string::npos)
                        advice = "  this server has no POST /api/broadcast: use --publish-via ws";
                    refuse(status + " " + body, advice);
                    if (stop)
                        co_return;
                    std::cerr << "rtload: broadcast refused: " << buf.substr(0, total) << "\n";
                }
            }
            if (in_flight > 0)
                --in_flight;
            buf.erase(0, total);
        }
    }

    // --publish-via http: the same schedule as publisher(), as pipelined POST /api/broadcast
    // requests on one keep-alive connection (at most 256 unanswered). A dropped connection is
    // opened again; requests that were unanswered then count as publish errors.
    net::awaitable<void> http_publisher() {
        std::size_t const overhead = publish_payload(0, 0).size();
        std::size_t const pad = o_.size > overhead ? o_.size - overhead : 0;
        net::steady_timer t(ioc_);
        auto const start = clock_type::now();
        auto const end = start + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(o_.duration));
        std::uint64_t sent = 0;
        std::string batch;
        std::optional<tcp::socket> s;
        // shared with the reader coroutine of the current connection
        auto in_flight = std::make_shared<std::size_t>(0);
        auto broken = std::make_shared<bool>(true);
        auto sent_at = std::make_shared<std::deque<clock_type::time_point>>();
        while (clock_type::now() < end && !stop) {
            if (*broken) {
                if (s) {
                    boost::system::error_code ec;
                    s->close(ec);
                    st_.publish_errors += *in_flight;
                }
                s.emplace(ioc_);
                in_flight = std::make_shared<std::size_t>(0);
                broken = std::make_shared<bool>(false);
                sent_at = std::make_shared<std::deque<clock_type::time_point>>();
                tcp::endpoint target = target_;
                if (o_.publish_port != 0)
                    target.port(o_.publish_port);
                auto [ec] = co_await s->async_connect(target, net::as_tuple(net::use_awaitable));
                if (ec) {
                    *broken = true;
                    t.expires_after(std::chrono::milliseconds(100));
                    co_await t.async_wait(net::as_tuple(net::use_awaitable));
                    continue;
                }
                boost::system::error_code oec;
                s->set_option(tcp::no_delay(true), oec);
                auto reader = [this, sock = &*s, in_flight, broken,
                               sent_at]() -> net::awaitable<void> {
                    co_await http_responses(*sock, *in_flight, *broken, *sent_at);
                };
                net::co_spawn(ioc_, reader, [](std::exception_ptr) {});
            }
            double const elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
            auto const due = static_cast<std::uint64_t>(elapsed * o_.publish_rate);
            batch.clear();
            auto const now = clock_type::now();
            while (sent < due && *in_flight < 256) {
                ++sent;
                ++*in_flight;
                batch += http_request(sent, pad);
                sent_at->push_back(now);
            }
            if (!batch.empty()) {
                auto [ec, n] = co_await net::async_write(*s, net::buffer(batch),
                                                         net::as_tuple(net::use_awaitable));
                if (ec)
                    *broken = true;
                st_.published = sent;
            }
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        // the answers of the last requests
        auto const settle = clock_type::now() + std::chrono::seconds(5);
        while (*in_flight > 0 && !*broken && !stop && clock_type::now() < settle) {
            t.expires_after(std::chrono::milliseconds(5));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        publishing_done = true;
        while (!stop) {
            t.expires_after(std::chrono::milliseconds(50));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        if (s) {
            boost::system::error_code ec;
            s->close(ec);
        }
    }

    // Publishes at the configured rate for the duration, in 1 ms ticks.
    net::awaitable<void> publisher() {
        if (o_.publish_http) {
            co_await http_publisher();
            co_return;
        }
        tcp::socket s(ioc_);
        auto left = co_await open(s, o_.clients);
        if (!left) {
            std::cerr << "rtload: publisher could not connect\n";
            publishing_done = true;
            co_return;
        }
        // Drain whatever the server sends the publisher (acks, heartbeats), answer pings.
        // Bytes that came with the handshake answer (Socket.IO's open packet) go first.
        std::string first = std::move(*left);
        auto drain_reader = [this, &s, first]() -> net::awaitable<void> {
            std::string buf = first;
            buf.resize(std::max<std::size_t>(65536, first.size() * 2));
            rtpush::detail::frame_reader reader(64 << 20, false);
            std::size_t used = first.size();
            for (;;) {
                std::size_t off = 0;
                while (off < used) {
                    rtpush::detail::frame_event ev;
                    auto const k = reader.read(buf.data() + off, used - off, ev);
                    if (k == 0)
                        break;
                    off += k;
                    if (ev.kind == rtpush::detail::frame_event::message) {
                        if (ev.payload.starts_with("{\"type\":\"published\""))
                            ++accepted_;
                        if (ev.payload.find("\"error\"") != std::string_view::npos &&
                            st_.publish_errors++ == 0) {
                            refuse(ev.payload,
                                   ev.payload.find("RATE_LIMIT_EXCEEDED") != std::string_view::npos
                                       ? "  start rtd with --max-messages-per-second 0 (one "
                                         "connection publishes more than a client may send), or "
                                         "publish with --publish-via http (POST /api/broadcast)"
                                       : "  start rtd with --allow-publish (or give the publisher "
                                         "a token that allows publishing), or publish with "
                                         "--publish-via http (POST /api/broadcast, the default)");
                            if (stop)
                                co_return;
                        }
                        if (o_.proto == protocol::socketio && ev.payload == "2") {
                            auto f = frame("3");
                            co_await net::async_write(s, net::buffer(f),
                                                      net::as_tuple(net::use_awaitable));
                        } else if (o_.proto == protocol::socketio && ev.payload.starts_with("40")) {
                            publisher_ready_ = true; // namespace connected: emits now count
                        } else if (o_.proto == protocol::socketio && ev.payload.starts_with("0")) {
                            auto f = frame("40");
                            co_await net::async_write(s, net::buffer(f),
                                                      net::as_tuple(net::use_awaitable));
                        }
                    }
                }
                std::memmove(buf.data(), buf.data() + off, used - off);
                used -= off;
                if (used == buf.size())
                    buf.resize(buf.size() * 2);
                auto [ec, n] =
                    co_await s.async_read_some(net::buffer(buf.data() + used, buf.size() - used),
                                               net::as_tuple(net::use_awaitable));
                if (ec)
                    co_return;
                used += n;
            }
        };
        net::co_spawn(ioc_, drain_reader, [](std::exception_ptr) {});
        if (o_.proto == protocol::socketio) {
            // Socket.IO drops events sent before the namespace connect ("40") is acknowledged.
            net::steady_timer w(ioc_);
            auto const give_up = clock_type::now() + std::chrono::seconds(10);
            while (!publisher_ready_ && clock_type::now() < give_up) {
                w.expires_after(std::chrono::milliseconds(5));
                co_await w.async_wait(net::as_tuple(net::use_awaitable));
            }
        }
        std::size_t const overhead = publish_payload(0, 0).size();
        std::size_t const pad = o_.size > overhead ? o_.size - overhead : 0;
        net::steady_timer t(ioc_);
        auto const start = clock_type::now();
        auto const end = start + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(o_.duration));
        std::uint64_t sent = 0;
        std::string batch;
        while (clock_type::now() < end && !stop) {
            double const elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
            auto const due = static_cast<std::uint64_t>(elapsed * o_.publish_rate);
            batch.clear();
            while (sent < due) {
                ++sent;
                batch += frame(publish_payload(sent, pad));
            }
            if (!batch.empty()) {
                auto [ec, n] = co_await net::async_write(s, net::buffer(batch),
                                                         net::as_tuple(net::use_awaitable));
                if (ec) {
                    std::cerr << "rtload: publisher write failed: " << ec.message() << "\n";
                    break;
                }
                st_.published = sent;
            }
            t.expires_after(std::chrono::milliseconds(1));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        publishing_done = true;
        // keep the connection until the end of the run
        while (!stop) {
            t.expires_after(std::chrono::milliseconds(50));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        boost::system::error_code ec;
        s.close(ec);
    }

    net::awaitable<void> handshake_worker(std::size_t id, std::size_t& remaining) {
        std::size_t i = id;
        while (remaining > 0 && !stop) {
            --remaining;
            tcp::socket s(ioc_);
            auto left = co_await open(s, i);
            i += o_.concurrency;
            if (left) {
                // abortive close: no TIME_WAIT pile-up on either side
                boost::system::error_code ec;
                s.set_option(net::socket_base::linger(true, 0), ec);
            }
            boost::system::error_code ec;
            s.close(ec);
        }
    }

private:
    net::io_context& ioc_;
    options o_;
    tcp::endpoint target_;
    unsigned source_base_ = 0;
    stats st_;
};

std::string fmt(double v, int prec = 1) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", prec, v);
    return b;
}

} // namespace

int main(int argc, char** argv) {
    po::options_description desc("rtload: WebSocket fan-out load generator (rtpush " +
                                 std::string(rtpush::version_string) +
                                 ")\n\nUsage: rtload --clients 1000 [options]\n\nOptions");
    std::string url = "ws://127.0.0.1:3001/ws", proto = "rtpush", scope, duration = "10s",
                ramp = "2000/s", rate = "0", drain = "2s", via = "auto";
    options o;
    // clang-format off
    desc.add_options()
        ("help,h", "show this help")
        ("url", po::value(&url)->default_value(url), "server WebSocket URL (ws://host:port/path)")
        ("protocol", po::value(&proto)->default_value(proto), "rtpush | socketio (Engine.IO v4 over WebSocket)")
        ("clients,c", po::value(&o.clients)->default_value(o.clients), "subscriber connections")
        ("channel", po::value(&o.channel)->default_value(o.channel), "channel to subscribe and publish to")
        ("scope", po::value(&scope), "org[/dept[/queue]]")
        ("duration,d", po::value(&duration)->default_value(duration), "publishing (or holding) time, e.g. 30s")
        ("ramp", po::value(&ramp)->default_value(ramp), "new connections per second")
        ("publish-rate", po::value(&rate)->default_value(rate), "publications per second (each reaches every subscriber)")
        ("size", po::value(&o.size)->default_value(o.size), "bytes of each published message")
        ("publish-via", po::value(&via)->default_value(via), "http (POST /api/broadcast, keep-alive, pipelined; accepted by a default rtd) | ws (the `publish` message; rtd needs --allow-publish) | auto (http with --protocol rtpush, ws with socketio). A refused first publication stops the run at once")
        ("api-key", po::value(&o.api_key), "X-API-Key for --publish-via http (rtd --admin-key)")
        ("reconnect", "subscribers that drop reconnect and resubscribe (backoff 0.1-2 s); counted as reconnects")
        ("publish-port", po::value(&o.publish_port)->default_value(0), "publish on this port of the same host (another node: cross-node delivery); 0 = --url's")
        ("drain", po::value(&drain)->default_value(drain), "wait after publishing for deliveries in flight")
        ("handshakes", po::value(&o.handshakes)->default_value(0), "handshake test: open and close this many connections")
        ("concurrency", po::value(&o.concurrency)->default_value(o.concurrency), "handshakes in flight")
        ("server-pid", po::value(&o.server_pid)->default_value(0), "report this process's CPU time and RSS")
        ("sources", po::value(&o.sources)->default_value(0), "loopback source addresses (127.0.0.2...); 0 = auto")
        ("read-buffer", po::value(&o.read_buffer)->default_value(0), "bytes per connection read buffer; 0 = auto")
        ("json", po::value(&o.json_out), "write the report as JSON to this file")
        ("quiet,q", "no progress line");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
        if (vm.count("help")) {
            std::cout << desc << "\n";
            return 0;
        }
        boost::system::error_code ec;
        std::string rest = url;
        if (rest.rfind("ws://", 0) != 0)
            throw std::invalid_argument("--url must start with ws://");
        rest = rest.substr(5);
        auto const slash = rest.find('/');
        o.path = slash == std::string::npos ? "/" : rest.substr(slash);
        auto const hostport = rest.substr(0, slash);
        auto const colon = hostport.rfind(':');
        o.host = hostport.substr(0, colon);
        o.port = colon == std::string::npos
                     ? 80
                     : static_cast<std::uint16_t>(std::stoul(hostport.substr(colon + 1)));
        if (o.host == "localhost")
            o.host = "127.0.0.1";
        net::ip::make_address(o.host, ec);
        if (ec)
            throw std::invalid_argument("--url host must be an IP address or localhost");
        if (proto == "rtpush")
            o.proto = protocol::rtpush;
        else if (proto == "socketio")
            o.proto = protocol::socketio;
        else
            throw std::invalid_argument("--protocol is rtpush or socketio");
        if (via == "auto")
            via = o.proto == protocol::rtpush ? "http" : "ws";
        if (via != "ws" && via != "http")
            throw std::invalid_argument("--publish-via is http, ws or auto");
        o.publish_http = via == "http";
        o.reconnect = vm.count("reconnect") > 0;
        if (!scope.empty()) {
            std::istringstream ss(scope);
            std::getline(ss, o.org, '/');
            std::getline(ss, o.dept, '/');
            std::getline(ss, o.queue, '/');
        }
        o.duration = parse_seconds(duration);
        o.ramp = parse_rate(ramp);
        o.publish_rate = parse_rate(rate);
        o.drain = parse_seconds(drain);
        o.quiet = vm.count("quiet") || !isatty(STDERR_FILENO);
        if (o.ramp <= 0)
            throw std::invalid_argument("--ramp must be positive");
    } catch (std::exception const& e) {
        std::cerr << "rtload: " << e.what() << "\nTry 'rtload --help'.\n";
        return 2;
    }
    rtpush::detail::raise_fd_limit(std::max(o.clients, o.concurrency) + 16);

    net::io_context ioc(1);
    load l(ioc, o);
    auto& st = l.st();
    auto const self0 = self_usage();
    std::optional<proc_sample> srv0, srv1;
    boost::json::object report;
    report["tool"] = "rtload";
    report["version"] = rtpush::version_string;
    report["url"] = url;
    report["protocol"] = proto;

    if (o.handshakes > 0) {
        std::size_t remaining = o.handshakes;
        auto const t0 = clock_type::now();
        for (std::size_t w = 0; w < o.concurrency; ++w) {
            auto worker = [&l, w, &remaining] {
                return l.handshake_worker(w, remaining);
            };
            net::co_spawn(ioc, worker(), [](std::exception_ptr) {});
        }
        ioc.run();
        double const secs = std::chrono::duration<double>(clock_type::now() - t0).count();
        double const rate_hs = static_cast<double>(st.handshakes) / secs;
        std::printf("handshakes %llu in %.2f s: %.0f/s (concurrency %zu), failures %llu connect + "
                    "%llu upgrade\n",
                    static_cast<unsigned long long>(st.handshakes), secs, rate_hs, o.concurrency,
                    static_cast<unsigned long long>(st.connect_failures),
                    static_cast<unsigned long long>(st.handshake_failures));
        report["handshakes"] = st.handshakes;
        report["handshakes_per_second"] = rate_hs;
        report["connect_failures"] = st.connect_failures;
        report["handshake_failures"] = st.handshake_failures;
        if (!o.json_out.empty())
            std::ofstream(o.json_out) << boost::json::serialize(report) << "\n";
        return st.handshakes == o.handshakes ? 0 : 1;
    }

    // Ramp the subscribers up.
    auto const t_start = clock_type::now();
    auto ramp_task = [&]() -> net::awaitable<void> {
        net::steady_timer t(ioc);
        for (std::size_t i = 0; i < o.clients; ++i) {
            auto const due =
                t_start + std::chrono::duration_cast<clock_type::duration>(
                              std::chrono::duration<double>(static_cast<double>(i) / o.ramp));
            if (due > clock_type::now()) {
                t.expires_at(due);
                co_await t.async_wait(net::as_tuple(net::use_awaitable));
            }
            auto sub = [&l, i] {
                return l.subscriber(i);
            };
            net::co_spawn(ioc, sub(), [](std::exception_ptr) {});
        }
    };
    net::co_spawn(ioc, ramp_task, [](std::exception_ptr) {});

    // Control: wait for the subscribers, publish (or hold), drain, report progress.
    double handshake_rate = 0, connect_secs = 0, run_secs = 0;
    std::uint64_t rx_at_start = 0;
    auto control = [&]() -> net::awaitable<void> {
        net::steady_timer t(ioc);
        auto const give_up =
            t_start +
            std::chrono::duration_cast<clock_type::duration>(
                std::chrono::duration<double>(static_cast<double>(o.clients) / o.ramp + 30.0));
        while (st.connected + st.connect_failures + st.handshake_failures < o.clients &&
               clock_type::now() < give_up) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        connect_secs = std::chrono::duration<double>(clock_type::now() - t_start).count();
        handshake_rate = static_cast<double>(st.handshakes) / std::max(connect_secs, 1e-9);
        // let subscriptions settle before the first publication
        t.expires_after(std::chrono::milliseconds(300));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        if (o.server_pid)
            srv0 = sample_process(o.server_pid);
        rx_at_start = st.received;
        st.latency_us.reset();
        auto const t_pub = clock_type::now();
        if (o.publish_rate > 0) {
            auto pub = [&l] {
                return l.publisher();
            };
            net::co_spawn(ioc, pub(), [](std::exception_ptr) {});
        }
        auto const pub_end = t_pub + std::chrono::duration_cast<clock_type::duration>(
                                         std::chrono::duration<double>(o.duration));
        std::uint64_t last_rx = st.received;
        auto last_t = clock_type::now();
        while (clock_type::now() < pub_end || (o.publish_rate > 0 && !l.publishing_done)) {
            t.expires_after(std::chrono::milliseconds(1000));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
            auto const now = clock_type::now();
            double const rate_now = static_cast<double>(st.received - last_rx) /
                                    std::chrono::duration<double>(now - last_t).count();
            last_rx = st.received;
            last_t = now;
            if (!o.quiet)
                std::fprintf(stderr,
                             "\rconns %zu/%zu | rx %.0f msg/s | p99 %.2f ms | gaps %llu | "
                             "reconnects %llu   ",
                             st.connected, o.clients, rate_now,
                             static_cast<double>(st.latency_us.quantile(0.99)) / 1000.0,
                             static_cast<unsigned long long>(st.gaps),
                             static_cast<unsigned long long>(st.reconnects));
        }
        // the server sample ends with publishing; deliveries in flight drain afterwards
        run_secs = std::chrono::duration<double>(clock_type::now() - t_pub).count();
        if (o.server_pid)
            srv1 = sample_process(o.server_pid);
        auto const drain_end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                       std::chrono::duration<double>(o.drain));
        while (clock_type::now() < drain_end &&
               (o.publish_rate == 0 || st.received - rx_at_start < st.published * st.connected)) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        if (!o.quiet)
            std::fprintf(stderr, "\n");
        l.stop = true;
        ioc.stop();
    };
    net::co_spawn(ioc, control, [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    ioc.run();
    if (!l.refused.empty()) {
        std::cerr << "rtload: " << l.refused << "\n";
        return 2;
    }

    auto const self1 = self_usage();
    std::uint64_t const rx = st.received - rx_at_start;
    std::uint64_t const expected = st.published * st.connected;
    std::uint64_t const lost = expected > rx ? expected - rx : 0;
    // Deliveries per second over the publishing window (what was offered), not the drain.
    double const window =
        o.publish_rate > 0 ? static_cast<double>(st.published) / o.publish_rate : run_secs;
    double const deliveries_per_s = static_cast<double>(rx) / std::max(window, 1e-9);
    auto const& h = st.latency_us;
    auto ms = [](std::uint64_t us) {
        return static_cast<double>(us) / 1000.0;
    };

    std::printf("rtload %s  %s  protocol %s\n", rtpush::version_string, url.c_str(), proto.c_str());
    std::printf("  connections   %zu of %zu connected in %.2f s (%.0f handshakes/s), %llu connect "
                "+ %llu upgrade failures, %llu dropped, %llu reconnects\n",
                st.connected, o.clients, connect_secs, handshake_rate,
                static_cast<unsigned long long>(st.connect_failures),
                static_cast<unsigned long long>(st.handshake_failures),
                static_cast<unsigned long long>(st.disconnects),
                static_cast<unsigned long long>(st.reconnects));
    std::printf("  published     %llu messages of %zu bytes at %.0f/s over %.2f s via %s, %llu "
                "errors\n",
                static_cast<unsigned long long>(st.published), o.size, o.publish_rate, run_secs,
                o.publish_http ? "HTTP" : "WebSocket",
                static_cast<unsigned long long>(st.publish_errors));
    std::printf("  delivered     %llu (%.0f deliveries/s), expected %llu, lost %llu, duplicates "
                "%llu, out of order %llu\n",
                static_cast<unsigned long long>(rx), deliveries_per_s,
                static_cast<unsigned long long>(expected), static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(st.duplicates),
                static_cast<unsigned long long>(st.out_of_order));
    std::printf("  latency ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
                ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
                ms(h.quantile(0.999)), ms(h.max()));
    double const self_cpu = (self1.user + self1.sys) - (self0.user + self0.sys);
    std::printf(
        "  rtload itself CPU %.2f s (%.0f%% of one core), max RSS %ld MiB\n", self_cpu,
        100.0 * self_cpu /
            std::max(std::chrono::duration<double>(clock_type::now() - t_start).count(), 1e-9),
        self1.rss_kib / 1024);
    report["clients"] = o.clients;
    report["connected"] = st.connected;
    report["connect_seconds"] = connect_secs;
    report["handshakes_per_second"] = handshake_rate;
    report["connect_failures"] = st.connect_failures;
    report["handshake_failures"] = st.handshake_failures;
    report["disconnects"] = st.disconnects;
    report["reconnects"] = st.reconnects;
    report["publish_via"] = o.publish_http ? "http" : "ws";
    report["publish_errors"] = st.publish_errors;
    report["published"] = st.published;
    report["publish_rate"] = o.publish_rate;
    report["size"] = o.size;
    report["seconds"] = run_secs;
    report["delivered"] = rx;
    report["deliveries_per_second"] = deliveries_per_s;
    report["expected"] = expected;
    report["lost"] = lost;
    report["duplicates"] = st.duplicates;
    report["out_of_order"] = st.out_of_order;
    boost::json::object lat;
    lat["p50"] = ms(h.quantile(0.5));
    lat["p90"] = ms(h.quantile(0.9));
    lat["p99"] = ms(h.quantile(0.99));
    lat["p999"] = ms(h.quantile(0.999));
    lat["max"] = ms(h.max());
    report["latency_ms"] = lat;
    if (st.answer_us.count()) {
        // How long the server took to answer a publication (with rtd --data-dir: its commit).
        auto const& a = st.answer_us;
        std::printf(
            "  answers ms    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f (POST /api/broadcast)\n",
            ms(a.quantile(0.5)), ms(a.quantile(0.9)), ms(a.quantile(0.99)), ms(a.max()));
        boost::json::object ans;
        ans["p50"] = ms(a.quantile(0.5));
        ans["p90"] = ms(a.quantile(0.9));
        ans["p99"] = ms(a.quantile(0.99));
        ans["max"] = ms(a.max());
        report["publish_answer_ms"] = ans;
    }
    report["rtload_cpu_seconds"] = self_cpu;
    if (srv0 && srv1) {
        double const user = srv1->user - srv0->user, sys = srv1->sys - srv0->sys;
        double const d = static_cast<double>(std::max<std::uint64_t>(rx, 1));
        std::printf("  server        CPU user %.2f s + sys %.2f s = %.2f us/delivery (user %.2f "
                    "us), RSS %ld KiB\n",
                    user, sys, 1e6 * (user + sys) / d, 1e6 * user / d, srv1->rss_kib);
        report["server_cpu_user_seconds"] = user;
        report["server_cpu_sys_seconds"] = sys;
        report["server_cpu_us_per_delivery"] = 1e6 * (user + sys) / d;
        report["server_user_us_per_delivery"] = 1e6 * user / d;
        report["server_rss_kib"] = srv1->rss_kib;
    } else if (o.server_pid) {
        if (auto s = sample_process(o.server_pid))
            report["server_rss_kib"] = s->rss_kib;
    }
    if (!o.json_out.empty())
        std::ofstream(o.json_out) << boost::json::serialize(report) << "\n";
    bool const ok = st.connected == o.clients && lost == 0;
    return ok ? 0 : 1;
}
