// The unified frame protocol: the closed set of frames every part of the
// gateway speaks (gateway/README.md section 3). Codecs turn client bytes into these
// frames and back; the router and backends never see MSNP or JSON.
//
// Each body type lists its fields once, in `visit`, with the field's wire
// tag, name and size limit; the wire encoder, the strict decoder and the
// text dump are all driven by that one list (see README.md beside this file
// for the wire form).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace switchyard::frame {

// Size limits in bytes (strings) or elements (lists). A decoder rejects
// anything larger with errc::oversize; encoders are trusted to respect them.
namespace limits {
inline constexpr std::size_t frame = 1u << 20;          // one encoded frame, default
inline constexpr std::size_t object_id = 512;           // "user:…" / "room:…"
inline constexpr std::size_t handle = 129;              // MSNP handle limit
inline constexpr std::size_t name = 387;                // display name: 129 chars x 3 (MSNP)
inline constexpr std::size_t group_name = 183;          // 61 characters x 3 (Escargot)
inline constexpr std::size_t token = 128;               // ids, endpoint GUIDs, content types
inline constexpr std::size_t personal_message = 1024;
inline constexpr std::size_t msn_object = 4096;
inline constexpr std::size_t text = 16384;              // one chat message
inline constexpr std::size_t reason = 256;              // human-readable reasons
inline constexpr std::size_t opaque = 65536;            // relayed protocol-specific bytes
inline constexpr std::size_t roster_entries = 10000;
inline constexpr std::size_t groups = 1000;
inline constexpr std::size_t members = 10000;
inline constexpr std::size_t history = 100;             // a room keeps its last 100 messages
inline constexpr std::size_t capabilities = 64;         // capability tokens in a hello
inline constexpr std::size_t phone = 95;                // one phone number (Escargot's MSNP limit)
inline constexpr std::size_t optional = 1;              // an optional value: a list of at most one (README.md)
inline constexpr std::size_t password = 1024;           // a password or MD5 response as sent to a user object
inline constexpr std::size_t accounts = 1000;           // accounts in one account_list reply
}  // namespace limits

// Parts of a user's profile as bits: which fields a profile_set changes, and
// which parts of a contact's view a presence_update changes.
namespace profile_bits {
inline constexpr std::uint32_t display_name = 1u << 0;
inline constexpr std::uint32_t personal_message = 1u << 1;
inline constexpr std::uint32_t current_media = 1u << 2;
inline constexpr std::uint32_t phone_home = 1u << 3;
inline constexpr std::uint32_t phone_work = 1u << 4;
inline constexpr std::uint32_t phone_mobile = 1u << 5;
inline constexpr std::uint32_t mobile_pageable = 1u << 6;
inline constexpr std::uint32_t mobile_device = 1u << 7;  // the owner's own setting, never shown to contacts
inline constexpr std::uint32_t all = (1u << 8) - 1;
inline constexpr std::uint32_t phones = phone_home | phone_work | phone_mobile | mobile_pageable;
// presence_update only: state, capabilities, MSN object or endpoint.
inline constexpr std::uint32_t status = 1u << 8;
}  // namespace profile_bits

// Capability tokens a hello may carry (its `capabilities`), besides the
// features the endpoint can render.
namespace capability {
// The client allows one session per account (MSNP before MSNP16): a new
// single-session login signs out the account's other single-session
// endpoints; endpoints without it (a browser, MSNP16+) are never signed out
// by another login.
inline constexpr std::string_view single_session = "single_session";
}  // namespace capability

// Marks a field as binary: no UTF-8 check (strings are always checked).
struct bytes {
    std::string data;
    friend bool operator==(const bytes&, const bytes&) = default;
};

// ---------------------------------------------------------------- enums
// Every enum names its largest value in `max_value`, and its smallest in
// `min_value` when that is not 0, so decoders can reject values they do not
// know instead of carrying them along.

enum class client_protocol : std::uint8_t { msnp = 0, wsjson = 1, backend = 2 };
enum class status : std::uint8_t {
    offline = 0,  // only ever sent to watchers
    online = 1,
    busy = 2,
    idle = 3,
    be_right_back = 4,
    away = 5,
    on_the_phone = 6,
    out_to_lunch = 7,
    invisible = 8,  // the user's own state; watchers are sent `offline`
};
enum class list : std::uint8_t { forward = 0, allow = 1, block = 2, reverse = 3, pending = 4 };
enum class change_op : std::uint8_t { add = 0, remove = 1, rename = 2 };
enum class privacy_default : std::uint8_t { allow = 0, block = 1 };  // MSNP BLP AL|BL
enum class add_prompt : std::uint8_t { prompt = 0, none = 1 };     // MSNP GTC A|N
enum class room_policy : std::uint8_t { direct = 0, invite_only = 1, named = 2 };
enum class leave_reason : std::uint8_t { left = 0, idle = 1, dropped = 2, removed = 3 };

// Error codes, stable on the wire. Every client protocol maps each one to
// its own form (an MSNP numeric error, a WebSocket error or close code).
enum class error_code : std::uint16_t {
    malformed = 1,          // a frame or client command could not be decoded
    unknown_object = 2,     // no such user or room
    not_member = 3,         // the room exists but the sender is not in it
    not_allowed = 4,        // blocked, or the room's policy refuses it
    room_full = 5,
    list_full = 6,
    already_on_list = 7,
    not_on_list = 8,
    oversize = 9,           // a field or frame over its limit
    invalid_text = 10,      // not valid UTF-8, or not a valid handle
    rate_limited = 11,
    unauthenticated = 12,   // login required or failed
    backend_unavailable = 13,
    unsupported = 14,       // understood but not implemented by this peer
    offline = 15,           // the invited user has no live endpoint
    internal = 16,
    shutting_down = 17,
};

// Wire version 2: how account_check proves the password, and what
// account_password does with the MSNP2-7 MD5 record.
enum class credential : std::uint8_t { password = 0, md5 = 1 };
enum class md5_login : std::uint8_t { keep = 0, on = 1, off = 2 };

template <class E> struct enum_traits;
template <> struct enum_traits<client_protocol> { static constexpr unsigned max_value = 2; };
template <> struct enum_traits<status> { static constexpr unsigned max_value = 8; };
template <> struct enum_traits<list> { static constexpr unsigned max_value = 4; };
template <> struct enum_traits<change_op> { static constexpr unsigned max_value = 2; };
template <> struct enum_traits<privacy_default> { static constexpr unsigned max_value = 1; };
template <> struct enum_traits<add_prompt> { static constexpr unsigned max_value = 1; };
template <> struct enum_traits<room_policy> { static constexpr unsigned max_value = 2; };
template <> struct enum_traits<leave_reason> { static constexpr unsigned max_value = 3; };
template <> struct enum_traits<credential> { static constexpr unsigned max_value = 1; };
template <> struct enum_traits<md5_login> { static constexpr unsigned max_value = 2; };
template <> struct enum_traits<error_code> {
    static constexpr unsigned min_value = 1;
    static constexpr unsigned max_value = 17;
};

std::string_view to_string(client_protocol v);
std::string_view to_string(status v);
std::string_view to_string(list v);
std::string_view to_string(change_op v);
std::string_view to_string(privacy_default v);
std::string_view to_string(add_prompt v);
std::string_view to_string(room_policy v);
std::string_view to_string(leave_reason v);
std::string_view to_string(error_code v);
std::string_view to_string(credential v);
std::string_view to_string(md5_login v);

// ---------------------------------------------------------------- nested values
// Field visitors are called as v(tag, "name", member) or
// v(tag, "name", member, limit); tags are unique within one struct and
// never reused once published.

// MSNP's X-MMS-IM-Format, kept structured so WebSocket clients can style text.
struct text_format {
    std::string font;       // FN, decoded
    std::string effects;    // EF: any of B, I, U, S
    std::uint32_t color = 0;  // 0xRRGGBB (MSNP sends BGR; the codec converts)
    std::uint32_t charset = 0;
    std::uint32_t pitch_family = 0;
    bool right_to_left = false;
    template <class V> void visit(V& v) {
        v(1, "font", font, limits::token);
        v(2, "effects", effects, 8);
        v(3, "color", color);
        v(4, "charset", charset);
        v(5, "pitch_family", pitch_family);
        v(6, "right_to_left", right_to_left);
    }
    friend bool operator==(const text_format&, const text_format&) = default;
};

// The phone numbers a user shows its contacts (MSNP PHH, PHW, PHM) and
// whether they may page its mobile device (MOB).
struct phones {
    std::string home;
    std::string work;
    std::string mobile;
    bool pageable = false;
    template <class V> void visit(V& v) {
        v(1, "home", home, limits::phone);
        v(2, "work", work, limits::phone);
        v(3, "mobile", mobile, limits::phone);
        v(4, "pageable", pageable);
    }
    friend bool operator==(const phones&, const phones&) = default;
};

struct presence_info {
    status state = status::offline;
    std::string display_name;
    std::string personal_message;
    std::string current_media;
    std::uint64_t capabilities = 0;     // MSNP client id, relayed opaquely
    std::uint64_t capabilities_ex = 0;  // MSNP16+ extended caps
    std::string msn_object;             // decoded XML, relayed verbatim
    std::string endpoint;               // endpoint GUID or WebSocket session id
    frame::phones phones;
    template <class V> void visit(V& v) {
        v(1, "state", state);
        v(2, "display_name", display_name, limits::name);
        v(3, "personal_message", personal_message, limits::personal_message);
        v(4, "current_media", current_media, limits::personal_message);
        v(5, "capabilities", capabilities);
        v(6, "capabilities_ex", capabilities_ex);
        v(7, "msn_object", msn_object, limits::msn_object);
        v(8, "endpoint", endpoint, limits::token);
        v(9, "phones", phones);
    }
    friend bool operator==(const presence_info&, const presence_info&) = default;
};

struct group {
    std::string id;
    std::string name;
    template <class V> void visit(V& v) {
        v(1, "id", id, limits::token);
        v(2, "name", name, limits::group_name);
    }
    friend bool operator==(const group&, const group&) = default;
};

struct roster_entry {
    std::string handle;
    std::string display_name;
    std::uint32_t lists = 0;  // bit (1 << list): FL=1 AL=2 BL=4 RL=8 PL=16 as in MSNP
    std::string contact_id;   // stable per contact (MSNP10+ C= GUID)
    std::vector<std::string> groups;  // group ids; only meaningful on the forward list
    frame::phones phones;             // forward-list contacts that let the owner see them
    template <class V> void visit(V& v) {
        v(1, "handle", handle, limits::handle);
        v(2, "display_name", display_name, limits::name);
        v(3, "lists", lists);
        v(4, "contact_id", contact_id, limits::token);
        v(5, "groups", groups, limits::groups, limits::token);
        v(6, "phones", phones);
    }
    friend bool operator==(const roster_entry&, const roster_entry&) = default;
};

struct member {
    std::string user;
    std::string endpoint;
    std::string display_name;
    std::uint64_t capabilities = 0;
    client_protocol protocol = client_protocol::msnp;
    template <class V> void visit(V& v) {
        v(1, "user", user, limits::handle);
        v(2, "endpoint", endpoint, limits::token);
        v(3, "display_name", display_name, limits::name);
        v(4, "capabilities", capabilities);
        v(5, "protocol", protocol);
    }
    friend bool operator==(const member&, const member&) = default;
};

// One account in an account_list reply.
struct account_entry {
    std::string handle;
    std::string display_name;
    bool md5_login = false;       // has the MSNP2-7 MD5 record
    std::uint64_t created_ms = 0;  // Unix time
    template <class V> void visit(V& v) {
        v(1, "handle", handle, limits::handle);
        v(2, "display_name", display_name, limits::name);
        v(3, "md5_login", md5_login);
        v(4, "created_ms", created_ms);
    }
    friend bool operator==(const account_entry&, const account_entry&) = default;
};

struct stored_message {
    std::uint64_t seq = 0;
    std::string sender;
    std::string message_id;
    std::uint64_t timestamp_ms = 0;  // Unix time, set by the room
    std::string text;
    text_format format;
    // In a room_history reply: the reader, when the message is withheld from
    // it (it was when sent, or the reader blocks the sender now); codecs
    // leave such messages out, as they do live room_message frames.
    std::vector<std::string> withheld_from;
    template <class V> void visit(V& v) {
        v(1, "seq", seq);
        v(2, "sender", sender, limits::handle);
        v(3, "message_id", message_id, limits::token);
        v(4, "timestamp_ms", timestamp_ms);
        v(5, "text", text, limits::text);
        v(7, "withheld_from", withheld_from, limits::members, limits::handle);  // see room_message
        v(6, "format", format);
    }
    friend bool operator==(const stored_message&, const stored_message&) = default;
};

// How the endpoint of a hello proved who it is, when it was with a ticket
// (a Passport ticket or a WebSocket session token) rather than a password
// checked just now: the ticket's issue time, Unix ms. The user object
// refuses a ticket issued before the account's password last changed.
struct ticket_info {
    std::uint64_t issued_ms = 0;
    template <class V> void visit(V& v) { v(1, "issued_ms", issued_ms); }
    friend bool operator==(const ticket_info&, const ticket_info&) = default;
};

// ---------------------------------------------------------------- frame bodies
// `type_id` is the body's number on the wire; `name` is used in dumps,
// metrics and logs.

#define SWITCHYARD_FRAME_BODY(ident, id)                       \
    static constexpr std::uint8_t type_id = id;                \
    static constexpr std::string_view name = #ident;           \
    friend bool operator==(const ident&, const ident&) = default

// session: a client endpoint attaches to (hello) or detaches from (bye) the
// gateway; the gateway forwards it to the user object.
struct hello {
    client_protocol protocol = client_protocol::msnp;
    std::uint32_t dialect = 0;  // MSNP version (2..18), WebSocket protocol version
    std::string user;
    std::string endpoint;
    std::string client_name;    // e.g. "MSNMSGR 7.5.0324"
    std::vector<std::string> capabilities;  // features the endpoint can render
    // An optional value: present when the endpoint signed in with a ticket
    // (absent from writers that predate it, and for password logins).
    std::vector<ticket_info> ticket = {};
    template <class V> void visit(V& v) {
        v(1, "protocol", protocol);
        v(2, "dialect", dialect);
        v(3, "user", user, limits::handle);
        v(4, "endpoint", endpoint, limits::token);
        v(7, "ticket", ticket, limits::optional);  // before the last required field: see room_message
        v(5, "client_name", client_name, limits::token);
        v(6, "capabilities", capabilities, limits::capabilities, limits::token);
    }
    SWITCHYARD_FRAME_BODY(hello, 1);
};

struct bye {
    error_code code = error_code::internal;  // why, when not a normal sign-out
    bool normal = true;                      // the client signed out itself
    std::string reason;
    std::string endpoint;                    // the endpoint leaving (its hello's endpoint)
    template <class V> void visit(V& v) {
        v(1, "normal", normal);
        v(2, "code", code);
        v(3, "reason", reason, limits::reason);
        v(4, "endpoint", endpoint, limits::token);
    }
    SWITCHYARD_FRAME_BODY(bye, 2);
};

// An endpoint sets its own presence.
struct presence_set {
    presence_info presence;
    template <class V> void visit(V& v) { v(1, "presence", presence); }
    SWITCHYARD_FRAME_BODY(presence_set, 3);
};

// A watcher learns a contact's presence (already filtered by privacy).
// `changed` says what differs from the watcher's previous view (bits of
// profile_bits, including status); the initial burst sets none.
struct presence_update {
    std::string user;
    bool initial = false;  // part of the burst after sign-in (MSNP ILN)
    presence_info presence;
    std::uint32_t changed = 0;
    template <class V> void visit(V& v) {
        v(1, "user", user, limits::handle);
        v(2, "initial", initial);
        v(3, "presence", presence);
        v(4, "changed", changed);
    }
    SWITCHYARD_FRAME_BODY(presence_update, 4);
};

struct roster_get {
    std::uint64_t known_version = 0;  // the client's cached version, if any
    template <class V> void visit(V& v) { v(1, "known_version", known_version); }
    SWITCHYARD_FRAME_BODY(roster_get, 5);
};

struct roster {
    std::uint64_t version = 0;
    privacy_default privacy = privacy_default::allow;
    add_prompt prompt = add_prompt::prompt;
    std::string display_name;  // the owner's own
    std::vector<group> groups;
    std::vector<roster_entry> entries;
    frame::phones phones;        // the owner's own
    bool mobile_device = false;  // the owner has set up a mobile device (MSNP MBE)
    // The owner's own personal message and current media: optional values
    // (at most one element; absent from older writers).
    std::vector<std::string> personal_message;
    std::vector<std::string> current_media;
    template <class V> void visit(V& v) {
        v(1, "version", version);
        v(2, "privacy", privacy);
        v(3, "prompt", prompt);
        v(4, "display_name", display_name, limits::name);
        v(5, "groups", groups, limits::groups);
        v(6, "entries", entries, limits::roster_entries);
        v(7, "phones", phones);
        // Before the last required field: see room_message.
        v(9, "personal_message", personal_message, limits::optional, limits::personal_message);
        v(10, "current_media", current_media, limits::optional, limits::personal_message);
        v(8, "mobile_device", mobile_device);
    }
    SWITCHYARD_FRAME_BODY(roster, 6);
};

// Request (client to user object) and notice (user object to endpoints):
// list edits, including the asynchronous "added you" reverse-list notices.
struct roster_change {
    change_op op = change_op::add;
    list which = list::forward;
    std::string handle;
    std::string display_name;
    std::string group_id;
    std::uint64_t version = 0;  // the list version after the change (notices)
    std::string contact_id;     // the contact's stable id (replies to forward-list adds and renames)
    frame::phones phones;       // the contact's, in replies to forward-list adds when it lets the owner see them
    template <class V> void visit(V& v) {
        v(1, "op", op);
        v(2, "list", which);
        v(3, "handle", handle, limits::handle);
        v(4, "display_name", display_name, limits::name);
        v(5, "group_id", group_id, limits::token);
        v(6, "version", version);
        v(7, "contact_id", contact_id, limits::token);
        v(8, "phones", phones);
    }
    SWITCHYARD_FRAME_BODY(roster_change, 7);
};

// A list edit as a client codec asks for it; the user object's reply adds
// the version, the contact id and the contact's phones.
inline roster_change list_edit(change_op op, list which, std::string handle, std::string name = {},
                               std::string group = {}) {
    roster_change r;
    r.op = op;
    r.which = which;
    r.handle = std::move(handle);
    r.display_name = std::move(name);
    r.group_id = std::move(group);
    return r;
}

struct group_change {
    change_op op = change_op::add;
    group target;
    std::uint64_t version = 0;
    template <class V> void visit(V& v) {
        v(1, "op", op);
        v(2, "group", target);
        v(3, "version", version);
    }
    SWITCHYARD_FRAME_BODY(group_change, 8);
};

struct privacy_set {
    privacy_default privacy = privacy_default::allow;
    add_prompt prompt = add_prompt::prompt;
    std::uint64_t version = 0;
    template <class V> void visit(V& v) {
        v(1, "privacy", privacy);
        v(2, "prompt", prompt);
        v(3, "version", version);
    }
    SWITCHYARD_FRAME_BODY(privacy_set, 9);
};

// Changes the profile fields named in `fields` (bits of profile_bits, not
// status) and leaves the others as they are.
struct profile_set {
    std::uint32_t fields = 0;
    std::string display_name;
    std::string personal_message;
    std::string current_media;
    frame::phones phones;
    bool mobile_device = false;
    template <class V> void visit(V& v) {
        v(1, "display_name", display_name, limits::name);
        v(2, "personal_message", personal_message, limits::personal_message);
        v(3, "current_media", current_media, limits::personal_message);
        v(4, "fields", fields);
        v(5, "phones", phones);
        v(6, "mobile_device", mobile_device);
    }
    SWITCHYARD_FRAME_BODY(profile_set, 10);
};

struct room_create {
    room_policy policy = room_policy::invite_only;
    std::string title;
    template <class V> void visit(V& v) {
        v(1, "policy", policy);
        v(2, "title", title, limits::name);
    }
    SWITCHYARD_FRAME_BODY(room_create, 11);
};

struct room_invite {
    std::string user;
    std::string inviter_name;  // shown to the invitee (MSNP RNG)
    std::string room;          // set by the room when it forwards the invitation to the invitee
    template <class V> void visit(V& v) {
        v(1, "user", user, limits::handle);
        v(2, "inviter_name", inviter_name, limits::name);
        v(3, "room", room, limits::object_id);
    }
    SWITCHYARD_FRAME_BODY(room_invite, 12);
};

struct room_join {
    member who;
    template <class V> void visit(V& v) { v(1, "member", who); }
    SWITCHYARD_FRAME_BODY(room_join, 13);
};

struct room_leave {
    std::string user;
    std::string endpoint;
    leave_reason reason = leave_reason::left;
    template <class V> void visit(V& v) {
        v(1, "user", user, limits::handle);
        v(2, "endpoint", endpoint, limits::token);
        v(3, "reason", reason);
    }
    SWITCHYARD_FRAME_BODY(room_leave, 14);
};

// The reply to a room_join. `epoch` (an optional value) names the room's
// history: it changes whenever seqs restart or stored messages are lost
// (the room is created again under the same id), so a (epoch, seq) pair
// names one message for good.
struct room_members {
    std::vector<member> members;
    std::vector<std::string> epoch;
    template <class V> void visit(V& v) {
        v(1, "members", members, limits::members);
        v(2, "epoch", epoch, limits::optional, limits::token);
    }
    SWITCHYARD_FRAME_BODY(room_members, 15);
};

// A chat message. From a client: message_id makes retries idempotent, seq
// and timestamp are 0. From the room: seq and timestamp are set.
struct room_message {
    std::uint64_t seq = 0;
    std::string message_id;
    std::uint64_t timestamp_ms = 0;
    std::string text;
    text_format format;
    bool ack_requested = true;  // MSNP U/N mode messages need no ACK
    // From the room: joined users who block the sender, whose endpoints
    // must not be given it (a block silences the blocked user in
    // conversations already open).
    std::vector<std::string> withheld_from;
    // From the room (an optional value): the sender's display name as the
    // room knows it, so that a codec showing it to every member of a large
    // room need not keep the whole member list to look it up.
    std::vector<std::string> sender_name;
    template <class V> void visit(V& v) {
        v(1, "seq", seq);
        v(2, "message_id", message_id, limits::token);
        v(3, "timestamp_ms", timestamp_ms);
        v(4, "text", text, limits::text);
        v(5, "format", format);
        // Before the last required field, so a frame cut after any of its
        // entries is still refused as truncated.
        v(7, "withheld_from", withheld_from, limits::members, limits::handle);
        v(8, "sender_name", sender_name, limits::optional, limits::name);
        v(6, "ack_requested", ack_requested);
    }
    SWITCHYARD_FRAME_BODY(room_message, 16);
};

struct room_typing {
    bool active = true;
    std::vector<std::string> withheld_from;  // as in room_message
    template <class V> void visit(V& v) {
        v(2, "withheld_from", withheld_from, limits::members, limits::handle);  // first: see room_message
        v(1, "active", active);
    }
    SWITCHYARD_FRAME_BODY(room_typing, 17);
};

struct room_nudge {
    std::vector<std::string> withheld_from;  // as in room_message
    template <class V> void visit(V& v) { v(1, "withheld_from", withheld_from, limits::members, limits::handle); }
    SWITCHYARD_FRAME_BODY(room_nudge, 18);
};

// Protocol-specific content (MSNP P2P, winks, invitations, custom
// emoticons), delivered only to endpoints speaking `origin`.
struct room_opaque {
    client_protocol origin = client_protocol::msnp;
    std::string content_type;
    bytes payload;
    std::vector<std::string> withheld_from;  // as in room_message
    template <class V> void visit(V& v) {
        v(1, "origin", origin);
        v(2, "content_type", content_type, limits::token);
        v(4, "withheld_from", withheld_from, limits::members, limits::handle);  // see room_message
        v(3, "payload", payload, limits::opaque);
    }
    SWITCHYARD_FRAME_BODY(room_opaque, 19);
};

struct room_history_get {
    std::uint64_t after_seq = 0;    // exclusive
    std::uint64_t before_seq = 0;   // exclusive; 0 = no upper bound
    std::uint32_t max_count = limits::history;
    template <class V> void visit(V& v) {
        v(1, "after_seq", after_seq);
        v(2, "before_seq", before_seq);
        v(3, "max_count", max_count);
    }
    SWITCHYARD_FRAME_BODY(room_history_get, 20);
};

struct room_history {
    std::vector<stored_message> messages;  // ascending seq
    std::uint64_t last_seq = 0;            // the room's newest seq
    std::vector<std::string> epoch;        // as in room_members
    template <class V> void visit(V& v) {
        v(1, "messages", messages, limits::history);
        v(3, "epoch", epoch, limits::optional, limits::token);  // before the last required field: see room_message
        v(2, "last_seq", last_seq);
    }
    SWITCHYARD_FRAME_BODY(room_history, 21);
};

// A request (matched by the header's `corr`) has succeeded and is durable.
struct ack {
    std::uint64_t seq = 0;  // for room messages: the assigned seq
    template <class V> void visit(V& v) { v(1, "seq", seq); }
    SWITCHYARD_FRAME_BODY(ack, 22);
};

struct error {
    error_code code = error_code::internal;
    std::string reason;
    template <class V> void visit(V& v) {
        v(1, "code", code);
        v(2, "reason", reason, limits::reason);
    }
    SWITCHYARD_FRAME_BODY(error, 23);
};

struct ping {
    std::uint64_t nonce = 0;
    template <class V> void visit(V& v) { v(1, "nonce", nonce); }
    SWITCHYARD_FRAME_BODY(ping, 24);
};

struct pong {
    std::uint64_t nonce = 0;
    template <class V> void visit(V& v) { v(1, "nonce", nonce); }
    SWITCHYARD_FRAME_BODY(pong, 25);
};

// ---------------------------------------------------------------- wire version 2
// Accounts (gateway/backends/README.md, "Accounts"): requests the gateway
// itself sends a user object (its login services, the operator commands),
// never a client. A backend hashes and checks passwords where the account
// lives; the stored hash never leaves it.

// Creates the account `user:<handle>`; `display_name` empty is the handle.
struct account_create {
    std::string password;
    bool md5_login = false;  // also keep the record MSNP2-7 MD5 login needs
    std::string display_name;
    template <class V> void visit(V& v) {
        v(1, "password", password, limits::password);
        v(2, "md5_login", md5_login);
        v(3, "display_name", display_name, limits::name);
    }
    SWITCHYARD_FRAME_BODY(account_create, 26);
};

// Sets the account's password. Tickets and session tokens issued before
// are refused from then on (hello's `ticket`).
struct account_password {
    std::string password;
    md5_login md5 = md5_login::keep;
    template <class V> void visit(V& v) {
        v(1, "password", password, limits::password);
        v(2, "md5", md5);
    }
    SWITCHYARD_FRAME_BODY(account_password, 27);
};

// Removes the account with its lists, groups and credentials; its
// endpoints are signed out.
struct account_delete {
    template <class V> void visit(V&) {}
    SWITCHYARD_FRAME_BODY(account_delete, 28);
};

// A login: `secret` is the password, or the client's hex md5(salt +
// password) for `md5`. ack, or unauthenticated for any unknown handle or
// wrong secret alike.
struct account_check {
    credential method = credential::password;
    std::string secret;
    template <class V> void visit(V& v) {
        v(1, "method", method);
        v(2, "secret", secret, limits::password);
    }
    SWITCHYARD_FRAME_BODY(account_check, 29);
};

// Request (empty) and reply: the salt for MSNP2-7 `USR t MD5 S`. Unknown
// handles get a stable made-up salt shaped like a real one.
struct account_salt {
    std::string salt;
    template <class V> void visit(V& v) { v(1, "salt", salt, limits::token); }
    SWITCHYARD_FRAME_BODY(account_salt, 30);
};

// Request and reply, to the object `accounts:` of a backend: its accounts
// in handle order, after `after`, at most `limit` (request); the reply
// fills `accounts` and says whether `more` follow.
struct account_list {
    std::string after;
    std::uint32_t limit = 0;
    std::vector<account_entry> accounts;
    bool more = false;
    template <class V> void visit(V& v) {
        v(1, "after", after, limits::handle);
        v(2, "limit", limit);
        v(3, "accounts", accounts, limits::accounts);
        v(4, "more", more);
    }
    SWITCHYARD_FRAME_BODY(account_list, 31);
};

// The last frame type of wire version 1; later ones need version 2.
inline constexpr std::uint8_t last_v1_type = pong::type_id;

#undef SWITCHYARD_FRAME_BODY

using body = std::variant<hello, bye, presence_set, presence_update, roster_get, roster, roster_change,
                          group_change, privacy_set, profile_set, room_create, room_invite, room_join,
                          room_leave, room_members, room_message, room_typing, room_nudge, room_opaque,
                          room_history_get, room_history, ack, error, ping, pong, account_create,
                          account_password, account_delete, account_check, account_salt, account_list>;

inline constexpr std::size_t type_count = std::variant_size_v<body>;

// Every frame: who it concerns, who sent it, and a correlation id that
// acknowledgements and errors echo.
struct frame {
    std::uint64_t corr = 0;
    std::string object;  // target or source object id: "user:…" or "room:…"
    std::string sender;  // authenticated user handle; set by the gateway, never by clients
    body content;

    template <class V> void visit_header(V& v) {
        v(1, "corr", corr);
        v(2, "object", object, limits::object_id);
        v(3, "sender", sender, limits::handle);
    }
    friend bool operator==(const frame&, const frame&) = default;
};

// Account frames: the gateway's own requests (its login services, the
// operator commands). A gateway never routes one a client's codec made.
inline bool is_account_frame(const frame& f) {
    return std::holds_alternative<account_create>(f.content) || std::holds_alternative<account_password>(f.content) ||
           std::holds_alternative<account_delete>(f.content) || std::holds_alternative<account_check>(f.content) ||
           std::holds_alternative<account_salt>(f.content) || std::holds_alternative<account_list>(f.content);
}

// The body's type name ("room_message"), for logs and metrics.
std::string_view type_name(const frame& f);
std::string_view type_name(std::size_t index);  // by variant index

}  // namespace switchyard::frame
