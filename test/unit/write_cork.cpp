// When a shard flushes (detail/write_cork.hpp).
#include <rtpush/detail/write_cork.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>

using namespace std::chrono_literals;
using rtpush::cork_policy;
using rtpush::detail::write_cork;
using clk = write_cork::clock;

namespace {

/// A shard fanning `rate` frames per second out to `subs` subscribers, each write costing
/// `cost`, for `span`, in 5 ms passes: uncorked every pass writes to every subscriber that got
/// a frame; corked each subscriber is written once per delay.
void run(write_cork& c, clk::time_point& t, double rate, int subs, clk::duration cost,
         clk::duration span) {
    constexpr auto pass = 5ms;
    for (auto end = t + span; t < end; t += pass) {
        double const frames = rate * std::chrono::duration<double>(pass).count();
        c.count(static_cast<std::uint64_t>(frames), t);
        double writes = std::min<double>(frames, subs);
        if (c.corked())
            writes = std::min(writes, subs * std::chrono::duration<double>(pass).count() /
                                          std::chrono::duration<double>(c.delay()).count());
        c.wrote(static_cast<std::uint64_t>(writes), cost * static_cast<long>(writes), t);
    }
}

double ms(std::chrono::microseconds d) {
    return static_cast<double>(d.count()) / 1000.0;
}

} // namespace

BOOST_AUTO_TEST_SUITE(write_cork_suite)

BOOST_AUTO_TEST_CASE(quiet_shard_writes_at_once) {
    write_cork c(20ms);
    auto t = clk::time_point{} + 1h;
    run(c, t, 10000, 1000, 9us, 1s); // writes would take 9% of the thread
    BOOST_TEST(!c.corked());
    BOOST_TEST(c.delay().count() == 0);
    BOOST_TEST(c.rate() > 9000);
    BOOST_TEST(c.rate() < 11000);
    BOOST_TEST(c.load() > 0.08);
    BOOST_TEST(c.load() < 0.10);
}

BOOST_AUTO_TEST_CASE(moderate_load_holds_back_only_what_keeps_writes_within_the_thread) {
    write_cork c(20ms);
    auto t = clk::time_point{} + 1h;
    // 100k frames/s at 9 us a write: unbatched, writes would take 90% of the thread. The
    // budget is 60%: each of the 1000 subscribers written once per 1000 * 9 us / 0.6.
    run(c, t, 100000, 1000, 9us, 2s);
    BOOST_TEST(c.corked());
    BOOST_TEST(ms(c.delay()) > 12.0);
    BOOST_TEST(ms(c.delay()) < 18.0);
    BOOST_TEST(c.write_share() < 0.65);
}

BOOST_AUTO_TEST_CASE(saturating_load_holds_back_up_to_the_maximum) {
    write_cork c(20ms);
    auto t = clk::time_point{} + 1h;
    // 200k/s: unbatched writes would need 1.8 threads; the budget falls to 10%, which
    // would take 90 ms: held at the maximum.
    run(c, t, 200000, 1000, 9us, 2s);
    BOOST_TEST(c.corked());
    BOOST_TEST(ms(c.delay()) == 20.0);
    run(c, t, 500000, 1000, 9us, 2s);
    BOOST_TEST(ms(c.delay()) == 20.0);
}

BOOST_AUTO_TEST_CASE(fewer_subscribers_need_a_shorter_delay) {
    write_cork c(20ms);
    auto t = clk::time_point{} + 1h;
    // 120k frames/s over 100 subscribers rather than 1000: 100 writes per delay are cheap,
    // so a shorter delay keeps them within the budget.
    run(c, t, 120000, 100, 9us, 2s);
    BOOST_TEST(c.corked());
    BOOST_TEST(ms(c.delay()) < 5.0);
    write_cork wide(20ms);
    run(wide, t, 120000, 1000, 9us, 2s);
    BOOST_TEST(ms(wide.delay()) > 4 * ms(c.delay()));
}

BOOST_AUTO_TEST_CASE(uncorks_when_load_falls_and_after_a_quiet_spell) {
    write_cork c(20ms);
    auto t = clk::time_point{} + 1h;
    run(c, t, 200000, 1000, 9us, 1s);
    BOOST_TEST(c.corked());
    run(c, t, 2000, 1000, 9us, 1s);
    BOOST_TEST(!c.corked());

    run(c, t, 200000, 1000, 9us, 1s);
    BOOST_TEST(c.corked());
    t += 10s; // nothing queued: the next frame is decided on the quiet spell
    c.observe(t);
    BOOST_TEST(!c.corked());
}

BOOST_AUTO_TEST_CASE(budget_falls_from_light_to_heavy_load) {
    BOOST_TEST(write_cork::write_budget(0.5) == 0.6);
    BOOST_TEST(write_cork::write_budget(1.0) == 0.6);
    BOOST_TEST(write_cork::write_budget(1.25) < 0.6);
    BOOST_TEST(write_cork::write_budget(1.25) > 0.2);
    BOOST_TEST(write_cork::write_budget(2.0) < 0.1);
}

BOOST_AUTO_TEST_CASE(zero_delay_never_corks) {
    write_cork c(0ms);
    auto t = clk::time_point{} + 1h;
    run(c, t, 500000, 1000, 9us, 1s);
    BOOST_TEST(!c.corked());
    write_cork f(0ms, 1, cork_policy::fixed);
    run(f, t, 500000, 1000, 9us, 1s);
    BOOST_TEST(!f.corked());
}

BOOST_AUTO_TEST_CASE(fixed_policy_corks_above_its_threshold) {
    write_cork c(20ms, 50000, cork_policy::fixed);
    auto t = clk::time_point{} + 1h;
    run(c, t, 10000, 1000, 1us, 1s);
    BOOST_TEST(!c.corked());
    run(c, t, 60000, 1000, 1us, 1s); // cheap writes: the adaptive policy would not cork
    BOOST_TEST(c.corked());
    BOOST_TEST(ms(c.delay()) == 20.0);
    run(c, t, 2000, 1000, 1us, 1s);
    BOOST_TEST(!c.corked());
}

BOOST_AUTO_TEST_SUITE_END()
