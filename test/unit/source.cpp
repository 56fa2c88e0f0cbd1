// The I/O-free parts of data sources: KPI selection, changes, content hash, backoff.
#include <rtpush/source.hpp>

#include <boost/test/unit_test.hpp>

namespace json = boost::json;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(source)

BOOST_AUTO_TEST_CASE(changes_of_numeric_fields) {
    auto const prev = json::parse(R"({"health":80,"risk":0.25,"name":"a","gone":1})");
    auto const cur = json::parse(R"({"health":83,"risk":0.5,"name":"b","new":4})");
    auto const c = rtpush::kpi_changes(prev, cur);
    BOOST_TEST(c.size() == 2u);
    BOOST_TEST(c.at("health_change").as_int64() == 3);
    BOOST_TEST(c.at("risk_change").as_double() == 0.25);
}

BOOST_AUTO_TEST_CASE(changes_mixing_integer_and_double) {
    auto const c =
        rtpush::kpi_changes(json::parse(R"({"x":1.5,"y":10})"), json::parse(R"({"x":2,"y":7.5})"));
    BOOST_TEST(c.at("x_change").as_double() == 0.5);
    BOOST_TEST(c.at("y_change").as_double() == -2.5);
}

BOOST_AUTO_TEST_CASE(changes_without_previous_are_empty) {
    BOOST_TEST(rtpush::kpi_changes(json::value(), json::parse(R"({"x":1})")).empty());
    BOOST_TEST(rtpush::kpi_changes(json::parse("[1]"), json::parse(R"({"x":1})")).empty());
    BOOST_TEST(rtpush::kpi_changes(json::parse(R"({"x":1})"), json::parse("3")).empty());
}

BOOST_AUTO_TEST_CASE(changes_ignore_non_numbers_and_booleans) {
    auto const c = rtpush::kpi_changes(json::parse(R"({"a":true,"b":null,"c":"1","d":{"x":1}})"),
                                       json::parse(R"({"a":false,"b":2,"c":"2","d":{"x":2}})"));
    BOOST_TEST(c.empty());
}

BOOST_AUTO_TEST_CASE(changes_of_large_unsigned) {
    auto const c = rtpush::kpi_changes(json::parse(R"({"n":18446744073709551615})"),
                                       json::parse(R"({"n":18446744073709551614})"));
    BOOST_TEST(c.at("n_change").is_double());
}

BOOST_AUTO_TEST_CASE(changed_fields_name_what_changed) {
    auto const prev = json::parse(
        R"({"status":"ok","latency":{"p50":10,"p99":40,"deep":{"x":1}},"regions":[1,2],"gone":1,"a/b":1})");
    auto const cur = json::parse(
        R"({"status":"ok","latency":{"p50":11,"p99":40,"deep":{"x":2}},"regions":[1,3],"new":true,"a/b":2})");
    // Into objects two levels down; arrays and deeper objects count as one change.
    BOOST_TEST(
        rtpush::changed_fields(prev, cur) ==
        json::parse(R"(["/latency/p50","/latency/deep","/regions","/new","/a~1b","/gone"])"));
    BOOST_TEST(rtpush::changed_fields(prev, cur, 1) ==
               json::parse(R"(["/latency","/regions","/new","/a~1b","/gone"])"));
    BOOST_TEST(rtpush::changed_fields(prev, prev).empty());
    BOOST_TEST(rtpush::changed_fields(json::value(1), json::value(2)) == json::parse(R"([""])"));
    // Bounded: the list ends with "..." past max_fields.
    json::object many_a, many_b;
    for (int i = 0; i < 10; ++i) {
        many_a["f" + std::to_string(i)] = i;
        many_b["f" + std::to_string(i)] = i + 1;
    }
    auto const bounded = rtpush::changed_fields(many_a, many_b, 2, 3);
    BOOST_TEST(bounded == json::parse(R"(["/f0","/f1","/f2","..."])"));
}

BOOST_AUTO_TEST_CASE(pick_kpis_by_pointer) {
    auto const complete =
        json::parse(R"({"summary":{"health":91,"list":[5,6]},"total":3,"a/b":1})");
    std::vector<rtpush::kpi_field> fields{
        {"health", "/summary/health"}, {"second", "/summary/list/1"},
        {"total", "/total"},           {"slash", "/a~1b"},
        {"missing", "/nope"},          {"bad", "no-leading-slash"}};
    auto const k = rtpush::pick_kpis(complete, fields);
    BOOST_TEST(k.at("health").as_int64() == 91);
    BOOST_TEST(k.at("second").as_int64() == 6);
    BOOST_TEST(k.at("total").as_int64() == 3);
    BOOST_TEST(k.at("slash").as_int64() == 1);
    BOOST_TEST(k.at("missing").is_null());
    BOOST_TEST(k.at("bad").is_null());
}

BOOST_AUTO_TEST_CASE(content_hash_detects_changes) {
    rtpush::snapshot a{json::parse(R"({"x":1})"), json::parse(R"({"rows":[1,2]})")};
    rtpush::snapshot b{json::parse(R"({"x":1})"), json::parse(R"({"rows":[1,2]})")};
    BOOST_TEST(rtpush::content_hash(a) == rtpush::content_hash(b));
    b.complete = json::parse(R"({"rows":[1,3]})");
    BOOST_TEST(rtpush::content_hash(a) != rtpush::content_hash(b));
    rtpush::snapshot c{json::parse(R"({"x":2})"), a.complete};
    BOOST_TEST(rtpush::content_hash(a) != rtpush::content_hash(c));
    // the boundary between the parts matters
    rtpush::snapshot d{json::value("ab"), json::value("c")};
    rtpush::snapshot e{json::value("a"), json::value("bc")};
    BOOST_TEST(rtpush::content_hash(d) != rtpush::content_hash(e));
}

BOOST_AUTO_TEST_CASE(backoff_doubles_and_caps) {
    BOOST_TEST(rtpush::backoff_delay(0, 100ms, 1000ms).count() == 0);
    BOOST_TEST(rtpush::backoff_delay(1, 100ms, 1000ms).count() == 100);
    BOOST_TEST(rtpush::backoff_delay(2, 100ms, 1000ms).count() == 200);
    BOOST_TEST(rtpush::backoff_delay(4, 100ms, 1000ms).count() == 800);
    BOOST_TEST(rtpush::backoff_delay(5, 100ms, 1000ms).count() == 1000);
    BOOST_TEST(rtpush::backoff_delay(1000, 100ms, 1000ms).count() == 1000);
}

BOOST_AUTO_TEST_SUITE_END()
