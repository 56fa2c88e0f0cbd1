// Property checks inside fuzz targets: a broken property aborts, which libFuzzer records as a
// crash and saves the input that caused it (like a sanitizer report). Also what several
// targets compare JSON with.
#ifndef RTPUSH_FUZZ_CHECK_HPP
#define RTPUSH_FUZZ_CHECK_HPP

#include <boost/json/value.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);       \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

namespace rtpush_fuzz {

// Equal JSON, but doubles within a few ULP: Boost.JSON 1.81's number parser is not correctly
// rounded (184467440718547758075.93 reads as 1.8446744071854778e20, not ...775e20), so a double
// written out in its shortest form may be read back a few ULP off. Found by fuzz_protocol.
inline bool same_json(const boost::json::value& a, const boost::json::value& b) {
    if (a.is_double() && b.is_double()) {
        double const x = a.get_double(), y = b.get_double();
        return x == y || std::fabs(x - y) <= 1e-15 * std::max(std::fabs(x), std::fabs(y));
    }
    if (a.kind() != b.kind())
        return false;
    if (a.is_array()) {
        auto const &p = a.get_array(), &q = b.get_array();
        if (p.size() != q.size())
            return false;
        for (std::size_t i = 0; i < p.size(); ++i)
            if (!same_json(p[i], q[i]))
                return false;
        return true;
    }
    if (a.is_object()) {
        auto const &p = a.get_object(), &q = b.get_object();
        if (p.size() != q.size())
            return false;
        for (auto const& kv : p) {
            auto const* other = q.if_contains(kv.key());
            if (!other || !same_json(kv.value(), *other))
                return false;
        }
        return true;
    }
    return a == b;
}

} // namespace rtpush_fuzz

#endif
