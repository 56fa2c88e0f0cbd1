//
// rtpush: logging through a callback, so the library imposes no logging framework.
//
#ifndef RTPUSH_LOG_HPP
#define RTPUSH_LOG_HPP

#include <boost/json/object.hpp>

#include <functional>
#include <string_view>

namespace rtpush {

enum class log_level { debug = 0, info, warning, error, off };

inline std::string_view to_string(log_level l) noexcept {
    switch (l) {
    case log_level::debug:
        return "debug";
    case log_level::info:
        return "info";
    case log_level::warning:
        return "warning";
    case log_level::error:
        return "error";
    case log_level::off:
        return "off";
    }
    return "info";
}

/// A logger: a threshold and a function receiving an event name and structured fields.
/// The function may be called from any io thread at once: it must be thread-safe.
struct logger {
    log_level level = log_level::info;
    std::function<void(log_level, std::string_view event, const boost::json::object& fields)> sink;

    bool enabled(log_level l) const noexcept {
        return sink && l >= level && level != log_level::off;
    }

    void log(log_level l, std::string_view event, const boost::json::object& fields = {}) const {
        if (enabled(l))
            sink(l, event, fields);
    }
};

} // namespace rtpush

#endif
