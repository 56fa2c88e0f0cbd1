#ifndef RTPUSH_IMPL_REFRESHER_HPP
#define RTPUSH_IMPL_REFRESHER_HPP

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <optional>
#include <stdexcept>

namespace rtpush {
namespace detail {

// One fetch in progress; refreshes that arrive meanwhile wait on `done` (a timer used as a
// signal: cancelled when the fetch ends) and share its outcome.
struct refresh_flight {
    explicit refresh_flight(const boost::asio::any_io_executor& ex)
        : done(ex) {
        done.expires_at(std::chrono::steady_clock::time_point::max());
    }
    boost::asio::steady_timer done;
    bool ok = false;
};

/// Upper bounds (seconds) of the buckets of a source's fetch duration histogram, exported as
/// rtpush_source_refresh_duration_seconds (through the `refresh_duration` of its stats).
inline constexpr std::array<double, 12> refresh_bounds_seconds{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                               0.5,   1,    2.5,   5,    10,  30};

struct refresh_counters {
    std::uint64_t fetches = 0, errors = 0, publishes = 0, unchanged = 0, cache_hits = 0, shared = 0;
    std::uint64_t successes = 0; ///< fetches that returned a snapshot (errors: that threw)
    std::array<std::uint64_t, refresh_bounds_seconds.size()> duration_buckets{}; ///< per bucket
    std::uint64_t durations = 0; ///< fetches timed (successes + errors)
    double duration_sum = 0;     ///< seconds
    unsigned consecutive_errors = 0;
    std::string last_error, last_error_at, last_success_at;
    /// The last change: when, and which fields of the complete data (changed_fields).
    std::string last_change_at;
    boost::json::array last_changed_fields;
    bool active = false;
};

// Everything but `counters` is touched only on the refresher's executor.
struct refresh_entry {
    refresh_entry(source s, refresh_options o, const boost::asio::any_io_executor& ex)
        : src(std::move(s))
        , opt(o)
        , wake(ex) {}
    source src;
    refresh_options opt;
    boost::asio::steady_timer wake; // the loop's sleep; cancelled to make it look again
    std::shared_ptr<refresh_flight> flight;
    bool has_value = false;
    snapshot last; // the last good snapshot
    std::uint64_t hash = 0;
    std::chrono::steady_clock::time_point fetched_at{}, due{}, linger_until{};
    refresh_counters counters; // under refresher_state::mutex_
};

struct refresher_state : std::enable_shared_from_this<refresher_state> {
    using clock = std::chrono::steady_clock;

    refresher_state(rtpush::hub& h, boost::asio::any_io_executor ex,
                    refresher::spawn_function spawn, rtpush::logger log)
        : hub_(h)
        , ex_(std::move(ex))
        , spawn_(std::move(spawn))
        , log_(std::move(log)) {}

    rtpush::hub& hub_;
    boost::asio::any_io_executor ex_;
    refresher::spawn_function spawn_;
    rtpush::logger log_;
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<refresh_entry>> entries_;
    std::vector<std::string> channels_;  // with a refresh handler installed in the hub
    std::vector<std::uint64_t> watches_; // demand handlers installed in the hub
    std::uint64_t stats_provider_ = 0;
    std::atomic<bool> stopped_{false};
    std::mt19937 rng_{std::random_device{}()}; // executor only

    std::shared_ptr<refresh_entry> find(std::string_view name) const {
        std::lock_guard lock(mutex_);
        for (auto const& e : entries_)
            if (e->src.name == name)
                return e;
        return nullptr;
    }

    static boost::asio::awaitable<void> run(std::shared_ptr<refresher_state> self,
                                            std::shared_ptr<refresh_entry> e);
    static boost::asio::awaitable<bool> refresh(std::shared_ptr<refresher_state> self,
                                                std::shared_ptr<refresh_entry> e, bool force);
    static boost::asio::awaitable<void> refresh_task(std::shared_ptr<refresher_state> self,
                                                     std::shared_ptr<refresh_entry> e) {
        co_await refresh(self, e, true);
    }
    void succeeded(refresh_entry& e, snapshot s);
    // One fetch's outcome and duration, for the per-source metrics.
    void timed(refresh_entry& e, double seconds, bool ok) {
        std::lock_guard lock(mutex_);
        auto& c = e.counters;
        if (ok)
            ++c.successes;
        auto const b =
            static_cast<std::size_t>(std::lower_bound(refresh_bounds_seconds.begin(),
                                                      refresh_bounds_seconds.end(), seconds) -
                                     refresh_bounds_seconds.begin());
        if (b < c.duration_buckets.size())
            ++c.duration_buckets[b];
        ++c.durations;
        c.duration_sum += seconds;
    }
    void failed(refresh_entry& e, const std::string& what);
    std::chrono::milliseconds interval(const refresh_entry& e) {
        auto d = e.opt.refresh_interval;
        if (e.opt.jitter.count() > 0)
            d += std::chrono::milliseconds(
                std::uniform_int_distribution<std::int64_t>(0, e.opt.jitter.count())(rng_));
        return d;
    }
    boost::json::array stats() const;
    void stop();
    std::size_t request(const topic& t);
};

inline boost::asio::awaitable<bool> refresher_state::refresh(std::shared_ptr<refresher_state> self,
                                                             std::shared_ptr<refresh_entry> e,
                                                             bool force) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    if (!force && e->has_value && clock::now() - e->fetched_at < e->opt.cache_ttl) {
        // Served from the cache: the next scheduled fetch waits until the value is stale.
        e->due = std::max(
            {e->due, e->fetched_at + e->opt.refresh_interval, e->fetched_at + e->opt.cache_ttl});
        std::lock_guard lock(self->mutex_);
        ++e->counters.cache_hits;
        co_return true;
    }
    if (auto f = e->flight) {
        // Single-flight: a fetch is running; share its outcome instead of starting another.
        {
            std::lock_guard lock(self->mutex_);
            ++e->counters.shared;
        }
        co_await f->done.async_wait(as_tuple(use_awaitable));
        co_return f->ok;
    }
    auto f = std::make_shared<refresh_flight>(self->ex_);
    e->flight = f;
    {
        std::lock_guard lock(self->mutex_);
        ++e->counters.fetches;
    }
    std::string what;
    std::optional<snapshot> got;
    auto const started = clock::now();
    try {
        got = co_await e->src.fetch();
    } catch (std::exception const& ex) {
        what = ex.what();
        if (what.empty())
            what = "fetch failed";
    } catch (...) {
        what = "fetch failed with an unknown exception";
    }
    auto const cs = co_await boost::asio::this_coro::cancellation_state;
    bool const cancelled = cs.cancelled() != boost::asio::cancellation_type::none;
    if (got || !cancelled)
        self->timed(*e, std::chrono::duration<double>(clock::now() - started).count(),
                    got.has_value());
    if (got)
        self->succeeded(*e, std::move(*got));
    else if (!cancelled)
        self->failed(*e, what);
    e->flight.reset();
    f->ok = got.has_value();
    f->done.cancel();
    co_return f->ok;
}

// Not a coroutine: JSON is built here (GCC 12 and initializer lists in coroutines).
inline void refresher_state::succeeded(refresh_entry& e, snapshot s) {
    auto const now = clock::now();
    auto const h = content_hash(s);
    bool const changed = !e.has_value || h != e.hash;
    e.fetched_at = now;
    e.due = now + interval(e);
    // Which fields changed, for the complete data's `changed_fields` and the source's stats
    // (seed 004's change detection, docs/protocol.md "Seed parity"; docs/configuration.md,
    // "Data sources"). The first value changes everything: no list.
    boost::json::array fields;
    if (changed && e.has_value) {
        fields = rtpush::changed_fields(e.last.complete, s.complete);
        if (fields.empty()) // the KPIs changed alone (or only the members' order did: none)
            fields = rtpush::changed_fields(e.last.kpis, s.kpis);
    }
    {
        std::lock_guard lock(mutex_);
        e.counters.consecutive_errors = 0;
        e.counters.last_success_at = iso8601_now();
        ++(changed ? e.counters.publishes : e.counters.unchanged);
        if (changed) {
            e.counters.last_change_at = e.counters.last_success_at;
            e.counters.last_changed_fields = fields;
        }
    }
    if (!changed)
        return; // same content, nothing to tell anyone (docs/configuration.md, "Data sources")
    if (!s.kpis.is_null()) {
        publication p;
        p.topic = e.src.topic;
        p.event = e.src.event;
        p.phase = "kpis";
        p.priority = e.opt.kpis_priority;
        p.data = s.kpis;
        if (p.data.is_object() && !p.data.get_object().contains("changes"))
            p.data.get_object()["changes"] =
                kpi_changes(e.has_value ? e.last.kpis : boost::json::value(), s.kpis);
        hub_.publish(std::move(p));
    }
    if (!s.complete.is_null()) {
        publication p;
        p.topic = e.src.topic;
        p.event = e.src.event;
        p.phase = "complete";
        p.priority = e.opt.complete_priority;
        p.data = s.complete;
        if (e.opt.changed_fields && e.has_value && p.data.is_object() &&
            !p.data.get_object().contains("changed_fields"))
            p.data.get_object()["changed_fields"] = fields;
        hub_.publish(std::move(p));
    }
    e.last = std::move(s);
    e.hash = h;
    e.has_value = true;
}

inline void refresher_state::failed(refresh_entry& e, const std::string& what) {
    unsigned n;
    {
        std::lock_guard lock(mutex_);
        ++e.counters.errors;
        n = ++e.counters.consecutive_errors;
        e.counters.last_error = what;
        e.counters.last_error_at = iso8601_now();
    }
    auto const delay = backoff_delay(n, e.opt.retry_initial, e.opt.retry_max);
    e.due = clock::now() + delay;
    log_.log(log_level::warning, "source_failed",
             {{"source", e.src.name},
              {"error", what},
              {"consecutive_errors", n},
              {"retry_ms", delay.count()}});
}

inline boost::asio::awaitable<void> refresher_state::run(std::shared_ptr<refresher_state> self,
                                                         std::shared_ptr<refresh_entry> e) {
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    bool fresh_start = true; // the first fetch after (re)starting may come from the cache
    auto set_active = [&](bool a) {
        std::lock_guard lock(self->mutex_);
        e->counters.active = a;
    };
    for (;;) {
        if (self->stopped_)
            break;
        auto const now = clock::now();
        std::size_t const subs = e->opt.on_demand ? self->hub_.demand(e->src.topic.channel) : 1;
        clock::time_point until;
        if (subs == 0 && now >= e->linger_until) {
            // Demand-driven and nobody is watching: sleep until a subscriber arrives.
            if (!fresh_start)
                self->log_.log(log_level::debug, "source_idle", {{"source", e->src.name}});
            set_active(false);
            fresh_start = true;
            // The next subscriber gets a refresh at once: from the cache while the value is
            // younger than cache_ttl, else fetched (not the old value until the next interval).
            e->due = now;
            until = clock::time_point::max();
        } else if (now >= e->due) {
            set_active(true);
            co_await refresh(self, e, !fresh_start);
            fresh_start = false;
            continue;
        } else {
            set_active(true);
            until = subs == 0 ? std::min(e->due, e->linger_until) : e->due;
        }
        e->wake.expires_at(until);
        co_await e->wake.async_wait(as_tuple(use_awaitable));
        auto const cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none)
            break; // the server is stopping
    }
    set_active(false);
}

inline boost::json::array refresher_state::stats() const {
    boost::json::array a;
    std::lock_guard lock(mutex_);
    for (auto const& e : entries_) {
        auto const& c = e->counters;
        boost::json::object o;
        o["name"] = e->src.name;
        o["topic"] = e->src.topic.key();
        o["fetches"] = c.fetches;
        o["errors"] = c.errors;
        o["consecutive_errors"] = c.consecutive_errors;
        o["publishes"] = c.publishes;
        o["unchanged"] = c.unchanged;
        o["cache_hits"] = c.cache_hits;
        o["shared"] = c.shared;
        o["active"] = c.active;
        o["on_demand"] = e->opt.on_demand;
        o["refresh_interval_ms"] = e->opt.refresh_interval.count();
        o["cache_ttl_ms"] = e->opt.cache_ttl.count();
        o["successes"] = c.successes;
        o["last_change_at"] = c.last_change_at.empty() ? boost::json::value(nullptr)
                                                       : boost::json::value(c.last_change_at);
        o["last_changed_fields"] = c.last_changed_fields;
        // Self-describing, so that /metrics renders it without knowing the bounds.
        boost::json::object d;
        boost::json::array le, counts;
        for (std::size_t i = 0; i < refresh_bounds_seconds.size(); ++i) {
            le.push_back(refresh_bounds_seconds[i]);
            counts.push_back(c.duration_buckets[i]);
        }
        d["le"] = std::move(le);
        d["counts"] = std::move(counts);
        d["sum_seconds"] = c.duration_sum;
        d["count"] = c.durations;
        o["refresh_duration"] = std::move(d);
        if (!c.last_error.empty()) {
            o["last_error"] = c.last_error;
            o["last_error_at"] = c.last_error_at;
        }
        if (!c.last_success_at.empty())
            o["last_success_at"] = c.last_success_at;
        a.push_back(std::move(o));
    }
    return a;
}

inline void refresher_state::stop() {
    if (stopped_.exchange(true))
        return;
    std::vector<std::shared_ptr<refresh_entry>> es;
    {
        std::lock_guard lock(mutex_);
        es = entries_;
    }
    // The timers belong to the executor's thread: cancel them there.
    boost::asio::post(ex_, [es = std::move(es)] {
        for (auto const& e : es)
            e->wake.cancel();
    });
}

inline std::size_t refresher_state::request(const topic& t) {
    std::vector<std::shared_ptr<refresh_entry>> es;
    {
        std::lock_guard lock(mutex_);
        for (auto const& e : entries_)
            if (refresh_reaches(t, e->src.topic))
                es.push_back(e);
    }
    // The requester told the subscribers of `t` (and wider scopes) that a refresh runs; those
    // of a narrower source topic only hear about their own topic.
    for (auto const& e : es)
        if (e->src.topic != t && t.covers(e->src.topic))
            hub_.notify(e->src.topic, message::refreshing(e->src.topic));
    auto self = shared_from_this();
    for (auto const& e : es)
        spawn_([self, e] { return refresh_task(self, e); }, "refresh:" + e->src.name);
    return es.size();
}

} // namespace detail

inline refresher::refresher(rtpush::hub& h, boost::asio::any_io_executor ex, spawn_function spawn,
                            rtpush::logger log)
    : state_(std::make_shared<detail::refresher_state>(h, std::move(ex), std::move(spawn),
                                                       std::move(log))) {
    std::weak_ptr<detail::refresher_state> w = state_;
    state_->stats_provider_ = h.add_stats_provider("sources", [w]() -> boost::json::value {
        if (auto s = w.lock())
            return s->stats();
        return boost::json::array();
    });
}

inline refresher::~refresher() {
    auto& s = *state_;
    {
        std::lock_guard lock(s.mutex_);
        for (auto const& c : s.channels_)
            s.hub_.on_refresh(c, {});
        for (auto id : s.watches_)
            s.hub_.remove_demand_handler(id);
    }
    s.hub_.remove_stats_provider(s.stats_provider_);
    stop();
}

inline void refresher::stop() {
    state_->stop();
}

inline void refresher::add(source src, refresh_options opt) {
    if (validate(src.topic))
        throw std::invalid_argument("source '" + src.name + "': invalid topic " + src.topic.key());
    if (!src.fetch)
        throw std::invalid_argument("source '" + src.name + "' has no fetch function");
    if (opt.refresh_interval.count() <= 0)
        throw std::invalid_argument("source '" + src.name + "': refresh_interval must be > 0");
    auto& s = *state_;
    auto e = std::make_shared<detail::refresh_entry>(std::move(src), opt, s.ex_);
    std::string const channel = e->src.topic.channel;
    std::weak_ptr<detail::refresher_state> w = state_;
    {
        std::lock_guard lock(s.mutex_);
        for (auto const& x : s.entries_)
            if (x->src.name == e->src.name)
                throw std::invalid_argument("duplicate source name '" + e->src.name + "'");
        s.entries_.push_back(e);
        if (std::find(s.channels_.begin(), s.channels_.end(), channel) == s.channels_.end()) {
            s.channels_.push_back(channel);
            s.hub_.on_refresh(channel, [w](const topic& t) {
                if (auto st = w.lock())
                    st->request(t);
            });
        }
        if (opt.on_demand) {
            std::weak_ptr<detail::refresh_entry> we = e;
            s.watches_.push_back(s.hub_.on_demand(channel, [w, we](std::size_t n) {
                auto st = w.lock();
                auto en = we.lock();
                if (!st || !en)
                    return;
                // From a session's thread: hand the news to the source's own executor.
                boost::asio::post(st->ex_, [en, n] {
                    if (n == 0)
                        en->linger_until = std::chrono::steady_clock::now() + en->opt.linger;
                    en->wake.cancel();
                });
            }));
        }
    }
    auto self = state_;
    s.spawn_([self, e] { return detail::refresher_state::run(self, e); }, "source:" + e->src.name);
}

inline boost::asio::awaitable<bool> refresher::async_refresh(std::string name, bool force) {
    auto e = state_->find(name);
    if (!e)
        co_return false;
    co_return co_await detail::refresher_state::refresh(state_, e, force);
}

inline std::size_t refresher::request_refresh(const topic& t) {
    return state_->request(t);
}

inline boost::json::array refresher::stats() const {
    return state_->stats();
}

} // namespace rtpush

#endif
