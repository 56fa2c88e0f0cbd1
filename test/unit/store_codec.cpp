#include <rtpush/detail/store_codec.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(store_codec)

BOOST_AUTO_TEST_CASE(a_publication_survives_its_row) {
    rtpush::publication p;
    p.topic = {"kpi", {"o1", "d2", "q3"}};
    p.event = "kpi:update";
    p.phase = "kpis";
    p.priority = rtpush::priority::urgent;
    p.ack_id = "ab-1";
    p.data = boost::json::parse(R"({"calls":3,"sla":0.5,"names":["a","b"]})");
    boost::system::error_code ec;
    auto const q = d::decode_publication(d::encode_publication(p), ec);
    BOOST_TEST(!ec);
    BOOST_TEST((q.topic == p.topic));
    BOOST_TEST(q.event == p.event);
    BOOST_TEST(q.phase == p.phase);
    BOOST_TEST((q.priority == p.priority));
    BOOST_TEST(q.ack_id == p.ack_id);
    BOOST_TEST(q.data == p.data);
}

BOOST_AUTO_TEST_CASE(a_channel_wide_publication_has_no_scope) {
    rtpush::publication p;
    p.topic.channel = "metrics";
    p.event = "metrics:update";
    p.data = 1;
    auto const row = d::encode_publication(p);
    BOOST_TEST(row.find("\"o\"") == std::string::npos);
    boost::system::error_code ec;
    auto const q = d::decode_publication(row, ec);
    BOOST_TEST(!ec);
    BOOST_TEST(q.topic.key() == "metrics");
    BOOST_TEST((q.priority == rtpush::priority::medium));
}

BOOST_AUTO_TEST_CASE(rows_it_did_not_write_are_corrupt) {
    for (std::string_view row :
         {"", "not json", "[1]", R"({"c":"kpi","e":"x"})", R"({"c":"bad:channel","data":1})",
          R"({"c":"kpi","d":"dept-without-org","data":1})", R"({"c":"kpi","pr":"soon","data":1})",
          R"({"c":5,"data":1})"}) {
        boost::system::error_code ec;
        d::decode_publication(row, ec);
        BOOST_TEST((ec == rtpush::error::store_corrupt), row);
    }
}

BOOST_AUTO_TEST_CASE(window_trims_by_count) {
    rtpush::hub_config limits{.history_size = 3};
    d::history_window w;
    for (std::uint64_t s = 1; s <= 3; ++s)
        w.push(s, 10, 1000);
    BOOST_TEST(w.trim(limits, 1000) == 0u); // within limits: nothing to delete
    w.push(4, 10, 1000);
    w.push(5, 10, 1000);
    BOOST_TEST(w.trim(limits, 1000) == 3u); // rows below seq 3 go
    BOOST_TEST(w.size() == 3u);
    BOOST_TEST(w.bytes() == 30u);
}

BOOST_AUTO_TEST_CASE(window_trims_by_bytes_and_age) {
    rtpush::hub_config limits{.history_size = 100, .history_ttl = 10s, .history_bytes = 250};
    d::history_window w;
    w.push(1, 100, 0);
    w.push(2, 100, 5000);
    w.push(3, 100, 9000);
    BOOST_TEST(w.trim(limits, 9000) == 2u);          // 300 bytes > 250
    BOOST_TEST(w.trim(limits, 15001) == 3u);         // seq 2 is older than 10 s
    BOOST_TEST(w.trim(limits, 19001) == UINT64_MAX); // everything aged out
    BOOST_TEST(w.empty());
    BOOST_TEST(w.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(a_history_item_names_its_topic) {
    rtpush::publication p;
    p.topic = {"kpi", {"o1", "", ""}};
    p.event = "kpi:update";
    p.data = 7;
    auto const o = d::history_item(p, "kpi:org:o1", 42, "e1", "2026-12-06T00:00:00.000Z");
    BOOST_TEST(o.at("topic").as_string() == "kpi:org:o1");
    BOOST_TEST(o.at("scope").at("org").as_string() == "o1");
    BOOST_TEST(o.at("seq").as_uint64() == 42u);
    BOOST_TEST(!o.contains("phase"));
    BOOST_TEST(o.at("data").as_int64() == 7);
}

BOOST_AUTO_TEST_SUITE_END()
