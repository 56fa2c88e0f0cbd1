//
// rtpush: the client protocol (docs/protocol.md, "Client → server"), apart from any transport.
// A connection type (the WebSocket session; a future Socket.IO one) derives from
// client_protocol<Self>, holds a client_state, and provides the transport calls listed below;
// the messages' rules (auth, access, subscriptions and their recovery, publish, refresh,
// acknowledged delivery, organization limits) are written here once. Free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_CLIENT_PROTOCOL_HPP
#define RTPUSH_DETAIL_CLIENT_PROTOCOL_HPP

#include <rtpush/auth.hpp>
#include <rtpush/config.hpp>
#include <rtpush/detail/access.hpp>
#include <rtpush/detail/ack_tracker.hpp>
#include <rtpush/detail/broadcast_request.hpp>
#include <rtpush/detail/counters.hpp>
#include <rtpush/detail/history_query.hpp>
#include <rtpush/detail/protocol_context.hpp>
#include <rtpush/detail/rate_limit.hpp>
#include <rtpush/detail/seed_events.hpp>
#include <rtpush/detail/subscription_index.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/protocol.hpp>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rtpush::detail {

/// What the protocol knows of one client: who it is, what it subscribed to. Most connections
/// have one subscription and no token: the first subscription is inline, the rest each in a
/// block of its own (the index keeps pointers to them, so they never move), and what few use
/// is in `rare`, made on first use.
struct client_state {
    struct rare_state {
        std::string user;
        std::vector<std::string> channels; // the token's allowed channels; empty = any
        std::string counted_org;           // the org this connection counts against
        std::string counted_user;          // ... and the user (the token's sub)
        std::size_t auth_failures = 0;     // rejected tokens: guessing is bounded per connection
        std::int64_t token_exp = 0;        // the token's `exp` (seconds since the epoch); 0: none
        bool expiry_warned = false;        // token_expiring sent for this token
        std::chrono::steady_clock::time_point last_refresh{};
        // Acknowledged delivery: set by `hello`, a `clientId`, or the first delivery that
        // needs an ack.
        std::string ack_client_tag; // the client's own `clientId` (hello, authenticate)
        std::string ack_key;        // the key the connection is attached under in the tracker
    };
    using subscription_list = std::vector<std::unique_ptr<subscription>>;

    std::string org;
    subscription first_sub;
    std::unique_ptr<subscription_list> more_subs;
    std::unique_ptr<rare_state> rare;
    bool authenticated : 1 = false;  // a verified token gave user and org
    bool can_publish : 1 = false;    // ... and its publish claim
    bool first_sub_used : 1 = false; // first_sub is a subscription

    rare_state& rare_part() {
        if (!rare)
            rare = std::make_unique<rare_state>();
        return *rare;
    }
    const std::string& user() const noexcept {
        static const std::string none;
        return rare ? rare->user : none;
    }
    identity who() const {
        return identity{authenticated, org, rare ? rare->channels : std::vector<std::string>{}};
    }
    /// What /api/connections and presence show of the client, whatever its transport:
    /// user_id, organization_id, authenticated, subscriptions.
    void describe(boost::json::object& o) const {
        o["user_id"] = user();
        o["organization_id"] = org;
        o["authenticated"] = authenticated;
        boost::json::array subs;
        for_each_subscription([&](const subscription& s) { subs.emplace_back(s.key); });
        o["subscriptions"] = std::move(subs);
    }
    std::size_t subscription_count() const noexcept {
        return (first_sub_used ? 1 : 0) + (more_subs ? more_subs->size() : 0);
    }
    subscription* find(std::string_view key) noexcept {
        if (first_sub_used && first_sub.key == key)
            return &first_sub;
        if (more_subs)
            for (auto const& s : *more_subs)
                if (s->key == key)
                    return s.get();
        return nullptr;
    }
    template <class F>
    void for_each_subscription(F&& f) {
        if (first_sub_used)
            f(first_sub);
        if (more_subs)
            for (auto const& s : *more_subs)
                f(*s);
    }
    template <class F>
    void for_each_subscription(F&& f) const {
        if (first_sub_used)
            f(first_sub);
        if (more_subs)
            for (auto const& s : *more_subs)
                f(static_cast<const subscription&>(*s));
    }
};

/// The protocol's rules over a connection `Self`, which provides:
///   protocol_context& protocol_env();   client_state& client();
///   std::uint64_t id();                 std::string client_id();  std::string remote();
///   void send_json(std::string);        void send_error(rtpush::error, std::string_view,
///                                                       const boost::json::value& id);
///   void push(const frame_ptr&);        void close(std::uint16_t, std::string_view);
///   bool closing();                     std::size_t queued(), queued_bytes();
///   subscriber* as_subscriber();
///   poster(): a copyable handle whose post(f) runs f(c) later on the connection's thread
///   (for answers that wait on the hub or an engine, which may come from another thread
///   after the connection ended): c points to the connection that carries the client then,
///   a Self or, for a polling session upgraded meanwhile, the WebSocket session that took
///   it over (so f is generic); nullptr if there is none.
///   std::uint64_t hold_answer();        void send_answer(std::uint64_t, std::string);
template <class Self>
class client_protocol {
public:
    /// Handles one text message: rtpush's envelope (`type`), else a seed's JSON line
    /// (`{"event": ..., "data": ...}`, detail/seed_events.hpp), else an error answer.
    void handle_text(std::string_view text);
    /// Handles one message given as a JSON object with its `type` (a seed event's message)
    /// (docs/protocol.md, "Seed parity").
    void handle_object(const boost::json::object& o);
    /// Handles one parsed client message.
    void handle_message(client_message& m);
    /// Counts the connection against its organization once the org is known, and against
    /// its user once a token names one; over a limit it is told and closed (1008).
    void count_connection();
    /// Moves the connection's count in `counts` to `key` (empty: none), where `counted`
    /// remembers it; false when `key` is at `limit` (0: none).
    bool count_under(connection_counts& counts, std::string_view key,
                     std::string client_state::rare_state::*counted, std::size_t limit);
    /// Counts one more subscriber of room `key` against room_max_size; false when it is
    /// full. leave_room gives the place back.
    bool enter_room(const std::string& key);
    void leave_room(const std::string& key);
    /// Takes a verified token's identity (and its `exp`: a fresh token on the same
    /// connection extends it, subscriptions kept).
    void accept_claims(jwt_claims c);
    /// The token's lifetime on an open connection, called by the transport's periodic tick
    /// with the wall clock (`now`, seconds since the epoch): `token_expiring` once, within
    /// `token_expiry_warning` of `exp` + `jwt_leeway`, and close 1008 "token expired" at it.
    /// A connection without a token costs one test.
    void check_token_expiry(std::int64_t now);
    /// A frame of a publication that needs an ack is being sent: tell the tracker.
    void track_ack(const frame_ptr& f);
    /// Takes another connection's state (its subscriptions, identity and organization
    /// count) on the same thread, leaving it empty: a Socket.IO session upgraded from polling
    /// to WebSocket. This connection has no subscriptions of its own yet.
    void take_over(client_state& from);
    /// Undoes every registration (index, organization count, ack tracker): at the end.
    void leave();
    /// The name acks are tracked under: `client:<clientId>`, else `user:<org>/<user>`, else
    /// `conn:<connection id>` (docs/protocol.md, "Acknowledged delivery").
    std::string ack_key();

    void subscribe(client_message& m);
    void unsubscribe(client_message& m);
    void get(client_message& m);
    /// A page of past publications (docs/protocol.md, "History"), the same as GET /api/history.
    void history(client_message& m);
    /// Who is subscribed to the topic on this node, as GET /api/rooms/{room}/presence says.
    void presence(client_message& m);
    /// Tells the subscribers of `key`'s topic that this client joined or left it, when its
    /// channel is one of join_leave_channels.
    void announce(std::string_view key, std::string_view what);
    void publish(client_message& m);
    void refresh(client_message& m);
    void authenticate(client_message& m);
    void ack(client_message& m);
    void hello(client_message& m);

protected:
    ~client_protocol() = default;

private:
    Self& self() noexcept { return static_cast<Self&>(*this); }
    protocol_context& env() { return self().protocol_env(); }
    client_state& st() { return self().client(); }
    /// Access to `t`; refuses with an error naming the rule when not allowed.
    bool may_access(const topic& t, const boost::json::value& id);
    /// Tells the tracker who this connection is now; returns what the client has not acked.
    std::vector<frame_ptr> identify();
    /// A seed's JSON line; false when `text` is not one (docs/protocol.md, "Coming from
    /// Socket.IO").
    bool handle_seed_line(std::string_view text);
};

} // namespace rtpush::detail

#include <rtpush/impl/client_protocol.hpp>

#endif
