// The ingest schemas (seed 003's payloads) and the field checks they are made of.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include <rtpush/ingest.hpp>

#include <boost/test/unit_test.hpp>

namespace {

const rtpush::ingest_validator& intraday() {
    static const auto v = rtpush::ingest_validator::intraday();
    return v;
}

// "field: message" of the first problem, or "" when the payload is valid.
std::string problem(std::string_view kind, std::string_view json) {
    auto e = intraday().validate(kind, boost::json::parse(json));
    return e ? e->field + ": " + e->message : std::string{};
}

} // namespace

BOOST_AUTO_TEST_SUITE(ingest)

BOOST_AUTO_TEST_CASE(timestamps) {
    using rtpush::valid_timestamp;
    BOOST_TEST(valid_timestamp("2026-01-31T10:00:00Z"));
    BOOST_TEST(valid_timestamp("2026-01-31T10:00:00.123Z"));
    BOOST_TEST(valid_timestamp("2026-01-31T10:00:00+01:00"));
    BOOST_TEST(valid_timestamp("2026-01-31T10:00:00.5-05:30"));
    BOOST_TEST(!valid_timestamp("2026-01-31T10:00:00"));  // no zone
    BOOST_TEST(!valid_timestamp("2026-01-31 10:00:00Z")); // no T
    BOOST_TEST(!valid_timestamp("2026-13-01T10:00:00Z")); // month 13
    BOOST_TEST(!valid_timestamp("2026-02-30T10:00:00Z")); // no such day
    BOOST_TEST(!valid_timestamp("2026-04-31T10:00:00Z"));
    BOOST_TEST(!valid_timestamp("2026-02-29T10:00:00Z")); // not a leap year
    BOOST_TEST(!valid_timestamp("1900-02-29T10:00:00Z"));
    BOOST_TEST(valid_timestamp("2024-02-29T10:00:00Z"));
    BOOST_TEST(valid_timestamp("2000-02-29T10:00:00Z"));
    BOOST_TEST(valid_timestamp("2026-12-31T23:59:60Z"));      // a leap second
    BOOST_TEST(!valid_timestamp("2026-01-31T24:00:00Z"));     // hour 24
    BOOST_TEST(!valid_timestamp("2026-01-31T10:00Z"));        // no seconds
    BOOST_TEST(!valid_timestamp("2026-01-31T10:00:00.Z"));    // empty fraction
    BOOST_TEST(!valid_timestamp("2026-01-31T10:00:00+0100")); // zone without colon
    BOOST_TEST(!valid_timestamp("2026-01-31T10:00:00Zjunk")); // trailing text
    BOOST_TEST(!valid_timestamp("yesterday"));
}

BOOST_AUTO_TEST_CASE(kpi_payloads) {
    // seed 003's full shape, and seed 001's shorter example, are both valid
    BOOST_TEST(
        problem("kpi", R"({"organization_id":"org_123","department_id":"d","queue_name":"support",
        "timestamp":"2026-01-31T10:00:00Z","utilization":{"current_utilization":71.5,"trend":"up"},
        "headcount_gap":{"gap":-2},"sla_risk":{"current":0.2},"health_score":85,
        "changes":{"utilization_change":1.5,"health_score_change":-2}})") == "");
    BOOST_TEST(
        problem("kpi", R"({"organization_id":"org_123","queue_name":"support","department_id":"x",
        "timestamp":"2024-01-15T10:30:00Z","utilization":70,"health_score":85})") == "");
    // unknown fields are kept, not refused
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":1,"extra":[1,2]})") == "");

    BOOST_TEST(problem("kpi", R"({"health_score":85})") == "organization_id: is required");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o"})") == "health_score: is required");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":"85"})") ==
               "health_score: must be a number from 0 to 100");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":101})") ==
               "health_score: must be a number from 0 to 100");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":-0.5})") ==
               "health_score: must be a number from 0 to 100");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o b","health_score":1})") ==
               "organization_id: must be an identifier: 1-128 characters of [A-Za-z0-9_.@-]");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":1,"timestamp":"noon"})") ==
               "timestamp: must be an ISO 8601 date and time with a zone, e.g. "
               "2026-01-31T10:00:00Z");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":1,"queue_name":"q"})") ==
               "department_id: is required when queue_name is given");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":1,"utilization":"high"})") ==
               "utilization: must be a number or an object of metrics");
    BOOST_TEST(
        problem("kpi", R"({"organization_id":"o","health_score":1,"sla_risk":{"current":[1]}})") ==
        "sla_risk.current: must be a number, string, boolean or null");
    BOOST_TEST(problem("kpi", R"({"organization_id":"o","health_score":1,"changes":{"a":"x"}})") ==
               "changes.a: must be a number");
    BOOST_TEST(problem("kpi", "[1,2]") == ": the payload must be a JSON object");
}

BOOST_AUTO_TEST_CASE(backlog_payloads) {
    std::string const ok = R"({"organization_id":"o","department_id":"d","queue_name":"q",
        "total_items":10,"avg_wait_time_minutes":4.5,"items_over_sla":2,
        "sla_compliance_percentage":80,"backlog_trend":"growing"})";
    BOOST_TEST(problem("backlog", ok) == "");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":10.0,
        "avg_wait_time_minutes":0,"items_over_sla":0,"sla_compliance_percentage":100})") == "");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":1.5,
        "avg_wait_time_minutes":0,"items_over_sla":0,"sla_compliance_percentage":100})") ==
               "total_items: must be an integer of at least 0");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":-1,
        "avg_wait_time_minutes":0,"items_over_sla":0,"sla_compliance_percentage":100})") ==
               "total_items: must be an integer of at least 0");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":3})") ==
               "avg_wait_time_minutes: is required");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":1,
        "avg_wait_time_minutes":0,"items_over_sla":0,"sla_compliance_percentage":100,
        "backlog_trend":"up"})") ==
               R"(backlog_trend: must be "growing", "stable" or "decreasing")");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":1,
        "avg_wait_time_minutes":0,"items_over_sla":2,"sla_compliance_percentage":100})") ==
               "items_over_sla: must not exceed total_items");
    BOOST_TEST(problem("backlog", R"({"organization_id":"o","total_items":1,
        "avg_wait_time_minutes":0,"items_over_sla":0,"sla_compliance_percentage":100,
        "snapshot_id":""})") == "snapshot_id: must not be empty");
}

BOOST_AUTO_TEST_CASE(attendance_payloads) {
    std::string const head = R"({"organization_id":"o","department_id":"d","scheduled_count":40,
        "present_count":35,"absent_count":5,"late_count":2,"attendance_rate":87.5)";
    BOOST_TEST(problem("attendance", head + "}") == "");
    BOOST_TEST(problem("attendance", head + R"(,"recent_checkins":[{"employee_id":"e1",
        "employee_name":"Ann","checked_in_at":"2026-01-31T08:59:00Z","status":"on_time"}]})") ==
               "");
    BOOST_TEST(problem("attendance", head + R"(,"recent_checkins":[{"employee_id":"e1",
        "employee_name":"Ann","checked_in_at":"2026-01-31T08:59:00Z","status":"on_time"},
        {"employee_id":"e2","employee_name":"Bob","status":"late"}]})") ==
               "recent_checkins[1].checked_in_at: is required");
    BOOST_TEST(problem("attendance", head + R"(,"recent_checkins":[3]})") ==
               "recent_checkins[0]: must be an object");
    BOOST_TEST(problem("attendance", head + R"(,"recent_checkins":{}})") ==
               "recent_checkins: must be an array");
    BOOST_TEST(problem("attendance", R"({"organization_id":"o","scheduled_count":40,
        "present_count":35,"absent_count":5,"late_count":2,"attendance_rate":187.5})") ==
               "attendance_rate: must be a number from 0 to 100");
    BOOST_TEST(problem("attendance", R"({"organization_id":"o","scheduled_count":40,
        "present_count":35,"late_count":2,"attendance_rate":87.5})") ==
               "absent_count: is required");
}

BOOST_AUTO_TEST_CASE(alert_payloads) {
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"high","message":"m"})") ==
               "");
    BOOST_TEST(problem("alert", R"({"alert_id":"al-1","rule_id":"r","rule_name":"n",
        "alert_type":"threshold","severity":"critical","source":"kpi","organization_id":"o",
        "message":"m","current_value":{"x":1},"threshold_value":0.3,"status":"pending",
        "triggered_at":"2026-01-31T10:00:00Z"})") == "");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"severe","message":"m"})") ==
               R"(severity: must be "low", "medium", "high" or "critical")");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"low"})") ==
               "message: is required");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"low","message":""})") ==
               "message: must not be empty");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"low","message":"m",
        "source":"weather"})") ==
               R"(source: must be "kpi", "backlog", "attendance" or "schedule")");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"low","message":"m",
        "status":"open"})") == R"(status: must be "pending", "acknowledged" or "resolved")");
    BOOST_TEST(problem("alert", R"({"organization_id":"o","severity":"low","message":"m",
        "alert_id":"a/b"})") ==
               "alert_id: must be an identifier: 1-128 characters of [A-Za-z0-9_.@-]");
}

BOOST_AUTO_TEST_CASE(kinds_and_custom_schemas) {
    using rtpush::ingest_validator;
    BOOST_TEST(ingest_validator::kind_of_channel("alerts") == "alert");
    BOOST_TEST(ingest_validator::kind_of_channel("kpi") == "kpi");
    BOOST_TEST(ingest_validator::kind_of_event("kpi:update") == "kpi");
    BOOST_TEST(ingest_validator::kind_of_event("attendance:update") == "attendance");
    BOOST_TEST(ingest_validator::kind_of_event("alert:resolved") == "alert");
    BOOST_TEST(ingest_validator::kind_of_event("system:maintenance") == "");
    BOOST_TEST(ingest_validator::kind_of_event("kpi:computed") == "");

    // No schema: free-form. An empty validator validates nothing.
    BOOST_TEST(!intraday().validate("notifications", boost::json::parse("[1]")));
    ingest_validator none;
    BOOST_TEST(none.empty());
    BOOST_TEST(!none.validate("kpi", boost::json::parse("{}")));

    // A program's own schema, with nested objects and a bounded array.
    rtpush::field_rule inner;
    inner.name = "level";
    inner.kind = rtpush::field_kind::integer;
    inner.required = true;
    inner.min = 1;
    inner.max = 5;
    rtpush::field_rule nested;
    nested.name = "detail";
    nested.kind = rtpush::field_kind::object;
    nested.required = true;
    nested.fields = {inner};
    rtpush::field_rule list;
    list.name = "tags";
    list.kind = rtpush::field_kind::array;
    list.max = 2;
    rtpush::field_rule flag;
    flag.name = "on";
    flag.kind = rtpush::field_kind::boolean;
    rtpush::payload_schema s;
    s.fields = {nested, list, flag};
    none.set("custom", s);
    BOOST_TEST(none.has("custom"));
    auto p = [&](std::string_view json) {
        auto e = none.validate("custom", boost::json::parse(json));
        return e ? e->field + ": " + e->message : std::string{};
    };
    BOOST_TEST(p(R"({"detail":{"level":3},"tags":["a"],"on":true})") == "");
    BOOST_TEST(p(R"({"detail":{"level":9}})") == "detail.level: must be an integer from 1 to 5");
    BOOST_TEST(p(R"({"detail":{}})") == "detail.level: is required");
    BOOST_TEST(p(R"({"detail":1})") == "detail: must be an object");
    BOOST_TEST(p(R"({"detail":{"level":1},"tags":[1,2,3]})") ==
               "tags: must be an array with a length of at most 2");
    BOOST_TEST(p(R"({"detail":{"level":1},"on":"yes"})") == "on: must be true or false");
}

BOOST_AUTO_TEST_SUITE_END()
