//
// rtpush: the alert lifecycle (seed 003): pending -> acknowledged -> resolved, free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_ALERTS_HPP
#define RTPUSH_ALERTS_HPP

#include <rtpush/topic.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush {

/// An alert's state, named as seed 003's `status`.
enum class alert_status { pending, acknowledged, resolved };

inline std::string_view to_string(alert_status s) noexcept;
/// "pending", "acknowledged" or "resolved".
inline bool parse_alert_status(std::string_view s, alert_status& out) noexcept;

/// One alert: its id, its state and its seed 003 payload, which carries the state as
/// `status` and the transitions' `*_at` and `*_by` fields.
struct alert {
    std::string id;
    alert_status status = alert_status::pending;
    std::uint64_t number = 0; ///< 1 for the first alert triggered, 2 for the next, ...
    boost::json::object data;
    /// Escalation: when the pending alert is next escalated (Unix milliseconds; 0: never),
    /// and how long each step waits.
    std::int64_t escalation_due_ms = 0;
    std::int64_t escalate_after_ms = 0;
    /// The room of the alert: its organization_id, department_id and queue_name.
    rtpush::scope scope() const;
};

/// Wall-clock Unix milliseconds (the alert book's clock when none is passed in).
inline std::int64_t unix_ms_now() noexcept {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Why a lifecycle step was refused.
enum class alert_errc {
    ok,
    not_found,          ///< no alert has this id (HTTP 404)
    illegal_transition, ///< e.g. acknowledging a resolved alert (HTTP 409)
    duplicate_id,       ///< triggering an id that exists (HTTP 409)
    full,               ///< max_alerts alerts, none of them resolved (HTTP 503)
    unavailable,        ///< the engine cannot publish the step now, e.g. Redis is down (HTTP 503)
    invalid,            ///< the payload broke the alert schema (HTTP 400)
};

/// The outcome of a lifecycle step: on success the alert after it and the event it is
/// announced with (`alert:triggered`, `alert:acknowledged`, `alert:resolved`); otherwise why
/// not, and for conflicts the alert as it is.
struct alert_result {
    alert_errc ec = alert_errc::ok;
    std::string message; ///< for people: "alert al-1 is resolved: it cannot be acknowledged"
    std::string field;   ///< with `invalid`: the bad field
    std::optional<rtpush::alert> value;
    std::string event;
    std::uint64_t seq = 0; ///< filled by the server: the publication's seq on `alerts`
    /// A trigger into a full book: the id of the resolved alert that made room.
    std::string evicted;
    /// The alert as it was before the step (none for a trigger), and the resolved alert a
    /// trigger evicted to make room: what undo() puts back.
    std::optional<rtpush::alert> before;
    std::optional<rtpush::alert> evicted_alert;
    explicit operator bool() const noexcept { return ec == alert_errc::ok; }
};

/// Which alerts a listing wants.
struct alert_filter {
    std::optional<alert_status> status;
    bool active = false; ///< only pending and acknowledged ones
    rtpush::scope scope; ///< alerts at this scope and narrower ones (empty: all)
    std::string rule_id; ///< only the alerts of this rule (empty: all)
};

/// The alerts and their lifecycle: `trigger` creates a pending alert, `acknowledge` moves a
/// pending one to acknowledged, `resolve` a pending or acknowledged one to resolved. Nothing
/// else is allowed: acknowledging twice, or touching a resolved alert, is an illegal
/// transition. At most `max_alerts` are kept; when full, the oldest resolved alert makes room.
///
/// Escalation: a pending alert nobody acknowledged within its `escalate_after` (seconds, in
/// its payload, e.g. from its rule; else the book's escalate_after()) is escalated: its
/// severity one level up (low, medium, high, critical), `escalation_level` counted and
/// `escalated_at` stamped; again each `escalate_after` while it stays pending, until critical.
///
/// Times are passed in (ISO 8601 strings) so that the class stays deterministic. Not
/// thread-safe: the server guards its book with a mutex.
class alert_book {
public:
    explicit alert_book(std::size_t max_alerts = 10000)
        : max_(max_alerts ? max_alerts : 1) {}

    /// A new pending alert from a seed 003 payload (already validated). Without `alert_id`
    /// the book assigns `al-<n>`; without `triggered_at` it is `now`.
    alert_result trigger(boost::json::object data, std::string_view now,
                         std::int64_t now_ms = unix_ms_now());
    /// pending -> acknowledged; `by` (may be empty) becomes `acknowledged_by`.
    alert_result acknowledge(std::string_view id, std::string_view by, std::string_view now);
    /// pending or acknowledged -> resolved; `by` becomes `resolved_by`.
    alert_result resolve(std::string_view id, std::string_view by, std::string_view now);
    /// A payload that carries its state (seed 003's broadcastAlert): `status` pending (or
    /// none) triggers; acknowledged or resolved moves the alert named by `alert_id`, with
    /// the payload's `*_by` and `*_at` when given.
    alert_result apply(boost::json::object data, std::string_view now,
                       std::int64_t now_ms = unix_ms_now());

    /// How long a pending alert without its own `escalate_after` waits (0: forever).
    void escalate_after(std::chrono::milliseconds after) noexcept { escalate_after_ = after; }
    /// Escalates every pending alert due at `now_ms` (`now`: the same time in ISO 8601); each
    /// step with the event `alert:escalated`, oldest alert first.
    std::vector<alert_result> escalate(std::int64_t now_ms, std::string_view now);

    /// Takes back alerts kept by an earlier run (a durable store's), in any order; the book
    /// goes on numbering and naming after them. Beyond max_alerts the oldest are left out.
    void restore(std::vector<alert> saved);

    /// Generated ids are `<prefix><n>`; "al-" by default. Nodes that share a book take one
    /// each (the server: "al-<node id>-"), so that no two of them name two alerts alike.
    void id_prefix(std::string prefix) { prefix_ = std::move(prefix); }

    /// Several nodes keep this book (docs/operations.md, "Several nodes (Redis)"): every step
    /// any of them takes, this one's included, is announced in one order for all, and each
    /// comes back here through merge(). Each alert then has a confirmed state, folded from
    /// those steps in that order (the same on every node), and a step this book takes itself
    /// shows over it until the next merge() of that alert.
    void shared(bool on) noexcept { shared_ = on; }

    /// A step as the cluster ordered it (an `alerts` publication's payload, which carries
    /// the whole alert, and its `seq` on the alert's topic; 0: unknown), folded into the
    /// alert's confirmed state: a step that moves the alert further (by status, pending <
    /// acknowledged < resolved, then by escalation level) wins; of two that go as far, the
    /// first wins. Fields only accumulate: the state kept takes what the other knew and it
    /// did not (an acknowledgement a resolve missed), and the escalation of the one escalated
    /// further. A step at or below the seq already folded is known. An alert the book does
    /// not hold is added. True when its confirmed state changed (or the book shows another);
    /// `evicted`: the id of the resolved alert that made room for a new one, if any.
    bool merge(boost::json::object data, std::uint64_t seq = 0, std::int64_t now_ms = unix_ms_now(),
               std::string* evicted = nullptr);
    /// The seq of the last step merge() folded into the alert's confirmed state (0: none).
    std::uint64_t confirmed_seq(std::string_view id) const;

    /// Takes back a step that could not be announced (its publication failed): the alert is
    /// as it was before, or (shared) as the cluster has it; a triggered one is gone and the
    /// alert it evicted is back.
    void undo(const alert_result& step);

    const alert* find(std::string_view id) const;
    /// The alerts the filter wants, newest first.
    std::vector<const alert*> list(const alert_filter& f = {}) const;
    std::size_t size() const noexcept { return alerts_.size(); }

private:
    alert_result transition(std::string_view id, alert_status to, std::string_view by,
                            std::string_view at);
    bool make_room(std::string* evicted = nullptr);

    /// When a pending alert is next escalated after a step at `now_ms`.
    void schedule_escalation(alert& a, std::int64_t now_ms) const;
    /// Generated ids go on after `id` when it is one of this book's: an id never names two
    /// alerts, even after a restart under a node name that stays.
    void note_id(std::string_view id);

    std::map<std::string, alert, std::less<>> alerts_;
    std::map<std::uint64_t, std::string> order_; // number -> id: age order
    std::string prefix_ = "al-";
    bool shared_ = false;
    struct confirmed {
        alert_status status = alert_status::pending;
        boost::json::object data;
        std::uint64_t seq = 0;
    };
    std::map<std::string, confirmed, std::less<>> confirmed_; // shared: the cluster's states
    std::size_t max_;
    std::chrono::milliseconds escalate_after_{0};
    std::uint64_t next_number_ = 0;
    std::uint64_t next_id_ = 0;
};

} // namespace rtpush

#include <rtpush/impl/alerts.hpp>

#endif
