//
// rtpush: Server-Sent Events (the fallback transport at GET /sse), free of I/O: the payload of
// a shared WebSocket frame, event framing, and the event ids that let a stream resume.
//
#ifndef RTPUSH_DETAIL_SSE_HPP
#define RTPUSH_DETAIL_SSE_HPP

#include <rtpush/detail/recovery.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/topic.hpp>

#include <charconv>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// The JSON text inside a server frame (unmasked, unfragmented, as make_frame builds them):
/// an SSE stream sends the very bytes a WebSocket subscriber gets, without the frame header.
/// Empty for anything but a text frame.
inline std::string_view frame_text(const outbound_frame& f) noexcept {
    std::string_view const b = f.bytes;
    if (b.size() < 2 || (static_cast<unsigned char>(b[0]) & 0x0F) != 0x1)
        return {};
    std::size_t header = 2;
    unsigned const len7 = static_cast<unsigned char>(b[1]) & 0x7F;
    if (len7 == 126)
        header = 4;
    else if (len7 == 127)
        header = 10;
    return b.size() < header ? std::string_view{} : b.substr(header);
}

/// The event ids of one SSE stream: the epoch and the last seq sent of every topic the stream
/// has seen. An id holds the whole position, so the `Last-Event-ID` a browser sends back when
/// it reconnects is enough to resume every subscription of the stream (docs/protocol.md, SSE):
///
///     <epoch>,<rel>=<seq>,<rel>=<seq>...
///
/// where <rel> names a topic relative to the stream's scope: its channel, then '/' and each
/// scope level below the stream's ("kpi" for kpi:org:acme in a stream of org acme,
/// "kpi/support/email" for kpi:org:acme:dept:support:queue:email). Identifiers never contain
/// ',', '=' or '/', so the id parses back unambiguously.
class sse_ids {
public:
    sse_ids(rtpush::scope stream_scope, std::string epoch)
        : scope_(std::move(stream_scope))
        , epoch_(std::move(epoch)) {}

    /// Records that the event carrying `seq` of `topic_key` is sent next.
    void note(const std::string& topic_key, std::uint64_t seq) {
        auto it = seen_.find(topic_key);
        if (it == seen_.end()) {
            boost::system::error_code ec;
            auto const t = parse_topic(topic_key, ec);
            it = seen_.emplace(topic_key, entry{relative(t), 0}).first;
        }
        it->second.seq = seq;
    }

    /// The id of the stream's current position.
    std::string id() const {
        std::string s = epoch_;
        char buf[24];
        for (auto const& [key, e] : seen_) {
            s += ',';
            s += e.rel;
            s += '=';
            auto r = std::to_chars(buf, buf + sizeof buf, e.seq);
            s.append(buf, r.ptr);
        }
        return s;
    }

    /// A topic key named relative to `stream_scope` (see the class comment).
    static std::string relative_to(const rtpush::scope& stream_scope, const topic& t) {
        std::string rel = t.channel;
        std::string const* levels[] = {&t.scope.org, &t.scope.dept, &t.scope.queue};
        for (int i = stream_scope.depth(); i < 3; ++i)
            if (!levels[i]->empty()) {
                rel += '/';
                rel += *levels[i];
            }
        return rel;
    }

    /// Parses a Last-Event-ID (or the lastEventId query parameter) of a stream of scope
    /// `stream_scope` into the recovery position of each of `subs` (the stream's topics), by
    /// topic key. A bare number is the offset of the stream's own topic in the current epoch
    /// (`current_epoch`): only for a single-topic stream. False, with `why`, when malformed.
    static bool parse(std::string_view id, const rtpush::scope& stream_scope,
                      const std::vector<topic>& subs, std::string_view current_epoch,
                      std::map<std::string, recover_position>& out, std::string& why) {
        out.clear();
        if (id.empty() || id.size() > 64 * 1024) {
            why = "Last-Event-ID is empty or too long";
            return false;
        }
        auto number = [](std::string_view s, std::uint64_t& v) {
            auto r = std::from_chars(s.data(), s.data() + s.size(), v);
            return !s.empty() && r.ec == std::errc{} && r.ptr == s.data() + s.size();
        };
        std::uint64_t bare = 0;
        if (number(id, bare)) {
            if (subs.size() != 1) {
                why = "a numeric Last-Event-ID needs a single channel";
                return false;
            }
            auto& p = out[subs.front().key()];
            p.epoch = std::string(current_epoch);
            p.offset = bare;
            return true;
        }
        auto const comma = id.find(',');
        std::string_view const epoch = id.substr(0, comma);
        if (epoch.empty() || epoch.size() > 64 || !valid_identifier(epoch)) {
            why = "Last-Event-ID does not start with an epoch";
            return false;
        }
        for (auto const& s : subs)
            out[s.key()].epoch = std::string(epoch);
        // Every entry after the epoch, each non-empty (a trailing ',' is malformed too).
        std::string_view rest = id.substr(comma == std::string_view::npos ? id.size() : comma);
        while (!rest.empty()) {
            rest.remove_prefix(1); // the ','
            auto const next = rest.find(',');
            std::string_view const item = rest.substr(0, next);
            rest = next == std::string_view::npos ? std::string_view{} : rest.substr(next);
            auto const eq = item.find('=');
            std::uint64_t seq = 0;
            topic t;
            if (eq == std::string_view::npos || !number(item.substr(eq + 1), seq) ||
                !absolute(item.substr(0, eq), stream_scope, t)) {
                why = "malformed Last-Event-ID entry '" + std::string(item.substr(0, 64)) + "'";
                return false;
            }
            std::string const key = t.key();
            // The entry belongs to the stream topic that covers it (one per channel).
            for (auto const& s : subs) {
                if (s.channel != t.channel)
                    continue;
                auto& p = out[s.key()];
                if (s == t)
                    p.offset = seq;
                else if (s.covers(t))
                    p.offsets[key] = seq;
            }
        }
        return true;
    }

private:
    struct entry {
        std::string rel;
        std::uint64_t seq = 0;
    };

    std::string relative(const topic& t) const { return relative_to(scope_, t); }

    // The topic that `rel` names in a stream of `stream_scope`.
    static bool absolute(std::string_view rel, const rtpush::scope& stream_scope, topic& t) {
        t = topic{};
        t.scope = stream_scope;
        std::string* levels[] = {&t.scope.org, &t.scope.dept, &t.scope.queue};
        int level = stream_scope.depth();
        bool first = true;
        while (true) {
            auto const slash = rel.find('/');
            std::string_view const part = rel.substr(0, slash);
            if (first)
                t.channel = std::string(part);
            else if (level < 3)
                *levels[level++] = std::string(part);
            else
                return false;
            first = false;
            if (slash == std::string_view::npos)
                break;
            rel.remove_prefix(slash + 1);
        }
        return !validate(t);
    }

    rtpush::scope scope_;
    std::string epoch_;
    std::map<std::string, entry> seen_;
};

/// The text before an event's data: its id (when it has one) and the data field name.
inline std::string sse_event_head(std::string_view id) {
    std::string s;
    if (!id.empty()) {
        s.reserve(id.size() + 11);
        s += "id: ";
        s += id;
        s += '\n';
    }
    s += "data: ";
    return s;
}

/// Every event ends with an empty line; the JSON text of a message never holds a raw newline
/// (serialisers escape it), so one `data:` line carries it.
inline constexpr std::string_view sse_event_tail = "\n\n";

} // namespace rtpush::detail

#endif
