//
// rtpush: random identifiers (an epoch, an ack id's boot tag, a Redis node's epoch): `bytes`
// random bytes as lowercase hex, from OpenSSL's generator (the clock's bits if it fails, so
// that a start-up never stops on it). Free of I/O.
//
#ifndef RTPUSH_DETAIL_RANDOM_HEX_HPP
#define RTPUSH_DETAIL_RANDOM_HEX_HPP

#include <openssl/rand.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace rtpush::detail {

inline std::string random_hex(std::size_t bytes) {
    std::vector<unsigned char> r(bytes);
    if (RAND_bytes(r.data(), static_cast<int>(r.size())) != 1) {
        auto const t =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        for (std::size_t i = 0; i < r.size(); ++i)
            r[i] = static_cast<unsigned char>(t >> (8 * (i % 8)));
    }
    std::string s;
    char buf[3];
    for (auto c : r) {
        std::snprintf(buf, sizeof buf, "%02x", c);
        s += buf;
    }
    return s;
}

} // namespace rtpush::detail

#endif
