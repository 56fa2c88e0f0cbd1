//
// rtpush: the I/O-free core of a Socket.IO v4 transport (issue 16): Engine.IO v4 packets and
// long-polling payloads, the handshake query, the polling-to-WebSocket upgrade, Socket.IO v5
// packets and connection state recovery. Read from the protocol documents
// (socketio/engine.io-protocol, socketio/socket.io-protocol) and checked against the reference
// server (engine.io `server.ts`, `socket.ts`; socket.io-parser; socket.io `namespace.ts`).
//
// Layers. A WebSocket text frame, or one record of a polling body, holds one Engine.IO packet
// ("4hello", "2", "3probe"); a Socket.IO packet is the data of an Engine.IO message:
// `42["kpi:update",{...}]`. The Socket.IO encoders return the whole Engine.IO packet, leading
// '4' included, ready for a WebSocket frame or a polling body. `encode_event` takes its data
// already serialised, so a broadcast is encoded once and shared by every subscriber.
//
// Not supported: binary packets. Engine.IO's base64 `b` records, Socket.IO BINARY_EVENT (5) and
// BINARY_ACK (6) are recognised and refused with errc::binary_unsupported (a binary WebSocket
// frame is the caller's to refuse the same way). rtpush publishes JSON only.
//
// Connection state recovery (Socket.IO 4.6+) and how it maps onto rtpush.
//
//   What Socket.IO does. With `connectionStateRecovery` on, the CONNECT answer carries a private
//   session id besides the public one: `40{"sid":"...","pid":"..."}`. Every EVENT the server
//   broadcasts without an ack id gets one more argument appended: a string offset naming the
//   packet in the adapter's history (`42["kpi:update",{...},"<offset>"]`). The client keeps the
//   last argument of every event it handles as `_lastOffset` when it is a string, and on
//   reconnection sends both back in the CONNECT auth: `40{"pid":"...","offset":"...",...auth}`.
//   The server restores the session only when both are strings, the session is younger than
//   `maxDisconnectionDuration` and the offset is still in its history; it then rejoins the
//   session's rooms, answers with the *same* sid and pid, and replays the missed events. Else it
//   starts a fresh session (new sid, new pid) and the client sees `socket.recovered == false`.
//   Events with an ack id are never offset-tagged (the ack callback cannot be replayed). The
//   JavaScript listener receives the offset as its last argument (`(data, offset) => ...`).
//
//   rtpush's mapping. rtpush keeps a history per topic, each with its own `seq`, and an `epoch`
//   per server history (detail/recovery.hpp). A Socket.IO client holds only ONE offset, the
//   last one it processed, while one connection receives several topics.
//   - pid: a random id (as opaque as the sid) under which the server remembers, for
//     `maxDisconnectionDuration` after the connection ends, the session's subscriptions (topic
//     keys, scope, authenticated identity) and a bounded ring of the (topic key, seq) pairs it
//     wrote to the connection, oldest first.
//   - offset: `<epoch>~<topic key>~<seq>`, the position of the event itself (make_offset). It
//     depends only on the publication, so the tagged EVENT is still encoded once and shared
//     by every subscriber of the topic.
//   - recovery: with (pid, offset) the server finds the offset's entry in the pid's ring. The
//     client handled every event written before it (one ordered stream) and maybe none after.
//     For each subscribed topic U the resume position is the seq just before U's first entry
//     after the offset's (every U event after that entry may be lost), or U's last written seq
//     when U has none after it. These positions feed rtpush's per-topic recovery
//     (plan_topic / recover_position) unchanged: an epoch mismatch, a lost history or an
//     offset missing from the ring mean no recovery, exactly as in Socket.IO: fresh sid, new
//     pid, and the application resubscribes and reloads (`recovered` false).
//   - once a pid is given to a client, every EVENT it is sent must end with an offset: the
//     client would otherwise take a string last argument for one. rtpush's event data is an
//     object, so an untagged event (one with an ack id) never ends with a string.
//
#ifndef RTPUSH_DETAIL_SOCKETIO_HPP
#define RTPUSH_DETAIL_SOCKETIO_HPP

#include <rtpush/error.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail::sio {

/// Why an Engine.IO or Socket.IO packet was refused. Each names one kind of bad input.
enum class errc {
    ok = 0,
    empty,              ///< no packet type at all
    unknown_type,       ///< the type is not a digit of a known packet type
    binary_unsupported, ///< a base64 `b` record, BINARY_EVENT or BINARY_ACK
    too_large,          ///< over limits::max_size
    bad_namespace,      ///< a namespace not starting with '/', too long, or with JSON in it
    bad_ack_id,         ///< an id too large, on a type that takes none, or missing on an ACK
    bad_json,           ///< the payload is not JSON (or holds a number out of range)
    too_deep,           ///< JSON nested deeper than limits::max_depth
    bad_payload,        ///< JSON of the wrong type for the packet type, or a missing payload
    bad_event_name,     ///< an EVENT whose first element is not a string
    reserved_event,     ///< an EVENT named "connect", "disconnect"... (reserved by Socket.IO)
    bad_auth,           ///< a CONNECT auth with a non-string token, or a pid/offset too long
};

inline std::string_view describe(errc e) noexcept {
    static constexpr std::string_view text[] = {"ok",
                                                "empty packet",
                                                "unknown packet type",
                                                "binary packets are not supported",
                                                "packet exceeds the size limit",
                                                "namespace must start with '/'",
                                                "invalid acknowledgement id",
                                                "payload is not valid JSON",
                                                "payload JSON is nested too deeply",
                                                "payload has the wrong type for the packet type",
                                                "event name must be a string",
                                                "event name is reserved",
                                                "invalid CONNECT auth payload"};
    auto const i = static_cast<std::size_t>(e);
    return i < std::size(text) ? text[i] : "invalid packet";
}

/// The rtpush error a refusal maps onto (what rtpush's own protocol would answer).
inline rtpush::error to_error(errc e) noexcept {
    return e == errc::too_large ? rtpush::error::message_too_large : rtpush::error::invalid_message;
}

/// Bounds applied to untrusted input. max_size matches Engine.IO's default maxHttpBufferSize
/// and maxPayload (1e6), so a client never aggregates more than the server accepts.
struct limits {
    std::size_t max_size = 1000000; ///< bytes of one packet, or of one polling body
    std::size_t max_depth = 32;     ///< nesting depth of the JSON payload
    std::size_t max_namespace = 256;
};

// ---------------------------------------------------------------------------------------------
// Engine.IO v4

enum class eio_type : char {
    open = '0',
    close = '1',
    ping = '2',
    pong = '3',
    message = '4',
    upgrade = '5',
    noop = '6',
};

/// One Engine.IO packet; `data` views the decoded text.
struct eio_packet {
    eio_type type = eio_type::noop;
    std::string_view data;
};

/// The record separator between the packets of a long-polling body.
inline constexpr char record_separator = '\x1e';

/// Decodes one text packet (a WebSocket text frame, or one record of a polling body).
inline errc decode_eio(std::string_view text, eio_packet& out) noexcept {
    if (text.empty())
        return errc::empty;
    if (text[0] == 'b')
        return errc::binary_unsupported;
    if (text[0] < '0' || text[0] > '6')
        return errc::unknown_type;
    out.type = static_cast<eio_type>(text[0]);
    out.data = text.substr(1);
    return errc::ok;
}

inline void append_eio(std::string& out, eio_type t, std::string_view data = {}) {
    out += static_cast<char>(t);
    out += data;
}

inline std::string encode_eio(eio_type t, std::string_view data = {}) {
    std::string s;
    s.reserve(1 + data.size());
    append_eio(s, t, data);
    return s;
}

/// Splits a long-polling body into its packets (views into `body`). Any bad record refuses the
/// whole body: Engine.IO closes the session on a parser error, so there is nothing to keep.
inline errc decode_payload(std::string_view body, std::vector<eio_packet>& out,
                           const limits& lim = {}) {
    out.clear();
    if (body.size() > lim.max_size)
        return errc::too_large;
    while (true) {
        auto const sep = body.find(record_separator);
        eio_packet p;
        if (auto e = decode_eio(body.substr(0, sep), p); e != errc::ok) {
            out.clear();
            return e;
        }
        out.push_back(p);
        if (sep == std::string_view::npos)
            return errc::ok;
        body.remove_prefix(sep + 1);
    }
}

/// Appends one encoded packet to a long-polling body, with a separator when not the first.
inline void append_to_payload(std::string& body, std::string_view encoded_packet) {
    if (!body.empty())
        body += record_separator;
    body += encoded_packet;
}

/// What the open packet announces.
struct open_config {
    std::chrono::milliseconds ping_interval{25000};
    std::chrono::milliseconds ping_timeout{20000};
    std::size_t max_payload = 1000000;
    bool allow_upgrade = true; ///< a polling session may upgrade to WebSocket
};

/// The open packet, `0{"sid":..,"upgrades":[..],"pingInterval":..,"pingTimeout":..,
/// "maxPayload":..}`. A session opened over WebSocket has nothing to upgrade to: `[]`.
inline std::string encode_open(std::string_view sid, const open_config& cfg,
                               bool websocket_transport) {
    boost::json::object o;
    o["sid"] = sid;
    boost::json::array up;
    if (cfg.allow_upgrade && !websocket_transport)
        up.emplace_back("websocket");
    o["upgrades"] = std::move(up);
    o["pingInterval"] = cfg.ping_interval.count();
    o["pingTimeout"] = cfg.ping_timeout.count();
    o["maxPayload"] = cfg.max_payload;
    return encode_eio(eio_type::open, boost::json::serialize(o));
}

// The handshake request -----------------------------------------------------------------------

/// Engine.IO's error codes (server.ts `Server.errors`); an HTTP request refused with one gets
/// status http_status(e) and body error_body(e); a refused WebSocket upgrade gets a 400 whose
/// body is the bare message.
enum class eio_error : int {
    unknown_transport = 0,
    unknown_sid = 1,
    bad_handshake_method = 2,
    bad_request = 3,
    forbidden = 4,
    unsupported_protocol_version = 5,
};

inline std::string_view message(eio_error e) noexcept {
    static constexpr std::string_view text[] = {
        "Transport unknown", "Session ID unknown", "Bad handshake method",
        "Bad request",       "Forbidden",          "Unsupported protocol version"};
    auto const i = static_cast<std::size_t>(e);
    return i < std::size(text) ? text[i] : "Bad request";
}

inline unsigned http_status(eio_error e) noexcept {
    return e == eio_error::forbidden ? 403 : 400;
}

/// `{"code":5,"message":"Unsupported protocol version"}`; `msg` replaces the standard message.
inline std::string error_body(eio_error e, std::string_view msg = {}) {
    boost::json::object o;
    o["code"] = static_cast<int>(e);
    o["message"] = msg.empty() ? message(e) : msg;
    return boost::json::serialize(o);
}

enum class transport { polling, websocket };

struct handshake_query {
    sio::transport transport = transport::polling;
    std::string sid; ///< empty: a new session; else the session the caller must look up
};

/// The value of `name` in a query string (without '?'); the first occurrence, not decoded
/// (EIO, transport and sid never need it: sids are base64url). nullopt when absent.
inline std::optional<std::string_view> query_param(std::string_view query,
                                                   std::string_view name) noexcept {
    while (!query.empty()) {
        auto const amp = query.find('&');
        auto const item = query.substr(0, amp);
        auto const eq = item.find('=');
        if (item.substr(0, eq) == name)
            return eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
        if (amp == std::string_view::npos)
            break;
        query.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

/// Checks the query of a request to the Engine.IO path (`target` may be the whole request
/// target: what precedes '?' is skipped), in the reference server's order: transport, then for
/// a new session the method (GET only) and the upgrade (a websocket transport must be one),
/// then the protocol version. A missing or other EIO than 4 is unsupported_protocol_version
/// (the reference reads it as v3, which it refuses). A sid is returned for the caller to look
/// up (an unknown one is unknown_sid); one longer than 64 bytes is unknown_sid here.
inline std::optional<eio_error> parse_handshake(std::string_view target, std::string_view method,
                                                bool websocket_upgrade, handshake_query& out) {
    out = handshake_query{};
    auto const q = target.find('?');
    std::string_view const query = q == std::string_view::npos ? target : target.substr(q + 1);
    auto const t = query_param(query, "transport");
    if (t && *t == "polling")
        out.transport = transport::polling;
    else if (t && *t == "websocket")
        out.transport = transport::websocket;
    else
        return eio_error::unknown_transport;
    if (auto const sid = query_param(query, "sid"); sid && !sid->empty()) {
        if (sid->size() > 64)
            return eio_error::unknown_sid;
        out.sid = std::string(*sid);
    } else {
        if (method != "GET")
            return eio_error::bad_handshake_method;
        if (out.transport == transport::websocket && !websocket_upgrade)
            return eio_error::bad_request;
    }
    if (query_param(query, "EIO") != std::optional<std::string_view>("4"))
        return eio_error::unsupported_protocol_version;
    return std::nullopt;
}

// The upgrade from polling to WebSocket -------------------------------------------------------

/// The state of one session's transport (engine.io socket.ts `_maybeUpgrade`), without sockets.
/// A session opened over polling starts in `polling`; one opened over WebSocket starts
/// `upgraded`. The caller feeds it what happens and does what it answers.
///
///     polling --ws open--> probing --"2probe"--> (probe_seen) --"5"--> upgraded
///        ^                    |  any other packet, close or timeout
///        +--------------------+  (abort_probe: close the WebSocket; polling goes on)
class upgrade_fsm {
public:
    enum class state { polling, probing, upgraded };
    enum class action {
        none,             ///< nothing to do (for a WebSocket packet once upgraded: handle it)
        hold_poll,        ///< ordinary long-polling: answer the GET when packets are queued
        send_noop,        ///< answer this GET now with "6" (the client is leaving polling)
        send_pong_probe,  ///< write "3probe" on the WebSocket, and answer a pending GET with "6"
        switch_transport, ///< polling is over: the queue and all later packets go on the WS
        abort_probe,      ///< close the candidate WebSocket; the session stays on polling
        refuse,           ///< refuse the request or connection: 400, eio_error::bad_request
    };

    explicit upgrade_fsm(state initial = state::polling) noexcept
        : state_(initial) {}

    state current() const noexcept { return state_; }
    bool probe_seen() const noexcept { return probe_seen_; }

    /// A WebSocket arrived with this session's sid. Only one upgrade, and only from polling
    /// (the reference closes a second one: "transport has already been upgrading/upgraded").
    action on_websocket_open() noexcept {
        if (state_ != state::polling)
            return action::refuse;
        state_ = state::probing;
        probe_seen_ = false;
        return action::none;
    }

    /// A text packet on the candidate WebSocket. "2probe" is answered (again if repeated);
    /// "5" completes the upgrade; the reference also takes "5" without a probe, and so do we.
    action on_websocket_text(std::string_view packet) noexcept {
        if (state_ == state::upgraded)
            return action::none;
        if (state_ != state::probing)
            return action::refuse;
        if (packet == "2probe") {
            probe_seen_ = true;
            return action::send_pong_probe;
        }
        if (packet == "5") {
            state_ = state::upgraded;
            return action::switch_transport;
        }
        return abort();
    }

    /// A long-polling GET. Once the probe is answered the client pauses polling and waits for
    /// its GET to end: answer it with a noop at once. After the upgrade, polling is refused.
    action on_poll_request() const noexcept {
        if (state_ == state::upgraded)
            return action::refuse;
        return state_ == state::probing && probe_seen_ ? action::send_noop : action::hold_poll;
    }

    /// A long-polling POST: taken until the upgrade, refused after.
    action on_post_request() const noexcept {
        return state_ == state::upgraded ? action::refuse : action::none;
    }

    /// The candidate WebSocket closed, or the upgrade timed out (engine.io's upgradeTimeout,
    /// 10 s by default): polling goes on.
    action on_websocket_closed() noexcept {
        return state_ == state::probing ? abort() : action::none;
    }
    action on_upgrade_timeout() noexcept { return on_websocket_closed(); }

private:
    action abort() noexcept {
        state_ = state::polling;
        probe_seen_ = false;
        return action::abort_probe;
    }

    state state_;
    bool probe_seen_ = false;
};

// ---------------------------------------------------------------------------------------------
// Socket.IO v5

enum class sio_type : char {
    connect = '0',
    disconnect = '1',
    event = '2',
    ack = '3',
    connect_error = '4',
    binary_event = '5',
    binary_ack = '6',
};

/// Event names a peer may not use (socket.io-parser RESERVED_EVENTS).
inline bool reserved_event_name(std::string_view name) noexcept {
    for (std::string_view r : {"connect", "connect_error", "disconnect", "disconnecting",
                               "newListener", "removeListener"})
        if (name == r)
            return true;
    return false;
}

/// The largest ack id: JavaScript numbers are exact up to 2^53 - 1.
inline constexpr std::uint64_t max_ack_id = (std::uint64_t(1) << 53) - 1;

/// A decoded Socket.IO packet. `data` is null when there is no payload (JSON null is never a
/// valid payload, so nothing is lost).
struct sio_packet {
    sio_type type = sio_type::connect;
    std::string nsp = "/";
    std::optional<std::uint64_t> ack_id;
    boost::json::value data;

    /// The event name of an EVENT (data[0]); empty for other types.
    std::string_view event_name() const noexcept {
        if (type != sio_type::event || !data.is_array() || data.get_array().empty() ||
            !data.get_array()[0].is_string())
            return {};
        auto const& s = data.get_array()[0].get_string();
        return {s.data(), s.size()};
    }
};

/// Decodes `<type>[<nsp>,][<ackId>][<json>]`, the data of an Engine.IO message, with the
/// reference parser's checks (socket.io-parser Decoder.decodeString, isPayloadValid) and a few
/// more, each noted: CONNECT takes an object or nothing, DISCONNECT nothing, EVENT a non-empty
/// array starting with an unreserved event name (a string: the reference also allows a
/// number, rtpush names events with strings), ACK an array (and an id: an ACK without one
/// matches nothing), CONNECT_ERROR an object or a string. Only EVENT and ACK take an id.
/// Validation is all or nothing: on failure `out` is unspecified.
inline errc decode_sio(std::string_view text, sio_packet& out, const limits& lim = {}) {
    out = sio_packet{};
    if (text.size() > lim.max_size)
        return errc::too_large;
    if (text.empty())
        return errc::empty;
    if (text[0] == '5' || text[0] == '6')
        return errc::binary_unsupported;
    if (text[0] < '0' || text[0] > '4')
        return errc::unknown_type;
    out.type = static_cast<sio_type>(text[0]);
    std::string_view rest = text.substr(1);

    // Namespace: from '/' to the first ',' or the end.
    if (!rest.empty() && rest[0] == '/') {
        auto const comma = rest.find(',');
        std::string_view const nsp = rest.substr(0, comma);
        if (nsp.size() > lim.max_namespace || nsp.find_first_of("[{\"") != std::string_view::npos)
            return errc::bad_namespace;
        for (char c : nsp)
            if (static_cast<unsigned char>(c) < 0x20)
                return errc::bad_namespace;
        out.nsp = std::string(nsp);
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    } else if (!rest.empty() && (rest[0] < '0' || rest[0] > '9')) {
        // "2chat,[...]": a namespace without its '/' (the reference would call it bad JSON).
        auto const stop = rest.find_first_of(",[{\"");
        if (stop != std::string_view::npos && rest[stop] == ',')
            return errc::bad_namespace;
    }

    // Ack id: a run of digits.
    std::size_t digits = 0;
    while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9')
        ++digits;
    if (digits) {
        std::uint64_t id = 0;
        auto const r = std::from_chars(rest.data(), rest.data() + digits, id);
        if (r.ec != std::errc{} || id > max_ack_id)
            return errc::bad_ack_id;
        if (out.type != sio_type::event && out.type != sio_type::ack)
            return errc::bad_ack_id;
        out.ack_id = id;
        rest.remove_prefix(digits);
    }
    if (out.type == sio_type::ack && !out.ack_id)
        return errc::bad_ack_id;

    // Payload. Whitespace before it is refused: JSON.parse would take it, but the reference
    // reads "2 [..]" as ack id 0 (JavaScript's Number(" ") is 0).
    if (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'))
        return errc::bad_json;
    if (!rest.empty()) {
        boost::json::parse_options opt;
        opt.max_depth = lim.max_depth;
        boost::system::error_code ec;
        out.data = boost::json::parse(rest, ec, {}, opt);
        if (ec == boost::json::error::too_deep)
            return errc::too_deep;
        if (ec || !rtpush::finite_numbers(out.data))
            return errc::bad_json;
        if (out.data.is_null()) // "0null", "1null": a payload, and never a valid one
            return errc::bad_payload;
    }
    auto const& d = out.data;
    switch (out.type) {
    case sio_type::connect:
        return d.is_null() || d.is_object() ? errc::ok : errc::bad_payload;
    case sio_type::disconnect:
        return d.is_null() ? errc::ok : errc::bad_payload;
    case sio_type::connect_error:
        return d.is_object() || d.is_string() ? errc::ok : errc::bad_payload;
    case sio_type::ack:
        return d.is_array() ? errc::ok : errc::bad_payload;
    case sio_type::event:
        if (!d.is_array() || d.get_array().empty())
            return errc::bad_payload;
        if (!d.get_array()[0].is_string())
            return errc::bad_event_name;
        return reserved_event_name(out.event_name()) ? errc::reserved_event : errc::ok;
    default:
        return errc::unknown_type;
    }
}

/// Decodes a whole Engine.IO packet that must be a message carrying a Socket.IO packet
/// ("42[...]" as a WebSocket frame holds it). Another Engine.IO type is errc::unknown_type:
/// the caller dispatches ping, pong, close... with decode_eio first.
inline errc decode_sio_message(std::string_view eio_text, sio_packet& out, const limits& lim = {}) {
    eio_packet p;
    if (auto e = decode_eio(eio_text, p); e != errc::ok)
        return e;
    if (p.type != eio_type::message)
        return errc::unknown_type;
    return decode_sio(p.data, out, lim);
}

// Encoders: each returns the whole Engine.IO message ("4" + the Socket.IO packet). ----------

namespace detail_ {

inline void append_json_string(std::string& out, std::string_view s) {
    out += boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

inline void append_head(std::string& out, sio_type t, std::string_view nsp) {
    out += static_cast<char>(eio_type::message);
    out += static_cast<char>(t);
    if (!nsp.empty() && nsp != "/") {
        out += nsp;
        out += ',';
    }
}

inline void append_number(std::string& out, std::uint64_t v) {
    char buf[24];
    auto const r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

} // namespace detail_

/// CONNECT accepted: `40{"sid":"..."}`, with `"pid"` when connection state recovery is on,
/// `40/admin,{...}` in another namespace.
inline std::string encode_connect(std::string_view sid, std::string_view pid = {},
                                  std::string_view nsp = "/") {
    std::string s;
    detail_::append_head(s, sio_type::connect, nsp);
    s += "{\"sid\":";
    detail_::append_json_string(s, sid);
    if (!pid.empty()) {
        s += ",\"pid\":";
        detail_::append_json_string(s, pid);
    }
    s += '}';
    return s;
}

/// CONNECT refused: `44{"message":"..."}`; `data_json` (serialised JSON) becomes the Error's
/// `data` on the client (`err.data`), as the reference sends a middleware error's data.
inline std::string encode_connect_error(std::string_view message, std::string_view nsp = "/",
                                        std::string_view data_json = {}) {
    std::string s;
    detail_::append_head(s, sio_type::connect_error, nsp);
    s += "{\"message\":";
    detail_::append_json_string(s, message);
    if (!data_json.empty()) {
        s += ",\"data\":";
        s += data_json;
    }
    s += '}';
    return s;
}

/// DISCONNECT: `41`, or `41/admin,`.
inline std::string encode_disconnect(std::string_view nsp = "/") {
    std::string s;
    detail_::append_head(s, sio_type::disconnect, nsp);
    return s;
}

/// What an EVENT carries besides its name and data.
struct event_options {
    std::string_view nsp = "/";
    std::optional<std::uint64_t> ack_id{}; ///< the receiver answers with an ACK of this id
    std::string_view offset{}; ///< recovery offset (make_offset), appended as the last argument
};

/// EVENT: `42["name",<data>]`, `42<ackId>["name",<data>]`, `42["name",<data>,"<offset>"]`.
/// `json_data` is one JSON value already serialised (empty: no data argument), copied as is:
/// a broadcast serialises its data once and encodes its packet once for every subscriber.
/// Socket.IO never tags an event with an ack id with an offset; neither should the caller.
inline std::string encode_event(std::string_view name, std::string_view json_data,
                                const event_options& opt = {}) {
    std::string s;
    s.reserve(16 + opt.nsp.size() + name.size() + json_data.size() + opt.offset.size());
    detail_::append_head(s, sio_type::event, opt.nsp);
    if (opt.ack_id)
        detail_::append_number(s, *opt.ack_id);
    s += '[';
    detail_::append_json_string(s, name);
    if (!json_data.empty()) {
        s += ',';
        s += json_data;
    }
    if (!opt.offset.empty()) {
        s += ',';
        detail_::append_json_string(s, opt.offset);
    }
    s += ']';
    return s;
}

/// ACK: `43<id>[...]`; `json_args` is the serialised array of the answer's arguments (empty
/// gives `[]`).
inline std::string encode_ack(std::uint64_t id, std::string_view json_args,
                              std::string_view nsp = "/") {
    std::string s;
    detail_::append_head(s, sio_type::ack, nsp);
    detail_::append_number(s, id);
    s += json_args.empty() ? std::string_view("[]") : json_args;
    return s;
}

// Connection state recovery -------------------------------------------------------------------

/// The auth object of a CONNECT, split into what rtpush reads and the rest.
struct connect_auth {
    std::string token;          ///< auth.token, the credentials rtpush's authenticator checks
    std::string pid;            ///< auth.pid: the private session id to restore
    std::string offset;         ///< auth.offset: the last event offset the client handled
    boost::json::object others; ///< every other field, for the application

    /// The client asks for recovery. Like the reference, only when pid and offset are both
    /// (non-empty) strings; the client sends no offset before its first tagged event.
    bool recovering() const noexcept { return !pid.empty() && !offset.empty(); }
};

/// Splits the data of a decoded CONNECT (null: no auth). A non-string pid or offset is ignored
/// as the reference does (no recovery); a non-string token, or a pid or offset over 256 bytes,
/// is errc::bad_auth.
inline errc parse_connect_auth(const boost::json::value& data, connect_auth& out) {
    out = connect_auth{};
    if (data.is_null())
        return errc::ok;
    if (!data.is_object())
        return errc::bad_payload;
    for (auto const& kv : data.get_object()) {
        std::string_view const key(kv.key().data(), kv.key().size());
        std::string* field = key == "token"    ? &out.token
                             : key == "pid"    ? &out.pid
                             : key == "offset" ? &out.offset
                                               : nullptr;
        if (!field) {
            out.others.emplace(kv.key(), kv.value());
            continue;
        }
        if (!kv.value().is_string()) {
            if (field == &out.token)
                return errc::bad_auth;
            continue;
        }
        auto const& v = kv.value().get_string();
        if (field != &out.token && v.size() > 256)
            return errc::bad_auth;
        field->assign(v.data(), v.size());
    }
    return errc::ok;
}

/// The position of one event in rtpush's histories: `<epoch>~<topic key>~<seq>`.
struct event_offset {
    std::string epoch;
    std::string topic_key;
    std::uint64_t seq = 0;
};

/// The offset string an EVENT of `topic_key`'s publication `seq` carries (header comment).
/// Epochs and topic keys never contain '~' (identifiers are [A-Za-z0-9_.@-], keys join them
/// with ':').
inline std::string make_offset(std::string_view epoch, std::string_view topic_key,
                               std::uint64_t seq) {
    std::string s;
    s.reserve(epoch.size() + topic_key.size() + 22);
    s += epoch;
    s += '~';
    s += topic_key;
    s += '~';
    detail_::append_number(s, seq);
    return s;
}

/// Parses an offset a client sent back. False when it is not one make_offset could build (a
/// client of another server, or forged): the caller then starts a fresh session.
inline bool parse_offset(std::string_view s, event_offset& out) {
    auto const a = s.find('~');
    auto const b = a == std::string_view::npos ? a : s.find('~', a + 1);
    if (a == 0 || b == std::string_view::npos || b == a + 1 || b + 1 >= s.size() ||
        s.find('~', b + 1) != std::string_view::npos)
        return false;
    std::uint64_t seq = 0;
    auto const r = std::from_chars(s.data() + b + 1, s.data() + s.size(), seq);
    if (r.ec != std::errc{} || r.ptr != s.data() + s.size())
        return false;
    out.epoch = std::string(s.substr(0, a));
    out.topic_key = std::string(s.substr(a + 1, b - a - 1));
    out.seq = seq;
    return true;
}

} // namespace rtpush::detail::sio

#endif
