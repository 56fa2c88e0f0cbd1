//
// rtpush: feed paths (docs/protocol.md, "Feed paths"): a plain WebSocket endpoint that
// subscribes its clients on connect and sends publications in the flat shape of seed 002's
// `ws` back end, `{"type":"<channel>","data":<data>,"timestamp":"..."}`, instead of rtpush's
// envelope. Each publication's feed form is made once and shared, as its Socket.IO form is.
// Free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_FEED_FORMAT_HPP
#define RTPUSH_DETAIL_FEED_FORMAT_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/protocol.hpp>

#include <boost/json.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace rtpush::detail {

/// The feed path configured for `path`, or null.
inline const feed_path* find_feed_path(const std::vector<feed_path>& feeds,
                                       std::string_view path) noexcept {
    for (auto const& f : feeds)
        if (f.path == path)
            return &f;
    return nullptr;
}

/// A publication (`update`, `initial`; serialised rtpush JSON) in the feed shape; empty when
/// the text is not one (other messages go out as rtpush sends them).
inline std::string feed_message_of(std::string_view json_text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(json_text, ec);
    if (ec || !v.is_object())
        return {};
    auto const& o = v.get_object();
    auto const* type = o.if_contains("type");
    auto const* channel = o.if_contains("channel");
    if (!type || !type->is_string() || !channel || !channel->is_string() ||
        (type->get_string() != "update" && type->get_string() != "initial"))
        return {};
    boost::json::object out;
    out["type"] = *channel;
    auto const* data = o.if_contains("data");
    out["data"] = data ? *data : boost::json::value(nullptr);
    if (auto const* ts = o.if_contains("timestamp"))
        out["timestamp"] = *ts;
    return boost::json::serialize(out);
}

/// `connected` in the feed shape: `{"type":"connected","data":{"clientId","subscribedChannels"},
/// "timestamp"}`.
inline std::string feed_connected(std::string_view client_id, const feed_path& feed) {
    boost::json::object data;
    data["clientId"] = client_id;
    boost::json::array chans;
    for (auto const& c : feed.channels)
        chans.emplace_back(c);
    data["subscribedChannels"] = std::move(chans);
    boost::json::object o;
    o["type"] = "connected";
    o["data"] = std::move(data);
    o["timestamp"] = iso8601_now();
    return boost::json::serialize(o);
}

/// A frame's feed form, made by the first feed connection that sends it and shared by the
/// others; the frame itself when it is not a publication.
inline frame_ptr feed_twin(const frame_ptr& f) {
    if (f->seq == 0 || f->topic.empty())
        return f;
    if (auto t = f->feed.load(std::memory_order_acquire))
        return t;
    auto const text = feed_message_of(frame_payload(f->bytes));
    if (text.empty())
        return f;
    return share_twin(f, f->feed, make_frame(opcode::text, text));
}

} // namespace rtpush::detail

#endif
