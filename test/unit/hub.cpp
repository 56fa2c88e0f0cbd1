#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/hub.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <deque>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace json = boost::json;
namespace d = rtpush::detail;

namespace {

rtpush::topic make_topic(std::string channel, std::string org = {}, std::string dept = {},
                         std::string queue = {}) {
    rtpush::topic t;
    t.channel = std::move(channel);
    t.scope.org = std::move(org);
    t.scope.dept = std::move(dept);
    t.scope.queue = std::move(queue);
    return t;
}

rtpush::publication make_pub(rtpush::topic t, json::value data, std::string phase = {},
                             std::string event = {}) {
    rtpush::publication p;
    p.topic = std::move(t);
    p.data = std::move(data);
    p.phase = std::move(phase);
    p.event = std::move(event);
    return p;
}

// Decodes one server-to-client frame (unmasked text) into its JSON object.
json::object decode(const d::frame_ptr& f) {
    BOOST_REQUIRE(f);
    std::string bytes = f->bytes;
    d::frame_reader r(1 << 24, false);
    d::frame_event ev;
    auto const n = r.read(bytes.data(), bytes.size(), ev);
    BOOST_REQUIRE_EQUAL(n, bytes.size());
    BOOST_REQUIRE(ev.kind == d::frame_event::message);
    BOOST_REQUIRE((ev.op == d::opcode::text));
    auto v = json::parse(ev.payload);
    BOOST_REQUIRE(v.is_object());
    return v.as_object();
}

std::vector<std::string> topics_of(const std::vector<d::frame_ptr>& frames) {
    std::vector<std::string> out;
    for (auto const& f : frames)
        out.emplace_back(decode(f).at("topic").as_string());
    return out;
}

bool is_iso8601(std::string_view s) {
    static std::regex const re(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
    return std::regex_match(s.begin(), s.end(), re);
}

// A subscriber without a socket: it records the frames the shard hands it.
struct fake_subscriber final : d::subscriber {
    std::vector<d::frame_ptr> frames;
    void push(const d::frame_ptr& f) override { frames.push_back(f); }
    void flush() override {}

    std::vector<std::uint64_t> seqs() const {
        std::vector<std::uint64_t> out;
        for (auto const& f : frames)
            out.push_back(decode(f).at("seq").to_number<std::uint64_t>());
        return out;
    }
};

// Owns subscriptions at stable addresses (the shard keeps pointers to them).
struct subscriptions {
    std::deque<d::subscription> items;

    d::subscription& add(d::shard& sh, const rtpush::topic& t, d::subscriber& owner,
                         std::uint64_t since = 0) {
        auto& s = items.emplace_back();
        s.key = t.key();
        s.owner = &owner;
        s.since = since;
        sh.subscriptions().add(s);
        return s;
    }
};

using strings = std::vector<std::string>;
using seq_list = std::vector<std::uint64_t>;

} // namespace

BOOST_AUTO_TEST_SUITE(hub)

BOOST_AUTO_TEST_CASE(random_hex_ids) {
    auto const a = rtpush::detail::random_hex(3), b = rtpush::detail::random_hex(3);
    BOOST_TEST(a.size() == 6u);
    BOOST_TEST(a.find_first_not_of("0123456789abcdef") == std::string::npos);
    BOOST_TEST(a != b); // 2^-24 to fail by chance
    rtpush::hub h1, h2;
    BOOST_TEST(h1.epoch().size() == 16u);
    BOOST_TEST(h1.epoch() != h2.epoch());
}

// ---- the hub alone (no shards attached) ----

BOOST_AUTO_TEST_CASE(publish_seq_per_topic) {
    rtpush::hub h;
    auto const a = make_topic("kpi", "a");
    for (std::uint64_t i = 1; i <= 3; ++i) {
        auto const r = h.publish(make_pub(a, json::value(i)));
        BOOST_TEST(!r.ec);
        BOOST_TEST(r.seq == i);
    }
    // other topics count on their own, also a narrower one and another channel
    BOOST_TEST(h.publish(make_pub(make_topic("kpi", "b"), 1)).seq == 1u);
    BOOST_TEST(h.publish(make_pub(make_topic("kpi", "a", "d"), 1)).seq == 1u);
    BOOST_TEST(h.publish(make_pub(make_topic("alerts", "a"), 1)).seq == 1u);
    // phases share the topic's sequence
    BOOST_TEST(h.publish(make_pub(a, 1, "kpis")).seq == 4u);
    BOOST_TEST(h.publish(make_pub(a, 1, "complete")).seq == 5u);
    BOOST_TEST(h.stats().topics == 4u);
}

BOOST_AUTO_TEST_CASE(invalid_topic) {
    rtpush::hub h;
    for (auto const& t : {make_topic("kpi", "", "d"), make_topic(""), make_topic("kpi", "a:b"),
                          make_topic("kpi", "o", "", "q"), make_topic("k p i")}) {
        auto const r = h.publish(make_pub(t, 1));
        BOOST_TEST((r.ec == rtpush::error::invalid_message), t.key());
        BOOST_TEST(r.seq == 0u);
    }
    auto const s = h.stats();
    BOOST_TEST(s.total_messages == 0u);
    BOOST_TEST(s.topics == 0u);
    BOOST_TEST(s.messages_by_event.empty());
}

BOOST_AUTO_TEST_CASE(epoch_is_random_hex) {
    rtpush::hub a, b;
    BOOST_TEST(a.epoch().size() == 16u);
    BOOST_TEST(std::regex_match(a.epoch(), std::regex("^[0-9a-f]{16}$")), a.epoch());
    BOOST_TEST(a.epoch() != b.epoch());
}

BOOST_AUTO_TEST_CASE(initial_frames_for_org_subscription) {
    rtpush::hub h;
    h.publish(make_pub(make_topic("kpi"), "channel"));
    h.publish(make_pub(make_topic("kpi", "a"), "org a"));
    h.publish(make_pub(make_topic("kpi", "a", "d1"), "dept d1"));
    h.publish(make_pub(make_topic("kpi", "a", "d1", "q1"), "queue q1"));
    h.publish(make_pub(make_topic("kpi", "a", "d2"), "dept d2"));
    h.publish(make_pub(make_topic("kpi", "b"), "org b"));
    h.publish(make_pub(make_topic("kpi", "b", "d1"), "org b dept d1"));
    h.publish(make_pub(make_topic("kpi", "ab"), "org ab: 'a' is a prefix, not a parent"));
    h.publish(make_pub(make_topic("alerts", "a"), "other channel"));

    std::vector<d::frame_ptr> frames;
    h.initial_frames(make_topic("kpi", "a"), frames);
    auto got = topics_of(frames);
    std::set<std::string> const got_set(got.begin(), got.end());
    std::set<std::string> const expected{"kpi:org:a", "kpi:org:a:dept:d1",
                                         "kpi:org:a:dept:d1:queue:q1", "kpi:org:a:dept:d2"};
    BOOST_TEST(got.size() == 4u);
    BOOST_TEST(got_set == expected, boost::test_tools::per_element());

    for (auto const& f : frames) {
        auto const o = decode(f);
        BOOST_TEST(o.at("type").as_string() == "initial");
        BOOST_TEST(o.at("seq").to_number<int>() == 1);
        BOOST_TEST(o.at("epoch").as_string() == h.epoch());
        BOOST_TEST(o.at("event").as_string() == "kpi:update");
        BOOST_TEST(is_iso8601(o.at("timestamp").as_string()));
    }
    BOOST_TEST(decode(frames.at(0)).at("data").as_string() == "org a");

    // a dept subscription sees its dept and queues only
    frames.clear();
    h.initial_frames(make_topic("kpi", "a", "d1"), frames);
    got = topics_of(frames);
    BOOST_TEST(got == (strings{"kpi:org:a:dept:d1", "kpi:org:a:dept:d1:queue:q1"}),
               boost::test_tools::per_element());

    // the whole channel sees every kpi topic and no alerts topic
    frames.clear();
    h.initial_frames(make_topic("kpi"), frames);
    BOOST_TEST(frames.size() == 8u);

    // a topic nothing was published on
    frames.clear();
    h.initial_frames(make_topic("kpi", "zzz"), frames);
    BOOST_TEST(frames.empty());
}

// Regression: a sibling whose identifier continues with a character below ':' ('-', '.',
// '0'-'9') sorts between "kpi:org:a" and "kpi:org:a:dept:...", e.g. "kpi:org:a1" <
// "kpi:org:a:dept:d1". The scan must skip it, not stop at it.
BOOST_AUTO_TEST_CASE(initial_frames_with_sibling_sorting_between) {
    for (std::string sibling : {"a1", "a-x", "a.x"}) {
        rtpush::hub h;
        h.publish(make_pub(make_topic("kpi", "a", "d1"), "dept d1"));
        h.publish(make_pub(make_topic("kpi", sibling), "sibling"));
        h.publish(make_pub(make_topic("kpi", sibling, "d1"), "sibling dept"));

        std::vector<d::frame_ptr> frames;
        h.initial_frames(make_topic("kpi", "a"), frames);
        BOOST_TEST(topics_of(frames) == (strings{"kpi:org:a:dept:d1"}),
                   "sibling org '" << sibling << "'");
        BOOST_TEST(h.snapshot(make_topic("kpi", "a")).size() == 1u,
                   "sibling org '" << sibling << "'");
    }
    // the same at channel level: a channel "kpi2" hides every "kpi:org:..." topic
    rtpush::hub h;
    h.publish(make_pub(make_topic("kpi", "a"), 1));
    h.publish(make_pub(make_topic("kpi2"), 2));
    std::vector<d::frame_ptr> frames;
    h.initial_frames(make_topic("kpi"), frames);
    BOOST_TEST(topics_of(frames) == (strings{"kpi:org:a"}), "channel subscription 'kpi'");
}

BOOST_AUTO_TEST_CASE(kpis_before_complete_per_topic) {
    rtpush::hub h;
    auto const a = make_topic("kpi", "a");
    auto const ad = make_topic("kpi", "a", "d");
    // published in the "wrong" order on purpose
    h.publish(make_pub(a, "a-complete", "complete"));
    h.publish(make_pub(ad, "ad-complete", "complete"));
    h.publish(make_pub(a, "a-plain"));
    h.publish(make_pub(ad, "ad-kpis", "kpis"));
    h.publish(make_pub(a, "a-kpis", "kpis"));

    std::vector<d::frame_ptr> frames;
    h.initial_frames(a, frames);
    strings data;
    strings phases;
    for (auto const& f : frames) {
        auto const o = decode(f);
        data.emplace_back(o.at("data").as_string());
        phases.emplace_back(o.contains("phase") ? o.at("phase").as_string().c_str() : "");
    }
    BOOST_TEST(data == (strings{"a-kpis", "a-plain", "a-complete", "ad-kpis", "ad-complete"}),
               boost::test_tools::per_element());
    BOOST_TEST(phases == (strings{"kpis", "", "complete", "kpis", "complete"}),
               boost::test_tools::per_element());
    // seq of each retained value is the seq it was published with
    BOOST_TEST(decode(frames[0]).at("seq").to_number<int>() == 3);
    BOOST_TEST(decode(frames[1]).at("seq").to_number<int>() == 2);
    BOOST_TEST(decode(frames[2]).at("seq").to_number<int>() == 1);
}

BOOST_AUTO_TEST_CASE(latest_value_per_phase_is_retained) {
    rtpush::hub h;
    auto const t = make_topic("kpi", "a");
    h.publish(make_pub(t, "k1", "kpis"));
    h.publish(make_pub(t, "k2", "kpis"));
    std::vector<d::frame_ptr> frames;
    h.initial_frames(t, frames);
    BOOST_TEST_REQUIRE(frames.size() == 1u);
    BOOST_TEST(decode(frames[0]).at("data").as_string() == "k2");
    BOOST_TEST(decode(frames[0]).at("seq").to_number<int>() == 2);

    // the initial frame is built once and shared until the value changes
    std::vector<d::frame_ptr> again;
    h.initial_frames(t, again);
    BOOST_TEST_REQUIRE(again.size() == 1u);
    BOOST_TEST(again[0].get() == frames[0].get());
    h.publish(make_pub(t, "k3", "kpis"));
    std::vector<d::frame_ptr> third;
    h.initial_frames(t, third);
    BOOST_TEST_REQUIRE(third.size() == 1u);
    BOOST_TEST(third[0].get() != frames[0].get());
    BOOST_TEST(decode(third[0]).at("data").as_string() == "k3");
    // the old frame is unchanged (immutable once built)
    BOOST_TEST(decode(frames[0]).at("data").as_string() == "k2");
}

BOOST_AUTO_TEST_CASE(snapshot_json) {
    rtpush::hub h;
    auto const t = make_topic("kpi", "a", "d");
    auto p = make_pub(t, json::parse(R"({"calls":7})"), "kpis", "kpi:tick");
    p.priority = rtpush::priority::urgent;
    h.publish(p);
    h.publish(make_pub(make_topic("kpi", "a", "d", "q"), json::value(nullptr)));
    h.publish(make_pub(make_topic("kpi", "b"), 0));
    h.publish(make_pub(make_topic("kpi", "ab"), 0));

    auto const arr = h.snapshot(make_topic("kpi", "a"));
    BOOST_TEST_REQUIRE(arr.size() == 2u);
    auto const& o = arr[0].as_object();
    BOOST_TEST(o.at("topic").as_string() == "kpi:org:a:dept:d");
    BOOST_TEST(o.at("channel").as_string() == "kpi");
    BOOST_TEST((o.at("scope") == json::parse(R"({"org":"a","dept":"d"})")));
    BOOST_TEST(o.at("event").as_string() == "kpi:tick");
    BOOST_TEST(o.at("phase").as_string() == "kpis");
    BOOST_TEST(o.at("seq").to_number<int>() == 1);
    BOOST_TEST(o.at("epoch").as_string() == h.epoch());
    BOOST_TEST((o.at("data") == json::parse(R"({"calls":7})")));
    BOOST_TEST(is_iso8601(o.at("timestamp").as_string()));

    auto const& q = arr[1].as_object();
    BOOST_TEST(q.at("topic").as_string() == "kpi:org:a:dept:d:queue:q");
    BOOST_TEST(q.at("event").as_string() == "kpi:update"); // the default event
    BOOST_TEST(!q.contains("phase"));
    BOOST_TEST(q.at("data").is_null());

    BOOST_TEST(h.snapshot(make_topic("kpi", "c")).empty());
    BOOST_TEST(h.snapshot(make_topic("kpi")).size() == 4u);
    BOOST_TEST(h.snapshot(make_topic("alerts")).empty());
}

BOOST_AUTO_TEST_CASE(stats_count_by_event) {
    rtpush::hub h;
    h.publish(make_pub(make_topic("kpi", "a"), 1));
    h.publish(make_pub(make_topic("kpi", "b"), 1));
    h.publish(make_pub(make_topic("kpi", "a"), 1, "", "kpi:tick"));
    h.publish(make_pub(make_topic("alerts"), 1));
    h.publish(make_pub(make_topic("kpi", "", "bad"), 1)); // refused: not counted
    auto const s = h.stats();
    BOOST_TEST(s.total_messages == 4u);
    BOOST_TEST(s.topics == 3u);
    BOOST_TEST(s.messages_by_event.size() == 3u);
    BOOST_TEST(s.messages_by_event.at("kpi:update") == 2u);
    BOOST_TEST(s.messages_by_event.at("kpi:tick") == 1u);
    BOOST_TEST(s.messages_by_event.at("alerts:update") == 1u);
}

BOOST_AUTO_TEST_CASE(notify_does_not_retain) {
    rtpush::hub h;
    auto const t = make_topic("kpi", "a");
    h.notify(t, rtpush::message::refreshing(t));
    std::vector<d::frame_ptr> frames;
    BOOST_TEST(h.initial_frames(t, frames) == 0u);
    BOOST_TEST(frames.empty());
    BOOST_TEST(h.snapshot(t).empty());
    auto const s = h.stats();
    BOOST_TEST(s.total_messages == 0u);
    BOOST_TEST(s.topics == 0u);
}

BOOST_AUTO_TEST_CASE(refresh_handler) {
    rtpush::hub h;
    auto const t = make_topic("kpi", "a");
    BOOST_TEST(!h.request_refresh(t));
    std::vector<std::string> calls;
    h.on_refresh([&](const rtpush::topic& x) { calls.push_back(x.key()); });
    BOOST_TEST(h.request_refresh(t));
    BOOST_TEST(h.request_refresh(make_topic("alerts")));
    BOOST_TEST(calls == (strings{"kpi:org:a", "alerts"}), boost::test_tools::per_element());
}

// ---- fan-out through a shard, without sockets ----

BOOST_AUTO_TEST_CASE(shard_delivers_by_scope) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    fake_subscriber org_a, org_b, dept_a_d1, whole;
    subscriptions subs;
    subs.add(sh, make_topic("kpi", "a"), org_a);
    subs.add(sh, make_topic("kpi", "b"), org_b);
    subs.add(sh, make_topic("kpi", "a", "d1"), dept_a_d1);
    subs.add(sh, make_topic("kpi"), whole);

    h.publish(make_pub(make_topic("kpi", "a", "d1"), "x"));
    BOOST_TEST(org_a.frames.empty()); // nothing happens before the shard runs
    BOOST_TEST(sh.context().poll() == 1u);
    BOOST_TEST_REQUIRE(org_a.frames.size() == 1u);
    BOOST_TEST(org_b.frames.empty());
    BOOST_TEST_REQUIRE(dept_a_d1.frames.size() == 1u);
    BOOST_TEST_REQUIRE(whole.frames.size() == 1u);
    // one frame shared by every subscriber
    BOOST_TEST(org_a.frames[0].get() == dept_a_d1.frames[0].get());
    BOOST_TEST(org_a.frames[0].get() == whole.frames[0].get());
    BOOST_TEST(org_a.frames[0]->timed);

    auto const o = decode(org_a.frames[0]);
    BOOST_TEST(o.at("type").as_string() == "update");
    BOOST_TEST(o.at("topic").as_string() == "kpi:org:a:dept:d1");
    BOOST_TEST(o.at("seq").to_number<int>() == 1);
    BOOST_TEST(o.at("epoch").as_string() == h.epoch());
    BOOST_TEST(o.at("data").as_string() == "x");

    // a queue-level publication reaches org, dept and channel subscribers
    h.publish(make_pub(make_topic("kpi", "a", "d1", "q"), "q"));
    // a sibling dept reaches org a and channel only
    h.publish(make_pub(make_topic("kpi", "a", "d2"), "d2"));
    // an org-level publication does not reach the narrower dept subscriber
    h.publish(make_pub(make_topic("kpi", "a"), "org"));
    // a channel-level publication reaches only the channel subscriber
    h.publish(make_pub(make_topic("kpi"), "all"));
    // another channel reaches nobody
    h.publish(make_pub(make_topic("alerts", "a"), "alert"));
    sh.context().poll();
    BOOST_TEST(org_a.frames.size() == 4u);
    BOOST_TEST(dept_a_d1.frames.size() == 2u);
    BOOST_TEST(whole.frames.size() == 5u);
    BOOST_TEST(org_b.frames.empty());
}

BOOST_AUTO_TEST_CASE(publications_from_the_shards_own_thread_keep_their_order) {
    // A publication made on the shard's thread (a REST call served there), then, while that
    // handler still runs, one from another thread. An io_context for one thread keeps what its
    // own thread posts in a private queue until the handler returns: with one post per
    // delivery the second publication would reach the subscriber first.
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    fake_subscriber sub;
    subscriptions subs;
    subs.add(sh, make_topic("kpi", "a"), sub);
    boost::asio::post(sh.context(), [&] {
        h.publish(make_pub(make_topic("kpi", "a"), "first"));
        std::thread other([&] { h.publish(make_pub(make_topic("kpi", "a"), "second")); });
        other.join();
    });
    while (sh.context().poll() > 0) {
    }
    BOOST_TEST(sub.seqs() == (std::vector<std::uint64_t>{1, 2}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(shard_delivers_in_seq_order) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    fake_subscriber s;
    subscriptions subs;
    subs.add(sh, make_topic("kpi", "a"), s);
    for (int i = 0; i < 100; ++i) {
        h.publish(make_pub(make_topic("kpi", "a", "d"), i));
        if (i % 7 == 0)
            sh.context().poll();
    }
    sh.context().poll();
    seq_list expected;
    for (std::uint64_t i = 1; i <= 100; ++i)
        expected.push_back(i);
    BOOST_TEST(s.seqs() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(session_with_overlapping_subscriptions_gets_each_frame_once) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    fake_subscriber s, other;
    subscriptions subs;
    subs.add(sh, make_topic("kpi"), s);
    subs.add(sh, make_topic("kpi", "a"), s);
    subs.add(sh, make_topic("kpi", "a", "d"), s);
    subs.add(sh, make_topic("kpi", "a"), other);

    h.publish(make_pub(make_topic("kpi", "a", "d"), 1)); // matches all three of s
    h.publish(make_pub(make_topic("kpi", "a"), 2));      // matches two of s
    h.publish(make_pub(make_topic("kpi", "b"), 3));      // matches one of s
    h.publish(make_pub(make_topic("kpi", "a", "d"), 4)); // all three again
    sh.context().poll();
    BOOST_TEST_REQUIRE(s.frames.size() == 4u);
    strings data;
    for (auto const& f : s.frames)
        data.push_back(json::serialize(decode(f).at("data")));
    BOOST_TEST(data == (strings{"1", "2", "3", "4"}), boost::test_tools::per_element());
    BOOST_TEST(other.frames.size() == 3u);
}

BOOST_AUTO_TEST_CASE(since_skips_what_initial_already_holds) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    auto const t = make_topic("kpi", "a");
    auto const td = make_topic("kpi", "a", "d");

    // two publications are on their way to the shard (not yet run) when the session subscribes
    h.publish(make_pub(td, "first"));
    h.publish(make_pub(td, "second"));
    std::vector<d::frame_ptr> initial;
    std::uint64_t const since = h.initial_frames(t, initial);
    BOOST_TEST(since == 2u);
    BOOST_TEST_REQUIRE(initial.size() == 1u);
    BOOST_TEST(decode(initial[0]).at("data").as_string() == "second");

    fake_subscriber s, fresh;
    subscriptions subs;
    subs.add(sh, t, s, since);
    subs.add(sh, t, fresh); // since 0: receives everything still in flight
    h.publish(make_pub(td, "third"));
    sh.context().poll();
    BOOST_TEST(s.seqs() == (seq_list{3}), boost::test_tools::per_element());
    BOOST_TEST(fresh.seqs() == (seq_list{1, 2, 3}), boost::test_tools::per_element());

    // the counter is hub-wide: it counts publications on other topics and notifications too
    h.publish(make_pub(make_topic("alerts"), 0));
    h.notify(t, rtpush::message::refreshing(t));
    std::vector<d::frame_ptr> more;
    BOOST_TEST(h.initial_frames(t, more) == 5u);
    sh.context().poll();
}

BOOST_AUTO_TEST_CASE(frames_carry_their_lane) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    auto const t = make_topic("kpi", "a");
    fake_subscriber s;
    subscriptions subs;
    subs.add(sh, t, s);
    auto k = make_pub(t, 1, "kpis");
    k.priority = rtpush::priority::high;
    h.publish(k);
    h.publish(make_pub(t, 2, "complete")); // medium
    auto u = make_pub(t, 3);
    u.priority = rtpush::priority::urgent;
    h.publish(u);
    auto l = make_pub(t, 4);
    l.priority = rtpush::priority::low;
    h.publish(l);
    h.notify(t, rtpush::message::refreshing(t));
    sh.context().poll();
    BOOST_TEST_REQUIRE(s.frames.size() == 5u);
    BOOST_TEST(!s.frames[0]->bulk);
    BOOST_TEST(s.frames[0]->phase == 0);
    BOOST_TEST(s.frames[0]->topic == "kpi:org:a");
    BOOST_TEST(s.frames[1]->bulk);
    BOOST_TEST(s.frames[1]->phase == 2);
    BOOST_TEST(!s.frames[2]->bulk);
    BOOST_TEST(s.frames[2]->phase == 1);
    BOOST_TEST(s.frames[3]->bulk);
    BOOST_TEST(!s.frames[4]->bulk); // a notification is a protocol message: fast lane
    BOOST_TEST(s.frames[4]->topic.empty());
    // initial frames keep the lane of the retained publication
    std::vector<d::frame_ptr> initial;
    h.initial_frames(t, initial);
    BOOST_TEST_REQUIRE(initial.size() == 3u);
    BOOST_TEST(!initial[0]->bulk); // kpis (high)
    BOOST_TEST(initial[1]->bulk);  // unphased, last was low
    BOOST_TEST(initial[2]->bulk);  // complete (medium)
    BOOST_TEST(initial[2]->phase == 2);
}

BOOST_AUTO_TEST_CASE(subscriber_counts_and_demand_handlers) {
    rtpush::hub h;
    std::vector<std::size_t> seen;
    auto const id = h.on_demand("metrics", [&](std::size_t n) { seen.push_back(n); });
    h.on_demand("other", [&](std::size_t) { seen.push_back(99); });
    BOOST_TEST(h.demand("metrics") == 0u);
    h.add_demand("metrics");
    h.add_demand("metrics");
    BOOST_TEST(h.demand("metrics") == 2u);
    h.remove_demand("metrics");
    h.remove_demand("metrics");
    h.remove_demand("metrics"); // not below zero
    BOOST_TEST(h.demand("metrics") == 0u);
    BOOST_TEST(seen == (std::vector<std::size_t>{1, 0}), boost::test_tools::per_element());
    h.remove_demand_handler(id);
    h.add_demand("metrics");
    BOOST_TEST(seen.size() == 2u);
}

BOOST_AUTO_TEST_CASE(notify_reaches_subscribers) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    fake_subscriber org_a, org_b, dept;
    subscriptions subs;
    subs.add(sh, make_topic("kpi", "a"), org_a);
    subs.add(sh, make_topic("kpi", "b"), org_b);
    subs.add(sh, make_topic("kpi", "a", "d"), dept);
    auto const t = make_topic("kpi", "a");
    h.notify(t, rtpush::message::refreshing(t));
    sh.context().poll();
    BOOST_TEST_REQUIRE(org_a.frames.size() == 1u);
    BOOST_TEST(org_b.frames.empty());
    BOOST_TEST(dept.frames.empty()); // a wider notification does not reach narrower subscribers
    auto const o = decode(org_a.frames[0]);
    BOOST_TEST(o.at("type").as_string() == "refreshing");
    BOOST_TEST(o.at("topic").as_string() == "kpi:org:a");
    BOOST_TEST(!org_a.frames[0]->timed);
    // still nothing retained
    BOOST_TEST(h.snapshot(t).empty());
}

BOOST_AUTO_TEST_CASE(remove_subscription_swap_keeps_indexes) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    auto const t = make_topic("kpi", "a");
    fake_subscriber a, b, c;
    subscriptions subs;
    auto& sa = subs.add(sh, t, a);
    auto& sb = subs.add(sh, t, b);
    auto& sc = subs.add(sh, t, c);
    BOOST_TEST(sa.index == 0u);
    BOOST_TEST(sb.index == 1u);
    BOOST_TEST(sc.index == 2u);
    BOOST_TEST(sh.subscriptions().entries().at("kpi:org:a").size() == 3u);

    sh.subscriptions().remove(sa); // c moves into a's slot
    BOOST_TEST(sc.index == 0u);
    BOOST_TEST(sb.index == 1u);
    auto const& v = sh.subscriptions().entries().at("kpi:org:a");
    BOOST_TEST_REQUIRE(v.size() == 2u);
    BOOST_TEST(v[0] == &sc);
    BOOST_TEST(v[1] == &sb);

    h.publish(make_pub(t, 1));
    sh.context().poll();
    BOOST_TEST(a.frames.empty());
    BOOST_TEST(b.frames.size() == 1u);
    BOOST_TEST(c.frames.size() == 1u);

    // removing the moved one uses its updated index
    sh.subscriptions().remove(sc);
    BOOST_TEST(sh.subscriptions().entries().at("kpi:org:a").size() == 1u);
    BOOST_TEST(sb.index == 0u);
    h.publish(make_pub(t, 2));
    sh.context().poll();
    BOOST_TEST(b.frames.size() == 2u);
    BOOST_TEST(c.frames.size() == 1u);

    // removing twice, or something never added, changes nothing
    sh.subscriptions().remove(sa);
    sh.subscriptions().remove(sc);
    BOOST_TEST(sh.subscriptions().entries().at("kpi:org:a").size() == 1u);
    d::subscription stray;
    stray.key = "kpi:org:a";
    stray.owner = &a;
    sh.subscriptions().remove(stray);
    BOOST_TEST(sh.subscriptions().entries().at("kpi:org:a").size() == 1u);

    // the last one removes the key
    sh.subscriptions().remove(sb);
    BOOST_TEST(sh.subscriptions().entries().count("kpi:org:a") == 0u);
    h.publish(make_pub(t, 3));
    sh.context().poll();
    BOOST_TEST(b.frames.size() == 2u);
}

BOOST_AUTO_TEST_CASE(remove_subscription_many_random) {
    d::shard sh(0);
    auto const t = make_topic("kpi", "a");
    std::vector<std::unique_ptr<fake_subscriber>> owners;
    subscriptions subs;
    std::vector<d::subscription*> live;
    for (int i = 0; i < 50; ++i) {
        owners.push_back(std::make_unique<fake_subscriber>());
        live.push_back(&subs.add(sh, t, *owners.back()));
    }
    unsigned x = 12345;
    while (!live.empty()) {
        x = x * 1103515245u + 12345u;
        std::size_t const k = (x >> 8) % live.size();
        sh.subscriptions().remove(*live[k]);
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
        if (live.empty()) {
            BOOST_TEST(sh.subscriptions().entries().count("kpi:org:a") == 0u);
            break;
        }
        auto const& v = sh.subscriptions().entries().at("kpi:org:a");
        BOOST_TEST_REQUIRE(v.size() == live.size());
        for (std::size_t i = 0; i < v.size(); ++i)
            BOOST_TEST_REQUIRE(v[i]->index == i);
        std::set<d::subscription*> const in_shard(v.begin(), v.end());
        std::set<d::subscription*> const expected(live.begin(), live.end());
        BOOST_TEST_REQUIRE((in_shard == expected));
    }
}

BOOST_AUTO_TEST_CASE(two_shards_share_one_frame) {
    d::shard s0(0), s1(1);
    rtpush::hub h;
    h.attach({&s0, &s1});
    fake_subscriber x, y;
    subscriptions subs;
    subs.add(s0, make_topic("kpi", "a"), x);
    subs.add(s1, make_topic("kpi"), y);
    h.publish(make_pub(make_topic("kpi", "a", "d"), 1));
    BOOST_TEST(s0.context().poll() == 1u);
    BOOST_TEST(s1.context().poll() == 1u);
    BOOST_TEST_REQUIRE(x.frames.size() == 1u);
    BOOST_TEST_REQUIRE(y.frames.size() == 1u);
    BOOST_TEST(x.frames[0].get() == y.frames[0].get());
    BOOST_TEST(s0.index() == 0u);
    BOOST_TEST(s1.index() == 1u);
}

// ---- history and recovery ----

BOOST_AUTO_TEST_CASE(history_is_bounded_by_size_and_age) {
    rtpush::hub h({.history_size = 3, .history_ttl = std::chrono::milliseconds(50)});
    auto const t = make_topic("kpi", "a");
    for (int i = 0; i < 5; ++i)
        h.publish(make_pub(t, i));
    BOOST_TEST(h.history_size(t) == 3u);
    std::this_thread::sleep_for(std::chrono::milliseconds(80));
    h.publish(make_pub(t, 5));
    BOOST_TEST(h.history_size(t) == 1u); // the older ones aged out

    rtpush::hub none({.history_size = 0});
    none.publish(make_pub(t, 1));
    BOOST_TEST(none.history_size(t) == 0u);

    // and by bytes: each frame of a 1000-byte string is a little over 1000 bytes
    rtpush::hub small({.history_bytes = 3500});
    for (int i = 0; i < 10; ++i)
        small.publish(make_pub(t, json::string(std::string(1000, 'x'))));
    BOOST_TEST(small.history_size(t) == 2u);
}

BOOST_AUTO_TEST_CASE(recover_replays_missed_updates_in_publication_order) {
    rtpush::hub h;
    auto const a = make_topic("kpi", "a");
    auto const ad = make_topic("kpi", "a", "d");
    h.publish(make_pub(a, "a1"));
    h.publish(make_pub(ad, "ad1"));
    // the client saw a:1 and ad:1, then missed these
    h.publish(make_pub(ad, "ad2"));
    h.publish(make_pub(a, "a2"));
    h.publish(make_pub(make_topic("kpi", "b"), "not covered"));
    h.publish(make_pub(ad, "ad3"));

    d::recover_position pos;
    pos.epoch = h.epoch();
    pos.offset = 1;
    pos.offsets.emplace(ad.key(), 1);
    std::vector<d::frame_ptr> frames;
    auto const r = h.subscribe_frames(a, pos, frames);
    BOOST_TEST(r.recovered());
    BOOST_TEST(r.counter == 6u);
    strings data;
    for (auto const& f : frames) {
        auto const o = decode(f);
        BOOST_TEST(o.at("type").as_string() == "update");
        BOOST_TEST(o.at("offset") == o.at("seq"));
        data.emplace_back(o.at("data").as_string());
    }
    BOOST_TEST(data == (strings{"ad2", "a2", "ad3"}), boost::test_tools::per_element());

    // up to date: recovered with nothing to replay
    frames.clear();
    pos.offset = 2;
    pos.offsets[ad.key()] = 3;
    BOOST_TEST(h.subscribe_frames(a, pos, frames).recovered());
    BOOST_TEST(frames.empty());
}

BOOST_AUTO_TEST_CASE(recover_refused_gives_initial) {
    rtpush::hub h({.history_size = 2, .max_replay = 3});
    auto const a = make_topic("kpi", "a");
    auto const ad = make_topic("kpi", "a", "d");
    for (int i = 1; i <= 5; ++i)
        h.publish(make_pub(a, i));
    h.publish(make_pub(ad, 1));
    auto attempt = [&](std::string epoch, std::uint64_t offset, std::uint64_t dept_offset) {
        d::recover_position pos;
        pos.epoch = std::move(epoch);
        pos.offset = offset;
        pos.offsets.emplace(ad.key(), dept_offset);
        std::vector<d::frame_ptr> frames;
        auto const r = h.subscribe_frames(a, pos, frames);
        if (!r.recovered()) { // a fresh snapshot of every covered topic
            BOOST_TEST(topics_of(frames) == (strings{a.key(), ad.key()}),
                       boost::test_tools::per_element());
            BOOST_TEST(decode(frames.at(0)).at("type").as_string() == "initial");
        }
        return r.recovery;
    };
    using rr = d::recovery_result;
    BOOST_TEST((attempt(h.epoch(), 3, 1) == rr::recovered));    // 4 and 5 are in history
    BOOST_TEST((attempt(h.epoch(), 2, 1) == rr::history_lost)); // 3 has left it
    BOOST_TEST((attempt("other", 4, 1) == rr::epoch_mismatch));
    BOOST_TEST((attempt(h.epoch(), 9, 1) == rr::offset_ahead));
    BOOST_TEST((attempt(h.epoch(), 5, 0) == rr::recovered)); // dept topic from seq 1
    for (int i = 2; i <= 5; ++i)
        h.publish(make_pub(ad, i));
    // 2 + 2 to replay is over max_replay 3
    BOOST_TEST((attempt(h.epoch(), 3, 3) == rr::too_many));
    // the caller's bounds (what its queue can take) apply too
    {
        d::recover_position pos;
        pos.epoch = h.epoch();
        pos.offset = 3;
        pos.offsets.emplace(ad.key(), 5);
        std::vector<d::frame_ptr> frames;
        BOOST_TEST(h.subscribe_frames(a, pos, frames, 2).recovered());
        frames.clear();
        BOOST_TEST((h.subscribe_frames(a, pos, frames, 1).recovery == rr::too_many));
        frames.clear();
        BOOST_TEST((h.subscribe_frames(a, pos, frames, 2, 100).recovery == rr::too_many));
    }
}

BOOST_AUTO_TEST_CASE(replay_and_live_deliveries_meet_without_loss_or_duplicate) {
    d::shard sh(0);
    rtpush::hub h;
    h.attach({&sh});
    auto const t = make_topic("kpi", "a");
    h.publish(make_pub(t, 1));
    sh.context().poll();
    // the client saw seq 1; 2 and 3 are still on their way to the shard when it recovers
    h.publish(make_pub(t, 2));
    h.publish(make_pub(t, 3));
    d::recover_position pos;
    pos.epoch = h.epoch();
    pos.offset = 1;
    std::vector<d::frame_ptr> replay;
    auto const r = h.subscribe_frames(t, pos, replay);
    BOOST_TEST(r.recovered());
    fake_subscriber s;
    s.frames = replay;
    subscriptions subs;
    subs.add(sh, t, s, r.counter);
    h.publish(make_pub(t, 4));
    sh.context().poll();
    BOOST_TEST(s.seqs() == (seq_list{2, 3, 4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// The engine seam: what a cross-node engine feeds back with the seq it assigned.
namespace {
class recording_engine final : public rtpush::engine {
public:
    std::vector<rtpush::publication> taken;
    std::vector<publish_handler> answers;
    bool up = true;
    boost::system::error_code publish(const rtpush::publication& p, const std::string&,
                                      publish_handler done) override {
        if (!up)
            return rtpush::error::engine_unavailable;
        taken.push_back(p);
        answers.push_back(std::move(done));
        return {};
    }
    bool prepare(const std::string&, std::function<void()>) override { return false; }
    json::object status() const override {
        json::object o;
        o["engine"] = "test";
        return o;
    }
};
} // namespace

BOOST_AUTO_TEST_SUITE(hub_engine)

BOOST_AUTO_TEST_CASE(publish_goes_to_the_engine) {
    rtpush::hub h;
    recording_engine e;
    h.set_engine(&e);
    auto const t = make_topic("kpi", "a");
    std::uint64_t answered = 0;
    auto r = h.publish(make_pub(t, 1), [&](boost::system::error_code ec, std::uint64_t seq) {
        BOOST_TEST(!ec);
        answered = seq;
    });
    BOOST_TEST(!r.ec);
    BOOST_TEST(r.pending);
    BOOST_TEST(r.seq == 0u); // assigned later by the engine
    BOOST_TEST(h.head(t.key()) == 0u);
    BOOST_TEST(e.taken.size() == 1u);
    BOOST_TEST(e.taken.at(0).event == "kpi:update");
    e.answers.at(0)({}, 7); // the engine ordered it: the publisher learns its seq
    BOOST_TEST(answered == 7u);
    BOOST_TEST(
        (h.publish(make_pub(make_topic("bad topic"), 1)).ec == rtpush::error::invalid_message));
    e.up = false;
    auto const down = h.publish(make_pub(t, 2));
    BOOST_TEST((down.ec == rtpush::error::engine_unavailable));
    BOOST_TEST(!down.pending);
    BOOST_TEST(!h.prepare("kpi", [] {}));
    h.set_engine(nullptr);
    BOOST_TEST(h.prepare("kpi", [] {}));
}

BOOST_AUTO_TEST_CASE(apply_keeps_order_and_drops_duplicates) {
    rtpush::hub h({.history_size = 10});
    auto const t = make_topic("kpi", "a");
    BOOST_TEST(h.apply(make_pub(t, 1), 1, "ts1"));
    BOOST_TEST(h.apply(make_pub(t, 2), 2, "ts2"));
    BOOST_TEST(!h.apply(make_pub(t, 2), 2, "ts2")); // duplicate
    BOOST_TEST(!h.apply(make_pub(t, 1), 1, "ts1")); // older
    BOOST_TEST(h.head(t.key()) == 2u);
    BOOST_TEST(h.history_size(t) == 2u);
    // a jump: what lies between is lost, the history starts afresh
    BOOST_TEST(h.apply(make_pub(t, 7), 7, "ts7"));
    BOOST_TEST(h.history_size(t) == 1u);
    d::recover_position pos;
    pos.epoch = h.epoch();
    pos.offset = 2;
    std::vector<d::frame_ptr> frames;
    BOOST_TEST((h.subscribe_frames(t, pos, frames).recovery == d::recovery_result::history_lost));
    pos.offset = 6;
    frames.clear();
    BOOST_TEST(h.subscribe_frames(t, pos, frames).recovered());
    BOOST_TEST(frames.size() == 1u);
    auto const s = h.snapshot(t);
    BOOST_TEST(s.size() == 1u);
    BOOST_TEST(s.at(0).at("seq").as_uint64() == 7u);
    BOOST_TEST(s.at(0).at("timestamp").as_string() == "ts7");
}

BOOST_AUTO_TEST_CASE(set_latest_and_reset) {
    rtpush::hub h;
    auto const t = make_topic("kpi", "a");
    h.set_latest(make_pub(t, "k", "kpis"), 4, "ts4");
    h.set_latest(make_pub(t, "c", "complete"), 5, "ts5");
    h.set_latest(make_pub(t, "old", "kpis"), 3, "ts3"); // older than held: ignored
    BOOST_TEST(h.head(t.key()) == 5u);
    auto const s = h.snapshot(t);
    BOOST_TEST(s.size() == 2u);
    BOOST_TEST(s.at(0).at("data").as_string() == "k");
    // the next publication follows on
    BOOST_TEST(h.apply(make_pub(t, "n"), 6, "ts6"));
    BOOST_TEST(h.history_size(t) == 1u);
    h.reset("e2");
    BOOST_TEST(h.epoch() == "e2");
    BOOST_TEST(h.head(t.key()) == 0u);
    BOOST_TEST(h.snapshot(t).empty());
}

BOOST_AUTO_TEST_SUITE_END()
