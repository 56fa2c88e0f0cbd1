#include <rtpush/detail/history_query.hpp>
#include <rtpush/hub.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;

namespace {

rtpush::publication pub(rtpush::topic t, int v) {
    rtpush::publication p;
    p.topic = std::move(t);
    p.data = v;
    return p;
}

} // namespace

BOOST_AUTO_TEST_SUITE(history_query)

BOOST_AUTO_TEST_CASE(parses_every_parameter) {
    d::query_map const q{{"channel", "kpi"}, {"organization_id", "o1"}, {"dept", "d1"},
                         {"since", "1000"},  {"until", "2000"},         {"limit", "20"},
                         {"cursor", "77"},   {"order", "oldest"}};
    rtpush::history_query h;
    BOOST_TEST(!d::parse_history_query(q, h));
    BOOST_TEST(h.topic.key() == "kpi:org:o1:dept:d1"); // the long name, as every route reads it
    BOOST_TEST(*h.since_ms == 1000);
    BOOST_TEST(*h.until_ms == 2000);
    BOOST_TEST(h.limit == 20u);
    BOOST_TEST(*h.cursor == 77);
    BOOST_TEST(h.oldest_first);
}

BOOST_AUTO_TEST_CASE(defaults) {
    rtpush::history_query h;
    BOOST_TEST(!d::parse_history_query({{"channel", "kpi"}}, h));
    BOOST_TEST(h.limit == 100u);
    BOOST_TEST(!h.cursor);
    BOOST_TEST(!h.since_ms);
    BOOST_TEST(!h.oldest_first);
}

BOOST_AUTO_TEST_CASE(names_the_bad_parameter) {
    std::pair<d::query_map, std::string> const cases[] = {
        {{}, "channel"},
        {{{"channel", "a:b"}}, "channel"},
        {{{"channel", "kpi"}, {"dept", "d1"}}, "channel"}, // a dept needs an org
        {{{"channel", "kpi"}, {"since", "yesterday"}}, "since"},
        {{{"channel", "kpi"}, {"until", "-5"}}, "until"},
        {{{"channel", "kpi"}, {"limit", "0"}}, "limit"},
        {{{"channel", "kpi"}, {"limit", "1001"}}, "limit"},
        {{{"channel", "kpi"}, {"cursor", "12x"}}, "cursor"},
        {{{"channel", "kpi"}, {"order", "random"}}, "order"},
    };
    for (auto const& [q, field] : cases) {
        rtpush::history_query h;
        auto const e = d::parse_history_query(q, h);
        BOOST_TEST_REQUIRE(e.has_value(), field);
        BOOST_TEST(e->field == field);
    }
}

BOOST_AUTO_TEST_CASE(a_websocket_message_follows_the_same_rules) {
    rtpush::history_query h;
    auto const msg = boost::json::parse(R"({"since":1000,"until":"2000","limit":20,"cursor":77,
                                            "order":"oldest","other":"ignored"})")
                         .as_object();
    BOOST_TEST(!d::parse_history_message({"kpi", {"o1", "d1", ""}}, msg, h));
    BOOST_TEST(h.topic.key() == "kpi:org:o1:dept:d1");
    BOOST_TEST(*h.since_ms == 1000);
    BOOST_TEST(*h.until_ms == 2000);
    BOOST_TEST(h.limit == 20u);
    BOOST_TEST(*h.cursor == 77);
    BOOST_TEST(h.oldest_first);
    std::pair<const char*, std::string> const cases[] = {
        {R"({"limit":0})", "limit"},      {R"({"limit":1.5})", "limit"},
        {R"({"since":-1})", "since"},     {R"({"cursor":[1]})", "cursor"},
        {R"({"order":"up"})", "order"},   {R"({"order":1})", "order"},
        {R"({"until":"soon"})", "until"},
    };
    for (auto const& [text, field] : cases) {
        rtpush::history_query q;
        auto const e =
            d::parse_history_message({"kpi", {}}, boost::json::parse(text).as_object(), q);
        BOOST_TEST_REQUIRE(e.has_value(), text);
        BOOST_TEST(e->field == field);
    }
}

BOOST_AUTO_TEST_CASE(memory_history_pages_newest_first_across_topics) {
    rtpush::hub h;
    rtpush::topic const a{"kpi", {"o1", "", ""}}, b{"kpi", {"o1", "d1", ""}},
        other{"kpi", {"o2", "", ""}};
    for (int i = 1; i <= 5; ++i) {
        h.publish(pub(i % 2 ? a : b, i));
        h.publish(pub(other, 100 + i));
    }
    rtpush::history_query q;
    q.topic = a;
    q.limit = 3;
    auto p1 = h.history(q);
    BOOST_TEST_REQUIRE(p1.items.size() == 3u);
    BOOST_TEST(p1.items[0].at("data").as_int64() == 5);
    BOOST_TEST(p1.items[1].at("data").as_int64() == 4);
    BOOST_TEST(p1.items[1].at("topic").as_string() == "kpi:org:o1:dept:d1");
    BOOST_TEST(p1.items[1].at("scope").at("dept").as_string() == "d1");
    BOOST_TEST(p1.items[0].at("epoch").as_string() == h.epoch());
    BOOST_TEST_REQUIRE(p1.next_cursor.has_value());
    q.cursor = p1.next_cursor;
    auto p2 = h.history(q);
    BOOST_TEST_REQUIRE(p2.items.size() == 2u);
    BOOST_TEST(p2.items[0].at("data").as_int64() == 2);
    BOOST_TEST(p2.items[1].at("data").as_int64() == 1);
    BOOST_TEST(!p2.next_cursor);

    q = {};
    q.topic = a;
    q.oldest_first = true;
    q.limit = 2;
    auto o1 = h.history(q);
    BOOST_TEST_REQUIRE(o1.items.size() == 2u);
    BOOST_TEST(o1.items[0].at("data").as_int64() == 1);
    BOOST_TEST(o1.items[0].at("seq").to_number<std::uint64_t>() == 1u);
    BOOST_TEST(o1.items[1].at("data").as_int64() == 2);
}

BOOST_AUTO_TEST_CASE(memory_history_within_a_time_range) {
    rtpush::hub h;
    rtpush::topic const t{"kpi", {}};
    h.publish(pub(t, 1));
    rtpush::history_query q;
    q.topic = t;
    auto const now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    q.since_ms = now + 60000; // a minute ahead: nothing yet
    BOOST_TEST(h.history(q).items.empty());
    q.since_ms = now - 60000;
    q.until_ms = now + 60000;
    BOOST_TEST(h.history(q).items.size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
