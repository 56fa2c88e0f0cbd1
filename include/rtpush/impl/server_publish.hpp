//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_IMPL_SERVER_PUBLISH_HPP
#define RTPUSH_IMPL_SERVER_PUBLISH_HPP

// Publishing from the server: REST broadcasts (read by detail/broadcast_request.hpp) and the
// alert lifecycle's steps, each published on `alerts` (docs/protocol.md, "Alerts").

#include <rtpush/detail/io/async_hub.hpp>
#include <rtpush/detail/io/server_impl.hpp>

namespace rtpush::detail {

// A refused lifecycle step as an HTTP answer; a conflict shows the alert as it is.
inline http_response alert_error_response(const alert_result& r, unsigned version) {
    namespace http = boost::beast::http;
    if (r.ec == alert_errc::invalid)
        return field_error(http::status::bad_request, "INVALID_MESSAGE", {r.field, r.message},
                           version);
    bool const unavailable = r.ec == alert_errc::unavailable;
    auto const status = r.ec == alert_errc::not_found ? http::status::not_found
                        : r.ec == alert_errc::full || unavailable
                            ? http::status::service_unavailable
                            : http::status::conflict;
    std::string_view const code = r.ec == alert_errc::not_found ? "NOT_FOUND"
                                  : r.ec == alert_errc::full    ? "ALERT_LIMIT"
                                  : unavailable                 ? "ENGINE_UNAVAILABLE"
                                                                : "CONFLICT";
    boost::json::object e;
    e["code"] = code;
    e["message"] = printable(r.message); // it may hold the id of the request's path
    if (r.value)
        e["status"] = to_string(r.value->status);
    boost::json::object o;
    o["error"] = std::move(e);
    return json_response(status, o, version);
}

inline boost::json::object alert_json(const alert_result& r, const std::string& epoch) {
    boost::json::object o;
    o["success"] = true;
    o["event"] = r.event;
    o["topic"] = topic{"alerts", r.value->scope()}.key();
    o["seq"] = r.seq;
    o["epoch"] = epoch;
    o["alert"] = r.value->data;
    return o;
}

inline boost::json::object broadcast_json(const std::string& topic_key, std::uint64_t seq,
                                          const std::string& epoch,
                                          const std::string& ack_id = {}) {
    boost::json::object o;
    o["success"] = true;
    o["topic"] = topic_key;
    o["seq"] = seq;
    o["epoch"] = epoch;
    if (!ack_id.empty()) {
        o["id"] = ack_id;
        o["requires_ack"] = true;
    }
    return o;
}

// The answer to a broadcast the hub or the engine refused or lost.
inline http_response broadcast_error(boost::system::error_code ec, unsigned version) {
    namespace http = boost::beast::http;
    if (ec == error::invalid_message)
        return json_error(http::status::bad_request, "INVALID_MESSAGE",
                          "invalid channel or target scope (identifiers are [A-Za-z0-9_.@-], "
                          "a dept needs an org, a queue needs a dept)",
                          version);
    // Refused before it was sent (Redis is down), or lost in flight: the caller may retry.
    std::string const message = ec == error::engine_unavailable
                                    ? ec.message()
                                    : "the publication may not have been taken: " + ec.message();
    return json_error(http::status::service_unavailable, "ENGINE_UNAVAILABLE", message, version);
}

inline boost::asio::awaitable<http_response> server_impl::publish_broadcast(broadcast_request b,
                                                                            unsigned version) {
    namespace net = boost::asio;
    namespace http = boost::beast::http;
    auto& p = b.pub;
    if (b.is_alert()) {
        // Alerts go through their lifecycle, which publishes them (and refuses what it
        // cannot do: an unknown id, an illegal transition). requires_ack (seed 001's use of
        // it: alerts) rides the lifecycle's publication (docs/protocol.md, "Seed parity").
        std::string const ack_id =
            b.requires_ack ? acks_->create(topic{"alerts", p.topic.scope}.key()) : std::string();
        alert_result r;
        {
            std::lock_guard lock(alerts_mutex_);
            if (auto refused = alert_step_refused())
                r = std::move(*refused);
            else
                r = publish_alert_step(alerts_.apply(std::move(p.data.get_object()), iso8601_now()),
                                       ack_id);
        }
        if (!r) {
            acks_->cancel(ack_id);
            co_return alert_error_response(r, version);
        }
        auto o = alert_json(r, hub_.epoch());
        if (!ack_id.empty())
            o["id"] = ack_id;
        co_return json_response(http::status::ok, o, version);
    }
    // The topic's key, once: for the ack registry and the answer.
    std::string const key = p.topic.key();
    if (b.to) { // to connections, not to a topic (docs/protocol.md, "Targeting connections")
        if (b.requires_ack)
            p.ack_id = acks_->create(key);
        std::string const ack_id = p.ack_id;
        auto const to = b.to;
        if (auto ec = hub_.deliver_to(b.to, std::move(p))) {
            acks_->cancel(ack_id);
            co_return broadcast_error(ec, version);
        }
        auto o = broadcast_json(key, 0, hub_.epoch(), ack_id);
        o.erase("seq");
        o["target"] = to->to_json();
        co_return json_response(http::status::ok, o, version);
    }
    // Seed 003's derived fields (a KPI's `changes`, a backlog's trend) against the topic's
    // retained value, as a data source's KPIs get theirs. Two producers of one topic racing may
    // both compare with the same previous value; one producer per scope (seed 003's services)
    // never does (docs/protocol.md, "Seed parity").
    if (b.kind == "kpi" || b.kind == "backlog") {
        boost::json::value previous;
        for (auto const& v : hub_.snapshot(p.topic)) {
            auto const& o = v.as_object();
            auto const* phase = o.if_contains("phase");
            if (o.at("topic").as_string() == key &&
                (phase ? std::string_view(phase->as_string()) : std::string_view()) == p.phase)
                previous = o.at("data");
        }
        derive_ingest_fields(b.kind, previous, p.data);
    }
    if (b.requires_ack)
        p.ack_id = acks_->create(key);
    std::string const ack_id = p.ack_id;
    // With an engine the answer carries the cluster's seq, and a publication Redis did not
    // take is a 503, not a 200.
    auto [ec, seq] =
        co_await async_publish(hub_, std::move(p), key, net::as_tuple(net::use_awaitable));
    if (ec) {
        acks_->cancel(ack_id);
        co_return broadcast_error(ec, version);
    }
    co_return json_response(http::status::ok, broadcast_json(key, seq, hub_.epoch(), ack_id),
                            version);
}

inline alert_result server_impl::publish_alert_step(alert_result r, std::string ack_id) {
    if (!r)
        return r;
    std::string const id = r.value->id;
    auto* e = hub_.get_engine();
    if (e) // the alert's state first: the store writes it with (or before) the step's publication
        e->save_alert(*r.value);
    publication p;
    p.topic = topic{"alerts", r.value->scope()};
    p.event = r.event;
    bool const severe = severity_level(r.value->data) >= 2; // high or critical
    // A new (or newly escalated) severe alert is the most urgent thing a dashboard can be told.
    bool const raised = r.event == "alert:triggered" || r.event == "alert:escalated";
    p.priority = raised && severe ? priority::urgent : priority::high;
    p.data = r.value->data;
    p.ack_id = std::move(ack_id);
    // Under Redis a publication may also be lost later, in flight: the step is then taken back
    // too (should Redis have taken it after all, its echo brings it back to every book).
    engine::publish_handler lost;
    if (e && e->relays())
        lost = [this, r](boost::system::error_code ec, std::uint64_t) {
            if (!ec)
                return;
            std::lock_guard lock(alerts_mutex_);
            alerts_.undo(r);
        };
    auto const res = hub_.publish(std::move(p), std::move(lost));
    if (res.ec == error::engine_unavailable) {
        // Not announced (Redis went down since alert_step_refused(), or the store's queue is
        // full): the book and the store take the step back, so a retry finds it as before.
        alerts_.undo(r);
        if (e) {
            if (r.before)
                e->save_alert(*r.before);
            else
                e->forget_alert(id);
            if (r.evicted_alert)
                e->save_alert(*r.evicted_alert);
        }
        r.ec = alert_errc::unavailable;
        r.message = "the step cannot be published now: " + res.ec.message();
        r.value = r.before; // the answer shows the alert as it stays
        return r;
    }
    if (res.ec) {
        // The alert's scope fields are valid identifiers (the schema), so this is a bug.
        r.ec = alert_errc::invalid;
        r.field = "organization_id";
        r.message = "the alert's scope is not a valid room";
        return r;
    }
    if (e && !r.evicted.empty()) { // announced: the alert that made room is let go for good
        e->forget_alert(r.evicted);
        if (e->relays() && e->leads())
            e->forget_shared_alert(r.evicted);
    }
    r.seq = res.seq;
    return r;
}

inline alert_result server_impl::trigger_alert(boost::json::object data) {
    boost::json::value const v(data);
    if (auto e = cfg_.ingest.validate("alert", v)) {
        alert_result r;
        r.ec = alert_errc::invalid;
        r.field = e->field;
        r.message = e->message;
        return r;
    }
    std::lock_guard lock(alerts_mutex_);
    if (auto refused = alert_step_refused())
        return std::move(*refused);
    return publish_alert_step(alerts_.trigger(std::move(data), iso8601_now()));
}

inline void server_impl::escalate_alerts() {
    auto* e = hub_.get_engine();
    bool const leading = leads();
    bool const took_lease = leading && !led_;
    led_ = leading;
    if (!leading)
        return; // another node escalates, and this book follows its steps
    std::lock_guard lock(alerts_mutex_);
    if (took_lease && e && e->relays())
        // Steps taken while no node held the lease were not written to the shared book:
        // the new leader writes its whole book.
        for (auto const* a : alerts_.list())
            if (auto const seq = alerts_.confirmed_seq(a->id))
                e->share_alert(*a, seq); // its confirmed state, under the seq it was folded at
    if (alert_step_refused())
        return; // the next tick escalates what is due then
    for (auto& r : alerts_.escalate(unix_ms_now(), iso8601_now()))
        publish_alert_step(std::move(r));
}

inline std::optional<alert_result> server_impl::alert_step_refused() const {
    auto const* e = hub_.get_engine();
    if (!e || e->available())
        return std::nullopt;
    alert_result r;
    r.ec = alert_errc::unavailable;
    r.message = "alert steps cannot be published now (the engine is unavailable): retry later";
    return r;
}

inline void server_impl::share_alert_book() {
    // Under an engine that reaches every node (Redis), the nodes keep one alert book between
    // them: each step any node takes is published on `alerts` like any step, and every node,
    // this one included, merges what the engine delivers, in the cluster's order
    // (alert_book::merge; docs/operations.md, "Several nodes (Redis)").
    auto* e = hub_.get_engine();
    if (!e || !e->relays())
        return;
    std::string node = e->node();
    for (auto& c : node) // an alert id goes in a URL path
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
            c = '-';
    {
        std::lock_guard lock(alerts_mutex_);
        alerts_.id_prefix("al-" + node + "-");
        alerts_.shared(true);
    }
    // The node that leads also keeps the book in Redis for the nodes that start later.
    hub_.on_applied("alerts", [this, e](const publication& p, std::uint64_t seq) {
        if (!p.data.is_object())
            return;
        std::lock_guard lock(alerts_mutex_);
        std::string evicted;
        if (!alerts_.merge(p.data.get_object(), seq, unix_ms_now(), &evicted) || !e->leads())
            return;
        if (!evicted.empty())
            e->forget_shared_alert(evicted);
        auto const id = json_string(p.data.get_object(), "alert_id");
        if (auto const* a = alerts_.find(id))
            e->share_alert(*a, alerts_.confirmed_seq(id));
    });
    e->on_shared_alerts([this](std::vector<shared_alert> alerts) {
        std::lock_guard lock(alerts_mutex_);
        for (auto& a : alerts)
            alerts_.merge(std::move(a.data), a.seq);
    });
    // Followed whether or not a client of this node subscribes, from its history on: a node
    // that starts late loads the alerts' stream (each topic's history window).
    hub_.add_demand("alerts");
    e->prepare("alerts", [] {});
}

inline alert_result server_impl::acknowledge_alert(std::string_view id, std::string_view by) {
    std::lock_guard lock(alerts_mutex_);
    if (auto refused = alert_step_refused())
        return std::move(*refused);
    return publish_alert_step(alerts_.acknowledge(id, by, iso8601_now()));
}

inline alert_result server_impl::resolve_alert(std::string_view id, std::string_view by) {
    std::lock_guard lock(alerts_mutex_);
    if (auto refused = alert_step_refused())
        return std::move(*refused);
    return publish_alert_step(alerts_.resolve(id, by, iso8601_now()));
}

inline std::vector<alert> server_impl::alerts(const alert_filter& f) const {
    std::lock_guard lock(alerts_mutex_);
    std::vector<alert> out;
    for (auto const* a : alerts_.list(f))
        out.push_back(*a);
    return out;
}

inline std::optional<alert> server_impl::find_alert(std::string_view id) const {
    std::lock_guard lock(alerts_mutex_);
    if (auto const* a = alerts_.find(id))
        return *a;
    return std::nullopt;
}

} // namespace rtpush::detail

#endif
