//
// rtpush: the Redis engine, for N nodes behind a load balancer (docs/architecture.md,
// "Engines"; docs/operations.md, "Redis"). OPTIONAL: include it and link hiredis (CMake target
// rtpush::redis); users of the embedded memory engine need neither.
//
#ifndef RTPUSH_REDIS_HPP
#define RTPUSH_REDIS_HPP

#include <rtpush/detail/backoff.hpp>
#include <rtpush/detail/redis_proto.hpp>
#include <rtpush/detail/redis_slots.hpp>
#include <rtpush/detail/redis_topology.hpp>
#include <rtpush/detail/stream_history.hpp>
#include <rtpush/engine.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/log.hpp>
#include <rtpush/tls.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace rtpush {

/// A connection to Redis on Asio coroutines over a TCP socket, or TLS for rediss:// URLs;
/// hiredis only formats commands and parses replies. Commands are pipelined: any number of exec()
/// calls may wait at once, their replies come back in order. Replies nobody waits for (pub/sub
/// pushes) are taken with next_push().
///
/// Thread safety: none; every member is called on the connection's executor, which must be
/// a single-threaded one (an io_context run by one thread, or a strand).
class redis_connection {
public:
    using reply = detail::redis_reply;

    /// `tls` is the client context for a rediss:// URL (required then, ignored otherwise); it
    /// must outlive the connection. `verify` checks the server's name against the URL's host.
    redis_connection(boost::asio::any_io_executor ex, detail::redis_url url,
                     std::chrono::milliseconds connect_timeout = std::chrono::seconds(3),
                     std::chrono::milliseconds command_timeout = std::chrono::seconds(5),
                     boost::asio::ssl::context* tls = nullptr, bool verify = true);

    /// Resolves, connects (with the TLS handshake for rediss://), and sends AUTH and SELECT as
    /// the URL says. Throws boost::system::system_error (error::timeout, error::redis_error
    /// for a refused AUTH, an SSL error for a refused certificate).
    boost::asio::awaitable<void> async_connect();

    /// Reads and writes until the connection fails or is closed (then throws or returns).
    /// Must run while exec() and next_push() are used.
    boost::asio::awaitable<void> async_run();

    /// Sends a command and waits for its reply (an error reply is returned, not thrown).
    /// Throws when the connection fails first, or error::timeout after command_timeout (and
    /// the connection is closed: a silent Redis is a lost one).
    boost::asio::awaitable<reply> async_exec(std::vector<std::string> args);

    /// Sends a command whose reply goes to `done` (called on the executor; with an error
    /// code and an empty reply when the connection fails first).
    void send(std::vector<std::string> args,
              std::function<void(boost::system::error_code, reply)> done);
    /// Sends a command whose replies are pushes (SUBSCRIBE, UNSUBSCRIBE).
    void send_push(std::vector<std::string> args);

    /// The next reply that no command waits for (pub/sub messages and confirmations).
    boost::asio::awaitable<reply> async_next_push();

    /// Closes the socket; pending commands fail with operation_aborted.
    void close();
    bool is_open() const noexcept { return open_; }

private:
    struct pending {
        std::function<void(boost::system::error_code, reply)> done;
        std::chrono::steady_clock::time_point deadline;
    };
    boost::asio::awaitable<void> read_loop();
    boost::asio::awaitable<void> write_loop();
    boost::asio::awaitable<void> watchdog();
    void fail_all(boost::system::error_code ec);
    void wake(boost::asio::steady_timer& t) { t.cancel(); }
    // Calls f with the stream the bytes go through: the TLS stream or the socket.
    template <class F>
    auto with_stream(F&& f) {
        return tls_ ? f(*tls_) : f(socket_);
    }

    boost::asio::any_io_executor ex_;
    detail::redis_endpoints endpoints_;
    detail::redis_url url_; // endpoints_.url, or the master a Sentinel named
    std::chrono::milliseconds connect_timeout_, command_timeout_;
    boost::asio::ip::tcp::socket socket_;
    boost::asio::ssl::context* tls_context_;
    bool verify_;
    std::optional<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
    detail::redis_parser parser_;
    std::string out_;
    std::deque<pending> pending_;
    std::deque<reply> pushes_;
    boost::asio::steady_timer write_signal_, push_signal_;
    bool open_ = false;
};

/// Settings of the Redis engine. rtd maps --redis-url etc. onto it.
struct redis_config {
    /// redis://[[user]:password@]host[:port][/db], or rediss:// for TLS
    std::string url = "redis://127.0.0.1:6379/0";
    /// For rediss://: the CA that signed Redis's certificate (empty: the system's), whether to
    /// verify it (and its name against the URL's host), and a client certificate for a Redis
    /// with `tls-auth-clients yes` (its default).
    tls_client_options tls;
    /// Sentinel (docs/operations.md, "Redis Sentinel"): the Sentinels ("host:port"), asked in
    /// turn for the master named `master_name`; `url` then gives only the credentials, the db
    /// and TLS. The URL redis[s]+sentinel://host:port,.../MASTER[/db] says the same in one line.
    std::vector<std::string> sentinels;
    std::string master_name;
    std::string sentinel_password; ///< AUTH of the Sentinels (their requirepass); empty: none
    /// Redis Cluster (docs/operations.md, "Redis Cluster"): some of its nodes ("host:port"),
    /// asked in turn for the slot map; `url` then gives only the credentials and TLS. The URL
    /// redis[s]+cluster://host:port,... says the same.
    std::vector<std::string> cluster;
    /// Replicas that must hold a publication before it is delivered and answered (WAIT), so
    /// that a failover loses nothing answered 2xx; -1: 1 with Sentinels or a Cluster, else 0.
    int wait_replicas = -1;
    std::chrono::milliseconds wait_timeout{1000}; ///< then the publication is answered 503
    std::string prefix = "rtpush";   ///< of every key and channel: several clusters may share one
    std::string node_id;             ///< this node's name in the cluster view; empty: host-pid
    std::size_t history_size = 1000; ///< stream length per topic (XADD MAXLEN ~)
    std::chrono::milliseconds connect_timeout{3000};
    std::chrono::milliseconds command_timeout{5000};
    std::chrono::milliseconds announce_interval{2000}; ///< node TTL is 3 intervals
    backoff_config reconnect{std::chrono::milliseconds(100), 2.0, std::chrono::milliseconds(5000),
                             std::chrono::milliseconds(10000)};
    /// What this node announces (its /api/stats counters); called on the engine's executor.
    std::function<boost::json::object()> node_info;
    rtpush::logger logger;
};

/// The Redis engine. Every publication goes through one Lua script that, atomically: takes
/// the topic's next seq (HINCRBY) and its place in the channel's order (INCR), appends the
/// publication to the topic's stream (XADD with the id `<seq>-0` and that place as field
/// `n`, MAXLEN ~ history_size), keeps it as its phase's latest value (HSET), and
/// PUBLISHes it on the channel's pub/sub channel with the cluster's epoch. Each node
/// subscribes to the channels its clients use, and delivers through hub::apply() in seq order:
/// a duplicate is dropped, a gap is filled from the stream first. So every node delivers
/// every topic's publications exactly once and in the same order; a client that moves to
/// another node recovers from the same epoch and offsets.
///
/// Lifecycle: construct before the server's start() (it attaches to the hub and spawns its
/// task); it must outlive the server's run (destroy it after wait()).
class redis_engine final : public engine {
public:
    /// Runs a task until it returns or the server stops (rtpush::server::spawn).
    using spawn_function =
        std::function<void(std::function<boost::asio::awaitable<void>()> task, std::string name)>;

    /// `ex` is where the engine's connections run; `spawn` starts its task and must cancel
    /// and wait for it at shutdown.
    redis_engine(rtpush::hub& h, boost::asio::any_io_executor ex, const spawn_function& spawn,
                 redis_config cfg);
    ~redis_engine() override;

    boost::system::error_code publish(const publication& p, const std::string& timestamp,
                                      publish_handler done) override;
    bool prepare(const std::string& channel, std::function<void()> ready) override;
    bool relays() const override { return true; }
    std::string node() const override { return cfg_.node_id; }
    bool leads() const override { return leads_; }
    bool available() const override { return up_; }
    std::size_t live_nodes() const override {
        std::lock_guard lock(mutex_);
        return std::max<std::size_t>(cluster_.size(), 1);
    }
    boost::system::error_code relay(std::string text) override;
    boost::json::object status() const override;
    /// GET /api/history and the `history` message from the topics' streams: the same pages,
    /// and the same cursors, on every node. False while Redis is down (the node answers from
    /// what it holds).
    bool async_history(const history_query& q, history_handler done) override;
    void share_alert(const alert& a, std::uint64_t seq) override;
    void forget_shared_alert(const std::string& id) override;
    void on_shared_alerts(std::function<void(std::vector<shared_alert>)> h) override {
        shared_alerts_ = std::move(h);
    }

    bool up() const noexcept { return up_.load(); }
    const std::string& node_id() const noexcept { return cfg_.node_id; }

private:
    struct channel_state {
        bool subscribed = false; // SUBSCRIBE sent on the current connection
        bool loaded = false;     // state loaded on the current connection
        std::uint64_t watch = 0; // hub::on_demand id
        std::vector<std::function<void()>> waiters;
    };
    struct event { // for the apply loop, in arrival order
        enum class kind { message, loaded_channel } type;
        std::string channel; // loaded_channel: the rtpush channel
        std::string payload; // message
    };

    struct publish_job { // a publication on its way to Redis
        std::string channel, topic_key, phase, body;
        publish_handler done;
        bool redirected = false; // a MOVED or ASK was followed once already
    };
    struct replicated { // a publication between its script and the WAIT that confirms it
        std::shared_ptr<publish_job> job;
        boost::system::error_code ec; // of the script
        std::string why;
        std::uint64_t seq = 0;
        std::string epoch;
        bool moved = false; // redirected: another master's batch answers it
    };
    // One master: the one Redis, Sentinel's master, or each master of a Redis Cluster.
    struct shard {
        shard(boost::asio::any_io_executor ex, detail::redis_url url, const redis_config& cfg,
              boost::asio::ssl::context* tls);
        detail::host_port addr;
        redis_connection cmd, sub;
        unsigned replicas_online = 0;                   // from INFO replication
        std::vector<std::shared_ptr<replicated>> batch; // publications before WAIT
        bool wait_posted = false;
    };

    boost::asio::awaitable<void> run();
    boost::asio::awaitable<void> session(); // connections to every master, until one fails
    boost::asio::awaitable<void> push_loop(redis_connection& sub);
    boost::asio::awaitable<void> apply_loop();
    boost::asio::awaitable<void> announce_loop();
    boost::asio::awaitable<void> load_channel(const std::string& channel);
    boost::asio::awaitable<void> load_topic(const std::string& channel,
                                            const std::string& topic_key);
    boost::asio::awaitable<void> fill(const std::string& topic_key, std::uint64_t from,
                                      std::uint64_t to);
    boost::asio::awaitable<void> handle_message(const std::string& payload);
    void read_history(history_query q, history_handler done);           // on the executor
    void subscribe_wanted();                                            // on the executor
    void demand(const std::string& channel, std::size_t subscriptions); // on the executor
    void adopt_epoch(const std::string& epoch);
    void went_down();
    // Routing (executor only): the shard that serves a channel, or the cluster's own keys;
    // nullptr while there is none.
    shard* shard_of(std::string_view channel);
    shard* global_shard();
    shard* shard_at(const detail::host_port& hp);
    /// A command on a shard, following one MOVED or ASK (impl/redis_cluster.hpp).
    boost::asio::awaitable<detail::redis_reply> exec(shard* s, std::vector<std::string> args);
    void end_session(); // closes every connection: the session starts again
    // Sentinel, replicated publishing (impl/redis_failover.hpp) and Redis Cluster
    // (impl/redis_cluster.hpp).
    boost::asio::awaitable<detail::redis_url> discover_master();
    boost::asio::awaitable<void> sentinel_watch();
    boost::asio::awaitable<void> watch_switches(redis_connection& s);
    void master_switched(const detail::host_port& to);
    detail::redis_url node_url(const detail::host_port& hp, bool sentinel) const;
    boost::asio::awaitable<detail::slot_map> discover_slots();
    void publish_to(shard& s, std::shared_ptr<publish_job> job, bool asking);
    shard* redirect_of(const detail::redis_reply& r, publish_job& job, bool& asking);
    void send_wait(std::weak_ptr<shard> ws);
    void settle_batch(shard& s); // publications whose WAIT will not come
    void count_replicas(shard& s, const detail::redis_reply& info); // of INFO replication
    void finish_publish(boost::system::error_code ec, const std::string& why, std::uint64_t seq,
                        const publish_handler& done);

    rtpush::hub& hub_;
    redis_config cfg_;
    detail::redis_endpoints endpoints_;
    detail::redis_url url_; // endpoints_.url, or the master a Sentinel named
    detail::redis_keys keys_;
    std::string relay_channel_; ///< keys_.relay(), compared with every pushed message
    std::unique_ptr<boost::asio::ssl::context> tls_context_; // for rediss://
    boost::asio::any_io_executor ex_;
    std::atomic<bool> up_{false};
    std::atomic<bool> leads_{false}; // holds the cluster's lease (announce_loop renews it)
    std::function<void(std::vector<shared_alert>)> shared_alerts_; // on_shared_alerts
    std::string script_sha_;
    std::vector<std::shared_ptr<shard>> shards_; // executor only, while a session runs
    detail::slot_map slots_;                     // executor only: Redis Cluster's map

    mutable std::mutex mutex_; // channels_, cluster_, counters below
    std::map<std::string, channel_state, std::less<>> channels_;
    boost::json::array cluster_;
    std::uint64_t published_ = 0, publish_errors_ = 0, gaps_filled_ = 0, reconnects_ = 0;
    std::uint64_t master_switches_ = 0, redirects_ = 0;
    std::string masters_; // the masters in use, for status()

    std::deque<event> events_; // executor only
    std::unique_ptr<boost::asio::steady_timer> event_signal_;

    unsigned wait_replicas_ = 0;
    std::atomic<unsigned> replicas_online_{0}; // the fewest of any master
    std::size_t seed_first_ = 0;               // executor only: the Sentinel/seed that answered
    bool switched_ = false;                    // executor only: a Sentinel named a new master
    std::unique_ptr<boost::asio::steady_timer> retry_; // between sessions; a switch ends it
};

} // namespace rtpush

#include <rtpush/impl/redis.hpp>

#endif
