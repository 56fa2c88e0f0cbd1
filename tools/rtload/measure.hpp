// rtload: its options, its counters, and the samples of a process's CPU time and memory.
#ifndef RTLOAD_MEASURE_HPP
#define RTLOAD_MEASURE_HPP

#include <rtpush/detail/fd_limit.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/histogram.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace rtload {

namespace net = boost::asio;
namespace po = boost::program_options;
using net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using rtpush::detail::histogram;

enum class protocol { rtpush, socketio };

struct options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3001;
    std::uint16_t publish_port = 0; ///< the publisher's port when not `port` (another node)
    std::string path = "/ws";
    protocol proto = protocol::rtpush;
    std::size_t clients = 1000;
    std::string channel = "kpi";
    std::string org, dept, queue;
    double duration = 10;
    double ramp = 2000;
    double publish_rate = 0;
    std::size_t size = 200;
    bool publish_http = true; // POST /api/broadcast on a keep-alive connection (rtpush default)
    std::string api_key;      // X-API-Key of the HTTP publisher
    bool reconnect = false;   // subscribers reconnect (and resubscribe) after a drop
    double drain = 2;
    std::string json_out;
    int server_pid = 0;
    bool keep = false; ///< --handshakes: connections stay open until the end
    int sources = 0;   // source addresses 127.0.0.2 .. ; 0 = automatic
    std::size_t handshakes = 0;
    std::size_t concurrency = 100;
    std::size_t read_buffer = 0;
    bool quiet = false;
};

inline double parse_seconds(std::string s) {
    double mult = 1;
    if (s.ends_with("ms")) {
        mult = 0.001;
        s.resize(s.size() - 2);
    } else if (s.ends_with("s")) {
        s.pop_back();
    } else if (s.ends_with("m")) {
        mult = 60;
        s.pop_back();
    }
    std::size_t pos = 0;
    double const v = std::stod(s, &pos);
    if (pos != s.size() || v < 0)
        throw std::invalid_argument("bad duration");
    return v * mult;
}

inline double parse_rate(std::string s) {
    if (s.ends_with("/s"))
        s.resize(s.size() - 2);
    std::size_t pos = 0;
    double const v = std::stod(s, &pos);
    if (pos != s.size() || v < 0)
        throw std::invalid_argument("bad rate");
    return v;
}

inline std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               clock_type::now().time_since_epoch())
        .count();
}

struct proc_sample {
    double user = 0, sys = 0; // seconds
    long rss_kib = 0;
};

inline std::optional<proc_sample> sample_process(int pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line))
        return std::nullopt;
    auto const close = line.rfind(')');
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    proc_sample s;
    double const tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14)
            s.user = std::stod(field) / tick;
        if (i == 15)
            s.sys = std::stod(field) / tick;
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    while (std::getline(status, line))
        if (line.rfind("VmRSS:", 0) == 0)
            s.rss_kib = std::stol(line.substr(6));
    return s;
}

inline proc_sample self_usage() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    proc_sample s;
    s.user =
        static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    s.sys =
        static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    s.rss_kib = ru.ru_maxrss;
    return s;
}

// Finds `"key":<integer>` in a message; false when absent.
inline bool find_int(std::string_view text, std::string_view key, std::int64_t& out) {
    auto const p = text.find(key);
    if (p == std::string_view::npos)
        return false;
    std::size_t i = p + key.size();
    std::int64_t v = 0;
    bool any = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
        v = v * 10 + (text[i] - '0');
        ++i;
        any = true;
    }
    out = v;
    return any;
}

struct stats {
    histogram latency_us;
    histogram answer_us; ///< --publish-via http: request written to its answer read
    std::uint64_t received = 0, bytes = 0, gaps = 0, duplicates = 0, out_of_order = 0;
    std::uint64_t connect_failures = 0, handshake_failures = 0, disconnects = 0, handshakes = 0;
    std::uint64_t reconnects = 0; ///< connections re-established after a drop (--reconnect)
    std::size_t connected = 0;
    std::uint64_t published = 0, publish_errors = 0;
};

inline std::string fmt(double v, int prec = 1) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", prec, v);
    return b;
}

} // namespace rtload

#endif
