#include "protocols/msnp/command.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace switchyard::msnp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }

bool all_digits(std::string_view s) { return std::all_of(s.begin(), s.end(), is_digit); }

// A decimal of 1 to 10 digits: TrIDs and payload lengths. Ten digits cover
// every 32-bit value a client can mean and cannot overflow the parse.
bool is_short_decimal(std::string_view s) { return !s.empty() && s.size() <= 10 && all_digits(s); }

// Three uppercase letters (§2.1, case-sensitive) or a three-digit error code
// (§2.4): errors only travel server to client, but replayed server streams
// contain them and they frame as plain lines.
bool valid_name(std::string_view s) {
    return s.size() == 3 && (std::all_of(s.begin(), s.end(), is_upper) || all_digits(s));
}

// C0 controls and DEL never belong in a command line: parameters that could
// hold them are URL-encoded (§2.1), and the CR of CRLF is stripped before
// this check. TAB is rejected too: Escargot's reader splits on any
// whitespace while we split on spaces only, so a TAB would make the two
// disagree on the tokens. Bytes >= 0x80 stay allowed: official servers and
// clients sent raw UTF-8 in names (§5).
bool has_control_byte(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b < 0x20 || b == 0x7F;
    });
}

// The line without the CR of its CRLF. Applied to an unterminated tail too,
// where a final CR may still be the start of a CRLF.
std::string_view strip_cr(std::string_view s) {
    if (!s.empty() && s.back() == '\r') {
        s.remove_suffix(1);
    }
    return s;
}

std::vector<std::string_view> split_tokens(std::string_view text) {
    std::vector<std::string_view> tokens;
    for (;;) {
        const auto space = text.find(' ');
        tokens.push_back(text.substr(0, space));
        if (space == std::string_view::npos) {
            break;
        }
        text.remove_prefix(space + 1);
    }
    // One trailing space is an Escargot quirk seen on LST lines (§2.5 step 2);
    // a second one leaves an empty parameter for the state machine to reject.
    if (tokens.size() > 1 && tokens.back().empty()) {
        tokens.pop_back();
    }
    return tokens;
}

int hex_value(char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

void append_escape(std::string& out, unsigned char b) {
    static constexpr char digits[] = "0123456789ABCDEF";
    out += '%';
    out += digits[b >> 4];
    out += digits[b & 0x0F];
}

template <class NeedsEscape> std::string percent_encode(std::string_view s, NeedsEscape needs_escape) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        const auto b = static_cast<unsigned char>(c);
        if (needs_escape(b)) {
            append_escape(out, b);
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::optional<std::string_view> command::trid() const {
    if (params.empty() || !is_short_decimal(params.front())) {
        return std::nullopt;
    }
    return std::string_view(params.front());
}

std::string_view to_string(framer_errc e) {
    switch (e) {
    case framer_errc::line_too_long:
        return "command line too long";
    case framer_errc::payload_too_large:
        return "payload too large";
    case framer_errc::bad_length:
        return "payload length is not a decimal number";
    case framer_errc::bad_command:
        return "malformed command name";
    case framer_errc::binary_line:
        return "control byte in command line";
    }
    return "unknown framing error";
}

// Client-to-server payload commands (§2.3 table; ESC msnp.py
// _PAYLOAD_COMMANDS, YW table_of_commands.md), each with the one arity its
// grammar has, so a line whose last token merely looks like a number never
// swallows the bytes after it.
bool client_payload(server_role role, int dialect, std::string_view name, std::size_t params) {
    // The first command decides the role and carries no payload (VER, USR
    // and ANS have none): anything else closes the connection, before a
    // declared payload is waited for and buffered.
    if (role == server_role::unknown) {
        return false;
    }
    // SB `MSG t U|N|A|D len` (§4.5); the rare NS client MSG is `MSG t mode len`.
    if (name == "MSG") {
        return params == 3;
    }
    // Every other payload command belongs to the notification server.
    if (role == server_role::switchboard) {
        return false;
    }
    if (name == "QRY") {  // QRY t public-id 32 (§4.9), MSNP6+
        return dialect >= 6 && params == 3;
    }
    if (name == "SDC") {  // SDC t email lcid x x x x name len (ESC _m_sdc), MSNP5+
        return dialect >= 5 && params == 9;
    }
    if (name == "PAG") {  // PAG t handle len, MSNP5-8; MSNP9 replaced it by PGD (YW pag.md)
        return dialect >= 5 && dialect <= 8 && params == 3;
    }
    if (name == "PGD") {  // PGD t handle 1 len (YW pgd.md), MSNP9+
        return dialect >= 9 && params == 4;
    }
    if (name == "UUX") {  // UUX t len, MSNP11+ (§8 item 3: MSNP10 had no PSM)
        return dialect >= 11 && params == 2;
    }
    if (name == "ADL" || name == "RML") {  // ADL t len (§4.3), MSNP13+
        return dialect >= 13 && params == 2;
    }
    if (name == "FQY") {  // FQY t len, MSNP14+
        return dialect >= 14 && params == 2;
    }
    if (name == "UUN") {  // UUN t email type len (§4.10), MSNP13+
        return dialect >= 13 && params == 4;
    }
    if (name == "UUM") {  // UUM t email network type len, MSNP14+
        return dialect >= 14 && params == 5;
    }
    return false;
}

void framer::feed(std::string_view bytes) {
    if (error_) {
        return;
    }
    // Drop what next() has consumed once it is at least as large as what is
    // left, so each byte is moved O(1) times however the reads are split.
    if (consumed_ > 0 && consumed_ >= buffer_.size() - consumed_) {
        buffer_.erase(0, consumed_);
        consumed_ = 0;
    }
    buffer_.append(bytes);
}

tl::expected<std::optional<command>, framer_errc> framer::next() {
    if (error_) {
        return tl::unexpected(*error_);
    }
    const auto fail = [this](framer_errc e) {
        error_ = e;
        return tl::unexpected(e);
    };

    for (;;) {
        const std::string_view rest = std::string_view(buffer_).substr(consumed_);

        if (pending_) {
            // The payload is exactly pending_length_ bytes with no terminator (§2.3).
            if (rest.size() < pending_length_) {
                return std::nullopt;
            }
            pending_->payload.assign(rest.substr(0, pending_length_));
            consumed_ += pending_length_;
            std::optional<command> done = std::move(pending_);
            pending_.reset();
            return done;
        }

        const auto lf = rest.find('\n');
        if (lf == std::string_view::npos) {
            // Reject as soon as the line cannot fit, not only once its LF arrives.
            if (strip_cr(rest).size() > limits_.max_line) {
                return fail(framer_errc::line_too_long);
            }
            if (rest.empty()) {
                // Everything is consumed: an idle connection keeps no buffer.
                std::string().swap(buffer_);
                consumed_ = 0;
            }
            return std::nullopt;
        }
        consumed_ += lf + 1;
        // Bare LF is tolerated like Escargot does (§2.1); only one CR is stripped.
        const std::string_view text = strip_cr(rest.substr(0, lf));
        // Length before content: an unterminated line is judged by its length
        // alone, so a complete one must be too, or the error would depend on
        // where the reads happened to split.
        if (text.size() > limits_.max_line) {
            return fail(framer_errc::line_too_long);
        }
        if (text.empty()) {
            continue;
        }
        if (has_control_byte(text)) {
            return fail(framer_errc::binary_line);
        }

        const auto tokens = split_tokens(text);
        if (!valid_name(tokens.front())) {
            return fail(framer_errc::bad_command);
        }
        command c;
        c.name = tokens.front();
        c.params.assign(tokens.begin() + 1, tokens.end());
        if (!client_payload(role_, dialect_, c.name, c.params.size())) {
            return c;
        }

        const std::string_view length = c.params.back();
        if (!is_short_decimal(length)) {
            return fail(framer_errc::bad_length);
        }
        std::uint64_t bytes = 0;
        std::from_chars(length.data(), length.data() + length.size(), bytes);
        // Only MSG carries a payload on a switchboard; the SB closes on more
        // than 1664 bytes (§2.1, HYPO and ESC). NS payloads: 64 KiB (§2.5 step 4).
        const std::size_t cap =
            role_ == server_role::switchboard ? limits_.max_sb_message : limits_.max_payload;
        if (bytes > cap) {
            return fail(framer_errc::payload_too_large);
        }
        c.has_payload = true;
        pending_ = std::move(c);
        pending_length_ = static_cast<std::size_t>(bytes);
    }
}

std::string url_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
        } else {
            // A '%' without two hex digits is kept as sent, like Python's unquote (ESC).
            out += s[i];
        }
    }
    return out;
}

std::string url_encode(std::string_view s) {
    return percent_encode(s, [](unsigned char b) { return b == '%' || b == ' ' || b < 0x20 || b >= 0x7F; });
}

// Python's quote(s, safe='') as Escargot uses it for MSNObjects (ESC
// misc.py encode_msnobj): RFC 3986 unreserved characters stay literal, as
// they did from Microsoft's servers (`andre-stein%40hotmail.com` in the
// papyon log quoted in §6.2).
std::string url_encode_all(std::string_view s) {
    return percent_encode(s, [](unsigned char b) {
        const bool unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                                b == '-' || b == '.' || b == '_' || b == '~';
        return !unreserved;
    });
}

std::string line(std::initializer_list<std::string_view> tokens) {
    std::string out;
    std::string_view separator;
    for (const auto token : tokens) {
        out += separator;
        out += token;
        separator = " ";
    }
    out += "\r\n";
    return out;
}

std::string payload_line(std::initializer_list<std::string_view> tokens, std::string_view payload) {
    std::string out;
    for (const auto token : tokens) {
        out += token;
        out += ' ';
    }
    out += std::to_string(payload.size());
    out += "\r\n";
    out += payload;
    return out;
}

}  // namespace switchyard::msnp
