// Unit tests for detail/client_protocol.hpp: the protocol's rules over a connection without a
// socket (what a transport provides is recorded).
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include <rtpush/config.hpp>
#include <rtpush/detail/client_protocol.hpp>
#include <rtpush/hub.hpp>

#include <boost/test/unit_test.hpp>

#include <deque>

namespace d = rtpush::detail;
using rtpush::client_message;

namespace {

// A room listing that answers at once with what it was given.
struct fake_directory final : d::presence_directory {
    boost::json::array members;
    std::vector<std::pair<std::size_t, std::string>> asked;
    void async_members(std::size_t shard, std::string key,
                       std::function<void(boost::json::array)> done) override {
        asked.emplace_back(shard, std::move(key));
        done(members);
    }
};

struct fixture {
    rtpush::server_config cfg;
    rtpush::hub hub{cfg.history};
    d::subscription_index index;
    d::shard_counters counters;
    d::connection_quotas quotas;
    d::ack_registry acks;
    std::map<std::string, int> demand;
    d::protocol_context env{hub, cfg, index, counters, &acks, &quotas, 0};
    fixture() {
        index.on_demand([this](const std::string& ch, int change) { demand[ch] += change; });
    }
};

// A connection whose transport writes into vectors.
struct fake_connection final : d::subscriber, d::client_protocol<fake_connection> {
    explicit fake_connection(fixture& f)
        : fx(f) {}
    ~fake_connection() { leave(); }
    fixture& fx;
    d::client_state state;
    std::vector<boost::json::object> sent;
    std::vector<d::frame_ptr> pushed;
    std::uint16_t close_code = 0;

    d::protocol_context& protocol_env() { return fx.env; }
    d::client_state& client() { return state; }
    std::uint64_t id() const { return 7; }
    std::string client_id() const { return "c7"; }
    std::string remote() const { return "127.0.0.1:1"; }
    void send_json(std::string text) { sent.push_back(boost::json::parse(text).as_object()); }
    std::uint64_t hold_answer() { return 0; } // no Socket.IO ACK to hold: answers as sent
    void send_answer(std::uint64_t, std::string text) { send_json(std::move(text)); }
    void send_error(rtpush::error code, std::string_view msg, const boost::json::value& id) {
        send_json(rtpush::message::error(code, msg, id));
    }
    void push(const d::frame_ptr& f) override { pushed.push_back(f); }
    void flush() override {}
    void close(std::uint16_t code, std::string_view) { close_code = code; }
    bool closing() const { return close_code != 0; }
    std::size_t queued() const { return pushed.size(); }
    std::size_t queued_bytes() const { return 0; }
    d::subscriber* as_subscriber() { return this; }
    struct poster_type {
        fake_connection* conn;
        template <class F>
        void post(F f) const {
            f(conn); // at once: nothing runs in between here
        }
    };
    poster_type poster() const { return {const_cast<fake_connection*>(this)}; }

    const boost::json::object& last() const { return sent.back(); }
    std::string last_code() const {
        auto const* c = sent.back().if_contains("code");
        return c ? std::string(c->as_string()) : std::string();
    }
    void send(std::string_view text) {
        boost::system::error_code ec;
        std::string detail;
        auto m = rtpush::parse_client_message(text, {}, ec, detail);
        BOOST_REQUIRE_MESSAGE(!ec, detail);
        handle_message(m);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(client_protocol)

BOOST_AUTO_TEST_CASE(ping_subscribe_unsubscribe) {
    fixture fx;
    fake_connection c(fx);
    c.send(R"({"type":"ping","id":1})");
    BOOST_TEST(c.last().at("type").as_string() == "pong");
    c.send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"},"id":"s"})");
    BOOST_TEST(c.last().at("type").as_string() == "subscribed");
    BOOST_TEST(fx.index.entries().count("kpi:org:acme") == 1u);
    BOOST_TEST(fx.demand["kpi"] == 1);
    BOOST_TEST(c.state.org == "acme"); // the first subscription names an anonymous client's org
    c.send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})"); // idempotent
    BOOST_TEST(fx.demand["kpi"] == 1);
    c.send(R"({"type":"subscribe","channel":"alerts","scope":{"org":"acme"}})");
    BOOST_TEST(c.state.subscription_count() == 2u);
    c.send(R"({"type":"unsubscribe","channel":"kpi","scope":{"org":"other"},"id":2})");
    BOOST_TEST(c.last_code() == "ROOM_NOT_FOUND");
    c.send(R"({"type":"unsubscribe","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(c.last().at("type").as_string() == "unsubscribed");
    BOOST_TEST(fx.demand["kpi"] == 0);
    BOOST_TEST(c.state.subscription_count() == 1u);
    c.leave();
    BOOST_TEST(fx.index.entries().empty());
    BOOST_TEST(fx.demand["alerts"] == 0);
}

BOOST_AUTO_TEST_CASE(auth_first_and_tenant_access) {
    fixture fx;
    fx.cfg.auth_required = true;
    fx.cfg.jwt_secret = "s";
    fake_connection c(fx);
    c.send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(c.last_code() == "UNAUTHORIZED");
    c.send(R"({"type":"authenticate","data":{"token":"not.a.token"},"id":1})");
    BOOST_TEST(c.last_code() == "AUTH_FAILED");
    rtpush::jwt_claims claims;
    claims.org = "acme";
    claims.user = "u";
    claims.channels = {"kpi"};
    c.accept_claims(claims);
    c.send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"globex"}})");
    BOOST_TEST(c.last().at("message").as_string() ==
               "this client may not access organization globex");
    c.send(R"({"type":"get","channel":"alerts","scope":{"org":"acme"}})");
    BOOST_TEST(c.last().at("message").as_string() == "this token does not allow channel alerts");
    c.send(R"({"type":"get","channel":"kpi","scope":{"org":"acme"},"id":"g"})");
    BOOST_TEST(c.last().at("type").as_string() == "snapshot");
}

std::string token_until(std::int64_t exp) {
    boost::json::object c;
    c["sub"] = "u";
    c["org"] = "acme";
    c["exp"] = exp;
    return rtpush::make_jwt_hs256(c, "s");
}

BOOST_AUTO_TEST_CASE(token_expiry_on_an_open_connection) {
    fixture fx;
    fx.cfg.jwt_secret = "s";
    fx.cfg.auth_required = true;
    fx.cfg.jwt_leeway = std::chrono::seconds(30);
    fx.cfg.token_expiry_warning = std::chrono::seconds(60);
    auto const now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::int64_t const exp = now + 100, end = exp + 30; // closed at exp + leeway
    fake_connection anon(fx), c(fx);
    // no token: nothing to check, ever
    anon.check_token_expiry(end + 1000000);
    BOOST_TEST(anon.sent.empty());
    BOOST_TEST(anon.close_code == 0);

    c.send(R"({"type":"authenticate","token":")" + token_until(exp) + R"("})");
    BOOST_TEST(c.last().at("type").as_string() == "authenticated");
    c.send(R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(c.last().at("type").as_string() == "subscribed");
    auto const before = c.sent.size();
    c.check_token_expiry(end - 61);
    BOOST_TEST(c.sent.size() == before); // not yet
    c.check_token_expiry(end - 60);
    BOOST_TEST(c.last().at("type").as_string() == "token_expiring");
    BOOST_TEST(c.last().at("expiresAt").as_int64() == exp);
    BOOST_TEST(c.last().at("expiresIn").as_int64() == 60);
    c.check_token_expiry(end - 30);
    BOOST_TEST(c.sent.size() == before + 1); // once per token

    // a fresh token on the same connection: kept, subscriptions too, warned again later
    c.send(R"({"type":"authenticate","token":")" + token_until(exp + 1000) + R"("})");
    BOOST_TEST(c.last().at("type").as_string() == "authenticated");
    c.check_token_expiry(end);
    BOOST_TEST(c.close_code == 0);
    BOOST_TEST(c.state.subscription_count() == 1u);
    c.check_token_expiry(end + 1000 - 10);
    BOOST_TEST(c.last().at("type").as_string() == "token_expiring");
    c.check_token_expiry(end + 1000);
    BOOST_TEST(c.close_code == 1008);

    // a token without exp never expires; no warning with token_expiry_warning 0
    fake_connection forever(fx);
    rtpush::jwt_claims claims;
    claims.org = "acme";
    claims.user = "u";
    forever.accept_claims(claims);
    forever.check_token_expiry(end + 1000000);
    BOOST_TEST(forever.close_code == 0);
    fx.cfg.token_expiry_warning = std::chrono::seconds(0);
    fake_connection quiet(fx);
    claims.exp = exp;
    quiet.accept_claims(claims);
    quiet.check_token_expiry(end - 1);
    BOOST_TEST(quiet.sent.empty());
    quiet.check_token_expiry(end);
    BOOST_TEST(quiet.close_code == 1008);
}

BOOST_AUTO_TEST_CASE(failed_tokens_are_bounded) {
    fixture fx;
    fx.cfg.jwt_secret = "s";
    fx.cfg.max_auth_failures = 2;
    fake_connection c(fx);
    c.send(R"({"type":"authenticate","data":{"token":"x"}})");
    BOOST_TEST(c.close_code == 0);
    c.send(R"({"type":"authenticate","data":{"token":"y"}})");
    BOOST_TEST(c.close_code == 1008);
}

BOOST_AUTO_TEST_CASE(publish_follows_the_broadcast_rules) {
    fixture fx;
    fake_connection c(fx);
    c.send(R"({"type":"publish","channel":"kpi","data":{"x":1},"id":1})");
    BOOST_TEST(c.last().at("message").as_string() ==
               "publishing from clients is disabled on this server");
    fx.cfg.allow_client_publish = true;
    c.send(R"({"type":"publish","channel":"kpi","scope":{"org":"a"},"data":{"x":1},"id":2})");
    BOOST_TEST(c.last().at("type").as_string() == "published");
    BOOST_TEST(c.last().at("seq").as_int64() == 1);
    // Seed 003's events carry seed 003's payloads, as over REST.
    c.send(
        R"({"type":"publish","channel":"kpi","scope":{"org":"a"},"event":"kpi:update","data":{"health_score":200},"id":3})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE");
    BOOST_TEST(c.last().at("message").as_string().starts_with("health_score"));
    c.send(
        R"({"type":"publish","channel":"alerts","scope":{"org":"a"},"event":"alert:triggered","data":{},"id":4})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE");
    c.send(
        R"({"type":"publish","channel":"kpi","scope":{"org":"a"},"data":1,"requires_ack":true})");
    BOOST_TEST(c.last().at("ackId").as_string().size() > 0u);
}

BOOST_AUTO_TEST_CASE(organization_limit_closes_the_connection) {
    fixture fx;
    fx.cfg.max_connections_per_org = 1;
    fake_connection a(fx), b(fx);
    a.state.org = "acme";
    a.count_connection();
    BOOST_TEST(a.close_code == 0);
    b.state.org = "acme";
    b.count_connection();
    BOOST_TEST(b.close_code == 1008);
    BOOST_TEST(b.last_code() == "CONNECTION_LIMIT");
    BOOST_TEST(fx.counters.rejected.load() == 1u);
    a.leave(); // the count goes back
    fake_connection c(fx);
    c.state.org = "acme";
    c.count_connection();
    BOOST_TEST(c.close_code == 0);
}

BOOST_AUTO_TEST_CASE(user_limit_closes_the_connection) {
    fixture fx;
    fx.cfg.max_connections_per_user = 1;
    auto as = [](fake_connection& c, std::string user, std::string org) {
        c.state.authenticated = true;
        c.state.org = std::move(org);
        c.state.rare_part().user = std::move(user);
        c.count_connection();
    };
    fake_connection a(fx), b(fx), other(fx), anonymous(fx), anonymous2(fx);
    as(a, "alice", "acme");
    a.count_connection(); // counted once, however often asked
    BOOST_TEST(a.close_code == 0);
    as(b, "alice", "globex"); // per user, whatever the organization
    BOOST_TEST(b.close_code == 1008);
    BOOST_TEST(b.last_code() == "CONNECTION_LIMIT");
    BOOST_TEST(fx.quotas.users.count("alice") == 1u);
    as(other, "bob", "acme");
    BOOST_TEST(other.close_code == 0);
    anonymous.state.rare_part().user = "alice"; // a name without a token does not count
    anonymous.count_connection();
    anonymous2.state.rare_part().user = "alice";
    anonymous2.count_connection();
    BOOST_TEST(anonymous2.close_code == 0);
    a.leave();
    BOOST_TEST(fx.quotas.users.count("alice") == 0u);
    BOOST_TEST(fx.quotas.orgs.count("acme") == 1u); // bob's
}

BOOST_AUTO_TEST_CASE(presence_asks_the_directory_and_answers_with_the_id) {
    fixture fx;
    fake_connection c(fx);
    c.send(R"({"type":"presence","id":"p","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE"); // no directory: not available
    fake_directory dir;
    dir.members.push_back(boost::json::object{{"client_id", "c9"}});
    fx.env.presence = &dir;
    c.send(R"({"type":"presence","id":"p","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST_REQUIRE(dir.asked.size() == 1u);
    BOOST_TEST(dir.asked[0].second == "kpi:org:acme");
    BOOST_TEST(c.last().at("type").as_string() == "presence");
    BOOST_TEST(c.last().at("id").as_string() == "p");
    BOOST_TEST(c.last().at("topic").as_string() == "kpi:org:acme");
    BOOST_TEST(c.last().at("count").as_int64() == 1);
    BOOST_TEST(c.last().at("members").as_array()[0].at("client_id").as_string() == "c9");
    // Access as for `get`.
    fx.cfg.jwt_secret = "s";
    fx.cfg.auth_required = true;
    fake_connection t(fx);
    t.send(R"({"type":"presence","id":"x","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(t.last_code() == "UNAUTHORIZED");
    BOOST_TEST(dir.asked.size() == 1u);
}

BOOST_AUTO_TEST_CASE(history_pages_as_the_rest_route) {
    fixture fx;
    for (int i = 1; i <= 5; ++i) {
        rtpush::publication p;
        p.topic = {"kpi", {"acme", "", ""}};
        p.data = i;
        fx.hub.publish(std::move(p));
    }
    fake_connection c(fx);
    c.send(R"({"type":"history","id":"h","channel":"kpi","scope":{"org":"acme"},"limit":2})");
    auto const& page = c.last();
    BOOST_TEST(page.at("type").as_string() == "history");
    BOOST_TEST(page.at("id").as_string() == "h");
    BOOST_TEST(page.at("count").as_int64() == 2);
    BOOST_TEST(page.at("items").as_array()[0].at("data").as_int64() == 5);
    auto const cursor = page.at("next_cursor").as_int64();
    c.send(
        R"({"type":"history","id":"h2","channel":"kpi","scope":{"org":"acme"},"limit":"2","cursor":)" +
        std::to_string(cursor) + "}");
    BOOST_TEST(c.last().at("items").as_array()[0].at("data").as_int64() == 3);
    c.send(R"({"type":"history","id":"b","channel":"kpi","scope":{"org":"acme"},"limit":-1})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE");
    c.send(R"({"type":"history","id":"b","channel":"kpi","order":true})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE");
    BOOST_TEST(std::string(c.last().at("message").as_string()).find("order") != std::string::npos);
    // Access as for `get`: an authenticated client stays in its organization.
    fx.cfg.jwt_secret = "s";
    fx.cfg.auth_required = true;
    fake_connection t(fx);
    t.send(R"({"type":"history","id":"x","channel":"kpi","scope":{"org":"acme"}})");
    BOOST_TEST(t.last_code() == "UNAUTHORIZED");
}

BOOST_AUTO_TEST_CASE(acks_by_client_name) {
    fixture fx;
    fake_connection c(fx);
    c.send(R"({"type":"hello","clientId":"dash-1","id":1})");
    BOOST_TEST(c.last().at("type").as_string() == "hello");
    BOOST_TEST(c.ack_key() == "client:dash-1");
    c.send(R"({"type":"ack","id":"nope"})");
    BOOST_TEST(c.last_code() == "INVALID_MESSAGE");
}

BOOST_AUTO_TEST_SUITE_END()
