// rtd: the system metrics source (seed 002): CPU, temperature, memory, storage, uptime,
// hostname, top processes and network interfaces, read from /proc, /sys and statvfs.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#ifndef RTD_SYSTEM_METRICS_HPP
#define RTD_SYSTEM_METRICS_HPP

#include <rtpush/source.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace rtd {

// ---- parsers of /proc text, free of I/O (unit-tested) ----

/// The aggregate "cpu" line of /proc/stat: total and idle (idle + iowait) jiffies.
struct cpu_times {
    std::uint64_t total = 0;
    std::uint64_t idle = 0;
};

inline cpu_times parse_proc_stat(const std::string& text, unsigned* cores = nullptr) {
    cpu_times t;
    std::istringstream in(text);
    std::string line;
    unsigned n = 0;
    while (std::getline(in, line)) {
        if (line.rfind("cpu ", 0) == 0) {
            std::istringstream f(line.substr(4));
            std::uint64_t v;
            for (int i = 0; f >> v; ++i) {
                if (i < 8) // user nice system idle iowait irq softirq steal (guest is in user)
                    t.total += v;
                if (i == 3 || i == 4)
                    t.idle += v;
            }
        } else if (line.rfind("cpu", 0) == 0 && line.size() > 3 && std::isdigit(line[3])) {
            ++n;
        }
    }
    if (cores)
        *cores = n;
    return t;
}

/// Percent busy between two samples, rounded to 0.1.
inline double cpu_percent(const cpu_times& a, const cpu_times& b) {
    if (b.total <= a.total)
        return 0;
    double const busy = static_cast<double>((b.total - a.total) - (b.idle - a.idle));
    return std::round(1000.0 * busy / static_cast<double>(b.total - a.total)) / 10;
}

/// /proc/meminfo values in kB by name (MemTotal, MemAvailable, ...).
inline std::map<std::string, std::uint64_t> parse_meminfo(const std::string& text) {
    std::map<std::string, std::uint64_t> m;
    std::istringstream in(text);
    std::string key;
    std::uint64_t v;
    std::string unit;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream f(line);
        if (f >> key >> v) {
            if (!key.empty() && key.back() == ':')
                key.pop_back();
            m[key] = v;
        }
    }
    return m;
}

struct net_counters {
    std::string name;
    std::uint64_t rx_bytes = 0, rx_packets = 0, tx_bytes = 0, tx_packets = 0;
};

/// /proc/net/dev: one entry per interface.
inline std::vector<net_counters> parse_net_dev(const std::string& text) {
    std::vector<net_counters> v;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto const colon = line.find(':');
        if (colon == std::string::npos)
            continue;
        net_counters c;
        c.name = line.substr(0, colon);
        c.name.erase(0, c.name.find_first_not_of(' '));
        std::istringstream f(line.substr(colon + 1));
        std::uint64_t x[16] = {};
        for (int i = 0; i < 16 && (f >> x[i]); ++i) {
        }
        c.rx_bytes = x[0];
        c.rx_packets = x[1];
        c.tx_bytes = x[8];
        c.tx_packets = x[9];
        v.push_back(std::move(c));
    }
    return v;
}

/// /proc/PID/stat: the command name and utime + stime (jiffies) and rss (pages).
struct proc_sample {
    int pid = 0;
    std::string name;
    std::uint64_t cpu = 0;
    std::uint64_t rss_pages = 0;
};

inline bool parse_pid_stat(const std::string& text, proc_sample& out) {
    // The name is in parentheses and may itself hold spaces and parentheses.
    auto const open = text.find('(');
    auto const close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open)
        return false;
    out.pid = std::atoi(text.c_str());
    out.name = text.substr(open + 1, close - open - 1);
    std::istringstream f(text.substr(close + 2));
    std::string field;
    // fields after the name, 1-based from `state` (3): utime 14, stime 15, rss 24
    for (int i = 3; i <= 24 && (f >> field); ++i) {
        if (i == 14 || i == 15)
            out.cpu += std::strtoull(field.c_str(), nullptr, 10);
        if (i == 24)
            out.rss_pages = std::strtoull(field.c_str(), nullptr, 10);
    }
    return true;
}

// ---- the collector ----

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

/// Samples the machine. CPU percentages are over the time since the previous call (since boot
/// on the first one), so the collector keeps the previous sample.
class system_metrics {
public:
    explicit system_metrics(std::string root = "/")
        : root_(std::move(root)) {}

    boost::json::object collect() {
        std::lock_guard lock(mutex_);
        boost::json::object m;
        unsigned cores = 0;
        auto const cpu = parse_proc_stat(read_file("/proc/stat"), &cores);
        m["cpu_usage"] = cpu_percent(prev_cpu_, cpu);
        m["cpu_cores"] = cores;
        m["cpu_temp"] = temperature();
        auto const mem = parse_meminfo(read_file("/proc/meminfo"));
        auto get = [&](const char* k) {
            auto it = mem.find(k);
            return it == mem.end() ? std::uint64_t(0) : it->second;
        };
        std::uint64_t const total = get("MemTotal"), avail = get("MemAvailable");
        m["memory_total"] = total / 1024;
        m["memory_usage"] = (total - std::min(avail, total)) / 1024;
        m["memory_percent"] =
            total ? std::round(1000.0 * double(total - std::min(avail, total)) / double(total)) / 10
                  : 0.0;
        struct statvfs vfs {};
        if (::statvfs(root_.c_str(), &vfs) == 0 && vfs.f_blocks > 0) {
            double const bs = static_cast<double>(vfs.f_frsize);
            double const tot = double(vfs.f_blocks) * bs / 1048576;
            double const used = double(vfs.f_blocks - vfs.f_bfree) * bs / 1048576;
            m["storage_total"] = std::round(tot);
            m["storage_usage"] = std::round(used);
            m["storage_percent"] = std::round(1000.0 * used / tot) / 10;
        } else {
            m["storage_total"] = nullptr;
            m["storage_usage"] = nullptr;
            m["storage_percent"] = nullptr;
        }
        std::istringstream up(read_file("/proc/uptime"));
        double uptime = 0;
        up >> uptime;
        m["uptime"] = static_cast<std::int64_t>(uptime);
        char host[256] = {};
        ::gethostname(host, sizeof host - 1);
        m["hostname"] = host;
        m["is_undervolted"] = false; // a Raspberry Pi reading; not available here
        m["top_processes"] = top_processes(cpu.total - prev_cpu_.total, total);
        m["network_interfaces"] = interfaces();
        prev_cpu_ = cpu;
        return m;
    }

    /// The seed 002 KPIs: the numbers a dashboard paints first.
    static boost::json::object kpis(const boost::json::object& m) {
        boost::json::object k;
        for (auto const* f : {"cpu_usage", "cpu_cores", "cpu_temp", "memory_usage", "memory_total",
                              "memory_percent", "storage_percent", "uptime"})
            if (auto const* v = m.if_contains(f))
                k[f] = *v;
        return k;
    }

    /// Reading /proc takes a few milliseconds: done inline on the refresher's thread.
    boost::asio::awaitable<rtpush::snapshot> fetch() { co_return snapshot(); }

    rtpush::snapshot snapshot() {
        auto m = collect();
        rtpush::snapshot s;
        s.kpis = kpis(m);
        s.complete = std::move(m);
        return s;
    }

private:
    static boost::json::value temperature() {
        // The first thermal zone is the CPU package on most machines.
        std::error_code ec;
        if (!std::filesystem::exists("/sys/class/thermal/thermal_zone0/temp", ec))
            return nullptr;
        auto const t = read_file("/sys/class/thermal/thermal_zone0/temp");
        if (t.empty())
            return nullptr;
        return std::round(std::strtod(t.c_str(), nullptr) / 100.0) / 10;
    }

    boost::json::array top_processes(std::uint64_t total_delta, std::uint64_t mem_total_kb) {
        std::vector<std::pair<double, proc_sample>> procs;
        std::map<int, std::uint64_t> now;
        long const page_kb = ::sysconf(_SC_PAGESIZE) / 1024;
        std::error_code ec;
        for (auto const& d : std::filesystem::directory_iterator("/proc", ec)) {
            auto const name = d.path().filename().string();
            if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0])))
                continue;
            proc_sample p;
            if (!parse_pid_stat(read_file(d.path().string() + "/stat"), p))
                continue;
            now[p.pid] = p.cpu;
            auto it = prev_procs_.find(p.pid);
            std::uint64_t const before = it == prev_procs_.end() ? 0 : it->second;
            double const pct = total_delta && p.cpu >= before
                                   ? 100.0 * double(p.cpu - before) / double(total_delta)
                                   : 0.0;
            procs.emplace_back(pct, std::move(p));
        }
        prev_procs_ = std::move(now);
        // Top 10 by CPU, ties (idle processes) by memory.
        std::sort(procs.begin(), procs.end(), [](auto const& a, auto const& b) {
            if (a.first != b.first)
                return a.first > b.first;
            return a.second.rss_pages > b.second.rss_pages;
        });
        boost::json::array a;
        for (std::size_t i = 0; i < procs.size() && i < 10; ++i) {
            auto const& [pct, p] = procs[i];
            boost::json::object o;
            o["pid"] = p.pid;
            o["name"] = p.name;
            o["cpu_percent"] = std::round(pct * 10) / 10;
            double const mem_mb = double(p.rss_pages * static_cast<std::uint64_t>(page_kb)) / 1024;
            o["memory_mb"] = std::round(mem_mb * 10) / 10;
            o["memory_percent"] =
                mem_total_kb ? std::round(1000.0 * mem_mb * 1024 / double(mem_total_kb)) / 10 : 0.0;
            a.push_back(std::move(o));
        }
        return a;
    }

    static boost::json::array interfaces() {
        std::map<std::string, std::vector<std::string>> addrs;
        ifaddrs* ifs = nullptr;
        if (::getifaddrs(&ifs) == 0) {
            for (auto* i = ifs; i; i = i->ifa_next) {
                if (!i->ifa_addr)
                    continue;
                char buf[INET6_ADDRSTRLEN] = {};
                if (i->ifa_addr->sa_family == AF_INET)
                    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr,
                                buf, sizeof buf);
                else if (i->ifa_addr->sa_family == AF_INET6)
                    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                                buf, sizeof buf);
                else
                    continue;
                addrs[i->ifa_name].push_back(buf);
            }
            ::freeifaddrs(ifs);
        }
        boost::json::array a;
        for (auto const& c : parse_net_dev(read_file("/proc/net/dev"))) {
            boost::json::object o;
            o["name"] = c.name;
            boost::json::array ad;
            for (auto const& x : addrs[c.name])
                ad.push_back(boost::json::string(x));
            o["addresses"] = std::move(ad);
            o["rx_bytes"] = c.rx_bytes;
            o["tx_bytes"] = c.tx_bytes;
            o["rx_packets"] = c.rx_packets;
            o["tx_packets"] = c.tx_packets;
            a.push_back(std::move(o));
        }
        return a;
    }

    std::string root_;
    std::mutex mutex_;
    cpu_times prev_cpu_;
    std::map<int, std::uint64_t> prev_procs_;
};

/// The source: `metrics` channel by default.
inline rtpush::source make_system_metrics_source(std::shared_ptr<system_metrics> sm,
                                                 rtpush::topic t = {"metrics", {}}) {
    rtpush::source s;
    s.name = "system_metrics";
    s.topic = std::move(t);
    s.event = "metrics:update";
    s.fetch = [sm] {
        return sm->fetch();
    };
    return s;
}

} // namespace rtd

#endif
