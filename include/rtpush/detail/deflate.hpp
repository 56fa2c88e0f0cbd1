//
// rtpush: permessage-deflate (RFC 7692) over zlib, free of I/O.
//
// rtpush negotiates server_no_context_takeover and client_no_context_takeover: every message
// is compressed and inflated on its own. That is what lets a broadcast be compressed ONCE
// and the compressed frame be shared by every session that negotiated the extension (as the
// plain frame is shared by the others), and what keeps a connection free of zlib state: one
// deflater and one inflater per io thread serve all of its sessions, one message at a time.
//
#ifndef RTPUSH_DETAIL_DEFLATE_HPP
#define RTPUSH_DETAIL_DEFLATE_HPP

#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/http_util.hpp>
#include <rtpush/detail/send_queue.hpp>

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// The Sec-WebSocket-Extensions answer to `offers` (the request's header value), or nothing
/// when no offer of permessage-deflate can be accepted. An offer is accepted when each of its
/// parameters is known, appears once and has a valid value, and it does not limit our window
/// below the 15 bits every shared compressed frame is made with (server_max_window_bits <
/// 15): such an offer is declined and the next one considered. The answer always asks for
/// no context takeover in both directions (RFC 7692 section 7.1.1 allows adding both).
inline std::optional<std::string> negotiate_deflate(std::string_view offers) {
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
            s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
            s.remove_suffix(1);
        return s;
    };
    auto bits_ok = [](std::string_view v) {
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"')
            v = v.substr(1, v.size() - 2);
        if (v.empty() || v.size() > 2 || v.find_first_not_of("0123456789") != v.npos)
            return 0;
        int const n = std::stoi(std::string(v));
        return n >= 8 && n <= 15 ? n : 0;
    };
    while (!offers.empty()) {
        auto const comma = offers.find(',');
        std::string_view offer = offers.substr(0, comma);
        offers = comma == offers.npos ? std::string_view{} : offers.substr(comma + 1);
        auto semi = offer.find(';');
        if (!iequals(trim(offer.substr(0, semi)), "permessage-deflate"))
            continue;
        bool ok = true;
        bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
        while (ok && semi != offer.npos) {
            offer = offer.substr(semi + 1);
            semi = offer.find(';');
            std::string_view param = trim(offer.substr(0, semi));
            auto const eq = param.find('=');
            std::string_view const name = trim(param.substr(0, eq));
            std::optional<std::string_view> value;
            if (eq != param.npos)
                value = trim(param.substr(eq + 1));
            auto once = [&](bool& seen) {
                ok = ok && !seen;
                seen = true;
            };
            if (iequals(name, "server_no_context_takeover")) {
                once(seen_snct);
                ok = ok && !value;
            } else if (iequals(name, "client_no_context_takeover")) {
                once(seen_cnct);
                ok = ok && !value;
            } else if (iequals(name, "server_max_window_bits")) {
                once(seen_smwb);
                ok = ok && value && bits_ok(*value) == 15;
            } else if (iequals(name, "client_max_window_bits")) {
                // Any client window inflates with our 15-bit one; no value means "you may
                // limit it", which we do not need to.
                once(seen_cmwb);
                ok = ok && (!value || bits_ok(*value) != 0);
            } else {
                ok = false;
            }
        }
        if (ok)
            return std::string("permessage-deflate; server_no_context_takeover; "
                               "client_no_context_takeover");
    }
    return std::nullopt;
}

/// Compresses one message at a time (no context takeover): the RFC 7692 payload, i.e. raw
/// DEFLATE ending in an empty stored block whose 4 trailing bytes 00 00 ff ff are removed.
class deflater {
public:
    explicit deflater(int level = Z_DEFAULT_COMPRESSION) {
        if (deflateInit2(&z_, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;
    ~deflater() { deflateEnd(&z_); }

    /// Replaces `out` with the compressed form of `in`.
    void compress(std::string_view in, std::string& out) {
        deflateReset(&z_);
        out.resize(deflateBound(&z_, static_cast<uLong>(in.size())) + 16);
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        std::size_t used = 0;
        for (;;) {
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
            z_.avail_out = static_cast<uInt>(out.size() - used);
            int const r = deflate(&z_, Z_SYNC_FLUSH);
            used = out.size() - z_.avail_out;
            if (r != Z_OK && r != Z_BUF_ERROR)
                throw std::runtime_error("deflate failed");
            if (z_.avail_in == 0 && z_.avail_out > 0)
                break; // everything in, and the flush fitted
            out.resize(out.size() * 2);
        }
        out.resize(used);
        if (out.size() >= 4 &&
            out.compare(out.size() - 4, 4, std::string_view("\0\0\xff\xff", 4)) == 0)
            out.resize(out.size() - 4);
    }

private:
    z_stream z_{};
};

/// Inflates one client message at a time, never past a limit.
class inflater {
public:
    enum class result { ok, too_large, bad_data };

    inflater() {
        if (inflateInit2(&z_, -15) != Z_OK)
            throw std::bad_alloc();
    }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;
    ~inflater() { inflateEnd(&z_); }

    /// Replaces `out` with the inflated `in` (an RFC 7692 payload, without its 00 00 ff ff
    /// tail). Stops as soon as the output would pass `limit` bytes: a compression bomb costs
    /// at most `limit` plus one step of output memory, never its inflated size.
    result inflate(std::string_view in, std::size_t limit, std::string& out) {
        static constexpr unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        constexpr std::size_t step = 16 * 1024;
        inflateReset(&z_);
        out.clear();
        for (int part = 0; part < 2; ++part) {
            if (part == 0) {
                z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
                z_.avail_in = static_cast<uInt>(in.size());
            } else {
                z_.next_in = const_cast<Bytef*>(tail);
                z_.avail_in = 4;
            }
            while (z_.avail_in > 0) {
                if (out.size() > limit)
                    return result::too_large;
                std::size_t const used = out.size();
                out.resize(used + step);
                z_.next_out = reinterpret_cast<Bytef*>(out.data() + used);
                z_.avail_out = static_cast<uInt>(step);
                int const r = ::inflate(&z_, Z_SYNC_FLUSH);
                out.resize(out.size() - z_.avail_out);
                if (r == Z_STREAM_END) {
                    // A final block (BFINAL=1, RFC 7692 7.2.3.4): whatever follows is ignored.
                    return out.size() > limit ? result::too_large : result::ok;
                }
                if (r == Z_BUF_ERROR && z_.avail_out > 0)
                    break; // needs more input than there is
                if (r != Z_OK && r != Z_BUF_ERROR)
                    return result::bad_data;
            }
        }
        return out.size() > limit ? result::too_large : result::ok;
    }

private:
    z_stream z_{};
};

/// The frame to send a deflate session for `f`: `f` itself for control frames and messages
/// under `threshold` payload bytes or that do not shrink; otherwise the compressed frame
/// (RSV1 set), made once and cached on `f` for every other deflate session. `made` tells
/// whether this call ran the compressor.
inline frame_ptr deflated(const frame_ptr& f, deflater& z, std::size_t threshold,
                          bool* made = nullptr) {
    if (f->deflate_state.load(std::memory_order_acquire) == outbound_frame::deflate_plain)
        return f;
    if (auto d = f->deflated.load(std::memory_order_acquire))
        return d;
    auto const& b = f->bytes;
    if (b.size() < 2)
        return f;
    auto const b0 = static_cast<unsigned char>(b[0]);
    auto const op = static_cast<opcode>(b0 & 0x0F);
    std::size_t const len_code = static_cast<unsigned char>(b[1]) & 0x7F;
    std::size_t const hdr = len_code < 126 ? 2 : len_code == 126 ? 4 : 10;
    bool const data = op == opcode::text || op == opcode::binary;
    if (!data || !(b0 & 0x80) || (b0 & 0x70) || (static_cast<unsigned char>(b[1]) & 0x80) ||
        b.size() - hdr < threshold) {
        f->deflate_state.store(outbound_frame::deflate_plain, std::memory_order_release);
        return f;
    }
    std::string payload;
    z.compress(std::string_view(b).substr(hdr), payload);
    if (made)
        *made = true;
    if (payload.size() >= b.size() - hdr) {
        f->deflate_state.store(outbound_frame::deflate_plain, std::memory_order_release);
        return f;
    }
    auto c = std::make_shared<outbound_frame>();
    append_frame(c->bytes, op, payload);
    c->bytes[0] = static_cast<char>(static_cast<unsigned char>(c->bytes[0]) | 0x40); // RSV1
    c->created = f->created;
    c->timed = f->timed;
    c->bulk = f->bulk;
    c->topic = f->topic;
    c->phase = f->phase;
    c->deflate_state.store(outbound_frame::deflate_plain, std::memory_order_relaxed);
    frame_ptr mine = std::move(c);
    frame_ptr expected;
    // Two io threads may race to compress the same broadcast: the first one's frame wins.
    if (!f->deflated.compare_exchange_strong(expected, mine, std::memory_order_acq_rel))
        return expected;
    return mine;
}

} // namespace rtpush::detail

#endif
