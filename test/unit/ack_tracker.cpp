// Acknowledged delivery bookkeeping (detail/ack_tracker.hpp).
#include <rtpush/detail/ack_tracker.hpp>

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;
using rtpush::detail::ack_tracker;
using rtpush::detail::make_shared_frame;
using result = ack_tracker::ack_result;

namespace {
const ack_tracker::clock::time_point t0{std::chrono::hours(1)};
rtpush::ack_config quick() {
    return {.resend_after = 100ms,
            .factor = 2.0,
            .max_resend_delay = 400ms,
            .max_attempts = 4,
            .ttl = 10s,
            .max_broadcasts = 100,
            .max_pending_per_client = 10};
}
} // namespace

BOOST_AUTO_TEST_SUITE(ack_tracker_suite)

BOOST_AUTO_TEST_CASE(ids_are_unique_and_prefixed) {
    ack_tracker t(quick(), "e1-");
    auto a = t.create("kpi", t0);
    auto b = t.create("kpi", t0);
    BOOST_TEST(a != b);
    BOOST_TEST(a.rfind("e1-", 0) == 0u);
    BOOST_TEST(t.broadcasts() == 2u);
}

BOOST_AUTO_TEST_CASE(adopted_broadcast_of_another_node) {
    ack_tracker t(quick(), "local-");
    auto f = make_shared_frame("x");
    BOOST_TEST(!t.delivered("other-3", "client:a", f, t0)); // unknown until adopted
    BOOST_TEST(t.adopt("other-3", "kpi:org:a", t0));
    BOOST_TEST(!t.adopt("other-3", "kpi:org:a", t0)); // once
    BOOST_TEST(t.delivered("other-3", "client:a", f, t0));
    BOOST_TEST((t.ack("other-3", "client:a") == result::acked));
    auto st = t.lookup("other-3");
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(st->topic == "kpi:org:a");
    BOOST_TEST(st->targeted == 1u);
    BOOST_TEST(st->acked == 1u);
}

BOOST_AUTO_TEST_CASE(delivery_ack_and_status) {
    ack_tracker t(quick());
    auto f = make_shared_frame("x");
    auto id = t.create("kpi:org:a", t0);
    BOOST_TEST(t.delivered(id, "client:a", f, t0));
    BOOST_TEST(t.delivered(id, "client:b", f, t0));
    BOOST_TEST(t.delivered(id, "client:a", f, t0)); // again: still one target
    BOOST_TEST(!t.delivered("nope", "client:a", f, t0));
    auto s = t.lookup(id);
    BOOST_REQUIRE(s);
    BOOST_TEST(s->topic == "kpi:org:a");
    BOOST_TEST(s->targeted == 2u);
    BOOST_TEST(s->acked == 0u);
    BOOST_TEST(s->not_acked == (std::vector<std::string>{"client:a", "client:b"}),
               boost::test_tools::per_element());

    BOOST_TEST((t.ack(id, "client:a") == result::acked));
    BOOST_TEST((t.ack(id, "client:a") == result::duplicate));
    BOOST_TEST((t.ack(id, "client:c") == result::not_targeted));
    BOOST_TEST((t.ack("unknown", "client:a") == result::unknown_id));
    s = t.lookup(id);
    BOOST_TEST(s->acked == 1u);
    BOOST_TEST(s->not_acked == (std::vector<std::string>{"client:b"}),
               boost::test_tools::per_element());
    BOOST_TEST(t.pending("client:a") == 0u);
    BOOST_TEST(t.pending("client:b") == 1u);
    BOOST_TEST(!t.lookup("unknown"));
}

BOOST_AUTO_TEST_CASE(resends_back_off_and_give_up_after_max_attempts) {
    ack_tracker t(quick());
    auto f = make_shared_frame("x");
    auto id = t.create("kpi", t0);
    t.attach("client:a", 0, 7, t0);
    t.delivered(id, "client:a", f, t0); // attempt 1
    // delays after attempts 1, 2, 3: 100, 200, 400 ms; then given up at the 4th due time
    std::vector<long> sent_at;
    for (auto ms = 0; ms <= 2000; ms += 10) {
        auto const now = t0 + std::chrono::milliseconds(ms);
        for (auto const& r : t.due(0, now)) {
            BOOST_TEST(r.session == 7u);
            BOOST_TEST(r.frame == f);
            sent_at.push_back(ms);
        }
    }
    BOOST_TEST(sent_at == (std::vector<long>{100, 300, 700}), boost::test_tools::per_element());
    auto s = t.lookup(id);
    BOOST_TEST(s->given_up == 1u);
    BOOST_TEST(s->not_acked.size() == 1u);
    BOOST_TEST(t.pending("client:a") == 0u);
    // another shard's clients are not this shard's business
    auto id2 = t.create("kpi", t0);
    t.delivered(id2, "client:a", f, t0);
    BOOST_TEST(t.due(1, t0 + 1s).empty());
    BOOST_TEST(t.due(0, t0 + 1s).size() == 1u);
    // a late ack still counts
    BOOST_TEST((t.ack(id, "client:a") == result::acked));
    BOOST_TEST(t.lookup(id)->given_up == 0u);
    BOOST_TEST(t.lookup(id)->acked == 1u);
}

BOOST_AUTO_TEST_CASE(ack_stops_resending) {
    ack_tracker t(quick());
    auto f = make_shared_frame("x");
    auto id = t.create("kpi", t0);
    t.attach("client:a", 0, 1, t0);
    t.delivered(id, "client:a", f, t0);
    BOOST_TEST(t.due(0, t0 + 150ms).size() == 1u);
    BOOST_TEST((t.ack(id, "client:a") == result::acked));
    BOOST_TEST(t.due(0, t0 + 5s).empty());
}

BOOST_AUTO_TEST_CASE(offline_client_gets_pending_on_attach) {
    ack_tracker t(quick());
    auto f1 = make_shared_frame("1");
    auto f2 = make_shared_frame("2");
    auto a = t.create("kpi", t0);
    auto b = t.create("kpi", t0);
    BOOST_TEST(t.attach("user:u", 0, 1, t0).empty());
    t.delivered(a, "user:u", f1, t0);
    t.delivered(b, "user:u", f2, t0);
    t.detach("user:u", 2); // another session: no effect
    BOOST_TEST(t.due(0, t0 + 150ms).size() == 2u);
    t.detach("user:u", 1);
    BOOST_TEST(t.due(0, t0 + 5s).empty()); // offline: nothing to send to
    t.ack(a, "user:u");
    auto again = t.attach("user:u", 1, 9, t0 + 6s);
    BOOST_TEST(again.size() == 1u);
    BOOST_TEST(again.front() == f2);
    // attaching the same session again sends nothing twice
    BOOST_TEST(t.attach("user:u", 1, 9, t0 + 6s).empty());
    // and the schedule goes on from the reconnect on the new shard
    BOOST_TEST(t.due(1, t0 + 6s + 50ms).empty());
    BOOST_TEST(t.due(1, t0 + 7s).size() == 1u);
}

BOOST_AUTO_TEST_CASE(memory_is_bounded) {
    auto cfg = quick();
    cfg.max_broadcasts = 3;
    cfg.max_pending_per_client = 2;
    ack_tracker t(cfg);
    auto f = make_shared_frame("x");
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(t.create("kpi", t0));
        t.delivered(ids.back(), "client:a", f, t0);
    }
    BOOST_TEST(t.broadcasts() == 3u);
    BOOST_TEST(!t.lookup(ids[0]));
    BOOST_TEST(!t.lookup(ids[1]));
    BOOST_TEST(t.pending("client:a") == 2u);
    BOOST_TEST(t.lookup(ids[2])->given_up == 1u); // pushed out by the per-client bound
    BOOST_TEST((t.ack(ids[0], "client:a") == result::unknown_id));
}

BOOST_AUTO_TEST_CASE(total_tracked_pairs_are_bounded) {
    auto cfg = quick();
    cfg.max_tracked = 4;
    ack_tracker t(cfg);
    auto f = make_shared_frame("x");
    auto a = t.create("kpi", t0);
    BOOST_TEST(t.delivered(a, "client:1", f, t0));
    BOOST_TEST(t.delivered(a, "client:2", f, t0));
    auto b = t.create("kpi", t0);
    BOOST_TEST(t.delivered(b, "client:1", f, t0));
    BOOST_TEST(t.delivered(b, "client:2", f, t0));
    BOOST_TEST(t.tracked() == 4u);
    // a fifth pair: the oldest broadcast goes
    BOOST_TEST(t.delivered(b, "client:3", f, t0));
    BOOST_TEST(!t.lookup(a));
    BOOST_TEST(t.tracked() == 3u);
    BOOST_TEST(t.pending("client:1") == 1u);
    // one broadcast wider than the bound: tracked for the first clients only
    BOOST_TEST(t.delivered(b, "client:4", f, t0));
    BOOST_TEST(!t.delivered(b, "client:5", f, t0));
    BOOST_TEST(t.lookup(b)->targeted == 4u);
    BOOST_TEST(t.tracked() == 4u);
}

BOOST_AUTO_TEST_CASE(broadcasts_expire_after_ttl) {
    ack_tracker t(quick());
    auto f = make_shared_frame("x");
    auto a = t.create("kpi", t0);
    auto b = t.create("kpi", t0 + 5s);
    t.delivered(a, "client:a", f, t0);
    t.delivered(b, "client:a", f, t0 + 5s);
    t.expire(t0 + 10s);
    BOOST_TEST(!t.lookup(a));
    BOOST_TEST(t.lookup(b).has_value());
    BOOST_TEST(t.pending("client:a") == 1u);
    t.expire(t0 + 16s);
    BOOST_TEST(t.broadcasts() == 0u);
    BOOST_TEST(t.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(cancel_forgets_an_unpublished_id) {
    ack_tracker t(quick());
    auto a = t.create("kpi", t0);
    auto b = t.create("kpi", t0);
    t.cancel(a);
    BOOST_TEST(!t.lookup(a));
    BOOST_TEST(t.lookup(b).has_value());
    t.expire(t0 + 11s);
    BOOST_TEST(t.broadcasts() == 0u);
}

BOOST_AUTO_TEST_CASE(delay_schedule) {
    ack_tracker t(quick());
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(t.delay(1)).count() == 100);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(t.delay(2)).count() == 200);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(t.delay(3)).count() == 400);
    BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(t.delay(9)).count() == 400);
}

BOOST_AUTO_TEST_SUITE_END()
