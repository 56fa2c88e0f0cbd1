//
// rtpush: the refresher: runs data sources on a schedule and on demand, caches their last good
// snapshot, and publishes KPIs first and complete data after, only when the content changed.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_REFRESHER_HPP
#define RTPUSH_REFRESHER_HPP

#include <rtpush/hub.hpp>
#include <rtpush/log.hpp>
#include <rtpush/protocol.hpp>
#include <rtpush/source.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace rtpush {

/// How one source is refreshed. Plain struct with defaults (seed 000: 30 s and 30 s).
struct refresh_options {
    std::chrono::milliseconds refresh_interval{30000}; ///< between scheduled fetches
    std::chrono::milliseconds jitter{0}; ///< a random [0, jitter] added to each interval
    /// A non-forced refresh (a source's loop starting again on demand, async_refresh(name,
    /// false)) within this time of the last good fetch is served from the cache.
    std::chrono::milliseconds cache_ttl{30000};
    std::chrono::milliseconds retry_initial{1000}; ///< first retry after a failed fetch
    std::chrono::milliseconds retry_max{60000};    ///< retry delay doubles up to this
    /// Demand-driven: run the scheduled fetches only while the channel has subscribers, and
    /// for `linger` after the last one left. false: always run.
    bool on_demand = false;
    std::chrono::milliseconds linger{30000};
    /// Adds `changed_fields` (rtpush::changed_fields against the previous value) to each
    /// changed complete data object after the first; the source's stats name them always.
    bool changed_fields = false;
    rtpush::priority kpis_priority = rtpush::priority::high; ///< overtakes queued bulk frames
    rtpush::priority complete_priority = rtpush::priority::medium;
};

namespace detail {
struct refresh_entry;
struct refresher_state;
} // namespace detail

/// Runs data sources: one coroutine per source refreshes it every `refresh_interval` (after
/// a failure: with backoff), keeps the last good snapshot, and publishes through the hub the
/// `kpis` phase (with seed 003's `changes` against the previous KPIs) and then the `complete`
/// phase, only when the content hash changed. Concurrent refreshes of a source share one
/// fetch (single-flight). It answers the clients' `refresh` message for the channels of its
/// sources, and reports per-source statistics under `sources` in the server's /api/stats.
///
/// Executor: every source task and fetch runs on one executor, which must not run handlers
/// concurrently (a server's first io thread, or an io_context run by one thread).
/// Thread safety: add, request_refresh, stats and stop may be called from any thread.
/// Lifetime: the tasks share the refresher's state, so destroying the refresher stops them
/// (asynchronously) without dangling; stopping the server cancels them too.
class refresher {
public:
    /// Starts a task (e.g. server::spawn): it runs until it returns or is cancelled.
    using spawn_function =
        std::function<void(std::function<boost::asio::awaitable<void>()>, std::string)>;

    refresher(rtpush::hub& h, boost::asio::any_io_executor ex, spawn_function spawn,
              rtpush::logger log = {});

    /// Runs its tasks with `srv.spawn` on `srv.get_executor()` (a server from server.hpp).
    template <class Server>
    explicit refresher(Server& srv)
        : refresher(
              srv.hub(), srv.get_executor(),
              [&srv](std::function<boost::asio::awaitable<void>()> task, std::string name) {
                  srv.spawn(std::move(task), std::move(name));
              },
              srv.config().logger) {}

    refresher(const refresher&) = delete;
    refresher& operator=(const refresher&) = delete;
    ~refresher();

    /// Adds a source and starts its task. Throws std::invalid_argument for an invalid topic,
    /// a duplicate name or a source without fetch.
    void add(source s, refresh_options opt = {});

    /// Refreshes the source `name` now, or joins the fetch already running; with
    /// `force == false` a value younger than `cache_ttl` is served from the cache. Returns
    /// whether the source now holds a good value from this refresh. Must be awaited on the
    /// refresher's executor. Unknown name: false.
    boost::asio::awaitable<bool> async_refresh(std::string name, bool force = true);

    /// A client's `refresh` of `t`: starts a forced refresh of every source of t's channel
    /// whose topic covers or is covered by `t`. Returns how many. Any thread.
    std::size_t request_refresh(const topic& t);

    /// One object per source: name, topic, fetches, errors, consecutive_errors, last_error,
    /// publishes, unchanged, cache_hits, shared (joined fetches), active, last_success_at.
    boost::json::array stats() const;

    /// Stops every source task (asynchronously; idempotent). Any thread.
    void stop();

private:
    std::shared_ptr<detail::refresher_state> state_;
};

} // namespace rtpush

#include <rtpush/impl/refresher.hpp>

#endif
