// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
#ifndef RTPUSH_IMPL_INGEST_HPP
#define RTPUSH_IMPL_INGEST_HPP

#include <rtpush/detail/iso8601.hpp>
#include <rtpush/topic.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>

namespace rtpush {

namespace detail {

inline std::string number_text(double d) {
    std::ostringstream ss;
    ss << d;
    return ss.str();
}

// "a number from 0 to 100", "an integer of at least 0": the range as people read it.
inline std::string range_text(const field_rule& r, std::string_view what) {
    std::string s(what);
    if (r.min && r.max)
        s += " from " + number_text(*r.min) + " to " + number_text(*r.max);
    else if (r.min)
        s += " of at least " + number_text(*r.min);
    else if (r.max)
        s += " of at most " + number_text(*r.max);
    return s;
}

inline std::optional<validation_error> field_error(const std::string& where, std::string what) {
    return validation_error{where, std::move(what)};
}

inline std::optional<validation_error> validate_object(const std::vector<field_rule>& fields,
                                                       const boost::json::object& o,
                                                       const std::string& prefix) {
    for (auto const& f : fields) {
        std::string const where = prefix.empty() ? f.name : prefix + "." + f.name;
        auto const* v = o.if_contains(f.name);
        if (!v) {
            if (f.required)
                return field_error(where, "is required");
            continue;
        }
        if (auto e = validate_field(f, *v, where))
            return e;
    }
    return std::nullopt;
}

} // namespace detail

inline bool valid_timestamp(std::string_view s) noexcept {
    // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)
    int y, mo, d, h, mi, se;
    if (s.size() < 20 || !detail::digits(s, 0, 4, y) || s[4] != '-' ||
        !detail::digits(s, 5, 2, mo) || s[7] != '-' || !detail::digits(s, 8, 2, d) ||
        (s[10] != 'T' && s[10] != 't') || !detail::digits(s, 11, 2, h) || s[13] != ':' ||
        !detail::digits(s, 14, 2, mi) || s[16] != ':' || !detail::digits(s, 17, 2, se))
        return false;
    // A day the month has (2026-02-30 is no date, yet was accepted); second 60 is a leap
    // second.
    bool const leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int const month_days = mo == 2                                     ? (leap ? 29 : 28)
                           : mo == 4 || mo == 6 || mo == 9 || mo == 11 ? 30
                                                                       : 31;
    if (mo < 1 || mo > 12 || d < 1 || d > month_days || h > 23 || mi > 59 || se > 60)
        return false;
    std::size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        std::size_t const start = ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9')
            ++i;
        if (i == start)
            return false;
    }
    if (i == s.size())
        return false; // a zone is required: a time without one means nothing to other machines
    if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size())
        return true;
    int zh, zm;
    return (s[i] == '+' || s[i] == '-') && i + 6 == s.size() && detail::digits(s, i + 1, 2, zh) &&
           s[i + 3] == ':' && detail::digits(s, i + 4, 2, zm) && zh <= 23 && zm <= 59;
}

inline std::optional<validation_error>
validate_field(const field_rule& r, const boost::json::value& v, const std::string& where) {
    using detail::field_error;
    switch (r.kind) {
    case field_kind::any:
        return std::nullopt;
    case field_kind::string: {
        if (!v.is_string())
            return field_error(where, "must be a string");
        auto const s = v.get_string();
        if (!r.one_of.empty() &&
            std::find(r.one_of.begin(), r.one_of.end(), std::string_view(s)) == r.one_of.end()) {
            std::string allowed;
            for (std::size_t i = 0; i < r.one_of.size(); ++i)
                allowed += (i == 0                     ? ""
                            : i + 1 == r.one_of.size() ? " or "
                                                       : ", ") +
                           ("\"" + r.one_of[i] + "\"");
            return field_error(where, "must be " + allowed);
        }
        auto const n = static_cast<double>(s.size());
        if ((r.min && n < *r.min) || (r.max && n > *r.max))
            return field_error(where,
                               r.min && *r.min == 1 && n < 1
                                   ? std::string("must not be empty")
                                   : detail::range_text(r, "must be a string with a length"));
        return std::nullopt;
    }
    case field_kind::identifier:
        if (!v.is_string() || !valid_identifier(v.get_string()))
            return field_error(where, "must be an identifier: 1-128 characters of [A-Za-z0-9_.@-]");
        return std::nullopt;
    case field_kind::timestamp:
        if (!v.is_string() || !valid_timestamp(v.get_string()))
            return field_error(where, "must be an ISO 8601 date and time with a zone, e.g. "
                                      "2026-01-31T10:00:00Z");
        return std::nullopt;
    case field_kind::integer:
    case field_kind::number: {
        bool const integer = r.kind == field_kind::integer;
        char const* what = integer ? "must be an integer" : "must be a number";
        if (!v.is_number())
            return field_error(where, detail::range_text(r, what));
        double const d = v.to_number<double>();
        if (integer && !v.is_int64() && !v.is_uint64() && std::floor(d) != d)
            return field_error(where, detail::range_text(r, what));
        if ((r.min && d < *r.min) || (r.max && d > *r.max))
            return field_error(where, detail::range_text(r, what));
        return std::nullopt;
    }
    case field_kind::boolean:
        if (!v.is_bool())
            return field_error(where, "must be true or false");
        return std::nullopt;
    case field_kind::metric:
        if (v.is_number())
            return std::nullopt;
        if (!v.is_object())
            return field_error(where, "must be a number or an object of metrics");
        for (auto const& [k, x] : v.get_object())
            if (x.is_object() || x.is_array())
                return field_error(where + "." + std::string(k),
                                   "must be a number, string, boolean or null");
        return std::nullopt;
    case field_kind::number_map:
        if (!v.is_object())
            return field_error(where, "must be an object of numbers");
        for (auto const& [k, x] : v.get_object())
            if (!x.is_number())
                return field_error(where + "." + std::string(k), "must be a number");
        return std::nullopt;
    case field_kind::object:
        if (!v.is_object())
            return field_error(where, "must be an object");
        return detail::validate_object(r.fields, v.get_object(), where);
    case field_kind::array: {
        if (!v.is_array())
            return field_error(where, "must be an array");
        auto const& a = v.get_array();
        if ((r.min && a.size() < *r.min) || (r.max && a.size() > *r.max))
            return field_error(where, detail::range_text(r, "must be an array with a length"));
        if (r.fields.empty())
            return std::nullopt;
        for (std::size_t i = 0; i < a.size(); ++i) {
            std::string const at = where + "[" + std::to_string(i) + "]";
            if (!a[i].is_object())
                return field_error(at, "must be an object");
            if (auto e = detail::validate_object(r.fields, a[i].get_object(), at))
                return e;
        }
        return std::nullopt;
    }
    }
    return std::nullopt;
}

inline void ingest_validator::set(std::string kind, payload_schema schema) {
    schemas_[std::move(kind)] = std::move(schema);
}

inline bool ingest_validator::has(std::string_view kind) const {
    return schemas_.find(kind) != schemas_.end();
}

inline std::optional<validation_error>
ingest_validator::validate(std::string_view kind, const boost::json::value& payload) const {
    auto const it = schemas_.find(kind);
    if (it == schemas_.end())
        return std::nullopt;
    if (!payload.is_object())
        return validation_error{"", "the payload must be a JSON object"};
    auto const& o = payload.get_object();
    if (auto e = detail::validate_object(it->second.fields, o, ""))
        return e;
    for (auto const& check : it->second.checks)
        if (auto e = check(o))
            return e;
    return std::nullopt;
}

inline std::string ingest_validator::kind_of_channel(std::string_view channel) {
    if (channel == "alerts")
        return "alert";
    return std::string(channel);
}

inline std::string ingest_validator::kind_of_event(std::string_view event) {
    if (event == "kpi:update" || event == "backlog:update" || event == "attendance:update")
        return std::string(event.substr(0, event.find(':')));
    if (event == "alert:triggered" || event == "alert:acknowledged" || event == "alert:resolved")
        return "alert";
    return {};
}

inline ingest_validator ingest_validator::intraday() {
    using k = field_kind;
    auto f = [](std::string name, field_kind kind, bool required = false) {
        field_rule r;
        r.name = std::move(name);
        r.kind = kind;
        r.required = required;
        return r;
    };
    auto ranged = [&](std::string name, field_kind kind, bool required, std::optional<double> lo,
                      std::optional<double> hi) {
        auto r = f(std::move(name), kind, required);
        r.min = lo;
        r.max = hi;
        return r;
    };
    auto choice = [&](std::string name, bool required, std::vector<std::string> values) {
        auto r = f(std::move(name), k::string, required);
        r.one_of = std::move(values);
        return r;
    };
    auto text = [&](std::string name, bool required) {
        return ranged(std::move(name), k::string, required, 1, 4096);
    };
    // The scope (seed 003's room levels) and the time of every payload. The timestamp is
    // optional at ingest: the server stamps a payload without one with its own clock.
    auto scoped = [&](bool with_queue) {
        std::vector<field_rule> v{f("organization_id", k::identifier, true),
                                  f("department_id", k::identifier)};
        if (with_queue)
            v.push_back(f("queue_name", k::identifier));
        v.push_back(f("timestamp", k::timestamp));
        return v;
    };
    // A queue belongs to a department (the room `...:dept:D:queue:Q`).
    auto queue_needs_dept = [](const boost::json::object& o) -> std::optional<validation_error> {
        if (o.contains("queue_name") && !o.contains("department_id"))
            return validation_error{"department_id", "is required when queue_name is given"};
        return std::nullopt;
    };
    auto count = [&](std::string name, bool required) {
        return ranged(std::move(name), k::integer, required, 0, std::nullopt);
    };
    auto percent = [&](std::string name, bool required) {
        return ranged(std::move(name), k::number, required, 0, 100);
    };

    ingest_validator iv;
    {
        payload_schema s;
        s.fields = scoped(true);
        for (auto const* m : {"utilization", "headcount_gap", "sla_risk"})
            s.fields.push_back(f(m, k::metric));
        s.fields.push_back(percent("health_score", true));
        s.fields.push_back(f("changes", k::number_map));
        s.checks.push_back(queue_needs_dept);
        iv.set("kpi", std::move(s));
    }
    {
        payload_schema s;
        s.fields = scoped(true);
        s.fields.push_back(text("snapshot_id", false));
        s.fields.push_back(count("total_items", true));
        s.fields.push_back(ranged("avg_wait_time_minutes", k::number, true, 0, std::nullopt));
        s.fields.push_back(count("items_over_sla", true));
        s.fields.push_back(percent("sla_compliance_percentage", true));
        s.fields.push_back(choice("backlog_trend", false, {"growing", "stable", "decreasing"}));
        s.fields.push_back(count("items_added_this_interval", false));
        s.fields.push_back(count("items_completed_this_interval", false));
        s.checks.push_back(queue_needs_dept);
        s.checks.push_back([](const boost::json::object& o) -> std::optional<validation_error> {
            // The items over the SLA are some of the items.
            if (o.at("items_over_sla").to_number<double>() >
                o.at("total_items").to_number<double>())
                return validation_error{"items_over_sla", "must not exceed total_items"};
            return std::nullopt;
        });
        iv.set("backlog", std::move(s));
    }
    {
        payload_schema s;
        s.fields = scoped(false);
        s.fields.push_back(text("snapshot_id", false));
        for (auto const* c : {"scheduled_count", "present_count", "absent_count", "late_count"})
            s.fields.push_back(count(c, true));
        s.fields.push_back(percent("attendance_rate", true));
        auto checkins = f("recent_checkins", k::array);
        checkins.fields = {text("employee_id", true), text("employee_name", true),
                           f("checked_in_at", k::timestamp, true), text("status", true)};
        s.fields.push_back(std::move(checkins));
        iv.set("attendance", std::move(s));
    }
    {
        // What a producer sends: the server assigns alert_id, status and triggered_at when
        // they are missing (docs/protocol.md, "Alerts").
        payload_schema s;
        s.fields = scoped(true);
        s.fields.push_back(f("alert_id", k::identifier));
        s.fields.push_back(text("rule_id", false));
        s.fields.push_back(text("rule_name", false));
        s.fields.push_back(text("alert_type", false));
        s.fields.push_back(choice("severity", true, {"low", "medium", "high", "critical"}));
        s.fields.push_back(choice("source", false, {"kpi", "backlog", "attendance", "schedule"}));
        s.fields.push_back(text("message", true));
        s.fields.push_back(choice("status", false, {"pending", "acknowledged", "resolved"}));
        for (auto const* t : {"triggered_at", "acknowledged_at", "resolved_at"})
            s.fields.push_back(f(t, k::timestamp));
        s.fields.push_back(text("acknowledged_by", false));
        s.fields.push_back(text("resolved_by", false));
        // Seconds a pending alert waits before it is escalated (docs/protocol.md, "Alerts").
        s.fields.push_back(ranged("escalate_after", k::number, false, 0, 31536000));
        s.checks.push_back(queue_needs_dept);
        iv.set("alert", std::move(s));
    }
    {
        // A status change of a known alert (seed 003 broadcast the whole alert again; only
        // these fields matter, the rest of the alert is the server's).
        payload_schema s;
        s.fields.push_back(f("alert_id", k::identifier, true));
        s.fields.push_back(choice("status", true, {"acknowledged", "resolved"}));
        for (auto const* t : {"acknowledged_at", "resolved_at"})
            s.fields.push_back(f(t, k::timestamp));
        s.fields.push_back(text("acknowledged_by", false));
        s.fields.push_back(text("resolved_by", false));
        iv.set("alert_update", std::move(s));
    }
    return iv;
}

} // namespace rtpush

#endif
