#ifndef RTPUSH_IMPL_ERROR_HPP
#define RTPUSH_IMPL_ERROR_HPP

namespace rtpush {
namespace detail {

class error_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "rtpush"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::auth_failed:
            return "authentication failed";
        case error::unauthorized:
            return "not authorized for this action";
        case error::invalid_message:
            return "invalid message";
        case error::message_too_large:
            return "message exceeds the size limit";
        case error::rate_limit_exceeded:
            return "too many messages";
        case error::subscription_failed:
            return "subscription failed";
        case error::room_not_found:
            return "room not found";
        case error::room_full:
            return "room is at capacity";
        case error::connection_limit:
            return "connection limit reached";
        case error::internal_error:
            return "internal server error";
        case error::protocol_violation:
            return "WebSocket protocol violation";
        case error::invalid_utf8:
            return "text frame is not valid UTF-8";
        case error::handshake_failed:
            return "WebSocket handshake failed";
        case error::queue_overflow:
            return "outbound queue overflow (slow consumer)";
        case error::closed:
            return "WebSocket closed";
        case error::timeout:
            return "timed out";
        case error::bad_url:
            return "malformed URL";
        case error::engine_unavailable:
            return "the engine (Redis) is unavailable";
        case error::redis_error:
            return "Redis answered with an error";
        case error::store_failed:
            return "the durable store cannot read or write its data directory";
        case error::store_corrupt:
            return "the durable store's database is corrupt or not an rtpush store";
        }
        return "unknown rtpush error";
    }
};

} // namespace detail

inline const boost::system::error_category& rtpush_category() noexcept {
    static const detail::error_category_impl cat;
    return cat;
}

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), rtpush_category()};
}

inline std::string_view wire_code(error e) noexcept {
    switch (e) {
    case error::auth_failed:
        return "AUTH_FAILED";
    case error::unauthorized:
        return "UNAUTHORIZED";
    case error::invalid_message:
        return "INVALID_MESSAGE";
    case error::message_too_large:
        return "MESSAGE_TOO_LARGE";
    case error::rate_limit_exceeded:
        return "RATE_LIMIT_EXCEEDED";
    case error::subscription_failed:
        return "SUBSCRIPTION_FAILED";
    case error::room_not_found:
        return "ROOM_NOT_FOUND";
    case error::room_full:
        return "ROOM_FULL";
    case error::connection_limit:
        return "CONNECTION_LIMIT";
    case error::protocol_violation:
    case error::invalid_utf8:
        return "INVALID_MESSAGE";
    case error::engine_unavailable:
        return "ENGINE_UNAVAILABLE";
    default:
        return "INTERNAL_ERROR";
    }
}

inline std::uint16_t close_code(error e) noexcept {
    switch (e) {
    case error::protocol_violation:
        return 1002;
    case error::invalid_utf8:
        return 1007;
    case error::message_too_large:
        return 1009;
    case error::queue_overflow:
    case error::unauthorized:
    case error::auth_failed:
    case error::rate_limit_exceeded:
        return 1008;
    case error::internal_error:
        return 1011;
    default:
        return 1000;
    }
}

} // namespace rtpush

#endif
