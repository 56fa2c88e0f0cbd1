#include <rtpush/protocol.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <limits>
#include <regex>
#include <string>

namespace json = boost::json;
using E = rtpush::error;
using rtpush::client_message_type;

namespace {

struct parsed {
    rtpush::client_message m;
    boost::system::error_code ec;
    std::string detail;
};

parsed parse(std::string_view text, rtpush::parse_limits limits = {}) {
    parsed p;
    p.m = rtpush::parse_client_message(text, limits, p.ec, p.detail);
    return p;
}

json::object to_object(std::string const& text) {
    auto v = json::parse(text);
    BOOST_REQUIRE(v.is_object());
    return v.as_object();
}

bool is_iso8601(std::string_view s) {
    static std::regex const re(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
    return std::regex_match(s.begin(), s.end(), re);
}

} // namespace

BOOST_AUTO_TEST_SUITE(protocol)

// ---- parsing: each message type ----

BOOST_AUTO_TEST_CASE(subscribe_with_scope) {
    auto const p = parse(
        R"({"type":"subscribe","channel":"kpi","scope":{"org":"o1","dept":"d2","queue":"q3"},"id":"s1"})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST((p.m.type == client_message_type::subscribe));
    BOOST_TEST(p.m.topic.channel == "kpi");
    BOOST_TEST(p.m.topic.scope.org == "o1");
    BOOST_TEST(p.m.topic.scope.dept == "d2");
    BOOST_TEST(p.m.topic.scope.queue == "q3");
    BOOST_TEST(p.m.topic.key() == "kpi:org:o1:dept:d2:queue:q3");
    BOOST_TEST((p.m.id == json::value("s1")));
}

BOOST_AUTO_TEST_CASE(subscribe_without_scope_or_null_scope) {
    auto const a = parse(R"({"type":"subscribe","channel":"alerts"})");
    BOOST_TEST(!a.ec, a.detail);
    BOOST_TEST(a.m.topic.key() == "alerts");
    BOOST_TEST(a.m.id.is_null());

    auto const b = parse(R"({"type":"subscribe","channel":"alerts","scope":null})");
    BOOST_TEST(!b.ec, b.detail);
    BOOST_TEST(b.m.topic.scope.depth() == 0);

    auto const c =
        parse(R"({"type":"subscribe","channel":"alerts","scope":{"org":"o","dept":null}})");
    BOOST_TEST(!c.ec, c.detail);
    BOOST_TEST(c.m.topic.key() == "alerts:org:o");
}

BOOST_AUTO_TEST_CASE(subscribe_with_seed_001_field_names) {
    auto const p = parse(
        R"({"type":"subscribe","channel":"kpi","scope":{"organization_id":"acme","department_id":"sales","queue_name":"vip"}})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST(p.m.topic.scope.org == "acme");
    BOOST_TEST(p.m.topic.scope.dept == "sales");
    BOOST_TEST(p.m.topic.scope.queue == "vip");
}

BOOST_AUTO_TEST_CASE(unsubscribe) {
    auto const p = parse(R"({"type":"unsubscribe","channel":"kpi","scope":{"org":"o1"},"id":3})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST((p.m.type == client_message_type::unsubscribe));
    BOOST_TEST(p.m.topic.key() == "kpi:org:o1");
    BOOST_TEST((p.m.id == json::value(3)));
}

BOOST_AUTO_TEST_CASE(get) {
    auto const p = parse(R"({"type":"get","channel":"kpi","scope":{"org":"o1","dept":"d"}})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST((p.m.type == client_message_type::get));
    BOOST_TEST(p.m.topic.key() == "kpi:org:o1:dept:d");
}

BOOST_AUTO_TEST_CASE(publish_with_phase_and_data) {
    auto const p = parse(
        R"({"type":"publish","channel":"kpi","scope":{"org":"o1"},"event":"kpi:tick","phase":"kpis","data":{"calls":12,"list":[1,2]},"id":"p"})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST((p.m.type == client_message_type::publish));
    BOOST_TEST(p.m.topic.key() == "kpi:org:o1");
    BOOST_TEST(p.m.event == "kpi:tick");
    BOOST_TEST(p.m.phase == "kpis");
    BOOST_TEST((p.m.data == json::parse(R"({"calls":12,"list":[1,2]})")));

    auto const c = parse(R"({"type":"publish","channel":"kpi","phase":"complete","data":[1]})");
    BOOST_TEST(!c.ec, c.detail);
    BOOST_TEST(c.m.phase == "complete");
    BOOST_TEST(c.m.event.empty()); // the default is applied when serialising / publishing

    auto const n = parse(R"({"type":"publish","channel":"kpi","data":null})");
    BOOST_TEST(!n.ec, n.detail);
    BOOST_TEST(n.m.phase.empty());
    BOOST_TEST(n.m.data.is_null());
}

BOOST_AUTO_TEST_CASE(bare_refresh_without_channel) {
    auto const p = parse(R"({"type":"refresh"})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST((p.m.type == client_message_type::refresh));
    BOOST_TEST(p.m.topic.channel.empty());

    auto const q = parse(R"({"type":"refresh","channel":"kpi","scope":{"org":"x"}})");
    BOOST_TEST(!q.ec, q.detail);
    BOOST_TEST(q.m.topic.key() == "kpi:org:x");

    // a channel that is present must be valid
    auto const r = parse(R"({"type":"refresh","channel":"bad:channel"})");
    BOOST_TEST((r.ec == E::invalid_message));
}

BOOST_AUTO_TEST_CASE(ping_with_numeric_and_string_id) {
    auto const a = parse(R"({"type":"ping","id":42})");
    BOOST_TEST(!a.ec, a.detail);
    BOOST_TEST((a.m.type == client_message_type::ping));
    BOOST_TEST(a.m.id.is_number());
    BOOST_TEST(a.m.id.to_number<int>() == 42);

    auto const b = parse(R"({"type":"ping","id":"abc"})");
    BOOST_TEST(!b.ec, b.detail);
    BOOST_TEST((b.m.id == json::value("abc")));

    auto const c = parse(R"({"type":"ping","id":1.5})");
    BOOST_TEST(!c.ec);
    BOOST_TEST(c.m.id.is_double());

    // ids that are neither string nor number are ignored
    auto const d = parse(R"({"type":"ping","id":{"x":1}})");
    BOOST_TEST(!d.ec);
    BOOST_TEST(d.m.id.is_null());
    auto const e = parse(R"({"type":"ping","id":true})");
    BOOST_TEST(e.m.id.is_null());

    // a ping needs no channel
    auto const f = parse(R"({"type":"ping"})");
    BOOST_TEST(!f.ec);
    BOOST_TEST(f.m.topic.channel.empty());
}

BOOST_AUTO_TEST_CASE(authenticate) {
    auto const a = parse(R"({"type":"authenticate","data":{"token":"t0k"},"id":1})");
    BOOST_TEST(!a.ec, a.detail);
    BOOST_TEST((a.m.type == client_message_type::authenticate));
    BOOST_TEST((a.m.data == json::parse(R"({"token":"t0k"})")));

    // credentials at the top level
    auto const b = parse(R"({"type":"authenticate","token":"xyz"})");
    BOOST_TEST(!b.ec, b.detail);
    BOOST_REQUIRE(b.m.data.is_object());
    BOOST_TEST((b.m.data.as_object().at("token") == json::value("xyz")));
}

BOOST_AUTO_TEST_CASE(ack_hello_and_requires_ack) {
    auto const a = parse(R"({"type":"ack","id":"9f2c-4"})");
    BOOST_TEST(!a.ec, a.detail);
    BOOST_TEST((a.m.type == client_message_type::ack));
    BOOST_TEST((a.m.id == json::value("9f2c-4")));
    auto const no_id = parse(R"({"type":"ack"})");
    BOOST_TEST((no_id.ec == rtpush::error::invalid_message));
    BOOST_TEST(no_id.detail.find("ackId") != std::string::npos);

    auto const h = parse(R"({"type":"hello","clientId":"dash-1@acme"})");
    BOOST_TEST(!h.ec, h.detail);
    BOOST_TEST((h.m.type == client_message_type::hello));
    BOOST_TEST(h.m.client_id == "dash-1@acme");
    BOOST_TEST((parse(R"({"type":"hello"})").ec == rtpush::error::invalid_message));
    BOOST_TEST(
        (parse(R"({"type":"hello","clientId":"a b"})").ec == rtpush::error::invalid_message));
    BOOST_TEST((parse(R"({"type":"hello","clientId":7})").ec == rtpush::error::invalid_message));

    auto const au = parse(R"({"type":"authenticate","data":{"user_id":"u","clientId":"c1"}})");
    BOOST_TEST(!au.ec, au.detail);
    BOOST_TEST(au.m.client_id == "c1");
    auto const au2 = parse(R"({"type":"authenticate","token":"t","clientId":"c2"})");
    BOOST_TEST(au2.m.client_id == "c2");

    auto const p = parse(R"({"type":"publish","channel":"kpi","data":{},"requires_ack":true})");
    BOOST_TEST(!p.ec, p.detail);
    BOOST_TEST(p.m.requires_ack);
    BOOST_TEST(!parse(R"({"type":"publish","channel":"kpi","data":{}})").m.requires_ack);
    BOOST_TEST((parse(R"({"type":"publish","channel":"kpi","data":{},"requires_ack":"yes"})").ec ==
                rtpush::error::invalid_message));
}

BOOST_AUTO_TEST_CASE(ack_id_only_on_updates) {
    rtpush::publication p;
    p.topic.channel = "alerts";
    p.data = json::object();
    p.ack_id = "e-1";
    auto u = json::parse(rtpush::message::publication("update", p, 3, "ep", "ts"));
    BOOST_TEST((u.at("ackId") == json::value("e-1")));
    BOOST_TEST(!u.as_object().contains("redelivered"));
    auto r = json::parse(rtpush::message::publication("update", p, 3, "ep", "ts", true));
    BOOST_TEST((r.at("redelivered") == json::value(true)));
    auto i = json::parse(rtpush::message::publication("initial", p, 3, "ep", "ts"));
    BOOST_TEST(!i.as_object().contains("ackId"));
}

// ---- parsing: errors ----

BOOST_AUTO_TEST_CASE(malformed_json) {
    for (char const* text : {"{", "{\"type\":\"ping\",}", "", "nul", "{\"type\":'ping'}"}) {
        auto const p = parse(text);
        BOOST_TEST((p.ec == E::invalid_message), "input: " << text);
        BOOST_TEST(p.detail.find("malformed JSON") == 0, p.detail);
    }
}

BOOST_AUTO_TEST_CASE(non_object) {
    for (char const* text : {"[]", "[{\"type\":\"ping\"}]", "42", "\"ping\"", "null"}) {
        auto const p = parse(text);
        BOOST_TEST((p.ec == E::invalid_message), "input: " << text);
        BOOST_TEST(!p.detail.empty());
    }
}

BOOST_AUTO_TEST_CASE(missing_type) {
    auto const p = parse(R"({"channel":"kpi","id":"m1"})");
    BOOST_TEST((p.ec == E::invalid_message));
    BOOST_TEST(p.detail.find("type") != std::string::npos, p.detail);
    BOOST_TEST((p.m.id == json::value("m1")));

    auto const q = parse(R"({"type":5,"id":9})");
    BOOST_TEST((q.ec == E::invalid_message));
    BOOST_TEST((q.m.id == json::value(9)));
}

BOOST_AUTO_TEST_CASE(unknown_type_echoes_id) {
    auto const p = parse(R"({"type":"dance","id":"corr-7"})");
    BOOST_TEST((p.ec == E::invalid_message));
    BOOST_TEST(p.detail.find("dance") != std::string::npos, p.detail);
    BOOST_TEST((p.m.id == json::value("corr-7")));

    auto const q = parse(R"({"id":77,"type":"SUBSCRIBE","channel":"kpi"})");
    BOOST_TEST((q.ec == E::invalid_message));
    BOOST_TEST((q.m.id == json::value(77)));
}

BOOST_AUTO_TEST_CASE(missing_or_bad_channel) {
    for (auto type : {"subscribe", "unsubscribe", "get", "publish"}) {
        auto const p = parse(std::string(R"({"type":")") + type + R"(","id":1,"data":1})");
        BOOST_TEST((p.ec == E::invalid_message), type);
        BOOST_TEST(p.detail.find("channel") != std::string::npos, p.detail);
        BOOST_TEST((p.m.id == json::value(1)));
    }
    auto const n = parse(R"({"type":"subscribe","channel":7})");
    BOOST_TEST((n.ec == E::invalid_message));
    auto const e = parse(R"({"type":"subscribe","channel":""})");
    BOOST_TEST((e.ec == E::invalid_message));
    auto const c = parse(R"({"type":"subscribe","channel":"kpi:org:a"})");
    BOOST_TEST((c.ec == E::invalid_message));
}

BOOST_AUTO_TEST_CASE(invalid_scope) {
    char const* const bad[] = {
        R"({"type":"subscribe","channel":"kpi","scope":"o1"})",
        R"({"type":"subscribe","channel":"kpi","scope":[]})",
        R"({"type":"subscribe","channel":"kpi","scope":{"dept":"d"}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"org":"o","queue":"q"}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"org":"a:b"}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"org":"a b"}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"org":1}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"organization_id":true}})",
        R"({"type":"subscribe","channel":"kpi","scope":{"org":""}, "x":1, "scope2":{}})",
    };
    for (std::size_t i = 0; i + 1 < std::size(bad); ++i) {
        auto const p = parse(bad[i]);
        BOOST_TEST((p.ec == E::invalid_message), bad[i]);
        BOOST_TEST(!p.detail.empty());
    }
    // an empty org is "not set", which is valid (whole channel)
    auto const last = parse(bad[std::size(bad) - 1]);
    BOOST_TEST(!last.ec, last.detail);
    BOOST_TEST(last.m.topic.key() == "kpi");

    // 129-character org
    auto const big = parse(R"({"type":"subscribe","channel":"kpi","scope":{"org":")" +
                           std::string(129, 'o') + R"("}})");
    BOOST_TEST((big.ec == E::invalid_message));
}

BOOST_AUTO_TEST_CASE(publish_without_data) {
    auto const p = parse(R"({"type":"publish","channel":"kpi","id":"x"})");
    BOOST_TEST((p.ec == E::invalid_message));
    BOOST_TEST(p.detail.find("data") != std::string::npos, p.detail);
    BOOST_TEST((p.m.id == json::value("x")));
}

BOOST_AUTO_TEST_CASE(publish_with_bad_phase_or_event) {
    for (char const* text : {R"({"type":"publish","channel":"kpi","phase":"done","data":1})",
                             R"({"type":"publish","channel":"kpi","phase":"KPIS","data":1})",
                             R"({"type":"publish","channel":"kpi","phase":3,"data":1})",
                             R"({"type":"publish","channel":"kpi","event":[],"data":1})"}) {
        auto const p = parse(text);
        BOOST_TEST((p.ec == E::invalid_message), text);
        BOOST_TEST(!p.detail.empty());
    }
}

BOOST_AUTO_TEST_CASE(too_large) {
    rtpush::parse_limits limits;
    limits.max_size = 32;
    std::string const ok = R"({"type":"ping","id":"12345678"})"; // 31 bytes
    BOOST_REQUIRE(ok.size() <= 32);
    BOOST_TEST(!parse(ok, limits).ec);

    std::string const big = R"({"type":"ping","id":"1234567890123"})";
    BOOST_REQUIRE(big.size() > 32);
    auto const p = parse(big, limits);
    BOOST_TEST((p.ec == E::message_too_large));
    BOOST_TEST(p.detail.find("32") != std::string::npos, p.detail);

    // the size check happens before parsing: even malformed oversize input is "too large"
    auto const q = parse(std::string(33, '{'), limits);
    BOOST_TEST((q.ec == E::message_too_large));

    // the default limit is 1 MB
    std::string huge = R"({"type":"ping","pad":")" + std::string(1024 * 1024, 'x') + R"("})";
    BOOST_TEST((parse(huge).ec == E::message_too_large));
}

BOOST_AUTO_TEST_CASE(too_deep) {
    auto nested = [](int depth) {
        std::string s = R"({"type":"ping","d":)";
        for (int i = 0; i < depth; ++i)
            s += '[';
        for (int i = 0; i < depth; ++i)
            s += ']';
        return s + "}";
    };
    // default max_depth is 32: the outer object plus 31 arrays fits, far deeper does not
    BOOST_TEST(!parse(nested(20)).ec);
    auto const deep = parse(nested(100));
    BOOST_TEST((deep.ec == E::invalid_message));
    BOOST_TEST(deep.detail.find("malformed JSON") == 0, deep.detail);

    rtpush::parse_limits limits;
    limits.max_depth = 4;
    BOOST_TEST(!parse(nested(2), limits).ec);
    BOOST_TEST((parse(nested(10), limits).ec == E::invalid_message));
}

// ---- serialisation ----

BOOST_AUTO_TEST_CASE(iso8601_format) {
    using namespace std::chrono;
    BOOST_TEST(rtpush::iso8601(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
    // The calendar part is cached per second: the next second, and back, format anew.
    auto const t = system_clock::time_point{} + std::chrono::milliseconds(1'764'000'123'456);
    BOOST_TEST(rtpush::iso8601(t) == "2025-11-24T16:02:03.456Z");
    BOOST_TEST(rtpush::iso8601(t + std::chrono::milliseconds(7)) == "2025-11-24T16:02:03.463Z");
    BOOST_TEST(rtpush::iso8601(t + std::chrono::milliseconds(600)) == "2025-11-24T16:02:04.056Z");
    BOOST_TEST(rtpush::iso8601(t) == "2025-11-24T16:02:03.456Z");
    BOOST_TEST(rtpush::iso8601(system_clock::time_point{} - std::chrono::milliseconds(1)) ==
               "1969-12-31T23:59:59.999Z");
    auto const tp =
        sys_days{year{2026} / 11 / 22} + hours{1} + minutes{2} + seconds{3} + milliseconds{456};
    BOOST_TEST(rtpush::iso8601(time_point_cast<system_clock::duration>(tp)) ==
               "2026-11-22T01:02:03.456Z");
    auto const tp2 =
        sys_days{year{2024} / 2 / 29} + hours{23} + minutes{59} + seconds{59} + milliseconds{7};
    BOOST_TEST(rtpush::iso8601(time_point_cast<system_clock::duration>(tp2)) ==
               "2024-02-29T23:59:59.007Z");
    BOOST_TEST(is_iso8601(rtpush::iso8601_now()), rtpush::iso8601_now());
    BOOST_TEST(!is_iso8601("2026-11-22T01:02:03Z"));
}

BOOST_AUTO_TEST_CASE(error_message) {
    auto const o = to_object(
        rtpush::message::error(E::rate_limit_exceeded, "slow down", json::value("req-1")));
    BOOST_TEST(o.at("type").as_string() == "error");
    BOOST_TEST(o.at("code").as_string() == "RATE_LIMIT_EXCEEDED");
    BOOST_TEST(o.at("message").as_string() == "slow down");
    BOOST_TEST(o.at("id").as_string() == "req-1");
    BOOST_TEST(is_iso8601(o.at("timestamp").as_string()));

    auto const n = to_object(rtpush::message::error(E::invalid_message, "bad", json::value(12)));
    BOOST_TEST(n.at("code").as_string() == "INVALID_MESSAGE");
    BOOST_TEST(n.at("id").to_number<int>() == 12);

    auto const none = to_object(rtpush::message::error(E::internal_error, "x", json::value()));
    BOOST_TEST(!none.contains("id"));
    BOOST_TEST(none.at("code").as_string() == "INTERNAL_ERROR");

    // a message with quotes stays valid JSON
    auto const q = to_object(rtpush::message::error(E::auth_failed, "say \"hi\"\n", {}));
    BOOST_TEST(q.at("message").as_string() == "say \"hi\"\n");
}

BOOST_AUTO_TEST_CASE(publication_message) {
    rtpush::publication p;
    p.topic.channel = "kpi";
    p.topic.scope.org = "o1";
    p.topic.scope.dept = "d2";
    p.phase = "kpis";
    p.priority = rtpush::priority::high;
    p.data = json::parse(R"({"calls":5,"names":["a","b"]})");

    auto const o = to_object(
        rtpush::message::publication("update", p, 42, "ep0ch", "2026-01-02T03:04:05.678Z"));
    BOOST_TEST(o.at("type").as_string() == "update");
    BOOST_TEST(o.at("event").as_string() == "kpi:update");
    BOOST_TEST(o.at("channel").as_string() == "kpi");
    BOOST_TEST(o.at("topic").as_string() == "kpi:org:o1:dept:d2");
    BOOST_TEST((o.at("scope") == json::parse(R"({"org":"o1","dept":"d2"})")));
    BOOST_TEST(o.at("seq").to_number<std::uint64_t>() == 42u);
    BOOST_TEST(o.at("epoch").as_string() == "ep0ch");
    BOOST_TEST(o.at("phase").as_string() == "kpis");
    BOOST_TEST(o.at("priority").as_string() == "high");
    BOOST_TEST((o.at("data") == p.data));
    BOOST_TEST(o.at("timestamp").as_string() == "2026-01-02T03:04:05.678Z");

    // explicit event kept, empty phase omitted, whole-channel scope is an empty object
    rtpush::publication q;
    q.topic.channel = "alerts";
    q.event = "alerts:new";
    q.data = 1;
    auto const r = to_object(rtpush::message::publication("initial", q, 1, "e", "t"));
    BOOST_TEST(r.at("type").as_string() == "initial");
    BOOST_TEST(r.at("event").as_string() == "alerts:new");
    BOOST_TEST(!r.contains("phase"));
    BOOST_TEST(r.at("priority").as_string() == "medium");
    BOOST_TEST(r.at("scope").as_object().empty());
    BOOST_TEST(r.at("topic").as_string() == "alerts");
}

BOOST_AUTO_TEST_CASE(other_messages) {
    rtpush::topic t;
    t.channel = "kpi";
    t.scope.org = "o";

    auto const s = to_object(rtpush::message::subscribed(t, json::value("a")));
    BOOST_TEST(s.at("type").as_string() == "subscribed");
    BOOST_TEST(s.at("topic").as_string() == "kpi:org:o");
    BOOST_TEST((s.at("scope") == json::parse(R"({"org":"o"})")));
    BOOST_TEST(s.at("id").as_string() == "a");

    auto const u = to_object(rtpush::message::unsubscribed(t, {}));
    BOOST_TEST(u.at("type").as_string() == "unsubscribed");
    BOOST_TEST(!u.contains("id"));

    auto const pg = to_object(rtpush::message::pong(json::value(5)));
    BOOST_TEST(pg.at("type").as_string() == "pong");
    BOOST_TEST(pg.at("id").to_number<int>() == 5);
    BOOST_TEST(is_iso8601(pg.at("timestamp").as_string()));

    auto const pub = to_object(rtpush::message::published(t, 9, json::value("p")));
    BOOST_TEST(pub.at("type").as_string() == "published");
    BOOST_TEST(pub.at("seq").to_number<int>() == 9);

    auto const c =
        to_object(rtpush::message::connected("c-1", "rtd/0.1", std::chrono::milliseconds(30000)));
    BOOST_TEST(c.at("clientId").as_string() == "c-1");
    BOOST_TEST(c.at("heartbeatInterval").to_number<int>() == 30000);
    BOOST_TEST(c.at("protocol").to_number<int>() == 1);

    auto const rl = to_object(rtpush::message::rate_limit(1.5, json::value(3)));
    BOOST_TEST(rl.at("type").as_string() == "rate_limit");
    BOOST_TEST(rl.at("retryAfter").to_number<double>() == 1.5);

    auto const a = to_object(rtpush::message::authenticated("u1", "org1", {}));
    BOOST_TEST(a.at("userId").as_string() == "u1");
    BOOST_TEST(a.at("organizationId").as_string() == "org1");

    auto const hb = to_object(rtpush::message::heartbeat(17));
    BOOST_TEST(hb.at("clients").to_number<int>() == 17);
}

BOOST_AUTO_TEST_CASE(priorities) {
    using rtpush::priority;
    for (auto pr : {priority::low, priority::medium, priority::high, priority::urgent}) {
        priority out = pr == priority::low ? priority::urgent : priority::low;
        BOOST_TEST(rtpush::parse_priority(rtpush::to_string(pr), out));
        BOOST_TEST((out == pr));
    }
    priority out = priority::high;
    BOOST_TEST(!rtpush::parse_priority("HIGH", out));
    BOOST_TEST(!rtpush::parse_priority("", out));
    BOOST_TEST((out == priority::high)); // untouched on failure
}

// Found by fuzz_protocol: Boost.JSON reads 1e400 as infinity and writes `Infinity` (not JSON).
BOOST_AUTO_TEST_CASE(numbers_out_of_range_are_refused) {
    auto p = parse(R"({"type":"publish","channel":"kpi","data":{"a":[1,{"b":1e400}]}})");
    BOOST_TEST((p.ec == E::invalid_message));
    BOOST_TEST(p.detail == "a number is out of range (JSON has no Infinity)");
    p = parse(R"({"type":"ping","id":-1e999})");
    BOOST_TEST((p.ec == E::invalid_message));
    BOOST_TEST(p.m.id.is_null()); // not echoed
    p = parse(R"({"type":"publish","channel":"kpi","data":[1e308,-1e308,0.0]})");
    BOOST_TEST(!p.ec);
    json::value v = json::array{
        1, 2.5, json::object{{"x", json::array{std::numeric_limits<double>::infinity()}}}};
    BOOST_TEST(!rtpush::finite_numbers(v));
    v.as_array()[2].as_object()["x"].as_array()[0] = 3.0;
    BOOST_TEST(rtpush::finite_numbers(v));
}

BOOST_AUTO_TEST_SUITE_END()
