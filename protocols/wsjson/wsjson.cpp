// The WebSocket JSON protocol, version 1 (README.md): requests with an `id`
// the reply echoes, events without one. Each request becomes frames to
// `user:<handle>` or `room:<id>`, the replies to which are matched by corr;
// what the watched objects publish becomes events. The connection keeps
// only what later messages need: the handle, the endpoint, the rooms it
// joined with their members and the last seq delivered from each.
#include "protocols/wsjson/wsjson.hpp"

#include "protocols/text/text.hpp"
#include "protocols/wsjson/render.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <tl/expected.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace switchyard::wsjson {

namespace json = boost::json;
using frame::error_code;

namespace {

constexpr std::size_t max_id_bytes = 64;          // a request id string
constexpr std::size_t max_client_id_bytes = 64;   // a message's client_id
constexpr std::size_t max_room_name_bytes = 64;   // a named room's name
constexpr std::size_t max_held_events = 512;      // published frames held during login or a join
constexpr std::uint64_t notice_repeat_ms = 30000; // one opaque notice per sender and kind in this time

// A refused request: a protocol code (bad_json, …) or a frame error's name.
struct refusal {
    std::string code;
    std::string reason;
};
template <class T> using checked = tl::expected<T, refusal>;

refusal bad_field(std::string_view key, std::string_view what) {
    return {"bad_field", "\"" + std::string(key) + "\" must be " + std::string(what)};
}
refusal missing(std::string_view key) { return {"missing_field", "\"" + std::string(key) + "\" is required"}; }
refusal frame_refusal(error_code c, std::string reason) {
    return {std::string(frame::to_string(c)), std::move(reason)};
}

checked<std::optional<std::string>> string_field(const json::object& o, std::string_view key, std::size_t max,
                                                 bool required) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) {
        if (required) return tl::unexpected(missing(key));
        return std::optional<std::string>{};
    }
    const auto* s = v->if_string();
    if (!s) return tl::unexpected(bad_field(key, "a string"));
    if (s->size() > max) {
        return tl::unexpected(
            frame_refusal(error_code::oversize, "\"" + std::string(key) + "\" is over " + std::to_string(max) + " bytes"));
    }
    return std::optional<std::string>(std::string(*s));
}

checked<std::optional<std::uint64_t>> uint_field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::optional<std::uint64_t>{};
    if (const auto* i = v->if_int64(); i && *i >= 0) return std::optional<std::uint64_t>(static_cast<std::uint64_t>(*i));
    if (const auto* u = v->if_uint64()) return std::optional<std::uint64_t>(*u);
    return tl::unexpected(bad_field(key, "a non-negative integer"));
}

checked<std::optional<bool>> bool_field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    if (!v || v->is_null()) return std::optional<bool>{};
    if (!v->is_bool()) return tl::unexpected(bad_field(key, "a boolean"));
    return std::optional<bool>(v->get_bool());
}

checked<std::string> handle_field(const json::object& o, std::string_view key) {
    auto s = string_field(o, key, 4 * frame::limits::handle, true);
    if (!s) return tl::unexpected(s.error());
    auto h = text::normalize_handle(**s);
    if (!h) return tl::unexpected(frame_refusal(error_code::invalid_text, "\"" + std::string(key) + "\" is not a handle"));
    return std::move(*h);
}

// Room ids as clients see them: the object id without "room:". Ids come
// from services::new_room_id, MSNP switchboards or named rooms; all are
// printable ASCII without spaces.
checked<std::string> room_field(const json::object& o, std::string_view key = "room") {
    auto s = string_field(o, key, frame::limits::token, true);
    if (!s) return tl::unexpected(s.error());
    const std::string& id = **s;
    if (id.empty() || !std::ranges::all_of(id, [](char c) { return c > 0x20 && c < 0x7f && c != '"' && c != '\\'; })) {
        return tl::unexpected(bad_field(key, "a room id"));
    }
    return "room:" + id;
}

// Named rooms: 1..64 bytes of a-z 0-9 - _ . after ASCII lower-casing, so a
// name has exactly one room id ("name:<name>").
checked<std::string> room_name_field(const json::object& o) {
    auto s = string_field(o, "name", max_room_name_bytes, true);
    if (!s) return tl::unexpected(s.error());
    std::string name = **s;
    for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    const bool ok = !name.empty() && std::ranges::all_of(name, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
    if (!ok) return tl::unexpected(bad_field("name", "1 to 64 of a-z 0-9 - _ ."));
    return name;
}

std::string user_object(std::string_view handle) { return "user:" + std::string(handle); }
std::string_view room_id(std::string_view object) {
    return object.starts_with("room:") ? object.substr(5) : object;
}

json::object event(std::string_view type) {
    json::object o;
    o["type"] = type;
    return o;
}

// A request in flight: one client message, answered once every frame it
// sent has been answered.
struct op {
    enum class kind : std::uint8_t { login, generic, send, join, chat_open };
    kind k = kind::generic;
    json::value id;        // null: no reply on success
    std::string type;      // the request's type, for errors
    int waiting = 0;       // frames not yet answered
    std::optional<refusal> failed;
    json::object result;
    // login
    std::string handle;
    std::vector<frame::ticket_info> ticket;  // a token login: the token's issue time
    frame::status status = frame::status::online;
    std::optional<frame::roster> roster;
    std::vector<frame::presence_update> initial;
    // join, chat_open
    std::string room;  // object id
    std::string title;
    bool named = false;
    std::optional<std::uint64_t> since;
    std::string epoch;            // the epoch the client saw with since_seq
    std::string room_epoch;       // the room's, from its room_members reply
    std::optional<std::string> reset;  // decided before the history came
    std::uint64_t asked_after = 0;     // the history's after_seq
    std::vector<std::string> invitees;
    json::array invited;
    json::array not_invited;
};

// Which of an op's frames a reply answers.
enum class part : std::uint8_t { primary, secondary, hello, roster, presence, create, join, history, invite };

struct slot {
    std::shared_ptr<op> o;
    part p;
    std::string arg;  // invite: the invitee
};

struct room_state {
    bool joined = false;                          // the join reply was sent
    std::map<std::string, frame::member> members;  // by endpoint; change it through put and erase
    // By user: how many of `members` are theirs, and the display name the
    // latest of them brought. Kept with `members`, so that a published frame
    // costs a lookup here, not a pass over the whole room.
    struct user_entry {
        std::uint32_t endpoints = 0;
        std::string display_name;
    };
    std::unordered_map<std::string, user_entry> users;
    std::uint64_t delivered = 0;                  // the last seq given to the client
    std::vector<frame::frame> held;               // published while the join was in flight
    std::map<std::string, std::uint64_t> notices;  // sender + content type -> when last noticed

    void put(const frame::member& m) {
        if (const auto it = members.find(m.endpoint); it != members.end()) erase(it);
        members.emplace(m.endpoint, m);
        user_entry& u = users[m.user];
        ++u.endpoints;
        if (!m.display_name.empty()) u.display_name = m.display_name;
    }
    void erase(std::map<std::string, frame::member>::iterator it) {
        if (const auto u = users.find(it->second.user); u != users.end() && --u->second.endpoints == 0) users.erase(u);
        members.erase(it);
    }
    bool has_user(const std::string& user) const { return users.contains(user); }
};

}  // namespace

struct connection::impl {
    enum class stage : std::uint8_t { start, checking, logging_in, online, closed };

    services* svc = nullptr;
    wsjson::limits lim;
    stage at = stage::start;
    bool was_online = false;  // reached stage::online once
    std::string handle;
    std::string endpoint;
    std::string display_name;
    std::string client_name;
    std::shared_ptr<op> login_op;  // while checking or logging in
    std::map<std::uint64_t, slot> requests;
    std::map<std::string, room_state> rooms;
    std::vector<frame::frame> held;  // published during login
    std::uint64_t next_corr = 1;
    std::uint64_t generated = 0;
    // Token bucket (limits::rate_*), on the services' clock.
    double tokens = 0;
    std::uint64_t refilled_ms = 0;
    bool bucket_started = false;
    std::uint32_t strikes = 0;
    frame::privacy_default privacy = frame::privacy_default::allow;
    frame::add_prompt prompt = frame::add_prompt::prompt;

    impl() = default;
    impl(services& s, wsjson::limits l) : svc(&s), lim(l) {}

    // ------------------------------------------------------------ output

    static void put(frame::output& out, const json::object& o) { out.messages.push_back(json::serialize(o)); }

    static void put_error(frame::output& out, const json::value& id, std::string_view request, const refusal& r) {
        json::object o = event("error");
        o["id"] = id;
        if (!request.empty()) o["request"] = request;
        o["code"] = r.code;
        o["reason"] = r.reason;
        put(out, o);
    }

    // `always`: results a client cannot do without (login, joins) are sent
    // even for a request without an id, with "id": null.
    static void put_reply(frame::output& out, const json::value& id, json::object result, bool always = false) {
        if (id.is_null() && !always) return;
        json::object o = event("reply");
        o["id"] = id;
        o["result"] = std::move(result);
        put(out, o);
    }

    frame::output close(close_code code, std::string reason) {
        frame::output out;
        if (at != stage::closed) {
            out.append(leave_all(frame::leave_reason::dropped));
            at = stage::closed;
        }
        out.close = true;
        out.close_code = static_cast<std::uint16_t>(code);
        out.close_reason = std::move(reason);
        return out;
    }

    // Leaves every room and unwatches everything: the connection is ending.
    frame::output leave_all(frame::leave_reason why) {
        frame::output out;
        for (auto& [object, r] : rooms) {
            out.frames.push_back(frame::frame{0, object, handle, frame::room_leave{handle, endpoint, why}});
            out.unwatch.push_back(object);
        }
        rooms.clear();
        requests.clear();
        return out;
    }

    void send(frame::output& out, const std::shared_ptr<op>& o, part p, std::string object, frame::body b,
              std::string arg = {}) {
        const std::uint64_t corr = next_corr++;
        out.frames.push_back(frame::frame{corr, std::move(object), handle, std::move(b)});
        requests.emplace(corr, slot{o, p, std::move(arg)});
        ++o->waiting;
    }

    std::size_t ops_in_flight() const {
        std::vector<const op*> seen;
        for (const auto& [corr, s] : requests) {
            if (std::ranges::find(seen, s.o.get()) == seen.end()) seen.push_back(s.o.get());
        }
        return seen.size();
    }

    // ------------------------------------------------------------ input

    // True when the message may be handled; else `out` says why not.
    bool within_rate(frame::output& out) {
        if (!svc || lim.rate_per_second == 0) return true;
        const std::uint64_t now = svc->now_ms();
        if (!bucket_started) {
            bucket_started = true;
            tokens = lim.rate_burst;
            refilled_ms = now;
        } else if (now > refilled_ms) {
            tokens = std::min<double>(lim.rate_burst,
                                      tokens + static_cast<double>(now - refilled_ms) * lim.rate_per_second / 1000.0);
            refilled_ms = now;
        }
        if (tokens >= 1) {
            tokens -= 1;
            strikes = 0;
            return true;
        }
        if (++strikes >= lim.rate_strikes) {
            out = close(close_code::policy_violation, "rate limit exceeded");
        } else {
            put_error(out, nullptr, {}, frame_refusal(error_code::rate_limited, "too many messages; this one was dropped"));
        }
        return false;
    }

    frame::output on_message(std::string_view text) {
        if (at == stage::closed) return {};
        if (text.size() > lim.payload_bytes) {
            return close(close_code::too_big, "message over " + std::to_string(lim.payload_bytes) + " bytes");
        }
        if (!text::is_valid_utf8(text)) return close(close_code::invalid_payload, "text message is not UTF-8");
        frame::output out;
        if (!within_rate(out)) return out;

        boost::system::error_code ec;
        json::value v = json::parse(text, ec);
        if (ec) {
            put_error(out, nullptr, {}, {"bad_json", "not JSON: " + ec.message()});
            return out;
        }
        auto* o = v.if_object();
        if (!o) {
            put_error(out, nullptr, {}, {"bad_json", "a message must be a JSON object"});
            return out;
        }
        json::value id = nullptr;
        if (const auto* i = o->if_contains("id"); i && !i->is_null()) {
            const auto* s = i->if_string();
            const bool number = (i->is_int64() && i->get_int64() >= 0) || i->is_uint64();
            if (!(s && !s->empty() && s->size() <= max_id_bytes) && !number) {
                put_error(out, nullptr, {}, bad_field("id", "a string of 1 to 64 bytes or a non-negative integer"));
                return out;
            }
            id = *i;
        }
        const auto* t = o->if_contains("type");
        if (!t) {
            put_error(out, id, {}, missing("type"));
            return out;
        }
        if (!t->is_string()) {
            put_error(out, id, {}, bad_field("type", "a string"));
            return out;
        }
        const std::string type(t->get_string());
        auto result = dispatch(type, *o, id, out);
        if (!result) put_error(out, id, type, result.error());
        return out;
    }

    frame::output on_binary() {
        if (at == stage::closed) return {};
        return close(close_code::unsupported_data, "binary messages are not part of this protocol");
    }

    using handler = checked<void> (impl::*)(const json::object&, const json::value&, const std::string&,
                                            frame::output&);

    checked<void> dispatch(const std::string& type, const json::object& o, const json::value& id, frame::output& out) {
        static const std::map<std::string_view, handler, std::less<>> online_requests = {
            {"presence", &impl::do_presence},
            {"profile", &impl::do_profile},
            {"contact_add", &impl::do_contact_add},
            {"contact_remove", &impl::do_contact_remove},
            {"contact_rename", &impl::do_contact_rename},
            {"block", &impl::do_block},
            {"unblock", &impl::do_unblock},
            {"group_add", &impl::do_group_add},
            {"group_remove", &impl::do_group_remove},
            {"group_rename", &impl::do_group_rename},
            {"privacy", &impl::do_privacy},
            {"chat_open", &impl::do_chat_open},
            {"join", &impl::do_join},
            {"invite", &impl::do_invite},
            {"leave", &impl::do_leave},
            {"send", &impl::do_send},
            {"typing", &impl::do_typing},
            {"nudge", &impl::do_nudge},
            {"history", &impl::do_history},
        };
        if (type == "ping") {
            json::object r;
            if (svc) r["time"] = svc->now_ms();
            put_reply(out, id, std::move(r));
            return {};
        }
        if (type == "login") {
            if (at != stage::start) return tl::unexpected(refusal{"already_logged_in", "login was already sent"});
            return do_login(o, id, out);
        }
        if (type == "logout") {
            if (at != stage::online) return tl::unexpected(refusal{"not_logged_in", "log in first"});
            put_reply(out, id, {});
            out.append(sign_out());
            return {};
        }
        const auto it = online_requests.find(type);
        if (it == online_requests.end()) {
            return tl::unexpected(refusal{"unknown_type", "no message type \"" + type + "\" in version 1"});
        }
        if (at != stage::online) return tl::unexpected(refusal{"not_logged_in", "log in first"});
        if (ops_in_flight() >= lim.max_pending) {
            return tl::unexpected(frame_refusal(error_code::rate_limited, "too many requests in flight"));
        }
        return (this->*(it->second))(o, id, type, out);
    }

    std::shared_ptr<op> new_op(op::kind k, const json::value& id, const std::string& type) {
        auto o = std::make_shared<op>();
        o->k = k;
        o->id = id;
        o->type = type;
        return o;
    }

    // ------------------------------------------------------------ login

    checked<void> do_login(const json::object& o, const json::value& id, frame::output& out) {
        const auto version = uint_field(o, "version");
        if (!version) return tl::unexpected(version.error());
        if (!*version) return tl::unexpected(missing("version"));
        if (**version != protocol_version) {
            return tl::unexpected(refusal{"unsupported_version", "this server speaks version 1"});
        }
        if (!svc) return tl::unexpected(frame_refusal(error_code::unsupported, "logins are not available here"));
        const auto client = string_field(o, "client", frame::limits::token, false);
        if (!client) return tl::unexpected(client.error());
        auto status = string_field(o, "status", 32, false);
        if (!status) return tl::unexpected(status.error());
        auto lo = new_op(op::kind::login, id, "login");
        if (*status) {
            const auto s = settable_status(**status);
            if (!s) return tl::unexpected(bad_field("status", "a status other than \"offline\""));
            lo->status = *s;
        }
        client_name = client->value_or("");
        const auto token = string_field(o, "token", 4096, false);
        if (!token) return tl::unexpected(token.error());
        if (*token) {
            const auto owner = svc->verify_session_token(**token);
            const auto h = owner ? text::normalize_handle(owner->handle) : tl::unexpected(text::errc::empty);
            if (!h) {
                put_error(out, id, "login", frame_refusal(error_code::unauthenticated, "token refused"));
                out.append(close(close_code::policy_violation, "authentication failed"));
                return {};
            }
            lo->handle = *h;
            lo->ticket = {frame::ticket_info{owner->issued_ms}};
            login_op = lo;
            out.append(begin_session());
            return {};
        }
        auto h = handle_field(o, "handle");
        if (!h) return tl::unexpected(h.error());
        const auto password = string_field(o, "password", 1024, true);
        if (!password) return tl::unexpected(password.error());
        lo->handle = *h;
        login_op = lo;
        at = stage::checking;
        svc->check_password(lo->handle, **password);
        return {};
    }

    frame::output on_password_checked(std::string_view who, password_check result) {
        if (at != stage::checking || !login_op || login_op->handle != who) return {};
        if (result == password_check::unavailable) {
            // Not the client's fault: it may log in again on this connection.
            frame::output out;
            put_error(out, login_op->id, "login",
                      frame_refusal(error_code::backend_unavailable, "the login service is busy; try again"));
            login_op.reset();
            at = stage::start;
            return out;
        }
        if (result == password_check::rejected) {
            frame::output out;
            put_error(out, login_op->id, "login", frame_refusal(error_code::unauthenticated, "wrong handle or password"));
            out.append(close(close_code::policy_violation, "authentication failed"));
            return out;
        }
        return begin_session();
    }

    // hello, the roster and the first presence together; the login reply
    // waits for all three (as MSNP's USR OK waits for hello and roster).
    frame::output begin_session() {
        at = stage::logging_in;
        handle = login_op->handle;
        endpoint = svc->new_endpoint_id();
        frame::output out;
        out.watch.push_back(user_object(handle));
        frame::hello h{frame::client_protocol::wsjson, protocol_version, handle, endpoint, client_name,
                       {"text", "format", "typing", "nudge", "history"},
                       login_op->ticket};  // the user object refuses a token older than the password
        send(out, login_op, part::hello, user_object(handle), std::move(h));
        send(out, login_op, part::roster, user_object(handle), frame::roster_get{});
        frame::presence_info p;
        p.state = login_op->status;
        p.endpoint = endpoint;
        send(out, login_op, part::presence, user_object(handle), frame::presence_set{std::move(p)});
        return out;
    }

    void login_reply(op& o, const frame::body& b, part p, frame::output& out) {
        if (const auto* e = std::get_if<frame::error>(&b)) {
            if (!o.failed) o.failed = frame_refusal(e->code, "login refused: " + e->reason);
        } else if (p == part::roster) {
            if (const auto* r = std::get_if<frame::roster>(&b)) o.roster = *r;
        }
        if (o.waiting > 0) return;
        login_op.reset();
        if (o.failed || !o.roster) {
            put_error(out, o.id, "login", o.failed.value_or(frame_refusal(error_code::internal, "no roster")));
            frame::output c = close(close_code::policy_violation, "login refused");
            c.frames.push_back(frame::frame{0, user_object(handle), handle, frame::bye{error_code::unauthenticated, false,
                                                                                      "login refused", endpoint}});
            c.unwatch.push_back(user_object(handle));
            out.append(std::move(c));
            return;
        }
        const frame::roster& r = *o.roster;
        at = stage::online;
        was_online = true;
        display_name = r.display_name.empty() ? handle : r.display_name;
        privacy = r.privacy;
        prompt = r.prompt;
        json::object res;
        res["version"] = protocol_version;
        res["handle"] = handle;
        res["session"] = endpoint;
        res["token"] = svc->issue_session_token(handle);
        res["display_name"] = display_name;
        res["personal_message"] = r.personal_message.empty() ? std::string() : r.personal_message.front();
        res["current_media"] = r.current_media.empty() ? std::string() : r.current_media.front();
        res["status"] = status_name(o.status);
        json::object priv;
        priv["default"] = frame::to_string(r.privacy);
        priv["prompt"] = r.prompt == frame::add_prompt::prompt;
        res["privacy"] = std::move(priv);
        json::object roster;
        roster["version"] = r.version;
        json::array groups;
        for (const auto& g : r.groups) groups.push_back(group_json(g));
        roster["groups"] = std::move(groups);
        json::array contacts;
        for (const auto& e : r.entries) {
            json::object c = contact_json(e);
            for (const auto& u : o.initial) {
                if (u.user != e.handle) continue;
                const json::object pj = presence_json(u.user, u.presence);
                for (const auto* k : {"status", "display_name", "personal_message", "current_media"}) c[k] = pj.at(k);
            }
            contacts.push_back(std::move(c));
        }
        roster["contacts"] = std::move(contacts);
        res["roster"] = std::move(roster);
        put_reply(out, o.id, std::move(res), true);
        // What the objects published during the login follows the reply.
        for (const frame::frame& f : std::exchange(held, {})) out.append(published(f));
    }

    frame::output sign_out() {
        frame::output out = leave_all(frame::leave_reason::left);
        out.frames.push_back(frame::frame{0, user_object(handle), handle, frame::bye{error_code::internal, true,
                                                                                    "signed out", endpoint}});
        out.unwatch.push_back(user_object(handle));
        at = stage::closed;
        out.close = true;
        out.close_code = static_cast<std::uint16_t>(close_code::normal);
        out.close_reason = "signed out";
        return out;
    }

    // ------------------------------------------------------------ profile, lists

    checked<void> do_presence(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto s = string_field(o, "status", 32, true);
        if (!s) return tl::unexpected(s.error());
        const auto state = settable_status(**s);
        if (!state) return tl::unexpected(bad_field("status", "a status other than \"offline\""));
        frame::presence_info p;
        p.state = *state;
        p.endpoint = endpoint;
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle), frame::presence_set{p});
        return {};
    }

    checked<void> do_profile(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        frame::profile_set p;
        const auto name = string_field(o, "display_name", lim.name_bytes, false);
        if (!name) return tl::unexpected(name.error());
        const auto psm = string_field(o, "personal_message", lim.personal_message_bytes, false);
        if (!psm) return tl::unexpected(psm.error());
        const auto media = string_field(o, "current_media", lim.personal_message_bytes, false);
        if (!media) return tl::unexpected(media.error());
        if (*name) {
            p.fields |= frame::profile_bits::display_name;
            p.display_name = **name;
        }
        if (*psm) {
            p.fields |= frame::profile_bits::personal_message;
            p.personal_message = **psm;
        }
        if (*media) {
            p.fields |= frame::profile_bits::current_media;
            p.current_media = **media;
        }
        if (p.fields == 0) {
            return tl::unexpected(missing("display_name\", \"personal_message\" or \"current_media"));
        }
        auto op_ = new_op(op::kind::generic, id, type);
        if (*name) op_->title = **name;  // the new own name, once acknowledged
        send(out, op_, part::primary, user_object(handle), std::move(p));
        return {};
    }


    // Adding a contact, as MSN Messenger does it: onto the forward list, and
    // onto the allow list so the contact sees the user under a block-by-default
    // privacy (MSNP ADC FL then ADC AL). The allow-list step's own failure
    // (the contact is blocked, or already allowed) does not fail the request.
    checked<void> do_contact_add(const json::object& o, const json::value& id, const std::string& type,
                                 frame::output& out) {
        const auto who = handle_field(o, "handle");
        if (!who) return tl::unexpected(who.error());
        const auto name = string_field(o, "display_name", lim.name_bytes, false);
        if (!name) return tl::unexpected(name.error());
        const auto group = string_field(o, "group", frame::limits::token, false);
        if (!group) return tl::unexpected(group.error());
        auto op_ = new_op(op::kind::generic, id, type);
        send(out, op_, part::primary, user_object(handle),
             frame::list_edit(frame::change_op::add, frame::list::forward, *who, name->value_or(""), group->value_or("")));
        if (!*group) {
            send(out, op_, part::secondary, user_object(handle),
                 frame::list_edit(frame::change_op::add, frame::list::allow, *who));
        }
        return {};
    }

    checked<void> do_contact_remove(const json::object& o, const json::value& id, const std::string& type,
                                    frame::output& out) {
        const auto who = handle_field(o, "handle");
        if (!who) return tl::unexpected(who.error());
        const auto group = string_field(o, "group", frame::limits::token, false);
        if (!group) return tl::unexpected(group.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle),
             frame::list_edit(frame::change_op::remove, frame::list::forward, *who, {}, group->value_or("")));
        return {};
    }

    checked<void> do_contact_rename(const json::object& o, const json::value& id, const std::string& type,
                                    frame::output& out) {
        const auto who = handle_field(o, "handle");
        if (!who) return tl::unexpected(who.error());
        const auto name = string_field(o, "display_name", lim.name_bytes, true);
        if (!name) return tl::unexpected(name.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle),
             frame::list_edit(frame::change_op::rename, frame::list::forward, *who, **name));
        return {};
    }

    // Block and unblock as MSN Messenger does them: the allow and block
    // lists are exclusive (MSNP 219), so the contact leaves one before
    // joining the other. The second step decides the reply.
    checked<void> move_between(const json::object& o, const json::value& id, const std::string& type,
                               frame::output& out, frame::list from, frame::list to) {
        const auto who = handle_field(o, "handle");
        if (!who) return tl::unexpected(who.error());
        auto op_ = new_op(op::kind::generic, id, type);
        send(out, op_, part::secondary, user_object(handle), frame::list_edit(frame::change_op::remove, from, *who));
        send(out, op_, part::primary, user_object(handle), frame::list_edit(frame::change_op::add, to, *who));
        return {};
    }
    checked<void> do_block(const json::object& o, const json::value& id, const std::string& t, frame::output& out) {
        return move_between(o, id, t, out, frame::list::allow, frame::list::block);
    }
    checked<void> do_unblock(const json::object& o, const json::value& id, const std::string& t, frame::output& out) {
        return move_between(o, id, t, out, frame::list::block, frame::list::allow);
    }

    checked<void> do_group_add(const json::object& o, const json::value& id, const std::string& type,
                               frame::output& out) {
        const auto name = string_field(o, "name", frame::limits::group_name, true);
        if (!name) return tl::unexpected(name.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle),
             frame::group_change{frame::change_op::add, {{}, **name}, 0});
        return {};
    }
    checked<void> do_group_remove(const json::object& o, const json::value& id, const std::string& type,
                                  frame::output& out) {
        const auto group = string_field(o, "group", frame::limits::token, true);
        if (!group) return tl::unexpected(group.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle),
             frame::group_change{frame::change_op::remove, {**group, {}}, 0});
        return {};
    }
    checked<void> do_group_rename(const json::object& o, const json::value& id, const std::string& type,
                                  frame::output& out) {
        const auto group = string_field(o, "group", frame::limits::token, true);
        if (!group) return tl::unexpected(group.error());
        const auto name = string_field(o, "name", frame::limits::group_name, true);
        if (!name) return tl::unexpected(name.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle),
             frame::group_change{frame::change_op::rename, {**group, **name}, 0});
        return {};
    }

    checked<void> do_privacy(const json::object& o, const json::value& id, const std::string& type,
                             frame::output& out) {
        const auto def = string_field(o, "default", 16, false);
        if (!def) return tl::unexpected(def.error());
        const auto ask = bool_field(o, "prompt");
        if (!ask) return tl::unexpected(ask.error());
        frame::privacy_set p{privacy, prompt, 0};
        if (*def) {
            if (**def == "allow") p.privacy = frame::privacy_default::allow;
            else if (**def == "block") p.privacy = frame::privacy_default::block;
            else return tl::unexpected(bad_field("default", "\"allow\" or \"block\""));
        }
        if (*ask) p.prompt = **ask ? frame::add_prompt::prompt : frame::add_prompt::none;
        send(out, new_op(op::kind::generic, id, type), part::primary, user_object(handle), p);
        return {};
    }

    // ------------------------------------------------------------ rooms

    checked<room_state*> joined_room(const std::string& object) {
        const auto it = rooms.find(object);
        if (it == rooms.end() || !it->second.joined) {
            return tl::unexpected(frame_refusal(error_code::not_member, "join " + std::string(room_id(object)) + " first"));
        }
        return &it->second;
    }

    frame::member me() const {
        return frame::member{handle, endpoint, display_name, 0, frame::client_protocol::wsjson};
    }

    // A conversation with contacts, as MSN's "send an instant message" opens
    // a switchboard (XFR SB, then CAL): an invite-only room, joined, then
    // everyone invited.
    checked<void> do_chat_open(const json::object& o, const json::value& id, const std::string& type,
                               frame::output& out) {
        const auto* with = o.if_contains("with");
        if (!with) return tl::unexpected(missing("with"));
        const auto* list = with->if_array();
        if (!list || list->empty() || list->size() > lim.max_invitees) {
            return tl::unexpected(bad_field("with", "an array of 1 to " + std::to_string(lim.max_invitees) + " handles"));
        }
        const auto title = string_field(o, "title", lim.name_bytes, false);
        if (!title) return tl::unexpected(title.error());
        if (rooms.size() >= lim.max_rooms) return tl::unexpected(frame_refusal(error_code::room_full, "too many rooms"));
        auto op_ = new_op(op::kind::chat_open, id, type);
        for (const auto& v : *list) {
            const auto* s = v.if_string();
            if (!s) return tl::unexpected(bad_field("with", "an array of handles"));
            auto h = text::normalize_handle(*s);
            if (!h) return tl::unexpected(frame_refusal(error_code::invalid_text, "\"with\" holds a bad handle"));
            if (*h != handle && std::ranges::find(op_->invitees, *h) == op_->invitees.end()) op_->invitees.push_back(*h);
        }
        op_->room = "room:" + svc->new_room_id();
        op_->title = title->value_or("");
        rooms[op_->room];
        send(out, op_, part::create, op_->room, frame::room_create{frame::room_policy::invite_only, op_->title});
        return {};
    }

    // Joining by id (an invitation, or a resume with since_seq) or by name
    // (a named room the settings list, created on first use).
    checked<void> do_join(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        auto op_ = new_op(op::kind::join, id, type);
        if (o.contains("name")) {
            const auto name = room_name_field(o);
            if (!name) return tl::unexpected(name.error());
            // Only the rooms the settings list: a client may not create rooms.
            if (std::ranges::find(lim.named_rooms, *name) == lim.named_rooms.end()) {
                return tl::unexpected(frame_refusal(error_code::unknown_object, "no room is named " + *name));
            }
            op_->room = "room:name:" + *name;
            op_->named = true;
            op_->title = *name;
        } else {
            const auto room = room_field(o);
            if (!room) return tl::unexpected(room.error());
            op_->room = *room;
        }
        const auto since = uint_field(o, "since_seq");
        if (!since) return tl::unexpected(since.error());
        op_->since = *since;
        const auto epoch = string_field(o, "epoch", frame::limits::token, false);
        if (!epoch) return tl::unexpected(epoch.error());
        op_->epoch = epoch->value_or("");
        if (rooms.contains(op_->room)) {
            return tl::unexpected(frame_refusal(error_code::already_on_list, "already in this room, or joining it"));
        }
        if (rooms.size() >= lim.max_rooms) return tl::unexpected(frame_refusal(error_code::room_full, "too many rooms"));
        rooms[op_->room];
        if (op_->named) {
            send(out, op_, part::create, op_->room, frame::room_create{frame::room_policy::named, op_->title});
        } else {
            enter(out, op_);
        }
        return {};
    }

    void enter(frame::output& out, const std::shared_ptr<op>& o) {
        out.watch.push_back(o->room);
        send(out, o, part::join, o->room, frame::room_join{me()});
    }

    checked<void> do_invite(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto who = handle_field(o, "handle");
        if (!who) return tl::unexpected(who.error());
        const auto r = joined_room(*room);
        if (!r) return tl::unexpected(r.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, *room, frame::room_invite{*who, display_name, {}});
        return {};
    }

    checked<void> do_leave(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto r = joined_room(*room);
        if (!r) return tl::unexpected(r.error());
        rooms.erase(*room);
        out.unwatch.push_back(*room);
        send(out, new_op(op::kind::generic, id, type), part::primary, *room,
             frame::room_leave{handle, endpoint, frame::leave_reason::left});
        return {};
    }

    checked<void> do_send(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto body = string_field(o, "text", lim.message_bytes, true);
        if (!body) return tl::unexpected(body.error());
        if ((*body)->empty()) return tl::unexpected(bad_field("text", "a non-empty string"));
        const auto client_id = string_field(o, "client_id", max_client_id_bytes, false);
        if (!client_id) return tl::unexpected(client_id.error());
        if (*client_id && (*client_id)->empty()) return tl::unexpected(bad_field("client_id", "a non-empty string"));
        frame::room_message m;
        if (const auto* f = o.if_contains("format"); f && !f->is_null()) {
            std::string why;
            auto fmt = parse_format(*f, why);
            if (!fmt) return tl::unexpected(refusal{"bad_field", why});
            m.format = std::move(*fmt);
        }
        const auto r = joined_room(*room);
        if (!r) return tl::unexpected(r.error());
        m.message_id = *client_id ? client_message_id(handle, **client_id)
                                  : generated_message_prefix(handle) + endpoint + "/" + std::to_string(++generated);
        m.message_id.resize(std::min(m.message_id.size(), frame::limits::token));
        m.text = std::move(**body);
        m.ack_requested = true;
        send(out, new_op(op::kind::send, id, type), part::primary, *room, std::move(m));
        return {};
    }

    checked<void> do_typing(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto active = bool_field(o, "active");
        if (!active) return tl::unexpected(active.error());
        const auto r = joined_room(*room);
        if (!r) return tl::unexpected(r.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, *room, frame::room_typing{active->value_or(true), {}});
        return {};
    }

    checked<void> do_nudge(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto r = joined_room(*room);
        if (!r) return tl::unexpected(r.error());
        send(out, new_op(op::kind::generic, id, type), part::primary, *room, frame::room_nudge{});
        return {};
    }

    checked<void> do_history(const json::object& o, const json::value& id, const std::string& type, frame::output& out) {
        const auto room = room_field(o);
        if (!room) return tl::unexpected(room.error());
        const auto after = uint_field(o, "after_seq");
        if (!after) return tl::unexpected(after.error());
        const auto before = uint_field(o, "before_seq");
        if (!before) return tl::unexpected(before.error());
        const auto limit = uint_field(o, "limit");
        if (!limit) return tl::unexpected(limit.error());
        frame::room_history_get h;
        h.after_seq = after->value_or(0);
        h.before_seq = before->value_or(0);
        h.max_count = static_cast<std::uint32_t>(std::min<std::uint64_t>(limit->value_or(frame::limits::history),
                                                                         frame::limits::history));
        auto op_ = new_op(op::kind::generic, id, type);
        op_->room = *room;
        send(out, op_, part::primary, *room, h);
        return {};
    }

    // ------------------------------------------------------------ replies

    frame::output on_frame(const frame::frame& f) {
        if (at == stage::closed) return {};
        if (f.corr == 0) {
            if (at == stage::logging_in) {
                if (held.size() < max_held_events) held.push_back(f);
                return {};
            }
            return at == stage::online ? published(f) : frame::output{};
        }
        const auto it = requests.find(f.corr);
        if (it == requests.end()) return {};
        frame::output out;
        // Presence the user object sends before its terminal reply: the
        // initial burst of the login's presence_set, or a contact just added.
        if (const auto* u = std::get_if<frame::presence_update>(&f.content)) {
            if (it->second.o->k == op::kind::login) {
                it->second.o->initial.push_back(*u);
            } else {
                out.append(presence_event(*u));
            }
            return out;
        }
        slot s = std::move(it->second);
        requests.erase(it);
        op& o = *s.o;
        --o.waiting;
        switch (o.k) {
            case op::kind::login: login_reply(o, f.content, s.p, out); break;
            case op::kind::join:
            case op::kind::chat_open: room_reply(s, f.content, out); break;
            case op::kind::generic:
            case op::kind::send: generic_reply(s, f.content, out); break;
        }
        return out;
    }

    // Stored messages as events, without those withheld from this user.
    json::array messages_json(const std::vector<frame::stored_message>& ms, const std::string& room,
                              const room_state* r) const {
        json::array a;
        for (const auto& m : ms) {
            if (withheld(m.withheld_from, handle)) continue;
            frame::room_message rm;
            rm.seq = m.seq;
            rm.message_id = m.message_id;
            rm.timestamp_ms = m.timestamp_ms;
            rm.text = m.text;
            rm.format = m.format;
            a.push_back(message_json(room, m.sender, rm, r));
        }
        return a;
    }

    static const std::string& sender_name(const std::string& sender, const room_state* r) {
        if (r) {
            if (const auto u = r->users.find(sender); u != r->users.end() && !u->second.display_name.empty()) {
                return u->second.display_name;
            }
        }
        return sender;
    }

    static json::object message_json(const std::string& room, const std::string& sender, const frame::room_message& m,
                                     const room_state* r) {
        json::object o = event("message");
        o["room"] = room_id(room);
        o["seq"] = m.seq;
        o["from"] = sender;
        o["from_name"] = m.sender_name.empty() ? sender_name(sender, r) : m.sender_name.front();
        o["time"] = m.timestamp_ms;
        o["text"] = m.text;
        if (!format_is_plain(m.format)) o["format"] = format_json(m.format);
        if (const auto cid = client_id_of(sender, m.message_id); !cid.empty()) o["client_id"] = cid;
        return o;
    }

    // Every member of a room gets the same bytes for a message: the last
    // event rendered on this thread is kept, and a message equal in
    // everything the event shows (the room's view of the sender's name
    // included) reuses it. Correct by construction, whatever the frame's
    // address or the order in which connections ask.
    static std::string rendered_message(const std::string& room, const std::string& sender, const frame::room_message& m,
                                        const room_state& r) {
        struct last_rendered {
            std::string room, sender, name;
            frame::room_message message;
            std::string text;
        };
        thread_local last_rendered last;
        const std::string& name = m.sender_name.empty() ? sender_name(sender, &r) : m.sender_name.front();
        const frame::room_message& k = last.message;
        if (!last.text.empty() && k.seq == m.seq && k.timestamp_ms == m.timestamp_ms && last.room == room &&
            last.sender == sender && last.name == name && k.message_id == m.message_id && k.text == m.text &&
            k.format == m.format) {
            return last.text;
        }
        last.text = json::serialize(message_json(room, sender, m, &r));
        last.room = room;
        last.sender = sender;
        last.name = name;
        last.message.seq = m.seq;
        last.message.timestamp_ms = m.timestamp_ms;
        last.message.message_id = m.message_id;
        last.message.text = m.text;
        last.message.format = m.format;
        return last.text;
    }

    void generic_reply(const slot& s, const frame::body& b, frame::output& out) {
        op& o = *s.o;
        if (const auto* e = std::get_if<frame::error>(&b)) {
            if (s.p == part::primary && !o.failed) o.failed = frame_refusal(e->code, e->reason);
        } else if (s.p == part::primary) {
            o.result = result_of(o, b);
        }
        if (o.waiting > 0) return;
        if (o.failed) {
            put_error(out, o.id, o.type, *o.failed);
            return;
        }
        if (o.type == "profile" && !o.title.empty()) display_name = o.title;
        if (const auto* p = std::get_if<frame::privacy_set>(&b); p && s.p == part::primary) {
            privacy = p->privacy;
            prompt = p->prompt;
        }
        put_reply(out, o.id, std::move(o.result));
    }

    json::object result_of(const op& o, const frame::body& b) {
        json::object r;
        if (const auto* a = std::get_if<frame::ack>(&b)) {
            if (o.k == op::kind::send) r["seq"] = a->seq;
        } else if (const auto* c = std::get_if<frame::roster_change>(&b)) {
            r["handle"] = c->handle;
            r["list"] = frame::to_string(c->which);
            r["display_name"] = c->display_name.empty() ? c->handle : c->display_name;
            if (!c->contact_id.empty()) r["contact_id"] = c->contact_id;
            if (!c->group_id.empty()) r["group"] = c->group_id;
            r["version"] = c->version;
        } else if (const auto* g = std::get_if<frame::group_change>(&b)) {
            r["group"] = group_json(g->target);
            r["version"] = g->version;
        } else if (const auto* p = std::get_if<frame::privacy_set>(&b)) {
            r["default"] = frame::to_string(p->privacy);
            r["prompt"] = p->prompt == frame::add_prompt::prompt;
            r["version"] = p->version;
        } else if (const auto* h = std::get_if<frame::room_history>(&b)) {
            const auto it = rooms.find(o.room);
            r["messages"] = messages_json(h->messages, o.room, it == rooms.end() ? nullptr : &it->second);
            r["last_seq"] = h->last_seq;
        }
        return r;
    }

    void room_failed(op& o, const refusal& why, frame::output& out) {
        if (rooms.erase(o.room) > 0 && (o.k == op::kind::chat_open || !o.named || o.waiting >= 0)) {
            out.unwatch.push_back(o.room);
        }
        // Nothing is in flight for a failed join: the reply ends it.
        put_error(out, o.id, o.type, why);
    }

    void room_reply(const slot& s, const frame::body& b, frame::output& out) {
        op& o = *s.o;
        const auto* e = std::get_if<frame::error>(&b);
        const auto rit = rooms.find(o.room);
        if (rit == rooms.end()) return;  // left or closed meanwhile
        room_state& r = rit->second;
        switch (s.p) {
            case part::create:
                // A named room that exists already is simply joined.
                if (e && !(o.named && e->code == error_code::already_on_list)) {
                    rooms.erase(rit);
                    put_error(out, o.id, o.type, frame_refusal(e->code, e->reason));
                    return;
                }
                enter(out, s.o);
                return;
            case part::join: {
                const auto* m = std::get_if<frame::room_members>(&b);
                if (e || !m) {
                    rooms.erase(rit);
                    out.unwatch.push_back(o.room);
                    put_error(out, o.id, o.type,
                              e ? frame_refusal(e->code, e->reason) : frame_refusal(error_code::internal, "no members"));
                    return;
                }
                for (const auto& mem : m->members) r.put(mem);
                r.put(me());
                if (!m->epoch.empty()) o.room_epoch = m->epoch.front();
                if (o.k == op::kind::chat_open) {
                    for (const auto& who : o.invitees) {
                        send(out, s.o, part::invite, o.room, frame::room_invite{who, display_name, {}}, who);
                    }
                    if (o.waiting == 0) finish_room(o, r, nullptr, out);
                    return;
                }
                // Seqs of another epoch mean nothing here: the whole stored
                // history instead.
                if (o.since && epochs_differ(o.epoch, o.room_epoch)) o.reset = "epoch_changed";
                ask_history(out, s.o, o.reset ? 0 : o.since.value_or(0));
                return;
            }
            case part::history: {
                const auto* h = std::get_if<frame::room_history>(&b);
                // A re-created room found only now (an epoch in the history
                // alone, or seqs gone backwards): ask again from the start.
                if (h && o.since && !o.reset && o.asked_after > 0 &&
                    (epochs_differ(o.epoch, epoch_of(*h, o.room_epoch)) || h->last_seq < *o.since)) {
                    o.reset = "epoch_changed";
                    ask_history(out, s.o, 0);
                    return;
                }
                finish_room(o, r, h, out);
                return;
            }
            case part::invite: {
                if (e) {
                    json::object n;
                    n["handle"] = s.arg;
                    n["code"] = frame::to_string(e->code);
                    n["reason"] = e->reason;
                    o.not_invited.push_back(std::move(n));
                } else {
                    o.invited.emplace_back(s.arg);
                }
                if (o.waiting == 0) finish_room(o, r, nullptr, out);
                return;
            }
            default: return;
        }
    }

    void ask_history(frame::output& out, const std::shared_ptr<op>& o, std::uint64_t after) {
        frame::room_history_get h;
        h.after_seq = after;
        o->asked_after = after;
        send(out, o, part::history, o->room, h);
    }

    // The room's epoch: which incarnation of its history a seq belongs to
    // (Centrifugo's stream epoch), from the history or else the join's
    // room_members; empty from a backend that names none, and then only a
    // seq that went backwards shows a re-created room.
    static std::string epoch_of(const frame::room_history& h, const std::string& from_join) {
        return h.epoch.empty() ? from_join : h.epoch.front();
    }
    // Epochs are opaque; an unknown one (empty) differs from nothing.
    static bool epochs_differ(const std::string& seen, const std::string& now) {
        return !seen.empty() && !now.empty() && seen != now;
    }

    json::array members_json(const room_state& r) const {
        json::array a;
        a.reserve(r.users.size());
        std::unordered_set<std::string_view> seen;  // a room of thousands: no pass over a list per member
        seen.reserve(r.users.size());
        for (const auto& [ep, m] : r.members) {
            if (!seen.insert(m.user).second) continue;
            json::object j;
            j["user"] = m.user;
            j["display_name"] = m.display_name.empty() ? m.user : m.display_name;
            j["protocol"] = frame::to_string(m.protocol);
            a.push_back(std::move(j));
        }
        return a;
    }

    void finish_room(op& o, room_state& r, const frame::room_history* h, frame::output& out) {
        json::object res;
        res["room"] = room_id(o.room);
        if (o.named) res["name"] = o.title;
        res["members"] = members_json(r);
        std::uint64_t last = 0;
        if (h) {
            last = h->last_seq;
            const std::string epoch = epoch_of(*h, o.room_epoch);
            res["epoch"] = epoch;
            res["messages"] = messages_json(h->messages, o.room, &r);
            // Resume (README.md): exactly the messages after since_seq, or a
            // reset saying why that cannot be had. Gaps are judged on the
            // messages the room returned, before those withheld from this
            // user are left out.
            json::value reset = nullptr;
            if (o.reset) {
                reset = json::string(*o.reset);
            } else if (o.since) {
                const std::uint64_t since = *o.since;
                if (epochs_differ(o.epoch, epoch) || last < since) {
                    reset = "epoch_changed";
                } else if (last > since && (h->messages.empty() || h->messages.front().seq != since + 1)) {
                    reset = "history_truncated";
                }
            }
            res["reset"] = reset;
            r.delivered = h->messages.empty() ? o.asked_after : h->messages.back().seq;
            if (last < r.delivered) r.delivered = last;
        } else {
            res["epoch"] = o.room_epoch;
            res["messages"] = json::array{};
            res["reset"] = nullptr;
            res["invited"] = std::move(o.invited);
            res["not_invited"] = std::move(o.not_invited);
        }
        res["last_seq"] = last;
        r.joined = true;
        put_reply(out, o.id, std::move(res), true);
        // What the room published while the join was in flight, minus what
        // the history already showed.
        for (const frame::frame& f : std::exchange(r.held, {})) out.append(published(f));
    }

    // ------------------------------------------------------------ published

    frame::output presence_event(const frame::presence_update& u) const {
        frame::output out;
        json::object o = presence_json(u.user, u.presence);
        o["type"] = "presence";
        o["initial"] = u.initial;
        put(out, o);
        return out;
    }

    static bool withheld(const std::vector<std::string>& from, const std::string& me_) {
        return std::ranges::find(from, me_) != from.end();
    }

    frame::output published(const frame::frame& f) {
        frame::output out;
        if (f.object.starts_with("room:")) return room_event(f);
        if (f.object != user_object(handle)) return out;
        if (const auto* u = std::get_if<frame::presence_update>(&f.content)) return presence_event(*u);
        if (const auto* c = std::get_if<frame::roster_change>(&f.content)) {
            json::object o = event("roster_change");
            o["op"] = frame::to_string(c->op);
            o["list"] = frame::to_string(c->which);
            o["handle"] = c->handle;
            o["display_name"] = c->display_name.empty() ? c->handle : c->display_name;
            o["version"] = c->version;
            put(out, o);
        } else if (const auto* i = std::get_if<frame::room_invite>(&f.content)) {
            if (!i->room.starts_with("room:") || i->room.size() <= 5) return out;
            json::object o = event("invite");
            o["room"] = room_id(i->room);
            o["from"] = f.sender;
            o["from_name"] = i->inviter_name.empty() ? f.sender : i->inviter_name;
            put(out, o);
        } else if (const auto* b = std::get_if<frame::bye>(&f.content); b && b->endpoint == endpoint) {
            // The user object ended this endpoint (an old MSNP client signed
            // in elsewhere: MSNP OUT OTH).
            const std::string why =
                b->code == frame::error_code::unknown_object ? "account removed" : "signed in elsewhere";
            json::object o = event("signed_out");
            o["reason"] = why;
            put(out, o);
            frame::output ending = leave_all(frame::leave_reason::dropped);
            ending.unwatch.push_back(user_object(handle));
            at = stage::closed;
            ending.close = true;
            ending.close_code = static_cast<std::uint16_t>(close_code::normal);
            ending.close_reason = why;
            out.append(std::move(ending));
        }
        return out;
    }

    frame::output room_event(const frame::frame& f) {
        frame::output out;
        const auto it = rooms.find(f.object);
        if (it == rooms.end()) return out;
        room_state& r = it->second;
        if (!r.joined) {
            if (r.held.size() < max_held_events) r.held.push_back(f);
            return out;
        }
        const std::string_view room = room_id(f.object);
        if (const auto* j = std::get_if<frame::room_join>(&f.content)) {
            const frame::member& m = j->who;
            if (r.members.contains(m.endpoint)) return out;
            const bool first = !r.has_user(m.user);
            r.put(m);
            if (first && m.endpoint != endpoint) {
                json::object o = event("joined");
                o["room"] = room;
                o["user"] = m.user;
                o["display_name"] = m.display_name.empty() ? m.user : m.display_name;
                o["protocol"] = frame::to_string(m.protocol);
                put(out, o);
            }
        } else if (const auto* l = std::get_if<frame::room_leave>(&f.content)) {
            if (l->endpoint == endpoint) {
                // The room removed this endpoint (an operator, an idle sweep).
                json::object o = event("left");
                o["room"] = room;
                o["user"] = handle;
                o["reason"] = frame::to_string(l->reason);
                put(out, o);
                out.unwatch.push_back(f.object);
                rooms.erase(it);
                return out;
            }
            const auto m = r.members.find(l->endpoint);
            if (m == r.members.end() || m->second.user != l->user) return out;
            r.erase(m);
            if (!r.has_user(l->user)) {
                json::object o = event("left");
                o["room"] = room;
                o["user"] = l->user;
                o["reason"] = frame::to_string(l->reason);
                put(out, o);
            }
        } else if (const auto* m = std::get_if<frame::room_message>(&f.content)) {
            if (withheld(m->withheld_from, handle) || (m->seq != 0 && m->seq <= r.delivered)) return out;
            r.delivered = std::max(r.delivered, m->seq);
            out.messages.push_back(rendered_message(f.object, f.sender, *m, r));
        } else if (const auto* t = std::get_if<frame::room_typing>(&f.content)) {
            if (f.sender == handle || withheld(t->withheld_from, handle)) return out;
            json::object o = event("typing");
            o["room"] = room;
            o["from"] = f.sender;
            o["active"] = t->active;
            put(out, o);
        } else if (const auto* n = std::get_if<frame::room_nudge>(&f.content)) {
            if (f.sender == handle || withheld(n->withheld_from, handle)) return out;
            json::object o = event("nudge");
            o["room"] = room;
            o["from"] = f.sender;
            put(out, o);
        } else if (const auto* p = std::get_if<frame::room_opaque>(&f.content)) {
            if (f.sender == handle || p->origin == frame::client_protocol::wsjson || withheld(p->withheld_from, handle)) {
                return out;
            }
            // A file transfer is hundreds of P2P messages: one notice per
            // sender and kind of content in notice_repeat_ms is enough.
            const std::uint64_t now = svc ? svc->now_ms() : 0;
            const std::string key = f.sender + '\n' + p->content_type;
            const auto seen = r.notices.find(key);
            if (seen != r.notices.end() && now < seen->second + notice_repeat_ms) return out;
            if (r.notices.size() > 64) r.notices.clear();
            r.notices[key] = now;
            json::object o = event("notice");
            o["room"] = room;
            o["from"] = f.sender;
            o["origin"] = frame::to_string(p->origin);
            o["content_type"] = p->content_type;
            o["text"] = opaque_notice(p->content_type);
            put(out, o);
        }
        return out;
    }

    // ------------------------------------------------------------ lifecycle

    frame::output on_shutdown() {
        if (at == stage::closed) return {};
        frame::output out;
        out.close = true;
        out.close_code = static_cast<std::uint16_t>(close_code::going_away);
        out.close_reason = std::string(shutdown_reason);
        shutting_down = true;
        return out;
    }
    bool shutting_down = false;

    frame::output on_closed() {
        if (at == stage::closed) return {};
        const bool had_endpoint = at == stage::logging_in || at == stage::online;
        frame::output out = leave_all(frame::leave_reason::dropped);
        if (had_endpoint) {
            frame::bye b;
            b.normal = false;
            b.code = shutting_down ? error_code::shutting_down : error_code::internal;
            b.reason = shutting_down ? "server shutting down" : "connection closed";
            b.endpoint = endpoint;
            out.frames.push_back(frame::frame{0, user_object(handle), handle, std::move(b)});
            out.unwatch.push_back(user_object(handle));
        }
        at = stage::closed;
        login_op.reset();
        return out;
    }
};

connection::connection() : impl_(std::make_unique<impl>()) {}
connection::connection(services& svc, limits lim) : impl_(std::make_unique<impl>(svc, lim)) {}
connection::~connection() = default;
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;

frame::output connection::on_message(std::string_view text) { return impl_->on_message(text); }
frame::output connection::on_binary(std::string_view) { return impl_->on_binary(); }
frame::output connection::on_password_checked(std::string_view handle, password_check result) {
    return impl_->on_password_checked(handle, result);
}
frame::output connection::on_frame(const frame::frame& f) { return impl_->on_frame(f); }
frame::output connection::on_shutdown() { return impl_->on_shutdown(); }
frame::output connection::on_closed() { return impl_->on_closed(); }
bool connection::logged_in() const { return impl_->at == impl::stage::online; }
bool connection::logged_in_once() const { return impl_->was_online; }

}  // namespace switchyard::wsjson
