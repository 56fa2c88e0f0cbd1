//
// "seed 000" to "seed 004" name the back ends rtpush replaces: docs/protocol.md, "Seed
// parity", lists what each does and what rtd answers for it.
//
#ifndef RTPUSH_IMPL_CLIENT_PROTOCOL_HPP
#define RTPUSH_IMPL_CLIENT_PROTOCOL_HPP

namespace rtpush::detail {

template <class Self>
void client_protocol<Self>::handle_text(std::string_view text) {
    boost::system::error_code ec;
    std::string detail;
    parse_limits const limits{env().cfg.max_message_size, env().cfg.max_json_depth};
    client_message m = parse_client_message(text, limits, ec, detail);
    if (!ec)
        return handle_message(m);
    if (ec != error::message_too_large && handle_seed_line(text))
        return;
    self().send_error(static_cast<rtpush::error>(ec.value()), detail, m.id);
}

template <class Self>
void client_protocol<Self>::handle_object(const boost::json::object& o) {
    handle_text(boost::json::serialize(o));
}

template <class Self>
bool client_protocol<Self>::handle_seed_line(std::string_view text) {
    // Only what failed rtpush's parse gets here: a seed's line costs a second parse, an
    // rtpush message none (docs/protocol.md, "Seed parity").
    boost::json::parse_options opt;
    opt.max_depth = env().cfg.max_json_depth;
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec, {}, opt);
    if (ec || !v.is_object() || v.get_object().contains("type"))
        return false;
    auto const& o = v.get_object();
    auto const* name = o.if_contains("event");
    if (!name || !name->is_string())
        return false;
    auto const* data = o.if_contains("data");
    auto ev = read_seed_event(name->get_string(), data ? *data : boost::json::value());
    switch (ev.kind) {
    case seed_event_kind::client_ping: {
        boost::json::object pong{{"event", "client:pong"},
                                 {"data", {{"timestamp", iso8601_now()}}}};
        self().send_json(boost::json::serialize(pong));
        break;
    }
    case seed_event_kind::refused:
        self().send_error(error::invalid_message, ev.why, {});
        break;
    case seed_event_kind::metrics_get: // as a JSON line: rtpush's `snapshot` answer
    case seed_event_kind::messages:
        for (auto const& m : ev.messages)
            handle_object(m);
        break;
    }
    return true;
}

template <class Self>
void client_protocol<Self>::handle_message(client_message& m) {
    if (env().cfg.auth_required && !st().authenticated &&
        m.type != client_message_type::authenticate && m.type != client_message_type::ping) {
        self().send_error(error::unauthorized, "authenticate first", m.id);
        return;
    }
    switch (m.type) {
    case client_message_type::ping:
        self().send_json(message::pong(m.id));
        break;
    case client_message_type::subscribe:
        subscribe(m);
        break;
    case client_message_type::unsubscribe:
        unsubscribe(m);
        break;
    case client_message_type::get:
        get(m);
        break;
    case client_message_type::history:
        history(m);
        break;
    case client_message_type::presence:
        presence(m);
        break;
    case client_message_type::publish:
        publish(m);
        break;
    case client_message_type::refresh:
        refresh(m);
        break;
    case client_message_type::authenticate:
        authenticate(m);
        break;
    case client_message_type::ack:
        ack(m);
        break;
    case client_message_type::hello:
        hello(m);
        break;
    }
}

template <class Self>
bool client_protocol<Self>::may_access(const topic& t, const boost::json::value& id) {
    auto const who = st().who();
    if (auto d = may_read(who, t)) {
        self().send_error(error::unauthorized,
                          denial_message(*d, who, t, "this client", "scope.org"), id);
        return false;
    }
    return true;
}

template <class Self>
void client_protocol<Self>::get(client_message& m) {
    if (!may_access(m.topic, m.id))
        return;
    boost::json::object o;
    o["type"] = "snapshot";
    o["channel"] = m.topic.channel;
    o["scope"] = scope_to_json(m.topic.scope);
    o["topic"] = m.topic.key();
    o["items"] = env().hub.snapshot(m.topic);
    if (!m.id.is_null())
        o["id"] = m.id;
    o["timestamp"] = iso8601_now();
    self().send_json(boost::json::serialize(o));
}

template <class Self>
void client_protocol<Self>::history(client_message& m) {
    history_query q;
    if (auto e = parse_history_message(m.topic, m.data.as_object(), q)) {
        self().send_error(error::invalid_message, e->message, m.id);
        return;
    }
    if (!may_access(q.topic, m.id))
        return;
    auto& hub = env().hub;
    // The page comes now, or (from the Redis streams) later from the engine's thread, back
    // through the poster, which finds the connection again (it may have gone meanwhile).
    // Either way over Socket.IO it goes in the ACK of the EVENT that asked (hold_answer).
    std::uint64_t const token = self().hold_answer();
    auto later = [back = self().poster(), q, id = m.id, token,
                  h = &hub](boost::system::error_code ec, history_page page) {
        back.post([=, page = std::move(page)](auto* s) mutable {
            if (s)
                s->send_answer(token, history_answer(q, id, ec, std::move(page), h->epoch()));
        });
    };
    if (hub.async_history(q, std::move(later)))
        return;
    boost::system::error_code ec;
    auto page = hub.read_history(q, ec);
    self().send_answer(token, history_answer(q, m.id, ec, std::move(page), hub.epoch()));
}

template <class Self>
void client_protocol<Self>::presence(client_message& m) {
    auto& e = env();
    if (!may_access(m.topic, m.id))
        return;
    if (!e.presence) {
        self().send_error(error::invalid_message, "presence is not available here", m.id);
        return;
    }
    // Gathered from every io thread (and node); the answer comes back through the poster,
    // which finds the connection again (it may have gone meanwhile). Over Socket.IO it is in
    // the ACK of the EVENT that asked (hold_answer).
    e.presence->async_members(e.shard, m.topic.key(),
                              [back = self().poster(), t = m.topic, id = m.id,
                               token = self().hold_answer()](boost::json::array members) {
                                  back.post([=, members = std::move(members)](auto* s) mutable {
                                      if (s)
                                          s->send_answer(
                                              token, message::presence(t, std::move(members), id));
                                  });
                              });
}

template <class Self>
void client_protocol<Self>::announce(std::string_view key, std::string_view what) {
    auto& e = env();
    auto const& channels = e.cfg.join_leave_channels;
    if (channels.empty()) [[likely]]
        return;
    boost::system::error_code ec;
    auto const t = parse_topic(key, ec);
    if (ec || std::none_of(channels.begin(), channels.end(),
                           [&](const std::string& c) { return c == "*" || c == t.channel; }))
        return;
    auto const& s = st();
    e.hub.announce(t, message::membership(what, t, self().client_id(), s.user(), s.org));
}

template <class Self>
void client_protocol<Self>::publish(client_message& m) {
    auto& e = env();
    if (!e.cfg.allow_client_publish && !st().can_publish) {
        self().send_error(error::unauthorized,
                          st().authenticated ? "this token does not allow publishing"
                                             : "publishing from clients is disabled on this server",
                          m.id);
        return;
    }
    if (!may_access(m.topic, m.id))
        return;
    publication p{m.topic, m.event, m.phase, priority::medium, std::move(m.data), {}};
    // The rules of a REST broadcast (detail/broadcast_request.hpp): seed 003's events carry
    // seed 003's payloads. Alerts have a lifecycle that only the server's routes drive
    // (docs/protocol.md, "Seed parity").
    std::string const kind = ingest_validator::kind_of_event(p.event);
    if (kind == "alert") {
        self().send_error(error::invalid_message,
                          "alerts are raised through the alert lifecycle (POST "
                          "/api/broadcast/alert), not published by clients",
                          m.id);
        return;
    }
    bool alert_update = false;
    if (auto f = apply_ingest_rules(p, kind, alert_update, e.cfg.ingest)) {
        auto const& err = f->error;
        self().send_error(error::invalid_message,
                          err.field.empty() ? err.message : err.field + ": " + err.message, m.id);
        return;
    }
    if (m.requires_ack && e.acks)
        p.ack_id = e.acks->create(m.topic.key());
    std::string const ack_id = p.ack_id;
    // With an engine the answer waits for the cluster's seq (or the error that lost the
    // publication): `published` means Redis has it. Back on the connection's thread, if
    // the connection is still there.
    // Over Socket.IO, the later answer goes in the ACK of the EVENT that asked (hold_answer).
    std::uint64_t const token = e.hub.get_engine() ? self().hold_answer() : 0;
    auto answer = [back = self().poster(), acks = e.acks, t = p.topic, mid = m.id, ack_id,
                   token](boost::system::error_code ec, std::uint64_t seq) {
        back.post([acks, t, mid, ack_id, ec, seq, token](auto* s) {
            if (ec && acks)
                acks->cancel(ack_id);
            if (!s)
                return;
            if (ec)
                s->send_answer(token, message::error(error::engine_unavailable,
                                                     "the publication may not have been taken: " +
                                                         ec.message(),
                                                     mid));
            else
                s->send_answer(token, message::published(t, seq, mid, ack_id));
        });
    };
    topic const t = p.topic;
    auto r = e.hub.publish(std::move(p), std::move(answer));
    if (r.ec) {
        if (e.acks)
            e.acks->cancel(ack_id);
        auto const code =
            r.ec == error::engine_unavailable ? error::engine_unavailable : error::invalid_message;
        if (token) // the held answer, refused at once
            self().send_answer(token, message::error(code, r.ec.message(), m.id));
        else
            self().send_error(code, r.ec.message(), m.id);
    } else if (!r.pending) {
        self().send_answer(token, message::published(t, r.seq, m.id, ack_id));
    }
}

template <class Self>
void client_protocol<Self>::refresh(client_message& m) {
    auto& e = env();
    auto const now = std::chrono::steady_clock::now();
    auto const last_refresh =
        st().rare ? st().rare->last_refresh : std::chrono::steady_clock::time_point{};
    if (last_refresh != std::chrono::steady_clock::time_point{} &&
        now - last_refresh < e.cfg.refresh_min_interval) {
        auto const left = e.cfg.refresh_min_interval - (now - last_refresh);
        double const secs = std::ceil(std::chrono::duration<double>(left).count());
        self().send_json(message::rate_limit(secs, m.id));
        return;
    }
    st().rare_part().last_refresh = now;
    // A bare refresh (seed 000) refreshes everything this client is subscribed to
    // (docs/protocol.md, "Seed parity").
    std::vector<topic> targets;
    if (!m.topic.channel.empty())
        targets.push_back(m.topic);
    else
        st().for_each_subscription([&](const subscription& s) { targets.push_back(s.topic()); });
    if (!m.topic.channel.empty() && !may_access(m.topic, m.id))
        return;
    bool any = false;
    for (auto const& t : targets) {
        e.hub.notify(t, message::refreshing(t));
        any = e.hub.request_refresh(t) || any;
    }
    if (!any && !targets.empty())
        self().send_error(error::room_not_found, "no data source refreshes this channel", m.id);
}

template <class Self>
std::string client_protocol<Self>::ack_key() {
    auto const& s = st();
    if (s.rare && !s.rare->ack_client_tag.empty())
        return "client:" + s.rare->ack_client_tag;
    if (s.rare && !s.rare->user.empty())
        return "user:" + s.org + "/" + s.rare->user;
    return std::string(connection_ack_prefix) + self().client_id();
}

template <class Self>
void client_protocol<Self>::track_ack(const frame_ptr& f) {
    auto& e = env();
    if (!e.acks)
        return;
    auto const now = std::chrono::steady_clock::now();
    std::vector<frame_ptr> missed;
    {
        std::lock_guard lock(e.acks->mutex);
        auto& t = e.acks->tracker;
        std::string key = ack_key();
        auto& a = st().rare_part();
        if (!a.ack_key.empty() && key != a.ack_key)
            t.detach(a.ack_key, self().id());
        missed = t.attach(key, e.shard, self().id(), now); // nothing when already attached
        a.ack_key = std::move(key);
        // Through an engine, a broadcast may come from another node: this node tracks its
        // own clients' acks of it (its report, GET /api/broadcast/{id}, covers them).
        if (e.hub.get_engine())
            t.adopt(f->ack_id, f->topic, now);
        t.delivered(f->ack_id, a.ack_key, f->redelivery ? f->redelivery : f, now);
    }
    for (auto const& m : missed)
        if (m->ack_id != f->ack_id)
            self().push(m);
}

template <class Self>
std::vector<frame_ptr> client_protocol<Self>::identify() {
    auto& e = env();
    std::vector<frame_ptr> missed;
    if (!e.acks)
        return missed;
    std::string key = ack_key();
    auto& s = st();
    if (s.rare && key == s.rare->ack_key)
        return missed;
    std::lock_guard lock(e.acks->mutex);
    auto& t = e.acks->tracker;
    if (s.rare && !s.rare->ack_key.empty())
        t.detach(s.rare->ack_key, self().id());
    // Unknown to the tracker: nothing is owed, and nothing is stored for this connection
    // (the first delivery that needs an ack attaches it).
    bool const known = t.known(key);
    missed = t.attach(key, e.shard, self().id(), std::chrono::steady_clock::now(), false);
    if (known)
        s.rare_part().ack_key = std::move(key);
    else if (s.rare)
        s.rare->ack_key.clear();
    return missed;
}

template <class Self>
void client_protocol<Self>::ack(client_message& m) {
    auto& e = env();
    if (!e.acks) {
        self().send_error(error::invalid_message, "acknowledged delivery is not enabled here",
                          m.id);
        return;
    }
    std::string const id =
        m.id.is_string() ? std::string(m.id.get_string()) : boost::json::serialize(m.id);
    std::string const key = ack_key();
    ack_tracker::ack_result r;
    {
        std::lock_guard lock(e.acks->mutex);
        r = e.acks->tracker.ack(id, key);
    }
    switch (r) {
    case ack_tracker::ack_result::acked:
    case ack_tracker::ack_result::duplicate: // a re-send crossed our ack: fine
        break;
    case ack_tracker::ack_result::unknown_id:
        self().send_error(error::invalid_message,
                          "unknown ack id '" + id +
                              "': no message with this ackId was sent (or it expired)",
                          m.id);
        break;
    case ack_tracker::ack_result::not_targeted:
        self().send_error(error::invalid_message,
                          "ack id '" + id + "' was not sent to this client (" + key + ")", m.id);
        break;
    }
}

template <class Self>
void client_protocol<Self>::hello(client_message& m) {
    auto& e = env();
    st().rare_part().ack_client_tag = m.client_id;
    auto missed = identify();
    std::size_t pending = 0;
    if (e.acks) {
        std::lock_guard lock(e.acks->mutex);
        pending = e.acks->tracker.pending(ack_key());
    }
    self().send_json(message::hello(m.client_id, pending, m.id));
    for (auto const& f : missed)
        self().push(f);
}

template <class Self>
void client_protocol<Self>::authenticate(client_message& m) {
    auto& e = env();
    auto& s = st();
    if (e.cfg.jwt_secret.empty()) {
        // Without a token secret, seed 001's identification is taken as given (docs/protocol.md,
        // "Seed parity").
        if (m.data.is_object()) {
            auto const& d = m.data.get_object();
            if (auto const* u = d.if_contains("user_id"); u && u->is_string())
                s.rare_part().user = std::string(u->get_string());
            if (auto const* o = d.if_contains("organization_id"); o && o->is_string())
                s.org = std::string(o->get_string());
        }
    } else {
        std::string_view token;
        if (m.data.is_object())
            if (auto const* t = m.data.get_object().if_contains("token"); t && t->is_string())
                token = t->get_string();
        jwt_claims c;
        std::string why;
        if (jwt_verifier(e.cfg.jwt_secret, e.cfg.jwt_leeway).verify(token, c, why)) {
            e.cfg.logger.log(
                log_level::info, "auth_failed",
                {{"client", self().client_id()}, {"remote", self().remote()}, {"reason", why}});
            self().send_error(error::auth_failed, why, m.id);
            if (e.cfg.max_auth_failures && ++s.rare_part().auth_failures >= e.cfg.max_auth_failures)
                self().close(1008, "too many failed authentications");
            return;
        }
        if (s.authenticated && c.org != s.org) {
            // Subscriptions made for one organization must not survive into another.
            self().send_error(error::auth_failed, "already authenticated for another organization",
                              m.id);
            return;
        }
        accept_claims(std::move(c));
    }
    if (!m.client_id.empty())
        s.rare_part().ack_client_tag = m.client_id;
    self().send_json(message::authenticated(s.user(), s.org, m.id));
    count_connection();
    for (auto const& f : identify())
        self().push(f);
}

template <class Self>
void client_protocol<Self>::count_connection() {
    // A connection counts against its organization from the moment the org is known (token,
    // ?org=, authenticate, first subscription), and against its user (the verified token's
    // `sub`) from its token; over a limit it is closed, not refused at the handshake, since
    // both are often learnt only after it.
    auto& e = env();
    auto& s = st();
    if (self().closing() || !e.quotas)
        return;
    std::string_view const user = s.authenticated ? std::string_view(s.user()) : "";
    if (!count_under(e.quotas->orgs, s.org, &client_state::rare_state::counted_org,
                     e.cfg.max_connections_per_org)) {
        e.counters.count_rejected(reject_reason::org_connection_limit);
        self().send_error(error::connection_limit,
                          "connection limit of " + std::to_string(e.cfg.max_connections_per_org) +
                              " for organization " + s.org + " reached",
                          {});
        self().close(1008, "organization connection limit reached");
        return;
    }
    if (!count_under(e.quotas->users, user, &client_state::rare_state::counted_user,
                     e.cfg.max_connections_per_user)) {
        e.counters.count_rejected(reject_reason::user_connection_limit);
        self().send_error(error::connection_limit,
                          "connection limit of " + std::to_string(e.cfg.max_connections_per_user) +
                              " for user " + std::string(user) + " reached",
                          {});
        self().close(1008, "user connection limit reached");
    }
}

template <class Self>
bool client_protocol<Self>::count_under(connection_counts& counts, std::string_view key,
                                        std::string client_state::rare_state::*counted,
                                        std::size_t limit) {
    auto& s = st();
    std::string_view const was = s.rare ? std::string_view(*s.rare.*counted) : "";
    if (key == was)
        return true;
    if (!was.empty()) {
        counts.remove(*s.rare.*counted);
        (*s.rare.*counted).clear();
    }
    if (key.empty())
        return true;
    std::string k(key);
    if (!counts.try_add(k, limit))
        return false;
    s.rare_part().*counted = std::move(k);
    return true;
}

template <class Self>
bool client_protocol<Self>::enter_room(const std::string& key) {
    auto& e = env();
    return !e.quotas || e.quotas->enter_room(key, e.cfg.room_max_size);
}

template <class Self>
void client_protocol<Self>::leave_room(const std::string& key) {
    auto& e = env();
    if (e.quotas)
        e.quotas->leave_room(key, e.cfg.room_max_size);
}

template <class Self>
void client_protocol<Self>::accept_claims(jwt_claims c) {
    auto& s = st();
    s.authenticated = true;
    auto& r = s.rare_part();
    r.user = std::move(c.user);
    s.org = std::move(c.org);
    r.channels = std::move(c.channels);
    s.can_publish = c.can_publish;
    r.token_exp = c.exp.value_or(0);
    r.expiry_warned = false;
}

template <class Self>
void client_protocol<Self>::check_token_expiry(std::int64_t now) {
    auto& s = st();
    if (!s.authenticated || !s.rare || self().closing())
        return;
    auto const& cfg = env().cfg;
    auto const due = token_expiry_at(s.rare->token_exp, cfg.jwt_leeway, cfg.token_expiry_warning,
                                     s.rare->expiry_warned, now);
    if (due.what == token_expiry::step::expire) {
        self().close(1008, "token expired");
    } else if (due.what == token_expiry::step::warn) {
        s.rare->expiry_warned = true;
        self().send_json(message::token_expiring(s.rare->token_exp, due.expires_in));
    }
}

template <class Self>
void client_protocol<Self>::subscribe(client_message& m) {
    auto& e = env();
    auto& s = st();
    if (!may_access(m.topic, m.id))
        return;
    // With a cross-node engine, this node may not hold the channel's state yet: the
    // subscription waits until it does (then its initial and recovery are the cluster's).
    auto retry = [back = self().poster(), m]() mutable {
        back.post([m](auto* s) mutable {
            if (s)
                s->subscribe(m);
        });
    };
    if (e.hub.get_engine() && !e.hub.prepare(m.topic.channel, std::move(retry)))
        return;
    std::string key = m.topic.key();
    subscription* const existing = s.find(key);
    if (!existing && s.subscription_count() >= e.cfg.max_subscriptions) {
        self().send_error(
            error::subscription_failed,
            "subscription limit of " + std::to_string(e.cfg.max_subscriptions) + " reached", m.id);
        return;
    }
    if (!existing && !enter_room(key)) {
        self().send_error(error::room_full, connection_quotas::room_full(key, e.cfg.room_max_size),
                          m.id);
        return;
    }
    // Snapshot (or replay) and registration happen together on this thread: deliveries
    // already posted to it with a counter <= since are inside the snapshot or replay and are
    // skipped, later ones are sent.
    std::vector<frame_ptr> frames;
    std::uint64_t since = 0;
    std::optional<bool> recovered;
    std::string_view reason;
    if (m.recover) {
        // A replay goes into the outbound queue at once: it may take half of what is free
        // there, or it would trip the overflow policy (and a reconnecting client would loop).
        auto const free_frames =
            e.cfg.queue_max_frames - std::min(self().queued(), e.cfg.queue_max_frames);
        auto const free_bytes =
            e.cfg.queue_max_bytes - std::min(self().queued_bytes(), e.cfg.queue_max_bytes);
        auto const r =
            e.hub.subscribe_frames(m.topic, *m.recover, frames, free_frames / 2, free_bytes / 2);
        since = r.counter;
        recovered = r.recovered();
        if (!r.recovered())
            reason = to_string(r.recovery);
    } else {
        since = e.hub.initial_frames(m.topic, frames);
    }
    self().send_json(message::subscribed(m.topic, m.id, recovered, e.hub.epoch(), reason));
    if (!existing) { // subscribing again is idempotent: answer again, send the values again
        // The first one is inline; it is used only while there is no other, so that the inline
        // one and then more_subs are always in the order of subscription.
        subscription* sub = nullptr;
        if (s.subscription_count() == 0) {
            s.first_sub_used = true;
            sub = &s.first_sub;
        } else {
            if (!s.more_subs)
                s.more_subs = std::make_unique<client_state::subscription_list>();
            s.more_subs->push_back(std::make_unique<subscription>());
            sub = s.more_subs->back().get();
        }
        sub->key = std::move(key);
        sub->owner = self().as_subscriber();
        sub->since = since;
        e.index.add(*sub);
        announce(sub->key, "join");
        if (s.org.empty() && !s.authenticated) {
            s.org = m.topic.scope.org;
            count_connection();
        }
    }
    for (auto& f : frames)
        self().push(f);
}

template <class Self>
void client_protocol<Self>::unsubscribe(client_message& m) {
    auto& s = st();
    std::string const key = m.topic.key();
    subscription* const sub = s.find(key);
    if (!sub) {
        self().send_error(error::room_not_found, "not subscribed to " + key, m.id);
        return;
    }
    env().index.remove(*sub);
    leave_room(key);
    announce(key, "leave");
    if (sub == &s.first_sub) {
        s.first_sub_used = false;
        s.first_sub = subscription{};
    } else {
        s.more_subs->erase(std::find_if(s.more_subs->begin(), s.more_subs->end(),
                                        [&](auto const& p) { return p.get() == sub; }));
    }
    self().send_json(message::unsubscribed(m.topic, m.id));
}

template <class Self>
void client_protocol<Self>::take_over(client_state& from) {
    auto& e = env();
    auto& s = st();
    s.org = std::move(from.org);
    s.rare = std::move(from.rare);
    s.authenticated = from.authenticated;
    s.can_publish = from.can_publish;
    // The first subscription is inline (its address changes); the others are blocks of
    // their own. The index points at the new places; the demand does not change.
    if (from.first_sub_used) {
        s.first_sub = from.first_sub;
        s.first_sub.owner = self().as_subscriber();
        e.index.rebind(from.first_sub, s.first_sub);
        s.first_sub_used = true;
    }
    if (from.more_subs) {
        for (auto const& sub : *from.more_subs)
            sub->owner = self().as_subscriber();
        s.more_subs = std::move(from.more_subs);
    }
    from = client_state{};
}

template <class Self>
void client_protocol<Self>::leave() {
    auto& e = env();
    auto& s = st();
    if (e.quotas) { // an empty key gives the counts back
        count_under(e.quotas->orgs, {}, &client_state::rare_state::counted_org, 0);
        count_under(e.quotas->users, {}, &client_state::rare_state::counted_user, 0);
    }
    s.for_each_subscription([&](subscription& sub) {
        e.index.remove(sub);
        leave_room(sub.key);
        announce(sub.key, "leave");
    });
    s.first_sub_used = false;
    s.more_subs.reset();
    if (s.rare && !s.rare->ack_key.empty() && e.acks) {
        std::lock_guard lock(e.acks->mutex);
        e.acks->tracker.detach(s.rare->ack_key, self().id());
        s.rare->ack_key.clear();
    }
}

} // namespace rtpush::detail

#endif
