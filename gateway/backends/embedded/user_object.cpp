// The `user:<handle>` object (gateway/backends/README.md): a user's profile,
// privacy, lists, groups and endpoints, and the presence it shows the
// contacts who watch it.
//
// Memory holds the user's own committed rows and nothing else, so an
// evicted object loses nothing and a resident one costs what its own lists
// cost. The reverse list is the user's own rows too, written only from the
// contacts' notices; it is read from the database when needed, never cached,
// since a popular user's can be long. What other users must learn (list
// notices, presence) goes to their objects as frames after commit; this
// object writes only its rows.
#include "gateway/backends/embedded/object.hpp"
#include "gateway/backends/embedded/users.hpp"

#include "protocols/text/text.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace switchyard::gateway::embedded {

namespace {

using frame::error_code;

// Ids given to clients (MSNP10+ contact `C=` GUIDs, group GUIDs) are
// name-based UUIDs (RFC 4122 version 5, SHA-1) in a namespace of our own:
// derived from the owner and the contact, or the owner and the list version
// that created a group, so they need no stored counter and no randomness,
// and a contact removed and added again gets the id clients already know.
constexpr std::array<unsigned char, 16> id_namespace = {0x53, 0xca, 0x45, 0x00, 0xb0, 0xd7, 0x45, 0x41,
                                                        0x9d, 0xf3, 0x1a, 0x1c, 0x80, 0x5d, 0x7e, 0x8d};

std::optional<std::string> name_uuid(std::string_view name) {
    std::string input(id_namespace.begin(), id_namespace.end());
    input += name;
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha1(), nullptr) != 1 || size < 16) {
        return std::nullopt;
    }
    digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x50);  // version 5
    digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);  // RFC 4122 variant
    static constexpr std::string_view hex = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out += '-';
        }
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0x0f];
    }
    return out;
}

// Handles hold no spaces, so these names cannot collide.
std::optional<std::string> contact_uuid(std::string_view owner, std::string_view contact) {
    return name_uuid("contact " + std::string(owner) + " " + std::string(contact));
}

std::optional<std::string> group_uuid(std::string_view owner, std::uint64_t version) {
    return name_uuid("group " + std::string(owner) + " " + std::to_string(version));
}

// Replies oversize or invalid_text unless `value` is valid UTF-8 within `limit`.
bool check_text(context& ctx, std::string_view value, std::size_t limit, std::string_view what,
                bool one_line = false) {
    const auto ok = one_line ? text::check_line(value, limit) : text::check_text(value, limit);
    if (!ok) {
        ctx.fail(ok.error() == text::errc::too_long ? error_code::oversize : error_code::invalid_text,
                 std::string(what) + ": " + std::string(text::to_string(ok.error())));
    }
    return ok.has_value();
}

// A notice not acknowledged in this long is sent again, at most
// max_resends times in one run, each wait twice the last: a receiver's
// commit that failed loses it until then. The backend also sends every
// unacknowledged notice when it starts, so giving up in a run (a receiver
// whose account is gone never acknowledges) loses nothing.
constexpr std::uint64_t resend_after_ms = 60000;
constexpr unsigned max_resends = 4;

template <class E> bool in_range(E v) { return static_cast<unsigned>(v) <= frame::enum_traits<E>::max_value; }

std::string user_object_id(std::string_view handle) { return "user:" + std::string(handle); }

frame::presence_info offline_as(const std::string& display_name) {
    frame::presence_info p;
    p.state = frame::status::offline;
    p.display_name = display_name;
    return p;
}

// Whether privacy lets a user on these lists of the owner see it.
bool admits(frame::privacy_default privacy, std::uint32_t lists) {
    return !(lists & block_bit) && ((lists & allow_bit) || privacy == frame::privacy_default::allow);
}

// What differs between two views of the owner, as profile_bits. Going
// offline changes the status only; coming online also brings a personal
// message or media that is set (MSNP11 watchers then need a UBX).
std::uint32_t differences(const frame::presence_info& a, const frame::presence_info& b) {
    namespace bits = frame::profile_bits;
    if (!is_online(b.state)) {
        return bits::status;
    }
    if (!is_online(a.state)) {
        return bits::status | (b.personal_message.empty() ? 0 : bits::personal_message) |
               (b.current_media.empty() ? 0 : bits::current_media);
    }
    std::uint32_t d = 0;
    if (a.state != b.state || a.capabilities != b.capabilities || a.capabilities_ex != b.capabilities_ex ||
        a.msn_object != b.msn_object || a.endpoint != b.endpoint) {
        d |= bits::status;
    }
    d |= a.display_name != b.display_name ? bits::display_name : 0;
    d |= a.personal_message != b.personal_message ? bits::personal_message : 0;
    d |= a.current_media != b.current_media ? bits::current_media : 0;
    d |= a.phones.home != b.phones.home ? bits::phone_home : 0;
    d |= a.phones.work != b.phones.work ? bits::phone_work : 0;
    d |= a.phones.mobile != b.phones.mobile ? bits::phone_mobile : 0;
    d |= a.phones.pageable != b.phones.pageable ? bits::mobile_pageable : 0;
    return d;
}

struct contact {
    std::uint32_t lists = 0;          // forward_bit | allow_bit | block_bit
    std::string display_name;
    std::string contact_id;
    std::vector<std::string> groups;  // sorted ids; only while on the forward list
};

struct group_entry {
    std::string id;
    std::string name;
};

// An endpoint is offline from its hello until its first presence_set; a
// client cannot set offline itself (MSNP `CHG t FLN` is error 201).
struct endpoint_state {
    frame::status state = frame::status::offline;
    std::uint64_t capabilities = 0;
    std::uint64_t capabilities_ex = 0;
    std::string msn_object;
    bool single_session = false;  // its hello claimed frame::capability::single_session
};

// The owner as shown to watchers who may see it, and the privacy that
// decides who may: with a watcher's list bits, all a visibility decision
// needs.
struct snapshot {
    frame::presence_info effective;
    frame::privacy_default privacy = frame::privacy_default::allow;
    friend bool operator==(const snapshot&, const snapshot&) = default;
};

class user_object final : public object {
public:
    user_object(database& db, std::string_view handle) {
        me_.handle = handle;
        load(db);
    }

    void apply(const frame::frame& f, context& ctx) override {
        if (account_request(f, ctx)) {
            return;
        }
        if (!exists_) {
            // A contact has dropped what it held of this removed account.
            if (f.corr == 0 && !f.sender.empty() && std::holds_alternative<frame::ack>(f.content)) {
                ctx.db.prepare("DELETE FROM departures WHERE owner = ?1 AND contact = ?2")
                    .bind(me_.handle, f.sender)
                    .run();
                return;
            }
            ctx.fail(error_code::unknown_object, "no user " + me_.handle);
            return;
        }
        // While a request of the owner's waits for another object's answer,
        // the owner's next frames wait behind it: the owner's requests are
        // applied, and answered, in the order they came. Other objects'
        // frames (their questions among them) are applied meanwhile, so
        // two users adding each other at once do not wait on each other.
        if (f.sender == me_.handle && !waiting_.empty()) {
            held_.push_back({f, ctx.current_sink()});
            return;
        }
        handle(f, ctx);
    }

    void answer(const frame::frame& f, context& ctx) override {
        auto w = take_waiting(waiting_, f.corr);
        if (!w) {
            return;  // given up on already
        }
        ctx.resume(std::move(w->sink), w->corr);
        if (!exists_) {
            ctx.fail(error_code::unknown_object, "no user " + me_.handle);
        } else {
            answered(w->request, f, ctx);
        }
        release_held(ctx);
    }

    void abandon(const frame::error& e) override {
        const auto tell = [&](const backends::frame_sink& sink, const frame::frame& request) {
            if (sink) {
                sink(frame::frame{request.corr, request.object, {}, e});
            }
        };
        for (const waiting_request& w : waiting_) {
            tell(w.sink, w.request);
        }
        for (const held& h : held_) {
            tell(h.sink, h.f);
        }
        waiting_.clear();
        held_.clear();
    }

    // What may outlive the process (user_needs_sync): sign-ins, sign-outs
    // and status changes write only the endpoints' rows; a roster read,
    // invitations passed on to the owner and login checks write nothing (a
    // room asking for the owner's blocks writes only user_rooms, cleared at
    // start like endpoints); a contact's
    // presence writes only its view, cleared at start like endpoints; a
    // contact's ack of a notice only deletes the outbox row, and a notice
    // sent again after a crash is acknowledged again (from the owner all of
    // these are refused, which writes nothing). Everything else may write
    // the owner's profile, lists or version, a reverse-list notice included.
    static bool needs_sync(const frame::frame& f) {
        return std::visit(
            [](const auto& body) {
                using T = std::decay_t<decltype(body)>;
                return !(std::is_same_v<T, frame::hello> || std::is_same_v<T, frame::bye> ||
                         std::is_same_v<T, frame::presence_set> || std::is_same_v<T, frame::roster_get> ||
                         std::is_same_v<T, frame::presence_update> || std::is_same_v<T, frame::room_invite> ||
                         std::is_same_v<T, frame::ack> || std::is_same_v<T, frame::account_check> ||
                         std::is_same_v<T, frame::account_salt>);
            },
            f.content);
    }

    std::uint64_t deadline_ms() const override { return earliest(waiting_, resend_at_); }

    void expire(context& ctx) override {
        // Requests whose answer is overdue: the answer was lost (the
        // target's backend is down, or restarted), and the client is told.
        for (waiting_request& w : take_expired(waiting_, ctx.now_ms)) {
            ctx.resume(std::move(w.sink), w.corr);
            if (!exists_) {
                ctx.fail(error_code::unknown_object, "no user " + me_.handle);
                continue;
            }
            answered(w.request, frame::frame{w.id, w.request.object, {},
                                             frame::error{error_code::backend_unavailable, "no answer in time"}},
                     ctx);
        }
        if (waiting_.empty()) {
            release_held(ctx);
        }
        if (resend_at_ != 0 && resend_at_ <= ctx.now_ms) {
            resend(ctx);
        }
    }

private:
    // Held frames of the owner's, in order, once nothing waits.
    void release_held(context& ctx) {
        while (waiting_.empty() && !held_.empty()) {
            held h = std::move(held_.front());
            held_.pop_front();
            ctx.resume(std::move(h.sink), h.f.corr);
            if (!exists_) {
                ctx.fail(error_code::unknown_object, "no user " + me_.handle);
                continue;
            }
            handle(h.f, ctx);
        }
    }

    void handle(const frame::frame& f, context& ctx) {
        if (!outbox_checked_) {
            // Loaded with notices still unacknowledged (a failed batch
            // dropped this object, or a run ended): wait for them as if
            // they had just been sent.
            outbox_checked_ = true;
            if (resend_at_ == 0 && outbox_waiting(ctx.db)) {
                resend_at_ = ctx.now_ms + resend_after_ms;
            }
        }
        if (f.sender != me_.handle) {
            from_other(f, ctx);
            return;
        }
        std::visit([&](const auto& body) { on(body, ctx); }, f.content);
    }

    // Notices still unacknowledged after a while are sent again.
    void resend(context& ctx) {
        resend_at_ = 0;
        if (!exists_) {
            return;
        }
        auto& q = ctx.db.prepare(
            "SELECT contact, op, display_name, version FROM outbox WHERE owner = ?1 ORDER BY version");
        q.bind(me_.handle);
        bool any = false;
        while (q.step()) {
            const auto op = q.integer(1) == static_cast<int>(frame::change_op::remove) ? frame::change_op::remove
                                                                                        : frame::change_op::add;
            ctx.send(embedded::reverse_notice(me_.handle, q.text(0), op, q.text(2),
                                              static_cast<std::uint64_t>(q.integer(3))));
            any = true;
        }
        if (any && ++resends_ < max_resends) {
            resend_at_ = ctx.now_ms + (resend_after_ms << resends_);
        }
    }

    // ------------------------------------------------------------ loading

    void load(database& db) {
        contacts_.clear();
        groups_.clear();
        endpoints_.clear();
        auto row = read_user(db, me_.handle);
        exists_ = row.has_value();
        if (!exists_) {
            return;
        }
        me_ = std::move(*row);

        auto& c = db.prepare("SELECT contact, lists, display_name, contact_id FROM contacts WHERE owner = ?1");
        c.bind(me_.handle);
        while (c.step()) {
            contacts_.emplace(c.text(0),
                              contact{static_cast<std::uint32_t>(c.integer(1)), c.text(2), c.text(3), {}});
        }
        auto& gr = db.prepare("SELECT id, name FROM groups WHERE owner = ?1 ORDER BY created_version");
        gr.bind(me_.handle);
        while (gr.step()) {
            groups_.push_back({gr.text(0), gr.text(1)});
        }
        auto& cg =
            db.prepare("SELECT contact, group_id FROM contact_groups WHERE owner = ?1 ORDER BY contact, group_id");
        cg.bind(me_.handle);
        while (cg.step()) {
            if (auto it = contacts_.find(cg.text(0)); it != contacts_.end()) {
                it->second.groups.push_back(cg.text(1));
            }
        }
        auto& p = db.prepare(
            "SELECT endpoint, state, capabilities, capabilities_ex, msn_object, single_session FROM presence "
            "WHERE handle = ?1");
        p.bind(me_.handle);
        while (p.step()) {
            endpoints_.emplace(p.text(0), endpoint_state{static_cast<frame::status>(p.integer(1)),
                                                         static_cast<std::uint64_t>(p.integer(2)),
                                                         static_cast<std::uint64_t>(p.integer(3)), p.text(4),
                                                         p.integer(5) != 0});
        }
    }

    // ------------------------------------------------------------ accounts

    // Account frames come from the gateway itself (its login services and
    // the operator commands; codecs never make them), with no sender, and
    // may find the account missing: they are answered before anything
    // else. (An account_delete from another object is its departure.)
    bool account_request(const frame::frame& f, context& ctx) {
        if (!f.sender.empty()) {
            return false;
        }
        return std::visit(
            [&](const auto& body) {
                using T = std::decay_t<decltype(body)>;
                if constexpr (std::is_same_v<T, frame::account_create> || std::is_same_v<T, frame::account_password> ||
                              std::is_same_v<T, frame::account_delete> || std::is_same_v<T, frame::account_check> ||
                              std::is_same_v<T, frame::account_salt>) {
                    account(body, ctx);
                    return true;
                } else {
                    return false;
                }
            },
            f.content);
    }

    static frame::error_code code_of(account_errc e) {
        switch (e) {
            case account_errc::exists: return error_code::already_on_list;
            case account_errc::unknown_user: return error_code::unknown_object;
            case account_errc::invalid_handle:
            case account_errc::invalid_name: return error_code::invalid_text;
            case account_errc::weak_password: return error_code::not_allowed;
            case account_errc::storage: break;
        }
        return error_code::internal;
    }

    bool account_failed(const tl::expected<void, account_error>& r, context& ctx) {
        if (!r) {
            ctx.fail(code_of(r.error().code), r.error().message);
        }
        return !r;
    }

    void account(const frame::account_create& c, context& ctx) {
        const hashed_password* password = ctx.prepared;
        if (!password) {
            ctx.fail(error_code::internal, "the password was not hashed");
            return;
        }
        if (!c.display_name.empty() && account_failed(check_account_name(c.display_name), ctx)) {
            return;
        }
        if (account_failed(insert_account(ctx.db, me_.handle, c.display_name, *password, c.md5_login, ctx.now_ms),
                           ctx)) {
            return;
        }
        load(ctx.db);
        ctx.reply(frame::ack{});
    }

    void account(const frame::account_password& c, context& ctx) {
        const hashed_password* password = ctx.prepared;
        if (!password) {
            ctx.fail(error_code::internal, "the password was not hashed");
            return;
        }
        const std::optional<bool> md5 = c.md5 == frame::md5_login::keep ? std::nullopt
                                                                         : std::optional(c.md5 == frame::md5_login::on);
        if (!account_failed(replace_password(ctx.db, me_.handle, *password, md5, ctx.now_ms), ctx)) {
            ctx.reply(frame::ack{});
        }
    }

    // The account goes with everything it owns; its endpoints are signed
    // out, and whoever saw it online sees it offline.
    void account(const frame::account_delete&, context& ctx) {
        if (!exists_) {
            ctx.fail(error_code::unknown_object, "no user " + me_.handle);
            return;
        }
        const snapshot before = snap();
        for (const auto& [endpoint, e] : endpoints_) {
            ctx.publish(frame::frame{0, {}, me_.handle,
                                     frame::bye{error_code::unknown_object, false, "account removed", endpoint}});
        }
        endpoints_.clear();
        fan_out(ctx, before);
        ctx.db.prepare("DELETE FROM presence WHERE handle = ?1").bind(me_.handle).run();
        delete_account(ctx.db, me_.handle);
        for (const std::string& contact : departures_of(ctx.db, me_.handle)) {
            ctx.send(departure_notice(me_.handle, contact));
        }
        load(ctx.db);
        ctx.reply(frame::ack{});
    }

    // A contact's account was removed (its object's departure notice, sent
    // again until acknowledged): what the owner holds of it goes. Its
    // entries on the owner's lists are removed, each published at a new
    // list version as if the owner had made it, and so is its place on the
    // reverse list; its view and phones go. An account created again under
    // the handle starts from nothing on both sides. Applying it twice
    // changes nothing the second time.
    void departed(const std::string& gone, context& ctx) {
        if (const auto it = contacts_.find(gone); it != contacts_.end()) {
            const std::uint32_t lists = it->second.lists;
            const std::string name = it->second.display_name;
            contacts_.erase(it);
            ctx.db.prepare("DELETE FROM contacts WHERE owner = ?1 AND contact = ?2").bind(me_.handle, gone).run();
            for (const frame::list l : {frame::list::forward, frame::list::allow, frame::list::block}) {
                if (lists & bit(l)) {
                    bump_version(ctx);
                    ctx.publish(frame::frame{0, {}, me_.handle,
                                             frame::roster_change{frame::change_op::remove, l, gone, name, {},
                                                                  me_.list_version, {}, {}}});
                }
            }
        }
        auto& q = ctx.db.prepare(
            "SELECT display_name FROM reverse_contacts WHERE owner = ?1 AND contact = ?2 AND listed = 1");
        q.bind(me_.handle, gone);
        std::optional<std::string> listed;
        if (q.step()) {
            listed = q.text(0);
            q.run();
        }
        for (const char* table : {"reverse_contacts", "contact_views", "contact_phones", "outbox"}) {
            ctx.db.prepare(std::string("DELETE FROM ") + table + " WHERE owner = ?1 AND contact = ?2")
                .bind(me_.handle, gone)
                .run();
        }
        if (listed) {
            bump_version(ctx);
            ctx.publish(frame::frame{0, {}, me_.handle,
                                     frame::roster_change{frame::change_op::remove, frame::list::reverse, gone,
                                                          *listed, {}, me_.list_version, {}, {}}});
        }
        ctx.send(frame::frame{0, user_object_id(gone), me_.handle, frame::ack{}});
    }

    void account(const frame::account_check& c, context& ctx) {
        if (c.method == frame::credential::md5) {
            if (md5_matches(ctx.db, me_.handle, c.secret)) {
                ctx.reply(frame::ack{});
            } else {
                ctx.fail(error_code::unauthenticated, "wrong handle or password");
            }
            return;
        }
        // The hash is compared after commit, off this object's thread.
        ctx.reply_later([stored = read_password(ctx.db, me_.handle), password = c.secret,
                         cost = ctx.opt.kdf]() -> frame::body {
            if (password_matches(stored, password, cost)) {
                return frame::ack{};
            }
            return frame::error{error_code::unauthenticated, "wrong handle or password"};
        });
    }

    void account(const frame::account_salt&, context& ctx) {
        ctx.reply(frame::account_salt{md5_salt_of(ctx.db, me_.handle, ctx.opt.salt_secret)});
    }

    // ------------------------------------------------------------ frames from other objects

    void from_other(const frame::frame& f, context& ctx) {
        // Objects never set corr, so a frame with one is a client acting on
        // someone else's object. Clients may also send corr 0 under their
        // own name: each accepted frame is a statement about the sender's
        // own lists (its `handle` or `user` must be the sender), or is
        // checked against the owner's rows, so a forged one can only say
        // what the sender could make true itself. Refusals of object frames
        // are dropped by the shard.
        if (f.corr != 0) {
            // Questions from other objects (gateway/backends/README.md,
            // "Requests between objects"); clients cannot send
            // presence_update, and an invitation a client sends here is
            // checked as the room's is.
            if (std::holds_alternative<frame::presence_update>(f.content)) {
                show(f.sender, ctx);
                return;
            }
            if (const auto* i = std::get_if<frame::room_invite>(&f.content)) {
                invitation(f.sender, *i, ctx);
                return;
            }
        }
        if (f.corr == 0) {
            if (std::holds_alternative<frame::account_delete>(f.content)) {
                departed(f.sender, ctx);
                return;
            }
            if (const auto* r = std::get_if<frame::roster_change>(&f.content); r && r->which == frame::list::reverse) {
                if (r->op == frame::change_op::rename) {
                    contact_phones_notice(f.sender, *r, ctx);
                } else {
                    reverse_notice(f.sender, *r, ctx);
                }
                return;
            }
            if (const auto* u = std::get_if<frame::presence_update>(&f.content)) {
                contact_presence(f.sender, *u, ctx);
                return;
            }
            if (const auto* i = std::get_if<frame::room_invite>(&f.content)) {
                invitation(f.sender, *i, ctx);
                return;
            }
            if (const auto* a = std::get_if<frame::ack>(&f.content)) {
                acknowledged(f.sender, *a, ctx);
                return;
            }
        }
        ctx.fail(error_code::not_allowed, "only " + me_.handle + " may use this object");
    }

    // The sender added the owner to, or removed it from, its forward list:
    // its own statement, at its list version r.version. Notices from one
    // sender are applied in version order, each once: one no newer than the
    // last applied (sent again after a crash, or overtaken) changes nothing.
    // Either way the sender's object is told, so it can forget the notice.
    void reverse_notice(const std::string& sender, const frame::roster_change& r, context& ctx) {
        if (r.handle != sender || (r.op != frame::change_op::add && r.op != frame::change_op::remove) ||
            r.version == 0) {
            return;
        }
        auto& q = ctx.db.prepare("SELECT listed, version FROM reverse_contacts WHERE owner = ?1 AND contact = ?2");
        q.bind(me_.handle, sender);
        bool listed = false;
        std::uint64_t applied = 0;
        if (q.step()) {
            listed = q.integer(0) != 0;
            applied = static_cast<std::uint64_t>(q.integer(1));
        }
        q.run();
        if (r.version > applied) {
            const bool now = r.op == frame::change_op::add;
            const std::string name =
                r.display_name.empty() || !text::check_text(r.display_name, ctx.opt.name_bytes) ? sender
                                                                                               : r.display_name;
            ctx.db
                .prepare("INSERT OR REPLACE INTO reverse_contacts (owner, contact, listed, display_name, version) "
                         "VALUES (?1, ?2, ?3, ?4, ?5)")
                .bind(me_.handle, sender, now, name, r.version)
                .run();
            if (now != listed) {
                // RL changes take the owner's next list version, as MSNP's `ADD 0 RL ver`.
                bump_version(ctx);
                ctx.publish(frame::frame{0, {}, sender,
                                         frame::roster_change{r.op, frame::list::reverse, sender, name, {},
                                                              me_.list_version, {}, {}}});
                // The new watcher's view of the owner, offline too, and the
                // phones it is shown: what changed since this object
                // answered its add was fanned out before it was on the
                // reverse list.
                if (now) {
                    tell_phones(ctx, sender, lists_of(sender));
                    frame::presence_info seen = view(snap(), lists_of(sender));
                    const std::uint32_t changed = differences(offline_as(seen.display_name), seen);
                    ctx.send(frame::frame{0, user_object_id(sender), me_.handle,
                                          frame::presence_update{me_.handle, true, std::move(seen), changed}});
                }
            }
        }
        ctx.send(frame::frame{0, user_object_id(sender), me_.handle, frame::ack{r.version}});
    }

    // A forward-list contact's phones as it shows them to the owner now
    // (its statement about itself): what roster entries carry.
    void contact_phones_notice(const std::string& sender, const frame::roster_change& r, context& ctx) {
        if (r.handle != sender || !(lists_of(sender) & forward_bit)) {
            return;
        }
        store_phones(ctx.db, sender, r.phones);
    }

    void store_phones(database& db, const std::string& contact, const frame::phones& p) {
        if (p == frame::phones{}) {
            db.prepare("DELETE FROM contact_phones WHERE owner = ?1 AND contact = ?2").bind(me_.handle, contact).run();
            return;
        }
        db.prepare(
              "INSERT OR REPLACE INTO contact_phones (owner, contact, phone_home, phone_work, phone_mobile, "
              "mobile_pageable) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .bind(me_.handle, contact, p.home, p.work, p.mobile, p.pageable)
            .run();
    }

    // Tells a watcher the phones the owner shows it (none unless admitted).
    void tell_phones(context& ctx, const std::string& watcher, std::uint32_t lists) {
        frame::roster_change r{frame::change_op::rename, frame::list::reverse, me_.handle, me_.display_name, {}, 0,
                               {}, admits(me_.privacy, lists) ? me_.phones : frame::phones{}};
        ctx.send(frame::frame{0, user_object_id(watcher), me_.handle, std::move(r)});
    }

    // After a change of the owner's phones or privacy: each watcher whose
    // view of them changed is told.
    void phones_fan_out(context& ctx, const frame::phones& before_phones, frame::privacy_default before_privacy) {
        if (before_phones == me_.phones && before_privacy == me_.privacy) {
            return;
        }
        auto& q = ctx.db.prepare("SELECT contact FROM reverse_contacts WHERE owner = ?1 AND listed = 1");
        q.bind(me_.handle);
        while (q.step()) {
            const std::string watcher = q.text(0);
            const std::uint32_t lists = lists_of(watcher);
            const frame::phones was = admits(before_privacy, lists) ? before_phones : frame::phones{};
            const frame::phones now = admits(me_.privacy, lists) ? me_.phones : frame::phones{};
            if (was != now) {
                tell_phones(ctx, watcher, lists);
            }
        }
    }

    // The contact's object has applied the owner's notices up to a.seq (a
    // list version of the owner's): those leave the outbox. A newer notice
    // to the same contact stays until it is acknowledged in turn.
    void acknowledged(const std::string& sender, const frame::ack& a, context& ctx) {
        ctx.db.prepare("DELETE FROM outbox WHERE owner = ?1 AND contact = ?2 AND version <= ?3")
            .bind(me_.handle, sender, a.seq)
            .run();
        if (resend_at_ != 0 && !outbox_waiting(ctx.db)) {
            resend_at_ = 0;
            resends_ = 0;
        }
    }

    bool outbox_waiting(database& db) const {
        auto& q = db.prepare("SELECT 1 FROM outbox WHERE owner = ?1 LIMIT 1");
        q.bind(me_.handle);
        const bool found = q.step();
        q.run();
        return found;
    }

    // The owner's reverse-list notice to `contact`, kept in the outbox in
    // this transaction and sent after commit: if the process dies between
    // this commit and the contact's, the backend sends it again at start.
    void tell_contact(context& ctx, const std::string& contact, frame::change_op op) {
        ctx.db
            .prepare("INSERT OR REPLACE INTO outbox (owner, contact, op, display_name, version) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(me_.handle, contact, static_cast<unsigned>(op), me_.display_name, me_.list_version)
            .run();
        ctx.send(embedded::reverse_notice(me_.handle, contact, op, me_.display_name, me_.list_version));
        if (resend_at_ == 0) {
            resend_at_ = ctx.now_ms + resend_after_ms;
            resends_ = 0;
        }
    }

    // Whether `watcher` has the owner on its forward list, as its notices said.
    bool watched_by(database& db, std::string_view watcher) const {
        auto& q = db.prepare("SELECT 1 FROM reverse_contacts WHERE owner = ?1 AND contact = ?2 AND listed = 1");
        q.bind(me_.handle, watcher);
        const bool found = q.step();
        q.run();
        return found;
    }

    void contact_presence(const std::string& sender, const frame::presence_update& u, context& ctx) {
        // A contact removed from the FL since it computed its fan-out is
        // no longer watched.
        if (u.user != sender || !(lists_of(sender) & forward_bit)) {
            return;
        }
        // A contact sends its view when it changes, and once, marked
        // initial, when it learns the owner watches it: that one repeats
        // what its answer to the owner's add showed (offline: no stored
        // view), unless the
        // contact changed in between. Only it needs the comparison, which
        // would cost every update a read.
        if (u.initial) {
            const auto before = stored_view(ctx.db, sender);
            if (is_online(u.presence.state) ? before && *before == u.presence : !before) {
                return;
            }
        }
        store_view(ctx.db, sender, u.presence);
        frame::presence_update shown = u;
        shown.initial = false;  // for the owner's endpoints, a change like any other
        ctx.publish(frame::frame{0, {}, sender, std::move(shown)});
    }

    // From a room on behalf of the inviter (the sender): the room checked
    // membership; a blocked inviter is refused here too, since a client
    // could address this object directly.
    // As a request (corr != 0), the room asks whether the owner takes it,
    // and the answer decides the room's reply to the inviter:
    // not_allowed, offline (invisible too) or ack.
    void invitation(const std::string& sender, const frame::room_invite& i, context& ctx) {
        // A one-way invitation (corr 0) that fails is dropped unanswered.
        const bool asked = ctx.current_corr() != 0;
        if (i.user != me_.handle || !i.room.starts_with("room:")) {
            if (asked) ctx.fail(error_code::malformed, "an invitation names its invitee and a room");
            return;
        }
        // Whom the owner does not admit sees it offline: the same answer, so
        // a blocked user cannot tell (MSNP 217, not 216).
        if (!admits(me_.privacy, lists_of(sender)) || (asked && !is_online(effective().state))) {
            if (asked) ctx.fail(error_code::offline, me_.handle + " is not online");
            return;
        }
        ctx.publish(frame::frame{0, {}, sender, i});
        ctx.reply(frame::ack{});
    }

    // Another object asks what `asker` may see of the owner (an add to
    // asker's forward list asks it): the owner's name, its presence as a
    // watcher on these lists sees it, and its phones when its privacy
    // admits the asker, online or not. Only the owner's object decides
    // that, from its own rows.
    void show(const std::string& asker, context& ctx) {
        const std::uint32_t lists = lists_of(asker);
        frame::presence_info seen = view(snap(), lists);
        if (admits(me_.privacy, lists)) {
            seen.phones = me_.phones;
        }
        ctx.reply(frame::presence_update{me_.handle, false, std::move(seen), 0});
    }

    // ------------------------------------------------------------ frames from the owner

    template <class Body> void on(const Body&, context& ctx) {
        ctx.fail(error_code::unsupported, "a user object does not take " + std::string(Body::name));
    }

    void on(const frame::hello& h, context& ctx) {
        if (!h.user.empty() && h.user != me_.handle) {
            ctx.fail(error_code::not_allowed, "hello for " + h.user + " sent to " + me_.handle);
            return;
        }
        if (!valid_endpoint(h.endpoint, ctx)) {
            return;
        }
        // Tickets are stateless and live a day: a password change (or the
        // account removed and made again) must end the ones issued before,
        // or whoever stole the old password keeps signing in. A ticket
        // from the very millisecond of the change passes.
        if (!h.ticket.empty()) {
            const auto changed = credentials_changed_ms(ctx.db, me_.handle);
            if (!changed || h.ticket.front().issued_ms < *changed) {
                ctx.fail(error_code::unauthenticated, "ticket issued before the password was last set; sign in again");
                return;
            }
        }
        // A hello on a known endpoint is a new session on it: it starts
        // offline again and gets a fresh initial burst.
        const snapshot before = snap();
        endpoint_state fresh;
        fresh.single_session = std::ranges::find(h.capabilities, frame::capability::single_session) !=
                               h.capabilities.end();
        if (fresh.single_session) {
            sign_out_single_sessions(h.endpoint, ctx);
        }
        endpoints_.insert_or_assign(h.endpoint, fresh);
        store_endpoint(ctx.db, h.endpoint, fresh);
        fan_out(ctx, before);
        ctx.reply(frame::ack{});
    }

    // Clients that allow one session per account (MSNP before multiple
    // points of presence) replace each other: a new login boots the others,
    // which their sessions render as `OUT OTH` (msnp-reference §4.1).
    // Endpoints of clients that allow several (a browser, MSNP16+) stay.
    void sign_out_single_sessions(const std::string& keep, context& ctx) {
        for (auto it = endpoints_.begin(); it != endpoints_.end();) {
            if (it->first == keep || !it->second.single_session) {
                ++it;
                continue;
            }
            ctx.db.prepare("DELETE FROM presence WHERE handle = ?1 AND endpoint = ?2").bind(me_.handle, it->first).run();
            ctx.publish(frame::frame{0, {}, me_.handle,
                                     frame::bye{frame::error_code::not_allowed, false, "signed in elsewhere", it->first}});
            it = endpoints_.erase(it);
        }
    }

    // Unknown endpoints are acknowledged, so a retried bye does no harm.
    void on(const frame::bye& b, context& ctx) {
        const snapshot before = snap();
        if (auto it = endpoints_.find(b.endpoint); it != endpoints_.end()) {
            endpoints_.erase(it);
            ctx.db.prepare("DELETE FROM presence WHERE handle = ?1 AND endpoint = ?2").bind(me_.handle, b.endpoint).run();
            fan_out(ctx, before);
        }
        ctx.reply(frame::ack{});
    }

    void on(const frame::presence_set& p, context& ctx) {
        const frame::presence_info& in = p.presence;
        if (!valid_endpoint(in.endpoint, ctx)) {
            return;
        }
        if (!in_range(in.state) || in.state == frame::status::offline) {
            ctx.fail(error_code::malformed, "not a state an endpoint can set (offline is for watchers only)");
            return;
        }
        if (!check_text(ctx, in.msn_object, frame::limits::msn_object, "msn_object")) {
            return;
        }
        const snapshot before = snap();
        // An endpoint that skipped hello is registered by its first presence.
        const auto it = endpoints_.try_emplace(in.endpoint).first;
        const bool first = it->second.state == frame::status::offline;
        it->second = endpoint_state{in.state, in.capabilities, in.capabilities_ex, in.msn_object, it->second.single_session};
        store_endpoint(ctx.db, in.endpoint, it->second);
        fan_out(ctx, before);
        if (first) {
            initial_burst(ctx);
        }
        ctx.reply(frame::ack{});
    }

    // A room where the owner is present asks what the owner blocks (the
    // request names the room and comes under the owner's name): the room
    // withholds what those users send from the owner, and is told of each
    // change of the block list from now on (tell_rooms).
    void on(const frame::room_invite& i, context& ctx) {
        if (i.user != me_.handle || !i.room.starts_with("room:") || i.room.size() > frame::limits::object_id) {
            ctx.fail(error_code::malformed, "a room asking for blocks names itself and the owner");
            return;
        }
        ctx.db.prepare("INSERT OR IGNORE INTO user_rooms (owner, room) VALUES (?1, ?2)").bind(me_.handle, i.room).run();
        frame::roster r;
        r.version = me_.list_version;
        r.privacy = me_.privacy;
        r.prompt = me_.prompt;
        for (const auto& [handle, c] : contacts_) {
            if (c.lists & block_bit) {
                r.entries.push_back({handle, {}, block_bit, {}, {}, {}});
            }
        }
        ctx.reply(std::move(r));
    }

    // The rooms that asked for the owner's blocks learn each change.
    void tell_rooms(context& ctx, frame::change_op op, const std::string& handle) {
        auto& q = ctx.db.prepare("SELECT room FROM user_rooms WHERE owner = ?1");
        q.bind(me_.handle);
        while (q.step()) {
            ctx.send(frame::frame{0, q.text(0), me_.handle,
                                  frame::roster_change{op, frame::list::block, handle, {}, {}, me_.list_version, {}, {}}});
        }
    }

    void on(const frame::roster_get&, context& ctx) {
        frame::roster r;
        r.version = me_.list_version;
        r.privacy = me_.privacy;
        r.prompt = me_.prompt;
        r.display_name = me_.display_name;
        r.phones = me_.phones;
        r.mobile_device = me_.mobile_device;
        r.personal_message = {me_.personal_message};
        r.current_media = {me_.current_media};
        for (const group_entry& g : groups_) {
            r.groups.push_back({g.id, g.name});
        }
        // Stored contacts and the reverse list, merged in handle order. An
        // unbounded reverse list is cut so the roster stays within its
        // frame limit; stored lists are bounded by max_list_entries.
        const auto phones = contact_phones(ctx.db);
        std::size_t reverse_only_room =
            frame::limits::roster_entries - std::min(frame::limits::roster_entries, contacts_.size());
        auto& q = ctx.db.prepare(
            "SELECT contact, display_name FROM reverse_contacts WHERE owner = ?1 AND listed = 1 ORDER BY contact");
        q.bind(me_.handle);
        std::string watcher;
        std::string watcher_name;
        const auto next_watcher = [&] {
            const bool row = q.step();
            if (row) {
                watcher = q.text(0);
                watcher_name = q.text(1);
            }
            return row;
        };
        auto stored = contacts_.begin();
        bool more = next_watcher();
        while (more || stored != contacts_.end()) {
            if (stored != contacts_.end() && (!more || stored->first <= watcher)) {
                const contact& c = stored->second;
                std::uint32_t lists = c.lists;
                if (more && stored->first == watcher) {
                    lists |= reverse_bit | ((c.lists & (allow_bit | block_bit)) ? 0 : pending_bit);
                    more = next_watcher();
                }
                frame::phones shown;
                if (const auto it = phones.find(stored->first); it != phones.end()) {
                    shown = std::move(it->second);
                }
                r.entries.push_back({stored->first, c.display_name, lists, c.contact_id, c.groups, std::move(shown)});
                ++stored;
            } else {
                // Only on the RL: on neither AL nor BL, so pending too.
                if (reverse_only_room > 0) {
                    --reverse_only_room;
                    r.entries.push_back({watcher, watcher_name, reverse_bit | pending_bit, {}, {}, {}});
                }
                more = next_watcher();
            }
        }
        ctx.reply(std::move(r));
    }

    void on(const frame::roster_change& r, context& ctx) {
        if (r.which != frame::list::forward && r.which != frame::list::allow && r.which != frame::list::block) {
            ctx.fail(error_code::not_allowed, "the reverse and pending lists follow other users' forward lists");
            return;
        }
        if (!r.group_id.empty() && r.which != frame::list::forward) {
            ctx.fail(error_code::malformed, "only forward-list contacts are in groups");
            return;
        }
        auto handle = text::normalize_handle(r.handle);
        if (!handle) {
            ctx.fail(handle.error() == text::errc::too_long ? error_code::oversize : error_code::invalid_text,
                     "handle: " + std::string(text::to_string(handle.error())));
            return;
        }
        if (*handle == me_.handle) {
            ctx.fail(error_code::not_allowed, "a user is not on its own lists");
            return;
        }
        if (!r.group_id.empty() && !find_group(r.group_id)) {
            ctx.fail(error_code::not_on_list, "no group " + r.group_id);
            return;
        }
        switch (r.op) {
        case frame::change_op::add: add_contact(r, *handle, ctx); return;
        case frame::change_op::remove: remove_contact(r, *handle, ctx); return;
        case frame::change_op::rename: rename_contact(r, *handle, ctx); return;
        }
    }

    // The owner's own name for a contact (MSNP `REA` on a contact before
    // MSNP10, `SBP … MFN` from MSNP10; msnp-reference §4.3).
    void rename_contact(const frame::roster_change& r, const std::string& handle, context& ctx) {
        if (!check_text(ctx, r.display_name, ctx.opt.name_bytes, "display name", true)) {
            return;
        }
        auto found = contacts_.find(handle);
        if (r.which != frame::list::forward || found == contacts_.end() || !(found->second.lists & forward_bit)) {
            ctx.fail(error_code::not_on_list, handle + " is not on the forward list");
            return;
        }
        found->second.display_name = r.display_name.empty() ? handle : r.display_name;
        bump_version(ctx);
        store_contact(ctx.db, handle, found->second);
        ctx.reply(frame::roster_change{frame::change_op::rename, frame::list::forward, handle,
                                       found->second.display_name, {}, me_.list_version, found->second.contact_id, {}});
    }

    // An add asks the contact's object first when the contact must exist
    // (FL) or its own name is to be stored (nothing else names it): the
    // owner's frames wait until it answers (answered), and the add is
    // checked again and made then, with what the contact showed.
    void add_contact(const frame::roster_change& r, const std::string& handle, context& ctx,
                     const frame::presence_update* shown = nullptr, bool asked = false) {
        if (!check_text(ctx, r.display_name, ctx.opt.name_bytes, "display name", true)) {
            return;
        }
        const std::uint32_t which = bit(r.which);
        const auto found = contacts_.find(handle);
        const std::uint32_t old_lists = found == contacts_.end() ? 0 : found->second.lists;
        if (old_lists & which) {
            if (r.which == frame::list::forward && !r.group_id.empty()) {
                add_to_group(handle, found->second, r.group_id, ctx);
            } else if (r.which == frame::list::forward) {
                ctx.fail(error_code::already_on_list, handle + " is already on the forward list");
            } else {
                // Allow and block are privacy settings: restating one changes
                // nothing and succeeds. msn-pecan treats every MSNP error but
                // 208/913 as fatal and re-sends list edits its own cache
                // believes are needed (msnp-reference 3.10).
                const contact& c = found->second;
                ctx.reply(frame::roster_change{frame::change_op::add, r.which, handle, c.display_name, {},
                                               me_.list_version, c.contact_id, {}});
            }
            return;
        }
        const std::uint32_t opposite =
            r.which == frame::list::allow ? block_bit : r.which == frame::list::block ? allow_bit : 0;
        if (old_lists & opposite) {  // MSNP 219
            ctx.fail(error_code::not_allowed, handle + " is on the opposite list: allow and block are exclusive");
            return;
        }
        const auto on_list = static_cast<std::size_t>(
            std::count_if(contacts_.begin(), contacts_.end(), [&](const auto& kv) { return kv.second.lists & which; }));
        if (on_list >= ctx.opt.max_list_entries) {
            ctx.fail(error_code::list_full, "the " + std::string(to_string(r.which)) + " list holds " +
                                                std::to_string(ctx.opt.max_list_entries) + " contacts at most");
            return;
        }
        const bool needs_name = r.display_name.empty() && (found == contacts_.end() || found->second.display_name.empty());
        if (!asked && (r.which == frame::list::forward || needs_name)) {
            ask_contact(r, handle, ctx);
            return;
        }
        std::optional<std::string> id;
        if (found == contacts_.end()) {
            id = contact_uuid(me_.handle, handle);
            if (!id) {
                ctx.fail(error_code::internal, "cannot derive a contact id");
                return;
            }
        }

        contact& c = found != contacts_.end() ? found->second : contacts_[handle];
        if (id) {
            c.contact_id = std::move(*id);
        }
        if (!r.display_name.empty()) {
            c.display_name = r.display_name;
        } else if (c.display_name.empty()) {
            c.display_name = shown && !shown->presence.display_name.empty() ? shown->presence.display_name : handle;
        }
        c.lists |= which;
        bump_version(ctx);
        store_contact(ctx.db, handle, c);
        if (!r.group_id.empty()) {
            c.groups.push_back(r.group_id);
            store_membership(ctx.db, handle, r.group_id);
        }
        if (r.which == frame::list::forward) {
            tell_contact(ctx, handle, frame::change_op::add);
            // Like the initial burst, presence replies come before the
            // terminal reply; an MSNP codec writes its ILN after the ADD.
            const frame::presence_info& seen = shown->presence;
            store_view(ctx.db, handle, seen);
            if (is_online(seen.state)) {
                ctx.reply(frame::presence_update{handle, false, seen});
            }
        } else {
            refresh_watcher(ctx, handle, old_lists);
            if (r.which == frame::list::block) {
                tell_rooms(ctx, frame::change_op::add, handle);
            }
        }
        frame::roster_change reply{frame::change_op::add, r.which, handle, c.display_name, r.group_id,
                                   me_.list_version, c.contact_id, {}};
        if (r.which == frame::list::forward) {
            reply.phones = shown->presence.phones;
            store_phones(ctx.db, handle, reply.phones);
        }
        ctx.reply(std::move(reply));
    }

    void ask_contact(const frame::roster_change& r, const std::string& handle, context& ctx) {
        waiting_request w;
        w.id = ctx.ask(frame::frame{0, user_object_id(handle), me_.handle, frame::presence_update{handle, false, {}, 0}});
        w.until_ms = ctx.now_ms + static_cast<std::uint64_t>(ctx.opt.request_timeout.count());
        w.sink = ctx.current_sink();
        w.corr = ctx.current_corr();
        w.request = frame::frame{ctx.current_corr(), user_object_id(me_.handle), me_.handle, r};
        waiting_.push_back(std::move(w));
    }

    // The contact's answer to ask_contact: the add goes on, unless the FL
    // contact has no account, or no answer could come (the contact's
    // backend is down: the client may try again). An AL or BL contact
    // without an account, or whose object did not answer, is named by
    // its handle.
    void answered(const frame::frame& request, const frame::frame& reply, context& ctx) {
        const auto* r = std::get_if<frame::roster_change>(&request.content);
        if (!r) {
            return;
        }
        const std::string handle = *text::normalize_handle(r->handle);
        const auto* shown = std::get_if<frame::presence_update>(&reply.content);
        if (shown && shown->user != handle) {
            shown = nullptr;
        }
        if (r->which == frame::list::forward && !shown) {
            const auto* e = std::get_if<frame::error>(&reply.content);
            const error_code code = e ? e->code : error_code::internal;
            ctx.fail(code == error_code::unknown_object ? code : error_code::backend_unavailable,
                     code == error_code::unknown_object ? "no user " + handle
                                                        : "the contact's object did not answer: " +
                                                              (e ? e->reason : std::string("unexpected reply")));
            return;
        }
        add_contact(*r, handle, ctx, shown, true);
    }

    void add_to_group(const std::string& handle, contact& c, const std::string& group_id, context& ctx) {
        if (std::binary_search(c.groups.begin(), c.groups.end(), group_id)) {
            ctx.fail(error_code::already_on_list, handle + " is already in group " + group_id);
            return;
        }
        c.groups.insert(std::lower_bound(c.groups.begin(), c.groups.end(), group_id), group_id);
        bump_version(ctx);
        store_membership(ctx.db, handle, group_id);
        ctx.reply(frame::roster_change{frame::change_op::add, frame::list::forward, handle, c.display_name, group_id,
                                       me_.list_version, c.contact_id, {}});
    }

    void remove_contact(const frame::roster_change& r, const std::string& handle, context& ctx) {
        const std::uint32_t which = bit(r.which);
        const auto found = contacts_.find(handle);
        if (found == contacts_.end() || !(found->second.lists & which)) {
            if (r.which != frame::list::forward && r.group_id.empty()) {
                // Lifting a block or an allowance that is not there: already
                // done, so it succeeds without a change (see add_contact).
                ctx.reply(frame::roster_change{frame::change_op::remove, r.which, handle, {}, {}, me_.list_version,
                                               {}, {}});
                return;
            }
            ctx.fail(error_code::not_on_list, handle + " is not on the " + std::string(to_string(r.which)) + " list");
            return;
        }
        contact& c = found->second;
        if (!r.group_id.empty()) {
            const auto g = std::lower_bound(c.groups.begin(), c.groups.end(), r.group_id);
            if (g == c.groups.end() || *g != r.group_id) {
                ctx.fail(error_code::not_on_list, handle + " is not in group " + r.group_id);
                return;
            }
            c.groups.erase(g);
            bump_version(ctx);
            ctx.db.prepare("DELETE FROM contact_groups WHERE owner = ?1 AND contact = ?2 AND group_id = ?3")
                .bind(me_.handle, handle, r.group_id)
                .run();
            ctx.reply(
                frame::roster_change{frame::change_op::remove, r.which, handle, {}, r.group_id, me_.list_version, {},
                                     {}});
            return;
        }

        const std::uint32_t old_lists = c.lists;
        c.lists &= ~which;
        if (r.which == frame::list::forward && !c.groups.empty()) {
            c.groups.clear();
            ctx.db.prepare("DELETE FROM contact_groups WHERE owner = ?1 AND contact = ?2")
                .bind(me_.handle, handle)
                .run();
        }
        if (r.which == frame::list::forward) {
            store_view(ctx.db, handle, offline_as(handle));  // no longer watched
            store_phones(ctx.db, handle, {});
        }
        bump_version(ctx);
        if (c.lists == 0) {
            contacts_.erase(found);
            ctx.db.prepare("DELETE FROM contacts WHERE owner = ?1 AND contact = ?2").bind(me_.handle, handle).run();
        } else {
            store_contact(ctx.db, handle, c);
        }
        ctx.reply(frame::roster_change{frame::change_op::remove, r.which, handle, {}, {}, me_.list_version, {}, {}});
        if (r.which == frame::list::forward) {
            tell_contact(ctx, handle, frame::change_op::remove);
        } else {
            refresh_watcher(ctx, handle, old_lists);
            if (r.which == frame::list::block) {
                tell_rooms(ctx, frame::change_op::remove, handle);
            }
        }
    }

    void on(const frame::group_change& g, context& ctx) {
        switch (g.op) {
        case frame::change_op::add: {
            if (!valid_group_name(g.target.name, ctx)) {
                return;
            }
            if (groups_.size() >= ctx.opt.max_groups) {
                ctx.fail(error_code::list_full, std::to_string(ctx.opt.max_groups) + " groups at most");
                return;
            }
            auto id = group_uuid(me_.handle, me_.list_version + 1);
            if (!id) {
                ctx.fail(error_code::internal, "cannot derive a group id");
                return;
            }
            bump_version(ctx);
            ctx.db.prepare("INSERT INTO groups (owner, id, name, created_version) VALUES (?1, ?2, ?3, ?4)")
                .bind(me_.handle, *id, g.target.name, me_.list_version)
                .run();
            groups_.push_back({*id, g.target.name});
            ctx.reply(frame::group_change{frame::change_op::add, {std::move(*id), g.target.name}, me_.list_version});
            return;
        }
        case frame::change_op::rename: {
            group_entry* target = find_group(g.target.id);
            if (!target) {
                ctx.fail(error_code::not_on_list, "no group " + g.target.id);
                return;
            }
            if (!valid_group_name(g.target.name, ctx)) {
                return;
            }
            target->name = g.target.name;
            bump_version(ctx);
            ctx.db.prepare("UPDATE groups SET name = ?3 WHERE owner = ?1 AND id = ?2")
                .bind(me_.handle, target->id, target->name)
                .run();
            ctx.reply(frame::group_change{frame::change_op::rename, {target->id, target->name}, me_.list_version});
            return;
        }
        case frame::change_op::remove: {
            const auto target = std::find_if(groups_.begin(), groups_.end(),
                                             [&](const group_entry& e) { return e.id == g.target.id; });
            if (target == groups_.end()) {
                ctx.fail(error_code::not_on_list, "no group " + g.target.id);
                return;
            }
            // Its contacts stay on the forward list, in no group or others.
            for (auto& kv : contacts_) {
                std::erase(kv.second.groups, target->id);
            }
            bump_version(ctx);
            ctx.db.prepare("DELETE FROM contact_groups WHERE owner = ?1 AND group_id = ?2")
                .bind(me_.handle, target->id)
                .run();
            ctx.db.prepare("DELETE FROM groups WHERE owner = ?1 AND id = ?2").bind(me_.handle, target->id).run();
            frame::group_change reply{frame::change_op::remove, {target->id, target->name}, me_.list_version};
            groups_.erase(target);
            ctx.reply(std::move(reply));
            return;
        }
        }
        ctx.fail(error_code::malformed, "unknown group operation");
    }

    // The frame carries both settings, so a successful privacy_set stores
    // both explicitly. Restating what is stored succeeds and changes
    // nothing, not even the version: Escargot's 218 "already in that mode"
    // signs msn-pecan out, which sends BLP after every sign-on
    // (msnp-reference 3.10, 4.3 recommendation).
    void on(const frame::privacy_set& p, context& ctx) {
        if (!in_range(p.privacy) || !in_range(p.prompt)) {
            ctx.fail(error_code::malformed, "unknown privacy setting");
            return;
        }
        if (me_.privacy_set && me_.prompt_set && p.privacy == me_.privacy && p.prompt == me_.prompt) {
            ctx.reply(frame::privacy_set{p.privacy, p.prompt, me_.list_version});
            return;
        }
        const snapshot before = snap();
        me_.privacy = p.privacy;
        me_.prompt = p.prompt;
        me_.privacy_set = true;
        me_.prompt_set = true;
        ctx.db
            .prepare("UPDATE users SET privacy = ?2, privacy_set = 1, prompt = ?3, prompt_set = 1 WHERE handle = ?1")
            .bind(me_.handle, static_cast<unsigned>(p.privacy), static_cast<unsigned>(p.prompt))
            .run();
        bump_version(ctx);
        fan_out(ctx, before);
        phones_fan_out(ctx, me_.phones, before.privacy);
        ctx.reply(frame::privacy_set{p.privacy, p.prompt, me_.list_version});
    }

    // Only the fields the frame names change; the others keep their values.
    void on(const frame::profile_set& p, context& ctx) {
        namespace bits = frame::profile_bits;
        if (p.fields == 0 || (p.fields & ~bits::all)) {
            ctx.fail(error_code::malformed, "profile_set must name the fields it changes, and only profile fields");
            return;
        }
        const auto wanted = [&](std::uint32_t bit) { return (p.fields & bit) != 0; };
        if ((wanted(bits::display_name) && !check_text(ctx, p.display_name, ctx.opt.name_bytes, "display name", true)) ||
            (wanted(bits::personal_message) &&
             !check_text(ctx, p.personal_message, frame::limits::personal_message, "personal message", true)) ||
            (wanted(bits::current_media) &&
             !check_text(ctx, p.current_media, frame::limits::personal_message, "current media")) ||
            (wanted(bits::phone_home) && !check_text(ctx, p.phones.home, frame::limits::phone, "home phone")) ||
            (wanted(bits::phone_work) && !check_text(ctx, p.phones.work, frame::limits::phone, "work phone")) ||
            (wanted(bits::phone_mobile) && !check_text(ctx, p.phones.mobile, frame::limits::phone, "mobile phone"))) {
            return;
        }
        const snapshot before = snap();
        if (wanted(bits::display_name)) {
            // MSNP clients show the handle for a user without a name.
            me_.display_name = p.display_name.empty() ? me_.handle : p.display_name;
        }
        if (wanted(bits::personal_message)) me_.personal_message = p.personal_message;
        if (wanted(bits::current_media)) me_.current_media = p.current_media;
        if (wanted(bits::phone_home)) me_.phones.home = p.phones.home;
        if (wanted(bits::phone_work)) me_.phones.work = p.phones.work;
        if (wanted(bits::phone_mobile)) me_.phones.mobile = p.phones.mobile;
        if (wanted(bits::mobile_pageable)) me_.phones.pageable = p.phones.pageable;
        if (wanted(bits::mobile_device)) me_.mobile_device = p.mobile_device;
        ctx.db
            .prepare("UPDATE users SET display_name = ?2, personal_message = ?3, current_media = ?4, phone_home = ?5, "
                     "phone_work = ?6, phone_mobile = ?7, mobile_pageable = ?8, mobile_device = ?9 WHERE handle = ?1")
            .bind(me_.handle, me_.display_name, me_.personal_message, me_.current_media, me_.phones.home,
                  me_.phones.work, me_.phones.mobile, me_.phones.pageable, me_.mobile_device)
            .run();
        fan_out(ctx, before);
        phones_fan_out(ctx, before.effective.phones, me_.privacy);
        ctx.reply(frame::ack{});
    }

    // The phones forward-list contacts show the owner, as they said.
    std::map<std::string, frame::phones, std::less<>> contact_phones(database& db) const {
        std::map<std::string, frame::phones, std::less<>> out;
        auto& q = db.prepare(
            "SELECT contact, phone_home, phone_work, phone_mobile, mobile_pageable FROM contact_phones WHERE owner = ?1");
        q.bind(me_.handle);
        while (q.step()) {
            if (lists_of(q.text(0)) & forward_bit) {
                out.emplace(q.text(0), frame::phones{q.text(1), q.text(2), q.text(3), q.integer(4) != 0});
            }
        }
        return out;
    }

    // ------------------------------------------------------------ presence

    // The most available endpoint's presence with the profile.
    frame::presence_info effective() const {
        frame::presence_info p;
        for (const auto& [id, e] : endpoints_) {
            if (availability(e.state) > availability(p.state)) {
                p.state = e.state;
                p.endpoint = id;
                p.capabilities = e.capabilities;
                p.capabilities_ex = e.capabilities_ex;
                p.msn_object = e.msn_object;
            }
        }
        p.display_name = me_.display_name;
        p.personal_message = me_.personal_message;
        p.current_media = me_.current_media;
        p.phones = me_.phones;
        return p;
    }

    snapshot snap() const { return {effective(), me_.privacy}; }

    // What a watcher with these list bits in the owner's lists sees;
    // invisible shows as offline.
    static frame::presence_info view(const snapshot& s, std::uint32_t lists) {
        if (is_online(s.effective.state) && admits(s.privacy, lists)) {
            return s.effective;
        }
        return offline_as(s.effective.display_name);
    }

    void notify_if_changed(context& ctx, const std::string& watcher, const frame::presence_info& before,
                           frame::presence_info after) {
        const bool offline_both = before.state == frame::status::offline && after.state == frame::status::offline;
        if (offline_both || before == after) {
            return;
        }
        const std::uint32_t changed = differences(before, after);
        ctx.send(frame::frame{0, user_object_id(watcher), me_.handle,
                              frame::presence_update{me_.handle, false, std::move(after), changed}});
    }

    // After a change of presence, profile or privacy: every watcher (on the
    // reverse list) whose view of the owner changed is told its new view.
    void fan_out(context& ctx, const snapshot& before) {
        const snapshot after = snap();
        if (before == after || (!is_online(before.effective.state) && !is_online(after.effective.state))) {
            return;  // nothing changed, or everyone saw offline before and after
        }
        auto& q = ctx.db.prepare("SELECT contact FROM reverse_contacts WHERE owner = ?1 AND listed = 1");
        q.bind(me_.handle);
        while (q.step()) {
            const std::string watcher = q.text(0);
            const std::uint32_t lists = lists_of(watcher);
            notify_if_changed(ctx, watcher, view(before, lists), view(after, lists));
        }
    }

    // After an allow- or block-list edit of one contact: blocking takes
    // effect at once.
    void refresh_watcher(context& ctx, const std::string& watcher, std::uint32_t old_lists) {
        const std::uint32_t new_lists = lists_of(watcher);
        if (admits(me_.privacy, old_lists) != admits(me_.privacy, new_lists) && me_.phones != frame::phones{} &&
            watched_by(ctx.db, watcher)) {
            tell_phones(ctx, watcher, new_lists);
        }
        const snapshot now = snap();
        if (!is_online(now.effective.state) || !watched_by(ctx.db, watcher)) {
            return;
        }
        notify_if_changed(ctx, watcher, view(now, old_lists), view(now, lists_of(watcher)));
    }

    // MSNP's ILN burst: every forward-list contact the owner sees online,
    // as the contacts last showed it (contact_views), in handle order.
    void initial_burst(context& ctx) {
        auto& q = ctx.db.prepare(
            "SELECT contact, state, display_name, personal_message, current_media, capabilities, capabilities_ex, "
            "msn_object, endpoint, phone_home, phone_work, phone_mobile, mobile_pageable FROM contact_views "
            "WHERE owner = ?1 ORDER BY contact");
        q.bind(me_.handle);
        while (q.step()) {
            std::string handle = q.text(0);
            if (lists_of(handle) & forward_bit) {
                ctx.reply(frame::presence_update{std::move(handle), true, view_at(q, 1)});
            }
        }
    }

    // A contact_views row's presence, from column `first` on.
    static frame::presence_info view_at(const statement& q, int first) {
        frame::presence_info p;
        p.state = static_cast<frame::status>(q.integer(first));
        p.display_name = q.text(first + 1);
        p.personal_message = q.text(first + 2);
        p.current_media = q.text(first + 3);
        p.capabilities = static_cast<std::uint64_t>(q.integer(first + 4));
        p.capabilities_ex = static_cast<std::uint64_t>(q.integer(first + 5));
        p.msn_object = q.text(first + 6);
        p.endpoint = q.text(first + 7);
        p.phones = {q.text(first + 8), q.text(first + 9), q.text(first + 10), q.integer(first + 11) != 0};
        return p;
    }

    // What `contact` last showed the owner, when that was online.
    std::optional<frame::presence_info> stored_view(database& db, std::string_view contact) const {
        auto& q = db.prepare(
            "SELECT state, display_name, personal_message, current_media, capabilities, capabilities_ex, msn_object, "
            "endpoint, phone_home, phone_work, phone_mobile, mobile_pageable FROM contact_views "
            "WHERE owner = ?1 AND contact = ?2");
        q.bind(me_.handle, contact);
        std::optional<frame::presence_info> out;
        if (q.step()) {
            out = view_at(q, 0);
        }
        q.run();
        return out;
    }

    // Keeps what `contact` shows the owner now; an offline view keeps nothing.
    void store_view(database& db, const std::string& contact, const frame::presence_info& p) {
        if (!is_online(p.state)) {
            db.prepare("DELETE FROM contact_views WHERE owner = ?1 AND contact = ?2").bind(me_.handle, contact).run();
            return;
        }
        db.prepare(
              "INSERT INTO contact_views (owner, contact, state, display_name, personal_message, current_media, "
              "capabilities, capabilities_ex, msn_object, endpoint, phone_home, phone_work, phone_mobile, "
              "mobile_pageable) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
              "ON CONFLICT (owner, contact) DO UPDATE SET state = ?3, display_name = ?4, personal_message = ?5, "
              "current_media = ?6, capabilities = ?7, capabilities_ex = ?8, msn_object = ?9, endpoint = ?10, "
              "phone_home = ?11, phone_work = ?12, phone_mobile = ?13, mobile_pageable = ?14")
            .bind(me_.handle, contact, static_cast<unsigned>(p.state), p.display_name, p.personal_message,
                  p.current_media, p.capabilities, p.capabilities_ex, p.msn_object, p.endpoint, p.phones.home,
                  p.phones.work, p.phones.mobile, p.phones.pageable)
            .run();
    }

    // ------------------------------------------------------------ helpers

    bool valid_endpoint(const std::string& endpoint, context& ctx) {
        if (endpoint.empty()) {
            ctx.fail(error_code::malformed, "an endpoint id is required");
            return false;
        }
        return check_text(ctx, endpoint, frame::limits::token, "endpoint");
    }

    bool valid_group_name(const std::string& name, context& ctx) {
        if (name.empty()) {
            ctx.fail(error_code::invalid_text, "a group needs a name");
            return false;
        }
        if (!check_text(ctx, name, frame::limits::group_name, "group name", true)) {
            return false;
        }
        if (std::any_of(groups_.begin(), groups_.end(), [&](const group_entry& e) { return e.name == name; })) {
            ctx.fail(error_code::already_on_list, "a group is already named " + name);
            return false;
        }
        return true;
    }

    group_entry* find_group(std::string_view id) {
        const auto it = std::find_if(groups_.begin(), groups_.end(), [&](const group_entry& e) { return e.id == id; });
        return it == groups_.end() ? nullptr : &*it;
    }

    std::uint32_t lists_of(std::string_view handle) const {
        const auto it = contacts_.find(handle);
        return it == contacts_.end() ? 0 : it->second.lists;
    }

    void bump_version(context& ctx) {
        ++me_.list_version;
        ctx.db.prepare("UPDATE users SET list_version = ?2 WHERE handle = ?1").bind(me_.handle, me_.list_version).run();
    }

    void store_contact(database& db, const std::string& handle, const contact& c) {
        db.prepare(
              "INSERT INTO contacts (owner, contact, lists, display_name, contact_id) VALUES (?1, ?2, ?3, ?4, ?5) "
              "ON CONFLICT (owner, contact) DO UPDATE SET lists = excluded.lists, display_name = excluded.display_name")
            .bind(me_.handle, handle, c.lists, c.display_name, c.contact_id)
            .run();
    }

    void store_membership(database& db, const std::string& handle, const std::string& group_id) {
        db.prepare("INSERT INTO contact_groups (owner, contact, group_id) VALUES (?1, ?2, ?3)")
            .bind(me_.handle, handle, group_id)
            .run();
    }

    void store_endpoint(database& db, const std::string& endpoint, const endpoint_state& e) {
        db.prepare(
              "INSERT OR REPLACE INTO presence (handle, endpoint, state, capabilities, capabilities_ex, msn_object, "
              "single_session) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .bind(me_.handle, endpoint, static_cast<unsigned>(e.state), e.capabilities, e.capabilities_ex,
                  e.msn_object, e.single_session ? 1 : 0)
            .run();
    }

    user_row me_;  // profile, privacy and list version; me_.handle is the owner
    bool exists_ = false;
    // When unacknowledged notices are sent again (0: none waiting), and how
    // often they were in this run.
    std::uint64_t resend_at_ = 0;
    unsigned resends_ = 0;
    bool outbox_checked_ = false;
    std::map<std::string, contact, std::less<>> contacts_;  // FL, AL and BL, by handle
    std::vector<group_entry> groups_;                      // in creation order
    std::map<std::string, endpoint_state, std::less<>> endpoints_;
    // The owner's request waiting for another object's answer, and the
    // owner's frames that came after it, with their reply sinks.
    struct held {
        frame::frame f;
        backends::frame_sink sink;
    };
    std::vector<waiting_request> waiting_;
    std::deque<held> held_;
};

}  // namespace

std::unique_ptr<object> load_user(database& db, std::string_view handle) {
    return std::make_unique<user_object>(db, handle);
}

bool user_needs_sync(const frame::frame& f) { return user_object::needs_sync(f); }

}  // namespace switchyard::gateway::embedded
