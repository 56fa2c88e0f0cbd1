#include <rtpush/detail/histogram.hpp>

#include <boost/test/unit_test.hpp>

#include <random>

using hist = rtpush::detail::histogram;

BOOST_AUTO_TEST_SUITE(histogram)

BOOST_AUTO_TEST_CASE(small_values_are_exact) {
    hist h;
    for (std::uint64_t v = 0; v < 64; ++v)
        h.record(v);
    BOOST_TEST(h.count() == 64u);
    BOOST_TEST(h.quantile(0.0) == 0u);
    BOOST_TEST(h.quantile(1.0) == 63u);
    BOOST_TEST(h.quantile(0.5) == 31u);
    BOOST_TEST(h.min() == 0u);
    BOOST_TEST(h.max() == 63u);
}

BOOST_AUTO_TEST_CASE(buckets_are_contiguous_and_tight) {
    // every value falls in a bucket whose upper edge is >= it and within 1/32 of it
    std::mt19937_64 rng(1);
    for (int i = 0; i < 100000; ++i) {
        std::uint64_t const v = rng() >> (rng() % 64);
        auto const b = hist::index(v);
        BOOST_REQUIRE(hist::upper(b) >= v);
        if (b > 0)
            BOOST_REQUIRE(hist::upper(b - 1) < v);
        BOOST_REQUIRE(static_cast<double>(hist::upper(b) - v) <= static_cast<double>(v) / 32.0 + 1);
    }
}

BOOST_AUTO_TEST_CASE(quantiles_of_a_uniform_sample) {
    hist h;
    for (std::uint64_t v = 1; v <= 100000; ++v)
        h.record(v);
    auto near = [](std::uint64_t got, double want) {
        return std::abs(static_cast<double>(got) - want) <= want * 0.02;
    };
    BOOST_TEST(near(h.quantile(0.5), 50000));
    BOOST_TEST(near(h.quantile(0.99), 99000));
    BOOST_TEST(near(h.quantile(0.999), 99900));
    BOOST_TEST(h.quantile(1.0) == 100000u);
    BOOST_TEST(h.mean() == 50000.5);
}

BOOST_AUTO_TEST_CASE(merge_and_reset) {
    hist a, b;
    a.record(10, 3);
    b.record(1000);
    a.merge(b);
    BOOST_TEST(a.count() == 4u);
    BOOST_TEST(a.max() == 1000u);
    BOOST_TEST(a.min() == 10u);
    BOOST_TEST(a.quantile(0.5) == 10u);
    a.reset();
    BOOST_TEST(a.count() == 0u);
    BOOST_TEST(a.quantile(0.99) == 0u);
    BOOST_TEST(a.max() == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
