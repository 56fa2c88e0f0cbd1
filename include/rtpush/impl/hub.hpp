#ifndef RTPUSH_IMPL_HUB_HPP
#define RTPUSH_IMPL_HUB_HPP

#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/io/shard.hpp>
#include <rtpush/detail/relay.hpp>

#include <boost/asio/post.hpp>
#include <rtpush/detail/random_hex.hpp>

#include <algorithm>
#include <cstdio>

namespace rtpush {

inline hub::hub(hub_config cfg)
    : cfg_(cfg)
    , epoch_(detail::random_hex(8)) {}

namespace detail {
// A publication's frame carries what the session's priority lanes need (see send_queue).
inline frame_ptr publication_frame(std::string bytes, const publication& p, const std::string& key,
                                   int slot, bool timed, std::uint64_t seq,
                                   frame_ptr redelivery = nullptr) {
    auto f = std::make_shared<outbound_frame>();
    f->ack_id = p.ack_id;
    f->redelivery = std::move(redelivery);
    f->bytes = std::move(bytes);
    f->seq = seq;
    f->timed = timed;
    f->bulk = p.priority == priority::medium || p.priority == priority::low;
    f->topic = key;
    f->phase = slot;
    return f;
}
} // namespace detail

inline void hub::attach(std::vector<detail::shard*> shards) {
    // Each shard's index counts the demand for a channel as it adds and removes subscriptions.
    for (auto* sh : shards)
        sh->subscriptions().on_demand([this](const std::string& channel, int change) {
            if (change > 0)
                add_demand(channel);
            else
                remove_demand(channel);
        });
    std::lock_guard lock(mutex_);
    shards_ = std::move(shards);
}

inline void hub::fan_out(const topic& t, detail::frame_ptr frame, std::uint64_t counter,
                         std::shared_ptr<const detail::audience> to) {
    if (shards_.empty())
        return;
    // One allocation per publication, shared by the shards. Queuing under the mutex keeps
    // each shard's inbox in counter (and so per-topic seq) order (see shard::enqueue).
    auto d = std::make_shared<detail::delivery>();
    d->frame = std::move(frame);
    if (to)
        d->to = std::move(to);
    else
        d->keys = t.subscriber_keys();
    d->key_count = d->to ? 0 : t.scope.depth() + 1;
    d->counter = counter;
    for (detail::shard* s : shards_)
        s->enqueue(d);
}

inline hub::publish_result hub::publish(publication p, engine::publish_handler done) {
    std::string key = p.topic.key();
    return publish(std::move(p), std::move(done), std::move(key));
}

inline hub::publish_result hub::publish(publication p, engine::publish_handler done,
                                        std::string key) {
    publish_result r;
    if ((r.ec = validate(p.topic)))
        return r;
    if (!finite_numbers(p.data)) { // would serialise as `Infinity`: not JSON
        r.ec = error::invalid_message;
        return r;
    }
    if (p.event.empty())
        p.event = p.topic.channel + ":update";
    std::string ts = iso8601_now();
    if (engine_) {
        r.ec = engine_->publish(p, ts, std::move(done));
        r.pending = !r.ec;
        return r;
    }
    std::lock_guard lock(mutex_);
    auto& st = topics_[key];
    r.seq = ++st.seq;
    commit(st, std::move(p), r.seq, std::move(ts), key);
    return r;
}

template <class Text>
detail::frame_ptr hub::delivery_frame(const publication& p, const std::string& key,
                                      std::uint64_t seq, Text text) {
    // Serialise and frame once; every subscriber gets a reference to these bytes. A
    // publication that must be acked also gets its re-send form (`redelivered`), built once:
    // every re-send to every client shares it.
    detail::frame_ptr redelivery;
    if (!p.ack_id.empty())
        redelivery = detail::publication_frame(detail::make_frame(detail::opcode::text, text(true)),
                                               p, key, phase_slot(p.phase), false, seq);
    return detail::publication_frame(detail::make_frame(detail::opcode::text, text(false)), p, key,
                                     phase_slot(p.phase), true, seq, std::move(redelivery));
}

inline void hub::commit(topic_state& st, publication p, std::uint64_t seq, std::string ts,
                        const std::string& key) {
    auto frame = delivery_frame(p, key, seq, [&](bool redelivered) {
        return message::publication("update", p, seq, epoch_, ts, redelivered, key);
    });
    ++total_;
    ++by_event_[p.event];
    std::uint64_t const counter = ++counter_;
    if (cfg_.history_size > 0) {
        auto const now = std::chrono::steady_clock::now();
        st.history_bytes += frame->bytes.size();
        st.history.push_back({seq, counter, now, frame});
        prune(st, now);
    }
    fan_out(p.topic, std::move(frame), counter);
    auto& slot = st.phases[phase_slot(p.phase)];
    if (!slot)
        slot = std::make_unique<retained>();
    slot->seq = seq;
    slot->timestamp = std::move(ts);
    slot->initial.reset();
    slot->pub = std::move(p);
    slot->pub.ack_id.clear(); // an `initial` is a snapshot, not a delivery to be acked
}

inline bool hub::apply(publication p, std::uint64_t seq, std::string timestamp) {
    if (validate(p.topic))
        return false;
    if (p.event.empty())
        p.event = p.topic.channel + ":update";
    std::string const key = p.topic.key();
    std::optional<publication> watched;
    if (applied_ && p.topic.channel == applied_channel_)
        watched = p;
    {
        std::lock_guard lock(mutex_);
        auto& st = topics_[key];
        if (seq <= st.seq)
            return false;
        if (seq != st.seq + 1) {
            // The history must stay a run of consecutive seqs: what lies before the jump is
            // of no use to a recovery any more.
            st.history.clear();
            st.history_bytes = 0;
        }
        st.seq = seq;
        commit(st, std::move(p), seq, std::move(timestamp), key);
    }
    if (watched) // outside the lock: the watcher may publish
        applied_(*watched, seq);
    return true;
}

inline void hub::set_latest(publication p, std::uint64_t seq, std::string timestamp) {
    if (validate(p.topic))
        return;
    if (p.event.empty())
        p.event = p.topic.channel + ":update";
    std::string const key = p.topic.key();
    std::lock_guard lock(mutex_);
    auto& st = topics_[key];
    auto& slot = st.phases[phase_slot(p.phase)];
    if (slot && slot->seq >= seq)
        return;
    if (!slot)
        slot = std::make_unique<retained>();
    slot->seq = seq;
    slot->timestamp = std::move(timestamp);
    slot->initial.reset();
    slot->pub = std::move(p);
    if (seq > st.seq) { // a value newer than anything in history: the history is behind it
        st.seq = seq;
        st.history.clear();
        st.history_bytes = 0;
    }
}

inline std::uint64_t hub::head(std::string_view topic_key) const {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(topic_key);
    return it == topics_.end() ? 0 : it->second.seq;
}

inline void hub::reset(std::string epoch) {
    std::lock_guard lock(mutex_);
    topics_.clear();
    epoch_ = std::move(epoch);
}

inline void hub::notify(const topic& t, std::string json_text) {
    auto frame = detail::make_shared_frame(detail::make_frame(detail::opcode::text, json_text));
    std::lock_guard lock(mutex_);
    if (!shards_.empty()) // nothing to order without subscribers
        fan_out(t, std::move(frame), ++counter_);
}

inline boost::system::error_code hub::deliver_to(std::shared_ptr<const detail::audience> to,
                                                 publication p) {
    if (auto ec = validate(p.topic))
        return ec;
    if (!finite_numbers(p.data))
        return error::invalid_message;
    if (p.event.empty())
        p.event = p.topic.channel + ":update";
    std::string const ts = iso8601_now();
    // Every node's connections, this one's through the echo; client ids are a node's own, so
    // listed ones are this node's (docs/protocol.md, "Targeting connections").
    if (engine_ && engine_->relays() && to->who != detail::audience::kind::clients)
        return engine_->relay(detail::encode_relay_delivery(*to, p, ts));
    deliver_here(std::move(to), std::move(p), ts);
    return {};
}

inline void hub::deliver_here(std::shared_ptr<const detail::audience> to, publication p,
                              const std::string& ts) {
    std::string const key = p.topic.key();
    auto frame = delivery_frame(
        p, key, 0, [&](bool redelivered) { return message::targeted(p, ts, key, redelivered); });
    std::lock_guard lock(mutex_);
    ++total_;
    ++by_event_[p.event];
    fan_out(p.topic, std::move(frame), ++counter_, std::move(to));
}

inline void hub::announce(const topic& t, std::string json_text) {
    // Not kept: when the engine cannot take it now, the other nodes miss this notice and
    // this node's subscribers get it directly.
    if (engine_ && engine_->relays() &&
        !engine_->relay(detail::encode_relay_notice(t.key(), json_text)))
        return;
    notify(t, std::move(json_text));
}

inline void hub::relayed(std::string_view text) {
    auto r = detail::decode_relay(text);
    if (!r)
        return;
    if (r->what == detail::relayed::kind::delivery) {
        if (validate(r->pub.topic))
            return;
        deliver_here(std::move(r->to), std::move(r->pub), r->timestamp);
        return;
    }
    if (r->what == detail::relayed::kind::presence_query ||
        r->what == detail::relayed::kind::presence_answer) {
        if (presence_relay_)
            presence_relay_(std::move(*r));
        return;
    }
    boost::system::error_code ec;
    auto const t = parse_topic(r->topic_key, ec);
    if (!ec)
        notify(t, std::move(r->text));
}

inline void hub::prune(topic_state& st, std::chrono::steady_clock::time_point now) {
    // Oldest first, so the history stays a run of consecutive seqs ending at the head. An idle
    // topic is pruned when it is next published or recovered from.
    while (!st.history.empty() &&
           (st.history.size() > cfg_.history_size || st.history_bytes > cfg_.history_bytes ||
            now - st.history.front().at > cfg_.history_ttl)) {
        st.history_bytes -= st.history.front().update->bytes.size();
        st.history.pop_front();
    }
}

inline void hub::append_initial(const std::string& key, std::vector<detail::frame_ptr>& out) {
    // Keys with `key` as a string prefix are contiguous in the map, but not all of them are
    // narrower topics ("kpi:org:a1" sorts between "kpi:org:a" and "kpi:org:a:dept:d").
    for (auto it = topics_.lower_bound(key); it != topics_.end() && it->first.starts_with(key);
         ++it) {
        if (!key_within(it->first, key))
            continue;
        for (int i = 0; i < 3; ++i) {
            auto& slot = it->second.phases[i];
            if (!slot)
                continue;
            if (!slot->initial)
                slot->initial = detail::publication_frame(
                    detail::make_frame(detail::opcode::text,
                                       message::publication("initial", slot->pub, slot->seq, epoch_,
                                                            slot->timestamp, false, it->first)),
                    slot->pub, it->first, i, false, slot->seq);
            out.push_back(slot->initial);
        }
    }
}

inline std::uint64_t hub::initial_frames(const topic& sub, std::vector<detail::frame_ptr>& out) {
    std::string const key = sub.key();
    std::lock_guard lock(mutex_);
    append_initial(key, out);
    return counter_;
}

inline hub::subscribe_result hub::subscribe_frames(const topic& sub,
                                                   const detail::recover_position& pos,
                                                   std::vector<detail::frame_ptr>& out,
                                                   std::size_t max_frames, std::size_t max_bytes) {
    std::string const key = sub.key();
    subscribe_result r;
    std::lock_guard lock(mutex_);
    r.counter = counter_;
    if (pos.epoch != epoch_)
        r.recovery = detail::recovery_result::epoch_mismatch;
    else if (sub.channel == all_channel) // no history of its own: a fresh start
        r.recovery = detail::recovery_result::history_lost;
    // Every topic the subscription covers must be recoverable; otherwise the subscriber
    // gets a fresh snapshot of all of them (never a silent gap in one).
    std::vector<const history_entry*> replay;
    std::size_t total = 0;
    auto const now = std::chrono::steady_clock::now();
    for (auto it = topics_.lower_bound(key);
         r.recovered() && it != topics_.end() && it->first.starts_with(key); ++it) {
        if (!key_within(it->first, key))
            continue;
        auto& st = it->second;
        prune(st, now);
        std::uint64_t const offset = pos.offset_of(it->first, key);
        detail::stream_state const s{st.seq, st.history.empty() ? 0 : st.history.front().seq};
        r.recovery = detail::plan_topic(s, offset, total, std::min(cfg_.max_replay, max_frames));
        if (!r.recovered())
            break;
        // seqs in a topic's history are consecutive: the missed ones are its last entries
        std::size_t const missed = static_cast<std::size_t>(st.seq - offset);
        for (auto h = st.history.end() - static_cast<std::ptrdiff_t>(missed); h != st.history.end();
             ++h)
            replay.push_back(&*h);
    }
    if (!r.recovered()) {
        append_initial(key, out);
        return r;
    }
    std::size_t bytes = 0;
    for (auto const* h : replay)
        bytes += h->update->bytes.size();
    if (bytes > max_bytes) {
        r.recovery = detail::recovery_result::too_many;
        append_initial(key, out);
        return r;
    }
    std::sort(replay.begin(), replay.end(),
              [](auto const* a, auto const* b) { return a->counter < b->counter; });
    for (auto const* h : replay)
        out.push_back(h->update);
    return r;
}

inline std::size_t hub::history_size(const topic& t) const {
    std::lock_guard lock(mutex_);
    auto it = topics_.find(t.key());
    return it == topics_.end() ? 0 : it->second.history.size();
}

inline history_page hub::read_history(const history_query& q, boost::system::error_code& ec) const {
    history_page page;
    if (auto* e = get_engine(); e && e->history(q, page, ec))
        return page;
    if (ec)
        return page;
    return history(q);
}

inline bool hub::async_history(const history_query& q, rtpush::engine::history_handler done) const {
    auto* e = get_engine();
    return e && e->async_history(q, std::move(done));
}

inline history_page hub::history(const history_query& q) const {
    std::string const key = q.topic.key();
    auto const steady_now = std::chrono::steady_clock::now();
    auto const sys_now = std::chrono::system_clock::now();
    auto unix_ms = [&](std::chrono::steady_clock::time_point at) {
        auto const t = sys_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                     steady_now - at);
        return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    };
    struct hit {
        std::uint64_t counter;
        const std::string* key;
        const history_entry* entry;
    };
    std::vector<hit> hits;
    history_page page;
    std::lock_guard lock(mutex_);
    for (auto it = topics_.lower_bound(key); it != topics_.end() && it->first.starts_with(key);
         ++it) {
        if (!key_within(it->first, key))
            continue;
        for (auto const& h : it->second.history) {
            auto const c = static_cast<std::int64_t>(h.counter);
            if (q.cursor && (q.oldest_first ? c <= *q.cursor : c >= *q.cursor))
                continue;
            auto const ms = unix_ms(h.at);
            if ((q.since_ms && ms < *q.since_ms) || (q.until_ms && ms > *q.until_ms))
                continue;
            hits.push_back({h.counter, &it->first, &h});
        }
    }
    std::sort(hits.begin(), hits.end(), [&](const hit& a, const hit& b) {
        return q.oldest_first ? a.counter < b.counter : a.counter > b.counter;
    });
    if (hits.size() > q.limit)
        hits.resize(q.limit);
    for (auto const& h : hits) {
        // The frame is what subscribers got: its payload is the `update` message.
        auto const& bytes = h.entry->update->bytes;
        std::size_t const len =
            bytes.size() >= 2 ? static_cast<unsigned char>(bytes[1]) & 0x7fu : 0;
        std::size_t const header = len == 127 ? 10 : len == 126 ? 4 : 2;
        boost::system::error_code ec;
        auto v =
            boost::json::parse(std::string_view(bytes).substr(std::min(header, bytes.size())), ec);
        if (ec || !v.is_object())
            continue;
        auto& m = v.get_object();
        auto const t = parse_topic(*h.key, ec);
        boost::json::object o;
        o["topic"] = *h.key;
        o["channel"] = t.channel;
        o["scope"] = scope_to_json(t.scope);
        for (auto const* name : {"event", "phase", "seq", "epoch", "data", "timestamp"})
            if (auto* f = m.if_contains(name))
                o[name] = std::move(*f);
        page.items.push_back(std::move(o));
    }
    if (page.items.size() == q.limit && !hits.empty())
        page.next_cursor = static_cast<std::int64_t>(hits.back().counter);
    return page;
}

inline boost::json::array hub::snapshot(const topic& sub) const {
    std::string const key = sub.key();
    boost::json::array a;
    std::lock_guard lock(mutex_);
    // Keys with `key` as a string prefix are contiguous in the map, but not all of them are
    // narrower topics ("kpi:org:a1" sorts between "kpi:org:a" and "kpi:org:a:dept:d").
    for (auto it = topics_.lower_bound(key); it != topics_.end() && it->first.starts_with(key);
         ++it) {
        if (!key_within(it->first, key))
            continue;
        for (auto const& slot : it->second.phases) {
            if (!slot)
                continue;
            boost::json::object o;
            o["topic"] = it->first;
            o["channel"] = slot->pub.topic.channel;
            o["scope"] = scope_to_json(slot->pub.topic.scope);
            o["event"] = slot->pub.event;
            if (!slot->pub.phase.empty())
                o["phase"] = slot->pub.phase;
            o["seq"] = slot->seq;
            o["epoch"] = epoch_;
            o["data"] = slot->pub.data;
            o["timestamp"] = slot->timestamp;
            a.push_back(std::move(o));
        }
    }
    return a;
}

inline void hub::on_refresh(refresh_handler h) {
    std::lock_guard lock(mutex_);
    refresh_ = std::move(h);
}

inline void hub::on_refresh(std::string channel, refresh_handler h) {
    std::lock_guard lock(mutex_);
    if (h)
        channel_refresh_[std::move(channel)] = std::move(h);
    else
        channel_refresh_.erase(channel);
}

inline bool hub::request_refresh(const topic& t) {
    refresh_handler h;
    {
        std::lock_guard lock(mutex_);
        auto it = channel_refresh_.find(t.channel);
        h = it != channel_refresh_.end() ? it->second : refresh_;
    }
    if (!h)
        return false;
    h(t);
    return true;
}

inline std::size_t hub::demand(std::string_view channel) const {
    std::lock_guard lock(demand_mutex_);
    auto it = subscribers_.find(channel);
    return it == subscribers_.end() ? 0 : it->second;
}

inline void hub::add_demand(const std::string& channel) {
    std::size_t n;
    {
        std::lock_guard lock(demand_mutex_);
        n = ++subscribers_[channel];
    }
    if (n == 1)
        demand_changed(channel, n);
}

inline void hub::remove_demand(const std::string& channel) {
    std::size_t n;
    {
        std::lock_guard lock(demand_mutex_);
        auto it = subscribers_.find(channel);
        if (it == subscribers_.end())
            return;
        n = --it->second;
        if (n == 0)
            subscribers_.erase(it);
    }
    if (n == 0)
        demand_changed(channel, n);
}

inline void hub::demand_changed(const std::string& channel, std::size_t n) {
    // Copied out of the lock: a handler may read demand() or post elsewhere.
    std::vector<demand_handler> hs;
    {
        std::lock_guard lock(demand_mutex_);
        for (auto const& w : demand_watches_)
            if (w.channel == channel)
                hs.push_back(w.handler);
    }
    for (auto const& h : hs)
        h(n);
}

inline std::uint64_t hub::on_demand(std::string channel, demand_handler h) {
    std::lock_guard lock(demand_mutex_);
    demand_watches_.push_back({++next_watch_, std::move(channel), std::move(h)});
    return next_watch_;
}

inline void hub::remove_demand_handler(std::uint64_t id) {
    std::lock_guard lock(demand_mutex_);
    std::erase_if(demand_watches_, [id](const demand_watch& w) { return w.id == id; });
}

inline std::uint64_t hub::add_stats_provider(std::string key,
                                             std::function<boost::json::value()> f) {
    std::lock_guard lock(demand_mutex_);
    stats_providers_.push_back({++next_watch_, std::move(key), std::move(f)});
    return next_watch_;
}

inline void hub::remove_stats_provider(std::uint64_t id) {
    std::lock_guard lock(demand_mutex_);
    std::erase_if(stats_providers_, [id](const stats_provider& p) { return p.id == id; });
}

inline boost::json::object hub::extra_stats() const {
    std::vector<stats_provider> ps;
    {
        std::lock_guard lock(demand_mutex_);
        ps = stats_providers_;
    }
    boost::json::object o;
    for (auto const& p : ps)
        o[p.key] = p.f();
    return o;
}

inline hub::statistics hub::stats() const {
    std::lock_guard lock(mutex_);
    statistics s;
    s.total_messages = total_;
    s.messages_by_event.insert(by_event_.begin(), by_event_.end());
    s.topics = topics_.size();
    return s;
}

} // namespace rtpush

#endif
