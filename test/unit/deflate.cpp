#include <rtpush/detail/deflate.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <ostream>
#include <random>
#include <string>

namespace rtpush::detail {
// Boost.Test prints both sides of a failed comparison.
std::ostream& operator<<(std::ostream& os, inflater::result r) {
    return os << static_cast<int>(r);
}
} // namespace rtpush::detail

namespace d = rtpush::detail;
using d::frame_event;
using d::opcode;

namespace {

std::string bytes(std::initializer_list<int> b) {
    std::string s;
    for (int c : b)
        s.push_back(static_cast<char>(c));
    return s;
}

// A client frame (masked) from an unmasked one of RFC 7692's examples.
std::string masked(std::string_view unmasked, std::uint32_t key = 0x37fa213d) {
    std::string out;
    out.push_back(unmasked[0]);
    std::size_t const len = static_cast<unsigned char>(unmasked[1]) & 0x7F;
    BOOST_REQUIRE(len < 126);
    out.push_back(static_cast<char>(0x80 | len));
    unsigned char const k[4] = {
        static_cast<unsigned char>(key >> 24), static_cast<unsigned char>(key >> 16),
        static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
    out.append(reinterpret_cast<char const*>(k), 4);
    for (std::size_t i = 0; i < len; ++i)
        out.push_back(static_cast<char>(static_cast<unsigned char>(unmasked[2 + i]) ^ k[i & 3]));
    return out;
}

// Reads every frame of `wire` as a server with deflate negotiated; the last event.
frame_event read_all(d::frame_reader& r, std::string& wire) {
    frame_event ev;
    std::size_t off = 0;
    while (off < wire.size()) {
        std::size_t const n = r.read(wire.data() + off, wire.size() - off, ev);
        BOOST_REQUIRE(n > 0);
        off += n;
        if (ev.kind == frame_event::fail)
            break;
    }
    return ev;
}

std::string inflate_ok(std::string_view payload, std::size_t limit = 1 << 20) {
    d::inflater z;
    std::string out;
    BOOST_REQUIRE(z.inflate(payload, limit, out) == d::inflater::result::ok);
    return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(permessage_deflate)

BOOST_AUTO_TEST_CASE(rfc7692_examples_inflate_to_hello) {
    // Section 7.2.3.1: a message compressed with no context takeover, whole and fragmented.
    BOOST_TEST(inflate_ok(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})) == "Hello");
    // 7.2.3.3: a stored (uncompressed) block.
    BOOST_TEST(inflate_ok(bytes(
                   {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})) == "Hello");
    // 7.2.3.4: a block with BFINAL set; what follows the end of the stream is ignored.
    BOOST_TEST(inflate_ok(bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00})) == "Hello");
    // 7.2.3.5: two DEFLATE blocks in one message.
    BOOST_TEST(inflate_ok(bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9,
                                 0x07, 0x00})) == "Hello");
}

BOOST_AUTO_TEST_CASE(deflater_makes_the_rfc_payload) {
    // 7.2.3.1 again, from our side: zlib's output for "Hello" without its 00 00 ff ff tail.
    d::deflater z;
    std::string out;
    z.compress("Hello", out);
    BOOST_TEST(out == bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
    // No context takeover: the same input compresses the same way every time.
    std::string again;
    z.compress("Hello", again);
    BOOST_TEST(again == out);
}

BOOST_AUTO_TEST_CASE(round_trip) {
    d::deflater z;
    d::inflater in;
    std::mt19937 rng(7);
    for (std::size_t size : {0u, 1u, 100u, 4096u, 70000u, 300000u}) {
        std::string msg;
        for (std::size_t i = 0; i < size; ++i) // JSON-like: compressible but not trivial
            msg.push_back("{\"kpi\":0123456789,}"[rng() % 19]);
        std::string c, back;
        z.compress(msg, c);
        BOOST_TEST(in.inflate(c, 1 << 20, back) == d::inflater::result::ok);
        BOOST_TEST(back == msg);
    }
    // Random bytes (incompressible) survive too.
    std::string noise(50000, '\0');
    for (auto& ch : noise)
        ch = static_cast<char>(rng());
    std::string c, back;
    z.compress(noise, c);
    BOOST_TEST(in.inflate(c, 1 << 20, back) == d::inflater::result::ok);
    BOOST_TEST(back == noise);
}

BOOST_AUTO_TEST_CASE(compression_bomb_stops_at_the_limit) {
    // 64 MiB of zeros compress to about 64 KiB; inflating stops just past 1 MiB.
    std::string const zeros(64 << 20, '\0');
    d::deflater z;
    std::string bomb;
    z.compress(zeros, bomb);
    BOOST_TEST(bomb.size() < 100000u);
    d::inflater in;
    std::string out;
    BOOST_TEST(in.inflate(bomb, 1 << 20, out) == d::inflater::result::too_large);
    BOOST_TEST(out.size() <= (1u << 20) + 16 * 1024);
    BOOST_TEST(out.capacity() <= (1u << 21));
    // Exactly at the limit is fine, one byte over is not.
    std::string exact;
    z.compress(std::string(1000, 'a'), bomb);
    BOOST_TEST(in.inflate(bomb, 1000, exact) == d::inflater::result::ok);
    BOOST_TEST(in.inflate(bomb, 999, exact) == d::inflater::result::too_large);
}

BOOST_AUTO_TEST_CASE(garbage_is_bad_data) {
    d::inflater in;
    std::string out;
    // 0xff: BTYPE 11, a reserved block type.
    BOOST_TEST(in.inflate(bytes({0xff, 0xff, 0xff}), 1 << 20, out) ==
               d::inflater::result::bad_data);
    // The inflater is usable again after an error (reset per message).
    BOOST_TEST(inflate_ok(bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})) == "Hello");
}

BOOST_AUTO_TEST_CASE(frame_reader_passes_compressed_messages) {
    d::frame_reader r(1 << 20, true);
    r.allow_compressed(true);
    // 7.2.3.1: one frame with RSV1.
    std::string wire = masked(bytes({0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
    auto ev = read_all(r, wire);
    BOOST_TEST(ev.kind == frame_event::message);
    BOOST_TEST(ev.compressed);
    BOOST_TEST(inflate_ok(ev.payload) == "Hello");
    // 7.2.3.1 fragmented: RSV1 on the first frame only; the payload is not UTF-8 checked.
    wire = masked(bytes({0x41, 0x03, 0xf2, 0x48, 0xcd})) +
           masked(bytes({0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00}));
    ev = read_all(r, wire);
    BOOST_TEST(ev.kind == frame_event::message);
    BOOST_TEST(ev.compressed);
    BOOST_TEST(inflate_ok(ev.payload) == "Hello");
    // An uncompressed message on the same connection is still UTF-8 checked.
    wire = masked(bytes({0x81, 0x02, 0xc3, 0x28}));
    ev = read_all(r, wire);
    BOOST_TEST(ev.kind == frame_event::fail);
    BOOST_TEST(ev.code == 1007);
}

BOOST_AUTO_TEST_CASE(frame_reader_refuses_rsv1_where_it_does_not_belong) {
    {
        // Not negotiated: RSV1 is a protocol error.
        d::frame_reader r(1 << 20, true);
        std::string wire = masked(bytes({0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}));
        auto ev = read_all(r, wire);
        BOOST_TEST(ev.kind == frame_event::fail);
        BOOST_TEST(ev.code == 1002);
    }
    {
        // On a continuation frame.
        d::frame_reader r(1 << 20, true);
        r.allow_compressed(true);
        std::string wire = masked(bytes({0x41, 0x03, 0xf2, 0x48, 0xcd})) +
                           masked(bytes({0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00}));
        BOOST_TEST(read_all(r, wire).code == 1002);
    }
    {
        // On a control frame.
        d::frame_reader r(1 << 20, true);
        r.allow_compressed(true);
        std::string wire = masked(bytes({0xc9, 0x00}));
        BOOST_TEST(read_all(r, wire).code == 1002);
    }
    {
        // RSV2 and RSV3 stay reserved.
        d::frame_reader r(1 << 20, true);
        r.allow_compressed(true);
        std::string wire = masked(bytes({0xe1, 0x00}));
        BOOST_TEST(read_all(r, wire).code == 1002);
    }
}

BOOST_AUTO_TEST_CASE(negotiation) {
    std::string const yes =
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    // What browsers, Python websockets and Node ws offer.
    BOOST_TEST(d::negotiate_deflate("permessage-deflate; client_max_window_bits").value() == yes);
    BOOST_TEST(d::negotiate_deflate("permessage-deflate").value() == yes);
    BOOST_TEST(d::negotiate_deflate("Permessage-Deflate ; Client_No_Context_Takeover ; "
                                    "server_max_window_bits=15; client_max_window_bits=10")
                   .value() == yes);
    // A smaller server window than our shared frames use: declined, the next offer taken.
    BOOST_TEST(!d::negotiate_deflate("permessage-deflate; server_max_window_bits=10"));
    BOOST_TEST(d::negotiate_deflate("permessage-deflate; server_max_window_bits=10, "
                                    "permessage-deflate")
                   .value() == yes);
    // Malformed offers are declined, never half accepted.
    BOOST_TEST(!d::negotiate_deflate("permessage-deflate; client_max_window_bits=16"));
    BOOST_TEST(!d::negotiate_deflate("permessage-deflate; client_max_window_bits=x"));
    BOOST_TEST(!d::negotiate_deflate("permessage-deflate; server_no_context_takeover=1"));
    BOOST_TEST(!d::negotiate_deflate(
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover"));
    BOOST_TEST(!d::negotiate_deflate("permessage-deflate; unknown_param"));
    BOOST_TEST(!d::negotiate_deflate("x-webkit-deflate-frame"));
    BOOST_TEST(!d::negotiate_deflate(""));
    BOOST_TEST(
        d::negotiate_deflate("foo, permessage-deflate; client_max_window_bits=\"12\"").value() ==
        yes);
}

BOOST_AUTO_TEST_CASE(shared_frame_is_compressed_once) {
    d::deflater z;
    std::string text(2000, 'k');
    auto f = d::make_shared_frame(d::make_frame(opcode::text, text), true);
    auto c1 = d::deflated(f, z, 256);
    auto c2 = d::deflated(f, z, 256);
    BOOST_TEST(c1.get() == c2.get()); // cached on the publication's frame
    BOOST_TEST(c1.get() != f.get());
    BOOST_TEST((static_cast<unsigned char>(c1->bytes[0]) & 0xF0) == 0xC0); // FIN + RSV1
    BOOST_TEST(c1->bytes.size() < f->bytes.size());
    BOOST_TEST(c1->timed);
    // Its payload inflates to the original text.
    BOOST_TEST(inflate_ok(std::string_view(c1->bytes).substr(2)) == text);
    // Small messages, control frames and incompressible ones go as they are.
    auto small = d::make_shared_frame(d::make_frame(opcode::text, std::string(100, 'k')));
    BOOST_TEST(d::deflated(small, z, 256).get() == small.get());
    auto ping = d::make_shared_frame(d::make_frame(opcode::ping, std::string(100, 'k')));
    BOOST_TEST(d::deflated(ping, z, 0).get() == ping.get());
    auto n = d::make_shared_frame(d::make_frame(opcode::text, std::string(3, 'a')));
    BOOST_TEST(d::deflated(n, z, 0).get() == n.get()); // 3 bytes do not shrink
}

BOOST_AUTO_TEST_SUITE_END()
