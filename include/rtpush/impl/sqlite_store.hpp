#ifndef RTPUSH_IMPL_SQLITE_STORE_HPP
#define RTPUSH_IMPL_SQLITE_STORE_HPP

#include <sqlite3.h>

#include <boost/system/system_error.hpp>

#include <charconv>
#include <climits>
#include <exception>
#include <filesystem>
#include <set>

namespace rtpush {

namespace detail {

// One prepared statement, finalized with its owner.
class sqlite_statement {
public:
    sqlite_statement() = default;
    sqlite_statement(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
            s_ = nullptr;
    }
    sqlite_statement(sqlite_statement&& o) noexcept
        : s_(std::exchange(o.s_, nullptr)) {}
    sqlite_statement& operator=(sqlite_statement&& o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~sqlite_statement() { sqlite3_finalize(s_); }
    explicit operator bool() const noexcept { return s_ != nullptr; }
    sqlite3_stmt* get() const noexcept { return s_; }

    void bind(int i, std::string_view v) {
        sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    void bind(int i, std::int64_t v) { sqlite3_bind_int64(s_, i, v); }
    /// Runs a statement that returns no rows, then resets it for the next use.
    int run() {
        int const rc = sqlite3_step(s_);
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
        return rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    std::string_view text(int col) const {
        auto const* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
        return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col)))
                 : std::string_view();
    }
    std::int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }

private:
    sqlite3_stmt* s_ = nullptr;
};

inline int phase_index(std::string_view phase) noexcept {
    return phase == "kpis" ? 0 : phase == "complete" ? 2 : 1;
}

// Damage and foreign files are the operator's to look at; anything else (permissions, a
// full disk, a lock) is a failure to use the directory.
inline error sqlite_error_kind(int rc) noexcept {
    int const primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ? error::store_corrupt
                                                                 : error::store_failed;
}

} // namespace detail

struct sqlite_store::statements {
    detail::sqlite_statement insert_history, upsert_latest, delete_before, upsert_alert,
        delete_alert, upsert_ack, upsert_ack_target, delete_ack, delete_ack_targets;
};

inline sqlite_store::sqlite_store(hub& h, sqlite_store_config cfg)
    : hub_(h)
    , cfg_(std::move(cfg)) {
    try {
        open();
        load();
    } catch (...) {
        stmts_.reset();
        sqlite3_close(reader_);
        sqlite3_close(db_);
        throw;
    }
    writer_ = std::thread([this] { write_loop(); });
}

inline sqlite_store::~sqlite_store() {
    stop();
    stmts_.reset();
    sqlite3_close(reader_);
    sqlite3_close(db_);
}

inline void sqlite_store::fail(boost::system::error_code ec, const std::string& what) const {
    throw boost::system::system_error(ec, "data directory " + cfg_.data_dir + ": " + what);
}

inline void sqlite_store::open() {
    namespace fs = std::filesystem;
    if (cfg_.data_dir.empty())
        fail(error::store_failed, "no path given");
    std::error_code fec;
    fs::create_directories(cfg_.data_dir, fec);
    if (fec || !fs::is_directory(cfg_.data_dir))
        fail(error::store_failed,
             "cannot create the directory: " + (fec ? fec.message() : "not a directory"));
    path_ = (fs::path(cfg_.data_dir) / "rtpush.db").string();
    int rc =
        sqlite3_open_v2(path_.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK)
        fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errstr(rc));
    sqlite3_extended_result_codes(db_, 1);
    auto exec = [this](const std::string& sql) {
        char* msg = nullptr;
        int const rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &msg);
        if (rc != SQLITE_OK) {
            std::string const m = msg ? msg : sqlite3_errstr(rc);
            sqlite3_free(msg);
            fail(detail::sqlite_error_kind(rc), path_ + ": " + m);
        }
    };
    auto single = [this](const char* sql) {
        detail::sqlite_statement s(db_, sql);
        if (!s)
            fail(detail::sqlite_error_kind(sqlite3_extended_errcode(db_)),
                 path_ + ": " + sqlite3_errmsg(db_));
        int const rc = sqlite3_step(s.get());
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
        return rc == SQLITE_ROW ? std::string(s.text(0)) : std::string();
    };
    // Another rtd on the same directory would interleave seqs: wait a little, then refuse.
    sqlite3_busy_timeout(db_, 2000);
    // Before any table exists, so that deleted history gives its pages back (see sweep).
    exec("PRAGMA auto_vacuum=INCREMENTAL");
    if (single("PRAGMA journal_mode=WAL") != "wal")
        fail(error::store_failed, path_ + ": cannot use WAL mode (read-only or unsupported)");
    exec(cfg_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
    // Damaged pages found now, not when a client's recovery reads them.
    if (auto const check = single("PRAGMA quick_check"); check != "ok")
        fail(error::store_corrupt, path_ + ": integrity check failed: " + check);
    bool const fresh = single("SELECT count(*) FROM sqlite_master") == "0";
    if (!fresh && single("SELECT count(*) FROM sqlite_master WHERE name='meta'") == "0")
        fail(error::store_corrupt, path_ + ": not an rtpush store (no meta table)");
    exec("BEGIN IMMEDIATE;"
         "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) "
         "WITHOUT ROWID;"
         "CREATE TABLE IF NOT EXISTS latest(topic TEXT NOT NULL, phase INTEGER NOT NULL, "
         "seq INTEGER NOT NULL, ts TEXT NOT NULL, pub TEXT NOT NULL, "
         "PRIMARY KEY(topic, phase)) WITHOUT ROWID;"
         "CREATE TABLE IF NOT EXISTS history(id INTEGER PRIMARY KEY AUTOINCREMENT, "
         "topic TEXT NOT NULL, channel TEXT NOT NULL, seq INTEGER NOT NULL, "
         "at INTEGER NOT NULL, ts TEXT NOT NULL, pub TEXT NOT NULL);"
         "CREATE INDEX IF NOT EXISTS history_topic ON history(topic, seq);"
         "CREATE INDEX IF NOT EXISTS history_channel ON history(channel, id);"
         "CREATE TABLE IF NOT EXISTS alerts(id TEXT PRIMARY KEY, number INTEGER NOT NULL, "
         "status TEXT NOT NULL, due INTEGER NOT NULL, after INTEGER NOT NULL, "
         "data TEXT NOT NULL) WITHOUT ROWID;"
         "CREATE TABLE IF NOT EXISTS acks(id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, "
         "created INTEGER NOT NULL, phase INTEGER NOT NULL, bulk INTEGER NOT NULL, "
         "seq INTEGER NOT NULL, message TEXT NOT NULL);"
         "CREATE TABLE IF NOT EXISTS ack_targets(id TEXT NOT NULL, client TEXT NOT NULL, "
         "state INTEGER NOT NULL, PRIMARY KEY(id, client)) WITHOUT ROWID;"
         "INSERT OR IGNORE INTO meta VALUES('format', 'rtpush-1');"
         "COMMIT");
    if (auto const f = single("SELECT value FROM meta WHERE key='format'"); f != "rtpush-1")
        fail(error::store_corrupt, path_ + ": unknown store format '" + f + "'");
    // A run that did not stop cleanly may have delivered publications it never committed:
    // at most two queues' worth (the batch being written and the queue behind it).
    if (single("SELECT value FROM meta WHERE key='clean'") == "0") {
        auto const bound = single("SELECT value FROM meta WHERE key='max_pending'");
        std::uint64_t n = cfg_.max_pending;
        if (!bound.empty() &&
            std::from_chars(bound.data(), bound.data() + bound.size(), n).ec != std::errc{})
            fail(error::store_corrupt, path_ + ": meta max_pending is not a number");
        crash_gap_ = 2 * n + 1;
    }
    {
        detail::sqlite_statement s(db_, "INSERT OR REPLACE INTO meta VALUES('clean', '0'), "
                                        "('max_pending', ?1)");
        s.bind(1, std::to_string(cfg_.max_pending));
        if (int const rc = s.run(); rc != SQLITE_OK)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
    }
    // The epoch names this history: kept, clients' offsets stay valid across restarts.
    if (auto const epoch = single("SELECT value FROM meta WHERE key='epoch'"); !epoch.empty()) {
        hub_.reset(epoch);
    } else {
        detail::sqlite_statement s(db_, "INSERT INTO meta VALUES('epoch', ?1)");
        s.bind(1, hub_.epoch());
        if (int const rc = s.run(); rc != SQLITE_OK)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
    }
    stmts_ = std::make_unique<statements>();
    stmts_->insert_history = detail::sqlite_statement(
        db_, "INSERT INTO history(topic, channel, seq, at, ts, pub) VALUES(?1,?2,?3,?4,?5,?6)");
    stmts_->upsert_latest = detail::sqlite_statement(
        db_, "INSERT INTO latest VALUES(?1,?2,?3,?4,?5) ON CONFLICT(topic, phase) DO UPDATE "
             "SET seq=excluded.seq, ts=excluded.ts, pub=excluded.pub");
    stmts_->delete_before =
        detail::sqlite_statement(db_, "DELETE FROM history WHERE topic=?1 AND seq<?2");
    stmts_->upsert_alert =
        detail::sqlite_statement(db_, "INSERT OR REPLACE INTO alerts VALUES(?1,?2,?3,?4,?5,?6)");
    stmts_->delete_alert = detail::sqlite_statement(db_, "DELETE FROM alerts WHERE id=?1");
    // The rowid keeps the broadcasts in the order they were created (restore reads them so).
    stmts_->upsert_ack = detail::sqlite_statement(
        db_, "INSERT INTO acks VALUES(?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(id) DO UPDATE SET "
             "phase=excluded.phase, bulk=excluded.bulk, seq=excluded.seq, "
             "message=excluded.message");
    stmts_->upsert_ack_target =
        detail::sqlite_statement(db_, "INSERT OR REPLACE INTO ack_targets VALUES(?1,?2,?3)");
    stmts_->delete_ack = detail::sqlite_statement(db_, "DELETE FROM acks WHERE id=?1");
    stmts_->delete_ack_targets =
        detail::sqlite_statement(db_, "DELETE FROM ack_targets WHERE id=?1");
    if (!stmts_->insert_history || !stmts_->upsert_latest || !stmts_->delete_before ||
        !stmts_->upsert_alert || !stmts_->delete_alert || !stmts_->upsert_ack ||
        !stmts_->upsert_ack_target || !stmts_->delete_ack || !stmts_->delete_ack_targets)
        fail(error::store_failed, path_ + ": " + sqlite3_errmsg(db_));
    rc = sqlite3_open_v2(path_.c_str(), &reader_, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                         nullptr);
    if (rc != SQLITE_OK)
        fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errstr(rc));
    sqlite3_busy_timeout(reader_, 1000);
}

inline void sqlite_store::load() {
    auto const now = unix_ms_now();
    {
        // What aged out while the server was down is not loaded.
        detail::sqlite_statement s(db_, "DELETE FROM history WHERE at<?1");
        s.bind(1, cfg_.history.history_size == 0
                      ? INT64_MAX
                      : now - static_cast<std::int64_t>(cfg_.history.history_ttl.count()));
        if (int const rc = s.run(); rc != SQLITE_OK)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
    }
    auto rows = [this](const char* sql, auto each) {
        detail::sqlite_statement s(db_, sql);
        if (!s)
            fail(detail::sqlite_error_kind(sqlite3_extended_errcode(db_)),
                 path_ + ": " + sqlite3_errmsg(db_));
        int rc;
        while ((rc = sqlite3_step(s.get())) == SQLITE_ROW)
            each(s);
        if (rc != SQLITE_DONE)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
    };
    auto decode = [this](std::string_view row) {
        boost::system::error_code ec;
        auto p = detail::decode_publication(row, ec);
        if (ec)
            fail(ec, path_ + ": a stored publication cannot be read");
        return p;
    };
    // In publication order: the hub's replay merges topics by the order it applied them.
    rows("SELECT topic, seq, ts, pub, at FROM history ORDER BY id", [&](auto& s) {
        auto const seq = static_cast<std::uint64_t>(s.integer(1));
        hub_.apply(decode(s.text(3)), seq, std::string(s.text(2)));
        windows_[std::string(s.text(0))].push(seq, s.text(3).size(), s.integer(4));
    });
    rows("SELECT topic, seq, ts, pub FROM latest", [&](auto& s) {
        auto p = decode(s.text(3));
        p.ack_id.clear(); // an `initial` is a snapshot, not a delivery to be acked
        hub_.set_latest(std::move(p), static_cast<std::uint64_t>(s.integer(1)),
                        std::string(s.text(2)));
    });
    rows("SELECT id, number, status, due, after, data FROM alerts", [&](auto& s) {
        alert a;
        a.id = std::string(s.text(0));
        a.number = static_cast<std::uint64_t>(s.integer(1));
        boost::system::error_code ec;
        auto data = boost::json::parse(s.text(5), ec);
        if (ec || !data.is_object() || !parse_alert_status(s.text(2), a.status))
            fail(error::store_corrupt, path_ + ": stored alert " + a.id + " cannot be read");
        a.escalation_due_ms = s.integer(3);
        a.escalate_after_ms = s.integer(4);
        a.data = std::move(data.get_object());
        loaded_alerts_.push_back(std::move(a));
    });
    {
        // A client's standing whose broadcast is gone (a failed batch may leave one) is of
        // no use: deleted, not only skipped.
        detail::sqlite_statement s(db_,
                                   "DELETE FROM ack_targets WHERE id NOT IN (SELECT id FROM acks)");
        if (int const rc = s.run(); rc != SQLITE_OK)
            fail(detail::sqlite_error_kind(rc), path_ + ": " + sqlite3_errmsg(db_));
    }
    {
        std::map<std::string, std::size_t, std::less<>> where; // id -> its place in loaded_acks_
        rows("SELECT id, topic, created, phase, bulk, seq, message FROM acks ORDER BY rowid",
             [&](auto& s) {
                 ack_record a;
                 a.id = std::string(s.text(0));
                 a.topic = std::string(s.text(1));
                 a.created_ms = s.integer(2);
                 a.phase = static_cast<int>(s.integer(3));
                 a.bulk = s.integer(4) != 0;
                 a.seq = static_cast<std::uint64_t>(s.integer(5));
                 a.message = std::string(s.text(6));
                 if (a.phase < 0 || a.phase > 2)
                     fail(error::store_corrupt, path_ + ": stored ack " + a.id + " cannot be read");
                 where[a.id] = loaded_acks_.size();
                 loaded_acks_.push_back(std::move(a));
             });
        rows("SELECT id, client, state FROM ack_targets", [&](auto& s) {
            auto const it = where.find(s.text(0));
            auto const state = s.integer(2);
            if (state < 0 || state > 2)
                fail(error::store_corrupt, path_ + ": a stored ack state cannot be read");
            if (it != where.end()) // a target whose broadcast was forgotten is of no use
                loaded_acks_[it->second].targets.emplace_back(std::string(s.text(1)),
                                                              static_cast<ack_state>(state));
        });
    }
    cfg_.logger.log(crash_gap_ ? log_level::warning : log_level::info, "store_loaded",
                    {{"path", path_},
                     {"epoch", hub_.epoch()},
                     {"topics", windows_.size()},
                     {"alerts", loaded_alerts_.size()},
                     {"acks", loaded_acks_.size()},
                     {"clean_stop", crash_gap_ == 0}});
}

inline boost::system::error_code
sqlite_store::publish(const publication& p, const std::string& timestamp, publish_handler done) {
    pending_write w;
    w.key = p.topic.key();
    w.channel = p.topic.channel;
    w.row = detail::encode_publication(p);
    w.phase = detail::phase_index(p.phase);
    w.timestamp = timestamp;
    w.at_ms = unix_ms_now();
    w.done = std::move(done);
    // One lock around ordering, delivery and queuing: per topic, the writer sees seqs in the
    // order subscribers got them.
    std::lock_guard order(order_mutex_);
    {
        std::lock_guard lock(queue_mutex_);
        if (stopping_ || queued_publications_ >= cfg_.max_pending)
            return error::engine_unavailable;
    }
    w.seq = hub_.head(w.key) + 1;
    // Seqs the crashed run may have given to publications that subscribers got but the disk
    // did not are never given again in this epoch: the topic's first seq skips past them, so
    // a client that saw one is told its history is lost instead of skipping a new one.
    if (crash_gap_ && skipped_.insert(w.key).second)
        w.seq += crash_gap_;
    hub_.apply(p, w.seq, timestamp); // fan-out now; the disk comes after
    {
        std::lock_guard lock(queue_mutex_);
        queue_.push_back(std::move(w));
        ++queued_total_;
        ++queued_publications_;
    }
    queue_cv_.notify_one();
    return {};
}

inline void sqlite_store::save_alert(const alert& a) {
    pending_write w;
    w.what = pending_write::kind::alert;
    w.key = a.id;
    w.row = boost::json::serialize(a.data);
    w.seq = a.number;
    w.channel = std::string(to_string(a.status));
    w.at_ms = a.escalation_due_ms;
    w.after_ms = a.escalate_after_ms;
    queue_state(std::move(w));
}

inline void sqlite_store::forget_alert(const std::string& id) {
    pending_write w;
    w.what = pending_write::kind::alert;
    w.key = id;
    queue_state(std::move(w));
}

inline void sqlite_store::save_ack(const ack_record& r) {
    pending_write w;
    w.what = pending_write::kind::ack;
    w.key = r.id;
    w.channel = r.topic;
    w.row = r.message;
    w.at_ms = r.created_ms;
    w.phase = r.phase;
    w.seq = r.seq;
    w.after_ms = r.bulk ? 1 : 0;
    queue_state(std::move(w));
}

inline void sqlite_store::save_ack_target(const std::string& id, const std::string& client,
                                          ack_state state) {
    pending_write w;
    w.what = pending_write::kind::ack_target;
    w.key = id;
    w.channel = client;
    w.phase = static_cast<int>(state);
    queue_state(std::move(w));
}

inline void sqlite_store::forget_ack(const std::string& id) {
    pending_write w;
    w.what = pending_write::kind::ack_forget;
    w.key = id;
    queue_state(std::move(w));
}

inline void sqlite_store::queue_state(pending_write w) {
    // In the queue's order with the publications: an alert step's state goes just before the
    // publication that announces it, a broadcast to be acked before its publication.
    {
        std::lock_guard lock(queue_mutex_);
        if (stopping_)
            return;
        queue_.push_back(std::move(w));
        ++queued_total_;
    }
    queue_cv_.notify_one();
}

inline void sqlite_store::write_loop() {
    auto last_sweep = std::chrono::steady_clock::now();
    std::vector<pending_write> batch;
    for (;;) {
        bool stop = false;
        {
            std::unique_lock lock(queue_mutex_);
            queue_cv_.wait_for(lock, std::chrono::seconds(1),
                               [&] { return stopping_ || !queue_.empty(); });
            if (!queue_.empty() && !stopping_ && cfg_.commit_delay.count() > 0)
                // Group commit: more publications join this transaction's one fsync.
                queue_cv_.wait_for(lock, cfg_.commit_delay, [&] { return stopping_; });
            batch.swap(queue_);
            stop = stopping_;
        }
        if (!batch.empty()) {
            auto const t0 = std::chrono::steady_clock::now();
            auto const ec = write_batch(batch);
            last_commit_us_ =
                static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::steady_clock::now() - t0)
                                               .count());
            ++batches_;
            (ec ? failed_ : written_) += batch.size();
            if (ec)
                cfg_.logger.log(log_level::error, "store_write_failed",
                                {{"path", path_},
                                 {"error", ec.message()},
                                 {"publications", batch.size()},
                                 {"sqlite", sqlite3_errmsg(db_)}});
            for (auto& w : batch)
                if (w.done) {
                    try {
                        w.done(ec, w.seq);
                    } catch (std::exception const& e) {
                        cfg_.logger.log(log_level::error, "store_handler_failed",
                                        {{"what", e.what()}});
                    }
                }
            std::size_t const publications = static_cast<std::size_t>(
                std::count_if(batch.begin(), batch.end(), [](const pending_write& w) {
                    return w.what == pending_write::kind::publication;
                }));
            {
                std::lock_guard lock(queue_mutex_);
                committed_total_ += batch.size();
                queued_publications_ -= publications;
            }
            flushed_cv_.notify_all();
            batch.clear();
        }
        if (auto const now = std::chrono::steady_clock::now();
            now - last_sweep >= std::chrono::seconds(1)) {
            last_sweep = now;
            sweep(unix_ms_now());
        }
        if (stop) {
            std::lock_guard lock(queue_mutex_);
            if (queue_.empty())
                break;
        }
    }
    // Everything delivered is on disk: the next start need not skip seqs.
    if (failed_ == 0)
        sqlite3_exec(db_, "UPDATE meta SET value='1' WHERE key='clean'", nullptr, nullptr, nullptr);
}

inline boost::system::error_code sqlite_store::write_batch(std::vector<pending_write>& batch) {
    auto& st = *stmts_;
    auto rollback = [this](int rc) -> boost::system::error_code {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        // What the windows counted of this batch is not on disk: count again from the disk.
        windows_.clear();
        detail::sqlite_statement s(db_, "SELECT topic, seq, length(pub), at FROM history "
                                        "ORDER BY id");
        while (s && sqlite3_step(s.get()) == SQLITE_ROW)
            windows_[std::string(s.text(0))].push(static_cast<std::uint64_t>(s.integer(1)),
                                                  static_cast<std::size_t>(s.integer(2)),
                                                  s.integer(3));
        return detail::sqlite_error_kind(rc);
    };
    int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK)
        return detail::sqlite_error_kind(rc);
    bool const keep_history = cfg_.history.history_size > 0;
    std::set<std::string_view> touched;
    for (auto const& w : batch) {
        auto const seq = static_cast<std::int64_t>(w.seq);
        if (w.what == pending_write::kind::ack || w.what == pending_write::kind::ack_target ||
            w.what == pending_write::kind::ack_forget) {
            write_ack(w, rc);
            if (rc != SQLITE_OK)
                return rollback(rc);
            continue;
        }
        if (w.what == pending_write::kind::alert) {
            if (w.row.empty()) {
                st.delete_alert.bind(1, w.key);
                rc = st.delete_alert.run();
            } else {
                st.upsert_alert.bind(1, w.key);
                st.upsert_alert.bind(2, seq);
                st.upsert_alert.bind(3, w.channel);
                st.upsert_alert.bind(4, w.at_ms);
                st.upsert_alert.bind(5, w.after_ms);
                st.upsert_alert.bind(6, w.row);
                rc = st.upsert_alert.run();
            }
            if (rc != SQLITE_OK)
                return rollback(rc);
            continue;
        }
        if (keep_history) {
            st.insert_history.bind(1, w.key);
            st.insert_history.bind(2, w.channel);
            st.insert_history.bind(3, seq);
            st.insert_history.bind(4, w.at_ms);
            st.insert_history.bind(5, w.timestamp);
            st.insert_history.bind(6, w.row);
            if ((rc = st.insert_history.run()) != SQLITE_OK)
                return rollback(rc);
            windows_[w.key].push(w.seq, w.row.size(), w.at_ms);
            touched.insert(w.key);
        }
        st.upsert_latest.bind(1, w.key);
        st.upsert_latest.bind(2, std::int64_t{w.phase});
        st.upsert_latest.bind(3, seq);
        st.upsert_latest.bind(4, w.timestamp);
        st.upsert_latest.bind(5, w.row);
        if ((rc = st.upsert_latest.run()) != SQLITE_OK)
            return rollback(rc);
    }
    auto const now = unix_ms_now();
    for (auto key : touched) {
        auto it = windows_.find(key);
        auto const first_kept = it->second.trim(cfg_.history, now);
        if (first_kept == 0)
            continue;
        st.delete_before.bind(1, key);
        st.delete_before.bind(2, first_kept > INT64_MAX ? INT64_MAX
                                                        : static_cast<std::int64_t>(first_kept));
        if ((rc = st.delete_before.run()) != SQLITE_OK)
            return rollback(rc);
    }
    if ((rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr)) != SQLITE_OK)
        return rollback(rc);
    return {};
}

inline void sqlite_store::write_ack(const pending_write& w, int& rc) {
    auto& st = *stmts_;
    switch (w.what) {
    case pending_write::kind::ack:
        st.upsert_ack.bind(1, w.key);
        st.upsert_ack.bind(2, w.channel);
        st.upsert_ack.bind(3, w.at_ms);
        st.upsert_ack.bind(4, std::int64_t{w.phase});
        st.upsert_ack.bind(5, w.after_ms);
        st.upsert_ack.bind(6, static_cast<std::int64_t>(w.seq));
        st.upsert_ack.bind(7, w.row);
        rc = st.upsert_ack.run();
        return;
    case pending_write::kind::ack_target:
        st.upsert_ack_target.bind(1, w.key);
        st.upsert_ack_target.bind(2, w.channel);
        st.upsert_ack_target.bind(3, std::int64_t{w.phase});
        rc = st.upsert_ack_target.run();
        return;
    default:
        st.delete_ack_targets.bind(1, w.key);
        if ((rc = st.delete_ack_targets.run()) != SQLITE_OK)
            return;
        st.delete_ack.bind(1, w.key);
        rc = st.delete_ack.run();
        return;
    }
}

inline void sqlite_store::sweep(std::int64_t now_ms) {
    // The age limit of topics nobody publishes on any more, in one transaction.
    if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
        return;
    for (auto it = windows_.begin(); it != windows_.end();) {
        if (auto const first_kept = it->second.trim(cfg_.history, now_ms); first_kept != 0) {
            stmts_->delete_before.bind(1, it->first);
            stmts_->delete_before.bind(
                2, first_kept > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(first_kept));
            stmts_->delete_before.run();
        }
        it = it->second.empty() ? windows_.erase(it) : std::next(it);
    }
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    // Compaction: hand free pages back a few at a time, so no sweep holds the writer long.
    sqlite3_exec(db_, "PRAGMA incremental_vacuum(256)", nullptr, nullptr, nullptr);
}

inline void sqlite_store::flush() {
    std::unique_lock lock(queue_mutex_);
    auto const target = queued_total_;
    flushed_cv_.wait(lock, [&] { return committed_total_ >= target || !writer_.joinable(); });
}

inline void sqlite_store::stop() {
    {
        std::lock_guard order(order_mutex_);
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
    }
    queue_cv_.notify_all();
    if (writer_.joinable() && writer_.get_id() != std::this_thread::get_id())
        writer_.join();
}

inline boost::json::object sqlite_store::status() const {
    boost::json::object o;
    o["engine"] = "sqlite";
    boost::json::object s;
    s["path"] = path_;
    {
        std::lock_guard lock(queue_mutex_);
        s["pending"] = queue_.size();
    }
    s["batches"] = batches_.load();
    s["written"] = written_.load();
    s["failed"] = failed_.load();
    s["last_commit_us"] = last_commit_us_.load();
    o["store"] = std::move(s);
    return o;
}

inline bool sqlite_store::history(const history_query& q, history_page& out,
                                  boost::system::error_code& ec) const {
    std::string const key = q.topic.key();
    std::string const sql =
        std::string("SELECT id, topic, seq, ts, pub FROM history WHERE channel=?1 AND "
                    "(topic=?2 OR substr(topic, 1, ?3)=?4) AND at>=?5 AND at<=?6 AND ") +
        (q.oldest_first ? "id>?7 ORDER BY id ASC" : "id<?7 ORDER BY id DESC") + " LIMIT ?8";
    std::lock_guard lock(reader_mutex_);
    detail::sqlite_statement s(reader_, sql.c_str());
    if (!s) {
        ec = detail::sqlite_error_kind(sqlite3_extended_errcode(reader_));
        return true;
    }
    s.bind(1, q.topic.channel);
    s.bind(2, key);
    s.bind(3, static_cast<std::int64_t>(key.size() + 1));
    s.bind(4, key + ":");
    s.bind(5, q.since_ms.value_or(0));
    s.bind(6, q.until_ms.value_or(INT64_MAX));
    s.bind(7, q.cursor.value_or(q.oldest_first ? 0 : INT64_MAX));
    s.bind(8, static_cast<std::int64_t>(q.limit));
    std::string const epoch = hub_.epoch();
    std::int64_t last = 0;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
        boost::system::error_code dec;
        auto const p = detail::decode_publication(s.text(4), dec);
        if (dec) {
            ec = dec;
            return true;
        }
        last = s.integer(0);
        out.items.push_back(detail::history_item(p, std::string(s.text(1)),
                                                 static_cast<std::uint64_t>(s.integer(2)), epoch,
                                                 std::string(s.text(3))));
    }
    if (rc != SQLITE_DONE) {
        ec = detail::sqlite_error_kind(rc);
        return true;
    }
    if (out.items.size() == q.limit)
        out.next_cursor = last;
    return true;
}

} // namespace rtpush

#endif
