// When a shard flushes (detail/write_cork.hpp).
#include <rtpush/detail/write_cork.hpp>

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;
using rtpush::detail::write_cork;
using clk = write_cork::clock;

BOOST_AUTO_TEST_SUITE(write_cork_suite)

BOOST_AUTO_TEST_CASE(quiet_shard_flushes_at_once) {
    write_cork c(20ms, 50000, 100ms);
    auto t = clk::time_point{} + 1h;
    // 1000 frames per 100 ms = 10k/s: under the threshold
    for (int i = 0; i < 30; ++i) {
        c.count(100, t);
        BOOST_TEST((c.flush_at(t) == t));
        c.flushed(t);
        t += 10ms;
    }
    BOOST_TEST(!c.corked());
    BOOST_TEST(c.rate() > 9000);
    BOOST_TEST(c.rate() < 11000);
}

BOOST_AUTO_TEST_CASE(loaded_shard_waits_for_max_delay_after_last_flush) {
    write_cork c(20ms, 50000, 100ms);
    auto t = clk::time_point{} + 1h;
    // 1000 frames every 5 ms = 200k/s
    for (int i = 0; i < 21; ++i) {
        c.count(1000, t);
        t += 5ms;
    }
    BOOST_TEST(c.corked());
    c.flushed(t);
    BOOST_TEST((c.flush_at(t + 5ms) == t + 20ms));  // held back until 20 ms after the flush
    BOOST_TEST((c.flush_at(t + 25ms) == t + 25ms)); // never scheduled in the past
}

BOOST_AUTO_TEST_CASE(uncorks_when_load_falls) {
    write_cork c(20ms, 50000, 100ms);
    auto t = clk::time_point{} + 1h;
    for (int i = 0; i < 21; ++i, t += 5ms)
        c.count(1000, t);
    BOOST_TEST(c.corked());
    for (int i = 0; i < 21; ++i, t += 5ms)
        c.count(10, t); // 2k/s
    BOOST_TEST(!c.corked());
    c.flushed(t);
    BOOST_TEST((c.flush_at(t + 1ms) == t + 1ms));
}

BOOST_AUTO_TEST_CASE(zero_delay_never_corks) {
    write_cork c(0ms, 1, 100ms);
    auto t = clk::time_point{} + 1h;
    for (int i = 0; i < 50; ++i, t += 5ms)
        c.count(100000, t);
    BOOST_TEST(!c.corked());
    c.flushed(t);
    BOOST_TEST((c.flush_at(t) == t));
}

BOOST_AUTO_TEST_SUITE_END()
