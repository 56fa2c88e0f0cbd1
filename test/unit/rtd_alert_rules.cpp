// rtd's alert rules: the config section and the evaluation (for N, resolve, manual resolution).
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include "../../tools/rtd/alert_rules.hpp"

#include <boost/test/unit_test.hpp>

#include <set>

namespace {

std::string rules_error(std::string_view json) {
    try {
        rtd::parse_alert_rules(boost::json::parse(json));
    } catch (std::invalid_argument const& e) {
        return e.what();
    }
    return {};
}

rtd::alert_rule rule(std::string_view json) {
    auto c = rtd::parse_alert_rules(
        boost::json::parse(std::string(R"({"rules":[)") + std::string(json) + "]}"));
    return c.rules.at(0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(rtd_alert_rules)

BOOST_AUTO_TEST_CASE(config) {
    auto c = rtd::parse_alert_rules(boost::json::parse(R"({"interval":0.25,"rules":[
        {"id":"sla","name":"SLA risk high","channel":"kpi","scope":{"org":"acme"},
         "field":"/sla_risk/current","op":">=","threshold":0.3,"for":2,"severity":"high"},
        {"id":"q","channel":"queues","field":"/depth","threshold":5}]})"));
    BOOST_TEST(c.interval.count() == 250);
    BOOST_REQUIRE(c.rules.size() == 2u);
    auto const& r = c.rules[0];
    BOOST_TEST(r.topic.key() == "kpi:org:acme");
    BOOST_TEST((r.op == rtd::comparison::ge));
    BOOST_TEST(r.threshold == 0.3);
    BOOST_TEST(r.for_count == 2u);
    BOOST_TEST(r.severity == "high");
    BOOST_TEST(r.source == "kpi");
    // defaults
    auto const& q = c.rules[1];
    BOOST_TEST(q.name == "q");
    BOOST_TEST((q.op == rtd::comparison::gt));
    BOOST_TEST(q.for_count == 1u);
    BOOST_TEST(q.severity == "medium");
    BOOST_TEST(q.source == ""); // not one of seed 003's sources
    BOOST_TEST(rtd::parse_alert_rules(boost::json::parse("{}")).interval.count() == 60000);

    BOOST_TEST(rules_error("[]") == "alerts: must be an object {interval, rules}");
    BOOST_TEST(rules_error(R"({"every":1})") == "alerts.every: unknown setting");
    BOOST_TEST(rules_error(R"({"interval":0})") == "alerts.interval: must be more than 0 seconds");
    BOOST_TEST(rules_error(R"({"rules":{}})") == "alerts.rules: must be an array of objects");
    std::string const base = R"("channel":"kpi","field":"/x","threshold":1)";
    BOOST_TEST(rules_error(R"({"rules":[{)" + base + "}]}") ==
               "alerts.rules[0].id: is required: 1-128 characters of [A-Za-z0-9_.@-]");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(},{"id":"a",)" + base + "}]}") ==
               "alerts.rules[1].id: 'a' is used twice");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a","field":"/x","threshold":1}]})") ==
               "alerts.rules[0].channel: is required");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a","channel":"kpi","field":"x","threshold":1}]})") ==
               "alerts.rules[0].field: is required: a JSON pointer such as /sla_risk/current");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(,"op":"above"}]})") ==
               "alerts.rules[0].op: must be >, >=, <, <=, == or !=");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a","channel":"kpi","field":"/x"}]})") ==
               "alerts.rules[0].threshold: is required: a number");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(,"for":0}]})") ==
               "alerts.rules[0].for: must be a whole number of evaluations from 1 to 1000");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(,"severity":"dire"}]})") ==
               "alerts.rules[0].severity: must be low, medium, high or critical");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(,"scope":{"dept":"d"}}]})") ==
               "alerts.rules[0].scope: invalid channel or scope (identifiers are "
               "[A-Za-z0-9_.@-]; a dept needs an org, a queue needs a dept)");
    BOOST_TEST(rules_error(R"({"rules":[{"id":"a",)" + base + R"(,"limit":3}]})") ==
               "alerts.rules[0].limit: unknown setting");
}

BOOST_AUTO_TEST_CASE(comparisons) {
    using rtd::comparison;
    BOOST_TEST(rtd::breaches(comparison::gt, 0.31, 0.3));
    BOOST_TEST(!rtd::breaches(comparison::gt, 0.3, 0.3));
    BOOST_TEST(rtd::breaches(comparison::ge, 0.3, 0.3));
    BOOST_TEST(rtd::breaches(comparison::lt, 1, 2));
    BOOST_TEST(!rtd::breaches(comparison::le, 3, 2));
    BOOST_TEST(rtd::breaches(comparison::eq, 2, 2));
    BOOST_TEST(rtd::breaches(comparison::ne, 1, 2));
}

BOOST_AUTO_TEST_CASE(value_prefers_the_kpis_phase) {
    auto const r = rule(R"({"id":"r","channel":"kpi","field":"/sla_risk/current","threshold":1})");
    auto const complete =
        boost::json::parse(R"({"phase":"complete","data":{"sla_risk":{"current":7}}})");
    auto const kpis = boost::json::parse(R"({"phase":"kpis","data":{"sla_risk":{"current":0.4}}})");
    auto const text = boost::json::parse(R"({"data":{"sla_risk":{"current":"high"}}})");
    BOOST_TEST(*rtd::rule_value(r, {&complete.as_object(), &kpis.as_object()}) == 0.4);
    BOOST_TEST(*rtd::rule_value(r, {&complete.as_object()}) == 7);
    BOOST_TEST(!rtd::rule_value(r, {&text.as_object()})); // not a number
    BOOST_TEST(!rtd::rule_value(r, {}));
}

BOOST_AUTO_TEST_CASE(alert_payload) {
    auto const r =
        rule(R"({"id":"sla","name":"SLA risk","channel":"kpi","field":"/sla_risk/current",
        "op":">","threshold":0.3,"severity":"high",
        "message":"{topic}: SLA risk {value} above {threshold}"})");
    auto const a = rtd::rule_alert(r, {"kpi", {"acme", "support", "email"}}, 0.45);
    BOOST_TEST(a.at("rule_id").as_string() == "sla");
    BOOST_TEST(a.at("rule_name").as_string() == "SLA risk");
    BOOST_TEST(a.at("severity").as_string() == "high");
    BOOST_TEST(a.at("source").as_string() == "kpi");
    BOOST_TEST(a.at("organization_id").as_string() == "acme");
    BOOST_TEST(a.at("queue_name").as_string() == "email");
    BOOST_TEST(a.at("current_value").as_double() == 0.45);
    BOOST_TEST(a.at("threshold_value").as_double() == 0.3);
    BOOST_TEST(a.at("message").as_string() ==
               "kpi:org:acme:dept:support:queue:email: SLA risk 0.45 above 0.3");
    auto const d = rtd::rule_alert(rule(R"({"id":"n","channel":"kpi","field":"/x","threshold":5})"),
                                   {"kpi", {"acme", "", ""}}, 9);
    BOOST_TEST(d.at("message").as_string() == "n: /x is 9 (> 5)");
    BOOST_TEST(!d.contains("department_id"));
    BOOST_TEST(!d.contains("escalate_after")); // the server's setting applies
    auto const e = rtd::rule_alert(
        rule(R"({"id":"e","channel":"kpi","field":"/x","threshold":5,"escalate_after":90})"),
        {"kpi", {"acme", "", ""}}, 9);
    BOOST_TEST(e.at("escalate_after").as_double() == 90);
}

BOOST_AUTO_TEST_CASE(for_n_evaluations_then_resolve) {
    auto const r = rule(R"({"id":"r","channel":"kpi","field":"/v","threshold":0.3,"for":2})");
    rtd::rule_engine e;
    std::set<std::string> active;
    auto is_active = [&](const std::string& id) {
        return active.count(id) > 0;
    };
    std::string const k = "kpi:org:acme";
    BOOST_TEST(!e.evaluate(r, k, 0.5, is_active)); // 1 of 2
    BOOST_TEST(e.breaches_of(r, k) == 1u);
    BOOST_TEST(!e.evaluate(r, k, 0.1, is_active)); // back inside: the count starts again
    BOOST_TEST(!e.evaluate(r, k, 0.5, is_active));
    BOOST_TEST(!e.evaluate(r, k, std::nullopt, is_active)); // no value: no evidence either way
    auto t = e.evaluate(r, k, 0.6, is_active);              // 2 of 2
    BOOST_REQUIRE(t.has_value());
    BOOST_TEST((t->kind == rtd::rule_engine::action::trigger));
    e.triggered(r, k, "al-7");
    active.insert("al-7");
    BOOST_TEST(!e.evaluate(r, k, 0.7, is_active));                // still out: one alert, not two
    BOOST_TEST(!e.evaluate(r, "kpi:org:globex", 0.7, is_active)); // topics count apart
    auto z = e.evaluate(r, k, 0.2, is_active);
    BOOST_REQUIRE(z.has_value());
    BOOST_TEST((z->kind == rtd::rule_engine::action::resolve));
    BOOST_TEST(z->alert_id == "al-7");
    active.erase("al-7");
    BOOST_TEST(!e.evaluate(r, k, 0.2, is_active)); // resolved once
}

BOOST_AUTO_TEST_CASE(trigger_failure_retries) {
    auto const r = rule(R"({"id":"r","channel":"kpi","field":"/v","threshold":1})");
    rtd::rule_engine e;
    auto none = [](const std::string&) {
        return false;
    };
    BOOST_TEST(e.evaluate(r, "k", 2, none).has_value());
    // the caller could not raise it (e.g. the alert book was full): asked again next time
    BOOST_TEST(e.evaluate(r, "k", 2, none).has_value());
}

BOOST_AUTO_TEST_CASE(manual_resolution_is_respected) {
    auto const r = rule(R"({"id":"r","channel":"kpi","field":"/v","threshold":1})");
    rtd::rule_engine e;
    std::set<std::string> active;
    auto is_active = [&](const std::string& id) {
        return active.count(id) > 0;
    };
    BOOST_REQUIRE(e.evaluate(r, "k", 2, is_active).has_value());
    e.triggered(r, "k", "al-1");
    active.insert("al-1");
    active.erase("al-1"); // an operator resolved it while the value is still out
    BOOST_TEST(!e.evaluate(r, "k", 3, is_active)); // not raised again at once
    BOOST_TEST(!e.evaluate(r, "k", 3, is_active));
    BOOST_TEST(!e.evaluate(r, "k", 0, is_active));            // back inside: nothing to resolve
    BOOST_TEST(e.evaluate(r, "k", 2, is_active).has_value()); // a new breach: a new alert
}

BOOST_AUTO_TEST_SUITE_END()
