#include "protocols/msnp/ns_render.hpp"

#include "protocols/frame/mapping.hpp"

#include "protocols/text/text.hpp"

#include "protocols/msnp/command.hpp"

#include <algorithm>
#include <charconv>
#include <vector>

namespace switchyard::msnp::ns {

namespace {

constexpr std::uint32_t forward_bit = 1u << static_cast<unsigned>(frame::list::forward);
constexpr std::uint32_t allow_bit = 1u << static_cast<unsigned>(frame::list::allow);
constexpr std::uint32_t block_bit = 1u << static_cast<unsigned>(frame::list::block);
constexpr std::uint32_t reverse_bit = 1u << static_cast<unsigned>(frame::list::reverse);

// The pending list (bit 16) appears with MSNP12 (§4.3); older clients get
// FL/AL/BL/RL bits only.
std::uint32_t visible_bits(int dialect, std::uint32_t lists) { return dialect >= 12 ? lists & 31u : lists & 15u; }

std::string name_or(std::string_view name, std::string_view handle) {
    return url_encode(name.empty() ? handle : name);
}

// MSNP7-9 group numbers of a forward-list contact, "0" (Other Contacts) when
// it is in none of the owner's groups (§4.3: `LST … 11 0`).
std::string group_numbers(const frame::roster& r, const frame::roster_entry& e) {
    std::string out;
    for (std::size_t i = 0; i < r.groups.size(); ++i) {
        if (std::find(e.groups.begin(), e.groups.end(), r.groups[i].id) != e.groups.end()) {
            out += out.empty() ? "" : ",";
            out += std::to_string(i + 1);
        }
    }
    return out.empty() ? "0" : out;
}

std::string joined(const std::vector<std::string>& ids) {
    std::string out;
    for (const auto& id : ids) {
        out += out.empty() ? "" : ",";
        out += id;
    }
    return out;
}


void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Character data of an XML element: the five named entities and numeric
// references resolved; a bare '<' or an unknown entity is not XML.
std::optional<std::string> xml_text(std::string_view s) {
    static constexpr std::pair<std::string_view, char> named[] = {
        {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    std::string out;
    while (!s.empty()) {
        const char c = s.front();
        if (c == '<') {
            return std::nullopt;
        }
        if (c != '&') {
            out += c;
            s.remove_prefix(1);
            continue;
        }
        const auto semi = s.find(';');
        if (semi == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view entity = s.substr(1, semi - 1);
        s.remove_prefix(semi + 1);
        if (entity.starts_with('#')) {
            const bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
            const std::string_view digits = entity.substr(hex ? 2 : 1);
            std::uint32_t cp = 0;
            const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
            if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || cp == 0 ||
                cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                return std::nullopt;
            }
            append_utf8(out, cp);
            continue;
        }
        const auto* it = std::find_if(std::begin(named), std::end(named), [&](const auto& n) { return n.first == entity; });
        if (it == std::end(named)) {
            return std::nullopt;
        }
        out += it->second;
    }
    return out;
}

// The text of <tag>…</tag> inside `doc`; empty for <tag/> or no such element.
std::optional<std::string> element_text(std::string_view doc, std::string_view tag) {
    const std::string open = "<" + std::string(tag) + ">";
    const std::string close = "</" + std::string(tag) + ">";
    const auto start = doc.find(open);
    if (start == std::string_view::npos) {
        return std::string();
    }
    const auto body = start + open.size();
    const auto end = doc.find(close, body);
    if (end == std::string_view::npos) {
        return std::nullopt;
    }
    return xml_text(doc.substr(body, end - body));
}

std::string ubx(std::string_view user, std::string_view message, std::string_view media) {
    const std::string doc = "<Data><PSM>" + text::xml_escape(message) + "</PSM><CurrentMedia>" + text::xml_escape(media) +
                            "</CurrentMedia></Data>";
    return (wire_line("UBX") << user).end(doc);
}

// The phone fields contacts see, as PRP and BPR name them (§4.3).
struct phone_field {
    std::string_view key;
    std::uint32_t bit;
};
constexpr phone_field phone_fields[] = {{"PHH", frame::profile_bits::phone_home},
                                        {"PHW", frame::profile_bits::phone_work},
                                        {"PHM", frame::profile_bits::phone_mobile},
                                        {"MOB", frame::profile_bits::mobile_pageable}};

const std::string& phone_number(const frame::phones& p, std::uint32_t bit) {
    return bit == frame::profile_bits::phone_home ? p.home : bit == frame::profile_bits::phone_work ? p.work : p.mobile;
}

// A phone field's value token; nullopt for a cleared number, which the
// line then leaves out.
std::optional<std::string> phone_value(const frame::phones& p, std::uint32_t bit) {
    if (bit == frame::profile_bits::mobile_pageable) {
        return std::string(p.pageable ? "Y" : "N");
    }
    const std::string& number = phone_number(p, bit);
    return number.empty() ? std::nullopt : std::optional<std::string>(url_encode(number));
}

// The phone fields that are set, as profile_bits.
std::uint32_t set_fields(const frame::phones& p) {
    namespace bits = frame::profile_bits;
    return (p.home.empty() ? 0 : bits::phone_home) | (p.work.empty() ? 0 : bits::phone_work) |
           (p.mobile.empty() ? 0 : bits::phone_mobile) | (p.pageable ? bits::mobile_pageable : 0);
}

// One line per phone field in `bits`, each begun by `prefix`, a cleared
// number without a value; then MBE when `mobile_device` is set. The own
// fields go out as `PRP …`, a contact's as `BPR …`.
std::string phone_lines(const wire_line& prefix, const frame::phones& p, std::uint32_t bits,
                        bool mobile_device = false) {
    std::string out;
    for (const auto& f : phone_fields) {
        if (bits & f.bit) {
            wire_line l(prefix);
            l << f.key;
            if (auto value = phone_value(p, f.bit)) {
                l << *value;
            }
            out += l.end();
        }
    }
    if (mobile_device) {
        out += (wire_line(prefix) << "MBE" << "Y").end();
    }
    return out;
}

// FNV-1a: a stable 64-bit member id per handle for the profile.
std::uint64_t member_id(std::string_view handle) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : handle) {
        h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    }
    return h;
}

}  // namespace

std::string_view status_code(frame::status s) { return frame::status_row_of(s).msnp; }

std::optional<frame::status> settable_status(std::string_view code) {
    for (const auto& row : frame::status_table) {
        if (row.msnp == code && row.state != frame::status::offline) {
            return row.state;
        }
    }
    return std::nullopt;
}

std::string presence(int dialect, const frame::presence_update& u, std::optional<std::string_view> iln_trid) {
    const frame::presence_info& p = u.presence;
    if (p.state == frame::status::offline || p.state == frame::status::invisible) {
        return (wire_line("FLN") << u.user).end();
    }
    wire_line l(iln_trid ? "ILN" : "NLN");
    if (iln_trid) {
        l << *iln_trid;
    }
    l << status_code(p.state) << u.user << name_or(p.display_name, u.user);
    if (dialect >= 8) {
        l << p.capabilities;
    }
    // The MSNObject slot is always filled from MSNP9 (observed, §4.2).
    if (dialect >= 9) {
        l << url_encode_all(p.msn_object.empty() ? "<msnobj/>" : p.msn_object);
    }
    std::string out = l.end();
    // From MSNP11 the burst has a UBX per contact; later, a UBX follows only
    // when the personal message or media changed, so a contact coming online
    // without one is announced by NLN alone (observed, §4.2).
    const std::uint32_t personal = frame::profile_bits::personal_message | frame::profile_bits::current_media;
    if (dialect >= 11 && (iln_trid || u.initial || u.changed == 0 || (u.changed & personal))) {
        out += ubx(u.user, p.personal_message, p.current_media);
    }
    return out;
}

std::string contact_phones(std::uint64_t version, std::string_view handle, const frame::phones& p) {
    return phone_lines(wire_line("BPR") << version << handle, p, set_fields(p));
}

std::string presence_change(int dialect, std::uint64_t list_version, const frame::presence_update& u) {
    std::string out;
    // A contact's changed phone fields go out as they are, an emptied number
    // as the bare field name (§4.3: async `BPR ver email PHH value`).
    if (dialect >= 5 && !u.initial) {
        wire_line prefix("BPR");
        if (dialect <= 9) {
            prefix << list_version;
        }
        out += phone_lines(prefix << u.user, u.presence.phones, u.changed & frame::profile_bits::phones);
    }
    if (u.initial || u.changed == 0 || (u.changed & ~frame::profile_bits::phones)) {
        out += presence(dialect, u, std::nullopt);
    }
    return out;
}

std::string_view blp_code(frame::privacy_default p) { return p == frame::privacy_default::block ? "BL" : "AL"; }
std::string_view gtc_code(frame::add_prompt p) { return p == frame::add_prompt::none ? "N" : "A"; }

std::string syn_reply(int dialect, std::string_view trid, std::string_view version, const frame::roster& r) {
    std::string out;
    if (dialect <= 7) {
        // One LST iterator per list, an empty list as `LST t XX ver 0 0` (§4.3).
        out += (wire_line("SYN") << trid << version).end();
        out += (wire_line("GTC") << trid << version << gtc_code(r.prompt)).end();
        out += (wire_line("BLP") << trid << version << blp_code(r.privacy)).end();
        if (dialect >= 5) {
            out += phone_lines(wire_line("PRP") << trid << version, r.phones, set_fields(r.phones),
                               r.mobile_device);
        }
        if (dialect == 7) {
            const std::size_t n = r.groups.size() + 1;
            out += (wire_line("LSG") << trid << version << 1 << n << 0 << url_encode("Other Contacts") << 0).end();
            for (std::size_t i = 0; i < r.groups.size(); ++i) {
                out += (wire_line("LSG") << trid << version << i + 2 << n << i + 1 << url_encode(r.groups[i].name)
                                         << 0)
                           .end();
            }
        }
        static constexpr std::pair<std::string_view, std::uint32_t> lists[] = {
            {"FL", forward_bit}, {"AL", allow_bit}, {"BL", block_bit}, {"RL", reverse_bit}};
        for (const auto& list : lists) {
            // Plain variables, not a structured binding: the lambda below
            // captures `bit`, which clang 14 (the fuzzing compiler) refuses
            // for bindings.
            const std::string_view name = list.first;
            const std::uint32_t bit = list.second;
            const auto n = static_cast<std::size_t>(
                std::count_if(r.entries.begin(), r.entries.end(), [&](const auto& e) { return e.lists & bit; }));
            if (n == 0) {
                out += (wire_line("LST") << trid << name << version << 0 << 0).end();
                continue;
            }
            std::size_t i = 0;
            for (const auto& e : r.entries) {
                if (!(e.lists & bit)) {
                    continue;
                }
                wire_line l("LST");
                l << trid << name << version << ++i << n << e.handle << name_or(e.display_name, e.handle);
                if (dialect == 7 && bit == forward_bit) {
                    l << group_numbers(r, e);
                }
                out += l.end();
                if (dialect >= 5 && bit == forward_bit) {
                    out += phone_lines(wire_line("BPR") << version << e.handle, e.phones, set_fields(e.phones));
                }
            }
        }
        return out;
    }

    std::vector<const frame::roster_entry*> shown;
    for (const auto& e : r.entries) {
        if (visible_bits(dialect, e.lists) != 0) {
            shown.push_back(&e);
        }
    }
    if (dialect <= 9) {
        // No TrIDs after the SYN line; group 0 is sent and counted (§4.3).
        out += (wire_line("SYN") << trid << version << shown.size() << r.groups.size() + 1).end();
        out += (wire_line("GTC") << gtc_code(r.prompt)).end();
        out += (wire_line("BLP") << blp_code(r.privacy)).end();
        out += phone_lines(wire_line("PRP"), r.phones, set_fields(r.phones), r.mobile_device);
        out += (wire_line("LSG") << 0 << url_encode("Other Contacts") << 0).end();
        for (std::size_t i = 0; i < r.groups.size(); ++i) {
            out += (wire_line("LSG") << i + 1 << url_encode(r.groups[i].name) << 0).end();
        }
        for (const auto* e : shown) {
            wire_line l("LST");
            l << e->handle << name_or(e->display_name, e->handle) << visible_bits(dialect, e->lists);
            if (e->lists & forward_bit) {
                l << group_numbers(r, *e);
            }
            out += l.end();
            out += phone_lines(wire_line("BPR"), e->phones, set_fields(e->phones));
        }
        return out;
    }

    // MSNP10-12: timestamps, own name, GUIDs; the default group is neither
    // sent nor counted, and F=/C= only for FL contacts (§4.3).
    out += (wire_line("SYN") << trid << version << version << shown.size() << r.groups.size()).end();
    out += (wire_line("GTC") << gtc_code(r.prompt)).end();
    out += (wire_line("BLP") << blp_code(r.privacy)).end();
    out += (wire_line("PRP") << "MFN" << url_encode(r.display_name)).end();
    out += phone_lines(wire_line("PRP"), r.phones, set_fields(r.phones), r.mobile_device);
    for (const auto& g : r.groups) {
        out += (wire_line("LSG") << url_encode(g.name) << g.id).end();
    }
    for (const auto* e : shown) {
        wire_line l("LST");
        l << "N=" + e->handle;
        const bool forward = (e->lists & forward_bit) != 0;
        if (forward) {
            l << "F=" + name_or(e->display_name, e->handle) << "C=" + e->contact_id;
        }
        l << visible_bits(dialect, e->lists);
        if (dialect >= 12) {
            l << 1;  // network id: Messenger (§3.4)
        }
        // No trailing space for a contact in no group: that is an Escargot quirk (§2.5).
        if (forward && !e->groups.empty()) {
            l << joined(e->groups);
        }
        out += l.end();
        out += phone_lines(wire_line("BPR"), e->phones, set_fields(e->phones));
    }
    return out;
}

std::string profile_message(std::string_view handle, std::uint64_t now_ms) {
    // The fields Escargot sends in every dialect, in its order, empty ones as
    // `Name:` (§4.7). ClientIP/ClientPort stay empty: a sans-I/O session does
    // not know the peer address, and clients use them for NAT detection only.
    const std::uint64_t id = member_id(handle);
    std::string body = "MIME-Version: 1.0\r\n"
                       "Content-Type: text/x-msmsgsprofile; charset=UTF-8\r\n";
    body += "LoginTime: " + std::to_string(now_ms / 1000) + "\r\n";
    body += "EmailEnabled: 0\r\n";
    body += "MemberIdHigh: " + std::to_string(id >> 32) + "\r\n";
    body += "MemberIdLow: " + std::to_string(id & 0xffffffffu) + "\r\n";
    body += "lang_preference: 1033\r\n"
            "preferredEmail:\r\n"
            "country:\r\n"
            "PostalCode:\r\n"
            "Gender:\r\n"
            "Kid: 0\r\n"
            "Age:\r\n"
            "BDayPre:\r\n"
            "Birthday:\r\n"
            "Wallet:\r\n"
            "Flags: 536872513\r\n"
            "sid: 507\r\n"
            "MSPAuth:\r\n"
            "ClientIP:\r\n"
            "ClientPort:\r\n"
            "ABCHMigrated: 1\r\n"
            "MPOPEnabled: 0\r\n"
            "\r\n";
    return (wire_line("MSG") << "Hotmail" << "Hotmail").end(body);
}

std::string initial_mail_data_message() {
    // Escargot's "empty" mailbox: counters and quota, no OIMs (§4.7).
    static constexpr std::string_view body =
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/x-msmsgsinitialmdatanotification; charset=UTF-8\r\n"
        "\r\n"
        "Mail-Data: <MD><E><I>0</I><IU>0</IU><O>0</O><OU>0</OU></E><Q><QTM>409600</QTM><QNM>204800</QNM></Q></MD>"
        "\r\n";
    return (wire_line("MSG") << "Hotmail" << "Hotmail").end(body);
}

std::string shields_reply(std::string_view trid) {
    static constexpr std::string_view shields =
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?><config><shield><cli maj=\"7\" min=\"0\" minbld=\"0\" "
        "maxbld=\"9999\" deny=\" \" /></shield><block></block></config>";
    return (wire_line("GCF") << trid << "Shields.xml").end(shields);
}

std::optional<personal_status> parse_uux(std::string_view payload) {
    if (payload.empty()) {
        return personal_status{};
    }
    const auto open = payload.find("<Data>");
    const auto close = payload.rfind("</Data>");
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        return std::nullopt;
    }
    const std::string_view doc = payload.substr(open, close - open);
    auto message = element_text(doc, "PSM");
    auto media = element_text(doc, "CurrentMedia");
    if (!message || !media) {
        return std::nullopt;
    }
    return personal_status{std::move(*message), std::move(*media)};
}

}  // namespace switchyard::msnp::ns
