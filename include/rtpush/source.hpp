//
// rtpush: data sources: something that produces a snapshot (KPIs + complete data) on request.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_SOURCE_HPP
#define RTPUSH_SOURCE_HPP

#include <rtpush/topic.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rtpush {

/// What one fetch of a data source produced (seed 000's progressive loading): `kpis`, small
/// and painted first, and `complete`, the full data. Either may be null (not published).
struct snapshot {
    boost::json::value kpis;
    boost::json::value complete;
};

/// A data source: a name, where it publishes, and how to fetch a snapshot.
///
/// `fetch` runs on the refresher's executor (a server's first io thread) and may suspend; it
/// reports failure by throwing. It must bound its own run time (e.g. an HTTP timeout): the
/// refresher never runs two fetches of one source at once (single-flight), so a fetch that
/// hangs holds that source's refreshes.
struct source {
    std::string name;    ///< unique among the refresher's sources; used in stats and logs
    rtpush::topic topic; ///< channel and scope the snapshots are published on
    std::string event;   ///< empty: "<channel>:update"
    std::function<boost::asio::awaitable<snapshot>()> fetch;
};

/// A KPI chosen from complete data: the output field name and the JSON pointer (RFC 6901)
/// of the value in the complete data, e.g. {"health", "/summary/health_score"}.
struct kpi_field {
    std::string name;
    std::string pointer;
};

/// Builds the KPI object of `complete` from `fields`; a pointer that resolves to nothing
/// gives null, so a dashboard sees the KPI as missing rather than stale.
inline boost::json::object pick_kpis(const boost::json::value& complete,
                                     const std::vector<kpi_field>& fields);

/// Seed 003's `changes`: for every numeric top-level field of `current` that is numeric in
/// `previous` as well, `<name>_change` = current - previous. Other fields are ignored.
inline boost::json::object kpi_changes(const boost::json::value& previous,
                                       const boost::json::value& current);

/// Which fields changed from `previous` to `current` (seed 004's change detection names them;
/// docs/configuration.md, "Data sources"): the JSON pointers of the members added, removed or
/// changed, looking into objects down to `depth` levels (a changed array, or anything deeper,
/// counts as one change of the member holding it), in the order of `current` then the
/// removed ones; at most `max_fields`, then "..." ends the list. Empty when nothing changed;
/// ["" ] when either value is not an object and they differ.
inline boost::json::array changed_fields(const boost::json::value& previous,
                                         const boost::json::value& current, int depth = 2,
                                         std::size_t max_fields = 32);

/// A 64-bit FNV-1a hash of the snapshot's serialised content (seed 004's change detection).
/// Equal content gives an equal hash; fields in a different order count as a change.
inline std::uint64_t content_hash(const snapshot& s);

/// The delay before retry number `failures` (1 = after the first failure): `initial`,
/// doubled per further failure, capped at `max`.
inline std::chrono::milliseconds backoff_delay(unsigned failures, std::chrono::milliseconds initial,
                                               std::chrono::milliseconds max) noexcept;

} // namespace rtpush

#include <rtpush/impl/source.hpp>

#endif
