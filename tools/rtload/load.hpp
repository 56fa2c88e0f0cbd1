// rtload: the load itself: subscribers, publishers and handshakes on one io_context.
#ifndef RTLOAD_LOAD_HPP
#define RTLOAD_LOAD_HPP

#include "measure.hpp"

#include <algorithm>
#include <cmath>

namespace rtload {

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

    /// When the publishers send: `rate` a second for `duration`, rate x duration in all. A
    /// publisher is a pass a millisecond; one that the machine starves near the end still
    /// sends what was due (the count is the run's, not the scheduler's), given up on 2 s
    /// after the end (a server that stopped answering).
    class publish_schedule {
    public:
        publish_schedule(double rate, double duration)
            : rate_(rate)
            , total_(static_cast<std::uint64_t>(std::llround(rate * duration)))
            , start_(clock_type::now())
            , end_(start_ + std::chrono::duration_cast<clock_type::duration>(
                                std::chrono::duration<double>(duration))) {}

        bool going(std::uint64_t sent) const {
            auto const now = clock_type::now();
            return now < end_ || (sent < total_ && now < end_ + std::chrono::seconds(2));
        }
        std::uint64_t due() const {
            double const elapsed =
                std::chrono::duration<double>(clock_type::now() - start_).count();
            return std::min(total_, static_cast<std::uint64_t>(elapsed * rate_));
        }

    private:
        double rate_;
        std::uint64_t total_;
        clock_type::time_point start_, end_;
    };

    // --publish-via http: the same schedule as publisher(), as pipelined POST /api/broadcast
    // requests on one keep-alive connection (at most 256 unanswered). A dropped connection is
    // opened again; requests that were unanswered then count as publish errors.
    net::awaitable<void> http_publisher() {
        std::size_t const overhead = publish_payload(0, 0).size();
        std::size_t const pad = o_.size > overhead ? o_.size - overhead : 0;
        net::steady_timer t(ioc_);
        publish_schedule const schedule(o_.publish_rate, o_.duration);
        std::uint64_t sent = 0;
        std::string batch;
        std::optional<tcp::socket> s;
        // shared with the reader coroutine of the current connection
        auto in_flight = std::make_shared<std::size_t>(0);
        auto broken = std::make_shared<bool>(true);
        auto sent_at = std::make_shared<std::deque<clock_type::time_point>>();
        while (!stop && schedule.going(sent)) {
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
            auto const due = schedule.due();
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
        publish_schedule const schedule(o_.publish_rate, o_.duration);
        std::uint64_t sent = 0;
        std::string batch;
        while (!stop && schedule.going(sent)) {
            auto const due = schedule.due();
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

    /// The local addresses a loopback run spreads its connections over (host order); empty
    /// when the server is not on loopback.
    std::vector<std::uint32_t> source_addresses() const {
        std::vector<std::uint32_t> out;
        if (o_.host.rfind("127.", 0) == 0)
            for (int k = 0; k < o_.sources; ++k)
                out.push_back(source_base_ + static_cast<unsigned>(k));
        return out;
    }
    const tcp::endpoint& target() const noexcept { return target_; }

private:
    net::io_context& ioc_;
    options o_;
    tcp::endpoint target_;
    unsigned source_base_ = 0;
    stats st_;
};

} // namespace rtload

#endif
