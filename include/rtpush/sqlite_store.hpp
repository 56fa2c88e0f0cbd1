//
// rtpush: the durable store. An engine (rtpush/engine.hpp) that keeps a hub's state in SQLite
// in one data directory, so that a restart, even after kill -9, loses nothing that was
// answered: the latest value of every topic, the per-topic history that recovery replays, and
// the epoch, so that clients recover with their offsets. docs/operations.md, "Durable state".
//
// Link rtpush::sqlite (SQLite 3) to use it; the core target does not need SQLite.
//
#ifndef RTPUSH_SQLITE_STORE_HPP
#define RTPUSH_SQLITE_STORE_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/store_codec.hpp>
#include <rtpush/engine.hpp>
#include <rtpush/history.hpp>
#include <rtpush/hub.hpp>
#include <rtpush/log.hpp>

#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace rtpush {

struct sqlite_store_config {
    std::string data_dir; ///< created when missing; holds rtpush.db and its WAL
    /// The history kept per topic: the same limits as the hub's memory history.
    hub_config history;
    /// How long the writer waits after the first publication of a batch for more to join its
    /// transaction. 0: it commits at once, and what is published during a commit forms the
    /// next batch (group commit without a wait: one publisher on a keep-alive connection, which
    /// sends its next publication only after the answer, waited 2 ms more per publication).
    std::chrono::milliseconds commit_delay{0};
    /// Publications waiting for the disk; beyond, publish() refuses with
    /// error::engine_unavailable (a stalled disk never grows memory without bound).
    std::size_t max_pending = 100000;
    /// fsync on every commit (SQLite synchronous=FULL): an answered publication survives a
    /// power cut, not only a crash of the process. false: NORMAL (fsync at checkpoints), a
    /// crash of the process only (see server_config::fsync_every_commit).
    bool sync_full = false;
    rtpush::logger logger;
};

/// Keeps a hub's publications in SQLite (WAL mode) and loads them back on construction.
///
/// publish() orders a publication and delivers it through the hub at once: fan-out never
/// waits for the disk. One writer thread commits what has been published since its last
/// commit in one transaction, then calls each publication's handler: a REST publish is
/// answered once its publication is on disk.
///
/// Thread safety: every member function may be called from any thread.
class sqlite_store final : public engine {
public:
    /// Opens (creating when missing) the store in `cfg.data_dir`, checks it, gives the hub the
    /// stored epoch (or stores the hub's when new), and loads the latest values and history
    /// into the hub. Throws boost::system::system_error (error::store_failed: the directory
    /// or database cannot be created, opened or written; error::store_corrupt: the database
    /// is damaged or not an rtpush store) with a message naming the path.
    sqlite_store(hub& h, sqlite_store_config cfg);
    /// Commits what is pending, calls its handlers, and joins the writer.
    ~sqlite_store() override;
    sqlite_store(const sqlite_store&) = delete;
    sqlite_store& operator=(const sqlite_store&) = delete;

    boost::system::error_code publish(const publication& p, const std::string& timestamp,
                                      publish_handler done) override;
    bool prepare(const std::string&, std::function<void()>) override { return true; }
    boost::json::object status() const override;
    bool history(const history_query& q, history_page& out,
                 boost::system::error_code& ec) const override;
    void save_alert(const alert& a) override;
    void forget_alert(const std::string& id) override;
    std::vector<alert> saved_alerts() const override { return loaded_alerts_; }
    void save_ack(const ack_record& r) override;
    void save_ack_target(const std::string& id, const std::string& client,
                         ack_state state) override;
    void forget_ack(const std::string& id) override;
    std::vector<ack_record> saved_acks() const override { return loaded_acks_; }

    /// Blocks until everything published before the call is committed (or failed).
    void flush();
    /// Commits what is pending and stops the writer; publish() refuses afterwards. Idempotent.
    void stop();

    /// The database's path.
    const std::string& path() const noexcept { return path_; }

private:
    struct pending_write {
        std::string key;
        std::string channel;
        std::string row; // detail::encode_publication
        int phase = 1;
        std::uint64_t seq = 0;
        std::string timestamp;
        std::int64_t at_ms = 0;
        publish_handler done;
        // What else the queue carries, in order with the publications:
        // - alert: an alert's state (save_alert): `key` is its id, `row` its data (empty:
        //   forget it), `seq` its number, `channel` its status, `at_ms` when it is next
        //   escalated and `after_ms` its escalation period;
        // - ack: a broadcast to be acked (save_ack): `key` its id, `channel` its topic, `row`
        //   its message, `at_ms` when it was created, `phase`, `seq`, `after_ms` 1 when bulk;
        // - ack_target: `key` the broadcast, `channel` the client, `phase` its ack_state;
        // - ack_forget: `key` the broadcast.
        enum class kind { publication, alert, ack, ack_target, ack_forget };
        kind what = kind::publication;
        std::int64_t after_ms = 0;
    };
    // Queues what is not a publication: never refused for max_pending (they are few, and a
    // lost one would be a lost answer).
    void queue_state(pending_write w);
    void write_ack(const pending_write& w, int& rc);
    struct statements; // prepared statements of the writer's connection

    void open();
    void load();
    void write_loop();
    boost::system::error_code write_batch(std::vector<pending_write>& batch);
    void sweep(std::int64_t now_ms); // age limit and compaction, from the writer
    [[noreturn]] void fail(boost::system::error_code ec, const std::string& what) const;

    hub& hub_;
    sqlite_store_config cfg_;
    std::string path_;
    sqlite3* db_ = nullptr;             // the writer's connection
    mutable sqlite3* reader_ = nullptr; // GET /api/history's, under reader_mutex_
    mutable std::mutex reader_mutex_;
    std::unique_ptr<statements> stmts_;
    std::vector<alert> loaded_alerts_;    // what load() found, for the server's alert book
    std::vector<ack_record> loaded_acks_; // ... and for its ack tracker
    std::map<std::string, detail::history_window, std::less<>> windows_; // writer only
    // After a crash: how far each topic's first seq skips (see publish), and the topics
    // that have skipped; under order_mutex_.
    std::uint64_t crash_gap_ = 0;
    std::set<std::string, std::less<>> skipped_;

    std::mutex order_mutex_; // seq assignment, delivery and queuing in one step
    mutable std::mutex queue_mutex_;
    std::condition_variable queue_cv_;
    std::condition_variable flushed_cv_;
    std::vector<pending_write> queue_;
    std::uint64_t queued_total_ = 0;      // under queue_mutex_
    std::size_t queued_publications_ = 0; // under queue_mutex_: what max_pending bounds
    std::uint64_t committed_total_ = 0;   // under queue_mutex_ (committed or failed)
    bool stopping_ = false;
    std::thread writer_;

    std::atomic<std::uint64_t> batches_{0};
    std::atomic<std::uint64_t> written_{0};
    std::atomic<std::uint64_t> failed_{0};
    std::atomic<std::uint64_t> last_commit_us_{0};
};

} // namespace rtpush

#include <rtpush/impl/sqlite_store.hpp>

#endif
