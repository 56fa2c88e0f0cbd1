#include <rtpush/detail/prometheus.hpp>

#include <boost/test/unit_test.hpp>

#include <limits>

using rtpush::detail::prometheus_writer;

BOOST_AUTO_TEST_SUITE(prometheus)

BOOST_AUTO_TEST_CASE(family_and_samples) {
    prometheus_writer w;
    w.metric("rtpush_connections", "gauge", "Open connections.", std::uint64_t{3});
    w.family("rtpush_dropped_total", "counter", "Dropped, by reason.");
    w.sample("rtpush_dropped_total", std::uint64_t{0}, {{"reason", "a"}});
    w.sample("rtpush_dropped_total", std::uint64_t{7}, {{"reason", "b"}, {"x", "y"}});
    BOOST_TEST(w.str() == "# HELP rtpush_connections Open connections.\n"
                          "# TYPE rtpush_connections gauge\n"
                          "rtpush_connections 3\n"
                          "# HELP rtpush_dropped_total Dropped, by reason.\n"
                          "# TYPE rtpush_dropped_total counter\n"
                          "rtpush_dropped_total{reason=\"a\"} 0\n"
                          "rtpush_dropped_total{reason=\"b\",x=\"y\"} 7\n");
}

BOOST_AUTO_TEST_CASE(numbers_and_escapes) {
    prometheus_writer w;
    w.sample("a", 0.25);
    w.sample("b", 1e-4);
    w.sample("c", 2.0);
    w.sample("d", std::numeric_limits<double>::infinity());
    w.sample("e", std::uint64_t{18446744073709551615u});
    w.sample("f", std::uint64_t{1}, {{"v", "q\"u\\o\nte"}});
    w.family("g", "gauge", "back\\slash\nnewline \"quotes\" stay");
    BOOST_TEST(w.str() == "a 0.25\nb 1e-04\nc 2\nd +Inf\ne 18446744073709551615\n"
                          "f{v=\"q\\\"u\\\\o\\nte\"} 1\n"
                          "# HELP g back\\\\slash\\nnewline \"quotes\" stay\n# TYPE g gauge\n");
}

BOOST_AUTO_TEST_SUITE_END()
