//
// rtpush: one WebSocket connection.
//
#ifndef RTPUSH_SESSION_HPP
#define RTPUSH_SESSION_HPP

#include <rtpush/auth.hpp>
#include <rtpush/config.hpp>
#include <rtpush/detail/client_protocol.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/detail/socketio_protocol.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/protocol.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush {

/// A WebSocket client connection after its handshake, on its shard's thread (its strand).
/// The reader waits for readability through the shard's poller (an epoll instance of the
/// shard's own, so an idle connection keeps no reactor state and no pending operation) and
/// then reads into the shard's shared buffer, so an idle subscriber owns no read buffer. The
/// writer sends from a bounded queue of shared frames: whatever was queued since the previous
/// write goes out in one gathered, non-blocking send, and only a send the kernel does not take
/// whole waits for writability. An idle session holds no pending write, no timer and no
/// coroutine frame (see docs/architecture.md).
///
/// A TLS session (wss://) keeps the same queue and frames, but reads through OpenSSL into a
/// buffer of its own and writes its batch in coalesced pieces (an SSL stream writes one
/// buffer per call); the plain path has no indirection for it, only a branch on `tls()`
/// (the TLS stream is in the session's cold state: a plain session does not pay for it).
///
/// All member functions must be called on the shard's thread.
class session final : public detail::subscriber,
                      public detail::client_protocol<session>,
                      public detail::socketio_protocol<session> {
public:
    using socket_type = boost::asio::ip::tcp::socket;
    using tls_stream = boost::asio::ssl::stream<boost::beast::tcp_stream>;

    /// Takes an accepted socket's descriptor from its socket object, non-blocking (-1 when the
    /// socket is closed: a TLS session talks through its stream). A plain session waits for
    /// readiness through its shard's poller, not Asio's reactor (detail/io/poller.hpp).
    template <class Socket>
    static int take_descriptor(Socket& s);

    /// `fd`: the connection's socket (take_descriptor()), owned from here on;
    /// `tls`: the connection's TLS stream, after its handshake (then `fd` is -1). The hub and
    /// the configuration are the shard's (its protocol environment).
    session(detail::shard& sh, int fd, std::uint64_t id, std::string leftover, std::string org,
            std::string remote, std::optional<jwt_claims> claims = std::nullopt,
            std::unique_ptr<tls_stream> tls = nullptr, bool deflate = false);
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session();

    /// The connection speaks Socket.IO (Engine.IO v4 over this WebSocket) instead of rtpush's
    /// own messages (docs/protocol.md, "Coming from Socket.IO"). Before start().
    /// `upgrade_from`, `upgrade_sid`: the id and the whole sid of a polling session on this
    /// shard that this WebSocket takes
    /// over (Engine.IO's upgrade; the client sends no new handshake).
    void speak_socketio(std::uint64_t upgrade_from = 0, std::string upgrade_sid = {}) {
        cold().sio = std::make_unique<detail::socketio_state>();
        cold_->sio->upgrade_from = upgrade_from;
        cold_->sio->upgrade_sid = std::move(upgrade_sid);
    }
    bool socketio() const noexcept { return cold_ && cold_->sio; }
    /// The connection came on a feed path: subscribed to its channels at start, publications
    /// in the feed shape (docs/protocol.md, "Feed paths"). Before start().
    void speak_feed(const feed_path& f) { cold().feed = &f; }
    const feed_path* feed() const noexcept { return cold_ ? cold_->feed : nullptr; }

    /// Called once at the end with the context given to start(); may delete the session.
    using done_handler = detail::session_end::handler;

    /// Starts the connection; it then runs on completion handlers until it ends (peer
    /// close, error, close(), abort()), and finally calls `done(context, this)` from a posted
    /// handler, after which nothing refers to the session: `done` may delete it. Network errors
    /// end the connection, they are never thrown. (A function pointer and a context, not a
    /// std::function, kept by the shard: its sessions all have the same.)
    /// `handshake`: the HTTP 101 answer not yet written, sent in one gathered write with the
    /// greeting (a system call less per connection).
    void start(done_handler done, void* context, std::string handshake = {});

    /// Queues a frame; applies the overflow policy when the queue is full.
    void push(const detail::frame_ptr& f) override;

    /// Starts the closing handshake: queued data is flushed, then a close frame with `code`;
    /// with `drop_backlog` (a slow consumer) the close frame goes ahead of the queued data.
    void close(std::uint16_t code, std::string_view reason, bool drop_backlog = false);

    /// Closes the socket at once.
    void abort();

    /// The shard's poller calls this with a session and the events of its socket.
    static void on_poller_events(void* s, std::uint32_t events) {
        static_cast<session*>(s)->on_events(events);
    }

    /// Called by the shard's maintenance tick: aborts a close handshake past its deadline.
    void check_close_deadline(std::chrono::steady_clock::time_point now) {
        if (closing_ && !aborted_ && cold_ &&
            cold_->close_deadline != std::chrono::steady_clock::time_point{} &&
            now > cold_->close_deadline)
            abort();
    }

    /// Called by the shard's maintenance tick: a session that has written nothing for a
    /// second gives back its write batch and queue ring (a busy one keeps them).
    void release_idle(std::chrono::steady_clock::time_point now);

    /// Called by the shard's maintenance tick: with auth_required, closes (1008) a connection
    /// still unauthenticated after auth_timeout.
    void check_auth_deadline(std::chrono::steady_clock::time_point now) {
        if (cfg().auth_required && !client_.authenticated && !closing_ && !aborted_ &&
            now - opened_ >= cfg().auth_timeout)
            close(1008, "authentication timeout");
    }

    /// Called by the shard's heartbeat tick: drop a silent peer, else queue heartbeat + ping.
    void on_heartbeat(const detail::frame_ptr& heartbeat, const detail::frame_ptr& ping,
                      std::chrono::steady_clock::time_point now,
                      std::chrono::milliseconds idle_timeout);

    std::string client_id() const { return "c" + std::to_string(id_); }
    /// The Engine.IO sid of a Socket.IO connection opened on WebSocket: its client id.
    std::string engine_sid() const { return client_id(); }
    std::uint64_t id() const noexcept { return id_; }
    const std::string& organization() const noexcept { return client_.org; }
    /// A Socket.IO connection upgraded from long-polling is also known by the polling
    /// session's id, which its client took as its `socket.id`; empty otherwise.
    std::string_view socketio_alias() const noexcept;
    bool authenticated() const noexcept { return client_.authenticated; }
    /// The peer's "address:port" as the handshake saw it (kept as an endpoint, formatted here).
    std::string remote() const;
    /// When the session was made (steady clock).
    std::chrono::steady_clock::time_point opened_at() const noexcept { return opened_; }
    /// Why the connection ended (or is ending), for the connection_close log line: "closed by
    /// client (1000)", "closed by server (1008: slow consumer: ...)", "connection lost",
    /// "idle timeout", "write failed: ...", "aborted"; empty while it is open.
    const std::string& end_reason() const noexcept;

    /// The connection as /api/connections shows it.
    boost::json::object info() const;
    /// Frames and bytes waiting in the outbound queue (shard thread only).
    std::size_t queued() const noexcept { return queue_.size(); }
    std::size_t queued_bytes() const noexcept { return queue_.bytes(); }
    /// An answer that comes later (see client_protocol; public for the poster of
    /// the polling session this one took over): over Socket.IO it goes in the ACK of
    /// the EVENT that asked for it.
    std::uint64_t hold_answer() { return socketio() ? sio_hold_answer() : 0; }
    void send_answer(std::uint64_t token, std::string text) {
        if (token)
            sio_answer(token, std::move(text));
        else
            send_json(std::move(text));
    }

private:
    friend class detail::client_protocol<session>;
    friend class detail::socketio_protocol<session>;
    detail::socketio_state& sio_state() noexcept { return *cold_->sio; }
    void on_probe();
    /// The polling session this WebSocket upgrades, when its whole sid (secret part included)
    /// names a live one; else null.
    std::shared_ptr<detail::polling_session> polling_to_take() const;
    void push_twin(const detail::frame_ptr& f) { push_maybe_deflated(f); }
    void on_upgrade();
    /// A Socket.IO connection's own packet (CONNECT, ACK, pong...).
    void send_packet(std::string packet) {
        push_frame(detail::make_shared_frame(detail::make_frame(detail::opcode::text, packet)));
    }
    // What the protocol (detail/client_protocol.hpp) needs of its transport.
    detail::protocol_context& protocol_env() noexcept { return shard_.protocol(); }
    detail::client_state& client() noexcept { return client_; }
    bool closing() const noexcept { return closing_ || aborted_; }
    detail::subscriber* as_subscriber() noexcept { return this; }
    /// See client_protocol: posts back to this session's thread, if it is still there.
    struct poster_type {
        detail::shard* sh;
        std::uint64_t id;
        template <class F>
        void post(F f) const {
            boost::asio::post(sh->get_executor(), [sh = sh, id = id, f = std::move(f)]() mutable {
                f(sh->find_session(id));
            });
        }
    };
    poster_type poster() const noexcept { return {&shard_, id_}; }

    /// The poller's report for a plain session's socket.
    void on_events(std::uint32_t events);
    /// Tells the shard's poller what the session waits for now, if that changed.
    void watch();
    /// Closes the plain socket (the poller forgets it with it).
    void close_descriptor() noexcept;
    void push_frame(const detail::frame_ptr& f);
    void push_maybe_deflated(const detail::frame_ptr& f);
    // Direct sends: while the session handles its input (or opens), replies gather in the
    // shard's outbox, and end_direct() hands them to the socket in one non-blocking send
    // if the session is plain and idle, so that it needs no queue, write state or
    // asynchronous operation (see send_direct); what the socket does not take is queued.
    void begin_direct() noexcept;
    void end_direct();
    void queue_direct();
    std::size_t send_direct(std::span<const detail::frame_ptr> frames);
    bool can_send_direct() const noexcept;
    void count_sent(std::span<const detail::frame_ptr> frames,
                    std::chrono::steady_clock::time_point now);
    bool inflate(detail::frame_event& ev);
    void tls_read();
    void tls_write_next();
    void wait_readable();
    void on_readable(boost::system::error_code ec);
    void reader_finished();
    void maybe_finish();
    void consume(char* data, std::size_t size);
    std::size_t handle_frames(char* data, std::size_t size);
    void flush() override;
    void start_write();
    enum class send_result { done, blocked, failed };
    /// Sends the rest of the write batch (plain sessions), as far as the socket takes it.
    send_result send_batch(boost::system::error_code& ec);
    /// After a whole batch went out: counts it; false when writing must not go on (the
    /// queue is empty, or the session is finishing).
    bool batch_written();
    void on_write(boost::system::error_code ec);
    void on_text(std::string_view text);
    void send_json(std::string text);
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id);
    void schedule_write();
    void set_end_reason(std::string why) {
        if (cold().end_reason.empty())
            cold_->end_reason = std::move(why);
    }

    // State that most connections never use (TLS buffers, the close handshake, a frame split
    // across reads), allocated on first use so that an idle plain subscriber pays one pointer
    // for it. (The protocol's rarely used state is in client_.rare.)
    struct cold_state {
        std::unique_ptr<tls_stream> tls; // wss:// only: the TLS stream (its own TCP stream)
        std::vector<char> tls_rbuf;      // ... its read buffer (OpenSSL decrypts into it)
        std::string tls_wbuf;            // ... small frames coalesced into one SSL write
        std::string pending;             // an incomplete inbound frame
        detail::frame_ptr close_frame;
        std::chrono::steady_clock::time_point close_deadline{};
        std::string end_reason; // the first cause of the end, see end_reason()
        std::string remote;     // a remote that is not a formatted endpoint (see remote())
        std::unique_ptr<detail::socketio_state> sio; // a Socket.IO connection's state
        const feed_path* feed = nullptr;             // came on this feed path
    };
    tls_stream* tls() const noexcept { return cold_ ? cold_->tls.get() : nullptr; }
    cold_state& cold() {
        if (!cold_)
            cold_ = std::make_unique<cold_state>();
        return *cold_;
    }
    // The batch of the write in flight and when the last write ended: allocated by the first
    // write, its vectors' capacity kept while the session writes often (given back after a
    // write that follows a quiet second), and the whole of it freed by release_idle().
    struct write_state {
        std::vector<detail::frame_ptr> batch;           // frames of the write in flight
        std::vector<boost::asio::const_buffer> buffers; // ... and their bytes
        std::chrono::steady_clock::time_point last_write_at{};
        std::uint32_t pos = 0; // first buffer of the batch not yet fully written
    };

    const server_config& cfg() const noexcept { return shard_.protocol().cfg; }

    detail::shard& shard_;
    detail::client_state client_; // who the client is, what it subscribed to
    detail::send_queue queue_;
    detail::frame_reader reader_;
    std::unique_ptr<write_state> write_;
    std::unique_ptr<cold_state> cold_;
    std::uint64_t id_;

    std::chrono::system_clock::time_point last_activity_at_;
    std::chrono::steady_clock::time_point last_rx_;
    std::chrono::steady_clock::time_point opened_;
    detail::message_rate rate_; // inbound messages per second
    std::uint64_t received_ = 0;
    std::uint64_t sent_ = 0;
    std::uint16_t close_code_ = 0;
    std::uint16_t remote_port_ = 0; // see remote()
    std::uint32_t remote_v4_ = 0;
    int fd_ = -1; // the plain socket (-1: TLS, or closed)

    bool closing_ : 1 = false;        // a close frame is queued
    bool close_sent_ : 1 = false;     // ... and written
    bool close_received_ : 1 = false; // the peer's close frame arrived
    bool reader_done_ : 1 = false;
    bool aborted_ : 1 = false;
    bool writing_ : 1 = false; // a write is in flight
    bool reading_ : 1 = false; // waiting for readability
    bool finished_ : 1 = false;
    bool dirty_ : 1 = false;         // queued on the shard's flush list
    bool tls_shutdown_ : 1 = false;  // TLS close_notify started
    bool deflate_ : 1 = false;       // permessage-deflate negotiated
    bool has_remote_v4_ : 1 = false; // remote_v4_:remote_port_ is the remote (else cold_->remote)
    bool write_blocked_ : 1 = false; // a plain write waits for writability
    bool watch_in_ : 1 = false;      // the shard's poller watches fd_ for reads
    bool watch_out_ : 1 = false;     // ... for writes
    bool abort_posted_ : 1 = false;  // abort() posted the end of the waits
    bool direct_ : 1 = false;        // replies go to the shard's outbox (begin_direct)
};

} // namespace rtpush

#include <rtpush/impl/session.hpp>

#endif
