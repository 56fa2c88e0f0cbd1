//
// rtpush: one Server-Sent Events stream (GET /sse), the fallback transport for networks that
// block WebSocket. docs/protocol.md, "Server-Sent Events".
//
#ifndef RTPUSH_DETAIL_SSE_SESSION_HPP
#define RTPUSH_DETAIL_SSE_SESSION_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/access.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/detail/sse.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/protocol.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rtpush::detail {

/// What the server decided about a GET /sse before the stream starts.
struct sse_params {
    std::vector<topic> topics; ///< one per channel, all at the same scope
    /// Where each topic resumes (by key), from Last-Event-ID; empty: a fresh snapshot.
    std::map<std::string, recover_position> resume;
    std::string org;            ///< the connection counts against it (already counted)
    std::string user;           ///< from the token, when there was one
    std::string remote;         ///< peer address, for logs and /api/connections
    std::string head;           ///< the HTTP response head, written first
    std::int64_t token_exp = 0; ///< the token's `exp` (seconds since the epoch); 0: none
    bool authenticated = false;
    bool rooms_counted = false; ///< each topic counts against room_max_size
};

/// Gives back what a stream counted against its organization, its user and its rooms
/// (server_impl's count_stream).
inline void uncount_stream(connection_quotas& q, const sse_params& p) {
    if (!p.org.empty())
        q.orgs.remove(p.org);
    if (p.authenticated && !p.user.empty())
        q.users.remove(p.user);
    if (p.rooms_counted)
        for (auto const& t : p.topics)
            q.rooms.remove(t.key());
}

/// A subscriber that writes the hub's messages as `text/event-stream`: each initial/update
/// as an event whose id is the stream's position (detail::sse_ids), other messages as events
/// without an id, heartbeats as comments. The same shared frames as WebSocket sessions get,
/// written without their frame header; nothing is re-serialised.
///
/// Like a WebSocket session it has one write in flight and a bounded queue (queue_max_frames,
/// queue_max_bytes): a reader too slow to keep up is dropped (the disconnect policy, always:
/// dropping an event silently would break resumption), never buffered without limit. The
/// client sends nothing after its request; a readiness wait notices when it goes away.
///
/// All member functions must be called on the shard's thread.
class sse_session final : public subscriber {
public:
    using socket_type = boost::asio::ip::tcp::socket;

    sse_session(shard& sh, rtpush::hub& h, const server_config& cfg, socket_type sock,
                std::uint64_t id, sse_params p)
        : shard_(sh)
        , hub_(h)
        , cfg_(cfg)
        , socket_(std::move(sock))
        , id_(id)
        , p_(std::move(p))
        , ids_(p_.topics.empty() ? scope{} : p_.topics.front().scope, hub_.epoch())
        , connected_at_(std::chrono::system_clock::now()) {
        boost::system::error_code ec;
        socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
        socket_.non_blocking(true, ec);
    }
    sse_session(const sse_session&) = delete;
    sse_session& operator=(const sse_session&) = delete;

    ~sse_session() {
        if (shard_.quotas)
            uncount_stream(*shard_.quotas, p_);
        if (dirty_)
            shard_.forget_dirty(this);
        for (auto& s : subs_)
            shard_.subscriptions().remove(*s);
        shard_.remove_sse(id_);
    }

    /// Writes the response head and, for every topic, `subscribed` then its snapshot (or the
    /// replay from the resume position), registering each subscription in the same step as
    /// its snapshot: nothing is lost or repeated at the seam with live updates. Then runs on
    /// completion handlers until the peer leaves or abort(); `done(this)` is called last,
    /// from a posted handler, and may delete the session.
    void start(std::function<void(sse_session*)> done) {
        done_ = std::move(done);
        shard_.add_sse(id_, this);
        enqueue(nullptr, std::move(p_.head));
        // The browser waits this long before reconnecting on its own.
        enqueue(nullptr, "retry: 2000\n\n");
        send_message(message::connected(client_id(), cfg_.server_name, cfg_.heartbeat_interval));
        std::vector<frame_ptr> frames;
        for (auto const& t : p_.topics) {
            frames.clear();
            std::uint64_t since = 0;
            std::optional<bool> recovered;
            std::string_view reason;
            auto const it = p_.resume.find(t.key());
            bool replay = false;
            if (it != p_.resume.end()) {
                // As a WebSocket session: a replay may take half of what the queue has free.
                auto const free_frames =
                    cfg_.queue_max_frames - std::min(items_.size(), cfg_.queue_max_frames);
                auto const free_bytes =
                    cfg_.queue_max_bytes - std::min(bytes_, cfg_.queue_max_bytes);
                auto const r =
                    hub_.subscribe_frames(t, it->second, frames, free_frames / 2, free_bytes / 2);
                since = r.counter;
                recovered = r.recovered();
                replay = r.recovered();
                if (replay) {
                    // Topics without missed publications keep their position in later ids.
                    if (it->second.offset)
                        ids_.note(t.key(), it->second.offset);
                    for (auto const& [key, seq] : it->second.offsets)
                        ids_.note(key, seq);
                } else {
                    reason = to_string(r.recovery);
                }
            } else {
                since = hub_.initial_frames(t, frames);
            }
            send_message(message::subscribed(t, {}, recovered, hub_.epoch(), reason));
            auto sub = std::make_unique<subscription>();
            sub->key = t.key();
            sub->owner = this;
            sub->since = since;
            shard_.subscriptions().add(*sub);
            subs_.push_back(std::move(sub));
            for (std::size_t i = 0; i < frames.size(); ++i) {
                // A snapshot's phases of one topic are consecutive; the position moves past the
                // topic with its last one (the topic's head), so a stream cut between them
                // resumes before the topic and gets all of it again.
                bool const last_of_topic =
                    replay || i + 1 == frames.size() || frames[i + 1]->topic != frames[i]->topic;
                std::uint64_t head_seq = frames[i]->seq;
                if (!replay)
                    for (std::size_t j = i; j > 0 && frames[j - 1]->topic == frames[i]->topic; --j)
                        head_seq = std::max(head_seq, frames[j - 1]->seq);
                deliver(frames[i], last_of_topic, head_seq);
            }
        }
        wait_readable();
    }

    /// A live delivery from the shard.
    void push(const frame_ptr& f) override { deliver(f, true, f->seq); }

    void flush() override {
        dirty_ = false;
        start_write();
    }

    /// The shard's heartbeat: a comment line (EventSource ignores it; proxies and the TCP
    /// connection see traffic).
    void on_heartbeat(const frame_ptr& heartbeat) { enqueue(heartbeat, ": "); }

    /// The shard's tick (`now`: wall-clock seconds): `token_expiring` once before the stream's
    /// token ends, then an AUTH_FAILED error and the end of the stream. A stream cannot take a
    /// fresh token: the client reconnects with one and its Last-Event-ID, missing nothing
    /// (docs/security.md, "A token's lifetime on an open connection").
    void check_token_expiry(std::int64_t now) {
        if (aborted_ || ending_)
            return;
        auto const due = token_expiry_at(p_.token_exp, cfg_.jwt_leeway, cfg_.token_expiry_warning,
                                         expiry_warned_, now);
        if (due.what == token_expiry::step::warn) {
            expiry_warned_ = true;
            send_message(message::token_expiring(p_.token_exp, due.expires_in));
        } else if (due.what == token_expiry::step::expire) {
            send_message(message::error(error::auth_failed,
                                        "token expired: reconnect with a fresh token", {}));
            ending_ = true; // ends once the queue is written (on_write)
            end_reason_ = "token expired";
        }
    }

    /// Ends the stream at once (shutdown, slow reader). Idempotent.
    void abort(std::string_view reason) {
        if (end_reason_.empty())
            end_reason_ = std::string(reason);
        aborted_ = true;
        boost::system::error_code ec;
        socket_.cancel(ec);
        socket_.close(ec);
        maybe_finish();
    }

    std::string client_id() const { return "c" + std::to_string(id_); }
    std::uint64_t id() const noexcept { return id_; }
    const std::string& organization() const noexcept { return p_.org; }
    const std::string& remote() const noexcept { return p_.remote; }
    const std::vector<topic>& topics() const noexcept { return p_.topics; }
    const std::string& end_reason() const noexcept { return end_reason_; }
    std::size_t queued() const noexcept { return items_.size(); }
    std::size_t queued_bytes() const noexcept { return bytes_; }

    /// The connection as /api/connections shows it.
    boost::json::object info() const {
        boost::json::object o;
        o["socket_id"] = client_id();
        o["transport"] = "sse";
        o["user_id"] = p_.user;
        o["organization_id"] = p_.org;
        o["authenticated"] = p_.authenticated;
        o["status"] = aborted_ ? "closing" : "connected";
        boost::json::array subs;
        for (auto const& s : subs_)
            subs.push_back(boost::json::string(s->key));
        o["subscriptions"] = std::move(subs);
        o["connected_at"] = iso8601(connected_at_);
        o["last_activity_at"] = iso8601(connected_at_);
        o["remote_address"] = p_.remote;
        o["messages_received"] = 0;
        o["messages_sent"] = sent_;
        o["queued"] = items_.size();
        o["dropped"] = 0;
        return o;
    }

private:
    struct item {
        frame_ptr frame;  // the shared message (its JSON text is written), or null
        std::string head; // "id: ...\ndata: ", "data: ", ": ", or raw text when no frame
        std::string own;  // the text, when it had to be rewritten (it held a raw newline)
        bool rewritten = false;

        std::string_view text() const { return rewritten ? own : frame_text(*frame); }
        std::size_t size() const {
            return head.size() + (frame ? text().size() + sse_event_tail.size() : 0);
        }
    };

    void send_message(std::string json) {
        enqueue(make_shared_frame(make_frame(opcode::text, json)), sse_event_head({}));
    }

    // One message: an initial/update gets an id when the stream's position moves past it.
    void deliver(const frame_ptr& f, bool advances, std::uint64_t seq) {
        if (aborted_)
            return;
        std::string head;
        if (!f->topic.empty() && seq != 0 && advances) {
            ids_.note(f->topic, seq);
            head = sse_event_head(ids_.id());
        } else {
            head = sse_event_head({});
        }
        enqueue(f, std::move(head));
    }

    void enqueue(const frame_ptr& f, std::string head) {
        if (aborted_)
            return;
        item it;
        it.frame = f;
        it.head = std::move(head);
        if (f) {
            auto const text = frame_text(*f);
            if (text.empty())
                return; // not a text frame: nothing an SSE client understands
            if (text.find_first_of("\r\n") != std::string_view::npos) {
                // Raw newlines would end the data field: continue it on further `data:` lines.
                for (char c : text) {
                    if (c == '\n')
                        it.own += "\ndata: ";
                    else if (c != '\r')
                        it.own += c;
                }
                it.rewritten = true;
            }
        }
        std::size_t const n = it.size();
        if (items_.size() >= std::max<std::size_t>(cfg_.queue_max_frames, 1) ||
            (cfg_.queue_max_bytes && bytes_ + n > cfg_.queue_max_bytes && !items_.empty())) {
            shard_.counters().dropped.fetch_add(1, std::memory_order_relaxed);
            shard_.counters().slow_consumers.fetch_add(1, std::memory_order_relaxed);
            cfg_.logger.log(log_level::warning, "slow_consumer",
                            {{"client", client_id()},
                             {"transport", "sse"},
                             {"queued", items_.size()},
                             {"bytes", bytes_}});
            abort("slow consumer: outbound queue full");
            return;
        }
        bytes_ += n;
        items_.push_back(std::move(it));
        if (!writing_ && !dirty_) {
            dirty_ = true;
            shard_.mark_dirty(this);
        }
    }

    void start_write() {
        if (writing_ || aborted_ || items_.empty())
            return;
        batch_.clear();
        buffers_.clear();
        std::size_t taken = 0;
        while (!items_.empty() && batch_.size() < cfg_.write_batch_frames &&
               (batch_.empty() || taken < cfg_.write_batch_bytes)) {
            std::size_t const n = items_.front().size();
            taken += n;
            bytes_ -= n;
            batch_.push_back(std::move(items_.front()));
            items_.pop_front();
        }
        // Buffers point into the batch only once it stopped growing (no reallocation after).
        for (auto const& it : batch_) {
            buffers_.emplace_back(it.head.data(), it.head.size());
            if (it.frame) {
                auto const text = it.text();
                buffers_.emplace_back(text.data(), text.size());
                buffers_.emplace_back(sse_event_tail.data(), sse_event_tail.size());
            }
        }
        writing_ = true;
        boost::asio::async_write(
            socket_, buffers_,
            [this](boost::system::error_code ec, std::size_t n) { on_write(ec, n); });
    }

    void on_write(boost::system::error_code ec, std::size_t n) {
        writing_ = false;
        auto& counters = shard_.counters();
        counters.writes.fetch_add(1, std::memory_order_relaxed);
        if (ec) {
            batch_.clear();
            abort(aborted_ ? std::string_view{} : "write failed: " + ec.message());
            return;
        }
        auto const now = std::chrono::steady_clock::now();
        std::uint64_t frames = 0;
        for (auto const& it : batch_) {
            if (!it.frame)
                continue;
            ++frames;
            if (!it.frame->timed)
                continue;
            auto const us = static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(now - it.frame->created)
                    .count());
            auto const& bounds = latency_bounds_us;
            auto const b = static_cast<std::size_t>(
                std::lower_bound(bounds.begin(), bounds.end(), us) - bounds.begin());
            if (b < bounds.size())
                counters.latency_buckets[b].fetch_add(1, std::memory_order_relaxed);
            counters.latency_us_sum.fetch_add(us, std::memory_order_relaxed);
            counters.latency_samples.fetch_add(1, std::memory_order_relaxed);
            if (us > counters.latency_us_max.load(std::memory_order_relaxed))
                counters.latency_us_max.store(us, std::memory_order_relaxed);
        }
        sent_ += frames;
        counters.frames_sent.fetch_add(frames, std::memory_order_relaxed);
        counters.bytes_sent.fetch_add(n, std::memory_order_relaxed);
        batch_.clear();
        if (aborted_) {
            maybe_finish();
            return;
        }
        if (ending_ && items_.empty()) {
            abort(end_reason_);
            return;
        }
        start_write();
    }

    void wait_readable() {
        reading_ = true;
        socket_.async_wait(socket_type::wait_read, [this](boost::system::error_code ec) {
            reading_ = false;
            if (ec || aborted_) {
                abort(aborted_ ? std::string_view{} : "connection lost");
                return;
            }
            // Nothing is expected from the client; read and discard until EOF.
            char buf[1024];
            for (;;) {
                std::size_t const got = socket_.read_some(boost::asio::buffer(buf), ec);
                if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again)
                    break;
                if (ec || got == 0) {
                    abort(ec == boost::asio::error::eof ? "client closed" : "connection lost");
                    return;
                }
            }
            wait_readable();
        });
    }

    void maybe_finish() {
        if (finished_ || reading_ || writing_)
            return;
        finished_ = true;
        boost::system::error_code ec;
        socket_.shutdown(socket_type::shutdown_both, ec);
        socket_.close(ec);
        boost::asio::post(socket_.get_executor(), [this] {
            if (done_)
                done_(this);
        });
    }

    shard& shard_;
    rtpush::hub& hub_;
    const server_config& cfg_;
    socket_type socket_;
    std::uint64_t id_;
    sse_params p_;
    sse_ids ids_;
    std::vector<std::unique_ptr<subscription>> subs_;
    std::deque<item> items_;
    std::size_t bytes_ = 0;
    std::vector<item> batch_;
    std::vector<boost::asio::const_buffer> buffers_;
    std::function<void(sse_session*)> done_;
    std::chrono::system_clock::time_point connected_at_;
    std::uint64_t sent_ = 0;
    std::string end_reason_;
    bool writing_ = false;
    bool reading_ = false;
    bool dirty_ = false;
    bool aborted_ = false;
    bool finished_ = false;
    bool ending_ = false;        // closes once the queue is written
    bool expiry_warned_ = false; // token_expiring sent
};

} // namespace rtpush::detail

#endif
