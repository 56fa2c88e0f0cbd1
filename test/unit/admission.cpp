// Unit tests for detail/admission.hpp: the handshake's rules in order, as verdicts.
#include <rtpush/detail/admission.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;
namespace http = boost::beast::http;

namespace {

d::upgrade_request good() {
    d::upgrade_request r;
    r.path = "/ws";
    r.upgrade = true;
    r.get = true;
    r.version = 11;
    r.key = "dGhlIHNhbXBsZSBub25jZQ==";
    r.websocket_version = "13";
    return r;
}

std::vector<std::string> const origins{"https://dash.example"};

d::admission_rules rules(std::size_t open = 0) {
    d::admission_rules r;
    r.allowed_origins = &origins;
    r.max_connections = 10;
    r.connections = open;
    return r;
}

auto const yes = [] {
    return true;
};
auto const no_token_problem = [] {
    return std::string();
};
auto const nothing_more = [] {
    return std::optional<d::refusal>();
};

} // namespace

BOOST_AUTO_TEST_SUITE(admission)

BOOST_AUTO_TEST_CASE(a_good_upgrade_passes) {
    BOOST_TEST(!d::check_upgrade_request(good(), "/ws"));
    BOOST_TEST(!d::admit(rules(), "https://dash.example", d::websocket_words, yes, no_token_problem,
                         nothing_more));
    BOOST_TEST(!d::admit(rules(), "", d::websocket_words, yes, no_token_problem, nothing_more));
}

BOOST_AUTO_TEST_CASE(the_request_s_own_faults) {
    auto r = good();
    r.path = "/other";
    auto f = d::check_upgrade_request(r, "/ws");
    BOOST_TEST(f->status == http::status::not_found);
    BOOST_TEST(f->message == "no WebSocket endpoint at /other (try /ws)");
    BOOST_TEST(!f->reason); // not counted as a rejection
    r = good();
    r.upgrade = false;
    BOOST_TEST(d::check_upgrade_request(r, "/ws")->status == http::status::upgrade_required);
    for (int i = 0; i < 3; ++i) {
        r = good();
        if (i == 0)
            r.get = false;
        if (i == 1)
            r.version = 10;
        if (i == 2)
            r.key = "short";
        f = d::check_upgrade_request(r, "/ws");
        BOOST_TEST(f->status == http::status::bad_request);
        BOOST_TEST(f->message == "malformed WebSocket handshake");
    }
    r = good();
    r.org = "a:b";
    BOOST_TEST(d::check_upgrade_request(r, "/ws")->code == "INVALID_MESSAGE");
    r = good();
    r.websocket_version = "8";
    f = d::check_upgrade_request(r, "/ws");
    BOOST_TEST(f->status == http::status::upgrade_required);
    BOOST_TEST(f->websocket_version);
    auto const res = d::to_response(*f);
    BOOST_TEST(res[http::field::sec_websocket_version] == "13");
    BOOST_TEST(res.body().find("\"code\":\"INVALID_MESSAGE\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(rules_apply_in_order_and_the_rate_is_taken_only_past_the_origin) {
    int taken = 0;
    auto take = [&] {
        ++taken;
        return true;
    };
    auto f = d::admit(rules(), "https://evil.example", d::websocket_words, take, no_token_problem,
                      nothing_more);
    BOOST_TEST(f->status == http::status::forbidden);
    BOOST_TEST((f->reason == d::reject_reason::origin_not_allowed));
    BOOST_TEST(f->message == "origin https://evil.example may not open a WebSocket on this server");
    BOOST_TEST(taken == 0);

    f = d::admit(
        rules(), "", d::stream_words, [] { return false; }, no_token_problem, nothing_more);
    BOOST_TEST(f->status == http::status::too_many_requests);
    BOOST_TEST(f->retry_after);
    BOOST_TEST(f->message == "too many connections from this address");
    BOOST_TEST(d::to_response(*f)[http::field::retry_after] == "1");

    f = d::admit(
        rules(), "", d::websocket_words, take, [] { return std::string("expired"); }, nothing_more);
    BOOST_TEST(f->status == http::status::unauthorized);
    BOOST_TEST(f->code == "AUTH_FAILED");
    BOOST_TEST(f->message == "expired");
    BOOST_TEST(d::to_response(*f)[http::field::www_authenticate] == "Bearer");
    BOOST_TEST(taken == 1);

    auto st = rules();
    st.stopping = true;
    f = d::admit(st, "", d::websocket_words, yes, no_token_problem, nothing_more);
    BOOST_TEST((f->reason == d::reject_reason::shutting_down));
    f = d::admit(rules(10), "", d::websocket_words, yes, no_token_problem, nothing_more);
    BOOST_TEST((f->reason == d::reject_reason::connection_limit));
    BOOST_TEST(f->message == "connection limit of 10 reached");
    // The transport's own check comes between the token and the capacity.
    f = d::admit(rules(10), "", d::stream_words, yes, no_token_problem, [] {
        return std::optional<d::refusal>(d::refusal{http::status::forbidden, "UNAUTHORIZED", "x"});
    });
    BOOST_TEST(f->code == "UNAUTHORIZED");
}

BOOST_AUTO_TEST_CASE(stream_access_and_topics) {
    std::vector<rtpush::topic> topics;
    BOOST_TEST(!d::parse_stream_topics({{"channel", "kpi,alerts,kpi"}, {"org", "acme"}}, "/sse", 8,
                                       topics));
    BOOST_TEST(topics.size() == 2u); // the duplicate dropped
    BOOST_TEST(topics[1].scope.org == "acme");
    topics.clear();
    auto f = d::parse_stream_topics({}, "/sse", 8, topics);
    BOOST_TEST(f->message == "channel is required (e.g. /sse?channel=kpi&org=acme)");
    f = d::parse_stream_topics({{"channel", "a:b"}}, "/sse", 8, topics);
    BOOST_TEST(f->code == "INVALID_MESSAGE");
    topics.clear();
    f = d::parse_stream_topics({{"channel", "a,b,c"}}, "/sse", 2, topics);
    BOOST_TEST(f->code == "SUBSCRIPTION_FAILED");

    std::vector<rtpush::topic> const acme{{"kpi", {"acme", "", ""}}};
    f = d::check_stream_access(true, std::nullopt, acme);
    BOOST_TEST((f->reason == d::reject_reason::auth_failed));
    BOOST_TEST(!d::check_stream_access(false, std::nullopt, acme));
    BOOST_TEST(!d::check_stream_access(true, d::identity{true, "acme", {}}, acme));
    f = d::check_stream_access(false, d::identity{true, "globex", {}}, acme);
    BOOST_TEST(f->status == http::status::forbidden);
    BOOST_TEST((f->reason == d::reject_reason::unauthorized));
}

BOOST_AUTO_TEST_SUITE_END()
