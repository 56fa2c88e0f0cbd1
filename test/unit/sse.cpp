// Server-Sent Events pieces free of I/O (detail/sse.hpp): frame payloads, event ids, and the
// Last-Event-ID parsing that turns an id back into recovery positions.
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/sse.hpp>

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

namespace d = rtpush::detail;
using rtpush::scope;
using rtpush::topic;

BOOST_AUTO_TEST_SUITE(sse)

BOOST_AUTO_TEST_CASE(frame_text_strips_the_header) {
    for (std::size_t n : {0u, 5u, 125u, 126u, 300u, 65535u, 65536u, 70000u}) {
        std::string const payload(n, 'x');
        auto f = d::make_shared_frame(d::make_frame(d::opcode::text, payload));
        BOOST_TEST(d::frame_text(*f) == payload);
    }
    // pings, pongs and close frames carry nothing for an SSE client
    auto ping = d::make_shared_frame(d::make_frame(d::opcode::ping, "x"));
    BOOST_TEST(d::frame_text(*ping).empty());
    d::outbound_frame empty;
    BOOST_TEST(d::frame_text(empty).empty());
}

BOOST_AUTO_TEST_CASE(ids_name_every_topic_relative_to_the_stream) {
    d::sse_ids ids(scope{"acme", "", ""}, "e1");
    BOOST_TEST(ids.id() == "e1");
    ids.note("kpi:org:acme", 4);
    BOOST_TEST(ids.id() == "e1,kpi=4");
    ids.note("kpi:org:acme:dept:support:queue:email", 7);
    ids.note("backlog:org:acme:dept:sales", 2);
    ids.note("kpi:org:acme", 5);
    BOOST_TEST(ids.id() == "e1,backlog/sales=2,kpi=5,kpi/support/email=7");
    // a channel-wide stream names the org too
    BOOST_TEST(d::sse_ids::relative_to(scope{}, topic{"kpi", {"acme", "s", ""}}) == "kpi/acme/s");
    BOOST_TEST(d::sse_ids::relative_to(scope{}, topic{"metrics", {}}) == "metrics");
}

BOOST_AUTO_TEST_CASE(last_event_id_round_trips_to_positions) {
    scope const sc{"acme", "", ""};
    std::vector<topic> const subs{{"kpi", sc}, {"backlog", sc}};
    d::sse_ids ids(sc, "e1");
    ids.note("kpi:org:acme", 5);
    ids.note("kpi:org:acme:dept:support:queue:email", 7);
    ids.note("backlog:org:acme:dept:sales", 2);
    std::map<std::string, d::recover_position> out;
    std::string why;
    BOOST_TEST_REQUIRE(d::sse_ids::parse(ids.id(), sc, subs, "e2", out, why));
    BOOST_TEST(out.size() == 2u);
    auto const& k = out.at("kpi:org:acme");
    BOOST_TEST(k.epoch == "e1"); // the id's epoch, not the server's: a restart is noticed
    BOOST_TEST(k.offset == 5u);
    BOOST_TEST(k.offsets.size() == 1u);
    BOOST_TEST(k.offsets.at("kpi:org:acme:dept:support:queue:email") == 7u);
    auto const& b = out.at("backlog:org:acme");
    BOOST_TEST(b.offset == 0u);
    BOOST_TEST(b.offsets.at("backlog:org:acme:dept:sales") == 2u);
    // the epoch alone: every topic from the start of that epoch
    BOOST_TEST_REQUIRE(d::sse_ids::parse("e1", sc, subs, "e2", out, why));
    BOOST_TEST(out.at("kpi:org:acme").epoch == "e1");
    BOOST_TEST(out.at("kpi:org:acme").offset == 0u);
}

BOOST_AUTO_TEST_CASE(a_bare_number_is_an_offset_in_the_current_epoch) {
    scope const sc{"acme", "support", ""};
    std::map<std::string, d::recover_position> out;
    std::string why;
    BOOST_TEST_REQUIRE(d::sse_ids::parse("41", sc, {{"kpi", sc}}, "now", out, why));
    BOOST_TEST(out.at("kpi:org:acme:dept:support").epoch == "now");
    BOOST_TEST(out.at("kpi:org:acme:dept:support").offset == 41u);
    // ambiguous with two channels
    BOOST_TEST(!d::sse_ids::parse("41", sc, {{"kpi", sc}, {"alerts", sc}}, "now", out, why));
    BOOST_TEST(why.find("single channel") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(malformed_ids_are_refused) {
    scope const sc{"acme", "", ""};
    std::vector<topic> const subs{{"kpi", sc}};
    std::map<std::string, d::recover_position> out;
    std::string why;
    for (std::string bad : {"", ",kpi=1", "e1,kpi", "e1,kpi=", "e1,kpi=x", "e1,kpi=-1", "e1,=3",
                            "e1,kpi/a/b/c=1", "e1,kp:i=1", "e:1,kpi=1", "e1,kpi=1,"}) {
        why.clear();
        BOOST_TEST(!d::sse_ids::parse(bad, sc, subs, "e1", out, why), bad);
        BOOST_TEST(!why.empty(), bad);
    }
    // an entry of a channel the stream does not have, or of a wider topic, is ignored
    BOOST_TEST(d::sse_ids::parse("e1,alerts=3", sc, subs, "e1", out, why));
    BOOST_TEST(out.at("kpi:org:acme").offsets.empty());
}

BOOST_AUTO_TEST_CASE(event_framing) {
    BOOST_TEST(d::sse_event_head("") == "data: ");
    BOOST_TEST(d::sse_event_head("e1,kpi=3") == "id: e1,kpi=3\ndata: ");
    BOOST_TEST(d::sse_event_tail == "\n\n");
}

BOOST_AUTO_TEST_SUITE_END()
