//
// rtpush: the hub, where publications meet subscriptions.
//
#ifndef RTPUSH_HUB_HPP
#define RTPUSH_HUB_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/audience.hpp>
#include <rtpush/detail/recovery.hpp>
#include <rtpush/detail/relay.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/engine.hpp>
#include <rtpush/history.hpp>
#include <rtpush/protocol.hpp>
#include <rtpush/topic.hpp>

#include <boost/json.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rtpush {

namespace detail {
class shard;
} // namespace detail

/// The hub keeps the latest value of every topic and fans each publication out to the io
/// threads (shards) that hold the subscribers.
///
/// Thread safety: every member function may be called from any thread.
class hub {
public:
    struct publish_result {
        boost::system::error_code ec;
        std::uint64_t seq = 0; ///< the topic's sequence number of this publication
        bool pending = false;  ///< taken by an engine: the seq comes later (see publish)
    };

    struct statistics {
        std::uint64_t total_messages = 0;
        std::map<std::string, std::uint64_t> messages_by_event;
        std::size_t topics = 0;
    };

    /// What subscribe_frames() did.
    struct subscribe_result {
        std::uint64_t counter = 0; ///< as initial_frames() returns
        detail::recovery_result recovery = detail::recovery_result::recovered;
        bool recovered() const noexcept { return recovery == detail::recovery_result::recovered; }
    };

    using refresh_handler = std::function<void(const topic&)>;
    /// Called with a channel's new subscription count when it changes between zero and
    /// non-zero (from the thread of the session that changed it).
    using demand_handler = std::function<void(std::size_t subscriptions)>;

    explicit hub(hub_config cfg = {});

    /// Serialises the publication once, frames it once, keeps it as the topic's latest value
    /// for its phase and hands one shared frame to every shard. Returns the topic's new `seq`,
    /// or error::invalid_message for a bad topic or data holding a non-finite number (which has
    /// no JSON form, see finite_numbers). Per topic, subscribers receive publications
    /// in `seq` order.
    ///
    /// With an engine attached the publication goes to the engine instead, which orders it
    /// across nodes and delivers it with apply(); `seq` is then 0 (not known yet), `pending`
    /// is set, and the engine calls `done` with the seq once it is ordered, or with the error
    /// that lost it (error::engine_unavailable in the result when it cannot take it at all).
    /// Without an engine `done` is never called: the result is final.
    publish_result publish(publication p, engine::publish_handler done = {});
    /// The same with `p.topic.key()` already built by the caller (a REST broadcast needs it
    /// for its ack id and its answer): the key is built once per publication.
    publish_result publish(publication p, engine::publish_handler done, std::string topic_key);

    /// Attaches a cross-node engine (before the server starts; nullptr: the memory engine).
    void set_engine(rtpush::engine* e) noexcept { engine_ = e; }
    rtpush::engine* get_engine() const noexcept { return engine_; }

    /// Engine side: delivers a publication whose `seq` the engine assigned, exactly as
    /// publish() would have with that seq. Ignored (returns false) when `seq` is not above the
    /// topic's head (a duplicate); a seq beyond head + 1 starts the history afresh (what lies
    /// between is lost, so recovering across it gives `history_lost`).
    bool apply(publication p, std::uint64_t seq, std::string timestamp);
    /// Engine side: sets the latest value of the publication's phase without delivering it
    /// (a state load), when `seq` is newer than the one held.
    void set_latest(publication p, std::uint64_t seq, std::string timestamp);
    /// The last seq of a topic this hub holds (0 when none).
    std::uint64_t head(std::string_view topic_key) const;
    /// Engine side: the cluster's history changed identity (e.g. Redis lost its data): forgets
    /// every topic and takes `epoch`.
    void reset(std::string epoch);
    /// Asks the engine to hold `channel`'s state before a subscription reads it; see
    /// engine::prepare. Always true without an engine.
    bool prepare(const std::string& channel, std::function<void()> ready) {
        return engine_ ? engine_->prepare(channel, std::move(ready)) : true;
    }

    /// Sends a message that is not kept (e.g. `refreshing`) to the subscribers of `t`.
    void notify(const topic& t, std::string json_text);

    /// Sends `p` to the connections of `to` (every one, an organization's, listed ids; on
    /// this node), whatever they subscribed to: an `update` without `seq` (it is not part of
    /// the topic's history), neither retained nor recorded. error::invalid_message for a bad
    /// topic or data (docs/protocol.md, "Targeting connections").
    boost::system::error_code deliver_to(std::shared_ptr<const detail::audience> to, publication p);

    /// notify() on every node: through the engine when it relays (detail/relay.hpp), else on
    /// this one. For `join`/`leave`, whose topic's subscribers may be anywhere.
    void announce(const topic& t, std::string json_text);

    /// Engine side: a message another node (or this one) relayed, for this node's
    /// connections. Ignores what it cannot read.
    void relayed(std::string_view text);
    /// Who handles the presence queries and answers relayed to this node (the server); set
    /// before the engine runs.
    void on_presence_relay(std::function<void(detail::relayed)> h) {
        presence_relay_ = std::move(h);
    }
    /// Calls `h` with each publication on `channel` that an engine delivers (apply), after
    /// its subscribers got it, on the engine's thread and in the cluster's order: what a node
    /// keeps of the cluster's shared state (the server's alert book) follows it. One watcher;
    /// set it before the engine runs.
    void on_applied(std::string channel,
                    std::function<void(const publication&, std::uint64_t seq)> h) {
        applied_channel_ = std::move(channel);
        applied_ = std::move(h);
    }

    /// read_history() without blocking where the engine reads elsewhere
    /// (engine::async_history): true when `done` will be called, from the engine's thread;
    /// false when read_history() is the way (nothing is called).
    bool async_history(const history_query& q, rtpush::engine::history_handler done) const;

    /// Appends the `initial` frames of every retained topic that a subscription to `sub`
    /// covers, each topic's `kpis` phase before its `complete` phase, and returns the hub's
    /// publication counter at that instant: a publication with a greater counter is not in
    /// the snapshot and will be delivered; one with a counter at or below it is.
    std::uint64_t initial_frames(const topic& sub, std::vector<detail::frame_ptr>& out);

    /// Like initial_frames(), but for a subscriber that was at `pos` (see detail::recovery):
    /// when the epoch matches and history holds everything after its offsets (within
    /// max_replay), appends the missed `update` frames of every covered topic in publication
    /// order instead and reports `recovered`; otherwise appends the `initial` frames and
    /// says why not. Snapshot or replay and the returned counter are taken in one locked
    /// step, so the seam with live deliveries neither loses nor repeats a publication.
    /// `max_frames` and `max_bytes` further bound the replay (a session passes what its
    /// outbound queue can take, so that a replay never overflows it).
    subscribe_result subscribe_frames(const topic& sub, const detail::recover_position& pos,
                                      std::vector<detail::frame_ptr>& out,
                                      std::size_t max_frames = SIZE_MAX,
                                      std::size_t max_bytes = SIZE_MAX);

    /// Past publications of `q.topic` and its narrower topics from the memory history
    /// (GET /api/history without a durable store); the cursor is the hub's publication
    /// counter, so a page continues where the previous one ended even as topics interleave.
    history_page history(const history_query& q) const;

    /// Past publications as GET /api/history and the WebSocket `history` message read them:
    /// from the engine when it keeps them (a durable store: all it keeps), else from the
    /// memory history. A store's read is one indexed range of at most a page's rows, short
    /// enough for an io thread. `ec` is set when the engine could not read.
    history_page read_history(const history_query& q, boost::system::error_code& ec) const;

    /// Publications of `t` held in its history (for tests and statistics).
    std::size_t history_size(const topic& t) const;

    /// The latest values that a subscription to `sub` would receive, as a JSON array of
    /// {topic, channel, scope, event, phase, seq, epoch, data, timestamp}.
    boost::json::array snapshot(const topic& sub) const;

    /// The random identifier of this hub's history (changes on restart; with an engine, the
    /// cluster's, see reset()).
    std::string epoch() const {
        std::lock_guard lock(mutex_);
        return epoch_;
    }

    /// Installs the function a client's `refresh` calls (from an io thread) for every channel
    /// without a handler of its own.
    void on_refresh(refresh_handler h);
    /// Installs the refresh handler of one channel (a data source's); an empty one removes it.
    void on_refresh(std::string channel, refresh_handler h);
    /// Calls the channel's refresh handler, else the catch-all one; false when there is none.
    bool request_refresh(const topic& t);

    /// Demand for `channel`: subscriptions to any scope of it, over every connection (the hub
    /// holds none itself). The shards' subscription indexes keep the count with
    /// add_demand/remove_demand; data sources read it to run only on demand.
    std::size_t demand(std::string_view channel) const;
    void add_demand(const std::string& channel);
    void remove_demand(const std::string& channel);
    /// Registers a watcher of `channel`'s demand (see demand_handler); returns its id.
    std::uint64_t on_demand(std::string channel, demand_handler h);
    void remove_demand_handler(std::uint64_t id);

    statistics stats() const;

    /// Adds a producer of extra /api/stats fields (e.g. the refresher's `sources`); its value
    /// appears under `key`. Called from whichever thread serves the request. Returns an id.
    std::uint64_t add_stats_provider(std::string key, std::function<boost::json::value()> f);
    void remove_stats_provider(std::uint64_t id);
    /// Every provider's current value, by key.
    boost::json::object extra_stats() const;

    /// Called by the server: the shards to fan out to.
    void attach(std::vector<detail::shard*> shards);

private:
    struct retained {
        publication pub;
        std::uint64_t seq = 0;
        std::string timestamp;
        detail::frame_ptr initial; // built on first use, then shared
    };
    struct history_entry {
        std::uint64_t seq = 0;
        std::uint64_t counter = 0; // hub-wide order, to merge topics in a replay
        std::chrono::steady_clock::time_point at;
        detail::frame_ptr update; // the frame live subscribers got, shared with the replay
    };
    struct topic_state {
        std::uint64_t seq = 0;
        std::array<std::unique_ptr<retained>, 3> phases; // kpis, (none), complete
        std::deque<history_entry> history;
        std::size_t history_bytes = 0;
    };

    static int phase_slot(std::string_view phase) noexcept {
        return phase == "kpis" ? 0 : phase == "complete" ? 2 : 1;
    }
    // mutex_ held for these
    void fan_out(const topic& t, detail::frame_ptr frame, std::uint64_t counter,
                 std::shared_ptr<const detail::audience> to = nullptr);
    /// A publication's frame (and, when it must be acked, its re-send form) from `text(bool
    /// redelivered)`, the message's JSON text.
    template <class Text>
    detail::frame_ptr delivery_frame(const publication& p, const std::string& key,
                                     std::uint64_t seq, Text text);
    // mutex_ not held
    void deliver_here(std::shared_ptr<const detail::audience> to, publication p,
                      const std::string& timestamp);
    void append_initial(const std::string& key, std::vector<detail::frame_ptr>& out);
    void prune(topic_state& st, std::chrono::steady_clock::time_point now);
    void commit(topic_state& st, publication p, std::uint64_t seq, std::string ts,
                const std::string& key);

    hub_config cfg_;
    mutable std::mutex mutex_;
    std::map<std::string, topic_state, std::less<>> topics_;
    std::map<std::string, std::uint64_t, std::less<>> by_event_;
    std::uint64_t counter_ = 0;
    std::uint64_t total_ = 0;
    std::vector<detail::shard*> shards_;
    refresh_handler refresh_;
    std::map<std::string, refresh_handler, std::less<>> channel_refresh_;
    std::string epoch_;
    rtpush::engine* engine_ = nullptr;
    std::function<void(detail::relayed)> presence_relay_; ///< see on_presence_relay
    std::string applied_channel_;                         ///< see on_applied
    std::function<void(const publication&, std::uint64_t)> applied_;

    struct demand_watch {
        std::uint64_t id;
        std::string channel;
        demand_handler handler;
    };
    // A separate lock: subscribe/unsubscribe must not wait behind a publication's fan-out.
    mutable std::mutex demand_mutex_;
    std::map<std::string, std::size_t, std::less<>> subscribers_;
    std::vector<demand_watch> demand_watches_;
    std::uint64_t next_watch_ = 0;
    void demand_changed(const std::string& channel, std::size_t n); // demand_mutex_ not held

    struct stats_provider {
        std::uint64_t id;
        std::string key;
        std::function<boost::json::value()> f;
    };
    std::vector<stats_provider> stats_providers_; // under demand_mutex_
};

} // namespace rtpush

#include <rtpush/impl/hub.hpp>

#endif
