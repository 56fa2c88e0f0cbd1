//
// rtpush: the deep health check (seed 004's `GET /api/v1/health`): which part of the server is
// failing, decided from the engine's status and the data sources' statistics. Free of I/O.
// (docs/protocol.md, "Seed parity")
#ifndef RTPUSH_DETAIL_HEALTH_HPP
#define RTPUSH_DETAIL_HEALTH_HPP

#include <boost/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace rtpush::detail {

/// One failing part: `part` is "engine:redis", "source:NAME" or "server".
struct health_failure {
    std::string part;
    std::string reason;
};

/// A data source fails the check once this many fetches in a row have failed. One failure is
/// not enough: a single timeout of an upstream API would take the node out of a load
/// balancer's rotation while the refresher is already retrying (after 1 s, doubling).
inline constexpr std::uint64_t source_failures_unhealthy = 2;

/// What fails, in the order: the server itself (stopping), the engine, each data source.
/// `engine_status` is engine::status() (or {"engine":"memory"}); an engine reports its
/// connection as `<engine>_up` (the Redis engine's `redis_up`). `sources` is the refresher's
/// statistics array (hub::extra_stats()["sources"]), null when no refresher runs.
inline std::vector<health_failure> health_failures(const boost::json::object& engine_status,
                                                   const boost::json::value& sources,
                                                   bool stopping) {
    std::vector<health_failure> out;
    if (stopping)
        out.push_back({"server", "shutting down"});
    if (auto const* e = engine_status.if_contains("engine"); e && e->is_string()) {
        std::string const name(e->get_string());
        if (auto const* up = engine_status.if_contains(name + "_up");
            up && up->is_bool() && !up->get_bool())
            out.push_back({"engine:" + name, name + " is unreachable"});
    }
    if (auto const* a = sources.if_array())
        for (auto const& v : *a) {
            auto const* o = v.if_object();
            if (!o)
                continue;
            auto const* n = o->if_contains("consecutive_errors");
            std::uint64_t const failures = n && n->is_number() ? n->to_number<std::uint64_t>() : 0;
            if (failures < source_failures_unhealthy)
                continue;
            auto const* name = o->if_contains("name");
            auto const* why = o->if_contains("last_error");
            health_failure f;
            f.part = "source:" + std::string(name && name->is_string() ? name->get_string() : "");
            f.reason = std::to_string(failures) + " fetches failed in a row";
            if (why && why->is_string())
                f.reason += ": " + std::string(why->get_string());
            out.push_back(std::move(f));
        }
    return out;
}

/// The answer's body: `status` ok or error, `checks` with every part looked at (engine and
/// sources, each ok or failing), and `failing` naming the failing parts; `base` holds the
/// shallow health fields (version, uptime, connections).
inline boost::json::object health_report(boost::json::object base,
                                         const boost::json::object& engine_status,
                                         const boost::json::value& sources,
                                         const std::vector<health_failure>& failures) {
    auto failing = [&](const std::string& part) -> const health_failure* {
        for (auto const& f : failures)
            if (f.part == part)
                return &f;
        return nullptr;
    };
    auto check = [&](const std::string& part) {
        boost::json::object c;
        auto const* f = failing(part);
        c["status"] = f ? "error" : "ok";
        if (f)
            c["reason"] = f->reason;
        return c;
    };
    boost::json::object checks;
    std::string engine = "memory";
    if (auto const* e = engine_status.if_contains("engine"); e && e->is_string())
        engine = std::string(e->get_string());
    checks["engine:" + engine] = check("engine:" + engine);
    if (auto const* a = sources.if_array())
        for (auto const& v : *a)
            if (auto const* o = v.if_object())
                if (auto const* n = o->if_contains("name"); n && n->is_string()) {
                    std::string const part = "source:" + std::string(n->get_string());
                    checks[part] = check(part);
                }
    boost::json::array names;
    for (auto const& f : failures)
        names.emplace_back(f.part);
    base["status"] = failures.empty() ? "ok" : "error";
    base["checks"] = std::move(checks);
    base["failing"] = std::move(names);
    if (!failures.empty()) {
        // Like every error answer: a code and a message naming the parts.
        std::string message;
        for (auto const& f : failures)
            message += (message.empty() ? "" : "; ") + f.part + ": " + f.reason;
        boost::json::object err;
        err["code"] = "UNHEALTHY";
        err["message"] = message;
        base["error"] = std::move(err);
    }
    return base;
}

} // namespace rtpush::detail

#endif
