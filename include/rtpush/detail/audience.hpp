//
// rtpush: who a targeted broadcast goes to when it names connections rather than a topic:
// every connection, every connection of one organization, or listed client ids (seed 001's
// `io.emit`, `io.to('org:X')` and `target.socket_ids`; docs/protocol.md, "Targeting
// connections"). Free of I/O: the shard asks `includes` of each of its connections.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_AUDIENCE_HPP
#define RTPUSH_DETAIL_AUDIENCE_HPP

#include <boost/json.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

struct audience {
    enum class kind { everyone, organization, clients };
    kind who = kind::everyone;
    /// kind::organization: the organization; kind::clients: when set, the listed clients must
    /// also belong to it (a tenant's producer cannot reach another tenant's connections).
    std::string org;
    std::vector<std::string> client_ids; ///< kind::clients: sorted, without repeats

    /// Whether a connection known as `client_id` (and, for a Socket.IO connection upgraded
    /// from polling, also as `alias`, the id its client was given) of organization `org` is
    /// one of the audience.
    bool includes(std::string_view client_id, std::string_view alias,
                  std::string_view conn_org) const {
        switch (who) {
        case kind::everyone:
            return true;
        case kind::organization:
            return conn_org == org;
        case kind::clients:
            if (!org.empty() && conn_org != org)
                return false;
            return listed(client_id) || (!alias.empty() && listed(alias));
        }
        return false;
    }

    /// The channel a delivery to this audience is labelled with when the request named none.
    static constexpr std::string_view default_channel = "system";

    /// As the answer to the broadcast shows it: {"everyone": true}, {"organization_id": ..},
    /// {"socket_ids": [..]}.
    boost::json::object to_json() const {
        boost::json::object o;
        switch (who) {
        case kind::everyone:
            o["everyone"] = true;
            break;
        case kind::organization:
            o["organization_id"] = org;
            break;
        case kind::clients: {
            boost::json::array ids;
            for (auto const& id : client_ids)
                ids.emplace_back(id);
            o["socket_ids"] = std::move(ids);
            if (!org.empty())
                o["organization_id"] = org;
            break;
        }
        }
        return o;
    }

private:
    bool listed(std::string_view id) const {
        return std::binary_search(client_ids.begin(), client_ids.end(), id,
                                  [](std::string_view a, std::string_view b) { return a < b; });
    }
};

/// A targeted broadcast lists at most this many client ids: each connection of the node is
/// looked up in the list, and the request's size stays in proportion.
inline constexpr std::size_t max_audience_clients = 1000;

} // namespace rtpush::detail

#endif
