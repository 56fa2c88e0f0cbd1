//
// rtpush: a WebSocket session's outbound path: queueing shared frames, direct sends of the
// replies to its own input, and the gathered writes of its queue (plain: non-blocking sendmsg
// completed in place; TLS: coalesced records). Included by impl/session.hpp.
//
#ifndef RTPUSH_IMPL_SESSION_WRITE_HPP
#define RTPUSH_IMPL_SESSION_WRITE_HPP

#include <rtpush/detail/feed_format.hpp>
#include <rtpush/session.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <span>

namespace rtpush {

namespace detail {
/// One non-blocking gathered send of up to 64 of `buffers` (a socket never blocks here);
/// the bytes taken, or -1 with errno.
inline ::ssize_t send_gathered(int fd, std::span<const boost::asio::const_buffer> buffers) {
    constexpr std::size_t max_iov = 64;
    std::array<::iovec, max_iov> iov;
    std::size_t const k = std::min(max_iov, buffers.size());
    for (std::size_t i = 0; i < k; ++i)
        iov[i] = {const_cast<void*>(buffers[i].data()), buffers[i].size()};
    ::msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = k;
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}
} // namespace detail

inline void session::push(const detail::frame_ptr& f) {
    if (socketio()) [[unlikely]] {
        // Its Socket.IO form: shared, or this connection's own when it asks for an ack.
        if (auto t = sio_frame(f); t && !sio_hold(t))
            push_maybe_deflated(t);
        return;
    }
    // Targeted even when it cannot go out now (closing): it is re-sent after a reconnect.
    if (!f->ack_id.empty()) [[unlikely]]
        track_ack(f);
    if (cold_ && cold_->feed) [[unlikely]]
        return push_maybe_deflated(detail::feed_twin(f));
    push_maybe_deflated(f);
}

inline void session::push_maybe_deflated(const detail::frame_ptr& f) {
    if (deflate_ && !closing_) {
        // The frame's compressed twin, made by the first deflate session and then shared.
        bool made = false;
        auto d = detail::deflated(f, shard_.deflater(), cfg().deflate_threshold, &made);
        if (made)
            shard_.counters().compressed.fetch_add(1, std::memory_order_relaxed);
        push_frame(d);
        return;
    }
    push_frame(f);
}

inline void session::push_frame(const detail::frame_ptr& f) {
    if (closing_)
        return;
    if (direct_) {
        shard_.outbox().push_back(f);
        return;
    }
    switch (queue_.push(f)) {
    case detail::send_queue::push_result::queued:
        break;
    case detail::send_queue::push_result::dropped_oldest:
        shard_.counters().dropped.fetch_add(1, std::memory_order_relaxed);
        break;
    case detail::send_queue::push_result::overflow:
        // The disconnect policy: a consumer this slow loses its connection, not our memory.
        shard_.counters().dropped.fetch_add(1, std::memory_order_relaxed);
        shard_.counters().slow_consumers.fetch_add(1, std::memory_order_relaxed);
        cfg().logger.log(
            log_level::warning, "slow_consumer",
            {{"client", client_id()}, {"queued", queue_.size()}, {"bytes", queue_.bytes()}});
        close(1008, "slow consumer: outbound queue full", true);
        return;
    }
    schedule_write();
}

inline bool session::can_send_direct() const noexcept {
    return !tls() && !writing_ && !dirty_ && !aborted_ && !closing_ && queue_.empty();
}

inline void session::begin_direct() noexcept {
    direct_ = can_send_direct();
}

inline void session::end_direct() {
    if (!direct_)
        return; // not direct, or close() queued the replies already
    direct_ = false;
    auto& out = shard_.outbox();
    if (out.empty())
        return;
    // Still idle? (A pong queued meanwhile makes the session dirty: then all goes in order
    // through the queue.)
    std::size_t taken = can_send_direct() ? send_direct(out) : 0;
    for (; taken < out.size(); ++taken)
        push_frame(out[taken]);
    out.clear();
    if (out.capacity() > 1024)
        out = {}; // a burst of pipelined requests leaves nothing behind
}

inline void session::queue_direct() {
    direct_ = false;
    auto& out = shard_.outbox();
    for (auto const& f : out)
        push_frame(f);
    out.clear();
}

inline std::size_t session::send_direct(std::span<const detail::frame_ptr> frames) {
    // One gathered, non-blocking send (the socket is non-blocking): on an idle connection
    // the kernel nearly always takes it all. Whatever it does not take the caller queues;
    // the rest of a frame taken in part goes first in line.
    constexpr std::size_t max_buffers = 16;
    std::array<boost::asio::const_buffer, max_buffers> out;
    std::size_t const k = std::min(frames.size(), max_buffers);
    for (std::size_t i = 0; i < k; ++i)
        out[i] = boost::asio::buffer(frames[i]->bytes);
    if (fd_ < 0)
        return 0;
    auto const sent = detail::send_gathered(fd_, std::span(out.data(), k));
    if (sent < 0)
        return 0; // would block, or an error that the write path then reports
    auto n = static_cast<std::size_t>(sent);
    shard_.counters().writes.fetch_add(1, std::memory_order_relaxed);
    std::size_t whole = 0;
    while (whole < k && n >= frames[whole]->bytes.size()) {
        n -= frames[whole]->bytes.size();
        ++whole;
    }
    count_sent(frames.first(whole), std::chrono::steady_clock::now());
    if (n > 0) {
        queue_.push_control(detail::make_shared_frame(frames[whole]->bytes.substr(n)));
        schedule_write();
        ++whole;
    }
    return whole;
}

inline void session::count_sent(std::span<const detail::frame_ptr> frames,
                                std::chrono::steady_clock::time_point now) {
    auto& counters = shard_.counters();
    std::uint64_t lat_sum = 0, lat_max = 0, lat_n = 0, bytes = 0;
    // Counted locally first: one relaxed add per touched bucket per write, not per frame.
    constexpr auto& bounds = detail::latency_bounds_us;
    std::array<std::uint64_t, bounds.size()> buckets{};
    std::size_t messages = frames.size();
    for (auto const& f : frames) {
        if (f->handshake) [[unlikely]] {
            --messages;
            continue;
        }
        bytes += f->bytes.size();
        if (!f->timed)
            continue;
        ++lat_n;
        auto const us = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - f->created).count());
        lat_sum += us;
        lat_max = std::max(lat_max, us);
        auto const b = static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), us) -
                                                bounds.begin());
        if (b < buckets.size())
            ++buckets[b];
    }
    if (socketio()) [[unlikely]]
        for (auto const& f : frames)
            sio_written(f);
    sent_ += messages;
    counters.frames_sent.fetch_add(messages, std::memory_order_relaxed);
    counters.bytes_sent.fetch_add(bytes, std::memory_order_relaxed);
    if (lat_n) {
        for (std::size_t i = 0; i < buckets.size(); ++i)
            if (buckets[i])
                counters.latency_buckets[i].fetch_add(buckets[i], std::memory_order_relaxed);
        counters.latency_us_sum.fetch_add(lat_sum, std::memory_order_relaxed);
        counters.latency_samples.fetch_add(lat_n, std::memory_order_relaxed);
        if (lat_max > counters.latency_us_max.load(std::memory_order_relaxed))
            counters.latency_us_max.store(lat_max, std::memory_order_relaxed);
    }
}

inline void session::schedule_write() {
    // Writes start from the shard's flush, after every delivery already posted to the shard
    // has been queued: one gathered write then carries all of them.
    if (!writing_ && !dirty_ && !aborted_) {
        dirty_ = true;
        shard_.mark_dirty(this);
    }
}

inline void session::flush() {
    dirty_ = false;
    start_write();
}

inline void session::start_write() {
    // A loop rather than a chain of completions: a plain send completes here, at once, unless
    // the socket is full (then on_events() goes on when it is writable).
    while (!writing_ && !aborted_ && !queue_.empty()) {
        if (!write_)
            write_ = std::make_unique<write_state>();
        auto& batch = write_->batch;
        auto& buffers = write_->buffers;
        batch.clear();
        buffers.clear();
        queue_.take(batch, cfg().write_batch_frames, cfg().write_batch_bytes);
        for (auto const& f : batch)
            buffers.emplace_back(f->bytes.data(), f->bytes.size());
        write_->pos = 0;
        writing_ = true;
        if (tls()) {
            tls_write_next();
            return;
        }
        boost::system::error_code ec;
        switch (send_batch(ec)) {
        case send_result::blocked:
            write_blocked_ = true;
            watch();
            return;
        case send_result::failed:
            on_write(ec);
            return;
        case send_result::done:
            writing_ = false;
            if (!batch_written())
                return;
        }
    }
}

inline void session::tls_write_next() {
    // An SSL stream writes only the first buffer of a sequence, and encrypting copies anyway:
    // small frames are copied together into up to one TLS record (16 KiB), a larger frame
    // is written from its shared bytes.
    constexpr std::size_t record = 16 * 1024;
    auto const& buffers = write_->buffers;
    if (write_->pos == buffers.size()) {
        on_write({});
        return;
    }
    writing_ = true;
    boost::asio::const_buffer out = buffers[write_->pos];
    if (out.size() >= record) {
        ++write_->pos;
    } else {
        auto& wbuf = cold().tls_wbuf;
        wbuf.clear();
        while (write_->pos < buffers.size() &&
               wbuf.size() + buffers[write_->pos].size() <= record) {
            auto const& b = buffers[write_->pos++];
            wbuf.append(static_cast<const char*>(b.data()), b.size());
        }
        out = boost::asio::buffer(wbuf);
    }
    boost::asio::async_write(*tls(), out, [this](boost::system::error_code ec, std::size_t) {
        shard_.counters().writes.fetch_add(1, std::memory_order_relaxed);
        if (ec)
            on_write(ec);
        else
            tls_write_next();
    });
}

inline session::send_result session::send_batch(boost::system::error_code& ec) {
    // One sendmsg per system call's worth of buffers; `writes` counts the calls.
    auto& buffers = write_->buffers;
    while (write_->pos < buffers.size()) {
        if (fd_ < 0) {
            ec = boost::asio::error::bad_descriptor;
            return send_result::failed;
        }
        auto const sent = detail::send_gathered(fd_, std::span(buffers).subspan(write_->pos));
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return send_result::blocked;
            ec = {errno, boost::system::system_category()};
            return send_result::failed;
        }
        shard_.counters().writes.fetch_add(1, std::memory_order_relaxed);
        auto n = static_cast<std::size_t>(sent);
        while (n > 0 && write_->pos < buffers.size()) {
            auto& b = buffers[write_->pos];
            if (n < b.size()) {
                b += n;
                n = 0;
            } else {
                n -= b.size();
                ++write_->pos;
            }
        }
    }
    return send_result::done;
}

inline bool session::batch_written() {
    auto& batch = write_->batch;
    auto const now = std::chrono::steady_clock::now();
    if (cold_ && cold_->close_frame)
        for (auto const& f : batch)
            if (f == cold_->close_frame)
                close_sent_ = true;
    count_sent(batch, now);
    batch.clear();
    if (close_sent_ && (close_received_ || reader_done_)) {
        maybe_finish(); // close handshake complete (or the peer is gone)
        return false;
    }
    if (!queue_.empty())
        return true;
    // Idle again. A session written to rarely gives back its queue ring and batch vectors;
    // a busy one keeps them rather than allocating them again for every delivery.
    // (release_idle() frees the write state itself once the session stays quiet.)
    auto& w = *write_;
    if (now - w.last_write_at > std::chrono::seconds(1)) {
        w.batch = {};
        w.buffers = {};
        if (cold_)
            cold_->tls_wbuf = std::string();
        queue_.shrink();
    }
    w.last_write_at = now;
    return false;
}

inline void session::on_write(boost::system::error_code ec) {
    writing_ = false;
    if (ec) {
        write_->batch.clear();
        set_end_reason(aborted_ ? "aborted" : "write failed: " + ec.message());
        abort();
        maybe_finish();
        return;
    }
    if (batch_written())
        start_write();
}

} // namespace rtpush

#endif
