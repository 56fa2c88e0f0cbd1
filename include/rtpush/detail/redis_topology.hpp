//
// rtpush: the I/O-free half of finding Redis beyond one server: host lists, the
// redis+sentinel:// URL form, and the Sentinel replies the engine acts on
// (docs/operations.md, "Redis Sentinel"). Part of the optional Redis engine.
//
#ifndef RTPUSH_DETAIL_REDIS_TOPOLOGY_HPP
#define RTPUSH_DETAIL_REDIS_TOPOLOGY_HPP

#include <rtpush/detail/redis_proto.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

struct host_port {
    std::string host;
    std::uint16_t port = 0;

    std::string to_string() const {
        bool const v6 = host.find(':') != std::string::npos;
        return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
    friend bool operator==(const host_port&, const host_port&) = default;
};

/// Parses host[:port] or [v6]:port; `default_port` when none is given.
inline std::optional<host_port> parse_host_port(std::string_view s, std::uint16_t default_port) {
    host_port hp{std::string(), default_port};
    std::string_view host = s, port;
    if (s.starts_with('[')) {
        auto const close = s.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        host = s.substr(1, close - 1);
        auto const rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':')
                return std::nullopt;
            port = rest.substr(1);
        }
    } else if (auto const colon = s.rfind(':'); colon != std::string_view::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (host.empty() || host.find_first_of("/@, ") != std::string_view::npos)
        return std::nullopt;
    hp.host = std::string(host);
    if (!port.empty() || s.ends_with(':')) {
        unsigned p = 0;
        auto const [ptr, e] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (e != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535)
            return std::nullopt;
        hp.port = static_cast<std::uint16_t>(p);
    }
    return hp;
}

/// Parses "host:port,host:port,..."; false when empty or when one of them is not host:port.
inline bool parse_host_list(std::string_view s, std::uint16_t default_port,
                            std::vector<host_port>& out) {
    out.clear();
    while (!s.empty()) {
        auto const comma = s.find(',');
        auto const one = s.substr(0, comma);
        auto hp = parse_host_port(one, default_port);
        if (!hp)
            return false;
        out.push_back(std::move(*hp));
        if (comma == std::string_view::npos)
            break;
        s.remove_prefix(comma + 1);
        if (s.empty())
            return false; // a trailing comma
    }
    return !out.empty();
}

/// Where the engine finds Redis: one server (`url`), a master known to Sentinels, or a
/// Redis Cluster.
struct redis_endpoints {
    /// The server of a single Redis; else only its credentials, db and TLS count.
    redis_url url;
    std::vector<host_port> sentinels; ///< empty: no Sentinel
    std::string master_name;
    std::vector<host_port> cluster; ///< some nodes of a Redis Cluster; empty: none

    bool sentinel() const noexcept { return !sentinels.empty(); }
    bool is_cluster() const noexcept { return !cluster.empty(); }
};

inline constexpr std::uint16_t sentinel_default_port = 26379;

/// Parses redis[s]://... (rtpush::detail::parse_redis_url), the Sentinel form
/// redis[s]+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[/db]
/// (docs/operations.md, "Redis Sentinel") or the Cluster form
/// redis[s]+cluster://[[user]:password@]host:port[,host:port...] ("Redis Cluster").
/// error::bad_url when it is none of them.
inline redis_endpoints parse_redis_endpoints(std::string_view s, boost::system::error_code& ec) {
    redis_endpoints out;
    bool tls = false, cluster = false;
    if (s.starts_with("redis+sentinel://"))
        s.remove_prefix(17);
    else if (s.starts_with("rediss+sentinel://")) {
        s.remove_prefix(18);
        tls = true;
    } else if (s.starts_with("redis+cluster://")) {
        s.remove_prefix(16);
        cluster = true;
    } else if (s.starts_with("rediss+cluster://")) {
        s.remove_prefix(17);
        tls = cluster = true;
    } else {
        out.url = parse_redis_url(s, ec);
        return out;
    }
    auto fail = [&] {
        ec = error::bad_url;
        return redis_endpoints{};
    };
    auto const slash = s.find('/');
    if (cluster) {
        auto authority = s.substr(0, slash);
        std::string_view creds;
        if (auto const at = authority.rfind('@'); at != std::string_view::npos) {
            creds = authority.substr(0, at + 1);
            authority = authority.substr(at + 1);
        }
        // A Redis Cluster has database 0 only.
        if (slash != std::string_view::npos && s.substr(slash) != "/" && s.substr(slash) != "/0")
            return fail();
        if (!parse_host_list(authority, 6379, out.cluster))
            return fail();
        out.url = parse_redis_url(
            std::string(tls ? "rediss://" : "redis://") + std::string(creds) + "cluster", ec);
        if (ec)
            return fail();
        return out;
    }
    if (slash == std::string_view::npos)
        return fail(); // the master's name is required
    std::string_view authority = s.substr(0, slash), path = s.substr(slash + 1);
    std::string_view creds;
    if (auto const at = authority.rfind('@'); at != std::string_view::npos) {
        creds = authority.substr(0, at + 1);
        authority = authority.substr(at + 1);
    }
    std::string_view db;
    if (auto const s2 = path.find('/'); s2 != std::string_view::npos) {
        db = path.substr(s2 + 1);
        path = path.substr(0, s2);
    }
    if (path.empty() || !parse_host_list(authority, sentinel_default_port, out.sentinels))
        return fail();
    out.master_name = std::string(path);
    // The credentials, TLS and db, read as a single server's URL reads them.
    std::string single = tls ? "rediss://" : "redis://";
    single += creds;
    single += "sentinel";
    if (!db.empty()) {
        single += '/';
        single += db;
    }
    out.url = parse_redis_url(single, ec);
    if (ec)
        return fail();
    return out;
}

/// The endpoints of the engine's settings: the URL, or the Sentinels and master name, or the
/// Cluster's nodes given beside it (then the URL gives only credentials, db and TLS). Empty
/// `why` when valid.
inline redis_endpoints resolve_redis_endpoints(std::string_view url,
                                               const std::vector<std::string>& sentinels,
                                               const std::string& master_name,
                                               const std::vector<std::string>& cluster,
                                               std::string& why) {
    why.clear();
    boost::system::error_code ec;
    auto ep = parse_redis_endpoints(url, ec);
    if (ec) {
        why = "the Redis URL must be redis[s]://[[user]:password@]host[:port][/db], "
              "redis[s]+sentinel://[[user]:password@]host:port[,host:port...]/MASTER[/db] or "
              "redis[s]+cluster://[[user]:password@]host:port[,host:port...]";
        return {};
    }
    if (!cluster.empty() && ep.is_cluster()) {
        why = "Cluster nodes are given twice: in the redis+cluster:// URL and as a list";
        return {};
    }
    for (auto const& c : cluster) {
        auto hp = parse_host_port(c, 6379);
        if (!hp) {
            why = "a Cluster node must be host:port, not '" + c + "'";
            return {};
        }
        ep.cluster.push_back(std::move(*hp));
    }
    if (ep.is_cluster() && (ep.sentinel() || !sentinels.empty() || !master_name.empty())) {
        why = "a Redis Cluster fails over by itself: no Sentinels with --redis-cluster";
        return {};
    }
    if (ep.is_cluster() && ep.url.db != 0) {
        why = "a Redis Cluster has database 0 only";
        return {};
    }
    if (!sentinels.empty() && ep.sentinel()) {
        why = "Sentinels are given twice: in the redis+sentinel:// URL and as a list";
        return {};
    }
    for (auto const& s : sentinels) {
        auto hp = parse_host_port(s, sentinel_default_port);
        if (!hp) {
            why = "a Sentinel must be host:port, not '" + s + "'";
            return {};
        }
        ep.sentinels.push_back(std::move(*hp));
    }
    if (!sentinels.empty())
        ep.master_name = master_name;
    else if (!master_name.empty() && !ep.sentinel()) {
        why = "a master name needs Sentinels (--redis-sentinels)";
        return {};
    }
    if (ep.sentinel() && ep.master_name.empty())
        why = "Sentinels need the name of the master they watch (--redis-master-name)";
    return ep;
}

/// The master's address in a reply to SENTINEL get-master-addr-by-name; none when the
/// Sentinel does not know the name (nil) or answered something else.
inline std::optional<host_port> sentinel_master(const redis_reply& r) {
    if (!r.is_array() || r.elements.size() != 2 || r.elements[0].str.empty())
        return std::nullopt;
    auto const& port = r.elements[1].str;
    unsigned p = 0;
    auto const [ptr, e] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (e != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535)
        return std::nullopt;
    return host_port{r.elements[0].str, static_cast<std::uint16_t>(p)};
}

/// The new master in a +switch-master message ("<name> <old-ip> <old-port> <new-ip>
/// <new-port>") when it is about `name`; none otherwise.
inline std::optional<host_port> switch_master(std::string_view payload, std::string_view name) {
    std::vector<std::string_view> w;
    while (!payload.empty() && w.size() < 6) {
        auto const sp = payload.find(' ');
        w.push_back(payload.substr(0, sp));
        if (sp == std::string_view::npos)
            break;
        payload.remove_prefix(sp + 1);
    }
    if (w.size() != 5 || w[0] != name)
        return std::nullopt;
    redis_reply addr;
    addr.type = redis_reply::kind::array;
    addr.elements.resize(2);
    addr.elements[0].str = std::string(w[3]);
    addr.elements[1].str = std::string(w[4]);
    return sentinel_master(addr);
}

/// Whether a ROLE reply is a master's (a Sentinel's answer may be stale: a client checks
/// before it writes).
inline bool is_master_role(const redis_reply& r) {
    return r.is_array() && !r.elements.empty() && r.elements[0].str == "master";
}

/// Whether a command's error reply means the server is no master any more (a demoted master
/// keeps its clients and answers writes with READONLY): the engine finds the master again.
inline bool is_demoted_error(std::string_view error_reply) {
    return error_reply.starts_with("READONLY");
}

/// The replicas a master's INFO replication lists as online ("slaveN:...,state=online,...").
inline unsigned online_replicas(std::string_view info) {
    unsigned n = 0;
    while (!info.empty()) {
        auto const eol = info.find('\n');
        auto const line = info.substr(0, eol);
        if (line.starts_with("slave") && line.size() > 5 && line[5] >= '0' && line[5] <= '9' &&
            line.find("state=online") != std::string_view::npos)
            ++n;
        if (eol == std::string_view::npos)
            break;
        info.remove_prefix(eol + 1);
    }
    return n;
}

} // namespace rtpush::detail

#endif
