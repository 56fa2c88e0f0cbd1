//
// rtpush: JSON Web Tokens (HS256) and API keys, verified without I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_AUTH_HPP
#define RTPUSH_AUTH_HPP

#include <rtpush/error.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush {

/// What a verified token says about its bearer.
struct jwt_claims {
    std::string user;                  ///< `sub`
    std::string org;                   ///< `org`, or seed 001's `organization_id`
    std::vector<std::string> channels; ///< `channels`: the only channels allowed; empty = any
    bool can_publish = false;        ///< `publish: true`, or "publish" in `permissions` or `scope`
    std::optional<std::int64_t> exp; ///< seconds since the epoch, when the token has one
    std::optional<std::int64_t> nbf;

    /// May the bearer use `channel` (the `channels` claim)?
    bool allows_channel(std::string_view channel) const;
};

/// Verifies HS256 tokens with one shared secret. Every other `alg` is refused (including
/// `none`, and RS256 tokens that would be checked against the secret as an HMAC key), the
/// signature is compared in constant time, `exp` and `nbf` are checked with `leeway`.
/// Stateless and thread-safe.
class jwt_verifier {
public:
    static constexpr std::size_t max_token_size = 8192; ///< bounds the work of a bad token

    explicit jwt_verifier(std::string secret,
                          std::chrono::seconds leeway = std::chrono::seconds(30));

    /// On success returns an empty error code and fills `out`; otherwise error::auth_failed,
    /// and `why` says what was wrong (safe to show the client: it holds no secret).
    boost::system::error_code
    verify(std::string_view token, jwt_claims& out, std::string& why,
           std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) const;

private:
    std::string secret_;
    std::chrono::seconds leeway_;
};

/// Signs `claims` as an HS256 token (rtctl token, tests).
inline std::string make_jwt_hs256(const boost::json::object& claims, std::string_view secret);

/// Compares a presented API key with the configured one in time independent of where they
/// differ (both are hashed first, so the length does not leak either).
inline bool api_key_matches(std::string_view presented, std::string_view expected);

namespace detail {
/// RFC 4648 section 5, without padding (RFC 7515). Decoding refuses padding, whitespace and
/// any character outside the alphabet.
inline std::string base64url_encode(std::string_view in);
inline bool base64url_decode(std::string_view in, std::string& out);
/// HMAC-SHA256 through OpenSSL: 32 raw bytes.
inline std::string hmac_sha256(std::string_view key, std::string_view data);
/// The token of an `Authorization: Bearer <token>` header, or empty.
inline std::string_view bearer_token(std::string_view authorization);
/// The key of `Authorization: apikey <key>`, or empty.
inline std::string_view apikey_token(std::string_view authorization);
} // namespace detail

} // namespace rtpush

#include <rtpush/impl/auth.hpp>

#endif
