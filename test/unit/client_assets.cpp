// Unit tests for detail/client_assets.hpp: the JavaScript client answered at /client/<file>.
#include <rtpush/detail/client_assets.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

namespace d = rtpush::detail;
namespace http = boost::beast::http;

BOOST_AUTO_TEST_SUITE(client_assets)

BOOST_AUTO_TEST_CASE(the_two_entry_names_and_every_source_file) {
    auto const* core = d::find_client_file("rtpush.js");
    BOOST_REQUIRE(core != nullptr);
    BOOST_TEST(core->name == "index.js");
    BOOST_TEST(core->body.find("from \"./client.js\"") != std::string_view::npos);
    auto const* react = d::find_client_file("rtpush-react.js");
    BOOST_REQUIRE(react != nullptr);
    BOOST_TEST(react->name == "react.js");
    // What the relative imports of the entries ask for is there under its own name.
    for (auto const* name : {"client.js", "seed001.js", "index.js", "react.js"})
        BOOST_TEST(d::find_client_file(name) != nullptr, name);
    BOOST_TEST(d::find_client_file("client.js")->body.find("export class RtpushClient") !=
               std::string_view::npos);
    for (auto const* name : {"", "nope.js", "../client.js", "index.d.ts", "RTPUSH.JS"})
        BOOST_TEST(d::find_client_file(name) == nullptr, name);
    // The embedded text is the source file, not the literal's leading newline.
    BOOST_TEST(core->body.starts_with("// rtpush-client"));
}

BOOST_AUTO_TEST_CASE(a_module_with_its_etag_and_cache_headers) {
    auto const r = d::client_file_response("rtpush.js", "", 11);
    BOOST_TEST(r.result_int() == 200u);
    BOOST_TEST(r[http::field::content_type] == "text/javascript; charset=utf-8");
    BOOST_TEST(r[http::field::cache_control] == "no-cache");
    BOOST_TEST(r[http::field::etag] == d::find_client_file("index.js")->etag);
    BOOST_TEST(r[http::field::etag].size() == 18u); // "16 hex digits"
    BOOST_TEST(r[http::field::access_control_allow_origin] == "*");
    BOOST_TEST(r["X-Content-Type-Options"] == "nosniff");
    BOOST_TEST(r.body() == std::string(d::find_client_file("index.js")->body));
    BOOST_TEST(r[http::field::content_length] == std::to_string(r.body().size()));
    // Different files, different tags.
    BOOST_TEST(d::find_client_file("client.js")->etag != d::find_client_file("react.js")->etag);
}

BOOST_AUTO_TEST_CASE(if_none_match_gives_304_without_a_body) {
    std::string const tag(d::find_client_file("react.js")->etag);
    for (auto const& inm : {tag, "W/" + tag, "\"other\", " + tag, std::string("*")}) {
        auto const r = d::client_file_response("rtpush-react.js", inm, 11);
        BOOST_TEST(r.result_int() == 304u, inm);
        BOOST_TEST(r.body().empty());
        BOOST_TEST(r[http::field::etag] == tag);
        BOOST_TEST(r[http::field::cache_control] == "no-cache");
    }
    auto const stale = d::client_file_response("rtpush-react.js", "\"0000000000000000\"", 11);
    BOOST_TEST(stale.result_int() == 200u);
    BOOST_TEST(!stale.body().empty());
}

BOOST_AUTO_TEST_CASE(etag_matching) {
    BOOST_TEST(d::etag_matches("\"a\"", "\"a\""));
    BOOST_TEST(d::etag_matches(" \"b\" ,\t\"a\" ", "\"a\""));
    BOOST_TEST(d::etag_matches("W/\"a\"", "\"a\""));
    BOOST_TEST(d::etag_matches("*", "\"a\""));
    BOOST_TEST(!d::etag_matches("", "\"a\""));
    BOOST_TEST(!d::etag_matches("\"ab\"", "\"a\""));
    BOOST_TEST(!d::etag_matches("a", "\"a\""));
}

BOOST_AUTO_TEST_CASE(unknown_files_are_a_json_404) {
    auto const r = d::client_file_response("missing.js", "*", 11);
    BOOST_TEST(r.result_int() == 404u);
    BOOST_TEST(r[http::field::content_type] == "application/json");
    auto const body = boost::json::parse(r.body()).as_object();
    BOOST_TEST(body.at("error").at("code").as_string() == "NOT_FOUND");
}

BOOST_AUTO_TEST_SUITE_END()
