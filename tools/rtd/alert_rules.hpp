// rtd: threshold alert rules (seed 003's rules engine) from the config file's `alerts`
// section: the settings onto plain structs, and the evaluation, free of I/O.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#ifndef RTD_ALERT_RULES_HPP
#define RTD_ALERT_RULES_HPP

#include "sources_config.hpp"

#include <rtpush/topic.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace rtd {

enum class comparison { gt, ge, lt, le, eq, ne };

inline bool parse_comparison(std::string_view s, comparison& out) {
    static const std::pair<std::string_view, comparison> names[] = {
        {">", comparison::gt},  {">=", comparison::ge}, {"<", comparison::lt},
        {"<=", comparison::le}, {"==", comparison::eq}, {"!=", comparison::ne}};
    for (auto const& [n, c] : names)
        if (s == n) {
            out = c;
            return true;
        }
    return false;
}

inline std::string_view to_string(comparison c) {
    switch (c) {
    case comparison::gt:
        return ">";
    case comparison::ge:
        return ">=";
    case comparison::lt:
        return "<";
    case comparison::le:
        return "<=";
    case comparison::eq:
        return "==";
    case comparison::ne:
        return "!=";
    }
    return "?";
}

/// Whether `value` is outside the rule's bounds, i.e. `value <op> threshold` holds.
inline bool breaches(comparison c, double value, double threshold) {
    switch (c) {
    case comparison::gt:
        return value > threshold;
    case comparison::ge:
        return value >= threshold;
    case comparison::lt:
        return value < threshold;
    case comparison::le:
        return value <= threshold;
    case comparison::eq:
        return value == threshold;
    case comparison::ne:
        return value != threshold;
    }
    return false;
}

/// One threshold rule: on every topic its channel and scope cover, the number at `field`
/// (a JSON pointer into the published data) compared with `threshold`; `for_count`
/// consecutive breaching evaluations trigger an alert, the first one back inside resolves it.
struct alert_rule {
    std::string id;
    std::string name;
    rtpush::topic topic;
    std::string field;
    comparison op = comparison::gt;
    double threshold = 0;
    unsigned for_count = 1;
    std::string severity = "medium";
    std::string alert_type = "threshold";
    std::string source;  ///< seed 003's alert source; defaults to the channel when it is one
    std::string message; ///< {value}, {threshold}, {field} and {topic} are filled in
    /// Seconds its pending alerts wait before they are escalated; none: the server's setting.
    std::optional<double> escalate_after;
};

struct alert_rules_config {
    std::chrono::milliseconds interval{60000}; ///< seed 003 evaluated every 60 seconds
    std::vector<alert_rule> rules;
};

/// Reads the `alerts` setting: {"interval": seconds, "rules": [...]}. Throws
/// std::invalid_argument naming the bad setting, e.g. "alerts.rules[0].op: must be ...".
inline alert_rules_config parse_alert_rules(const boost::json::value& v) {
    using detail::bad;
    alert_rules_config c;
    if (!v.is_object())
        bad("alerts", "must be an object {interval, rules}");
    auto const& root = v.get_object();
    detail::only_keys(root, "alerts", {"interval", "rules"});
    c.interval = detail::get_seconds(root, "interval", "alerts", c.interval, false);
    auto const* rs = root.if_contains("rules");
    if (!rs)
        return c;
    if (!rs->is_array())
        bad("alerts.rules", "must be an array of objects");
    std::size_t i = 0;
    for (auto const& rv : rs->get_array()) {
        std::string const where = "alerts.rules[" + std::to_string(i++) + "]";
        if (!rv.is_object())
            bad(where, "must be an object");
        auto const& o = rv.get_object();
        detail::only_keys(o, where,
                          {"id", "name", "channel", "scope", "field", "op", "threshold", "for",
                           "severity", "alert_type", "source", "message", "escalate_after"});
        alert_rule r;
        r.id = detail::get_string(o, "id", where);
        if (!rtpush::valid_identifier(r.id))
            bad(where + ".id", "is required: 1-128 characters of [A-Za-z0-9_.@-]");
        for (auto const& q : c.rules)
            if (q.id == r.id)
                bad(where + ".id", "'" + r.id + "' is used twice");
        r.name = detail::get_string(o, "name", where, r.id);
        if (!o.contains("channel"))
            bad(where + ".channel", "is required");
        r.topic = detail::get_topic(o, where, "");
        r.field = detail::get_string(o, "field", where);
        if (r.field.empty() || r.field[0] != '/')
            bad(where + ".field", "is required: a JSON pointer such as /sla_risk/current");
        auto const op = detail::get_string(o, "op", where, ">");
        if (!parse_comparison(op, r.op))
            bad(where + ".op", "must be >, >=, <, <=, == or !=");
        auto const* th = o.if_contains("threshold");
        if (!th || !th->is_number())
            bad(where + ".threshold", "is required: a number");
        r.threshold = th->to_number<double>();
        if (auto const* f = o.if_contains("for")) {
            if (!f->is_number() || f->to_number<double>() < 1 || f->to_number<double>() > 1000 ||
                std::floor(f->to_number<double>()) != f->to_number<double>())
                bad(where + ".for", "must be a whole number of evaluations from 1 to 1000");
            r.for_count = static_cast<unsigned>(f->to_number<double>());
        }
        r.severity = detail::get_string(o, "severity", where, r.severity);
        if (r.severity != "low" && r.severity != "medium" && r.severity != "high" &&
            r.severity != "critical")
            bad(where + ".severity", "must be low, medium, high or critical");
        r.alert_type = detail::get_string(o, "alert_type", where, r.alert_type);
        if (r.alert_type.empty())
            bad(where + ".alert_type", "must not be empty");
        auto const& ch = r.topic.channel;
        bool const known = ch == "kpi" || ch == "backlog" || ch == "attendance" || ch == "schedule";
        r.source = detail::get_string(o, "source", where, known ? ch : std::string{});
        if (!r.source.empty() && r.source != "kpi" && r.source != "backlog" &&
            r.source != "attendance" && r.source != "schedule")
            bad(where + ".source", "must be kpi, backlog, attendance or schedule");
        r.message = detail::get_string(o, "message", where,
                                       r.name + ": {field} is {value} ({op} {threshold})");
        if (auto const* e = o.if_contains("escalate_after")) {
            if (!e->is_number() || e->to_number<double>() < 0 || e->to_number<double>() > 31536000)
                bad(where + ".escalate_after",
                    "must be a number of seconds from 0 (never) to 31536000");
            r.escalate_after = e->to_number<double>();
        }
        if (r.message.empty())
            bad(where + ".message", "must not be empty");
        c.rules.push_back(std::move(r));
    }
    return c;
}

/// The number a rule reads from the retained values of one topic (hub::snapshot items):
/// its `kpis` phase first, then the others; nothing when no value has a number there.
inline std::optional<double> rule_value(const alert_rule& r,
                                        const std::vector<const boost::json::object*>& items) {
    for (int pass = 0; pass < 2; ++pass)
        for (auto const* it : items) {
            auto const* ph = it->if_contains("phase");
            bool const kpis = ph && ph->is_string() && ph->get_string() == "kpis";
            if (kpis != (pass == 0))
                continue;
            auto const* data = it->if_contains("data");
            if (!data)
                continue;
            boost::system::error_code ec;
            auto const* v = data->find_pointer(r.field, ec);
            if (v && v->is_number())
                return v->to_number<double>();
        }
    return std::nullopt;
}

inline std::string number_text(double d) {
    if (std::floor(d) == d && std::fabs(d) < 1e15)
        return std::to_string(static_cast<long long>(d));
    std::ostringstream ss;
    ss << d;
    return ss.str();
}

/// The seed 003 alert payload a rule raises on a topic.
inline boost::json::object rule_alert(const alert_rule& r, const rtpush::topic& t, double value) {
    std::string msg = r.message;
    auto fill = [&](std::string_view key, const std::string& with) {
        for (std::size_t at = 0; (at = msg.find(key, at)) != std::string::npos; at += with.size())
            msg.replace(at, key.size(), with);
    };
    fill("{value}", number_text(value));
    fill("{threshold}", number_text(r.threshold));
    fill("{op}", std::string(to_string(r.op)));
    fill("{field}", r.field);
    fill("{topic}", t.key());
    boost::json::object o;
    o["rule_id"] = r.id;
    o["rule_name"] = r.name;
    o["alert_type"] = r.alert_type;
    o["severity"] = r.severity;
    if (!r.source.empty())
        o["source"] = r.source;
    o["organization_id"] = t.scope.org;
    if (!t.scope.dept.empty())
        o["department_id"] = t.scope.dept;
    if (!t.scope.queue.empty())
        o["queue_name"] = t.scope.queue;
    o["message"] = msg;
    o["current_value"] = value;
    o["threshold_value"] = r.threshold;
    o["comparison"] = to_string(r.op);
    o["topic"] = t.key();
    if (r.escalate_after)
        o["escalate_after"] = *r.escalate_after;
    return o;
}

/// The rules' state per (rule, topic): consecutive breaches and the alert raised. Decides,
/// evaluation by evaluation, when to trigger and when to resolve; the caller does both
/// through the alert lifecycle and reports the triggered alert's id back.
class rule_engine {
public:
    struct action {
        enum kind_t { trigger, resolve } kind;
        std::string alert_id; ///< with resolve: the alert to resolve
    };

    /// One evaluation of rule `r` on the topic `key`. `value` is empty when the topic has no
    /// number at the rule's field (nothing changes then). `active(id)` tells whether an alert
    /// is still unresolved: one resolved by someone else is not raised again until the value
    /// has been back inside once.
    template <class IsActive>
    std::optional<action> evaluate(const alert_rule& r, const std::string& key,
                                   std::optional<double> value, IsActive&& active) {
        if (!value)
            return std::nullopt;
        auto& s = state_[{r.id, key}];
        if (!s.alert_id.empty() && !active(s.alert_id)) {
            s.alert_id.clear();
            s.quiet = true;
        }
        if (breaches(r.op, *value, r.threshold)) {
            if (s.breaches < r.for_count)
                ++s.breaches;
            if (s.alert_id.empty() && !s.quiet && s.breaches >= r.for_count)
                return action{action::trigger, {}};
            return std::nullopt;
        }
        s.breaches = 0;
        s.quiet = false;
        if (s.alert_id.empty())
            return std::nullopt;
        return action{action::resolve, std::exchange(s.alert_id, {})};
    }

    /// The alert the caller raised for a `trigger` action.
    void triggered(const alert_rule& r, const std::string& key, std::string alert_id) {
        state_[{r.id, key}].alert_id = std::move(alert_id);
    }

    /// The consecutive breaching evaluations counted for (rule, topic), up to `for`.
    unsigned breaches_of(const alert_rule& r, const std::string& key) const {
        auto it = state_.find({r.id, key});
        return it == state_.end() ? 0 : it->second.breaches;
    }

private:
    struct state {
        unsigned breaches = 0;
        std::string alert_id;
        bool quiet = false;
    };
    std::map<std::pair<std::string, std::string>, state> state_;
};

} // namespace rtd

#endif
