// libFuzzer target: the RFC 6455 frame reader (detail/frame.hpp) on a byte stream.
//
// Input: byte 0 chooses the role (server: frames must be masked; client: must not) and the
// message limit; byte 1 seeds the read sizes; the rest is the stream. The stream is fed twice:
// whole, and in pieces gathered the way session::consume gathers a frame spanning reads.
// Properties: both feeds give the same events (the reader does not depend on how bytes
// arrive); a message never exceeds the limit and a text message is UTF-8 (checked against a
// second, table-driven validator); every message framed again by append_frame reads back the
// same; a close frame built by close_payload reads back as that close.
#include "check.hpp"

#include <rtpush/detail/frame.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace d = rtpush::detail;

namespace {

// UTF-8 well-formedness straight from the Unicode standard's table 3-7, written differently
// from valid_utf8 on purpose (a differential check).
bool reference_utf8(std::string_view s) {
    auto const* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t const n = s.size();
    std::size_t i = 0;
    auto in = [&](std::size_t k, unsigned lo, unsigned hi) {
        return k < n && p[k] >= lo && p[k] <= hi;
    };
    while (i < n) {
        unsigned const c = p[i];
        if (c <= 0x7F) {
            i += 1;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (!in(i + 1, 0x80, 0xBF))
                return false;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned const lo = c == 0xE0 ? 0xA0 : 0x80;
            unsigned const hi = c == 0xED ? 0x9F : 0xBF;
            if (!in(i + 1, lo, hi) || !in(i + 2, 0x80, 0xBF))
                return false;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned const lo = c == 0xF0 ? 0x90 : 0x80;
            unsigned const hi = c == 0xF4 ? 0x8F : 0xBF;
            if (!in(i + 1, lo, hi) || !in(i + 2, 0x80, 0xBF) || !in(i + 3, 0x80, 0xBF))
                return false;
            i += 4;
        } else {
            return false;
        }
    }
    return true;
}

struct event {
    d::frame_event::kind_t kind;
    d::opcode op;
    std::string payload;
    std::uint16_t code;
    rtpush::error err;
    bool operator==(const event&) const = default;
};

event copy(const d::frame_event& ev) {
    return {ev.kind, ev.op, std::string(ev.payload), ev.code, ev.err};
}

// Reads frames from [data, data+size) until more input is needed or the connection ends;
// returns the bytes consumed. `done` is set after a close or a failure, as the session stops.
std::size_t read_frames(d::frame_reader& r, char* data, std::size_t size, std::vector<event>& out,
                        bool& done) {
    std::size_t off = 0;
    while (off < size && !done) {
        d::frame_event ev;
        std::size_t const used = r.read(data + off, size - off, ev);
        FUZZ_CHECK(used <= size - off);
        if (used == 0)
            break;
        off += used;
        if (ev.kind == d::frame_event::message) {
            FUZZ_CHECK(ev.payload.size() <= r.max_message_size());
            FUZZ_CHECK(ev.op == d::opcode::text || ev.op == d::opcode::binary);
            if (ev.op == d::opcode::text)
                FUZZ_CHECK(reference_utf8(ev.payload));
        }
        if (ev.kind == d::frame_event::ping || ev.kind == d::frame_event::pong)
            FUZZ_CHECK(ev.payload.size() <= 125);
        if (ev.kind == d::frame_event::close) {
            FUZZ_CHECK(ev.code == 1005 || d::valid_close_code(ev.code));
            FUZZ_CHECK(reference_utf8(ev.payload));
        }
        if (ev.kind == d::frame_event::fail)
            FUZZ_CHECK(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
        if (ev.kind != d::frame_event::none)
            out.push_back(copy(ev));
        if (ev.kind == d::frame_event::close || ev.kind == d::frame_event::fail)
            done = true;
    }
    return off;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    bool const server_role = data[0] & 1;
    std::size_t const limit = std::size_t(1) << (4 + (data[0] >> 1) % 14); // 16 B .. 128 KiB
    std::uint8_t seed = data[1];
    std::string_view const stream(reinterpret_cast<const char*>(data + 2), size - 2);

    FUZZ_CHECK(d::valid_utf8(stream) == reference_utf8(stream));

    // Whole.
    std::vector<event> whole;
    {
        d::frame_reader r(limit, server_role);
        std::string buf(stream);
        bool done = false;
        read_frames(r, buf.data(), buf.size(), whole, done);
    }
    // In pieces, kept in a pending buffer while a frame spans reads (session::consume).
    std::vector<event> pieces;
    {
        d::frame_reader r(limit, server_role);
        std::string pending;
        bool done = false;
        std::size_t at = 0;
        while (at < stream.size() && !done) {
            seed = static_cast<std::uint8_t>(seed * 37 + 11);
            std::size_t const n = std::min<std::size_t>(stream.size() - at, 1 + seed % 23);
            std::string chunk(stream.substr(at, n));
            at += n;
            if (pending.empty()) {
                std::size_t const used = read_frames(r, chunk.data(), chunk.size(), pieces, done);
                if (used < chunk.size() && !done)
                    pending.assign(chunk, used);
            } else {
                pending.append(chunk);
                std::size_t const used =
                    read_frames(r, pending.data(), pending.size(), pieces, done);
                pending.erase(0, used);
                if (pending.empty())
                    r.shrink();
            }
        }
    }
    FUZZ_CHECK(whole == pieces);

    // What was read, framed again by the writer, reads back the same (in the other role: the
    // peer's frames); a close reason built by close_payload is always a valid close frame.
    for (auto const& ev : whole) {
        d::frame_reader back(limit, !server_role);
        std::string f;
        if (ev.kind == d::frame_event::message)
            d::append_frame(f, ev.op, ev.payload, !server_role, 0x5a5a0f0f);
        else if (ev.kind == d::frame_event::ping || ev.kind == d::frame_event::pong)
            d::append_frame(f, ev.kind == d::frame_event::ping ? d::opcode::ping : d::opcode::pong,
                            ev.payload, !server_role, 0x01020304);
        else if (ev.kind == d::frame_event::close && ev.code != 1005)
            d::append_frame(f, d::opcode::close, d::close_payload(ev.code, ev.payload),
                            !server_role, 0x0badcafe);
        else
            continue;
        FUZZ_CHECK(f.size() == d::frame_header_size(ev.payload.size() +
                                                        (ev.kind == d::frame_event::close ? 2 : 0),
                                                    !server_role) +
                                   ev.payload.size() + (ev.kind == d::frame_event::close ? 2 : 0));
        d::frame_event again;
        FUZZ_CHECK(back.read(f.data(), f.size(), again) == f.size());
        FUZZ_CHECK(copy(again) == ev);
    }
    // The reasons the server sends are cut to fit a control frame: still UTF-8 after the cut.
    if (reference_utf8(stream)) {
        std::string f;
        d::append_frame(f, d::opcode::close, d::close_payload(1008, stream), false);
        d::frame_reader peer(limit, false);
        d::frame_event ev;
        FUZZ_CHECK(peer.read(f.data(), f.size(), ev) == f.size());
        FUZZ_CHECK(ev.kind == d::frame_event::close);
        FUZZ_CHECK(ev.code == 1008);
        FUZZ_CHECK(stream.substr(0, ev.payload.size()) == ev.payload);
    }
    return 0;
}
