// The reconnection schedule (detail/backoff.hpp).
#include <rtpush/detail/backoff.hpp>

#include <boost/test/unit_test.hpp>

#include <set>

using namespace std::chrono_literals;
using rtpush::detail::backoff;

BOOST_AUTO_TEST_SUITE(backoff_schedule)

BOOST_AUTO_TEST_CASE(ceilings_grow_by_factor_up_to_max) {
    backoff b({.initial = 100ms, .factor = 2.0, .max = 1000ms, .reset_after = 10s}, 1);
    std::vector<long> ceilings;
    for (int i = 0; i < 7; ++i) {
        ceilings.push_back(static_cast<long>(b.ceiling().count()));
        b.next();
    }
    BOOST_TEST(ceilings == (std::vector<long>{100, 200, 400, 800, 1000, 1000, 1000}),
               boost::test_tools::per_element());
    BOOST_TEST(b.attempt() == 7u);
}

BOOST_AUTO_TEST_CASE(full_jitter_stays_within_zero_and_ceiling_and_spreads) {
    for (std::uint64_t seed = 0; seed < 20; ++seed) {
        backoff b({.initial = 50ms, .factor = 3.0, .max = 2000ms}, seed);
        for (int i = 0; i < 12; ++i) {
            auto const c = b.ceiling();
            auto const d = b.next();
            BOOST_TEST(d.count() >= 0);
            BOOST_TEST(d <= c);
            BOOST_TEST(d <= 2000ms);
        }
    }
    // the delays are spread over the range, not one value
    backoff b({.initial = 1000ms, .factor = 1.0, .max = 1000ms}, 42);
    std::set<long> seen;
    long lo = 1000, hi = 0;
    for (int i = 0; i < 1000; ++i) {
        long const d = static_cast<long>(b.next().count());
        seen.insert(d);
        lo = std::min(lo, d);
        hi = std::max(hi, d);
    }
    BOOST_TEST(seen.size() > 400u);
    BOOST_TEST(lo < 100);
    BOOST_TEST(hi > 900);
}

BOOST_AUTO_TEST_CASE(reset_after_a_stable_connection_only) {
    backoff b({.initial = 100ms, .factor = 2.0, .max = 10s, .reset_after = 60s}, 7);
    auto const t0 = backoff::clock::now();
    b.next();
    b.next();
    b.next();
    BOOST_TEST(b.ceiling() == 800ms);
    // a connection that dies quickly keeps the schedule going
    b.connected(t0);
    b.disconnected(t0 + 5s);
    BOOST_TEST(b.attempt() == 3u);
    // one that stayed up for reset_after starts it again
    b.connected(t0 + 10s);
    b.disconnected(t0 + 70s);
    BOOST_TEST(b.attempt() == 0u);
    BOOST_TEST(b.ceiling() == 100ms);
    // a failed attempt (never connected) does not reset
    b.next();
    b.disconnected(t0 + 500s);
    BOOST_TEST(b.attempt() == 1u);
    b.reset();
    BOOST_TEST(b.attempt() == 0u);
}

BOOST_AUTO_TEST_CASE(zero_initial_means_no_wait) {
    backoff b({.initial = 0ms, .factor = 2.0, .max = 1s}, 3);
    BOOST_TEST(b.next() == 0ms);
    BOOST_TEST(b.next() == 0ms);
}

BOOST_AUTO_TEST_SUITE_END()
