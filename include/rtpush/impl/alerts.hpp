#ifndef RTPUSH_IMPL_ALERTS_HPP
#define RTPUSH_IMPL_ALERTS_HPP

namespace rtpush {

inline std::string_view to_string(alert_status s) noexcept {
    switch (s) {
    case alert_status::pending:
        return "pending";
    case alert_status::acknowledged:
        return "acknowledged";
    case alert_status::resolved:
        return "resolved";
    }
    return "pending";
}

inline bool parse_alert_status(std::string_view s, alert_status& out) noexcept {
    for (auto st : {alert_status::pending, alert_status::acknowledged, alert_status::resolved})
        if (s == to_string(st)) {
            out = st;
            return true;
        }
    return false;
}

inline rtpush::scope alert::scope() const {
    rtpush::scope s;
    auto get = [&](std::string_view k, std::string& out) {
        if (auto const* v = data.if_contains(k); v && v->is_string())
            out = std::string(v->get_string());
    };
    get("organization_id", s.org);
    get("department_id", s.dept);
    get("queue_name", s.queue);
    return s;
}

namespace detail {

inline alert_result alert_error(alert_errc ec, std::string message,
                                const alert* current = nullptr) {
    alert_result r;
    r.ec = ec;
    r.message = std::move(message);
    if (current)
        r.value = *current;
    return r;
}

inline std::string json_string(const boost::json::object& o, std::string_view k) {
    auto const* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->get_string()) : std::string{};
}

/// The alert severities in escalation order (docs/protocol.md, "Alerts").
inline constexpr std::string_view severities[] = {"low", "medium", "high", "critical"};

/// The level of an alert's severity (0 low .. 3 critical), or -1 for none or another word.
inline int severity_level(const boost::json::object& data) {
    auto const s = json_string(data, "severity");
    for (int i = 0; i < 4; ++i)
        if (s == severities[i])
            return i;
    return -1;
}

} // namespace detail

inline bool alert_book::make_room(std::string* evicted) {
    if (alerts_.size() < max_)
        return true;
    for (auto it = order_.begin(); it != order_.end(); ++it) {
        auto a = alerts_.find(it->second);
        if (a != alerts_.end() && a->second.status == alert_status::resolved) {
            if (evicted)
                *evicted = a->first;
            confirmed_.erase(a->first);
            alerts_.erase(a);
            order_.erase(it);
            return true;
        }
    }
    return false;
}

inline void alert_book::restore(std::vector<alert> saved) {
    std::sort(saved.begin(), saved.end(),
              [](const alert& a, const alert& b) { return a.number > b.number; });
    if (saved.size() > max_)
        saved.resize(max_); // the newest
    for (auto& a : saved) {
        next_number_ = std::max(next_number_, a.number);
        note_id(a.id);
        order_[a.number] = a.id;
        auto const id = a.id;
        alerts_[id] = std::move(a);
    }
}

inline void alert_book::note_id(std::string_view id) {
    if (!id.starts_with(prefix_))
        return;
    std::uint64_t n = 0;
    auto const [end, ec] = std::from_chars(id.data() + prefix_.size(), id.data() + id.size(), n);
    if (ec == std::errc{} && end == id.data() + id.size())
        next_id_ = std::max(next_id_, n);
}

inline void alert_book::undo(const alert_result& step) {
    if (!step.value)
        return;
    auto const& id = step.value->id;
    if (auto it = alerts_.find(id); it != alerts_.end()) {
        auto c = confirmed_.find(id);
        if (shared_ && c != confirmed_.end()) {
            // Whatever this book showed of its own steps: the cluster's state (a step of
            // this node still in flight shows again when it comes back).
            it->second.status = c->second.status;
            it->second.data = c->second.data;
            if (step.before)
                it->second.escalation_due_ms = step.before->escalation_due_ms;
        } else if (step.before) {
            it->second = *step.before;
        } else {
            order_.erase(it->second.number);
            alerts_.erase(it);
        }
    }
    if (auto const& e = step.evicted_alert; e && alerts_.find(e->id) == alerts_.end()) {
        order_[e->number] = e->id;
        alerts_[e->id] = *e;
        if (shared_)
            confirmed_[e->id] = confirmed{e->status, e->data, 0};
    }
}

inline std::uint64_t alert_book::confirmed_seq(std::string_view id) const {
    auto c = confirmed_.find(id);
    return c == confirmed_.end() ? 0 : c->second.seq;
}

inline alert_result alert_book::trigger(boost::json::object data, std::string_view now,
                                        std::int64_t now_ms) {
    std::string id = detail::json_string(data, "alert_id");
    if (auto const* a = id.empty() ? nullptr : find(id)) {
        // Ids are never reused: a client holding one must not see it name another alert.
        return detail::alert_error(
            alert_errc::duplicate_id,
            "alert " + id + " exists (" + std::string(to_string(a->status)) + ")", a);
    }
    std::string evicted;
    std::optional<alert> evicted_alert;
    if (alerts_.size() >= max_)
        for (auto const& [n, old] : order_)
            if (auto const* o = find(old); o && o->status == alert_status::resolved) {
                evicted_alert = *o; // the one make_room() lets go: undo() puts it back
                break;
            }
    if (!make_room(&evicted))
        return detail::alert_error(alert_errc::full, "too many alerts (" + std::to_string(max_) +
                                                         "), none of them resolved");
    if (id.empty()) // after the refusals: a refused trigger uses up no id
        do
            id = prefix_ + std::to_string(++next_id_);
        while (alerts_.count(id));
    alert a;
    a.id = id;
    a.number = ++next_number_;
    data["alert_id"] = id;
    data["status"] = "pending";
    if (!data.contains("triggered_at"))
        data["triggered_at"] = now;
    a.data = std::move(data);
    schedule_escalation(a, now_ms);
    order_[a.number] = id;
    auto& stored = alerts_[id] = std::move(a);
    alert_result r;
    r.value = stored;
    r.event = "alert:triggered";
    r.evicted = std::move(evicted);
    if (!r.evicted.empty())
        r.evicted_alert = std::move(evicted_alert);
    return r;
}

inline void alert_book::schedule_escalation(alert& a, std::int64_t now_ms) const {
    a.escalate_after_ms = escalate_after_.count();
    if (auto const* e = a.data.if_contains("escalate_after"); e && e->is_number())
        a.escalate_after_ms = static_cast<std::int64_t>(e->to_number<double>() * 1000);
    auto const level = detail::severity_level(a.data);
    a.escalation_due_ms =
        a.status == alert_status::pending && a.escalate_after_ms > 0 && level >= 0 && level < 3
            ? now_ms + a.escalate_after_ms
            : 0;
}

inline bool alert_book::merge(boost::json::object data, std::uint64_t seq, std::int64_t now_ms,
                              std::string* evicted_id) {
    std::string const id = detail::json_string(data, "alert_id");
    alert_status status;
    if (id.empty() || !parse_alert_status(detail::json_string(data, "status"), status))
        return false;
    auto level = [](const boost::json::object& d) -> std::int64_t {
        auto const* n = d.if_contains("escalation_level");
        return n && n->is_int64() ? n->get_int64() : 0;
    };
    constexpr const char* escalation[] = {"severity", "escalation_level", "escalated_at"};
    auto is_escalation = [&](std::string_view k) {
        return std::find(std::begin(escalation), std::end(escalation), k) != std::end(escalation);
    };
    // Fields only accumulate along the lifecycle: the state kept takes what the other knew
    // and it did not (an acknowledgement a resolve missed), and the escalation of the one
    // escalated further (it only goes up).
    auto carry = [&](boost::json::object& into, const boost::json::object& from) {
        bool const higher = level(from) > level(into);
        for (auto const& [k, v] : from)
            if (!into.contains(k) && !is_escalation(k))
                into[k] = v;
        if (higher)
            for (auto const* k : escalation)
                if (auto const* v = from.if_contains(k))
                    into[k] = *v;
    };
    note_id(id);
    auto c = confirmed_.find(id);
    bool folded = true; // the confirmed state changed
    if (c == confirmed_.end()) {
        c = confirmed_.emplace(id, confirmed{status, std::move(data), seq}).first;
    } else {
        if (seq != 0 && seq <= c->second.seq)
            return false; // folded already (a replay after the shared book was read)
        auto& held = c->second;
        auto const before = held.data;
        auto const have = std::pair(static_cast<int>(held.status), level(held.data));
        auto const got = std::pair(static_cast<int>(status), level(data));
        if (got > have) {
            carry(data, held.data);
            held.data = std::move(data);
            held.status = status;
        } else {
            carry(held.data, data);
        }
        held.seq = std::max(held.seq, seq);
        folded = held.data != before;
    }
    // What the book shows is the confirmed state: a step of this node's own is over.
    auto it = alerts_.find(id);
    if (it == alerts_.end()) {
        std::string evicted;
        if (!make_room(&evicted)) {
            confirmed_.erase(id);
            return false; // full of active alerts: the cluster's others go on without it here
        }
        if (evicted_id)
            *evicted_id = std::move(evicted);
        alert a;
        a.id = id;
        a.number = ++next_number_;
        order_[a.number] = id;
        it = alerts_.emplace(id, std::move(a)).first;
    } else if (it->second.status == c->second.status && it->second.data == c->second.data) {
        return folded; // shown already (this node's own step, now confirmed)
    }
    auto& a = it->second;
    a.status = c->second.status;
    a.data = c->second.data;
    schedule_escalation(a, now_ms);
    return true;
}

inline alert_result alert_book::transition(std::string_view id, alert_status to,
                                           std::string_view by, std::string_view at) {
    auto it = alerts_.find(id);
    if (it == alerts_.end())
        return detail::alert_error(alert_errc::not_found, "no alert " + std::string(id));
    auto& a = it->second;
    auto before = a;
    bool const ack = to == alert_status::acknowledged;
    if (a.status == to)
        return detail::alert_error(alert_errc::illegal_transition,
                                   "alert " + a.id + " is already " + std::string(to_string(to)),
                                   &a);
    if (a.status == alert_status::resolved)
        return detail::alert_error(
            alert_errc::illegal_transition,
            "alert " + a.id + " is resolved: it cannot be " + std::string(to_string(to)), &a);
    a.status = to;
    a.escalation_due_ms = 0; // someone took it: no more escalation
    a.data["status"] = to_string(to);
    a.data[ack ? "acknowledged_at" : "resolved_at"] = at;
    if (!by.empty())
        a.data[ack ? "acknowledged_by" : "resolved_by"] = by;
    alert_result r;
    r.value = a;
    r.before = std::move(before);
    r.event = ack ? "alert:acknowledged" : "alert:resolved";
    return r;
}

inline alert_result alert_book::acknowledge(std::string_view id, std::string_view by,
                                            std::string_view now) {
    return transition(id, alert_status::acknowledged, by, now);
}

inline alert_result alert_book::resolve(std::string_view id, std::string_view by,
                                        std::string_view now) {
    return transition(id, alert_status::resolved, by, now);
}

inline std::vector<alert_result> alert_book::escalate(std::int64_t now_ms, std::string_view now) {
    std::vector<alert_result> out;
    for (auto const& [number, id] : order_) {
        auto it = alerts_.find(id);
        if (it == alerts_.end())
            continue;
        auto& a = it->second;
        if (a.status != alert_status::pending || a.escalation_due_ms == 0 ||
            a.escalation_due_ms > now_ms)
            continue;
        auto const level = detail::severity_level(a.data);
        if (level < 0 || level >= 3) {
            a.escalation_due_ms = 0;
            continue;
        }
        auto before = a;
        a.data["severity"] = detail::severities[level + 1];
        std::int64_t steps = 1;
        if (auto const* n = a.data.if_contains("escalation_level"); n && n->is_int64())
            steps = n->get_int64() + 1;
        a.data["escalation_level"] = steps;
        a.data["escalated_at"] = now;
        a.escalation_due_ms = level + 1 < 3 ? now_ms + a.escalate_after_ms : 0;
        alert_result r;
        r.value = a;
        r.before = std::move(before);
        r.event = "alert:escalated";
        out.push_back(std::move(r));
    }
    return out;
}

inline alert_result alert_book::apply(boost::json::object data, std::string_view now,
                                      std::int64_t now_ms) {
    alert_status st = alert_status::pending;
    if (auto const s = detail::json_string(data, "status"); !s.empty())
        if (!parse_alert_status(s, st)) {
            auto r = detail::alert_error(alert_errc::invalid,
                                         R"(must be "pending", "acknowledged" or "resolved")");
            r.field = "status";
            return r;
        }
    if (st == alert_status::pending)
        return trigger(std::move(data), now, now_ms);
    std::string const id = detail::json_string(data, "alert_id");
    if (id.empty()) {
        auto r = detail::alert_error(alert_errc::invalid, "is required to move an alert to " +
                                                              std::string(to_string(st)));
        r.field = "alert_id";
        return r;
    }
    bool const ack = st == alert_status::acknowledged;
    auto at = detail::json_string(data, ack ? "acknowledged_at" : "resolved_at");
    auto const by = detail::json_string(data, ack ? "acknowledged_by" : "resolved_by");
    return transition(id, st, by, at.empty() ? now : std::string_view(at));
}

inline const alert* alert_book::find(std::string_view id) const {
    auto it = alerts_.find(id);
    return it == alerts_.end() ? nullptr : &it->second;
}

inline std::vector<const alert*> alert_book::list(const alert_filter& f) const {
    std::vector<const alert*> out;
    topic const want{"alerts", f.scope};
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
        auto const* a = find(it->second);
        if (!a || (f.status && a->status != *f.status) ||
            (f.active && a->status == alert_status::resolved) ||
            (!f.rule_id.empty() && detail::json_string(a->data, "rule_id") != f.rule_id) ||
            !want.covers(topic{"alerts", a->scope()}))
            continue;
        out.push_back(a);
    }
    return out;
}

} // namespace rtpush

#endif
