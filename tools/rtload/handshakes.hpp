// rtload: the handshake test (`--handshakes N`) on raw epoll. A connection here is a state
// and five system calls (socket, connect, send, recv, close), with no coroutine frame and no
// reactor registration per operation, so that the generator costs less than the servers it
// measures: with a coroutine per connection it spent as much CPU per handshake as rtd and
// set the figure for every server (docs/benchmarks.md, "Handshakes per second").
#ifndef RTLOAD_HANDSHAKES_HPP
#define RTLOAD_HANDSHAKES_HPP

#include "measure.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace rtload {

struct handshake_counts {
    std::uint64_t done = 0, connect_failures = 0, upgrade_failures = 0;
};

/// Opens `total` WebSocket connections, `concurrency` at a time. Each is closed (abortively:
/// no TIME_WAIT on either side) as soon as its 101 has arrived, or with `keep`, at the end of
/// the run, so that the server holds them all by then (as a dashboard's reconnecting clients
/// stay). `sources` are the local addresses to spread over (loopback runs), in host order;
/// empty: the kernel picks. `request` is the upgrade request, sent whole. `stop_after` bounds
/// the run in seconds.
inline handshake_counts run_handshakes(const tcp::endpoint& target, std::size_t total,
                                       std::size_t concurrency, const std::string& request,
                                       const std::vector<std::uint32_t>& sources, bool keep,
                                       double stop_after) {
    handshake_counts c;
    int const ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return c;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(target.port());
    to.sin_addr.s_addr = htonl(target.address().to_v4().to_uint());

    struct slot {
        int fd = -1;
        std::size_t got = 0;
        char buf[512];
    };
    std::vector<slot> slots(std::max<std::size_t>(1, std::min(concurrency, total)));
    std::size_t started = 0, active = 0;
    std::vector<int> kept;

    auto finish = [&](slot& s, bool abortive) {
        if (abortive) {
            linger const lg{1, 0};
            setsockopt(s.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        ::close(s.fd); // also leaves the epoll set
        s.fd = -1;
        --active;
    };
    auto start = [&](std::size_t index) {
        slot& s = slots[index];
        while (started < total) {
            ++started;
            s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
            if (s.fd < 0) {
                ++c.connect_failures;
                continue;
            }
            int one = 1;
            setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (!sources.empty()) {
                setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
                sockaddr_in from{};
                from.sin_family = AF_INET;
                from.sin_addr.s_addr = htonl(sources[started % sources.size()]);
                if (::bind(s.fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
                    ::close(s.fd);
                    s.fd = -1;
                    ++c.connect_failures;
                    continue;
                }
            }
            s.got = 0;
            if (::connect(s.fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0 &&
                errno != EINPROGRESS) {
                ::close(s.fd);
                s.fd = -1;
                ++c.connect_failures;
                continue;
            }
            // Writable once connected: the request goes then (one send, it is small).
            epoll_event ev{};
            ev.events = EPOLLOUT;
            ev.data.u64 = index;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev) != 0) {
                ::close(s.fd);
                s.fd = -1;
                ++c.connect_failures;
                continue;
            }
            ++active;
            return;
        }
    };

    auto const deadline = clock_type::now() + std::chrono::duration<double>(stop_after);
    for (std::size_t i = 0; i < slots.size(); ++i)
        start(i);
    std::vector<epoll_event> events(slots.size());
    while (active > 0 && clock_type::now() < deadline) {
        int const n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
        for (int k = 0; k < n; ++k) {
            auto const index = static_cast<std::size_t>(events[k].data.u64);
            slot& s = slots[index];
            if (events[k].events & EPOLLOUT) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0 || ::send(s.fd, request.data(), request.size(), MSG_NOSIGNAL) !=
                                    static_cast<ssize_t>(request.size())) {
                    ++c.connect_failures;
                    finish(s, false);
                    start(index);
                    continue;
                }
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.u64 = index;
                epoll_ctl(ep, EPOLL_CTL_MOD, s.fd, &ev);
                continue;
            }
            auto const r = ::recv(s.fd, s.buf + s.got, sizeof s.buf - s.got, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r > 0)
                s.got += static_cast<std::size_t>(r);
            std::string_view const head(s.buf, s.got);
            bool const complete = head.find("\r\n\r\n") != std::string_view::npos;
            if (complete || r <= 0 || s.got == sizeof s.buf) {
                bool const upgraded = complete && head.substr(0, 12) == "HTTP/1.1 101";
                upgraded ? ++c.done : ++c.upgrade_failures;
                if (upgraded && keep) {
                    epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
                    kept.push_back(s.fd);
                    s.fd = -1;
                    --active;
                } else {
                    finish(s, upgraded);
                }
                start(index);
            }
        }
    }
    for (auto& s : slots)
        if (s.fd >= 0)
            finish(s, true);
    linger const lg{1, 0};
    for (int fd : kept) {
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(fd);
    }
    ::close(ep);
    return c;
}

} // namespace rtload

#endif
