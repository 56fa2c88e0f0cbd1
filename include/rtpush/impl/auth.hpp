#ifndef RTPUSH_IMPL_AUTH_HPP
#define RTPUSH_IMPL_AUTH_HPP

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>

namespace rtpush {
namespace detail {

inline std::string base64url_encode(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto byte = [&](std::size_t k) {
        return static_cast<unsigned char>(in[k]);
    };
    for (; i + 3 <= in.size(); i += 3) {
        std::uint32_t const n = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (in.size() - i == 1) {
        std::uint32_t const n = byte(i) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
    } else if (in.size() - i == 2) {
        std::uint32_t const n = (byte(i) << 16) | (byte(i + 1) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
    }
    return out;
}

inline bool base64url_decode(std::string_view in, std::string& out) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z')
            return c - 'A';
        if (c >= 'a' && c <= 'z')
            return c - 'a' + 26;
        if (c >= '0' && c <= '9')
            return c - '0' + 52;
        if (c == '-')
            return 62;
        if (c == '_')
            return 63;
        return -1;
    };
    out.clear();
    if (in.size() % 4 == 1)
        return false; // no byte count encodes to 4n+1 characters
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in) {
        int const v = value(c);
        if (v < 0)
            return false;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    // Leftover bits must be zero: one token has one encoding, so a signature cannot be
    // "changed" into an equal one by flipping unused bits.
    return (acc & ((1u << bits) - 1)) == 0;
}

inline std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    // An empty key is passed as a valid pointer: OpenSSL treats a null key as "reuse".
    static const unsigned char empty = 0;
    auto const* k = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
    if (!HMAC(EVP_sha256(), k, static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len))
        return {};
    return std::string(reinterpret_cast<const char*>(md), len);
}

namespace detail {
// The credentials after an Authorization scheme ("bearer ", "apikey "): the scheme is
// case-insensitive (RFC 7235) and one or more spaces follow it.
inline std::string_view scheme_credentials(std::string_view authorization,
                                           std::string_view scheme) {
    if (authorization.size() <= scheme.size())
        return {};
    for (std::size_t i = 0; i < scheme.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i])
            return {};
    auto t = authorization.substr(scheme.size());
    while (!t.empty() && t.front() == ' ')
        t.remove_prefix(1);
    while (!t.empty() && t.back() == ' ')
        t.remove_suffix(1);
    return t;
}
} // namespace detail

inline std::string_view bearer_token(std::string_view authorization) {
    return detail::scheme_credentials(authorization, "bearer ");
}

inline std::string_view apikey_token(std::string_view authorization) {
    return detail::scheme_credentials(authorization, "apikey ");
}

// A NumericDate (RFC 7519 2): a JSON number of seconds; fractions are truncated.
inline bool numeric_date(const boost::json::value& v, std::int64_t& out) {
    if (v.is_int64()) {
        out = v.get_int64();
        return true;
    }
    if (v.is_uint64()) {
        if (v.get_uint64() > static_cast<std::uint64_t>(INT64_MAX))
            return false;
        out = static_cast<std::int64_t>(v.get_uint64());
        return true;
    }
    if (v.is_double() && std::isfinite(v.get_double()) && std::fabs(v.get_double()) < 9.0e18) {
        out = static_cast<std::int64_t>(v.get_double());
        return true;
    }
    return false;
}

inline bool parse_json_object(std::string_view text, boost::json::object& out) {
    boost::json::parse_options opt;
    opt.max_depth = 8; // claims are flat; a deep token is hostile
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, {}, opt);
    if (ec || !v.is_object())
        return false;
    out = std::move(v.get_object());
    return true;
}

} // namespace detail

inline bool jwt_claims::allows_channel(std::string_view channel) const {
    return channels.empty() ||
           std::find(channels.begin(), channels.end(), channel) != channels.end();
}

inline jwt_verifier::jwt_verifier(std::string secret, std::chrono::seconds leeway)
    : secret_(std::move(secret))
    , leeway_(leeway) {}

inline boost::system::error_code
jwt_verifier::verify(std::string_view token, jwt_claims& out, std::string& why,
                     std::chrono::system_clock::time_point now) const {
    boost::system::error_code const failed = error::auth_failed;
    out = {};
    if (secret_.empty()) {
        why = "no token secret is configured";
        return failed;
    }
    if (token.empty()) {
        why = "token missing";
        return failed;
    }
    if (token.size() > max_token_size) {
        why = "token too large";
        return failed;
    }
    auto const dot1 = token.find('.');
    auto const dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
        why = "malformed token (a JWT is header.payload.signature)";
        return failed;
    }
    std::string header_text, payload_text, signature;
    boost::json::object header;
    if (!detail::base64url_decode(token.substr(0, dot1), header_text) ||
        !detail::parse_json_object(header_text, header)) {
        why = "malformed token header";
        return failed;
    }
    // Only HS256: `none` would skip the signature, and an asymmetric alg checked against our
    // secret is the classic key-confusion attack.
    auto const* alg = header.if_contains("alg");
    if (!alg || !alg->is_string() || alg->get_string() != "HS256") {
        why = "unsupported token algorithm (only HS256 is accepted)";
        return failed;
    }
    if (header.contains("crit")) {
        why = "unsupported critical token header";
        return failed;
    }
    if (!detail::base64url_decode(token.substr(dot2 + 1), signature) || signature.size() != 32) {
        why = "malformed token signature";
        return failed;
    }
    std::string const expected = detail::hmac_sha256(secret_, token.substr(0, dot2));
    if (expected.size() != 32 || CRYPTO_memcmp(expected.data(), signature.data(), 32) != 0) {
        why = "invalid token signature";
        return failed;
    }
    // The payload is parsed only once the signature proved it is ours.
    boost::json::object claims;
    if (!detail::base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1), payload_text) ||
        !detail::parse_json_object(payload_text, claims)) {
        why = "malformed token payload";
        return failed;
    }
    auto const secs =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    auto const leeway = leeway_.count();
    if (auto const* e = claims.if_contains("exp")) {
        std::int64_t v = 0;
        if (!detail::numeric_date(*e, v)) {
            why = "malformed exp claim";
            return failed;
        }
        if (secs >= v + leeway) { // exp is the first second the token is no longer valid
            why = "token expired";
            return failed;
        }
        out.exp = v;
    }
    if (auto const* n = claims.if_contains("nbf")) {
        std::int64_t v = 0;
        if (!detail::numeric_date(*n, v)) {
            why = "malformed nbf claim";
            return failed;
        }
        if (secs + leeway < v) {
            why = "token not valid yet";
            return failed;
        }
        out.nbf = v;
    }
    auto str = [&](std::string_view k) -> std::string {
        auto const* v = claims.if_contains(k);
        return v && v->is_string() ? std::string(v->get_string()) : std::string{};
    };
    out.user = str("sub");
    out.org = str("org");
    if (out.org.empty())
        out.org = str("organization_id");
    if (out.user.empty()) {
        why = "token has no sub claim";
        return failed;
    }
    if (out.org.empty()) {
        why = "token has no org claim";
        return failed;
    }
    if (auto const* c = claims.if_contains("channels"); c && !c->is_null()) {
        if (!c->is_array()) {
            why = "channels claim must be an array of strings";
            return failed;
        }
        for (auto const& x : c->get_array()) {
            if (!x.is_string()) {
                why = "channels claim must be an array of strings";
                return failed;
            }
            out.channels.emplace_back(x.get_string());
        }
        if (out.channels.empty()) {
            // An empty list would read as "any channel": refuse rather than widen.
            why = "channels claim is empty";
            return failed;
        }
    }
    if (auto const* p = claims.if_contains("publish"); p && p->is_bool())
        out.can_publish = p->get_bool();
    if (auto const* p = claims.if_contains("permissions"); p && p->is_array())
        for (auto const& x : p->get_array())
            if (x.is_string() && x.get_string() == "publish")
                out.can_publish = true;
    if (auto const* s = claims.if_contains("scope"); s && s->is_string()) {
        // OAuth's space-separated scope list
        std::string_view rest = s->get_string();
        while (!rest.empty()) {
            auto const sp = rest.find(' ');
            if (rest.substr(0, sp) == "publish")
                out.can_publish = true;
            rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
        }
    }
    why.clear();
    return {};
}

inline std::string make_jwt_hs256(const boost::json::object& claims, std::string_view secret) {
    std::string const header = detail::base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
    std::string signing = header + "." + detail::base64url_encode(boost::json::serialize(claims));
    std::string const sig = detail::base64url_encode(detail::hmac_sha256(secret, signing));
    return signing + "." + sig;
}

inline bool api_key_matches(std::string_view presented, std::string_view expected) {
    if (expected.empty())
        return false;
    auto const a = detail::hmac_sha256("rtpush-api-key", presented);
    auto const b = detail::hmac_sha256("rtpush-api-key", expected);
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace rtpush

#endif
