//
// rtpush: Socket.IO over a connection (docs/protocol.md, "Coming from Socket.IO"): the
// Engine.IO and Socket.IO packets a client sends, turned into the client protocol's messages
// (detail/client_protocol.hpp, detail/seed_events.hpp), and rtpush's server messages turned
// into Socket.IO EVENTs. A connection type derives from socketio_protocol<Self> beside
// client_protocol<Self> and provides, besides what client_protocol needs:
//   socketio_state& sio_state();     void send_packet(std::string engine_io_packet);
//   void push_twin(frame_ptr);  (a Socket.IO frame, past the hold of a resumed session)
//   void on_probe();  void on_upgrade();  (Engine.IO's "2probe" and "5": a polling session
//                                          moving to this WebSocket; no-ops elsewhere)
// Its send_json(rtpush message) calls sio_json(); its push() sends socketio_twin(frame).
// Free of I/O; the packet codec is detail/socketio.hpp.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_SOCKETIO_PROTOCOL_HPP
#define RTPUSH_DETAIL_SOCKETIO_PROTOCOL_HPP

#include <rtpush/detail/client_protocol.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/seed_events.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/detail/socketio.hpp>
#include <rtpush/detail/socketio_recovery.hpp>

#include <boost/json.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// What a Socket.IO connection knows besides the client protocol's state.
struct socketio_state {
    bool connected = false;                 ///< the client's CONNECT to "/" was accepted
    std::optional<std::uint64_t> answering; ///< an EVENT with this ack id is being handled
    boost::json::array answers;             ///< ... and the rtpush answers it gathered
    std::uint64_t upgrade_from = 0;         ///< the polling session this WebSocket takes over
    std::string upgrade_sid;                ///< ... its whole sid, checked before taking it
    std::string socket_id;       ///< taken over: the id its client was given while polling
    std::uint64_t took_over = 0; ///< ... and that polling session's id (shard::upgraded_session)
    // Connection state recovery (detail/socketio_recovery.hpp):
    std::string pid;                  ///< the private session id given in CONNECT
    std::unique_ptr<written_log> log; ///< the publications written (from the first one on)
    bool client_left = false;         ///< the client disconnected on purpose: keep nothing
    bool holding = false;             ///< resuming: publications wait for the CONNECT answer
    std::vector<frame_ptr> held;
    // Acknowledged delivery: the ack ids of the publications sent with an ack request, by the
    // request's id (the client's callback answers `43<id>[...]`).
    std::uint64_t last_ack_request = 0;
    std::map<std::uint64_t, std::string> ack_requests;
    // Answers that come after their EVENT was handled (`presence`, a `publish` through an
    // engine): the EVENT's ACK waits for them (sio_hold_answer, sio_answer).
    std::uint32_t answers_held = 0; ///< taken while `answering`
    struct held_ack {
        std::uint64_t ack = 0;
        std::uint32_t waiting = 0;
        boost::json::array answers;
    };
    std::vector<held_ack> held_acks;
};

/// Ack requests a connection keeps unanswered; beyond, the oldest is forgotten (its
/// publication is re-sent and asks again).
inline constexpr std::size_t max_socketio_ack_requests = 1024;

/// The Socket.IO EVENT of one rtpush server message (serialised JSON): a publication
/// (`update`, `initial`) becomes `42["<event>",<data>,"<offset>"]`, under the name the
/// producer gave it (`kpi:update`, `alert:triggered`) and tagged with its recovery offset
/// (`<epoch>~<topic>~<seq>`, which a listener sees as its last argument); every other
/// message `42["<type>",<the message>]` (`subscribed`, `error`, `refreshing`...). Empty when
/// the text is not an rtpush message. With `ack_request`, a publication asks the client's
/// callback for an answer instead, `42<id>["<event>",<data>]`, untagged as Socket.IO's own
/// acked events are (the listener is `(data, ack) => ...`).
inline std::string socketio_event_of(std::string_view json_text,
                                     std::optional<std::uint64_t> ack_request = {}) {
    boost::system::error_code ec;
    auto v = boost::json::parse(json_text, ec);
    if (ec || !v.is_object())
        return {};
    auto const& o = v.get_object();
    auto const* type = o.if_contains("type");
    if (!type || !type->is_string())
        return {};
    std::string_view const t = type->get_string();
    if (t == "update" || t == "initial") {
        auto const* ev = o.if_contains("event");
        auto const* data = o.if_contains("data");
        auto const* topic = o.if_contains("topic");
        auto const* seq = o.if_contains("seq");
        auto const* epoch = o.if_contains("epoch");
        std::string offset;
        if (topic && topic->is_string() && seq && seq->is_uint64() && epoch && epoch->is_string())
            offset = sio::make_offset(epoch->get_string(), topic->get_string(), seq->get_uint64());
        else if (topic && topic->is_string() && seq && seq->is_int64() && seq->get_int64() >= 0 &&
                 epoch && epoch->is_string())
            offset = sio::make_offset(epoch->get_string(), topic->get_string(),
                                      static_cast<std::uint64_t>(seq->get_int64()));
        sio::event_options opt;
        if (ack_request)
            opt.ack_id = ack_request;
        else
            opt.offset = offset;
        if (ev && ev->is_string() && data)
            return sio::encode_event(ev->get_string(), boost::json::serialize(*data), opt);
    }
    return sio::encode_event(t, json_text);
}

/// A frame's Socket.IO form, made by the first Socket.IO connection that sends it and shared
/// by all the others (as the deflated form is, see detail/deflate.hpp): a broadcast is
/// serialised once per transport. Keeps the frame's lane, topic and timing.
inline frame_ptr socketio_twin(const frame_ptr& f) {
    if (auto t = f->socketio.load(std::memory_order_acquire))
        return t;
    std::string packet = socketio_event_of(frame_payload(f->bytes));
    if (packet.empty())
        return nullptr;
    return share_twin(f, f->socketio, make_frame(opcode::text, packet));
}

template <class Self>
class socketio_protocol {
public:
    /// The Engine.IO open packet this connection starts with; a polling one offers the
    /// upgrade to WebSocket.
    std::string open_packet(bool polling = false);
    /// Handles one Engine.IO packet (a WebSocket text frame's payload).
    void on_engine_io(std::string_view text);
    /// An rtpush answer (serialised JSON) of the client protocol: gathered into the ACK of the
    /// EVENT being handled, or sent as an EVENT.
    void sio_json(std::string text);
    /// What this connection sends for a frame: its shared Socket.IO twin, or, for a
    /// publication that must be acknowledged (`requires_ack`), a packet of its own asking the
    /// client's callback for an answer, which acks it (docs/protocol.md, "Coming from
    /// Socket.IO"). Null when the frame has no Socket.IO form.
    frame_ptr sio_frame(const frame_ptr& f);
    /// A publication's Socket.IO frame on its way to the transport: true when it is held
    /// back (a session being resumed answers CONNECT first).
    bool sio_hold(const frame_ptr& twin);
    /// While an EVENT with an ack id is handled: its ACK is to wait for one more answer, which
    /// comes later through sio_answer(token). 0 (no ACK to hold) outside such an EVENT: the
    /// answer then comes as an event, like any message.
    std::uint64_t sio_hold_answer() {
        auto& st = self().sio_state();
        if (!st.answering)
            return 0;
        ++st.answers_held;
        return *st.answering + 1;
    }
    /// An answer sio_hold_answer() announced (token 0: sent as sio_json sends it).
    void sio_answer(std::uint64_t token, std::string text);
    /// Frames the transport wrote (or handed to a polling GET): the publications among them
    /// go to the recovery log.
    void sio_written(const frame_ptr& f) {
        auto& st = self().sio_state();
        if (st.pid.empty() || f->seq == 0 || f->topic.empty())
            return;
        // Made at the first publication: an idle connection keeps no log (its memory is the
        // point of docs/benchmarks.md's idle figures).
        if (!st.log)
            st.log = std::make_unique<written_log>();
        st.log->wrote(f->topic, f->seq);
    }
    /// The connection ends: unless the client left on purpose, its subscriptions and log are
    /// kept for the recovery window under its pid. Called before the subscriptions go.
    void sio_keep();

protected:
    ~socketio_protocol() = default;

private:
    Self& self() noexcept { return static_cast<Self&>(*this); }
    void on_socketio(std::string_view text);
    void on_connect(const sio::sio_packet& p);
    void on_event(sio::sio_packet& p);
    void on_ack(const sio::sio_packet& p);
    /// `ACK <ack>` with {success: no answer is an error, results: answers}.
    void send_ack(std::uint64_t ack, boost::json::array answers);
    void refuse(sio::errc e);
    /// Seed 004's `metrics:get`: rtpush's `get` (its access rules), answered as `metrics:data`
    /// or `metrics:error`, in the ACK when the client asked for one (docs/protocol.md, "Coming from
    /// Socket.IO").
    void metrics_get(seed_event& ev, std::optional<std::uint64_t> ack_id);
    /// Resubscribes a kept session at the positions the client's offset gives; false (and
    /// nothing changed) when it cannot be resumed without a loss.
    bool resume(kept_socketio_session& kept, std::string_view offset);
};

template <class Self>
std::string socketio_protocol<Self>::open_packet(bool polling) {
    auto const& cfg = self().protocol_env().cfg;
    sio::open_config oc;
    oc.ping_interval = cfg.heartbeat_interval;
    // The server drops a silent peer after idle_timeout (2.5 heartbeats by default); the
    // client waits pingInterval + pingTimeout for a ping before it gives up on the server.
    // An idle timeout set explicitly is the pingTimeout (seed 001's 60 s, docs/configuration.md).
    oc.ping_timeout = cfg.idle_timeout.count() > 0
                          ? cfg.idle_timeout
                          : std::max(std::chrono::milliseconds(20000), cfg.heartbeat_interval);
    oc.max_payload = cfg.max_message_size;
    oc.allow_upgrade = polling;
    return sio::encode_open(self().engine_sid(), oc, !polling);
}

template <class Self>
void socketio_protocol<Self>::refuse(sio::errc e) {
    // The reference server closes a connection that sends a packet it cannot decode; the
    // close frame says why.
    self().protocol_env().counters.errors.fetch_add(1, std::memory_order_relaxed);
    self().close(e == sio::errc::too_large ? 1009 : 1008,
                 "invalid Socket.IO packet: " + std::string(sio::describe(e)));
}

template <class Self>
void socketio_protocol<Self>::on_engine_io(std::string_view text) {
    sio::eio_packet p;
    if (auto e = sio::decode_eio(text, p); e != sio::errc::ok)
        return refuse(e);
    switch (p.type) {
    case sio::eio_type::ping: // a probe ("2probe"), or an Engine.IO v3 habit
        if (p.data == "probe") {
            self().on_probe();
            if (self().closing())
                break; // no session to upgrade: no "3probe"
        }
        self().send_packet(sio::encode_eio(sio::eio_type::pong, p.data));
        break;
    case sio::eio_type::upgrade:
        self().on_upgrade();
        break;
    case sio::eio_type::pong:
    case sio::eio_type::noop:
        break;                 // the transport counted the packet as a sign of life
    case sio::eio_type::close: // a transport's close ("transport close"): recoverable
        self().close(1000, "");
        break;
    case sio::eio_type::message:
        on_socketio(p.data);
        break;
    case sio::eio_type::open:
        refuse(sio::errc::unknown_type);
        break;
    }
}

template <class Self>
void socketio_protocol<Self>::on_socketio(std::string_view text) {
    auto const& cfg = self().protocol_env().cfg;
    sio::limits lim;
    lim.max_size = cfg.max_message_size;
    lim.max_depth = cfg.max_json_depth;
    sio::sio_packet p;
    if (auto e = sio::decode_sio(text, p, lim); e != sio::errc::ok)
        return refuse(e);
    auto& st = self().sio_state();
    if (p.nsp != "/") {
        // One namespace: another is refused as the reference refuses an unknown one.
        if (p.type == sio::sio_type::connect)
            self().send_packet(sio::encode_connect_error("Invalid namespace", p.nsp));
        return;
    }
    switch (p.type) {
    case sio::sio_type::connect:
        on_connect(p);
        break;
    case sio::sio_type::disconnect:
        st.connected = false;
        st.client_left = true;
        self().close(1000, "");
        break;
    case sio::sio_type::event:
        if (st.connected) // packets of a namespace not joined are ignored (reference)
            on_event(p);
        break;
    case sio::sio_type::ack:
        if (st.connected)
            on_ack(p);
        break;
    default:
        break;
    }
}

template <class Self>
void socketio_protocol<Self>::on_connect(const sio::sio_packet& p) {
    auto& s = self();
    auto& st = s.sio_state();
    auto const& cfg = s.protocol_env().cfg;
    sio::connect_auth auth;
    if (auto e = sio::parse_connect_auth(p.data, auth); e != sio::errc::ok) {
        s.send_packet(sio::encode_connect_error(sio::describe(e)));
        return;
    }
    // The token goes through the same verifier as rtpush's `authenticate`; its answers are
    // gathered, not sent: a Socket.IO client learns the outcome from CONNECT or CONNECT_ERROR.
    if (!auth.token.empty() || !auth.others.empty()) {
        boost::json::object m = auth.others;
        m["type"] = "authenticate";
        if (!auth.token.empty())
            m["token"] = auth.token;
        st.answering = 0;
        st.answers.clear();
        s.handle_object(m);
        st.answering.reset();
        for (auto const& a : st.answers)
            if (a.is_object() && a.get_object().contains("code")) {
                auto const& msg = a.get_object().at("message");
                boost::json::object data;
                data["code"] = a.get_object().at("code");
                s.send_packet(sio::encode_connect_error(
                    msg.is_string() ? std::string_view(msg.get_string()) : "authentication failed",
                    "/", boost::json::serialize(data)));
                st.answers.clear();
                return;
            }
        st.answers.clear();
    }
    if (cfg.auth_required && !s.client().authenticated) {
        s.send_packet(sio::encode_connect_error("authentication required: a token in auth.token",
                                                "/", R"({"code":"UNAUTHORIZED"})"));
        return;
    }
    st.connected = true;
    auto* store = s.protocol_env().sio_sessions;
    if (!store || store->window().count() <= 0) {
        s.send_packet(sio::encode_connect(s.client_id()));
        return;
    }
    // Connection state recovery: the same pid tells the client it was resumed
    // (`socket.recovered`); a new one that it starts afresh.
    if (auth.recovering() && st.pid.empty()) {
        if (auto kept = store->take(auth.pid, std::chrono::steady_clock::now());
            kept && resume(*kept, auth.offset)) {
            st.pid = std::move(kept->pid);
            st.log = std::make_unique<written_log>(std::move(kept->log));
            s.send_packet(sio::encode_connect(s.client_id(), st.pid));
            auto held = std::move(st.held);
            st.held = {};
            for (auto const& f : held)
                s.push_twin(f);
            return;
        }
    }
    if (st.pid.empty()) {
        static thread_local std::mt19937_64 rng{std::random_device{}()};
        char buf[17];
        std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
        st.pid = buf;
    }
    s.send_packet(sio::encode_connect(s.client_id(), st.pid));
}

template <class Self>
bool socketio_protocol<Self>::resume(kept_socketio_session& kept, std::string_view offset) {
    auto& s = self();
    auto& st = s.sio_state();
    auto& hub = s.protocol_env().hub;
    auto plan = plan_socketio_recovery(kept, offset, hub.epoch());
    if (!plan)
        return false;
    // Subscribed with `recover` as an rtpush client would; the answers are read, not sent,
    // and the replayed publications wait until the CONNECT answer is out.
    st.holding = true;
    st.answering = 0;
    st.answers.clear();
    std::vector<std::string> done;
    bool all_recovered = true;
    for (auto& r : *plan) {
        boost::system::error_code ec;
        client_message m;
        m.type = client_message_type::subscribe;
        m.topic = parse_topic(r.topic_key, ec);
        if (ec) {
            all_recovered = false;
            break;
        }
        m.recover = std::move(r.position);
        s.subscribe(m);
        bool ok = false;
        for (auto const& a : st.answers)
            if (auto const* o = a.if_object())
                if (auto const* rec = o->if_contains("recovered"); rec && rec->is_bool())
                    ok = rec->get_bool();
        st.answers.clear();
        if (!ok) {
            all_recovered = false;
            if (s.client().find(r.topic_key))
                done.push_back(r.topic_key); // subscribed, but from a snapshot: undone below
            break;
        }
        done.push_back(r.topic_key);
    }
    if (!all_recovered) {
        for (auto const& key : done) {
            boost::system::error_code ec;
            client_message m;
            m.type = client_message_type::unsubscribe;
            m.topic = parse_topic(key, ec);
            s.unsubscribe(m);
        }
        st.held.clear();
    }
    st.answers.clear();
    st.answering.reset();
    st.holding = false;
    return all_recovered;
}

template <class Self>
void socketio_protocol<Self>::metrics_get(seed_event& ev, std::optional<std::uint64_t> ack_id) {
    auto& s = self();
    auto& st = s.sio_state();
    st.answering = 0;
    st.answers.clear();
    s.handle_object(ev.messages.front());
    st.answering.reset();
    auto answers = std::move(st.answers);
    st.answers = {};
    std::string_view source;
    if (auto const* sc = ev.messages.front().if_contains("scope"))
        if (auto const* org = sc->get_object().if_contains("org"))
            source = org->get_string();
    std::string name = "metrics:error";
    boost::json::object body;
    auto const* answer = answers.empty() ? nullptr : answers.front().if_object();
    if (answer && answer->contains("code")) {
        body["message"] = answer->at("message");
        body["code"] = answer->at("code");
    } else if (auto data = answer ? seed004_metrics_data(*answer, source) : std::nullopt) {
        name = "metrics:data";
        body = std::move(*data);
    } else {
        body["message"] = "no metrics for source '" + std::string(source) + "'";
        body["code"] = "NOT_FOUND";
    }
    auto const text = boost::json::serialize(body);
    if (ack_id)
        s.send_packet(sio::encode_ack(*ack_id, "[" + text + "]"));
    else
        s.send_packet(sio::encode_event(name, text));
}

template <class Self>
frame_ptr socketio_protocol<Self>::sio_frame(const frame_ptr& f) {
    if (f->ack_id.empty()) [[likely]]
        return socketio_twin(f);
    auto& s = self();
    auto& st = s.sio_state();
    // Targeted even when it cannot go out now: re-sent after a reconnect, as to WebSocket
    // clients.
    s.track_ack(f);
    auto const request = ++st.last_ack_request;
    auto packet = socketio_event_of(frame_payload(f->bytes), request);
    if (packet.empty())
        return nullptr;
    st.ack_requests.emplace(request, f->ack_id);
    if (st.ack_requests.size() > max_socketio_ack_requests)
        st.ack_requests.erase(st.ack_requests.begin());
    return twin_of(f, make_frame(opcode::text, packet)); // this connection's own, not shared
}

template <class Self>
void socketio_protocol<Self>::on_ack(const sio::sio_packet& p) {
    auto& s = self();
    auto& st = s.sio_state();
    auto const it = p.ack_id ? st.ack_requests.find(*p.ack_id) : st.ack_requests.end();
    if (it == st.ack_requests.end())
        return; // an answer to nothing asked: ignored, as the reference server does
    client_message m;
    m.type = client_message_type::ack;
    m.id = boost::json::string(it->second);
    st.ack_requests.erase(it);
    s.handle_message(m);
}

template <class Self>
bool socketio_protocol<Self>::sio_hold(const frame_ptr& twin) {
    auto& st = self().sio_state();
    if (!st.holding)
        return false;
    st.held.push_back(twin);
    return true;
}

template <class Self>
void socketio_protocol<Self>::sio_keep() {
    auto& s = self();
    auto& st = s.sio_state();
    auto* store = s.protocol_env().sio_sessions;
    // Without a log nothing was written: a client that handled no event has no offset and
    // does not ask for recovery.
    if (!store || st.pid.empty() || !st.log || st.client_left || !st.connected)
        return;
    kept_socketio_session k;
    k.pid = std::move(st.pid);
    k.log = std::move(*st.log);
    st.log.reset();
    s.client().for_each_subscription(
        [&](const subscription& sub) { k.topic_keys.push_back(sub.key); });
    k.ended_at = std::chrono::steady_clock::now();
    store->keep(std::move(k));
}

template <class Self>
void socketio_protocol<Self>::on_event(sio::sio_packet& p) {
    auto& s = self();
    auto& st = s.sio_state();
    auto& args = p.data.get_array();
    std::string const name(p.event_name());
    boost::json::value const data = args.size() > 1 ? args[1] : boost::json::value();
    auto ev = read_seed_event(name, data);
    if (ev.kind == seed_event_kind::client_ping) {
        boost::json::object pong;
        pong["timestamp"] = iso8601_now();
        auto const body = boost::json::serialize(pong);
        if (p.ack_id)
            s.send_packet(sio::encode_ack(*p.ack_id, "[" + body + "]"));
        else
            s.send_packet(sio::encode_event("client:pong", body));
        return;
    }
    if (ev.kind == seed_event_kind::refused) {
        s.send_error(error::invalid_message, ev.why, {});
        return;
    }
    if (ev.kind == seed_event_kind::metrics_get)
        return metrics_get(ev, p.ack_id);
    // With an ack id, the answers (subscribed, error...) go back in the ACK:
    // `{"success": <no error>, "results": [<answers>]}`.
    if (p.ack_id) {
        st.answering = *p.ack_id;
        st.answers.clear();
    }
    for (auto& m : ev.messages)
        s.handle_object(m);
    if (!p.ack_id)
        return;
    auto answers = std::move(st.answers);
    st.answers = {};
    st.answering.reset();
    if (st.answers_held) { // the ACK goes once the answers still to come are in
        st.held_acks.push_back({*p.ack_id, st.answers_held, std::move(answers)});
        st.answers_held = 0;
        return;
    }
    send_ack(*p.ack_id, std::move(answers));
}

template <class Self>
void socketio_protocol<Self>::send_ack(std::uint64_t ack, boost::json::array answers) {
    bool ok = true;
    for (auto const& a : answers)
        if (a.is_object() && a.get_object().contains("code"))
            ok = false;
    boost::json::object answer;
    answer["success"] = ok;
    answer["results"] = std::move(answers);
    self().send_packet(sio::encode_ack(ack, "[" + boost::json::serialize(answer) + "]"));
}

template <class Self>
void socketio_protocol<Self>::sio_answer(std::uint64_t token, std::string text) {
    auto& st = self().sio_state();
    if (token == 0)
        return sio_json(std::move(text));
    std::uint64_t const ack = token - 1;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec)
        return;
    if (st.answering && *st.answering == ack) { // its EVENT is still being handled
        st.answers.push_back(std::move(v));
        --st.answers_held;
        return;
    }
    auto it = std::find_if(st.held_acks.begin(), st.held_acks.end(),
                           [ack](const auto& h) { return h.ack == ack; });
    if (it == st.held_acks.end())
        return sio_json(std::move(text));
    it->answers.push_back(std::move(v));
    if (--it->waiting == 0) {
        auto answers = std::move(it->answers);
        st.held_acks.erase(it);
        send_ack(ack, std::move(answers));
    }
}

template <class Self>
void socketio_protocol<Self>::sio_json(std::string text) {
    auto& st = self().sio_state();
    if (st.answering) {
        boost::system::error_code ec;
        auto v = boost::json::parse(text, ec);
        if (!ec) {
            st.answers.push_back(std::move(v));
            return;
        }
    }
    if (auto packet = socketio_event_of(text); !packet.empty())
        self().send_packet(std::move(packet));
}

} // namespace rtpush::detail

#endif
