// rtd: the rtpush server daemon.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#include "alert_rules.hpp"
#include "copilot.hpp"
#include "demo.hpp"
#include "json_logger.hpp"
#include "sources_config.hpp"
#include "system_metrics.hpp"

#include <rtpush.hpp>
#include <rtpush/detail/fd_limit.hpp>
#ifdef RTPUSH_HAS_REDIS
#include <rtpush/redis.hpp>
#endif

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace po = boost::program_options;

namespace {

// Environment variables that map onto flags (flags win).
const std::pair<const char*, const char*> env_map[] = {
    {"PORT", "port"},
    {"HOST", "host"},
    {"RTD_WS_PATH", "ws-path"},
    {"RTD_THREADS", "threads"},
    {"HEARTBEAT_INTERVAL", "heartbeat-interval"},
    {"RTD_MAX_CONNECTIONS", "max-connections"},
    {"RTD_MAX_MESSAGE_SIZE", "max-message-size"},
    {"RTD_LOG_LEVEL", "log-level"},
    {"RTD_LOG_FLUSH_INTERVAL", "log-flush-interval"},
    {"RTD_DEMO", "demo"},
    {"RTD_DEMO_INTERVAL", "demo-interval"},
    {"RTD_ALLOW_PUBLISH", "allow-publish"},
    {"RTD_QUEUE_POLICY", "queue-policy"},
    {"RTD_CONFIG", "config"},
    {"RTD_SYSTEM_METRICS", "system-metrics"},
    {"REFRESH_INTERVAL", "refresh-interval"},
    {"RTD_JWT_SECRET", "jwt-secret"},
    {"RTD_AUTH_REQUIRED", "auth-required"},
    {"RTD_ALLOW_ANONYMOUS", "allow-anonymous"},
    {"RTD_TOKEN_EXPIRY_WARNING", "token-expiry-warning"},
    {"RTD_JWT_LEEWAY", "jwt-leeway"},
    {"RTD_ALERT_ESCALATION_AFTER", "alert-escalation-after"},
    {"RTD_JOIN_LEAVE", "join-leave"},
    {"RTD_SOCKETIO_RECOVERY_WINDOW", "socketio-recovery-window"},
    {"RTD_AUTH_TIMEOUT", "auth-timeout"},
    {"RTD_ADMIN_KEY", "admin-key"},
    {"FRONTEND_URL", "allowed-origin"},
    {"RTD_MAX_CONNECTIONS_PER_ORG", "max-connections-per-org"},
    {"RTD_MAX_CONNECTIONS_PER_USER", "max-connections-per-user"},
    {"RTD_ROOM_MAX_SIZE", "room-max-size"},
    {"RTD_MAX_HANDSHAKES_PER_IP", "max-handshakes-per-ip"},
    {"RTD_MAX_MESSAGES_PER_SECOND", "max-messages-per-second"},
    {"RTD_CORK_DELAY", "cork-delay"},
    {"RTD_CORK", "cork"},
    {"RTD_REUSE_PORT", "reuse-port"},
    {"RTD_PROFILE", "profile"},
    {"RTD_IDLE_TIMEOUT", "idle-timeout"},
    {"RTD_CORK_THRESHOLD", "cork-threshold"},
    {"RTD_HANDSHAKE_TIMEOUT", "handshake-timeout"},
    {"CACHE_TTL", "cache-ttl"},
    {"RTD_HISTORY_SIZE", "history-size"},
    {"RTD_HISTORY_TTL", "history-ttl"},
    {"RTD_TLS_CERT", "tls-cert"},
    {"RTD_TLS_KEY", "tls-key"},
    {"RTD_DEFLATE", "deflate"},
    {"RTD_DEFLATE_THRESHOLD", "deflate-threshold"},
    {"RTD_ENGINE", "engine"},
    {"RTD_REDIS_URL", "redis-url"},
    {"RTD_REDIS_PREFIX", "redis-prefix"},
    {"RTD_REDIS_CA", "redis-ca"},
    {"RTD_REDIS_CERT", "redis-cert"},
    {"RTD_REDIS_KEY", "redis-key"},
    {"RTD_REDIS_SENTINELS", "redis-sentinels"},
    {"RTD_REDIS_MASTER_NAME", "redis-master-name"},
    {"RTD_REDIS_SENTINEL_PASSWORD", "redis-sentinel-password"},
    {"RTD_REDIS_CLUSTER", "redis-cluster"},
    {"RTD_NODE_ID", "node-id"},
    {"RTD_DATA_DIR", "data-dir"},
    {"RTD_FSYNC", "fsync"},
    // The seeds' names (seed 004: SERVER_PORT, CLIENT_URL, REDIS_HOST; seed 002:
    // WS_METRICS_INTERVAL) (docs/protocol.md, "Seed parity").
    {"SERVER_PORT", "port"},
    {"CLIENT_URL", "allowed-origin"},
    {"REDIS_HOST", "redis-url"},
    {"WS_METRICS_INTERVAL", "metrics-interval"},
    // Seed 000's Copilot metrics source (GITHUB_TOKEN is read by the poller at each fetch)
    // (docs/protocol.md, "Seed parity").
    {"GITHUB_ORG", "github-org"},
    {"GITHUB_API_URL", "github-api-url"},
};

// A seed's name gives way to rtd's own when both are set (two values of one option would be
// refused as a duplicate). CLIENT_URL and FRONTEND_URL both add allowed origins (docs/protocol.md,
// "Seed parity").
// --profile NAME: defaults of a back end rtd replaces, under every flag and variable given
// (docs/configuration.md, "Profiles").
struct profile {
    const char* name;
    std::vector<std::string> defaults; ///< as command-line arguments
};
const profile profiles[] = {
    // Seed 001's Socket.IO server: per-org limit 100, 1000 connections, ping 25 s / timeout
    // 60 s, compression above 1 KB, authentication required, 1000 subscribers per room.
    {"seed001",
     {"--max-connections-per-org=100", "--max-connections=1000", "--heartbeat-interval=25",
      "--idle-timeout=60", "--deflate=true", "--deflate-threshold=1024", "--auth-required=true",
      "--room-max-size=1000"}},
};

const std::pair<const char*, const char*> env_yields_to[] = {
    {"SERVER_PORT", "PORT"},
    {"REDIS_HOST", "RTD_REDIS_URL"},
};

// The config file: JSON; the data sources' and alert rules' settings (docs/configuration.md).
struct file_config {
    rtd::sources_config sources;
    rtd::alert_rules_config alerts;
};

file_config load_config(const std::string& path, rtpush::refresh_options defaults) {
    file_config c;
    if (path.empty())
        return c;
    std::ifstream f(path);
    if (!f)
        throw std::invalid_argument("cannot read " + path);
    std::string const text{std::istreambuf_iterator<char>(f), {}};
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec)
        throw std::invalid_argument(path + " is not JSON: " + ec.message());
    if (!v.is_object())
        throw std::invalid_argument(path + " must hold a JSON object");
    rtd::detail::only_keys(
        v.get_object(), "",
        {"refresh_interval", "cache_ttl", "system_metrics", "pollers", "alerts"});
    c.sources = rtd::parse_sources_config(v.get_object(), defaults);
    if (auto const* a = v.get_object().if_contains("alerts"))
        c.alerts = rtd::parse_alert_rules(*a);
    return c;
}

// The alert rules and their engine's state, shared by the schedule (run_alert_rules) and
// POST /api/alerts/evaluate, which run on different threads: one evaluation at a time.
struct alert_rule_runner {
    const rtd::alert_rules_config& cfg;
    rtd::rule_engine engine;
    std::mutex mutex;
};

// One evaluation of every rule on every topic it covers that has a value: triggers and
// resolutions go through the server's alert lifecycle. Alerts belong to an organization, so
// topics published without one are not evaluated. Returns the alerts raised and resolved
// (POST /api/alerts/evaluate's answer).
boost::json::object evaluate_rules(rtpush::server& srv, alert_rule_runner& runner,
                                   const rtpush::logger& log) {
    std::lock_guard lock(runner.mutex);
    auto const& cfg = runner.cfg;
    auto& engine = runner.engine;
    boost::json::array raised, resolved;
    auto is_active = [&srv](const std::string& id) {
        auto a = srv.find_alert(id);
        return a && a->status != rtpush::alert_status::resolved;
    };
    for (auto const& r : cfg.rules) {
        auto const items = srv.hub().snapshot(r.topic);
        std::map<std::string, std::vector<const boost::json::object*>> by_topic;
        for (auto const& it : items)
            if (auto const* o = it.if_object())
                if (auto const* t = o->if_contains("topic"); t && t->is_string())
                    by_topic[std::string(t->get_string())].push_back(o);
        for (auto const& [key, list] : by_topic) {
            boost::system::error_code ec;
            auto const t = rtpush::parse_topic(key, ec);
            if (ec || t.scope.org.empty())
                continue;
            auto const value = rtd::rule_value(r, list);
            auto const act = engine.evaluate(r, key, value, is_active);
            if (!act)
                continue;
            boost::json::object fields;
            fields["rule"] = r.id;
            fields["topic"] = key;
            fields["value"] = *value;
            if (act->kind == rtd::rule_engine::action::trigger) {
                auto const res = srv.trigger_alert(rtd::rule_alert(r, t, *value));
                if (res) {
                    engine.triggered(r, key, res.value->id);
                    raised.push_back(res.value->data);
                    fields["alert_id"] = res.value->id;
                    log.log(rtpush::log_level::info, "alert_triggered", fields);
                } else {
                    fields["error"] = res.message;
                    log.log(rtpush::log_level::warning, "alert_rule_failed", fields);
                }
            } else {
                auto const res = srv.resolve_alert(act->alert_id, "rule:" + r.id);
                fields["alert_id"] = act->alert_id;
                if (!res)
                    fields["error"] = res.message; // e.g. resolved by someone meanwhile
                else
                    resolved.push_back(res.value->data);
                log.log(rtpush::log_level::info, "alert_resolved", fields);
            }
        }
    }
    boost::json::object o;
    o["rules"] = cfg.rules.size();
    o["raised"] = std::move(raised);
    o["resolved"] = std::move(resolved);
    return o;
}

// Seed 003's rules engine: every rule evaluated every `interval` until the server stops
// (docs/protocol.md, "Seed parity"), by the node that leads when several share Redis.
boost::asio::awaitable<void> run_alert_rules(rtpush::server& srv, alert_rule_runner& runner,
                                             const rtpush::logger& log) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    for (;;) {
        timer.expires_after(runner.cfg.interval);
        co_await timer.async_wait(boost::asio::use_awaitable); // throws when cancelled at stop
        if (srv.leads()) // once per cluster: the other nodes' books follow its steps
            evaluate_rules(srv, runner, log);
    }
}

// Calls `f` with each non-empty item of a comma-separated list (FRONTEND_URL is one).
template <class F>
void for_each_listed(std::string_view list, F f) {
    while (!list.empty()) {
        auto const comma = list.find(',');
        if (auto item = list.substr(0, comma); !item.empty())
            f(item);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
}

} // namespace

int main(int argc, char** argv) {
    po::options_description opts("rtd: real-time dashboard push server (rtpush " +
                                 std::string(rtpush::version_string) +
                                 ")\n\nUsage: rtd [options]\n\nOptions");
    // clang-format off
    opts.add_options()
        ("help,h", "show this help and exit")
        ("version", "print the version and exit")
        ("host", po::value<std::string>()->default_value("0.0.0.0"), "address to listen on [HOST]")
        ("port,p", po::value<unsigned>()->default_value(3001), "port for HTTP and WebSocket; 0 picks one [PORT, SERVER_PORT]")
        ("reuse-port", po::value<bool>()->default_value(false)->implicit_value(true), "SO_REUSEPORT: several rtd processes share the port, the kernel spreads connections over them [RTD_REUSE_PORT]")
        ("ws-path", po::value<std::string>()->default_value("/ws"), "WebSocket endpoint path [RTD_WS_PATH]")
        ("threads", po::value<unsigned>()->default_value(0), "io threads, 0 = one per core [RTD_THREADS]")
        ("heartbeat-interval", po::value<double>()->default_value(30), "seconds between heartbeats and pings [HEARTBEAT_INTERVAL]")
        ("idle-timeout", po::value<double>()->default_value(0), "seconds of silence after which a client is dropped (and Socket.IO's pingTimeout); 0 = 2.5 heartbeats [RTD_IDLE_TIMEOUT]")
        ("profile", po::value<std::string>()->default_value(""), "defaults of a back end rtd replaces, under any flag given: seed001 (docs/configuration.md, Profiles) [RTD_PROFILE]")
        ("max-connections", po::value<std::size_t>()->default_value(100000), "total WebSocket connections [RTD_MAX_CONNECTIONS]")
        ("max-message-size", po::value<std::size_t>()->default_value(1048576), "bytes per client message; above: close 1009 [RTD_MAX_MESSAGE_SIZE]")
        ("max-subscriptions", po::value<std::size_t>()->default_value(256), "subscriptions per client")
        ("max-connections-per-org", po::value<std::size_t>()->default_value(0), "WebSocket connections per organization, 0 = no limit; above: CONNECTION_LIMIT, close 1008 [RTD_MAX_CONNECTIONS_PER_ORG]")
        ("max-connections-per-user", po::value<std::size_t>()->default_value(0), "connections per user (the verified token's sub; connections without a token do not count), 0 = no limit; above: CONNECTION_LIMIT, close 1008 (SSE: 503) [RTD_MAX_CONNECTIONS_PER_USER]")
        ("room-max-size", po::value<std::size_t>()->default_value(0), "subscribers per room (topic) on this node, 0 = no limit; above: ROOM_FULL (SSE: 503) [RTD_ROOM_MAX_SIZE]")
        ("max-handshakes-per-ip", po::value<double>()->default_value(0), "WebSocket handshakes per second per client IP, 0 = no limit; above: HTTP 429 [RTD_MAX_HANDSHAKES_PER_IP]")
        ("max-messages-per-second", po::value<double>()->default_value(100), "messages per second per client, 0 = no limit; above: RATE_LIMIT_EXCEEDED, at 3x: close 1008 [RTD_MAX_MESSAGES_PER_SECOND]")
        ("max-json-depth", po::value<std::size_t>()->default_value(32), "nesting depth of client JSON")
        ("handshake-timeout", po::value<double>()->default_value(10), "seconds for the HTTP request and upgrade [RTD_HANDSHAKE_TIMEOUT]")
        ("tls-cert", po::value<std::string>()->default_value(""), "PEM certificate chain: serve wss:// and https:// (needs --tls-key) [RTD_TLS_CERT]")
        ("tls-key", po::value<std::string>()->default_value(""), "PEM private key of --tls-cert [RTD_TLS_KEY]")
        ("deflate", po::value<bool>()->default_value(false)->implicit_value(true), "permessage-deflate for clients that offer it (a broadcast is compressed once) [RTD_DEFLATE]")
        ("deflate-threshold", po::value<std::size_t>()->default_value(512), "messages under this many bytes go uncompressed [RTD_DEFLATE_THRESHOLD]")
        ("allowed-origin", po::value<std::vector<std::string>>()->composing(), "browser Origin allowed to connect (repeatable, comma-separated, * = any); none: no check [FRONTEND_URL, CLIENT_URL]")
        ("feed-path", po::value<std::vector<std::string>>()->composing(), "PATH=CHANNEL[,CHANNEL...]: a plain WebSocket feed whose clients are subscribed to the channels on connect and get {type: <channel>, data, timestamp} (seed 002: /ws/metrics=metrics; repeatable)")
        ("cork-delay", po::value<double>()->default_value(20), "milliseconds an io thread under load may hold writes back to send several frames per system call; 0 = never [RTD_CORK_DELAY]")
        ("cork", po::value<std::string>()->default_value("adaptive"), "adaptive: hold writes back only as long as the load needs (docs/architecture.md, Corking); fixed: hold them cork-delay above cork-threshold [RTD_CORK]")
        ("cork-threshold", po::value<double>()->default_value(50000), "frames per second per io thread above which --cork fixed holds writes back [RTD_CORK_THRESHOLD]")
        ("queue-limit", po::value<std::size_t>()->default_value(4096), "outbound frames queued per client")
        ("queue-policy", po::value<std::string>()->default_value("disconnect"), "full queue: disconnect | drop-oldest [RTD_QUEUE_POLICY]")
        ("history-size", po::value<std::size_t>()->default_value(1000), "publications kept per topic for recovery; 0 = none [RTD_HISTORY_SIZE]")
        ("history-ttl", po::value<double>()->default_value(600), "seconds a publication stays in history [RTD_HISTORY_TTL]")
        ("max-replay", po::value<std::size_t>()->default_value(5000), "most publications one recovery replays")
        ("ack-resend", po::value<double>()->default_value(2), "seconds before an un-acked requires_ack message is re-sent (then doubling, up to 30 s)")
        ("ack-attempts", po::value<unsigned>()->default_value(10), "deliveries of an un-acked message to one client before giving up")
        ("ack-ttl", po::value<double>()->default_value(600), "seconds a requires_ack broadcast is tracked (GET /api/broadcast/{id})")
        ("data-dir", po::value<std::string>()->default_value(""), "keep retained values, history and the epoch in this directory (SQLite), so that a restart loses nothing answered; empty: memory only [RTD_DATA_DIR]")
        ("fsync", po::value<std::string>()->default_value("checkpoint"), "with --data-dir: checkpoint: an answered publication survives a crash or kill -9 of rtd (WAL, synchronous=NORMAL); commit: fsync every commit, it survives a power cut too, at a fraction of the throughput [RTD_FSYNC]")
        ("engine", po::value<std::string>()->default_value("memory"), "memory (one node) | redis (N nodes sharing Redis) [RTD_ENGINE]")
        ("redis-url", po::value<std::string>()->default_value("redis://127.0.0.1:6379/0"), "Redis of the redis engine: redis[s]://[[user]:password@]host[:port][/db] (rediss: TLS), or redis[s]+sentinel://[[user]:password@]host:port,.../MASTER[/db] (Sentinel); prefer the variable for a password [RTD_REDIS_URL, REDIS_HOST: also selects --engine redis]")
        ("redis-ca", po::value<std::string>()->default_value(""), "rediss://: PEM file of the CA that signed Redis's certificate; empty: the system's CAs [RTD_REDIS_CA]")
        ("redis-cert", po::value<std::string>()->default_value(""), "rediss://: client certificate (PEM), for a Redis with tls-auth-clients yes [RTD_REDIS_CERT]")
        ("redis-key", po::value<std::string>()->default_value(""), "rediss://: the client certificate's private key (PEM) [RTD_REDIS_KEY]")
        ("redis-insecure", po::value<bool>()->default_value(false)->implicit_value(true), "rediss://: do not verify Redis's certificate (testing only)")
        ("redis-sentinels", po::value<std::string>()->default_value(""), "Sentinels of the redis engine, host:port,...: Redis is the master they name (--redis-master-name) and follows its failovers; --redis-url then gives only credentials, db and TLS. Or in one URL: redis[s]+sentinel://[[user]:password@]host:port,.../MASTER[/db] [RTD_REDIS_SENTINELS]")
        ("redis-master-name", po::value<std::string>()->default_value(""), "the name the Sentinels know the master by [RTD_REDIS_MASTER_NAME]")
        ("redis-sentinel-password", po::value<std::string>()->default_value(""), "AUTH of the Sentinels (their requirepass), if any [RTD_REDIS_SENTINEL_PASSWORD]")
        ("redis-cluster", po::value<std::string>()->default_value(""), "some nodes of a Redis Cluster, host:port,...: channels spread over its masters (sharded pub/sub), MOVED/ASK and failovers followed; --redis-url then gives only credentials and TLS. Or in one URL: redis[s]+cluster://[[user]:password@]host:port,... [RTD_REDIS_CLUSTER]")
        ("redis-wait-replicas", po::value<int>()->default_value(-1), "replicas that must hold a publication before it is delivered and answered 2xx (WAIT); -1: 1 with Sentinels or a Cluster, else 0")
        ("redis-prefix", po::value<std::string>()->default_value("rtpush"), "prefix of the engine's Redis keys and channels (one per cluster) [RTD_REDIS_PREFIX]")
        ("node-id", po::value<std::string>()->default_value(""), "this node's name in the cluster view; empty: hostname:port [RTD_NODE_ID]")
        ("allow-publish", po::value<bool>()->default_value(false)->implicit_value(true), "accept `publish` from WebSocket clients [RTD_ALLOW_PUBLISH]")
        ("demo", po::value<bool>()->default_value(false)->implicit_value(true), "publish built-in demo data [RTD_DEMO]")
        ("demo-interval", po::value<unsigned>()->default_value(2000), "milliseconds between demo rounds [RTD_DEMO_INTERVAL]")
        ("config", po::value<std::string>()->default_value(""), "JSON file of data sources and alert rules: system_metrics, pollers, alerts [RTD_CONFIG]")
        ("system-metrics", po::value<bool>()->default_value(false)->implicit_value(true), "publish this machine's metrics on channel `metrics` [RTD_SYSTEM_METRICS]")
        ("github-org", po::value<std::string>()->default_value(""), "poll this organization's GitHub Copilot metrics (seed 000) onto channel `dashboard`, with the token in GITHUB_TOKEN [GITHUB_ORG]")
        ("github-api-url", po::value<std::string>()->default_value("https://api.github.com"), "GitHub API of --github-org; Enterprise Server: https://HOST/api/v3 [GITHUB_API_URL]")
        ("metrics-interval", po::value<unsigned>()->default_value(5000), "milliseconds between system metrics; set, it implies --system-metrics [WS_METRICS_INTERVAL]")
        ("refresh-interval", po::value<double>()->default_value(30), "default seconds between a source's fetches [REFRESH_INTERVAL]")
        ("cache-ttl", po::value<double>()->default_value(30), "default seconds a source's value serves refreshes [CACHE_TTL]")
        ("jwt-secret", po::value<std::string>()->default_value(""), "HS256 secret of client tokens; prefer the variable (flags show in ps) [RTD_JWT_SECRET]")
        ("auth-required", po::value<bool>()->default_value(false)->implicit_value(true), "clients must authenticate (token) before anything but ping; implied by --jwt-secret [RTD_AUTH_REQUIRED]")
        ("allow-anonymous", po::value<bool>()->default_value(false)->implicit_value(true), "TRUSTED NETWORKS ONLY: with --jwt-secret, clients without a token may still subscribe, stream and read /api/kpis for any organization [RTD_ALLOW_ANONYMOUS]")
        ("token-expiry-warning", po::value<unsigned>()->default_value(60), "seconds before a connection's token expires that it gets token_expiring (then close 1008 at expiry unless it authenticates again); 0 = no warning [RTD_TOKEN_EXPIRY_WARNING]")
        ("join-leave", po::value<std::vector<std::string>>()->composing(), "channels (repeatable, comma-separated, * = every channel) whose subscribers get join and leave messages when a client subscribes to or leaves one of their topics [RTD_JOIN_LEAVE]")
        ("alert-escalation-after", po::value<unsigned>()->default_value(0), "seconds a pending alert waits for an acknowledgement before it is escalated (alert:escalated, severity one level up, again each period until critical); a rule's escalate_after wins; 0 = never [RTD_ALERT_ESCALATION_AFTER]")
        ("jwt-leeway", po::value<unsigned>()->default_value(30), "seconds of clock skew allowed on a token's exp and nbf; a connection lives until exp + this [RTD_JWT_LEEWAY]")
        ("socketio-recovery-window", po::value<unsigned>()->default_value(120000), "milliseconds a Socket.IO session that lost its connection is kept for its client to resume it (connection state recovery: socket.recovered, missed events replayed); 0 = off [RTD_SOCKETIO_RECOVERY_WINDOW]")
        ("auth-timeout", po::value<double>()->default_value(10), "seconds an unauthenticated client may stay connected (close 1008) [RTD_AUTH_TIMEOUT]")
        ("admin-key", po::value<std::string>()->default_value(""), "key the admin REST routes require (X-API-Key); empty: open [RTD_ADMIN_KEY]")
        ("log-level", po::value<std::string>()->default_value("info"), "debug | info | warning | error | off [RTD_LOG_LEVEL]")
        ("log-flush-interval", po::value<double>()->default_value(0.1), "seconds: a log line is written at once unless another was written within this interval; those that follow it meanwhile wait for its end and go out in one write; warnings and errors go out at once; 0 = every line at once [RTD_LOG_FLUSH_INTERVAL]");
    // clang-format on

    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::store(po::parse_environment(opts,
                                        [](const std::string& env) -> std::string {
                                            for (auto const& [e, primary] : env_yields_to)
                                                if (env == e && std::getenv(primary))
                                                    return {};
                                            for (auto const& [e, flag] : env_map)
                                                if (env == e)
                                                    return flag;
                                            return {};
                                        }),
                  vm);
        if (auto const& name = vm["profile"].as<std::string>(); !name.empty()) {
            auto const* p = std::find_if(std::begin(profiles), std::end(profiles),
                                         [&](const profile& x) { return name == x.name; });
            if (p == std::end(profiles))
                throw std::invalid_argument("unknown --profile '" + name + "' (known: seed001)");
            // Stored last: a value already given by a flag or a variable is kept.
            po::store(po::command_line_parser(p->defaults).options(opts).run(), vm);
        }
        po::notify(vm);
    } catch (std::exception const& e) {
        std::cerr << "rtd: " << e.what() << "\nTry 'rtd --help'.\n";
        return 2;
    }
    if (vm.count("help")) {
        std::cout << opts
                  << "\nEnvironment variables in [brackets] set the same options; flags win.\n";
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "rtd " << rtpush::version_string << "\n";
        return 0;
    }

    rtpush::server_config cfg;
    rtpush::log_level level;
    if (!rtd::parse_log_level(vm["log-level"].as<std::string>(), level)) {
        std::cerr << "rtd: --log-level must be debug, info, warning, error or off\n";
        return 2;
    }
    auto const port = vm["port"].as<unsigned>();
    if (port > 65535) {
        std::cerr << "rtd: --port must be 0..65535\n";
        return 2;
    }
    auto const hb = vm["heartbeat-interval"].as<double>();
    if (!(hb > 0)) {
        std::cerr << "rtd: --heartbeat-interval must be positive\n";
        return 2;
    }
    auto const policy = vm["queue-policy"].as<std::string>();
    if (policy != "disconnect" && policy != "drop-oldest") {
        std::cerr << "rtd: --queue-policy must be disconnect or drop-oldest\n";
        return 2;
    }
    auto const log_flush = vm["log-flush-interval"].as<double>();
    if (!(log_flush >= 0 && log_flush <= 60)) {
        std::cerr << "rtd: --log-flush-interval must be 0..60 seconds\n";
        return 2;
    }
    // Stopped (what is buffered written, its thread joined) when main returns, whichever way.
    auto const log_out = std::make_shared<rtd::json_log_writer>(
        stdout, std::chrono::milliseconds(static_cast<long>(log_flush * 1000)));
    struct log_stop {
        std::shared_ptr<rtd::json_log_writer> out;
        ~log_stop() { out->stop(); }
    } const stop_log_at_exit{log_out};
    cfg.logger = rtd::make_json_logger(level, log_out);
    cfg.host = vm["host"].as<std::string>();
    cfg.port = static_cast<std::uint16_t>(port);
    cfg.reuse_port = vm["reuse-port"].as<bool>();
    cfg.ws_path = vm["ws-path"].as<std::string>();
    cfg.threads = vm["threads"].as<unsigned>();
    cfg.heartbeat_interval = std::chrono::milliseconds(static_cast<long>(hb * 1000));
    auto const idle = vm["idle-timeout"].as<double>();
    if (idle < 0 ||
        (idle > 0 && idle * 1000 < static_cast<double>(cfg.heartbeat_interval.count()))) {
        std::cerr << "rtd: --idle-timeout must be 0 or at least the heartbeat interval\n";
        return 2;
    }
    cfg.idle_timeout = std::chrono::milliseconds(static_cast<long>(idle * 1000));
    cfg.max_connections = vm["max-connections"].as<std::size_t>();
    cfg.max_message_size = vm["max-message-size"].as<std::size_t>();
    cfg.max_subscriptions = vm["max-subscriptions"].as<std::size_t>();
    cfg.queue_max_frames = vm["queue-limit"].as<std::size_t>();
    cfg.queue_policy = policy == "disconnect" ? rtpush::overflow_policy::disconnect
                                              : rtpush::overflow_policy::drop_oldest;
    cfg.allow_client_publish = vm["allow-publish"].as<bool>();
    auto const history_ttl = vm["history-ttl"].as<double>();
    if (!(history_ttl >= 0)) {
        std::cerr << "rtd: --history-ttl must be >= 0\n";
        return 2;
    }
    cfg.history.history_size = vm["history-size"].as<std::size_t>();
    cfg.history.history_ttl = std::chrono::milliseconds(static_cast<long>(history_ttl * 1000));
    cfg.history.max_replay = vm["max-replay"].as<std::size_t>();
    auto const ack_resend = vm["ack-resend"].as<double>();
    auto const ack_ttl = vm["ack-ttl"].as<double>();
    if (!(ack_resend > 0) || !(ack_ttl > 0) || vm["ack-attempts"].as<unsigned>() == 0) {
        std::cerr << "rtd: --ack-resend, --ack-ttl and --ack-attempts must be > 0\n";
        return 2;
    }
    cfg.acks.resend_after = std::chrono::milliseconds(static_cast<long>(ack_resend * 1000));
    cfg.acks.max_resend_delay = std::max(cfg.acks.max_resend_delay, cfg.acks.resend_after);
    cfg.acks.max_attempts = vm["ack-attempts"].as<unsigned>();
    cfg.acks.ttl = std::chrono::milliseconds(static_cast<long>(ack_ttl * 1000));
    cfg.jwt_secret = vm["jwt-secret"].as<std::string>();
    cfg.auth_required = vm["auth-required"].as<bool>();
    cfg.allow_anonymous = vm["allow-anonymous"].as<bool>();
    cfg.token_expiry_warning = std::chrono::seconds(vm["token-expiry-warning"].as<unsigned>());
    cfg.jwt_leeway = std::chrono::seconds(vm["jwt-leeway"].as<unsigned>());
    cfg.alert_escalation_after = std::chrono::seconds(vm["alert-escalation-after"].as<unsigned>());
    cfg.socketio_recovery_window =
        std::chrono::milliseconds(vm["socketio-recovery-window"].as<unsigned>());
    cfg.admin_key = vm["admin-key"].as<std::string>();
    cfg.permessage_deflate = vm["deflate"].as<bool>();
    cfg.deflate_threshold = vm["deflate-threshold"].as<std::size_t>();
    cfg.tls_cert_file = vm["tls-cert"].as<std::string>();
    cfg.tls_key_file = vm["tls-key"].as<std::string>();
    if (cfg.tls_cert_file.empty() != cfg.tls_key_file.empty()) {
        std::cerr << "rtd: --tls-cert and --tls-key go together\n";
        return 2;
    }
    if (vm.count("allowed-origin"))
        for (auto const& v : vm["allowed-origin"].as<std::vector<std::string>>()) {
            for_each_listed(v, [&](std::string_view o) { cfg.allowed_origins.emplace_back(o); });
        }
    if (vm.count("join-leave"))
        for (auto const& v : vm["join-leave"].as<std::vector<std::string>>())
            for_each_listed(v,
                            [&](std::string_view c) { cfg.join_leave_channels.emplace_back(c); });
    if (vm.count("feed-path"))
        for (auto const& v : vm["feed-path"].as<std::vector<std::string>>()) {
            auto const eq = v.find('=');
            rtpush::feed_path f;
            f.path = v.substr(0, eq);
            if (eq != std::string::npos)
                for_each_listed(std::string_view(v).substr(eq + 1),
                                [&](std::string_view c) { f.channels.emplace_back(c); });
            if (!f.path.starts_with('/') || f.channels.empty() || f.path == cfg.ws_path ||
                f.path.starts_with("/api/")) {
                std::cerr << "rtd: --feed-path wants PATH=CHANNEL[,CHANNEL...] with PATH "
                             "starting with '/', not the WebSocket path or under /api/ (got '"
                          << v << "')\n";
                return 2;
            }
            cfg.feed_paths.push_back(std::move(f));
        }
    cfg.max_connections_per_org = vm["max-connections-per-org"].as<std::size_t>();
    cfg.max_connections_per_user = vm["max-connections-per-user"].as<std::size_t>();
    cfg.room_max_size = vm["room-max-size"].as<std::size_t>();
    cfg.max_handshakes_per_ip = vm["max-handshakes-per-ip"].as<double>();
    cfg.max_messages_per_second = vm["max-messages-per-second"].as<double>();
    auto const cork_delay = vm["cork-delay"].as<double>();
    if (cork_delay < 0 || cork_delay > 1000 || vm["cork-threshold"].as<double>() < 0) {
        std::cerr << "rtd: --cork-delay must be within 0..1000 ms and --cork-threshold >= 0\n";
        return 2;
    }
    cfg.cork_delay = std::chrono::milliseconds(static_cast<long>(cork_delay));
    cfg.cork_threshold = vm["cork-threshold"].as<double>();
    if (auto const& mode = vm["fsync"].as<std::string>(); mode == "commit") {
        cfg.fsync_every_commit = true;
    } else if (mode != "checkpoint") {
        std::cerr << "rtd: --fsync must be checkpoint or commit, not '" << mode << "'\n";
        return 2;
    }
    if (auto const& mode = vm["cork"].as<std::string>(); mode == "fixed") {
        cfg.cork_mode = rtpush::cork_policy::fixed;
    } else if (mode != "adaptive") {
        std::cerr << "rtd: --cork must be adaptive or fixed, not '" << mode << "'\n";
        return 2;
    }
    cfg.max_json_depth = vm["max-json-depth"].as<std::size_t>();
    auto const hs_timeout = vm["handshake-timeout"].as<double>();
    if (!(hs_timeout > 0) || cfg.max_handshakes_per_ip < 0 || cfg.max_messages_per_second < 0) {
        std::cerr << "rtd: --handshake-timeout must be positive, rates 0 or more\n";
        return 2;
    }
    cfg.handshake_timeout = std::chrono::milliseconds(static_cast<long>(hs_timeout * 1000));
    auto const auth_timeout = vm["auth-timeout"].as<double>();
    if (!(auth_timeout > 0)) {
        std::cerr << "rtd: --auth-timeout must be positive\n";
        return 2;
    }
    cfg.auth_timeout = std::chrono::milliseconds(static_cast<long>(auth_timeout * 1000));
    if (cfg.auth_required && cfg.allow_anonymous) {
        std::cerr << "rtd: --auth-required and --allow-anonymous contradict each other\n";
        return 2;
    }
    if (cfg.auth_required && cfg.jwt_secret.empty()) {
        std::cerr << "rtd: --auth-required needs --jwt-secret (or RTD_JWT_SECRET)\n";
        return 2;
    }
    cfg.server_name = std::string("rtd/") + rtpush::version_string;
    if (cfg.ws_path.empty() || cfg.ws_path[0] != '/') {
        std::cerr << "rtd: --ws-path must start with '/'\n";
        return 2;
    }
    rtpush::refresh_options refresh_defaults;
    auto const ri = vm["refresh-interval"].as<double>();
    auto const ttl = vm["cache-ttl"].as<double>();
    if (!(ri > 0) || !(ttl >= 0)) {
        std::cerr << "rtd: --refresh-interval must be positive and --cache-ttl 0 or more\n";
        return 2;
    }
    refresh_defaults.refresh_interval = std::chrono::milliseconds(static_cast<long>(ri * 1000));
    refresh_defaults.cache_ttl = std::chrono::milliseconds(static_cast<long>(ttl * 1000));
    if (auto const api = vm["github-api-url"].as<std::string>();
        api.rfind("http://", 0) != 0 && api.rfind("https://", 0) != 0) {
        std::cerr << "rtd: --github-api-url must be an http:// or https:// URL\n";
        return 2;
    }
    if (auto const org = vm["github-org"].as<std::string>();
        !org.empty() && !rtpush::valid_identifier(org)) {
        std::cerr << "rtd: --github-org must be an organization name ([A-Za-z0-9_.-])\n";
        return 2;
    } else if (!org.empty()) {
        cfg.rest_default_channel = "dashboard"; // seed 000's /api/kpis answers for it
    }
    rtd::sources_config sources;
    rtd::alert_rules_config alert_rules;
    try {
        auto fc = load_config(vm["config"].as<std::string>(), refresh_defaults);
        sources = std::move(fc.sources);
        alert_rules = std::move(fc.alerts);
    } catch (std::exception const& e) {
        std::cerr << "rtd: config: " << e.what() << "\n";
        return 2;
    }
    auto const metrics_interval = std::chrono::milliseconds(vm["metrics-interval"].as<unsigned>());
    if (metrics_interval.count() == 0) {
        std::cerr << "rtd: --metrics-interval must be positive\n";
        return 2;
    }
    bool const metrics_interval_set = !vm["metrics-interval"].defaulted();
    // Seed 002's WS_METRICS_INTERVAL: the source fetches (and publishes) at this period, and a
    // refresh within it is served from the cache. Set, it wins over the config file's
    // (docs/protocol.md, "Seed parity").
    if ((vm["system-metrics"].as<bool>() || metrics_interval_set) && !sources.system_metrics) {
        sources.system_metrics = true;
        sources.metrics_refresh = refresh_defaults;
        sources.metrics_refresh.on_demand = true;
        sources.metrics_refresh.refresh_interval = metrics_interval;
        sources.metrics_refresh.cache_ttl = metrics_interval;
    } else if (sources.system_metrics && metrics_interval_set) {
        sources.metrics_refresh.refresh_interval = metrics_interval;
        sources.metrics_refresh.cache_ttl = metrics_interval;
    }

    // Seed 004's REDIS_HOST names the Redis it uses: it selects the Redis engine unless an
    // engine was chosen. A bare host[:port] (no scheme) is taken as redis:// (docs/protocol.md,
    // "Seed parity").
    auto engine_name = vm["engine"].as<std::string>();
    if (vm["engine"].defaulted() && std::getenv("REDIS_HOST") && !std::getenv("RTD_REDIS_URL"))
        engine_name = "redis";
    std::string redis_url = vm["redis-url"].as<std::string>();
    if (redis_url.find("://") == std::string::npos)
        redis_url = "redis://" + redis_url;
    if (engine_name != "memory" && engine_name != "redis") {
        std::cerr << "rtd: --engine must be memory or redis\n";
        return 2;
    }
    cfg.data_dir = vm["data-dir"].as<std::string>();
    if (!cfg.data_dir.empty() && engine_name == "redis") {
        // Redis orders and keeps the cluster's state; a second store would disagree with it.
        std::cerr << "rtd: --data-dir is for the memory engine (Redis keeps the state of "
                     "--engine redis)\n";
        return 2;
    }
#ifdef RTPUSH_HAS_REDIS
    rtpush::redis_config redis_cfg;
    if (engine_name == "redis") {
        auto const list = [&](const char* option) {
            std::vector<std::string> out;
            std::string const v = vm[option].as<std::string>();
            for (std::size_t at = 0; !v.empty() && at <= v.size();) {
                auto const comma = std::min(v.find(',', at), v.size());
                out.push_back(v.substr(at, comma - at));
                at = comma + 1;
            }
            return out;
        };
        redis_cfg.sentinels = list("redis-sentinels");
        redis_cfg.cluster = list("redis-cluster");
        redis_cfg.master_name = vm["redis-master-name"].as<std::string>();
        redis_cfg.sentinel_password = vm["redis-sentinel-password"].as<std::string>();
        redis_cfg.wait_replicas = vm["redis-wait-replicas"].as<int>();
        std::string why;
        auto const url =
            rtpush::detail::resolve_redis_endpoints(redis_url, redis_cfg.sentinels,
                                                    redis_cfg.master_name, redis_cfg.cluster, why)
                .url;
        if (!why.empty()) {
            std::cerr << "rtd: " << why << "\n";
            return 2;
        }
        redis_cfg.tls.ca_file = vm["redis-ca"].as<std::string>();
        redis_cfg.tls.cert_file = vm["redis-cert"].as<std::string>();
        redis_cfg.tls.key_file = vm["redis-key"].as<std::string>();
        redis_cfg.tls.verify = !vm["redis-insecure"].as<bool>();
        if (redis_cfg.tls.cert_file.empty() != redis_cfg.tls.key_file.empty()) {
            std::cerr << "rtd: --redis-cert and --redis-key go together\n";
            return 2;
        }
        if (!url.tls && (!redis_cfg.tls.ca_file.empty() || !redis_cfg.tls.cert_file.empty())) {
            std::cerr << "rtd: --redis-ca and --redis-cert need a rediss:// --redis-url\n";
            return 2;
        }
        redis_cfg.url = redis_url;
        redis_cfg.prefix = vm["redis-prefix"].as<std::string>();
        redis_cfg.node_id = vm["node-id"].as<std::string>();
        redis_cfg.history_size = cfg.history.history_size;
        redis_cfg.logger = cfg.logger;
    }
#else
    if (engine_name == "redis") {
        std::cerr << "rtd: this build has no Redis engine (hiredis was not found)\n";
        return 2;
    }
#endif

    rtpush::detail::raise_fd_limit(cfg.max_connections);
    try {
        // Before the server, whose POST /api/alerts/evaluate calls it until wait() returns.
        alert_rule_runner rule_runner{alert_rules, {}, {}};
        rtpush::server srv(cfg);
#ifdef RTPUSH_HAS_REDIS
        // Declared after the server: destroyed first, once wait() has returned.
        std::unique_ptr<rtpush::redis_engine> engine;
        if (engine_name == "redis") {
            if (redis_cfg.node_id.empty()) {
                char host[256] = {};
                ::gethostname(host, sizeof host - 1);
                redis_cfg.node_id = std::string(host) + ":" + std::to_string(cfg.port);
            }
            redis_cfg.node_info = [&srv] {
                return srv.counters();
            };
            auto spawn = [&srv](auto task, std::string name) {
                srv.spawn(std::move(task), std::move(name));
            };
            engine = std::make_unique<rtpush::redis_engine>(srv.hub(), srv.get_executor(), spawn,
                                                            redis_cfg);
        }
#endif
        rtd::demo_publisher demo(srv.hub());
        // The demo's alerts go through the lifecycle (so they can be acknowledged); it resolves
        // its older ones itself, keeping a handful open.
        std::deque<std::string> demo_alerts;
        demo.on_alert([&srv, &demo_alerts](boost::json::object a) {
            auto const r = srv.trigger_alert(std::move(a));
            if (!r)
                return;
            demo_alerts.push_back(r.value->id);
            while (demo_alerts.size() > 5) {
                srv.resolve_alert(demo_alerts.front(), "demo");
                demo_alerts.pop_front();
            }
        });
        if (vm["demo"].as<bool>()) {
            auto const interval = std::chrono::milliseconds(vm["demo-interval"].as<unsigned>());
            srv.hub().on_refresh([&demo](const rtpush::topic& t) { demo.refresh(t); });
            srv.spawn([&demo, interval] { return demo.run(interval); }, "demo");
        }
        rtpush::refresher refresher(srv);
        if (sources.system_metrics)
            refresher.add(rtd::make_system_metrics_source(std::make_shared<rtd::system_metrics>(),
                                                          sources.metrics_topic),
                          sources.metrics_refresh);
        if (auto const org = vm["github-org"].as<std::string>(); !org.empty()) {
            // Seed 000's defaults: REFRESH_INTERVAL and CACHE_TTL (30 s each) (docs/protocol.md,
            // "Seed parity").
            auto const p = rtd::copilot_poller(
                {.api_url = vm["github-api-url"].as<std::string>(), .org = org}, refresh_defaults);
            refresher.add(rtd::make_copilot_source(p), p.refresh);
            cfg.logger.log(rtpush::log_level::info, "poller",
                           {{"name", p.name},
                            {"url", p.url},
                            {"topic", p.topic.key()},
                            {"token", std::getenv("GITHUB_TOKEN") ? "GITHUB_TOKEN" : "none"}});
        }
        for (auto const& p : sources.pollers) {
            refresher.add(rtd::make_http_source(p), p.refresh);
            cfg.logger.log(rtpush::log_level::info, "poller",
                           {{"name", p.name}, {"url", p.url}, {"topic", p.topic.key()}});
        }

        if (cfg.allow_anonymous && !cfg.jwt_secret.empty())
            cfg.logger.log(rtpush::log_level::warning, "anonymous_allowed",
                           {{"message", "--allow-anonymous: clients without a token may read "
                                        "every organization's data; trusted networks only"}});
        if (!alert_rules.rules.empty()) {
            srv.on_alert_evaluation([&srv, &rule_runner, &cfg] {
                return evaluate_rules(srv, rule_runner, cfg.logger);
            });
            srv.spawn([&srv, &rule_runner,
                       &cfg] { return run_alert_rules(srv, rule_runner, cfg.logger); },
                      "alert_rules");
            cfg.logger.log(rtpush::log_level::info, "alert_rules",
                           {{"rules", alert_rules.rules.size()},
                            {"interval_ms", alert_rules.interval.count()}});
        }

        // Signals are waited for on their own small context so that the server's threads
        // stay free of them; the completion starts the graceful shutdown.
        boost::asio::io_context signals_ctx;
        boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
        signals.async_wait([&](boost::system::error_code ec, int sig) {
            if (!ec) {
                cfg.logger.log(rtpush::log_level::info, "signal", {{"signal", sig}});
                srv.stop();
            }
        });
        std::thread signal_thread([&] { signals_ctx.run(); });
        try {
            srv.start();
        } catch (...) {
            signals.cancel();
            signal_thread.join();
            throw;
        }
        srv.wait();
        signals.cancel();
        signal_thread.join();
        cfg.logger.log(rtpush::log_level::info, "stopped");
        return 0;
    } catch (boost::system::system_error const& e) {
        cfg.logger.log(rtpush::log_level::error, "fatal", {{"what", e.what()}});
        std::cerr << "rtd: " << e.what() << "\n";
        return 1;
    } catch (std::exception const& e) {
        std::cerr << "rtd: " << e.what() << "\n";
        return 1;
    }
}
