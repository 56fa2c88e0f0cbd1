//
// rtpush: hierarchical topics  channel:org:<org>:dept:<dept>:queue:<queue>
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_TOPIC_HPP
#define RTPUSH_TOPIC_HPP

#include <rtpush/error.hpp>

#include <boost/system/error_code.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace rtpush {

/// Where in the organisation a message belongs. Each level is optional, but a narrower level
/// needs the wider one: a queue needs a dept, a dept needs an org.
struct scope {
    std::string org;
    std::string dept;
    std::string queue;

    /// 0 = whole channel, 1 = org, 2 = dept, 3 = queue.
    int depth() const noexcept {
        return queue.empty() ? dept.empty() ? org.empty() ? 0 : 1 : 2 : 3;
    }

    friend bool operator==(const scope&, const scope&) = default;
};

/// The channel whose subscribers get every channel's publications of their scope (seed 001's
/// `all`; docs/protocol.md, "Topics and scopes"): live only, no snapshot or recovery of its own.
inline constexpr std::string_view all_channel = "all";

/// A channel plus a scope: the unit of subscription and of publication.
struct topic {
    std::string channel;
    rtpush::scope scope;

    /// The key, e.g. "kpi:org:o1:dept:d2". Keys of wider topics are prefixes of narrower ones.
    std::string key() const;

    /// The keys of every subscription that receives a publication on this topic, widest first:
    /// "kpi", "kpi:org:o1", "kpi:org:o1:dept:d2" (depth()+1 of them).
    std::array<std::string, 4> subscriber_keys() const;

    /// True when a subscription on this topic receives a publication on `narrower`.
    bool covers(const topic& narrower) const noexcept;

    friend bool operator==(const topic&, const topic&) = default;
};

/// Whether a refresh asked for `asked` reaches a data source publishing on `source`: one
/// covers the other (an organization's refresh reaches its queues' sources, a queue's
/// refresh the organization's source).
inline bool refresh_reaches(const topic& asked, const topic& source) noexcept {
    return asked.covers(source) || source.covers(asked);
}

/// Longest accepted channel or scope identifier.
inline constexpr std::size_t max_identifier_size = 128;

/// Identifiers are 1..128 characters of [A-Za-z0-9_.@-]; ':' is the separator and never allowed.
inline bool valid_identifier(std::string_view s) noexcept;

/// Checks the channel and every set scope level, and that no level is set without the wider one.
inline boost::system::error_code validate(const topic& t) noexcept;

/// Parses a key produced by topic::key(). Returns error::invalid_message on malformed input.
inline topic parse_topic(std::string_view key, boost::system::error_code& ec);

/// True when `key` equals `prefix` or continues it with ':' (a narrower topic of `prefix`).
inline bool key_within(std::string_view key, std::string_view prefix) noexcept;

} // namespace rtpush

#include <rtpush/impl/topic.hpp>

#endif
