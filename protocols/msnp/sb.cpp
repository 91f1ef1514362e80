// The switchboard (msnp-reference §4.4, §4.5, §4.6, Appendix B.2): one
// conversation, held by a room object. The machine joins the room with the
// grant its cookie carries, turns SB commands into room frames and renders
// what the room publishes as SB lines in the connection's dialect.
//
// Decisions the reference leaves open:
// * message_id is "<endpoint>/<n>", n counting this connection's messages:
//   endpoints are unique per connection, and TrIDs are not (clients reuse
//   and reorder them, §2.2), so a repeated TrID can never be taken by the
//   room for a retry. MSNP itself has no retries across connections.
// * A chat message reaches MSNP peers rebuilt from the frame (message.hpp),
//   since room_message carries no original bytes: in the official clients'
//   form, so an official client's message comes out as it went in. A
//   rebuild loses other clients' header order and extra headers, and an
//   ISO-8859-1 body arrives as UTF-8 with charset=UTF-8. Text in any other
//   charset is not text to translate: it travels opaque, byte for byte.
// * Endpoints of the connection's own user are left out of IRO/JOI/BYE and
//   their messages are not relayed: MSNP2-12 cannot show another endpoint
//   of oneself. A user with several endpoints (a WebSocket user in two tabs)
//   is one participant: JOI for the first, BYE after the last.
// * §4.5 [recommendation]: NAK when no other participant could receive a
//   message (nobody else here, or, for opaque content, no MSNP endpoint).
//   Opaque content still goes to a room of browser users, who see a notice.
#include "protocols/msnp/session.hpp"

#include "protocols/msnp/message.hpp"
#include "protocols/text/text.hpp"

#include <algorithm>
#include <deque>
#include <map>

namespace switchyard::msnp {

namespace {

// Commands a client may send while its join is in flight (a client that does
// not wait for USR OK); they run once the room has answered.
constexpr std::size_t max_queued = 16;

// §4.5: CAL errors.
std::string_view cal_error(frame::error_code code) {
    using frame::error_code;
    switch (code) {
        case error_code::invalid_text: return "208";
        case error_code::already_on_list: return "215";
        case error_code::not_allowed: return "216";
        case error_code::offline:
        case error_code::unknown_object: return "217";
        case error_code::rate_limited: return "713";
        case error_code::room_full: return "712";  // session overload
        default: return "500";
    }
}

std::string friendly_param(const std::string& display_name, const std::string& handle) {
    return url_encode(display_name.empty() ? handle : display_name);
}

}  // namespace

struct sb_session::impl {
    enum class stage { auth, joining, joined, closed };
    enum class request { join, invite, message };
    struct pending {
        request kind;
        std::string trid;
        char mode = 'U';  // MSG ack mode
    };

    services& svc;
    session_limits limits;
    stage st = stage::auth;
    bool joined_once = false;

    // From USR/ANS and the cookie's grant.
    bool answering = false;  // ANS (invitee) rather than USR (caller)
    std::string auth_trid;
    std::string claimed_handle;  // as the client spelled it: echoed in USR OK (§5)
    std::string handle;          // normalised
    std::string display_name;
    std::string room;            // "room:<sessid>"
    std::string endpoint;
    int dialect = 0;

    std::vector<frame::member> others;  // joined endpoints of other users
    std::map<std::uint64_t, pending> requests;
    std::deque<command> queued;
    std::uint64_t next_corr = 1;
    std::uint64_t messages_sent = 0;

    impl(services& s, session_limits l) : svc(s), limits(l) {}

    frame::frame to_room(std::uint64_t corr, frame::body b) const {
        return frame::frame{corr, room, handle, std::move(b)};
    }

    std::uint64_t track(request kind, std::string_view trid, char mode = 'U') {
        const std::uint64_t corr = next_corr++;
        requests.emplace(corr, pending{kind, std::string(trid), mode});
        return corr;
    }

    // Ends the connection after `bytes`; leaves the room when in it, for
    // `why` (the others see BYE email 1 for anything but left).
    output close(std::string reason, std::string bytes = {}, frame::leave_reason why = frame::leave_reason::dropped) {
        output out;
        out.bytes = std::move(bytes);
        if (st == stage::joining || st == stage::joined) {
            out.frames.push_back(to_room(0, frame::room_leave{handle, endpoint, why}));
            out.unwatch.push_back(room);
        }
        st = stage::closed;
        out.close = true;
        out.close_reason = std::move(reason);
        return out;
    }

    // ------------------------------------------------------------ commands

    output on_command(const command& c) {
        switch (st) {
            case stage::auth: return authenticate(c);
            case stage::joining:
                if (queued.size() >= max_queued) {
                    return close("too many commands before the switchboard answered");
                }
                queued.push_back(c);
                return {};
            case stage::joined: return dispatch(c);
            case stage::closed: break;
        }
        return {};
    }

    // `USR t email cookie` (caller) or `ANS t email cookie sessid` (invitee).
    output authenticate(const command& c) {
        answering = c.name == "ANS";
        if (!answering && c.name != "USR") return close("switchboard connection began with " + c.name);
        if (c.params.size() != (answering ? 4u : 3u) || !c.trid()) {
            return close(c.name + " with a wrong parameter count");
        }
        auth_trid = c.params[0];
        claimed_handle = c.params[1];
        // Redeemed by the handle it was issued to, whatever follows: a
        // cookie is good for one attempt by its owner (§4.4).
        const auto claimed = text::normalize_handle(url_decode(claimed_handle));
        const auto grant = claimed ? svc.redeem_sb_cookie(c.params[2], *claimed) : std::nullopt;
        if (!grant || !grant->room.starts_with("room:") ||
            (answering && grant->room != "room:" + url_decode(c.params[3]))) {
            return close("switchboard cookie refused", line({"911", auth_trid}));
        }
        handle = *claimed;
        display_name = grant->display_name.empty() ? handle : grant->display_name;
        room = grant->room;
        dialect = grant->dialect;
        endpoint = svc.new_endpoint_id();
        st = stage::joining;

        output out;
        out.watch.push_back(room);
        // A caller's cookie (XFR) names a room not made yet: the first join
        // creates it, so unused cookies leave no room behind. Unanswered:
        // the join that follows fails if the room cannot be had.
        if (!answering) {
            out.frames.push_back(to_room(0, frame::room_create{frame::room_policy::invite_only, {}}));
        }
        frame::member me{handle, endpoint, display_name, grant->capabilities, frame::client_protocol::msnp};
        out.frames.push_back(to_room(track(request::join, auth_trid), frame::room_join{std::move(me)}));
        return out;
    }

    output dispatch(const command& c) {
        if (c.name == "MSG") return on_msg(c);
        if (c.name == "CAL") return on_cal(c);
        if (c.name == "OUT") return close("client signed out", {}, frame::leave_reason::left);
        const auto trid = c.trid();
        if (!trid) return close("unexpected " + c.name + " without a TrID");
        // §4.8: 207 for a second USR; other commands an SB does not know: 200.
        output out;
        out.bytes = line({c.name == "USR" || c.name == "ANS" ? "207" : "200", *trid});
        return out;
    }

    output on_cal(const command& c) {
        if (c.params.size() != 2 || !c.trid()) return close("CAL with a wrong parameter count");
        const std::string& trid = c.params[0];
        output out;
        const auto invitee = text::normalize_handle(url_decode(c.params[1]));
        if (!invitee) {
            out.bytes = line({"208", trid});
            return out;
        }
        out.frames.push_back(to_room(track(request::invite, trid), frame::room_invite{*invitee, display_name, {}}));
        return out;
    }

    // `MSG t U|N|A|D len` + payload (§4.5, §4.6).
    output on_msg(const command& c) {
        if (c.params.size() != 3 || !c.trid() || !c.has_payload) {
            return close("MSG with a wrong parameter count");
        }
        const std::string& trid = c.params[0];
        const std::string& mode = c.params[1];
        // Case-sensitive: a lowercase letter is a disconnect (HYPO).
        if (mode.size() != 1 || std::string_view("UNAD").find(mode[0]) == std::string_view::npos) {
            return close("MSG ack mode " + mode);
        }
        frame::body body = read_payload(c.payload);
        const auto* opaque = std::get_if<frame::room_opaque>(&body);
        if (opaque && opaque->content_type == p2p_content_type && mode[0] != 'D') {
            return close("P2P data not sent with D");
        }
        auto* msg = std::get_if<frame::room_message>(&body);
        if (!deliverable(opaque != nullptr) || (msg && msg->text.size() > limits.message_bytes)) {
            output out = refuse(trid, mode[0]);
            // Nobody here can use MSNP-only content, but the others (browser
            // users) are shown a notice that it was sent; the sender still
            // hears that it was not delivered.
            if (opaque && !others.empty()) {
                out.frames.push_back(to_room(0, std::move(body)));
            }
            return out;
        }
        if (msg) {
            msg->message_id = endpoint + "/" + std::to_string(++messages_sent);
            msg->ack_requested = mode[0] == 'A' || mode[0] == 'D';
        }
        // U asks for no answer either way: no corr, and errors go unread.
        const std::uint64_t corr = mode[0] == 'U' ? 0 : track(request::message, trid, mode[0]);
        output out;
        out.frames.push_back(to_room(corr, std::move(body)));
        return out;
    }

    bool deliverable(bool msnp_only) const {
        return std::ranges::any_of(others, [&](const frame::member& m) {
            return !msnp_only || m.protocol == frame::client_protocol::msnp;
        });
    }

    // NAK for A, D and N; U is never answered.
    static output refuse(std::string_view trid, char mode) {
        output out;
        if (mode != 'U') out.bytes = line({"NAK", trid});
        return out;
    }

    // ------------------------------------------------------------ frames

    output on_frame(const frame::frame& f) {
        if (st == stage::closed) return {};
        if (f.corr != 0) {
            const auto it = requests.find(f.corr);
            if (it == requests.end()) return {};
            const pending p = std::move(it->second);
            requests.erase(it);
            const auto* err = std::get_if<frame::error>(&f.content);
            switch (p.kind) {
                case request::join: return on_joined(f, err);
                case request::invite: {
                    output out;
                    out.bytes = err ? line({cal_error(err->code), p.trid})
                                    : line({"CAL", p.trid, "RINGING", std::string_view(room).substr(5)});
                    return out;
                }
                case request::message: {
                    output out;
                    if (err) out.bytes = line({"NAK", p.trid});
                    else if (p.mode == 'A' || p.mode == 'D') out.bytes = line({"ACK", p.trid});
                    return out;
                }
            }
            return {};
        }
        // Published frames: before our join's reply they precede the join.
        if (st != stage::joined) return {};
        return std::visit([&](const auto& body) { return on_published(f, body); }, f.content);
    }

    output on_joined(const frame::frame& f, const frame::error* err) {
        const auto* members = std::get_if<frame::room_members>(&f.content);
        if (err || !members) {
            const bool unavailable = err && (err->code == frame::error_code::backend_unavailable ||
                                             err->code == frame::error_code::internal ||
                                             err->code == frame::error_code::shutting_down);
            output out;
            out.bytes = line({unavailable ? "500" : "911", auth_trid});
            out.unwatch.push_back(room);
            st = stage::closed;
            out.close = true;
            out.close_reason = "could not join " + room + (err ? ": " + err->reason : std::string{});
            return out;
        }
        for (const auto& m : members->members) {
            if (m.user != handle) others.push_back(m);
        }
        st = stage::joined;
        joined_once = true;
        output out;
        if (answering) {
            // IRO t i n email friendly {caps}: one per participant (§4.5).
            const auto present = participants();
            const std::string n = std::to_string(present.size());
            for (std::size_t i = 0; i < present.size(); ++i) {
                out.bytes += roster_line("IRO", {auth_trid, std::to_string(i + 1), n}, *present[i]);
            }
            out.bytes += line({"ANS", auth_trid, "OK"});
        } else {
            out.bytes = line({"USR", auth_trid, "OK", claimed_handle, friendly_param(display_name, handle)});
        }
        while (!queued.empty() && st == stage::joined) {
            const command c = std::move(queued.front());
            queued.pop_front();
            out.append(dispatch(c));
        }
        queued.clear();
        return out;
    }

    // The first endpoint of each other user, in join order.
    std::vector<const frame::member*> participants() const {
        std::vector<const frame::member*> out;
        for (const auto& m : others) {
            if (std::ranges::none_of(out, [&](const frame::member* p) { return p->user == m.user; })) out.push_back(&m);
        }
        return out;
    }

    // `<cmd> <prefix…> email friendly {caps}`: capabilities from MSNP12 (§4.5).
    std::string roster_line(std::string_view cmd, std::initializer_list<std::string> prefix,
                            const frame::member& m) const {
        std::string out(cmd);
        for (const auto& p : prefix) out += " " + p;
        out += " " + m.user + " " + friendly_param(m.display_name, m.user);
        if (dialect >= 12) out += " " + std::to_string(m.capabilities);
        return out + "\r\n";
    }

    const frame::member* find_user(std::string_view user) const {
        const auto it = std::ranges::find(others, user, &frame::member::user);
        return it == others.end() ? nullptr : &*it;
    }

    output relay(const std::string& sender, std::string_view payload) const {
        const frame::member* m = find_user(sender);
        output out;
        out.bytes = payload_line({"MSG", sender, friendly_param(m ? m->display_name : sender, sender)}, payload);
        return out;
    }

    output on_published(const frame::frame&, const frame::room_join& j) {
        const frame::member& m = j.who;
        const auto known = [&](const frame::member& o) { return o.endpoint == m.endpoint; };
        if (m.user == handle || std::ranges::any_of(others, known)) return {};
        const bool first = find_user(m.user) == nullptr;
        others.push_back(m);
        output out;
        if (first) out.bytes = roster_line("JOI", {}, m);
        return out;
    }

    output on_published(const frame::frame&, const frame::room_leave& l) {
        if (l.endpoint == endpoint) {
            // Removed by the room (an operator, an idle sweep): nothing to leave.
            st = stage::closed;
            output out;
            out.unwatch.push_back(room);
            out.close = true;
            out.close_reason = "removed from " + room + " (" + std::string(frame::to_string(l.reason)) + ")";
            return out;
        }
        const auto it = std::ranges::find(others, l.endpoint, &frame::member::endpoint);
        if (it == others.end() || it->user != l.user) return {};
        others.erase(it);
        output out;
        if (find_user(l.user) == nullptr) {
            // BYE email 1: dropped by the server or idle (§4.5).
            const bool dropped = l.reason != frame::leave_reason::left;
            out.bytes = dropped ? line({"BYE", l.user, "1"}) : line({"BYE", l.user});
        }
        return out;
    }

    // The room withholds what a user this one blocks sends (gateway/backends/README.md).
    bool withheld(const std::vector<std::string>& from) const { return std::ranges::find(from, handle) != from.end(); }

    output on_published(const frame::frame& f, const frame::room_message& m) {
        if (f.sender == handle || withheld(m.withheld_from)) return {};
        return relay(f.sender, text_payload(m));
    }

    output on_published(const frame::frame& f, const frame::room_typing& t) {
        if (f.sender == handle || !t.active || withheld(t.withheld_from)) return {};  // MSNP has no "stopped typing"
        return relay(f.sender, typing_payload(f.sender));
    }

    output on_published(const frame::frame& f, const frame::room_nudge& n) {
        if (f.sender == handle || withheld(n.withheld_from)) return {};
        return relay(f.sender, nudge_payload());
    }

    output on_published(const frame::frame& f, const frame::room_opaque& o) {
        if (f.sender == handle || o.origin != frame::client_protocol::msnp || withheld(o.withheld_from)) return {};
        return relay(f.sender, o.payload.data);
    }

    template <class T> output on_published(const frame::frame&, const T&) { return {}; }

    // ------------------------------------------------------------ lifecycle

    // The SB has no OUT SSD (§4.1 lists it for the NS): the socket just closes,
    // and the others see the server drop this participant.
    output on_shutdown() {
        if (st == stage::closed) return {};
        return close("server shutting down");
    }

    output on_closed() {
        if (st == stage::closed) return {};
        output out = close("connection closed", {}, frame::leave_reason::left);
        out.close = false;  // already closed: nothing to ask of the gateway
        return out;
    }
};

sb_session::sb_session(services& svc, session_limits limits) : impl_(std::make_unique<impl>(svc, limits)) {}
sb_session::~sb_session() = default;
sb_session::sb_session(sb_session&&) noexcept = default;
bool sb_session::signed_in() const { return impl_->joined_once; }

output sb_session::on_command(const command& c) { return impl_->on_command(c); }
output sb_session::on_frame(const frame::frame& f) { return impl_->on_frame(f); }
output sb_session::on_shutdown() { return impl_->on_shutdown(); }
output sb_session::on_closed() { return impl_->on_closed(); }

}  // namespace switchyard::msnp
