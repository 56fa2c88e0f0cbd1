// libFuzzer target: permessage-deflate (detail/deflate.hpp): the inflater on arbitrary client
// payloads, and the negotiation of an extension offer.
//
// Input: byte 0 picks the inflate limit (1 B to 1 MiB); the rest is a compressed message
// payload (RFC 7692, without its 00 00 ff ff tail), and the same bytes as a
// Sec-WebSocket-Extensions offer.
// Properties: `ok` never gives more than the limit; a larger limit changes nothing for a
// message that fitted and nothing for data found corrupt within the limit (the limit only cuts
// output short, so a smaller one may stop before corrupt data: too_large); the one
// inflater is reused with no state between messages (no context takeover): the same payload
// inflates the same twice; what the deflater makes of the output inflates back to it, and the
// RSV1 frame `deflated` makes of it reads back (frame reader) as the same message; an offer
// gets nothing or rtpush's one answer, and only when it names permessage-deflate.
#include "check.hpp"

#include <rtpush/detail/deflate.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

namespace d = rtpush::detail;
using result = d::inflater::result;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    static d::inflater inf; // shared, as a shard's is
    static d::deflater def;
    constexpr std::size_t big = 1 << 20;
    std::size_t const limit = std::size_t(1) << (data[0] % 21);
    std::string_view const in(reinterpret_cast<const char*>(data + 1), size - 1);

    std::string out1, out2, again;
    auto const r1 = inf.inflate(in, limit, out1);
    auto const r2 = inf.inflate(in, big, out2);
    if (r1 == result::ok) {
        FUZZ_CHECK(out1.size() <= limit);
        FUZZ_CHECK(r2 == result::ok && out2 == out1);
    }
    if (r1 == result::bad_data)
        FUZZ_CHECK(r2 == result::bad_data);
    if (r1 == result::too_large && r2 == result::ok) // (corrupt data past the limit: too_large)
        FUZZ_CHECK(out2.size() > limit);
    if (r2 == result::ok && out2.size() <= limit)
        FUZZ_CHECK(r1 == result::ok);
    if (r2 == result::ok)
        FUZZ_CHECK(out2.size() <= big);
    FUZZ_CHECK(inf.inflate(in, limit, again) == r1);
    if (r1 == result::ok)
        FUZZ_CHECK(again == out1);

    if (r2 == result::ok) {
        std::string packed, back;
        def.compress(out2, packed);
        FUZZ_CHECK(inf.inflate(packed, out2.size(), back) == result::ok);
        FUZZ_CHECK(back == out2);
        // The shared compressed twin of a binary frame, read as a client message is read.
        auto const plain = d::make_shared_frame(d::make_frame(d::opcode::binary, out2));
        auto const twin = d::deflated(plain, def, 0);
        std::string bytes = twin->bytes;
        d::frame_reader reader(big, false);
        reader.allow_compressed(true);
        d::frame_event ev;
        FUZZ_CHECK(reader.read(bytes.data(), bytes.size(), ev) == bytes.size());
        FUZZ_CHECK(ev.kind == d::frame_event::message && ev.op == d::opcode::binary);
        if (twin == plain) {
            FUZZ_CHECK(!ev.compressed && ev.payload == out2);
        } else {
            FUZZ_CHECK(ev.compressed);
            std::string inflated;
            FUZZ_CHECK(inf.inflate(ev.payload, big, inflated) == result::ok);
            FUZZ_CHECK(inflated == out2);
        }
    }

    auto const answer = d::negotiate_deflate(in);
    if (answer) {
        FUZZ_CHECK(*answer == "permessage-deflate; server_no_context_takeover; "
                              "client_no_context_takeover");
        std::string lower(in);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        FUZZ_CHECK(lower.find("permessage-deflate") != std::string::npos);
    }
    return 0;
}
