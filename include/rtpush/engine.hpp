//
// rtpush: the engine seam. The hub orders, keeps and fans out publications itself (the
// embedded `memory` engine) unless an engine is attached: then publications go through the
// engine (e.g. Redis, rtpush/redis.hpp), which assigns their order across nodes and feeds them
// back with hub::apply(). docs/architecture.md, "Engines".
//
#ifndef RTPUSH_ENGINE_HPP
#define RTPUSH_ENGINE_HPP

#include <rtpush/alerts.hpp>
#include <rtpush/error.hpp>
#include <rtpush/history.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rtpush {

/// An alert as the nodes' shared book keeps it: its payload, and the seq of the last step
/// folded into it on the alert's topic (engine::share_alert).
struct shared_alert {
    std::uint64_t seq = 0;
    boost::json::object data;
};

/// Where a client stands with a broadcast that must be acknowledged.
enum class ack_state : int { waiting = 0, acked = 1, given_up = 2 };

/// A broadcast with `requires_ack` as the durable store keeps it, so that a restart still
/// re-sends it to the clients that have not acked (docs/operations.md, "Durable state").
struct ack_record {
    std::string id;
    std::string topic;           ///< its topic key
    std::int64_t created_ms = 0; ///< Unix milliseconds (its ttl counts from here)
    /// The message a re-send sends (`redelivered`), JSON text; empty until it was first sent.
    std::string message;
    int phase = 1;     ///< its phase slot (0 kpis, 1 none, 2 complete)
    bool bulk = false; ///< sent in the bulk lane (a medium or low priority)
    std::uint64_t seq = 0;
    /// Each client it was sent to (by its ack key) and where that client stands.
    std::vector<std::pair<std::string, ack_state>> targets;
};

/// What a hub needs from a cross-node engine. Every member may be called from any thread.
class engine {
public:
    virtual ~engine() = default;

    /// Called once with the seq the engine gave a publication, or with the error that lost it
    /// (error::engine_unavailable, error::timeout, error::redis_error), from the engine's
    /// thread.
    using publish_handler = std::function<void(boost::system::error_code, std::uint64_t seq)>;

    /// Takes a validated publication (event set) and its timestamp for cluster-wide ordering;
    /// the engine delivers it later, to every node including this one, with hub::apply(), and
    /// then calls `done` (when not empty). Returns an error (error::engine_unavailable) when it
    /// cannot take it now; `done` is not called then.
    virtual boost::system::error_code publish(const publication& p, const std::string& timestamp,
                                              publish_handler done) = 0;

    /// Whether this node holds the cluster's state (latest values, history) of `channel`. If
    /// not, the engine starts loading it and calls `ready` once when it does (from its own
    /// thread), and this returns false. A subscription waits for it so that its `initial` and
    /// recovery see what every node sees.
    virtual bool prepare(const std::string& channel, std::function<void()> ready) = 0;

    /// Whether the engine carries relay() messages to every node (the Redis engine does).
    virtual bool relays() const { return false; }
    /// Sends `text` (detail/relay.hpp) to every node, this one included, which hands it to
    /// hub::relayed(). error::engine_unavailable when it cannot take it now.
    virtual boost::system::error_code relay(std::string text) {
        (void)text;
        return error::engine_unavailable;
    }

    /// This node's name among the nodes relay() reaches; empty without relaying.
    virtual std::string node() const { return {}; }
    /// How many nodes relay() reaches now, this one included (those that announced
    /// themselves lately): a presence query waits for as many answers.
    virtual std::size_t live_nodes() const { return 1; }
    /// Whether the engine takes publications now (false: the Redis engine without Redis). An
    /// alert step is refused rather than taken by this node's book alone.
    virtual bool available() const { return true; }
    /// Whether this node does what must happen once per cluster (alert escalation, alert
    /// rules): true alone; under Redis, for the one node holding the lease.
    virtual bool leads() const { return true; }

    /// Fields for /health and /api/stats, e.g. {"engine":"redis","redis_up":true}.
    virtual boost::json::object status() const = 0;

    /// Reads past publications (GET /api/history) into `out` when the engine keeps them
    /// (the durable store does); false when it does not, and the hub's memory history
    /// answers instead. An error that lost the read is set in `ec`.
    virtual bool history(const history_query& q, history_page& out,
                         boost::system::error_code& ec) const {
        (void)q, (void)out, (void)ec;
        return false;
    }

    /// Called once with a page of past publications, or the error that lost the read.
    using history_handler = std::function<void(boost::system::error_code, history_page)>;
    /// Reads past publications without blocking when the engine keeps them where it must be
    /// asked over the network (the Redis engine: each topic's stream); `done` is called
    /// once, from the engine's thread. False when it does not (nothing is called): history()
    /// answers, or the hub's memory history.
    virtual bool async_history(const history_query& q, history_handler done) {
        (void)q, (void)done;
        return false;
    }

    /// Keeps an alert as it is after a lifecycle step, where the next run finds it (the
    /// durable store does; docs/operations.md, "Durable state"). Written in order with the
    /// publications around it. Nothing by default.
    virtual void save_alert(const alert& a) { (void)a; }
    /// Forgets an alert the book let go (it made room for a new one).
    virtual void forget_alert(const std::string& id) { (void)id; }
    /// The alerts an earlier run kept, for the server's alert book at start-up.
    virtual std::vector<alert> saved_alerts() const { return {}; }

    /// Nodes sharing one alert book (docs/operations.md, "Several nodes (Redis)"): keeps the
    /// cluster's state of an alert after a step, where a node that starts later finds it.
    /// `seq` is the step's seq on the alert's topic: a late write of an older step changes
    /// nothing. The node that leads calls it for each step its book takes.
    virtual void share_alert(const alert& a, std::uint64_t seq) { (void)a, (void)seq; }
    /// Forgets a shared alert (the leader's book let it go to make room).
    virtual void forget_shared_alert(const std::string& id) { (void)id; }
    /// Who takes the shared alerts (their payloads) each time the engine connects to the
    /// cluster, from the engine's thread; set before the engine runs.
    virtual void on_shared_alerts(std::function<void(std::vector<shared_alert>)> h) { (void)h; }

    /// Keeps a broadcast that must be acknowledged (its `targets` are not read: see
    /// save_ack_target), in order with the publications around it; nothing by default.
    virtual void save_ack(const ack_record& r) { (void)r; }
    /// Keeps where `client` stands with broadcast `id`.
    virtual void save_ack_target(const std::string& id, const std::string& client,
                                 ack_state state) {
        (void)id, (void)client, (void)state;
    }
    /// Forgets a broadcast and its targets (acked by all, expired, or evicted).
    virtual void forget_ack(const std::string& id) { (void)id; }
    /// The acknowledged-delivery state an earlier run kept, oldest broadcast first.
    virtual std::vector<ack_record> saved_acks() const { return {}; }
};

} // namespace rtpush

#endif
