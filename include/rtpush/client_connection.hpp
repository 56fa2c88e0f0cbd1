//
// rtpush: one client-side WebSocket connection (no reconnection; see docs).
//
#ifndef RTPUSH_CLIENT_CONNECTION_HPP
#define RTPUSH_CLIENT_CONNECTION_HPP

#include <rtpush/detail/frame.hpp>
#include <rtpush/error.hpp>
#include <rtpush/tls.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace rtpush {

/// The parts of a ws:// URL.
struct ws_url {
    std::string host;
    std::string port;
    std::string target; ///< path and query, at least "/"
    bool tls = false;
};

/// Parses ws://host[:port][/path][?query] (and wss://). Sets error::bad_url on failure.
inline ws_url parse_ws_url(std::string_view url, boost::system::error_code& ec);

/// A WebSocket client connection built on rtpush's frame codec: connect, send text, receive
/// messages; pings are answered automatically. wss:// URLs go through TLS, checked as
/// `tls` says (system CAs, host name, SNI by default).
///
/// Thread safety: use from one strand. One async_receive/async_read_event at a time; sends
/// may overlap them and each other (they are queued and written in order).
class client_connection {
public:
    struct event {
        enum kind_t { message, ping, pong, close } kind = message;
        std::string payload;    ///< message text, ping/pong payload, or close reason
        std::uint16_t code = 0; ///< close code
    };

    explicit client_connection(boost::asio::any_io_executor ex,
                               std::size_t max_message_size = 64 << 20,
                               tls_client_options tls = {});

    /// Connects and performs the opening handshake (after the TLS handshake for wss://).
    /// `headers` are added to the request. Throws system_error (error::handshake_failed with
    /// the HTTP status in the message; for TLS, OpenSSL's reason, e.g. "certificate verify
    /// failed") or std::invalid_argument (an unreadable CA file).
    boost::asio::awaitable<void>
    async_connect(std::string url, std::vector<std::pair<std::string, std::string>> headers = {});

    /// Sends one text message (masked, as RFC 6455 requires of clients).
    boost::asio::awaitable<void> async_send(std::string_view text);
    /// Sends bytes as they are: for tests that need malformed frames.
    boost::asio::awaitable<void> async_send_raw(std::string bytes);

    /// Next event of any kind; pings are answered before they are returned.
    boost::asio::awaitable<event> async_read_event();
    /// Next text message; throws system_error(error::closed) when the server closes
    /// (close_code() then tells why).
    boost::asio::awaitable<std::string> async_receive();

    /// Sends a close frame and waits (bounded by the socket) for the server's.
    boost::asio::awaitable<void> async_close(std::uint16_t code = 1000,
                                             std::string_view reason = {});

    std::uint16_t close_code() const noexcept { return close_code_; }
    const std::string& close_reason() const noexcept { return close_reason_; }
    /// The status and body of a refused handshake.
    unsigned handshake_status() const noexcept { return handshake_status_; }
    const std::string& handshake_body() const noexcept { return handshake_body_; }
    /// The `Location` of a refused handshake (a redirection), or empty. Redirections are
    /// not followed: a caller that wants to follow one connects a new connection to it.
    const std::string& handshake_location() const noexcept { return handshake_location_; }
    /// The TCP socket (closing it ends every pending operation, TLS or not).
    boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }
    bool tls() const noexcept { return tls_ != nullptr; }
    bool is_open() const noexcept { return socket_.is_open() && !closed_; }

private:
    template <class Stream>
    boost::asio::awaitable<void>
    handshake(Stream& s, const ws_url& u,
              const std::vector<std::pair<std::string, std::string>>& headers);
    boost::asio::awaitable<void> write_frame(detail::opcode op, std::string_view payload);
    boost::asio::awaitable<void> flush();

    using tls_stream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>;
    boost::asio::ip::tcp::socket socket_;
    tls_client_options tls_options_;
    std::optional<boost::asio::ssl::context> tls_context_;
    std::unique_ptr<tls_stream> tls_; // wss:// only; over socket_
    detail::frame_reader reader_;
    std::string rbuf_;
    std::size_t rbuf_used_ = 0;
    std::size_t rbuf_off_ = 0;
    std::deque<std::string> out_;
    bool writing_ = false;
    bool closed_ = false;
    bool close_sent_ = false;
    std::uint16_t close_code_ = 0;
    std::string close_reason_;
    unsigned handshake_status_ = 0;
    std::string handshake_body_;
    std::string handshake_location_;
    std::mt19937 rng_;
};

} // namespace rtpush

#include <rtpush/impl/client_connection.hpp>

#endif
