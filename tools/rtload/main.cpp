// rtload: WebSocket fan-out load generator for rtd and peer servers.
//
// One process, one io thread by default: each subscriber is a lean coroutine on a raw socket
// with rtpush's frame codec (no per-message JSON parse: the sequence number and send time are
// found by substring), so thousands of connections cost little of the generator's own CPU,
// which the report states.
#include "handshakes.hpp"
#include "load.hpp"
#include "measure.hpp"

using namespace rtload;

int main(int argc, char** argv) {
    po::options_description desc("rtload: WebSocket fan-out load generator (rtpush " +
                                 std::string(rtpush::version_string) +
                                 ")\n\nUsage: rtload --clients 1000 [options]\n\nOptions");
    std::string url = "ws://127.0.0.1:3001/ws", proto = "rtpush", scope, duration = "10s",
                ramp = "2000/s", rate = "0", drain = "2s", via = "auto";
    options o;
    // clang-format off
    desc.add_options()
        ("help,h", "show this help")
        ("url", po::value(&url)->default_value(url), "server WebSocket URL (ws://host:port/path)")
        ("protocol", po::value(&proto)->default_value(proto), "rtpush | socketio (Engine.IO v4 over WebSocket)")
        ("clients,c", po::value(&o.clients)->default_value(o.clients), "subscriber connections")
        ("channel", po::value(&o.channel)->default_value(o.channel), "channel to subscribe and publish to")
        ("scope", po::value(&scope), "org[/dept[/queue]]")
        ("duration,d", po::value(&duration)->default_value(duration), "publishing (or holding) time, e.g. 30s")
        ("ramp", po::value(&ramp)->default_value(ramp), "new connections per second")
        ("publish-rate", po::value(&rate)->default_value(rate), "publications per second (each reaches every subscriber)")
        ("size", po::value(&o.size)->default_value(o.size), "bytes of each published message")
        ("publish-via", po::value(&via)->default_value(via), "http (POST /api/broadcast, keep-alive, pipelined; accepted by a default rtd) | ws (the `publish` message; rtd needs --allow-publish) | auto (http with --protocol rtpush, ws with socketio). A refused first publication stops the run at once")
        ("api-key", po::value(&o.api_key), "X-API-Key for --publish-via http (rtd --admin-key)")
        ("reconnect", "subscribers that drop reconnect and resubscribe (backoff 0.1-2 s); counted as reconnects")
        ("publish-port", po::value(&o.publish_port)->default_value(0), "publish on this port of the same host (another node: cross-node delivery); 0 = --url's")
        ("drain", po::value(&drain)->default_value(drain), "wait after publishing for deliveries in flight")
        ("handshakes", po::value(&o.handshakes)->default_value(0), "handshake test: open and close this many connections")
        ("concurrency", po::value(&o.concurrency)->default_value(o.concurrency), "handshakes in flight")
        ("keep", po::bool_switch(&o.keep), "handshake test: keep every connection open until the end")
        ("server-pid", po::value(&o.server_pid)->default_value(0), "report this process's CPU time and RSS")
        ("sources", po::value(&o.sources)->default_value(0), "loopback source addresses (127.0.0.2...); 0 = auto")
        ("read-buffer", po::value(&o.read_buffer)->default_value(0), "bytes per connection read buffer; 0 = auto")
        ("json", po::value(&o.json_out), "write the report as JSON to this file")
        ("quiet,q", "no progress line");
    // clang-format on
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, desc), vm);
        po::notify(vm);
        if (vm.count("help")) {
            std::cout << desc << "\n";
            return 0;
        }
        boost::system::error_code ec;
        std::string rest = url;
        if (rest.rfind("ws://", 0) != 0)
            throw std::invalid_argument("--url must start with ws://");
        rest = rest.substr(5);
        auto const slash = rest.find('/');
        o.path = slash == std::string::npos ? "/" : rest.substr(slash);
        auto const hostport = rest.substr(0, slash);
        auto const colon = hostport.rfind(':');
        o.host = hostport.substr(0, colon);
        o.port = colon == std::string::npos
                     ? 80
                     : static_cast<std::uint16_t>(std::stoul(hostport.substr(colon + 1)));
        if (o.host == "localhost")
            o.host = "127.0.0.1";
        net::ip::make_address(o.host, ec);
        if (ec)
            throw std::invalid_argument("--url host must be an IP address or localhost");
        if (proto == "rtpush")
            o.proto = protocol::rtpush;
        else if (proto == "socketio")
            o.proto = protocol::socketio;
        else
            throw std::invalid_argument("--protocol is rtpush or socketio");
        if (via == "auto")
            via = o.proto == protocol::rtpush ? "http" : "ws";
        if (via != "ws" && via != "http")
            throw std::invalid_argument("--publish-via is http, ws or auto");
        o.publish_http = via == "http";
        o.reconnect = vm.count("reconnect") > 0;
        if (!scope.empty()) {
            std::istringstream ss(scope);
            std::getline(ss, o.org, '/');
            std::getline(ss, o.dept, '/');
            std::getline(ss, o.queue, '/');
        }
        o.duration = parse_seconds(duration);
        o.ramp = parse_rate(ramp);
        o.publish_rate = parse_rate(rate);
        o.drain = parse_seconds(drain);
        o.quiet = vm.count("quiet") || !isatty(STDERR_FILENO);
        if (o.ramp <= 0)
            throw std::invalid_argument("--ramp must be positive");
    } catch (std::exception const& e) {
        std::cerr << "rtload: " << e.what() << "\nTry 'rtload --help'.\n";
        return 2;
    }
    rtpush::detail::raise_fd_limit(std::max(o.clients, o.concurrency) + 16);

    net::io_context ioc(1);
    load l(ioc, o);
    auto& st = l.st();
    auto const self0 = self_usage();
    std::optional<proc_sample> srv0, srv1;
    boost::json::object report;
    report["tool"] = "rtload";
    report["version"] = rtpush::version_string;
    report["url"] = url;
    report["protocol"] = proto;

    if (o.handshakes > 0) {
        if (o.server_pid)
            srv0 = sample_process(o.server_pid);
        auto const t0 = clock_type::now();
        auto const c = run_handshakes(l.target(), o.handshakes, o.concurrency, l.upgrade_request(),
                                      l.source_addresses(), o.keep, 600);
        double const secs = std::chrono::duration<double>(clock_type::now() - t0).count();
        auto const self1 = self_usage();
        if (o.server_pid)
            srv1 = sample_process(o.server_pid);
        double const rate_hs = static_cast<double>(c.done) / secs;
        // CPU per handshake, the server's and the generator's: the rate is the slower side's,
        // and these say which side that was.
        double const n = static_cast<double>(std::max<std::uint64_t>(c.done, 1));
        double const gen_us = (self1.user + self1.sys - self0.user - self0.sys) * 1e6 / n;
        std::printf("handshakes %llu in %.2f s: %.0f/s (concurrency %zu), failures %llu connect + "
                    "%llu upgrade; generator CPU %.1f us/handshake",
                    static_cast<unsigned long long>(c.done), secs, rate_hs, o.concurrency,
                    static_cast<unsigned long long>(c.connect_failures),
                    static_cast<unsigned long long>(c.upgrade_failures), gen_us);
        report["handshakes"] = c.done;
        report["kept"] = o.keep;
        report["handshakes_per_second"] = rate_hs;
        report["connect_failures"] = c.connect_failures;
        report["handshake_failures"] = c.upgrade_failures;
        report["generator_cpu_us_per_handshake"] = gen_us;
        if (srv0 && srv1) {
            double const srv_us = (srv1->user + srv1->sys - srv0->user - srv0->sys) * 1e6 / n;
            std::printf(", server CPU %.1f us/handshake", srv_us);
            report["server_cpu_us_per_handshake"] = srv_us;
        }
        std::printf("\n");
        if (!o.json_out.empty())
            std::ofstream(o.json_out) << boost::json::serialize(report) << "\n";
        return c.done == o.handshakes ? 0 : 1;
    }

    // Ramp the subscribers up.
    auto const t_start = clock_type::now();
    auto ramp_task = [&]() -> net::awaitable<void> {
        net::steady_timer t(ioc);
        for (std::size_t i = 0; i < o.clients; ++i) {
            auto const due =
                t_start + std::chrono::duration_cast<clock_type::duration>(
                              std::chrono::duration<double>(static_cast<double>(i) / o.ramp));
            if (due > clock_type::now()) {
                t.expires_at(due);
                co_await t.async_wait(net::as_tuple(net::use_awaitable));
            }
            auto sub = [&l, i] {
                return l.subscriber(i);
            };
            net::co_spawn(ioc, sub(), [](std::exception_ptr) {});
        }
    };
    net::co_spawn(ioc, ramp_task, [](std::exception_ptr) {});

    // Control: wait for the subscribers, publish (or hold), drain, report progress.
    double handshake_rate = 0, connect_secs = 0, run_secs = 0;
    std::uint64_t rx_at_start = 0;
    auto control = [&]() -> net::awaitable<void> {
        net::steady_timer t(ioc);
        auto const give_up =
            t_start +
            std::chrono::duration_cast<clock_type::duration>(
                std::chrono::duration<double>(static_cast<double>(o.clients) / o.ramp + 30.0));
        while (st.connected + st.connect_failures + st.handshake_failures < o.clients &&
               clock_type::now() < give_up) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        connect_secs = std::chrono::duration<double>(clock_type::now() - t_start).count();
        handshake_rate = static_cast<double>(st.handshakes) / std::max(connect_secs, 1e-9);
        // let subscriptions settle before the first publication
        t.expires_after(std::chrono::milliseconds(300));
        co_await t.async_wait(net::as_tuple(net::use_awaitable));
        if (o.server_pid)
            srv0 = sample_process(o.server_pid);
        rx_at_start = st.received;
        st.latency_us.reset();
        auto const t_pub = clock_type::now();
        if (o.publish_rate > 0) {
            auto pub = [&l] {
                return l.publisher();
            };
            net::co_spawn(ioc, pub(), [](std::exception_ptr) {});
        }
        auto const pub_end = t_pub + std::chrono::duration_cast<clock_type::duration>(
                                         std::chrono::duration<double>(o.duration));
        std::uint64_t last_rx = st.received;
        auto last_t = clock_type::now();
        while (clock_type::now() < pub_end || (o.publish_rate > 0 && !l.publishing_done)) {
            t.expires_after(std::chrono::milliseconds(1000));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
            auto const now = clock_type::now();
            double const rate_now = static_cast<double>(st.received - last_rx) /
                                    std::chrono::duration<double>(now - last_t).count();
            last_rx = st.received;
            last_t = now;
            if (!o.quiet)
                std::fprintf(stderr,
                             "\rconns %zu/%zu | rx %.0f msg/s | p99 %.2f ms | gaps %llu | "
                             "reconnects %llu   ",
                             st.connected, o.clients, rate_now,
                             static_cast<double>(st.latency_us.quantile(0.99)) / 1000.0,
                             static_cast<unsigned long long>(st.gaps),
                             static_cast<unsigned long long>(st.reconnects));
        }
        // the server sample ends with publishing; deliveries in flight drain afterwards
        run_secs = std::chrono::duration<double>(clock_type::now() - t_pub).count();
        if (o.server_pid)
            srv1 = sample_process(o.server_pid);
        auto const drain_end = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                                       std::chrono::duration<double>(o.drain));
        while (clock_type::now() < drain_end &&
               (o.publish_rate == 0 || st.received - rx_at_start < st.published * st.connected)) {
            t.expires_after(std::chrono::milliseconds(20));
            co_await t.async_wait(net::as_tuple(net::use_awaitable));
        }
        if (!o.quiet)
            std::fprintf(stderr, "\n");
        l.stop = true;
        ioc.stop();
    };
    net::co_spawn(ioc, control, [](std::exception_ptr e) {
        if (e)
            std::rethrow_exception(e);
    });
    ioc.run();
    if (!l.refused.empty()) {
        std::cerr << "rtload: " << l.refused << "\n";
        return 2;
    }

    auto const self1 = self_usage();
    std::uint64_t const rx = st.received - rx_at_start;
    std::uint64_t const expected = st.published * st.connected;
    std::uint64_t const lost = expected > rx ? expected - rx : 0;
    // Deliveries per second over the publishing window (what was offered), not the drain.
    double const window =
        o.publish_rate > 0 ? static_cast<double>(st.published) / o.publish_rate : run_secs;
    double const deliveries_per_s = static_cast<double>(rx) / std::max(window, 1e-9);
    auto const& h = st.latency_us;
    auto ms = [](std::uint64_t us) {
        return static_cast<double>(us) / 1000.0;
    };

    std::printf("rtload %s  %s  protocol %s\n", rtpush::version_string, url.c_str(), proto.c_str());
    std::printf("  connections   %zu of %zu connected in %.2f s (%.0f handshakes/s), %llu connect "
                "+ %llu upgrade failures, %llu dropped, %llu reconnects\n",
                st.connected, o.clients, connect_secs, handshake_rate,
                static_cast<unsigned long long>(st.connect_failures),
                static_cast<unsigned long long>(st.handshake_failures),
                static_cast<unsigned long long>(st.disconnects),
                static_cast<unsigned long long>(st.reconnects));
    std::printf("  published     %llu messages of %zu bytes at %.0f/s over %.2f s via %s, %llu "
                "errors\n",
                static_cast<unsigned long long>(st.published), o.size, o.publish_rate, run_secs,
                o.publish_http ? "HTTP" : "WebSocket",
                static_cast<unsigned long long>(st.publish_errors));
    std::printf("  delivered     %llu (%.0f deliveries/s), expected %llu, lost %llu, duplicates "
                "%llu, out of order %llu\n",
                static_cast<unsigned long long>(rx), deliveries_per_s,
                static_cast<unsigned long long>(expected), static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(st.duplicates),
                static_cast<unsigned long long>(st.out_of_order));
    std::printf("  latency ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
                ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)),
                ms(h.quantile(0.999)), ms(h.max()));
    double const self_cpu = (self1.user + self1.sys) - (self0.user + self0.sys);
    std::printf(
        "  rtload itself CPU %.2f s (%.0f%% of one core), max RSS %ld MiB\n", self_cpu,
        100.0 * self_cpu /
            std::max(std::chrono::duration<double>(clock_type::now() - t_start).count(), 1e-9),
        self1.rss_kib / 1024);
    report["clients"] = o.clients;
    report["connected"] = st.connected;
    report["connect_seconds"] = connect_secs;
    report["handshakes_per_second"] = handshake_rate;
    report["connect_failures"] = st.connect_failures;
    report["handshake_failures"] = st.handshake_failures;
    report["disconnects"] = st.disconnects;
    report["reconnects"] = st.reconnects;
    report["publish_via"] = o.publish_http ? "http" : "ws";
    report["publish_errors"] = st.publish_errors;
    report["published"] = st.published;
    report["publish_rate"] = o.publish_rate;
    report["size"] = o.size;
    report["seconds"] = run_secs;
    report["delivered"] = rx;
    report["deliveries_per_second"] = deliveries_per_s;
    report["expected"] = expected;
    report["lost"] = lost;
    report["duplicates"] = st.duplicates;
    report["out_of_order"] = st.out_of_order;
    boost::json::object lat;
    lat["p50"] = ms(h.quantile(0.5));
    lat["p90"] = ms(h.quantile(0.9));
    lat["p99"] = ms(h.quantile(0.99));
    lat["p999"] = ms(h.quantile(0.999));
    lat["max"] = ms(h.max());
    report["latency_ms"] = lat;
    if (st.answer_us.count()) {
        // How long the server took to answer a publication (with rtd --data-dir: its commit).
        auto const& a = st.answer_us;
        std::printf(
            "  answers ms    p50 %.2f  p90 %.2f  p99 %.2f  max %.2f (POST /api/broadcast)\n",
            ms(a.quantile(0.5)), ms(a.quantile(0.9)), ms(a.quantile(0.99)), ms(a.max()));
        boost::json::object ans;
        ans["p50"] = ms(a.quantile(0.5));
        ans["p90"] = ms(a.quantile(0.9));
        ans["p99"] = ms(a.quantile(0.99));
        ans["max"] = ms(a.max());
        report["publish_answer_ms"] = ans;
    }
    report["rtload_cpu_seconds"] = self_cpu;
    if (srv0 && srv1) {
        double const user = srv1->user - srv0->user, sys = srv1->sys - srv0->sys;
        double const d = static_cast<double>(std::max<std::uint64_t>(rx, 1));
        std::printf("  server        CPU user %.2f s + sys %.2f s = %.2f us/delivery (user %.2f "
                    "us), RSS %ld KiB\n",
                    user, sys, 1e6 * (user + sys) / d, 1e6 * user / d, srv1->rss_kib);
        report["server_cpu_user_seconds"] = user;
        report["server_cpu_sys_seconds"] = sys;
        report["server_cpu_us_per_delivery"] = 1e6 * (user + sys) / d;
        report["server_user_us_per_delivery"] = 1e6 * user / d;
        report["server_rss_kib"] = srv1->rss_kib;
    } else if (o.server_pid) {
        if (auto s = sample_process(o.server_pid))
            report["server_rss_kib"] = s->rss_kib;
    }
    if (!o.json_out.empty())
        std::ofstream(o.json_out) << boost::json::serialize(report) << "\n";
    bool const ok = st.connected == o.clients && lost == 0;
    return ok ? 0 : 1;
}
