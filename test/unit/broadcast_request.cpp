// Unit tests for detail/broadcast_request.hpp: a REST broadcast read once into a publication.
#include <rtpush/detail/broadcast_request.hpp>

#include <boost/test/unit_test.hpp>

namespace d = rtpush::detail;

namespace {

rtpush::ingest_validator const schemas = rtpush::ingest_validator::intraday();

std::variant<d::broadcast_request, d::request_fault>
parse(std::string_view body, std::string_view shortcut = {}, d::query_map q = {}) {
    return d::parse_broadcast(shortcut, q, body, 32, schemas);
}

d::broadcast_request ok(std::string_view body, std::string_view shortcut = {},
                        d::query_map q = {}) {
    auto r = parse(body, shortcut, std::move(q));
    if (auto* f = std::get_if<d::request_fault>(&r))
        BOOST_FAIL("refused: " + f->error.field + ": " + f->error.message);
    return std::get<d::broadcast_request>(std::move(r));
}

d::request_fault fault(std::string_view body, std::string_view shortcut = {}) {
    auto r = parse(body, shortcut);
    BOOST_REQUIRE(std::holds_alternative<d::request_fault>(r));
    return std::get<d::request_fault>(std::move(r));
}

} // namespace

BOOST_AUTO_TEST_SUITE(broadcast_request)

BOOST_AUTO_TEST_CASE(generic_broadcast) {
    auto const r = ok(
        R"({"event":"system:maintenance","target":{"organization_id":"acme"},"priority":"high","data":{"m":1}})");
    BOOST_TEST(r.pub.topic.channel == "system"); // from the event
    BOOST_TEST(r.pub.topic.scope.org == "acme");
    BOOST_TEST(r.pub.event == "system:maintenance");
    BOOST_TEST((r.pub.priority == rtpush::priority::high));
    BOOST_TEST(r.kind.empty());
    BOOST_TEST(!r.requires_ack);
    auto const c = ok(R"({"channel":"kpi","scope":{"org":"a"},"phase":"kpis","data":1})", {},
                      {{"requires_ack", "true"}});
    BOOST_TEST(c.pub.topic.key() == "kpi:org:a");
    BOOST_TEST(c.pub.phase == "kpis");
    BOOST_TEST(c.requires_ack);
}

BOOST_AUTO_TEST_CASE(targets_that_name_connections) {
    using kind = d::audience::kind;
    // A system event without a channel: every connection, or an organization's.
    auto const all = ok(R"({"event":"system:broadcast","data":{"n":1}})");
    BOOST_REQUIRE(all.to);
    BOOST_TEST((all.to->who == kind::everyone));
    BOOST_TEST(all.pub.topic.channel == "system");
    auto const org =
        ok(R"({"event":"system:maintenance","target":{"organization_id":"acme"},"data":1})");
    BOOST_REQUIRE(org.to);
    BOOST_TEST((org.to->who == kind::organization));
    BOOST_TEST(org.to->org == "acme");
    // ... with a channel it is the channel's publication, for its subscribers.
    auto const topical = ok(R"({"event":"system:maintenance","channel":"notifications","data":1})");
    BOOST_TEST(!topical.to);
    BOOST_TEST(!ok(R"({"event":"news:update","target":{"organization_id":"a"},"data":{}})").to);
    // Listed ids, sorted and without repeats; any event; `client_ids` is the same field.
    auto const ids =
        ok(R"({"event":"notice:x","target":{"socket_ids":["c9","abc","c9"]},"data":{}})");
    BOOST_REQUIRE(ids.to);
    BOOST_TEST((ids.to->who == kind::clients));
    BOOST_TEST(ids.to->client_ids == (std::vector<std::string>{"abc", "c9"}));
    BOOST_TEST(ids.pub.topic.channel == "notice");
    auto const bare = ok(R"({"target":{"client_ids":["c1"]},"data":{}})");
    BOOST_REQUIRE(bare.to);
    BOOST_TEST(bare.pub.topic.channel == "system"); // no event, no channel
    // Refused, naming the target.
    for (
        auto const* body :
        {R"({"event":"x","target":{"socket_ids":"c1"},"data":1})",
         R"({"event":"x","target":{"socket_ids":[]},"data":1})",
         R"({"event":"x","target":{"socket_ids":[1]},"data":1})",
         R"({"event":"x","target":{"socket_ids":[""]},"data":1})",
         R"({"event":"system:x","target":{"organization_id":"a","department_id":"d"},"data":1})",
         R"({"event":"alert:triggered","target":{"socket_ids":["c1"]},"data":{"alert_id":"a"}})"}) {
        auto const f = fault(body);
        BOOST_TEST(f.names_field);
        BOOST_TEST(f.error.field == "target");
    }
    std::string many = R"({"event":"x","target":{"socket_ids":[)";
    for (std::size_t i = 0; i <= d::max_audience_clients; ++i)
        many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\"";
    many += "]},\"data\":1}";
    BOOST_TEST(fault(many).error.message.find("at most") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_audience_includes_connections_by_id_alias_and_organization) {
    d::audience everyone;
    BOOST_TEST(everyone.includes("c1", "", ""));
    d::audience org{d::audience::kind::organization, "acme", {}};
    BOOST_TEST(org.includes("c1", "", "acme"));
    BOOST_TEST(!org.includes("c1", "", "other"));
    BOOST_TEST(!org.includes("c1", "", ""));
    d::audience ids{d::audience::kind::clients, "", {"c1", "sid-7"}};
    BOOST_TEST(ids.includes("c1", "", "x"));
    BOOST_TEST(ids.includes("c2", "sid-7", "x")); // a Socket.IO client known by its polling id
    BOOST_TEST(!ids.includes("c2", "", "x"));
    d::audience fenced{d::audience::kind::clients, "acme", {"c1"}};
    BOOST_TEST(fenced.includes("c1", "", "acme"));
    BOOST_TEST(!fenced.includes("c1", "", "other")); // listed, but of another tenant
    BOOST_TEST(fenced.to_json().at("socket_ids").as_array().size() == 1u);
}

BOOST_AUTO_TEST_CASE(bad_bodies_are_refused_with_the_reason) {
    BOOST_TEST(fault("{").error.message.rfind("malformed JSON body", 0) == 0);
    BOOST_TEST(fault("[1]").error.message == "body must be a JSON object");
    BOOST_TEST(fault(R"({"channel":"kpi","data":1e400})").error.message ==
               "a number is out of range");
    BOOST_TEST(fault(R"({"channel":"kpi"})").error.message == "'data' is required");
    BOOST_TEST(fault(R"({"channel":"kpi","data":1,"priority":"extreme"})").error.message ==
               "priority is low, medium, high or urgent");
    BOOST_TEST(fault(R"({"channel":"kpi","data":1,"phase":"half"})").error.message ==
               "phase is \"kpis\" or \"complete\"");
    auto const f = fault(R"({"channel":"kpi","data":1,"requires_ack":"yes"})");
    BOOST_TEST(f.error.message == "'requires_ack' must be a boolean");
    BOOST_TEST(!f.names_field);
    auto const both = fault(R"({"channel":"kpi","data":1,"target":{"organization_id":"a"},
                               "scope":{"organization_id":"b"}})");
    BOOST_TEST(both.error.field == "target");
    BOOST_TEST(both.error.message == "give 'target' or 'scope', not both");
    BOOST_TEST(both.names_field);
    BOOST_TEST(
        ok(R"({"channel":"kpi","data":1,"scope":{"organization_id":"b"}})").pub.topic.scope.org ==
        "b");
    std::string deep(100, '[');
    deep += std::string(100, ']');
    BOOST_TEST(fault(R"({"channel":"kpi","data":)" + deep + "}")
                   .error.message.rfind("malformed JSON body", 0) == 0);
}

BOOST_AUTO_TEST_CASE(shortcut_with_seed_003_schema) {
    auto const r = ok(
        R"({"organization_id":"acme","department_id":"support","queue_name":"email","total_items":12,"avg_wait_time_minutes":3,"items_over_sla":1,"sla_compliance_percentage":90,"requires_ack":false})",
        "backlog");
    BOOST_TEST(r.pub.topic.key() == "backlog:org:acme:dept:support:queue:email");
    BOOST_TEST(r.pub.event == "backlog:update");
    BOOST_TEST(r.pub.data.as_object().contains("timestamp")); // the server's time
    BOOST_TEST(!r.pub.data.as_object().contains("requires_ack"));
    // A schema violation names the field.
    auto const f = fault(
        R"({"organization_id":"acme","total_items":"many","avg_wait_time_minutes":3,"items_over_sla":1,"sla_compliance_percentage":90})",
        "backlog");
    BOOST_TEST(f.names_field);
    BOOST_TEST(f.error.field == "total_items");
}

BOOST_AUTO_TEST_CASE(alerts_and_their_implied_status) {
    auto const r =
        ok(R"({"event":"alert:acknowledged","data":{"alert_id":"a1","acknowledged_by":"me"}})");
    BOOST_TEST(r.is_alert());
    BOOST_TEST(r.alert_update);
    BOOST_TEST(r.pub.data.at("status").as_string() == "acknowledged");
    auto const f =
        fault(R"({"event":"alert:resolved","data":{"alert_id":"a1","status":"acknowledged"}})");
    BOOST_TEST(f.error.field == "status");
    BOOST_TEST(fault(R"({"event":"alert:triggered","data":[1]})").error.message ==
               "the payload must be a JSON object");
    // The target's scope and the payload's must agree.
    auto const g = fault(
        R"({"event":"kpi:update","target":{"org":"acme"},"data":{"organization_id":"globex"}})");
    BOOST_TEST(g.error.field == "organization_id");
}

BOOST_AUTO_TEST_CASE(shared_rules_fill_the_scope_into_the_payload) {
    rtpush::publication p;
    p.topic = {"attendance", {"acme", "", ""}};
    p.data = boost::json::parse(
        R"({"scheduled_count":3,"present_count":2,"absent_count":1,"late_count":0,"attendance_rate":66.7})");
    bool update = true;
    auto const f = d::apply_ingest_rules(p, "attendance", update, schemas);
    BOOST_TEST(!update);
    if (f)
        BOOST_FAIL(f->error.field + ": " + f->error.message);
    BOOST_TEST(p.data.at("organization_id").as_string() == "acme");
    BOOST_TEST(p.event == "attendance:update");
}

BOOST_AUTO_TEST_CASE(batch_bodies) {
    auto items = [](std::string_view body) {
        auto r = d::parse_batch(body, 32);
        if (auto* f = std::get_if<d::request_fault>(&r))
            BOOST_FAIL("refused: " + f->error.message);
        return std::get<boost::json::array>(std::move(r));
    };
    auto refused = [](std::string_view body) {
        auto r = d::parse_batch(body, 32);
        BOOST_REQUIRE(std::holds_alternative<d::request_fault>(r));
        return std::get<d::request_fault>(r).error.message;
    };
    BOOST_TEST(items(R"([{"a":1},2])").size() == 2u);
    BOOST_TEST(items(R"({"items":[{"a":1}]})").size() == 1u);
    BOOST_TEST(refused(R"({"a":1})").rfind("body must be a JSON array", 0) == 0);
    BOOST_TEST(refused(R"({"items":[1],"x":2})").rfind("body must be a JSON array", 0) == 0);
    BOOST_TEST(refused("[]") == "the batch is empty");
    BOOST_TEST(refused("[1,").rfind("malformed JSON body", 0) == 0);
    std::string big = "[";
    for (std::size_t i = 0; i <= d::max_batch_items; ++i)
        big += i ? ",1" : "1";
    big += "]";
    BOOST_TEST(refused(big).find("at most") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(batch_items_follow_the_single_route_rules) {
    // An item is read exactly as the body of POST /api/broadcast/backlog: the same schema.
    auto const good = boost::json::parse(
        R"({"organization_id":"acme","total_items":12,"avg_wait_time_minutes":3,"items_over_sla":1,"sla_compliance_percentage":90})");
    auto r = d::parse_broadcast_value("backlog", {}, good, schemas);
    BOOST_REQUIRE(std::holds_alternative<d::broadcast_request>(r));
    BOOST_TEST(std::get<d::broadcast_request>(r).pub.topic.key() == "backlog:org:acme");
    auto bad = good;
    bad.as_object()["items_over_sla"] = 99;
    auto f = d::parse_broadcast_value("backlog", {}, bad, schemas);
    BOOST_REQUIRE(std::holds_alternative<d::request_fault>(f));
    BOOST_TEST(std::get<d::request_fault>(f).error.field == "items_over_sla");
    auto g = d::parse_broadcast_value("backlog", {}, boost::json::value(3), schemas);
    BOOST_REQUIRE(std::holds_alternative<d::request_fault>(g));
    BOOST_TEST(std::get<d::request_fault>(g).error.message == "body must be a JSON object");
}

BOOST_AUTO_TEST_CASE(seed_003_ingest_paths) {
    BOOST_TEST(d::seed_ingest_channel("/api/schedulesbacklog/ingest") == "backlog");
    BOOST_TEST(d::seed_ingest_channel("/api/schedulesbacklog/batch-ingest") == "backlog");
    BOOST_TEST(d::seed_ingest_channel("/api/intraday/attendance/ingest") == "attendance");
    BOOST_TEST(d::seed_ingest_channel("/api/intraday/attendance/batch-ingest") == "attendance");
    BOOST_TEST(d::seed_ingest_channel("/api/broadcast").empty());
}

BOOST_AUTO_TEST_CASE(ingested_kpi_changes) {
    auto const prev = boost::json::parse(
        R"({"organization_id":"acme","health_score":80,"utilization":{"current_utilization":70.5,"target":80},"sla_risk":0.2,"changes":{"health_score_change":1}})");
    auto const cur = boost::json::parse(
        R"({"organization_id":"acme","health_score":85,"utilization":{"current_utilization":72.5,"target":80},"sla_risk":0.5,"headcount_gap":{"gap":-2}})");
    auto const c = d::ingest_changes(prev, cur);
    BOOST_TEST(c.at("health_score_change").as_int64() == 5);
    BOOST_TEST(c.at("utilization_change").as_double() == 2.0);
    BOOST_TEST(c.at("sla_risk_change").as_double() == 0.3, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(!c.contains("headcount_gap_change")); // nothing to compare with
    BOOST_TEST(!c.contains("changes_change"));
    BOOST_TEST(c.size() == 3u);
    BOOST_TEST(d::ingest_changes(nullptr, cur).empty()); // the first value of a topic
}

BOOST_AUTO_TEST_CASE(backlog_trend_from_the_previous_snapshot) {
    auto const b = [](int total) {
        return boost::json::value{{"total_items", total}};
    };
    BOOST_TEST(d::backlog_trend(nullptr, b(10)) == "stable"); // the first one
    BOOST_TEST(d::backlog_trend(b(10), b(12)) == "growing");
    BOOST_TEST(d::backlog_trend(b(10), b(9)) == "decreasing");
    BOOST_TEST(d::backlog_trend(b(10), b(10)) == "stable");
    // Within 5% of a large count: stable.
    BOOST_TEST(d::backlog_trend(b(1000), b(1040)) == "stable");
    BOOST_TEST(d::backlog_trend(b(1000), b(1050)) == "growing");
    BOOST_TEST(d::backlog_trend(b(1000), b(950)) == "decreasing");
    // Derived only when the producer left it out.
    boost::json::value given{{"total_items", 20}, {"backlog_trend", "stable"}};
    d::derive_ingest_fields("backlog", b(10), given);
    BOOST_TEST(given.at("backlog_trend").as_string() == "stable");
    boost::json::value missing{{"total_items", 20}};
    d::derive_ingest_fields("backlog", b(10), missing);
    BOOST_TEST(missing.at("backlog_trend").as_string() == "growing");
    BOOST_TEST(!missing.as_object().contains("changes")); // a KPI's field only
}

BOOST_AUTO_TEST_SUITE_END()
