//
// rtpush: schema validation of ingested payloads (seed 003's KPI, backlog, attendance and
// alert shapes), free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_INGEST_HPP
#define RTPUSH_INGEST_HPP

#include <boost/json.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush {

/// What a field must hold.
enum class field_kind {
    any,        ///< any JSON value
    string,     ///< a string; min/max bound its length
    identifier, ///< a scope or id: 1-128 characters of [A-Za-z0-9_.@-]
    timestamp,  ///< ISO 8601 date and time with seconds and a zone, e.g. 2026-01-31T10:00:00Z
    integer,    ///< a whole number (3 or 3.0); min/max bound it
    number,     ///< any number; min/max bound it
    boolean,
    metric,     ///< a number, or an object of numbers, strings, booleans or nulls (one level)
    number_map, ///< an object whose members are all numbers (seed 003's `changes`)
    object,     ///< an object; `fields` describe its members
    array,      ///< an array; when `fields` is not empty, every element is an object of them
};

/// One field of a payload schema.
struct field_rule {
    std::string name;
    field_kind kind = field_kind::any;
    bool required = false;
    std::optional<double> min;       ///< inclusive; the length of a string
    std::optional<double> max;       ///< inclusive; the length of a string
    std::vector<std::string> one_of; ///< allowed values of a string (empty: any)
    std::vector<field_rule> fields;  ///< members of an object, or of each array element
};

/// A bad field: where (`department_id`, `utilization.current`, `recent_checkins[2].status`)
/// and what is wrong with it ("must be a number from 0 to 100").
struct validation_error {
    std::string field;
    std::string message;
};

/// A payload's shape: its fields (members not listed are allowed and kept) and checks that
/// relate fields to each other.
struct payload_schema {
    std::vector<field_rule> fields;
    std::vector<std::function<std::optional<validation_error>(const boost::json::object&)>> checks;
};

/// The schemas of ingested payloads by kind ("kpi", "backlog", ...). A kind without a schema
/// is free-form. Plain value type; const member functions may be called from any thread.
class ingest_validator {
public:
    /// Validates nothing.
    ingest_validator() = default;

    /// Seed 003's payloads, as POST /api/broadcast/{kpi,backlog,attendance,alert} accept them
    /// (docs/protocol.md, "Ingest"): `kpi`, `backlog`, `attendance` and `alert`, and
    /// `alert_update`, a status change of a known alert ({alert_id, status, *_by, *_at}).
    static ingest_validator intraday();

    /// Adds or replaces the schema of a kind.
    void set(std::string kind, payload_schema schema);
    bool has(std::string_view kind) const;
    bool empty() const noexcept { return schemas_.empty(); }

    /// The first problem of `payload` against the kind's schema; nothing when it is valid or
    /// the kind has no schema. A payload must be a JSON object.
    std::optional<validation_error> validate(std::string_view kind,
                                             const boost::json::value& payload) const;

    /// The kind a REST shortcut's channel ingests: "alerts" and "alert" are "alert", others
    /// are their own name.
    static std::string kind_of_channel(std::string_view channel);
    /// The kind a seed 001/003 event names: "kpi:update" -> "kpi", "backlog:update",
    /// "attendance:update", and "alert:triggered|acknowledged|resolved" -> "alert"; other
    /// events name no kind (empty).
    static std::string kind_of_event(std::string_view event);

private:
    std::map<std::string, payload_schema, std::less<>> schemas_;
};

/// Checks one value against a field rule; `where` is the field's path for the error.
inline std::optional<validation_error>
validate_field(const field_rule& rule, const boost::json::value& v, const std::string& where);

/// Whether `s` is an ISO 8601 date-time with seconds and a zone (Z or +hh:mm), with fields in
/// range: 2026-01-31T10:00:00Z, 2026-01-31T10:00:00.123+01:00.
inline bool valid_timestamp(std::string_view s) noexcept;

} // namespace rtpush

#include <rtpush/impl/ingest.hpp>

#endif
