#ifndef RTPUSH_IMPL_CLIENT_CONNECTION_HPP
#define RTPUSH_IMPL_CLIENT_CONNECTION_HPP

#include <rtpush/detail/http_util.hpp>

#include <openssl/evp.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <openssl/rand.h>

#include <cstring>
#include <tuple>

namespace rtpush {

inline ws_url parse_ws_url(std::string_view url, boost::system::error_code& ec) {
    ws_url u;
    ec = {};
    if (url.rfind("ws://", 0) == 0) {
        url.remove_prefix(5);
        u.port = "80";
    } else if (url.rfind("wss://", 0) == 0) {
        url.remove_prefix(6);
        u.tls = true;
        u.port = "443";
    } else {
        ec = error::bad_url;
        return u;
    }
    auto const slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
    u.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (!u.target.empty() && u.target[0] == '?')
        u.target.insert(0, "/");
    if (authority.empty()) {
        ec = error::bad_url;
        return u;
    }
    if (authority.front() == '[') { // [::1]:port
        auto const close = authority.find(']');
        if (close == std::string_view::npos) {
            ec = error::bad_url;
            return u;
        }
        u.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':') {
                ec = error::bad_url;
                return u;
            }
            u.port = std::string(authority.substr(1));
        }
    } else {
        auto const colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            u.port = std::string(authority.substr(colon + 1));
    }
    if (u.host.empty() || u.port.empty() ||
        u.port.find_first_not_of("0123456789") != std::string::npos || u.port.size() > 5 ||
        std::stoul(u.port) > 65535)
        ec = error::bad_url;
    return u;
}

inline client_connection::client_connection(boost::asio::any_io_executor ex,
                                            std::size_t max_message_size, tls_client_options tls)
    : socket_(std::move(ex))
    , tls_options_(std::move(tls))
    , reader_(max_message_size, false) {
    std::uint32_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1)
        seed = static_cast<std::uint32_t>(std::random_device{}());
    rng_.seed(seed);
}

inline boost::asio::awaitable<void>
client_connection::async_connect(std::string url,
                                 std::vector<std::pair<std::string, std::string>> headers) {
    namespace net = boost::asio;
    boost::system::error_code ec;
    auto const u = parse_ws_url(url, ec);
    if (ec)
        throw boost::system::system_error(ec, "invalid URL '" + url + "'");
    net::ip::tcp::resolver resolver(socket_.get_executor());
    auto const results = co_await resolver.async_resolve(u.host, u.port, net::use_awaitable);
    co_await net::async_connect(socket_, results, net::use_awaitable);
    socket_.set_option(net::ip::tcp::no_delay(true));
    if (!u.tls) {
        co_await handshake(socket_, u, headers);
        co_return;
    }
    if (!tls_context_)
        tls_context_.emplace(make_client_tls_context(tls_options_));
    tls_ = std::make_unique<tls_stream>(socket_, *tls_context_);
    prepare_client_tls(*tls_, u.host, tls_options_.verify);
    auto [tec] = co_await tls_->async_handshake(net::ssl::stream_base::client,
                                                net::as_tuple(net::use_awaitable));
    if (tec)
        throw boost::system::system_error(tec, "TLS handshake with " + u.host + ":" + u.port +
                                                   " failed");
    co_await handshake(*tls_, u, headers);
}

template <class Stream>
boost::asio::awaitable<void>
client_connection::handshake(Stream& stream, const ws_url& u,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    unsigned char nonce[16];
    for (auto& b : nonce)
        b = static_cast<unsigned char>(rng_());
    unsigned char key64[32];
    int const kn = EVP_EncodeBlock(key64, nonce, 16);
    std::string const key(reinterpret_cast<char*>(key64), static_cast<std::size_t>(kn));

    http::request<http::empty_body> req{http::verb::get, u.target, 11};
    req.set(http::field::host, u.host + ":" + u.port);
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, key);
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::user_agent, "rtpush-client");
    for (auto const& [k, v] : headers)
        req.set(k, v);
    co_await http::async_write(stream, req, net::use_awaitable);

    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.skip(false);
    parser.body_limit(64 * 1024);
    co_await http::async_read_header(stream, buf, parser, net::use_awaitable);
    auto& res = parser.get();
    handshake_status_ = res.result_int();
    handshake_location_ = std::string(res[http::field::location]);
    if (res.result() != http::status::switching_protocols) {
        if (parser.content_length() || parser.chunked()) {
            auto [rec, rn] =
                co_await http::async_read(stream, buf, parser, net::as_tuple(net::use_awaitable));
            (void)rn;
            if (!rec)
                handshake_body_ = parser.get().body();
        }
        throw boost::system::system_error(error::handshake_failed,
                                          "HTTP " + std::to_string(handshake_status_) + " " +
                                              handshake_body_);
    }
    if (res[http::field::sec_websocket_accept] != detail::websocket_accept_key(key))
        throw boost::system::system_error(error::handshake_failed, "bad Sec-WebSocket-Accept");
    rbuf_.assign(static_cast<const char*>(buf.data().data()), buf.size());
    rbuf_used_ = rbuf_.size();
    rbuf_off_ = 0;
    if (rbuf_.size() < 4096)
        rbuf_.resize(4096);
}

inline boost::asio::awaitable<void> client_connection::flush() {
    // The first sender writes everything queued meanwhile, in order; the others return.
    if (writing_)
        co_return;
    writing_ = true;
    struct reset {
        bool& w;
        ~reset() { w = false; }
    } r{writing_};
    while (!out_.empty()) {
        std::string bytes = std::move(out_.front());
        out_.pop_front();
        if (tls_)
            co_await boost::asio::async_write(*tls_, boost::asio::buffer(bytes),
                                              boost::asio::use_awaitable);
        else
            co_await boost::asio::async_write(socket_, boost::asio::buffer(bytes),
                                              boost::asio::use_awaitable);
    }
}

inline boost::asio::awaitable<void> client_connection::write_frame(detail::opcode op,
                                                                   std::string_view payload) {
    std::string f;
    detail::append_frame(f, op, payload, true, static_cast<std::uint32_t>(rng_()));
    out_.push_back(std::move(f));
    co_await flush();
}

inline boost::asio::awaitable<void> client_connection::async_send(std::string_view text) {
    co_await write_frame(detail::opcode::text, text);
}

inline boost::asio::awaitable<void> client_connection::async_send_raw(std::string bytes) {
    out_.push_back(std::move(bytes));
    co_await flush();
}

inline boost::asio::awaitable<client_connection::event> client_connection::async_read_event() {
    namespace net = boost::asio;
    for (;;) {
        if (closed_)
            throw boost::system::system_error(error::closed, "connection closed");
        if (rbuf_off_ < rbuf_used_) {
            detail::frame_event ev;
            std::size_t const used =
                reader_.read(rbuf_.data() + rbuf_off_, rbuf_used_ - rbuf_off_, ev);
            if (used > 0) {
                rbuf_off_ += used;
                event out;
                switch (ev.kind) {
                case detail::frame_event::none:
                    continue;
                case detail::frame_event::message:
                    out.kind = event::message;
                    out.payload.assign(ev.payload);
                    co_return out;
                case detail::frame_event::ping:
                    out.kind = event::ping;
                    out.payload.assign(ev.payload);
                    co_await write_frame(detail::opcode::pong, out.payload);
                    co_return out;
                case detail::frame_event::pong:
                    out.kind = event::pong;
                    out.payload.assign(ev.payload);
                    co_return out;
                case detail::frame_event::close:
                    out.kind = event::close;
                    out.code = ev.code;
                    out.payload.assign(ev.payload);
                    close_code_ = ev.code;
                    close_reason_ = out.payload;
                    if (!close_sent_) {
                        close_sent_ = true;
                        try {
                            co_await write_frame(
                                detail::opcode::close,
                                detail::close_payload(ev.code == 1005 ? 1000 : ev.code, ""));
                        } catch (boost::system::system_error const&) {
                            // the server may already have closed the TCP connection
                        }
                    }
                    closed_ = true;
                    co_return out;
                case detail::frame_event::fail:
                    closed_ = true;
                    close_code_ = ev.code;
                    throw boost::system::system_error(make_error_code(ev.err),
                                                      "invalid frame from server");
                }
            }
        }
        // compact and read more
        if (rbuf_off_ > 0) {
            std::memmove(rbuf_.data(), rbuf_.data() + rbuf_off_, rbuf_used_ - rbuf_off_);
            rbuf_used_ -= rbuf_off_;
            rbuf_off_ = 0;
        }
        if (rbuf_used_ == rbuf_.size())
            rbuf_.resize(std::min(rbuf_.size() * 2, reader_.max_message_size() + 16));
        auto const space = net::buffer(rbuf_.data() + rbuf_used_, rbuf_.size() - rbuf_used_);
        boost::system::error_code ec;
        std::size_t n = 0;
        if (tls_)
            std::tie(ec, n) =
                co_await tls_->async_read_some(space, net::as_tuple(net::use_awaitable));
        else
            std::tie(ec, n) =
                co_await socket_.async_read_some(space, net::as_tuple(net::use_awaitable));
        if (ec == net::ssl::error::stream_truncated)
            ec = net::error::eof; // a TCP close without close_notify, after the close frame
        if (ec) {
            closed_ = true;
            if (close_code_ == 0)
                close_code_ = 1006; // abnormal closure: no close frame
            throw boost::system::system_error(
                ec == net::error::eof ? make_error_code(error::closed) : ec, "connection lost");
        }
        rbuf_used_ += n;
    }
}

inline boost::asio::awaitable<std::string> client_connection::async_receive() {
    for (;;) {
        auto ev = co_await async_read_event();
        if (ev.kind == event::message)
            co_return std::move(ev.payload);
        if (ev.kind == event::close)
            throw boost::system::system_error(error::closed, "closed by server (" +
                                                                 std::to_string(ev.code) + " " +
                                                                 ev.payload + ")");
    }
}

inline boost::asio::awaitable<void> client_connection::async_close(std::uint16_t code,
                                                                   std::string_view reason) {
    namespace net = boost::asio;
    if (!close_sent_ && !closed_) {
        close_sent_ = true;
        co_await write_frame(detail::opcode::close, detail::close_payload(code, reason));
    }
    // Read until the server's close frame or EOF.
    while (!closed_) {
        try {
            co_await async_read_event();
        } catch (boost::system::system_error const&) {
            break;
        }
    }
    boost::system::error_code ec;
    socket_.close(ec);
}

} // namespace rtpush

#endif
