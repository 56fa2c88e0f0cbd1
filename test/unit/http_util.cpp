#include <rtpush/detail/http_util.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace d = rtpush::detail;

BOOST_AUTO_TEST_SUITE(http_util)

BOOST_AUTO_TEST_CASE(websocket_accept_key_rfc6455_example) {
    // RFC 6455 section 1.3 (checked independently with Python's hashlib + base64)
    BOOST_TEST(d::websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ==") ==
               "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // another known pair (from the Autobahn / MDN examples)
    BOOST_TEST(d::websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw==") ==
               "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    auto const k = d::websocket_accept_key("AQIDBAUGBwgJCgsMDQ4PEA==");
    BOOST_TEST(k.size() == 28u); // base64 of a 20-byte SHA-1
    BOOST_TEST(k.back() == '=');
    BOOST_TEST(k != d::websocket_accept_key("AQIDBAUGBwgJCgsMDQ4PEQ=="));
}

namespace {
std::string hex(const d::sha1::digest_type& h) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (auto b : h) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}
} // namespace

BOOST_AUTO_TEST_CASE(sha1_fips_vectors) {
    // FIPS 180-2 appendix A and the usual boundary cases (55, 56 and 64 bytes: the length
    // fits, just does not fit, and a whole block before the padding).
    BOOST_TEST(hex(d::sha1::hash("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    BOOST_TEST(hex(d::sha1::hash("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    BOOST_TEST(hex(d::sha1::hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
               "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    BOOST_TEST(hex(d::sha1::hash(std::string(55, 'a'))) ==
               "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    BOOST_TEST(hex(d::sha1::hash(std::string(64, 'a'))) ==
               "0098ba824b5c16427bd7a1122a5a442a25ec644d");
    d::sha1 s; // a million 'a', fed in uneven pieces
    std::string const piece(997, 'a');
    std::size_t left = 1000000;
    while (left) {
        auto const n = std::min(left, piece.size());
        s.update(std::string_view(piece).substr(0, n));
        left -= n;
    }
    BOOST_TEST(hex(s.finish()) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

BOOST_AUTO_TEST_CASE(valid_websocket_key) {
    BOOST_TEST(d::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
    BOOST_TEST(d::valid_websocket_key("AQIDBAUGBwgJCgsMDQ4P+/==")); // '+' and '/'
    BOOST_TEST(!d::valid_websocket_key(""));
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));   // 23 characters
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ===")); // 25 characters
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25jZQAA"));  // no padding
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25jZ==="));  // '=' inside
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25j-Q=="));  // '-' not base64
    BOOST_TEST(!d::valid_websocket_key("dGhlIHNhbXBsZSBub25j Q=="));
}

BOOST_AUTO_TEST_CASE(header_has_token) {
    BOOST_TEST(d::header_has_token("keep-alive, Upgrade", "upgrade"));
    BOOST_TEST(d::header_has_token("keep-alive, Upgrade", "Keep-Alive"));
    BOOST_TEST(d::header_has_token("Upgrade", "upgrade"));
    BOOST_TEST(d::header_has_token("keep-alive,Upgrade", "upgrade"));
    BOOST_TEST(d::header_has_token(" \tUpgrade\t ,close", "upgrade"));
    BOOST_TEST(d::header_has_token("a,,upgrade,", "upgrade"));
    BOOST_TEST(!d::header_has_token("keep-alive", "upgrade"));
    BOOST_TEST(!d::header_has_token("upgraded, keep-alive", "upgrade"));
    BOOST_TEST(!d::header_has_token("x-upgrade", "upgrade"));
    BOOST_TEST(!d::header_has_token("", "upgrade"));
    BOOST_TEST(!d::header_has_token("up grade", "upgrade"));
}

BOOST_AUTO_TEST_CASE(iequals) {
    BOOST_TEST(d::iequals("WebSocket", "websocket"));
    BOOST_TEST(d::iequals("", ""));
    BOOST_TEST(d::iequals("ABC-123", "abc-123"));
    BOOST_TEST(!d::iequals("websocket", "websockets"));
    BOOST_TEST(!d::iequals("abc", "abd"));
    BOOST_TEST(!d::iequals("a", ""));
}

BOOST_AUTO_TEST_CASE(split_target_without_query) {
    std::map<std::string, std::string> q;
    BOOST_TEST(d::split_target("/api/health", q) == "/api/health");
    BOOST_TEST(q.empty());
    BOOST_TEST(d::split_target("/", q) == "/");
    BOOST_TEST(d::split_target("/x?", q) == "/x");
    BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(split_target_with_decoding) {
    std::map<std::string, std::string> q;
    auto const path = d::split_target(
        "/ws?token=a%2Bb%3D%3D&org=Acme+Corp&empty=&flag&n%61me=v%c3%a9&bad=%zz%4&pct=100%25", q);
    BOOST_TEST(path == "/ws");
    BOOST_TEST(q.size() == 7u);
    BOOST_TEST(q["token"] == "a+b==");
    BOOST_TEST(q["org"] == "Acme Corp");
    BOOST_TEST(q.count("empty") == 1u);
    BOOST_TEST(q["empty"] == "");
    BOOST_TEST(q.count("flag") == 1u);
    BOOST_TEST(q["flag"] == "");
    BOOST_TEST(q["name"] == "v\xC3\xA9"); // decoded key, lower-case hex
    BOOST_TEST(q["bad"] == "%zz%4");      // malformed escapes stay literal
    BOOST_TEST(q["pct"] == "100%");
}

BOOST_AUTO_TEST_CASE(split_target_edge_cases) {
    std::map<std::string, std::string> q;
    d::split_target("/p?a=1&&=skip&a=2&b=x=y", q);
    BOOST_TEST(q.size() == 2u);
    BOOST_TEST(q["a"] == "2"); // the last value wins
    BOOST_TEST(q["b"] == "x=y");
    BOOST_TEST(q.count("") == 0u);
}

BOOST_AUTO_TEST_CASE(percent_decode) {
    BOOST_TEST(d::percent_decode("a%20b") == "a b");
    BOOST_TEST(d::percent_decode("a+b") == "a b");
    BOOST_TEST(d::percent_decode("%41%42%43") == "ABC");
    BOOST_TEST(d::percent_decode("%2") == "%2");
    BOOST_TEST(d::percent_decode("%") == "%");
    BOOST_TEST(d::percent_decode("%G1") == "%G1");
    BOOST_TEST(d::percent_decode("x%41") == "xA"); // escape at the very end
    BOOST_TEST(d::percent_decode("%00").size() == 1u);
}

BOOST_AUTO_TEST_CASE(origin_allow_list) {
    namespace d = rtpush::detail;
    std::vector<std::string> const list = {"https://app.example.com", "http://localhost:3000/"};
    BOOST_TEST(d::origin_allowed("https://app.example.com", list));
    BOOST_TEST(d::origin_allowed("HTTPS://App.Example.com/", list));
    BOOST_TEST(d::origin_allowed("http://localhost:3000", list));
    BOOST_TEST(!d::origin_allowed("http://app.example.com", list));
    BOOST_TEST(!d::origin_allowed("https://app.example.com.evil.net", list));
    BOOST_TEST(!d::origin_allowed("https://evil.app.example.com", list));
    BOOST_TEST(!d::origin_allowed("http://localhost:30001", list));
    BOOST_TEST(!d::origin_allowed("null", list));
    BOOST_TEST(!d::origin_allowed("", list));
    BOOST_TEST(d::origin_allowed("https://anything", {}));
    std::vector<std::string> const any = {"*"};
    BOOST_TEST(d::origin_allowed("https://anything", any));
}

// Found by fuzz_http: request bytes above ASCII echoed raw made JSON answers invalid.
BOOST_AUTO_TEST_CASE(printable) {
    BOOST_TEST(d::printable("/ws?x=1 ~") == "/ws?x=1 ~");
    BOOST_TEST(d::printable("/w\xff\xc3\xa9s\r\n\x7f") == "/w???s???");
    BOOST_TEST(d::printable("").empty());
}

BOOST_AUTO_TEST_SUITE_END()
