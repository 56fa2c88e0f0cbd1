// The recovery decisions (detail/recovery.hpp) and the `recover` field of a subscribe.
#include <rtpush/detail/recovery.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

namespace json = boost::json;
namespace d = rtpush::detail;
using d::recovery_result;

BOOST_AUTO_TEST_SUITE(recovery)

BOOST_AUTO_TEST_CASE(plan_topic_decisions) {
    std::size_t total = 0;
    // nothing missed: recovered, nothing to replay
    BOOST_TEST((d::plan_topic({10, 1}, 10, total, 100) == recovery_result::recovered));
    BOOST_TEST(total == 0u);
    // an empty history with nothing missed is fine too
    BOOST_TEST((d::plan_topic({10, 0}, 10, total, 100) == recovery_result::recovered));
    // missed 4..10, history from 4: recovered, 7 to replay
    BOOST_TEST((d::plan_topic({10, 4}, 3, total, 100) == recovery_result::recovered));
    BOOST_TEST(total == 7u);
    // history starts one too late: a hole
    total = 0;
    BOOST_TEST((d::plan_topic({10, 5}, 3, total, 100) == recovery_result::history_lost));
    BOOST_TEST((d::plan_topic({10, 0}, 3, total, 100) == recovery_result::history_lost));
    // a client that never saw the topic needs it from seq 1
    BOOST_TEST((d::plan_topic({3, 1}, 0, total, 100) == recovery_result::recovered));
    BOOST_TEST(total == 3u);
    // from the future (another server with the same epoch cannot be trusted)
    BOOST_TEST((d::plan_topic({3, 1}, 4, total, 100) == recovery_result::offset_ahead));
    // the cap is over all topics of the subscription
    total = 0;
    BOOST_TEST((d::plan_topic({60, 1}, 0, total, 100) == recovery_result::recovered));
    BOOST_TEST((d::plan_topic({40, 1}, 0, total, 100) == recovery_result::recovered));
    BOOST_TEST(total == 100u);
    BOOST_TEST((d::plan_topic({1, 1}, 0, total, 100) == recovery_result::too_many));
    BOOST_TEST(total == 100u);
    BOOST_TEST(d::to_string(recovery_result::too_many) == "too_many");
}

BOOST_AUTO_TEST_CASE(position_offset_of) {
    d::recover_position p;
    p.offset = 5;
    p.offsets.emplace("kpi:org:a:dept:d", 9);
    BOOST_TEST(p.offset_of("kpi:org:a", "kpi:org:a") == 5u);
    BOOST_TEST(p.offset_of("kpi:org:a:dept:d", "kpi:org:a") == 9u);
    BOOST_TEST(p.offset_of("kpi:org:a:dept:x", "kpi:org:a") == 0u);
}

BOOST_AUTO_TEST_CASE(tracker_deduplicates_per_topic_and_epoch) {
    d::stream_tracker t;
    using v = d::stream_tracker::verdict;
    BOOST_TEST(!t.position("kpi"));
    BOOST_TEST((t.accept("kpi:org:a", "e1", 1) == v::fresh));
    BOOST_TEST((t.accept("kpi:org:a", "e1", 2) == v::fresh));
    BOOST_TEST((t.accept("kpi:org:a", "e1", 2) == v::duplicate));
    BOOST_TEST((t.accept("kpi:org:a", "e1", 1) == v::duplicate));
    BOOST_TEST((t.accept("kpi:org:b", "e1", 1) == v::fresh));
    BOOST_TEST(t.last("kpi:org:a") == 2u);
    // a new epoch: earlier seqs are fresh again
    BOOST_TEST((t.accept("kpi:org:a", "e2", 1) == v::fresh));
    BOOST_TEST(t.epoch() == "e2");
    BOOST_TEST(t.last("kpi:org:b") == 0u);
    // parsed messages: only initial/update count
    auto const u = json::parse(R"({"type":"update","topic":"kpi:org:a","epoch":"e2","seq":1})");
    BOOST_TEST((t.accept(u.as_object()) == v::duplicate));
    auto const h = json::parse(R"({"type":"heartbeat"})");
    BOOST_TEST((t.accept(h.as_object()) == v::fresh));
}

BOOST_AUTO_TEST_CASE(tracker_initial_phases_and_gaps) {
    d::stream_tracker t;
    using v = d::stream_tracker::verdict;
    // a snapshot lists kpis first even when complete has the lower seq: both are fresh
    BOOST_TEST((t.accept("k", "e", 10, true, "kpis") == v::fresh));
    BOOST_TEST((t.accept("k", "e", 9, true, "complete") == v::fresh));
    BOOST_TEST(t.last("k") == 10u);
    // the same snapshot again (recovered:false in the same epoch): duplicates
    BOOST_TEST((t.accept("k", "e", 10, true, "kpis") == v::duplicate));
    BOOST_TEST((t.accept("k", "e", 9, true, "complete") == v::duplicate));
    // updates continue from the highest seq; one beyond the next is a gap, not recorded
    BOOST_TEST((t.accept("k", "e", 11, false, "kpis") == v::fresh));
    BOOST_TEST((t.accept("k", "e", 13, false, "kpis") == v::gap));
    BOOST_TEST(t.last("k") == 11u);
    BOOST_TEST((t.accept("k", "e", 12, false, "complete") == v::fresh));
    // a newer snapshot after a lost history: only the phase values not yet seen are fresh
    BOOST_TEST((t.accept("k", "e", 11, true, "kpis") == v::duplicate));
    BOOST_TEST((t.accept("k", "e", 20, true, "complete") == v::fresh));
    BOOST_TEST(t.last("k") == 20u);
    // the first update of a topic never seen is not a gap (a replay from seq 1, or a topic
    // created after the subscription)
    BOOST_TEST((t.accept("new", "e", 5) == v::fresh));
}

BOOST_AUTO_TEST_CASE(tracker_position_and_subscribe_message) {
    d::stream_tracker t;
    rtpush::topic org{"kpi", {"a", "", ""}};
    auto const fresh = json::parse(t.subscribe_message(org, "s1")).as_object();
    BOOST_TEST(!fresh.contains("recover"));
    BOOST_TEST(fresh.at("id").as_string() == "s1");
    BOOST_TEST(fresh.at("scope").at("org").as_string() == "a");
    t.accept("kpi:org:a", "e", 4);
    t.accept("kpi:org:a:dept:d", "e", 7);
    t.accept("kpi:org:a1", "e", 3); // a sibling, not covered
    t.accept("alerts:org:a", "e", 2);
    auto p = t.position("kpi:org:a");
    BOOST_REQUIRE(p);
    BOOST_TEST(p->epoch == "e");
    BOOST_TEST(p->offset == 4u);
    BOOST_TEST(p->offsets.size() == 1u);
    BOOST_TEST(p->offsets.at("kpi:org:a:dept:d") == 7u);
    auto const m = json::parse(t.subscribe_message(org, "")).as_object();
    BOOST_TEST(!m.contains("id"));
    auto const& r = m.at("recover").as_object();
    BOOST_TEST(r.at("epoch").as_string() == "e");
    BOOST_TEST(r.at("offset").to_number<int>() == 4);
    BOOST_TEST(r.at("offsets").at("kpi:org:a:dept:d").to_number<int>() == 7);
    // ... and the server parses what the client writes
    boost::system::error_code ec;
    std::string detail;
    auto const cm = rtpush::parse_client_message(t.subscribe_message(org, ""), {}, ec, detail);
    BOOST_TEST(!ec, detail);
    BOOST_REQUIRE(cm.recover);
    BOOST_TEST(cm.recover->offset == 4u);
    BOOST_TEST(cm.recover->offset_of("kpi:org:a:dept:d", "kpi:org:a") == 7u);
}

BOOST_AUTO_TEST_CASE(parse_recover_field) {
    boost::system::error_code ec;
    std::string detail;
    auto const ok = rtpush::parse_client_message(
        R"({"type":"subscribe","channel":"kpi","recover":{"epoch":"e","offset":3}})", {}, ec,
        detail);
    BOOST_TEST(!ec);
    BOOST_REQUIRE(ok.recover);
    BOOST_TEST(ok.recover->epoch == "e");
    BOOST_TEST(ok.recover->offset == 3u);
    auto const none =
        rtpush::parse_client_message(R"({"type":"subscribe","channel":"kpi"})", {}, ec, detail);
    BOOST_TEST(!none.recover);
    for (auto const* bad : {
             R"({"type":"subscribe","channel":"kpi","recover":{"offset":3}})",
             R"({"type":"subscribe","channel":"kpi","recover":{"epoch":"e","offset":-1}})",
             R"({"type":"subscribe","channel":"kpi","recover":{"epoch":"e","offset":"3"}})",
             R"({"type":"subscribe","channel":"kpi","recover":{"epoch":"e","offsets":[1]}})",
             R"({"type":"subscribe","channel":"kpi","recover":{"epoch":"e","offsets":{"k":"x"}}})",
             R"({"type":"subscribe","channel":"kpi","recover":"e"})",
         }) {
        rtpush::parse_client_message(bad, {}, ec, detail);
        BOOST_TEST((ec == rtpush::error::invalid_message), bad);
    }
}

BOOST_AUTO_TEST_SUITE_END()
