#include "protocols/wsjson/render.hpp"

#include <boost/json/array.hpp>
#include <boost/json/string.hpp>

#include <array>
#include <cstdio>

namespace switchyard::wsjson {

namespace json = boost::json;

std::string_view status_name(frame::status s) { return frame::status_row_of(s).wsjson; }

std::optional<frame::status> settable_status(std::string_view name) {
    for (const auto& row : frame::status_table) {
        if (row.wsjson == name && row.state != frame::status::offline) return row.state;
    }
    return std::nullopt;
}

namespace {

// MSNP's EF letters (B, I, U, S) as JSON booleans, in EF order.
struct effect_row {
    char letter;
    std::string_view name;
};
constexpr effect_row effects[] = {{'B', "bold"}, {'I', "italic"}, {'U', "underline"}, {'S', "strikethrough"}};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ull;
    }
    return h;
}

std::string hex16(std::uint64_t v) {
    std::array<char, 17> buf{};
    std::snprintf(buf.data(), buf.size(), "%016llx", static_cast<unsigned long long>(v));
    return std::string(buf.data(), 16);
}

}  // namespace

bool format_is_plain(const frame::text_format& f) {
    return f.font.empty() && f.effects.empty() && f.color == 0 && !f.right_to_left;
}

json::object format_json(const frame::text_format& f) {
    json::object o;
    o["font"] = f.font;
    for (const auto& e : effects) {
        o[e.name] = f.effects.find(e.letter) != std::string::npos;
    }
    std::array<char, 8> color{};
    std::snprintf(color.data(), color.size(), "#%06x", static_cast<unsigned>(f.color & 0xffffffu));
    o["color"] = std::string_view(color.data(), 7);
    o["right_to_left"] = f.right_to_left;
    return o;
}

std::optional<frame::text_format> parse_format(const json::value& v, std::string& why) {
    const auto* o = v.if_object();
    if (!o) {
        why = "format must be an object";
        return std::nullopt;
    }
    frame::text_format f;
    if (const auto* font = o->if_contains("font")) {
        const auto* s = font->if_string();
        if (!s || s->size() > frame::limits::token) {
            why = "format.font must be a string of at most 128 bytes";
            return std::nullopt;
        }
        f.font = std::string(*s);
    }
    for (const auto& e : effects) {
        if (const auto* b = o->if_contains(e.name)) {
            if (!b->is_bool()) {
                why = "format." + std::string(e.name) + " must be a boolean";
                return std::nullopt;
            }
            if (b->get_bool()) f.effects += e.letter;
        }
    }
    if (const auto* c = o->if_contains("color")) {
        const auto* s = c->if_string();
        std::uint32_t rgb = 0;
        bool ok = s && s->size() == 7 && (*s)[0] == '#';
        for (std::size_t i = 1; ok && i < 7; ++i) {
            const int d = hex_digit((*s)[i]);
            ok = d >= 0;
            rgb = rgb << 4 | static_cast<std::uint32_t>(d < 0 ? 0 : d);
        }
        if (!ok) {
            why = "format.color must be \"#rrggbb\"";
            return std::nullopt;
        }
        f.color = rgb;
    }
    if (const auto* r = o->if_contains("right_to_left")) {
        if (!r->is_bool()) {
            why = "format.right_to_left must be a boolean";
            return std::nullopt;
        }
        f.right_to_left = r->get_bool();
    }
    return f;
}

std::string client_message_id(std::string_view handle, std::string_view client_id) {
    return "w" + hex16(fnv1a(handle)) + "/" + std::string(client_id);
}

std::string_view client_id_of(std::string_view handle, std::string_view message_id) {
    const std::string prefix = "w" + hex16(fnv1a(handle)) + "/";
    return message_id.starts_with(prefix) ? message_id.substr(prefix.size()) : std::string_view{};
}

std::string generated_message_prefix(std::string_view handle) { return "g" + hex16(fnv1a(handle)) + "/"; }

json::object presence_json(std::string_view user, const frame::presence_info& p) {
    json::object o;
    o["user"] = user;
    o["status"] = status_name(p.state);
    o["display_name"] = p.display_name.empty() ? std::string(user) : p.display_name;
    o["personal_message"] = p.personal_message;
    o["current_media"] = p.current_media;
    return o;
}

json::array lists_json(std::uint32_t bits) {
    json::array a;
    for (unsigned l = 0; l <= frame::enum_traits<frame::list>::max_value; ++l) {
        if (bits & (1u << l)) a.emplace_back(frame::to_string(static_cast<frame::list>(l)));
    }
    return a;
}

json::object contact_json(const frame::roster_entry& e) {
    json::object o;
    o["handle"] = e.handle;
    o["display_name"] = e.display_name.empty() ? e.handle : e.display_name;
    o["lists"] = lists_json(e.lists);
    o["contact_id"] = e.contact_id;
    json::array groups;
    for (const auto& g : e.groups) groups.emplace_back(g);
    o["groups"] = std::move(groups);
    // Until a presence event says otherwise, a contact is offline.
    o["status"] = "offline";
    o["personal_message"] = "";
    o["current_media"] = "";
    return o;
}

json::object group_json(const frame::group& g) {
    json::object o;
    o["id"] = g.id;
    o["name"] = g.name;
    return o;
}

std::string opaque_notice(std::string_view content_type) {
    // MSNP content types (msnp-reference §4.6) and what an MSN user did to send them.
    struct row {
        std::string_view type;
        std::string_view notice;
    };
    static constexpr row rows[] = {
        {"application/x-msnmsgrp2p", "sent a file, a picture or a wink that this client cannot show"},
        {"text/x-msmsgsinvite", "sent an invitation (file transfer or another application) that this client cannot accept"},
        {"text/x-mms-emoticon", "used custom emoticons that this client cannot show"},
        {"text/x-mms-animemoticon", "used animated emoticons that this client cannot show"},
        {"text/x-msnmsgr-datacast", "sent a wink, a voice clip or an action that this client cannot show"},
        {"text/x-clientcaps", "sent client information"},
    };
    for (const auto& r : rows) {
        if (content_type.starts_with(r.type)) return std::string(r.notice);
    }
    return "sent content that this client cannot show";
}

}  // namespace switchyard::wsjson
