// libFuzzer target: the protocol decoder (parse_client_message) and the recovery decisions
// that decoded input reaches; also the client's side, which parses what a server sends.
//
// Input: one client message as a text frame carries it. The same bytes, split at '\n', are
// also server messages fed to a client's stream_tracker.
// Properties: every failure is INVALID_MESSAGE or MESSAGE_TOO_LARGE with a reason, and the
// error answer (with the id) serialises to valid JSON; a decoded message has a valid topic
// whose key parses back to it, and every answer built from it is valid JSON that carries its
// data unchanged; the subscribe message a client builds from whatever a server sent is
// accepted by our own decoder, with the recovery position the tracker holds.
#include "check.hpp"

#include <rtpush/detail/history_query.hpp>
#include <rtpush/detail/recovery.hpp>
#include <rtpush/protocol.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

namespace d = rtpush::detail;

using rtpush_fuzz::same_json;

bool is_string(const boost::json::value& v, std::string_view s) {
    return v.is_string() && v.get_string() == s;
}

boost::json::object parse_object(std::string_view text) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(v.is_object());
    return std::move(v.as_object());
}

void check_message(const rtpush::client_message& m) {
    using T = rtpush::client_message_type;
    bool const has_topic = m.type == T::subscribe || m.type == T::unsubscribe || m.type == T::get ||
                           m.type == T::publish || m.type == T::history || m.type == T::presence ||
                           (m.type == T::refresh && !m.topic.channel.empty());
    if (!has_topic) {
        FUZZ_CHECK(m.topic == rtpush::topic{});
        auto const pong = parse_object(rtpush::message::pong(m.id));
        FUZZ_CHECK(is_string(pong.at("type"), "pong"));
        FUZZ_CHECK(m.id.is_null() ? !pong.contains("id") : same_json(pong.at("id"), m.id));
        return;
    }
    FUZZ_CHECK(!rtpush::validate(m.topic));
    boost::system::error_code ec;
    FUZZ_CHECK(rtpush::parse_topic(m.topic.key(), ec) == m.topic && !ec);
    auto const sub = parse_object(rtpush::message::subscribed(m.topic, m.id, true, "e"));
    FUZZ_CHECK(is_string(sub.at("topic"), m.topic.key()));
    parse_object(rtpush::message::unsubscribed(m.topic, m.id));
    parse_object(rtpush::message::refreshing(m.topic));
    parse_object(rtpush::message::published(m.topic, 7, m.id));
    if (m.type == T::history) {
        // The paging fields pass the route's rules or name the bad one; the page's answer is JSON.
        FUZZ_CHECK(m.data.is_object());
        rtpush::history_query q;
        if (auto e = d::parse_history_message(m.topic, m.data.get_object(), q)) {
            FUZZ_CHECK(!e->field.empty() && !e->message.empty());
        } else {
            FUZZ_CHECK(q.topic == m.topic);
            FUZZ_CHECK(q.limit >= 1 && q.limit <= d::max_history_limit);
            auto const page = d::history_json(q, {}, "e");
            FUZZ_CHECK(is_string(page.at("topic"), m.topic.key()));
        }
    }
    if (m.type == T::presence) {
        auto const pr = parse_object(rtpush::message::presence(m.topic, {}, m.id));
        FUZZ_CHECK(is_string(pr.at("topic"), m.topic.key()));
    }
    if (m.type == T::publish) {
        rtpush::publication p;
        p.topic = m.topic;
        p.event = m.event;
        p.phase = m.phase;
        p.data = m.data;
        FUZZ_CHECK(p.phase.empty() || p.phase == "kpis" || p.phase == "complete");
        auto const u = parse_object(rtpush::message::publication("update", p, 1, "e", "t"));
        FUZZ_CHECK(same_json(u.at("data"), m.data));
        FUZZ_CHECK(
            is_string(u.at("event"), m.event.empty() ? m.topic.channel + ":update" : m.event));
    }
    if (m.recover) {
        // what the server decides for it, against a stream that has seqs 50..100 in history
        std::size_t total = 0;
        d::stream_state const s{100, 50};
        for (auto const& [key, off] : m.recover->offsets) {
            FUZZ_CHECK(m.recover->offset_of(key, "") == off || key.empty());
            auto const r = d::plan_topic(s, off, total, 1000);
            FUZZ_CHECK(r != d::recovery_result::recovered || (off >= 49 && off <= 100));
            FUZZ_CHECK(total <= 1000);
        }
        auto const r = d::plan_topic(s, m.recover->offset, total, 1000);
        FUZZ_CHECK(r != d::recovery_result::offset_ahead || m.recover->offset > 100);
    }
}

// A client parses server messages into its stream_tracker, then resubscribes from it.
void check_tracker(std::string_view text, const rtpush::topic& sub) {
    d::stream_tracker tracker;
    while (!text.empty()) {
        auto const nl = text.find('\n');
        boost::system::error_code ec;
        auto const v = boost::json::parse(text.substr(0, nl), ec);
        if (!ec && v.is_object())
            tracker.accept(v.as_object());
        text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    }
    std::string const msg = tracker.subscribe_message(sub, "r1");
    boost::system::error_code ec;
    std::string why;
    auto const m = rtpush::parse_client_message(msg, {}, ec, why);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(m.type == rtpush::client_message_type::subscribe);
    FUZZ_CHECK(m.topic == sub);
    FUZZ_CHECK(is_string(m.id, "r1"));
    auto const pos = tracker.position(sub.key());
    FUZZ_CHECK(m.recover.has_value() == pos.has_value());
    if (pos) {
        FUZZ_CHECK(m.recover->epoch == pos->epoch);
        FUZZ_CHECK(m.recover->offset == pos->offset);
        FUZZ_CHECK(m.recover->offsets == pos->offsets);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view const text(reinterpret_cast<const char*>(data), size);
    // A small size limit, so that the fuzzer reaches it too; the server's depth limit.
    rtpush::parse_limits const limits{16 * 1024, 32};
    boost::system::error_code ec;
    std::string why;
    auto const m = rtpush::parse_client_message(text, limits, ec, why);
    if (ec) {
        FUZZ_CHECK(ec == rtpush::error::invalid_message || ec == rtpush::error::message_too_large);
        FUZZ_CHECK(ec != rtpush::error::message_too_large || size > limits.max_size);
        FUZZ_CHECK(!why.empty());
        FUZZ_CHECK(m.id.is_null() || m.id.is_string() || m.id.is_number());
        auto const e =
            parse_object(rtpush::message::error(static_cast<rtpush::error>(ec.value()), why, m.id));
        FUZZ_CHECK(is_string(e.at("message"), why));
    } else {
        FUZZ_CHECK(why.empty());
        FUZZ_CHECK(rtpush::finite_numbers(m.data) && rtpush::finite_numbers(m.id));
        check_message(m);
    }
    rtpush::topic sub{"kpi", {"acme", "", ""}};
    if (!ec && !m.topic.channel.empty())
        sub = m.topic;
    check_tracker(text, sub);
    return 0;
}
