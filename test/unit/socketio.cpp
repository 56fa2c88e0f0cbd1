#include <rtpush/detail/socketio.hpp>

#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace sio = rtpush::detail::sio;
using sio::eio_type;
using sio::errc;
using sio::sio_type;
namespace json = boost::json;

namespace {

errc decode(std::string_view text, sio::sio_packet& p, const sio::limits& lim = {}) {
    return sio::decode_sio(text, p, lim);
}

errc decode(std::string_view text, const sio::limits& lim = {}) {
    sio::sio_packet p;
    return sio::decode_sio(text, p, lim);
}

std::string nested(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

} // namespace

BOOST_AUTO_TEST_SUITE(socketio)

// Engine.IO ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(eio_packets_round_trip) {
    struct sample {
        std::string_view text;
        eio_type type;
        std::string_view data;
    };
    for (auto s : {sample{"0{\"sid\":\"x\"}", eio_type::open, "{\"sid\":\"x\"}"},
                   sample{"1", eio_type::close, ""}, sample{"2", eio_type::ping, ""},
                   sample{"3", eio_type::pong, ""}, sample{"2probe", eio_type::ping, "probe"},
                   sample{"3probe", eio_type::pong, "probe"},
                   sample{"4hello", eio_type::message, "hello"}, sample{"4", eio_type::message, ""},
                   sample{"5", eio_type::upgrade, ""}, sample{"6", eio_type::noop, ""},
                   sample{"4a\x1e"
                          "b",
                          eio_type::message,
                          "a\x1e"
                          "b"}}) {
        sio::eio_packet p;
        BOOST_TEST((sio::decode_eio(s.text, p) == errc::ok), s.text);
        BOOST_TEST((p.type == s.type), s.text);
        BOOST_TEST(p.data == s.data);
        BOOST_TEST(sio::encode_eio(s.type, s.data) == s.text);
    }
    BOOST_TEST(sio::encode_eio(eio_type::ping) == "2");
    BOOST_TEST(sio::encode_eio(eio_type::noop) == "6");
}

BOOST_AUTO_TEST_CASE(eio_bad_packets) {
    sio::eio_packet p;
    BOOST_TEST((sio::decode_eio("", p) == errc::empty));
    BOOST_TEST((sio::decode_eio("7", p) == errc::unknown_type));
    BOOST_TEST((sio::decode_eio("abc", p) == errc::unknown_type));
    BOOST_TEST((sio::decode_eio("/", p) == errc::unknown_type));
    BOOST_TEST((sio::decode_eio(" 4", p) == errc::unknown_type));
    BOOST_TEST((sio::decode_eio("bAQIDBA==", p) == errc::binary_unsupported));
    BOOST_TEST((sio::decode_eio("b", p) == errc::binary_unsupported));
}

BOOST_AUTO_TEST_CASE(polling_payloads) {
    std::vector<sio::eio_packet> v;
    BOOST_TEST((sio::decode_payload("4hello\x1e"
                                    "4world",
                                    v) == errc::ok));
    BOOST_TEST_REQUIRE(v.size() == 2u);
    BOOST_TEST((v[0].type == eio_type::message));
    BOOST_TEST(v[0].data == "hello");
    BOOST_TEST(v[1].data == "world");

    // the spec's example: message, ping, message
    BOOST_TEST((sio::decode_payload("4hello\x1e"
                                    "2\x1e"
                                    "4world",
                                    v) == errc::ok));
    BOOST_TEST_REQUIRE(v.size() == 3u);
    BOOST_TEST((v[1].type == eio_type::ping));
    BOOST_TEST(v[1].data.empty());

    BOOST_TEST((sio::decode_payload("3", v) == errc::ok));
    BOOST_TEST(v.size() == 1u);

    // a socket.io-client POST: two Socket.IO packets in one body
    BOOST_TEST((sio::decode_payload("40\x1e"
                                    "42[\"subscribe\",{}]",
                                    v) == errc::ok));
    BOOST_TEST(v.size() == 2u);

    std::string body;
    sio::append_to_payload(body, "4hello");
    BOOST_TEST(body == "4hello");
    sio::append_to_payload(body, "4world");
    BOOST_TEST(body == "4hello\x1e"
                       "4world");
    sio::append_to_payload(body, sio::encode_eio(eio_type::ping));
    BOOST_TEST(body == "4hello\x1e"
                       "4world\x1e"
                       "2");

    // any bad record refuses the whole body, and nothing is handed out
    BOOST_TEST((sio::decode_payload("", v) == errc::empty));
    BOOST_TEST((sio::decode_payload("4a\x1e", v) == errc::empty));
    BOOST_TEST(v.empty());
    BOOST_TEST((sio::decode_payload("\x1e"
                                    "4a",
                                    v) == errc::empty));
    BOOST_TEST((sio::decode_payload("4a\x1e\x1e"
                                    "4b",
                                    v) == errc::empty));
    BOOST_TEST((sio::decode_payload("4a\x1e"
                                    "x",
                                    v) == errc::unknown_type));
    BOOST_TEST((sio::decode_payload("abc", v) == errc::unknown_type));
    BOOST_TEST((sio::decode_payload("4hello\x1e"
                                    "bAQIDBA==",
                                    v) == errc::binary_unsupported));
    BOOST_TEST(v.empty());
    sio::limits small;
    small.max_size = 11;
    BOOST_TEST((sio::decode_payload("4hello\x1e"
                                    "4worl",
                                    v, small) == errc::too_large)); // 12 bytes
    BOOST_TEST((sio::decode_payload("4hello\x1e"
                                    "4wor",
                                    v, small) == errc::ok));
}

BOOST_AUTO_TEST_CASE(open_packet) {
    sio::open_config cfg;
    auto const polling = sio::encode_open("lv_VI97HAXpY6yYWAAAC", cfg, false);
    BOOST_TEST(polling == "0{\"sid\":\"lv_VI97HAXpY6yYWAAAC\",\"upgrades\":[\"websocket\"],"
                          "\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}");
    // the fields the Engine.IO test suite checks, and nothing else
    auto const v = json::parse(polling.substr(1)).as_object();
    BOOST_TEST(v.size() == 5u);
    BOOST_TEST(v.at("sid").as_string() == "lv_VI97HAXpY6yYWAAAC");

    sio::open_config const custom{.ping_interval = std::chrono::milliseconds(300),
                                  .ping_timeout = std::chrono::milliseconds(200),
                                  .max_payload = 500};
    BOOST_TEST(sio::encode_open("s\"id", custom, true) ==
               "0{\"sid\":\"s\\\"id\",\"upgrades\":[],\"pingInterval\":300,\"pingTimeout\":200,"
               "\"maxPayload\":500}");
    sio::open_config no_upgrade;
    no_upgrade.allow_upgrade = false;
    BOOST_TEST(sio::encode_open("a", no_upgrade, false).find("\"upgrades\":[]") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(handshake_query) {
    using sio::eio_error;
    sio::handshake_query q;
    // socket.io-client's first request (t= is its cache buster)
    BOOST_TEST(
        !sio::parse_handshake("/socket.io/?EIO=4&transport=polling&t=N8hyd6w", "GET", false, q));
    BOOST_TEST((q.transport == sio::transport::polling));
    BOOST_TEST(q.sid.empty());
    BOOST_TEST(!sio::parse_handshake("EIO=4&transport=websocket", "GET", true, q));
    BOOST_TEST((q.transport == sio::transport::websocket));
    // the upgrade of a polling session, and its later requests
    BOOST_TEST(
        !sio::parse_handshake("/socket.io/?EIO=4&transport=websocket&sid=abc_-9", "GET", true, q));
    BOOST_TEST(q.sid == "abc_-9");
    BOOST_TEST(
        !sio::parse_handshake("/socket.io/?EIO=4&transport=polling&sid=abc", "POST", false, q));
    BOOST_TEST(q.sid == "abc");

    auto err = [&](std::string_view target, std::string_view method = "GET", bool upgrade = false) {
        return sio::parse_handshake(target, method, upgrade, q);
    };
    BOOST_TEST(
        (err("/socket.io/?EIO=3&transport=polling") == eio_error::unsupported_protocol_version));
    BOOST_TEST((err("/socket.io/?transport=polling") == eio_error::unsupported_protocol_version));
    BOOST_TEST(
        (err("/socket.io/?EIO=abc&transport=polling") == eio_error::unsupported_protocol_version));
    BOOST_TEST(
        (err("/socket.io/?EIO=44&transport=polling") == eio_error::unsupported_protocol_version));
    BOOST_TEST((err("/socket.io/?EIO=4") == eio_error::unknown_transport));
    BOOST_TEST((err("/socket.io/?EIO=4&transport=abc") == eio_error::unknown_transport));
    BOOST_TEST((err("/socket.io/?EIO=4&transport=webtransport") == eio_error::unknown_transport));
    BOOST_TEST((err("/socket.io/") == eio_error::unknown_transport));
    BOOST_TEST(
        (err("/socket.io/?EIO=4&transport=polling", "POST") == eio_error::bad_handshake_method));
    BOOST_TEST(
        (err("/socket.io/?EIO=4&transport=polling", "PUT") == eio_error::bad_handshake_method));
    BOOST_TEST((err("/socket.io/?EIO=4&transport=websocket") == eio_error::bad_request));
    BOOST_TEST((err("/socket.io/?EIO=4&transport=polling&sid=" + std::string(65, 'a')) ==
                eio_error::unknown_sid));

    // the reference server's answers
    BOOST_TEST(sio::error_body(eio_error::unsupported_protocol_version) ==
               "{\"code\":5,\"message\":\"Unsupported protocol version\"}");
    BOOST_TEST(sio::error_body(eio_error::unknown_transport) ==
               "{\"code\":0,\"message\":\"Transport unknown\"}");
    BOOST_TEST(sio::error_body(eio_error::unknown_sid) ==
               "{\"code\":1,\"message\":\"Session ID unknown\"}");
    BOOST_TEST(sio::error_body(eio_error::bad_handshake_method) ==
               "{\"code\":2,\"message\":\"Bad handshake method\"}");
    BOOST_TEST(sio::error_body(eio_error::bad_request) ==
               "{\"code\":3,\"message\":\"Bad request\"}");
    BOOST_TEST(sio::error_body(eio_error::forbidden, "not from here") ==
               "{\"code\":4,\"message\":\"not from here\"}");
    BOOST_TEST(sio::http_status(eio_error::unknown_sid) == 400u);
    BOOST_TEST(sio::http_status(eio_error::forbidden) == 403u);

    BOOST_TEST((sio::query_param("a=1&b=&c", "b") == std::optional<std::string_view>("")));
    BOOST_TEST((sio::query_param("a=1&b=&c", "c") == std::optional<std::string_view>("")));
    BOOST_TEST(!sio::query_param("a=1&b=&c", "d"));
    BOOST_TEST((sio::query_param("a=1&a=2", "a") == std::optional<std::string_view>("1")));
}

BOOST_AUTO_TEST_CASE(upgrade_from_polling) {
    using fsm = sio::upgrade_fsm;
    using A = fsm::action;
    using S = fsm::state;
    fsm u;
    BOOST_TEST((u.current() == S::polling));
    BOOST_TEST((u.on_poll_request() == A::hold_poll));
    BOOST_TEST((u.on_post_request() == A::none));

    // the Engine.IO test suite's upgrade: ws open, 2probe -> 3probe, poll -> 6, then 5
    BOOST_TEST((u.on_websocket_open() == A::none));
    BOOST_TEST((u.current() == S::probing));
    BOOST_TEST((u.on_poll_request() == A::hold_poll)); // no probe yet: polling as usual
    BOOST_TEST((u.on_websocket_open() == A::refuse));  // a second candidate
    BOOST_TEST((u.on_websocket_text("2probe") == A::send_pong_probe));
    BOOST_TEST(sio::encode_eio(eio_type::pong, "probe") == "3probe");
    BOOST_TEST(u.probe_seen());
    BOOST_TEST((u.on_poll_request() == A::send_noop));
    BOOST_TEST(sio::encode_eio(eio_type::noop) == "6");
    BOOST_TEST((u.on_post_request() == A::none));
    BOOST_TEST((u.on_websocket_text("5") == A::switch_transport));
    BOOST_TEST((u.current() == S::upgraded));

    // after the upgrade: polling refused, a further WebSocket refused, packets are the session's
    BOOST_TEST((u.on_poll_request() == A::refuse));
    BOOST_TEST((u.on_post_request() == A::refuse));
    BOOST_TEST((u.on_websocket_open() == A::refuse));
    BOOST_TEST((u.on_websocket_text("4hello") == A::none));
    BOOST_TEST((u.on_websocket_closed() == A::none));
    BOOST_TEST((u.current() == S::upgraded));
}

BOOST_AUTO_TEST_CASE(upgrade_failures) {
    using fsm = sio::upgrade_fsm;
    using A = fsm::action;
    using S = fsm::state;
    {
        fsm u; // anything but a probe or an upgrade on the candidate closes it
        u.on_websocket_open();
        BOOST_TEST((u.on_websocket_text("4hello") == A::abort_probe));
        BOOST_TEST((u.current() == S::polling));
        BOOST_TEST((u.on_poll_request() == A::hold_poll));
        // and a new attempt may follow
        BOOST_TEST((u.on_websocket_open() == A::none));
        BOOST_TEST((u.on_websocket_text("2probe") == A::send_pong_probe));
        BOOST_TEST((u.on_websocket_text("2probe") == A::send_pong_probe)); // answered again
        BOOST_TEST((u.on_websocket_text("3probe") == A::abort_probe));
        BOOST_TEST(!u.probe_seen());
    }
    {
        fsm u;
        u.on_websocket_open();
        u.on_websocket_text("2probe");
        BOOST_TEST((u.on_websocket_closed() == A::abort_probe));
        BOOST_TEST((u.current() == S::polling));
        BOOST_TEST((u.on_poll_request() == A::hold_poll));
    }
    {
        fsm u;
        u.on_websocket_open();
        BOOST_TEST((u.on_upgrade_timeout() == A::abort_probe));
        BOOST_TEST((u.current() == S::polling));
        BOOST_TEST((u.on_upgrade_timeout() == A::none));
    }
    {
        fsm u; // a packet from a WebSocket the fsm never saw open
        BOOST_TEST((u.on_websocket_text("2probe") == A::refuse));
    }
    {
        fsm u; // "2probe" then "5" back to back, as the Engine.IO test suite sends them
        u.on_websocket_open();
        u.on_websocket_text("2probe");
        BOOST_TEST((u.on_websocket_text("5") == A::switch_transport));
    }
    {
        fsm u(S::upgraded); // a session opened over WebSocket
        BOOST_TEST((u.on_poll_request() == A::refuse));
        BOOST_TEST((u.on_websocket_open() == A::refuse));
    }
}

// Socket.IO ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(what_socket_io_client_sends) {
    sio::sio_packet p;
    // "40": connect to the main namespace, no auth
    BOOST_TEST((sio::decode_sio_message("40", p) == errc::ok));
    BOOST_TEST((p.type == sio_type::connect));
    BOOST_TEST(p.nsp == "/");
    BOOST_TEST(p.data.is_null());
    BOOST_TEST(!p.ack_id);

    BOOST_TEST((sio::decode_sio_message("40{\"token\":\"x\"}", p) == errc::ok));
    BOOST_TEST(p.data.as_object().at("token").as_string() == "x");

    BOOST_TEST((sio::decode_sio_message("40/custom,", p) == errc::ok));
    BOOST_TEST(p.nsp == "/custom");
    BOOST_TEST((sio::decode_sio_message("40/custom,{\"token\":\"abc\"}", p) == errc::ok));
    BOOST_TEST(p.nsp == "/custom");
    BOOST_TEST(p.data.is_object());
    BOOST_TEST((sio::decode_sio_message("40/random", p) == errc::ok)); // no comma at the end
    BOOST_TEST(p.nsp == "/random");

    BOOST_TEST(
        (sio::decode_sio_message("42[\"subscribe\",{\"channels\":[\"kpi\"]}]", p) == errc::ok));
    BOOST_TEST((p.type == sio_type::event));
    BOOST_TEST(p.event_name() == "subscribe");
    BOOST_TEST(!p.ack_id);
    BOOST_TEST(p.data.as_array().size() == 2u);
    BOOST_TEST(p.data.as_array()[1].as_object().at("channels").as_array()[0].as_string() == "kpi");

    BOOST_TEST((sio::decode_sio_message("421[\"subscribe\",{}]", p) == errc::ok));
    BOOST_TEST(p.event_name() == "subscribe");
    BOOST_TEST_REQUIRE(p.ack_id.has_value());
    BOOST_TEST(*p.ack_id == 1u);

    BOOST_TEST((sio::decode_sio_message("42456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", p) ==
                errc::ok));
    BOOST_TEST(*p.ack_id == 456u);
    BOOST_TEST(p.data.as_array().size() == 4u);

    BOOST_TEST((sio::decode_sio_message("431[{\"ok\":true}]", p) == errc::ok));
    BOOST_TEST((p.type == sio_type::ack));
    BOOST_TEST(*p.ack_id == 1u);
    BOOST_TEST(p.data.as_array()[0].as_object().at("ok").as_bool());
    BOOST_TEST((sio::decode_sio_message("4312[]", p) == errc::ok));
    BOOST_TEST(*p.ack_id == 12u);

    BOOST_TEST((sio::decode_sio_message("3/admin,13[\"bar\"]", p) == errc::unknown_type));
    BOOST_TEST((decode("3/admin,13[\"bar\"]", p) == errc::ok)); // the spec's example, sio only
    BOOST_TEST(p.nsp == "/admin");
    BOOST_TEST(*p.ack_id == 13u);

    BOOST_TEST((sio::decode_sio_message("41", p) == errc::ok));
    BOOST_TEST((p.type == sio_type::disconnect));
    BOOST_TEST((sio::decode_sio_message("41/admin,", p) == errc::ok));
    BOOST_TEST(p.nsp == "/admin");

    BOOST_TEST((decode("4{\"message\":\"Not authorized\"}", p) == errc::ok));
    BOOST_TEST((p.type == sio_type::connect_error));
    BOOST_TEST((decode("4\"v2 style\"", p) == errc::ok));
    BOOST_TEST((decode("2/admin,[\"bar\"]", p) == errc::ok));
    BOOST_TEST(p.nsp == "/admin");
}

BOOST_AUTO_TEST_CASE(malformed_socket_io_packets) {
    sio::sio_packet p;
    // empty, bad type
    BOOST_TEST((decode("") == errc::empty));
    BOOST_TEST((sio::decode_sio_message("", p) == errc::empty));
    BOOST_TEST((sio::decode_sio_message("4", p) == errc::empty));
    BOOST_TEST((decode("7") == errc::unknown_type));
    BOOST_TEST((decode("x[\"a\"]") == errc::unknown_type));
    BOOST_TEST((decode("abc") == errc::unknown_type));
    BOOST_TEST((sio::decode_sio_message("4abc", p) == errc::unknown_type));
    BOOST_TEST((sio::decode_sio_message("2", p) == errc::unknown_type)); // a ping, not a message
    BOOST_TEST((sio::decode_sio_message("b42", p) == errc::binary_unsupported));

    // binary
    BOOST_TEST(
        (decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]") == errc::binary_unsupported));
    BOOST_TEST(
        (decode("61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]") == errc::binary_unsupported));
    BOOST_TEST((decode("50-[\"a\"]") == errc::binary_unsupported));

    // namespace
    BOOST_TEST((decode("2chat,[\"a\"]") == errc::bad_namespace));
    BOOST_TEST((decode("0admin,{}") == errc::bad_namespace));
    BOOST_TEST((decode("2/chat[\"a\"]") == errc::bad_namespace));
    BOOST_TEST((decode("0/admin{\"a\":1,\"b\":2}") == errc::bad_namespace));
    BOOST_TEST((decode("0/a\x01,") == errc::bad_namespace));
    sio::limits lim;
    lim.max_namespace = 8;
    BOOST_TEST((decode("0/1234567,", lim) == errc::ok));
    BOOST_TEST((decode("0/12345678,", lim) == errc::bad_namespace));

    // ack id
    BOOST_TEST((decode("299999999999999999999999[\"a\"]") == errc::bad_ack_id));
    BOOST_TEST((decode("29007199254740992[\"a\"]") == errc::bad_ack_id)); // 2^53
    BOOST_TEST((decode("29007199254740991[\"a\"]", p) == errc::ok));      // 2^53 - 1
    BOOST_TEST(*p.ack_id == sio::max_ack_id);
    BOOST_TEST((decode("3[\"a\"]") == errc::bad_ack_id)); // an ACK of nothing
    BOOST_TEST((decode("3") == errc::bad_ack_id));
    BOOST_TEST((decode("012{}") == errc::bad_ack_id)); // only EVENT and ACK take one
    BOOST_TEST((decode("11") == errc::bad_ack_id));
    BOOST_TEST((decode("41{\"message\":\"x\"}") == errc::bad_ack_id));

    // not JSON
    BOOST_TEST((decode("2abc[\"message-with-ack\",1]") == errc::bad_json));
    BOOST_TEST((decode("2[\"a\"") == errc::bad_json));
    BOOST_TEST((decode("2[\"a\"]x") == errc::bad_json));
    BOOST_TEST((decode("2[\"a\"][\"b\"]") == errc::bad_json));
    BOOST_TEST((decode("0{token:1}") == errc::bad_json));
    BOOST_TEST((decode("2[\"a\",1e400]") == errc::bad_json)); // would serialise as Infinity
    BOOST_TEST((decode("2[\"a\",NaN]") == errc::bad_json));
    // JSON.parse would take the whitespace, but the reference reads it as ack id 0
    BOOST_TEST((decode("2 [\"spaced\"]") == errc::bad_json));
    BOOST_TEST((decode("0\n{}") == errc::bad_json));

    // wrong JSON type for the packet type
    BOOST_TEST((decode("2{}") == errc::bad_payload));
    BOOST_TEST((decode("2") == errc::bad_payload)); // an EVENT needs its payload
    BOOST_TEST((decode("2[]") == errc::bad_payload));
    BOOST_TEST((decode("2\"a\"") == errc::bad_payload));
    BOOST_TEST((decode("2null") == errc::bad_payload));
    BOOST_TEST((decode("0[]") == errc::bad_payload));
    BOOST_TEST((decode("0\"token\"") == errc::bad_payload));
    BOOST_TEST((decode("0null") == errc::bad_payload));
    BOOST_TEST((decode("01") == errc::bad_ack_id)); // digits after a CONNECT read as an id
    BOOST_TEST((decode("1{}") == errc::bad_payload));
    BOOST_TEST((decode("1[]") == errc::bad_payload));
    BOOST_TEST((decode("1null") == errc::bad_payload));
    BOOST_TEST((decode("1/admin,{}") == errc::bad_payload));
    BOOST_TEST((decode("31{}") == errc::bad_payload));
    BOOST_TEST((decode("31") == errc::bad_payload));
    BOOST_TEST((decode("31\"x\"") == errc::bad_payload));
    BOOST_TEST((decode("4[]") == errc::bad_payload));
    BOOST_TEST((decode("4") == errc::bad_payload));
    BOOST_TEST((decode("4true") == errc::bad_payload));

    // event names
    BOOST_TEST((decode("2[1,\"a\"]") == errc::bad_event_name)); // the reference allows numbers
    BOOST_TEST((decode("2[null]") == errc::bad_event_name));
    BOOST_TEST((decode("2[{\"a\":1}]") == errc::bad_event_name));
    BOOST_TEST((decode("2[[\"a\"]]") == errc::bad_event_name));
    for (std::string_view r : {"connect", "connect_error", "disconnect", "disconnecting",
                               "newListener", "removeListener"}) {
        BOOST_TEST((decode("2[\"" + std::string(r) + "\"]") == errc::reserved_event), r);
        BOOST_TEST(sio::reserved_event_name(r));
    }
    BOOST_TEST((decode("2[\"Connect\"]") == errc::ok));
    BOOST_TEST((decode("2[\"connected\"]") == errc::ok));
    BOOST_TEST(!sio::reserved_event_name("message"));
}

BOOST_AUTO_TEST_CASE(bounds) {
    sio::limits lim;
    lim.max_size = 32;
    std::string const fits = "2[\"" + std::string(27, 'a') + "\"]"; // 32 bytes
    BOOST_TEST(fits.size() == 32u);
    BOOST_TEST((decode(fits, lim) == errc::ok));
    BOOST_TEST((decode(fits + " ", lim) == errc::too_large));
    // the size is checked before anything else, even on garbage
    BOOST_TEST((decode(std::string(33, 'x'), lim) == errc::too_large));
    BOOST_TEST((decode("2[\"a\"," + std::string(2 * 1000 * 1000, ' ') + "1]") == errc::too_large));

    lim = {};
    lim.max_depth = 4;
    BOOST_TEST((decode("2[\"a\"," + nested(3) + "]", lim) == errc::ok));
    BOOST_TEST((decode("2[\"a\"," + nested(4) + "]", lim) == errc::too_deep));
    BOOST_TEST((decode("0{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", lim) == errc::too_deep));
    // the default depth (32) against an attacker's nesting
    BOOST_TEST((decode("2[\"a\"," + nested(10000) + "]") == errc::too_deep));
    BOOST_TEST((decode("2[\"a\"," + nested(31) + "]") == errc::ok));

    BOOST_TEST((sio::to_error(errc::too_large) == rtpush::error::message_too_large));
    BOOST_TEST((sio::to_error(errc::bad_json) == rtpush::error::invalid_message));
    BOOST_TEST((sio::to_error(errc::binary_unsupported) == rtpush::error::invalid_message));
    for (int e = 0; e <= static_cast<int>(errc::bad_auth); ++e)
        BOOST_TEST(!sio::describe(static_cast<errc>(e)).empty());
    BOOST_TEST(sio::describe(errc::bad_namespace) == "namespace must start with '/'");
}

BOOST_AUTO_TEST_CASE(encoders) {
    // what socket.io-client 4.x expects back
    BOOST_TEST(sio::encode_connect("wZX3oN0bSVIhsaknAAAI") ==
               "40{\"sid\":\"wZX3oN0bSVIhsaknAAAI\"}");
    BOOST_TEST(sio::encode_connect("s1", "p1") == "40{\"sid\":\"s1\",\"pid\":\"p1\"}");
    BOOST_TEST(sio::encode_connect("oSO0OpakMV_3jnilAAAA", {}, "/admin") ==
               "40/admin,{\"sid\":\"oSO0OpakMV_3jnilAAAA\"}");
    BOOST_TEST(sio::encode_connect_error("Not authorized") == "44{\"message\":\"Not authorized\"}");
    BOOST_TEST(sio::encode_connect_error("Invalid namespace", "/random") ==
               "44/random,{\"message\":\"Invalid namespace\"}");
    BOOST_TEST(sio::encode_connect_error("bad \"token\"\n", "/", "{\"code\":\"AUTH_FAILED\"}") ==
               "44{\"message\":\"bad \\\"token\\\"\\n\",\"data\":{\"code\":\"AUTH_FAILED\"}}");
    BOOST_TEST(sio::encode_disconnect() == "41");
    BOOST_TEST(sio::encode_disconnect("/admin") == "41/admin,");

    BOOST_TEST(sio::encode_event("foo", {}) == "42[\"foo\"]");
    BOOST_TEST(sio::encode_event("message-back", "1") == "42[\"message-back\",1]");
    BOOST_TEST(sio::encode_event("kpi:update", "{\"value\":42}") ==
               "42[\"kpi:update\",{\"value\":42}]");
    BOOST_TEST(sio::encode_event("bar", {}, {.nsp = "/admin"}) == "42/admin,[\"bar\"]");
    BOOST_TEST(sio::encode_event("foo", {}, {.ack_id = 12}) == "4212[\"foo\"]");
    BOOST_TEST(sio::encode_event("foo", "{}", {.nsp = "/admin", .ack_id = 13}) ==
               "42/admin,13[\"foo\",{}]");
    BOOST_TEST(sio::encode_event("a\"b", "null") == "42[\"a\\\"b\",null]");
    BOOST_TEST(sio::encode_event("kpi:update", "{\"v\":1}", {.offset = "e1~kpi~7"}) ==
               "42[\"kpi:update\",{\"v\":1},\"e1~kpi~7\"]");

    BOOST_TEST(sio::encode_ack(456, "[1,\"2\",{\"3\":[false]}]") ==
               "43456[1,\"2\",{\"3\":[false]}]");
    BOOST_TEST(sio::encode_ack(1, "[{\"ok\":true}]") == "431[{\"ok\":true}]");
    BOOST_TEST(sio::encode_ack(12, {}) == "4312[]");
    BOOST_TEST(sio::encode_ack(13, "[\"bar\"]", "/admin") == "43/admin,13[\"bar\"]");
}

BOOST_AUTO_TEST_CASE(encoders_round_trip) {
    sio::sio_packet p;
    BOOST_TEST((sio::decode_sio_message(sio::encode_connect("s", "p", "/n"), p) == errc::ok));
    BOOST_TEST((p.type == sio_type::connect));
    BOOST_TEST(p.nsp == "/n");
    BOOST_TEST(p.data.as_object().at("pid").as_string() == "p");

    BOOST_TEST((sio::decode_sio_message(sio::encode_connect_error("no", "/n"), p) == errc::ok));
    BOOST_TEST((p.type == sio_type::connect_error));
    BOOST_TEST(p.data.as_object().at("message").as_string() == "no");

    BOOST_TEST((sio::decode_sio_message(sio::encode_disconnect("/n"), p) == errc::ok));
    BOOST_TEST((p.type == sio_type::disconnect));
    BOOST_TEST(p.nsp == "/n");

    // a broadcast: serialised once, encoded once, decoded by every subscriber alike
    json::value const data = {{"kpi", "sla"}, {"value", 0.97}, {"tags", json::array{"a", "b"}}};
    std::string const data_json = json::serialize(data);
    std::string const packet =
        sio::encode_event("kpi:update", data_json, {.nsp = "/n", .ack_id = 7, .offset = "o"});
    BOOST_TEST((sio::decode_sio_message(packet, p) == errc::ok));
    BOOST_TEST(p.nsp == "/n");
    BOOST_TEST(*p.ack_id == 7u);
    BOOST_TEST(p.event_name() == "kpi:update");
    BOOST_TEST(p.data.as_array()[1] == data);
    BOOST_TEST(p.data.as_array()[2].as_string() == "o");

    BOOST_TEST((sio::decode_sio_message(sio::encode_ack(9, "[true]", "/n"), p) == errc::ok));
    BOOST_TEST((p.type == sio_type::ack));
    BOOST_TEST(*p.ack_id == 9u);
    BOOST_TEST(p.data.as_array()[0].as_bool());

    // in a polling body, each packet is one record
    std::string body;
    sio::append_to_payload(body, sio::encode_connect("s"));
    sio::append_to_payload(body, packet);
    std::vector<sio::eio_packet> v;
    BOOST_TEST((sio::decode_payload(body, v) == errc::ok));
    BOOST_TEST(v.size() == 2u);
    BOOST_TEST((sio::decode_sio(v[1].data, p) == errc::ok));
    BOOST_TEST(p.event_name() == "kpi:update");
}

BOOST_AUTO_TEST_CASE(connect_auth) {
    sio::connect_auth a;
    BOOST_TEST((sio::parse_connect_auth(json::value(), a) == errc::ok)); // "40"
    BOOST_TEST(a.token.empty());
    BOOST_TEST(!a.recovering());

    // what socket.io-client sends on reconnection with recovery: {pid, offset, ...auth}
    sio::sio_packet p;
    BOOST_TEST((sio::decode_sio_message(
                    "40{\"pid\":\"p1\",\"offset\":\"e1~kpi~7\",\"token\":\"jwt\",\"tz\":\"UTC\"}",
                    p) == errc::ok));
    BOOST_TEST((sio::parse_connect_auth(p.data, a) == errc::ok));
    BOOST_TEST(a.token == "jwt");
    BOOST_TEST(a.pid == "p1");
    BOOST_TEST(a.offset == "e1~kpi~7");
    BOOST_TEST(a.recovering());
    BOOST_TEST(a.others.size() == 1u);
    BOOST_TEST(a.others.at("tz").as_string() == "UTC");

    // a pid before any tagged event arrived: no offset (JSON.stringify drops undefined)
    BOOST_TEST(
        (sio::parse_connect_auth(json::parse("{\"pid\":\"p1\",\"token\":\"t\"}"), a) == errc::ok));
    BOOST_TEST(!a.recovering());
    // non-string pid or offset: ignored, like the reference
    BOOST_TEST(
        (sio::parse_connect_auth(json::parse("{\"pid\":1,\"offset\":\"o\"}"), a) == errc::ok));
    BOOST_TEST(!a.recovering());
    BOOST_TEST(a.others.empty());

    BOOST_TEST((sio::parse_connect_auth(json::parse("{\"token\":42}"), a) == errc::bad_auth));
    BOOST_TEST((sio::parse_connect_auth(json::parse("{\"token\":null}"), a) == errc::bad_auth));
    BOOST_TEST(
        (sio::parse_connect_auth(json::value{{"pid", std::string(257, 'p')}, {"offset", "o"}}, a) ==
         errc::bad_auth));
    BOOST_TEST((sio::parse_connect_auth(json::value{{"offset", std::string(257, 'o')}}, a) ==
                errc::bad_auth));
    BOOST_TEST((sio::parse_connect_auth(json::array{}, a) == errc::bad_payload));
}

BOOST_AUTO_TEST_CASE(recovery_offsets) {
    std::string const o = sio::make_offset("e1", "kpi:org:acme", 42);
    BOOST_TEST(o == "e1~kpi:org:acme~42");
    sio::event_offset eo;
    BOOST_TEST(sio::parse_offset(o, eo));
    BOOST_TEST(eo.epoch == "e1");
    BOOST_TEST(eo.topic_key == "kpi:org:acme");
    BOOST_TEST(eo.seq == 42u);
    BOOST_TEST(sio::parse_offset(sio::make_offset("e", "k", 0), eo));
    BOOST_TEST(eo.seq == 0u);

    for (std::string_view bad :
         {"", "e1", "e1~kpi", "e1~kpi~", "~kpi~1", "e1~~1", "e1~kpi~x", "e1~kpi~1x", "e1~kpi~-1",
          "e1~kpi~1~2", "e1~kpi~99999999999999999999999", "MTY5NjAwMDAwMDAwMC0w"})
        BOOST_TEST(!sio::parse_offset(bad, eo), bad);

    // the tagged event as a recovering client sees it: the offset is its last argument
    sio::sio_packet p;
    std::string const ev = sio::encode_event("kpi:update", "{\"v\":1}", {.offset = o});
    BOOST_TEST((sio::decode_sio_message(ev, p) == errc::ok));
    auto const& args = p.data.as_array();
    BOOST_TEST(args.back().as_string() == o);
    // and is sent back in the CONNECT auth
    sio::connect_auth a;
    std::string const reconnect =
        "40{\"pid\":\"p\",\"offset\":" + json::serialize(args.back()) + "}";
    BOOST_TEST((sio::decode_sio_message(reconnect, p) == errc::ok));
    BOOST_TEST((sio::parse_connect_auth(p.data, a) == errc::ok));
    BOOST_TEST(a.recovering());
    BOOST_TEST(sio::parse_offset(a.offset, eo));
    BOOST_TEST(eo.seq == 42u);
}

BOOST_AUTO_TEST_SUITE_END()
