// The notification server for MSNP2-12 (msnp-reference §3, §4.1-4.4):
// login, lists, privacy, presence and switchboard brokering, all through
// frames to the user's object and to new rooms. The session keeps only what
// later commands need (dialect, handle, endpoint, own name and PSM, privacy,
// flags); lists are asked of the user object each time a command needs them.
#include "protocols/msnp/ns_render.hpp"
#include "protocols/msnp/session.hpp"

#include "protocols/text/text.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <utility>

namespace switchyard::msnp {

namespace {

using ns::wire_line;
using frame::error_code;

// CVR's download and info URLs: never followed, since the client's own
// version is echoed as the recommended one (§3.1).
constexpr std::string_view site_url = "http://messenger.msn.com";
// `USR t TWN S` parameters, opaque to the client (§3.3 step 4).
constexpr std::string_view twn_parameters = "ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1";
// MSNP10-12 list timestamps (§4.3): Escargot's fixed stamp, or the next
// second when the client already has that one, so the reply always differs
// from what the client sent.
constexpr std::string_view sync_stamp = "2000-01-01T00:00:00.0-00:00";
constexpr std::string_view sync_stamp_next = "2000-01-01T00:00:01.0-00:00";
constexpr std::size_t max_group_characters = 61;  // Escargot MAX_GROUP_NAME_LENGTH, error 229 (§2.1)

// Frame errors as MSNP numerics (§4.8). Rows naming commands come first and
// win; the rest are the defaults.
struct error_row {
    error_code code;
    std::string_view commands;  // space-separated; empty = any command
    int numeric;
};
constexpr std::string_view list_commands = "ADD ADC REM REA SBP";
constexpr std::string_view group_commands = "ADG RMG REG";
constexpr error_row error_table[] = {
    {error_code::unknown_object, "ADD", 205},  // unknown user, MSNP2-9 (observed MSNP7)
    {error_code::unknown_object, "ADC", 208},  // 208 replaces 205 from MSNP10
    {error_code::already_on_list, list_commands, 215},
    {error_code::not_on_list, list_commands, 216},
    {error_code::list_full, list_commands, 210},
    {error_code::not_allowed, list_commands, 219},  // allow and block lists are exclusive
    {error_code::already_on_list, group_commands, 228},
    {error_code::not_on_list, group_commands, 224},
    {error_code::list_full, group_commands, 223},
    {error_code::oversize, group_commands, 229},
    {error_code::malformed, "", 201},
    {error_code::invalid_text, "", 201},
    {error_code::oversize, "", 201},
    {error_code::unknown_object, "", 208},
    {error_code::not_member, "", 280},
    {error_code::room_full, "", 280},
    {error_code::not_allowed, "", 216},
    {error_code::list_full, "", 210},
    {error_code::already_on_list, "", 215},
    {error_code::not_on_list, "", 216},
    {error_code::offline, "", 217},
    {error_code::unsupported, "", 502},
    {error_code::rate_limited, "", 800},
    {error_code::unauthenticated, "", 911},
    {error_code::backend_unavailable, "", 601},
    {error_code::shutting_down, "", 604},
    {error_code::internal, "", 500},
};

bool contains_token(std::string_view list, std::string_view name) {
    while (!list.empty()) {
        const auto space = list.find(' ');
        if (list.substr(0, space) == name) {
            return true;
        }
        list.remove_prefix(space == std::string_view::npos ? list.size() : space + 1);
    }
    return false;
}

int numeric_error(std::string_view command, error_code code) {
    for (const auto& row : error_table) {
        if (row.code == code && (row.commands.empty() || contains_token(row.commands, command))) {
            return row.numeric;
        }
    }
    return 500;
}

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return n;
}

std::string user_object(std::string_view handle) { return "user:" + std::string(handle); }

std::optional<std::string> normalized_handle(std::string_view handle) {
    auto h = text::normalize_handle(handle);
    return h ? std::optional<std::string>(std::move(*h)) : std::nullopt;
}

std::optional<std::string> handle_param(std::string_view param) { return normalized_handle(url_decode(param)); }

// A URL-decoded name that is valid UTF-8 and within `limit` bytes.
std::optional<std::string> name_param(std::string_view param, std::size_t limit) {
    std::string name = url_decode(param);
    return text::check_text(name, limit) ? std::optional<std::string>(std::move(name)) : std::nullopt;
}

std::size_t characters(std::string_view utf8) {
    return static_cast<std::size_t>(
        std::count_if(utf8.begin(), utf8.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

constexpr std::uint32_t forward_bit = 1u << static_cast<unsigned>(frame::list::forward);
constexpr std::uint32_t reverse_bit = 1u << static_cast<unsigned>(frame::list::reverse);

std::optional<frame::list> editable_list(std::string_view name) {
    if (name == "FL") return frame::list::forward;
    if (name == "AL") return frame::list::allow;
    if (name == "BL") return frame::list::block;
    return std::nullopt;  // RL and PL follow other users' lists
}

// Tokens "N=", "F=", "C=" of MSNP10-12 list commands.
std::optional<std::string_view> tagged(std::string_view token, std::string_view tag) {
    if (token.size() < 2 || token.substr(0, 2) != tag) {
        return std::nullopt;
    }
    return token.substr(2);
}


const frame::roster_entry* find_entry(const frame::roster& r, std::string_view handle) {
    const auto it = std::find_if(r.entries.begin(), r.entries.end(), [&](const auto& e) { return e.handle == handle; });
    return it == r.entries.end() ? nullptr : &*it;
}

const frame::roster_entry* find_contact_id(const frame::roster& r, std::string_view id) {
    const auto it = std::find_if(r.entries.begin(), r.entries.end(), [&](const auto& e) {
        return !e.contact_id.empty() && e.contact_id == id && (e.lists & forward_bit);
    });
    return it == r.entries.end() ? nullptr : &*it;
}

bool has_group(const frame::roster& r, std::string_view id) {
    return std::any_of(r.groups.begin(), r.groups.end(), [&](const auto& g) { return g.id == id; });
}

enum class stage : std::uint8_t { start, negotiated, md5_identified, twn_identified, logging_in, online, closed };

// A request this session sent and the command that caused it.
struct pending {
    enum class step : std::uint8_t {
        hello,       // login: the endpoint's hello
        login,       // login: roster_get for the name USR OK shows
        resolve,     // roster_get to turn client ids (group numbers, contact GUIDs) into frame ids
        request,     // the frame the command maps to
    };
    std::uint64_t corr = 0;
    step at = step::request;
    command cmd;
    std::string subject;          // the resolved handle or group id
    std::string held;             // ILN lines held until the terminal reply
    std::size_t group_index = 0;  // MSNP7-9 ADG: where the new group lands
};

}  // namespace

struct ns_session::impl {
    impl(services& s, session_limits l) : svc(s), limits(l) {}

    services& svc;
    session_limits limits;
    stage at = stage::start;
    bool was_online = false;  // reached stage::online once
    int dialect = 0;
    bool burst_done = false;  // the first CHG, and its ILN burst, happened
    bool synced = false;      // SYN was answered
    bool signed_out = false;  // the client sent OUT
    bool shutting_down = false;
    frame::status status = frame::status::offline;
    std::uint64_t capabilities = 0;  // from CHG, passed on to switchboards
    frame::privacy_default privacy = frame::privacy_default::allow;
    frame::add_prompt prompt = frame::add_prompt::prompt;
    std::uint64_t list_version = 0;
    std::uint64_t next_corr = 1;
    std::string handle;
    std::string endpoint;
    std::string client_name;  // from CVR, until the hello
    std::vector<frame::ticket_info> ticket;  // the TWN ticket's issue time, for the hello
    std::string display_name;
    // MSNP7-9 group numbers removed since SYN: later groups keep their
    // numbers until the next SYN renumbers them.
    std::vector<std::uint64_t> removed_groups;
    std::vector<pending> requests;
    // Reverse-list notices that arrived before the lists were loaded.
    std::vector<frame::roster_change> held_reverse;
    static constexpr std::size_t max_held_reverse = 256;

    // ------------------------------------------------------------ output helpers

    static output write(std::string bytes) {
        output o;
        o.bytes = std::move(bytes);
        return o;
    }

    output close(std::string reason, std::string bytes = {}) {
        at = stage::closed;
        output o;
        o.bytes = std::move(bytes);
        o.close = true;
        o.close_reason = std::move(reason);
        return o;
    }

    static std::string error_line(int numeric, std::string_view trid) {
        return (wire_line(std::to_string(numeric)) << trid).end();
    }

    static output error(const command& c, int numeric) { return write(error_line(numeric, c.params.front())); }

    output error(const command& c, error_code code) { return error(c, numeric_error(c.name, code)); }

    output send(std::string object, frame::body body, pending p) {
        p.corr = next_corr++;
        output o;
        o.frames.push_back(frame::frame{p.corr, std::move(object), handle, std::move(body)});
        requests.push_back(std::move(p));
        return o;
    }

    output to_user(frame::body body, const command& c, pending::step step = pending::step::request) {
        return send(user_object(handle), std::move(body), pending{0, step, c, {}, {}, 0});
    }

    output to_user(frame::body body, pending p) { return send(user_object(handle), std::move(body), std::move(p)); }

    // ------------------------------------------------------------ commands

    output on_command(const command& c) {
        if (at == stage::closed) {
            return {};
        }
        if (c.name == "VER") {
            return ver(c);
        }
        if (at == stage::start) {
            return close("the first command must be VER");
        }
        // PNG and OUT have no TrID (§2.2).
        if (c.name == "PNG" || c.name == "OUT") {
            if (at != stage::online) {
                return close(c.name + " before login");  // observed MSNP8 (§4.1)
            }
            if (c.name == "OUT") {
                signed_out = true;
                return close("signed out");  // never echoed (§4.1)
            }
            // Bare QNG up to MSNP8, QNG <seconds> from MSNP9 (§4.1).
            return write(dialect >= 9 ? (wire_line("QNG") << limits.qng_seconds).end() : "QNG\r\n");
        }
        if (!c.trid()) {
            return close(c.name + " without a TrID");
        }
        if (c.name == "CVR") {
            return cvr(c);
        }
        if (c.name == "INF") {
            // INF is MSNP2-7; MSNP8 closes on it (observed, §3.2).
            if (dialect >= 8) {
                return close("INF is MSNP2-7 only");
            }
            return write((wire_line("INF") << c.params[0] << "MD5").end());
        }
        if (at != stage::online) {
            if (c.name == "USR" && at != stage::logging_in) {
                return usr(c);
            }
            return close(c.name + " before login");  // §4.8
        }
        return online_command(c);
    }

    output online_command(const command& c) {
        const std::string& n = c.name;
        if (n == "USR") return error(c, 207);  // already logged in (§4.1)
        if (n == "SYN") return syn(c);
        if (n == "CHG") return chg(c);
        if (n == "XFR") return xfr(c);
        if (n == "BLP" || n == "GTC") return privacy_command(c);
        if (n == "URL") return write((wire_line("URL") << c.params[0] << "/unused1" << "/unused2" << 1).end());
        if (n == "PRP" && dialect >= 5) return prp(c);
        if ((n == "ADG" || n == "RMG" || n == "REG") && dialect >= 7) return group_command(c);
        if (dialect <= 9) {
            if (n == "ADD") return add(c);
            if (n == "REM") return rem(c);
            if (n == "REA") return rea(c);
        } else {
            if (n == "ADC") return adc(c);
            if (n == "REM") return rem_guid(c);
            if (n == "SBP") return sbp(c);
        }
        if (dialect >= 11) {
            if (n == "UUX") return uux(c);
            if (n == "GCF") return gcf(c);
        }
        // Commands of other dialects are disabled here (REA from MSNP10,
        // §4.3); anything else is a syntax error from a logged-in client
        // (§4.8 recommendation).
        static constexpr std::string_view other_dialects = "ADD ADC REA SBP PRP ADG RMG REG UUX GCF";
        return error(c, contains_token(other_dialects, n) ? 502 : 200);
    }

    // VER t MSNPn … {CVR0} (§3.1).
    output ver(const command& c) {
        const auto trid = c.trid();
        if (!trid) {
            return close("VER without a numeric TrID");  // §2.2
        }
        if (at != stage::start) {
            return close("second VER", error_line(715, *trid));
        }
        int best = 0;
        bool cvr0 = false;
        for (std::size_t i = 1; i < c.params.size(); ++i) {
            const std::string_view p = c.params[i];
            if (p == "CVR0") {
                cvr0 = true;
            } else if (p.starts_with("MSNP")) {
                const auto n = number(p.substr(4));
                if (n && *n >= static_cast<std::uint64_t>(min_dialect) && *n <= static_cast<std::uint64_t>(max_dialect)) {
                    best = std::max(best, static_cast<int>(*n));
                }
            }
        }
        if (best == 0) {
            return close("no common dialect", (wire_line("VER") << *trid << 0).end());
        }
        dialect = best;
        at = stage::negotiated;
        wire_line reply("VER");
        reply << *trid << "MSNP" + std::to_string(best);
        if (cvr0) {
            reply << "CVR0";  // §3.1 recommendation: echo CVR0 when offered
        }
        return write(reply.end());
    }

    // CVR t locale os osver arch client version {codebase {handle}} (§3.1):
    // the client's own version is echoed three times, so no upgrade prompt.
    output cvr(const command& c) {
        if (c.params.size() < 7) {
            return error(c, 710);
        }
        const std::string& version = c.params[6];
        if (at < stage::logging_in) {
            client_name = c.params[5] + " " + version;
            client_name.resize(std::min(client_name.size(), frame::limits::token));
        }
        return write((wire_line("CVR") << c.params[0] << version << version << version << site_url << site_url).end());
    }

    // USR t MD5|TWN I handle, then USR t MD5|TWN S response (§3.2, §3.3).
    output usr(const command& c) {
        if (c.params.size() != 4) {
            return close("USR with " + std::to_string(c.params.size()) + " parameters");
        }
        const std::string& trid = c.params[0];
        const std::string& package = c.params[1];
        const std::string& step = c.params[2];
        const bool md5 = package == "MD5";
        // MD5 is MSNP2-7 and TWN MSNP8-12; the other one closes (§4.1, observed MSNP8).
        if (!(md5 && dialect <= 7) && !(package == "TWN" && dialect >= 8)) {
            return close("USR " + package + " in MSNP" + std::to_string(dialect));
        }
        // The log names the handle tried, so brute force against an account shows.
        const auto fail = [&] {
            return close(handle.empty() ? "authentication failed" : "authentication failed for " + handle,
                         error_line(911, trid));
        };
        if (step == "I") {
            if (at != stage::negotiated) {
                return close("second USR I");
            }
            auto h = handle_param(c.params[3]);
            if (!h) {
                return fail();
            }
            handle = std::move(*h);
            if (md5) {
                at = stage::md5_identified;
                return write((wire_line("USR") << trid << "MD5" << "S" << svc.md5_salt(handle)).end());
            }
            at = stage::twn_identified;
            return write((wire_line("USR") << trid << "TWN" << "S" << twn_parameters).end());
        }
        if (step != "S" || at != (md5 ? stage::md5_identified : stage::twn_identified)) {
            return close("USR " + step + " out of order");
        }
        if (md5) {
            if (!svc.verify_md5(handle, c.params[3])) {
                return fail();  // 911 and close (observed MSNP7, §3.2)
            }
        } else {
            // The ticket must have been issued to the handle of `USR t TWN I` (§3.3).
            const auto owner = svc.verify_ticket(c.params[3]);
            if (!owner || normalized_handle(owner->handle) != handle) {
                return fail();
            }
            // The user object refuses a ticket older than the password.
            ticket = {frame::ticket_info{owner->issued_ms}};
        }
        return begin_login(c);
    }

    // hello and roster_get together; USR OK waits for both (§7.7 table).
    output begin_login(const command& c) {
        at = stage::logging_in;
        endpoint = svc.new_endpoint_id();
        output out;
        out.watch.push_back(user_object(handle));
        // Before multiple points of presence (MSNP16) an account has one session.
        std::vector<std::string> announced;
        if (dialect < 16) {
            announced.emplace_back(frame::capability::single_session);
        }
        frame::hello h{frame::client_protocol::msnp, static_cast<std::uint32_t>(dialect), handle,
                       endpoint, std::move(client_name), std::move(announced), std::move(ticket)};
        out.append(to_user(std::move(h), c, pending::step::hello));
        client_name = {};
        out.append(to_user(frame::roster_get{}, c, pending::step::login));
        return out;
    }

    output fail_login(const command& c, std::string reason) {
        endpoint.clear();  // nothing to say goodbye for
        output out = close(std::move(reason), error_line(911, c.params[0]));
        out.unwatch.push_back(user_object(handle));
        return out;
    }

    output finish_login(const command& c, const frame::roster& r) {
        at = stage::online;
        was_online = true;
        display_name = r.display_name.empty() ? handle : r.display_name;
        privacy = r.privacy;
        prompt = r.prompt;
        list_version = r.version;
        // USR OK per dialect (§4.1 table): the name until MSNP9, the verified
        // flag from MSNP6, the "not restricted" 0 from MSNP8.
        wire_line ok("USR");
        ok << c.params[0] << "OK" << handle;
        if (dialect <= 9) {
            ok << url_encode(display_name);
        }
        if (dialect >= 6) {
            ok << 1;
        }
        if (dialect >= 8) {
            ok << 0;
        }
        std::string out = ok.end();
        if (dialect >= 11) {
            out += "SBS 0 null\r\n";  // §4.1: sent from MSNP11, before the profile
        }
        // The profile goes to every dialect, as the current Escargot does (§3.2, §4.7).
        out += ns::profile_message(handle, svc.now_ms());
        return write(std::move(out));
    }

    // SYN t ver (MSNP2-9) / SYN t listver settingsver (MSNP10-12): always the
    // full list, under a version different from the client's (§4.3).
    output syn(const command& c) {
        if (c.params.size() < 2) {
            return close("SYN without a version");
        }
        return to_user(frame::roster_get{number(c.params[1]).value_or(0)}, c);
    }

    output synced_list(const command& c, const frame::roster& r) {
        std::string version;
        if (dialect <= 9) {
            std::uint64_t v = r.version;
            if (number(c.params[1]) == v) {
                ++v;
            }
            list_version = v;
            version = std::to_string(v);
        } else {
            version = c.params[1] == sync_stamp ? sync_stamp_next : sync_stamp;
        }
        synced = true;
        removed_groups.clear();
        privacy = r.privacy;
        prompt = r.prompt;
        std::string out = ns::syn_reply(dialect, c.params[0], version, r);
        out += reverse_after_syn(r);
        return write(std::move(out));
    }

    // CHG t STATUS {caps {msnobj}} (§4.2).
    output chg(const command& c) {
        if (c.params.size() < 2) {
            return close("CHG without a status");
        }
        const auto state = ns::settable_status(c.params[1]);
        if (!state) {
            return error(c, 201);  // CHG t FLN, unknown codes
        }
        frame::presence_info p;
        p.state = *state;
        p.endpoint = endpoint;
        if (dialect >= 8 && c.params.size() >= 3) {
            const auto caps = number(c.params[2]);
            if (!caps) {
                return error(c, 201);
            }
            p.capabilities = *caps;
            capabilities = *caps;
        }
        if (dialect >= 9 && c.params.size() >= 4) {
            p.msn_object = url_decode(c.params[3]);
            if (!text::is_valid_utf8(p.msn_object)) {
                return error(c, 201);
            }
        }
        return to_user(frame::presence_set{std::move(p)}, c);
    }

    output changed_status(const command& c, std::string held) {
        status = *ns::settable_status(c.params[1]);
        wire_line echo("CHG");
        for (const auto& p : c.params) {
            echo << p;
        }
        std::string out = echo.end() + held;
        // The first CHG's burst ends with the initial mail data from MSNP11 (§4.2, §4.7).
        if (!burst_done && dialect >= 11) {
            out += ns::initial_mail_data_message();
        }
        burst_done = true;
        // A client that sets a status without synchronising gets what was held.
        for (const frame::roster_change& n : std::exchange(held_reverse, {})) {
            out += reverse_line(n);
        }
        return write(std::move(out));
    }

    // XFR t SB (§4.1, §4.4): a cookie for a new invite-only room, which the
    // switchboard creates when the cookie is redeemed: an XFR never
    // followed by a USR leaves nothing behind.
    output xfr(const command& c) {
        if (c.params.size() != 2 || c.params[1] != "SB") {
            return error(c, 201);  // observed MSNP7: XFR t NS → 201
        }
        if (!burst_done || status == frame::status::invisible) {
            return error(c, 913);
        }
        const std::string room = "room:" + svc.new_room_id();
        const std::string cookie = svc.issue_sb_cookie({handle, room, dialect, display_name, capabilities});
        return write((wire_line("XFR") << c.params[0] << "SB" << svc.sb_endpoint() << "CKI" << cookie).end());
    }

    // BLP t AL|BL, GTC t A|N: the frame carries both settings (§4.3).
    output privacy_command(const command& c) {
        if (c.params.size() != 2) {
            return close(c.name + " with " + std::to_string(c.params.size()) + " parameters");
        }
        frame::privacy_set p{privacy, prompt, 0};
        const std::string& v = c.params[1];
        if (c.name == "BLP" && (v == "AL" || v == "BL")) {
            p.privacy = v == "AL" ? frame::privacy_default::allow : frame::privacy_default::block;
        } else if (c.name == "GTC" && (v == "A" || v == "N")) {
            p.prompt = v == "A" ? frame::add_prompt::prompt : frame::add_prompt::none;
        } else {
            return error(c, 201);
        }
        return to_user(p, c);
    }

    output privacy_changed(const command& c, const frame::privacy_set& p) {
        privacy = p.privacy;
        prompt = p.prompt;
        list_version = p.version;
        wire_line reply(c.name);
        reply << c.params[0];
        if (dialect <= 9) {
            reply << p.version;  // the list version is dropped from MSNP10 (§4.3)
        }
        reply << c.params[1];
        return write(reply.end());
    }

    // The own display name (REA self, PRP MFN).
    output set_own_name(const command& c, std::string name) {
        frame::profile_set profile;
        profile.fields = frame::profile_bits::display_name;
        profile.display_name = name;
        return to_user(std::move(profile), pending{0, pending::step::request, c, std::move(name), {}, 0});
    }

    // PRP t MFN name (MSNP10-12): the own display name. PRP t PHH|PHW|PHM
    // {number} (MSNP5-12): a phone number, cleared when the number is
    // left out; PRP t MOB|MBE Y|N: whether contacts may page the mobile
    // device, and whether there is one (§4.3).
    output prp(const command& c) {
        if (c.params.size() < 2 || c.params.size() > 3) {
            return close("PRP with " + std::to_string(c.params.size()) + " parameters");
        }
        const std::string& key = c.params[1];
        if (key == "MFN") {
            if (dialect < 10 || c.params.size() != 3) {
                return error(c, 715);  // the own name is REA before MSNP10 (as Escargot)
            }
            auto name = name_param(c.params[2], limits.name_bytes);
            if (!name) {
                return error(c, 201);
            }
            return set_own_name(c, std::move(*name));
        }
        const std::string value = c.params.size() == 3 ? url_decode(c.params[2]) : std::string();
        if (value.size() > frame::limits::phone) {  // closed, as Escargot does
            return close("PRP " + key + " longer than " + std::to_string(frame::limits::phone) + " bytes");
        }
        frame::profile_set p;
        if (key == "PHH" || key == "PHW" || key == "PHM") {
            if (!text::check_text(value, frame::limits::phone)) {
                return error(c, 201);
            }
            const char which = key[2];
            p.fields = which == 'H' ? frame::profile_bits::phone_home
                     : which == 'W' ? frame::profile_bits::phone_work
                                    : frame::profile_bits::phone_mobile;
            (which == 'H' ? p.phones.home : which == 'W' ? p.phones.work : p.phones.mobile) = value;
        } else if ((key == "MOB" || key == "MBE") && (value == "Y" || value == "N")) {
            p.fields = key == "MOB" ? frame::profile_bits::mobile_pageable : frame::profile_bits::mobile_device;
            p.phones.pageable = p.mobile_device = value == "Y";
        } else {
            return error(c, 201);
        }
        return to_user(std::move(p), c);
    }

    output prp_done(const command& c) {
        wire_line reply("PRP");
        reply << c.params[0];
        if (dialect <= 9) {
            reply << list_version;
        }
        for (std::size_t i = 1; i < c.params.size(); ++i) {
            reply << c.params[i];
        }
        return write(reply.end());
    }

    // REA t handle name (MSNP2-9): the own name, or a contact's nickname.
    output rea(const command& c) {
        if (c.params.size() != 3) {
            return close("REA with " + std::to_string(c.params.size()) + " parameters");
        }
        auto who = handle_param(c.params[1]);
        auto name = name_param(c.params[2], limits.name_bytes);
        if (!who || !name) {
            return error(c, 201);
        }
        if (*who == handle) {
            return set_own_name(c, std::move(*name));
        }
        return to_user(frame::list_edit(frame::change_op::rename, frame::list::forward, *who, *name), c);
    }

    output renamed(const command& c, std::uint64_t version, std::string_view who) {
        if (c.name == "PRP") {
            return write((wire_line("PRP") << c.params[0] << "MFN" << c.params[2]).end());
        }
        if (c.name == "SBP") {
            return write((wire_line("SBP") << c.params[0] << c.params[1] << c.params[2] << c.params[3]).end());
        }
        return write((wire_line("REA") << c.params[0] << version << who << c.params[2]).end());
    }

    // ADD t LIST handle name {gid} (MSNP2-9, §4.3).
    output add(const command& c) {
        if (c.params.size() < 4 || c.params.size() > 5) {
            return close("ADD with " + std::to_string(c.params.size()) + " parameters");
        }
        const auto which = editable_list(c.params[1]);
        auto who = handle_param(c.params[2]);
        auto name = name_param(c.params[3], limits.name_bytes);
        if (!which || !who || *who == handle || !name) {
            return error(c, 201);
        }
        if (*which == frame::list::forward && c.params.size() == 5 && dialect >= 7) {
            // Group numbers and "already on the FL" need the current list.
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        return to_user(frame::list_edit(frame::change_op::add, *which, *who, *name), c);
    }

    // ADD t FL handle name gid, with the list at hand.
    output add_to_group(const command& c, const frame::roster& r) {
        const auto gid = number(c.params[4]);
        if (!gid) {
            return error(c, 224);
        }
        const std::string who = *handle_param(c.params[2]);
        const frame::roster_entry* e = find_entry(r, who);
        const bool listed = e && (e->lists & forward_bit);
        if (*gid == 0) {
            // Group 0 is "Other Contacts", i.e. no group: moving a grouped
            // contact there (ADD 0, then REM from its group) changes nothing yet.
            if (listed && !e->groups.empty()) {
                return write(add_reply(c, list_version, e->display_name));
            }
            return to_user(frame::list_edit(frame::change_op::add, frame::list::forward, who,
                                     *name_param(c.params[3], limits.name_bytes)),
                           c);
        }
        const auto index = group_index(*gid, r.groups.size());
        if (!index) {
            return error(c, 224);
        }
        return to_user(frame::list_edit(frame::change_op::add, frame::list::forward, who,
                                 *name_param(c.params[3], limits.name_bytes), r.groups[*index].id),
                       c);
    }

    std::string add_reply(const command& c, std::uint64_t version, std::string_view name) const {
        wire_line reply("ADD");
        reply << c.params[0] << c.params[1] << version << *handle_param(c.params[2])
              << url_encode(name.empty() ? c.params[2] : name);
        if (c.params.size() == 5) {
            reply << c.params[4];
        }
        return reply.end();
    }

    // REM t LIST handle {gid} (MSNP2-9).
    output rem(const command& c) {
        if (c.params.size() < 3 || c.params.size() > 4) {
            return close("REM with " + std::to_string(c.params.size()) + " parameters");
        }
        const auto which = editable_list(c.params[1]);
        auto who = handle_param(c.params[2]);
        if (!which || !who) {
            return error(c, 201);
        }
        if (*which == frame::list::forward && c.params.size() == 4 && dialect >= 7) {
            const auto gid = number(c.params[3]);
            if (!gid) {
                return error(c, 224);
            }
            if (*gid == 0) {
                // Leaving "Other Contacts" for a group: nothing to store (see add_to_group).
                return write((wire_line("REM") << c.params[0] << c.params[1] << list_version << *who << 0).end());
            }
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        return to_user(frame::list_edit(frame::change_op::remove, *which, *who), c);
    }

    output rem_from_group(const command& c, const frame::roster& r) {
        const auto index = group_index(*number(c.params[3]), r.groups.size());
        if (!index) {
            return error(c, 224);
        }
        return to_user(frame::list_edit(frame::change_op::remove, frame::list::forward, *handle_param(c.params[2]), {},
                                 r.groups[*index].id),
                       c);
    }

    // ADC t FL N=handle {F=name} {group} / ADC t FL C=guid group / ADC t AL|BL N=handle (MSNP10-12).
    output adc(const command& c) {
        if (c.params.size() < 3 || c.params.size() > 5) {
            return close("ADC with " + std::to_string(c.params.size()) + " parameters");
        }
        if (c.params[1] == "RL" && dialect >= 11) {
            return acknowledge_pending(c);
        }
        const auto which = editable_list(c.params[1]);
        if (!which) {
            return error(c, 201);
        }
        if (tagged(c.params[2], "C=")) {
            if (*which != frame::list::forward || c.params.size() != 4) {
                return error(c, 201);
            }
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        const auto target = adc_target(c);
        if (!target) {
            return error(c, 201);
        }
        if (!target->group.empty()) {
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        return to_user(frame::list_edit(frame::change_op::add, *which, target->handle, target->name), c);
    }

    struct adc_fields {
        std::string handle;
        std::string name;
        std::string group;
    };

    // N=handle {F=name} {group} of an ADC; only the FL takes a name and group.
    std::optional<adc_fields> adc_target(const command& c) const {
        const auto n = tagged(c.params[2], "N=");
        auto who = n ? handle_param(*n) : std::nullopt;
        if (!who || *who == handle) {
            return std::nullopt;
        }
        adc_fields f{std::move(*who), {}, {}};
        const bool forward = c.params[1] == "FL";
        for (std::size_t i = 3; i < c.params.size(); ++i) {
            if (!forward) {
                return std::nullopt;
            }
            if (const auto name = tagged(c.params[i], "F=")) {
                auto decoded = name_param(*name, limits.name_bytes);
                if (!decoded) {
                    return std::nullopt;
                }
                f.name = std::move(*decoded);
            } else {
                f.group = c.params[i];
            }
        }
        return f;
    }

    output adc_resolved(const command& c, const frame::roster& r) {
        if (const auto id = tagged(c.params[2], "C=")) {
            const frame::roster_entry* e = find_contact_id(r, *id);
            if (!e) {
                return error(c, 216);
            }
            if (!has_group(r, c.params[3])) {
                return error(c, 224);
            }
            return to_user(
                frame::list_edit(frame::change_op::add, frame::list::forward, e->handle, {}, c.params[3]), c);
        }
        auto target = *adc_target(c);
        if (!has_group(r, target.group)) {
            return error(c, 224);
        }
        return to_user(frame::list_edit(frame::change_op::add, frame::list::forward, std::move(target.handle),
                                 std::move(target.name), std::move(target.group)),
                       c);
    }

    // The ADC reply: ADC t FL N=… answers with the stored name and the new
    // C= GUID; the other forms are echoed.
    output adc_done(const pending& p, const frame::roster_change& r) {
        const command& c = p.cmd;
        wire_line reply("ADC");
        if (c.params[1] == "FL" && !tagged(c.params[2], "C=")) {
            reply << c.params[0] << "FL" << "N=" + r.handle
                  << "F=" + url_encode(r.display_name.empty() ? r.handle : r.display_name) << "C=" + r.contact_id;
            if (!r.group_id.empty()) {
                reply << r.group_id;
            }
        } else {
            for (const auto& param : c.params) {
                reply << param;
            }
        }
        return write(reply.end() + p.held);
    }

    // ADC t RL N=handle and REM t PL handle (MSNP11-12): a client accepting
    // someone who added it while it was away, after its ADC t AL. Escargot
    // accepts both from MSNP11 for a pending contact, and msn-pecan signs
    // out on any other answer (msnp-reference 3.10). The reverse and
    // pending lists follow the other user's forward list and the owner's
    // allow and block lists, so there is nothing to store: the echo is the
    // whole answer, whatever the lists hold by now.
    output acknowledge_pending(const command& c) {
        const bool add = c.name == "ADC";
        const auto h = add ? tagged(c.params[2], "N=") : std::optional<std::string_view>(c.params[2]);
        const auto who = h ? handle_param(*h) : std::nullopt;
        if (c.params.size() != 3 || !who || *who == handle) {
            return error(c, 201);
        }
        return write((wire_line(c.name) << c.params[0] << c.params[1] << c.params[2]).end());
    }

    // REM t FL guid {group} / REM t AL|BL handle (MSNP10-12).
    output rem_guid(const command& c) {
        if (c.params.size() < 3 || c.params.size() > 4) {
            return close("REM with " + std::to_string(c.params.size()) + " parameters");
        }
        if (c.params[1] == "PL" && dialect >= 11) {
            return acknowledge_pending(c);
        }
        const auto which = editable_list(c.params[1]);
        if (!which) {
            return error(c, 201);
        }
        if (*which == frame::list::forward) {
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        auto who = handle_param(c.params[2]);
        if (!who || c.params.size() != 3) {
            return error(c, 201);
        }
        return to_user(frame::list_edit(frame::change_op::remove, *which, *who), c);
    }

    // FL removals name the contact by its GUID; a handle is accepted too.
    output rem_guid_resolved(const command& c, const frame::roster& r) {
        const auto who = handle_param(c.params[2]);
        const frame::roster_entry* e = who ? find_entry(r, *who) : find_contact_id(r, c.params[2]);
        if (!e || !(e->lists & forward_bit)) {
            return error(c, 216);
        }
        std::string group;
        if (c.params.size() == 4) {
            group = c.params[3];
            if (!has_group(r, group)) {
                return error(c, 224);
            }
        }
        return to_user(
            frame::list_edit(frame::change_op::remove, frame::list::forward, e->handle, {}, std::move(group)),
            c);
    }

    // SBP t guid MFN name (MSNP10-12): a contact's nickname.
    output sbp(const command& c) {
        if (c.params.size() != 4) {
            return close("SBP with " + std::to_string(c.params.size()) + " parameters");
        }
        if (c.params[2] != "MFN" || !name_param(c.params[3], limits.name_bytes)) {
            return error(c, 201);
        }
        return to_user(frame::roster_get{}, c, pending::step::resolve);
    }

    output sbp_resolved(const command& c, const frame::roster& r) {
        const frame::roster_entry* e = find_contact_id(r, c.params[1]);
        if (!e) {
            return error(c, 216);
        }
        return to_user(frame::list_edit(frame::change_op::rename, frame::list::forward, e->handle,
                                 *name_param(c.params[3], limits.name_bytes)),
                       c);
    }

    // ------------------------------------------------------------ groups (MSNP7-12)

    // MSNP7-9 number groups 1..n in creation order; numbers removed since
    // SYN stay unused until the next SYN.
    std::optional<std::size_t> group_index(std::uint64_t gid, std::size_t count) const {
        if (gid == 0 || std::find(removed_groups.begin(), removed_groups.end(), gid) != removed_groups.end()) {
            return std::nullopt;
        }
        const auto below = static_cast<std::size_t>(
            std::count_if(removed_groups.begin(), removed_groups.end(), [&](std::uint64_t r) { return r < gid; }));
        const std::size_t index = static_cast<std::size_t>(gid - 1) - below;
        return index < count ? std::optional<std::size_t>(index) : std::nullopt;
    }

    std::uint64_t group_number(std::size_t index) const {
        std::uint64_t gid = 0;
        for (std::size_t seen = 0;;) {
            ++gid;
            if (std::find(removed_groups.begin(), removed_groups.end(), gid) == removed_groups.end() &&
                seen++ == index) {
                return gid;
            }
        }
    }

    // ADG t name {0}, RMG t gid, REG t gid name {0}.
    output group_command(const command& c) {
        // The name (ADG, REG) and the trailing 0 some dialects send (§4.3).
        const std::size_t name_at = c.name == "ADG" ? 1 : c.name == "REG" ? 2 : 0;
        const std::size_t arity = name_at == 0 ? 2 : name_at + 1;
        if (c.params.size() != arity && !(name_at != 0 && c.params.size() == arity + 1)) {
            return close(c.name + " with " + std::to_string(c.params.size()) + " parameters");
        }
        if (name_at != 0) {
            const std::string name = url_decode(c.params[name_at]);
            if (name.empty() || !text::is_valid_utf8(name)) {
                return error(c, 201);
            }
            if (characters(name) > max_group_characters || name.size() > frame::limits::group_name) {
                return error(c, 229);
            }
        }
        if (c.name != "ADG" && c.params[1] == "0") {
            return error(c, c.name == "RMG" ? 230 : 224);  // group 0 cannot be removed (§4.3)
        }
        // MSNP7-9 ids are numbers, and MSN 7.0 may send RMG with the group's
        // name (ESC _m_rmg): both need the current groups. MSNP10-12 ADG and
        // REG use GUIDs the user object checks itself.
        if (dialect <= 9 || c.name == "RMG") {
            return to_user(frame::roster_get{}, c, pending::step::resolve);
        }
        return group_request(c, c.params[1], 0);
    }

    output group_request(const command& c, std::string id, std::size_t index) {
        frame::group_change g;
        if (c.name == "ADG") {
            g.op = frame::change_op::add;
            g.target.name = url_decode(c.params[1]);
        } else if (c.name == "RMG") {
            g.op = frame::change_op::remove;
            g.target.id = std::move(id);
        } else {
            g.op = frame::change_op::rename;
            g.target = {std::move(id), url_decode(c.params[2])};
        }
        return to_user(std::move(g), pending{0, pending::step::request, c, {}, {}, index});
    }

    output group_resolved(const command& c, const frame::roster& r) {
        if (c.name == "ADG") {
            return group_request(c, {}, r.groups.size());
        }
        if (dialect >= 10) {  // RMG by GUID, or by name
            const auto it = std::find_if(r.groups.begin(), r.groups.end(), [&](const auto& g) {
                return g.id == c.params[1] || g.name == url_decode(c.params[1]);
            });
            if (it == r.groups.end()) {
                return error(c, 224);
            }
            return group_request(c, it->id, 0);
        }
        const auto gid = number(c.params[1]);
        const auto index = gid ? group_index(*gid, r.groups.size()) : std::nullopt;
        if (!index) {
            return error(c, 224);
        }
        return group_request(c, r.groups[*index].id, *index);
    }

    output group_changed(const pending& p, const frame::group_change& g) {
        const command& c = p.cmd;
        const std::string& trid = c.params[0];
        const std::string name = url_encode(g.target.name);
        if (dialect >= 10) {
            // Escargot's MSNP10-12 replies (§4.3, §8 item 1).
            if (c.name == "ADG") return write((wire_line("ADG") << trid << name << g.target.id << 0).end());
            if (c.name == "RMG") return write((wire_line("RMG") << trid << 1 << g.target.id).end());
            return write((wire_line("REG") << trid << 1 << name << g.target.id << 0).end());
        }
        list_version = g.version;
        if (c.name == "ADG") {
            return write((wire_line("ADG") << trid << g.version << name << group_number(p.group_index) << 0).end());
        }
        if (c.name == "RMG") {
            removed_groups.push_back(*number(c.params[1]));
            return write((wire_line("RMG") << trid << g.version << c.params[1]).end());
        }
        return write((wire_line("REG") << trid << g.version << c.params[1] << name << 0).end());
    }

    // ------------------------------------------------------------ MSNP11-12

    // UUX t len + <Data><PSM>…</PSM><CurrentMedia>…</CurrentMedia></Data> (§4.2).
    output uux(const command& c) {
        auto psm = ns::parse_uux(c.payload);
        if (!psm) {
            return close("UUX payload is not a Data document");  // invalid XML: disconnect (YW)
        }
        frame::profile_set p;
        p.fields = frame::profile_bits::personal_message | frame::profile_bits::current_media;
        p.personal_message = std::move(psm->message);
        p.current_media = std::move(psm->media);
        return to_user(std::move(p), c);
    }

    // GCF t Shields.xml; Escargot answers 715 before SYN (§4.1).
    output gcf(const command& c) {
        if (c.params.size() != 2) {
            return close("GCF with " + std::to_string(c.params.size()) + " parameters");
        }
        if (!synced) {
            return error(c, 715);
        }
        return write(ns::shields_reply(c.params[0]));
    }

    // ------------------------------------------------------------ frames

    output on_frame(const frame::frame& f) {
        if (at == stage::closed) {
            return {};
        }
        if (f.corr == 0) {
            return published(f);
        }
        const auto it = std::find_if(requests.begin(), requests.end(), [&](const auto& p) { return p.corr == f.corr; });
        if (it == requests.end()) {
            return {};
        }
        // Presence the user object sends before its terminal reply: the
        // ILN burst of a first CHG, or a contact added while online (§2.2).
        if (const auto* u = std::get_if<frame::presence_update>(&f.content)) {
            if (it->cmd.name == "CHG" || burst_done) {
                it->held += ns::presence(dialect, *u, std::string_view(it->cmd.params[0]));
            }
            return {};
        }
        pending p = std::move(*it);
        requests.erase(it);
        if (const auto* e = std::get_if<frame::error>(&f.content)) {
            if (p.at == pending::step::hello || p.at == pending::step::login) {
                return fail_login(p.cmd, "login refused: " + e->reason);
            }
            return error(p.cmd, e->code);
        }
        return reply(p, f.content);
    }

    output reply(pending& p, const frame::body& body) {
        const command& c = p.cmd;
        const auto* r = std::get_if<frame::roster>(&body);
        switch (p.at) {
        case pending::step::hello:
            return {};
        case pending::step::login:
            return r ? finish_login(c, *r) : fail_login(c, "no roster");
        case pending::step::resolve:
            if (!r) return error(c, 500);
            if (c.name == "ADD") return add_to_group(c, *r);
            if (c.name == "REM") return dialect <= 9 ? rem_from_group(c, *r) : rem_guid_resolved(c, *r);
            if (c.name == "ADC") return adc_resolved(c, *r);
            if (c.name == "SBP") return sbp_resolved(c, *r);
            return group_resolved(c, *r);
        case pending::step::request:
            break;
        }
        if (c.name == "SYN" && r) return synced_list(c, *r);
        if (c.name == "CHG") return changed_status(c, std::move(p.held));
        if (c.name == "UUX") {
            return write((wire_line("UUX") << c.params[0]).end(""));
        }
        if (const auto* s = std::get_if<frame::privacy_set>(&body)) return privacy_changed(c, *s);
        if (const auto* g = std::get_if<frame::group_change>(&body)) return group_changed(p, *g);
        if (const auto* rc = std::get_if<frame::roster_change>(&body)) return list_changed(p, *rc);
        if (std::holds_alternative<frame::ack>(body) && c.name == "PRP" && c.params[1] != "MFN") {
            return prp_done(c);
        }
        if (std::holds_alternative<frame::ack>(body) && (c.name == "REA" || c.name == "PRP")) {
            display_name = p.subject.empty() ? handle : p.subject;  // own name (profile_set)
            return renamed(c, list_version, handle);
        }
        return {};
    }

    output list_changed(pending& p, const frame::roster_change& r) {
        const command& c = p.cmd;
        if (dialect <= 9) {
            list_version = r.version;
        }
        if (r.op == frame::change_op::rename) {
            return renamed(c, r.version, r.handle);
        }
        if (c.name == "ADC") {
            return adc_done(p, r);
        }
        if (c.name == "ADD") {
            // The contact's phone numbers come before its ILN (§4.3).
            const std::string phones = dialect >= 5 ? ns::contact_phones(r.version, r.handle, r.phones) : "";
            return write(add_reply(c, r.version, r.display_name) + phones + p.held);
        }
        wire_line reply("REM");
        reply << c.params[0] << c.params[1];
        if (dialect <= 9) {
            reply << r.version << r.handle;
        } else {
            reply << c.params[2];
        }
        if (c.params.size() == 4) {
            reply << c.params[3];
        }
        return write(reply.end());
    }

    // What the user object publishes to its endpoints.
    output published(const frame::frame& f) {
        if (at != stage::online) {
            return {};
        }
        if (const auto* u = std::get_if<frame::presence_update>(&f.content)) {
            // Before the first CHG the client has no presence yet; its burst
            // will carry the contact's state (§4.2).
            return burst_done ? write(ns::presence_change(dialect, list_version, *u)) : output{};
        }
        if (const auto* r = std::get_if<frame::roster_change>(&f.content)) {
            return reverse_list(*r);
        }
        if (const auto* i = std::get_if<frame::room_invite>(&f.content)) {
            return ring(f.sender, *i);
        }
        if (const auto* b = std::get_if<frame::bye>(&f.content); b && b->endpoint == endpoint) {
            // The user object ends this endpoint: its account was removed
            // (a plain OUT), or a login elsewhere (§4.1).
            if (b->code == frame::error_code::unknown_object) {
                return close("account removed", "OUT\r\n");
            }
            return close("signed in elsewhere", "OUT OTH\r\n");
        }
        return {};
    }

    // Someone added or removed this user (§4.3): ADD 0 RL / ADC 0 RL / REM 0 RL.
    //
    // Clients load their lists with SYN right after login, then set a status
    // with CHG, and take live changes after that (§4.3). A notice before the
    // SYN reply would reach a list the client has not built yet, and the
    // reply already shows every change the object made before answering it.
    // So until the first SYN reply (or a first CHG, from a client that does
    // not synchronise) notices are held; reverse_after_syn sends on only
    // those the reply does not show.
    output reverse_list(const frame::roster_change& r) {
        if (r.which != frame::list::reverse) {
            return {};
        }
        if (!synced && !burst_done) {
            if (held_reverse.size() < max_held_reverse) {
                held_reverse.push_back(r);  // beyond that, the SYN shows them
            }
            return {};
        }
        return write(reverse_line(r));
    }

    // The held notices that are newer than the SYN reply's list version and
    // change what it shows, as lines to follow it.
    std::string reverse_after_syn(const frame::roster& r) {
        std::string out;
        std::map<std::string_view, bool> reversed;  // what the client now knows, for the held handles
        for (const frame::roster_change& n : held_reverse) {
            auto known = reversed.find(n.handle);
            if (known == reversed.end()) {
                const frame::roster_entry* e = find_entry(r, n.handle);
                known = reversed.emplace(n.handle, e && (e->lists & reverse_bit)).first;
            }
            const bool add = n.op == frame::change_op::add;
            if (n.version <= r.version || known->second == add) {
                continue;
            }
            known->second = add;
            out += reverse_line(n);
        }
        held_reverse.clear();
        return out;
    }

    std::string reverse_line(const frame::roster_change& r) {
        const std::string name = url_encode(r.display_name.empty() ? r.handle : r.display_name);
        if (dialect <= 9) {
            list_version = r.version;
            if (r.op == frame::change_op::add) {
                return (wire_line("ADD") << 0 << "RL" << r.version << r.handle << name).end();
            }
            return (wire_line("REM") << 0 << "RL" << r.version << r.handle).end();
        }
        if (r.op == frame::change_op::add) {
            return (wire_line("ADC") << 0 << "RL" << "N=" + r.handle << "F=" + name).end();
        }
        return (wire_line("REM") << 0 << "RL" << "N=" + r.handle).end();
    }

    // RNG sessid sb CKI cookie inviter name (§4.4): the session id is the room id.
    output ring(const std::string& inviter, const frame::room_invite& i) {
        if (!i.room.starts_with("room:")) {
            return {};
        }
        const std::string cookie = svc.issue_sb_cookie({handle, i.room, dialect, display_name, capabilities});
        const std::string_view session = std::string_view(i.room).substr(std::string_view("room:").size());
        return write((wire_line("RNG") << session << svc.sb_endpoint() << "CKI" << cookie << inviter
                                       << url_encode(i.inviter_name.empty() ? inviter : i.inviter_name))
                         .end());
    }

    output on_shutdown() {
        if (at == stage::closed) {
            return {};
        }
        shutting_down = true;
        return close("server shutting down", "OUT SSD\r\n");  // §4.1
    }

    output on_closed() {
        at = stage::closed;
        output out;
        if (endpoint.empty()) {
            return out;
        }
        frame::bye b;
        b.normal = signed_out;
        if (shutting_down) {
            b.code = error_code::shutting_down;
        }
        b.reason = signed_out ? "signed out" : shutting_down ? "server shutting down" : "connection closed";
        b.endpoint = std::exchange(endpoint, {});
        out.frames.push_back(frame::frame{0, user_object(handle), handle, std::move(b)});
        out.unwatch.push_back(user_object(handle));
        requests.clear();
        return out;
    }
};

ns_session::ns_session(services& svc, session_limits limits) : impl_(std::make_unique<impl>(svc, limits)) {}
ns_session::~ns_session() = default;
ns_session::ns_session(ns_session&&) noexcept = default;

output ns_session::on_command(const command& c) { return impl_->on_command(c); }
output ns_session::on_frame(const frame::frame& f) { return impl_->on_frame(f); }
output ns_session::on_shutdown() { return impl_->on_shutdown(); }
output ns_session::on_closed() { return impl_->on_closed(); }
bool ns_session::signed_in() const { return impl_->was_online; }
int ns_session::dialect() const { return impl_->dialect; }

}  // namespace switchyard::msnp
