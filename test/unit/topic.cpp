#include <rtpush/topic.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

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

} // namespace

BOOST_AUTO_TEST_SUITE(topic)

BOOST_AUTO_TEST_CASE(key_formation) {
    BOOST_TEST(make_topic("kpi").key() == "kpi");
    BOOST_TEST(make_topic("kpi", "o1").key() == "kpi:org:o1");
    BOOST_TEST(make_topic("kpi", "o1", "d2").key() == "kpi:org:o1:dept:d2");
    BOOST_TEST(make_topic("kpi", "o1", "d2", "q3").key() == "kpi:org:o1:dept:d2:queue:q3");
    // a level without the wider one is not part of the key
    BOOST_TEST(make_topic("kpi", "", "d2").key() == "kpi");
    BOOST_TEST(make_topic("kpi", "o1", "", "q3").key() == "kpi:org:o1");
}

BOOST_AUTO_TEST_CASE(depth) {
    BOOST_TEST(make_topic("kpi").scope.depth() == 0);
    BOOST_TEST(make_topic("kpi", "o").scope.depth() == 1);
    BOOST_TEST(make_topic("kpi", "o", "d").scope.depth() == 2);
    BOOST_TEST(make_topic("kpi", "o", "d", "q").scope.depth() == 3);
}

BOOST_AUTO_TEST_CASE(subscriber_keys_widest_first) {
    auto const k3 = make_topic("kpi", "o1", "d2", "q3").subscriber_keys();
    BOOST_TEST(k3[0] == "kpi");
    BOOST_TEST(k3[1] == "kpi:org:o1");
    BOOST_TEST(k3[2] == "kpi:org:o1:dept:d2");
    BOOST_TEST(k3[3] == "kpi:org:o1:dept:d2:queue:q3");
    BOOST_TEST(k3[3] == make_topic("kpi", "o1", "d2", "q3").key());

    auto const k1 = make_topic("kpi", "o1").subscriber_keys();
    BOOST_TEST(k1[0] == "kpi");
    BOOST_TEST(k1[1] == "kpi:org:o1");
    BOOST_TEST(k1[2].empty());
    BOOST_TEST(k1[3].empty());

    auto const k0 = make_topic("alerts").subscriber_keys();
    BOOST_TEST(k0[0] == "alerts");
    BOOST_TEST(k0[1].empty());

    // every subscriber key is the key of the corresponding wider topic
    auto const t = make_topic("c", "o", "d", "q");
    auto const k = t.subscriber_keys();
    BOOST_TEST(k[0] == make_topic("c").key());
    BOOST_TEST(k[1] == make_topic("c", "o").key());
    BOOST_TEST(k[2] == make_topic("c", "o", "d").key());
}

BOOST_AUTO_TEST_CASE(a_refresh_reaches_wider_and_narrower_sources) {
    rtpush::topic const org{"kpi", {"a", "", ""}}, queue{"kpi", {"a", "d", "q"}};
    rtpush::topic const other{"kpi", {"b", "", ""}}, backlog{"backlog", {"a", "", ""}};
    BOOST_TEST(rtpush::refresh_reaches(org, queue));
    BOOST_TEST(rtpush::refresh_reaches(queue, org));
    BOOST_TEST(rtpush::refresh_reaches(org, org));
    BOOST_TEST(!rtpush::refresh_reaches(org, other));
    BOOST_TEST(!rtpush::refresh_reaches(org, backlog));
}

BOOST_AUTO_TEST_CASE(covers) {
    auto const channel = make_topic("kpi");
    auto const org = make_topic("kpi", "a");
    auto const dept = make_topic("kpi", "a", "d1");
    auto const queue = make_topic("kpi", "a", "d1", "q1");
    auto const sibling_org = make_topic("kpi", "b");
    auto const sibling_dept = make_topic("kpi", "a", "d2");
    auto const other_channel = make_topic("alerts", "a", "d1");

    BOOST_TEST(org.covers(org));
    BOOST_TEST(org.covers(dept));
    BOOST_TEST(org.covers(queue));
    BOOST_TEST(channel.covers(queue));
    BOOST_TEST(channel.covers(sibling_org));
    BOOST_TEST(dept.covers(queue));

    BOOST_TEST(!org.covers(sibling_org));
    BOOST_TEST(!org.covers(make_topic("kpi", "b", "d1")));
    BOOST_TEST(!dept.covers(sibling_dept));
    BOOST_TEST(!org.covers(other_channel));
    BOOST_TEST(!channel.covers(other_channel));

    // a narrower subscription does not receive wider publications
    BOOST_TEST(!dept.covers(org));
    BOOST_TEST(!queue.covers(dept));
    BOOST_TEST(!org.covers(channel));
    // prefix of an identifier is not a match
    BOOST_TEST(!make_topic("kpi", "a").covers(make_topic("kpi", "ab")));
}

BOOST_AUTO_TEST_CASE(valid_identifier) {
    BOOST_TEST(rtpush::valid_identifier("abc"));
    BOOST_TEST(rtpush::valid_identifier("A-z_0.9@x"));
    BOOST_TEST(rtpush::valid_identifier(std::string(128, 'x')));
    BOOST_TEST(!rtpush::valid_identifier(std::string(129, 'x')));
    BOOST_TEST(!rtpush::valid_identifier(""));
    BOOST_TEST(!rtpush::valid_identifier("a:b"));
    BOOST_TEST(!rtpush::valid_identifier("a b"));
    BOOST_TEST(!rtpush::valid_identifier("a/b"));
    BOOST_TEST(!rtpush::valid_identifier("caf\xc3\xa9"));
    BOOST_TEST(!rtpush::valid_identifier(std::string("a\0b", 3)));
}

BOOST_AUTO_TEST_CASE(validate) {
    using E = rtpush::error;
    BOOST_TEST(!rtpush::validate(make_topic("kpi")));
    BOOST_TEST(!rtpush::validate(make_topic("kpi", "o", "d", "q")));
    BOOST_TEST(!rtpush::validate(make_topic(std::string(128, 'c'), std::string(128, 'o'))));

    BOOST_TEST((rtpush::validate(make_topic("")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "", "d")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "", "q")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "", "", "q")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o:x")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi:org", "o")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "d:1")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "d", "q:1")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "d e")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "d", "q#")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("k$pi")) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic(std::string(129, 'c'))) == E::invalid_message));
    BOOST_TEST(
        (rtpush::validate(make_topic("kpi", "o", std::string(129, 'd'))) == E::invalid_message));
    BOOST_TEST((rtpush::validate(make_topic("kpi", "o", "d", std::string(129, 'q'))) ==
                E::invalid_message));
}

BOOST_AUTO_TEST_CASE(parse_topic_round_trip) {
    rtpush::topic const samples[] = {
        make_topic("kpi"),
        make_topic("kpi", "o1"),
        make_topic("kpi", "o1", "d2"),
        make_topic("kpi", "o1", "d2", "q3"),
        make_topic("a.b-c_d@e", "ORG", "x.y", "z-1"),
        make_topic(std::string(128, 'c'), std::string(128, 'o'), std::string(128, 'd'),
                   std::string(128, 'q')),
    };
    for (auto const& t : samples) {
        boost::system::error_code ec = rtpush::error::internal_error;
        auto const p = rtpush::parse_topic(t.key(), ec);
        BOOST_TEST(!ec, t.key() << ": " << ec.message());
        BOOST_TEST((p == t), t.key());
        BOOST_TEST(p.key() == t.key());
    }
}

BOOST_AUTO_TEST_CASE(parse_topic_malformed) {
    char const* const bad[] = {
        "",
        ":",
        "kpi:",
        "kpi:org",
        "kpi:org:",
        "kpi:dept:d",
        "kpi:org:o:queue:q",
        "kpi:org:o:dept",
        "kpi:org:o:dept:",
        "kpi:org:o:dept:d:queue",
        "kpi:org:o:dept:d:queue:",
        "kpi:org:o:dept:d:queue:q:",
        "kpi:org:o:dept:d:queue:q:extra:x",
        "kpi:ORG:o",
        "kpi:org::dept:d",
        "k p i",
        "kpi:org:o p",
        ":org:o",
    };
    for (char const* key : bad) {
        boost::system::error_code ec;
        auto const t = rtpush::parse_topic(key, ec);
        BOOST_TEST((ec == rtpush::error::invalid_message), "key '" << key << "'");
        BOOST_TEST(t.channel.empty(), "key '" << key << "'");
        BOOST_TEST(t.scope.org.empty(), "key '" << key << "'");
    }
    // ec is cleared on success after a failure
    boost::system::error_code ec = rtpush::error::invalid_message;
    rtpush::parse_topic("kpi:org:o", ec);
    BOOST_TEST(!ec);
}

BOOST_AUTO_TEST_CASE(key_within) {
    BOOST_TEST(rtpush::key_within("kpi", "kpi"));
    BOOST_TEST(rtpush::key_within("kpi:org:a", "kpi"));
    BOOST_TEST(rtpush::key_within("kpi:org:a:dept:d", "kpi:org:a"));
    BOOST_TEST(!rtpush::key_within("kpi2", "kpi"));
    BOOST_TEST(!rtpush::key_within("kpi2:org:a", "kpi"));
    BOOST_TEST(!rtpush::key_within("kpi:org:ab", "kpi:org:a"));
    BOOST_TEST(!rtpush::key_within("kpi", "kpi:org:a"));
    BOOST_TEST(!rtpush::key_within("kp", "kpi"));
    BOOST_TEST(!rtpush::key_within("alerts:org:a", "kpi"));
    BOOST_TEST(!rtpush::key_within("kpi:org:a", "kpi:org:a:dept:d"));
}

BOOST_AUTO_TEST_SUITE_END()
