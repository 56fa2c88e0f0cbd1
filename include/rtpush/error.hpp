//
// rtpush: error codes
//
#ifndef RTPUSH_ERROR_HPP
#define RTPUSH_ERROR_HPP

#include <boost/system/error_code.hpp>
#include <string_view>
#include <type_traits>

namespace rtpush {

/// Errors reported by rtpush. The first group maps one to one onto the wire codes of the
/// protocol's `error` message (see docs/protocol.md); the second group is transport-level.
enum class error {
    // protocol (wire) errors
    auth_failed = 1,
    unauthorized,
    invalid_message,
    message_too_large,
    rate_limit_exceeded,
    subscription_failed,
    room_not_found,
    room_full,
    connection_limit,
    internal_error,
    // transport errors
    protocol_violation = 100, ///< a WebSocket frame broke RFC 6455 (close 1002)
    invalid_utf8,             ///< a text frame was not UTF-8 (close 1007)
    handshake_failed,         ///< the HTTP upgrade was refused or malformed
    queue_overflow,           ///< a slow consumer exceeded its outbound queue (close 1008)
    closed,                   ///< the peer closed the WebSocket
    timeout,                  ///< a handshake, close or heartbeat deadline passed
    bad_url,                  ///< a ws:// or wss:// URL could not be parsed
    // engine errors
    engine_unavailable = 200, ///< the cross-node engine (Redis) cannot take a publication now
    redis_error,              ///< Redis answered with an error reply
    // durable store errors
    store_failed = 300, ///< the data directory cannot be opened, read or written
    store_corrupt,      ///< the data directory's database is not a valid rtpush store
};

/// The category of rtpush errors; its name is "rtpush".
inline const boost::system::error_category& rtpush_category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept;

/// The protocol's upper-case code for an error, e.g. "INVALID_MESSAGE".
inline std::string_view wire_code(error e) noexcept;

/// The WebSocket close code that ends a connection for this error (1000 when none applies).
inline std::uint16_t close_code(error e) noexcept;

} // namespace rtpush

template <>
struct boost::system::is_error_code_enum<rtpush::error> : std::true_type {};

#include <rtpush/impl/error.hpp>

#endif
