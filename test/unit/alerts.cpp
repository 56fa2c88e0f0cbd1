// The alert lifecycle state machine.
#include <rtpush/alerts.hpp>

#include <boost/test/unit_test.hpp>

#include <ostream>

namespace rtpush {
// Boost.Test prints what it checks.
inline std::ostream& boost_test_print_type(std::ostream& os, const alert_result& r) {
    return os << (r ? "ok " + r.event : "refused: " + r.message);
}
} // namespace rtpush

using rtpush::alert_book;
using rtpush::alert_errc;
using rtpush::alert_status;

namespace {

boost::json::object payload(std::string_view json) {
    return boost::json::parse(json).as_object();
}

std::string str(const rtpush::alert_result& r, std::string_view key) {
    auto const* v = r.value->data.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

constexpr std::string_view t0 = "2026-01-31T10:00:00.000Z";
constexpr std::string_view t1 = "2026-01-31T10:01:00.000Z";
constexpr std::string_view t2 = "2026-01-31T10:02:00.000Z";

} // namespace

BOOST_AUTO_TEST_SUITE(alerts)

BOOST_AUTO_TEST_CASE(status_names) {
    alert_status s;
    BOOST_TEST(rtpush::parse_alert_status("acknowledged", s));
    BOOST_TEST((s == alert_status::acknowledged));
    BOOST_TEST(!rtpush::parse_alert_status("open", s));
    BOOST_TEST(rtpush::to_string(alert_status::resolved) == "resolved");
}

BOOST_AUTO_TEST_CASE(trigger_acknowledge_resolve) {
    alert_book b;
    auto r =
        b.trigger(payload(R"({"organization_id":"acme","severity":"high","message":"m"})"), t0);
    BOOST_REQUIRE(r);
    BOOST_TEST(r.event == "alert:triggered");
    BOOST_TEST(r.value->id == "al-1");
    BOOST_TEST(str(r, "alert_id") == "al-1");
    BOOST_TEST(str(r, "status") == "pending");
    BOOST_TEST(str(r, "triggered_at") == t0);
    BOOST_TEST((r.value->scope() == rtpush::scope{"acme", "", ""}));

    auto a = b.acknowledge("al-1", "alice", t1);
    BOOST_REQUIRE(a);
    BOOST_TEST(a.event == "alert:acknowledged");
    BOOST_TEST(str(a, "status") == "acknowledged");
    BOOST_TEST(str(a, "acknowledged_by") == "alice");
    BOOST_TEST(str(a, "acknowledged_at") == t1);
    BOOST_TEST((b.find("al-1")->status == alert_status::acknowledged));

    auto z = b.resolve("al-1", "", t2);
    BOOST_REQUIRE(z);
    BOOST_TEST(z.event == "alert:resolved");
    BOOST_TEST(str(z, "status") == "resolved");
    BOOST_TEST(str(z, "resolved_at") == t2);
    BOOST_TEST(!z.value->data.contains("resolved_by")); // nobody named
    BOOST_TEST(str(z, "acknowledged_by") == "alice");   // history kept
}

BOOST_AUTO_TEST_CASE(illegal_transitions) {
    alert_book b;
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"x1","organization_id":"o"})"), t0));
    BOOST_REQUIRE(b.acknowledge("x1", "a", t1));
    auto twice = b.acknowledge("x1", "b", t1);
    BOOST_TEST((twice.ec == alert_errc::illegal_transition));
    BOOST_TEST(twice.message == "alert x1 is already acknowledged");
    BOOST_TEST(str(twice, "acknowledged_by") == "a"); // unchanged, and shown
    BOOST_REQUIRE(b.resolve("x1", "", t2));
    auto after = b.acknowledge("x1", "", t2);
    BOOST_TEST((after.ec == alert_errc::illegal_transition));
    BOOST_TEST(after.message == "alert x1 is resolved: it cannot be acknowledged");
    BOOST_TEST((b.resolve("x1", "", t2).ec == alert_errc::illegal_transition));
    BOOST_TEST((b.resolve("nope", "", t2).ec == alert_errc::not_found));
    BOOST_TEST(b.acknowledge("nope", "", t2).message == "no alert nope");

    // a pending alert may be resolved without an acknowledgement (a rule clearing it)
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"x2","organization_id":"o"})"), t0));
    BOOST_TEST(b.resolve("x2", "rule:r1", t1));
    // ids are not reused, even after resolution
    auto dup = b.trigger(payload(R"({"alert_id":"x2","organization_id":"o"})"), t0);
    BOOST_TEST((dup.ec == alert_errc::duplicate_id));
    BOOST_TEST(dup.message == "alert x2 exists (resolved)");
}

BOOST_AUTO_TEST_CASE(generated_ids_skip_taken_ones) {
    alert_book b;
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"al-2"})"), t0));
    BOOST_TEST(b.trigger(payload("{}"), t0).value->id == "al-1");
    BOOST_TEST(b.trigger(payload("{}"), t0).value->id == "al-3");
    // a given triggered_at is kept
    auto r = b.trigger(payload(R"({"triggered_at":"2026-01-01T00:00:00Z"})"), t1);
    BOOST_TEST(str(r, "triggered_at") == "2026-01-01T00:00:00Z");
}

BOOST_AUTO_TEST_CASE(apply_follows_the_payload_status) {
    alert_book b;
    auto r = b.apply(payload(R"({"alert_id":"s1","organization_id":"o","status":"pending"})"), t0);
    BOOST_TEST(r.event == "alert:triggered");
    r = b.apply(payload(R"({"alert_id":"s1","status":"acknowledged","acknowledged_by":"bob",
                            "acknowledged_at":"2026-01-31T10:05:00Z"})"),
                t1);
    BOOST_TEST(r.event == "alert:acknowledged");
    BOOST_TEST(str(r, "acknowledged_by") == "bob");
    BOOST_TEST(str(r, "acknowledged_at") == "2026-01-31T10:05:00Z");
    r = b.apply(payload(R"({"alert_id":"s1","status":"acknowledged"})"), t1);
    BOOST_TEST((r.ec == alert_errc::illegal_transition));
    r = b.apply(payload(R"({"alert_id":"s9","status":"resolved"})"), t1);
    BOOST_TEST((r.ec == alert_errc::not_found));
    r = b.apply(payload(R"({"status":"resolved"})"), t1);
    BOOST_TEST((r.ec == alert_errc::invalid));
    BOOST_TEST(r.field == "alert_id");
    r = b.apply(payload(R"({"status":"gone"})"), t1);
    BOOST_TEST(r.field == "status");
    r = b.apply(payload(R"({"alert_id":"s1","status":"resolved","resolved_by":"carol"})"), t2);
    BOOST_TEST(r.event == "alert:resolved");
    BOOST_TEST(str(r, "resolved_at") == t2);
}

BOOST_AUTO_TEST_CASE(listing_filters_newest_first) {
    alert_book b;
    b.trigger(payload(R"({"alert_id":"a","organization_id":"acme","rule_id":"r1"})"), t0);
    b.trigger(payload(R"({"alert_id":"b","organization_id":"acme","department_id":"support"})"),
              t0);
    b.trigger(payload(R"({"alert_id":"c","organization_id":"globex","rule_id":"r1"})"), t0);
    b.acknowledge("b", "", t1);
    b.resolve("c", "", t1);
    auto ids = [&](const rtpush::alert_filter& f) {
        std::string s;
        for (auto const* a : b.list(f))
            s += a->id;
        return s;
    };
    BOOST_TEST(ids({}) == "cba");
    rtpush::alert_filter f;
    f.status = alert_status::pending;
    BOOST_TEST(ids(f) == "a");
    f = {};
    f.active = true;
    BOOST_TEST(ids(f) == "ba");
    f = {};
    f.scope = {"acme", "", ""};
    BOOST_TEST(ids(f) == "ba"); // the org and its department
    f.scope = {"acme", "support", ""};
    BOOST_TEST(ids(f) == "b");
    f = {};
    f.rule_id = "r1";
    BOOST_TEST(ids(f) == "ca");
}

BOOST_AUTO_TEST_CASE(bounded_by_evicting_resolved_alerts) {
    alert_book b(3);
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"a"})"), t0));
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"b"})"), t0));
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"c"})"), t0));
    auto full = b.trigger(payload(R"({"alert_id":"d"})"), t0);
    BOOST_TEST((full.ec == alert_errc::full));
    BOOST_TEST(b.size() == 3u);
    b.resolve("b", "", t1);
    BOOST_REQUIRE(b.trigger(payload(R"({"alert_id":"d"})"), t0)); // b made room
    BOOST_TEST(!b.find("b"));
    BOOST_TEST(b.find("a"));
    BOOST_TEST(b.size() == 3u);
}

BOOST_AUTO_TEST_CASE(pending_alerts_escalate_until_critical) {
    alert_book book;
    book.escalate_after(std::chrono::seconds(60));
    std::int64_t const start = 1'000'000;
    auto const a = book.trigger(payload(R"({"organization_id":"acme","severity":"medium",
                                            "message":"m"})"),
                                t0, start);
    auto const b = book.trigger(payload(R"({"organization_id":"acme","severity":"low",
                                            "message":"m","escalate_after":10})"),
                                t0, start);
    auto const c = book.trigger(payload(R"({"organization_id":"acme","severity":"low",
                                            "message":"m"})"),
                                t0, start);
    auto const d = book.trigger(payload(R"({"organization_id":"acme","severity":"critical",
                                            "message":"m"})"),
                                t0, start);
    auto const e = book.trigger(payload(R"({"organization_id":"acme","severity":"high",
                                            "message":"m","escalate_after":0})"),
                                t0, start);
    BOOST_TEST(book.acknowledge(c.value->id, "ann", t0));
    BOOST_TEST(book.escalate(start + 9'999, t0).empty());
    // b's own 10 s
    auto r = book.escalate(start + 10'000, "2026-01-31T10:00:10.000Z");
    BOOST_TEST_REQUIRE(r.size() == 1u);
    BOOST_TEST(r[0].event == "alert:escalated");
    BOOST_TEST(r[0].value->id == b.value->id);
    BOOST_TEST(str(r[0], "severity") == "medium");
    BOOST_TEST(r[0].value->data.at("escalation_level").as_int64() == 1);
    BOOST_TEST(str(r[0], "escalated_at") == "2026-01-31T10:00:10.000Z");
    BOOST_TEST(str(r[0], "status") == "pending");
    // at 60 s: a (the book's 60 s) and b again (10 s after its last step, long due); oldest first
    r = book.escalate(start + 60'000, t0);
    BOOST_TEST_REQUIRE(r.size() == 2u);
    BOOST_TEST(r[0].value->id == a.value->id);
    BOOST_TEST(str(r[0], "severity") == "high");
    BOOST_TEST(r[1].value->id == b.value->id);
    BOOST_TEST(str(r[1], "severity") == "high");
    BOOST_TEST(r[1].value->data.at("escalation_level").as_int64() == 2);
    r = book.escalate(start + 70'000, t0); // b: critical, then no more
    BOOST_TEST_REQUIRE(r.size() == 1u);
    BOOST_TEST(str(r[0], "severity") == "critical");
    BOOST_TEST(book.escalate(start + 1'000'000, t0).size() == 1u); // a: high -> critical
    BOOST_TEST(book.escalate(start + 9'000'000, t0).empty());
    // never: the acknowledged one, the critical one, the one whose escalate_after is 0
    for (auto const* id : {&c.value->id, &d.value->id, &e.value->id})
        BOOST_TEST(!book.find(*id)->data.contains("escalation_level"));
    // acknowledging stops it
    auto const f = book.trigger(payload(R"({"organization_id":"acme","severity":"low",
                                            "message":"m"})"),
                                t0, start);
    BOOST_TEST(book.escalate(start + 60'000, t0).size() == 1u);
    BOOST_TEST(book.acknowledge(f.value->id, "", t0));
    BOOST_TEST(book.escalate(start + 600'000, t0).empty());
}

BOOST_AUTO_TEST_CASE(shared_books_converge_on_the_cluster_order) {
    // Two nodes' books; `deliver` is the engine handing a step to every node in one order.
    alert_book a, b;
    a.id_prefix("al-a-");
    b.id_prefix("al-b-");
    a.shared(true);
    b.shared(true);
    std::uint64_t seq = 0; // the steps' order on the alerts' topic
    auto deliver = [&](const rtpush::alert_result& r) {
        BOOST_TEST_REQUIRE(static_cast<bool>(r));
        ++seq;
        a.merge(r.value->data, seq, 1000);
        b.merge(r.value->data, seq, 1000);
    };
    auto const x = a.trigger(payload(R"({"organization_id":"o","severity":"low"})"), t0, 0);
    BOOST_TEST(x.value->id == "al-a-1");
    BOOST_TEST(b.find("al-a-1") == nullptr); // not ordered yet
    deliver(x);
    BOOST_TEST_REQUIRE(b.find("al-a-1") != nullptr);
    BOOST_TEST((b.find("al-a-1")->status == alert_status::pending));
    BOOST_TEST(b.trigger(payload(R"({"severity":"low"})"), t0).value->id == "al-b-1");

    // Concurrent acknowledgements: each node took its own; the one ordered first wins on both.
    auto const by_ann = a.acknowledge("al-a-1", "ann", t0);
    auto const by_bob = b.acknowledge("al-a-1", "bob", t0);
    deliver(by_ann);
    deliver(by_bob);
    for (auto* book : {&a, &b}) {
        auto const* al = book->find("al-a-1");
        BOOST_TEST((al->status == alert_status::acknowledged));
        BOOST_TEST(al->data.at("acknowledged_by").as_string() == "ann");
    }
    // A step further wins whatever the order; a step behind changes nothing.
    auto const resolved = b.resolve("al-a-1", "bob", t0);
    auto const late_ack = a.acknowledge("al-a-1", "eve", t0); // refused: already acknowledged
    BOOST_TEST(!late_ack);
    deliver(resolved);
    BOOST_TEST(!a.merge(by_ann.value->data, 2, 1000));       // a replay of a step folded already
    BOOST_TEST(!a.merge(by_ann.value->data, seq + 1, 1000)); // a step behind changes nothing
    BOOST_TEST((a.find("al-a-1")->status == alert_status::resolved));
    BOOST_TEST((b.find("al-a-1")->status == alert_status::resolved));

    // Escalation against an acknowledgement ordered before it: the acknowledgement stands.
    a.escalate_after(std::chrono::seconds(1)); // every node has the same configuration
    b.escalate_after(std::chrono::seconds(1));
    auto const y = a.trigger(payload(R"({"organization_id":"o","severity":"low"})"), t0, 0);
    deliver(y);
    BOOST_TEST(b.find(y.value->id)->escalation_due_ms == 2000); // merged at 1000, after 1 s
    auto const acked = b.acknowledge(y.value->id, "ann", t0);
    auto const escalated = a.escalate(5000, t0);
    BOOST_TEST_REQUIRE(escalated.size() == 1u);
    deliver(acked);
    deliver(escalated[0]);
    for (auto* book : {&a, &b}) {
        auto const* al = book->find(y.value->id);
        BOOST_TEST((al->status == alert_status::acknowledged));
        BOOST_TEST(al->escalation_due_ms == 0);
    }
    // A step that goes further keeps what it did not see: the escalation (b acknowledged at
    // level 0 while a escalated to level 1) and who acknowledged (a resolve that missed it).
    auto const w = a.trigger(payload(R"({"organization_id":"o","severity":"low"})"), t0, 0);
    deliver(w);
    auto const ack_w = b.acknowledge(w.value->id, "ann", t0);
    auto const esc_w = a.escalate(10000, t0);
    BOOST_TEST_REQUIRE(esc_w.size() == 1u);
    auto const res_w = a.resolve(w.value->id, "bob", t0); // a never saw ann's acknowledgement
    deliver(esc_w[0]);
    deliver(ack_w);
    deliver(res_w);
    for (auto* book : {&a, &b}) {
        auto const& d = book->find(w.value->id)->data;
        BOOST_TEST(d.at("status").as_string() == "resolved");
        BOOST_TEST(d.at("severity").as_string() == "medium");
        BOOST_TEST(d.at("escalation_level").as_int64() == 1);
        BOOST_TEST(d.at("acknowledged_by").as_string() == "ann");
        BOOST_TEST(d.at("resolved_by").as_string() == "bob");
    }
    // A node that restarts under the same name goes on after the ids the cluster knows.
    alert_book again;
    again.id_prefix("al-a-");
    again.shared(true);
    again.merge(x.value->data);
    again.merge(w.value->data);
    BOOST_TEST(again.trigger(payload(R"({"severity":"low"})"), t0).value->id == "al-a-4");
    // What is not an alert is left alone.
    BOOST_TEST(!a.merge(payload(R"({"status":"pending"})")));
    BOOST_TEST(!a.merge(payload(R"({"alert_id":"z","status":"lost"})")));
    BOOST_TEST(a.find("z") == nullptr);
}

BOOST_AUTO_TEST_CASE(three_books_converge_whatever_each_saw) {
    // a escalates; b resolves without having seen the escalation; c resolves after it, before
    // b's resolve reaches it. Every book ends with the same alert.
    alert_book a, b, c;
    for (auto* book : {&a, &b, &c}) {
        book->shared(true);
        book->escalate_after(std::chrono::seconds(1));
    }
    std::uint64_t seq = 0;
    auto deliver = [&](const rtpush::alert_result& r) {
        BOOST_TEST_REQUIRE(static_cast<bool>(r));
        ++seq;
        for (auto* book : {&a, &b, &c})
            book->merge(r.value->data, seq, 1000);
    };
    auto const t = a.trigger(payload(R"({"organization_id":"o","severity":"low"})"), t0, 0);
    deliver(t);
    auto const id = t.value->id;
    auto const e1 = a.escalate(5000, t0);
    BOOST_TEST_REQUIRE(e1.size() == 1u);
    auto const rb = b.resolve(id, "bob", t0);
    deliver(e1[0]);
    auto const rc = c.resolve(id, "carl", t0);
    deliver(rb);
    deliver(rc);
    for (auto* book : {&b, &c}) {
        BOOST_TEST(book->find(id)->data == a.find(id)->data);
        BOOST_TEST((book->find(id)->status == a.find(id)->status));
    }
    auto const& d = a.find(id)->data;
    BOOST_TEST(d.at("resolved_by").as_string() == "bob"); // the first resolve in the order
    BOOST_TEST(d.at("severity").as_string() == "medium"); // the escalation stays
    BOOST_TEST(d.at("escalation_level").as_int64() == 1);
}

BOOST_AUTO_TEST_CASE(a_step_that_was_not_announced_is_undone) {
    alert_book book;
    book.escalate_after(std::chrono::seconds(1));
    auto const t = book.trigger(payload(R"({"organization_id":"o","severity":"low"})"), t0, 0);
    auto const ack = book.acknowledge(t.value->id, "ann", t0);
    book.undo(ack);
    BOOST_TEST((book.find(t.value->id)->status == alert_status::pending));
    BOOST_TEST(!book.find(t.value->id)->data.contains("acknowledged_by"));
    BOOST_TEST(book.find(t.value->id)->escalation_due_ms == 1000); // escalation goes on
    auto const esc = book.escalate(2000, t0);
    BOOST_TEST_REQUIRE(esc.size() == 1u);
    book.undo(esc[0]);
    BOOST_TEST(book.find(t.value->id)->data.at("severity").as_string() == "low");
    BOOST_TEST(book.escalate(2000, t0).size() == 1u); // retried at the next tick
    book.undo(t);
    BOOST_TEST(book.find(t.value->id) == nullptr);
    BOOST_TEST(book.list().empty());
}

BOOST_AUTO_TEST_CASE(restored_alerts_keep_their_order_and_the_ids_go_on) {
    alert_book old(10);
    for (int i = 0; i < 3; ++i)
        old.trigger(payload(R"({"organization_id":"acme","severity":"low","message":"m"})"), t0);
    BOOST_TEST(old.resolve("al-1", "", t0));
    std::vector<rtpush::alert> saved;
    for (auto const* a : old.list())
        saved.push_back(*a);
    alert_book book(2); // smaller: the newest two are taken back
    book.restore(saved);
    BOOST_TEST(book.size() == 2u);
    BOOST_TEST(!book.find("al-1"));
    auto const listed = book.list();
    BOOST_TEST_REQUIRE(listed.size() == 2u);
    BOOST_TEST(listed[0]->id == "al-3"); // newest first, as before
    // Full, none resolved: refused; once one is resolved it makes room and is named.
    BOOST_TEST((book.trigger(payload(R"({"organization_id":"acme","severity":"low",
                                         "message":"m"})"),
                             t0)
                    .ec == alert_errc::full));
    BOOST_TEST(book.resolve("al-2", "", t0));
    auto const r = book.trigger(payload(R"({"organization_id":"acme","severity":"low",
                                            "message":"m"})"),
                                t0);
    BOOST_TEST(r.value->id == "al-4");
    BOOST_TEST(r.evicted == "al-2");
}

BOOST_AUTO_TEST_SUITE_END()
