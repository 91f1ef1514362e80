// Room objects: a switchboard session, a direct conversation or a named room
// (gateway/backends/README.md, "room:<id>").
#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/users.hpp"

#include "protocols/text/text.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <set>
#include <random>
#include <unordered_map>
#include <unordered_set>

namespace switchyard::gateway::embedded {

namespace {

using frame::error_code;

constexpr std::size_t ring = frame::limits::history;

// A room's history epoch: 16 random hex digits, new whenever the room's
// seqs start over (frame room_members).
std::string new_epoch() {
    thread_local std::mt19937_64 generator{[] {
        std::random_device device;
        return (std::uint64_t{device()} << 32) ^ device();
    }()};
    static constexpr char digits[] = "0123456789abcdef";
    std::uint64_t v = generator();
    std::string out(16, '0');
    for (char& c : out) {
        c = digits[v & 15];
        v >>= 4;
    }
    return out;
}

// Whether an endpoint's client can come back to a room after its connection
// dropped: WebSocket clients join again by room id (a resume). An MSNP
// switchboard connection cannot be resumed: its cookie is spent, and the
// client opens a new conversation instead.
bool resumable(const frame::member& m) { return m.protocol == frame::client_protocol::wsjson; }

// Retries are recognised by sender and message id together: one sender's
// ids never match another's, whatever the codecs put in them.
std::string retry_key(std::string_view sender, std::string_view message_id) {
    std::string key(sender);
    key += '\n';  // handles hold no line breaks
    key += message_id;
    return key;
}

std::string join_lines(const std::vector<std::string>& handles) {
    std::string out;
    for (const std::string& h : handles) {
        if (!out.empty()) {
            out += '\n';
        }
        out += h;
    }
    return out;
}

bool has_line(std::string_view lines, std::string_view handle) {
    while (!lines.empty()) {
        const auto end = lines.find('\n');
        if (lines.substr(0, end) == handle) {
            return true;
        }
        if (end == std::string_view::npos) {
            break;
        }
        lines.remove_prefix(end + 1);
    }
    return false;
}

class room_object final : public object {
public:
    room_object(database& db, std::string_view id) : id_(id) { load(db); }

    void apply(const frame::frame& f, context& ctx) override {
        // While the room waits to learn what a user blocks, frames wait
        // behind it, so none is published without the blocks applied.
        if (learning()) {
            held_.push_back({f, ctx.current_sink()});
            return;
        }
        dispatch(f, ctx);
    }

    void dispatch(const frame::frame& f, context& ctx) {
        if (f.sender.empty()) {
            ctx.fail(error_code::unauthenticated, "frames to a room need a sender");
            return;
        }
        if (const auto* create = std::get_if<frame::room_create>(&f.content)) {
            on_create(f, *create, ctx);
            return;
        }
        if (!exists_) {
            ctx.fail(error_code::unknown_object, "no room " + std::string(f.object));
            return;
        }
        std::visit(
            [&](const auto& body) {
                using T = std::decay_t<decltype(body)>;
                if constexpr (std::is_same_v<T, frame::room_invite>) on_invite(f, body, ctx);
                else if constexpr (std::is_same_v<T, frame::room_join>) on_join(f, body, ctx);
                else if constexpr (std::is_same_v<T, frame::room_leave>) on_leave(f, body, ctx);
                else if constexpr (std::is_same_v<T, frame::room_message>) on_message(f, body, ctx);
                else if constexpr (std::is_same_v<T, frame::roster_change>) blocks_changed(f, body, ctx);
                else if constexpr (std::is_same_v<T, frame::room_typing> || std::is_same_v<T, frame::room_nudge> ||
                                   std::is_same_v<T, frame::room_opaque>) {
                    relay(f, body, ctx);
                } else if constexpr (std::is_same_v<T, frame::room_history_get>) on_history(f, body, ctx);
                else ctx.fail(error_code::unsupported, std::string(T::name) + " is not a room request");
            },
            f.content);
    }

    // What may outlive the process (room_needs_sync): a room's joined
    // endpoints are cleared at start like users' presence, but joins and
    // leaves also change its members and invitations, messages its history,
    // and even a frame that writes nothing may wake a room stored before
    // epochs, which names its history as it loads. Every room frame
    // commits durably.
    static bool needs_sync(const frame::frame&) { return true; }

    std::uint64_t deadline_ms() const override {
        std::uint64_t first = 0;
        for (const graced& g : graced_) {
            first = first == 0 ? g.until_ms : std::min(first, g.until_ms);
        }
        return earliest(waiting_, first);
    }

    void answer(const frame::frame& f, context& ctx) override {
        if (auto w = take_waiting(waiting_, f.corr)) {
            answered(*w, f.content, ctx);
        }
        release_held(ctx);
    }

    void abandon(const frame::error& e) override {
        for (const waiting_request& w : waiting_) {
            if (w.sink) {
                w.sink(frame::frame{w.corr, w.request.object, {}, e});
            }
        }
        for (const held& h : held_) {
            if (h.sink) {
                h.sink(frame::frame{h.f.corr, h.f.object, {}, e});
            }
        }
        waiting_.clear();
        held_.clear();
    }

    // Grace periods that ran out: those endpoints leave as dropped, as they
    // would have without a grace period.
    void expire(context& ctx) override {
        for (waiting_request& w : take_expired(waiting_, ctx.now_ms)) {
            answered(w, frame::error{error_code::backend_unavailable, "no answer"}, ctx);
        }
        release_held(ctx);
        std::vector<std::string> users;
        for (auto it = graced_.begin(); it != graced_.end();) {
            if (it->until_ms > ctx.now_ms) {
                ++it;
                continue;
            }
            ctx.db.prepare("DELETE FROM room_endpoints WHERE room = ?1 AND user = ?2 AND endpoint = ?3")
                .bind(id_, it->who.user, it->who.endpoint)
                .run();
            ctx.publish(frame::frame{0, {}, it->who.user,
                                     frame::room_leave{it->who.user, it->who.endpoint, frame::leave_reason::dropped}});
            users.push_back(it->who.user);
            it = graced_.erase(it);
        }
        for (const std::string& user : users) {
            if (exists_) {
                forget_blocks_if_gone(user, ctx);
                end_membership_if_gone(user, ctx);
            }
        }
    }

private:
    void load(database& db) {
        auto& room = db.prepare("SELECT policy, title, creator, epoch FROM rooms WHERE id = ?1");
        room.bind(id_);
        exists_ = room.step();
        if (!exists_) {
            return;
        }
        policy_ = static_cast<frame::room_policy>(room.integer(0));
        title_ = room.text(1);
        creator_ = room.text(2);
        epoch_ = room.text(3);
        room.run();
        if (epoch_.empty()) {
            // A room from before epochs: its history starts being named now.
            epoch_ = new_epoch();
            db.prepare("UPDATE rooms SET epoch = ?2 WHERE id = ?1").bind(id_, epoch_).run();
        }

        auto& members = db.prepare("SELECT user FROM room_members WHERE room = ?1");
        members.bind(id_);
        while (members.step()) members_.insert(members.text(0));
        auto& invites = db.prepare("SELECT user FROM room_invites WHERE room = ?1");
        invites.bind(id_);
        while (invites.step()) invites_.insert(invites.text(0));
        auto& endpoints = db.prepare(
            "SELECT user, endpoint, display_name, capabilities, protocol, grace_until_ms FROM room_endpoints "
            "WHERE room = ?1");
        endpoints.bind(id_);
        while (endpoints.step()) {
            frame::member m{endpoints.text(0), endpoints.text(1), endpoints.text(2),
                            static_cast<std::uint64_t>(endpoints.integer(3)),
                            static_cast<frame::client_protocol>(endpoints.integer(4))};
            if (const auto until = static_cast<std::uint64_t>(endpoints.integer(5)); until != 0) {
                graced_.push_back({std::move(m), until});
            } else {
                endpoints_.push_back(std::move(m));
            }
        }
        auto& blocks = db.prepare("SELECT user, blocked FROM room_blocks WHERE room = ?1");
        blocks.bind(id_);
        while (blocks.step()) blocks_[blocks.text(0)].insert(blocks.text(1));
        // The ring keeps the newest messages, so its highest seq is the room's.
        auto& recent = db.prepare("SELECT seq, sender, message_id FROM messages WHERE room = ?1");
        recent.bind(id_);
        while (recent.step()) {
            const auto seq = static_cast<std::uint64_t>(recent.integer(0));
            last_seq_ = std::max(last_seq_, seq);
            remember(seq, recent.text(1), recent.text(2));
        }
    }

    // Message ids of the last 100 messages with their senders, for
    // idempotent retries.
    void remember(std::uint64_t seq, std::string_view sender, std::string_view message_id) {
        auto& slot = recent_ids_[seq % ring];
        if (!slot.empty()) {
            recent_by_id_.erase(slot);
        }
        slot = message_id.empty() ? std::string() : retry_key(sender, message_id);
        if (!slot.empty()) {
            recent_by_id_[slot] = seq;
        }
    }

    // Connected: may speak in the room.
    bool joined(std::string_view user) const {
        return std::ranges::any_of(endpoints_, [&](const frame::member& m) { return m.user == user; });
    }
    // Connected, or holding a place in a grace period.
    bool present(std::string_view user) const {
        return joined(user) || std::ranges::any_of(graced_, [&](const graced& g) { return g.who.user == user; });
    }
    // Every endpoint the others see in the room: graced ones too, since they
    // have not been seen to leave.
    std::vector<frame::member> visible_endpoints(std::string_view except_graced_of = {}) const {
        std::vector<frame::member> all = endpoints_;
        for (const graced& g : graced_) {
            if (g.who.user != except_graced_of) {
                all.push_back(g.who);
            }
        }
        return all;
    }

    void on_create(const frame::frame& f, const frame::room_create& c, context& ctx) {
        if (exists_) {
            ctx.fail(error_code::already_on_list, "the room exists already");
            return;
        }
        if (auto ok = text::check_text(c.title, ctx.opt.name_bytes); !ok) {
            ctx.fail(ok.error() == text::errc::too_long ? error_code::oversize : error_code::invalid_text,
                     "room title: " + std::string(text::to_string(ok.error())));
            return;
        }
        // A new history: a room created again under an id used before gets
        // an epoch of its own, so nobody takes its seqs for the old ones.
        epoch_ = new_epoch();
        ctx.db
            .prepare("INSERT INTO rooms (id, policy, title, creator, created_ms, epoch) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(id_, static_cast<int>(c.policy), c.title, f.sender, ctx.now_ms, epoch_)
            .run();
        ctx.db.prepare("INSERT INTO room_members (room, user) VALUES (?1, ?2)").bind(id_, f.sender).run();
        exists_ = true;
        policy_ = c.policy;
        title_ = c.title;
        creator_ = f.sender;
        members_.insert(f.sender);
        ctx.reply(frame::ack{});
    }

    void on_invite(const frame::frame& f, const frame::room_invite& inv, context& ctx) {
        if (!joined(f.sender)) {
            ctx.fail(error_code::not_member, "only participants may invite");
            return;
        }
        auto invitee = text::normalize_handle(inv.user);
        if (!invitee) {
            ctx.fail(error_code::invalid_text, "invitee: " + std::string(text::to_string(invitee.error())));
            return;
        }
        if (present(*invitee) || invites_.contains(*invitee)) {
            ctx.fail(error_code::already_on_list, *invitee + " is already in the room or invited");
            return;
        }
        if (policy_ == frame::room_policy::direct && !members_.contains(*invitee) && members_.size() >= 2) {
            ctx.fail(error_code::room_full, "a direct conversation has two members");
            return;
        }
        // The invitee's object decides whether it takes the invitation (it
        // exists, admits the inviter and is online), and passes it on if so;
        // the inviter is answered when it has. The invitation is recorded
        // now, so the invitee's join finds it even if it comes before the
        // answer; a refusal takes it back.
        ctx.db.prepare("INSERT INTO room_invites (room, user) VALUES (?1, ?2)").bind(id_, *invitee).run();
        invites_.insert(*invitee);
        const auto inviter = std::ranges::find(endpoints_, f.sender, &frame::member::user);
        waiting_request w;
        w.id = ctx.ask(frame::frame{0, "user:" + *invitee, f.sender,
                                    frame::room_invite{*invitee, inviter->display_name, "room:" + id_}});
        w.until_ms = ctx.now_ms + static_cast<std::uint64_t>(ctx.opt.request_timeout.count());
        w.sink = ctx.current_sink();
        w.corr = ctx.current_corr();
        w.request = frame::frame{f.corr, f.object, f.sender, frame::room_invite{*invitee, {}, {}}};
        waiting_.push_back(std::move(w));
    }

    void answered(waiting_request& w, const frame::body& reply, context& ctx) {
        if (std::holds_alternative<frame::room_invite>(w.request.content)) {
            invite_answered(w, reply, ctx);
            return;
        }
        // What a user blocks: its block list, or none when its object
        // could not say (its backend is down; the room goes on without).
        std::set<std::string> blocked;
        if (const auto* r = std::get_if<frame::roster>(&reply)) {
            for (const frame::roster_entry& e : r->entries) {
                if (e.lists & block_bit) {
                    blocked.insert(e.handle);
                }
            }
        }
        const std::string& user = w.request.sender;
        if (const auto* h = std::get_if<frame::room_history_get>(&w.request.content)) {
            ctx.resume(std::move(w.sink), w.corr);
            if (exists_) {
                history_for(user, *h, blocked, ctx);
            } else {
                ctx.fail(error_code::unknown_object, "no room " + std::string(w.request.object));
            }
            return;
        }
        if (!exists_ || !present(user)) {
            return;  // gone meanwhile
        }
        ctx.db.prepare("DELETE FROM room_blocks WHERE room = ?1 AND user = ?2").bind(id_, user).run();
        for (const std::string& b : blocked) {
            ctx.db.prepare("INSERT INTO room_blocks (room, user, blocked) VALUES (?1, ?2, ?3)").bind(id_, user, b).run();
        }
        if (blocked.empty()) {
            blocks_.erase(user);
        } else {
            blocks_[user] = std::move(blocked);
        }
    }

    // Blocks are the users' own: the room asks a user's object what it
    // blocks (room_invite from the user to its own object, naming this
    // room), and the object tells the room of each change of its block
    // list from then on (blocks_changed).
    void learn_blocks(const std::string& user, frame::frame request, context& ctx, backends::frame_sink sink = {},
                      std::uint64_t corr = 0) {
        waiting_request w;
        w.id = ctx.ask(frame::frame{0, "user:" + user, user, frame::room_invite{user, {}, "room:" + id_}});
        w.until_ms = ctx.now_ms + static_cast<std::uint64_t>(ctx.opt.request_timeout.count());
        w.sink = std::move(sink);
        w.corr = corr;
        w.request = std::move(request);
        waiting_.push_back(std::move(w));
    }

    // A present user's object: its block list changed.
    void blocks_changed(const frame::frame& f, const frame::roster_change& r, context& ctx) {
        if (f.corr != 0 || r.which != frame::list::block || !present(f.sender)) {
            if (f.corr != 0) ctx.fail(error_code::unsupported, "roster_change is not a room request");
            return;
        }
        if (r.op == frame::change_op::add) {
            if (blocks_[f.sender].insert(r.handle).second) {
                ctx.db.prepare("INSERT INTO room_blocks (room, user, blocked) VALUES (?1, ?2, ?3)")
                    .bind(id_, f.sender, r.handle)
                    .run();
            }
        } else if (r.op == frame::change_op::remove) {
            if (const auto it = blocks_.find(f.sender); it != blocks_.end() && it->second.erase(r.handle)) {
                ctx.db.prepare("DELETE FROM room_blocks WHERE room = ?1 AND user = ?2 AND blocked = ?3")
                    .bind(id_, f.sender, r.handle)
                    .run();
            }
        }
    }

    void forget_blocks_if_gone(const std::string& user, context& ctx) {
        if (!present(user) && blocks_.erase(user)) {
            ctx.db.prepare("DELETE FROM room_blocks WHERE room = ?1 AND user = ?2").bind(id_, user).run();
        }
    }

    bool blocks(const std::string& user, const std::string& sender) const {
        const auto it = blocks_.find(user);
        return it != blocks_.end() && it->second.contains(sender);
    }

    // Waiting for a user's block list (not for an invitee's answer).
    bool learning() const {
        return std::ranges::any_of(waiting_, [](const waiting_request& w) {
            return !std::holds_alternative<frame::room_invite>(w.request.content);
        });
    }

    void release_held(context& ctx) {
        while (!learning() && !held_.empty()) {
            held h = std::move(held_.front());
            held_.pop_front();
            ctx.resume(std::move(h.sink), h.f.corr);
            dispatch(h.f, ctx);
        }
    }

    // The invitee's object answered: ack (it has passed the invitation
    // on), or why not (unknown_object, not_allowed, offline), or nothing
    // came (backend_unavailable).
    void invite_answered(waiting_request& w, const frame::body& reply, context& ctx) {
        ctx.resume(std::move(w.sink), w.corr);
        const std::string& invitee = std::get<frame::room_invite>(w.request.content).user;
        if (std::holds_alternative<frame::ack>(reply)) {
            ctx.reply(frame::ack{});
            return;
        }
        const auto* e = std::get_if<frame::error>(&reply);
        error_code code = e ? e->code : error_code::internal;
        if (code != error_code::unknown_object && code != error_code::not_allowed && code != error_code::offline) {
            code = error_code::backend_unavailable;
        }
        if (exists_ && invites_.erase(invitee)) {
            ctx.db.prepare("DELETE FROM room_invites WHERE room = ?1 AND user = ?2").bind(id_, invitee).run();
            delete_if_empty(ctx);
        }
        ctx.fail(code, code == error_code::unknown_object ? "no user " + invitee
                       : code == error_code::not_allowed  ? invitee + " does not accept invitations from " +
                                                               w.request.sender
                       : code == error_code::offline      ? invitee + " is not online"
                                                          : "no answer from " + invitee);
    }

    void on_join(const frame::frame& f, const frame::room_join& j, context& ctx) {
        const frame::member& m = j.who;
        if (m.user != f.sender) {
            ctx.fail(error_code::not_allowed, "an endpoint joins as its own user");
            return;
        }
        const bool open = policy_ == frame::room_policy::named && ctx.opt.named_rooms_open;
        if (!members_.contains(m.user) && !invites_.contains(m.user) && !open) {
            ctx.fail(error_code::not_allowed, "not invited to this room");
            return;
        }
        if (std::ranges::any_of(endpoints_, [&](const frame::member& e) {
                return e.user == m.user && e.endpoint == m.endpoint;
            })) {
            ctx.fail(error_code::already_on_list, "this endpoint has joined already");
            return;
        }
        // The user's endpoints in a grace period give their places to this
        // one: the user is back (a resume), and the others see it continue.
        const std::size_t resumed = static_cast<std::size_t>(
            std::ranges::count_if(graced_, [&](const graced& g) { return g.who.user == m.user; }));
        if (endpoints_.size() + graced_.size() - resumed >= ctx.opt.max_room_members) {
            ctx.fail(error_code::room_full, "the room holds " + std::to_string(ctx.opt.max_room_members) + " endpoints");
            return;
        }
        if (auto ok = text::check_text(m.display_name, ctx.opt.name_bytes); !ok) {
            ctx.fail(ok.error() == text::errc::too_long ? error_code::oversize : error_code::invalid_text,
                     "display name: " + std::string(text::to_string(ok.error())));
            return;
        }
        ctx.reply(frame::room_members{visible_endpoints(m.user), {epoch_}});
        if (!present(m.user)) {
            learn_blocks(m.user, frame::frame{0, f.object, m.user, j}, ctx);
        }
        std::vector<frame::member> replaced;
        for (auto it = graced_.begin(); it != graced_.end();) {
            if (it->who.user != m.user) {
                ++it;
                continue;
            }
            ctx.db.prepare("DELETE FROM room_endpoints WHERE room = ?1 AND user = ?2 AND endpoint = ?3")
                .bind(id_, it->who.user, it->who.endpoint)
                .run();
            replaced.push_back(std::move(it->who));
            it = graced_.erase(it);
        }
        ctx.db
            .prepare("INSERT INTO room_endpoints (room, user, endpoint, display_name, capabilities, protocol) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(id_, m.user, m.endpoint, m.display_name, m.capabilities, static_cast<int>(m.protocol))
            .run();
        if (members_.insert(m.user).second) {
            ctx.db.prepare("INSERT INTO room_members (room, user) VALUES (?1, ?2)").bind(id_, m.user).run();
        }
        if (invites_.erase(m.user)) {
            ctx.db.prepare("DELETE FROM room_invites WHERE room = ?1 AND user = ?2").bind(id_, m.user).run();
        }
        endpoints_.push_back(m);
        // The new endpoint first, then the old ones out: codecs show a
        // user as present while any of its endpoints is, so the others see
        // neither a leave nor a join.
        ctx.publish(frame::frame{0, {}, f.sender, j});
        for (const frame::member& old : replaced) {
            if (old.endpoint != m.endpoint) {
                ctx.publish(frame::frame{0, {}, f.sender,
                                         frame::room_leave{old.user, old.endpoint, frame::leave_reason::dropped}});
            }
        }
    }

    void on_leave(const frame::frame& f, const frame::room_leave& l, context& ctx) {
        // An empty endpoint means every endpoint of the sender.
        const auto leaving = [&](const frame::member& e) {
            return e.user == f.sender && (l.endpoint.empty() || e.endpoint == l.endpoint);
        };
        const auto gone = std::stable_partition(endpoints_.begin(), endpoints_.end(),
                                                [&](const frame::member& e) { return !leaving(e); });
        const bool was_graced = std::ranges::any_of(graced_, [&](const graced& g) { return leaving(g.who); });
        if (gone == endpoints_.end() && !was_graced) {
            ctx.fail(error_code::not_member, "not in this room");
            return;
        }
        // A dropped connection that can come back keeps its place for the
        // grace period; the others see it leave only if it does not (expire).
        const bool grace = l.reason == frame::leave_reason::dropped && ctx.opt.rejoin_grace.count() > 0;
        const std::uint64_t until = ctx.now_ms + static_cast<std::uint64_t>(ctx.opt.rejoin_grace.count());
        for (auto it = gone; it != endpoints_.end(); ++it) {
            if (grace && resumable(*it)) {
                ctx.db
                    .prepare("UPDATE room_endpoints SET grace_until_ms = ?4 WHERE room = ?1 AND user = ?2 AND "
                             "endpoint = ?3")
                    .bind(id_, it->user, it->endpoint, until)
                    .run();
                graced_.push_back({std::move(*it), until});
                continue;
            }
            ctx.db.prepare("DELETE FROM room_endpoints WHERE room = ?1 AND user = ?2 AND endpoint = ?3")
                .bind(id_, it->user, it->endpoint)
                .run();
            ctx.publish(frame::frame{0, {}, f.sender, frame::room_leave{it->user, it->endpoint, l.reason}});
        }
        endpoints_.erase(gone, endpoints_.end());
        // Leaving on purpose ends a grace period at once; dropping again
        // does not extend it.
        if (l.reason != frame::leave_reason::dropped || ctx.opt.rejoin_grace.count() == 0) {
            for (auto it = graced_.begin(); it != graced_.end();) {
                if (!leaving(it->who)) {
                    ++it;
                    continue;
                }
                ctx.db.prepare("DELETE FROM room_endpoints WHERE room = ?1 AND user = ?2 AND endpoint = ?3")
                    .bind(id_, it->who.user, it->who.endpoint)
                    .run();
                ctx.publish(frame::frame{0, {}, f.sender, frame::room_leave{it->who.user, it->who.endpoint, l.reason}});
                it = graced_.erase(it);
            }
        }
        ctx.reply(frame::ack{});
        forget_blocks_if_gone(f.sender, ctx);
        end_membership_if_gone(f.sender, ctx);
    }

    // A switchboard session (an invite-only room): whoever is gone, grace
    // period included, must be invited again, and the session ends with its
    // last participant.
    void end_membership_if_gone(const std::string& user, context& ctx) {
        if (policy_ != frame::room_policy::invite_only || present(user)) {
            return;
        }
        members_.erase(user);
        ctx.db.prepare("DELETE FROM room_members WHERE room = ?1 AND user = ?2").bind(id_, user).run();
        delete_if_empty(ctx);
    }

    // An invite-only room with nobody in it is gone, like a switchboard
    // session whose last participant left: invitations not yet answered
    // end with it (the invitee's join then fails), and do not keep it.
    void delete_if_empty(context& ctx) {
        if (policy_ == frame::room_policy::invite_only && endpoints_.empty() && graced_.empty()) {
            ctx.db.prepare("DELETE FROM rooms WHERE id = ?1").bind(id_).run();
            ctx.db.prepare("DELETE FROM room_blocks WHERE room = ?1").bind(id_).run();
            forget();
        }
    }

    void on_message(const frame::frame& f, const frame::room_message& m, context& ctx) {
        if (!joined(f.sender)) {
            ctx.fail(error_code::not_member, "join the room before sending to it");
            return;
        }
        for (const auto& [field, limit] : {std::pair{&m.text, ctx.opt.message_bytes},
                                           std::pair{&m.format.font, frame::limits::token}}) {
            if (auto ok = text::check_text(*field, limit); !ok) {
                ctx.fail(ok.error() == text::errc::too_long ? error_code::oversize : error_code::invalid_text,
                         "message: " + std::string(text::to_string(ok.error())));
                return;
            }
        }
        if (!m.message_id.empty()) {
            if (auto it = recent_by_id_.find(retry_key(f.sender, m.message_id)); it != recent_by_id_.end()) {
                ctx.reply(frame::ack{it->second});  // a retry: already stored once
                return;
            }
        }
        std::vector<std::string> withheld;
        if (!may_reach_anyone(f.sender, withheld, ctx)) {
            return;
        }
        frame::room_message stored = m;
        stored.withheld_from = std::move(withheld);
        stored.sender_name.clear();
        // The name the sender's latest endpoint joined with, as codecs show it.
        for (auto e = endpoints_.rbegin(); e != endpoints_.rend(); ++e) {
            if (e->user == f.sender && !e->display_name.empty()) {
                stored.sender_name.push_back(e->display_name);
                break;
            }
        }
        stored.seq = ++last_seq_;
        stored.timestamp_ms = ctx.now_ms;
        ctx.db
            .prepare("INSERT OR REPLACE INTO messages (room, slot, seq, sender, message_id, ts_ms, text, font, "
                     "effects, color, charset, pitch, rtl, withheld) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                     "?10, ?11, ?12, ?13, ?14)")
            .bind(id_, stored.seq % ring, stored.seq, f.sender, stored.message_id, stored.timestamp_ms, stored.text,
                  stored.format.font, stored.format.effects, stored.format.color, stored.format.charset,
                  stored.format.pitch_family, stored.format.right_to_left, join_lines(stored.withheld_from))
            .run();
        remember(stored.seq, f.sender, stored.message_id);
        ctx.reply(frame::ack{stored.seq});
        ctx.publish(frame::frame{0, {}, f.sender, std::move(stored)});
    }

    template <class Body> void relay(const frame::frame& f, const Body& body, context& ctx) {
        if (!joined(f.sender)) {
            ctx.fail(error_code::not_member, "join the room before sending to it");
            return;
        }
        Body out = body;
        out.withheld_from.clear();
        if (!may_reach_anyone(f.sender, out.withheld_from, ctx)) {
            return;
        }
        ctx.publish(frame::frame{0, {}, f.sender, std::move(out)});
        ctx.reply(frame::ack{});
    }

    // A block takes effect in conversations already open: what the blocked
    // user sends is withheld from the endpoints of every joined user who
    // blocks them, as it would be refused to a new one (MSNP CAL to someone
    // blocking you is 216, msnp-reference 4.5, 4.8), and the room says so
    // in the frame so every codec withholds it the same way. When no other
    // joined user would receive it, it is refused (not_allowed, MSNP NAK;
    // §4.5 recommendation: NAK when nobody could receive a message), as if
    // the blocker had left. A block is the blocker's committed row, read
    // like an invitation's (allows).
    // An endpoint in a grace period counts as present: it gets what it
    // missed from the history when it comes back.
    // The blockers come from one indexed read, not one per member: a
    // message to a large room costs one query.
    bool may_reach_anyone(const std::string& sender, std::vector<std::string>& withheld, context& ctx) {
        bool reachable = false;
        const auto consider = [&](const frame::member& e) {
            if (e.user == sender || std::ranges::find(withheld, e.user) != withheld.end()) {
                return;
            }
            if (blocks(e.user, sender)) {
                withheld.push_back(e.user);
            } else {
                reachable = true;
            }
        };
        std::ranges::for_each(endpoints_, consider);
        for (const graced& g : graced_) {
            consider(g.who);
        }
        if (!reachable && !withheld.empty()) {
            ctx.fail(error_code::not_allowed, "nobody in the room accepts messages from " + sender);
            return false;
        }
        return true;
    }

    void on_history(const frame::frame& f, const frame::room_history_get& h, context& ctx) {
        const bool open = policy_ == frame::room_policy::named && ctx.opt.named_rooms_open;
        if (!members_.contains(f.sender) && !open) {
            ctx.fail(error_code::not_member, "only members may read the history");
            return;
        }
        if (!present(f.sender)) {
            // A reader not in the room: its object says what it blocks.
            learn_blocks(f.sender, frame::frame{f.corr, f.object, f.sender, h}, ctx, ctx.current_sink(),
                         ctx.current_corr());
            return;
        }
        const auto it = blocks_.find(f.sender);
        history_for(f.sender, h, it == blocks_.end() ? std::set<std::string>{} : it->second, ctx);
    }

    void history_for(const std::string& reader, const frame::room_history_get& h, const std::set<std::string>& blocked,
                     context& ctx) {
        frame::room_history out;
        out.last_seq = last_seq_;
        out.epoch = {epoch_};
        // Blocks reach the history as they reach live messages: a message
        // withheld from the reader when it was sent, or from a sender the
        // reader blocks now, is marked so the codec leaves it out.
        auto& q = ctx.db.prepare(
            "SELECT seq, sender, message_id, ts_ms, text, font, effects, color, charset, pitch, rtl, withheld "
            "FROM messages WHERE room = ?1 AND seq > ?2 AND (?3 = 0 OR seq < ?3) ORDER BY seq LIMIT ?4");
        q.bind(id_, h.after_seq, h.before_seq, std::min<std::uint32_t>(h.max_count, ring));
        while (q.step()) {
            frame::stored_message m;
            m.seq = static_cast<std::uint64_t>(q.integer(0));
            m.sender = q.text(1);
            m.message_id = q.text(2);
            m.timestamp_ms = static_cast<std::uint64_t>(q.integer(3));
            m.text = q.text(4);
            m.format = frame::text_format{q.text(5), q.text(6), static_cast<std::uint32_t>(q.integer(7)),
                                          static_cast<std::uint32_t>(q.integer(8)),
                                          static_cast<std::uint32_t>(q.integer(9)), q.integer(10) != 0};
            const bool hidden = has_line(q.text(11), reader) || (m.sender != reader && blocked.contains(m.sender));
            if (hidden) {
                m.withheld_from.push_back(reader);
            }
            out.messages.push_back(std::move(m));
        }
        ctx.reply(std::move(out));
    }

    // The room was deleted: a later room_create may reuse the id.
    void forget() {
        exists_ = false;
        epoch_.clear();
        members_.clear();
        invites_.clear();
        endpoints_.clear();
        graced_.clear();
        last_seq_ = 0;
        recent_ids_ = {};
        recent_by_id_.clear();
        blocks_.clear();
    }

    struct graced {
        frame::member who;
        std::uint64_t until_ms;  // when its place runs out
    };

    std::string id_;
    bool exists_ = false;
    std::string epoch_;
    frame::room_policy policy_ = frame::room_policy::invite_only;
    std::string title_;
    std::string creator_;
    std::uint64_t last_seq_ = 0;
    std::unordered_set<std::string> members_;
    std::unordered_set<std::string> invites_;
    std::vector<frame::member> endpoints_;  // connected
    std::vector<graced> graced_;            // connection dropped, place kept for a while
    std::array<std::string, ring> recent_ids_;
    std::unordered_map<std::string, std::uint64_t> recent_by_id_;
    // Invitations the invitees' objects have not answered yet, and users
    // whose block lists their objects have not told yet.
    std::vector<waiting_request> waiting_;
    struct held {
        frame::frame f;
        backends::frame_sink sink;
    };
    std::deque<held> held_;  // frames that came while the room learned a user's blocks
    // What each present user blocks, as its object said (room_blocks).
    std::map<std::string, std::set<std::string>, std::less<>> blocks_;
};

}  // namespace

std::unique_ptr<object> load_room(database& db, std::string_view room_id) {
    return std::make_unique<room_object>(db, room_id);
}

bool room_needs_sync(const frame::frame& f) { return room_object::needs_sync(f); }

}  // namespace switchyard::gateway::embedded
