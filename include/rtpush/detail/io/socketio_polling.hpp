//
// rtpush: the requests of Socket.IO's long-polling transport (docs/protocol.md, "Coming from
// Socket.IO"). A handshake makes a polling_session on the shard that took it; its sid names
// that shard, so a later GET or POST, which may arrive on any connection and so any shard,
// runs there. Admission is the WebSocket upgrade's (origin, rate, connection limit); the
// token comes in the Socket.IO CONNECT packet.
//
#ifndef RTPUSH_DETAIL_IO_SOCKETIO_POLLING_HPP
#define RTPUSH_DETAIL_IO_SOCKETIO_POLLING_HPP

#include <rtpush/detail/io/polling_session.hpp>
#include <rtpush/detail/io/server_impl.hpp>

#include <boost/asio/co_spawn.hpp>

#include <charconv>
#include <random>

namespace rtpush::detail {

inline http_response server_impl::engine_io_error(const http_request& req, sio::eio_error e,
                                                  std::string_view why) {
    namespace http = boost::beast::http;
    http_response res{static_cast<http::status>(sio::http_status(e)), req.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = sio::error_body(e, why);
    res.prepare_payload();
    return res;
}

inline boost::asio::awaitable<std::optional<http_response>>
server_impl::socketio_poll(shard& sh, const http_request& req, const std::string& remote,
                           const std::string& remote_ip, std::uint64_t park_id) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    sio::handshake_query hq;
    if (auto e = sio::parse_handshake(req.target(), req.method_string(), false, hq)) {
        sh.counters().errors.fetch_add(1, std::memory_order_relaxed);
        co_return engine_io_error(req, *e);
    }
    if (hq.transport != sio::transport::polling)
        co_return engine_io_error(req, sio::eio_error::bad_request);
    if (hq.sid.empty()) {
        auto rules = admission();
        rules.stopping = sh.stopping;
        rules.auth_required = false; // checked at CONNECT
        auto f = admit(
            rules, req[http::field::origin], websocket_words,
            [&] { return handshake_allowed(remote_ip); }, [] { return std::string(); },
            [] { return std::optional<refusal>(); });
        if (f) {
            if (f->reason)
                sh.counters().count_rejected(*f->reason);
            co_return to_response(*f, req.version());
        }
        auto const id = next_id_.fetch_add(1, std::memory_order_relaxed);
        // The sid names the shard and the session, and a random part no other client can
        // guess (a sid is all a polling request needs to act as its session).
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        char secret[17];
        std::snprintf(secret, sizeof secret, "%016llx", static_cast<unsigned long long>(rng()));
        std::string sid = std::to_string(sh.index()) + "." + std::to_string(id) + "." + secret;
        auto s = std::make_shared<polling_session>(sh, cfg_, id, sid, remote);
        sh.add_polling(id, s);
        sh.counters().accepted.fetch_add(1, std::memory_order_relaxed);
        cfg_.logger.log(
            log_level::info, "connection_open",
            {{"client", s->client_id()}, {"transport", "socketio-polling"}, {"remote", remote}});
        co_return engine_io_text(req.version(), s->open());
    }
    std::size_t shard_index = 0;
    std::uint64_t id = 0;
    auto const& sid = hq.sid;
    if (!parse_polling_sid(sid, shard_index, id) || shard_index >= shards_.size())
        co_return engine_io_error(req, sio::eio_error::unknown_sid);
    shard* owner = shards_[shard_index].get();
    bool const get = req.method() == http::verb::get;
    if (!get && req.method() != http::verb::post)
        co_return engine_io_error(req, sio::eio_error::bad_request, "GET or POST");
    std::string body = get ? std::string() : req.body();
    // A GET with nothing to take parks its connection on this shard (the caller does, when
    // nothing returns here): the session, on its own shard, answers it there.
    shard* const park_on = park_id && get ? &sh : nullptr;
    auto on_owner = [owner, id, sid, get, body = std::move(body), version = req.version(), park_on,
                     park_id, this]() -> net::awaitable<std::optional<http_response>> {
        http_request r;
        r.version(version);
        auto s = owner->find_polling(id);
        if (!s || s->sid() != sid || s->ended())
            co_return engine_io_error(r, sio::eio_error::unknown_sid);
        if (get) {
            std::string out;
            if (park_on) {
                switch (s->poll_or_park(out, *park_on, park_id)) {
                case polling_session::poll_result::parked:
                    co_return std::nullopt;
                case polling_session::poll_result::overlapping:
                    co_return engine_io_error(r, sio::eio_error::bad_request, "overlapping polls");
                case polling_session::poll_result::answered:
                    break;
                }
            } else if (!co_await s->poll(out)) {
                co_return engine_io_error(r, sio::eio_error::bad_request, "overlapping polls");
            }
            co_return engine_io_text(version, std::move(out));
        }
        if (auto why = s->receive(body); !why.empty()) {
            owner->counters().errors.fetch_add(1, std::memory_order_relaxed);
            co_return engine_io_error(r, sio::eio_error::bad_request, why);
        }
        co_return engine_io_text(version, "ok", "text/html");
    };
    co_return co_await net::co_spawn(owner->get_executor(), std::move(on_owner),
                                     net::use_awaitable);
}

} // namespace rtpush::detail

#endif
