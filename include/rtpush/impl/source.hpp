#ifndef RTPUSH_IMPL_SOURCE_HPP
#define RTPUSH_IMPL_SOURCE_HPP

#include <algorithm>

namespace rtpush {

inline boost::json::object pick_kpis(const boost::json::value& complete,
                                     const std::vector<kpi_field>& fields) {
    boost::json::object o;
    for (auto const& f : fields) {
        boost::system::error_code ec;
        auto const* v = complete.find_pointer(f.pointer, ec);
        o[f.name] = v ? *v : boost::json::value();
    }
    return o;
}

inline boost::json::object kpi_changes(const boost::json::value& previous,
                                       const boost::json::value& current) {
    boost::json::object changes;
    if (!previous.is_object() || !current.is_object())
        return changes;
    auto const& prev = previous.get_object();
    for (auto const& [k, v] : current.get_object()) {
        auto const* p = prev.if_contains(k);
        if (!p || !v.is_number() || !p->is_number())
            continue;
        std::string name(k);
        name += "_change";
        if (v.is_double() || p->is_double()) {
            changes[name] = v.to_number<double>() - p->to_number<double>();
        } else {
            // Integers stay integers (no "3.0" for a count that went up by 3).
            boost::system::error_code ec;
            auto const a = v.to_number<std::int64_t>(ec);
            auto const b = p->to_number<std::int64_t>(ec);
            if (ec)
                changes[name] = v.to_number<double>() - p->to_number<double>();
            else
                changes[name] = a - b;
        }
    }
    return changes;
}

namespace detail {
inline void collect_changed_fields(const boost::json::value& previous,
                                   const boost::json::value& current, const std::string& at,
                                   int depth, std::size_t max_fields, boost::json::array& out) {
    auto note = [&](std::string p) {
        if (out.size() < max_fields)
            out.emplace_back(p);
        else if (out.size() == max_fields)
            out.emplace_back("...");
    };
    if (!previous.is_object() || !current.is_object() || depth <= 0) {
        if (previous != current)
            note(at);
        return;
    }
    auto const& before = previous.get_object();
    auto const& after = current.get_object();
    // A member's name as a JSON pointer token (RFC 6901: '~' and '/' escaped).
    auto token = [](std::string_view k) {
        std::string t;
        for (char c : k)
            t += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
        return t;
    };
    for (auto const& [k, v] : after) {
        auto const* p = before.if_contains(k);
        std::string const path = at + "/" + token(k);
        if (!p)
            note(path);
        else if (*p != v)
            collect_changed_fields(*p, v, path, depth - 1, max_fields, out);
    }
    for (auto const& [k, v] : before)
        if (!after.contains(k))
            note(at + "/" + token(k));
}

inline std::uint64_t fnv1a(std::uint64_t h, std::string_view s) noexcept {
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}
} // namespace detail

inline boost::json::array changed_fields(const boost::json::value& previous,
                                         const boost::json::value& current, int depth,
                                         std::size_t max_fields) {
    boost::json::array out;
    detail::collect_changed_fields(previous, current, "", depth, max_fields, out);
    return out;
}

inline std::uint64_t content_hash(const snapshot& s) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    h = detail::fnv1a(h, boost::json::serialize(s.kpis));
    h = detail::fnv1a(h, std::string_view("\0", 1)); // "ab"+"c" differs from "a"+"bc"
    h = detail::fnv1a(h, boost::json::serialize(s.complete));
    return h;
}

inline std::chrono::milliseconds backoff_delay(unsigned failures, std::chrono::milliseconds initial,
                                               std::chrono::milliseconds max) noexcept {
    if (failures == 0)
        return std::chrono::milliseconds(0);
    auto d = initial;
    for (unsigned i = 1; i < failures && d < max; ++i)
        d *= 2;
    return std::min(d, max);
}

} // namespace rtpush

#endif
