// MSNP commands on the wire (msnp-reference §2 and §5): the streaming framer
// for what clients send, and the helpers that write server lines.
#pragma once

#include <tl/expected.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::msnp {

// One command as the client sent it. `params` are the raw tokens after the
// command name (TrID included when the command has one), not URL-decoded.
struct command {
    std::string name;                 // "VER", "MSG", ...
    std::vector<std::string> params;
    std::string payload;              // only for payload commands
    bool has_payload = false;

    // params[0] when it is a decimal TrID (most client commands).
    std::optional<std::string_view> trid() const;

    bool operator==(const command&) const = default;
};

// Which server the connection talks to; decided by its first command (VER =
// notification server, USR/ANS = switchboard), which changes which commands
// carry payloads and how large they may be.
enum class server_role { unknown, notification, switchboard };

struct framer_limits {
    std::size_t max_line = 8192;        // one command line, CRLF excluded
    std::size_t max_payload = 65536;    // NS payloads
    std::size_t max_sb_message = 1664;  // SB MSG payloads (HYPO, Escargot)
};

enum class framer_errc {
    line_too_long = 1,   // no CRLF within max_line bytes
    payload_too_large,   // a length over the role's cap
    bad_length,          // a payload length that is not a decimal number
    bad_command,         // not three uppercase letters (or a number)
    binary_line,         // a NUL or other control byte inside a command line
};
std::string_view to_string(framer_errc e);

// Splits client bytes into commands. Payload commands are recognised by a
// (role, dialect, command, arity) table, never by "the last token is a
// number" (§2.5). Tolerates bare LF and one trailing space (§2.5).
class framer {
public:
    explicit framer(framer_limits limits = {}) : limits_(limits) {}

    void set_role(server_role r) { role_ = r; }
    void set_dialect(int d) { dialect_ = d; }

    void feed(std::string_view bytes);
    // A command, nothing yet (nullopt: feed more), or an error after which
    // the connection must be closed. Errors are sticky: once next() has
    // failed it keeps returning that error, and feed() ignores more bytes.
    tl::expected<std::optional<command>, framer_errc> next();

private:
    framer_limits limits_;
    server_role role_ = server_role::unknown;
    int dialect_ = 0;
    std::string buffer_;
    std::size_t consumed_ = 0;
    std::optional<command> pending_;  // a payload command waiting for its payload
    std::size_t pending_length_ = 0;
    std::optional<framer_errc> error_;
};

// Whether a client command with this arity carries a payload in this role
// and dialect (its last parameter is then the length).
bool client_payload(server_role role, int dialect, std::string_view name, std::size_t params);

// Percent-decoding of parameters; '+' is not a space (§2.1).
std::string url_decode(std::string_view s);
// Parameters written by the server: %, space, CR, LF, controls and bytes
// >= 0x80 percent-encoded (§5 recommendation), uppercase hex.
std::string url_encode(std::string_view s);
// MSNObject parameters: everything but the RFC 3986 unreserved characters
// (ASCII letters, digits, - . _ ~) percent-encoded, uppercase hex:
// <msnobj/> becomes %3Cmsnobj%2F%3E (§2.1).
std::string url_encode_all(std::string_view s);

// "A B C\r\n"
std::string line(std::initializer_list<std::string_view> tokens);
// "A B C <len>\r\n<payload>"
std::string payload_line(std::initializer_list<std::string_view> tokens, std::string_view payload);

}  // namespace switchyard::msnp
