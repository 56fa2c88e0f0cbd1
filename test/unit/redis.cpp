#include <rtpush/detail/redis_proto.hpp>
#include <rtpush/detail/redis_slots.hpp>
#include <rtpush/detail/redis_topology.hpp>
#include <rtpush/detail/stream_history.hpp>

#include <boost/test/unit_test.hpp>

#include <string>

namespace d = rtpush::detail;
using kind = d::redis_reply::kind;

BOOST_AUTO_TEST_SUITE(redis_url)

d::redis_url parse_ok(std::string_view s) {
    boost::system::error_code ec;
    auto u = d::parse_redis_url(s, ec);
    BOOST_TEST(!ec, s);
    return u;
}

bool bad(std::string_view s) {
    boost::system::error_code ec;
    d::parse_redis_url(s, ec);
    return ec == rtpush::error::bad_url;
}

BOOST_AUTO_TEST_CASE(host_port_db) {
    auto u = parse_ok("redis://127.0.0.1:6380/2");
    BOOST_TEST(u.host == "127.0.0.1");
    BOOST_TEST(u.port == 6380);
    BOOST_TEST(u.db == 2u);
    BOOST_TEST(!u.tls);
    BOOST_TEST(u.password.empty());
    u = parse_ok("redis://cache.internal");
    BOOST_TEST(u.host == "cache.internal");
    BOOST_TEST(u.port == 6379);
    BOOST_TEST(u.db == 0u);
    u = parse_ok("redis://[::1]:7000/1");
    BOOST_TEST(u.host == "::1");
    BOOST_TEST(u.port == 7000);
    BOOST_TEST(parse_ok("rediss://h:1/").tls);
}

BOOST_AUTO_TEST_CASE(credentials) {
    auto u = parse_ok("redis://app:s3cret@h:1/0");
    BOOST_TEST(u.user == "app");
    BOOST_TEST(u.password == "s3cret");
    u = parse_ok("redis://:only@h"); // password, default user
    BOOST_TEST(u.user.empty());
    BOOST_TEST(u.password == "only");
    u = parse_ok("redis://only@h"); // the older form: a password alone
    BOOST_TEST(u.user.empty());
    BOOST_TEST(u.password == "only");
    u = parse_ok("redis://u:p%40ss%3Aw@h"); // escaped @ and : in the password
    BOOST_TEST(u.password == "p@ss:w");
    BOOST_TEST(u.host == "h");
}

BOOST_AUTO_TEST_CASE(malformed) {
    BOOST_TEST(bad("http://h"));
    BOOST_TEST(bad("h:6379"));
    BOOST_TEST(bad("redis://"));
    BOOST_TEST(bad("redis://h:0"));
    BOOST_TEST(bad("redis://h:70000"));
    BOOST_TEST(bad("redis://h:12x"));
    BOOST_TEST(bad("redis://h/db"));
    BOOST_TEST(bad("redis://u:%zz@h"));
    BOOST_TEST(bad("redis://u:%4@h"));
    BOOST_TEST(bad("redis://[::1"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_resp)

BOOST_AUTO_TEST_CASE(format_command_is_resp) {
    BOOST_TEST(d::format_command(d::redis_cmd("GET", "k")) == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    // binary-safe: spaces, CR LF and NUL in an argument
    std::string const v("a b\r\n\0z", 7);
    BOOST_TEST(d::format_command(d::redis_cmd("SET", "k", v)) ==
               std::string("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$7\r\na b\r\n\0z\r\n", 33));
}

BOOST_AUTO_TEST_CASE(replies_in_pieces) {
    d::redis_parser p;
    std::string const bytes =
        "+OK\r\n:42\r\n$-1\r\n-ERR wrong\r\n*2\r\n$5\r\nhello\r\n*1\r\n:7\r\n";
    // byte by byte: nothing is returned before a reply is complete
    std::vector<d::redis_reply> got;
    for (char c : bytes) {
        BOOST_TEST(p.feed(std::string_view(&c, 1)));
        while (auto r = p.next())
            got.push_back(std::move(*r));
    }
    BOOST_TEST_REQUIRE(got.size() == 5u);
    BOOST_TEST((got[0].type == kind::status));
    BOOST_TEST(got[0].str == "OK");
    BOOST_TEST((got[1].type == kind::integer));
    BOOST_TEST(got[1].integer == 42);
    BOOST_TEST(got[2].is_nil());
    BOOST_TEST(got[3].is_error());
    BOOST_TEST(got[3].str == "ERR wrong");
    BOOST_TEST(got[4].is_array());
    BOOST_TEST_REQUIRE(got[4].elements.size() == 2u);
    BOOST_TEST(got[4].elements[0].str == "hello");
    BOOST_TEST(got[4].elements[1].elements.at(0).integer == 7);
    BOOST_TEST(!p.next());
}

BOOST_AUTO_TEST_CASE(protocol_error_throws) {
    d::redis_parser p;
    p.feed("?what\r\n");
    BOOST_CHECK_THROW(p.next(), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(array_count_past_the_cap_is_a_protocol_error) {
    // hiredis would allocate the element table of the declared count at once (2.4 GB here)
    d::redis_parser p;
    p.feed("*300000000\r\n");
    BOOST_CHECK_THROW(p.next(), std::runtime_error);
    d::redis_parser q; // a count under the cap is an ordinary array
    q.feed("*2\r\n:1\r\n:2\r\n");
    auto r = q.next();
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->elements.size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_engine_format)

BOOST_AUTO_TEST_CASE(publication_round_trip) {
    rtpush::publication p;
    p.topic.channel = "kpi";
    p.topic.scope.org = "o1";
    p.topic.scope.dept = "d 1"; // invalid identifier: refused on decode
    p.event = "kpi:update";
    p.phase = "kpis";
    p.priority = rtpush::priority::urgent;
    p.data = boost::json::parse(R"({"x":[1,2,"three"]})");
    BOOST_TEST(!d::decode_publication(d::encode_publication(p, "ts")));
    p.topic.scope.dept = "d1";
    auto const text = d::encode_publication(p, "2026-01-01T00:00:00.000Z");
    auto s = d::decode_publication(text);
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->pub.topic.key() == p.topic.key());
    BOOST_TEST(s->pub.event == "kpi:update");
    BOOST_TEST(s->pub.phase == "kpis");
    BOOST_TEST((s->pub.priority == rtpush::priority::urgent));
    BOOST_TEST(s->pub.data == p.data);
    BOOST_TEST(s->timestamp == "2026-01-01T00:00:00.000Z");
    BOOST_TEST(s->pub.ack_id.empty());
    p.ack_id = "e1-7"; // requires_ack travels with the publication to every node
    s = d::decode_publication(d::encode_publication(p, "ts"));
    BOOST_TEST_REQUIRE(s.has_value());
    BOOST_TEST(s->pub.ack_id == "e1-7");
    BOOST_TEST(!d::decode_publication("not json"));
    BOOST_TEST(!d::decode_publication("[]"));
    BOOST_TEST(!d::decode_publication(R"({"d":1})")); // no channel
}

BOOST_AUTO_TEST_CASE(messages_and_stream_ids) {
    auto m = d::parse_engine_message("ab12 17 {\"c\":\"kpi\"}");
    BOOST_TEST_REQUIRE(m.has_value());
    BOOST_TEST(m->epoch == "ab12");
    BOOST_TEST(m->seq == 17u);
    BOOST_TEST(m->body == "{\"c\":\"kpi\"}");
    BOOST_TEST(!d::parse_engine_message("ab12 17"));
    BOOST_TEST(!d::parse_engine_message("ab12 x {}"));
    BOOST_TEST(!d::parse_engine_message("ab12 0 {}"));
    BOOST_TEST(!d::parse_engine_message(""));
    BOOST_TEST(d::stream_id_seq("42-0") == 42u);
    BOOST_TEST(d::stream_id_seq("42") == 42u);
    BOOST_TEST(d::stream_id_seq("x-0") == 0u);
}

BOOST_AUTO_TEST_CASE(arrival_order) {
    using a = d::arrival;
    BOOST_TEST((d::classify(0, 1) == a::next));
    BOOST_TEST((d::classify(5, 6) == a::next));
    BOOST_TEST((d::classify(5, 5) == a::duplicate));
    BOOST_TEST((d::classify(5, 2) == a::duplicate));
    BOOST_TEST((d::classify(5, 9) == a::gap));
    BOOST_TEST((d::classify(0, 3) == a::gap)); // a node that never saw the topic's start
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_topology)

d::redis_reply bulk(std::string s) {
    d::redis_reply r;
    r.type = kind::string;
    r.str = std::move(s);
    return r;
}

d::redis_reply array_of(std::vector<d::redis_reply> e) {
    d::redis_reply r;
    r.type = kind::array;
    r.elements = std::move(e);
    return r;
}

BOOST_AUTO_TEST_CASE(host_lists) {
    std::vector<d::host_port> v;
    BOOST_TEST(d::parse_host_list("10.0.0.1:26379,sentinel-b,[::1]:26380", 26379, v));
    BOOST_TEST(v.size() == 3u);
    BOOST_TEST(v[1].host == "sentinel-b");
    BOOST_TEST(v[1].port == 26379);
    BOOST_TEST(v[2].host == "::1");
    BOOST_TEST(v[2].to_string() == "[::1]:26380");
    for (auto bad : {"", "a:1,", ",a:1", "a:0", "a:65536", "a:x", "a b:1", "[::1", "a:"})
        BOOST_TEST(!d::parse_host_list(bad, 26379, v), bad);
}

BOOST_AUTO_TEST_CASE(sentinel_url) {
    boost::system::error_code ec;
    auto ep = d::parse_redis_endpoints(
        "rediss+sentinel://app:p%40ss@s1:5000,s2,[::1]:5002/mymaster/3", ec);
    BOOST_TEST(!ec);
    BOOST_TEST(ep.sentinel());
    BOOST_TEST(ep.master_name == "mymaster");
    BOOST_TEST(ep.sentinels.size() == 3u);
    BOOST_TEST(ep.sentinels[1].port == d::sentinel_default_port);
    BOOST_TEST(ep.url.tls);
    BOOST_TEST(ep.url.user == "app");
    BOOST_TEST(ep.url.password == "p@ss");
    BOOST_TEST(ep.url.db == 3u);
    auto one = d::parse_redis_endpoints("redis://h:1/2", ec);
    BOOST_TEST((!ec && !one.sentinel() && one.url.port == 1));
    for (auto bad : {"redis+sentinel://s1:5000", "redis+sentinel://s1:5000/", "redis+sentinel:///m",
                     "redis+sentinel://s1:5000/m/x", "sentinel://s1/m"}) {
        d::parse_redis_endpoints(bad, ec);
        BOOST_TEST((ec == rtpush::error::bad_url), bad);
    }
}

BOOST_AUTO_TEST_CASE(settings) {
    std::string why;
    auto ep = d::resolve_redis_endpoints("redis://:pw@ignored:1/2", {"a:1", "b"}, "m", {}, why);
    BOOST_TEST(why.empty());
    BOOST_TEST((ep.sentinel() && ep.master_name == "m" && ep.url.password == "pw"));
    BOOST_TEST(ep.sentinels[1].port == d::sentinel_default_port);
    d::resolve_redis_endpoints("redis://h", {"a:1"}, "", {}, why);
    BOOST_TEST(why.find("--redis-master-name") != std::string::npos, why);
    d::resolve_redis_endpoints("redis://h", {}, "m", {}, why);
    BOOST_TEST(why.find("--redis-sentinels") != std::string::npos, why);
    d::resolve_redis_endpoints("redis://h", {"a:x"}, "m", {}, why);
    BOOST_TEST(why.find("'a:x'") != std::string::npos, why);
    d::resolve_redis_endpoints("redis+sentinel://a/m", {"b:1"}, "m", {}, why);
    BOOST_TEST(why.find("twice") != std::string::npos, why);
    d::resolve_redis_endpoints("http://h", {}, "", {}, why);
    BOOST_TEST(why.find("+sentinel://") != std::string::npos, why);
    BOOST_TEST(why.find("+cluster://") != std::string::npos, why);
    auto c = d::resolve_redis_endpoints("redis://:pw@x", {}, "", {"n1:7000", "n2:7001"}, why);
    BOOST_TEST((why.empty() && c.is_cluster() && c.cluster.size() == 2u && c.url.password == "pw"));
    d::resolve_redis_endpoints("redis://x/1", {}, "", {"n1:7000"}, why);
    BOOST_TEST(why.find("database 0") != std::string::npos, why);
    d::resolve_redis_endpoints("redis://x", {"s:1"}, "m", {"n1:7000"}, why);
    BOOST_TEST(why.find("Sentinels") != std::string::npos, why);
    d::resolve_redis_endpoints("redis://x", {}, "", {"n1:y"}, why);
    BOOST_TEST(why.find("'n1:y'") != std::string::npos, why);
    boost::system::error_code ec;
    auto u = d::parse_redis_endpoints("rediss+cluster://:pw@n1:7000,n2:7001", ec);
    BOOST_TEST((!ec && u.is_cluster() && u.url.tls && u.url.password == "pw" &&
                u.cluster[1].port == 7001));
    d::parse_redis_endpoints("redis+cluster://n1:7000/3", ec);
    BOOST_TEST((ec == rtpush::error::bad_url));
    d::parse_redis_endpoints("redis+cluster:///", ec);
    BOOST_TEST((ec == rtpush::error::bad_url));
}

BOOST_AUTO_TEST_CASE(sentinel_replies) {
    auto m = d::sentinel_master(array_of({bulk("127.0.0.1"), bulk("6380")}));
    BOOST_TEST((m && m->host == "127.0.0.1" && m->port == 6380));
    BOOST_TEST(!d::sentinel_master(d::redis_reply{})); // nil: unknown master name
    BOOST_TEST(!d::sentinel_master(array_of({bulk("h"), bulk("0")})));
    auto sw = d::switch_master("mymaster 127.0.0.1 6379 127.0.0.1 6380", "mymaster");
    BOOST_TEST((sw && sw->port == 6380));
    BOOST_TEST(!d::switch_master("other 127.0.0.1 6379 127.0.0.1 6380", "mymaster"));
    BOOST_TEST(!d::switch_master("mymaster 127.0.0.1 6379", "mymaster"));
    BOOST_TEST(d::is_master_role(array_of({bulk("master"), d::redis_reply{}})));
    BOOST_TEST(!d::is_master_role(array_of({bulk("slave")})));
    BOOST_TEST(d::is_demoted_error("READONLY You can't write against a read only replica."));
    BOOST_TEST(!d::is_demoted_error("ERR unknown command"));
    BOOST_TEST(d::online_replicas("# Replication\r\nrole:master\r\nconnected_slaves:2\r\n"
                                  "slave0:ip=10.0.0.2,port=6379,state=online,offset=5,lag=0\r\n"
                                  "slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0\r\n"
                                  "slaves_x:state=online\r\n") == 1u);
    BOOST_TEST(d::online_replicas("role:master\r\nconnected_slaves:0\r\n") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_slots)
using redis_topology::array_of;
using redis_topology::bulk;

d::redis_reply integer(long long i) {
    d::redis_reply r;
    r.type = kind::integer;
    r.integer = i;
    return r;
}

BOOST_AUTO_TEST_CASE(crc16_and_hash_tags) {
    BOOST_TEST(d::crc16("123456789") == 0x31C3); // the check value of CRC16/XMODEM
    BOOST_TEST(d::key_slot("123456789") == 12739);
    BOOST_TEST(d::key_slot("foo") == 12182); // as CLUSTER KEYSLOT foo answers
    BOOST_TEST(d::key_slot("{user1000}.following") == d::key_slot("{user1000}.followers"));
    BOOST_TEST(d::key_slot("{user1000}.following") == d::key_slot("user1000"));
    BOOST_TEST(d::key_slot("foo{}{bar}") == d::key_slot("foo{}{bar}")); // empty tag: whole key
    BOOST_TEST(d::key_slot("foo{}{bar}") != d::key_slot("bar"));
    BOOST_TEST(d::key_slot("foo{{bar}}zap") == d::key_slot("{bar"));
    BOOST_TEST(d::key_slot("foo{bar}{zap}") == d::key_slot("bar"));
}

BOOST_AUTO_TEST_CASE(key_layout) {
    d::redis_keys one{"rt", false};
    BOOST_TEST(one.topic("kpi:org:o1") == "rt:t:kpi:org:o1");
    BOOST_TEST(one.stream("kpi:org:o1") == "rt:s:kpi:org:o1");
    BOOST_TEST(one.topics("kpi") == "rt:topics:kpi");
    BOOST_TEST(one.pubsub("kpi") == "rt:c:kpi");
    BOOST_TEST(one.channel_epoch("kpi") == "rt:epoch:current");
    BOOST_TEST(one.channel_of_pubsub("rt:c:kpi") == "kpi");
    BOOST_TEST(one.channel_of_pubsub("other:c:kpi") == "");
    d::redis_keys cl{"rt", true};
    // every key of a channel in the channel's slot
    auto const slot = cl.slot("kpi");
    for (auto const& k : {cl.topic("kpi:org:o1"), cl.stream("kpi:org:o1"), cl.topics("kpi"),
                          cl.pubsub("kpi"), cl.channel_epoch("kpi"), cl.topic("kpi")})
        BOOST_TEST(d::key_slot(k) == slot, k);
    BOOST_TEST(d::key_slot(cl.node("n1")) == d::key_slot(cl.nodes()));
    BOOST_TEST(d::key_slot(cl.epoch()) == d::key_slot(cl.nodes()));
    BOOST_TEST(cl.channel_of_pubsub(cl.pubsub("kpi")) == "kpi");
    BOOST_TEST(cl.channel_of_pubsub("{rt:}:c") == "");
    BOOST_TEST(cl.channel_of_pubsub("rt:c:kpi") == "");
    BOOST_TEST(cl.slot("kpi") != cl.slot("alerts")); // channels spread over the slots
}

BOOST_AUTO_TEST_CASE(redirects) {
    auto m = d::parse_redirect("MOVED 3999 127.0.0.1:6381");
    BOOST_TEST((m && !m->ask && m->slot == 3999 && m->to.port == 6381));
    auto a = d::parse_redirect("ASK 12182 10.0.0.9:7002");
    BOOST_TEST((a && a->ask && a->slot == 12182 && a->to.host == "10.0.0.9"));
    for (auto bad : {"ERR x", "MOVED", "MOVED 16384 h:1", "MOVED 1 h", "ASK x h:1", "MOVED 1 h:0"})
        BOOST_TEST(!d::parse_redirect(bad), bad);
}

BOOST_AUTO_TEST_CASE(cluster_slots_reply) {
    auto node = [](std::string ip, long long port) {
        return array_of({bulk(std::move(ip)), integer(port), bulk("id")});
    };
    auto const reply = array_of({
        array_of({integer(0), integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)}),
        array_of({integer(5461), integer(10922), node("", 7001)}),
        array_of({integer(10923), integer(16383), node("127.0.0.1", 7002)}),
    });
    d::slot_map m;
    BOOST_TEST(d::parse_cluster_slots(reply, {"10.1.1.1", 7000}, m));
    BOOST_TEST(m.masters.size() == 3u);
    BOOST_TEST(m.complete());
    BOOST_TEST(m.masters[m.owner[0]].port == 7000);
    BOOST_TEST(m.masters[m.owner[5461]].host == "10.1.1.1"); // empty ip: the node asked
    BOOST_TEST(m.masters[m.owner[16383]].port == 7002);
    auto const partial = array_of({array_of({integer(0), integer(100), node("h", 1)})});
    BOOST_TEST(d::parse_cluster_slots(partial, {}, m));
    BOOST_TEST(!m.complete());
    BOOST_TEST(!d::parse_cluster_slots(array_of({array_of({integer(5), integer(1)})}), {}, m));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(stream_history)

namespace {
// A stream entry as XREVRANGE gives it: [id, [m, publication, n, order]].
rtpush::detail::redis_reply entry(std::uint64_t seq, std::uint64_t order, int v,
                                  std::string ts = "2026-01-31T10:00:00.000Z",
                                  std::string scope_org = "o1") {
    using rtpush::detail::redis_reply;
    rtpush::publication p;
    p.topic = rtpush::topic{"kpi", {scope_org, "", ""}};
    p.data = v;
    auto str = [](std::string s) {
        redis_reply r;
        r.type = redis_reply::kind::string;
        r.str = std::move(s);
        return r;
    };
    redis_reply fields;
    fields.type = redis_reply::kind::array;
    fields.elements = {str("m"), str(rtpush::detail::encode_publication(p, ts)), str("n"),
                       str(std::to_string(order))};
    redis_reply e;
    e.type = redis_reply::kind::array;
    e.elements = {str(std::to_string(seq) + "-0"), std::move(fields)};
    return e;
}
} // namespace

BOOST_AUTO_TEST_CASE(iso8601_times_read_back) {
    using rtpush::detail::unix_ms_of_iso8601;
    BOOST_TEST(*unix_ms_of_iso8601("1970-01-01T00:00:00.000Z") == 0);
    BOOST_TEST(*unix_ms_of_iso8601("2026-01-31T10:00:00.250Z") == 1769853600250);
    BOOST_TEST(*unix_ms_of_iso8601("2026-01-31T10:00:00Z") == 1769853600000);
    BOOST_TEST(*unix_ms_of_iso8601("2026-01-31T10:00:00.5Z") == 1769853600500);
    BOOST_TEST(!unix_ms_of_iso8601("2026-02-30T10:00:00.000Z"));
    BOOST_TEST(!unix_ms_of_iso8601("2026-01-31 10:00:00.000Z"));
    BOOST_TEST(!unix_ms_of_iso8601("yesterday"));
    BOOST_TEST(!unix_ms_of_iso8601(""));
}

BOOST_AUTO_TEST_CASE(pages_follow_the_channel_order_across_topics) {
    using namespace rtpush::detail;
    // Two topics of one channel, interleaved: o1 got orders 1, 3, 5; o1:d got 2, 4.
    std::vector<stream_entry> all;
    for (auto [seq, order] : {std::pair{1, 1}, {2, 3}, {3, 5}})
        all.push_back(*parse_stream_entry(entry(seq, order, order), "kpi:org:o1"));
    for (auto [seq, order] : {std::pair{1, 2}, {2, 4}})
        all.push_back(*parse_stream_entry(entry(seq, order, order), "kpi:org:o1:dept:d"));
    BOOST_TEST(all[0].at_ms == 1769853600000);
    rtpush::history_query q;
    q.limit = 2;
    auto values = [](const rtpush::history_page& p) {
        std::vector<std::int64_t> v;
        for (auto const& it : p.items)
            v.push_back(it.as_object().at("data").as_int64());
        return v;
    };
    auto p1 = stream_history_page(all, q, "ep");
    BOOST_TEST(values(p1) == (std::vector<std::int64_t>{5, 4}));
    BOOST_TEST(p1.items[1].as_object().at("topic").as_string() == "kpi:org:o1:dept:d");
    BOOST_TEST(p1.items[1].as_object().at("seq").as_uint64() == 2u);
    BOOST_TEST(p1.items[1].as_object().at("epoch").as_string() == "ep");
    BOOST_TEST_REQUIRE(p1.next_cursor.has_value());
    q.cursor = p1.next_cursor;
    auto p2 = stream_history_page(all, q, "ep");
    BOOST_TEST(values(p2) == (std::vector<std::int64_t>{3, 2}));
    q.cursor = p2.next_cursor;
    auto p3 = stream_history_page(all, q, "ep");
    BOOST_TEST(values(p3) == (std::vector<std::int64_t>{1}));
    BOOST_TEST(!p3.next_cursor.has_value()); // the last page
    // Oldest first, and a time window.
    rtpush::history_query old;
    old.oldest_first = true;
    old.limit = 10;
    BOOST_TEST(values(stream_history_page(all, old, "ep")) ==
               (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
    all.push_back(*parse_stream_entry(entry(4, 6, 6, "2026-01-31T11:00:00.000Z"), "kpi:org:o1"));
    old.since_ms = 1769853600000 + 1;
    BOOST_TEST(values(stream_history_page(all, old, "ep")) == (std::vector<std::int64_t>{6}));
    // Entries written before the order existed (order 0) are never split by a page.
    std::vector<stream_entry> legacy;
    for (auto [seq, order] : {std::pair{1, 0}, {2, 0}, {3, 7}})
        legacy.push_back(*parse_stream_entry(entry(seq, order, seq), "kpi:org:o1"));
    rtpush::history_query first;
    first.oldest_first = true;
    first.limit = 1;
    auto const l1 = stream_history_page(legacy, first, "ep");
    BOOST_TEST(values(l1) == (std::vector<std::int64_t>{1, 2}));
    BOOST_TEST_REQUIRE(l1.next_cursor.has_value());
    first.cursor = l1.next_cursor;
    BOOST_TEST(values(stream_history_page(legacy, first, "ep")) == (std::vector<std::int64_t>{3}));
    // What is not an entry of ours is skipped.
    rtpush::detail::redis_reply junk;
    junk.type = rtpush::detail::redis_reply::kind::array;
    BOOST_TEST(!parse_stream_entry(junk, "kpi:org:o1").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
