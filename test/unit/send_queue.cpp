#include <rtpush/detail/send_queue.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace d = rtpush::detail;
using d::overflow_policy;
using push_result = d::send_queue::push_result;

namespace {

// A frame whose bytes are its label, padded to `size` with '.'.
d::frame_ptr frame(std::string label, std::size_t size = 0) {
    if (label.size() < size)
        label.append(size - label.size(), '.');
    return d::make_shared_frame(std::move(label));
}

std::string label_of(const d::frame_ptr& f) {
    auto const dot = f->bytes.find('.');
    return f->bytes.substr(0, dot);
}

std::vector<std::string> drain(d::send_queue& q) {
    std::vector<d::frame_ptr> out;
    q.take(out, std::size_t(-1), std::size_t(-1));
    std::vector<std::string> labels;
    for (auto const& f : out)
        labels.push_back(label_of(f));
    return labels;
}

using labels = std::vector<std::string>;

} // namespace

BOOST_AUTO_TEST_SUITE(send_queue)

BOOST_AUTO_TEST_CASE(fifo_order) {
    d::send_queue q(100, 0, overflow_policy::drop_oldest);
    BOOST_TEST(q.empty());
    for (int i = 0; i < 10; ++i)
        BOOST_TEST((q.push(frame("f" + std::to_string(i))) == push_result::queued));
    BOOST_TEST(q.size() == 10u);
    BOOST_TEST(!q.empty());
    BOOST_TEST(q.bytes() == 10u * 2);
    auto const got = drain(q);
    labels expected;
    for (int i = 0; i < 10; ++i)
        expected.push_back("f" + std::to_string(i));
    BOOST_TEST(got == expected, boost::test_tools::per_element());
    BOOST_TEST(q.empty());
    BOOST_TEST(q.bytes() == 0u);
    BOOST_TEST(q.dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(shared_frame_is_not_copied) {
    auto f = frame("shared", 1000);
    d::send_queue a(10, 0, overflow_policy::drop_oldest);
    d::send_queue b(10, 0, overflow_policy::drop_oldest);
    a.push(f);
    b.push(f);
    BOOST_TEST(f.use_count() == 3);
    std::vector<d::frame_ptr> out;
    a.take(out, 10, 1 << 20);
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(out[0].get() == f.get());
    out.clear();
    BOOST_TEST(f.use_count() == 2); // the queue released its reference on take
}

BOOST_AUTO_TEST_CASE(take_respects_limits_and_returns_at_least_one) {
    d::send_queue q(100, 0, overflow_policy::drop_oldest);
    for (int i = 0; i < 10; ++i)
        q.push(frame("f" + std::to_string(i), 10));

    std::vector<d::frame_ptr> out;
    q.take(out, 3, 1000);
    BOOST_TEST_REQUIRE(out.size() == 3u);
    BOOST_TEST(label_of(out[0]) == "f0");
    BOOST_TEST(label_of(out[2]) == "f2");
    BOOST_TEST(q.size() == 7u);
    BOOST_TEST(q.bytes() == 70u);

    out.clear();
    q.take(out, 100, 25); // 10 + 10 fit, a third would make 30
    BOOST_TEST_REQUIRE(out.size() == 2u);
    BOOST_TEST(label_of(out[0]) == "f3");

    out.clear();
    q.take(out, 100, 20); // exactly at the byte limit
    BOOST_TEST_REQUIRE(out.size() == 2u);
    BOOST_TEST(label_of(out[0]) == "f5");

    out.clear();
    q.take(out, 100, 5); // one frame larger than max_bytes still goes
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(label_of(out[0]) == "f7");

    out.clear();
    q.take(out, 1, 0);
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(label_of(out[0]) == "f8");
    BOOST_TEST(q.size() == 1u);
    BOOST_TEST(q.bytes() == 10u);

    out.clear();
    q.take(out, 100, 1000);
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(q.empty());

    out.clear();
    q.take(out, 100, 1000); // empty queue: nothing
    BOOST_TEST(out.empty());
}

BOOST_AUTO_TEST_CASE(drop_oldest_policy) {
    d::send_queue q(3, 0, overflow_policy::drop_oldest);
    BOOST_TEST((q.policy() == overflow_policy::drop_oldest));
    q.push(frame("a"));
    q.push(frame("b"));
    q.push(frame("c"));
    BOOST_TEST((q.push(frame("d")) == push_result::dropped_oldest));
    BOOST_TEST(q.dropped() == 1u);
    BOOST_TEST((q.push(frame("e")) == push_result::dropped_oldest));
    BOOST_TEST(q.dropped() == 2u);
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(q.bytes() == 3u);
    BOOST_TEST(drain(q) == (labels{"c", "d", "e"}), boost::test_tools::per_element());
    BOOST_TEST((q.push(frame("f")) == push_result::queued));
    BOOST_TEST(q.dropped() == 2u);
}

BOOST_AUTO_TEST_CASE(disconnect_policy) {
    d::send_queue q(2, 0, overflow_policy::disconnect);
    BOOST_TEST((q.push(frame("a")) == push_result::queued));
    BOOST_TEST((q.push(frame("b")) == push_result::queued));
    BOOST_TEST((q.push(frame("c")) == push_result::overflow));
    BOOST_TEST(q.size() == 2u); // the refused frame is not queued and nothing is dropped
    BOOST_TEST(q.dropped() == 0u);
    BOOST_TEST(drain(q) == (labels{"a", "b"}), boost::test_tools::per_element());
    BOOST_TEST((q.push(frame("d")) == push_result::queued));
}

BOOST_AUTO_TEST_CASE(byte_bound) {
    d::send_queue q(100, 50, overflow_policy::drop_oldest);
    q.push(frame("a", 20));
    q.push(frame("b", 20));
    BOOST_TEST(q.bytes() == 40u);
    // 40 + 20 > 50: "a" goes
    BOOST_TEST((q.push(frame("c", 20)) == push_result::dropped_oldest));
    BOOST_TEST(q.bytes() == 40u);
    // 10 more fits exactly
    BOOST_TEST((q.push(frame("d", 10)) == push_result::queued));
    BOOST_TEST(q.bytes() == 50u);
    // 45 bytes needs three victims
    BOOST_TEST((q.push(frame("e", 45)) == push_result::dropped_oldest));
    BOOST_TEST(q.dropped() == 4u);
    BOOST_TEST(drain(q) == (labels{"e"}), boost::test_tools::per_element());

    // a frame larger than the whole bound is still queued on an empty queue
    BOOST_TEST((q.push(frame("huge", 500)) == push_result::queued));
    BOOST_TEST(q.size() == 1u);

    d::send_queue dq(100, 50, overflow_policy::disconnect);
    dq.push(frame("a", 30));
    BOOST_TEST((dq.push(frame("b", 21)) == push_result::overflow));
    BOOST_TEST((dq.push(frame("c", 20)) == push_result::queued));
}

BOOST_AUTO_TEST_CASE(zero_max_frames_means_one) {
    d::send_queue q(0, 0, overflow_policy::drop_oldest);
    q.push(frame("a"));
    BOOST_TEST((q.push(frame("b")) == push_result::dropped_oldest));
    BOOST_TEST(drain(q) == (labels{"b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(push_control_ordering) {
    d::send_queue q(100, 0, overflow_policy::drop_oldest);
    q.push(frame("d1"));
    q.push(frame("d2"));
    q.push_control(frame("c1"));
    q.push(frame("d3"));
    q.push_control(frame("c2"));
    q.push_control(frame("c3"));
    BOOST_TEST(q.size() == 6u);
    BOOST_TEST(q.bytes() == 12u);
    BOOST_TEST(drain(q) == (labels{"c1", "c2", "c3", "d1", "d2", "d3"}),
               boost::test_tools::per_element());

    // once control frames are taken, new ones go to the front again
    q.push(frame("d4"));
    q.push_control(frame("c4"));
    std::vector<d::frame_ptr> out;
    q.take(out, 1, 1000);
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(label_of(out[0]) == "c4");
    q.push_control(frame("c5"));
    BOOST_TEST(drain(q) == (labels{"c5", "d4"}), boost::test_tools::per_element());

    // on an empty queue
    q.push_control(frame("c6"));
    q.push(frame("d5"));
    BOOST_TEST(drain(q) == (labels{"c6", "d5"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(push_control_across_growth_and_wrap) {
    d::send_queue q(1000, 0, overflow_policy::drop_oldest);
    // move head away from 0 so that the control insertion wraps around the ring
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 3; ++i)
            q.push(frame("x"));
        std::vector<d::frame_ptr> out;
        q.take(out, 3, 1000);
    }
    q.push(frame("d1"));
    q.push_control(frame("c1"));
    q.push(frame("d2"));
    q.push_control(frame("c2")); // ring of 4 is now full
    q.push_control(frame("c3")); // grows
    q.push(frame("d3"));
    BOOST_TEST(drain(q) == (labels{"c1", "c2", "c3", "d1", "d2", "d3"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(control_frames_are_exempt_from_the_bound) {
    d::send_queue q(2, 0, overflow_policy::disconnect);
    q.push(frame("d1"));
    q.push(frame("d2"));
    q.push_control(frame("c1")); // over the bound, still queued
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(drain(q) == (labels{"c1", "d1", "d2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(drop_oldest_skips_control_frames) {
    // control frames do not count against the bound of 2 data frames
    d::send_queue q(2, 0, overflow_policy::drop_oldest);
    q.push(frame("d1"));
    q.push(frame("d2"));
    q.push_control(frame("c1"));
    // full: the oldest *data* frame is dropped, the control frame stays in front
    BOOST_TEST((q.push(frame("d3")) == push_result::dropped_oldest));
    BOOST_TEST(q.dropped() == 1u);
    BOOST_TEST(q.bytes() == 6u);
    BOOST_TEST(drain(q) == (labels{"c1", "d2", "d3"}), boost::test_tools::per_element());
}

// Regression: with only control frames queued, a data push must not evict one of them.
BOOST_AUTO_TEST_CASE(control_frame_never_dropped_when_queue_holds_only_control_frames) {
    d::send_queue q(1, 0, overflow_policy::drop_oldest);
    q.push_control(frame("close"));
    q.push(frame("data"));
    auto const got = drain(q);
    BOOST_TEST((std::find(got.begin(), got.end(), "close") != got.end()),
               "the queued control frame was dropped");
}

BOOST_AUTO_TEST_CASE(shrink_releases_only_when_empty) {
    d::send_queue q(100, 0, overflow_policy::drop_oldest);
    q.push(frame("a"));
    q.shrink(); // not empty: nothing happens
    BOOST_TEST(q.size() == 1u);
    q.push(frame("b"));
    BOOST_TEST(drain(q) == (labels{"a", "b"}), boost::test_tools::per_element());
    q.shrink();
    BOOST_TEST(q.empty());
    // usable again after releasing the ring
    q.push(frame("c"));
    q.push_control(frame("k"));
    q.push(frame("d"));
    BOOST_TEST(drain(q) == (labels{"k", "c", "d"}), boost::test_tools::per_element());
    q.shrink();
    q.push_control(frame("k2"));
    BOOST_TEST(drain(q) == (labels{"k2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(shrink_releases_frames) {
    auto f = frame("held");
    d::send_queue q(100, 0, overflow_policy::drop_oldest);
    q.push(f);
    drain(q);
    BOOST_TEST(f.use_count() == 1);
    q.push(f);
    q.push(f);
    q.push(f); // 3 references
    BOOST_TEST(f.use_count() == 4);
    q.push(frame("x"));
    q.push(frame("y")); // 5th frame: 4-slot ring doubled
    std::vector<d::frame_ptr> out;
    q.take(out, 100, 1 << 20);
    out.clear();
    BOOST_TEST(f.use_count() == 1); // no stale copies left in the ring after growth
}

BOOST_AUTO_TEST_CASE(randomised_against_deque_model) {
    struct item {
        int id;
        bool control;
        std::size_t size;
    };
    for (auto policy : {overflow_policy::drop_oldest, overflow_policy::disconnect}) {
        std::size_t const max_frames = 13, max_bytes = 400;
        d::send_queue q(max_frames, max_bytes, policy);
        std::deque<item> model;
        std::size_t model_bytes = 0;
        std::uint64_t model_dropped = 0;
        std::mt19937 rng(policy == overflow_policy::drop_oldest ? 42 : 7);
        int next_id = 0;
        for (int op = 0; op < 10000; ++op) {
            unsigned const r = rng() % 100;
            if (r < 55) {
                std::size_t const size = 8 + rng() % 40;
                item it{next_id++, false, size};
                auto const res = q.push(frame("i" + std::to_string(it.id), size));
                // model
                push_result expect = push_result::queued;
                bool refused = false;
                // Only data frames count against the bounds; control frames are exempt.
                auto data_count = [&] {
                    return static_cast<std::size_t>(std::count_if(
                        model.begin(), model.end(), [](const item& x) { return !x.control; }));
                };
                auto data_bytes = [&] {
                    std::size_t b = 0;
                    for (auto const& x : model)
                        if (!x.control)
                            b += x.size;
                    return b;
                };
                while (data_count() > 0 &&
                       (data_count() >= max_frames || data_bytes() + size > max_bytes)) {
                    if (policy == overflow_policy::disconnect) {
                        refused = true;
                        break;
                    }
                    auto victim = std::find_if(model.begin(), model.end(),
                                               [](const item& x) { return !x.control; });
                    BOOST_TEST_REQUIRE((victim != model.end()),
                                       "model: queue full of control frames at op " << op);
                    model_bytes -= victim->size;
                    model.erase(victim);
                    ++model_dropped;
                    expect = push_result::dropped_oldest;
                }
                if (refused) {
                    expect = push_result::overflow;
                } else {
                    model.push_back(it);
                    model_bytes += size;
                }
                BOOST_TEST_REQUIRE((res == expect), "op " << op);
            } else if (r < 60) {
                std::size_t const size = 8;
                item it{next_id++, true, size};
                q.push_control(frame("i" + std::to_string(it.id), size));
                auto pos = std::find_if(model.begin(), model.end(),
                                        [](const item& x) { return !x.control; });
                model.insert(pos, it);
                model_bytes += size;
            } else {
                std::size_t const mf = 1 + rng() % 5;
                std::size_t const mb = rng() % 120;
                std::vector<d::frame_ptr> out;
                q.take(out, mf, mb);
                std::vector<std::string> expect;
                std::size_t taken = 0;
                while (!model.empty() && expect.size() < mf) {
                    if (!expect.empty() && taken + model.front().size > mb)
                        break;
                    taken += model.front().size;
                    expect.push_back("i" + std::to_string(model.front().id));
                    model_bytes -= model.front().size;
                    model.pop_front();
                }
                std::vector<std::string> got;
                for (auto const& f : out)
                    got.push_back(label_of(f));
                BOOST_TEST_REQUIRE(got == expect, "op " << op);
            }
            BOOST_TEST_REQUIRE(q.size() == model.size(), "op " << op);
            BOOST_TEST_REQUIRE(q.bytes() == model_bytes, "op " << op);
            BOOST_TEST_REQUIRE(q.dropped() == model_dropped, "op " << op);
            BOOST_TEST_REQUIRE(q.empty() == model.empty());
            if (op % 997 == 0 && q.empty())
                q.shrink();
        }
    }
}

BOOST_AUTO_TEST_CASE(long_fifo_wraparound) {
    // unbounded-ish queue, many interleaved pushes and takes of varying batch size
    d::send_queue q(1 << 20, 0, overflow_policy::disconnect);
    std::deque<int> model;
    std::mt19937 rng(1234);
    int next = 0;
    for (int op = 0; op < 10000; ++op) {
        if (rng() % 3 != 0) {
            q.push(frame("n" + std::to_string(next)));
            model.push_back(next++);
        } else {
            std::vector<d::frame_ptr> out;
            q.take(out, 1 + rng() % 7, std::size_t(-1));
            for (auto const& f : out) {
                BOOST_TEST_REQUIRE(!model.empty());
                BOOST_TEST_REQUIRE(label_of(f) == "n" + std::to_string(model.front()));
                model.pop_front();
            }
        }
        BOOST_TEST_REQUIRE(q.size() == model.size());
    }
    auto const rest = drain(q);
    BOOST_TEST_REQUIRE(rest.size() == model.size());
    for (std::size_t i = 0; i < rest.size(); ++i)
        BOOST_TEST_REQUIRE(rest[i] == "n" + std::to_string(model[i]));
}

// ---- priority lanes ----

namespace {

d::frame_ptr pub_frame(std::string label, std::string topic, int phase, bool bulk,
                       std::size_t size = 0) {
    if (label.size() < size)
        label.append(size - label.size(), '.');
    auto f = std::make_shared<d::outbound_frame>();
    f->bytes = std::move(label);
    f->topic = std::move(topic);
    f->phase = phase;
    f->bulk = bulk;
    return f;
}

} // namespace

BOOST_AUTO_TEST_CASE(kpis_overtake_queued_complete) {
    d::send_queue q(100, 0, overflow_policy::disconnect);
    q.push(pub_frame("c1", "kpi:org:a", 2, true)); // complete, medium
    q.push(pub_frame("c2", "kpi:org:b", 2, true));
    q.push(pub_frame("k1", "kpi:org:a", 0, false)); // kpis, high
    q.push(pub_frame("k2", "kpi:org:b", 0, false));
    q.push(frame("ack")); // protocol messages ride the fast lane
    BOOST_TEST(drain(q) == (labels{"k1", "k2", "ack", "c1", "c2"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(same_topic_and_phase_never_reordered) {
    d::send_queue q(100, 0, overflow_policy::disconnect);
    q.push(pub_frame("u1", "alerts:org:a", 1, true));  // medium
    q.push(pub_frame("u2", "alerts:org:a", 1, false)); // urgent, same topic and phase: waits
    q.push(pub_frame("u3", "alerts:org:a", 1, false)); // and so does the next one
    q.push(pub_frame("x1", "alerts:org:b", 1, false)); // another topic overtakes
    BOOST_TEST(drain(q) == (labels{"x1", "u1", "u2", "u3"}), boost::test_tools::per_element());
    // once the bulk frame left, the topic's urgent frames use the fast lane again
    q.push(pub_frame("u4", "alerts:org:a", 1, false));
    q.push(pub_frame("c", "alerts:org:c", 1, true));
    q.push(pub_frame("u5", "alerts:org:a", 1, false));
    BOOST_TEST(drain(q) == (labels{"u4", "u5", "c"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(fifo_within_each_lane) {
    d::send_queue q(100, 0, overflow_policy::disconnect);
    for (int i = 0; i < 6; ++i) {
        q.push(pub_frame("b" + std::to_string(i), "t" + std::to_string(i), 2, true));
        q.push(pub_frame("f" + std::to_string(i), "t" + std::to_string(i), 0, false));
    }
    BOOST_TEST(drain(q) ==
                   (labels{"f0", "f1", "f2", "f3", "f4", "f5", "b0", "b1", "b2", "b3", "b4", "b5"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(control_then_fast_then_bulk_with_take_limits) {
    d::send_queue q(100, 0, overflow_policy::disconnect);
    q.push(pub_frame("b", "t", 2, true, 10));
    q.push(pub_frame("f", "t", 0, false, 10));
    q.push_control(frame("c", 10));
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(q.bytes() == 30u);
    std::vector<d::frame_ptr> out;
    q.take(out, 2, 1000);
    BOOST_TEST_REQUIRE(out.size() == 2u);
    BOOST_TEST(label_of(out[0]) == "c");
    BOOST_TEST(label_of(out[1]) == "f");
    BOOST_TEST(q.bytes() == 10u);
    // a fast frame queued while the batch is in flight still goes before the bulk one
    q.push(pub_frame("f2", "u", 0, false, 10));
    out.clear();
    q.take(out, 100, 15);
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(label_of(out[0]) == "f2");
    BOOST_TEST(drain(q) == (labels{"b"}), boost::test_tools::per_element());
    BOOST_TEST(q.bytes() == 0u);
}

BOOST_AUTO_TEST_CASE(graceful_close_frame_goes_last) {
    d::send_queue q(100, 0, overflow_policy::disconnect);
    q.push(pub_frame("complete", "t", 2, true));
    auto close = std::make_shared<d::outbound_frame>();
    close->bytes = "close";
    close->bulk = true;
    q.push(close);
    BOOST_TEST(drain(q) == (labels{"complete", "close"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(drop_oldest_drops_bulk_first) {
    d::send_queue q(3, 0, overflow_policy::drop_oldest);
    q.push(pub_frame("f1", "a", 0, false));
    q.push(pub_frame("b1", "a", 2, true));
    q.push(pub_frame("f2", "b", 0, false));
    BOOST_TEST((q.push(pub_frame("f3", "c", 0, false)) == push_result::dropped_oldest));
    BOOST_TEST((q.push(pub_frame("f4", "d", 0, false)) == push_result::dropped_oldest));
    BOOST_TEST(q.dropped() == 2u);
    BOOST_TEST(drain(q) == (labels{"f2", "f3", "f4"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(lanes_share_one_bound) {
    d::send_queue q(2, 100, overflow_policy::disconnect);
    BOOST_TEST((q.push(pub_frame("b", "a", 2, true, 60)) == push_result::queued));
    BOOST_TEST((q.push(pub_frame("f", "a", 0, false, 50)) == push_result::overflow)); // bytes
    BOOST_TEST((q.push(pub_frame("f", "a", 0, false, 40)) == push_result::queued));
    BOOST_TEST((q.push(pub_frame("g", "b", 0, false, 1)) == push_result::overflow)); // frames
    q.push_control(frame("c", 500));                                                 // exempt
    BOOST_TEST(q.size() == 3u);
    BOOST_TEST(drain(q) == (labels{"c", "f", "b"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
