#include "protocols/msnp/message.hpp"

#include "protocols/msnp/command.hpp"
#include "protocols/text/text.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

namespace switchyard::msnp {

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return std::ranges::equal(a, b, [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Every byte is the code point of the same value.
std::string latin1_to_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x80) {
            out += ch;
        } else {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    }
    return out;
}

std::optional<std::uint32_t> parse_hex(std::string_view s) {
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
    return v;
}

// Official clients write CO=C81ABB, CS=0, PF=22: uppercase, no leading zeros.
std::string hex(std::uint32_t v) {
    char buf[8];
    const auto end = std::to_chars(buf, buf + sizeof buf, v, 16).ptr;
    std::string out(buf, end);
    std::ranges::transform(out, out.begin(), [](char c) { return c >= 'a' ? static_cast<char>(c - 'a' + 'A') : c; });
    return out;
}

// 0xBBGGRR <-> 0xRRGGBB: the same swap both ways.
std::uint32_t swap_red_blue(std::uint32_t c) {
    return ((c & 0xFF) << 16) | (c & 0xFF00) | ((c >> 16) & 0xFF);
}

// "Name: value" lines up to the first blank line, then the body (§4.6).
struct mime {
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::string_view body;

    std::optional<std::string_view> header(std::string_view name) const {
        for (const auto& [n, v] : headers) {
            if (iequals(n, name)) return v;
        }
        return std::nullopt;
    }
};

mime split(std::string_view payload) {
    mime m;
    std::string_view head = payload;
    if (const auto end = payload.find("\r\n\r\n"); end != std::string_view::npos) {
        head = payload.substr(0, end);
        m.body = payload.substr(end + 4);
    }
    while (!head.empty()) {
        const auto nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        head = nl == std::string_view::npos ? std::string_view{} : head.substr(nl + 1);
        if (line.ends_with('\r')) line.remove_suffix(1);
        if (const auto colon = line.find(':'); colon != std::string_view::npos) {
            m.headers.emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
        }
    }
    return m;
}

// "text/plain; charset=UTF-8" -> "charset" -> "UTF-8".
std::optional<std::string_view> parameter(std::string_view content_type, std::string_view name) {
    std::size_t pos = content_type.find(';');
    while (pos != std::string_view::npos) {
        const std::size_t next = content_type.find(';', pos + 1);
        const std::string_view part = trim(content_type.substr(pos + 1, next - pos - 1));
        if (const auto eq = part.find('='); eq != std::string_view::npos && iequals(trim(part.substr(0, eq)), name)) {
            std::string_view value = trim(part.substr(eq + 1));
            if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
                value = value.substr(1, value.size() - 2);
            }
            return value;
        }
        pos = next;
    }
    return std::nullopt;
}

// The media type as a frame token: lowercase printable ASCII, or empty.
std::string media_type(std::string_view content_type) {
    const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
    const auto printable = [](char c) { return c > ' ' && c < 0x7F; };
    if (media.size() > frame::limits::token || !std::ranges::all_of(media, printable)) {
        return {};
    }
    std::string out(media);
    std::ranges::transform(out, out.begin(), lower);
    return out;
}

// §4.6/§5: charset=UTF-8 is UTF-8, no charset is ISO-8859-1; a body that
// claims UTF-8 but is not gets the ISO-8859-1 retry §5 recommends. Other
// charsets are not text the official client would display.
std::optional<std::string> decode_text(std::string_view body, std::optional<std::string_view> charset) {
    if (!charset || iequals(*charset, "iso-8859-1")) return latin1_to_utf8(body);
    if (iequals(*charset, "utf-8")) return text::is_valid_utf8(body) ? std::string(body) : latin1_to_utf8(body);
    return std::nullopt;
}

}  // namespace

frame::body read_payload(std::string_view payload) {
    const mime m = split(payload);
    const std::string_view content_type = m.header("Content-Type").value_or("");
    const std::string media = media_type(content_type);
    // Chunked text (Chunks/Chunk headers) only makes sense reassembled, which
    // MSNP peers do themselves.
    if (media == "text/plain" && !m.header("Chunks") && !m.header("Chunk")) {
        if (auto text = decode_text(m.body, parameter(content_type, "charset"))) {
            frame::room_message msg;
            msg.text = std::move(*text);
            if (const auto format = m.header("X-MMS-IM-Format")) msg.format = read_format(*format);
            return msg;
        }
    } else if (media == "text/x-msmsgscontrol") {
        return frame::room_typing{true, {}};
    } else if (media == "text/x-msnmsgr-datacast") {
        // ID: 1 is a nudge; winks (2), voice clips (3) and actions (4) stay MSNP's.
        if (split(m.body).header("ID") == "1") return frame::room_nudge{};
    }
    return frame::room_opaque{frame::client_protocol::msnp, media, frame::bytes{std::string(payload)}, {}};
}

frame::text_format read_format(std::string_view value) {
    frame::text_format f;
    while (!value.empty()) {
        const auto semi = value.find(';');
        const std::string_view field = trim(value.substr(0, semi));
        value = semi == std::string_view::npos ? std::string_view{} : value.substr(semi + 1);
        const auto eq = field.find('=');
        if (eq == std::string_view::npos) continue;
        const std::string_view key = field.substr(0, eq);
        const std::string_view v = field.substr(eq + 1);
        if (key == "FN") {
            // Locale bytes from old third-party clients: the §5 retry as ISO-8859-1.
            std::string font = url_decode(v);
            if (!text::is_valid_utf8(font)) font = latin1_to_utf8(font);
            if (font.size() <= frame::limits::token) f.font = std::move(font);
        } else if (key == "EF") {
            f.effects.clear();
            for (const char c : v) {
                const bool effect = std::string_view("BIUS").find(c) != std::string_view::npos;
                if (effect && f.effects.find(c) == std::string::npos) {
                    f.effects += c;
                }
            }
        } else if (key == "CO") {
            if (auto c = parse_hex(v); c && *c <= 0xFFFFFF) f.color = swap_red_blue(*c);
        } else if (key == "CS") {
            if (auto c = parse_hex(v)) f.charset = *c;
        } else if (key == "PF") {
            if (auto c = parse_hex(v)) f.pitch_family = *c;
        } else if (key == "RL") {
            f.right_to_left = v == "1";
        }
    }
    return f;
}

std::string write_format(const frame::text_format& f) {
    // ';' separates the fields, so a font name must not carry one raw.
    std::string font;
    for (const char c : url_encode(f.font)) {
        if (c == ';') font += "%3B";
        else font += c;
    }
    std::string out = "FN=" + font + "; EF=" + f.effects + "; CO=" + hex(swap_red_blue(f.color & 0xFFFFFF)) +
                      "; CS=" + hex(f.charset) + "; PF=" + hex(f.pitch_family);
    if (f.right_to_left) out += "; RL=1";
    return out;
}

std::string text_payload(const frame::room_message& m) {
    std::string out = "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n";
    if (m.format != frame::text_format{}) out += "X-MMS-IM-Format: " + write_format(m.format) + "\r\n";
    out += "\r\n";
    out += m.text;
    return out;
}

std::string typing_payload(std::string_view user) {
    return "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: " + std::string(user) +
           "\r\n\r\n\r\n";
}

std::string nudge_payload() {
    return "MIME-Version: 1.0\r\nContent-Type: text/x-msnmsgr-datacast\r\n\r\nID: 1\r\n\r\n";
}

}  // namespace switchyard::msnp
