// Unit tests for detail/seed_events.hpp and detail/socketio_protocol.hpp: seed events read
// into rtpush messages, and Socket.IO packets over a connection without a socket (what the
// transport is asked to send is recorded). The seeds' events are described in
// docs/protocol.md, "Seed parity" and "Coming from Socket.IO".
#include <rtpush/config.hpp>
#include <rtpush/detail/feed_format.hpp>
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
    d::connection_quotas quotas;
    d::socketio_session_store kept{std::chrono::seconds(60)};
    d::ack_registry acks;
    d::protocol_context env{hub, cfg, index, counters, &acks, &quotas, 0, nullptr};
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
    std::string engine_sid() const { return client_id(); }
    std::string remote() const { return "127.0.0.1:1"; }
    void send_packet(std::string p) { packets.push_back(std::move(p)); }
    int probes = 0, upgrades = 0;
    void on_probe() { ++probes; }
    void on_upgrade() { ++upgrades; }
    void send_json(std::string text) { sio_json(std::move(text)); }
    std::uint64_t hold_answer() { return sio_hold_answer(); }
    void send_answer(std::uint64_t token, std::string text) { sio_answer(token, std::move(text)); }
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id) {
        send_json(rtpush::message::error(code, msg, id));
    }
    void push(const d::frame_ptr& f) override {
        if (auto t = sio_frame(f); t && !sio_hold(t))
            push_twin(t);
    }
    void push_twin(const d::frame_ptr& t) { // written at once
        packets.emplace_back(d::frame_payload(t->bytes));
        sio_written(t);
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

BOOST_AUTO_TEST_CASE(seed004_regions_are_scopes_of_metrics) {
    auto sub =
        d::read_seed_event("metrics:subscribe", boost::json::parse(R"({"source":"us-east"})"));
    BOOST_REQUIRE(sub.messages.size() == 1u);
    BOOST_TEST(sub.messages[0].at("type").as_string() == "subscribe");
    BOOST_TEST(sub.messages[0].at("channel").as_string() == "metrics");
    BOOST_TEST(sub.messages[0].at("scope").at("org").as_string() == "us-east");
    auto all = d::read_seed_event("metrics:get", boost::json::parse("{}"));
    BOOST_TEST(static_cast<int>(all.kind) == static_cast<int>(d::seed_event_kind::metrics_get));
    BOOST_TEST(!all.messages[0].contains("scope"));
    auto bad = d::read_seed_event("metrics:unsubscribe", boost::json::parse(R"({"source":7})"));
    BOOST_TEST(bad.why.find("region") != std::string::npos);

    auto snap = boost::json::parse(R"({"type":"snapshot","items":[
        {"scope":{"org":"us-east"},"data":{"api":"aws","cpu":3},"timestamp":"T1"},
        {"scope":{"org":"eu-west"},"data":{"cpu":4},"timestamp":"T2"}]})")
                    .as_object();
    auto every = d::seed004_metrics_data(snap, "");
    BOOST_REQUIRE(every);
    BOOST_TEST(every->at("count").as_uint64() == 2u);
    BOOST_TEST(every->at("data").at(0).at("api").as_string() == "aws");
    BOOST_TEST(every->at("data").at(1).at("api").as_string() == "metrics");
    BOOST_TEST(every->at("data").at(1).at("source").as_string() == "eu-west");
    BOOST_TEST(every->at("data").at(1).at("updatedAt").as_string() == "T2");
    auto none = boost::json::parse(R"({"type":"snapshot","items":[]})").as_object();
    BOOST_TEST(!d::seed004_metrics_data(none, "us-east"));
    BOOST_TEST(d::seed004_metrics_data(none, "")->at("count").as_uint64() == 0u);
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
    // Tagged with its recovery offset, the last argument a listener gets.
    BOOST_TEST(std::string(d::frame_payload(a->bytes)) ==
               "42[\"kpi:update\",{\"health\":85},\"" + fx.hub.epoch() + "~kpi:org:acme~1\"]");
    BOOST_TEST(a->topic == frames[0]->topic);
}

// requires_ack: the connection's own packet asks the listener's callback; its answer acks.
BOOST_AUTO_TEST_CASE(a_publication_to_ack_asks_the_callback) {
    fixture fx;
    sio_connection c(fx);
    c.on_engine_io("40");
    rtpush::publication p{rtpush::topic{"alerts", {"acme", "", ""}},
                          "alert:triggered",
                          "",
                          rtpush::priority::high,
                          boost::json::parse(R"({"n":1})"),
                          {}};
    std::string const key = p.topic.key();
    p.ack_id = fx.acks.create(key);
    auto const f = d::publication_frame(
        d::make_frame(d::opcode::text, rtpush::message::publication("update", p, 1, fx.hub.epoch(),
                                                                    "t", false, key)),
        p, key, 1, true, 1);
    c.push(f);
    c.push(f); // a second delivery (a re-send) asks again, under its own id
    BOOST_REQUIRE(c.packets.size() >= 3u);
    auto const n = c.packets.size();
    BOOST_TEST(c.packets[n - 2] == R"(421["alert:triggered",{"n":1}])"); // no offset
    BOOST_TEST(c.packets[n - 1] == R"(422["alert:triggered",{"n":1}])");
    BOOST_TEST(d::socketio_twin(f)->bytes != d::make_frame(d::opcode::text, c.packets[n - 1]));
    auto status = [&] {
        return *fx.acks.tracker.lookup(p.ack_id);
    };
    BOOST_TEST(status().targeted == 1u);
    BOOST_TEST(status().acked == 0u);
    c.on_engine_io("439[]"); // an answer to nothing asked: ignored
    BOOST_TEST(c.close_code == 0);
    c.on_engine_io("432[{\"ok\":true}]");
    BOOST_TEST(status().acked == 1u);
    c.on_engine_io("431[]"); // the first request's answer after the second's: a duplicate
    BOOST_TEST(status().acked == 1u);
    BOOST_TEST(c.sio.ack_requests.empty());
}

BOOST_AUTO_TEST_CASE(seed004_metrics_get_and_subscribe) {
    fixture fx;
    sio_connection c(fx);
    c.on_engine_io("40");
    c.on_engine_io("42[\"metrics:get\",{\"source\":\"us-east\"}]");
    BOOST_TEST(c.packets.back().starts_with("42[\"metrics:error\",{\"message\":"));
    BOOST_TEST(c.packets.back().find("NOT_FOUND") != std::string::npos);
    fx.hub.publish(rtpush::publication{rtpush::topic{"metrics", {"us-east", "", ""}},
                                       "metrics-update",
                                       "",
                                       rtpush::priority::high,
                                       boost::json::parse(R"({"cpu":12})"),
                                       {}});
    c.on_engine_io("425[\"metrics:get\",{\"source\":\"us-east\"}]");
    BOOST_TEST(c.packets.back().starts_with(
        "435[{\"api\":\"metrics\",\"source\":\"us-east\",\"data\":{\"cpu\":12}"));
    c.on_engine_io("42[\"metrics:get\",{}]");
    BOOST_TEST(
        c.packets.back().starts_with("42[\"metrics:data\",{\"api\":\"metrics\",\"count\":1"));
    c.on_engine_io("42[\"metrics:subscribe\",{\"source\":\"us-east\"}]");
    BOOST_TEST(fx.index.entries().count("metrics:org:us-east") == 1u);
    c.on_engine_io("42[\"metrics:get\",{\"source\":\"bad region!\"}]");
    BOOST_TEST(c.packets.back().starts_with("42[\"metrics:error\""));
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

BOOST_AUTO_TEST_SUITE(socketio_recovery)

BOOST_AUTO_TEST_CASE(resume_points_follow_write_order) {
    d::written_log log;
    log.wrote("a", 1);
    log.wrote("b", 1);
    log.wrote("a", 2);
    log.wrote("b", 2);
    auto r = log.resume_points("a", 2); // b:2 came after: it may be lost
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == 2u);
    BOOST_TEST(r->at("b") == 1u);
    r = log.resume_points("b", 1);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == 1u);
    BOOST_TEST(r->at("b") == 1u);
    BOOST_TEST(!log.resume_points("a", 3)); // never written here
    for (std::uint64_t i = 3; i < 3 + d::written_log::capacity; ++i) {
        log.wrote("a", i); // a and b take turns: a run each
        log.wrote("b", i);
    }
    BOOST_TEST(!log.resume_points("b", 2)); // out of the log: nothing can be said
    // b written amid a's: the a's between two b's are one run.
    for (std::uint64_t i = 0; i < 3 * d::written_log::capacity; ++i)
        log.wrote(i % 100 == 50 ? "b" : "a", 1000 + i);
    auto const last = 1000 + 3 * d::written_log::capacity - 1;
    r = log.resume_points("a", last - 10);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == last - 10);    // resumes after the event handled
    BOOST_TEST(r->at("b") == 1000 + 1450u); // b's last, written before it
    r = log.resume_points("a", last - 120); // b's 1000 + 1450 came after it
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == last - 120);
    BOOST_TEST(r->at("b") == 1000 + 1450u - 1);
    r = log.resume_points("a", 1049); // the end of a run: b's 1050 came next
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == 1050u); // a's next is 1051
    BOOST_TEST(r->at("b") == 1049u);
    BOOST_TEST(!log.resume_points("a", 1050)); // b's seq, not a's
    BOOST_TEST(!log.resume_points("a", last + 1));
    // A topic's gap starts a run of its own; runs age out of the ring whole.
    log.wrote("a", last + 5);
    BOOST_TEST(!log.resume_points("a", last + 1));
    BOOST_TEST(log.resume_points("a", last + 5).has_value());
    for (std::uint64_t i = 0; i < d::written_log::capacity; ++i) {
        log.wrote("c", i + 1);
        log.wrote("d", i + 1);
    }
    BOOST_TEST(!log.resume_points("a", 1010)); // overwritten
    r = log.resume_points("c", d::written_log::capacity - 10);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->at("a") == last + 5);
    BOOST_TEST(r->at("c") == d::written_log::capacity - 10);
    BOOST_TEST(r->at("d") == d::written_log::capacity - 11);
}

BOOST_AUTO_TEST_CASE(plan_maps_offsets_onto_subscriptions) {
    d::kept_socketio_session k;
    k.pid = "p";
    k.topic_keys = {"kpi:org:acme", "alerts:org:acme"};
    k.log.wrote("kpi:org:acme", 7);
    k.log.wrote("kpi:org:acme:dept:support", 3);
    k.log.wrote("alerts:org:acme", 2);
    auto plan = d::plan_socketio_recovery(k, "E~kpi:org:acme:dept:support~3", "E");
    BOOST_REQUIRE(plan);
    BOOST_REQUIRE(plan->size() == 2u);
    BOOST_TEST((*plan)[0].position.epoch == "E");
    BOOST_TEST((*plan)[0].position.offset == 7u);
    BOOST_TEST((*plan)[0].position.offsets.at("kpi:org:acme:dept:support") == 3u);
    BOOST_TEST((*plan)[1].position.offset == 1u); // alerts 2 came after the offset
    BOOST_TEST(!d::plan_socketio_recovery(k, "OTHER~kpi:org:acme~7", "E")); // a restart
    BOOST_TEST(!d::plan_socketio_recovery(k, "garbage", "E"));
}

BOOST_AUTO_TEST_CASE(store_keeps_within_the_window_and_once) {
    d::socketio_session_store store(std::chrono::seconds(10));
    auto const t0 = std::chrono::steady_clock::now();
    d::kept_socketio_session k;
    k.pid = "p1";
    k.ended_at = t0;
    store.keep(k);
    k.pid = "p2";
    store.keep(k);
    BOOST_TEST(store.take("p1", t0 + std::chrono::seconds(1)).has_value());
    BOOST_TEST(!store.take("p1", t0 + std::chrono::seconds(1)).has_value());  // resumed once
    BOOST_TEST(!store.take("p2", t0 + std::chrono::seconds(11)).has_value()); // expired
    BOOST_TEST(store.size() == 0u);
    d::socketio_session_store off(std::chrono::milliseconds(0));
    off.keep(k);
    BOOST_TEST(off.size() == 0u);
}

BOOST_AUTO_TEST_CASE(a_lost_connection_resumes_with_what_it_missed) {
    fixture fx;
    fx.env.sio_sessions = &fx.kept;
    rtpush::topic const t{"kpi", {"acme", "", ""}};
    auto publish = [&](int n) {
        fx.hub.publish(rtpush::publication{t,
                                           "kpi:update",
                                           "",
                                           rtpush::priority::high,
                                           boost::json::parse("{\"n\":" + std::to_string(n) + "}"),
                                           {}});
    };
    std::string pid, offset;
    {
        sio_connection c(fx);
        c.on_engine_io("40");
        auto const connect = boost::json::parse(c.packets.back().substr(2)).as_object();
        BOOST_REQUIRE(connect.contains("pid"));
        pid = connect.at("pid").as_string().c_str();
        c.on_engine_io("42[\"subscribe\",{\"channels\":[\"kpi\"],\"organization_id\":\"acme\"}]");
        publish(1);
        // Delivered as a shard would: the publication's update frame, from the hub's history.
        d::recover_position before;
        before.epoch = fx.hub.epoch();
        std::vector<d::frame_ptr> update;
        fx.hub.subscribe_frames(t, before, update);
        BOOST_REQUIRE(update.size() == 1u);
        c.push(update[0]);
        auto const ev = boost::json::parse(c.packets.back().substr(2)).as_array();
        BOOST_REQUIRE(ev.size() == 3u);
        offset = ev[2].as_string().c_str();
        c.sio_keep(); // the connection is lost
    }
    BOOST_TEST(fx.kept.size() == 1u);
    publish(2); // while away
    publish(3);
    sio_connection back(fx);
    back.on_engine_io("40{\"pid\":\"" + pid + "\",\"offset\":\"" + offset + "\"}");
    BOOST_REQUIRE(back.packets.size() == 3u);
    BOOST_TEST(back.packets[0] == "40{\"sid\":\"c3\",\"pid\":\"" + pid + "\"}"); // recovered
    BOOST_TEST(back.packets[1].starts_with("42[\"kpi:update\",{\"n\":2}"));
    BOOST_TEST(back.packets[2].starts_with("42[\"kpi:update\",{\"n\":3}"));
    BOOST_TEST(fx.index.entries().count("kpi:org:acme") == 1u);

    // The same pid again: it was resumed once; now a fresh session with no subscription.
    sio_connection again(fx);
    again.on_engine_io("40{\"pid\":\"" + pid + "\",\"offset\":\"" + offset + "\"}");
    BOOST_REQUIRE(again.packets.size() == 1u);
    BOOST_TEST(again.packets[0].find(pid) == std::string::npos);
    BOOST_TEST(again.state.subscription_count() == 0u);
}

BOOST_AUTO_TEST_CASE(history_lost_means_a_fresh_session_and_nothing_subscribed) {
    fixture fx;
    fx.env.sio_sessions = &fx.kept;
    d::kept_socketio_session k;
    k.pid = "feedfeedfeedfeed";
    k.topic_keys = {"kpi:org:acme"};
    k.log.wrote("kpi:org:acme", 5); // the hub published only seq 1: offset ahead
    k.ended_at = std::chrono::steady_clock::now();
    fx.hub.publish(rtpush::publication{rtpush::topic{"kpi", {"acme", "", ""}},
                                       "kpi:update",
                                       "",
                                       rtpush::priority::high,
                                       boost::json::parse("{\"n\":1}"),
                                       {}});
    fx.kept.keep(std::move(k));
    sio_connection c(fx);
    c.on_engine_io("40{\"pid\":\"feedfeedfeedfeed\",\"offset\":\"" + fx.hub.epoch() +
                   "~kpi:org:acme~5\"}");
    BOOST_REQUIRE(c.packets.size() == 1u);
    BOOST_TEST(c.packets[0].starts_with("40{\"sid\":\"c3\",\"pid\":\""));
    BOOST_TEST(c.packets[0].find("feedfeedfeedfeed") == std::string::npos);
    BOOST_TEST(c.state.subscription_count() == 0u);
    BOOST_TEST(fx.index.entries().count("kpi:org:acme") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(feed_format)

BOOST_AUTO_TEST_CASE(publications_in_the_flat_shape_once) {
    rtpush::server_config cfg;
    rtpush::hub hub{cfg.history};
    hub.publish(rtpush::publication{rtpush::topic{"metrics", {}},
                                    "",
                                    "",
                                    rtpush::priority::high,
                                    boost::json::parse(R"({"cpu_usage":12.5})"),
                                    {}});
    std::vector<d::frame_ptr> frames;
    hub.initial_frames(rtpush::topic{"metrics", {}}, frames);
    BOOST_REQUIRE(frames.size() == 1u);
    auto const a = d::feed_twin(frames[0]);
    BOOST_TEST(a.get() == d::feed_twin(frames[0]).get()); // made once, shared
    auto const m = boost::json::parse(d::frame_payload(a->bytes)).as_object();
    BOOST_TEST(m.at("type").as_string() == "metrics");
    BOOST_TEST(m.at("data").at("cpu_usage").as_double() == 12.5);
    BOOST_TEST(m.contains("timestamp"));
    BOOST_TEST(m.size() == 3u);
    // Anything that is not a publication goes out as it is.
    auto const other = d::make_shared_frame(d::make_frame(d::opcode::text, R"({"type":"pong"})"));
    BOOST_TEST(d::feed_twin(other).get() == other.get());
    BOOST_TEST(d::feed_message_of(R"({"type":"subscribed","channel":"metrics"})").empty());
    BOOST_TEST(d::feed_message_of("not json").empty());
}

BOOST_AUTO_TEST_CASE(connected_names_the_channels_and_paths_are_found) {
    rtpush::feed_path f{"/ws/metrics", {"metrics", "alerts"}};
    auto const c = boost::json::parse(d::feed_connected("c7", f)).as_object();
    BOOST_TEST(c.at("type").as_string() == "connected");
    BOOST_TEST(c.at("data").at("clientId").as_string() == "c7");
    BOOST_TEST(c.at("data").at("subscribedChannels").as_array().size() == 2u);
    std::vector<rtpush::feed_path> feeds{f};
    BOOST_TEST(d::find_feed_path(feeds, "/ws/metrics") == &feeds[0]);
    BOOST_TEST(!d::find_feed_path(feeds, "/ws"));
}

BOOST_AUTO_TEST_SUITE_END()
