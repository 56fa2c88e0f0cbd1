//
// rtpush: reading ISO 8601 times, free of I/O: the ingest schemas' timestamp rule
// (docs/protocol.md, "Ingest (seed 003)") and the times of stored publications (the Redis
// engine's history pages, docs/protocol.md "History").
//
#ifndef RTPUSH_DETAIL_ISO8601_HPP
#define RTPUSH_DETAIL_ISO8601_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace rtpush::detail {

/// The `n` decimal digits of `s` at `at` as a number; false when they are not all there.
inline bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size())
        return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

/// Unix milliseconds of a UTC time as iso8601() writes it ("2026-01-31T10:00:00.000Z"; the
/// fraction may be absent or shorter); nullopt otherwise.
inline std::optional<std::int64_t> unix_ms_of_iso8601(std::string_view s) {
    int y, mo, d, h, mi, sec;
    if (s.size() < 20 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) ||
        s[7] != '-' || !digits(s, 8, 2, d) || s[10] != 'T' || !digits(s, 11, 2, h) ||
        s[13] != ':' || !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec) ||
        s.back() != 'Z')
        return std::nullopt;
    int ms = 0;
    if (s.size() > 20) {
        if (s[19] != '.' || s.size() < 22 || s.size() > 24)
            return std::nullopt;
        int frac;
        auto const n = s.size() - 21;
        if (!digits(s, 20, n, frac))
            return std::nullopt;
        ms = n == 1 ? frac * 100 : n == 2 ? frac * 10 : frac;
    }
    std::chrono::year_month_day const ymd{std::chrono::year(y),
                                          std::chrono::month(static_cast<unsigned>(mo)),
                                          std::chrono::day(static_cast<unsigned>(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60)
        return std::nullopt;
    auto const days = std::chrono::sys_days(ymd).time_since_epoch().count();
    return ((static_cast<std::int64_t>(days) * 24 + h) * 60 + mi) * 60000 +
           static_cast<std::int64_t>(sec) * 1000 + ms;
}

} // namespace rtpush::detail

#endif
