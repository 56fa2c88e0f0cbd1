//
// rtpush: one WebSocket connection.
//
#ifndef RTPUSH_SESSION_HPP
#define RTPUSH_SESSION_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/detail/shard.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/protocol.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rtpush {

/// A WebSocket client connection after its handshake: a reader and a writer coroutine on the
/// shard's thread (its strand), sharing a bounded queue of shared frames. The writer sends
/// everything queued in one gathered write whenever the previous write completes.
///
/// All member functions must be called on the shard's thread.
class session final : public detail::subscriber {
public:
    using socket_type = boost::asio::ip::tcp::socket;

    session(detail::shard& sh, rtpush::hub& h, const server_config& cfg, socket_type sock,
            std::uint64_t id, std::string leftover, std::string org, std::string remote);
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session();

    /// Runs the connection until it ends (peer close, error, close(), abort()). Never throws
    /// for network errors; those end the connection.
    boost::asio::awaitable<void> run();

    /// Queues a frame; applies the overflow policy when the queue is full.
    void push(const detail::frame_ptr& f) override;

    /// Starts the closing handshake: queued data is flushed, then a close frame with `code`.
    void close(std::uint16_t code, std::string_view reason);

    /// Closes the socket at once.
    void abort();

    /// Called by the shard's heartbeat tick: drop a silent peer, else queue heartbeat + ping.
    void on_heartbeat(const detail::frame_ptr& heartbeat, const detail::frame_ptr& ping,
                      std::chrono::steady_clock::time_point now,
                      std::chrono::milliseconds idle_timeout);

    std::string client_id() const { return "c" + std::to_string(id_); }
    std::uint64_t id() const noexcept { return id_; }
    const std::string& organization() const noexcept { return org_; }

    /// The connection as /api/connections shows it.
    boost::json::object info() const;

private:
    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    void handle_frames();
    void handle_text(std::string_view text);
    void handle_message(client_message& m);
    void send_json(std::string text);
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id);
    void wake() { wake_.cancel(); }
    void subscribe(client_message& m);
    void unsubscribe(client_message& m);

    detail::shard& shard_;
    rtpush::hub& hub_;
    const server_config& cfg_;
    socket_type socket_;
    boost::asio::steady_timer wake_;
    detail::send_queue queue_;
    detail::frame_reader reader_;
    std::string rbuf_;
    std::size_t rbuf_used_ = 0;
    std::vector<std::unique_ptr<detail::subscription>> subs_;
    detail::frame_ptr close_frame_;

    std::uint64_t id_;
    std::string org_;
    std::string user_;
    std::string remote_;
    std::chrono::system_clock::time_point connected_at_;
    std::chrono::system_clock::time_point last_activity_at_;
    std::chrono::steady_clock::time_point last_rx_;
    std::chrono::steady_clock::time_point last_refresh_{};
    std::uint64_t received_ = 0;
    std::uint64_t sent_ = 0;

    bool closing_ = false;        // a close frame is queued
    bool close_sent_ = false;     // ... and written
    bool close_received_ = false; // the peer's close frame arrived
    bool reader_done_ = false;
    bool aborted_ = false;
    std::uint16_t close_code_ = 0;
};

} // namespace rtpush

#include <rtpush/impl/session.hpp>

#endif
