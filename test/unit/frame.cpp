#include <rtpush/detail/frame.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace d = rtpush::detail;
using E = rtpush::error;
using d::frame_event;
using d::opcode;

namespace {

// Builds a frame byte by byte, with control over every header bit.
std::string raw_frame(std::uint8_t first_byte, std::string_view payload, bool mask,
                      std::uint32_t key = 0x11223344) {
    std::string out;
    out.push_back(static_cast<char>(first_byte));
    std::size_t const len = payload.size();
    unsigned char const m = mask ? 0x80 : 0;
    if (len < 126) {
        out.push_back(static_cast<char>(m | len));
    } else if (len <= 0xFFFF) {
        out.push_back(static_cast<char>(m | 126));
        out.push_back(static_cast<char>(len >> 8));
        out.push_back(static_cast<char>(len & 0xFF));
    } else {
        out.push_back(static_cast<char>(m | 127));
        for (int i = 7; i >= 0; --i)
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(len) >> (8 * i)) & 0xFF));
    }
    if (!mask)
        return out + std::string(payload);
    unsigned char const k[4] = {
        static_cast<unsigned char>(key >> 24), static_cast<unsigned char>(key >> 16),
        static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
    out.append(reinterpret_cast<char const*>(k), 4);
    for (std::size_t i = 0; i < len; ++i)
        out.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ k[i & 3]));
    return out;
}

std::string client_frame(opcode op, std::string_view payload, bool fin = true) {
    return raw_frame(static_cast<std::uint8_t>((fin ? 0x80 : 0) | static_cast<unsigned>(op)),
                     payload, true);
}

struct read_result {
    std::size_t consumed;
    frame_event ev;
};

read_result read_one(d::frame_reader& r, std::string& buf) {
    read_result res{};
    res.consumed = r.read(buf.data(), buf.size(), res.ev);
    return res;
}

void check_fail(std::string bytes, std::uint16_t code, E err, bool server_role = true,
                std::size_t max = 1 << 20) {
    d::frame_reader r(max, server_role);
    auto const res = read_one(r, bytes);
    BOOST_TEST(res.consumed != 0u);
    BOOST_TEST(res.ev.kind == frame_event::fail);
    BOOST_TEST(res.ev.code == code);
    BOOST_TEST((res.ev.err == err));
}

} // namespace

BOOST_AUTO_TEST_SUITE(frame)

BOOST_AUTO_TEST_CASE(header_sizes) {
    struct sample {
        std::size_t len;
        std::size_t hdr;
        unsigned char len7;
    };
    for (auto s : {sample{0, 2, 0}, sample{125, 2, 125}, sample{126, 4, 126}, sample{65535, 4, 126},
                   sample{65536, 10, 127}}) {
        BOOST_TEST(d::frame_header_size(s.len, false) == s.hdr);
        BOOST_TEST(d::frame_header_size(s.len, true) == s.hdr + 4);

        std::string const payload(s.len, 'p');
        std::string out = "prefix";
        d::append_frame(out, opcode::binary, payload);
        BOOST_TEST(out.size() == 6 + s.hdr + s.len, "len " << s.len);
        BOOST_TEST(out.compare(0, 6, "prefix") == 0);
        auto const* h = reinterpret_cast<unsigned char const*>(out.data() + 6);
        BOOST_TEST(h[0] == 0x82); // FIN + binary
        BOOST_TEST((h[1] & 0x7F) == s.len7, "len " << s.len);
        BOOST_TEST((h[1] & 0x80) == 0);
        if (s.hdr == 4)
            BOOST_TEST(((std::size_t(h[2]) << 8) | h[3]) == s.len);
        if (s.hdr == 10) {
            std::uint64_t l = 0;
            for (int i = 2; i < 10; ++i)
                l = (l << 8) | h[i];
            BOOST_TEST(l == s.len);
        }
        BOOST_TEST(out.substr(6 + s.hdr) == payload);

        // the same frame built by the test helper is byte-identical
        BOOST_TEST(out.substr(6) == raw_frame(0x82, payload, false));

        std::string masked;
        d::append_frame(masked, opcode::binary, payload, true, 0x11223344);
        BOOST_TEST(masked.size() == s.hdr + 4 + s.len);
        BOOST_TEST((static_cast<unsigned char>(masked[1]) & 0x80) == 0x80);
        BOOST_TEST(masked == raw_frame(0x82, payload, true, 0x11223344));
    }
    BOOST_TEST(d::make_frame(opcode::text, "hi") == std::string("\x81\x02hi", 4));
}

BOOST_AUTO_TEST_CASE(masked_frames_round_trip_server_role) {
    for (std::size_t len : {0u, 1u, 5u, 125u, 126u, 1000u, 65535u, 65536u, 70000u}) {
        std::string payload;
        for (std::size_t i = 0; i < len; ++i)
            payload.push_back(static_cast<char>('a' + i % 26));
        std::string buf;
        d::append_frame(buf, opcode::text, payload, true, 0xA1B2C3D4);
        d::append_frame(buf, opcode::binary, "tail", true, 0x01020304);
        d::frame_reader r(1 << 20, true);
        auto const res = read_one(r, buf);
        BOOST_TEST(res.consumed == d::frame_header_size(len, true) + len);
        BOOST_TEST(res.ev.kind == frame_event::message);
        BOOST_TEST((res.ev.op == opcode::text));
        BOOST_TEST(res.ev.payload == payload, "len " << len);

        // the second frame follows
        frame_event ev;
        auto const n = r.read(buf.data() + res.consumed, buf.size() - res.consumed, ev);
        BOOST_TEST(n == buf.size() - res.consumed);
        BOOST_TEST(ev.kind == frame_event::message);
        BOOST_TEST((ev.op == opcode::binary));
        BOOST_TEST(ev.payload == "tail");
    }
}

BOOST_AUTO_TEST_CASE(unmasked_client_side_reading) {
    std::string buf = d::make_frame(opcode::text, R"({"type":"update"})");
    d::append_frame(buf, opcode::ping, "p");
    d::append_frame(buf, opcode::pong, "q");
    d::frame_reader r(1024, false);

    auto a = read_one(r, buf);
    BOOST_TEST(a.ev.kind == frame_event::message);
    BOOST_TEST(a.ev.payload == R"({"type":"update"})");

    frame_event ev;
    std::size_t off = a.consumed;
    off += r.read(buf.data() + off, buf.size() - off, ev);
    BOOST_TEST(ev.kind == frame_event::ping);
    BOOST_TEST(ev.payload == "p");
    off += r.read(buf.data() + off, buf.size() - off, ev);
    BOOST_TEST(ev.kind == frame_event::pong);
    BOOST_TEST(ev.payload == "q");
    BOOST_TEST(off == buf.size());

    // a masked frame is a violation for a client
    std::string masked;
    d::append_frame(masked, opcode::text, "x", true, 7);
    check_fail(masked, 1002, E::protocol_violation, false);
}

BOOST_AUTO_TEST_CASE(partial_input_returns_zero_until_complete) {
    for (std::size_t len : {3u, 125u, 300u, 70000u}) {
        std::string const payload(len, 'z');
        std::string const full = client_frame(opcode::text, payload);
        d::frame_reader r(1 << 20, true);
        // feed byte by byte: every strict prefix needs more input
        std::string buf;
        frame_event ev;
        std::size_t const step = len > 1000 ? 997 : 1; // keep the big case fast
        std::size_t fed = 0;
        while (fed + step < full.size()) {
            buf.append(full, fed, step);
            fed += step;
            std::string copy = buf; // the reader unmasks in place only on success
            BOOST_TEST_REQUIRE(r.read(copy.data(), copy.size(), ev) == 0u, "at " << fed);
            BOOST_TEST(ev.kind == frame_event::none);
        }
        buf.append(full, fed);
        BOOST_TEST(r.read(buf.data(), buf.size(), ev) == full.size());
        BOOST_TEST(ev.kind == frame_event::message);
        BOOST_TEST(ev.payload == payload);
    }
    // header prefixes of the extended lengths
    d::frame_reader r(1 << 20, true);
    std::string const big = client_frame(opcode::binary, std::string(70000, 'b'));
    frame_event ev;
    for (std::size_t n = 0; n < 14; ++n) {
        std::string part = big.substr(0, n);
        BOOST_TEST(r.read(part.data(), part.size(), ev) == 0u, "prefix " << n);
    }
}

BOOST_AUTO_TEST_CASE(fragmented_message_with_interleaved_ping) {
    std::string buf;
    buf += client_frame(opcode::text, "Hello, ", false);
    buf += client_frame(opcode::ping, "beat");
    buf += client_frame(opcode::continuation, "fragmented ", false);
    buf += client_frame(opcode::continuation, "world");
    buf += client_frame(opcode::text, "next");

    d::frame_reader r(1024, true);
    std::vector<std::pair<frame_event::kind_t, std::string>> got;
    std::size_t off = 0;
    while (off < buf.size()) {
        frame_event ev;
        auto const n = r.read(buf.data() + off, buf.size() - off, ev);
        BOOST_TEST_REQUIRE(n != 0u);
        BOOST_TEST_REQUIRE(ev.kind != frame_event::fail);
        off += n;
        if (ev.kind != frame_event::none)
            got.emplace_back(ev.kind, std::string(ev.payload));
        if (ev.kind == frame_event::message)
            BOOST_TEST((ev.op == opcode::text));
    }
    BOOST_TEST_REQUIRE(got.size() == 3u);
    BOOST_TEST(got[0].first == frame_event::ping);
    BOOST_TEST(got[0].second == "beat");
    BOOST_TEST(got[1].first == frame_event::message);
    BOOST_TEST(got[1].second == "Hello, fragmented world");
    BOOST_TEST(got[2].first == frame_event::message);
    BOOST_TEST(got[2].second == "next");
}

BOOST_AUTO_TEST_CASE(fragmented_binary_and_utf8_split_across_fragments) {
    // a 4-byte code point split over two fragments is valid once reassembled
    std::string const emoji = "\xF0\x9F\x98\x80";
    std::string buf = client_frame(opcode::text, "a" + emoji.substr(0, 2), false);
    buf += client_frame(opcode::continuation, emoji.substr(2) + "b");
    d::frame_reader r(1024, true);
    frame_event ev;
    auto n = r.read(buf.data(), buf.size(), ev);
    BOOST_TEST(ev.kind == frame_event::none);
    n += r.read(buf.data() + n, buf.size() - n, ev);
    BOOST_TEST(n == buf.size());
    BOOST_TEST(ev.kind == frame_event::message);
    BOOST_TEST(ev.payload == "a" + emoji + "b");

    // binary fragments are not UTF-8 checked
    std::string b = client_frame(opcode::binary, "\xFF", false);
    b += client_frame(opcode::continuation, "\xFE");
    d::frame_reader rb(1024, true);
    auto m = rb.read(b.data(), b.size(), ev);
    m += rb.read(b.data() + m, b.size() - m, ev);
    BOOST_TEST(ev.kind == frame_event::message);
    BOOST_TEST((ev.op == opcode::binary));
    BOOST_TEST(ev.payload == "\xFF\xFE");
}

BOOST_AUTO_TEST_CASE(unmasked_frame_to_server) {
    check_fail(d::make_frame(opcode::text, "hi"), 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(rsv_bits) {
    for (std::uint8_t rsv : {0x40, 0x20, 0x10})
        check_fail(raw_frame(0x81 | rsv, "hi", true), 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(unknown_opcodes) {
    for (std::uint8_t op : {0x3, 0x4, 0x7, 0xB, 0xF})
        check_fail(raw_frame(0x80 | op, "x", true), 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(control_frame_too_long) {
    std::string const p126(126, 'x');
    check_fail(client_frame(opcode::ping, p126), 1002, E::protocol_violation);
    check_fail(client_frame(opcode::pong, p126), 1002, E::protocol_violation);
    check_fail(client_frame(opcode::close, "\x03\xE8" + std::string(124, 'r')), 1002,
               E::protocol_violation);
    // 125 is fine
    std::string ok = client_frame(opcode::ping, std::string(125, 'x'));
    d::frame_reader r(1024, true);
    frame_event ev;
    BOOST_TEST(r.read(ok.data(), ok.size(), ev) == ok.size());
    BOOST_TEST(ev.kind == frame_event::ping);
    BOOST_TEST(ev.payload.size() == 125u);
}

BOOST_AUTO_TEST_CASE(fragmented_control_frame) {
    check_fail(client_frame(opcode::ping, "x", false), 1002, E::protocol_violation);
    check_fail(client_frame(opcode::close, "", false), 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(continuation_without_start) {
    check_fail(client_frame(opcode::continuation, "x"), 1002, E::protocol_violation);
    check_fail(client_frame(opcode::continuation, "x", false), 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(new_message_inside_fragmented_message) {
    std::string buf = client_frame(opcode::text, "a", false);
    buf += client_frame(opcode::text, "b");
    d::frame_reader r(1024, true);
    frame_event ev;
    auto const n = r.read(buf.data(), buf.size(), ev);
    BOOST_TEST(ev.kind == frame_event::none);
    r.read(buf.data() + n, buf.size() - n, ev);
    BOOST_TEST(ev.kind == frame_event::fail);
    BOOST_TEST(ev.code == 1002);
}

BOOST_AUTO_TEST_CASE(non_minimal_length_encoding) {
    // length 5 encoded with the 16-bit form
    std::string f;
    f.push_back(static_cast<char>(0x81));
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(0);
    f.push_back(5);
    f += std::string(4, '\0') + "hello";
    check_fail(f, 1002, E::protocol_violation);
}

BOOST_AUTO_TEST_CASE(message_too_large_from_header_alone) {
    // only the header of a 2000-byte frame has arrived: the limit of 1000 is already exceeded
    std::string full = client_frame(opcode::binary, std::string(2000, 'x'));
    std::string header = full.substr(0, 8); // 2 + 2 + 4 (mask key)
    d::frame_reader r(1000, true);
    frame_event ev;
    BOOST_TEST(r.read(header.data(), 4, ev) != 0u); // even before the mask key
    BOOST_TEST(ev.kind == frame_event::fail);
    BOOST_TEST(ev.code == 1009);
    BOOST_TEST((ev.err == E::message_too_large));

    // exactly at the limit is accepted
    std::string at = client_frame(opcode::binary, std::string(1000, 'x'));
    d::frame_reader r2(1000, true);
    BOOST_TEST(r2.read(at.data(), at.size(), ev) == at.size());
    BOOST_TEST(ev.kind == frame_event::message);

    // a 64-bit length header alone
    std::string huge;
    huge.push_back(static_cast<char>(0x82));
    huge.push_back(static_cast<char>(0x80 | 127));
    std::uint64_t const len = 1ull << 40;
    for (int i = 7; i >= 0; --i)
        huge.push_back(static_cast<char>((len >> (8 * i)) & 0xFF));
    check_fail(huge, 1009, E::message_too_large);
}

BOOST_AUTO_TEST_CASE(message_too_large_across_fragments) {
    std::string buf = client_frame(opcode::text, std::string(600, 'a'), false);
    buf += client_frame(opcode::continuation, std::string(600, 'b'));
    d::frame_reader r(1000, true);
    frame_event ev;
    auto const n = r.read(buf.data(), buf.size(), ev);
    BOOST_TEST(ev.kind == frame_event::none);
    BOOST_TEST(r.read(buf.data() + n, 4, ev) != 0u);
    BOOST_TEST(ev.kind == frame_event::fail);
    BOOST_TEST(ev.code == 1009);
    BOOST_TEST((ev.err == E::message_too_large));
}

BOOST_AUTO_TEST_CASE(invalid_utf8_text) {
    check_fail(client_frame(opcode::text, "abc\xFF"), 1007, E::invalid_utf8);
    // overlong encoding of '/'
    check_fail(client_frame(opcode::text, "\xC0\xAF"), 1007, E::invalid_utf8);
    // overlong 3-byte encoding of U+007F
    check_fail(client_frame(opcode::text, "\xE0\x81\xBF"), 1007, E::invalid_utf8);
    // truncated sequence at the end
    check_fail(client_frame(opcode::text, "ok\xE2\x82"), 1007, E::invalid_utf8);
    // invalid UTF-8 detected after reassembly
    std::string buf = client_frame(opcode::text, "ab", false);
    buf += client_frame(opcode::continuation, "\xC3");
    d::frame_reader r(1024, true);
    frame_event ev;
    auto const n = r.read(buf.data(), buf.size(), ev);
    r.read(buf.data() + n, buf.size() - n, ev);
    BOOST_TEST(ev.kind == frame_event::fail);
    BOOST_TEST(ev.code == 1007);
    BOOST_TEST((ev.err == E::invalid_utf8));
    // binary frames carry anything
    std::string bin = client_frame(opcode::binary, "\xFF\xFE");
    d::frame_reader rb(1024, true);
    BOOST_TEST(rb.read(bin.data(), bin.size(), ev) == bin.size());
    BOOST_TEST(ev.kind == frame_event::message);
}

BOOST_AUTO_TEST_CASE(invalid_utf8_fails_fast_inside_a_fragmented_message) {
    // Each case: fragments that are fine so far, then one that fails at once (1007), although
    // it is not the message's final fragment.
    std::vector<std::vector<std::string>> const cases{
        {"ok", "\xFF"},           // a byte that never starts a character
        {"\xCE\xBA\xF4", "\x90"}, // F4 90 (above U+10FFFF), split after F4
        {"\xED", "\xA0"},         // a surrogate, split after its lead byte
        {"\xE0", "\x80"},         // overlong, split after its lead byte
        {"a", "\xC3", "("},       // a character cut by ASCII in the next fragment
    };
    for (auto const& fragments : cases) {
        d::frame_reader r(1024, true);
        frame_event ev;
        for (std::size_t i = 0; i < fragments.size(); ++i) {
            std::string f =
                client_frame(i == 0 ? opcode::text : opcode::continuation, fragments[i], false);
            r.read(f.data(), f.size(), ev);
            BOOST_TEST(
                (ev.kind == (i + 1 < fragments.size() ? frame_event::none : frame_event::fail)));
        }
        BOOST_TEST(ev.code == 1007);
        BOOST_TEST((ev.err == E::invalid_utf8));
    }
    // A character split over three fragments is fine; one left unfinished at the end is not.
    std::string good = client_frame(opcode::text, "\xF0", false);
    good += client_frame(opcode::continuation, "\x9F\x98", false);
    good += client_frame(opcode::continuation, "\x80");
    std::string bad = client_frame(opcode::text, "a\xF0\x9F", false);
    bad += client_frame(opcode::continuation, "\x98");
    for (auto* bytes : {&good, &bad}) {
        d::frame_reader r(1024, true);
        frame_event ev;
        std::size_t off = 0;
        while (off < bytes->size() && ev.kind != frame_event::fail)
            off += r.read(bytes->data() + off, bytes->size() - off, ev);
        if (bytes == &good) {
            BOOST_TEST(ev.kind == frame_event::message);
            BOOST_TEST(ev.payload == "\xF0\x9F\x98\x80");
        } else {
            BOOST_TEST(ev.kind == frame_event::fail);
            BOOST_TEST(ev.code == 1007);
        }
    }
}

BOOST_AUTO_TEST_CASE(close_frames) {
    // empty close: code 1005 (no status)
    {
        std::string f = client_frame(opcode::close, "");
        d::frame_reader r(1024, true);
        frame_event ev;
        BOOST_TEST(r.read(f.data(), f.size(), ev) == f.size());
        BOOST_TEST(ev.kind == frame_event::close);
        BOOST_TEST(ev.code == 1005);
        BOOST_TEST(ev.payload.empty());
    }
    // code + reason
    {
        std::string f = client_frame(opcode::close, d::close_payload(1001, "going away"));
        d::frame_reader r(1024, true);
        frame_event ev;
        BOOST_TEST(r.read(f.data(), f.size(), ev) == f.size());
        BOOST_TEST(ev.kind == frame_event::close);
        BOOST_TEST(ev.code == 1001);
        BOOST_TEST(ev.payload == "going away");
    }
    // application code without reason
    {
        std::string f = client_frame(opcode::close, d::close_payload(4000, ""));
        d::frame_reader r(1024, true);
        frame_event ev;
        r.read(f.data(), f.size(), ev);
        BOOST_TEST(ev.kind == frame_event::close);
        BOOST_TEST(ev.code == 4000);
    }
    // 1-byte payload
    check_fail(client_frame(opcode::close, "\x03"), 1002, E::protocol_violation);
    // codes a peer may not send
    for (std::uint16_t code : {999, 1004, 1005, 1006, 1015, 2999, 5000})
        check_fail(client_frame(opcode::close, d::close_payload(code, "")), 1002,
                   E::protocol_violation);
    // reason must be UTF-8
    check_fail(client_frame(opcode::close, d::close_payload(1000, "\xFF")), 1007, E::invalid_utf8);
}

BOOST_AUTO_TEST_CASE(close_payload_truncation) {
    std::string const p = d::close_payload(1000, std::string(200, 'r'));
    BOOST_TEST(p.size() == 125u);
    BOOST_TEST(static_cast<unsigned char>(p[0]) == 0x03);
    BOOST_TEST(static_cast<unsigned char>(p[1]) == 0xE8);
    // cut between characters: 61 two-byte characters fit (122 bytes), the 62nd would not
    std::string accents;
    for (int i = 0; i < 70; ++i)
        accents += "\xC3\xA9";
    std::string const q = d::close_payload(1008, accents);
    BOOST_TEST(q.size() == 2u + 122u);
    BOOST_TEST(d::valid_utf8(q.substr(2)));
    std::string const e = d::close_payload(1008, std::string(122, 'r') + "\xE2\x82\xAC");
    BOOST_TEST(e.size() == 2u + 122u); // the euro sign (3 bytes) would end at byte 125
    BOOST_TEST(d::close_payload(1008, std::string(120, 'r') + "\xE2\x82\xAC").size() == 125u);
    BOOST_TEST(d::valid_close_code(1000));
    BOOST_TEST(d::valid_close_code(1011));
    BOOST_TEST(d::valid_close_code(3000));
    BOOST_TEST(d::valid_close_code(4999));
    BOOST_TEST(!d::valid_close_code(1005));
    BOOST_TEST(!d::valid_close_code(1006));
    BOOST_TEST(!d::valid_close_code(1012));
}

BOOST_AUTO_TEST_CASE(valid_utf8) {
    BOOST_TEST(d::valid_utf8(""));
    BOOST_TEST(d::valid_utf8("plain ascii"));
    BOOST_TEST(d::valid_utf8("caf\xC3\xA9"));      // 2-byte
    BOOST_TEST(d::valid_utf8("\xE2\x82\xAC"));     // 3-byte euro sign
    BOOST_TEST(d::valid_utf8("\xF0\x9F\x98\x80")); // 4-byte emoji
    BOOST_TEST(d::valid_utf8("\xF4\x8F\xBF\xBF")); // U+10FFFF
    BOOST_TEST(d::valid_utf8("\xEF\xBF\xBF"));     // U+FFFF
    BOOST_TEST(d::valid_utf8(std::string("a\0b", 3)));

    BOOST_TEST(!d::valid_utf8("\xED\xA0\x80"));         // U+D800 surrogate
    BOOST_TEST(!d::valid_utf8("\xED\xBF\xBF"));         // U+DFFF surrogate
    BOOST_TEST(!d::valid_utf8("\xF4\x90\x80\x80"));     // above U+10FFFF
    BOOST_TEST(!d::valid_utf8("\xC0\x80"));             // overlong NUL
    BOOST_TEST(!d::valid_utf8("\xC1\xBF"));             // overlong
    BOOST_TEST(!d::valid_utf8("\xE0\x9F\xBF"));         // overlong 3-byte
    BOOST_TEST(!d::valid_utf8("\xF0\x8F\xBF\xBF"));     // overlong 4-byte
    BOOST_TEST(!d::valid_utf8("\x80"));                 // lone continuation
    BOOST_TEST(!d::valid_utf8("\xF8\x88\x80\x80\x80")); // 5-byte form
    BOOST_TEST(!d::valid_utf8("\xFF"));
    BOOST_TEST(!d::valid_utf8("\xC3"));                 // truncated
    BOOST_TEST(!d::valid_utf8("\xF0\x9F\x98"));         // truncated 4-byte
    BOOST_TEST(!d::valid_utf8("\xC3\x28"));             // bad continuation
    BOOST_TEST(!d::valid_utf8("\xF0\x9F\x98\x80\x80")); // trailing continuation

    // a sequence cut by the end of the view is invalid even when valid bytes follow in memory
    std::string const buf = "x\xC3\xA9\xF0\x9F\x98\x80";
    BOOST_TEST(d::valid_utf8(buf));
    BOOST_TEST(!d::valid_utf8(std::string_view(buf.data(), 2)));
    BOOST_TEST(d::valid_utf8(std::string_view(buf.data(), 3)));
    BOOST_TEST(!d::valid_utf8(std::string_view(buf.data(), 4)));
    BOOST_TEST(!d::valid_utf8(std::string_view(buf.data(), 6)));
}

BOOST_AUTO_TEST_CASE(shrink_keeps_working) {
    d::frame_reader r(1 << 20, true);
    std::string buf = client_frame(opcode::text, std::string(5000, 'a'), false);
    buf += client_frame(opcode::continuation, "b");
    frame_event ev;
    auto const n = r.read(buf.data(), buf.size(), ev);
    r.shrink(); // mid-message: must not lose the partial message
    r.read(buf.data() + n, buf.size() - n, ev);
    BOOST_TEST(ev.kind == frame_event::message);
    BOOST_TEST(ev.payload.size() == 5001u);
    r.shrink();
    std::string again = client_frame(opcode::text, "x");
    BOOST_TEST(r.read(again.data(), again.size(), ev) == again.size());
    BOOST_TEST(ev.payload == "x");
    BOOST_TEST(r.max_message_size() == std::size_t(1) << 20);
}

BOOST_AUTO_TEST_SUITE_END()
