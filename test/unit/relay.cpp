// Unit tests for detail/relay.hpp: what one node tells every node through the engine.
#include <rtpush/detail/relay.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;

BOOST_AUTO_TEST_SUITE(relay)

BOOST_AUTO_TEST_CASE(a_targeted_broadcast_round_trips) {
    rtpush::publication p;
    p.topic = {"system", {"acme", "", ""}};
    p.event = "system:maintenance";
    p.priority = rtpush::priority::urgent;
    p.data = boost::json::parse(R"({"n":1})");
    p.ack_id = "e1-7";
    for (auto const& a : {d::audience{d::audience::kind::everyone, "", {}},
                          d::audience{d::audience::kind::organization, "acme", {}},
                          d::audience{d::audience::kind::clients, "acme", {"c1", "sid-x"}},
                          d::audience{d::audience::kind::clients, "", {"c2"}}}) {
        auto const r = d::decode_relay(d::encode_relay_delivery(a, p, "2026-12-06T00:00:00Z"));
        BOOST_REQUIRE(r);
        BOOST_TEST((r->what == d::relayed::kind::delivery));
        BOOST_TEST((r->to->who == a.who));
        BOOST_TEST(r->to->org == a.org);
        BOOST_TEST(r->to->client_ids == a.client_ids);
        BOOST_TEST(r->pub.topic.key() == "system:org:acme");
        BOOST_TEST(r->pub.event == "system:maintenance");
        BOOST_TEST((r->pub.priority == rtpush::priority::urgent));
        BOOST_TEST(r->pub.data == p.data);
        BOOST_TEST(r->pub.ack_id == "e1-7");
        BOOST_TEST(r->timestamp == "2026-12-06T00:00:00Z");
    }
}

BOOST_AUTO_TEST_CASE(a_notice_round_trips) {
    auto const r = d::decode_relay(d::encode_relay_notice("room:org:a", R"({"type":"join"})"));
    BOOST_REQUIRE(r);
    BOOST_TEST((r->what == d::relayed::kind::notice));
    BOOST_TEST(r->topic_key == "room:org:a");
    BOOST_TEST(r->text == R"({"type":"join"})");
}

BOOST_AUTO_TEST_CASE(presence_queries_and_answers_round_trip) {
    auto const q = d::decode_relay(d::encode_presence_query("n1-3", "n1", "room:org:a"));
    BOOST_REQUIRE(q);
    BOOST_TEST((q->what == d::relayed::kind::presence_query));
    BOOST_TEST(q->id == "n1-3");
    BOOST_TEST(q->from == "n1");
    BOOST_TEST(q->topic_key == "room:org:a");
    boost::json::array members{boost::json::object{{"client_id", "c4"}}};
    auto const a = d::decode_relay(d::encode_presence_answer("n1-3", "n1", "n2", members));
    BOOST_REQUIRE(a);
    BOOST_TEST((a->what == d::relayed::kind::presence_answer));
    BOOST_TEST(a->to_node == "n1");
    BOOST_TEST(a->node == "n2");
    BOOST_TEST(a->members == members);
}

BOOST_AUTO_TEST_CASE(what_it_did_not_write_is_ignored) {
    for (
        auto const* text :
        {"", "not json", "[]", R"({"k":"x"})", R"({"k":"n","t":"a"})", R"({"k":"n","m":"x"})",
         R"({"k":"q","id":"1","from":"n"})", R"({"k":"q","from":"n","key":"k"})",
         R"({"k":"a","id":"1","to":"n","node":"m"})",
         R"({"k":"a","id":"1","to":"n","node":"m","members":{}})",
         R"({"k":"d","to":{"kind":"everyone"},"ts":"t"})",
         R"({"k":"d","to":{"kind":"organization"},"p":"{}","ts":"t"})",
         R"({"k":"d","to":{"kind":"clients","socket_ids":[1]},"p":"{}","ts":"t"})",
         R"({"k":"d","to":{"kind":"nobody"},"p":"{}","ts":"t"})",
         R"({"k":"d","to":{"kind":"everyone"},"p":"{\"c\":\"bad channel!\",\"data\":1}","ts":"t"})"})
        BOOST_TEST(!d::decode_relay(text), text);
}

BOOST_AUTO_TEST_SUITE_END()
