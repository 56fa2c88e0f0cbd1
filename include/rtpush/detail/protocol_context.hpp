//
// rtpush: what the client protocol of every connection of one io thread shares.
//
#ifndef RTPUSH_DETAIL_PROTOCOL_CONTEXT_HPP
#define RTPUSH_DETAIL_PROTOCOL_CONTEXT_HPP

#include <rtpush/detail/ack_tracker.hpp>
#include <rtpush/detail/counters.hpp>
#include <rtpush/detail/rate_limit.hpp>
#include <rtpush/detail/subscription_index.hpp>

#include <boost/json/array.hpp>

#include <cstddef>
#include <functional>
#include <string>

namespace rtpush {
class hub;
struct server_config;
} // namespace rtpush

namespace rtpush::detail {

class socketio_session_store;

/// Who is subscribed to a room across every io thread: the server answers a connection's
/// `presence` request through it.
class presence_directory {
public:
    /// The members of room `key` ({client_id, user_id, organization_id, authenticated,
    /// transport, connected_at}), gathered from every io thread; `done` is called on io thread
    /// `shard` (the caller's), unless the server stops first.
    virtual void async_members(std::size_t shard, std::string key,
                               std::function<void(boost::json::array)> done) = 0;

protected:
    ~presence_directory() = default;
};

/// The environment of a connection's protocol (detail/client_protocol.hpp): the hub, the
/// configuration, and the io thread's index, counters and shared registries.
struct protocol_context {
    rtpush::hub& hub;
    const server_config& cfg;
    subscription_index& index;
    shard_counters& counters;
    ack_registry* acks = nullptr;
    connection_quotas* quotas = nullptr;
    std::size_t shard = 0; ///< the thread's number (ack re-sends are per thread)
    /// Socket.IO sessions kept for connection state recovery (server-wide); null: none.
    socketio_session_store* sio_sessions = nullptr;
    /// The server's room listing, for `presence`; null: the request is refused.
    presence_directory* presence = nullptr;
};

} // namespace rtpush::detail

#endif
