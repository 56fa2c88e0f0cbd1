// rtd: the data sources section of the config file (`rtd --config FILE`), onto plain structs.
#ifndef RTD_SOURCES_CONFIG_HPP
#define RTD_SOURCES_CONFIG_HPP

#include "http_poller.hpp"

#include <rtpush/refresher.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

namespace rtd {

struct sources_config {
    bool system_metrics = false;
    rtpush::topic metrics_topic{"metrics", {}};
    rtpush::refresh_options metrics_refresh;
    std::vector<poller_config> pollers;
};

namespace detail {

// Every error names the setting, e.g. "pollers[1].url: must start with http://".
[[noreturn]] inline void bad(const std::string& where, const std::string& what) {
    throw std::invalid_argument(where + ": " + what);
}

inline void only_keys(const boost::json::object& o, const std::string& where,
                      std::initializer_list<std::string_view> keys) {
    for (auto const& [k, v] : o)
        if (std::find(keys.begin(), keys.end(), std::string_view(k)) == keys.end())
            bad(where.empty() ? std::string(k) : where + "." + std::string(k), "unknown setting");
}

inline std::string get_string(const boost::json::object& o, std::string_view key,
                              const std::string& where, std::string def = {}) {
    auto const* v = o.if_contains(key);
    if (!v)
        return def;
    if (!v->is_string())
        bad(where + "." + std::string(key), "must be a string");
    return std::string(v->get_string());
}

inline bool get_bool(const boost::json::object& o, std::string_view key, const std::string& where,
                     bool def) {
    auto const* v = o.if_contains(key);
    if (!v)
        return def;
    if (!v->is_bool())
        bad(where + "." + std::string(key), "must be true or false");
    return v->get_bool();
}

/// Seconds (a number, fractions allowed) as milliseconds.
inline std::chrono::milliseconds get_seconds(const boost::json::object& o, std::string_view key,
                                             const std::string& where,
                                             std::chrono::milliseconds def, bool allow_zero) {
    auto const* v = o.if_contains(key);
    if (!v)
        return def;
    std::string const name = where.empty() ? std::string(key) : where + "." + std::string(key);
    if (!v->is_number())
        bad(name, "must be a number of seconds");
    double const s = v->to_number<double>();
    if (!(s > 0 || (allow_zero && s == 0)) || s > 86400 * 365)
        bad(name, allow_zero ? "must be 0 or more seconds" : "must be more than 0 seconds");
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(s * 1000)));
}

inline rtpush::refresh_options get_refresh(const boost::json::object& o, const std::string& where,
                                           rtpush::refresh_options r) {
    r.refresh_interval = get_seconds(o, "interval", where, r.refresh_interval, false);
    r.jitter = get_seconds(o, "jitter", where, r.jitter, true);
    r.cache_ttl = get_seconds(o, "cache_ttl", where, r.cache_ttl, true);
    r.retry_initial = get_seconds(o, "retry_initial", where, r.retry_initial, false);
    r.retry_max = get_seconds(o, "retry_max", where, r.retry_max, false);
    r.on_demand = get_bool(o, "on_demand", where, r.on_demand);
    r.linger = get_seconds(o, "linger", where, r.linger, true);
    r.changed_fields = get_bool(o, "changed_fields", where, r.changed_fields);
    return r;
}

inline rtpush::topic get_topic(const boost::json::object& o, const std::string& where,
                               std::string def_channel) {
    rtpush::topic t;
    t.channel = get_string(o, "channel", where, std::move(def_channel));
    if (auto const* s = o.if_contains("scope")) {
        if (!s->is_object())
            bad(where + ".scope", "must be an object {org, dept, queue}");
        auto const& so = s->get_object();
        only_keys(so, where + ".scope", {"org", "dept", "queue"});
        t.scope.org = get_string(so, "org", where + ".scope");
        t.scope.dept = get_string(so, "dept", where + ".scope");
        t.scope.queue = get_string(so, "queue", where + ".scope");
    }
    if (rtpush::validate(t))
        bad(where + (t.channel.empty() ? ".channel" : ".scope"),
            "invalid channel or scope (identifiers are [A-Za-z0-9_.@-]; a dept needs an org, "
            "a queue needs a dept)");
    return t;
}

} // namespace detail

/// Reads the `system_metrics` and `pollers` settings (plus `refresh_interval` and
/// `cache_ttl`, the defaults of every source). Other top-level keys are left to the caller.
/// Throws std::invalid_argument naming the bad setting.
inline sources_config parse_sources_config(const boost::json::object& root,
                                           rtpush::refresh_options defaults) {
    using detail::bad;
    sources_config c;
    defaults.refresh_interval =
        detail::get_seconds(root, "refresh_interval", "", defaults.refresh_interval, false);
    defaults.cache_ttl = detail::get_seconds(root, "cache_ttl", "", defaults.cache_ttl, true);
    if (auto const* sm = root.if_contains("system_metrics")) {
        // Every 5 s, and only to watching clients: seed 002's (docs/protocol.md, "Seed parity";
        // docs/configuration.md, "The config file").
        c.metrics_refresh = defaults;
        c.metrics_refresh.refresh_interval = std::chrono::seconds(5);
        c.metrics_refresh.cache_ttl = std::chrono::seconds(5);
        c.metrics_refresh.on_demand = true;
        if (sm->is_bool()) {
            c.system_metrics = sm->get_bool();
        } else if (sm->is_object()) {
            auto const& o = sm->get_object();
            detail::only_keys(o, "system_metrics",
                              {"enabled", "channel", "scope", "interval", "jitter", "cache_ttl",
                               "retry_initial", "retry_max", "on_demand", "linger"});
            c.system_metrics = detail::get_bool(o, "enabled", "system_metrics", true);
            c.metrics_topic = detail::get_topic(o, "system_metrics", "metrics");
            c.metrics_refresh = detail::get_refresh(o, "system_metrics", c.metrics_refresh);
        } else {
            bad("system_metrics", "must be true, false or an object");
        }
    }
    if (auto const* ps = root.if_contains("pollers")) {
        if (!ps->is_array())
            bad("pollers", "must be an array of objects");
        std::size_t i = 0;
        for (auto const& pv : ps->get_array()) {
            std::string const where = "pollers[" + std::to_string(i++) + "]";
            if (!pv.is_object())
                bad(where, "must be an object");
            auto const& o = pv.get_object();
            detail::only_keys(o, where,
                              {"name", "url", "ca_file", "channel", "scope", "event", "headers",
                               "bearer_token_env", "kpis", "data", "timeout", "interval", "jitter",
                               "cache_ttl", "retry_initial", "retry_max", "on_demand", "linger",
                               "changed_fields"});
            poller_config p;
            p.name = detail::get_string(o, "name", where);
            if (p.name.empty())
                bad(where + ".name", "is required");
            for (auto const& q : c.pollers)
                if (q.name == p.name)
                    bad(where + ".name", "'" + p.name + "' is used twice");
            p.url = detail::get_string(o, "url", where);
            boost::system::error_code ec;
            bool const tls = p.url.rfind("https://", 0) == 0;
            if ((!tls && p.url.rfind("http://", 0) != 0) ||
                (rtpush::parse_ws_url((tls ? "wss://" : "ws://") + p.url.substr(tls ? 8 : 7), ec),
                 ec))
                bad(where + ".url", "must be an http:// or https://host[:port]/path URL");
            p.ca_file = detail::get_string(o, "ca_file", where);
            if (!p.ca_file.empty() && !tls)
                bad(where + ".ca_file", "only applies to https:// URLs");
            if (!o.contains("channel"))
                bad(where + ".channel", "is required");
            p.topic = detail::get_topic(o, where, "");
            p.event = detail::get_string(o, "event", where);
            p.bearer_token_env = detail::get_string(o, "bearer_token_env", where);
            p.data_pointer = detail::get_string(o, "data", where);
            if (!p.data_pointer.empty() && p.data_pointer[0] != '/')
                bad(where + ".data", "must be a JSON pointer such as /items");
            if (auto const* h = o.if_contains("headers")) {
                if (!h->is_object())
                    bad(where + ".headers", "must be an object of strings");
                for (auto const& [k, v] : h->get_object()) {
                    if (!v.is_string())
                        bad(where + ".headers." + std::string(k), "must be a string");
                    p.headers.emplace_back(std::string(k), std::string(v.get_string()));
                }
            }
            if (auto const* k = o.if_contains("kpis")) {
                if (!k->is_object())
                    bad(where + ".kpis", "must be an object of name: JSON pointer");
                for (auto const& [name, ptr] : k->get_object()) {
                    if (!ptr.is_string() ||
                        (!ptr.get_string().empty() && ptr.get_string()[0] != '/'))
                        bad(where + ".kpis." + std::string(name),
                            "must be a JSON pointer such as /summary/total");
                    p.kpis.push_back({std::string(name), std::string(ptr.get_string())});
                }
            }
            p.timeout = detail::get_seconds(o, "timeout", where, p.timeout, false);
            p.refresh = detail::get_refresh(o, where, defaults);
            c.pollers.push_back(std::move(p));
        }
    }
    return c;
}

} // namespace rtd

#endif
