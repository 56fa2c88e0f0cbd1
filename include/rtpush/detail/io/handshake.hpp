//
// rtpush: the handshake. A connection from its accept to its session: the request wait, the
// upgrade answered within one handler, the coroutine for everything else (partial requests,
// REST keep-alive, TLS, SSE), admission (detail/admission.hpp) and the start of the WebSocket
// session or the SSE stream. Included by impl/server.hpp.
//
#ifndef RTPUSH_DETAIL_IO_HANDSHAKE_HPP
#define RTPUSH_DETAIL_IO_HANDSHAKE_HPP

#include <rtpush/detail/io/async_hub.hpp>
#include <rtpush/detail/io/server_impl.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include <sys/socket.h>

namespace rtpush::detail {

/// The peer's address, and "address:port" as logs and /api/connections show it.
struct peer_address {
    std::string ip;
    std::string remote;
};
inline peer_address peer_of(const boost::asio::ip::tcp::endpoint& ep) {
    auto ip = ep.address().to_string();
    auto remote = ip + ":" + std::to_string(ep.port());
    return {std::move(ip), std::move(remote)};
}
inline peer_address peer_of(const boost::asio::ip::tcp::socket& sock) {
    boost::system::error_code ec;
    auto const ep = sock.remote_endpoint(ec);
    if (ec)
        return {};
    auto ip = ep.address().to_string();
    auto remote = ip + ":" + std::to_string(ep.port());
    return {std::move(ip), std::move(remote)};
}

inline std::string server_impl::request_token(const http_request& req, const query_map& query,
                                              std::optional<jwt_claims>& claims) const {
    // A token at the handshake (browsers cannot set headers on a WebSocket: hence ?token=)
    // authenticates the connection from its first byte. A bad one refuses the upgrade; none
    // leaves the `authenticate` message.
    std::string token(bearer_token(req[boost::beast::http::field::authorization]));
    if (token.empty())
        if (auto it = query.find("token"); it != query.end())
            token = it->second;
    if (token.empty() || cfg_.jwt_secret.empty())
        return {};
    jwt_claims c;
    std::string why;
    if (jwt_verifier(cfg_.jwt_secret, cfg_.jwt_leeway).verify(token, c, why))
        return why;
    claims = std::move(c);
    return {};
}

inline bool server_impl::handshake_allowed(const std::string& ip) {
    if (cfg_.max_handshakes_per_ip <= 0)
        return true;
    std::lock_guard<std::mutex> lock(handshake_mutex_);
    return handshake_limiter_.try_take(ip, std::chrono::steady_clock::now());
}

inline void server_impl::accept_connection(boost::asio::ip::tcp::socket socket,
                                           http_request request, std::string buffered) {
    namespace net = boost::asio;
    if (!started_ || stopping_) {
        boost::system::error_code ec;
        socket.close(ec);
        return;
    }
    // The socket belongs to the caller's io_context: move its descriptor to one of ours.
    // Not from our listener: TCP_NODELAY is set here (ours inherit the listener's).
    boost::system::error_code ec;
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    auto const protocol = socket.local_endpoint(ec).protocol();
    if (ec) {
        socket.close(ec);
        return;
    }
    auto const fd = socket.release(ec);
    if (ec) {
        socket.close(ec);
        return;
    }
    auto& sh = *shards_[next_shard_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
    // Registering a descriptor with another io_context is thread-safe; the socket object is
    // then only touched on that context's thread.
    net::ip::tcp::socket sock(sh.get_executor());
    sock.assign(protocol, fd, ec);
    if (ec) {
        close_native(fd);
        return;
    }
    shard* sp = &sh;
    net::post(sh.get_executor(), [this, sp, sock = std::move(sock), req = std::move(request),
                                  rest = std::move(buffered)]() mutable {
        if (sp->stopping)
            return; // closed with `sock`
        spawn_connection(*sp,
                         handle_connection(*sp, std::move(sock), std::move(req), std::move(rest)));
    });
}

inline void server_impl::await_request(shard& sh, unique_fd fd,
                                       const boost::asio::ip::tcp::endpoint& peer) {
    // A client sends its request as soon as its connect returns, so under load the request
    // is usually there when the connection is accepted: read it now, without a wait. The
    // descriptor stays out of every reactor until it is a session (whose poller registration
    // is then its only epoll_ctl) or a coroutine's socket (handle_connection).
    auto& buf = sh.read_buffer();
    for (;;) {
        auto const n = ::recv(fd.get(), buf.data(), buf.size(), 0);
        if (n > 0) {
            request_now(sh, std::move(fd), peer, ::operator new(sizeof(session)),
                        static_cast<std::size_t>(n));
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        return; // EOF or reset before a request: `fd` closes
    }
    wait_for_request(sh, std::move(fd), peer);
}

inline void server_impl::wait_for_request(shard& sh, unique_fd fd,
                                          const boost::asio::ip::tcp::endpoint& peer) {
    // About 80 bytes and a poller registration while the client is silent: a connection
    // costs little until its request is there, however many arrive at once. The shard's
    // tick enforces the handshake timeout.
    if (sh.stopping)
        return;
    auto c = std::make_unique<idle_connection>();
    c->owner = &sh;
    c->fd = fd.get();
    c->peer = peer;
    c->deadline = std::chrono::steady_clock::now() + cfg_.handshake_timeout;
    void* const target = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(c.get()) | 1u);
    if (sh.poller().watch(c->fd, target, poller::readable, 0))
        return;
    fd.release();
    sh.add_idle(c.release());
}

inline void server_impl::request_now(shard& sh, unique_fd fd,
                                     const boost::asio::ip::tcp::endpoint& peer, void* block,
                                     std::size_t n) noexcept {
    try {
        handle_request_now(sh, std::move(fd), peer, block, n);
    } catch (std::exception const& e) {
        cfg_.logger.log(log_level::error, "connection_failed", {{"what", e.what()}});
    }
}

inline void server_impl::handle_request_now(shard& sh, unique_fd fd,
                                            const boost::asio::ip::tcp::endpoint& peer, void* block,
                                            std::size_t n) {
    // Nearly every WebSocket client sends its whole upgrade request in one segment. Its
    // bytes are in the shard's buffer: parse, check and answer it and start the session, all
    // in this handler: whatever the handshake allocates is freed before the next connection's
    // turn, so it leaves no holes between sessions however far behind the server is (with
    // a coroutine per handshake, a backlog of thousands in flight left their buffers
    // scattered between the sessions made meanwhile: up to 1 KiB more per connection).
    // Anything else (a partial request, REST, SSE) continues in handle_connection().
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    struct block_guard { // `block` (sizeof(session)) is freed unless the session takes it
        void* p;
        ~block_guard() {
            if (p)
                ::operator delete(p, sizeof(session));
        }
    } guard{block};
    auto& buf = sh.read_buffer(); // the request's first `n` bytes (await_request read them)
    boost::system::error_code ec;
    auto const t0 = std::chrono::steady_clock::now();
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(cfg_.max_http_body);
    parser.eager(true);
    std::size_t used = 0;
    if (n > 0)
        used = parser.put(net::buffer(buf.data(), n), ec);
    bool fast = n > 0 && !ec && parser.is_done();
    std::map<std::string, std::string> query;
    std::string path;
    if (fast) {
        auto const& req = parser.get();
        path = split_target(req.target(), query);
        fast = (websocket_path(path) || socketio_request(path, query)) &&
               header_has_token(req[http::field::connection], "upgrade") &&
               iequals(req[http::field::upgrade], "websocket");
    }
    // Anything but the one-segment upgrade goes on as a socket in Asio's reactor.
    auto as_socket = [&]() -> std::optional<net::ip::tcp::socket> {
        boost::system::error_code aec;
        net::ip::tcp::socket sock(sh.get_executor());
        sock.assign(peer.protocol(), fd.get(), aec);
        if (aec)
            return std::nullopt; // `fd` closes
        fd.release();
        return sock;
    };
    if (!fast) {
        if (auto sock = as_socket())
            spawn_connection(sh, handle_connection(sh, std::move(*sock), std::nullopt,
                                                   std::string(buf.data(), n)));
        return;
    }
    auto const& req = parser.get();
    auto const [remote_ip, remote] = peer_of(peer);
    upgrade_state up;
    if (auto refusal = upgrade_check(sh, req, true, path, query, remote, remote_ip, up)) {
        refusal->keep_alive(false);
        refusal->set(http::field::server, cfg_.server_name);
        log_access(cfg_.logger, req.method_string(), path, refusal->result_int(), t0, remote);
        // A few hundred bytes into an empty socket buffer: one non-blocking write.
        if (auto sock = as_socket()) {
            sock->non_blocking(true, ec); // never waits for a client that does not read
            http::write(*sock, *refusal, ec);
            sock->shutdown(net::ip::tcp::socket::shutdown_both, ec);
            sock->close(ec);
        }
        return;
    }
    // The 101 goes out with the session's greeting, in one gathered send (session::start).
    up.handshake = response_head(switching_protocols(req, up));
    finish_upgrade(up, query, remote, std::string(buf.data() + used, n - used));
    up.fd = std::move(fd);
    start_session(sh, up, std::exchange(guard.p, nullptr));
}

inline boost::asio::awaitable<void>
server_impl::handle_connection(shard& sh, boost::asio::ip::tcp::socket sock,
                               std::optional<http_request> first, std::string buffered) {
    // The HTTP phase runs in its own coroutine so that its buffers, parser and stream are
    // freed before the session starts: an idle subscriber keeps only what it needs.
    upgrade_state up;
    bool upgraded = false;
    if (tls_)
        upgraded = co_await tls_phase(sh, std::move(sock), up);
    else
        upgraded =
            co_await http_phase(sh, std::move(sock), up, std::move(first), std::move(buffered));
    if (!upgraded) {
        if (up.idle && up.socket)
            await_next_request(sh, std::move(*up.socket));
        co_return;
    }
    if (up.sse) {
        start_sse(sh, std::move(*up.socket), std::move(*up.sse));
        co_return;
    }
    start_session(sh, up);
}

inline void server_impl::start_session(shard& sh, upgrade_state& up, void* block) {
    if (up.socketio_upgrade && shards_[up.socketio_shard].get() != &sh) {
        // A Socket.IO upgrade runs on the shard of the polling session it takes over.
        if (block)
            ::operator delete(block, sizeof(session));
        shard* owner = shards_[up.socketio_shard].get();
        auto moved = std::make_shared<upgrade_state>(std::move(up));
        boost::asio::post(owner->get_executor(), [this, owner, moved] {
            if (owner->stopping)
                return; // the socket closes with `moved`
            try {
                start_session(*owner, *moved);
            } catch (std::exception const& e) {
                cfg_.logger.log(log_level::error, "connection_failed", {{"what", e.what()}});
            }
        });
        return;
    }
    auto const id = next_id_.fetch_add(1, std::memory_order_relaxed);
    sh.counters().accepted.fetch_add(1, std::memory_order_relaxed);
    // The session outlives this coroutine: it runs on completion handlers, registered with
    // the shard (which shutdown waits on), and deletes itself through `done` at its end
    // (`delete`: `block`, when given, is ::operator new(sizeof(session))).
    auto make = [&](void* where) {
        // The descriptor leaves its socket object (and Asio's reactor) for the session, which
        // waits through its shard's poller, whichever shard the connection came in on.
        unique_fd fd(up.fd ? up.fd.release() : session::take_descriptor(*up.socket));
        auto* made = new (where)
            session(sh, fd.get(), id, std::move(up.leftover), std::move(up.org),
                    std::move(up.remote), std::move(up.claims), std::move(up.tls), up.deflate);
        fd.release(); // the session's now (closed here if it could not be made)
        return made;
    };
    session* s = nullptr;
    if (!block)
        block = ::operator new(sizeof(session));
    try {
        s = make(block);
    } catch (...) {
        ::operator delete(block, sizeof(session));
        throw;
    }
    if (up.socketio)
        s->speak_socketio(up.socketio_upgrade, std::move(up.socketio_sid));
    else if (up.feed)
        s->speak_feed(*up.feed);
    if (cfg_.logger.enabled(log_level::info))
        cfg_.logger.log(log_level::info, "connection_open",
                        {{"client", s->client_id()},
                         {"transport", up.socketio ? "socketio" : "websocket"},
                         {"remote", s->remote()},
                         {"org", s->organization()}});
    // A function pointer and `this`, not a capturing std::function: every idle connection
    // stores it. The duration counts from the session's creation.
    s->start(
        [](void* context, session* ended) {
            auto* self = static_cast<server_impl*>(context);
            if (self->cfg_.logger.enabled(log_level::info))
                self->cfg_.logger.log(
                    log_level::info, "connection_close",
                    {{"client", ended->client_id()},
                     {"transport", ended->socketio() ? "socketio" : "websocket"},
                     {"remote", ended->remote()},
                     {"org", ended->organization()},
                     {"reason", ended->end_reason()},
                     {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - ended->opened_at())
                                         .count()}});
            delete ended;
        },
        this, std::move(up.handshake));
}

// Registers a socket in its HTTP phase with the shard (shutdown cancels it) for a scope.
struct http_socket_guard {
    shard& sh;
    boost::asio::ip::tcp::socket* s;
    http_socket_guard(shard& h, boost::asio::ip::tcp::socket* p)
        : sh(h)
        , s(p) {
        sh.http_sockets.insert(s);
    }
    http_socket_guard(const http_socket_guard&) = delete;
    http_socket_guard& operator=(const http_socket_guard&) = delete;
    ~http_socket_guard() { sh.http_sockets.erase(s); }
};

inline boost::asio::awaitable<bool>
server_impl::http_phase(shard& sh, boost::asio::ip::tcp::socket sock, upgrade_state& up,
                        std::optional<http_request> first, std::string buffered) {
    boost::beast::tcp_stream stream(std::move(sock));
    http_socket_guard guard(sh, &stream.socket());
    if (!co_await http_exchange(sh, stream, stream, up, std::move(first), std::move(buffered))) {
        if (up.idle) {
            up.socket.emplace(stream.release_socket());
            co_return false;
        }
        boost::system::error_code ec;
        stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        co_return false;
    }
    up.socket.emplace(stream.release_socket());
    co_return true;
}

inline boost::asio::awaitable<bool>
server_impl::tls_phase(shard& sh, boost::asio::ip::tcp::socket sock, upgrade_state& up) {
    namespace net = boost::asio;
    auto tls = std::make_unique<session::tls_stream>(std::move(sock), *tls_);
    auto& tcp = tls->next_layer();
    http_socket_guard guard(sh, &tcp.socket());
    // The handshake timeout covers the TLS handshake and the HTTP request after it.
    tcp.expires_after(cfg_.handshake_timeout);
    auto [ec] = co_await tls->async_handshake(net::ssl::stream_base::server,
                                              net::as_tuple(net::use_awaitable));
    if (ec) {
        // A plain-HTTP client, a client that distrusts our certificate, a slowloris: each
        // only loses its own connection.
        sh.counters().errors.fetch_add(1, std::memory_order_relaxed);
        boost::system::error_code rec;
        auto ep = tcp.socket().remote_endpoint(rec);
        cfg_.logger.log(log_level::info, "tls_handshake_failed",
                        {{"remote", rec ? std::string() : ep.address().to_string()},
                         {"what", tls_error_text(ec)}});
        tcp.socket().close(rec);
        co_return false;
    }
    if (!co_await http_exchange(sh, *tls, tcp, up, {}, {})) {
        // close_notify, so that clients see the end of the stream and not a truncation.
        if (tcp.socket().is_open() && !sh.stopping) {
            tcp.expires_after(std::min<std::chrono::milliseconds>(cfg_.handshake_timeout,
                                                                  std::chrono::seconds(2)));
            SSL_set_shutdown(tls->native_handle(), SSL_RECEIVED_SHUTDOWN); // send, not wait
            co_await tls->async_shutdown(net::as_tuple(net::use_awaitable));
        }
        boost::system::error_code ec2;
        tcp.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec2);
        co_return false;
    }
    up.tls = std::move(tls);
    up.socket.emplace(sh.get_executor()); // unused: the session talks through `tls`
    co_return true;
}

template <class Stream>
boost::asio::awaitable<bool>
server_impl::http_exchange(shard& sh, Stream& stream, boost::beast::tcp_stream& tcp,
                           upgrade_state& up, std::optional<http_request> first,
                           std::string buffered) {
    namespace net = boost::asio;
    namespace beast = boost::beast;
    namespace http = beast::http;
    auto const [remote_ip, remote] = peer_of(tcp.socket());

    beast::flat_buffer buf;
    if (!buffered.empty()) { // read by the embedding program past its request
        auto b = buf.prepare(buffered.size());
        std::memcpy(b.data(), buffered.data(), buffered.size());
        buf.commit(buffered.size());
    }
    for (;;) {
        if (sh.stopping)
            co_return false;
        tcp.expires_after(cfg_.handshake_timeout);
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(cfg_.max_http_body);
        boost::system::error_code ec;
        if (first) {
            parser.get() = std::move(*first); // read by the embedding program
            first.reset();
        } else {
            auto [rec, n] =
                co_await http::async_read(stream, buf, parser, net::as_tuple(net::use_awaitable));
            ec = rec;
        }
        auto const t0 = std::chrono::steady_clock::now();
        if (ec) {
            std::optional<http_response> res;
            if (ec == http::error::body_limit)
                res = json_error(http::status::payload_too_large, "MESSAGE_TOO_LARGE",
                                 "request body exceeds " + std::to_string(cfg_.max_http_body) +
                                     " bytes");
            else if (ec == http::error::header_limit)
                res = json_error(http::status::request_header_fields_too_large, "INVALID_MESSAGE",
                                 "request headers too large");
            else if (ec.category() == make_error_code(http::error::end_of_stream).category() &&
                     ec != http::error::end_of_stream && ec != http::error::partial_message)
                res = json_error(http::status::bad_request, "INVALID_MESSAGE",
                                 "malformed HTTP request: " + ec.message());
            if (res) {
                res->keep_alive(false);
                co_await http::async_write(stream, *res, net::as_tuple(net::use_awaitable));
            }
            break;
        }
        auto& req = parser.get();
        query_map query;
        std::string const path(split_target(req.target(), query));

        bool const upgrade = header_has_token(req[http::field::connection], "upgrade") &&
                             iequals(req[http::field::upgrade], "websocket");
        bool const socketio = socketio_request(path, query);
        if (upgrade || (websocket_path(path) && !socketio)) {
            auto refusal = upgrade_check(sh, req, upgrade, path, query, remote, remote_ip, up);
            if (refusal) {
                refusal->keep_alive(false);
                refusal->set(http::field::server, cfg_.server_name);
                log_access(cfg_.logger, req.method_string(), path, refusal->result_int(), t0,
                           remote);
                co_await http::async_write(stream, *refusal, net::as_tuple(net::use_awaitable));
                break;
            }
            auto res = switching_protocols(req, up);
            auto [wec, wn] =
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
            if (wec)
                break;
            tcp.expires_never();
            finish_upgrade(up, query, remote,
                           std::string(static_cast<const char*>(buf.data().data()), buf.size()));
            co_return true;
        }

        if (!cfg_.sse_path.empty() && path == cfg_.sse_path &&
            req.method() != http::verb::options) {
            sse_params p;
            if (auto refusal = sse_check(sh, req, query, remote, remote_ip, p)) {
                refusal->keep_alive(false);
                refusal->set(http::field::server, cfg_.server_name);
                add_cors(*refusal, req[http::field::origin], cfg_.allowed_origins);
                log_access(cfg_.logger, req.method_string(), path, refusal->result_int(), t0,
                           remote);
                co_await http::async_write(stream, *refusal, net::as_tuple(net::use_awaitable));
                break;
            }
            if constexpr (!std::is_same_v<Stream, boost::beast::tcp_stream>) {
                // An SSE stream is written by sse_session on a plain socket.
                if (sh.quotas)
                    uncount_stream(*sh.quotas, p);
                auto res = json_error(http::status::not_implemented, "INVALID_MESSAGE",
                                      "Server-Sent Events are not served over TLS yet; "
                                      "use the WebSocket endpoint");
                res.keep_alive(false);
                log_access(cfg_.logger, req.method_string(), path, res.result_int(), t0, remote);
                co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
                break;
            } else {
                // With an engine, the node must hold (and follow) the stream's channels before
                // the stream's snapshot reads them, as for a WebSocket subscription.
                if (hub_.get_engine())
                    for (auto const& t : p.topics)
                        co_await async_prepare(hub_, t.channel, std::chrono::seconds(3));
                tcp.expires_never();
                up.sse = std::move(p);
                co_return true;
            }
        }

        http_response res;
        if (req.method() == http::verb::options)
            res = preflight_response(req.version()); // CORS preflight
        else if (socketio) { // Engine.IO long-polling: a GET may wait for data
            tcp.expires_never();
            // A GET that waits parks its plain connection when nothing else is in its buffer:
            // an idle polling client then costs no coroutine, parser or buffer.
            bool const may_park = std::is_same_v<Stream, boost::beast::tcp_stream> &&
                                  buf.size() == 0 && req.method() == http::verb::get;
            std::uint64_t const park_id = may_park ? sh.reserve_park_id() : 0;
            auto answer = co_await socketio_poll(sh, req, remote, remote_ip, park_id);
            if (answer && park_id)
                sh.cancel_park(park_id);
            if (!answer && sh.stopping) { // nothing parks now: shutdown would not answer it
                sh.cancel_park(park_id);
                co_return false;
            }
            if (!answer) {
                shard::parked_poll p;
                p.keep_alive = req.keep_alive();
                p.version = req.version();
                p.since = t0;
                p.origin = std::string(req[http::field::origin]);
                p.remote = remote;
                p.path = path;
                auto sock = tcp.release_socket();
                p.v6 = sock.local_endpoint(ec).address().is_v6();
                p.fd = sock.release(ec);
                if (ec) { // the answer finds nothing parked; the client polls again
                    sh.cancel_park(park_id);
                    co_return false;
                }
                if (auto early = sh.park(park_id, std::move(p)))
                    answer_parked_poll(sh, park_id, std::move(*early));
                co_return false;
            }
            res = std::move(*answer);
        } else
            res = co_await handle(req, path, query); // the target split once
        finish_answer(sh, res, req[http::field::origin], req.keep_alive());
        if (req.method() == http::verb::head)
            res.body().clear(); // the headers (Content-Length included) of the GET, no body
        log_access(cfg_.logger, req.method_string(), path, res.result_int(), t0, remote);
        auto [wec, wn] = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
        if (wec || !res.keep_alive())
            break;
        // Nothing more read yet: the next request is waited for without this coroutine.
        if constexpr (std::is_same_v<Stream, boost::beast::tcp_stream>)
            if (buf.size() == 0 && !sh.stopping) {
                up.idle = true;
                break;
            }
    }
    co_return false;
}

inline boost::beast::http::response<boost::beast::http::empty_body>
server_impl::switching_protocols(const http_request& req, upgrade_state& up) {
    namespace http = boost::beast::http;
    auto const key = req[http::field::sec_websocket_key];
    http::response<http::empty_body> res{http::status::switching_protocols, 11};
    res.set(http::field::server, cfg_.server_name);
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::sec_websocket_accept, websocket_accept_key(key));
    if (header_has_token(req[http::field::sec_websocket_protocol], "rtpush.v1"))
        res.set(http::field::sec_websocket_protocol, "rtpush.v1");
    if (cfg_.permessage_deflate)
        if (auto ext = negotiate_deflate(req[http::field::sec_websocket_extensions])) {
            res.set(http::field::sec_websocket_extensions, *ext);
            up.deflate = true;
        }
    return res;
}

inline void server_impl::finish_upgrade(upgrade_state& up, const query_map& query,
                                        std::string remote, std::string leftover) {
    // Bytes the client sent right after its request belong to the WebSocket stream.
    up.leftover = std::move(leftover);
    up.org = query_param(query, scope_names[0]);
    up.remote = std::move(remote);
}

inline admission_rules server_impl::admission() const {
    return admission_rules{&cfg_.allowed_origins, cfg_.auth_required, cfg_.max_connections,
                           connection_count(), false};
}

inline std::optional<http_response>
server_impl::upgrade_check(shard& sh, const http_request& req, bool upgrade,
                           const std::string& path, const query_map& query,
                           const std::string& remote, const std::string& remote_ip,
                           upgrade_state& up) {
    namespace http = boost::beast::http;
    // Socket.IO: at /socket.io/, and on the WebSocket path when the query says EIO (seed
    // 001's client connects with `path: '/ws'`). Its token comes in the CONNECT packet
    // (docs/protocol.md, "Coming from Socket.IO").
    up.socketio = socketio_request(path, query);
    if (up.socketio) {
        sio::handshake_query hq;
        auto e = sio::parse_handshake(req.target(), req.method_string(), upgrade, hq);
        std::string why;
        if (!e && hq.transport != sio::transport::websocket)
            e = sio::eio_error::unknown_transport;
        // An upgrade of a polling session: the session is found on its shard at start.
        if (!e && !hq.sid.empty() &&
            (!parse_polling_sid(hq.sid, up.socketio_shard, up.socketio_upgrade) ||
             up.socketio_shard >= shards_.size() || up.socketio_upgrade == 0))
            e = sio::eio_error::unknown_sid;
        up.socketio_sid = hq.sid;
        if (e) {
            sh.counters().errors.fetch_add(1, std::memory_order_relaxed);
            auto res = engine_io_error(req, *e, why);
            add_cors(res, req[http::field::origin], cfg_.allowed_origins);
            return res;
        }
    }
    upgrade_request const wire{path,
                               upgrade,
                               req.method() == http::verb::get,
                               req.version(),
                               req[http::field::sec_websocket_key],
                               req[http::field::sec_websocket_version],
                               query_param(query, scope_names[0])};
    up.feed = up.socketio || cfg_.echo ? nullptr : find_feed_path(cfg_.feed_paths, path);
    auto f = check_upgrade_request(wire, up.socketio || up.feed || cfg_.echo
                                             ? std::string_view(path)
                                             : std::string_view(cfg_.ws_path));
    if (!f) {
        auto rules = admission();
        rules.stopping = sh.stopping;
        rules.auth_required = rules.auth_required && !up.socketio; // checked at CONNECT
        auto const origin = req[http::field::origin];
        f = admit(
            rules, origin, websocket_words, [&] { return handshake_allowed(remote_ip); },
            [&] { return request_token(req, query, up.claims); },
            [] { return std::optional<refusal>(); });
        if (f && f->reason == reject_reason::origin_not_allowed)
            cfg_.logger.log(log_level::info, "origin_refused",
                            {{"remote", remote}, {"origin", printable(origin)}});
        if (f && f->reason == reject_reason::auth_failed)
            cfg_.logger.log(log_level::info, "auth_failed",
                            {{"remote", remote}, {"reason", f->message}});
    }
    if (!f)
        return std::nullopt;
    if (f->reason)
        sh.counters().count_rejected(*f->reason);
    return to_response(*f);
}

inline std::optional<refusal> server_impl::count_stream(connection_quotas& q, sse_params& p) const {
    namespace http = boost::beast::http;
    if (!p.org.empty() && !q.orgs.try_add(p.org, cfg_.max_connections_per_org)) {
        refusal f{http::status::service_unavailable, "CONNECTION_LIMIT",
                  "connection limit of " + std::to_string(cfg_.max_connections_per_org) +
                      " for organization " + p.org + " reached"};
        f.reason = reject_reason::org_connection_limit;
        return f;
    }
    if (p.authenticated && !p.user.empty() &&
        !q.users.try_add(p.user, cfg_.max_connections_per_user)) {
        if (!p.org.empty())
            q.orgs.remove(p.org);
        refusal f{http::status::service_unavailable, "CONNECTION_LIMIT",
                  "connection limit of " + std::to_string(cfg_.max_connections_per_user) +
                      " for user " + p.user + " reached"};
        f.reason = reject_reason::user_connection_limit;
        return f;
    }
    for (std::size_t i = 0; cfg_.room_max_size && i < p.topics.size(); ++i) {
        auto const key = p.topics[i].key();
        if (q.enter_room(key, cfg_.room_max_size))
            continue;
        for (std::size_t j = 0; j < i; ++j)
            q.leave_room(p.topics[j].key(), cfg_.room_max_size);
        p.rooms_counted = false;
        uncount_stream(q, p);
        refusal f{http::status::service_unavailable, "ROOM_FULL",
                  connection_quotas::room_full(key, cfg_.room_max_size)};
        f.reason = reject_reason::room_full;
        return f;
    }
    p.rooms_counted = cfg_.room_max_size != 0;
    return std::nullopt;
}

inline std::optional<http_response>
server_impl::sse_check(shard& sh, const http_request& req, const query_map& query,
                       const std::string& remote, const std::string& remote_ip, sse_params& p) {
    namespace http = boost::beast::http;
    if (req.method() != http::verb::get)
        return method_not_allowed(req, cfg_.sse_path, "GET");
    std::optional<jwt_claims> claims;
    auto f = parse_stream_topics(query, cfg_.sse_path, cfg_.max_subscriptions, p.topics);
    if (!f) {
        auto rules = admission();
        rules.stopping = sh.stopping;
        f = admit(
            rules, req[http::field::origin], stream_words,
            [&] { return handshake_allowed(remote_ip); },
            [&] { return request_token(req, query, claims); },
            [&] {
                std::optional<identity> who;
                if (claims)
                    who = identity::of(*claims);
                return check_stream_access(cfg_.auth_required, who, p.topics);
            });
    }
    scope const sc = scope_from_query(query);
    if (!f) {
        if (claims) {
            p.authenticated = true;
            p.user = claims->user;
            p.org = claims->org;
            p.token_exp = claims->exp.value_or(0);
        } else if (!cfg_.auth_required) {
            p.org = sc.org;
        }
        // Resumption: EventSource sends the last id it saw as Last-Event-ID when it
        // reconnects; a page that reconnects by itself passes it as ?lastEventId=.
        std::string last_id(req["Last-Event-ID"]);
        if (auto it = query.find("lastEventId"); last_id.empty() && it != query.end())
            last_id = it->second;
        std::string why;
        if (!last_id.empty() && !sse_ids::parse(last_id, sc, p.topics, hub_.epoch(), p.resume, why))
            f = refusal{http::status::bad_request, "INVALID_MESSAGE", why};
    }
    if (!f && sh.quotas)
        f = count_stream(*sh.quotas, p);
    if (f) {
        if (f->reason)
            sh.counters().count_rejected(*f->reason);
        cfg_.logger.log(log_level::info, "sse_refused",
                        {{"remote", remote},
                         {"status", static_cast<int>(f->status)},
                         {"reason", printable(f->message)}});
        return to_response(*f, req.version());
    }
    // The response head; the body is the event stream, until either side closes.
    http_response res{http::status::ok, 11};
    res.set(http::field::server, cfg_.server_name);
    res.set(http::field::content_type, "text/event-stream; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.set(http::field::connection, "close");
    res.set("X-Accel-Buffering", "no"); // nginx: pass events through at once
    add_cors(res, req[http::field::origin], cfg_.allowed_origins);
    p.head = "HTTP/1.1 200 OK\r\n";
    for (auto const& fld : res) {
        p.head.append(fld.name_string());
        p.head += ": ";
        p.head.append(fld.value());
        p.head += "\r\n";
    }
    p.head += "\r\n";
    p.remote = remote;
    return std::nullopt;
}

inline void server_impl::start_sse(shard& sh, boost::asio::ip::tcp::socket sock, sse_params p) {
    auto const id = next_id_.fetch_add(1, std::memory_order_relaxed);
    sh.counters().accepted.fetch_add(1, std::memory_order_relaxed);
    auto* s = new sse_session(sh, hub_, cfg_, std::move(sock), id, std::move(p));
    ++sh.live_tasks; // shutdown waits for the stream's end
    std::string subs;
    for (auto const& t : s->topics())
        subs += (subs.empty() ? "" : ",") + t.key();
    cfg_.logger.log(log_level::info, "connection_open",
                    {{"client", s->client_id()},
                     {"transport", "sse"},
                     {"remote", s->remote()},
                     {"org", s->organization()},
                     {"subscriptions", subs}});
    auto const t0 = std::chrono::steady_clock::now();
    s->start([this, &sh, t0](sse_session* ended) {
        --sh.live_tasks;
        cfg_.logger.log(log_level::info, "connection_close",
                        {{"client", ended->client_id()},
                         {"transport", "sse"},
                         {"remote", ended->remote()},
                         {"reason", ended->end_reason()},
                         {"duration_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::steady_clock::now() - t0)
                                             .count()}});
        delete ended;
    });
}

} // namespace rtpush::detail

#endif
