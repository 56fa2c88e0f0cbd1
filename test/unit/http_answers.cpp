// Unit tests for detail/http_answers.hpp: the JSON answers and CORS every route shares.
#include <rtpush/detail/http_answers.hpp>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>

namespace d = rtpush::detail;
namespace http = boost::beast::http;

BOOST_AUTO_TEST_SUITE(http_answers)

BOOST_AUTO_TEST_CASE(errors_carry_a_code_and_a_printable_message) {
    auto const r = d::json_error(http::status::not_found, "NOT_FOUND", "no route for /\x01x");
    BOOST_TEST(r.result_int() == 404u);
    BOOST_TEST(r[http::field::content_type] == "application/json");
    BOOST_TEST(r[http::field::cache_control] == "no-store");
    auto const body = boost::json::parse(r.body()).as_object();
    BOOST_TEST(body.at("error").at("code").as_string() == "NOT_FOUND");
    BOOST_TEST(body.at("error").at("message").as_string().find('\x01') == std::string::npos);
    auto const f = d::field_error(http::status::bad_request, "INVALID_MESSAGE",
                                  {"total_items", "must be an integer"});
    auto const fb = boost::json::parse(f.body()).as_object();
    BOOST_TEST(fb.at("error").at("field").as_string() == "total_items");
    BOOST_TEST(fb.at("error").at("message").as_string() == "total_items: must be an integer");
}

BOOST_AUTO_TEST_CASE(an_optional_object_body) {
    auto const none = d::optional_object_body("", 11);
    BOOST_TEST(std::get<boost::json::object>(none).empty());
    auto const some = d::optional_object_body(R"({"by":"ann"})", 11);
    BOOST_TEST(std::get<boost::json::object>(some).at("by").as_string() == "ann");
    for (auto const* bad : {"[1]", "{", "\"x\""}) {
        auto const r = d::optional_object_body(bad, 11);
        BOOST_REQUIRE(std::holds_alternative<d::http_response>(r));
        BOOST_TEST(std::get<d::http_response>(r).result_int() == 400u);
    }
}

BOOST_AUTO_TEST_CASE(an_engine_io_answer_is_never_cached) {
    auto res = d::engine_io_text(10, "2");
    BOOST_TEST(res.result() == http::status::ok);
    BOOST_TEST(res.version() == 10u);
    BOOST_TEST(res[http::field::content_type] == "text/plain; charset=UTF-8");
    BOOST_TEST(res[http::field::cache_control] == "no-store");
    BOOST_TEST(res[http::field::content_length] == "1");
    BOOST_TEST(res.body() == "2");
    auto ok = d::engine_io_text(11, "ok", "text/html");
    BOOST_TEST(ok[http::field::content_type] == "text/html");
    BOOST_TEST(ok[http::field::cache_control] == "no-store");
}

BOOST_AUTO_TEST_CASE(method_not_allowed_names_the_methods) {
    d::http_request req{http::verb::put, "/api/stats", 11};
    auto const r = d::method_not_allowed(req, "/api/stats", "GET");
    BOOST_TEST(r.result_int() == 405u);
    BOOST_TEST(r[http::field::allow] == "GET");
    BOOST_TEST(r.body().find("PUT is not allowed on /api/stats") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(cors_only_for_allowed_origins) {
    std::vector<std::string> const allowed{"https://dash.example"};
    auto r = d::json_response(http::status::ok, boost::json::object{});
    d::add_cors(r, "https://evil.example", allowed);
    BOOST_TEST(r[http::field::access_control_allow_origin].empty());
    d::add_cors(r, "https://dash.example", allowed);
    BOOST_TEST(r[http::field::access_control_allow_origin] == "https://dash.example");
    auto s = d::json_response(http::status::ok, boost::json::object{});
    d::add_cors(s, "https://dash.example", {});
    BOOST_TEST(s[http::field::access_control_allow_origin].empty()); // same-origin only
    BOOST_TEST(d::success_list("x", boost::json::array{1, 2}).at("total_count").as_uint64() == 2u);
}

BOOST_AUTO_TEST_CASE(batch_answer_from_the_items_answers) {
    auto ok = d::json_response(http::status::ok, boost::json::parse(R"({"success":true,"seq":4})"));
    auto bad = d::fault_response({{"total_items", "must be an integer"}, true});
    auto down = d::json_error(http::status::service_unavailable, "ENGINE_UNAVAILABLE", "down");
    auto [st, body] = d::batch_answer({ok, bad});
    BOOST_TEST(static_cast<unsigned>(st) == 207u);
    BOOST_TEST(body.at("published").as_uint64() == 1u);
    BOOST_TEST(body.at("failed").as_uint64() == 1u);
    BOOST_TEST(body.at("success").as_bool() == false);
    auto const& r = body.at("results").as_array();
    BOOST_TEST(r[0].at("index").as_uint64() == 0u);
    BOOST_TEST(r[0].at("success").as_bool());
    BOOST_TEST(r[0].at("seq").as_int64() == 4);
    BOOST_TEST(r[1].at("index").as_uint64() == 1u);
    BOOST_TEST(r[1].at("status").as_uint64() == 400u);
    BOOST_TEST(!r[1].at("success").as_bool());
    BOOST_TEST(r[1].at("error").at("field").as_string() == "total_items");
    BOOST_TEST(static_cast<unsigned>(d::batch_answer({ok, ok}).first) == 200u);
    BOOST_TEST(d::batch_answer({ok, ok}).second.at("success").as_bool());
    BOOST_TEST(static_cast<unsigned>(d::batch_answer({bad, bad}).first) == 400u);
    BOOST_TEST(static_cast<unsigned>(d::batch_answer({bad, down}).first) == 503u);
    // A fault that names no field is a plain error.
    auto const plain = d::fault_response({{"", "body must be a JSON object"}, false});
    BOOST_TEST(boost::json::parse(plain.body()).at("error").as_object().count("field") == 0u);
}

BOOST_AUTO_TEST_CASE(response_head_is_what_beast_writes) {
    // The upgrade's 101 is sent by the session with its greeting: the same bytes as a write
    // of the response would have sent.
    http::response<http::empty_body> res{http::status::switching_protocols, 11};
    res.set(http::field::server, "rtd/test");
    res.set(http::field::upgrade, "websocket");
    res.set(http::field::connection, "Upgrade");
    res.set(http::field::sec_websocket_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    res.set("X-Custom", "a b");
    std::ostringstream beast;
    beast << res;
    BOOST_TEST(d::response_head(res.base()) == beast.str());
    BOOST_TEST(d::response_head(res.base()).starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    BOOST_TEST(d::response_head(res.base()).ends_with("\r\n\r\n"));
}

BOOST_AUTO_TEST_SUITE_END()
