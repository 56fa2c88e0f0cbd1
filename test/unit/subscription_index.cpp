// Unit tests for detail/subscription_index.hpp: subscriptions by key, the fan-out loop, demand.
#include <rtpush/detail/subscription_index.hpp>

#include <boost/test/unit_test.hpp>

#include <deque>
#include <map>
#include <random>

namespace d = rtpush::detail;

namespace {

struct recorder final : d::subscriber {
    std::vector<d::frame_ptr> frames;
    void push(const d::frame_ptr& f) override { frames.push_back(f); }
    void flush() override {}
};

d::subscription make(const std::string& key, d::subscriber& owner, std::uint64_t since = 0) {
    d::subscription s;
    s.key = key;
    s.owner = &owner;
    s.since = since;
    return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(subscription_index)

BOOST_AUTO_TEST_CASE(one_call_registers_and_counts_demand) {
    d::subscription_index idx;
    std::map<std::string, int> demand;
    idx.on_demand([&](const std::string& ch, int change) { demand[ch] += change; });
    recorder a, b;
    auto sa = make("kpi:org:acme", a);
    auto sb = make("kpi", b);
    idx.add(sa);
    idx.add(sb);
    BOOST_TEST(demand["kpi"] == 2);
    BOOST_TEST(idx.entries().size() == 2u);
    BOOST_TEST(idx.remove(sa));
    BOOST_TEST(!idx.remove(sa)); // twice: nothing, and no demand change
    BOOST_TEST(demand["kpi"] == 1);
    auto stray = make("kpi", a);
    BOOST_TEST(!idx.remove(stray)); // never added
    BOOST_TEST(demand["kpi"] == 1);
    BOOST_TEST(idx.remove(sb));
    BOOST_TEST(idx.entries().empty());
    BOOST_TEST(demand["kpi"] == 0);
}

BOOST_AUTO_TEST_CASE(deliver_reaches_wider_subscriptions_once_each) {
    d::subscription_index idx;
    recorder org, dept, both, other;
    std::deque<d::subscription> subs{make("kpi:org:a", org), make("kpi:org:a:dept:d", dept),
                                     make("kpi:org:a", both), make("kpi:org:a:dept:d", both),
                                     make("kpi:org:b", other)};
    for (auto& s : subs)
        idx.add(s);
    rtpush::topic const t{"kpi", {"a", "d", ""}};
    auto const keys = t.subscriber_keys();
    auto const f = d::make_shared_frame(std::string("x"));
    BOOST_TEST(idx.deliver(keys, 3, 1, f) == 3u);
    BOOST_TEST(org.frames.size() == 1u);
    BOOST_TEST(dept.frames.size() == 1u);
    BOOST_TEST(both.frames.size() == 1u); // not twice
    BOOST_TEST(other.frames.empty());
    // Already in the subscriber's `initial`: skipped.
    recorder late;
    auto s = make("kpi", late, 5);
    idx.add(s);
    BOOST_TEST(idx.deliver(keys, 3, 5, f) == 3u);
    BOOST_TEST(late.frames.empty());
    BOOST_TEST(idx.deliver(keys, 3, 6, f) == 4u);
    BOOST_TEST(late.frames.size() == 1u);
}

BOOST_AUTO_TEST_CASE(the_all_channel_gets_every_channel_of_its_scope) {
    d::subscription_index idx;
    recorder all_org, all_other, all_top, kpi_and_all;
    std::deque<d::subscription> subs{make("all:org:a", all_org), make("all:org:b", all_other),
                                     make("all", all_top), make("kpi:org:a", kpi_and_all),
                                     make("all:org:a", kpi_and_all)};
    for (auto& s : subs)
        idx.add(s);
    auto const f = d::make_shared_frame(std::string("x"));
    rtpush::topic const kpi{"kpi", {"a", "d", ""}};
    BOOST_TEST(idx.deliver(kpi.subscriber_keys(), 3, 1, f) == 3u);
    BOOST_TEST(all_org.frames.size() == 1u);
    BOOST_TEST(all_top.frames.size() == 1u);
    BOOST_TEST(kpi_and_all.frames.size() == 1u); // once, though it holds both
    BOOST_TEST(all_other.frames.empty());
    rtpush::topic const backlog{"backlog", {}};
    BOOST_TEST(idx.deliver(backlog.subscriber_keys(), 1, 2, f) == 1u); // only the widest
    BOOST_TEST(all_top.frames.size() == 2u);
    // A publication on `all` itself reaches its subscribers once.
    rtpush::topic const on_all{"all", {"a", "", ""}};
    BOOST_TEST(idx.deliver(on_all.subscriber_keys(), 2, 3, f) == 3u);
    // Without `all` subscribers nothing else is looked up.
    for (auto& s : subs)
        idx.remove(s);
    recorder kpi_only;
    auto k = make("kpi", kpi_only);
    idx.add(k);
    BOOST_TEST(idx.deliver(kpi.subscriber_keys(), 3, 4, f) == 1u);
    // "allx" is another channel, not `all`.
    recorder allx;
    auto x = make("allx:org:a", allx);
    idx.add(x);
    BOOST_TEST(idx.deliver(kpi.subscriber_keys(), 3, 5, f) == 1u);
    BOOST_TEST(allx.frames.empty());
}

BOOST_AUTO_TEST_CASE(removal_swaps_and_keeps_positions) {
    d::subscription_index idx;
    recorder r;
    std::deque<d::subscription> subs;
    for (int i = 0; i < 200; ++i)
        subs.push_back(make("k" + std::to_string(i % 3), r));
    std::vector<d::subscription*> live;
    for (auto& s : subs) {
        idx.add(s);
        live.push_back(&s);
    }
    std::mt19937 rng(7);
    while (!live.empty()) {
        auto const k = rng() % live.size();
        BOOST_TEST(idx.remove(*live[k]));
        live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
        for (auto const& [key, v] : idx.entries())
            for (std::size_t i = 0; i < v.size(); ++i)
                BOOST_TEST(v[i]->index == i);
    }
    BOOST_TEST(idx.entries().empty());
}

BOOST_AUTO_TEST_SUITE_END()
