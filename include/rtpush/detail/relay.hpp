//
// rtpush: what one node tells every node through a cross-node engine, besides publications:
// a targeted broadcast (detail/audience.hpp) and a notice to a topic's subscribers that is not
// kept (`join`/`leave`), which each node hands to its own connections; and the question of a
// room's members with each node's answer (presence across nodes). hub::relayed reads them
// (docs/operations.md, "Several nodes (Redis)"). The wire text and its reading, free of I/O.
//
#ifndef RTPUSH_DETAIL_RELAY_HPP
#define RTPUSH_DETAIL_RELAY_HPP

#include <rtpush/detail/audience.hpp>
#include <rtpush/detail/store_codec.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// A relayed message, read back.
struct relayed {
    enum class kind { delivery, notice, presence_query, presence_answer };
    kind what = kind::notice;
    // kind::delivery: hub::deliver_to's arguments and the origin's time.
    std::shared_ptr<const audience> to;
    publication pub;
    std::string timestamp;
    // kind::notice: hub::notify's.
    std::string topic_key; ///< also the room of a presence query
    std::string text;
    // kind::presence_query and presence_answer: the query's id, the asking node (`from`), the
    // answering node (`node`; the answer is for `to_node`) and its members.
    std::string id, from, to_node, node;
    boost::json::array members;
};

/// Who is in room `key` on each node? {"k":"q","id":..,"from":<node>,"key":..}
inline std::string encode_presence_query(std::string_view id, std::string_view from,
                                         std::string_view key) {
    boost::json::object o;
    o["k"] = "q";
    o["id"] = id;
    o["from"] = from;
    o["key"] = key;
    return boost::json::serialize(o);
}

/// One node's answer: {"k":"a","id":..,"to":<asking node>,"node":<this node>,"members":[..]}
inline std::string encode_presence_answer(std::string_view id, std::string_view to,
                                          std::string_view node, boost::json::array members) {
    boost::json::object o;
    o["k"] = "a";
    o["id"] = id;
    o["to"] = to;
    o["node"] = node;
    o["members"] = std::move(members);
    return boost::json::serialize(o);
}

/// A targeted broadcast: {"k":"d","to":{...},"p":"<publication>","ts":"..."}.
inline std::string encode_relay_delivery(const audience& to, const publication& p,
                                         std::string_view timestamp) {
    boost::json::object o;
    o["k"] = "d";
    auto t = to.to_json();
    // An organization's connections and listed ids of one organization both carry the
    // organization: the kind tells them apart.
    t["kind"] = to.who == audience::kind::everyone       ? "everyone"
                : to.who == audience::kind::organization ? "organization"
                                                         : "clients";
    o["to"] = std::move(t);
    o["p"] = encode_publication(p);
    o["ts"] = timestamp;
    return boost::json::serialize(o);
}

/// A notice to a topic's subscribers: {"k":"n","t":"<topic key>","m":"<message text>"}.
inline std::string encode_relay_notice(std::string_view topic_key, std::string_view text) {
    boost::json::object o;
    o["k"] = "n";
    o["t"] = topic_key;
    o["m"] = text;
    return boost::json::serialize(o);
}

/// Reads a relayed message; nullopt for anything encode_relay_* did not write (another
/// version, a stray PUBLISH), which the receiver ignores.
inline std::optional<relayed> decode_relay(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
        return std::nullopt;
    auto const& o = v.get_object();
    auto str = [](const boost::json::object& in, std::string_view k) -> std::optional<std::string> {
        auto const* x = in.if_contains(k);
        if (!x || !x->is_string())
            return std::nullopt;
        return std::string(x->get_string());
    };
    auto const k = str(o, "k");
    relayed r;
    if (k == "q" || k == "a") {
        auto id = str(o, "id");
        if (!id)
            return std::nullopt;
        r.id = std::move(*id);
        if (k == "q") {
            auto from = str(o, "from"), key = str(o, "key");
            if (!from || !key)
                return std::nullopt;
            r.what = relayed::kind::presence_query;
            r.from = std::move(*from);
            r.topic_key = std::move(*key);
            return r;
        }
        auto to = str(o, "to"), node = str(o, "node");
        auto* members = v.get_object().if_contains("members");
        if (!to || !node || !members || !members->is_array())
            return std::nullopt;
        r.what = relayed::kind::presence_answer;
        r.to_node = std::move(*to);
        r.node = std::move(*node);
        r.members = std::move(members->get_array());
        return r;
    }
    if (k == "n") {
        auto t = str(o, "t"), m = str(o, "m");
        if (!t || !m)
            return std::nullopt;
        r.what = relayed::kind::notice;
        r.topic_key = std::move(*t);
        r.text = std::move(*m);
        return r;
    }
    if (k != "d")
        return std::nullopt;
    auto const* to = o.if_contains("to");
    auto p = str(o, "p"), ts = str(o, "ts");
    if (!to || !to->is_object() || !p || !ts)
        return std::nullopt;
    auto const& t = to->get_object();
    auto a = std::make_shared<audience>();
    auto const who = str(t, "kind");
    a->org = str(t, "organization_id").value_or("");
    if (who == "everyone") {
        a->who = audience::kind::everyone;
    } else if (who == "organization" && !a->org.empty()) {
        a->who = audience::kind::organization;
    } else if (who == "clients") {
        a->who = audience::kind::clients;
        auto const* ids = t.if_contains("socket_ids");
        if (!ids || !ids->is_array() || ids->get_array().size() > max_audience_clients)
            return std::nullopt;
        for (auto const& id : ids->get_array()) {
            if (!id.is_string())
                return std::nullopt;
            a->client_ids.emplace_back(id.get_string());
        }
        std::sort(a->client_ids.begin(), a->client_ids.end());
    } else {
        return std::nullopt;
    }
    r.pub = decode_publication(*p, ec);
    if (ec)
        return std::nullopt;
    r.what = relayed::kind::delivery;
    r.to = std::move(a);
    r.timestamp = std::move(*ts);
    return r;
}

} // namespace rtpush::detail

#endif
