//
// rtpush: SHA-1 (FIPS 180-4), for the WebSocket handshake only.
//
// Why not OpenSSL's: the first EVP_Digest of a process loads OpenSSL's providers and name
// maps, about 120 KiB of code and heap that a plain ws:// server never needs otherwise; and
// a digest of 60 bytes per handshake does not want a provider lookup. SHA-1 is not used here
// for security (RFC 6455 only proves the server read the key).
//
#ifndef RTPUSH_DETAIL_SHA1_HPP
#define RTPUSH_DETAIL_SHA1_HPP

#include <array>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace rtpush::detail {

class sha1 {
public:
    using digest_type = std::array<std::uint8_t, 20>;

    static digest_type hash(std::string_view data) noexcept {
        sha1 s;
        s.update(data);
        return s.finish();
    }

    void update(std::string_view data) noexcept {
        for (char c : data) {
            block_[used_++] = static_cast<std::uint8_t>(c);
            if (used_ == 64) {
                compress();
                used_ = 0;
            }
        }
        length_ += data.size();
    }

    digest_type finish() noexcept {
        std::uint64_t const bits = length_ * 8;
        block_[used_++] = 0x80;
        if (used_ > 56) {
            std::memset(block_ + used_, 0, 64 - used_);
            compress();
            used_ = 0;
        }
        std::memset(block_ + used_, 0, 56 - used_);
        for (int i = 0; i < 8; ++i)
            block_[56 + i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
        compress();
        digest_type out;
        for (int i = 0; i < 5; ++i)
            for (int j = 0; j < 4; ++j)
                out[static_cast<std::size_t>(4 * i + j)] =
                    static_cast<std::uint8_t>(h_[i] >> (24 - 8 * j));
        return out;
    }

private:
    static std::uint32_t rol(std::uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }

    void compress() noexcept {
        std::uint32_t w[80];
        for (int i = 0; i < 16; ++i)
            w[i] = std::uint32_t(block_[4 * i]) << 24 | std::uint32_t(block_[4 * i + 1]) << 16 |
                   std::uint32_t(block_[4 * i + 2]) << 8 | std::uint32_t(block_[4 * i + 3]);
        for (int i = 16; i < 80; ++i)
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
        for (int i = 0; i < 80; ++i) {
            std::uint32_t f, k;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            std::uint32_t const t = rol(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h_[0] += a;
        h_[1] += b;
        h_[2] += c;
        h_[3] += d;
        h_[4] += e;
    }

    std::uint32_t h_[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::uint8_t block_[64] = {};
    std::size_t used_ = 0;
    std::uint64_t length_ = 0;
};

} // namespace rtpush::detail

#endif
