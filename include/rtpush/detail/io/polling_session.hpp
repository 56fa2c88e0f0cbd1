//
// rtpush: a Socket.IO client on Engine.IO's HTTP long-polling transport (docs/protocol.md,
// "Coming from Socket.IO"). socket.io-client starts on polling unless told otherwise; the
// session lives between its requests, on one shard's thread: a GET takes what is queued (or
// waits for something, at most until the next ping), a POST brings the client's packets. The
// protocol is the WebSocket session's (client_protocol, socketio_protocol); the packets are
// the same shared Socket.IO frames, their payloads joined with the record separator.
//
#ifndef RTPUSH_DETAIL_IO_POLLING_SESSION_HPP
#define RTPUSH_DETAIL_IO_POLLING_SESSION_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/client_protocol.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/detail/socketio_protocol.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <memory>
#include <string>

namespace rtpush::detail {

/// A polling sid is "<shard>.<id>.<secret>": the shard that holds the session, its id there,
/// and a random part no other client can guess. False when `sid` is not of that form.
inline bool parse_polling_sid(std::string_view sid, std::size_t& shard_index, std::uint64_t& id) {
    auto const dot1 = sid.find('.');
    auto const dot2 = dot1 == std::string_view::npos ? dot1 : sid.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos)
        return false;
    auto const* b = sid.data();
    return std::from_chars(b, b + dot1, shard_index).ptr == b + dot1 &&
           std::from_chars(b + dot1 + 1, b + dot2, id).ptr == b + dot2;
}

class polling_session final : public subscriber,
                              public client_protocol<polling_session>,
                              public socketio_protocol<polling_session>,
                              public std::enable_shared_from_this<polling_session> {
public:
    polling_session(shard& sh, const server_config& cfg, std::uint64_t id, std::string sid,
                    std::string remote)
        : shard_(sh)
        , cfg_(cfg)
        , id_(id)
        , sid_(std::move(sid))
        , remote_(std::move(remote))
        , queue_(cfg.queue_max_frames, cfg.queue_max_bytes, cfg.queue_policy)
        , last_seen_(std::chrono::steady_clock::now())
        , connected_at_(std::chrono::system_clock::now()) {}
    ~polling_session() { leave(); }

    const std::string& sid() const noexcept { return sid_; }
    std::uint64_t id() const noexcept { return id_; }
    /// The connection's public id (`socket.id`, /api/connections, presence, targeting);
    /// the Engine.IO sid, with its secret part, is the transport's own (engine_sid).
    std::string client_id() const { return "c" + std::to_string(id_); }
    const std::string& engine_sid() const noexcept { return sid_; }
    std::string remote() const { return remote_; }
    bool ended() const noexcept { return ended_; }
    const std::string& organization() const noexcept { return client_.org; }

    /// The connection as /api/connections shows it (a WebSocket session's info(), less what
    /// a polling transport does not have).
    boost::json::object info() const {
        boost::json::object o;
        o["socket_id"] = client_id();
        client_.describe(o);
        o["status"] = ended_ ? "closing" : "connected";
        o["transport"] = "polling";
        o["connected_at"] = iso8601(connected_at_);
        o["remote_address"] = remote_;
        o["queued"] = queue_.size();
        return o;
    }

    /// The handshake's answer: the open packet, offering the upgrade to WebSocket.
    std::string open() { return open_packet(true); }

    // The upgrade to WebSocket (the session that takes over is on this shard, see
    // rtpush::session::on_upgrade): a probe makes the waiting GET return (a noop), so that the
    // client pauses polling; then the WebSocket takes the state and the queued packets.
    void release_poll() { send_packet(sio::encode_eio(sio::eio_type::noop)); }
    client_state& state() noexcept { return client_; }
    socketio_state& sio_state() noexcept { return sio_; }
    void take_queued(std::vector<frame_ptr>& out) {
        queue_.take(out, SIZE_MAX, SIZE_MAX);
        queue_.shrink();
    }
    /// The state moved to a WebSocket: this transport ends without a close packet (a GET
    /// still waiting gets a noop).
    void upgraded() {
        upgraded_ = true;
        end("upgraded to WebSocket");
    }

    /// A GET: the queued packets, waiting for one when there is none. False when another GET
    /// is already waiting (Engine.IO ends the session: the client misbehaves). The waiting
    /// form, for a GET that cannot be parked (TLS, bytes behind it on its connection).
    boost::asio::awaitable<bool> poll(std::string& body) {
        if (get_waiting_) {
            end("overlapping polls");
            co_return false;
        }
        get_waiting_ = true;
        while (queue_.empty() && !ended_) {
            if (!wake_)
                wake_ = std::make_unique<boost::asio::steady_timer>(shard_.get_executor());
            wake_->expires_at(std::chrono::steady_clock::time_point::max());
            co_await wake_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
        get_waiting_ = false;
        take_payload(body);
        co_return true;
    }

    enum class poll_result { answered, parked, overlapping };
    /// A GET that can be parked (shard::parked_poll): the queued packets now, into `body`;
    /// or, when there are none, `parked`: the caller parks its connection on `where` under
    /// `park_id`, and the payload goes there (shard::answer_parked) once something is queued.
    poll_result poll_or_park(std::string& body, shard& where, std::uint64_t park_id) {
        if (get_waiting_) {
            end("overlapping polls");
            return poll_result::overlapping;
        }
        if (!queue_.empty() || ended_) {
            take_payload(body);
            return poll_result::answered;
        }
        get_waiting_ = true;
        parked_on_ = &where;
        park_id_ = park_id;
        return poll_result::parked;
    }

    /// A POST: the client's packets. An error text when the body is not a payload.
    std::string receive(std::string_view body) {
        last_seen_ = std::chrono::steady_clock::now();
        std::vector<sio::eio_packet> packets;
        sio::limits lim;
        lim.max_size = cfg_.max_message_size;
        if (auto e = sio::decode_payload(body, packets, lim); e != sio::errc::ok) {
            end("invalid polling payload");
            return std::string(sio::describe(e));
        }
        for (auto const& p : packets) {
            if (ended_)
                break;
            on_engine_io(sio::encode_eio(p.type, p.data));
        }
        return {};
    }

    /// The shard's heartbeat: Engine.IO's ping, and the end of a client gone silent (no
    /// request for idle_timeout).
    void on_heartbeat(std::chrono::steady_clock::time_point now,
                      std::chrono::milliseconds idle_timeout) {
        if (!get_waiting_ && now - last_seen_ > idle_timeout) {
            end("idle timeout"); // the caller holds a reference
            return;
        }
        send_packet(sio::encode_eio(sio::eio_type::ping));
    }

    /// Ends the session: its subscriptions go now, a waiting GET gets the close packet. The
    /// caller holds a reference (the shard's is dropped here).
    void end(std::string_view why) {
        if (ended_)
            return;
        ended_ = true;
        end_reason_ = why;
        if (!upgraded_)
            sio_keep();
        leave();
        wake();
        if (!get_waiting_)
            shard_.remove_polling(id_);
    }
    const std::string& end_reason() const noexcept { return end_reason_; }

    void push(const frame_ptr& f) override {
        if (auto t = sio_frame(f); t && !sio_hold(t))
            queue_frame(t);
    }
    void flush() override {}

private:
    friend class client_protocol<polling_session>;
    friend class socketio_protocol<polling_session>;

    protocol_context& protocol_env() noexcept { return shard_.protocol(); }
    client_state& client() noexcept { return client_; }
    bool closing() const noexcept { return ended_; }
    subscriber* as_subscriber() noexcept { return this; }
    std::size_t queued() const noexcept { return queue_.size(); }
    std::size_t queued_bytes() const noexcept { return queue_.bytes(); }
    void send_json(std::string text) { sio_json(std::move(text)); }
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id) {
        shard_.counters().errors.fetch_add(1, std::memory_order_relaxed);
        send_json(message::error(code, msg, id));
    }
    void send_packet(std::string packet) {
        queue_frame(make_shared_frame(make_frame(opcode::text, packet)));
    }
    void push_twin(const frame_ptr& f) { queue_frame(f); }
    std::uint64_t hold_answer() { return sio_hold_answer(); }
    void send_answer(std::uint64_t token, std::string text) { sio_answer(token, std::move(text)); }
    void on_probe() {}   // probes come over WebSocket
    void on_upgrade() {} // ... and so does the upgrade
    void close(std::uint16_t, std::string_view why) { end(why); }
    struct poster_type {
        shard* sh;
        std::uint64_t id;
        template <class F>
        void post(F f) const {
            boost::asio::post(sh->get_executor(), [sh = sh, id = id, f = std::move(f)]() mutable {
                auto s = sh->find_polling(id);
                if (s && !s->ended())
                    f(s.get());
                else if (auto* moved = sh->upgraded_session(id))
                    f(moved); // upgraded meanwhile: the client, its held ACKs, are there now
                else
                    f(static_cast<polling_session*>(nullptr));
            });
        }
    };
    poster_type poster() const noexcept { return {&shard_, id_}; }

    void queue_frame(const frame_ptr& f) {
        if (ended_)
            return;
        if (queue_.push(f) == send_queue::push_result::overflow) {
            shard_.counters().slow_consumers.fetch_add(1, std::memory_order_relaxed);
            end("slow consumer");
            return;
        }
        wake();
    }

    /// Something to send (or the end): the waiting GET is answered. A parked one is answered
    /// from a handler of its own, so that what one pass queues (a fan-out, a reply and its
    /// events) goes in one payload, as a waiting GET resumed later takes it.
    void wake() {
        if (!parked_on_) {
            if (wake_)
                wake_->cancel();
            return;
        }
        if (answer_posted_)
            return;
        answer_posted_ = true;
        boost::asio::post(shard_.get_executor(), [self = shared_from_this()] {
            self->answer_posted_ = false;
            if (self->parked_on_)
                self->answer_parked();
        });
    }
    void answer_parked() {
        std::string body;
        get_waiting_ = false;
        take_payload(body);
        auto* where = std::exchange(parked_on_, nullptr);
        boost::asio::post(where->get_executor(),
                          [where, id = park_id_, body = std::move(body)]() mutable {
                              if (where->answer_parked)
                                  where->answer_parked(id, std::move(body));
                          });
    }
    /// What a GET takes: every queued packet (up to the payload limit), and the end.
    void take_payload(std::string& body) {
        last_seen_ = std::chrono::steady_clock::now();
        std::vector<frame_ptr> batch;
        queue_.take(batch, SIZE_MAX, cfg_.max_message_size);
        queue_.shrink();
        for (auto const& f : batch) {
            sio::append_to_payload(body, frame_payload(f->bytes));
            sio_written(f);
        }
        // An ended session answers its last GET with the end, and leaves the shard: what did
        // not fit in this payload is not sent (its client is not polling again: a GET for an
        // ended session is refused, unknown_sid).
        if (ended_) {
            sio::append_to_payload(
                body, sio::encode_eio(upgraded_ ? sio::eio_type::noop : sio::eio_type::close));
            shard_.remove_polling(id_);
        }
    }

    shard& shard_;
    const server_config& cfg_;
    std::uint64_t id_;
    std::string sid_;
    std::string remote_;
    client_state client_;
    socketio_state sio_;
    send_queue queue_;
    /// A waiting (not parked) GET's wake-up, made by the first one: a parked GET needs none.
    std::unique_ptr<boost::asio::steady_timer> wake_;
    std::chrono::steady_clock::time_point last_seen_;
    std::chrono::system_clock::time_point connected_at_; ///< for /api/connections
    std::string end_reason_;
    shard* parked_on_ = nullptr; ///< the shard where the waiting GET is parked, if it is
    std::uint64_t park_id_ = 0;  ///< ... under this id
    bool get_waiting_ = false;
    bool answer_posted_ = false;
    bool ended_ = false;
    bool upgraded_ = false;
};

} // namespace rtpush::detail

#endif
