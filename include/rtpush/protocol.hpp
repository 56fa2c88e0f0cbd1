//
// rtpush: protocol v1 messages (docs/protocol.md), parsing and serialisation, free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_PROTOCOL_HPP
#define RTPUSH_PROTOCOL_HPP

#include <rtpush/detail/recovery.hpp>
#include <rtpush/error.hpp>
#include <rtpush/topic.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rtpush {

/// Client-to-server message types.
enum class client_message_type {
    subscribe,
    unsubscribe,
    refresh,
    ping,
    get,
    publish,
    authenticate,
    ack,     ///< acknowledges a publication that required it (`id` = its `ackId`)
    hello,   ///< names the client across connections (`clientId`), for acknowledged delivery
    history, ///< a page of past publications (docs/protocol.md, "History")
    presence ///< who is subscribed to a topic on this node
};

/// Delivery priority of a publication (seed 001's levels).
enum class priority { low, medium, high, urgent };

inline std::string_view to_string(priority p) noexcept;
inline bool parse_priority(std::string_view s, priority& out) noexcept;

/// A parsed client message. Only the fields its type uses are set.
struct client_message {
    client_message_type type = client_message_type::ping;
    boost::json::value id;   ///< correlation id echoed in the answer (string or number), or null
    rtpush::topic topic;     ///< subscribe, unsubscribe, refresh, get, publish, history, presence
    std::string event;       ///< publish: event name (default "<channel>:update")
    std::string phase;       ///< publish: "kpis", "complete" or empty
    boost::json::value data; ///< publish: payload; authenticate: credentials; history: the message
    std::optional<detail::recover_position> recover; ///< subscribe: where the client was
    bool requires_ack = false; ///< publish: every receiver must ack (seed 001's requires_ack)
    std::string client_id;     ///< hello, authenticate: the client's own stable name
};

/// A client-chosen `clientId`: 1-128 characters of [A-Za-z0-9_.@:-].
inline bool valid_client_id(std::string_view s) noexcept;

/// Bounds applied while parsing untrusted input.
struct parse_limits {
    std::size_t max_size = 1024 * 1024; ///< bytes of JSON text (seed 001: 1 MB)
    std::size_t max_depth = 32;         ///< nesting depth of objects and arrays
};

/// Parses one text frame. On failure `ec` is set (error::invalid_message or
/// error::message_too_large), `detail` says what was wrong, and the returned message still
/// carries the `id` when one could be read, so the error answer can be correlated.
inline client_message parse_client_message(std::string_view text, const parse_limits& limits,
                                           boost::system::error_code& ec, std::string& detail);

/// True when every number in `v` is finite. Boost.JSON reads an out-of-range number such as
/// 1e400 as infinity and writes it back as `Infinity`, which is not JSON: a publication holding
/// one would break every subscriber's JSON.parse. So the parser refuses such input and the
/// hub refuses such data (found by fuzz_protocol).
inline bool finite_numbers(const boost::json::value& v);

/// ISO 8601 UTC with milliseconds, e.g. "2026-11-22T01:02:03.456Z".
inline std::string iso8601(std::chrono::system_clock::time_point tp);
inline std::string iso8601_now() {
    return iso8601(std::chrono::system_clock::now());
}

/// The JSON form of a scope: only the levels that are set.
inline boost::json::object scope_to_json(const scope& s);

/// A publication as it travels from a publisher through the hub to subscribers.
struct publication {
    rtpush::topic topic;
    std::string event; ///< e.g. "kpi:update"; empty gives "<channel>:update"
    std::string phase; ///< "kpis", "complete" or empty
    rtpush::priority priority = rtpush::priority::medium;
    boost::json::value data;
    /// Set when every receiver must ack it: the `ackId` its `update` carries (the hub does not
    /// track acks; the server does, see detail::ack_tracker).
    std::string ack_id;
};

/// Server-to-client messages. Each returns the serialised JSON text of one message.
namespace message {
inline std::string connected(std::string_view client_id, std::string_view server,
                             std::chrono::milliseconds heartbeat);
/// `recovered` is set when the subscribe asked for recovery; `reason` says why it failed.
inline std::string subscribed(const topic& t, const boost::json::value& id,
                              std::optional<bool> recovered = std::nullopt,
                              std::string_view epoch = {}, std::string_view reason = {});
inline std::string unsubscribed(const topic& t, const boost::json::value& id);
inline std::string pong(const boost::json::value& id);
inline std::string heartbeat(std::size_t clients);
inline std::string error(rtpush::error code, std::string_view message,
                         const boost::json::value& id);
inline std::string rate_limit(double retry_after_seconds, const boost::json::value& id);
inline std::string refreshing(const topic& t);
/// `ack_id`: the `ackId` every receiver must ack (a publish with `requires_ack`).
inline std::string published(const topic& t, std::uint64_t seq, const boost::json::value& id,
                             std::string_view ack_id = {});
/// A publication sent to connections rather than to a topic's subscribers (hub::deliver_to):
/// an `update` like a topic's, without `seq`, `offset` and `epoch`, since it is not in the
/// topic's history; `redelivered` marks a re-send of one that must be acked.
inline std::string targeted(const rtpush::publication& p, std::string_view timestamp,
                            std::string_view topic_key, bool redelivered = false);
inline std::string authenticated(std::string_view user, std::string_view org,
                                 const boost::json::value& id);
/// `type` is "initial" or "update". `offset` equals `seq` (the position in the topic's stream).
/// An `update` of a publication with an ack id carries `ackId` (and `redelivered: true` when
/// it is a re-send); an `initial` never does (it was not sent to be acked).
inline std::string publication(std::string_view type, const rtpush::publication& p,
                               std::uint64_t seq, std::string_view epoch,
                               std::string_view timestamp, bool redelivered = false);
/// The same with the topic's key already built (the hub builds it once per publication).
inline std::string publication(std::string_view type, const rtpush::publication& p,
                               std::uint64_t seq, std::string_view epoch,
                               std::string_view timestamp, bool redelivered,
                               std::string_view topic_key);
/// The answer to `presence`: the topic's subscribers on this node.
inline std::string presence(const topic& t, boost::json::array members,
                            const boost::json::value& id);
/// `join` or `leave` of topic `t` by a client (its id, user and organization).
inline std::string membership(std::string_view type, const topic& t, std::string_view client_id,
                              std::string_view user, std::string_view org);
/// The connection's token ends in `expires_in` seconds (`expires_at`: its `exp`).
inline std::string token_expiring(std::int64_t expires_at, std::int64_t expires_in);
/// The answer to `hello`: the client id and how many acks it still owes.
inline std::string hello(std::string_view client_id, std::size_t pending,
                         const boost::json::value& id);
} // namespace message

} // namespace rtpush

#include <rtpush/impl/protocol.hpp>

#endif
