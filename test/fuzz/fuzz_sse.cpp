// libFuzzer target: SSE event ids (detail/sse.hpp): `Last-Event-ID` as a reconnecting
// EventSource (or anyone) sends it.
//
// Input: byte 0 picks the stream's scope and topics from a small table; the rest is the id.
// Properties: a refusal says why; an accepted id gives positions only for the stream's own
// topics, each with an epoch (an identifier, or the current one for a bare number), and
// recorded offsets only for topics the subscription covers; the stream's own ids make the
// same positions again: the positions noted into an `sse_ids` and its id() parsed back give
// exactly those positions.
#include "check.hpp"

#include <rtpush/detail/sse.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace d = rtpush::detail;

namespace {

struct stream_case {
    rtpush::scope scope;
    std::vector<rtpush::topic> subs;
};

std::vector<stream_case> const& cases() {
    using rtpush::scope;
    using rtpush::topic;
    static std::vector<stream_case> const all{
        {scope{}, {topic{"kpi", scope{}}}},
        {scope{}, {topic{"kpi", scope{}}, topic{"alerts", scope{}}}},
        {scope{"acme"}, {topic{"kpi", scope{"acme"}}}},
        {scope{"acme"}, {topic{"kpi", scope{"acme"}}, topic{"kpi", scope{"acme", "support"}}}},
        {scope{"acme", "support"}, {topic{"backlog", scope{"acme", "support"}}}},
        {scope{"acme", "support", "email"},
         {topic{"kpi", scope{"acme", "support", "email"}}, topic{"alerts", scope{"acme"}}}},
    };
    return all;
}

bool same(const std::map<std::string, d::recover_position>& a,
          const std::map<std::string, d::recover_position>& b) {
    if (a.size() != b.size())
        return false;
    for (auto const& [key, p] : a) {
        auto it = b.find(key);
        if (it == b.end() || it->second.epoch != p.epoch || it->second.offset != p.offset ||
            it->second.offsets != p.offsets)
            return false;
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    auto const& c = cases()[data[0] % cases().size()];
    std::string_view const id(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string_view const current = "e0current";

    std::map<std::string, d::recover_position> out;
    std::string why;
    if (!d::sse_ids::parse(id, c.scope, c.subs, current, out, why)) {
        FUZZ_CHECK(!why.empty());
        return 0;
    }
    FUZZ_CHECK(!out.empty());
    bool bare = false;
    for (auto const& [key, p] : out) {
        bool known = false;
        for (auto const& s : c.subs)
            if (s.key() == key) {
                known = true;
                for (auto const& [k, seq] : p.offsets) {
                    boost::system::error_code ec;
                    auto const t = rtpush::parse_topic(k, ec);
                    FUZZ_CHECK(!ec && s.covers(t) && !(t == s));
                }
            }
        FUZZ_CHECK(known);
        FUZZ_CHECK(!p.epoch.empty());
        bare = bare || p.epoch == current;
        FUZZ_CHECK(p.epoch == current || rtpush::valid_identifier(p.epoch));
    }
    if (bare && out.size() == 1 && out.begin()->second.offsets.empty())
        return 0; // a bare number (or the current epoch named with one topic): nothing to note

    // The positions as the stream itself would have written them.
    d::sse_ids ids(c.scope, out.begin()->second.epoch);
    bool noted = false;
    for (auto const& [key, p] : out) {
        if (p.offset) {
            ids.note(key, p.offset);
            noted = true;
        }
        for (auto const& [k, seq] : p.offsets) {
            ids.note(k, seq);
            noted = true;
        }
    }
    if (!noted)
        return 0; // an id of an epoch alone is never written (every event notes a topic)
    std::map<std::string, d::recover_position> back;
    std::string why2;
    FUZZ_CHECK(d::sse_ids::parse(ids.id(), c.scope, c.subs, current, back, why2));
    // What was noted comes back; a topic noted with seq 0 reads as no offset either way.
    for (auto& [key, p] : out)
        for (auto it = p.offsets.begin(); it != p.offsets.end();)
            it = it->second == 0 ? p.offsets.erase(it) : std::next(it);
    for (auto& [key, p] : back)
        for (auto it = p.offsets.begin(); it != p.offsets.end();)
            it = it->second == 0 ? p.offsets.erase(it) : std::next(it);
    FUZZ_CHECK(same(out, back));
    return 0;
}
