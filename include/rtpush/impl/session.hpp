#ifndef RTPUSH_IMPL_SESSION_HPP
#define RTPUSH_IMPL_SESSION_HPP

#include <rtpush/detail/feed_format.hpp>
#include <rtpush/detail/io/polling_session.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string_view>

namespace rtpush {

inline session::session(detail::shard& sh, int fd, std::uint64_t id, std::string leftover,
                        std::string org, std::string remote, std::optional<jwt_claims> claims,
                        std::unique_ptr<tls_stream> tls, bool deflate)
    : shard_(sh)
    , queue_(cfg().queue_max_frames, cfg().queue_max_bytes, cfg().queue_policy)
    , reader_(cfg().max_message_size, true)
    , id_(id)
    , last_activity_at_(std::chrono::system_clock::now())
    , last_rx_(std::chrono::steady_clock::now())
    , opened_(last_rx_)
    , rate_(sh.message_limits(), last_rx_)
    , fd_(fd)
    , deflate_(deflate) {
    client_.org = std::move(org);
    reader_.allow_compressed(deflate_);
    if (tls)
        cold().tls = std::move(tls);
    if (!leftover.empty())
        cold().pending = std::move(leftover);
    // An IPv4 remote formatted the usual way ("addr:port"), which nearly every accepted
    // connection has, is kept in 6 bytes; anything else (IPv6, a proxy's) is kept as given.
    if (auto const colon = remote.rfind(':'); colon != std::string::npos) {
        boost::system::error_code ec;
        auto const addr = boost::asio::ip::make_address(remote.substr(0, colon), ec);
        unsigned port = 0;
        auto const digits = std::string_view(remote).substr(colon + 1);
        auto const [end, perr] =
            std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (!ec && addr.is_v4() && perr == std::errc{} && end == digits.data() + digits.size() &&
            port <= 65535) {
            remote_v4_ = addr.to_v4().to_uint();
            remote_port_ = static_cast<std::uint16_t>(port);
            has_remote_v4_ = true;
            if (this->remote() != remote)
                has_remote_v4_ = false;
        }
    }
    if (!has_remote_v4_ && !remote.empty())
        cold().remote = std::move(remote);
    // With authentication required, only a verified token names the organization.
    if (cfg().auth_required)
        client_.org.clear();
    if (claims)
        accept_claims(std::move(*claims));
    // TCP_NODELAY comes from the listener (server_impl::accept_loop), and the descriptor is
    // non-blocking (accept4, or take_descriptor).
    if (this->tls()) {
        this->tls()->next_layer().expires_never();
        cold().tls_rbuf.resize(8 * 1024);
    }
}

template <class Socket>
inline int session::take_descriptor(Socket& s) {
    if (!s.is_open())
        return -1; // TLS: the session talks through its stream, this socket stays unused
    // Reads and sends are attempted without waiting first: the descriptor must not block.
    // The fast path set the mode already (one ioctl per connection), else it is set here.
    boost::system::error_code ec;
    if (!s.non_blocking())
        s.non_blocking(true, ec);
    if (ec)
        return -1;
    // Out of Asio's reactor: one epoll_ctl, and its per-descriptor state goes back to its pool.
    int const fd = s.release(ec);
    if (ec)
        return -1;
    // Not inherited by a child process: the session closes its descriptor without taking it
    // out of the poller first, which only a last close does (accept4 set this for ours; a
    // socket given to server::accept_connection may not have it).
    if (int const flags = ::fcntl(fd, F_GETFD); flags >= 0 && !(flags & FD_CLOEXEC))
        ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    return fd;
}

inline std::string session::remote() const {
    if (!has_remote_v4_)
        return cold_ ? cold_->remote : std::string();
    return boost::asio::ip::make_address_v4(remote_v4_).to_string() + ":" +
           std::to_string(remote_port_);
}

inline const std::string& session::end_reason() const noexcept {
    static const std::string none;
    return cold_ ? cold_->end_reason : none;
}

inline void session::release_idle(std::chrono::steady_clock::time_point now) {
    if (writing_ || !queue_.empty() ||
        (write_ && now - write_->last_write_at <= std::chrono::seconds(1)))
        return;
    if (write_) {
        write_.reset();
        shard_.counters().idle_released.fetch_add(1, std::memory_order_relaxed);
    }
    if (cold_)
        cold_->tls_wbuf = std::string();
    queue_.shrink();
}

inline session::~session() {
    close_descriptor();
    if (dirty_)
        shard_.forget_dirty(this);
    if (socketio()) {
        sio_keep();
        if (sio_state().took_over)
            shard_.forget_upgrade(sio_state().took_over);
    }
    leave();
    shard_.remove_session(id_);
}

inline void session::start(done_handler done, void* context, std::string handshake) {
    shard_.session_done = {done, context};
    shard_.add_session(id_, this);
    begin_direct();
    if (!handshake.empty()) {
        auto f = std::make_shared<detail::outbound_frame>();
        f->bytes = std::move(handshake);
        f->handshake = true;
        push_frame(f); // first in line: before the greeting and any reply
    }
    if (socketio()) {
        if (!sio_state().upgrade_from) // an upgrade answers the probe instead
            send_packet(open_packet());
    } else if (auto const* f = feed()) {
        send_json(detail::feed_connected(client_id(), *f));
        for (auto const& channel : f->channels)
            handle_object(boost::json::object{{"type", "subscribe"}, {"channel", channel}});
    } else
        send_json(message::connected(client_id(), cfg().server_name, cfg().heartbeat_interval));
    count_connection(); // from the handshake's token or ?org=
    if (cold_ && !cold_->pending.empty()) {
        // bytes the client pipelined behind its handshake
        std::string first = std::move(cold_->pending);
        cold_->pending.clear();
        consume(first.data(), first.size());
    }
    end_direct();
    if (reader_done_)
        reader_finished();
    else
        wait_readable();
}

inline void session::tls_read() {
    // OpenSSL may hold decrypted bytes the socket no longer signals, so a TLS session reads
    // with a pending read into its own buffer instead of waiting for readiness.
    reading_ = true;
    tls()->async_read_some(boost::asio::buffer(cold_->tls_rbuf),
                           [this](boost::system::error_code ec, std::size_t n) {
                               reading_ = false;
                               if (ec || aborted_) {
                                   reader_finished(); // EOF, reset, truncation, or abort()
                                   return;
                               }
                               last_rx_ = std::chrono::steady_clock::now();
                               consume(cold_->tls_rbuf.data(), n);
                               if (reader_done_)
                                   reader_finished();
                               else
                                   tls_read();
                           });
}

inline void session::wait_readable() {
    if (tls()) {
        tls_read();
        return;
    }
    // Wait for readability, then read into the shard's buffer: a silent subscriber reserves
    // no read buffer, no coroutine frame and no operation, only its poller registration.
    reading_ = true;
    watch(); // a system call only when the session was not waiting for reads already
}

inline void session::watch() {
    using detail::poller;
    unsigned const want =
        (reading_ ? poller::readable : 0u) | (write_blocked_ ? poller::writable : 0u);
    unsigned const had = (watch_in_ ? poller::readable : 0u) | (watch_out_ ? poller::writable : 0u);
    if (fd_ < 0 || want == had)
        return;
    auto const ec = shard_.poller().watch(fd_, this, want, had);
    if (!ec) {
        watch_in_ = (want & poller::readable) != 0;
        watch_out_ = (want & poller::writable) != 0;
    } else if (!aborted_) {
        set_end_reason("poll failed: " + ec.message());
        abort(); // its end runs from the posted completion of the waits
    }
}

inline void session::on_events(std::uint32_t events) {
    if (fd_ < 0)
        return; // closed by an earlier event of the same poll
    bool const failed = (events & (EPOLLERR | EPOLLHUP)) != 0;
    if (write_blocked_ && (failed || (events & EPOLLOUT))) {
        write_blocked_ = false;
        boost::system::error_code ec;
        switch (send_batch(ec)) {
        case send_result::blocked:
            write_blocked_ = true;
            break;
        case send_result::failed:
            on_write(ec);
            break;
        case send_result::done:
            watch(); // writability no longer wanted
            writing_ = false;
            if (batch_written())
                start_write();
            break;
        }
    }
    if (fd_ >= 0 && reading_ && (failed || (events & (EPOLLIN | EPOLLRDHUP))))
        on_readable({});
}

inline void session::close_descriptor() noexcept {
    if (fd_ < 0)
        return;
    detail::close_native(fd_); // the poller forgets it with its last descriptor
    fd_ = -1;
    watch_in_ = watch_out_ = false;
}

inline void session::on_readable(boost::system::error_code ec) {
    reading_ = false;
    if (ec || aborted_ || fd_ < 0) {
        reader_finished();
        return;
    }
    auto& buf = shard_.read_buffer();
    begin_direct();
    for (;;) {
        auto const n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            reader_done_ = true; // EOF or reset
            break;
        }
        last_rx_ = std::chrono::steady_clock::now();
        consume(buf.data(), static_cast<std::size_t>(n));
        if (reader_done_ || fd_ < 0 || static_cast<std::size_t>(n) < buf.size())
            break;
    }
    end_direct();
    if (reader_done_)
        reader_finished();
    else
        wait_readable();
}

inline void session::reader_finished() {
    reader_done_ = true;
    if (!closing_ && !aborted_) {
        set_end_reason("connection lost");
        abort(); // EOF or error without a close frame: nothing more can be said; the
                 // descriptor closes, which takes it out of the poller (no epoll_ctl)
    }
    watch(); // nothing more to read: a level-triggered end of stream would be reported again
    maybe_finish();
}

inline void session::maybe_finish() {
    // The end: the reader stopped, no operation refers to us any more, and our close frame is
    // out (or cannot go out: aborted). The shard's tick aborts a close past close_timeout.
    if (finished_ || !reader_done_ || reading_ || writing_)
        return;
    if (closing_ && !close_sent_ && !aborted_) {
        start_write();
        if (writing_ || finished_)
            return; // still writing, or the write's end finished the session
    }
    if (tls() && !aborted_ && !tls_shutdown_) {
        // Our close_notify only: the WebSocket close handshake is over, and waiting for the
        // peer's close_notify would keep clients that wait for our TCP close waiting.
        tls_shutdown_ = true;
        writing_ = true;
        SSL_set_shutdown(tls()->native_handle(), SSL_RECEIVED_SHUTDOWN);
        tls()->async_shutdown([this](boost::system::error_code) {
            writing_ = false;
            maybe_finish();
        });
        return;
    }
    finished_ = true;
    boost::system::error_code ec;
    // The server closes the TCP connection first after a close handshake (RFC 6455 7.1.1).
    if (tls()) {
        auto& s = tls()->next_layer().socket();
        s.shutdown(socket_type::shutdown_both, ec);
        s.close(ec);
    } else if (fd_ >= 0) {
        ::shutdown(fd_, SHUT_RDWR);
        close_descriptor();
    }
    boost::asio::post(shard_.get_executor(), [this] {
        if (auto const& end = shard_.session_done; end.handler_fn)
            end.handler_fn(end.context, this);
    });
}

inline void session::close(std::uint16_t code, std::string_view reason, bool drop_backlog) {
    if (closing_)
        return;
    if (direct_) {
        // Replies gathered so far go before the close frame (or are dropped with the backlog).
        queue_direct();
        if (closing_)
            return; // the queue overflowed: a slow-consumer close is under way
    }
    closing_ = true;
    close_code_ = code;
    // The peer's close frame is echoed with its code; any other close is ours.
    set_end_reason(close_received_ ? "closed by client (" + std::to_string(code) + ")"
                                   : "closed by server (" + std::to_string(code) +
                                         (reason.empty() ? "" : ": " + std::string(reason)) + ")");
    auto f = std::make_shared<detail::outbound_frame>();
    f->bytes = detail::make_frame(detail::opcode::close, detail::close_payload(code, reason));
    f->bulk = true; // behind every queued data frame, whatever its lane
    auto& c = cold();
    c.close_frame = std::move(f);
    // After the queued data, so a graceful close (or a limit's error message) loses nothing;
    // ahead of it for a slow consumer, since that backlog is what made us close.
    if (drop_backlog || queue_.push(c.close_frame) == detail::send_queue::push_result::overflow)
        queue_.push_control(c.close_frame);
    c.close_deadline = std::chrono::steady_clock::now() + cfg().close_timeout;
    schedule_write();
}

inline void session::abort() {
    set_end_reason("aborted");
    aborted_ = true;
    if (tls()) {
        boost::system::error_code ec;
        auto& s = tls()->next_layer().socket();
        s.cancel(ec);
        s.close(ec);
        return;
    }
    close_descriptor();
    // The waits end as Asio's cancelled operations would: from a posted handler, with
    // operation_aborted (the caller may be deep in this session's own code).
    if ((reading_ || write_blocked_) && !abort_posted_) {
        abort_posted_ = true;
        boost::asio::post(shard_.get_executor(), [this] {
            abort_posted_ = false;
            if (reading_)
                on_readable(boost::asio::error::operation_aborted);
            if (write_blocked_) {
                write_blocked_ = false;
                on_write(boost::asio::error::operation_aborted);
            }
        });
    }
}

inline void session::on_heartbeat(const detail::frame_ptr& heartbeat, const detail::frame_ptr& ping,
                                  std::chrono::steady_clock::time_point now,
                                  std::chrono::milliseconds idle_timeout) {
    if (now - last_rx_ > idle_timeout) {
        cfg().logger.log(log_level::info, "idle_timeout", {{"client", client_id()}});
        set_end_reason("idle timeout");
        abort();
        return;
    }
    if (closing_)
        return;
    if (socketio()) {
        // Engine.IO's heartbeat: the server pings ("2"), the client answers ("3").
        static detail::frame_ptr const eio_ping =
            detail::make_shared_frame(detail::make_frame(detail::opcode::text, "2"));
        std::array<detail::frame_ptr, 1> const out{eio_ping};
        if (deflate_ || !can_send_direct() || send_direct(out) != 1)
            push_frame(eio_ping);
        return;
    }
    if (cfg().echo) { // pings only: the echo sends no message it was not sent
        queue_.push_control(ping);
        return schedule_write();
    }
    // An idle plain session (nearly all of them at a heartbeat) sends the ping and the
    // heartbeat in one non-blocking send, without a queue, a write batch or an asynchronous
    // operation: those, made for every connection at once and freed a second later, are what
    // the heap would keep (measured: 19,000 idle connections grew from 0.87 to 1.3 KiB each
    // at their first heartbeat). Anything the socket does not take goes the usual way.
    if (!deflate_ && can_send_direct()) {
        std::array<detail::frame_ptr, 2> const out{ping, heartbeat};
        switch (send_direct(out)) {
        case 2:
            return;
        case 1:
            push(heartbeat); // behind the ping (or the rest of it)
            return;
        default:
            break; // would block with nothing taken, or an error the write path reports
        }
    }
    queue_.push_control(ping);
    push(heartbeat);
}

inline boost::json::object session::info() const {
    boost::json::object o;
    // A Socket.IO client upgraded from polling knows itself by the id it got then.
    auto const alias = socketio_alias();
    o["socket_id"] = alias.empty() ? client_id() : std::string(alias);
    client_.describe(o);
    o["status"] = closing_ ? "closing" : "connected";
    o["transport"] = socketio() ? "socketio" : "websocket";
    // The wall-clock time of the connection, from its steady-clock age: a session does not
    // keep both (8 bytes for every connection, for this report).
    o["connected_at"] = iso8601(std::chrono::system_clock::now() -
                                std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                    std::chrono::steady_clock::now() - opened_));
    o["last_activity_at"] = iso8601(last_activity_at_);
    o["remote_address"] = remote();
    o["tls"] = tls() != nullptr;
    o["permessage_deflate"] = deflate_;
    o["messages_received"] = received_;
    o["messages_sent"] = sent_;
    o["queued"] = queue_.size();
    o["dropped"] = queue_.dropped();
    return o;
}

inline void session::send_json(std::string text) {
    if (cfg().echo)
        return; // it speaks no rtpush message, not even an error before a close
    if (socketio())
        return sio_json(std::move(text));
    push(detail::make_shared_frame(detail::make_frame(detail::opcode::text, text)));
}

inline void session::send_error(rtpush::error code, std::string_view msg,
                                const boost::json::value& id) {
    shard_.counters().errors.fetch_add(1, std::memory_order_relaxed);
    send_json(message::error(code, msg, id));
}

inline void session::consume(char* data, std::size_t size) {
    if (!cold_ || cold_->pending.empty()) {
        std::size_t const used = handle_frames(data, size);
        if (used < size && !reader_done_)
            cold().pending.assign(data + used, size - used);
        return;
    }
    // A frame spans reads: gather it (bounded by the message limit, which the frame reader
    // enforces from the header) and parse from the session's own buffer.
    auto& pending = cold_->pending;
    pending.append(data, size);
    std::size_t const used = handle_frames(pending.data(), pending.size());
    pending.erase(0, used);
    if (pending.empty() && pending.capacity() > 1024) {
        pending.shrink_to_fit();
        reader_.shrink();
    }
}

inline std::size_t session::handle_frames(char* data, std::size_t size) {
    std::size_t off = 0;
    while (off < size && !reader_done_) {
        detail::frame_event ev;
        std::size_t const used = reader_.read(data + off, size - off, ev);
        if (used == 0)
            break;
        off += used;
        switch (ev.kind) {
        case detail::frame_event::none:
            break;
        case detail::frame_event::message:
            if (closing_)
                break; // after our close frame, data is discarded
            if (ev.compressed && !inflate(ev))
                break;
            ++received_;
            last_activity_at_ = std::chrono::system_clock::now();
            if (auto const v = rate_.on_message(last_rx_, shard_.message_limits());
                v != detail::message_rate::verdict::ok) {
                shard_.counters().rate_limited.fetch_add(1, std::memory_order_relaxed);
                if (v == detail::message_rate::verdict::abuse) {
                    cfg().logger.log(log_level::warning, "rate_abuse",
                                     {{"client", client_id()}, {"remote", remote()}});
                    close(1008, "message rate limit exceeded");
                } else {
                    send_error(error::rate_limit_exceeded,
                               "more than " +
                                   std::to_string(static_cast<long long>(
                                       std::ceil(cfg().max_messages_per_second))) +
                                   " messages per second; message dropped",
                               {});
                }
                break;
            }
            if (cfg().echo) // text or binary, as it came (compressed again if it is large)
                push_maybe_deflated(
                    detail::make_shared_frame(detail::make_frame(ev.op, ev.payload)));
            else if (ev.op != detail::opcode::text)
                send_error(error::invalid_message, "binary frames are not part of the protocol",
                           {});
            else
                try {
                    on_text(ev.payload);
                } catch (std::exception const& e) {
                    cfg().logger.log(log_level::error, "message_failed",
                                     {{"client", client_id()}, {"what", e.what()}});
                    send_error(error::internal_error, "internal error", {});
                }
            if (ev.compressed && shard_.inflate_buffer().capacity() > 256 * 1024)
                shard_.inflate_buffer() = std::string(); // a large message leaves nothing behind
            break;
        case detail::frame_event::ping:
            if (!closing_) {
                queue_.push_control(detail::make_shared_frame(
                    detail::make_frame(detail::opcode::pong, ev.payload)));
                schedule_write();
            }
            break;
        case detail::frame_event::pong:
            break;
        case detail::frame_event::close:
            close_received_ = true;
            // Echo the peer's code (RFC 6455 5.5.1); 1005 means none was sent.
            close(ev.code == 1005 ? 1000 : ev.code, "");
            reader_done_ = true;
            break;
        case detail::frame_event::fail:
            shard_.counters().errors.fetch_add(1, std::memory_order_relaxed);
            cfg().logger.log(log_level::info, "protocol_error",
                             {{"client", client_id()},
                              {"code", ev.code},
                              {"reason", make_error_code(ev.err).message()}});
            if (ev.err == error::message_too_large && !closing_)
                send_error(error::message_too_large,
                           "message exceeds " + std::to_string(cfg().max_message_size) + " bytes",
                           {});
            close(ev.code, make_error_code(ev.err).message());
            reader_done_ = true;
            break;
        }
    }
    return off;
}

inline bool session::inflate(detail::frame_event& ev) {
    // Inflated into the shard's buffer, never past the message limit: a compression bomb
    // costs at most max_message_size, then the connection is closed with 1009.
    auto& out = shard_.inflate_buffer();
    auto const r = shard_.inflater().inflate(ev.payload, cfg().max_message_size, out);
    using result = detail::inflater::result;
    if (r == result::ok && (ev.op != detail::opcode::text || detail::valid_utf8(out))) {
        ev.payload = out;
        return true;
    }
    shard_.counters().errors.fetch_add(1, std::memory_order_relaxed);
    std::uint16_t const code = r == result::too_large ? 1009 : 1007;
    std::string_view const why = r == result::too_large  ? "message too large once inflated"
                                 : r == result::bad_data ? "invalid compressed data"
                                                         : "invalid UTF-8 once inflated";
    cfg().logger.log(log_level::info, "protocol_error",
                     {{"client", client_id()}, {"code", code}, {"reason", why}});
    if (r == result::too_large)
        send_error(error::message_too_large,
                   "message exceeds " + std::to_string(cfg().max_message_size) +
                       " bytes once inflated",
                   {});
    if (out.capacity() > 256 * 1024)
        out = std::string();
    close(code, why);
    reader_done_ = true;
    return false;
}

inline std::string_view session::socketio_alias() const noexcept {
    // Set once the polling session is taken over (on_upgrade), not at the probe: a probing
    // WebSocket is not the client's connection yet.
    return socketio() ? std::string_view(cold_->sio->socket_id) : std::string_view();
}

inline std::shared_ptr<detail::polling_session> session::polling_to_take() const {
    // The id finds the session; only the whole sid, with its random part, proves the client
    // owns it (as for a polling request, detail/io/socketio_polling.hpp).
    auto p = shard_.find_polling(cold_->sio->upgrade_from);
    return p && !p->ended() && p->sid() == cold_->sio->upgrade_sid ? p : nullptr;
}

inline void session::on_probe() {
    if (!sio_state().upgrade_from)
        return;
    if (auto p = polling_to_take())
        p->release_poll();
    else
        close(1008, "Session ID unknown");
}

inline void session::on_upgrade() {
    if (!sio_state().upgrade_from)
        return;
    auto p = polling_to_take();
    sio_state().upgrade_from = 0;
    if (!p)
        return close(1008, "Session ID unknown");
    // The polling session's subscriptions, identity and queued packets move here, in order;
    // then only this WebSocket carries the session.
    take_over(p->state());
    sio_state().socket_id = p->client_id();
    sio_state().connected = p->sio_state().connected;
    sio_state().pid = std::move(p->sio_state().pid);
    sio_state().log = std::move(p->sio_state().log);
    // Packets already queued there may ask for acks: their answers come here. So do the
    // answers the client's EVENTs still wait for (held ACKs): the poster of the polling
    // session finds this one through the shard (polling_session::poster_type::answer).
    sio_state().last_ack_request = p->sio_state().last_ack_request;
    sio_state().ack_requests = std::move(p->sio_state().ack_requests);
    sio_state().held_acks = std::move(p->sio_state().held_acks);
    sio_state().took_over = p->id();
    shard_.note_upgrade(p->id(), id_);
    std::vector<detail::frame_ptr> queued;
    p->take_queued(queued);
    for (auto const& f : queued)
        push_frame(f);
    p->upgraded();
}

inline void session::on_text(std::string_view text) {
    if (socketio())
        on_engine_io(text);
    else
        handle_text(text);
}

} // namespace rtpush

#include <rtpush/impl/session_write.hpp>

#endif
