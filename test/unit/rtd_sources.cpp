// rtd's data sources, the parts free of I/O: /proc parsers and the config file.
#include "../../tools/rtd/copilot.hpp"
#include "../../tools/rtd/sources_config.hpp"
#include "../../tools/rtd/system_metrics.hpp"

#include <boost/test/unit_test.hpp>

using namespace std::chrono_literals;

namespace {

std::string config_error(std::string_view json) {
    try {
        rtd::parse_sources_config(boost::json::parse(json).as_object(), {});
    } catch (std::invalid_argument const& e) {
        return e.what();
    }
    return {};
}

} // namespace

BOOST_AUTO_TEST_SUITE(rtd_sources)

BOOST_AUTO_TEST_CASE(proc_stat_and_cpu_percent) {
    unsigned cores = 0;
    auto const a = rtd::parse_proc_stat("cpu  100 0 100 700 100 0 0 0 0 0\n"
                                        "cpu0 50 0 50 350 50 0 0 0 0 0\n"
                                        "cpu1 50 0 50 350 50 0 0 0 0 0\nintr 1 2\n",
                                        &cores);
    BOOST_TEST(cores == 2u);
    BOOST_TEST(a.total == 1000u);
    BOOST_TEST(a.idle == 800u);
    auto const b = rtd::parse_proc_stat("cpu  200 0 200 800 100 0 0 0 0 0\n");
    BOOST_TEST(rtd::cpu_percent(a, b) == 66.7); // 200 busy of 300
    BOOST_TEST(rtd::cpu_percent(b, a) == 0.0);
}

BOOST_AUTO_TEST_CASE(meminfo_and_net_dev) {
    auto const m = rtd::parse_meminfo("MemTotal:       16000000 kB\nMemAvailable:    4000000 kB\n"
                                      "HugePages_Total:       0\n");
    BOOST_TEST(m.at("MemTotal") == 16000000u);
    BOOST_TEST(m.at("MemAvailable") == 4000000u);
    BOOST_TEST(m.at("HugePages_Total") == 0u);
    auto const n = rtd::parse_net_dev(
        "Inter-|   Receive                            |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes packets\n"
        "    lo: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n"
        "  eth0: 5 1 0 0 0 0 0 0 7 2 0 0 0 0 0 0\n");
    BOOST_TEST_REQUIRE(n.size() == 2u);
    BOOST_TEST(n[0].name == "lo");
    BOOST_TEST(n[0].rx_bytes == 1000u);
    BOOST_TEST(n[0].tx_bytes == 2000u);
    BOOST_TEST(n[1].name == "eth0");
    BOOST_TEST(n[1].tx_packets == 2u);
}

BOOST_AUTO_TEST_CASE(pid_stat_with_odd_names) {
    rtd::proc_sample p;
    BOOST_TEST(rtd::parse_pid_stat("42 (my (odd) proc) S 1 42 42 0 -1 4194560 100 0 0 0 "
                                   "30 12 0 0 20 0 1 0 100 1000000 250 18446744073709551615",
                                   p));
    BOOST_TEST(p.pid == 42);
    BOOST_TEST(p.name == "my (odd) proc");
    BOOST_TEST(p.cpu == 42u);
    BOOST_TEST(p.rss_pages == 250u);
    BOOST_TEST(!rtd::parse_pid_stat("garbage", p));
}

BOOST_AUTO_TEST_CASE(collects_this_machine) {
    rtd::system_metrics sm;
    auto const m = sm.collect();
    BOOST_TEST(m.at("cpu_cores").as_uint64() >= 1u);
    BOOST_TEST(m.at("memory_total").as_uint64() > 0u);
    BOOST_TEST(m.at("uptime").as_int64() > 0);
    BOOST_TEST(!m.at("hostname").as_string().empty());
    BOOST_TEST(m.at("top_processes").as_array().size() <= 10u);
    BOOST_TEST(!m.at("top_processes").as_array().empty());
    BOOST_TEST(!m.at("network_interfaces").as_array().empty());
    auto const k = rtd::system_metrics::kpis(m);
    BOOST_TEST(k.contains("cpu_usage"));
    BOOST_TEST(k.contains("memory_percent"));
    BOOST_TEST(!k.contains("top_processes"));
}

BOOST_AUTO_TEST_CASE(config_file_pollers) {
    auto const c = rtd::parse_sources_config(boost::json::parse(R"({
        "refresh_interval": 12, "cache_ttl": 0,
        "system_metrics": {"interval": 2.5, "on_demand": false},
        "pollers": [{"name": "gh", "url": "http://h:8080/x?y=1", "channel": "dash",
                     "scope": {"org": "acme"}, "headers": {"X-A": "b"},
                     "bearer_token_env": "TOKEN", "kpis": {"total": "/summary/total"},
                     "data": "/payload", "timeout": 3, "jitter": 1}]})")
                                                 .as_object(),
                                             {});
    BOOST_TEST(c.system_metrics);
    BOOST_TEST(c.metrics_topic.channel == "metrics");
    BOOST_TEST(c.metrics_refresh.refresh_interval.count() == 2500);
    BOOST_TEST(!c.metrics_refresh.on_demand);
    BOOST_TEST_REQUIRE(c.pollers.size() == 1u);
    auto const& p = c.pollers[0];
    BOOST_TEST(p.name == "gh");
    BOOST_TEST(p.topic.key() == "dash:org:acme");
    BOOST_TEST(p.headers.at(0).first == "X-A");
    BOOST_TEST(p.bearer_token_env == "TOKEN");
    BOOST_TEST(p.kpis.at(0).pointer == "/summary/total");
    BOOST_TEST(p.data_pointer == "/payload");
    BOOST_TEST(p.timeout.count() == 3000);
    BOOST_TEST(p.refresh.refresh_interval.count() == 12000);
    BOOST_TEST(p.refresh.cache_ttl.count() == 0);
    BOOST_TEST(p.refresh.jitter.count() == 1000);
}

BOOST_AUTO_TEST_CASE(config_errors_name_the_setting) {
    BOOST_TEST(
        config_error(R"({"pollers":[{"name":"a","url":"https://x/","channel":"c"}]})").empty());
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c",
                                           "ca_file":"ca.pem"}]})")
                   .starts_with("pollers[0].ca_file:"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"ftp://x/","channel":"c"}]})")
                   .starts_with("pollers[0].url:"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/"}]})")
                   .starts_with("pollers[0].channel: is required"));
    BOOST_TEST(config_error(R"({"pollers":[{"url":"http://x/","channel":"c"}]})")
                   .starts_with("pollers[0].name: is required"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c"},
                                          {"name":"a","url":"http://x/","channel":"c"}]})")
                   .starts_with("pollers[1].name:"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c",
                                           "intervall":3}]})")
                   .starts_with("pollers[0].intervall: unknown setting"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c",
                                           "interval":0}]})")
                   .starts_with("pollers[0].interval:"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c",
                                           "kpis":{"k":"no-slash"}}]})")
                   .starts_with("pollers[0].kpis.k:"));
    BOOST_TEST(config_error(R"({"pollers":[{"name":"a","url":"http://x/","channel":"c",
                                           "scope":{"dept":"d"}}]})")
                   .starts_with("pollers[0].scope:"));
    BOOST_TEST(config_error(R"({"refresh_interval":"30"})").starts_with("refresh_interval:"));
    BOOST_TEST(config_error(R"({"system_metrics":3})").starts_with("system_metrics:"));
    BOOST_TEST(config_error(R"({"pollers":{}})").starts_with("pollers:"));
}

BOOST_AUTO_TEST_CASE(copilot_kpis_of_the_latest_day) {
    // The shape of GET /orgs/{org}/copilot/metrics (docs.github.com), two days, oldest first.
    auto const body = boost::json::parse(R"([
      {"date":"2026-12-04","total_active_users":5,"total_engaged_users":4},
      {"date":"2026-12-05","total_active_users":24,"total_engaged_users":20,
       "copilot_ide_code_completions":{"total_engaged_users":20,"editors":[
         {"name":"vscode","models":[{"name":"default","languages":[
           {"name":"python","total_code_suggestions":200,"total_code_acceptances":50,
            "total_code_lines_suggested":300,"total_code_lines_accepted":80},
           {"name":"go","total_code_suggestions":100,"total_code_acceptances":40,
            "total_code_lines_suggested":100,"total_code_lines_accepted":40}]}]},
         {"name":"neovim","models":[{"name":"default","languages":[
           {"name":"rust","total_code_suggestions":100,"total_code_acceptances":10}]}]}]},
       "copilot_ide_chat":{"editors":[{"name":"vscode","models":[{"total_chats":45}]}]},
       "copilot_dotcom_chat":{"models":[{"name":"default","total_chats":38}]}}])");
    auto const k = rtd::copilot_kpis(body);
    BOOST_TEST(k.at("days").as_uint64() == 2u);
    BOOST_TEST(k.at("date").as_string() == "2026-12-05");
    BOOST_TEST(k.at("total_active_users").as_uint64() == 24u);
    BOOST_TEST(k.at("total_engaged_users").as_uint64() == 20u);
    BOOST_TEST(k.at("total_code_suggestions").as_uint64() == 400u);
    BOOST_TEST(k.at("total_code_acceptances").as_uint64() == 100u);
    BOOST_TEST(k.at("acceptance_rate").as_double() == 25.0);
    BOOST_TEST(k.at("total_lines_suggested").as_uint64() == 400u);
    BOOST_TEST(k.at("total_lines_accepted").as_uint64() == 120u);
    BOOST_TEST(k.at("total_chats").as_uint64() == 83u);
    BOOST_TEST(rtd::copilot_kpis(boost::json::array{}).at("days").as_uint64() == 0u);
    BOOST_CHECK_THROW(rtd::copilot_kpis(boost::json::object{}), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(copilot_poller_preset) {
    auto const p =
        rtd::copilot_poller({.api_url = "https://ghe.example/api/v3/", .org = "acme"}, {});
    BOOST_TEST(p.url == "https://ghe.example/api/v3/orgs/acme/copilot/metrics");
    BOOST_TEST(p.topic.key() == "dashboard");
    BOOST_TEST(p.bearer_token_env == "GITHUB_TOKEN");
}

BOOST_AUTO_TEST_SUITE_END()
