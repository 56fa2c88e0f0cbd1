// rtctl: admin and broadcast command line for rtd's REST API.
#include <rtpush/auth.hpp>
#include <rtpush/protocol.hpp>
#include <rtpush/tls.hpp>
#include <rtpush/version.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>

namespace po = boost::program_options;
namespace http = boost::beast::http;
namespace net = boost::asio;

namespace {

const char* usage = R"(rtctl: administer and broadcast to an rtd server

Usage:
  rtctl [--url URL] [--json] health
  rtctl [--url URL] stats [--cluster]
  rtctl [--url URL] connections [--org ORG]
  rtctl [--url URL] connection ID
  rtctl [--url URL] rooms
  rtctl [--url URL] broadcast CHANNEL [--org ORG [--dept DEPT [--queue QUEUE]]]
                    [--event NAME] [--phase kpis|complete] [--priority low|medium|high|urgent]
                    [--data JSON | --data @FILE | --data -] [--requires-ack] [KEY=VALUE ...]
  rtctl [--url URL] notify [--org ORG | --to ID[,ID...]] [--event NAME] [--priority ...]
                    [--data JSON | --data @FILE | --data -] [--requires-ack] [KEY=VALUE ...]
  rtctl [--url URL] delivery ID
  rtctl [--url URL] refresh CHANNEL [--org ORG [--dept DEPT [--queue QUEUE]]]
  rtctl [--url URL] alerts [list] [--status pending|acknowledged|resolved|active]
                    [--org ORG [--dept DEPT [--queue QUEUE]]] [--rule RULE_ID]
  rtctl [--url URL] alerts show ID
  rtctl [--url URL] alerts ack ID [--by NAME]
  rtctl [--url URL] alerts resolve ID [--by NAME]
  rtctl token --secret SECRET --sub USER --org ORG [--ttl SECONDS] [--publish]
              [--channels kpi,alerts]

Examples:
  rtctl broadcast kpi --org acme --data '{"health_score":92}'
  rtctl broadcast kpi --org acme health_score=92 status=green
  rtctl refresh metrics
  rtctl broadcast alert --org acme severity=high message="queue on fire"
  rtctl alerts --status active --org acme
  rtctl alerts ack al-3 --by alice
  rtctl broadcast notifications --org acme --event system:maintenance --priority urgent \
        --data '{"message":"maintenance in 10 minutes"}'

--server URL is the same as --url; the URL defaults to $RTD_URL or http://127.0.0.1:3001.
An https:// URL checks the server's certificate against the system's CAs, or the CAs of
--ca FILE (or $RTD_CA); --no-check (-n) skips the check (testing only).
`notify` sends to connections rather than to a topic's subscribers: every connection, those of
--org, or the client ids of --to (comma-separated; with --org, only those of that organization);
the event defaults to system:notification (docs/protocol.md, "Targeting connections").
`broadcast alert` (or `alerts`) without --event enters the alert lifecycle (alert:triggered).
`broadcast --requires-ack` re-sends the message to each targeted client until it acks; the
answer's id is what `delivery ID` reports on: targeted, acked, pending and who has not acked.
KEY=VALUE pairs add fields to the data (VALUE as JSON when it parses, else as a string).
`stats --cluster` lists every node of a cluster sharing Redis (rtd --engine redis), as the
node asked sees them (nodes announce themselves every 2 s; a silent node leaves after 6 s).
--api-key KEY (or $RTD_API_KEY) is sent as X-API-Key, for a server started with --admin-key.
`alerts ack` and `alerts resolve` record --by (default $USER) as acknowledged_by/resolved_by.
`token` prints an HS256 token for rtd --jwt-secret (default $RTD_JWT_SECRET, TTL 3600 s).
Answers print as tables and aligned fields; --json prints the server's answer as one line
of JSON instead, for scripts. Exit status: 0 success, 1 the server answered with an error,
2 usage error, 3 the server could not be reached.
)";

// Indented JSON for people.
void pretty(std::ostream& os, const boost::json::value& v, int indent = 0) {
    auto pad = [&](int n) {
        os << std::string(static_cast<std::size_t>(n), ' ');
    };
    if (v.is_object()) {
        auto const& o = v.get_object();
        if (o.empty()) {
            os << "{}";
            return;
        }
        os << "{\n";
        std::size_t i = 0;
        for (auto const& [k, x] : o) {
            pad(indent + 2);
            os << boost::json::serialize(boost::json::string(k)) << ": ";
            pretty(os, x, indent + 2);
            os << (++i < o.size() ? ",\n" : "\n");
        }
        pad(indent);
        os << "}";
    } else if (v.is_array()) {
        auto const& a = v.get_array();
        if (a.empty()) {
            os << "[]";
            return;
        }
        os << "[\n";
        for (std::size_t i = 0; i < a.size(); ++i) {
            pad(indent + 2);
            pretty(os, a[i], indent + 2);
            os << (i + 1 < a.size() ? ",\n" : "\n");
        }
        pad(indent);
        os << "]";
    } else {
        os << boost::json::serialize(v);
    }
}

// ---- human output: key/value lines and tables ----

bool show_cluster = false; // stats --cluster

std::string cell(const boost::json::value& v) {
    if (v.is_string())
        return std::string(v.get_string());
    if (v.is_double()) { // 12.5, not Boost.JSON's 1.25E1
        std::ostringstream ss;
        ss << v.get_double();
        return ss.str();
    }
    if (v.is_array() && std::all_of(v.get_array().begin(), v.get_array().end(),
                                    [](auto const& x) { return x.is_string(); })) {
        std::string out;
        for (auto const& x : v.get_array())
            out += (out.empty() ? "" : ",") + std::string(x.get_string());
        return out;
    }
    return boost::json::serialize(v);
}

void table(std::ostream& os, const boost::json::array& rows, std::vector<std::string> cols) {
    std::vector<std::vector<std::string>> cells;
    std::vector<std::size_t> width;
    for (auto const& c : cols)
        width.push_back(c.size());
    for (auto const& r : rows) {
        std::vector<std::string> line;
        for (std::size_t i = 0; i < cols.size(); ++i) {
            auto const* v = r.is_object() ? r.get_object().if_contains(cols[i]) : nullptr;
            line.push_back(v ? cell(*v) : "");
            width[i] = std::max(width[i], line.back().size());
        }
        cells.push_back(std::move(line));
    }
    auto print = [&](const std::vector<std::string>& line) {
        for (std::size_t i = 0; i < line.size(); ++i) {
            os << line[i];
            if (i + 1 < line.size())
                os << std::string(width[i] - line[i].size() + 2, ' ');
        }
        os << "\n";
    };
    std::vector<std::string> head;
    for (auto c : cols) {
        std::transform(c.begin(), c.end(), c.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
        head.push_back(std::move(c));
    }
    print(head);
    for (auto const& line : cells)
        print(line);
}

void key_values(std::ostream& os, const boost::json::object& o,
                std::initializer_list<std::string_view> skip = {}) {
    std::size_t w = 0;
    for (auto const& [k, v] : o)
        w = std::max(w, k.size());
    for (auto const& [k, v] : o) {
        if (std::find(skip.begin(), skip.end(), std::string_view(k)) != skip.end())
            continue;
        os << std::string(k) << ":" << std::string(w - k.size() + 1, ' ') << cell(v) << "\n";
    }
}

// What people read: tables for lists, aligned key/value lines for objects.
void human(std::ostream& os, const boost::json::value& v) {
    if (!v.is_object()) {
        pretty(os, v);
        os << "\n";
        return;
    }
    auto const& o = v.get_object();
    if (auto const* e = o.if_contains("error"); e && e->is_object()) {
        os << "error " << cell(e->at("code")) << ": " << cell(e->at("message")) << "\n";
        return;
    }
    if (auto const* c = o.if_contains("connections"); c && c->is_array()) {
        table(
            os, c->get_array(),
            {"socket_id", "organization_id", "user_id", "subscriptions", "connected_at", "queued"});
        return;
    }
    if (auto const* a = o.if_contains("alerts"); a && a->is_array()) {
        table(os, a->get_array(),
              {"alert_id", "status", "severity", "organization_id", "department_id", "queue_name",
               "rule_id", "triggered_at", "message"});
        return;
    }
    if (auto const* a = o.if_contains("alert"); a && a->is_object()) {
        key_values(os, a->get_object());
        return;
    }
    if (auto const* r = o.if_contains("rooms"); r && r->is_array()) {
        table(os, r->get_array(), {"name", "members"});
        return;
    }
    if (auto const* c = o.if_contains("connection"); c && c->is_object()) {
        key_values(os, c->get_object());
        return;
    }
    if (auto const* st = o.if_contains("stats"); st && st->is_object()) {
        auto const* cluster = st->get_object().if_contains("cluster");
        if (show_cluster) {
            if (!cluster || !cluster->is_array()) {
                auto const* e = st->get_object().if_contains("engine");
                os << "engine " << (e ? cell(*e) : std::string("memory"))
                   << ": a single node, no cluster view\n";
                return;
            }
            os << cluster->get_array().size()
               << " nodes (redis_up on this node: " << cell(st->get_object().at("redis_up"))
               << ")\n";
            table(os, cluster->get_array(),
                  {"node_id", "active_connections", "total_messages", "messages_sent",
                   "messages_per_second", "uptime_seconds", "announced_at"});
            return;
        }
        key_values(os, st->get_object(), {"sources", "cluster"});
        if (auto const* src = st->get_object().if_contains("sources"); src && src->is_array()) {
            os << "\n";
            table(os, src->get_array(),
                  {"name", "topic", "active", "fetches", "errors", "publishes", "unchanged",
                   "last_error"});
        }
        return;
    }
    key_values(os, o, {"success"});
}

struct endpoint {
    std::string host = "127.0.0.1";
    std::string port = "3001";
    bool tls = false;
    rtpush::tls_client_options tls_options;
    std::string url() const { return (tls ? "https://" : "http://") + host + ":" + port; }
};

bool parse_url(std::string url, endpoint& ep) {
    if (url.rfind("https://", 0) == 0) {
        ep.tls = true;
        url = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
        url = url.substr(7);
    } else {
        return false;
    }
    url = url.substr(0, url.find('/'));
    auto const colon = url.rfind(':');
    ep.host = url.substr(0, colon);
    ep.port = colon == std::string::npos ? (ep.tls ? "443" : "80") : url.substr(colon + 1);
    return !ep.host.empty() && !ep.port.empty();
}

bool compact_json = false; // --json
std::string api_key;       // --api-key

int request(const endpoint& ep, http::verb method, const std::string& target,
            const std::string& body) {
    net::io_context ioc;
    http::response<http::string_body> res;
    try {
        net::ip::tcp::resolver resolver(ioc);
        net::ip::tcp::socket sock(ioc);
        net::connect(sock, resolver.resolve(ep.host, ep.port));
        std::optional<net::ssl::context> ctx;
        std::optional<net::ssl::stream<net::ip::tcp::socket&>> tls;
        if (ep.tls) {
            ctx.emplace(rtpush::make_client_tls_context(ep.tls_options));
            tls.emplace(sock, *ctx);
            rtpush::prepare_client_tls(*tls, ep.host, ep.tls_options.verify);
            boost::system::error_code hec;
            tls->handshake(net::ssl::stream_base::client, hec);
            if (hec)
                throw std::runtime_error("TLS handshake failed: " +
                                         rtpush::detail::tls_error_text(hec));
        }
        http::request<http::string_body> req{method, target, 11};
        req.set(http::field::host, ep.host + ":" + ep.port);
        req.set(http::field::user_agent, std::string("rtctl/") + rtpush::version_string);
        if (!api_key.empty())
            req.set("X-API-Key", api_key);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = body;
        }
        req.prepare_payload();
        boost::beast::flat_buffer buf;
        if (tls) {
            http::write(*tls, req);
            http::read(*tls, buf, res);
        } else {
            http::write(sock, req);
            http::read(sock, buf, res);
        }
    } catch (std::exception const& e) {
        std::cerr << "rtctl: cannot reach " << ep.url() << ": " << e.what() << "\n";
        return 3;
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(res.body(), ec);
    auto& os = res.result_int() < 400 ? std::cout : std::cerr;
    if (ec)
        os << res.body() << "\n";
    else if (compact_json)
        os << boost::json::serialize(v) << "\n";
    else
        human(os, v);
    if (res.result_int() >= 400) {
        std::cerr << "rtctl: HTTP " << res.result_int() << "\n";
        return 1;
    }
    return 0;
}

std::string read_data(const std::string& arg) {
    if (arg == "-")
        return {std::istreambuf_iterator<char>(std::cin), {}};
    if (!arg.empty() && arg[0] == '@') {
        std::ifstream f(arg.substr(1));
        if (!f)
            throw std::runtime_error("cannot read " + arg.substr(1));
        return {std::istreambuf_iterator<char>(f), {}};
    }
    return arg;
}

// Claims are built outside main's flow of options, as a plain object.
std::string make_token(const std::string& secret, const std::string& sub, const std::string& org,
                       long ttl, bool publish, const std::string& channels) {
    auto const now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    boost::json::object claims;
    claims["sub"] = sub;
    claims["org"] = org;
    claims["iat"] = now;
    claims["exp"] = now + ttl;
    if (publish)
        claims["publish"] = true;
    if (!channels.empty()) {
        boost::json::array a;
        std::string_view rest = channels;
        while (!rest.empty()) {
            auto const comma = rest.find(',');
            if (auto c = rest.substr(0, comma); !c.empty())
                a.emplace_back(c);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        claims["channels"] = std::move(a);
    }
    return rtpush::make_jwt_hs256(claims, secret);
}

} // namespace

// A broadcast's `data`: --data (JSON, @FILE or -; `{}` without it), plus the KEY=VALUE
// arguments from args[first] on. 0, or the exit status of a usage error (said on stderr).
int add_data(const po::variables_map& vm, const std::vector<std::string>& args, std::size_t first,
             boost::json::object& body) {
    for (std::size_t i = first; i < args.size(); ++i)
        if (args[i].find('=') == std::string::npos || args[i][0] == '=') {
            std::cerr << "rtctl: '" << args[i] << "' is not KEY=VALUE\n";
            return 2;
        }
    try {
        std::string const text =
            vm.count("data") ? read_data(vm["data"].as<std::string>()) : std::string("{}");
        body["data"] = boost::json::parse(text);
    } catch (std::exception const& e) {
        std::cerr << "rtctl: --data is not valid JSON: " << e.what() << "\n";
        return 2;
    }
    if (args.size() > first) {
        if (!body["data"].is_object()) {
            std::cerr << "rtctl: KEY=VALUE pairs need --data to be a JSON object\n";
            return 2;
        }
        auto& data = body["data"].get_object();
        for (std::size_t i = first; i < args.size(); ++i) {
            auto const eq = args[i].find('=');
            std::string const value = args[i].substr(eq + 1);
            boost::system::error_code jec;
            auto parsed = boost::json::parse(value, jec);
            // health_score=92 is a number, ok=true a boolean, status=green a string
            data[args[i].substr(0, eq)] = jec ? boost::json::value(value) : std::move(parsed);
        }
    }
    return 0;
}

int main(int argc, char** argv) {
    po::options_description opts;
    // clang-format off
    opts.add_options()
        ("help,h", "")
        ("version", "")
        ("url", po::value<std::string>(), "")
        ("server", po::value<std::string>(), "")
        ("json", "")
        ("cluster", "")
        ("org", po::value<std::string>(), "")
        ("dept", po::value<std::string>(), "")
        ("queue", po::value<std::string>(), "")
        ("event", po::value<std::string>(), "")
        ("phase", po::value<std::string>(), "")
        ("priority", po::value<std::string>(), "")
        ("data", po::value<std::string>(), "")
        ("requires-ack", "")
        ("to", po::value<std::string>(), "")
        ("api-key", po::value<std::string>(), "")
        ("ca", po::value<std::string>(), "")
        ("no-check,n", "")
        ("secret", po::value<std::string>(), "")
        ("sub", po::value<std::string>(), "")
        ("ttl", po::value<long>()->default_value(3600), "")
        ("publish", "")
        ("channels", po::value<std::string>(), "")
        ("status", po::value<std::string>(), "")
        ("rule", po::value<std::string>(), "")
        ("by", po::value<std::string>(), "")
        ("args", po::value<std::vector<std::string>>()->default_value({}, ""), "");
    // clang-format on
    po::positional_options_description pos;
    pos.add("args", -1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
        po::notify(vm);
    } catch (std::exception const& e) {
        std::cerr << "rtctl: " << e.what() << "\n\n" << usage;
        return 2;
    }
    auto const args = vm["args"].as<std::vector<std::string>>();
    if (vm.count("help") || args.empty()) {
        std::cout << usage;
        return vm.count("help") ? 0 : 2;
    }
    if (vm.count("version")) {
        std::cout << "rtctl " << rtpush::version_string << "\n";
        return 0;
    }
    endpoint ep;
    compact_json = vm.count("json") > 0;
    show_cluster = vm.count("cluster") > 0;
    if (vm.count("url") && vm.count("server")) {
        std::cerr << "rtctl: give --url or --server, not both\n";
        return 2;
    }
    std::string url = vm.count("url")      ? vm["url"].as<std::string>()
                      : vm.count("server") ? vm["server"].as<std::string>()
                                           : "";
    if (url.empty())
        if (char const* env = std::getenv("RTD_URL"))
            url = env;
    if (!url.empty() && !parse_url(url, ep)) {
        std::cerr << "rtctl: --url must look like http://host:port or https://host:port\n";
        return 2;
    }
    if (vm.count("ca"))
        ep.tls_options.ca_file = vm["ca"].as<std::string>();
    else if (char const* env = std::getenv("RTD_CA"))
        ep.tls_options.ca_file = env;
    ep.tls_options.verify = vm.count("no-check") == 0;
    auto opt = [&](const char* k) {
        return vm.count(k) ? vm[k].as<std::string>() : std::string{};
    };
    std::string const& cmd = args[0];
    api_key = opt("api-key");
    if (api_key.empty())
        if (char const* env = std::getenv("RTD_API_KEY"))
            api_key = env;
    if (cmd == "token") {
        std::string secret = opt("secret");
        if (secret.empty())
            if (char const* env = std::getenv("RTD_JWT_SECRET"))
                secret = env;
        if (secret.empty() || opt("sub").empty() || opt("org").empty()) {
            std::cerr << "rtctl: token needs --secret (or RTD_JWT_SECRET), --sub and --org\n";
            return 2;
        }
        std::cout << make_token(secret, opt("sub"), opt("org"), vm["ttl"].as<long>(),
                                vm.count("publish") > 0, opt("channels"))
                  << "\n";
        return 0;
    }
    if (cmd == "health" || cmd == "stats" || cmd == "rooms")
        return request(ep, http::verb::get, "/api/" + cmd, {});
    if (cmd == "connections")
        return request(ep, http::verb::get,
                       "/api/connections" +
                           (vm.count("org") ? "?organization_id=" + opt("org") : std::string{}),
                       {});
    if (cmd == "connection") {
        if (args.size() != 2) {
            std::cerr << "rtctl: connection needs an ID (see rtctl connections)\n";
            return 2;
        }
        return request(ep, http::verb::get, "/api/connections/" + args[1], {});
    }
    if (cmd == "delivery") {
        if (args.size() != 2) {
            std::cerr << "rtctl: delivery needs the ID a broadcast --requires-ack answered\n";
            return 2;
        }
        return request(ep, http::verb::get, "/api/broadcast/" + args[1], {});
    }
    if (cmd == "refresh") {
        if (args.size() != 2) {
            std::cerr << "rtctl: refresh needs exactly one CHANNEL\n";
            return 2;
        }
        std::string target = "/api/refresh/" + args[1];
        char sep = '?';
        for (auto const* k : {"org", "dept", "queue"})
            if (vm.count(k)) {
                target += sep + std::string(k) + "=" + opt(k);
                sep = '&';
            }
        return request(ep, http::verb::post, target, {});
    }
    if (cmd == "alerts") {
        std::string const sub = args.size() > 1 ? args[1] : "list";
        if (sub == "list") {
            if (args.size() > 2) {
                std::cerr << "rtctl: alerts list takes options only (--status, --org, ...)\n";
                return 2;
            }
            std::string target = "/api/alerts";
            char sep = '?';
            auto add = [&](const char* key, const std::string& value) {
                target += sep + std::string(key) + "=" + value;
                sep = '&';
            };
            if (vm.count("status")) {
                auto const st = opt("status");
                if (st != "pending" && st != "acknowledged" && st != "resolved" && st != "active") {
                    std::cerr << "rtctl: --status must be pending, acknowledged, resolved or "
                                 "active\n";
                    return 2;
                }
                add("status", st);
            }
            for (auto const* k : {"org", "dept", "queue"})
                if (vm.count(k))
                    add(k, opt(k));
            if (vm.count("rule"))
                add("rule_id", opt("rule"));
            return request(ep, http::verb::get, target, {});
        }
        if (sub != "ack" && sub != "acknowledge" && sub != "resolve" && sub != "show") {
            std::cerr << "rtctl: alerts takes list, show, ack or resolve, not '" << sub << "'\n";
            return 2;
        }
        if (args.size() != 3 || !rtpush::valid_identifier(args[2])) {
            std::cerr << "rtctl: alerts " << sub << " needs one alert ID (see rtctl alerts)\n";
            return 2;
        }
        if (sub == "show")
            return request(ep, http::verb::get, "/api/alerts/" + args[2], {});
        std::string by = opt("by");
        if (by.empty())
            if (char const* user = std::getenv("USER"))
                by = user;
        boost::json::object body;
        if (!by.empty())
            body["by"] = by;
        return request(ep, http::verb::post,
                       "/api/alerts/" + args[2] + (sub == "resolve" ? "/resolve" : "/acknowledge"),
                       boost::json::serialize(body));
    }
    if (cmd == "notify") {
        boost::json::object body;
        body["event"] = vm.count("event") ? opt("event") : std::string("system:notification");
        boost::json::object target;
        if (vm.count("org"))
            target["organization_id"] = opt("org");
        if (vm.count("to")) {
            boost::json::array ids;
            std::string const list = opt("to");
            for (std::size_t b = 0; b <= list.size();) {
                auto const e = std::min(list.find(',', b), list.size());
                if (e > b)
                    ids.emplace_back(list.substr(b, e - b));
                b = e + 1;
            }
            target["socket_ids"] = std::move(ids);
        } else if (!body["event"].as_string().starts_with("system:")) {
            std::cerr << "rtctl: notify without --to needs a system:* event (the others go to a "
                         "topic: rtctl broadcast)\n";
            return 2;
        }
        if (!target.empty())
            body["target"] = std::move(target);
        if (vm.count("priority"))
            body["priority"] = opt("priority");
        if (vm.count("requires-ack"))
            body["requires_ack"] = true;
        if (int const rc = add_data(vm, args, 1, body))
            return rc;
        return request(ep, http::verb::post, "/api/broadcast", boost::json::serialize(body));
    }
    if (cmd == "broadcast") {
        if (args.size() < 2) {
            std::cerr << "rtctl: broadcast needs a CHANNEL\n";
            return 2;
        }
        boost::json::object body;
        body["channel"] = args[1];
        if (vm.count("event"))
            body["event"] = opt("event");
        else if (args[1] == "alert" || args[1] == "alerts") {
            // Alerts go through the server's alert lifecycle on channel `alerts` (the payload's
            // `status`, pending when absent, says which step; docs/protocol.md, "Alerts").
            body["channel"] = "alerts";
            body["event"] = "alert:triggered";
        }
        boost::json::object target;
        if (vm.count("org"))
            target["organization_id"] = opt("org");
        if (vm.count("dept"))
            target["department_id"] = opt("dept");
        if (vm.count("queue"))
            target["queue_name"] = opt("queue");
        body["target"] = target;
        if (vm.count("phase"))
            body["phase"] = opt("phase");
        if (vm.count("priority"))
            body["priority"] = opt("priority");
        if (vm.count("requires-ack"))
            body["requires_ack"] = true;
        if (int const rc = add_data(vm, args, 2, body))
            return rc;
        return request(ep, http::verb::post, "/api/broadcast", boost::json::serialize(body));
    }
    std::cerr << "rtctl: unknown command '" << cmd << "'\n\n" << usage;
    return 2;
}
