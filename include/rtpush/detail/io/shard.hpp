//
// rtpush: one io thread's share of the server: its io_context, sessions and subscriptions.
//
#ifndef RTPUSH_DETAIL_SHARD_HPP
#define RTPUSH_DETAIL_SHARD_HPP

#include <rtpush/detail/ack_tracker.hpp>
#include <rtpush/detail/audience.hpp>
#include <rtpush/detail/counters.hpp>
#include <rtpush/detail/deflate.hpp>
#include <rtpush/detail/io/poller.hpp>
#include <rtpush/detail/protocol_context.hpp>
#include <rtpush/detail/rate_limit.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/detail/subscription_index.hpp>
#include <rtpush/detail/write_cork.hpp>
#include <rtpush/topic.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#if defined(_WIN32)
#include <winsock2.h>
#else
#include <unistd.h>
#endif

namespace rtpush {
class session;
} // namespace rtpush

namespace rtpush::detail {

/// Closes a descriptor no socket object owns (released from one, or not yet assigned to one).
inline void close_native(boost::asio::ip::tcp::socket::native_handle_type fd) noexcept {
#if defined(_WIN32)
    ::closesocket(fd);
#else
    ::close(fd);
#endif
}

/// A descriptor no socket object owns, closed unless released: a connection from accept4()
/// until its session or its wait takes it (server_impl::accept_loop, await_request).
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept
        : fd_(fd) {}
    unique_fd(unique_fd&& o) noexcept
        : fd_(o.release()) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.release();
        }
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0)
            close_native(std::exchange(fd_, -1));
    }

private:
    int fd_ = -1;
};

class sse_session;
class polling_session;

/// What the server does when one of its WebSocket sessions has ended (session::start).
struct session_end {
    using handler = void (*)(void* context, rtpush::session* s);
    handler handler_fn = nullptr;
    void* context = nullptr;
};

/// One publication on its way to the subscribers of one io thread.
struct delivery {
    frame_ptr frame;
    std::array<std::string, 4> keys; ///< subscription keys that receive it, widest first
    int key_count = 0;
    std::uint64_t counter = 0; ///< hub-wide order; see hub::initial_frames
    /// Set for a delivery to connections rather than to a topic's subscribers (`keys` unused).
    std::shared_ptr<const audience> to;
};

class shard;

/// A plain connection waiting for its next request, or for its first when that was not there
/// at the accept (server_impl::wait_for_request), through its shard's poller: no Asio
/// descriptor state and no wait operation, about 80 bytes where a wait in Asio's reactor
/// held about 470. Listed in its shard, oldest first, so that the shard's tick closes those
/// silent past the handshake timeout without a timer each; registered in the poller under
/// its address with the low bit set (server_impl::poller_events tells it from a session).
struct idle_connection {
    shard* owner = nullptr;
    int fd = -1;
    boost::asio::ip::tcp::endpoint peer;
    std::chrono::steady_clock::time_point deadline;
    idle_connection* prev = nullptr;
    idle_connection* next = nullptr;
};

/// Everything here but the counters is touched only by the shard's own thread: the
/// io_context is run by exactly one thread, so it is the implicit strand of all its sessions.
class shard {
public:
    explicit shard(std::size_t index)
        : index_(index)
        , ioc_(1)
        , work_(ioc_.get_executor())
        , poller_(ioc_)
        , cork_timer_(ioc_) {
        // Cancelled at shutdown like the periodic timers: its handler then flushes at once.
        timers.push_back(&cork_timer_);
    }

    /// See write_cork. Call before the shard runs.
    void set_cork(std::chrono::microseconds max_delay, double threshold, cork_policy policy) {
        cork_ = write_cork(max_delay, threshold, policy);
    }
    const write_cork& cork() const noexcept { return cork_; }

    std::size_t index() const noexcept { return index_; }
    boost::asio::io_context& context() noexcept { return ioc_; }
    boost::asio::io_context::executor_type get_executor() noexcept { return ioc_.get_executor(); }
    shard_counters& counters() noexcept { return counters_; }
    /// The readiness of this thread's plain WebSocket sessions (see poller).
    ::rtpush::detail::poller& poller() noexcept { return poller_; }
    /// What shutdown left (a GET parked, a connection idle, after the shard's drain): closed.
    ~shard() {
        close_parked_polls();
        expire_idle({}, true);
    }

    /// Called by the hub, from any thread, under the hub's mutex (so in counter order): queues
    /// a delivery for this shard's thread, where one posted drain runs every queued delivery in
    /// that order. Not one asio::post per delivery: an io_context made for one thread
    /// (concurrency hint 1) keeps what its own thread posts in a private queue until the
    /// running handler returns, so a delivery posted from this thread could run after one that
    /// another thread posted later, and a topic's updates would arrive out of seq order.
    void enqueue(std::shared_ptr<const delivery> d) {
        bool post_drain = false;
        {
            std::lock_guard<std::mutex> lock(inbox_mutex_);
            inbox_.push_back(std::move(d));
            post_drain = !drain_posted_;
            drain_posted_ = true;
        }
        if (post_drain)
            boost::asio::post(ioc_, [this] { drain_inbox(); });
    }

    /// Queues `d.frame` once on every session subscribed to one of its keys.
    void deliver(const delivery& d) {
        auto const t0 = std::chrono::steady_clock::now();
        cork_.observe(t0);
        std::uint64_t const pushed = d.to ? (deliver_to ? deliver_to(*d.to, d.frame) : 0)
                                          : subs_.deliver(d.keys, d.key_count, d.counter, d.frame);
        // rtpush_fanout_duration_seconds: two clock reads per publication per thread, against
        // a loop over every subscriber of the topic. The second also dates the cork's count.
        auto const t1 = std::chrono::steady_clock::now();
        auto const ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        auto const b = static_cast<std::size_t>(
            std::lower_bound(fanout_bounds_ns.begin(), fanout_bounds_ns.end(), ns) -
            fanout_bounds_ns.begin());
        if (b < fanout_bounds_ns.size())
            counters_.fanout_buckets[b].fetch_add(1, std::memory_order_relaxed);
        counters_.fanout_count.fetch_add(1, std::memory_order_relaxed);
        counters_.fanout_ns_sum.fetch_add(ns, std::memory_order_relaxed);
        if (pushed)
            cork_.count(pushed, t1);
    }

    /// Remembers a subscriber with queued frames. Without a cork delay one posted flush then
    /// starts the writes of all of them, after every delivery already posted to this shard
    /// has been queued. With one (under load, see write_cork), the subscribers are flushed in
    /// `cork_groups` groups, one group per `delay / cork_groups`: each is written once per
    /// delay with everything queued meanwhile, and the thread writes evenly instead of in one
    /// burst per delay that the last subscriber of the burst would wait for.
    void mark_dirty(subscriber* s) {
        dirty_[cork_group(s)].push_back(s);
        ++dirty_count_;
        if (!cork_.corked() || stopping) {
            if (!flush_posted_) {
                flush_posted_ = true;
                boost::asio::post(ioc_, [this] {
                    flush_posted_ = false;
                    flush_all();
                });
            }
            return;
        }
        if (!ticking_) {
            ticking_ = true;
            next_tick_ = write_cork::clock::now() + cork_tick();
            arm_cork_tick();
        }
    }

    void forget_dirty(subscriber* s) {
        auto& group = dirty_[cork_group(s)];
        auto it = std::find(group.begin(), group.end(), s);
        if (it != group.end()) {
            group.erase(it);
            --dirty_count_;
        }
    }

    /// permessage-deflate state of the whole shard, made on first use: messages are
    /// compressed and inflated one at a time (no context takeover), so sessions keep none.
    ::rtpush::detail::deflater& deflater() {
        if (!deflater_)
            deflater_ = std::make_unique<::rtpush::detail::deflater>();
        return *deflater_;
    }
    ::rtpush::detail::inflater& inflater() {
        if (!inflater_)
            inflater_ = std::make_unique<::rtpush::detail::inflater>();
        return *inflater_;
    }
    /// Where an inflated client message is handled from (bounded by the message limit).
    std::string& inflate_buffer() noexcept { return inflated_; }

    /// Replies of the session whose input is being handled, sent together when it is done
    /// (session::end_direct): one session at a time, like the read buffer.
    std::vector<frame_ptr>& outbox() noexcept { return outbox_; }

    /// 64 KiB every session of this shard reads into (one at a time: parsing is synchronous).
    std::vector<char>& read_buffer() {
        if (read_buffer_.empty())
            read_buffer_.resize(64 * 1024);
        return read_buffer_;
    }

    /// The subscriptions of this thread's connections (adding and removing one also counts
    /// the demand for its channel, see hub::attach).
    subscription_index& subscriptions() noexcept { return subs_; }
    const subscription_index& subscriptions() const noexcept { return subs_; }

    void add_idle(idle_connection* c) noexcept {
        c->prev = idle_tail_;
        c->next = nullptr;
        (idle_tail_ ? idle_tail_->next : idle_head_) = c;
        idle_tail_ = c;
    }
    void remove_idle(idle_connection* c) noexcept {
        (c->prev ? c->prev->next : idle_head_) = c->next;
        (c->next ? c->next->prev : idle_tail_) = c->prev;
        c->prev = c->next = nullptr;
    }
    /// Closes the idle connections past their deadline (every one with `all`, at shutdown).
    void expire_idle(std::chrono::steady_clock::time_point now, bool all = false) noexcept {
        while (idle_head_ && (all || idle_head_->deadline <= now)) {
            auto* c = idle_head_;
            remove_idle(c);
            // Out of the poller first: a registration outlives close() while another process
            // shares the descriptor (a fork), and would then report the freed entry.
            poller_.watch(c->fd, nullptr, 0, ::rtpush::detail::poller::readable);
            ::close(c->fd);
            delete c;
        }
    }
    /// An idle connection's next request is readable (set by the server).
    std::function<void(idle_connection*)> on_idle_ready;

    void add_session(std::uint64_t id, rtpush::session* s) {
        sessions_.emplace(id, s);
        counters_.connections.fetch_add(1, std::memory_order_relaxed);
    }
    void remove_session(std::uint64_t id) {
        if (sessions_.erase(id))
            counters_.connections.fetch_sub(1, std::memory_order_relaxed);
    }
    /// Server-Sent Events streams (detail/sse_session.hpp) count as connections too.
    void add_sse(std::uint64_t id, sse_session* s) {
        sse_.emplace(id, s);
        counters_.connections.fetch_add(1, std::memory_order_relaxed);
        counters_.sse_connections.fetch_add(1, std::memory_order_relaxed);
    }
    void remove_sse(std::uint64_t id) {
        if (sse_.erase(id)) {
            counters_.connections.fetch_sub(1, std::memory_order_relaxed);
            counters_.sse_connections.fetch_sub(1, std::memory_order_relaxed);
        }
    }
    sse_session* find_sse(std::uint64_t id) const {
        auto it = sse_.find(id);
        return it == sse_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, sse_session*>& sse_sessions() const noexcept {
        return sse_;
    }
    /// Socket.IO long-polling sessions (detail/io/polling_session.hpp), by id; each counts as
    /// a connection. Shared: a request in flight keeps its session alive past remove_polling.
    void add_polling(std::uint64_t id, std::shared_ptr<polling_session> s) {
        polling_.emplace(id, std::move(s));
        counters_.connections.fetch_add(1, std::memory_order_relaxed);
    }
    void remove_polling(std::uint64_t id) {
        if (polling_.erase(id))
            counters_.connections.fetch_sub(1, std::memory_order_relaxed);
    }
    std::shared_ptr<polling_session> find_polling(std::uint64_t id) const {
        auto it = polling_.find(id);
        return it == polling_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, std::shared_ptr<polling_session>>&
    polling_sessions() const noexcept {
        return polling_;
    }
    /// A polling session upgraded to WebSocket: answers still on their way to it (the held
    /// ACK of an EVENT it was handling, a subscription waiting for its channel, see
    /// polling_session::poster_type) go to the session that took it over while it lives.
    void note_upgrade(std::uint64_t polling_id, std::uint64_t session_id) {
        upgraded_[polling_id] = session_id;
    }
    void forget_upgrade(std::uint64_t polling_id) { upgraded_.erase(polling_id); }
    rtpush::session* upgraded_session(std::uint64_t polling_id) const {
        auto it = upgraded_.find(polling_id);
        return it == upgraded_.end() ? nullptr : find_session(it->second);
    }
    rtpush::session* find_session(std::uint64_t id) const {
        auto it = sessions_.find(id);
        return it == sessions_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, rtpush::session*>& sessions() const noexcept {
        return sessions_;
    }
    // Tasks running on this shard (connections, timers, user tasks); shutdown waits for 0.
    std::size_t live_tasks = 0;
    bool stopping = false;
    /// Timers of the shard's periodic tasks, cancelled at shutdown so none waits a full period.
    std::vector<boost::asio::steady_timer*> timers;
    void release_work() { work_.reset(); }

    /// Called when a session of this shard has ended (see session::start).
    session_end session_done;
    /// A delivery to connections (hub::deliver_to): pushes the frame to every connection of
    /// this thread that is one of the audience, and returns how many. The server sets it: it
    /// knows the transports (impl/server.hpp, server_impl::deliver_to).
    std::function<std::uint64_t(const audience&, const frame_ptr&)> deliver_to;

    /// The server's per-organization and per-user connection counts, shared by every shard.
    connection_quotas* quotas = nullptr;
    /// The server's acknowledged-delivery bookkeeping, shared by every shard.
    ack_registry* acks = nullptr;
    /// Socket.IO sessions kept for recovery, shared by every shard.
    socketio_session_store* sio_sessions = nullptr;
    /// The server's room listing (presence requests).
    presence_directory* presence = nullptr;

    /// Gives this thread's connections their protocol environment (after `orgs` and `acks`
    /// are set; before the shard runs).
    void bind_protocol(rtpush::hub& h, const server_config& cfg) {
        protocol_.emplace(protocol_context{h, cfg, subs_, counters_, acks, quotas, index_,
                                           sio_sessions, presence});
        message_limits_.emplace(cfg.max_messages_per_second, cfg.rate_abuse_factor);
    }
    /// Every connection's inbound message limits, worked out once (see message_rate).
    const message_rate::limits& message_limits() const noexcept { return *message_limits_; }
    protocol_context& protocol() noexcept { return *protocol_; }

    /// Sockets still in their HTTP phase, closed at shutdown.
    std::unordered_set<boost::asio::ip::tcp::socket*> http_sockets;

    /// A Socket.IO polling GET that waits for data, parked (docs/architecture.md, "Memory per
    /// connection"): its HTTP exchange has ended, its coroutine frames and buffers are freed,
    /// and its descriptor is out of Asio's reactor. What the answer needs is kept here, on the
    /// shard of the connection, until the polling session (on its own shard) answers it.
    struct parked_poll {
        int fd = -1;
        bool v6 = false;
        bool keep_alive = true;
        unsigned version = 11;
        std::chrono::steady_clock::time_point since; ///< for the access log's duration
        std::string origin;                          ///< for CORS
        std::string remote;                          ///< for the access log
        std::string path;                            ///< ... likewise
    };
    /// An id for a GET that may park (the polling session is told it before the park).
    std::uint64_t reserve_park_id() {
        reserved_parks_.insert(++last_parked_);
        return last_parked_;
    }
    /// The GET was answered at once, or could not park: its id is no longer awaited.
    void cancel_park(std::uint64_t id) {
        reserved_parks_.erase(id);
        early_answers_.erase(id);
    }
    /// Parks the GET; an answer that came first (see early_answer) is returned, to be sent
    /// at once. The order of the two does not rest on how the hop back from the session's
    /// shard is scheduled.
    std::optional<std::string> park(std::uint64_t id, parked_poll p) {
        reserved_parks_.erase(id);
        if (auto it = early_answers_.find(id); it != early_answers_.end()) {
            auto body = std::move(it->second);
            early_answers_.erase(it);
            parked_polls_.emplace(id, std::move(p));
            return body;
        }
        parked_polls_.emplace(id, std::move(p));
        return std::nullopt;
    }
    /// An answer for a GET not parked yet but about to be: kept for park(). False when the
    /// id is not awaited (closed at shutdown, never parked).
    bool early_answer(std::uint64_t id, std::string& body) {
        if (!reserved_parks_.contains(id))
            return false;
        early_answers_[id] = std::move(body);
        return true;
    }
    std::optional<parked_poll> unpark(std::uint64_t id) {
        auto it = parked_polls_.find(id);
        if (it == parked_polls_.end())
            return std::nullopt;
        auto p = std::move(it->second);
        parked_polls_.erase(it);
        return p;
    }
    std::size_t parked_count() const noexcept { return parked_polls_.size(); }
    /// At shutdown: every parked GET's connection closes.
    void close_parked_polls() noexcept {
        for (auto& [id, p] : parked_polls_)
            ::close(p.fd);
        parked_polls_.clear();
        early_answers_.clear();
    }
    /// Answers a parked GET with a payload (set by the server, which writes HTTP: see
    /// server_impl::answer_parked_poll); on this shard's thread.
    std::function<void(std::uint64_t, std::string)> answer_parked;

private:
    void drain_inbox() {
        {
            std::lock_guard<std::mutex> lock(inbox_mutex_);
            draining_.swap(inbox_);
            drain_posted_ = false;
        }
        for (auto const& d : draining_)
            deliver(*d);
        draining_.clear();
    }

    /// Subscribers are spread over the groups by a hash of their address (stable for their
    /// life, so each is written once per delay; sessions are allocated apart by their size).
    static constexpr std::size_t cork_groups = 16;
    static std::size_t cork_group(const subscriber* s) noexcept {
        auto const p = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(s));
        return static_cast<std::size_t>((p * 0x9E3779B97F4A7C15ull) >> 60);
    }

    std::chrono::microseconds cork_tick() const noexcept {
        return cork_.delay() / static_cast<std::int64_t>(cork_groups);
    }

    void arm_cork_tick() {
        cork_timer_.expires_at(next_tick_);
        // Also on cancellation (shutdown): queued frames, close frames among them, go out.
        cork_timer_.async_wait([this](boost::system::error_code ec) { on_cork_tick(ec); });
    }

    void on_cork_tick(boost::system::error_code ec) {
        ticking_ = false;
        if (ec || stopping || !cork_.corked()) {
            flush_all();
            return;
        }
        flush_groups(next_group_, next_group_ + 1);
        next_group_ = (next_group_ + 1) % cork_groups;
        if (dirty_count_ == 0)
            return;
        // Keep the cadence (a late tick does not push the next ones back), never in the past.
        auto const now = write_cork::clock::now();
        next_tick_ = std::max(next_tick_ + cork_tick(), now);
        ticking_ = true;
        arm_cork_tick();
    }

    void flush_all() { flush_groups(0, cork_groups); }

    void flush_groups(std::size_t first, std::size_t last) {
        if (dirty_count_ == 0)
            return;
        auto const t0 = write_cork::clock::now();
        std::uint64_t writes = 0;
        for (std::size_t g = first; g < last; ++g) {
            flushing_.swap(dirty_[g]);
            dirty_count_ -= flushing_.size();
            writes += flushing_.size();
            for (subscriber* s : flushing_)
                s->flush();
            flushing_.clear();
        }
        auto const t1 = write_cork::clock::now();
        cork_.wrote(writes, t1 - t0, t1);
        counters_.cork_delay_us.store(static_cast<std::uint64_t>(cork_.delay().count()),
                                      std::memory_order_relaxed);
    }

    std::size_t index_;
    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    ::rtpush::detail::poller poller_;
    subscription_index subs_;
    std::optional<protocol_context> protocol_;
    std::optional<message_rate::limits> message_limits_;
    std::unordered_map<std::uint64_t, rtpush::session*> sessions_;
    std::unordered_map<std::uint64_t, sse_session*> sse_;
    std::unordered_map<std::uint64_t, std::shared_ptr<polling_session>> polling_;
    std::unordered_map<std::uint64_t, parked_poll> parked_polls_;
    std::unordered_set<std::uint64_t> reserved_parks_;
    std::unordered_map<std::uint64_t, std::string> early_answers_;
    std::uint64_t last_parked_ = 0;
    std::unordered_map<std::uint64_t, std::uint64_t> upgraded_; ///< polling id -> session id
    shard_counters counters_;
    std::mutex inbox_mutex_;
    std::vector<std::shared_ptr<const delivery>> inbox_; // under inbox_mutex_
    bool drain_posted_ = false;                          // under inbox_mutex_
    std::vector<std::shared_ptr<const delivery>> draining_;
    std::array<std::vector<subscriber*>, cork_groups> dirty_;
    std::size_t dirty_count_ = 0;
    std::vector<subscriber*> flushing_;
    bool flush_posted_ = false;
    bool ticking_ = false;
    std::size_t next_group_ = 0;
    write_cork::clock::time_point next_tick_{};
    write_cork cork_;
    boost::asio::steady_timer cork_timer_;
    std::vector<char> read_buffer_;
    std::vector<frame_ptr> outbox_;
    idle_connection* idle_head_ = nullptr;
    idle_connection* idle_tail_ = nullptr;
    std::unique_ptr<::rtpush::detail::deflater> deflater_;
    std::unique_ptr<::rtpush::detail::inflater> inflater_;
    std::string inflated_;
};

} // namespace rtpush::detail

#endif
