// libFuzzer target: JWT verification (auth.hpp) and the helpers around it.
//
// Input byte 0 picks what the rest is:
//  0: a token as a client sends it (header.payload.signature), verified as is;
//  1: "<header JSON>\n<payload JSON>", which this target signs with the secret, so that the
//     fuzzer reaches what only a correctly signed token reaches (alg, exp/nbf, claims);
//  2: an Authorization header value (Bearer / apikey) and base64url text.
// Properties: nothing but a token signed with the secret and with alg HS256 verifies; a
// verified token has a user and an organization and is within exp/nbf; base64url has one
// encoding per byte string (decode then encode gives the text back, and the other way).
#include "check.hpp"

#include <rtpush/auth.hpp>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view secret = "fuzz-secret";
// A fixed "now", so that a saved input replays the same way whenever it runs.
constexpr std::int64_t now_s = 1'800'000'000;
constexpr std::int64_t leeway_s = 30;

void verify_and_check(std::string_view token, bool signed_by_us) {
    rtpush::jwt_verifier const v{std::string(secret), std::chrono::seconds(leeway_s)};
    rtpush::jwt_claims c;
    std::string why;
    auto const now = std::chrono::system_clock::time_point(std::chrono::seconds(now_s));
    auto const ec = v.verify(token, c, why, now);
    if (ec) {
        FUZZ_CHECK(ec == rtpush::error::auth_failed);
        FUZZ_CHECK(!why.empty());
        return;
    }
    FUZZ_CHECK(why.empty());
    FUZZ_CHECK(!c.user.empty());
    FUZZ_CHECK(!c.org.empty());
    FUZZ_CHECK(!c.exp || now_s < *c.exp + leeway_s);
    FUZZ_CHECK(!c.nbf || now_s + leeway_s >= *c.nbf);
    for (auto const& ch : c.channels)
        FUZZ_CHECK(c.allows_channel(ch));
    // It verified, so it is exactly header.payload.HMAC(header.payload) with alg HS256.
    auto const dot2 = token.rfind('.');
    FUZZ_CHECK(dot2 != std::string_view::npos);
    FUZZ_CHECK(rtpush::detail::base64url_encode(rtpush::detail::hmac_sha256(
                   secret, token.substr(0, dot2))) == token.substr(dot2 + 1));
    std::string header;
    FUZZ_CHECK(rtpush::detail::base64url_decode(token.substr(0, token.find('.')), header));
    boost::system::error_code jec;
    auto const h = boost::json::parse(header, jec);
    FUZZ_CHECK(!jec && h.is_object());
    FUZZ_CHECK(h.as_object().at("alg") == "HS256");
    // A different secret never verifies the same token.
    rtpush::jwt_verifier const other{"another-secret", std::chrono::seconds(leeway_s)};
    FUZZ_CHECK(other.verify(token, c, why, now) == rtpush::error::auth_failed);
}

void check_base64url(std::string_view text) {
    std::string raw;
    if (rtpush::detail::base64url_decode(text, raw))
        FUZZ_CHECK(rtpush::detail::base64url_encode(raw) == text);
    std::string back;
    std::string const enc = rtpush::detail::base64url_encode(text);
    FUZZ_CHECK(enc.size() == (text.size() * 4 + 2) / 3);
    FUZZ_CHECK(rtpush::detail::base64url_decode(enc, back));
    FUZZ_CHECK(back == text);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    std::string_view const in(reinterpret_cast<const char*>(data + 1), size - 1);
    switch (data[0] % 3) {
    case 0:
        verify_and_check(in, false);
        break;
    case 1: {
        auto const nl = in.find('\n');
        std::string_view const header = in.substr(0, nl);
        std::string_view const payload =
            nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
        std::string token = rtpush::detail::base64url_encode(header) + "." +
                            rtpush::detail::base64url_encode(payload);
        token += "." + rtpush::detail::base64url_encode(rtpush::detail::hmac_sha256(secret, token));
        verify_and_check(token, true);
        break;
    }
    default: {
        for (auto const t : {rtpush::detail::bearer_token(in), rtpush::detail::apikey_token(in)}) {
            if (t.empty())
                continue;
            // a view into the header value, without the surrounding spaces
            FUZZ_CHECK(t.data() >= in.data() && t.data() + t.size() <= in.data() + in.size());
            FUZZ_CHECK(t.front() != ' ' && t.back() != ' ');
        }
        FUZZ_CHECK(rtpush::api_key_matches(in, in) == !in.empty());
        check_base64url(in);
        break;
    }
    }
    return 0;
}
