// Property checks inside fuzz targets: a broken property aborts, which libFuzzer records as a
// crash and saves the input that caused it (like a sanitizer report).
#ifndef RTPUSH_FUZZ_CHECK_HPP
#define RTPUSH_FUZZ_CHECK_HPP

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);       \
            std::abort();                                                                          \
        }                                                                                          \
    } while (0)

#endif
