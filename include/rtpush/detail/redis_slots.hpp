//
// rtpush: the I/O-free half of the Redis engine on a Redis Cluster: hash slots (CRC16 and
// hash tags), the engine's key layout in both topologies, the cluster's slot map and its
// MOVED/ASK redirections (docs/operations.md, "Redis Cluster"). Part of the optional Redis
// engine.
//
#ifndef RTPUSH_DETAIL_REDIS_SLOTS_HPP
#define RTPUSH_DETAIL_REDIS_SLOTS_HPP

#include <rtpush/detail/redis_topology.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

inline constexpr std::uint16_t redis_slots = 16384;

/// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the checksum of Redis Cluster's
/// key hashing.
inline std::uint16_t crc16(std::string_view s) noexcept {
    std::uint16_t crc = 0;
    for (unsigned char c : s) {
        crc ^= static_cast<std::uint16_t>(c << 8);
        for (int i = 0; i < 8; ++i)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/// The hash slot of a key (or shard channel): of the part between the first '{' and the next
/// '}' when that part is not empty (a hash tag), else of the whole key.
inline std::uint16_t key_slot(std::string_view key) noexcept {
    if (auto const open = key.find('{'); open != std::string_view::npos) {
        auto const close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1)
            key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) % redis_slots);
}

/// The engine's keys and pub/sub channels. On one Redis (or Sentinel's master):
/// `<p>:epoch:current`, `<p>:t:<topic>`, `<p>:s:<topic>`, `<p>:topics:<channel>`,
/// `<p>:c:<channel>`, `<p>:node:<id>`, `<p>:nodes:all`. On a Redis Cluster every key of a
/// channel carries the hash tag `{<p>:<channel>}`, so its topics' sequences, streams and latest
/// values, its epoch copy and its shard channel share one slot (the publish script touches
/// them together); the cluster's own keys carry `{<p>}`.
struct redis_keys {
    std::string prefix = "rtpush";
    bool cluster = false;

    /// The channel of a topic key ("kpi:org:o1" -> "kpi").
    static std::string_view channel_of(std::string_view topic_key) {
        return topic_key.substr(0, topic_key.find(':'));
    }
    std::string tag(std::string_view channel) const {
        return "{" + prefix + ":" + std::string(channel) + "}";
    }
    std::string epoch() const {
        return cluster ? "{" + prefix + "}:epoch:current" : prefix + ":epoch:current";
    }
    /// The epoch as the channel's slot holds it (the cluster's, copied by the publish script).
    std::string channel_epoch(std::string_view channel) const {
        return cluster ? tag(channel) + ":epoch" : epoch();
    }
    std::string topic(std::string_view topic_key) const {
        return cluster ? tag(channel_of(topic_key)) + ":t:" + std::string(topic_key)
                       : prefix + ":t:" + std::string(topic_key);
    }
    std::string stream(std::string_view topic_key) const {
        return cluster ? tag(channel_of(topic_key)) + ":s:" + std::string(topic_key)
                       : prefix + ":s:" + std::string(topic_key);
    }
    std::string topics(std::string_view channel) const {
        return cluster ? tag(channel) + ":topics" : prefix + ":topics:" + std::string(channel);
    }
    /// The counter that numbers every publication of a channel (the stream entries' `n`).
    std::string order(std::string_view channel) const {
        return cluster ? tag(channel) + ":n" : prefix + ":n:" + std::string(channel);
    }
    std::string pubsub(std::string_view channel) const {
        return cluster ? tag(channel) + ":c" : prefix + ":c:" + std::string(channel);
    }
    /// The engine channel of a pub/sub channel name; empty when it is none of the engine's.
    std::string channel_of_pubsub(std::string_view name) const {
        if (cluster) {
            auto const head = "{" + prefix + ":";
            if (!name.starts_with(head) || !name.ends_with("}:c") || name.size() <= head.size() + 3)
                return {};
            return std::string(name.substr(head.size(), name.size() - head.size() - 3));
        }
        auto const head = prefix + ":c:";
        return name.starts_with(head) ? std::string(name.substr(head.size())) : std::string();
    }
    /// The classic pub/sub channel of relayed messages (detail/relay.hpp): every node
    /// subscribes to it, and a PUBLISH reaches every node, of a Cluster too.
    std::string relay() const { return (cluster ? "{" + prefix + "}" : prefix) + ":relay"; }
    std::string node(std::string_view id) const {
        return (cluster ? "{" + prefix + "}" : prefix) + ":node:" + std::string(id);
    }
    /// The shared alert book: alert id -> "<seq> <payload>" (engine::share_alert).
    std::string alerts() const { return (cluster ? "{" + prefix + "}" : prefix) + ":alerts"; }
    /// The lease of the node that does what must happen once per cluster (engine::leads).
    std::string leader() const { return (cluster ? "{" + prefix + "}" : prefix) + ":leader"; }
    std::string nodes() const {
        return cluster ? "{" + prefix + "}:nodes:all" : prefix + ":nodes:all";
    }
    /// Pub/sub commands: sharded on a Redis Cluster (a shard channel lives on its slot's
    /// master and replicas only), classic otherwise.
    const char* subscribe() const { return cluster ? "SSUBSCRIBE" : "SUBSCRIBE"; }
    const char* unsubscribe() const { return cluster ? "SUNSUBSCRIBE" : "UNSUBSCRIBE"; }
    const char* publish() const { return cluster ? "SPUBLISH" : "PUBLISH"; }
    /// The slot that holds a channel's keys (cluster only).
    std::uint16_t slot(std::string_view channel) const { return key_slot(tag(channel)); }
};

/// A MOVED or ASK error reply: where the slot is (MOVED: for good; ASK: for the next command,
/// preceded by ASKING, during a migration).
struct redis_redirect {
    bool ask = false;
    std::uint16_t slot = 0;
    host_port to;
};

inline std::optional<redis_redirect> parse_redirect(std::string_view error_reply) {
    redis_redirect r;
    if (error_reply.starts_with("MOVED "))
        error_reply.remove_prefix(6);
    else if (error_reply.starts_with("ASK ")) {
        error_reply.remove_prefix(4);
        r.ask = true;
    } else
        return std::nullopt;
    auto const sp = error_reply.find(' ');
    if (sp == std::string_view::npos)
        return std::nullopt;
    unsigned slot = 0;
    auto const num = error_reply.substr(0, sp);
    auto const [p, e] = std::from_chars(num.data(), num.data() + num.size(), slot);
    if (e != std::errc{} || p != num.data() + num.size() || slot >= redis_slots)
        return std::nullopt;
    auto to = parse_host_port(error_reply.substr(sp + 1), 0);
    if (!to || to->port == 0)
        return std::nullopt;
    r.slot = static_cast<std::uint16_t>(slot);
    r.to = std::move(*to);
    return r;
}

/// The cluster's masters and which one serves each slot, from CLUSTER SLOTS.
struct slot_map {
    std::vector<host_port> masters;   ///< distinct, in the reply's order
    std::vector<std::uint16_t> owner; ///< per slot: index in masters, or none
    static constexpr std::uint16_t none = 0xffff;

    /// Index of a master, added when new.
    std::uint16_t master_index(const host_port& hp) {
        for (std::size_t i = 0; i < masters.size(); ++i)
            if (masters[i] == hp)
                return static_cast<std::uint16_t>(i);
        masters.push_back(hp);
        return static_cast<std::uint16_t>(masters.size() - 1);
    }
    /// Whether every slot has a master (else the cluster is not ready, or lost a shard).
    bool complete() const {
        for (auto o : owner)
            if (o == none)
                return false;
        return owner.size() == redis_slots;
    }
};

/// Parses a CLUSTER SLOTS reply ([[start, end, [ip, port, id...], replicas...], ...]); an
/// empty ip means the node answering (`self`). False when it is not one.
inline bool parse_cluster_slots(const redis_reply& r, const host_port& self, slot_map& out) {
    out = {};
    out.owner.assign(redis_slots, slot_map::none);
    if (!r.is_array())
        return false;
    for (auto const& range : r.elements) {
        if (!range.is_array() || range.elements.size() < 3 || !range.elements[2].is_array() ||
            range.elements[2].elements.size() < 2)
            return false;
        auto const& m = range.elements[2].elements;
        long long const start = range.elements[0].integer, end = range.elements[1].integer;
        if (start < 0 || end < start || end >= redis_slots || m[1].integer <= 0 ||
            m[1].integer > 65535)
            return false;
        host_port hp{m[0].str.empty() || m[0].str == "?" ? self.host : m[0].str,
                     static_cast<std::uint16_t>(m[1].integer)};
        auto const idx = out.master_index(hp);
        for (long long s = start; s <= end; ++s)
            out.owner[static_cast<std::size_t>(s)] = idx;
    }
    return true;
}

} // namespace rtpush::detail

#endif
