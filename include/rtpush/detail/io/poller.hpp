//
// rtpush: the readiness of a shard's plain WebSocket connections, without Asio's per-socket state.
//
#ifndef RTPUSH_DETAIL_IO_POLLER_HPP
#define RTPUSH_DETAIL_IO_POLLER_HPP

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/basic_stream_descriptor.hpp>
#include <boost/system/error_code.hpp>

#include <cerrno>
#include <cstdint>

#if !defined(__linux__)
#error "rtpush's WebSocket sessions wait for readiness with epoll (Linux)"
#endif
#include <sys/epoll.h>
#include <unistd.h>

namespace rtpush::detail {

/// A second epoll instance under the shard's io_context, itself one descriptor in Asio's
/// reactor. Plain WebSocket sessions register their sockets here with their own address as
/// the event's data, so an idle connection keeps nothing in user space for its readiness:
/// Asio's reactor allocates a 168-byte state for each descriptor it watches, and a pending
/// wait an operation besides (docs/architecture.md, "Memory per connection").
///
/// Level-triggered: a session asks for reads while it reads and for writes only while a
/// write is blocked, so a registration changes (`epoll_ctl`) only at the session's start and
/// around a blocked write; closing the descriptor removes it. All calls on the shard's thread.
class poller {
public:
    /// Called with a registered target and the events reported for it.
    using handler = void (*)(void* target, std::uint32_t events);

    explicit poller(boost::asio::io_context& ioc)
        : epoll_(ioc) {}
    poller(const poller&) = delete;
    poller& operator=(const poller&) = delete;

    /// Who gets the events (the server sets it before any descriptor is watched).
    void on_events(handler h) noexcept { on_events_ = h; }

    /// What a descriptor is watched for: a mask of these.
    static constexpr unsigned readable = 1, writable = 2;

    /// Changes what `fd` is watched for from `had` to `want` (nothing: not registered).
    boost::system::error_code watch(int fd, void* target, unsigned want, unsigned had) {
        if (want == had)
            return {};
        if (auto ec = open())
            return ec; // the session ends with it; nothing is thrown from a handler
        int const epoll_fd = epoll_.native_handle();
        if (want == 0)
            return ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr) == 0
                       ? boost::system::error_code{}
                       : last_error();
        epoll_event ev{};
        ev.events =
            ((want & readable) ? EPOLLIN | EPOLLRDHUP : 0u) | ((want & writable) ? EPOLLOUT : 0u);
        ev.data.ptr = target;
        if (::epoll_ctl(epoll_fd, had ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
            return last_error();
        arm();
        return {};
    }

    /// Stops waiting (shutdown, once the sessions are gone): the io_context can then run out.
    void stop() {
        stopped_ = true;
        boost::system::error_code ec;
        epoll_.cancel(ec);
    }

private:
    static boost::system::error_code last_error() {
        return {errno, boost::system::system_category()};
    }

    /// Makes the epoll instance on first use (a shard without plain sessions has none).
    boost::system::error_code open() {
        if (epoll_.is_open())
            return {};
        int const fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0)
            return last_error();
        boost::system::error_code ec;
        epoll_.assign(fd, ec);
        if (ec)
            ::close(fd);
        return ec;
    }

    void arm() {
        if (waiting_ || stopped_)
            return;
        waiting_ = true;
        epoll_.async_wait(boost::asio::posix::descriptor_base::wait_read,
                          [this](boost::system::error_code ec) {
                              waiting_ = false;
                              if (!ec && !stopped_)
                                  dispatch();
                          });
    }

    void dispatch() {
        // A few rounds at most before waiting again (the wait re-arms with one epoll_ctl): a
        // full batch means more may be ready, but other handlers of the thread must run too.
        constexpr int batch = 128;
        epoll_event events[batch];
        for (int round = 0; round < 4; ++round) {
            int const n = ::epoll_wait(epoll_.native_handle(), events, batch, 0);
            for (int i = 0; i < n; ++i)
                on_events_(events[i].data.ptr, events[i].events);
            if (n < batch)
                break;
        }
        arm();
    }

    handler on_events_ = nullptr;
    boost::asio::posix::basic_stream_descriptor<boost::asio::io_context::executor_type> epoll_;
    bool waiting_ = false;
    bool stopped_ = false;
};

} // namespace rtpush::detail

#endif
