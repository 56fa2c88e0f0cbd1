// libFuzzer target: the ingest validator (ingest.hpp): seed 003's payload schemas on any JSON
// a REST client or a publishing WebSocket client sends.
//
// Input: byte 0 picks the kind (kpi, backlog, attendance, alert, alert_update, or one without
// a schema); the rest is the payload's JSON text, parsed with the server's depth limit; the
// same text is also a timestamp, a channel and an event name.
// Properties: a refusal names what is wrong; anything but an object is refused; a kind without
// a schema accepts every object; a member no schema lists changes nothing (members not listed
// are allowed and kept); validating twice gives the same answer; an accepted timestamp is a
// real date and time (checked against a second implementation, days per month included).
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include "check.hpp"

#include <rtpush/ingest.hpp>

#include <boost/json/parse.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

// ISO 8601 date-time with seconds and a zone, written apart from valid_timestamp on purpose.
bool reference_timestamp(std::string_view s) {
    auto num = [&](std::size_t at, std::size_t n, int& v) {
        if (at + n > s.size())
            return false;
        v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9')
                return false;
            v = v * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, se;
    if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
        !num(17, 2, se))
        return false;
    if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return false;
    bool const leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    std::array<int, 12> const days{31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > days[static_cast<std::size_t>(mo - 1)] || h > 23 ||
        mi > 59 || se > 60)
        return false;
    std::string_view rest = s.substr(19);
    if (!rest.empty() && rest[0] == '.') {
        std::size_t n = 1;
        while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9')
            ++n;
        if (n == 1)
            return false;
        rest.remove_prefix(n);
    }
    if (rest == "Z" || rest == "z")
        return true;
    int zh, zm;
    return rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
           num(s.size() - 5, 2, zh) && num(s.size() - 2, 2, zm) && zh <= 23 && zm <= 59;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    static rtpush::ingest_validator const v = rtpush::ingest_validator::intraday();
    static constexpr std::array<std::string_view, 6> kinds{"kpi",   "backlog",      "attendance",
                                                           "alert", "alert_update", "free"};
    std::string_view const kind = kinds[data[0] % kinds.size()];
    std::string_view const text(reinterpret_cast<const char*>(data + 1), size - 1);

    FUZZ_CHECK(rtpush::valid_timestamp(text) == reference_timestamp(text));
    (void)rtpush::ingest_validator::kind_of_channel(text);
    auto const ev = rtpush::ingest_validator::kind_of_event(text);
    FUZZ_CHECK(ev.empty() || v.has(ev));

    boost::json::parse_options opt;
    opt.max_depth = 32;
    boost::system::error_code ec;
    auto payload = boost::json::parse(text, ec, {}, opt);
    if (ec)
        return 0;
    auto const err = v.validate(kind, payload);
    if (err)
        FUZZ_CHECK(!err->message.empty());
    if (!payload.is_object()) {
        FUZZ_CHECK(!v.has(kind) || err);
        return 0;
    }
    if (!v.has(kind))
        FUZZ_CHECK(!err);
    auto const again = v.validate(kind, payload);
    FUZZ_CHECK(bool(again) == bool(err));
    if (err)
        FUZZ_CHECK(again->field == err->field && again->message == err->message);
    auto& o = payload.as_object();
    if (!o.contains("fuzz_extra_member")) {
        o["fuzz_extra_member"] = boost::json::array{1, "x", nullptr};
        auto const extra = v.validate(kind, payload);
        FUZZ_CHECK(bool(extra) == bool(err));
        if (err)
            FUZZ_CHECK(extra->field == err->field && extra->message == err->message);
    }
    return 0;
}
