// rtd: the built-in demo publisher behind scripts/demo: an intraday console (seeds 001, 003;
// docs/protocol.md, "Seed parity") for a few organisations, departments and queues, with KPIs
// first and complete data after.
#ifndef RTD_DEMO_HPP
#define RTD_DEMO_HPP

#include <rtpush/hub.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <random>

namespace rtd {

class demo_publisher {
public:
    explicit demo_publisher(rtpush::hub& h)
        : hub_(h) {}

    /// Publishes a full round, then one every `interval` until cancelled.
    boost::asio::awaitable<void> run(std::chrono::milliseconds interval) {
        boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
        for (;;) {
            publish_all();
            t.expires_after(interval);
            co_await t.async_wait(boost::asio::use_awaitable); // throws when cancelled at shutdown
        }
    }

    /// A client's `refresh`: recompute and republish what the topic covers.
    void refresh(const rtpush::topic& t) {
        std::lock_guard lock(mutex_);
        for (auto const& org : orgs())
            for (auto const& dept : depts())
                for (auto const& queue : queues()) {
                    rtpush::topic q{"kpi", {org, dept, queue}};
                    if (t.channel == "kpi" && rtpush::topic{"kpi", t.scope}.covers(q))
                        publish_queue(org, dept, queue);
                }
        if (t.channel != "kpi")
            publish_all_locked();
    }

    void publish_all() {
        std::lock_guard lock(mutex_);
        publish_all_locked();
    }

    /// Where alerts go (the server's alert lifecycle); without one they are published as
    /// plain `alert:triggered` messages. Called with the demo's lock held.
    void on_alert(std::function<void(boost::json::object)> f) { raise_alert_ = std::move(f); }

private:
    void publish_all_locked() {
        for (auto const& org : orgs())
            for (auto const& dept : depts()) {
                for (auto const& queue : queues())
                    publish_queue(org, dept, queue);
                publish_attendance(org, dept);
            }
        if (std::uniform_real_distribution<>(0, 1)(rng()) < 0.15)
            publish_alert();
    }

    struct queue_state {
        double utilization = 70, sla_risk = 10, headcount_gap = 0, health = 80, backlog = 40,
               wait = 5;
    };
    static const std::vector<std::string>& orgs() {
        static const std::vector<std::string> v{"acme", "globex", "initech"};
        return v;
    }
    static const std::vector<std::string>& depts() {
        static const std::vector<std::string> v{"support", "sales"};
        return v;
    }
    static const std::vector<std::string>& queues() {
        static const std::vector<std::string> v{"email", "phone", "chat"};
        return v;
    }
    std::mt19937& rng() { return rng_; }
    double walk(double v, double step, double lo, double hi) {
        v += std::normal_distribution<>(0, step)(rng());
        return std::round(std::clamp(v, lo, hi) * 10) / 10;
    }

    void publish_queue(const std::string& org, const std::string& dept, const std::string& queue) {
        auto& s = state_[org + "/" + dept + "/" + queue];
        queue_state const prev = s;
        s.utilization = walk(s.utilization, 3, 30, 100);
        s.sla_risk = walk(s.sla_risk, 2, 0, 100);
        s.headcount_gap = std::round(walk(s.headcount_gap, 1, -5, 5));
        s.health = std::round(walk(s.health, 2, 0, 100));
        s.backlog = std::round(walk(s.backlog, 4, 0, 500));
        s.wait = walk(s.wait, 0.5, 0, 60);
        rtpush::topic const t{"kpi", {org, dept, queue}};
        boost::json::object kpis{
            {"organization_id", org},
            {"department_id", dept},
            {"queue_name", queue},
            {"utilization", s.utilization},
            {"sla_risk", s.sla_risk},
            {"headcount_gap", s.headcount_gap},
            {"health_score", s.health},
            {"changes",
             boost::json::object{{"utilization_change", s.utilization - prev.utilization},
                                 {"sla_risk_change", s.sla_risk - prev.sla_risk},
                                 {"headcount_gap_change", s.headcount_gap - prev.headcount_gap},
                                 {"health_score_change", s.health - prev.health}}}};
        hub_.publish({t, "kpi:update", "kpis", rtpush::priority::high, kpis});
        // The complete phase: the KPIs plus the heavier detail a dashboard draws after.
        boost::json::array series;
        for (int i = 0; i < 48; ++i)
            series.push_back(
                boost::json::object{{"interval", i},
                                    {"forecast", 40 + 20 * std::sin(i / 7.0)},
                                    {"actual", walk(40 + 20 * std::sin(i / 7.0), 4, 0, 200)}});
        boost::json::object complete = kpis;
        complete["intervals"] = std::move(series);
        complete["backlog"] =
            boost::json::object{{"total_items", s.backlog},
                                {"avg_wait_time_minutes", s.wait},
                                {"items_over_sla", std::round(s.backlog * s.sla_risk / 100)}};
        hub_.publish({t, "kpi:update", "complete", rtpush::priority::medium, complete});
        hub_.publish({{"backlog", {org, dept, queue}},
                      "backlog:update",
                      "",
                      rtpush::priority::medium,
                      {{"organization_id", org},
                       {"department_id", dept},
                       {"queue_name", queue},
                       {"total_items", s.backlog},
                       {"avg_wait_time_minutes", s.wait},
                       {"items_over_sla", std::round(s.backlog * s.sla_risk / 100)},
                       {"sla_compliance_percentage", 100 - s.sla_risk},
                       {"backlog_trend", s.backlog > prev.backlog   ? "growing"
                                         : s.backlog < prev.backlog ? "decreasing"
                                                                    : "stable"}}});
    }

    void publish_attendance(const std::string& org, const std::string& dept) {
        int const scheduled = 40;
        int const present = std::uniform_int_distribution<>(30, 40)(rng());
        int const late = std::uniform_int_distribution<>(0, 4)(rng());
        hub_.publish({{"attendance", {org, dept, ""}},
                      "attendance:update",
                      "",
                      rtpush::priority::medium,
                      {{"organization_id", org},
                       {"department_id", dept},
                       {"scheduled_count", scheduled},
                       {"present_count", present},
                       {"absent_count", scheduled - present},
                       {"late_count", late},
                       {"attendance_rate", std::round(1000.0 * present / scheduled) / 10}}});
    }

    void publish_alert() {
        auto const& org =
            orgs()[std::uniform_int_distribution<std::size_t>(0, orgs().size() - 1)(rng())];
        auto const id = ++alerts_;
        boost::json::object a{{"rule_id", "demo-sla-risk"},
                              {"rule_name", "SLA risk above threshold"},
                              {"alert_type", "threshold"},
                              {"source", "kpi"},
                              {"severity", id % 3 == 0 ? "critical" : "high"},
                              {"organization_id", org},
                              {"message", "SLA risk rose above 25% in the last interval"}};
        if (raise_alert_) {
            raise_alert_(std::move(a));
            return;
        }
        a["alert_id"] = "demo-" + std::to_string(id);
        a["status"] = "pending";
        a["triggered_at"] = rtpush::iso8601_now();
        hub_.publish(
            {{"alerts", {org, "", ""}}, "alert:triggered", "", rtpush::priority::urgent, a});
    }

    rtpush::hub& hub_;
    std::mutex mutex_;
    std::map<std::string, queue_state> state_;
    std::mt19937 rng_{42};
    std::uint64_t alerts_ = 0;
    std::function<void(boost::json::object)> raise_alert_;
};

} // namespace rtd

#endif
