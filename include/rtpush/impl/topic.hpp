#ifndef RTPUSH_IMPL_TOPIC_HPP
#define RTPUSH_IMPL_TOPIC_HPP

namespace rtpush {

inline std::string topic::key() const {
    std::string k = channel;
    if (!scope.org.empty()) {
        k.append(":org:").append(scope.org);
        if (!scope.dept.empty()) {
            k.append(":dept:").append(scope.dept);
            if (!scope.queue.empty())
                k.append(":queue:").append(scope.queue);
        }
    }
    return k;
}

inline std::array<std::string, 4> topic::subscriber_keys() const {
    std::array<std::string, 4> keys;
    keys[0] = channel;
    int const d = scope.depth();
    if (d >= 1)
        keys[1] = keys[0] + ":org:" + scope.org;
    if (d >= 2)
        keys[2] = keys[1] + ":dept:" + scope.dept;
    if (d >= 3)
        keys[3] = keys[2] + ":queue:" + scope.queue;
    return keys;
}

inline bool topic::covers(const topic& n) const noexcept {
    if (channel != n.channel)
        return false;
    if (!scope.org.empty() && scope.org != n.scope.org)
        return false;
    if (!scope.dept.empty() && scope.dept != n.scope.dept)
        return false;
    if (!scope.queue.empty() && scope.queue != n.scope.queue)
        return false;
    return true;
}

inline bool valid_identifier(std::string_view s) noexcept {
    if (s.empty() || s.size() > max_identifier_size)
        return false;
    for (unsigned char c : s) {
        bool const ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' || c == '@';
        if (!ok)
            return false;
    }
    return true;
}

inline boost::system::error_code validate(const topic& t) noexcept {
    auto const& s = t.scope;
    if (!valid_identifier(t.channel))
        return error::invalid_message;
    if (!s.org.empty() && !valid_identifier(s.org))
        return error::invalid_message;
    if (!s.dept.empty() && (s.org.empty() || !valid_identifier(s.dept)))
        return error::invalid_message;
    if (!s.queue.empty() && (s.dept.empty() || !valid_identifier(s.queue)))
        return error::invalid_message;
    return {};
}

inline topic parse_topic(std::string_view key, boost::system::error_code& ec) {
    topic t;
    ec = {};
    auto next = [&](std::string_view& out) {
        auto const pos = key.find(':');
        out = key.substr(0, pos);
        key = pos == std::string_view::npos ? std::string_view{} : key.substr(pos + 1);
        return pos != std::string_view::npos;
    };
    std::string_view part;
    bool more = next(part);
    t.channel = std::string(part);
    static constexpr std::string_view levels[] = {"org", "dept", "queue"};
    std::string* fields[] = {&t.scope.org, &t.scope.dept, &t.scope.queue};
    for (int i = 0; more && i < 3; ++i) {
        std::string_view name, value;
        if (!next(name) || name != levels[i]) {
            ec = error::invalid_message;
            return {};
        }
        more = next(value);
        if (value.empty()) {
            ec = error::invalid_message;
            return {};
        }
        *fields[i] = std::string(value);
    }
    if (more || (ec = validate(t))) {
        ec = error::invalid_message;
        return {};
    }
    return t;
}

inline bool key_within(std::string_view key, std::string_view prefix) noexcept {
    return key.size() >= prefix.size() && key.substr(0, prefix.size()) == prefix &&
           (key.size() == prefix.size() || key[prefix.size()] == ':');
}

} // namespace rtpush

#endif
