//
// rtpush: RFC 6455 frame codec, free of I/O.
//
// rtpush writes WebSocket frames itself instead of going through beast::websocket::stream:
// a server-to-client frame is unmasked, so the same bytes serve every subscriber. A publish is
// framed once and the frame is shared by reference (see docs/architecture.md).
//
#ifndef RTPUSH_DETAIL_FRAME_HPP
#define RTPUSH_DETAIL_FRAME_HPP

#include <rtpush/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

namespace rtpush::detail {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Size of the header of a frame with `len` payload bytes.
inline std::size_t frame_header_size(std::size_t len, bool masked) noexcept {
    std::size_t n = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
    return masked ? n + 4 : n;
}

/// Appends a complete, final frame to `out`. With `mask` the payload is masked with `key`
/// (client-to-server frames must be masked, server-to-client frames must not).
inline void append_frame(std::string& out, opcode op, std::string_view payload, bool mask = false,
                         std::uint32_t key = 0) {
    std::size_t const len = payload.size();
    std::size_t const start = out.size();
    out.resize(start + frame_header_size(len, mask) + len);
    auto* p = reinterpret_cast<unsigned char*>(out.data() + start);
    *p++ = 0x80 | static_cast<unsigned char>(op);
    unsigned char const m = mask ? 0x80 : 0;
    if (len < 126) {
        *p++ = m | static_cast<unsigned char>(len);
    } else if (len <= 0xFFFF) {
        *p++ = m | 126;
        *p++ = static_cast<unsigned char>(len >> 8);
        *p++ = static_cast<unsigned char>(len);
    } else {
        *p++ = m | 127;
        for (int i = 7; i >= 0; --i)
            *p++ = static_cast<unsigned char>(static_cast<std::uint64_t>(len) >> (8 * i));
    }
    if (!mask) {
        if (len)
            std::memcpy(p, payload.data(), len);
        return;
    }
    unsigned char k[4] = {static_cast<unsigned char>(key >> 24),
                          static_cast<unsigned char>(key >> 16),
                          static_cast<unsigned char>(key >> 8), static_cast<unsigned char>(key)};
    std::memcpy(p, k, 4);
    p += 4;
    for (std::size_t i = 0; i < len; ++i)
        p[i] = static_cast<unsigned char>(payload[i]) ^ k[i & 3];
}

inline std::string make_frame(opcode op, std::string_view payload) {
    std::string s;
    append_frame(s, op, payload);
    return s;
}

/// The payload of a close frame: a 2-byte code and a UTF-8 reason, truncated to fit 125 bytes.
/// The cut falls between characters: a reason cut inside one would not be UTF-8, and the peer
/// would fail the connection with 1007 instead of reading our code (found by fuzz_frame).
inline std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    std::size_t n = std::min<std::size_t>(reason.size(), 123);
    while (n > 0 && n < reason.size() && (static_cast<unsigned char>(reason[n]) & 0xC0) == 0x80)
        --n; // reason[n], the first byte left out, continues a character: leave it all out
    p.append(reason.substr(0, n));
    return p;
}

/// Strict UTF-8 validation (no overlongs, no surrogates, nothing above U+10FFFF) of text that
/// may arrive in pieces: a character split between two `feed` calls (two fragments of one
/// message) is checked as its bytes come, and a byte that no valid text could continue with
/// fails at once, not when the message ends (RFC 6455 section 8.1, "fail fast"). One byte of
/// state, so a frame reader carries it for free.
class utf8_validator {
public:
    /// False at the first byte that cannot belong to valid UTF-8 (and from then on).
    bool feed(std::string_view s) noexcept {
        auto const* p = reinterpret_cast<const unsigned char*>(s.data());
        auto const* const end = p + s.size();
        unsigned need = state_ & 3, range = state_ >> 2;
        if (state_ == bad)
            return false;
        for (; p < end; ++p) {
            unsigned char const c = *p;
            if (need == 0) {
                if (c < 0x80)
                    continue;
                // The lead byte says how many continuation bytes follow and, for E0, ED, F0
                // and F4, narrows the first one (overlongs, surrogates, above U+10FFFF).
                if (c >= 0xC2 && c <= 0xDF)
                    need = 1, range = 0;
                else if (c >= 0xE0 && c <= 0xEF)
                    need = 2, range = c == 0xE0 ? 1 : c == 0xED ? 2 : 0;
                else if (c >= 0xF0 && c <= 0xF4)
                    need = 3, range = c == 0xF0 ? 3 : c == 0xF4 ? 4 : 0;
                else
                    return fail();
                continue;
            }
            static constexpr unsigned char lo[5] = {0x80, 0xA0, 0x80, 0x90, 0x80};
            static constexpr unsigned char hi[5] = {0xBF, 0xBF, 0x9F, 0xBF, 0x8F};
            if (c < lo[range] || c > hi[range])
                return fail();
            --need;
            range = 0;
        }
        state_ = static_cast<std::uint8_t>(need | (range << 2));
        return true;
    }
    /// No character is left unfinished (the end of a message).
    bool complete() const noexcept { return state_ == 0; }
    void reset() noexcept { state_ = 0; }

private:
    static constexpr std::uint8_t bad = 0xFF;
    bool fail() noexcept {
        state_ = bad;
        return false;
    }
    std::uint8_t state_ = 0; // continuation bytes still needed (bits 0-1), range of the next (2-4)
};

/// Strict UTF-8 validation of a whole text.
inline bool valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

/// True for close codes a peer may send (RFC 6455 section 7.4).
inline bool valid_close_code(std::uint16_t c) noexcept {
    return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

/// What the frame reader found.
struct frame_event {
    enum kind_t { none, message, ping, pong, close, fail } kind = none;
    opcode op = opcode::text; ///< for `message`: text or binary
    std::string_view payload; ///< message, ping or pong payload; close reason
    std::uint16_t code = 0;   ///< close: the peer's code (1005 when absent); fail: code to send
    rtpush::error err{};      ///< fail: why
    bool compressed = false;  ///< message: RSV1 was set (permessage-deflate); not UTF-8 checked
};

/// Incremental reader of WebSocket frames from a byte buffer. It unmasks in place, returns
/// unfragmented messages as views into the caller's buffer (no copy) and reassembles fragmented
/// ones. Every violation ends in a `fail` event carrying the close code to answer with.
class frame_reader {
public:
    /// `server_role`: frames must be masked (they come from a client); otherwise they must not be.
    frame_reader(std::size_t max_message_size, bool server_role) noexcept
        : max_message_(max_message_size)
        , server_role_(server_role) {}

    std::size_t max_message_size() const noexcept { return max_message_; }

    /// permessage-deflate was negotiated: RSV1 may mark the first frame of a data message as
    /// compressed (RFC 7692 section 6); the message then comes out with `compressed` set and
    /// its UTF-8 is the inflater's caller's to check. `max_message_size` bounds the
    /// compressed size here; the inflater bounds the inflated one.
    void allow_compressed(bool on) noexcept { compressed_ok_ = on; }

    /// Parses at most one frame at the start of [data, data+size). Returns the bytes consumed
    /// (0: need more input; the caller keeps the bytes and reads more). A consumed frame that
    /// completes nothing (a fragment) leaves `ev.kind == none`. Views in `ev` stay valid until
    /// the next call or until the caller's buffer changes.
    std::size_t read(char* data, std::size_t size, frame_event& ev) {
        ev = frame_event{};
        auto* p = reinterpret_cast<unsigned char*>(data);
        if (size < 2)
            return 0;
        bool const fin = p[0] & 0x80;
        unsigned const rsv = p[0] & (compressed_ok_ ? 0x30 : 0x70);
        bool const rsv1 = compressed_ok_ && (p[0] & 0x40);
        auto const op = static_cast<opcode>(p[0] & 0x0F);
        bool const masked = p[1] & 0x80;
        std::uint64_t len = p[1] & 0x7F;
        std::size_t hdr = 2;
        if (len == 126) {
            if (size < 4)
                return 0;
            len = (std::uint64_t(p[2]) << 8) | p[3];
            hdr = 4;
            if (len < 126)
                return fail(ev, 1002);
        } else if (len == 127) {
            if (size < 10)
                return 0;
            len = 0;
            for (int i = 2; i < 10; ++i)
                len = (len << 8) | p[i];
            hdr = 10;
            if (len >> 63 || len <= 0xFFFF)
                return fail(ev, 1002);
        }
        if (rsv)
            return fail(ev, 1002);
        if (masked != server_role_)
            return fail(ev, 1002);
        bool const control = static_cast<unsigned>(op) & 0x8;
        if (control) {
            if (op != opcode::close && op != opcode::ping && op != opcode::pong)
                return fail(ev, 1002);
            if (!fin || len > 125 || rsv1)
                return fail(ev, 1002);
        } else {
            if (rsv1 && op == opcode::continuation)
                return fail(ev, 1002);
            if (op != opcode::continuation && op != opcode::text && op != opcode::binary)
                return fail(ev, 1002);
            if (op == opcode::continuation && !in_message_)
                return fail(ev, 1002);
            if (op != opcode::continuation && in_message_)
                return fail(ev, 1002);
            std::uint64_t const total = (in_message_ && message_ ? message_->size() : 0) + len;
            if (total > max_message_) {
                ev.err = rtpush::error::message_too_large;
                return fail(ev, 1009);
            }
        }
        if (masked)
            hdr += 4;
        if (size < hdr || size - hdr < len)
            return 0;
        unsigned char* payload = p + hdr;
        if (masked) {
            unsigned char const* k = p + hdr - 4;
            for (std::size_t i = 0; i < len; ++i)
                payload[i] ^= k[i & 3];
        }
        std::string_view const body(reinterpret_cast<char*>(payload),
                                    static_cast<std::size_t>(len));
        std::size_t const consumed = hdr + static_cast<std::size_t>(len);

        if (control) {
            if (op == opcode::ping || op == opcode::pong) {
                ev.kind = op == opcode::ping ? frame_event::ping : frame_event::pong;
                ev.payload = body;
                return consumed;
            }
            // close
            if (body.size() == 1)
                return fail(ev, 1002);
            ev.kind = frame_event::close;
            ev.code = 1005;
            if (body.size() >= 2) {
                ev.code = static_cast<std::uint16_t>((std::uint8_t(body[0]) << 8) |
                                                     std::uint8_t(body[1]));
                if (!valid_close_code(ev.code))
                    return fail(ev, 1002);
                ev.payload = body.substr(2);
                if (!valid_utf8(ev.payload)) {
                    ev.err = rtpush::error::invalid_utf8;
                    return fail(ev, 1007);
                }
            }
            return consumed;
        }

        if (op != opcode::continuation && fin) {
            // The common case: a whole message in one frame, handed out without a copy.
            if (op == opcode::text && !rsv1 && !valid_utf8(body)) {
                ev.err = rtpush::error::invalid_utf8;
                return fail(ev, 1007);
            }
            ev.kind = frame_event::message;
            ev.op = op;
            ev.payload = body;
            ev.compressed = rsv1;
            return consumed;
        }
        if (op != opcode::continuation) {
            in_message_ = true;
            message_op_ = op;
            message_compressed_ = rsv1;
            utf8_.reset();
            if (!message_)
                message_ = std::make_unique<std::string>();
            message_->clear();
        }
        // Each fragment is checked as it comes: invalid text fails now, not at the last
        // fragment (fail fast, RFC 6455 section 8.1). Compressed text is checked inflated.
        bool const check_text = message_op_ == opcode::text && !message_compressed_;
        if (check_text && !utf8_.feed(body)) {
            ev.err = rtpush::error::invalid_utf8;
            return fail(ev, 1007);
        }
        message_->append(body);
        if (!fin)
            return consumed;
        in_message_ = false;
        if (check_text && !utf8_.complete()) {
            ev.err = rtpush::error::invalid_utf8;
            return fail(ev, 1007);
        }
        ev.kind = frame_event::message;
        ev.op = message_op_;
        ev.payload = *message_;
        ev.compressed = message_compressed_;
        return consumed;
    }

    /// Drops the reassembly buffer's memory (an idle subscriber keeps none).
    void shrink() {
        if (!in_message_)
            message_.reset();
    }

private:
    std::size_t fail(frame_event& ev, std::uint16_t code) {
        ev.kind = frame_event::fail;
        ev.code = code;
        if (ev.err == rtpush::error{})
            ev.err = rtpush::error::protocol_violation;
        return 1; // anything non-zero: the connection is finished anyway
    }

    std::size_t max_message_;
    bool server_role_;
    bool in_message_ = false;
    bool compressed_ok_ = false;      // permessage-deflate negotiated
    bool message_compressed_ = false; // the message being reassembled had RSV1
    opcode message_op_ = opcode::text;
    utf8_validator utf8_; // the text reassembled so far (one byte, in the padding)
    // A message in several frames is reassembled here; made for the first such message,
    // so the reader of a session that never receives one is 24 bytes, not 48.
    std::unique_ptr<std::string> message_;
};

/// The payload of a server-to-client (unmasked) frame.
inline std::string_view frame_payload(std::string_view bytes) noexcept {
    if (bytes.size() < 2)
        return {};
    auto const len7 = static_cast<unsigned char>(bytes[1]) & 0x7F;
    std::size_t const hdr = len7 < 126 ? 2 : len7 == 126 ? 4 : 10;
    return bytes.size() < hdr ? std::string_view{} : bytes.substr(hdr);
}

} // namespace rtpush::detail

#endif
