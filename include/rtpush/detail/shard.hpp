//
// rtpush: one io thread's share of the server: its io_context, sessions and subscriptions.
//
#ifndef RTPUSH_DETAIL_SHARD_HPP
#define RTPUSH_DETAIL_SHARD_HPP

#include <rtpush/detail/ack_tracker.hpp>
#include <rtpush/detail/deflate.hpp>
#include <rtpush/detail/rate_limit.hpp>
#include <rtpush/detail/send_queue.hpp>
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
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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

class sse_session;

/// One publication on its way to the subscribers of one io thread.
struct delivery {
    frame_ptr frame;
    std::array<std::string, 4> keys; ///< subscription keys that receive it, widest first
    int key_count = 0;
    std::uint64_t counter = 0; ///< hub-wide order; see hub::initial_frames
};

/// What the shard fans out to: a session, seen through the one call the hot path makes.
class subscriber {
public:
    /// Queues a shared frame for writing (called on the shard's thread).
    virtual void push(const frame_ptr& f) = 0;
    /// Starts writing what push() queued (called from the shard's flush).
    virtual void flush() = 0;
    std::uint64_t last_delivery = 0; ///< counter of the last delivery, to send each once

protected:
    ~subscriber() = default;
};

/// One subscription of one session; the shard indexes it by key. `index` is its position in
/// the key's vector so that removal is O(1) (swap with the last and pop). Only the key is
/// stored: every idle subscriber holds one, and the topic (four strings) is parsed back from
/// it on the rare paths that need it.
struct subscription {
    std::string key;
    subscriber* owner = nullptr;
    std::uint64_t since = 0; ///< deliveries with counter <= since are already in `initial`
    std::size_t index = 0;

    /// The channel: the key up to its first ':'.
    std::string channel() const { return key.substr(0, key.find(':')); }
    /// The topic the key was made from (keys are topic::key() of a validated topic).
    rtpush::topic topic() const {
        boost::system::error_code ec;
        return parse_topic(key, ec);
    }
};

/// A plain connection accepted and waiting for its HTTP request (server::await_request).
/// Listed in its shard, oldest first, so that the shard's tick closes those silent past the
/// handshake timeout without a timer each; the wait's handler unlinks and destroys it. It
/// lives in the block that then holds the connection's session, and its wait operation in
/// `slot`: waiting leaves nothing behind in the heap.
struct request_wait {
    request_wait(boost::asio::ip::tcp::socket s, std::chrono::steady_clock::time_point d)
        : socket(std::move(s))
        , deadline(d) {}
    boost::asio::ip::tcp::socket socket;
    std::chrono::steady_clock::time_point deadline;
    request_wait* prev = nullptr;
    request_wait* next = nullptr;
    alignas(std::max_align_t) unsigned char slot[128];
    bool slot_used = false;

    /// Puts the wait's operation in `slot` (Asio frees it before calling the handler).
    template <class T>
    struct allocator {
        using value_type = T;
        request_wait* owner;
        explicit allocator(request_wait* w) noexcept
            : owner(w) {}
        template <class U>
        allocator(const allocator<U>& o) noexcept
            : owner(o.owner) {}
        T* allocate(std::size_t n) {
            if (!owner->slot_used && n * sizeof(T) <= sizeof(owner->slot)) {
                owner->slot_used = true;
                return reinterpret_cast<T*>(owner->slot);
            }
            return static_cast<T*>(::operator new(n * sizeof(T)));
        }
        void deallocate(T* p, std::size_t n) noexcept {
            if (static_cast<void*>(p) == static_cast<void*>(owner->slot))
                owner->slot_used = false;
            else
                ::operator delete(p, n * sizeof(T));
        }
        template <class U>
        bool operator==(const allocator<U>& o) const noexcept {
            return owner == o.owner;
        }
    };
};

/// Upper bounds, in microseconds, of the buckets of the publish-to-send latency histogram that
/// /metrics exports (Prometheus buckets: 100 us .. 5 s; above the last is only in the count).
inline constexpr std::array<std::uint64_t, 15> latency_bounds_us{
    100,   250,    500,    1000,   2500,    5000,    10000,  25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};

/// Upper bounds, in nanoseconds, of the buckets of the fan-out duration histogram: the time
/// one io thread takes to queue a publication on all of its subscribers (1 us .. 100 ms).
inline constexpr std::array<std::uint64_t, 14> fanout_bounds_ns{
    1000,   2500,   5000,    10000,   25000,    50000,    100000,
    250000, 500000, 1000000, 2500000, 10000000, 50000000, 100000000};

/// Why a connection was refused (or closed right after it became known to be over a limit).
enum class reject_reason {
    connection_limit,     ///< max_connections
    org_connection_limit, ///< max_connections_per_org
    handshake_rate_limit, ///< max_handshakes_per_ip
    auth_failed,          ///< a token that does not verify, or none where one is required
    unauthorized,         ///< a valid token that may not read what was asked (SSE)
    origin_not_allowed,   ///< an Origin outside allowed_origins
    shutting_down,        ///< the server is stopping
};
inline constexpr std::size_t reject_reason_count = 7;

/// The `reason` label of rtpush_connections_rejected_total.
inline constexpr std::string_view to_string(reject_reason r) noexcept {
    constexpr std::string_view names[reject_reason_count] = {
        "connection_limit", "org_connection_limit", "handshake_rate_limit", "auth_failed",
        "unauthorized",     "origin_not_allowed",   "shutting_down"};
    return names[static_cast<std::size_t>(r)];
}

/// Counters of one shard, written by its thread, read by anyone.
struct shard_counters {
    std::atomic<std::uint64_t> frames_sent{0};
    std::atomic<std::uint64_t> bytes_sent{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> latency_us_sum{0};
    std::atomic<std::uint64_t> latency_samples{0};
    std::atomic<std::uint64_t> latency_us_max{0};
    /// Timed frames written, per bucket of latency_bounds_us (not cumulative).
    std::array<std::atomic<std::uint64_t>, latency_bounds_us.size()> latency_buckets{};
    /// Frames dropped because the disconnect policy closed a slow consumer (part of dropped).
    std::atomic<std::uint64_t> slow_consumers{0};
    /// Deliveries (one per publication per shard), per bucket of fanout_bounds_ns.
    std::array<std::atomic<std::uint64_t>, fanout_bounds_ns.size()> fanout_buckets{};
    std::atomic<std::uint64_t> fanout_count{0};
    std::atomic<std::uint64_t> fanout_ns_sum{0};
    std::atomic<std::uint64_t> accepted{0};
    std::atomic<std::uint64_t> rejected{0}; ///< every reason
    std::array<std::atomic<std::uint64_t>, reject_reason_count> rejected_by{};
    std::atomic<std::uint64_t> rate_limited{0};
    std::atomic<std::size_t> connections{0};     ///< WebSocket and SSE
    std::atomic<std::size_t> sse_connections{0}; ///< SSE only

    void count_rejected(reject_reason r) noexcept {
        rejected.fetch_add(1, std::memory_order_relaxed);
        rejected_by[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
    }
    /// permessage-deflate: messages compressed (a broadcast once, not once per client).
    std::atomic<std::uint64_t> compressed{0};
    /// Write states of quiet sessions freed by the shard's tick (after a heartbeat, nearly
    /// every session's): the server trims the heap after a wave of them.
    std::atomic<std::uint64_t> idle_released{0};
};

/// shard_counters read and summed over shards (for /api/stats and /metrics).
struct counter_totals {
    std::uint64_t frames_sent = 0, bytes_sent = 0, writes = 0, dropped = 0, errors = 0;
    std::uint64_t latency_us_sum = 0, latency_samples = 0, latency_us_max = 0;
    std::array<std::uint64_t, latency_bounds_us.size()> latency_buckets{};
    std::uint64_t slow_consumers = 0, accepted = 0, rejected = 0, rate_limited = 0;
    std::array<std::uint64_t, reject_reason_count> rejected_by{};
    std::uint64_t sse_connections = 0;
    std::array<std::uint64_t, fanout_bounds_ns.size()> fanout_buckets{};
    std::uint64_t fanout_count = 0, fanout_ns_sum = 0;
    std::uint64_t compressed = 0;

    void add(const shard_counters& c) noexcept {
        auto get = [](auto const& a) {
            return static_cast<std::uint64_t>(a.load(std::memory_order_relaxed));
        };
        frames_sent += get(c.frames_sent);
        bytes_sent += get(c.bytes_sent);
        writes += get(c.writes);
        dropped += get(c.dropped);
        errors += get(c.errors);
        latency_us_sum += get(c.latency_us_sum);
        latency_samples += get(c.latency_samples);
        latency_us_max = std::max(latency_us_max, get(c.latency_us_max));
        for (std::size_t i = 0; i < latency_buckets.size(); ++i)
            latency_buckets[i] += get(c.latency_buckets[i]);
        slow_consumers += get(c.slow_consumers);
        accepted += get(c.accepted);
        rejected += get(c.rejected);
        for (std::size_t i = 0; i < rejected_by.size(); ++i)
            rejected_by[i] += get(c.rejected_by[i]);
        sse_connections += get(c.sse_connections);
        for (std::size_t i = 0; i < fanout_buckets.size(); ++i)
            fanout_buckets[i] += get(c.fanout_buckets[i]);
        fanout_count += get(c.fanout_count);
        fanout_ns_sum += get(c.fanout_ns_sum);
        rate_limited += get(c.rate_limited);
        compressed += get(c.compressed);
    }
};

/// Everything here but the counters is touched only by the shard's own thread: the
/// io_context is run by exactly one thread, so it is the implicit strand of all its sessions.
class shard {
public:
    explicit shard(std::size_t index)
        : index_(index)
        , ioc_(1)
        , work_(ioc_.get_executor())
        , cork_timer_(ioc_) {
        // Cancelled at shutdown like the periodic timers: its handler then flushes at once.
        timers.push_back(&cork_timer_);
    }

    /// See write_cork: under `threshold` frames per second flush at once, above it at most
    /// every `max_delay`. Call before the shard runs.
    void set_cork(std::chrono::microseconds max_delay, double threshold) {
        cork_ = write_cork(max_delay, threshold);
    }
    const write_cork& cork() const noexcept { return cork_; }

    std::size_t index() const noexcept { return index_; }
    boost::asio::io_context& context() noexcept { return ioc_; }
    boost::asio::io_context::executor_type get_executor() noexcept { return ioc_.get_executor(); }
    shard_counters& counters() noexcept { return counters_; }

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
        std::uint64_t pushed = 0;
        for (int i = 0; i < d.key_count; ++i) {
            auto it = subs_.find(d.keys[i]);
            if (it == subs_.end())
                continue;
            for (subscription* s : it->second) {
                subscriber* o = s->owner;
                // Skip what the subscriber's `initial` already held, and a second copy for a
                // session subscribed to both a scope and a narrower one.
                if (s->since >= d.counter || o->last_delivery == d.counter)
                    continue;
                o->last_delivery = d.counter;
                o->push(d.frame);
                ++pushed;
            }
        }
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

    /// Remembers a subscriber with queued frames; one scheduled flush then starts the writes
    /// of all of them, after every delivery already posted to this shard has been queued (and,
    /// under load, up to the cork's delay later, so that each write carries more frames).
    void mark_dirty(subscriber* s) {
        dirty_.push_back(s);
        if (flush_scheduled_)
            return;
        flush_scheduled_ = true;
        auto const now = write_cork::clock::now();
        auto const at = cork_.flush_at(now);
        if (at <= now || stopping) {
            boost::asio::post(ioc_, [this] { flush_dirty(); });
        } else {
            cork_timer_.expires_at(at);
            // Also on cancellation (shutdown): queued frames, close frames among them, go out.
            cork_timer_.async_wait([this](boost::system::error_code) { flush_dirty(); });
        }
    }

    void forget_dirty(subscriber* s) {
        auto it = std::find(dirty_.begin(), dirty_.end(), s);
        if (it != dirty_.end())
            dirty_.erase(it);
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

    void add_subscription(subscription& s) {
        auto& v = subs_[s.key];
        s.index = v.size();
        v.push_back(&s);
    }

    void remove_subscription(subscription& s) {
        auto it = subs_.find(s.key);
        if (it == subs_.end())
            return;
        auto& v = it->second;
        if (s.index >= v.size() || v[s.index] != &s)
            return;
        v[s.index] = v.back();
        v[s.index]->index = s.index;
        v.pop_back();
        if (v.empty())
            subs_.erase(it);
    }

    void add_wait(request_wait* w) noexcept {
        w->prev = waits_tail_;
        w->next = nullptr;
        (waits_tail_ ? waits_tail_->next : waits_head_) = w;
        waits_tail_ = w;
    }
    void remove_wait(request_wait* w) noexcept {
        (w->prev ? w->prev->next : waits_head_) = w->next;
        (w->next ? w->next->prev : waits_tail_) = w->prev;
        w->prev = w->next = nullptr;
    }
    /// Closes the waits past their deadline (every one with `all`, at shutdown); their
    /// handlers then run with operation_aborted. Deadlines grow along the list (one timeout).
    void expire_waits(std::chrono::steady_clock::time_point now, bool all = false) noexcept {
        for (auto* w = waits_head_; w && (all || w->deadline <= now); w = w->next) {
            boost::system::error_code ec;
            w->socket.close(ec);
        }
    }

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
    rtpush::session* find_session(std::uint64_t id) const {
        auto it = sessions_.find(id);
        return it == sessions_.end() ? nullptr : it->second;
    }
    const std::unordered_map<std::uint64_t, rtpush::session*>& sessions() const noexcept {
        return sessions_;
    }
    const std::unordered_map<std::string, std::vector<subscription*>>&
    subscriptions() const noexcept {
        return subs_;
    }

    // Tasks running on this shard (connections, timers, user tasks); shutdown waits for 0.
    std::size_t live_tasks = 0;
    bool stopping = false;
    /// Timers of the shard's periodic tasks, cancelled at shutdown so none waits a full period.
    std::vector<boost::asio::steady_timer*> timers;
    void release_work() { work_.reset(); }

    /// The server's per-organization connection counts, shared by every shard.
    org_connections* orgs = nullptr;
    /// The server's acknowledged-delivery bookkeeping, shared by every shard.
    ack_registry* acks = nullptr;

    /// Sockets still in their HTTP phase, closed at shutdown.
    std::unordered_set<boost::asio::ip::tcp::socket*> http_sockets;

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

    void flush_dirty() {
        flush_scheduled_ = false;
        cork_.flushed(write_cork::clock::now());
        flushing_.swap(dirty_);
        for (subscriber* s : flushing_)
            s->flush();
        flushing_.clear();
    }

    std::size_t index_;
    boost::asio::io_context ioc_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::unordered_map<std::string, std::vector<subscription*>> subs_;
    std::unordered_map<std::uint64_t, rtpush::session*> sessions_;
    std::unordered_map<std::uint64_t, sse_session*> sse_;
    shard_counters counters_;
    std::mutex inbox_mutex_;
    std::vector<std::shared_ptr<const delivery>> inbox_; // under inbox_mutex_
    bool drain_posted_ = false;                          // under inbox_mutex_
    std::vector<std::shared_ptr<const delivery>> draining_;
    std::vector<subscriber*> dirty_;
    std::vector<subscriber*> flushing_;
    bool flush_scheduled_ = false;
    write_cork cork_;
    boost::asio::steady_timer cork_timer_;
    std::vector<char> read_buffer_;
    std::vector<frame_ptr> outbox_;
    request_wait* waits_head_ = nullptr;
    request_wait* waits_tail_ = nullptr;
    std::unique_ptr<::rtpush::detail::deflater> deflater_;
    std::unique_ptr<::rtpush::detail::inflater> inflater_;
    std::string inflated_;
};

} // namespace rtpush::detail

#endif
