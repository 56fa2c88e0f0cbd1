// rtd: seed 000's data source as a preset: an organization's GitHub Copilot metrics
// (`GET {GITHUB_API_URL}/orgs/{GITHUB_ORG}/copilot/metrics`, with `GITHUB_TOKEN`) polled by the
// HTTP poller and published on channel `dashboard`: the latest day's KPIs first, the days after
// (docs/protocol.md, "Seed parity").
#ifndef RTD_COPILOT_HPP
#define RTD_COPILOT_HPP

#include "http_poller.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace rtd {

/// Where the preset polls. The token is read from `token_env` at every fetch (http_poller's
/// `bearer_token_env`), so it never sits in the config or the logs.
struct copilot_settings {
    std::string api_url = "https://api.github.com"; ///< GITHUB_API_URL (GHE: https://HOST/api/v3)
    std::string org;                                ///< GITHUB_ORG
    std::string token_env = "GITHUB_TOKEN";
};

namespace detail {

inline std::uint64_t count_of(const boost::json::object& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    if (!v || !v->is_number())
        return 0;
    boost::system::error_code ec;
    auto const n = v->to_number<std::uint64_t>(ec);
    return ec ? 0 : n;
}

// Sums `key` over a metrics tree: the API nests counts under editors, models and languages.
inline std::uint64_t sum_of(const boost::json::value& v, std::string_view key) {
    std::uint64_t n = 0;
    if (auto const* o = v.if_object()) {
        n += count_of(*o, key);
        for (auto const& [k, x] : *o)
            if (x.is_array() || x.is_object())
                n += sum_of(x, key);
    } else if (auto const* a = v.if_array()) {
        for (auto const& x : *a)
            n += sum_of(x, key);
    }
    return n;
}

} // namespace detail

/// The KPIs of a Copilot metrics body (an array of days, oldest first): the latest day's
/// `date`, `total_active_users`, `total_engaged_users`, code suggestions and acceptances
/// (summed over editors, models and languages), `acceptance_rate` (percent, one decimal),
/// lines suggested and accepted, chats (IDE and github.com), and `days` (how many the body
/// covers). An empty array gives `days: 0` and nothing else; a body that is not an array is
/// refused (the fetch fails and the last good value stays).
inline boost::json::object copilot_kpis(const boost::json::value& body) {
    auto const* days = body.if_array();
    if (!days)
        throw std::runtime_error("Copilot metrics: the body is not an array of days");
    boost::json::object k;
    k["days"] = days->size();
    if (days->empty() || !days->back().is_object())
        return k;
    auto const& d = days->back().get_object();
    if (auto const* date = d.if_contains("date"))
        k["date"] = *date;
    k["total_active_users"] = detail::count_of(d, "total_active_users");
    k["total_engaged_users"] = detail::count_of(d, "total_engaged_users");
    boost::json::value const none;
    auto const* completions = d.if_contains("copilot_ide_code_completions");
    auto const& c = completions ? *completions : none;
    auto const suggested = detail::sum_of(c, "total_code_suggestions");
    auto const accepted = detail::sum_of(c, "total_code_acceptances");
    k["total_code_suggestions"] = suggested;
    k["total_code_acceptances"] = accepted;
    k["acceptance_rate"] =
        suggested ? std::round(1000.0 * static_cast<double>(accepted) / suggested) / 10 : 0.0;
    k["total_lines_suggested"] = detail::sum_of(c, "total_code_lines_suggested");
    k["total_lines_accepted"] = detail::sum_of(c, "total_code_lines_accepted");
    std::uint64_t chats = 0;
    for (auto const* key : {"copilot_ide_chat", "copilot_dotcom_chat"})
        if (auto const* x = d.if_contains(key))
            chats += detail::sum_of(*x, "total_chats");
    k["total_chats"] = chats;
    return k;
}

/// The poller of the preset: channel `dashboard` (seed 000's), GitHub's JSON media type and
/// API version, the token from `token_env` (docs/protocol.md, "Seed parity").
inline poller_config copilot_poller(const copilot_settings& s, rtpush::refresh_options refresh) {
    poller_config p;
    p.name = "copilot";
    std::string base = s.api_url;
    while (!base.empty() && base.back() == '/')
        base.pop_back();
    p.url = base + "/orgs/" + s.org + "/copilot/metrics";
    p.topic = rtpush::topic{"dashboard", {}};
    p.headers = {{"Accept", "application/vnd.github+json"}, {"X-GitHub-Api-Version", "2022-11-28"}};
    p.bearer_token_env = s.token_env;
    p.refresh = refresh;
    return p;
}

/// One fetch of the preset: the poller's body as `complete`, its KPIs computed from it.
inline boost::asio::awaitable<rtpush::snapshot> copilot_poll(poller_config cfg) {
    auto s = co_await http_poll(cfg);
    s.kpis = copilot_kpis(s.complete);
    co_return s;
}

inline rtpush::source make_copilot_source(const poller_config& cfg) {
    auto s = make_http_source(cfg);
    s.fetch = [cfg] {
        return copilot_poll(cfg);
    };
    return s;
}

} // namespace rtd

#endif
