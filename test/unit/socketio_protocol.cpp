// Unit tests for detail/seed_events.hpp and detail/socketio_protocol.hpp: seed events read
// into rtpush messages, and Socket.IO packets over a connection without a socket (what the
// transport is asked to send is recorded).
#include <rtpush/config.hpp>
#include <rtpush/detail/socketio_protocol.hpp>
#include <rtpush/hub.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;

namespace {

struct fixture {
    rtpush::server_config cfg;
    rtpush::hub hub{cfg.history};
    d::subscription_index index;
    d::shard_counters counters;
    d::org_connections orgs;
    d::protocol_context env{hub, cfg, index, counters, nullptr, &orgs, 0};
};

// A Socket.IO connection whose transport records the packets it is given.
struct sio_connection final : d::subscriber,
                              d::client_protocol<sio_connection>,
                              d::socketio_protocol<sio_connection> {
    explicit sio_connection(fixture& f)
        : fx(f) {}
    ~sio_connection() { leave(); }
    fixture& fx;
    d::client_state state;
    d::socketio_state sio;
    std::vector<std::string> packets; // Engine.IO packets, as a WebSocket frame would hold them
    std::uint16_t close_code = 0;
    std::string close_reason;

    d::protocol_context& protocol_env() { return fx.env; }
    d::client_state& client() { return state; }
    d::socketio_state& sio_state() { return sio; }
    std::uint64_t id() const { return 3; }
    std::string client_id() const { return "c3"; }
    std::string remote() const { return "127.0.0.1:1"; }
    void send_packet(std::string p) { packets.push_back(std::move(p)); }
    int probes = 0, upgrades = 0;
    void on_probe() { ++probes; }
    void on_upgrade() { ++upgrades; }
    void send_json(std::string text) { sio_json(std::move(text)); }
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id) {
        send_json(rtpush::message::error(code, msg, id));
    }
    void push(const d::frame_ptr& f) override {
        if (auto t = d::socketio_twin(f))
            packets.emplace_back(d::frame_payload(t->bytes));
    }
    void flush() override {}
    void close(std::uint16_t code, std::string_view why) {
        close_code = code;
        close_reason = why;
    }
    bool closing() const { return close_code != 0; }
    std::size_t queued() const { return 0; }
    std::size_t queued_bytes() const { return 0; }
    d::subscriber* as_subscriber() { return this; }
    struct poster_type {
        template <class F>
        void post(F) const {}
    };
    poster_type poster() const { return {}; }
};

} // namespace

BOOST_AUTO_TEST_SUITE(seed_events)

BOOST_AUTO_TEST_CASE(subscribe_with_channels_and_flat_scope) {
    auto e = d::read_seed_event(
        "subscribe",
        boost::json::parse(
            R"({"channels":["kpi","alerts"],"organization_id":"org_123","queue_name":"q"})"));
    BOOST_TEST(static_cast<int>(e.kind) == static_cast<int>(d::seed_event_kind::messages));
    BOOST_REQUIRE(e.messages.size() == 2u);
    BOOST_TEST(e.messages[0].at("type").as_string() == "subscribe");
    BOOST_TEST(e.messages[0].at("channel").as_string() == "kpi");
    BOOST_TEST(e.messages[1].at("channel").as_string() == "alerts");
    BOOST_TEST(e.messages[0].at("scope").at("organization_id").as_string() == "org_123");
    BOOST_TEST(e.messages[0].at("scope").at("queue_name").as_string() == "q");
    BOOST_TEST(!e.messages[0].contains("organization_id"));
}

BOOST_AUTO_TEST_CASE(refusals_say_why) {
    auto unknown = d::read_seed_event("drop:tables", {});
    BOOST_TEST(static_cast<int>(unknown.kind) == static_cast<int>(d::seed_event_kind::refused));
    BOOST_TEST(unknown.why.find("unknown event 'drop:tables'") != std::string::npos);
    auto no_channel = d::read_seed_event("subscribe", boost::json::parse("{}"));
    BOOST_TEST(no_channel.why.find("'channels'") != std::string::npos);
    auto not_object = d::read_seed_event("get", boost::json::parse("[1]"));
    BOOST_TEST(not_object.why.find("must be an object") != std::string::npos);
    auto bad_name = d::read_seed_event("subscribe", boost::json::parse(R"({"channels":[1]})"));
    BOOST_TEST(bad_name.messages.empty());
    BOOST_TEST(bad_name.why.find("strings") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_room_name_alone) {
    auto e = d::read_seed_event("subscribe", boost::json::value("kpi"));
    BOOST_REQUIRE(e.messages.size() == 1u);
    BOOST_TEST(e.messages[0].at("channel").as_string() == "kpi");
    BOOST_TEST(!e.messages[0].contains("scope"));
    auto g = d::read_seed_event("get", boost::json::value("kpi"));
    BOOST_TEST(static_cast<int>(g.kind) == static_cast<int>(d::seed_event_kind::refused));
}

BOOST_AUTO_TEST_CASE(client_prefix_and_ping) {
    auto p = d::read_seed_event("client:ping", {});
    BOOST_TEST(static_cast<int>(p.kind) == static_cast<int>(d::seed_event_kind::client_ping));
    auto s = d::read_seed_event("client:unsubscribe", boost::json::parse(R"({"channel":"kpi"})"));
    BOOST_REQUIRE(s.messages.size() == 1u);
    BOOST_TEST(s.messages[0].at("type").as_string() == "unsubscribe");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(socketio_protocol)

BOOST_AUTO_TEST_CASE(connect_subscribe_with_ack_and_receive_once_serialised) {
    fixture fx;
    sio_connection c(fx);
    auto const open = c.open_packet();
    BOOST_TEST(open.starts_with("0{\"sid\":\"c3\""));
    c.on_engine_io("42[\"subscribe\",{\"channels\":[\"kpi\"]}]");
    BOOST_TEST(c.packets.empty()); // an EVENT before CONNECT is ignored, as the reference does
    c.on_engine_io("40");
    BOOST_REQUIRE(!c.packets.empty());
    BOOST_TEST(c.packets.back() == "40{\"sid\":\"c3\"}");
    c.on_engine_io("427[\"subscribe\",{\"channels\":[\"kpi\"],\"organization_id\":\"acme\"}]");
    BOOST_TEST(c.packets.back().starts_with("437[{\"success\":true,\"results\":[{\"type\":"
                                            "\"subscribed\""));
    BOOST_TEST(fx.index.entries().count("kpi:org:acme") == 1u);

    rtpush::publication p{rtpush::topic{"kpi", {"acme", "", ""}},
                          "kpi:update",
                          "",
                          rtpush::priority::high,
                          boost::json::parse(R"({"health":85})"),
                          {}};
    std::vector<d::frame_ptr> frames;
    fx.hub.publish(p);
    fx.hub.initial_frames(rtpush::topic{"kpi", {"acme", "", ""}}, frames);
    BOOST_REQUIRE(frames.size() == 1u);
    auto const a = d::socketio_twin(frames[0]);
    auto const b = d::socketio_twin(frames[0]);
    BOOST_TEST(a.get() == b.get()); // made once, shared
    BOOST_TEST(std::string(d::frame_payload(a->bytes)) == "42[\"kpi:update\",{\"health\":85}]");
    BOOST_TEST(a->topic == frames[0]->topic);
}

BOOST_AUTO_TEST_CASE(answers_without_ack_are_events) {
    fixture fx;
    sio_connection c(fx);
    c.on_engine_io("40");
    c.on_engine_io("42[\"client:ping\"]");
    BOOST_TEST(c.packets.back().starts_with("42[\"client:pong\",{\"timestamp\":"));
    c.on_engine_io("42[\"nope\",{}]");
    BOOST_TEST(c.packets.back().starts_with("42[\"error\",{\"type\":\"error\""));
    c.on_engine_io("423[\"subscribe\",{\"channels\":[\"kpi\"],\"organization_id\":\"bad org\"}]");
    BOOST_TEST(c.packets.back().starts_with("433[{\"success\":false"));
}

BOOST_AUTO_TEST_CASE(engine_io_packets) {
    fixture fx;
    sio_connection c(fx);
    c.on_engine_io("2probe");
    BOOST_TEST(c.packets.back() == "3probe");
    BOOST_TEST(c.probes == 1);
    c.on_engine_io("5");
    BOOST_TEST(c.upgrades == 1);
    c.on_engine_io("3");
    BOOST_TEST(c.packets.size() == 1u);
    BOOST_TEST(c.open_packet(true).find("\"upgrades\":[\"websocket\"]") != std::string::npos);
    BOOST_TEST(c.open_packet().find("\"upgrades\":[]") != std::string::npos);
    c.on_engine_io("40/admin,");
    BOOST_TEST(c.packets.back() == "44/admin,{\"message\":\"Invalid namespace\"}");
    c.on_engine_io("1");
    BOOST_TEST(c.close_code == 1000);
}

BOOST_AUTO_TEST_CASE(garbage_closes_with_the_reason) {
    for (std::string_view bad : {"", "9", "4", "42{", "451-[\"a\"]", "b4AA", "0{}"}) {
        fixture fx;
        sio_connection c(fx);
        c.on_engine_io("40");
        c.on_engine_io(bad);
        BOOST_TEST(c.close_code == 1008, "'" << bad << "' closed with " << c.close_code);
        BOOST_TEST(c.close_reason.starts_with("invalid Socket.IO packet: "));
    }
}

BOOST_AUTO_TEST_CASE(auth_required_and_tokens) {
    fixture fx;
    fx.cfg.auth_required = true;
    fx.cfg.jwt_secret = "s";
    sio_connection c(fx);
    c.on_engine_io("40");
    BOOST_TEST(c.packets.back().starts_with("44{\"message\":\"authentication required"));
    BOOST_TEST(c.packets.back().find("\"code\":\"UNAUTHORIZED\"") != std::string::npos);
    c.on_engine_io("40{\"token\":\"not.a.jwt\"}");
    BOOST_TEST(c.packets.back().find("\"code\":\"AUTH_FAILED\"") != std::string::npos);
    c.on_engine_io("40{\"token\":5}");
    BOOST_TEST(c.packets.back() == "44{\"message\":\"invalid CONNECT auth payload\"}");
    BOOST_TEST(!c.sio.connected);
}

BOOST_AUTO_TEST_SUITE_END()
