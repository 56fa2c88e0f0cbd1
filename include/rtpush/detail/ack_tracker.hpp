//
// rtpush: acknowledged delivery bookkeeping (seed 001's `requires_ack`), free of I/O.
//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_DETAIL_ACK_TRACKER_HPP
#define RTPUSH_DETAIL_ACK_TRACKER_HPP

#include <rtpush/config.hpp>
#include <rtpush/detail/frame.hpp>
#include <rtpush/detail/send_queue.hpp>
#include <rtpush/engine.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace rtpush {

namespace detail {

/// The ack keys of clients known only by their connection (client_protocol::ack_key): such
/// a client never comes back, so a restart need not keep where it stands.
inline constexpr std::string_view connection_ack_prefix = "conn:";

/// Which broadcasts each client was sent, which it acked, and when to send the rest again.
/// Clients are named by a key the session chooses (client id, user id or connection); a
/// client is reachable through the (shard, session) it is attached to, or offline. Plain
/// data, no clock of its own and no locking: the caller passes `now` and serialises calls
/// (ack_registry). With a journal (the durable store), every change that a restart must
/// find is handed to it as it happens, and restore() takes it back.
class ack_tracker {
public:
    using clock = std::chrono::steady_clock;

    enum class ack_result {
        acked,        ///< counted
        duplicate,    ///< already acked (a re-send crossed the ack): nothing to do
        unknown_id,   ///< never issued, or forgotten (ttl, max_broadcasts)
        not_targeted, ///< a known broadcast that was never sent to this client
    };

    struct status {
        std::string id;
        std::string topic;
        clock::time_point created;
        std::size_t targeted = 0; ///< clients it was sent to
        std::size_t acked = 0;
        std::size_t given_up = 0;           ///< un-acked after max_attempts (or evicted)
        std::vector<std::string> not_acked; ///< every targeted client without an ack, sorted
    };

    struct resend {
        std::uint64_t session = 0;
        frame_ptr frame;
    };

    explicit ack_tracker(ack_config cfg = {}, std::string id_prefix = {})
        : cfg_(cfg)
        , prefix_(std::move(id_prefix)) {
        if (cfg_.max_attempts == 0)
            cfg_.max_attempts = 1;
        if (cfg_.max_broadcasts == 0)
            cfg_.max_broadcasts = 1;
        if (cfg_.max_pending_per_client == 0)
            cfg_.max_pending_per_client = 1;
        if (cfg_.max_tracked == 0)
            cfg_.max_tracked = 1;
    }

    const ack_config& config() const noexcept { return cfg_; }

    /// From now on every broadcast, its re-send message and each client's standing are kept
    /// in `store` (engine::save_ack ...); nullptr: memory only.
    void journal(engine* store) noexcept { journal_ = store; }

    /// Takes back what an earlier run kept (engine::saved_acks, oldest first): the
    /// broadcasts, with their age, and each client's standing. Clients are offline until they
    /// identify themselves again (attach), which sends them what they have not acked. Then
    /// this run's limits apply (max_broadcasts, max_tracked, ttl, max_pending_per_client);
    /// what they drop leaves the journal too.
    void restore(std::vector<ack_record> saved, clock::time_point now) {
        auto const now_ms = unix_ms_now();
        for (auto& a : saved) {
            if (records_.find(a.id) != records_.end())
                continue;
            auto& r = records_[a.id];
            r.topic = std::move(a.topic);
            r.created_ms = a.created_ms;
            r.created =
                now - std::chrono::milliseconds(std::max<std::int64_t>(0, now_ms - a.created_ms));
            if (!a.message.empty()) {
                auto f = std::make_shared<outbound_frame>();
                f->bytes = make_frame(opcode::text, a.message);
                f->ack_id = a.id;
                f->topic = r.topic;
                f->phase = a.phase;
                f->bulk = a.bulk;
                f->seq = a.seq;
                r.frame = std::move(f);
            }
            for (auto& [client, state] : a.targets) {
                auto& t = r.targets[client];
                t.attempts = 1;
                if (state == ack_state::acked) {
                    t.acked = true;
                    ++r.acked;
                } else if (state == ack_state::given_up) {
                    t.given_up = true;
                    ++r.given_up;
                } else {
                    clients_[client].pending.push_back(a.id);
                }
                ++tracked_;
            }
            order_.push_back(a.id);
        }
        while ((records_.size() > cfg_.max_broadcasts || tracked_ > cfg_.max_tracked) &&
               !order_.empty())
            forget(order_.front());
        expire(now);
        for (auto& [key, c] : clients_)
            bound_pending(key, c);
    }

    /// A new broadcast on `topic`: its id (unique for this tracker's prefix). Beyond
    /// max_broadcasts the oldest one is forgotten.
    std::string create(std::string topic, clock::time_point now) {
        std::string id = prefix_ + std::to_string(++next_);
        while (records_.size() >= cfg_.max_broadcasts && !order_.empty())
            forget(order_.front());
        auto& r = records_[id];
        r.topic = std::move(topic);
        r.created = now;
        order_.push_back(id);
        keep(id, r);
        return id;
    }

    /// A broadcast created elsewhere (another node of a cluster, which published it through
    /// the engine): tracked here under its own id, for the clients of this node. True when
    /// it was not known yet.
    bool adopt(std::string_view id, std::string topic, clock::time_point now) {
        if (records_.find(id) != records_.end())
            return false;
        while (records_.size() >= cfg_.max_broadcasts && !order_.empty())
            forget(order_.front());
        std::string key(id);
        auto& r = records_[key];
        r.topic = std::move(topic);
        r.created = now;
        keep(key, r);
        order_.push_back(std::move(key));
        return true;
    }

    /// Drops a broadcast that was never published (e.g. its topic was refused).
    void cancel(std::string_view id) {
        if (records_.find(id) != records_.end())
            forget(std::string(id));
    }

    /// `client` was sent broadcast `id` (live, or in a recovery replay): from now on it is
    /// targeted and re-sent `frame` until it acks. A client already targeted is left as it
    /// is (a re-send passes here too). False when the id is unknown, or when max_tracked
    /// pairs are tracked and only this broadcast is left to forget.
    bool delivered(std::string_view id, const std::string& client, const frame_ptr& frame,
                   clock::time_point now) {
        auto it = records_.find(id);
        if (it == records_.end())
            return false;
        auto& r = it->second;
        if (!r.frame) {
            r.frame = frame;
            keep(it->first, r);
        }
        if (r.targets.find(client) != r.targets.end())
            return true;
        while (tracked_ >= cfg_.max_tracked && !order_.empty() && order_.front() != it->first)
            forget(order_.front()); // `it` stays valid: a std::map
        if (tracked_ >= cfg_.max_tracked)
            return false;
        auto t = r.targets.try_emplace(client).first;
        ++tracked_;
        t->second.attempts = 1;
        t->second.next = now + delay(1);
        keep(it->first, client, ack_state::waiting);
        auto& c = clients_[client];
        c.pending.push_back(it->first);
        bound_pending(client, c);
        return true;
    }

    ack_result ack(std::string_view id, const std::string& client) {
        auto it = records_.find(id);
        if (it == records_.end())
            return ack_result::unknown_id;
        auto& r = it->second;
        auto t = r.targets.find(client);
        if (t == r.targets.end())
            return ack_result::not_targeted;
        if (t->second.acked)
            return ack_result::duplicate;
        if (t->second.given_up)
            --r.given_up;
        t->second.acked = true;
        ++r.acked;
        keep(it->first, client, ack_state::acked);
        drop_pending(client, it->first);
        return ack_result::acked;
    }

    /// `client` is now reachable on `session` of `shard` (it identified itself, or got its
    /// first broadcast). Returns the frames of everything it has not acked, to send now: a
    /// reconnected client gets what it missed while it was away.
    /// With `create` false, a client the tracker does not know is left unknown (a session
    /// that identifies itself costs nothing until a broadcast that needs an ack reaches it).
    std::vector<frame_ptr> attach(const std::string& client, std::size_t shard,
                                  std::uint64_t session, clock::time_point now,
                                  bool create = true) {
        std::vector<frame_ptr> out;
        auto found = clients_.find(client);
        if (found == clients_.end()) {
            if (!create)
                return out;
            found = clients_.emplace(client, client_state{}).first;
        }
        auto& c = found->second;
        bool const moved = !c.online || c.session != session;
        c.online = true;
        c.shard = shard;
        c.session = session;
        if (!moved)
            return out;
        for (auto const& id : c.pending) {
            auto it = records_.find(id);
            if (it == records_.end() || !it->second.frame)
                continue;
            auto& t = it->second.targets[client];
            ++t.attempts;
            t.next = now + delay(t.attempts);
            out.push_back(it->second.frame);
        }
        return out;
    }

    /// Whether the tracker holds anything for `client` (it is attached, or owes acks).
    bool known(const std::string& client) const { return clients_.count(client) > 0; }

    /// `session` is gone; if it was the one `client` was reachable on, the client is offline
    /// and its pending broadcasts wait for it to come back.
    void detach(const std::string& client, std::uint64_t session) {
        auto it = clients_.find(client);
        if (it == clients_.end() || !it->second.online || it->second.session != session)
            return;
        it->second.online = false;
        if (it->second.pending.empty())
            clients_.erase(it);
    }

    /// The re-sends due now to clients attached to `shard`, each rescheduled with backoff;
    /// a client past max_attempts is given up. Forgets broadcasts past their ttl first.
    std::vector<resend> due(std::size_t shard, clock::time_point now) {
        expire(now);
        std::vector<resend> out;
        for (auto& [key, c] : clients_) {
            if (!c.online || c.shard != shard)
                continue;
            for (auto p = c.pending.begin(); p != c.pending.end();) {
                auto it = records_.find(*p);
                if (it == records_.end()) {
                    p = c.pending.erase(p);
                    continue;
                }
                auto& t = it->second.targets[key];
                if (t.next > now || !it->second.frame) {
                    ++p;
                    continue;
                }
                if (t.attempts >= cfg_.max_attempts) {
                    give_up(it->first, it->second, key);
                    p = c.pending.erase(p);
                    continue;
                }
                ++t.attempts;
                t.next = now + delay(t.attempts);
                out.push_back({c.session, it->second.frame});
                ++p;
            }
        }
        return out;
    }

    /// Forgets broadcasts older than the ttl.
    void expire(clock::time_point now) {
        while (!order_.empty()) {
            auto it = records_.find(order_.front());
            if (it != records_.end() && now - it->second.created < cfg_.ttl)
                break;
            forget(order_.front());
        }
    }

    std::optional<status> lookup(std::string_view id) const {
        auto it = records_.find(id);
        if (it == records_.end())
            return std::nullopt;
        auto const& r = it->second;
        status s;
        s.id = it->first;
        s.topic = r.topic;
        s.created = r.created;
        s.targeted = r.targets.size();
        s.acked = r.acked;
        s.given_up = r.given_up;
        for (auto const& [k, t] : r.targets)
            if (!t.acked)
                s.not_acked.push_back(k); // a std::map: already sorted
        return s;
    }

    /// Broadcasts remembered, and (client, broadcast) pairs awaiting an ack.
    std::size_t broadcasts() const noexcept { return records_.size(); }
    /// (client, broadcast) pairs held, acked or not (bounded by max_tracked).
    std::size_t tracked() const noexcept { return tracked_; }
    std::size_t pending() const noexcept {
        std::size_t n = 0;
        for (auto const& [k, c] : clients_)
            n += c.pending.size();
        return n;
    }
    /// Un-acked broadcasts of one client that are still being re-sent.
    std::size_t pending(const std::string& client) const {
        auto it = clients_.find(client);
        return it == clients_.end() ? 0 : it->second.pending.size();
    }

    /// The wait before delivery number `attempt` + 1.
    clock::duration delay(unsigned attempt) const {
        double ms = static_cast<double>(cfg_.resend_after.count());
        for (unsigned i = 1; i < attempt && ms < static_cast<double>(cfg_.max_resend_delay.count());
             ++i)
            ms *= cfg_.factor;
        ms = std::min(ms, static_cast<double>(cfg_.max_resend_delay.count()));
        return std::chrono::duration_cast<clock::duration>(
            std::chrono::duration<double, std::milli>(ms));
    }

private:
    struct target {
        unsigned attempts = 0;
        bool acked = false;
        bool given_up = false;
        clock::time_point next{};
    };
    struct record {
        std::string topic;
        clock::time_point created{};
        std::int64_t created_ms = 0; // the same in Unix time: what a restart counts the ttl from
        frame_ptr frame;             // what a re-send sends (the `redelivered` form)
        std::map<std::string, target, std::less<>> targets;
        std::size_t acked = 0;
        std::size_t given_up = 0;
    };
    struct client_state {
        bool online = false;
        std::size_t shard = 0;
        std::uint64_t session = 0;
        std::deque<std::string> pending; // broadcast ids without an ack, oldest first
    };

    // Bounded memory for a client that never acks: beyond max_pending_per_client its oldest
    // is given up.
    void bound_pending(const std::string& client, client_state& c) {
        while (c.pending.size() > cfg_.max_pending_per_client) {
            if (auto old = records_.find(c.pending.front()); old != records_.end())
                give_up(old->first, old->second, client);
            c.pending.pop_front();
        }
    }

    void give_up(const std::string& id, record& r, const std::string& client) {
        auto t = r.targets.find(client);
        if (t == r.targets.end() || t->second.acked || t->second.given_up)
            return;
        t->second.given_up = true;
        ++r.given_up;
        keep(id, client, ack_state::given_up);
    }

    // The journal's side of each change (see journal()).
    void keep(const std::string& id, record& r) {
        if (!journal_)
            return;
        if (r.created_ms == 0)
            r.created_ms = unix_ms_now();
        ack_record a;
        a.id = id;
        a.topic = r.topic;
        a.created_ms = r.created_ms;
        if (r.frame) {
            a.message = std::string(frame_payload(r.frame->bytes));
            a.phase = r.frame->phase;
            a.bulk = r.frame->bulk;
            a.seq = r.frame->seq;
        }
        journal_->save_ack(a);
    }
    void keep(const std::string& id, const std::string& client, ack_state state) {
        if (journal_ && !client.starts_with(connection_ack_prefix))
            journal_->save_ack_target(id, client, state);
    }

    void drop_pending(const std::string& client, const std::string& id) {
        auto c = clients_.find(client);
        if (c == clients_.end())
            return;
        auto& p = c->second.pending;
        p.erase(std::remove(p.begin(), p.end(), id), p.end());
        if (p.empty() && !c->second.online)
            clients_.erase(c);
    }

    void forget(std::string id) {
        auto it = records_.find(id);
        if (it != records_.end()) {
            for (auto const& [k, t] : it->second.targets)
                if (!t.acked && !t.given_up)
                    drop_pending(k, id);
            tracked_ -= it->second.targets.size();
            records_.erase(it);
            if (journal_)
                journal_->forget_ack(id);
        }
        if (!order_.empty() && order_.front() == id)
            order_.pop_front();
        else
            order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
    }

    ack_config cfg_;
    std::string prefix_;
    std::uint64_t next_ = 0;
    std::size_t tracked_ = 0; // targets over all records
    std::map<std::string, record, std::less<>> records_;
    std::deque<std::string> order_; // ids, oldest first
    std::unordered_map<std::string, client_state> clients_;
    engine* journal_ = nullptr;
};

/// The tracker shared by every shard of a server, behind one mutex. Only publications with
/// `requires_ack` and acks pass here: the plain fan-out never takes this lock.
struct ack_registry {
    explicit ack_registry(ack_config cfg = {}, std::string prefix = {})
        : tracker(cfg, std::move(prefix)) {}

    /// The id of a new broadcast to `topic_key` that must be acked.
    std::string create(std::string topic_key) {
        std::lock_guard lock(mutex);
        return tracker.create(std::move(topic_key), std::chrono::steady_clock::now());
    }
    /// Forgets a broadcast whose publication failed; an empty id (no ack wanted) is a no-op.
    void cancel(std::string_view id) {
        if (id.empty())
            return;
        std::lock_guard lock(mutex);
        tracker.cancel(id);
    }

    std::mutex mutex;
    ack_tracker tracker;
};

} // namespace detail
} // namespace rtpush

#endif
