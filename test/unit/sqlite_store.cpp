#include <rtpush/detail/ack_tracker.hpp>
#include <rtpush/sqlite_store.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// A fresh directory per test, removed after it.
struct temp_dir {
    fs::path path;
    temp_dir() {
        path = fs::temp_directory_path() /
               ("rtpush-store-" + std::to_string(::getpid()) + "-" + std::to_string(next()));
        fs::remove_all(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    static int next() {
        static std::atomic<int> n{0};
        return ++n;
    }
};

rtpush::publication pub(rtpush::topic t, int v, std::string phase = {}) {
    rtpush::publication p;
    p.topic = std::move(t);
    p.data = v;
    p.phase = std::move(phase);
    return p;
}

rtpush::sqlite_store_config config(const temp_dir& d, std::size_t history = 100) {
    rtpush::sqlite_store_config c;
    c.data_dir = d.path.string();
    c.history.history_size = history;
    c.sync_full = false; // the tests are about what is written, not about power cuts
    return c;
}

} // namespace

BOOST_AUTO_TEST_SUITE(sqlite_store)

BOOST_AUTO_TEST_CASE(a_restart_keeps_values_history_and_epoch) {
    temp_dir dir;
    rtpush::topic const t{"kpi", {"o1", "", ""}};
    std::string epoch;
    std::vector<std::pair<boost::system::error_code, std::uint64_t>> done;
    std::mutex m;
    {
        rtpush::hub h;
        rtpush::sqlite_store store(h, config(dir));
        h.set_engine(&store);
        epoch = h.epoch();
        for (int i = 1; i <= 5; ++i) {
            auto const r = h.publish(pub(t, i, i == 5 ? "kpis" : ""),
                                     [&](boost::system::error_code ec, std::uint64_t seq) {
                                         std::lock_guard lock(m);
                                         done.emplace_back(ec, seq);
                                     });
            BOOST_TEST(r.pending);
            BOOST_TEST(h.head(t.key()) == static_cast<std::uint64_t>(i)); // delivered at once
        }
        store.flush();
        std::lock_guard lock(m);
        BOOST_TEST_REQUIRE(done.size() == 5u);
        for (std::size_t i = 0; i < done.size(); ++i) {
            BOOST_TEST(!done[i].first);
            BOOST_TEST(done[i].second == i + 1);
        }
        h.set_engine(nullptr);
    }
    rtpush::hub h2;
    BOOST_TEST(h2.epoch() != epoch);
    rtpush::sqlite_store store2(h2, config(dir));
    BOOST_TEST(h2.epoch() == epoch); // offsets of clients stay valid
    BOOST_TEST(h2.head(t.key()) == 5u);
    BOOST_TEST(h2.history_size(t) == 5u);
    auto const snap = h2.snapshot(t);
    BOOST_TEST_REQUIRE(snap.size() == 2u); // the kpis phase and the unphased value
    BOOST_TEST(snap[0].at("phase").as_string() == "kpis");
    BOOST_TEST(snap[0].at("data").as_int64() == 5);
    BOOST_TEST(snap[1].at("data").as_int64() == 4);
    // A client that had seq 2 recovers 3..5.
    rtpush::detail::recover_position pos;
    pos.epoch = epoch;
    pos.offsets[t.key()] = 2;
    std::vector<rtpush::detail::frame_ptr> frames;
    auto const r = h2.subscribe_frames(t, pos, frames);
    BOOST_TEST(r.recovered());
    BOOST_TEST(frames.size() == 3u);
}

BOOST_AUTO_TEST_CASE(after_a_crash_seqs_skip_what_may_have_been_delivered) {
    temp_dir dir;
    rtpush::topic const t{"kpi", {}}, fresh{"kpi", {"new", "", ""}};
    std::uint64_t const gap = 2 * 10 + 1; // two queues of max_pending, plus one
    auto cfg = config(dir);
    cfg.max_pending = 10;
    // The child commits seq 1 and 2, then dies without stopping the store.
    pid_t const child = ::fork();
    if (child == 0) {
        rtpush::hub h;
        rtpush::sqlite_store store(h, cfg);
        h.set_engine(&store);
        h.publish(pub(t, 1));
        h.publish(pub(t, 2));
        store.flush();
        ::_exit(0);
    }
    int status = 0;
    BOOST_TEST_REQUIRE(::waitpid(child, &status, 0) == child);
    BOOST_TEST_REQUIRE(WIFEXITED(status));
    {
        rtpush::hub h;
        rtpush::sqlite_store store(h, cfg);
        h.set_engine(&store);
        BOOST_TEST(h.head(t.key()) == 2u);
        h.publish(pub(t, 3));
        BOOST_TEST(h.head(t.key()) == 2 + 1 + gap); // a client that saw a lost 3 is not fooled
        h.publish(pub(t, 4));
        BOOST_TEST(h.head(t.key()) == 2 + 2 + gap); // once per topic
        h.publish(pub(fresh, 1));
        BOOST_TEST(h.head(fresh.key()) == 1 + gap); // a topic the disk never saw, too
        // Recovering across the skip is refused (history_lost), never a silent gap.
        rtpush::detail::recover_position pos;
        pos.epoch = h.epoch();
        pos.offsets[t.key()] = 2;
        std::vector<rtpush::detail::frame_ptr> frames;
        BOOST_TEST(!h.subscribe_frames(t, pos, frames).recovered());
        h.set_engine(nullptr);
    }
    // That run stopped cleanly: the next one continues at head + 1.
    rtpush::hub h;
    rtpush::sqlite_store store(h, cfg);
    h.set_engine(&store);
    h.publish(pub(t, 5));
    BOOST_TEST(h.head(t.key()) == 2 + 3 + gap);
    h.set_engine(nullptr);
}

BOOST_AUTO_TEST_CASE(stopping_commits_the_last_batch) {
    temp_dir dir;
    rtpush::topic const t{"kpi", {}};
    {
        rtpush::hub h;
        auto cfg = config(dir);
        cfg.commit_delay = std::chrono::milliseconds(200); // still waiting when stopped
        rtpush::sqlite_store store(h, cfg);
        h.set_engine(&store);
        h.publish(pub(t, 1));
        h.set_engine(nullptr);
    }
    rtpush::hub h2;
    rtpush::sqlite_store store2(h2, config(dir));
    BOOST_TEST(h2.head(t.key()) == 1u);
}

BOOST_AUTO_TEST_CASE(alerts_are_kept_with_their_state) {
    temp_dir dir;
    {
        rtpush::hub h;
        rtpush::sqlite_store store(h, config(dir));
        BOOST_TEST(store.saved_alerts().empty());
        rtpush::alert_book book(2);
        book.escalate_after(std::chrono::seconds(60));
        auto const t0 = "2026-01-31T10:00:00.000Z";
        auto const a = book.trigger(boost::json::parse(R"({"organization_id":"acme",
                                        "severity":"low","message":"a"})")
                                        .as_object(),
                                    t0, 1000);
        store.save_alert(*a.value);
        auto const b = book.acknowledge(a.value->id, "ann", t0);
        store.save_alert(*b.value);
        auto const c = book.trigger(boost::json::parse(R"({"alert_id":"x-1","organization_id":
                                        "acme","severity":"high","message":"c"})")
                                        .as_object(),
                                    t0, 1000);
        store.save_alert(*c.value);
        store.save_alert(*book.resolve("x-1", "", t0).value);
        store.forget_alert("x-1");
        store.flush();
    }
    rtpush::hub h2;
    rtpush::sqlite_store store2(h2, config(dir));
    auto const saved = store2.saved_alerts();
    BOOST_TEST_REQUIRE(saved.size() == 1u); // x-1 was forgotten
    BOOST_TEST(saved[0].id == "al-1");
    BOOST_TEST(saved[0].number == 1u);
    BOOST_TEST((saved[0].status == rtpush::alert_status::acknowledged));
    BOOST_TEST(saved[0].data.at("acknowledged_by").as_string() == "ann");
    BOOST_TEST(saved[0].escalate_after_ms == 60000);
    BOOST_TEST(saved[0].escalation_due_ms == 0); // acknowledged: no more escalation
    // The book goes on after them: numbers and generated ids are never given twice.
    rtpush::alert_book book2;
    book2.restore(saved);
    auto const d = book2.trigger(
        boost::json::parse(R"({"organization_id":"acme","severity":"low","message":"d"})")
            .as_object(),
        "2026-01-31T11:00:00.000Z");
    BOOST_TEST(d.value->id == "al-2");
    BOOST_TEST(d.value->number == 2u);
    BOOST_TEST(static_cast<bool>(book2.resolve("al-1", "bob", "2026-01-31T11:00:00.000Z")));
}

BOOST_AUTO_TEST_CASE(pending_acks_are_kept_and_resent_after_a_restart) {
    using rtpush::detail::ack_tracker;
    temp_dir dir;
    auto const now = ack_tracker::clock::now();
    auto frame = [](std::string id, std::string text) {
        auto f = std::make_shared<rtpush::detail::outbound_frame>();
        f->bytes = rtpush::detail::make_frame(rtpush::detail::opcode::text, text);
        f->ack_id = std::move(id);
        f->topic = "alerts:o1";
        f->phase = 1;
        f->seq = 7;
        f->bulk = true;
        return rtpush::detail::frame_ptr(f);
    };
    std::string kept, cancelled, given_up;
    std::string const long_text(300, 'x'); // a frame header of 4 bytes
    {
        rtpush::hub h;
        rtpush::sqlite_store store(h, config(dir));
        BOOST_TEST(store.saved_acks().empty());
        ack_tracker t(rtpush::ack_config{.max_attempts = 2}, "e-a-");
        t.journal(&store);
        kept = t.create("alerts:o1", now);
        BOOST_TEST(t.delivered(kept, "client:a", frame(kept, long_text), now));
        BOOST_TEST(t.delivered(kept, "user:o1/bob", frame(kept, "{}"), now));
        BOOST_TEST(t.delivered(kept, "conn:3", frame(kept, "{}"), now)); // ends with its connection
        BOOST_TEST((t.ack(kept, "user:o1/bob") == ack_tracker::ack_result::acked));
        cancelled = t.create("alerts:o1", now);
        t.cancel(cancelled);
        given_up = t.create("alerts:o1", now);
        t.delivered(given_up, "client:z", frame(given_up, "{\"v\":2}"), now);
        t.attach("client:z", 0, 1, now); // its second attempt
        // Past max_attempts: given up, and kept so (client:a is offline: never given up).
        t.due(0, now + std::chrono::minutes(1)); // within the ttl
        store.flush();
    }
    rtpush::hub h2;
    rtpush::sqlite_store store2(h2, config(dir));
    auto saved = store2.saved_acks();
    BOOST_TEST_REQUIRE(saved.size() == 2u); // the cancelled one is forgotten
    BOOST_TEST(saved[0].id == kept);
    BOOST_TEST(saved[0].message == long_text);
    BOOST_TEST(saved[0].bulk);
    BOOST_TEST(saved[0].seq == 7u);
    BOOST_TEST(saved[0].targets.size() == 2u); // not conn:3
    BOOST_TEST(saved[1].id == given_up);

    ack_tracker t2(rtpush::ack_config{}, "e-b-");
    t2.restore(std::move(saved), now);
    auto const st = t2.lookup(kept);
    BOOST_TEST_REQUIRE(st.has_value());
    BOOST_TEST(st->targeted == 2u);
    BOOST_TEST(st->acked == 1u);
    BOOST_TEST(st->not_acked == std::vector<std::string>{"client:a"});
    BOOST_TEST(t2.lookup(given_up)->given_up == 1u);
    BOOST_TEST(!t2.lookup(cancelled).has_value());
    BOOST_TEST(!t2.known("client:z"));
    // The client comes back: it is sent what it has not acked, as it was sent before.
    BOOST_TEST(t2.known("client:a"));
    auto const missed = t2.attach("client:a", 0, 9, now, false);
    BOOST_TEST_REQUIRE(missed.size() == 1u);
    BOOST_TEST(rtpush::detail::frame_payload(missed[0]->bytes) == long_text);
    BOOST_TEST(missed[0]->ack_id == kept);
    BOOST_TEST(missed[0]->bulk);
    BOOST_TEST((t2.ack(kept, "client:a") == ack_tracker::ack_result::acked));
    BOOST_TEST(t2.attach("user:o1/bob", 0, 10, now, false).empty());
    // This run's ttl counts from when the broadcast was created, not from the restart.
    ack_tracker t3(rtpush::ack_config{.ttl = std::chrono::minutes(5)}, "e-c-");
    auto old = store2.saved_acks();
    old[0].created_ms -= 10 * 60 * 1000;
    t3.restore(std::move(old), now);
    BOOST_TEST(!t3.lookup(kept).has_value());
    BOOST_TEST(t3.lookup(given_up).has_value());
    // ... and so does its bound per client: beyond it the oldest is given up.
    ack_tracker t4(rtpush::ack_config{.max_pending_per_client = 1}, "e-d-");
    auto two = store2.saved_acks();
    two[1].targets = {{"client:a", rtpush::ack_state::waiting}};
    t4.restore(std::move(two), now);
    BOOST_TEST(t4.pending("client:a") == 1u);
    BOOST_TEST(t4.lookup(kept)->given_up == 1u);
}

BOOST_AUTO_TEST_CASE(history_is_bounded_and_read_in_pages) {
    temp_dir dir;
    rtpush::topic const a{"kpi", {"o1", "", ""}}, b{"kpi", {"o1", "d1", ""}},
        other{"kpi", {"o2", "", ""}};
    rtpush::hub h;
    rtpush::sqlite_store store(h, config(dir, 3));
    h.set_engine(&store);
    for (int i = 1; i <= 6; ++i) {
        h.publish(pub(a, i));
        h.publish(pub(b, 10 + i));
        h.publish(pub(other, 100 + i));
    }
    store.flush();
    rtpush::history_query q;
    q.topic = a;
    q.limit = 4;
    rtpush::history_page page;
    boost::system::error_code ec;
    BOOST_TEST(store.history(q, page, ec));
    BOOST_TEST(!ec);
    BOOST_TEST_REQUIRE(page.items.size() == 4u); // 3 of a and 3 of b are kept; o2 is not covered
    BOOST_TEST(page.items[0].at("data").as_int64() == 16);
    BOOST_TEST(page.items[1].at("data").as_int64() == 6);
    BOOST_TEST(page.items[0].at("epoch").as_string() == h.epoch());
    BOOST_TEST_REQUIRE(page.next_cursor.has_value());
    q.cursor = page.next_cursor;
    rtpush::history_page rest;
    BOOST_TEST(store.history(q, rest, ec));
    BOOST_TEST_REQUIRE(rest.items.size() == 2u);
    BOOST_TEST(rest.items[1].at("data").as_int64() == 4); // seq 1..3 of a were deleted
    BOOST_TEST(!rest.next_cursor);
    h.set_engine(nullptr);
}

BOOST_AUTO_TEST_CASE(a_corrupt_database_is_refused) {
    temp_dir dir;
    fs::create_directories(dir.path);
    {
        std::ofstream f(dir.path / "rtpush.db", std::ios::binary);
        f << std::string(8192, 'x');
    }
    rtpush::hub h;
    try {
        rtpush::sqlite_store store(h, config(dir));
        BOOST_FAIL("a corrupt store was opened");
    } catch (boost::system::system_error const& e) {
        BOOST_TEST((e.code() == rtpush::error::store_corrupt), e.what());
        BOOST_TEST(std::string(e.what()).find("rtpush.db") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(an_unusable_directory_is_refused) {
    temp_dir dir;
    fs::create_directories(dir.path);
    {
        std::ofstream f(dir.path / "file");
        f << "x";
    }
    rtpush::hub h;
    auto cfg = config(dir);
    cfg.data_dir = (dir.path / "file" / "sub").string(); // under a regular file
    BOOST_CHECK_EXCEPTION(rtpush::sqlite_store(h, cfg), boost::system::system_error,
                          [](auto const& e) { return e.code() == rtpush::error::store_failed; });
}

BOOST_AUTO_TEST_SUITE_END()
