//
// rtpush: a broadcast request read once into a publication. The REST routes
// (`POST /api/broadcast`, `POST /api/broadcast/{channel}`) and a client's `publish` message
// apply the same rules: the target scope, seed 003's ingest schemas, the event an alert step
// implies (docs/protocol.md, "REST" and "Ingest"). Free of I/O.
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_BROADCAST_REQUEST_HPP
#define RTPUSH_DETAIL_BROADCAST_REQUEST_HPP

#include <rtpush/detail/access.hpp>
#include <rtpush/detail/audience.hpp>
#include <rtpush/ingest.hpp>
#include <rtpush/protocol.hpp>
#include <rtpush/source.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace rtpush::detail {

/// A broadcast, read and checked, ready to publish.
struct broadcast_request {
    publication pub;
    std::string kind;          ///< the ingest family ("kpi", "backlog", "attendance", "alert")
    bool alert_update = false; ///< an alert payload that acknowledges or resolves a known alert
    bool requires_ack = false;
    /// Set when the broadcast names connections rather than a topic (read_audience): it goes
    /// to them, whatever they subscribed to, and is neither retained nor kept in history.
    std::shared_ptr<const audience> to;
    /// Alerts go through the alert lifecycle, which publishes them.
    bool is_alert() const noexcept { return kind == "alert"; }
};

/// Why a broadcast was refused: the message, and the field when one is at fault (then the
/// answer names it in `field`).
struct request_fault {
    validation_error error;
    bool names_field = false;
};

/// Fills a payload's missing scope fields from the request's target (the generic broadcast
/// keeps the scope apart from the data); a field given in both must agree.
inline std::optional<validation_error> merge_scope(boost::json::object& data, const scope& s) {
    std::pair<const char*, const std::string*> const levels[] = {
        {"organization_id", &s.org}, {"department_id", &s.dept}, {"queue_name", &s.queue}};
    for (auto const& [name, value] : levels) {
        if (value->empty())
            continue;
        if (auto const* have = data.if_contains(name)) {
            if (!have->is_string() || have->get_string() != *value)
                return validation_error{name, "differs from the target's " + *value};
        } else {
            data[name] = *value;
        }
    }
    return std::nullopt;
}

/// The schema rules of a publication of `kind` aimed at `target` (p.topic.scope on entry):
/// an alert event's implied status, the payload's schema, its scope fields as its room, the
/// server's time when it has none, the family's default event. Shared by REST and `publish`.
inline std::optional<request_fault> apply_ingest_rules(publication& p, const std::string& kind,
                                                       bool& alert_update,
                                                       const ingest_validator& ingest) {
    auto field = [](std::string f, std::string m) {
        return request_fault{{std::move(f), std::move(m)}, true};
    };
    scope const target = p.topic.scope;
    bool const alert = kind == "alert";
    // `alert:acknowledged` and `alert:resolved` events say the status their payload may leave
    // out; one that says otherwise is a contradiction.
    if (alert && p.data.is_object() && p.event != "alert:triggered" && !p.event.empty()) {
        std::string const status = p.event.substr(6);
        auto& d = p.data.get_object();
        if (auto const* st = d.if_contains("status"); !st)
            d["status"] = status;
        else if (!st->is_string() || st->get_string() != status)
            return field("status", "differs from the event " + p.event);
    }
    // An alert payload that changes a known alert's status names it by id; its scope is the
    // alert's.
    alert_update = false;
    if (alert && p.data.is_object())
        if (auto const* st = p.data.get_object().if_contains("status"))
            alert_update = st->is_string() &&
                           (st->get_string() == "acknowledged" || st->get_string() == "resolved");
    if (alert && !p.data.is_object())
        return field("", "the payload must be a JSON object");
    std::string const schema = alert_update ? "alert_update" : kind;
    if (!kind.empty() && ingest.has(schema)) {
        if (!p.data.is_object())
            return field("", "the payload must be a JSON object");
        auto& d = p.data.get_object();
        if (!alert_update)
            if (auto e = merge_scope(d, target))
                return request_fault{std::move(*e), true};
        if (auto e = ingest.validate(schema, p.data))
            return request_fault{std::move(*e), true};
        // The payload's own scope fields are its room (seed 003); a payload without a time
        // gets the server's (docs/protocol.md, "Seed parity").
        p.topic.scope = scope_from_json(d);
        if (!alert && !d.contains("timestamp"))
            d["timestamp"] = iso8601_now();
        if (!alert && p.event.empty())
            p.event = kind + ":update";
    }
    if (alert && !alert_update)
        if (auto e = merge_scope(p.data.get_object(), target))
            return request_fault{std::move(*e), true};
    return std::nullopt;
}

/// The body's target object: `target` (seed 001's name) or `scope` (its synonym), nullptr
/// when neither. Both at once is refused rather than one of them guessed.
inline std::optional<request_fault> read_target(const boost::json::object& body,
                                                const boost::json::object*& target) {
    target = nullptr;
    auto const* t = body.if_contains("target");
    auto const* s = body.if_contains("scope");
    if (t && s)
        return request_fault{{"target", "give 'target' or 'scope', not both"}, true};
    if (auto const* v = t ? t : s; v && v->is_object())
        target = &v->get_object();
    return std::nullopt;
}

/// Seed 001's targets that name connections instead of a topic (docs/protocol.md, "Targeting
/// connections"), read from a generic broadcast's body into `r.to`:
/// - `target.socket_ids` (or `client_ids`): those connections (with `organization_id`, only
///   those of that organization);
/// - a `system:*` event without a `channel`: every connection, or every connection of the
///   organization `target.organization_id` names (seed 001's `io.emit` and its `org:X` room).
/// Anything else is a topic's publication, for the topic's subscribers.
inline std::optional<request_fault> read_audience(const boost::json::object& body,
                                                  broadcast_request& r) {
    auto bad = [](std::string m) {
        return request_fault{{"target", std::move(m)}, true};
    };
    auto& p = r.pub;
    boost::json::object const* target = nullptr;
    if (auto f = read_target(body, target))
        return f;
    boost::json::value const* ids = nullptr;
    if (target)
        for (auto const* k : {"socket_ids", "client_ids"})
            if (auto const* v = target->if_contains(k))
                ids = v;
    bool const system_event = p.event.rfind("system:", 0) == 0 && !body.contains("channel");
    if (!ids && !system_event)
        return std::nullopt;
    if (r.is_alert())
        return bad("an alert goes to its scope's subscribers, not to listed connections");
    if (!p.topic.scope.dept.empty() || !p.topic.scope.queue.empty())
        return bad("connections are targeted by id or organization: department_id and "
                   "queue_name need a channel");
    auto to = std::make_shared<audience>();
    to->org = p.topic.scope.org;
    if (ids) {
        if (!ids->is_array() || ids->get_array().empty())
            return bad("socket_ids must be a non-empty array of client ids");
        if (ids->get_array().size() > max_audience_clients)
            return bad("socket_ids lists at most " + std::to_string(max_audience_clients) +
                       " client ids");
        for (auto const& id : ids->get_array()) {
            if (!id.is_string() || id.get_string().empty() || id.get_string().size() > 128)
                return bad("socket_ids must be a non-empty array of client ids");
            to->client_ids.emplace_back(id.get_string());
        }
        std::sort(to->client_ids.begin(), to->client_ids.end());
        to->client_ids.erase(std::unique(to->client_ids.begin(), to->client_ids.end()),
                             to->client_ids.end());
        to->who = audience::kind::clients;
    } else {
        to->who = to->org.empty() ? audience::kind::everyone : audience::kind::organization;
    }
    if (p.topic.channel.empty())
        p.topic.channel = audience::default_channel;
    r.to = std::move(to);
    return std::nullopt;
}

/// Reads a REST broadcast: `shortcut` is the channel of `POST /api/broadcast/{channel}` (the
/// body is the data, its scope fields the target; seed 001), empty for the generic
/// `POST /api/broadcast` (`{event?, channel?, target|scope?, phase?, priority?, data}`).
/// `?requires_ack=true` or a boolean `requires_ack` member asks for acknowledged delivery.
/// The same with the body already parsed: one item of a batch (parse_batch) (docs/protocol.md,
/// "Seed parity").
inline std::variant<broadcast_request, request_fault>
parse_broadcast_value(std::string_view shortcut, const query_map& query, boost::json::value body,
                      const ingest_validator& ingest) {
    auto bad = [](std::string m) {
        return request_fault{{"", std::move(m)}, false};
    };
    if (!body.is_object() || !finite_numbers(body))
        return bad(body.is_object() ? "a number is out of range" : "body must be a JSON object");
    auto& b = body.get_object();
    broadcast_request r;
    if (auto it = query.find("requires_ack"); it != query.end())
        r.requires_ack = it->second == "true" || it->second == "1";
    if (auto const* ra = b.if_contains("requires_ack"); ra && !ra->is_null()) {
        if (!ra->is_bool())
            return bad("'requires_ack' must be a boolean");
        r.requires_ack = ra->get_bool();
        b.erase("requires_ack"); // a shortcut's body is the data: not part of it
    }
    auto& p = r.pub;
    if (!shortcut.empty()) {
        p.topic.channel = std::string(shortcut);
        r.kind = ingest_validator::kind_of_channel(p.topic.channel);
        if (r.kind == "alert")
            p.topic.channel = "alerts"; // seed 001's channel and seed 003's rooms
        p.topic.scope = scope_from_json(b);
        if (auto const* d = b.if_contains("data"); d && b.size() <= 4)
            p.data = *d;
        else
            p.data = b;
    } else {
        auto str = [&](std::string_view k) -> std::string {
            auto const* x = b.if_contains(k);
            return x && x->is_string() ? std::string(x->get_string()) : std::string{};
        };
        p.event = str("event");
        p.topic.channel = str("channel");
        if (p.topic.channel.empty() && !p.event.empty())
            p.topic.channel = p.event.substr(0, p.event.find(':')); // "kpi:update" -> "kpi"
        boost::json::object const* target = nullptr;
        if (auto f = read_target(b, target))
            return *f;
        if (target)
            p.topic.scope = scope_from_json(*target);
        // Seed 003's events carry seed 003's payloads: validated like the shortcuts. Other
        // events (and none) are free-form (docs/protocol.md, "Seed parity").
        r.kind = ingest_validator::kind_of_event(p.event);
        p.phase = str("phase");
        if (auto const* d = b.if_contains("data"))
            p.data = *d;
        else
            return bad("'data' is required");
        if (auto pr = str("priority"); !pr.empty() && !parse_priority(pr, p.priority))
            return bad("priority is low, medium, high or urgent");
        if (!p.phase.empty() && p.phase != "kpis" && p.phase != "complete")
            return bad("phase is \"kpis\" or \"complete\"");
        if (auto f = read_audience(b, r))
            return *f;
    }
    if (auto f = apply_ingest_rules(p, r.kind, r.alert_update, ingest))
        return *f;
    return r;
}

inline std::variant<broadcast_request, request_fault>
parse_broadcast(std::string_view shortcut, const query_map& query, std::string_view body_text,
                std::size_t max_depth, const ingest_validator& ingest) {
    boost::system::error_code ec;
    boost::json::parse_options opt;
    opt.max_depth = max_depth;
    auto body = boost::json::parse(body_text, ec, {}, opt);
    if (ec)
        return request_fault{{"", "malformed JSON body: " + ec.message()}, false};
    return parse_broadcast_value(shortcut, query, std::move(body), ingest);
}

/// Seed 003's `changes` of an ingested KPI payload against the topic's previous one (what the
/// refresher does for its sources, rtpush::kpi_changes): `<field>_change` for each field that
/// is numeric in both. A metric given as an object (`utilization: {current_utilization: 71.5,
/// ...}`) counts by its first numeric member, its headline value; seed 003 computed
/// `utilization_change` from it (docs/protocol.md, "Seed parity").
inline boost::json::object ingest_changes(const boost::json::value& previous,
                                          const boost::json::value& current) {
    auto headlines = [](const boost::json::value& v) {
        boost::json::object out;
        if (auto const* o = v.if_object())
            for (auto const& [k, x] : *o) {
                if (k == "changes")
                    continue;
                if (x.is_number()) {
                    out[k] = x;
                } else if (auto const* m = x.if_object()) {
                    for (auto const& [mk, mx] : *m)
                        if (mx.is_number()) {
                            out[k] = mx;
                            break;
                        }
                }
            }
        return boost::json::value(std::move(out));
    };
    if (!previous.is_object() || !current.is_object())
        return {};
    return kpi_changes(headlines(previous), headlines(current));
}

/// Seed 003's `backlog_trend` when the producer leaves it out, from the scope's previous
/// snapshot (the hub keeps one value per topic): `growing` when `total_items` rose by more than
/// 5% of the previous count (and by at least one item), `decreasing` when it fell by as much,
/// else `stable`; the first snapshot of a scope is `stable`. The 5% band keeps a queue that
/// moves by an item or two around a large count from flapping between trends (docs/protocol.md,
/// "Seed parity").
inline std::string_view backlog_trend(const boost::json::value& previous,
                                      const boost::json::value& current) {
    auto total = [](const boost::json::value& v) -> std::optional<double> {
        auto const* o = v.if_object();
        auto const* t = o ? o->if_contains("total_items") : nullptr;
        if (!t || !t->is_number())
            return std::nullopt;
        return t->to_number<double>();
    };
    auto const before = total(previous), now = total(current);
    if (!before || !now)
        return "stable";
    double const band = std::max(1.0, *before * 0.05);
    if (*now - *before >= band)
        return "growing";
    if (*before - *now >= band)
        return "decreasing";
    return "stable";
}

/// What the server derives for an ingested payload of `kind` from the topic's previous value
/// when the producer left it out: a KPI's `changes`, a backlog's `backlog_trend`.
inline void derive_ingest_fields(std::string_view kind, const boost::json::value& previous,
                                 boost::json::value& data) {
    auto* o = data.if_object();
    if (!o)
        return;
    if (kind == "kpi" && !o->contains("changes"))
        (*o)["changes"] = ingest_changes(previous, data);
    if (kind == "backlog" && !o->contains("backlog_trend"))
        (*o)["backlog_trend"] = backlog_trend(previous, data);
}

/// Seed 003's own ingest paths, aliases of the shortcut routes: the channel they publish on,
/// empty for any other path. `/api/schedulesbacklog/ingest` is `POST /api/broadcast/backlog`,
/// `.../batch-ingest` its batch (docs/protocol.md, "Seed parity").
inline std::string_view seed_ingest_channel(std::string_view path) {
    if (path == "/api/schedulesbacklog/ingest" || path == "/api/schedulesbacklog/batch-ingest")
        return "backlog";
    if (path == "/api/intraday/attendance/ingest" ||
        path == "/api/intraday/attendance/batch-ingest")
        return "attendance";
    return {};
}

/// A batch holds at most this many items: each is validated and published in turn while the
/// request waits, so the bound keeps one request's time and answer size in proportion.
inline constexpr std::size_t max_batch_items = 1000;

/// Reads a batch body: a JSON array of broadcast bodies, or `{"items": [...]}`. Each item is
/// then read by parse_broadcast_value like a single request's body.
inline std::variant<boost::json::array, request_fault> parse_batch(std::string_view body_text,
                                                                   std::size_t max_depth) {
    auto bad = [](std::string m) {
        return request_fault{{"", std::move(m)}, false};
    };
    boost::system::error_code ec;
    boost::json::parse_options opt;
    opt.max_depth = max_depth;
    auto body = boost::json::parse(body_text, ec, {}, opt);
    if (ec)
        return bad("malformed JSON body: " + ec.message());
    if (auto* o = body.if_object())
        if (auto* items = o->if_contains("items"); items && o->size() == 1)
            body = std::move(*items);
    if (!body.is_array())
        return bad("body must be a JSON array of items (or {\"items\": [...]})");
    auto& a = body.get_array();
    if (a.empty())
        return bad("the batch is empty");
    if (a.size() > max_batch_items)
        return bad("a batch holds at most " + std::to_string(max_batch_items) + " items");
    return std::move(a);
}

} // namespace rtpush::detail

#endif
