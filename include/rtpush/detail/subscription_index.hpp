//
// rtpush: one io thread's subscriptions by key, the fan-out loop over them, and the demand
// they make. Free of I/O: the shard owns one and runs it on its thread.
//
#ifndef RTPUSH_DETAIL_SUBSCRIPTION_INDEX_HPP
#define RTPUSH_DETAIL_SUBSCRIPTION_INDEX_HPP

#include <rtpush/detail/send_queue.hpp>
#include <rtpush/topic.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rtpush::detail {

/// What the index fans out to (a WebSocket session, an SSE stream), seen through the one
/// call the hot path makes.
class subscriber {
public:
    /// Queues a shared frame for writing (called on the shard's thread).
    virtual void push(const frame_ptr& f) = 0;
    /// Starts writing what push() queued (called from the shard's flush).
    virtual void flush() = 0;
    std::uint64_t last_delivery = 0; ///< counter of the last delivery, to send each once

protected:
    ~subscriber() = default;
};

/// One subscription of one subscriber; the index keeps a pointer to it. `index` is its
/// position in the key's vector so that removal is O(1) (swap with the last and pop). Only
/// the key is stored: every idle subscriber holds one, and the topic (four strings) is parsed
/// back from it on the rare paths that need it.
struct subscription {
    std::string key;
    subscriber* owner = nullptr;
    std::uint64_t since = 0; ///< deliveries with counter <= since are already in `initial`
    std::size_t index = 0;

    /// The channel: the key up to its first ':'.
    std::string channel() const { return key.substr(0, key.find(':')); }
    /// The topic the key was made from (keys are topic::key() of a validated topic).
    rtpush::topic topic() const {
        boost::system::error_code ec;
        return parse_topic(key, ec);
    }
};

/// Subscriptions by key. add() and remove() also tell the demand handler (the hub's count
/// of subscriptions per channel, which data sources and engines follow), so one call makes
/// both registrations.
class subscription_index {
public:
    using map_type = std::unordered_map<std::string, std::vector<subscription*>>;
    /// Called with the channel and +1 or -1 (on the index's thread).
    using demand_handler = std::function<void(const std::string& channel, int change)>;

    void on_demand(demand_handler h) { demand_ = std::move(h); }

    void add(subscription& s) {
        auto& v = subs_[s.key];
        s.index = v.size();
        v.push_back(&s);
        if (of_all_channel(s.key))
            ++all_subs_;
        if (demand_)
            demand_(s.channel(), +1);
    }

    /// Removes `s` if it is indexed; false otherwise (then no demand changes).
    bool remove(subscription& s) {
        auto it = subs_.find(s.key);
        if (it == subs_.end())
            return false;
        auto& v = it->second;
        if (s.index >= v.size() || v[s.index] != &s)
            return false;
        v[s.index] = v.back();
        v[s.index]->index = s.index;
        v.pop_back();
        if (v.empty())
            subs_.erase(it);
        if (of_all_channel(s.key))
            --all_subs_;
        if (demand_)
            demand_(s.channel(), -1);
        return true;
    }

    /// `to` (a copy of `from` with another owner or address) takes `from`'s place: no demand
    /// change, as when a Socket.IO session moves from polling to WebSocket. False if `from`
    /// is not indexed.
    bool rebind(subscription& from, subscription& to) {
        auto it = subs_.find(from.key);
        if (it == subs_.end() || from.index >= it->second.size() || it->second[from.index] != &from)
            return false;
        it->second[from.index] = &to;
        to.index = from.index;
        return true;
    }

    /// Pushes `frame` once to every subscriber of one of `keys` (the publication's topic
    /// and its wider ones), and of the same scopes of the `all` channel. Skips what a
    /// subscriber's `initial` already held (since >= counter) and a second copy for a
    /// subscriber of both a scope and a narrower one. Returns the number of pushes.
    std::uint64_t deliver(const std::array<std::string, 4>& keys, int key_count,
                          std::uint64_t counter, const frame_ptr& frame) {
        std::uint64_t pushed = 0;
        for (int i = 0; i < key_count; ++i)
            pushed += deliver_key(keys[i], counter, frame);
        // The `all` keys are made only on a thread that has such subscribers (counted here,
        // on this thread: one added before this delivery is seen by it).
        if (all_subs_ && key_count > 0 && keys[0] != all_channel)
            for (int i = 0; i < key_count; ++i) {
                all_key_.assign(all_channel);
                all_key_.append(keys[i], keys[0].size());
                pushed += deliver_key(all_key_, counter, frame);
            }
        return pushed;
    }

    const map_type& entries() const noexcept { return subs_; }

private:
    static bool of_all_channel(std::string_view key) noexcept {
        return key.starts_with(all_channel) &&
               (key.size() == all_channel.size() || key[all_channel.size()] == ':');
    }

    std::uint64_t deliver_key(const std::string& key, std::uint64_t counter,
                              const frame_ptr& frame) {
        auto it = subs_.find(key);
        if (it == subs_.end())
            return 0;
        std::uint64_t pushed = 0;
        for (subscription* s : it->second) {
            subscriber* o = s->owner;
            if (s->since >= counter || o->last_delivery == counter)
                continue;
            o->last_delivery = counter;
            o->push(frame);
            ++pushed;
        }
        return pushed;
    }

    map_type subs_;
    demand_handler demand_;
    std::size_t all_subs_ = 0; ///< subscriptions to the `all` channel
    std::string all_key_;      ///< reused: an `all` key being looked up
};

} // namespace rtpush::detail

#endif
