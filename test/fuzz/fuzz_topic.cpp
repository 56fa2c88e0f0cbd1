// libFuzzer target: topic keys (parse_topic) and topics built from arbitrary identifiers.
//
// Input: a key as a whole; the same bytes split at '\n' also give channel, org, dept, queue.
// Properties: a key parses only into a valid topic whose key() is that key again; a topic
// validates exactly when its key parses back to it; subscriber keys are the prefixes of the
// key that `key_within` accepts, and the wider topics cover the narrower one.
#include "check.hpp"

#include <rtpush/topic.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

void check_topic(const rtpush::topic& t) {
    std::string const key = t.key();
    auto const keys = t.subscriber_keys();
    int const depth = t.scope.depth();
    FUZZ_CHECK(keys[static_cast<std::size_t>(depth)] == key);
    for (int i = 0; i <= depth; ++i) {
        auto const& k = keys[static_cast<std::size_t>(i)];
        FUZZ_CHECK(rtpush::key_within(key, k));
        boost::system::error_code ec;
        auto const wider = rtpush::parse_topic(k, ec);
        FUZZ_CHECK(!ec);
        FUZZ_CHECK(wider.covers(t));
        FUZZ_CHECK(wider.scope.depth() == i);
        FUZZ_CHECK(t.covers(wider) == (i == depth));
    }
    for (int i = depth + 1; i < 4; ++i)
        FUZZ_CHECK(keys[static_cast<std::size_t>(i)].empty());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view const in(reinterpret_cast<const char*>(data), size);

    boost::system::error_code ec;
    auto const t = rtpush::parse_topic(in, ec);
    if (!ec) {
        FUZZ_CHECK(!rtpush::validate(t));
        FUZZ_CHECK(t.key() == in);
        check_topic(t);
    } else {
        FUZZ_CHECK(ec == rtpush::error::invalid_message);
        FUZZ_CHECK(t == rtpush::topic{});
    }

    std::vector<std::string_view> parts;
    std::string_view rest = in;
    for (int i = 0; i < 4; ++i) {
        auto const nl = rest.find('\n');
        parts.push_back(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
    rtpush::topic built;
    built.channel = std::string(parts[0]);
    built.scope = {std::string(parts[1]), std::string(parts[2]), std::string(parts[3])};
    bool const valid = !rtpush::validate(built);
    FUZZ_CHECK(valid ==
               (rtpush::valid_identifier(parts[0]) &&
                (parts[1].empty() || rtpush::valid_identifier(parts[1])) &&
                (parts[2].empty() || (!parts[1].empty() && rtpush::valid_identifier(parts[2]))) &&
                (parts[3].empty() || (!parts[2].empty() && rtpush::valid_identifier(parts[3])))));
    auto const back = rtpush::parse_topic(built.key(), ec);
    FUZZ_CHECK(valid == (!ec && back == built));
    if (valid)
        check_topic(built);
    return 0;
}
