// JWT HS256 verification and API keys (auth.hpp), without sockets.
#include <rtpush/auth.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;
using rtpush::jwt_claims;
using rtpush::jwt_verifier;
namespace detail = rtpush::detail;

namespace {

constexpr std::int64_t t0 = 1800000000; // the tests' "now", in seconds since the epoch
const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(t0));

boost::json::object claims(std::int64_t exp = t0 + 3600) {
    boost::json::object c;
    c["sub"] = "alice";
    c["org"] = "acme";
    c["exp"] = exp;
    return c;
}

// A token with any header, signed with `secret` (or with `sig` as the signature).
std::string token_with(std::string_view header, const boost::json::object& c,
                       std::string_view secret) {
    std::string s = detail::base64url_encode(header) + "." +
                    detail::base64url_encode(boost::json::serialize(c));
    return s + "." + detail::base64url_encode(detail::hmac_sha256(secret, s));
}

bool fails(const std::string& token, std::string_view why_part, std::string_view secret = "s3cret",
           std::chrono::system_clock::time_point at = now) {
    jwt_claims c;
    std::string why;
    auto ec = jwt_verifier(std::string(secret)).verify(token, c, why, at);
    BOOST_TEST_MESSAGE(why);
    return ec == rtpush::error::auth_failed && why.find(why_part) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(auth)

BOOST_AUTO_TEST_CASE(base64url_round_trip_and_strictness) {
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00?>"}) {
        std::string out;
        BOOST_TEST(detail::base64url_decode(detail::base64url_encode(s), out));
        BOOST_TEST(out == s);
    }
    BOOST_TEST(detail::base64url_encode("\xfb\xff") == "-_8");
    std::string out;
    BOOST_TEST(!detail::base64url_decode("Zm9v=", out)); // no padding in JWTs
    BOOST_TEST(!detail::base64url_decode("Zm+v", out));  // '+' is standard base64
    BOOST_TEST(!detail::base64url_decode("Zm9 v", out));
    BOOST_TEST(!detail::base64url_decode("Z", out));  // 4n+1 characters encode nothing
    BOOST_TEST(!detail::base64url_decode("Zh", out)); // non-zero unused bits
    BOOST_TEST(detail::base64url_decode("Zg", out));
    BOOST_TEST(out == "f");
}

BOOST_AUTO_TEST_CASE(hmac_sha256_matches_rfc4231) {
    // RFC 4231 test case 2
    auto const mac = detail::hmac_sha256("Jefe", "what do ya want for nothing?");
    static const unsigned char expected[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                             0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                             0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                             0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    BOOST_TEST(mac == std::string(reinterpret_cast<const char*>(expected), 32));
}

BOOST_AUTO_TEST_CASE(accepts_a_valid_token_and_reads_claims) {
    auto c = claims();
    c["channels"] = boost::json::array{"kpi", "alerts"};
    c["permissions"] = boost::json::array{"read", "publish"};
    auto const token = rtpush::make_jwt_hs256(c, "s3cret");
    jwt_claims out;
    std::string why;
    BOOST_TEST(!jwt_verifier("s3cret").verify(token, out, why, now));
    BOOST_TEST(why.empty());
    BOOST_TEST(out.user == "alice");
    BOOST_TEST(out.org == "acme");
    BOOST_TEST(out.can_publish);
    BOOST_TEST(out.allows_channel("kpi"));
    BOOST_TEST(!out.allows_channel("backlog"));
    BOOST_TEST(*out.exp == t0 + 3600);
}

BOOST_AUTO_TEST_CASE(organization_id_publish_and_scope_claims) {
    boost::json::object c;
    c["sub"] = "bob";
    c["organization_id"] = "globex";
    c["scope"] = "read publish";
    jwt_claims out;
    std::string why;
    BOOST_TEST(!jwt_verifier("k").verify(rtpush::make_jwt_hs256(c, "k"), out, why, now));
    BOOST_TEST(out.org == "globex");
    BOOST_TEST(out.can_publish);
    BOOST_TEST(out.allows_channel("anything"));
    BOOST_TEST(!out.exp);
    c.erase("scope");
    c["publish"] = true;
    BOOST_TEST(!jwt_verifier("k").verify(rtpush::make_jwt_hs256(c, "k"), out, why, now));
    BOOST_TEST(out.can_publish);
    c.erase("publish");
    BOOST_TEST(!jwt_verifier("k").verify(rtpush::make_jwt_hs256(c, "k"), out, why, now));
    BOOST_TEST(!out.can_publish);
}

BOOST_AUTO_TEST_CASE(rejects_forged_signatures) {
    auto const token = rtpush::make_jwt_hs256(claims(), "other-secret");
    BOOST_TEST(fails(token, "signature"));
    // a payload swapped under a valid signature
    auto const good = rtpush::make_jwt_hs256(claims(), "s3cret");
    auto c = claims();
    c["org"] = "globex";
    auto const evil = rtpush::make_jwt_hs256(c, "x");
    auto const d1 = good.find('.'), d2 = good.rfind('.');
    auto const e1 = evil.find('.'), e2 = evil.rfind('.');
    BOOST_TEST(fails(good.substr(0, d1) + evil.substr(e1, e2 - e1) + good.substr(d2), "signature"));
    // truncated, empty or extended signatures
    BOOST_TEST(fails(good.substr(0, d2 + 1), "signature"));
    BOOST_TEST(fails(good.substr(0, good.size() - 2), "signature"));
    BOOST_TEST(fails(good + "AA", "signature"));
}

BOOST_AUTO_TEST_CASE(rejects_every_alg_but_hs256) {
    for (auto h :
         {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"alg":"hs256"})",
          R"({"alg":"HS512"})", R"({"alg":"RS256"})", R"({"typ":"JWT"})", R"({"alg":["HS256"]})"})
        BOOST_TEST(fails(token_with(h, claims(), "s3cret"), "algorithm"));
    // alg none with an empty signature: the classic bypass
    auto const unsigned_token = detail::base64url_encode(R"({"alg":"none"})") + "." +
                                detail::base64url_encode(boost::json::serialize(claims())) + ".";
    BOOST_TEST(fails(unsigned_token, "algorithm"));
    BOOST_TEST(fails(token_with(R"({"alg":"HS256","crit":["x"]})", claims(), "s3cret"), "crit"));
}

BOOST_AUTO_TEST_CASE(checks_exp_and_nbf_with_leeway) {
    // 30 s leeway by default
    BOOST_TEST(fails(rtpush::make_jwt_hs256(claims(t0 - 31), "s3cret"), "expired"));
    BOOST_TEST(fails(rtpush::make_jwt_hs256(claims(t0 - 30), "s3cret"), "expired"));
    jwt_claims out;
    std::string why;
    BOOST_TEST(!jwt_verifier("s3cret").verify(rtpush::make_jwt_hs256(claims(t0 - 29), "s3cret"),
                                              out, why, now));
    BOOST_TEST(!jwt_verifier("s3cret", 0s)
                    .verify(rtpush::make_jwt_hs256(claims(t0 + 1), "s3cret"), out, why, now));
    BOOST_TEST(jwt_verifier("s3cret", 0s)
                   .verify(rtpush::make_jwt_hs256(claims(t0), "s3cret"), out, why, now));
    auto c = claims();
    c["nbf"] = t0 + 60;
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "not valid yet"));
    c["nbf"] = t0 + 20;
    BOOST_TEST(!jwt_verifier("s3cret").verify(rtpush::make_jwt_hs256(c, "s3cret"), out, why, now));
    c["exp"] = "tomorrow";
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "exp"));
    c["exp"] = 1.8e9 + 100.5;
    BOOST_TEST(!jwt_verifier("s3cret").verify(rtpush::make_jwt_hs256(c, "s3cret"), out, why, now));
}

BOOST_AUTO_TEST_CASE(rejects_malformed_tokens_and_missing_claims) {
    BOOST_TEST(fails("", "missing"));
    BOOST_TEST(fails("abc", "malformed"));
    BOOST_TEST(fails("a.b", "malformed"));
    BOOST_TEST(fails("a.b.c.d", "malformed"));
    BOOST_TEST(fails("!!.b.c", "header"));
    BOOST_TEST(fails(detail::base64url_encode("[1]") + ".e30.x", "header"));
    BOOST_TEST(fails(std::string(9000, 'a'), "too large"));
    std::string deep(50, '[');
    BOOST_TEST(fails(token_with(R"({"alg":"HS256","x":)" + deep, claims(), "s3cret"), "header"));
    auto c = claims();
    c.erase("sub");
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "sub"));
    c = claims();
    c.erase("org");
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "org"));
    c = claims();
    c["channels"] = "kpi";
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "channels"));
    c["channels"] = boost::json::array{};
    BOOST_TEST(fails(rtpush::make_jwt_hs256(c, "s3cret"), "channels"));
    // a signed payload that is not JSON
    std::string s =
        detail::base64url_encode(R"({"alg":"HS256"})") + "." + detail::base64url_encode("not json");
    s += "." + detail::base64url_encode(detail::hmac_sha256("s3cret", s));
    BOOST_TEST(fails(s, "payload"));
    // no secret configured: nothing verifies
    BOOST_TEST(fails(rtpush::make_jwt_hs256(claims(), ""), "secret", ""));
}

BOOST_AUTO_TEST_CASE(authorization_headers_and_api_keys) {
    BOOST_TEST(detail::bearer_token("Bearer abc.def.ghi") == "abc.def.ghi");
    BOOST_TEST(detail::bearer_token("bearer   tok ") == "tok");
    BOOST_TEST(detail::bearer_token("Basic dXNlcg==").empty());
    BOOST_TEST(detail::bearer_token("Bearer").empty());
    BOOST_TEST(detail::apikey_token("apikey K1") == "K1");
    BOOST_TEST(detail::apikey_token("ApiKey  K1") == "K1");
    BOOST_TEST(detail::apikey_token("Bearer K1").empty());
    BOOST_TEST(rtpush::api_key_matches("K1", "K1"));
    BOOST_TEST(!rtpush::api_key_matches("K2", "K1"));
    BOOST_TEST(!rtpush::api_key_matches("K1x", "K1"));
    BOOST_TEST(!rtpush::api_key_matches("", "K1"));
    BOOST_TEST(!rtpush::api_key_matches("", "")); // no key configured never matches
}

BOOST_AUTO_TEST_SUITE_END()
