// Unit tests for detail/health.hpp: which part fails the deep health check (seed 004)
// (docs/protocol.md, "Seed parity").
#include <rtpush/detail/health.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;

namespace {

boost::json::object obj(std::string_view text) {
    return boost::json::parse(text).as_object();
}

} // namespace

BOOST_AUTO_TEST_SUITE(health)

BOOST_AUTO_TEST_CASE(healthy_without_engine_or_sources) {
    auto const engine = obj(R"({"engine":"memory"})");
    auto const f = d::health_failures(engine, nullptr, false);
    BOOST_TEST(f.empty());
    auto const body = d::health_report(obj(R"({"version":"x"})"), engine, nullptr, f);
    BOOST_TEST(body.at("status").as_string() == "ok");
    BOOST_TEST(body.at("version").as_string() == "x");
    BOOST_TEST(body.at("checks").at("engine:memory").at("status").as_string() == "ok");
    BOOST_TEST(body.at("failing").as_array().empty());
    BOOST_TEST(!body.contains("error"));
}

BOOST_AUTO_TEST_CASE(redis_down_is_named) {
    auto const engine = obj(R"({"engine":"redis","redis_up":false})");
    auto const f = d::health_failures(engine, nullptr, false);
    BOOST_REQUIRE(f.size() == 1u);
    BOOST_TEST(f[0].part == "engine:redis");
    auto const body = d::health_report({}, engine, nullptr, f);
    BOOST_TEST(body.at("status").as_string() == "error");
    BOOST_TEST(body.at("checks").at("engine:redis").at("status").as_string() == "error");
    BOOST_TEST(body.at("failing").as_array().at(0).as_string() == "engine:redis");
    BOOST_TEST(body.at("error").at("code").as_string() == "UNHEALTHY");
    BOOST_TEST(body.at("error").at("message").as_string().find("engine:redis") !=
               std::string::npos);
    BOOST_TEST(
        d::health_failures(obj(R"({"engine":"redis","redis_up":true})"), nullptr, false).empty());
}

BOOST_AUTO_TEST_CASE(a_source_fails_after_repeated_errors) {
    auto const engine = obj(R"({"engine":"memory"})");
    auto sources = boost::json::parse(
        R"([{"name":"api","consecutive_errors":1,"last_error":"refused"},
            {"name":"metrics","consecutive_errors":0}])");
    // One failure in a row: the refresher retries, the node stays in rotation.
    BOOST_TEST(d::health_failures(engine, sources, false).empty());
    sources.as_array()[0].as_object()["consecutive_errors"] = d::source_failures_unhealthy;
    auto const f = d::health_failures(engine, sources, false);
    BOOST_REQUIRE(f.size() == 1u);
    BOOST_TEST(f[0].part == "source:api");
    BOOST_TEST(f[0].reason.find("refused") != std::string::npos);
    auto const body = d::health_report({}, engine, sources, f);
    BOOST_TEST(body.at("checks").at("source:api").at("status").as_string() == "error");
    BOOST_TEST(body.at("checks").at("source:metrics").at("status").as_string() == "ok");
}

BOOST_AUTO_TEST_CASE(stopping_fails) {
    auto const f = d::health_failures(obj(R"({"engine":"memory"})"), nullptr, true);
    BOOST_REQUIRE(f.size() == 1u);
    BOOST_TEST(f[0].part == "server");
}

BOOST_AUTO_TEST_SUITE_END()
