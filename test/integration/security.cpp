// Security over loopback (docs/security.md): each attack fails, and a well-behaved client on
// the same server keeps receiving every message.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include "harness.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

using namespace test;
using rtpush::client_connection;

namespace {

constexpr const char* secret = "integration-secret";

rtpush::server_config secure_config() {
    auto c = default_config();
    c.jwt_secret = secret;
    c.auth_required = true;
    return c;
}

// Tokens and messages are built outside coroutines (GCC 12 and initializer lists).
std::string make_token(std::string sub, std::string org, std::int64_t ttl = 3600,
                       bool publish = false, std::string key = secret,
                       std::string only_channel = {}) {
    auto const now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    boost::json::object c;
    c["sub"] = std::move(sub);
    c["org"] = std::move(org);
    c["exp"] = now + ttl;
    if (publish)
        c["publish"] = true;
    if (!only_channel.empty()) {
        boost::json::array a;
        a.emplace_back(only_channel);
        c["channels"] = std::move(a);
    }
    return rtpush::make_jwt_hs256(c, key);
}

std::string none_token() {
    boost::json::object c;
    c["sub"] = "mallory";
    c["org"] = "acme";
    return rtpush::detail::base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
           rtpush::detail::base64url_encode(boost::json::serialize(c)) + ".";
}

std::string auth_msg(const std::string& token) {
    return R"({"type":"authenticate","id":"a","token":")" + token + "\"}";
}

void publish_n(rtpush::hub& h, std::string org, int n) {
    for (int i = 0; i < n; ++i) {
        rtpush::publication p;
        p.topic = {"kpi", {org, "", ""}};
        p.data = boost::json::object();
        p.data.as_object()["i"] = i;
        BOOST_REQUIRE(!h.publish(std::move(p)).ec);
    }
}

net::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    net::steady_timer t(co_await net::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(net::use_awaitable);
}

// Connects, authenticates with a valid token for `org` and subscribes to kpi:org:<org>.
net::awaitable<void> good_client(client_connection& c, const std::string& url,
                                 const std::string& token, const std::string& org) {
    co_await connect(c, url);
    co_await c.async_send(auth_msg(token));
    auto ok = co_await expect(c, "authenticated");
    BOOST_TEST(ok.at("organizationId").as_string() == org);
    co_await subscribe(c, "kpi", org);
}

// Every one of `n` updates arrives, in seq order from `first`.
net::awaitable<void> expect_updates(client_connection& c, int n, std::uint64_t first = 1) {
    for (int i = 0; i < n; ++i) {
        auto u = co_await expect(c, "update");
        BOOST_TEST(u.at("seq").to_number<std::uint64_t>() == first + static_cast<std::uint64_t>(i));
    }
}

net::awaitable<void> expect_error(client_connection& c, std::string text, std::string code) {
    co_await c.async_send(text);
    auto e = co_await expect(c, "error");
    BOOST_TEST(e.at("code").as_string() == code, text);
}

net::awaitable<void> connect_with(client_connection& c, const std::string& url,
                                  std::vector<std::pair<std::string, std::string>> headers) {
    co_await c.async_connect(url, std::move(headers));
    auto v = boost::json::parse(co_await c.async_receive());
    BOOST_TEST(v.at("type").as_string() == "connected");
}

// The next message is the pong of a ping: nothing else (no leaked update) came first.
net::awaitable<void> expect_nothing_but_pong(client_connection& c) {
    co_await c.async_send(R"({"type":"ping","id":"p"})");
    auto m = co_await next(c);
    BOOST_TEST(m.at("type").as_string() == "pong");
}

http_result http_with(std::uint16_t port, http::verb method, std::string target,
                      std::vector<std::pair<std::string, std::string>> headers,
                      std::string body = {}) {
    return http_call(port, method, std::move(target), std::move(body), {}, std::move(headers));
}

} // namespace

BOOST_AUTO_TEST_SUITE(security_auth)

BOOST_AUTO_TEST_CASE(auth_required_needs_a_secret) {
    auto c = default_config();
    c.auth_required = true;
    BOOST_CHECK_THROW(rtpush::server{c}, std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(auth_required_and_allow_anonymous_contradict) {
    auto c = default_config();
    c.jwt_secret = secret;
    c.auth_required = true;
    c.allow_anonymous = true;
    BOOST_CHECK_THROW(rtpush::server{c}, std::invalid_argument);
}

// A secret alone requires tokens, as auth_required does: no anonymous subscribe, get,
// stream or REST read; allow_anonymous (trusted networks) lets them in again.
BOOST_AUTO_TEST_CASE(a_secret_alone_requires_tokens) {
    auto cfg = default_config();
    cfg.jwt_secret = secret;
    server_fixture fx(cfg);
    auto open_cfg = cfg;
    open_cfg.allow_anonymous = true;
    server_fixture open(open_cfg);
    auto const good_token = make_token("alice", "acme");
    std::vector<std::pair<std::string, std::string>> const none;
    std::vector<std::pair<std::string, std::string>> acme_bearer;
    acme_bearer.emplace_back("Authorization", "Bearer " + good_token);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), bad(ioc.get_executor()),
            anon(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        co_await connect(bad, fx.url() + "?org=acme");
        co_await expect_error(bad, R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await expect_error(bad, R"({"type":"get","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        // with allow_anonymous, the same client reads any organization
        co_await connect(anon, open.url());
        co_await subscribe(anon, "kpi", "globex");
        publish_n(fx.srv.hub(), "acme", 2);
        publish_n(open.srv.hub(), "globex", 2);
        co_await expect_updates(good, 2);
        co_await expect_updates(anon, 2);
        co_await expect_nothing_but_pong(bad);
    });
    std::string const kpis = "/api/kpis?channel=kpi&org=acme";
    std::string const dash = "/api/dashboard?channel=kpi&org=acme";
    BOOST_TEST(http_with(fx.srv.port(), http::verb::get, kpis, none).status == 401u);
    BOOST_TEST(http_with(fx.srv.port(), http::verb::get, dash, none).status == 401u);
    BOOST_TEST(http_with(fx.srv.port(), http::verb::get, dash, acme_bearer).status == 200u);
    publish_n(open.srv.hub(), "acme", 1);
    BOOST_TEST(http_with(open.srv.port(), http::verb::get, dash, none).status == 200u);
}

// exp on an open connection: token_expiring, then close 1008, unless the client presented a
// fresh token on the same connection (its subscription kept). The shard's tick does it.
BOOST_AUTO_TEST_CASE(an_expiring_token_is_warned_then_closed) {
    auto cfg = secure_config();
    cfg.jwt_leeway = std::chrono::seconds(0);
    cfg.token_expiry_warning = std::chrono::seconds(2);
    server_fixture fx(cfg);
    auto const short_token = make_token("alice", "acme", 3);
    auto const fresh = make_token("alice", "acme", 3600);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection a(ioc.get_executor()), b(ioc.get_executor());
        co_await good_client(a, fx.url(), short_token, "acme");
        co_await good_client(b, fx.url(), short_token, "acme");
        auto w = co_await expect(a, "token_expiring");
        BOOST_TEST(w.at("expiresIn").as_int64() <= 2);
        co_await expect(b, "token_expiring");
        co_await b.async_send(auth_msg(fresh));
        co_await expect(b, "authenticated");
        bool closed = false;
        try {
            for (;;)
                co_await a.async_receive();
        } catch (boost::system::system_error const&) {
            closed = true;
        }
        BOOST_TEST(closed);
        BOOST_TEST(a.close_code() == 1008);
        BOOST_TEST(a.close_reason() == "token expired");
        publish_n(fx.srv.hub(), "acme", 2);
        co_await expect_updates(b, 2);
    });
}

BOOST_AUTO_TEST_CASE(unauthenticated_client_may_only_ping_and_authenticate) {
    server_fixture fx(secure_config());
    auto const good_token = make_token("alice", "acme");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), bad(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        co_await connect(bad, fx.url() + "?org=acme"); // the URL names an org: not proof
        co_await expect_error(bad, R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await expect_error(bad, R"({"type":"subscribe","channel":"kpi"})", "UNAUTHORIZED");
        co_await expect_error(bad, R"({"type":"get","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await expect_error(
            bad, R"({"type":"publish","channel":"kpi","scope":{"org":"acme"},"data":1})",
            "UNAUTHORIZED");
        co_await expect_error(bad, R"({"type":"refresh"})", "UNAUTHORIZED");
        publish_n(fx.srv.hub(), "acme", 10);
        co_await expect_nothing_but_pong(bad);
        co_await expect_updates(good, 10);
        // the bad client is not counted as an acme connection
        auto conns = http_call(fx.srv.port(), http::verb::get, "/api/connections?org=acme");
        BOOST_TEST(conns.body.at("total_count").to_number<std::uint64_t>() == 1u);
    });
}

BOOST_AUTO_TEST_CASE(forged_expired_and_alg_none_tokens_fail) {
    auto cfg = secure_config();
    cfg.max_auth_failures = 10;
    server_fixture fx(cfg);
    auto const good_token = make_token("alice", "acme");
    std::vector<std::string> const bad_tokens = {
        make_token("mallory", "acme", 3600, true, "guessed-secret"), // forged
        make_token("alice", "acme", -3600),                          // expired an hour ago
        none_token(),                                                // alg none
        "not-a-token",
        good_token.substr(0, good_token.size() - 3), // truncated signature
        ""};
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), bad(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        co_await connect(bad, fx.url());
        std::uint64_t published = 0;
        for (auto const& t : bad_tokens) {
            co_await expect_error(bad, auth_msg(t), "AUTH_FAILED");
            co_await expect_error(bad,
                                  R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})",
                                  "UNAUTHORIZED");
            publish_n(fx.srv.hub(), "acme", 2);
            published += 2;
        }
        // authenticate with data.token (seed 001's shape) and the right token: accepted
        co_await bad.async_send(R"({"type":"authenticate","data":{"token":")" + good_token +
                                "\"}}");
        auto ok = co_await expect(bad, "authenticated");
        BOOST_TEST(ok.at("userId").as_string() == "alice");
        co_await expect_updates(good, static_cast<int>(published));
    });
}

BOOST_AUTO_TEST_CASE(token_guessing_is_closed_after_max_auth_failures) {
    auto cfg = secure_config();
    cfg.max_auth_failures = 3;
    server_fixture fx(cfg);
    auto const good_token = make_token("alice", "acme");
    auto const guess = make_token("mallory", "acme", 3600, true, "guess");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), bad(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        co_await connect(bad, fx.url());
        for (int i = 0; i < 3; ++i)
            co_await expect_error(bad, auth_msg(guess), "AUTH_FAILED");
        std::uint16_t code = 0;
        for (;;) {
            auto ev = co_await bad.async_read_event();
            if (ev.kind == client_connection::event::close) {
                code = ev.code;
                BOOST_TEST(ev.payload == "too many failed authentications");
                break;
            }
        }
        BOOST_TEST(code == 1008);
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
    });
}

BOOST_AUTO_TEST_CASE(tokens_at_the_handshake) {
    server_fixture fx(secure_config());
    auto const good_token = make_token("alice", "acme");
    auto const expired = make_token("alice", "acme", -3600);
    auto const forged = make_token("alice", "acme", 3600, false, "nope");
    std::vector<std::string> const refused_tokens = {expired, forged, none_token()};
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), header(ioc.get_executor()),
            query(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        // Authorization: Bearer, then ?token=: authenticated from the start
        std::vector<std::pair<std::string, std::string>> h;
        h.emplace_back("Authorization", "Bearer " + good_token);
        co_await connect_with(header, fx.url(), h);
        co_await subscribe(header, "kpi", "acme");
        co_await connect(query, fx.url() + "?token=" + good_token);
        co_await subscribe(query, "kpi", "acme");
        // bad tokens refuse the handshake with 401
        for (auto const& t : refused_tokens) {
            client_connection b(ioc.get_executor()), q(ioc.get_executor());
            std::vector<std::pair<std::string, std::string>> bh;
            bh.emplace_back("Authorization", "Bearer " + t);
            bool refused = false;
            try {
                co_await b.async_connect(fx.url(), bh);
            } catch (boost::system::system_error const&) {
                refused = true;
            }
            BOOST_TEST(refused);
            BOOST_TEST(b.handshake_status() == 401u);
            BOOST_TEST(b.handshake_body().find("AUTH_FAILED") != std::string::npos);
            refused = false;
            try {
                co_await q.async_connect(fx.url() + "?token=" + t);
            } catch (boost::system::system_error const&) {
                refused = true;
            }
            BOOST_TEST(refused);
            BOOST_TEST(q.handshake_status() == 401u);
        }
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
        co_await expect_updates(header, 5);
        co_await expect_updates(query, 5);
    });
}

BOOST_AUTO_TEST_CASE(unauthenticated_connection_closed_after_auth_timeout) {
    auto cfg = secure_config();
    cfg.auth_timeout = 400ms;
    server_fixture fx(cfg);
    auto const good_token = make_token("alice", "acme");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), idle(ioc.get_executor());
        co_await good_client(good, fx.url(), good_token, "acme");
        auto const t0 = std::chrono::steady_clock::now();
        co_await connect(idle, fx.url());
        std::uint16_t code = 0;
        for (;;) {
            auto ev = co_await idle.async_read_event();
            if (ev.kind == client_connection::event::close) {
                code = ev.code;
                BOOST_TEST(ev.payload == "authentication timeout");
                break;
            }
        }
        auto const took = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(code == 1008);
        BOOST_TEST(took >= 350ms);
        BOOST_TEST(took < 2000ms);
        // the authenticated client outlived the deadline and still gets everything
        co_await sleep_for(300ms);
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(security_authz)

BOOST_AUTO_TEST_CASE(cross_org_access_is_refused) {
    server_fixture fx(secure_config());
    auto const alice = make_token("alice", "acme");
    auto const eve = make_token("eve", "globex");
    auto const kpi_only = make_token("carol", "acme", 3600, false, secret, "alerts");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), attacker(ioc.get_executor()),
            limited(ioc.get_executor());
        co_await good_client(good, fx.url(), alice, "acme");
        co_await good_client(attacker, fx.url(), eve, "globex");
        co_await expect_error(attacker,
                              R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await expect_error(
            attacker,
            R"({"type":"subscribe","channel":"kpi","scope":{"organization_id":"acme","dept":"support"}})",
            "UNAUTHORIZED");
        // channel-wide spans every organization
        co_await expect_error(attacker, R"({"type":"subscribe","channel":"kpi"})", "UNAUTHORIZED");
        co_await expect_error(attacker, R"({"type":"get","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await expect_error(attacker,
                              R"({"type":"refresh","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        // re-authenticating into another organization is refused too
        co_await expect_error(attacker, auth_msg(alice), "AUTH_FAILED");
        // a token limited to `alerts` cannot subscribe to kpi, even in its own org
        co_await connect(limited, fx.url() + "?token=" + kpi_only);
        co_await expect_error(limited,
                              R"({"type":"subscribe","channel":"kpi","scope":{"org":"acme"}})",
                              "UNAUTHORIZED");
        co_await subscribe(limited, "alerts", "acme");
        publish_n(fx.srv.hub(), "acme", 10);
        co_await expect_nothing_but_pong(attacker);
        co_await expect_nothing_but_pong(limited);
        co_await expect_updates(good, 10);
    });
}

BOOST_AUTO_TEST_CASE(publish_needs_the_publish_claim) {
    server_fixture fx(secure_config());
    auto const reader = make_token("alice", "acme");
    auto const writer = make_token("bob", "acme", 3600, true);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), r(ioc.get_executor()), w(ioc.get_executor());
        co_await good_client(good, fx.url(), reader, "acme");
        co_await good_client(r, fx.url(), reader, "acme");
        co_await good_client(w, fx.url(), writer, "acme");
        co_await expect_error(
            r, R"({"type":"publish","channel":"kpi","scope":{"org":"acme"},"data":{"x":1}})",
            "UNAUTHORIZED");
        co_await expect_error(
            w, R"({"type":"publish","channel":"kpi","scope":{"org":"globex"},"data":{"x":1}})",
            "UNAUTHORIZED");
        co_await w.async_send(
            R"({"type":"publish","channel":"kpi","scope":{"org":"acme"},"data":{"x":2}})");
        auto p = co_await expect(w, "published");
        BOOST_TEST(p.at("seq").to_number<std::uint64_t>() == 1u);
        auto u = co_await expect(good, "update");
        BOOST_TEST(u.at("data").at("x").as_int64() == 2);
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5, 2);
    });
}

BOOST_AUTO_TEST_CASE(admin_routes_need_the_admin_key) {
    auto cfg = default_config();
    cfg.admin_key = "K3y";
    cfg.jwt_secret = secret;
    server_fixture fx(cfg);
    std::vector<std::pair<std::string, std::string>> acme_bearer, globex_bearer;
    acme_bearer.emplace_back("Authorization", "Bearer " + make_token("alice", "acme"));
    globex_bearer.emplace_back("Authorization", "Bearer " + make_token("eve", "globex"));
    auto const port = fx.srv.port();
    std::string const body = R"({"channel":"kpi","target":{"organization_id":"acme"},"data":{}})";
    std::vector<std::pair<std::string, std::string>> const none;
    std::vector<std::pair<std::string, std::string>> wrong, x_api, apikey;
    wrong.emplace_back("X-API-Key", "guess");
    x_api.emplace_back("X-API-Key", "K3y");
    apikey.emplace_back("Authorization", "apikey K3y");
    std::vector<std::string> const admin_gets = {"/api/stats", "/api/connections",
                                                 "/api/connections/c1", "/api/rooms",
                                                 "/api/ws/connections"};
    auto const good_token = make_token("alice", "acme");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor());
        // a secret: tokens are required (docs/security.md, "Defaults")
        co_await good_client(good, fx.url(), good_token, "acme");
        BOOST_TEST(http_with(port, http::verb::get, "/api/health", none).status == 200u);
        for (auto const& route : admin_gets) {
            auto r = http_with(port, http::verb::get, route, none);
            BOOST_TEST(r.status == 401u, route);
            BOOST_TEST(r.body.at("error").at("code").as_string() == "UNAUTHORIZED");
            BOOST_TEST(http_with(port, http::verb::get, route, wrong).status == 401u);
        }
        BOOST_TEST(http_with(port, http::verb::post, "/api/broadcast", none, body).status == 401u);
        BOOST_TEST(http_with(port, http::verb::post, "/api/broadcast", wrong, body).status == 401u);
        BOOST_TEST(http_with(port, http::verb::post, "/api/ws/broadcast/kpi", none, body).status ==
                   401u);
        BOOST_TEST(http_with(port, http::verb::post, "/api/refresh/kpi", none).status == 401u);
        // with the key
        BOOST_TEST(http_with(port, http::verb::post, "/api/broadcast", x_api, body).status == 200u);
        BOOST_TEST(http_with(port, http::verb::post, "/api/broadcast", apikey, body).status ==
                   200u);
        BOOST_TEST(http_with(port, http::verb::get, "/api/connections", x_api).status == 200u);
        // the REST fallback serves a tenant's data to the admin or that tenant's token only
        std::string const dash = "/api/dashboard?channel=kpi&org=acme";
        BOOST_TEST(http_with(port, http::verb::get, dash, none).status == 401u);
        BOOST_TEST(http_with(port, http::verb::get, dash, globex_bearer).status == 401u);
        BOOST_TEST(http_with(port, http::verb::get, dash, acme_bearer).status == 200u);
        BOOST_TEST(http_with(port, http::verb::get, dash, x_api).status == 200u);
        // the good client received exactly the two authorised broadcasts
        co_await expect_updates(good, 2);
        co_await expect_nothing_but_pong(good);
    });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(security_origin)

BOOST_AUTO_TEST_CASE(foreign_origin_cannot_open_a_websocket) {
    auto cfg = default_config();
    cfg.allowed_origins = {"https://app.example.com", "http://localhost:3000/"};
    server_fixture fx(cfg);
    std::vector<std::string> const foreign = {"https://evil.example", "http://app.example.com",
                                              "https://app.example.com.evil.net", "null"};
    std::vector<std::string> const allowed = {"https://app.example.com", "HTTPS://APP.example.com",
                                              "http://localhost:3000"};
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor());
        co_await connect(good, fx.url()); // no Origin: a non-browser client
        co_await subscribe(good, "kpi", "acme");
        for (auto const& o : foreign) {
            client_connection c(ioc.get_executor());
            std::vector<std::pair<std::string, std::string>> h;
            h.emplace_back("Origin", o);
            bool refused = false;
            try {
                co_await c.async_connect(fx.url(), h);
            } catch (boost::system::system_error const&) {
                refused = true;
            }
            BOOST_TEST(refused, o);
            BOOST_TEST(c.handshake_status() == 403u);
            BOOST_TEST(c.handshake_body().find("ORIGIN_NOT_ALLOWED") != std::string::npos);
        }
        for (auto const& o : allowed) {
            client_connection c(ioc.get_executor());
            std::vector<std::pair<std::string, std::string>> h;
            h.emplace_back("Origin", o);
            co_await connect_with(c, fx.url(), h);
            co_await c.async_close();
        }
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
    });
}

BOOST_AUTO_TEST_CASE(cors_headers_for_allowed_origins_only) {
    auto cfg = default_config();
    cfg.allowed_origins = {"https://app.example.com"};
    server_fixture fx(cfg);
    auto const port = fx.srv.port();
    std::vector<std::pair<std::string, std::string>> ok, evil;
    ok.emplace_back("Origin", "https://app.example.com");
    evil.emplace_back("Origin", "https://evil.example");
    auto r = http_with(port, http::verb::get, "/api/health", ok);
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.res[http::field::access_control_allow_origin] == "https://app.example.com");
    BOOST_TEST(r.res[http::field::vary] == "Origin");
    r = http_with(port, http::verb::get, "/api/health", evil);
    BOOST_TEST(r.status == 200u);
    BOOST_TEST(r.res[http::field::access_control_allow_origin].empty());
    r = http_with(port, http::verb::options, "/api/broadcast", ok);
    BOOST_TEST(r.status == 204u);
    BOOST_TEST(r.res[http::field::access_control_allow_methods].find("POST") != std::string::npos);
    BOOST_TEST(r.res[http::field::access_control_allow_headers].find("X-API-Key") !=
               std::string::npos);
    r = http_with(port, http::verb::options, "/api/broadcast", evil);
    BOOST_TEST(r.status == 204u);
    BOOST_TEST(r.res[http::field::access_control_allow_origin].empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(security_limits)

BOOST_AUTO_TEST_CASE(connections_per_org) {
    auto cfg = secure_config();
    cfg.max_connections_per_org = 2;
    server_fixture fx(cfg);
    auto const acme = make_token("alice", "acme");
    auto const globex = make_token("gina", "globex");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), second(ioc.get_executor()),
            third(ioc.get_executor()), other(ioc.get_executor()), later(ioc.get_executor());
        co_await good_client(good, fx.url(), acme, "acme");
        co_await connect(second, fx.url() + "?token=" + acme);
        // the third acme connection: counted when its org is known (its authenticate)
        co_await connect(third, fx.url());
        co_await third.async_send(auth_msg(acme));
        co_await expect(third, "authenticated");
        auto e = co_await next(third);
        BOOST_TEST(e.at("code").as_string() == "CONNECTION_LIMIT");
        for (;;) {
            auto ev = co_await third.async_read_event();
            if (ev.kind == client_connection::event::close) {
                BOOST_TEST(ev.code == 1008);
                BOOST_TEST(ev.payload == "organization connection limit reached");
                break;
            }
        }
        // other organizations are not affected
        co_await good_client(other, fx.url(), globex, "globex");
        // a closed connection frees its place
        co_await second.async_close();
        co_await sleep_for(200ms);
        co_await connect(later, fx.url() + "?token=" + acme);
        co_await subscribe(later, "kpi", "acme");
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
        co_await expect_updates(later, 5);
    });
}

// Per user (the token's sub), across organizations and transports' ways of presenting the
// token; a fresh token on the same connection is not a second connection.
BOOST_AUTO_TEST_CASE(connections_per_user) {
    auto cfg = secure_config();
    cfg.max_connections_per_user = 2;
    server_fixture fx(cfg);
    auto const alice = make_token("alice", "acme");
    auto const alice_fresh = make_token("alice", "acme", 7200);
    auto const bob = make_token("bob", "acme");
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection first(ioc.get_executor()), second(ioc.get_executor()),
            third(ioc.get_executor()), other(ioc.get_executor()), later(ioc.get_executor());
        co_await good_client(first, fx.url(), alice, "acme");
        co_await connect(second, fx.url() + "?token=" + alice);
        co_await first.async_send(auth_msg(alice_fresh)); // the same user again: no new count
        co_await expect(first, "authenticated");
        co_await connect(third, fx.url());
        co_await third.async_send(auth_msg(alice));
        co_await expect(third, "authenticated");
        auto e = co_await next(third);
        BOOST_TEST(e.at("code").as_string() == "CONNECTION_LIMIT");
        BOOST_TEST(std::string(e.at("message").as_string()).find("user alice") !=
                   std::string::npos);
        for (;;) {
            auto ev = co_await third.async_read_event();
            if (ev.kind == client_connection::event::close) {
                BOOST_TEST(ev.code == 1008);
                BOOST_TEST(ev.payload == "user connection limit reached");
                break;
            }
        }
        co_await good_client(other, fx.url(), bob, "acme"); // another user of the same org
        co_await second.async_close();
        co_await sleep_for(200ms);
        co_await good_client(later, fx.url(), alice, "acme");
        publish_n(fx.srv.hub(), "acme", 3);
        co_await expect_updates(first, 3);
        co_await expect_updates(other, 3);
        co_await expect_updates(later, 3);
    });
    auto const metrics = http_call(fx.srv.port(), http::verb::get, "/metrics");
    BOOST_TEST(metrics.raw.find(
                   R"(rtpush_connections_rejected_total{reason="user_connection_limit"} 1)") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(handshakes_per_ip) {
    auto cfg = default_config();
    cfg.max_handshakes_per_ip = 4;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        std::vector<std::unique_ptr<client_connection>> more;
        int refused = 0;
        for (int i = 0; i < 10; ++i) {
            more.push_back(std::make_unique<client_connection>(ioc.get_executor()));
            try {
                co_await more.back()->async_connect(fx.url());
            } catch (boost::system::system_error const&) {
                ++refused;
                BOOST_TEST(more.back()->handshake_status() == 429u);
                BOOST_TEST(more.back()->handshake_body().find("RATE_LIMIT_EXCEEDED") !=
                           std::string::npos);
            }
        }
        BOOST_TEST(refused >= 6); // a burst of 4 (the good client took one), then refused
        BOOST_TEST(refused <= 8);
        // REST is not a handshake: still served
        BOOST_TEST(http_call(fx.srv.port(), http::verb::get, "/api/health").status == 200u);
        co_await sleep_for(1100ms); // the bucket refills
        client_connection after(ioc.get_executor());
        co_await connect(after, fx.url());
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
    });
}

BOOST_AUTO_TEST_CASE(message_flood_is_limited_then_closed) {
    auto cfg = default_config();
    cfg.max_messages_per_second = 50;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), eager(ioc.get_executor()),
            flood(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        // a little over the limit: some messages refused, the connection stays
        co_await connect(eager, fx.url());
        for (int i = 0; i < 70; ++i)
            co_await eager.async_send(R"({"type":"ping"})");
        int pongs = 0, limited = 0;
        while (pongs + limited < 70) {
            auto m = co_await next(eager);
            if (m.at("type").as_string() == "pong")
                ++pongs;
            else if (m.at("code").as_string() == "RATE_LIMIT_EXCEEDED")
                ++limited;
        }
        BOOST_TEST(pongs >= 50);
        BOOST_TEST(limited >= 1);
        co_await sleep_for(1100ms);
        co_await expect_nothing_but_pong(eager);
        // a flood (far above 3x the rate) is closed with 1008
        co_await connect(flood, fx.url());
        for (int i = 0; i < 1000; ++i)
            co_await flood.async_send(R"({"type":"ping"})");
        std::uint16_t code = 0;
        for (;;) {
            auto ev = co_await flood.async_read_event();
            if (ev.kind == client_connection::event::close) {
                code = ev.code;
                BOOST_TEST(ev.payload == "message rate limit exceeded");
                break;
            }
        }
        BOOST_TEST(code == 1008);
        publish_n(fx.srv.hub(), "acme", 20);
        co_await expect_updates(good, 20);
        co_await expect_nothing_but_pong(eager);
    });
}

BOOST_AUTO_TEST_CASE(slowloris_handshake_is_closed_within_handshake_timeout) {
    auto cfg = default_config();
    cfg.handshake_timeout = 500ms;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        net::ip::tcp::socket s(ioc);
        co_await s.async_connect({net::ip::make_address("127.0.0.1"), fx.srv.port()},
                                 net::use_awaitable);
        std::string const request =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        s.non_blocking(true);
        auto const t0 = std::chrono::steady_clock::now();
        bool closed = false;
        std::size_t sent = 0;
        char buf[256];
        for (; sent < request.size() && !closed; ++sent) {
            boost::system::error_code ec;
            net::write(s, net::buffer(request.data() + sent, 1), ec);
            co_await sleep_for(50ms);
            auto const n = s.read_some(net::buffer(buf), ec);
            closed = (ec && ec != net::error::would_block) || (!ec && n == 0);
        }
        auto const took = std::chrono::steady_clock::now() - t0;
        BOOST_TEST(closed);
        BOOST_TEST(sent < request.size()); // it never got its upgrade
        BOOST_TEST(took >= 450ms);
        BOOST_TEST(took < 1500ms);
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
    });
}

BOOST_AUTO_TEST_CASE(deep_json_huge_message_and_empty_continuations) {
    server_fixture fx; // default limits: 1 MiB messages, JSON depth 32
    namespace d = rtpush::detail;
    std::string const deep =
        R"({"type":"ping","x":)" + std::string(10000, '[') + std::string(10000, ']') + "}";
    // {"type":"ping" + 100k empty continuation frames + }: fragments, none of them final
    std::string fragments;
    d::append_frame(fragments, d::opcode::text, R"({"type":"ping")", true, 0x01020304);
    fragments[0] = static_cast<char>(fragments[0] & 0x7f);
    for (int i = 0; i < 100000; ++i) {
        std::size_t const at = fragments.size();
        d::append_frame(fragments, d::opcode::continuation, "", true, 0x01020304);
        fragments[at] = static_cast<char>(fragments[at] & 0x7f);
    }
    d::append_frame(fragments, d::opcode::continuation, "}", true, 0x01020304);
    std::string big;
    d::append_frame(big, d::opcode::text, std::string(1024 * 1024 + 1, ' '), true, 0x01020304);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), c1(ioc.get_executor()), c2(ioc.get_executor()),
            c3(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        // 10k-deep JSON: refused at depth 33, the connection stays
        co_await connect(c1, fx.url());
        co_await expect_error(c1, deep, "INVALID_MESSAGE");
        co_await expect_nothing_but_pong(c1);
        publish_n(fx.srv.hub(), "acme", 5);
        // 100k empty continuation frames: reassembled into one small message
        co_await connect(c2, fx.url());
        co_await c2.async_send_raw(fragments);
        auto pong = co_await next(c2);
        BOOST_TEST(pong.at("type").as_string() == "pong");
        publish_n(fx.srv.hub(), "acme", 5);
        // 1 MiB + 1: MESSAGE_TOO_LARGE and close 1009
        co_await connect(c3, fx.url());
        // the header announces 1 MiB + 1: refused from it, nothing of the payload is buffered
        // (sending only a part also keeps our write from racing the server's close)
        co_await c3.async_send_raw(big.substr(0, 14 + 4096));
        auto e = co_await next(c3);
        BOOST_TEST(e.at("code").as_string() == "MESSAGE_TOO_LARGE");
        for (;;) {
            auto ev = co_await c3.async_read_event();
            if (ev.kind == client_connection::event::close) {
                BOOST_TEST(ev.code == 1009);
                break;
            }
        }
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 15);
    });
}

BOOST_AUTO_TEST_CASE(total_connections_n_plus_1) {
    auto cfg = default_config();
    cfg.max_connections = 3;
    server_fixture fx(cfg);
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), b(ioc.get_executor()), c(ioc.get_executor()),
            over(ioc.get_executor()), later(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        co_await connect(b, fx.url());
        co_await connect(c, fx.url());
        // the fourth of three: refused at the handshake, nothing else is disturbed
        bool refused = false;
        try {
            co_await over.async_connect(fx.url());
        } catch (boost::system::system_error const&) {
            refused = true;
        }
        BOOST_TEST(refused);
        BOOST_TEST(over.handshake_status() == 503u);
        BOOST_TEST(over.handshake_body().find("CONNECTION_LIMIT") != std::string::npos);
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5);
        // a closed connection frees its place
        co_await c.async_close();
        co_await sleep_for(200ms);
        co_await connect(later, fx.url());
        publish_n(fx.srv.hub(), "acme", 5);
        co_await expect_updates(good, 5, 6);
        BOOST_TEST(fx.srv.counters().at("connections_rejected").to_number<std::uint64_t>() >= 1u);
    });
}

// Found by fuzzing (docs/security.md, "Fuzzing"): numbers beyond double range, and request
// bytes above ASCII echoed into JSON, made answers that are not JSON.
BOOST_AUTO_TEST_CASE(unrepresentable_input_is_refused_and_answers_stay_json) {
    auto cfg = default_config();
    cfg.allow_client_publish = true;
    cfg.allowed_origins = {"https://app.example.com"};
    server_fixture fx(cfg);
    auto const port = fx.srv.port();
    std::string const upgrade = "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n";
    run([&](net::io_context& ioc) -> net::awaitable<void> {
        client_connection good(ioc.get_executor()), pub(ioc.get_executor());
        co_await connect(good, fx.url());
        co_await subscribe(good, "kpi", "acme");
        co_await connect(pub, fx.url());
        // Infinity has no JSON form: refused, never published to `good`
        co_await expect_error(
            pub, R"({"type":"publish","channel":"kpi","scope":{"org":"acme"},"data":{"x":1e400}})",
            "INVALID_MESSAGE");
        co_await pub.async_send(R"({"type":"ping","id":-1e999})");
        auto e = co_await expect(pub, "error");
        BOOST_TEST(e.at("code").as_string() == "INVALID_MESSAGE");
        BOOST_TEST(!e.contains("id"));
        auto rest = http_call(port, http::verb::post, "/api/broadcast",
                              R"({"channel":"kpi","scope":{"org":"acme"},"data":[1e309]})");
        BOOST_TEST(rest.status == 400u);
        BOOST_TEST(rest.body.at("error").at("message").as_string() == "a number is out of range");
        // bytes above ASCII in the target and the Origin: refused with a JSON body
        auto path = http_call(port, {}, {}, {}, "GET /w\xff\xfes HTTP/1.1\r\n" + upgrade + "\r\n");
        BOOST_TEST(path.status == 404u);
        BOOST_TEST(path.body.is_object(), path.raw);
        auto origin = http_call(port, {}, {}, {},
                                "GET /ws HTTP/1.1\r\n" + upgrade + "Origin: https://\xc3(\r\n\r\n");
        BOOST_TEST(origin.status == 403u);
        BOOST_TEST(origin.body.is_object(), origin.raw);
        auto org = http_call(port, {}, {}, {}, "GET /ws?org=%FF HTTP/1.1\r\n" + upgrade + "\r\n");
        BOOST_TEST(org.status == 400u);
        BOOST_TEST(org.body.at("error").at("code").as_string() == "INVALID_MESSAGE");
        // `good` received nothing of it, and everything published meanwhile, in order
        co_await pub.async_send(
            R"({"type":"publish","channel":"kpi","scope":{"org":"acme"},"data":{"x":1e300}})");
        co_await expect(pub, "published");
        publish_n(fx.srv.hub(), "acme", 5);
        auto first = co_await expect(good, "update");
        BOOST_TEST(first.at("seq").to_number<std::uint64_t>() == 1u);
        BOOST_TEST(first.at("data").at("x").as_double() == 1e300);
        co_await expect_updates(good, 5, 2);
    });
}

BOOST_AUTO_TEST_SUITE_END()
