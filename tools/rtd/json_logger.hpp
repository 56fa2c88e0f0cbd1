// rtd: a structured logger writing one JSON object per line.
#ifndef RTD_JSON_LOGGER_HPP
#define RTD_JSON_LOGGER_HPP

#include <rtpush/log.hpp>
#include <rtpush/protocol.hpp>

#include <cstdio>
#include <memory>
#include <mutex>

namespace rtd {

inline rtpush::logger make_json_logger(rtpush::log_level level) {
    auto m = std::make_shared<std::mutex>();
    rtpush::logger l;
    l.level = level;
    l.sink = [m](rtpush::log_level lv, std::string_view event, const boost::json::object& fields) {
        boost::json::object o;
        o["ts"] = rtpush::iso8601_now();
        o["level"] = rtpush::to_string(lv);
        o["event"] = event;
        for (auto const& [k, v] : fields)
            o[k] = v;
        std::string line = boost::json::serialize(o);
        line.push_back('\n');
        std::lock_guard lock(*m);
        std::fwrite(line.data(), 1, line.size(), stdout);
        std::fflush(stdout);
    };
    return l;
}

inline bool parse_log_level(std::string_view s, rtpush::log_level& out) {
    using rtpush::log_level;
    for (auto l :
         {log_level::debug, log_level::info, log_level::warning, log_level::error, log_level::off})
        if (rtpush::to_string(l) == s) {
            out = l;
            return true;
        }
    return false;
}

} // namespace rtd

#endif
