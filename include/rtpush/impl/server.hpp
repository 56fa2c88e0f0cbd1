#ifndef RTPUSH_IMPL_SERVER_HPP
#define RTPUSH_IMPL_SERVER_HPP

// The server's lifecycle: construction, start, the accept loop, the shards' ticks (heartbeats,
// deadlines, re-sends), tasks and the graceful shutdown. The other jobs of server_impl are
// defined in the files detail/io/server_impl.hpp lists.

#include <rtpush/detail/io/server_impl.hpp>
#include <rtpush/version.hpp>
#ifdef RTPUSH_HAS_SQLITE
#include <rtpush/sqlite_store.hpp>
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

#include <sys/socket.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace rtpush {

inline server::server(server_config cfg)
    : impl_(std::make_unique<detail::server_impl>(std::move(cfg))) {}

inline server::~server() {
    auto& d = *impl_;
    d.stop();
    if (!d.started_) {
        // never started: let posted work run down
        for (auto& s : d.shards_) {
            s->release_work();
            s->context().run();
        }
    }
    d.wait();
}

inline rtpush::hub& server::hub() noexcept {
    return impl_->hub_;
}
inline const server_config& server::config() const noexcept {
    return impl_->cfg_;
}
inline void server::start() {
    impl_->start();
}
inline void server::wait() {
    impl_->wait();
}
inline void server::run() {
    start();
    wait();
}
inline void server::stop() {
    impl_->stop();
}
inline std::uint16_t server::port() const noexcept {
    return impl_->port_;
}
inline boost::asio::any_io_executor server::get_executor() noexcept {
    return impl_->shards_.front()->get_executor();
}
inline void server::spawn(std::function<boost::asio::awaitable<void>()> task, std::string name) {
    impl_->spawn(std::move(task), std::move(name));
}
inline boost::json::object server::counters() const {
    return impl_->counters();
}
inline boost::asio::awaitable<std::string> server::metrics() {
    return impl_->metrics();
}
inline alert_result server::trigger_alert(boost::json::object data) {
    return impl_->trigger_alert(std::move(data));
}
inline alert_result server::acknowledge_alert(std::string_view id, std::string_view by) {
    return impl_->acknowledge_alert(id, by);
}
inline alert_result server::resolve_alert(std::string_view id, std::string_view by) {
    return impl_->resolve_alert(id, by);
}
inline std::vector<alert> server::alerts(const alert_filter& f) const {
    return impl_->alerts(f);
}
inline std::optional<alert> server::find_alert(std::string_view id) const {
    return impl_->find_alert(id);
}
inline bool server::leads() const {
    return impl_->leads();
}

inline void server::on_alert_evaluation(std::function<boost::json::object()> evaluate) {
    impl_->alert_evaluator_ = std::move(evaluate);
}
inline boost::asio::awaitable<server::http_response> server::handle(const http_request& req) {
    return impl_->handle(req);
}
inline void server::accept_connection(boost::asio::ip::tcp::socket socket, http_request request,
                                      std::string buffered) {
    impl_->accept_connection(std::move(socket), std::move(request), std::move(buffered));
}

} // namespace rtpush

namespace rtpush::detail {

// The task function lives in this coroutine's frame for as long as the task runs: a
// capturing coroutine lambda reads its captures through the function object.
inline boost::asio::awaitable<void> run_task(std::function<boost::asio::awaitable<void>()> f) {
    co_await f();
}

inline server_impl::server_impl(server_config cfg)
    : cfg_(std::move(cfg))
    , hub_(cfg_.history)
    , handshake_limiter_(cfg_.max_handshakes_per_ip, std::max(1.0, cfg_.max_handshakes_per_ip))
    , alerts_(cfg_.max_alerts) {
    alerts_.escalate_after(cfg_.alert_escalation_after);
    // First: the store gives the hub its epoch, which the ack ids below start with.
    if (!cfg_.data_dir.empty())
        open_store();
    if (auto* e = hub_.get_engine())
        alerts_.restore(e->saved_alerts()); // the alert book of the previous run
    unsigned n = cfg_.threads ? cfg_.threads : std::thread::hardware_concurrency();
    if (n == 0)
        n = 1;
    std::vector<shard*> raw;
    // Ack ids start with the hub's epoch and a tag of this process: an id from before a
    // restart (which keeps the epoch with a data directory) or of another node sharing the
    // epoch (the Redis engine) is unknown here, never another broadcast's.
    acks_ = std::make_unique<ack_registry>(cfg_.acks,
                                           hub_.epoch().substr(0, 8) + "-" + random_hex(3) + "-");
    if (store_) {
        // What was not acked before the restart is re-sent as clients come back; the store
        // keeps each step (docs/operations.md, "Durable state"), from the restore on: what
        // this run's limits drop of it is deleted there too.
        acks_->tracker.journal(store_.get());
        acks_->tracker.restore(store_->saved_acks(), std::chrono::steady_clock::now());
    }
    hub_.on_presence_relay([this](relayed r) { on_presence_relay(std::move(r)); });
    for (unsigned i = 0; i < n; ++i) {
        shards_.push_back(std::make_unique<shard>(i));
        shards_.back()->quotas = &quotas_;
        shards_.back()->acks = acks_.get();
        shards_.back()->sio_sessions = &sio_sessions_;
        shards_.back()->presence = this;
        shards_.back()->deliver_to = [sh = shards_.back().get()](const audience& to,
                                                                 const frame_ptr& f) {
            return deliver_to(*sh, to, f);
        };
        shards_.back()->answer_parked = [this, sh = shards_.back().get()](std::uint64_t id,
                                                                          std::string body) {
            answer_parked_poll(*sh, id, std::move(body));
        };
        shards_.back()->on_idle_ready = [this, sh = shards_.back().get()](idle_connection* c) {
            idle_ready(*sh, c);
        };
        shards_.back()->poller().on_events(&server_impl::poller_events);
        shards_.back()->set_cork(cfg_.cork_delay, cfg_.cork_threshold, cfg_.cork_mode);
        shards_.back()->bind_protocol(hub_, cfg_);
        raw.push_back(shards_.back().get());
    }
    if (cfg_.idle_timeout.count() == 0)
        cfg_.idle_timeout = cfg_.heartbeat_interval * 5 / 2;
    if (cfg_.auth_required && cfg_.jwt_secret.empty())
        throw std::invalid_argument("auth_required needs a jwt_secret to verify tokens with");
    if (cfg_.auth_required && cfg_.allow_anonymous)
        throw std::invalid_argument("auth_required and allow_anonymous contradict each other");
    // A secret implies required tokens (docs/security.md): applied here, once, so that the
    // session, SSE, REST and any transport read one flag.
    cfg_.auth_required =
        token_required(!cfg_.jwt_secret.empty(), cfg_.auth_required, cfg_.allow_anonymous);
    if (!cfg_.tls_cert_file.empty() || !cfg_.tls_key_file.empty())
        tls_.emplace(make_server_tls_context(cfg_.tls_cert_file, cfg_.tls_key_file));
    hub_.attach(std::move(raw));
}

inline void server_impl::start() {
    if (started_)
        return;
    share_alert_book(); // before the engine runs: it calls the hub's watcher from then on
    namespace net = boost::asio;
    auto& s0 = *shards_.front();
    if (cfg_.listen) {
        auto const addr = net::ip::make_address(cfg_.host);
        net::ip::tcp::endpoint ep{addr, cfg_.port};
        acceptor_.emplace(s0.get_executor());
        acceptor_->open(ep.protocol());
        acceptor_->set_option(net::socket_base::reuse_address(true));
        if (cfg_.reuse_port) {
#if defined(SO_REUSEPORT)
            int const one = 1;
            if (::setsockopt(acceptor_->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one,
                             sizeof one) != 0)
                throw boost::system::system_error(
                    boost::system::error_code(errno, boost::system::system_category()),
                    "SO_REUSEPORT");
#else
            throw boost::system::system_error(
                boost::system::errc::make_error_code(boost::system::errc::not_supported),
                "SO_REUSEPORT");
#endif
        }
        // Frames go out as soon as they are written (the write path batches them itself).
        // Linux gives accepted sockets the listener's TCP_NODELAY: no setsockopt per
        // connection (accept_loop).
        acceptor_->set_option(net::ip::tcp::no_delay(true));
        acceptor_->bind(ep);
        acceptor_->listen(net::socket_base::max_listen_connections);
        port_ = acceptor_->local_endpoint().port();
    }
    started_ = true;
    started_at_ = std::chrono::steady_clock::now();

    if (cfg_.listen)
        spawn_on(s0, accept_loop(), "accept");
    spawn_on(s0, housekeeping_loop(), "housekeeping");
    for (auto& s : shards_)
        spawn_on(*s, heartbeat_loop(*s), "heartbeat");
    for (auto& s : shards_) {
        shard* sp = s.get();
        threads_.emplace_back([sp] { sp->context().run(); });
    }
    cfg_.logger.log(log_level::info, cfg_.listen ? "listening" : "started",
                    {{"host", cfg_.listen ? cfg_.host : std::string()},
                     {"port", port_},
                     {"ws_path", cfg_.ws_path},
                     {"tls", tls_.has_value()},
                     {"threads", shards_.size()},
                     {"version", version_string}});
    if (stopping_)
        boost::asio::post(s0.get_executor(), [this] {
            stopping_ = false;
            stop();
        });
}

inline void server_impl::wait() {
    for (auto& t : threads_)
        if (t.joinable())
            t.join();
    // Nothing publishes any more: the store commits its last batch and its writer ends.
    if (store_) {
        hub_.set_engine(nullptr);
        acks_->tracker.journal(nullptr);
        store_.reset();
    }
}

inline void server_impl::open_store() {
#ifdef RTPUSH_HAS_SQLITE
    auto s = std::make_unique<sqlite_store>(
        hub_, sqlite_store_config{.data_dir = cfg_.data_dir,
                                  .history = cfg_.history,
                                  .sync_full = cfg_.fsync_every_commit,
                                  .logger = cfg_.logger});
    hub_.set_engine(s.get());
    store_ = std::move(s);
#else
    // Never a silent memory-only run: the caller asked for durable state.
    throw boost::system::system_error(
        error::store_failed,
        "server_config::data_dir needs the durable store: link rtpush::sqlite");
#endif
}

inline void server_impl::stop() {
    if (stopping_.exchange(true) || !started_)
        return;
    boost::asio::post(shards_.front()->get_executor(), [this] {
        cfg_.logger.log(log_level::info, "shutdown", {{"connections", connection_count()}});
        boost::system::error_code ec;
        if (acceptor_)
            acceptor_->close(ec);
        for (auto& sig : task_signals_)
            sig.emit(boost::asio::cancellation_type::terminal);
        for (auto& s : shards_) {
            shard* sp = s.get();
            boost::asio::post(sp->get_executor(), [this, sp] { shutdown_shard(*sp); });
        }
    });
}

inline void server_impl::shutdown_shard(shard& sh) {
    sh.stopping = true;
    // Copy: closing may remove sessions from the map.
    std::vector<session*> sessions;
    for (auto const& [id, s] : sh.sessions())
        sessions.push_back(s);
    for (auto* s : sessions)
        s->close(1001, "server shutting down");
    // An SSE stream has no closing handshake; the browser reconnects with Last-Event-ID.
    std::vector<sse_session*> streams;
    for (auto const& [id, s] : sh.sse_sessions())
        streams.push_back(s);
    for (auto* s : streams)
        s->abort("server shutting down");
    std::vector<std::shared_ptr<polling_session>> polling;
    for (auto const& [id, s] : sh.polling_sessions())
        polling.push_back(s);
    for (auto const& s : polling)
        s->end("server shutting down");
    for (auto* t : sh.timers)
        t->cancel();
    for (auto* sock : sh.http_sockets) {
        boost::system::error_code ec;
        sock->cancel(ec);
    }
    sh.expire_idle({}, true);
    auto on_drained = [this, &sh](std::exception_ptr) {
        // The parked GETs were answered (the close packet) while draining; any left close.
        sh.close_parked_polls();
        sh.release_work();
        sh.poller().stop(); // no session waits on it any more (or they are being forced out)
        if (sh.live_tasks > 0 || !sh.sessions().empty())
            sh.context().stop(); // something ignored every request to end; do not hang
    };
    boost::asio::co_spawn(sh.get_executor(), drain(sh), std::move(on_drained));
}

inline boost::asio::awaitable<void> server_impl::drain(shard& sh) {
    using namespace std::chrono;
    boost::asio::steady_timer t(sh.get_executor());
    auto const deadline = steady_clock::now() + cfg_.shutdown_timeout;
    // Parked polling GETs are answered (the close packet) by their sessions, which end now,
    // on whichever shard they live: wait for those answers too.
    while ((sh.live_tasks > 0 || !sh.sessions().empty() || sh.parked_count() > 0) &&
           steady_clock::now() < deadline) {
        t.expires_after(milliseconds(5));
        co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    if (sh.live_tasks > 0 || !sh.sessions().empty()) {
        cfg_.logger.log(log_level::warning, "shutdown_forced",
                        {{"tasks", sh.live_tasks}, {"sessions", sh.sessions().size()}});
        std::vector<session*> sessions;
        for (auto const& [id, s] : sh.sessions())
            sessions.push_back(s);
        for (auto* s : sessions)
            s->abort();
        auto const hard = steady_clock::now() + seconds(1);
        while ((sh.live_tasks > 0 || !sh.sessions().empty()) && steady_clock::now() < hard) {
            t.expires_after(milliseconds(5));
            co_await t.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
        }
    }
}

inline void server_impl::spawn_on(shard& sh, boost::asio::awaitable<void> task, std::string name,
                                  boost::asio::cancellation_slot slot) {
    ++sh.live_tasks;
    auto done = [this, &sh, name = std::move(name)](std::exception_ptr e) {
        --sh.live_tasks;
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (boost::system::system_error const& se) {
            if (se.code() != boost::asio::error::operation_aborted)
                cfg_.logger.log(log_level::error, "task_failed",
                                {{"task", name}, {"what", se.what()}});
        } catch (std::exception const& ex) {
            cfg_.logger.log(log_level::error, "task_failed", {{"task", name}, {"what", ex.what()}});
        }
    };
    boost::asio::co_spawn(sh.get_executor(), std::move(task),
                          boost::asio::bind_cancellation_slot(slot, std::move(done)));
}

inline void server_impl::spawn(std::function<boost::asio::awaitable<void>()> task,
                               std::string name) {
    auto& s0 = *shards_.front();
    boost::asio::post(
        s0.get_executor(), [this, &s0, task = std::move(task), name = std::move(name)]() mutable {
            if (stopping_)
                return;
            auto it = task_signals_.emplace(task_signals_.end());
            ++s0.live_tasks;
            auto done = [this, &s0, it, name](std::exception_ptr e) {
                --s0.live_tasks;
                task_signals_.erase(it);
                if (!e)
                    return;
                try {
                    std::rethrow_exception(e);
                } catch (boost::system::system_error const& se) {
                    if (se.code() != boost::asio::error::operation_aborted)
                        cfg_.logger.log(log_level::error, "task_failed",
                                        {{"task", name}, {"what", se.what()}});
                } catch (std::exception const& ex) {
                    cfg_.logger.log(log_level::error, "task_failed",
                                    {{"task", name}, {"what", ex.what()}});
                }
            };
            boost::asio::co_spawn(s0.get_executor(), run_task(std::move(task)),
                                  boost::asio::bind_cancellation_slot(it->slot(), std::move(done)));
        });
}

inline void server_impl::spawn_connection(shard& sh, boost::asio::awaitable<void> task) {
    // Counted on the shard, so that shutdown waits for it; an exception is logged, not lost.
    ++sh.live_tasks;
    shard* sp = &sh;
    auto done = [this, sp](std::exception_ptr e) {
        --sp->live_tasks;
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (std::exception const& ex) {
                cfg_.logger.log(log_level::error, "connection_failed", {{"what", ex.what()}});
            }
        }
    };
    boost::asio::co_spawn(sh.get_executor(), std::move(task), std::move(done));
}

inline std::size_t server_impl::connection_count() const noexcept {
    std::size_t n = 0;
    for (auto const& s : shards_)
        n += s->counters().connections.load(std::memory_order_relaxed);
    return n;
}

inline boost::asio::awaitable<void> server_impl::accept_loop() {
    namespace net = boost::asio;
    std::size_t next = 0;
    net::steady_timer backoff(shards_.front()->get_executor());
    for (;;) {
        // Readiness, then accept4() until the backlog is empty: a connection is accepted
        // non-blocking and into no reactor, so that its only epoll_ctl is its session's
        // registration in its shard's poller (docs/benchmarks.md, "The handshake path, step
        // by step"). Asio re-arms the listener at each wait: a backlog left behind (the
        // batch's end) is reported again at once.
        auto [wec] = co_await acceptor_->async_wait(net::socket_base::wait_read,
                                                    net::as_tuple(net::use_awaitable));
        if (stopping_ || wec == net::error::operation_aborted || !acceptor_->is_open())
            co_return;
        for (int batch = 0; batch < 64 && !stopping_; ++batch) {
            sockaddr_storage addr{};
            socklen_t len = sizeof addr;
            int const fd = ::accept4(acceptor_->native_handle(), reinterpret_cast<sockaddr*>(&addr),
                                     &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                int const err = errno;
                // A connection that failed before its accept, or the network's errors that
                // accept(2) passes on: the next one may be fine.
                if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == ENETDOWN ||
                    err == ENOPROTOOPT || err == EHOSTDOWN || err == ENONET ||
                    err == EHOSTUNREACH || err == EOPNOTSUPP || err == ENETUNREACH)
                    continue;
                if (err == EAGAIN || err == EWOULDBLOCK)
                    break;
                // e.g. EMFILE: log, breathe, go on; an accept error must not end the server
                cfg_.logger.log(log_level::error, "accept_failed",
                                {{"what", std::system_category().message(err)}});
                backoff.expires_after(std::chrono::milliseconds(50));
                co_await backoff.async_wait(net::as_tuple(net::use_awaitable));
                break;
            }
            unique_fd conn(fd);
            net::ip::tcp::endpoint peer;
            std::memcpy(peer.data(), &addr, std::min<std::size_t>(len, peer.capacity()));
            auto& sh = *shards_[next++ % shards_.size()];
            if (&sh == shards_.front().get() && !tls_) {
                begin_connection(sh, std::move(conn), peer); // this thread's own shard
                continue;
            }
            // On the shard's own thread, whose poller and buffers the connection then uses;
            // `conn` closes with the handler if the shard never runs it.
            net::post(sh.get_executor(), [this, &sh, conn = std::move(conn), peer]() mutable {
                if (!sh.stopping)
                    begin_connection(sh, std::move(conn), peer);
            });
        }
    }
}

inline void server_impl::begin_connection(shard& sh, unique_fd fd,
                                          const boost::asio::ip::tcp::endpoint& peer) noexcept {
    try {
        if (!tls_) {
            await_request(sh, std::move(fd), peer);
            return;
        }
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket sock(sh.get_executor());
        sock.assign(peer.protocol(), fd.get(), ec);
        if (ec)
            return; // `fd` closes
        fd.release();
        spawn_connection(sh, handle_connection(sh, std::move(sock)));
    } catch (std::exception const& e) {
        // e.g. bad_alloc: this connection ends, not the thread (nor the accept loop)
        cfg_.logger.log(log_level::error, "connection_failed", {{"what", e.what()}});
    }
}

inline boost::asio::awaitable<void> server_impl::heartbeat_loop(shard& sh) {
    namespace net = boost::asio;
    net::steady_timer t(sh.get_executor());
    // The ping frame is the same for everyone; the heartbeat message is built once per tick.
    auto const ping = make_shared_frame(make_frame(opcode::ping, ""));
    sh.timers.push_back(&t);
    // A short tick also enforces close handshake deadlines; the heartbeat itself goes out
    // every heartbeat_interval. One timer per shard, none per connection.
    auto const tick = std::min<std::chrono::steady_clock::duration>(cfg_.heartbeat_interval,
                                                                    std::chrono::milliseconds(250));
    auto next_heartbeat = std::chrono::steady_clock::now() + cfg_.heartbeat_interval;
    auto next_escalation = std::chrono::steady_clock::now();
    std::vector<session*> sessions;
    std::vector<sse_session*> streams;
    std::vector<std::shared_ptr<polling_session>> polling;
    while (!sh.stopping) {
        t.expires_after(tick);
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        if (sh.stopping)
            break;
        auto const now = std::chrono::steady_clock::now();
        auto const wall = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count(); // token expiry is wall-clock time
        sh.expire_idle(now);            // connections silent past the handshake timeout
        sessions.clear();
        for (auto const& [id, s] : sh.sessions())
            sessions.push_back(s);
        for (auto* s : sessions) {
            s->check_close_deadline(now);
            s->check_auth_deadline(now);
            s->check_token_expiry(wall);
            s->release_idle(now);
        }
        streams.clear();
        for (auto const& [id, s] : sh.sse_sessions())
            streams.push_back(s);
        for (auto* s : streams)
            s->check_token_expiry(wall);
        polling.clear();
        for (auto const& [id, s] : sh.polling_sessions())
            polling.push_back(s); // a reference: the checks below may end the session
        for (auto const& s : polling)
            s->check_token_expiry(wall);
        resend_unacked(sh, now);
        if (sh.index() == 0 && now >= next_escalation) {
            next_escalation = now + std::chrono::seconds(1); // the alerts are the server's
            escalate_alerts();
        }
        if (now < next_heartbeat)
            continue;
        next_heartbeat = now + cfg_.heartbeat_interval;
        auto const hb =
            make_shared_frame(make_frame(opcode::text, message::heartbeat(connection_count())));
        for (auto* s : sessions)
            s->on_heartbeat(hb, ping, now, cfg_.idle_timeout);
        for (auto const& [id, s] : sh.sse_sessions())
            s->on_heartbeat(hb);
        // The same list: a session the expiry check ended ignores its heartbeat.
        for (auto const& s : polling)
            s->on_heartbeat(now, cfg_.idle_timeout);
    }
}

inline std::uint64_t server_impl::deliver_to(shard& sh, const audience& to, const frame_ptr& f) {
    // Every transport's connections: a Socket.IO client upgraded from polling is also known by
    // the id its client was given then (socket.id). Chosen first, pushed after: a push may end
    // its connection (a slow consumer), which leaves the shard's maps.
    std::vector<session*> sessions;
    for (auto const& [id, s] : sh.sessions())
        if (to.includes(s->client_id(), s->socketio_alias(), s->organization()))
            sessions.push_back(s);
    std::vector<sse_session*> streams;
    for (auto const& [id, s] : sh.sse_sessions())
        if (to.includes(s->client_id(), {}, s->organization()))
            streams.push_back(s);
    std::vector<std::shared_ptr<polling_session>> polling;
    for (auto const& [id, s] : sh.polling_sessions())
        if (!s->ended() && to.includes(s->client_id(), {}, s->organization()))
            polling.push_back(s);
    for (auto* s : sessions)
        s->push(f);
    for (auto* s : streams)
        s->push(f);
    for (auto const& s : polling)
        s->push(f);
    return sessions.size() + streams.size() + polling.size();
}

inline void server_impl::resend_unacked(shard& sh, std::chrono::steady_clock::time_point now) {
    std::vector<ack_tracker::resend> due;
    {
        std::lock_guard lock(acks_->mutex);
        due = acks_->tracker.due(sh.index(), now);
    }
    for (auto const& r : due)
        if (auto* s = sh.find_session(r.session))
            s->push(r.frame);
}

inline boost::asio::awaitable<void> server_impl::housekeeping_loop() {
    namespace net = boost::asio;
    net::steady_timer t(shards_.front()->get_executor());
    shards_.front()->timers.push_back(&t);
    std::uint64_t last = hub_.stats().total_messages;
    [[maybe_unused]] std::uint64_t last_accepted = 0;
    [[maybe_unused]] int quiet_ticks = 0;
    [[maybe_unused]] std::uint64_t last_released = 0;
    auto last_t = std::chrono::steady_clock::now();
    while (!shards_.front()->stopping) {
        t.expires_after(std::chrono::seconds(1));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        auto const now = std::chrono::steady_clock::now();
        auto const total = hub_.stats().total_messages;
        double const secs = std::chrono::duration<double>(now - last_t).count();
        messages_per_second_ = static_cast<double>(total - last) / secs;
        last = total;
        last_t = now;
        if (cfg_.max_handshakes_per_ip > 0) {
            std::lock_guard<std::mutex> lock(handshake_mutex_);
            handshake_limiter_.prune(now); // forget addresses that went quiet
        }
#if defined(__GLIBC__)
        // After a wave of connections the handshake buffers are free but scattered between
        // live sessions; glibc keeps such pages resident. Hand them back once things settle.
        // Connections opened on any shard (each io thread allocates from its own arena, and
        // malloc_trim visits them all).
        // Likewise after a heartbeat: it gave every quiet session a queue and a write batch for
        // a moment, and those blocks, freed a second later, sit between the sessions (measured:
        // 19,000 idle connections held 0.83 KiB each before their first heartbeat, 1.29 after).
        std::uint64_t accepted = 0, released = 0;
        for (auto const& sp : shards_) {
            accepted += sp->counters().accepted.load(std::memory_order_relaxed);
            released += sp->counters().idle_released.load(std::memory_order_relaxed);
        }
        if ((accepted != last_accepted && ++quiet_ticks >= 2) || released - last_released >= 1024) {
            ::malloc_trim(0);
            last_accepted = accepted;
            last_released = released;
            quiet_ticks = 0;
        }
#endif
    }
}

} // namespace rtpush::detail

#include <rtpush/detail/io/between_requests.hpp>
#include <rtpush/detail/io/handshake.hpp>
#include <rtpush/detail/io/socketio_polling.hpp>
#include <rtpush/impl/server_publish.hpp>
#include <rtpush/impl/server_routes.hpp>
#include <rtpush/impl/server_seed_routes.hpp>
#include <rtpush/impl/server_stats.hpp>

#endif
