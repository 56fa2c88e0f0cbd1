// Token buckets, the per-client message rate and the per-key limiter (detail/rate_limit.hpp).
#include <rtpush/detail/rate_limit.hpp>

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;
using rtpush::detail::keyed_rate_limiter;
using rtpush::detail::message_rate;
using rtpush::detail::token_bucket;

namespace {
const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
}

BOOST_AUTO_TEST_SUITE(rate_limit)

BOOST_AUTO_TEST_CASE(bucket_allows_burst_then_rate) {
    token_bucket b(10, 5, t0);
    for (int i = 0; i < 5; ++i)
        BOOST_TEST(b.try_take(t0));
    BOOST_TEST(!b.try_take(t0));
    BOOST_TEST(!b.try_take(t0 + 50ms)); // half a token
    BOOST_TEST(b.try_take(t0 + 100ms));
    BOOST_TEST(!b.try_take(t0 + 100ms));
    // a long pause banks at most `burst`
    int n = 0;
    while (b.try_take(t0 + 60s))
        ++n;
    BOOST_TEST(n == 5);
    BOOST_TEST(!b.idle(t0 + 60s));
    BOOST_TEST(b.idle(t0 + 61s));
    // time going backwards (a clock oddity) never adds tokens
    while (b.try_take(t0 + 61s))
        ;
    BOOST_TEST(!b.try_take(t0));
}

BOOST_AUTO_TEST_CASE(zero_rate_is_unlimited) {
    token_bucket b(0, 1, t0);
    for (int i = 0; i < 1000; ++i)
        BOOST_TEST(b.try_take(t0));
    message_rate::limits const m_limits(0, 3);
    message_rate m(m_limits, t0);
    for (int i = 0; i < 1000; ++i)
        BOOST_TEST((m.on_message(t0, m_limits) == message_rate::verdict::ok));
}

BOOST_AUTO_TEST_CASE(steady_sender_at_the_rate_is_never_limited) {
    message_rate::limits const m_limits(100, 3);
    message_rate m(m_limits, t0);
    for (int i = 0; i < 5000; ++i) // 100 per second for 50 s
        BOOST_TEST((m.on_message(t0 + i * 10ms, m_limits) == message_rate::verdict::ok));
}

BOOST_AUTO_TEST_CASE(flood_is_limited_then_abuse) {
    message_rate::limits const m_limits(100, 3);
    message_rate m(m_limits, t0);
    int ok = 0, limited = 0;
    auto v = message_rate::verdict::ok;
    int i = 0;
    for (; i < 1000; ++i) {
        v = m.on_message(t0 + i * 1ms, m_limits); // 1000 per second
        if (v == message_rate::verdict::ok)
            ++ok;
        else if (v == message_rate::verdict::limited)
            ++limited;
        else
            break;
    }
    BOOST_TEST((v == message_rate::verdict::abuse));
    // the burst of 100 plus what refilled, then 199 refusals, the 200th is abuse
    BOOST_TEST(ok >= 100);
    BOOST_TEST(ok <= 140);
    BOOST_TEST(limited == 199);
}

BOOST_AUTO_TEST_CASE(abuse_threshold_is_the_ceiling_of_the_product) {
    // (1.3 - 1) * 10 is 3.0000000000000004 in double: the 4th refusal within a second is the
    // abuse, not the 3rd (the threshold is worked out in double, not from float copies).
    message_rate::limits const m_limits(10, 1.3);
    message_rate m(m_limits, t0);
    for (int i = 0; i < 10; ++i) // the burst
        BOOST_TEST((m.on_message(t0, m_limits) == message_rate::verdict::ok));
    for (int i = 0; i < 3; ++i)
        BOOST_TEST((m.on_message(t0, m_limits) == message_rate::verdict::limited));
    BOOST_TEST((m.on_message(t0, m_limits) == message_rate::verdict::abuse));
    message_rate::limits const strict_limits(10, 1.0);
    message_rate strict(strict_limits, t0); // no tolerance: the first refusal is abuse
    for (int i = 0; i < 10; ++i)
        BOOST_TEST((strict.on_message(t0, strict_limits) == message_rate::verdict::ok));
    BOOST_TEST((strict.on_message(t0, strict_limits) == message_rate::verdict::abuse));
}

BOOST_AUTO_TEST_CASE(moderate_overuse_is_limited_not_abuse) {
    message_rate::limits const m_limits(100, 3);
    message_rate m(m_limits, t0);
    int limited = 0;
    for (int i = 0; i < 2000; ++i) { // 200 per second for 10 s: twice the rate
        auto const v = m.on_message(t0 + i * 5ms, m_limits);
        BOOST_TEST((v != message_rate::verdict::abuse));
        limited += v == message_rate::verdict::limited;
    }
    BOOST_TEST(limited > 800);
}

BOOST_AUTO_TEST_CASE(keyed_limiter_separates_keys_and_prunes) {
    keyed_rate_limiter l(2, 2);
    BOOST_TEST(l.try_take("10.0.0.1", t0));
    BOOST_TEST(l.try_take("10.0.0.1", t0));
    BOOST_TEST(!l.try_take("10.0.0.1", t0));
    BOOST_TEST(l.try_take("10.0.0.2", t0));
    BOOST_TEST(l.size() == 2u);
    l.prune(t0 + 100ms);
    BOOST_TEST(l.size() == 2u);
    BOOST_TEST(l.try_take("10.0.0.1", t0 + 500ms));
    l.prune(t0 + 10s);
    BOOST_TEST(l.size() == 0u);
    keyed_rate_limiter off(0, 0);
    for (int i = 0; i < 100; ++i)
        BOOST_TEST(off.try_take("x", t0));
    BOOST_TEST(off.size() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
