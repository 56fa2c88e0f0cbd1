//
// rtpush: a plain connection between two requests. A keep-alive connection with nothing more
// read waits for its next request in the shard's poller (idle_connection), and a Socket.IO
// polling GET with nothing to take is parked (shard::parked_poll) until its session answers
// it; either way the HTTP exchange's coroutine, parser and buffer are gone meanwhile
// (docs/architecture.md, "Memory per connection"). Included by impl/server.hpp.
//
#ifndef RTPUSH_DETAIL_IO_BETWEEN_REQUESTS_HPP
#define RTPUSH_DETAIL_IO_BETWEEN_REQUESTS_HPP

#include <rtpush/detail/io/handshake.hpp>
#include <rtpush/detail/io/server_impl.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include <memory>

namespace rtpush::detail {

inline void server_impl::await_next_request(shard& sh, boost::asio::ip::tcp::socket sock) {
    boost::system::error_code ec;
    auto const peer = sock.remote_endpoint(ec);
    if (ec || sh.stopping)
        return; // `sock` closes
    // Out of Asio's reactor, into the shard's poller until the next request is readable.
    unique_fd fd(sock.release(ec));
    if (ec)
        return;
    wait_for_request(sh, std::move(fd), peer);
}

inline void server_impl::idle_ready(shard& sh, idle_connection* c) {
    sh.remove_idle(c);
    std::unique_ptr<idle_connection> owned(c);
    unique_fd fd(c->fd);
    // Out of the poller (a session registers it again), then read as a new connection's.
    if (sh.poller().watch(c->fd, nullptr, 0, poller::readable))
        return; // still registered: the entry must not be reported again; `fd` closes
    await_request(sh, std::move(fd), c->peer);
}

inline void server_impl::answer_parked_poll(shard& sh, std::uint64_t id, std::string body) {
    auto p = sh.unpark(id);
    if (!p) {
        sh.early_answer(id, body); // before the park itself: park() sends it; else dropped
        return;                    // (closed at shutdown, or never parked)
    }
    boost::asio::ip::tcp::socket sock(sh.get_executor());
    boost::system::error_code ec;
    sock.assign(p->v6 ? boost::asio::ip::tcp::v6() : boost::asio::ip::tcp::v4(), p->fd, ec);
    if (ec) {
        ::close(p->fd);
        return;
    }
    auto res = engine_io_text(p->version, std::move(body));
    finish_answer(sh, res, p->origin, p->keep_alive); // at shutdown: the close packet, the end
    log_access(cfg_.logger, "GET", p->path, res.result_int(), p->since, p->remote);
    spawn_connection(sh, resume_connection(sh, std::move(sock), std::move(res)));
}

inline boost::asio::awaitable<void>
server_impl::resume_connection(shard& sh, boost::asio::ip::tcp::socket sock, http_response res) {
    namespace http = boost::beast::http;
    {
        boost::beast::tcp_stream stream(std::move(sock));
        http_socket_guard guard(sh, &stream.socket());
        stream.expires_after(cfg_.handshake_timeout);
        auto [ec, n] = co_await http::async_write(
            stream, res, boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec || !res.keep_alive() || sh.stopping) {
            stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
            co_return;
        }
        sock = stream.release_socket();
    }
    await_next_request(sh, std::move(sock));
}

} // namespace rtpush::detail

#endif
