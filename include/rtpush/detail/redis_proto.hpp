//
// rtpush: the I/O-free half of the Redis client: redis:// URLs, command formatting and reply
// parsing (both by hiredis, which is used for nothing else), and the engine's wire formats
// and ordering decisions. Part of the optional Redis engine (rtpush/redis.hpp).
//
#ifndef RTPUSH_DETAIL_REDIS_PROTO_HPP
#define RTPUSH_DETAIL_REDIS_PROTO_HPP

#include <rtpush/error.hpp>
#include <rtpush/protocol.hpp>

#include <hiredis/hiredis.h>

#include <boost/json.hpp>

#include <charconv>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rtpush::detail {

/// Where and how to reach Redis: redis://[[user]:password@]host[:port][/db], rediss:// for TLS.
struct redis_url {
    bool tls = false;
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string user;     ///< empty: AUTH with the password only (the `default` user)
    std::string password; ///< empty: no AUTH
    unsigned db = 0;
};

inline int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// Percent-decodes the user and password of a URL; false on a malformed escape.
inline bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size())
            return false;
        int const h = hex_value(in[i + 1]), l = hex_value(in[i + 2]);
        if (h < 0 || l < 0)
            return false;
        out += static_cast<char>(h * 16 + l);
        i += 2;
    }
    return true;
}

/// Parses a redis:// or rediss:// URL; error::bad_url when it is not one.
inline redis_url parse_redis_url(std::string_view s, boost::system::error_code& ec) {
    redis_url u;
    ec = {};
    auto fail = [&] {
        ec = error::bad_url;
        return redis_url{};
    };
    if (s.starts_with("redis://"))
        s.remove_prefix(8);
    else if (s.starts_with("rediss://")) {
        s.remove_prefix(9);
        u.tls = true;
    } else
        return fail();
    // path: /db
    std::string_view path;
    if (auto const slash = s.find('/'); slash != std::string_view::npos) {
        path = s.substr(slash + 1);
        s = s.substr(0, slash);
    }
    if (auto const at = s.rfind('@'); at != std::string_view::npos) {
        std::string_view cred = s.substr(0, at);
        s = s.substr(at + 1);
        auto const colon = cred.find(':');
        std::string_view user = colon == std::string_view::npos ? cred : cred.substr(0, colon);
        std::string_view pass =
            colon == std::string_view::npos ? std::string_view{} : cred.substr(colon + 1);
        if (colon == std::string_view::npos) { // redis://secret@host: a password alone
            pass = user;
            user = {};
        }
        if (!percent_decode(user, u.user) || !percent_decode(pass, u.password))
            return fail();
    }
    // host[:port], IPv6 as [::1]:port
    std::string_view host = s, port;
    if (s.starts_with('[')) {
        auto const close = s.find(']');
        if (close == std::string_view::npos)
            return fail();
        host = s.substr(1, close - 1);
        auto rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':')
                return fail();
            port = rest.substr(1);
        }
    } else if (auto const colon = s.rfind(':'); colon != std::string_view::npos) {
        host = s.substr(0, colon);
        port = s.substr(colon + 1);
    }
    if (host.empty())
        return fail();
    u.host = std::string(host);
    if (!port.empty()) {
        unsigned p = 0;
        auto const [ptr, e] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (e != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535)
            return fail();
        u.port = static_cast<std::uint16_t>(p);
    }
    if (!path.empty()) {
        auto const [ptr, e] = std::from_chars(path.data(), path.data() + path.size(), u.db);
        if (e != std::errc{} || ptr != path.data() + path.size())
            return fail();
    }
    return u;
}

/// One Redis reply, copied out of hiredis' tree.
struct redis_reply {
    enum class kind { string, status, error, integer, nil, array, other };
    kind type = kind::nil;
    std::string str; ///< string, status, error
    long long integer = 0;
    std::vector<redis_reply> elements;

    bool is_error() const noexcept { return type == kind::error; }
    bool is_nil() const noexcept { return type == kind::nil; }
    bool is_array() const noexcept { return type == kind::array; }
};

inline redis_reply copy_reply(const redisReply* r) {
    redis_reply out;
    // RESP2 types only: the client never sends HELLO 3 (and Debian's hiredis 0.14 has no
    // RESP3 types).
    switch (r->type) {
    case REDIS_REPLY_STRING:
        out.type = redis_reply::kind::string;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_STATUS:
        out.type = redis_reply::kind::status;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_ERROR:
        out.type = redis_reply::kind::error;
        out.str.assign(r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        out.type = redis_reply::kind::integer;
        out.integer = r->integer;
        break;
    case REDIS_REPLY_NIL:
        out.type = redis_reply::kind::nil;
        break;
    case REDIS_REPLY_ARRAY:
        out.type = redis_reply::kind::array;
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i)
            out.elements.push_back(copy_reply(r->element[i]));
        break;
    default:
        out.type = redis_reply::kind::other;
        break;
    }
    return out;
}

/// The most elements an array reply may declare. hiredis 0.14 allocates an array's element
/// table as soon as it reads the header, trusting the declared count: past this, the reply
/// is a protocol error instead of an allocation of gigabytes. rtpush's replies are far smaller
/// (bounded XRANGEs, CLUSTER SLOTS).
inline constexpr int redis_max_array_elements = 1 << 20;

/// hiredis' reply builders with the array count capped (see redis_max_array_elements); made
/// once from the builders a reader starts with (hiredis' own, shared by every reader).
inline redisReplyObjectFunctions* capped_reply_functions(const redisReplyObjectFunctions* base) {
    static void* (*const base_array)(const redisReadTask*, int) = base->createArray;
    static redisReplyObjectFunctions capped = [&] {
        redisReplyObjectFunctions f = *base;
        f.createArray = [](const redisReadTask* task, int elements) -> void* {
            return elements > redis_max_array_elements ? nullptr : base_array(task, elements);
        };
        return f;
    }();
    return &capped;
}

/// Incremental RESP parser (hiredis' redisReader): feed bytes as they arrive, take replies
/// as they complete. A protocol error is final (the connection must be dropped).
class redis_parser {
public:
    redis_parser()
        : reader_(redisReaderCreate(), &redisReaderFree) {
        if (!reader_)
            throw std::bad_alloc();
        reader_->fn = capped_reply_functions(reader_->fn);
    }

    /// False when the bytes are not RESP.
    bool feed(std::string_view bytes) {
        return redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) == REDIS_OK;
    }

    /// The next complete reply, or none yet. Throws std::runtime_error on a protocol error.
    std::optional<redis_reply> next() {
        void* r = nullptr;
        if (redisReaderGetReply(reader_.get(), &r) != REDIS_OK)
            throw std::runtime_error(std::string("Redis protocol error: ") + reader_->errstr);
        if (!r)
            return std::nullopt;
        std::unique_ptr<redisReply, decltype(&freeReplyObject)> guard(static_cast<redisReply*>(r),
                                                                      &freeReplyObject);
        return copy_reply(guard.get());
    }

private:
    std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader_;
};

/// A command's arguments (variadic: no initializer_list, which GCC 12 mishandles in
/// coroutines).
template <class... Args>
std::vector<std::string> redis_cmd(Args&&... args) {
    std::vector<std::string> v;
    v.reserve(sizeof...(args));
    (v.emplace_back(std::forward<Args>(args)), ...);
    return v;
}

/// Log fields from alternating keys and values (same reason).
inline void add_fields(boost::json::object&) {}
template <class V, class... Rest>
void add_fields(boost::json::object& o, std::string_view k, V&& v, Rest&&... rest) {
    o[k] = std::forward<V>(v);
    add_fields(o, std::forward<Rest>(rest)...);
}
template <class... Args>
boost::json::object log_fields(Args&&... args) {
    boost::json::object o;
    add_fields(o, std::forward<Args>(args)...);
    return o;
}

/// The RESP encoding of one command (hiredis' redisFormatCommandArgv).
inline std::string format_command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (auto const& a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    char* out = nullptr;
    long long const n =
        redisFormatCommandArgv(&out, static_cast<int>(args.size()), argv.data(), lens.data());
    if (n < 0 || !out)
        throw std::bad_alloc();
    std::string s(out, static_cast<std::size_t>(n));
    redisFreeCommand(out);
    return s;
}

// ---- the engine's wire formats ----

/// A publication as stored in Redis (stream entry, latest value, pub/sub message body):
/// {"c":channel,"s":scope,"e":event,"p":phase,"r":priority,"d":data,"ts":timestamp}, and
/// "a": the ack id of a publication with requires_ack (every node re-sends it until acked).
inline std::string encode_publication(const publication& p, std::string_view ts) {
    boost::json::object o;
    o["c"] = p.topic.channel;
    o["s"] = scope_to_json(p.topic.scope);
    o["e"] = p.event;
    if (!p.phase.empty())
        o["p"] = p.phase;
    o["r"] = to_string(p.priority);
    o["d"] = p.data;
    o["ts"] = ts;
    if (!p.ack_id.empty())
        o["a"] = p.ack_id;
    return boost::json::serialize(o);
}

struct stored_publication {
    publication pub;
    std::string timestamp;
};

/// Parses encode_publication()'s text; nullopt when it is not one.
inline std::optional<stored_publication> decode_publication(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
        return std::nullopt;
    auto& o = v.get_object();
    auto str = [&](const char* k) -> std::string {
        auto const* x = o.if_contains(k);
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    stored_publication s;
    s.pub.topic.channel = str("c");
    if (auto const* sc = o.if_contains("s"); sc && sc->is_object()) {
        auto const& so = sc->get_object();
        auto get = [&](const char* k) -> std::string {
            auto const* x = so.if_contains(k);
            return x && x->is_string() ? std::string(x->get_string()) : std::string();
        };
        s.pub.topic.scope.org = get("org");
        s.pub.topic.scope.dept = get("dept");
        s.pub.topic.scope.queue = get("queue");
    }
    s.pub.event = str("e");
    s.pub.phase = str("p");
    if (!parse_priority(str("r"), s.pub.priority))
        s.pub.priority = priority::medium;
    if (auto* d = o.if_contains("d"))
        s.pub.data = std::move(*d);
    s.timestamp = str("ts");
    s.pub.ack_id = str("a");
    if (s.pub.topic.channel.empty() || validate(s.pub.topic))
        return std::nullopt;
    return s;
}

/// Splits "<word> <rest>" (the formats "<epoch> <seq> <body>" and "<seq> <body>").
inline bool split_word(std::string_view& s, std::string_view& word) {
    auto const sp = s.find(' ');
    if (sp == std::string_view::npos)
        return false;
    word = s.substr(0, sp);
    s.remove_prefix(sp + 1);
    return !word.empty();
}

inline bool parse_seq(std::string_view s, std::uint64_t& seq) {
    auto const [p, e] = std::from_chars(s.data(), s.data() + s.size(), seq);
    return e == std::errc{} && p == s.data() + s.size() && seq > 0;
}

/// A pub/sub message of the engine: "<epoch> <seq> <publication>".
struct engine_message {
    std::string epoch;
    std::uint64_t seq = 0;
    std::string body;
};

inline std::optional<engine_message> parse_engine_message(std::string_view s) {
    std::string_view e, q;
    engine_message m;
    if (!split_word(s, e) || !split_word(s, q) || !parse_seq(q, m.seq) || s.empty())
        return std::nullopt;
    m.epoch = std::string(e);
    m.body = std::string(s);
    return m;
}

/// The seq of a stream entry id "<seq>-0" (the engine adds entries with explicit ids).
inline std::uint64_t stream_id_seq(std::string_view id) {
    auto const dash = id.find('-');
    std::uint64_t seq = 0;
    if (!parse_seq(id.substr(0, dash), seq))
        return 0;
    return seq;
}

/// What a node does with a publication of seq `seq` of a topic whose head it holds.
enum class arrival {
    duplicate, ///< at or below the head: already delivered here
    next,      ///< head + 1: deliver now
    gap,       ///< beyond head + 1: fetch head+1 .. seq-1 from the stream first
};

inline arrival classify(std::uint64_t head, std::uint64_t seq) noexcept {
    if (seq <= head)
        return arrival::duplicate;
    return seq == head + 1 ? arrival::next : arrival::gap;
}

} // namespace rtpush::detail

#endif
