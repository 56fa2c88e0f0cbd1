// libFuzzer target: the Redis engine's reader (detail/redis_proto.hpp): RESP replies through
// hiredis' reader as a Redis server (or anything on its port) sends them, and the engine's
// own formats inside them.
//
// Input: byte 0 seeds the sizes of the pieces the stream arrives in; the rest is the stream.
// Properties: fed whole or in pieces the parser gives the same replies and the same protocol
// error (replies do not depend on how bytes arrive); each reply written again in RESP reads
// back the same; a string that decodes as a stored publication encodes and decodes to the
// same publication; an engine message and a stream id give a positive seq; a URL that parses
// has a host.
#include "check.hpp"

#include <rtpush/detail/redis_proto.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace d = rtpush::detail;
using rtpush_fuzz::same_json;

namespace {

struct outcome {
    std::vector<d::redis_reply> replies;
    bool failed = false;
};

// At most 64 replies: a stream of "+\r\n" repeated is many replies, all alike.
outcome read_all(std::string_view stream, std::uint8_t seed) {
    outcome o;
    d::redis_parser p;
    std::size_t off = 0;
    unsigned step = seed | 1u;
    while (!o.failed && o.replies.size() < 64) {
        if (off < stream.size()) {
            std::size_t const n = seed == 0
                                      ? stream.size()
                                      : std::min<std::size_t>(1 + step % 17, stream.size() - off);
            step = step * 1103515245u + 12345u;
            if (!p.feed(stream.substr(off, n)))
                o.failed = true;
            off += n;
        }
        try {
            while (!o.failed && o.replies.size() < 64) {
                auto r = p.next();
                if (!r)
                    break;
                o.replies.push_back(std::move(*r));
            }
        } catch (std::runtime_error const&) {
            o.failed = true;
        }
        if (off >= stream.size())
            break;
    }
    return o;
}

bool same(const d::redis_reply& a, const d::redis_reply& b) {
    if (a.type != b.type || a.str != b.str || a.integer != b.integer ||
        a.elements.size() != b.elements.size())
        return false;
    for (std::size_t i = 0; i < a.elements.size(); ++i)
        if (!same(a.elements[i], b.elements[i]))
            return false;
    return true;
}

void write_resp(const d::redis_reply& r, std::string& out) {
    using k = d::redis_reply::kind;
    switch (r.type) {
    case k::string:
        out += "$" + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n";
        break;
    case k::status:
        out += "+" + r.str + "\r\n";
        break;
    case k::error:
        out += "-" + r.str + "\r\n";
        break;
    case k::integer:
        out += ":" + std::to_string(r.integer) + "\r\n";
        break;
    case k::nil:
        out += "$-1\r\n";
        break;
    case k::array:
        out += "*" + std::to_string(r.elements.size()) + "\r\n";
        for (auto const& e : r.elements)
            write_resp(e, out);
        break;
    case k::other:
        break;
    }
}

bool has_other(const d::redis_reply& r) {
    if (r.type == d::redis_reply::kind::other)
        return true;
    for (auto const& e : r.elements)
        if (has_other(e))
            return true;
    return false;
}

void check_strings(const d::redis_reply& r) {
    for (auto const& e : r.elements)
        check_strings(e);
    if (r.type != d::redis_reply::kind::string)
        return;
    if (auto s = d::decode_publication(r.str)) {
        auto const again = d::decode_publication(d::encode_publication(s->pub, s->timestamp));
        FUZZ_CHECK(again);
        FUZZ_CHECK(again->pub.topic == s->pub.topic);
        FUZZ_CHECK(again->pub.event == s->pub.event && again->pub.phase == s->pub.phase);
        FUZZ_CHECK(again->pub.priority == s->pub.priority);
        FUZZ_CHECK(again->pub.ack_id == s->pub.ack_id && again->timestamp == s->timestamp);
        FUZZ_CHECK(same_json(again->pub.data, s->pub.data));
    }
    if (auto m = d::parse_engine_message(r.str))
        FUZZ_CHECK(m->seq > 0 && !m->epoch.empty() && !m->body.empty());
    (void)d::stream_id_seq(r.str);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    std::string_view const stream(reinterpret_cast<const char*>(data + 1), size - 1);
    auto const whole = read_all(stream, 0);
    auto const pieces = read_all(stream, data[0] | 1u);
    // The same replies, however the bytes came; a failure at the same point (the pieced
    // reader may have stopped at the 64-reply cap or failed there too).
    std::size_t const n = std::min(whole.replies.size(), pieces.replies.size());
    for (std::size_t i = 0; i < n; ++i)
        FUZZ_CHECK(same(whole.replies[i], pieces.replies[i]));
    if (whole.replies.size() < 64 && pieces.replies.size() < 64) {
        FUZZ_CHECK(whole.replies.size() == pieces.replies.size());
        FUZZ_CHECK(whole.failed == pieces.failed);
    }
    for (auto const& r : whole.replies) {
        check_strings(r);
        if (has_other(r))
            continue;
        std::string resp;
        write_resp(r, resp);
        auto const back = read_all(resp, 0);
        FUZZ_CHECK(!back.failed && back.replies.size() == 1);
        FUZZ_CHECK(same(back.replies[0], r));
    }
    boost::system::error_code ec;
    auto const url = d::parse_redis_url(stream, ec);
    if (!ec)
        FUZZ_CHECK(!url.host.empty());
    return 0;
}
