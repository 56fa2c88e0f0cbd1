// Unit tests for detail/access.hpp: the scope a request names, and who may read a topic.
#include <rtpush/detail/access.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;
using rtpush::scope;
using rtpush::topic;

BOOST_AUTO_TEST_SUITE(access_rules)

BOOST_AUTO_TEST_CASE(scope_from_query_takes_either_name_and_prefers_the_short_one) {
    BOOST_TEST((d::scope_from_query({{"org", "a"}, {"dept", "d"}, {"queue", "q"}}) ==
                (scope{"a", "d", "q"})));
    BOOST_TEST((d::scope_from_query(
                    {{"organization_id", "a"}, {"department_id", "d"}, {"queue_name", "q"}}) ==
                (scope{"a", "d", "q"})));
    // Both given: the short name wins, for every level alike.
    BOOST_TEST(d::scope_from_query({{"org", "short"}, {"organization_id", "long"}}).org == "short");
    BOOST_TEST(d::scope_from_query({{"dept", "x"}, {"department_id", "y"}}).dept == "x");
    BOOST_TEST((d::scope_from_query({}) == scope{}));
    BOOST_TEST(d::query_param({{"token", "t"}}, d::scope_names[0]).empty());
}

BOOST_AUTO_TEST_CASE(scope_from_json_same_rule_and_strings_only) {
    auto o = boost::json::parse(
                 R"({"organization_id":"long","org":"short","department_id":"d","queue_name":5})")
                 .as_object();
    auto const s = d::scope_from_json(o);
    BOOST_TEST(s.org == "short");
    BOOST_TEST(s.dept == "d");
    BOOST_TEST(s.queue.empty()); // a number is not an identifier
    BOOST_TEST((d::scope_from_json(boost::json::object{}) == scope{}));
}

BOOST_AUTO_TEST_CASE(anonymous_clients_are_not_limited_here) {
    d::identity const anon;
    BOOST_TEST(!d::may_read(anon, topic{"kpi", {}}));
    BOOST_TEST(!d::may_read(anon, topic{"kpi", {"any", "", ""}}));
}

BOOST_AUTO_TEST_CASE(an_authenticated_identity_stays_in_its_org_and_channels) {
    d::identity const acme{true, "acme", {}};
    BOOST_TEST(!d::may_read(acme, topic{"kpi", {"acme", "support", ""}}));
    BOOST_TEST((d::may_read(acme, topic{"kpi", {}}) == d::access_denial::org_required));
    BOOST_TEST((d::may_read(acme, topic{"kpi", {"globex", "", ""}}) ==
                d::access_denial::other_organization));
    d::identity const only_kpi{true, "acme", {"kpi", "alerts"}};
    BOOST_TEST(!d::may_read(only_kpi, topic{"alerts", {"acme", "", ""}}));
    BOOST_TEST((d::may_read(only_kpi, topic{"backlog", {"acme", "", ""}}) ==
                d::access_denial::channel_not_allowed));
    rtpush::jwt_claims c;
    c.org = "acme";
    c.channels = {"kpi"};
    auto const who = d::identity::of(c);
    BOOST_TEST(who.authenticated);
    BOOST_TEST(
        (d::may_read(who, topic{"x", {"acme", "", ""}}) == d::access_denial::channel_not_allowed));
}

BOOST_AUTO_TEST_CASE(denials_name_the_rule) {
    d::identity const acme{true, "acme", {}};
    topic const other{"kpi", {"globex", "", ""}};
    BOOST_TEST(d::denial_message(d::access_denial::other_organization, acme, other, "this client",
                                 "scope.org") == "this client may not access organization globex");
    BOOST_TEST(d::denial_message(d::access_denial::org_required, acme, topic{"kpi", {}},
                                 "this token", "org") ==
               "org is required: this token may only access organization acme");
    BOOST_TEST(d::denial_message(d::access_denial::channel_not_allowed, acme, other, "x", "y") ==
               "this token does not allow channel kpi");
}

BOOST_AUTO_TEST_CASE(a_secret_requires_tokens_unless_anonymous_is_allowed) {
    // (has_secret, auth_required, allow_anonymous)
    BOOST_TEST(!d::token_required(false, false, false)); // nothing configured: open
    BOOST_TEST(d::token_required(true, false, false));   // a secret alone: tokens required
    BOOST_TEST(!d::token_required(true, false, true));   // ... unless declared trusted
    BOOST_TEST(d::token_required(true, true, false));    // explicit
    BOOST_TEST(!d::token_required(false, false, true));  // nothing to verify with: open
    // auth_required wins (the server refuses the contradiction at construction)
    BOOST_TEST(d::token_required(true, true, true));
}

BOOST_AUTO_TEST_CASE(a_token_is_warned_once_then_ends_at_exp_plus_leeway) {
    using step = d::token_expiry::step;
    using std::chrono::seconds;
    // exp 1000, leeway 30: the connection ends at 1030; warned from 1030 - 60 = 970.
    auto at = [](std::int64_t now, bool warned = false, seconds warning = seconds(60)) {
        return d::token_expiry_at(1000, seconds(30), warning, warned, now);
    };
    BOOST_TEST((at(969).what == step::none));
    BOOST_TEST((at(970).what == step::warn));
    BOOST_TEST(at(970).expires_in == 60);
    BOOST_TEST((at(1000).what == step::warn)); // past exp, inside the leeway: still a warning
    BOOST_TEST(at(1029).expires_in == 1);
    BOOST_TEST((at(1000, true).what == step::none)); // once per token
    BOOST_TEST((at(1030, true).what == step::expire));
    BOOST_TEST((at(5000).what == step::expire));
    BOOST_TEST((at(1029, false, seconds(0)).what == step::none)); // no warning configured
    BOOST_TEST((at(1030, false, seconds(0)).what == step::expire));
    // A token without exp (or no token) never ends the connection.
    BOOST_TEST(
        (d::token_expiry_at(0, seconds(30), seconds(60), false, 1 << 30).what == step::none));
}

BOOST_AUTO_TEST_SUITE_END()
