//
// rtpush: small HTTP helpers (handshake key, query strings, token lists), free of I/O.
//
#ifndef RTPUSH_DETAIL_HTTP_UTIL_HPP
#define RTPUSH_DETAIL_HTTP_UTIL_HPP

#include <rtpush/detail/sha1.hpp>

#include <cctype>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2).
inline std::string websocket_accept_key(std::string_view key) {
    static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    sha1 h;
    h.update(key);
    h.update(guid);
    auto const digest = h.finish();
    // Standard base64 (with padding) of the 20-byte digest: 28 characters.
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve(28);
    for (std::size_t i = 0; i < digest.size(); i += 3) {
        std::uint32_t v = std::uint32_t(digest[i]) << 16;
        if (i + 1 < digest.size())
            v |= std::uint32_t(digest[i + 1]) << 8;
        if (i + 2 < digest.size())
            v |= digest[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += i + 1 < digest.size() ? alphabet[(v >> 6) & 63] : '=';
        out += i + 2 < digest.size() ? alphabet[v & 63] : '=';
    }
    return out;
}

/// A valid Sec-WebSocket-Key is the base64 of 16 bytes: 24 characters ending in "==".
inline bool valid_websocket_key(std::string_view key) noexcept {
    if (key.size() != 24 || key.substr(22) != "==")
        return false;
    for (char c : key.substr(0, 22))
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'))
            return false;
    return true;
}

inline bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) !=
            std::tolower(static_cast<unsigned char>(b[i])))
            return false;
    return true;
}

/// True when a comma-separated header value (e.g. Connection) contains `token`.
inline bool header_has_token(std::string_view value, std::string_view token) noexcept {
    while (!value.empty()) {
        auto const comma = value.find(',');
        std::string_view item = value.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (iequals(item, token))
            return true;
        if (comma == std::string_view::npos)
            break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

inline std::string percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%' && i + 2 < s.size() &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out.push_back(
                static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

/// An Origin as compared: lower case (scheme and host are case-insensitive), no trailing '/'.
inline std::string normalize_origin(std::string_view o) {
    while (!o.empty() && (o.back() == '/' || o.back() == ' '))
        o.remove_suffix(1);
    while (!o.empty() && o.front() == ' ')
        o.remove_prefix(1);
    std::string s(o);
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// Is `origin` one of `allowed` ("*" allows any)? An empty list allows any origin. A page's
/// origin is matched exactly: "https://app.example.com" does not allow
/// "https://app.example.com.evil.net" nor "http://app.example.com".
inline bool origin_allowed(std::string_view origin, const std::vector<std::string>& allowed) {
    if (allowed.empty())
        return true;
    std::string const o = normalize_origin(origin);
    for (auto const& a : allowed)
        if (a == "*" || normalize_origin(a) == o)
            return true;
    return false;
}

/// Request text (a path, an Origin) as it may be echoed into a JSON answer or a log line:
/// every byte outside printable ASCII becomes '?'. HTTP still admits obsolete bytes >= 0x80 in
/// targets and header values (Beast accepts them) and Boost.JSON writes strings unchanged, so
/// echoing them raw made answers that are not JSON (found by fuzz_http).
inline std::string printable(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E)
            c = '?';
    return out;
}

/// Splits "/path?a=1&b=x" into the path and its decoded query parameters.
inline std::string_view split_target(std::string_view target,
                                     std::map<std::string, std::string>& query) {
    auto const q = target.find('?');
    if (q == std::string_view::npos)
        return target;
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        auto const amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        auto const eq = pair.find('=');
        std::string key = percent_decode(pair.substr(0, eq));
        if (!key.empty())
            query[key] =
                eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos)
            break;
        rest.remove_prefix(amp + 1);
    }
    return target.substr(0, q);
}

} // namespace rtpush::detail

#endif
