#include "protocols/msnp/command.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace switchyard::msnp;
using namespace std::string_literals;
using namespace std::string_view_literals;

namespace Catch {
template <> struct StringMaker<command> {
    static std::string convert(const command& c) {
        std::string s = c.name;
        for (const auto& p : c.params) {
            s += " [" + p + "]";
        }
        if (c.has_payload) {
            s += " +payload(" + std::to_string(c.payload.size()) + ")";
        }
        return s;
    }
};
template <> struct StringMaker<framer_errc> {
    static std::string convert(framer_errc e) { return std::string(to_string(e)); }
};
}  // namespace Catch

namespace {

// Everything a framer produced for a stream: its commands, then the error
// that stopped it, if any.
struct outcome {
    std::vector<command> commands;
    std::optional<framer_errc> error;
};

void drain(framer& f, outcome& out) {
    while (!out.error) {
        auto next = f.next();
        if (!next) {
            out.error = next.error();
        } else if (!*next) {
            return;
        } else {
            out.commands.push_back(std::move(**next));
        }
    }
}

framer make_framer(server_role role, int dialect, framer_limits limits = {}) {
    framer f(limits);
    f.set_role(role);
    f.set_dialect(dialect);
    return f;
}

outcome frame_all(std::string_view bytes, server_role role = server_role::notification, int dialect = 12,
                  framer_limits limits = {}) {
    framer f = make_framer(role, dialect, limits);
    outcome out;
    f.feed(bytes);
    drain(f, out);
    return out;
}

// Feeds `bytes` in pieces whose sizes come from `next_size`, draining after each.
template <class Sizes>
outcome frame_chunked(std::string_view bytes, Sizes next_size, server_role role = server_role::notification,
                      int dialect = 12) {
    framer f = make_framer(role, dialect);
    outcome out;
    while (!bytes.empty()) {
        const std::size_t n = std::min(bytes.size(), next_size());
        f.feed(bytes.substr(0, n));
        bytes.remove_prefix(n);
        drain(f, out);
    }
    return out;
}

command cmd(std::string name, std::vector<std::string> params) {
    command c;
    c.name = std::move(name);
    c.params = std::move(params);
    return c;
}

command with_payload(std::string name, std::vector<std::string> params, std::string payload) {
    command c = cmd(std::move(name), std::move(params));
    c.payload = std::move(payload);
    c.has_payload = true;
    return c;
}

// One command from a whole stream, which must hold exactly one.
command only(std::string_view bytes, server_role role = server_role::notification, int dialect = 12) {
    const outcome out = frame_all(bytes, role, dialect);
    REQUIRE_FALSE(out.error);
    REQUIRE(out.commands.size() == 1);
    return out.commands.front();
}

std::optional<framer_errc> error_of(std::string_view bytes, server_role role = server_role::notification,
                                    int dialect = 12, framer_limits limits = {}) {
    return frame_all(bytes, role, dialect, limits).error;
}

const std::string typing_payload =
    "MIME-Version: 1.0\r\nContent-Type: text/x-msmsgscontrol\r\nTypingUser: alice@example.com\r\n\r\n\r\n";
const std::string text_payload =
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
    "X-MMS-IM-Format: FN=Lucida%20Grande; EF=; CO=C81ABB; CS=0; PF=2\r\n\r\nh\xC3\xA9llo \0 there"s;

// A client NS stream (Appendix B.2/B.3 shapes) with every framing quirk:
// blank lines, bare LF, a trailing space, zero-length and CRLF-bearing payloads.
const std::string ns_stream = "VER 1 MSNP12 CVR0\r\n"
                              "CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 7.5.0324 MSMSGS alice@example.com\r\n"
                              "\r\n"
                              "USR 3 TWN I alice@example.com\n"
                              "SYN 5 0 0 \r\n"
                              "GCF 6 Shields.xml\r\n"
                              "UUX 7 53\r\n<Data><PSM></PSM><CurrentMedia></CurrentMedia></Data>"
                              "UUX 8 0\r\n"
                              "QRY 9 msmsgs@msnmsgr.com 32\r\n8f2f5a91b72102cd28355e9fc9000d6e"
                              "REA 10 alice@example.com Al%20ice\xC3\xA0\n"
                              "\n"
                              "MSG 11 N 12\r\nline1\r\nline2"
                              "PNG\r\n"
                              "OUT\r\n";

const std::vector<command> ns_stream_commands{
    cmd("VER", {"1", "MSNP12", "CVR0"}),
    cmd("CVR", {"2", "0x0409", "winnt", "5.1", "i386", "MSNMSGR", "7.5.0324", "MSMSGS", "alice@example.com"}),
    cmd("USR", {"3", "TWN", "I", "alice@example.com"}),
    cmd("SYN", {"5", "0", "0"}),
    cmd("GCF", {"6", "Shields.xml"}),
    with_payload("UUX", {"7", "53"}, "<Data><PSM></PSM><CurrentMedia></CurrentMedia></Data>"),
    with_payload("UUX", {"8", "0"}, ""),
    with_payload("QRY", {"9", "msmsgs@msnmsgr.com", "32"}, "8f2f5a91b72102cd28355e9fc9000d6e"),
    cmd("REA", {"10", "alice@example.com", "Al%20ice\xC3\xA0"}),
    with_payload("MSG", {"11", "N", "12"}, "line1\r\nline2"),
    cmd("PNG", {}),
    cmd("OUT", {}),
};

const std::string sb_stream = "USR 1 alice@example.com cookie-A\r\n"
                              "CAL 2 bob@example.com\r\n"
                              "MSG 3 U " + std::to_string(typing_payload.size()) + "\r\n" + typing_payload +
                              "MSG 4 A " + std::to_string(text_payload.size()) + "\r\n" + text_payload +
                              "OUT\r\n";

const std::vector<command> sb_stream_commands{
    cmd("USR", {"1", "alice@example.com", "cookie-A"}),
    cmd("CAL", {"2", "bob@example.com"}),
    with_payload("MSG", {"3", "U", std::to_string(typing_payload.size())}, typing_payload),
    with_payload("MSG", {"4", "A", std::to_string(text_payload.size())}, text_payload),
    cmd("OUT", {}),
};

}  // namespace

TEST_CASE("a command line splits into its name and parameters", "[msnp][framer]") {
    const command c = only("VER 1 MSNP8 CVR0\r\n");
    CHECK(c.name == "VER");
    CHECK(c.params == std::vector<std::string>{"1", "MSNP8", "CVR0"});
    CHECK_FALSE(c.has_payload);
    CHECK(c.payload.empty());
    CHECK(only("PNG\r\n") == cmd("PNG", {}));
}

TEST_CASE("nothing is returned before the line's LF arrives", "[msnp][framer]") {
    framer f = make_framer(server_role::notification, 8);
    f.feed("VER 1 MSNP8\r");
    auto next = f.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
    f.feed("\n");
    next = f.next();
    REQUIRE(next);
    REQUIRE(*next);
    CHECK(**next == cmd("VER", {"1", "MSNP8"}));
    next = f.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
}

TEST_CASE("bare LF ends a line like CRLF, and only one CR is stripped", "[msnp][framer]") {
    CHECK(only("CHG 7 NLN\n") == cmd("CHG", {"7", "NLN"}));
    CHECK(only("CHG 7 NLN\r\n") == cmd("CHG", {"7", "NLN"}));
    // The second CR is inside the line: a control byte.
    CHECK(error_of("CHG 7 NLN\r\r\n") == framer_errc::binary_line);
}

TEST_CASE("empty lines are skipped", "[msnp][framer]") {
    const outcome out = frame_all("\r\n\nPNG\r\n\r\n\nOUT\n");
    CHECK_FALSE(out.error);
    CHECK(out.commands == std::vector<command>{cmd("PNG", {}), cmd("OUT", {})});
}

TEST_CASE("one trailing space is tolerated (§2.5), a second leaves an empty parameter", "[msnp][framer]") {
    CHECK(only("SYN 5 0 0 \r\n") == cmd("SYN", {"5", "0", "0"}));
    CHECK(only("OUT \r\n") == cmd("OUT", {}));
    CHECK(only("SYN 5 0 0  \r\n") == cmd("SYN", {"5", "0", "0", ""}));
    CHECK(only("REA 5  x\r\n") == cmd("REA", {"5", "", "x"}));
}

TEST_CASE("command names are three uppercase letters or three digits", "[msnp][framer]") {
    CHECK(only("201 19\r\n") == cmd("201", {"19"}));
    CHECK(only("207\r\n") == cmd("207", {}));
    for (const auto bad : {"ver 1 MSNP8\r\n"sv, "Ver 1\r\n"sv, "VE 1\r\n"sv, "VERB 1\r\n"sv, "V1R 1\r\n"sv,
                           "20 1\r\n"sv, "2011 1\r\n"sv, " VER 1\r\n"sv, " \r\n"sv, "\xC3\x89VE 1\r\n"sv}) {
        INFO(bad);
        CHECK(error_of(bad) == framer_errc::bad_command);
    }
}

TEST_CASE("a numeric command is never a payload command, even when its last token is numeric", "[msnp][framer]") {
    const outcome out = frame_all("201 19\r\nPNG\r\n", server_role::notification, 12);
    CHECK_FALSE(out.error);
    CHECK(out.commands == std::vector<command>{cmd("201", {"19"}), cmd("PNG", {})});
}

TEST_CASE("control bytes inside a line are rejected; UTF-8 is not", "[msnp][framer]") {
    for (const auto bad : {"VER 1\0 MSNP8\r\n"sv, "VER 1 MS\rNP8\r\n"sv, "REA 1 a\tb\r\n"sv, "REA 1 a\x7F\r\n"sv,
                           "REA 1 a\x01\r\n"sv, "REA 1 a\x1F\r\n"sv, "\0\r\n"sv}) {
        INFO(bad.size());
        CHECK(error_of(bad) == framer_errc::binary_line);
    }
    CHECK(only("REA 10 a@b.c Freebox%20\xC3\xA0 la Poste\r\n").params.size() == 5);
    CHECK(only("REA 10 a@b.c \xFF\x80\r\n").params.back() == "\xFF\x80");
}

TEST_CASE("a line of max_line bytes passes, one byte more is rejected", "[msnp][framer]") {
    framer_limits limits;
    limits.max_line = 32;
    const std::string fits = "REA 1 " + std::string(26, 'x');
    REQUIRE(fits.size() == 32);
    CHECK_FALSE(error_of(fits + "\r\n", server_role::notification, 12, limits));
    CHECK_FALSE(error_of(fits + "\n", server_role::notification, 12, limits));
    CHECK(error_of(fits + "y\r\n", server_role::notification, 12, limits) == framer_errc::line_too_long);
    CHECK(error_of(fits + "y\n", server_role::notification, 12, limits) == framer_errc::line_too_long);
    // Length wins over content: an overlong line with a NUL is too long.
    CHECK(error_of(fits + "\0\n"s, server_role::notification, 12, limits) == framer_errc::line_too_long);
}

TEST_CASE("an unterminated line is rejected as soon as it exceeds max_line", "[msnp][framer]") {
    framer_limits limits;
    limits.max_line = 32;
    const std::string fits = "REA 1 " + std::string(26, 'x');

    framer waiting = make_framer(server_role::notification, 12, limits);
    waiting.feed(fits + "\r");  // the CR may still be the start of CRLF
    auto next = waiting.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
    waiting.feed("\n");
    next = waiting.next();
    REQUIRE(next);
    CHECK(*next);

    framer too_long = make_framer(server_role::notification, 12, limits);
    too_long.feed(fits);
    next = too_long.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
    too_long.feed("y");
    next = too_long.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::line_too_long);

    framer cr_then_more = make_framer(server_role::notification, 12, limits);
    cr_then_more.feed(fits + "\ry");
    next = cr_then_more.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::line_too_long);
}

TEST_CASE("the default line limit is 8192 bytes, also without an LF", "[msnp][framer]") {
    framer f = make_framer(server_role::notification, 12);
    f.feed("REA 1 a " + std::string(8192, 'x'));
    const auto next = f.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::line_too_long);
}

TEST_CASE("a payload is exactly len bytes, with no terminator, then the next command", "[msnp][framer]") {
    const outcome out = frame_all("MSG 4 A 8\r\nab\r\n\0c\r\nPNG\r\n"s, server_role::switchboard, 12);
    CHECK_FALSE(out.error);
    CHECK(out.commands == std::vector<command>{with_payload("MSG", {"4", "A", "8"}, "ab\r\n\0c\r\n"s), cmd("PNG", {})});
}

TEST_CASE("a payload split across reads is reassembled", "[msnp][framer]") {
    framer f = make_framer(server_role::switchboard, 12);
    f.feed("MSG 3 N 10\r\n0123");
    auto next = f.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
    f.feed("456");
    next = f.next();
    REQUIRE(next);
    CHECK_FALSE(*next);
    f.feed("789OUT\r\n");
    next = f.next();
    REQUIRE(next);
    REQUIRE(*next);
    CHECK(**next == with_payload("MSG", {"3", "N", "10"}, "0123456789"));
    next = f.next();
    REQUIRE(next);
    REQUIRE(*next);
    CHECK(**next == cmd("OUT", {}));
}

TEST_CASE("SB MSG payloads are capped at 1664 bytes (§2.1)", "[msnp][framer]") {
    const std::string ok = "MSG 4 A 1664\r\n" + std::string(1664, 'x');
    const outcome out = frame_all(ok, server_role::switchboard, 12);
    CHECK_FALSE(out.error);
    REQUIRE(out.commands.size() == 1);
    CHECK(out.commands[0].payload.size() == 1664);

    // Rejected on the header line, before any payload byte arrives.
    CHECK(error_of("MSG 4 A 1665\r\n", server_role::switchboard, 12) == framer_errc::payload_too_large);
    // The same length is fine on the notification server.
    CHECK_FALSE(error_of("MSG 4 A 1665\r\n" + std::string(1665, 'x'), server_role::notification, 12));
}

TEST_CASE("NS payloads are capped at 64 KiB (§2.5)", "[msnp][framer]") {
    const outcome out = frame_all("UUX 7 65536\r\n" + std::string(65536, 'x'), server_role::notification, 12);
    CHECK_FALSE(out.error);
    REQUIRE(out.commands.size() == 1);
    CHECK(out.commands[0].payload.size() == 65536);
    CHECK(error_of("UUX 7 65537\r\n", server_role::notification, 12) == framer_errc::payload_too_large);
}

TEST_CASE("before the role is known no command carries a payload", "[msnp][framer]") {
    // A MSG before VER declaring 64 KiB is a line like any other: the
    // connection closes on it without waiting for, or buffering, the payload.
    const command c = only("MSG 1 A 65536\r\n", server_role::unknown, 0);
    CHECK(c == cmd("MSG", {"1", "A", "65536"}));
    CHECK_FALSE(c.has_payload);
    CHECK(only("QRY 1 msmsgs@msnmsgr.com 2\r\n", server_role::unknown, 6) ==
          cmd("QRY", {"1", "msmsgs@msnmsgr.com", "2"}));
}

TEST_CASE("role and dialect set between commands apply to the next command", "[msnp][framer]") {
    framer sb;
    sb.feed("USR 1 alice@example.com cookie\r\nMSG 2 A 1665\r\n");
    auto next = sb.next();
    REQUIRE(next);
    REQUIRE(*next);
    sb.set_role(server_role::switchboard);
    next = sb.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::payload_too_large);

    framer ns;
    ns.set_role(server_role::notification);
    ns.feed("VER 1 MSNP11\r\nUUX 2 2\r\nab");
    next = ns.next();
    REQUIRE(next);
    REQUIRE(*next);
    ns.set_dialect(11);
    next = ns.next();
    REQUIRE(next);
    REQUIRE(*next);
    CHECK(**next == with_payload("UUX", {"2", "2"}, "ab"));
}

TEST_CASE("a payload length must be a decimal of at most 10 digits", "[msnp][framer]") {
    for (const auto bad : {"MSG 4 A x\r\n"sv, "MSG 4 A -1\r\n"sv, "MSG 4 A +1\r\n"sv, "MSG 4 A 1e3\r\n"sv,
                           "MSG 4 A 0x10\r\n"sv, "MSG 4 A 12345678901\r\n"sv, "MSG 4 A 00000000001\r\n"sv}) {
        INFO(bad);
        CHECK(error_of(bad, server_role::switchboard, 12) == framer_errc::bad_length);
    }
    CHECK(only("MSG 4 A 0000000002\r\nhi", server_role::switchboard, 12).payload == "hi");
    // Ten digits parse; the value is then over the cap.
    CHECK(error_of("MSG 4 A 9999999999\r\n", server_role::switchboard, 12) == framer_errc::payload_too_large);
}

TEST_CASE("payload commands come from the table, not from a numeric last token (§2.5)", "[msnp][framer]") {
    // GCF from the client has no payload (§2.3).
    const outcome gcf = frame_all("GCF 6 Shields.xml\r\nPNG\r\n", server_role::notification, 12);
    CHECK(gcf.commands == std::vector<command>{cmd("GCF", {"6", "Shields.xml"}), cmd("PNG", {})});
    // A numeric last token elsewhere is just a parameter.
    const outcome chg = frame_all("CHG 7 NLN 1073741824\r\nPNG\r\n", server_role::notification, 12);
    CHECK(chg.commands == std::vector<command>{cmd("CHG", {"7", "NLN", "1073741824"}), cmd("PNG", {})});
    // UUX 8 0: a zero-length payload.
    CHECK(only("UUX 8 0\r\n", server_role::notification, 11) == with_payload("UUX", {"8", "0"}, ""));
    // MSNP10 has no UUX payload (<11), so `UUX 8 2` is a plain line.
    const outcome uux10 = frame_all("UUX 8 2\r\nPNG\r\n", server_role::notification, 10);
    CHECK(uux10.commands == std::vector<command>{cmd("UUX", {"8", "2"}), cmd("PNG", {})});
    // QRY carries a payload from MSNP6 on.
    const outcome qry5 = frame_all("QRY 2 msmsgs@msnmsgr.com 3\r\nPNG\r\n", server_role::notification, 5);
    CHECK(qry5.commands == std::vector<command>{cmd("QRY", {"2", "msmsgs@msnmsgr.com", "3"}), cmd("PNG", {})});
    CHECK(only("QRY 2 msmsgs@msnmsgr.com 3\r\nabc", server_role::notification, 6).payload == "abc");
}

TEST_CASE("SB MSG has exactly trid, ack mode and length", "[msnp][framer]") {
    const outcome two = frame_all("MSG 4 2\r\nPNG\r\n", server_role::switchboard, 12);
    CHECK(two.commands == std::vector<command>{cmd("MSG", {"4", "2"}), cmd("PNG", {})});
    const outcome four = frame_all("MSG 4 A B 2\r\nPNG\r\n", server_role::switchboard, 12);
    CHECK(four.commands == std::vector<command>{cmd("MSG", {"4", "A", "B", "2"}), cmd("PNG", {})});
    // NS-only payload commands are plain lines on a switchboard.
    const outcome qry = frame_all("QRY 2 x 3\r\nPNG\r\n", server_role::switchboard, 12);
    CHECK(qry.commands == std::vector<command>{cmd("QRY", {"2", "x", "3"}), cmd("PNG", {})});
}

TEST_CASE("client_payload table", "[msnp][framer]") {
    using enum server_role;
    CHECK(client_payload(switchboard, 2, "MSG", 3));
    CHECK(client_payload(notification, 12, "MSG", 3));
    CHECK_FALSE(client_payload(notification, 12, "MSG", 2));
    CHECK_FALSE(client_payload(notification, 5, "QRY", 3));
    CHECK(client_payload(notification, 6, "QRY", 3));
    CHECK_FALSE(client_payload(unknown, 6, "QRY", 3));  // the first command carries none
    CHECK_FALSE(client_payload(unknown, 0, "MSG", 3));
    CHECK_FALSE(client_payload(switchboard, 12, "QRY", 3));
    CHECK_FALSE(client_payload(notification, 10, "UUX", 2));
    CHECK(client_payload(notification, 11, "UUX", 2));
    CHECK_FALSE(client_payload(notification, 11, "UUX", 3));
    CHECK_FALSE(client_payload(notification, 4, "SDC", 9));
    CHECK(client_payload(notification, 5, "SDC", 9));
    CHECK_FALSE(client_payload(notification, 5, "SDC", 3));
    CHECK(client_payload(notification, 5, "PAG", 3));
    CHECK(client_payload(notification, 8, "PAG", 3));
    CHECK_FALSE(client_payload(notification, 9, "PAG", 3));
    CHECK_FALSE(client_payload(notification, 8, "PGD", 4));
    CHECK(client_payload(notification, 9, "PGD", 4));
    CHECK_FALSE(client_payload(notification, 12, "ADL", 2));
    CHECK(client_payload(notification, 13, "ADL", 2));
    CHECK(client_payload(notification, 13, "RML", 2));
    CHECK(client_payload(notification, 13, "UUN", 4));
    CHECK_FALSE(client_payload(notification, 13, "FQY", 2));
    CHECK(client_payload(notification, 14, "FQY", 2));
    CHECK(client_payload(notification, 14, "UUM", 5));
    CHECK_FALSE(client_payload(notification, 12, "GCF", 2));
    CHECK_FALSE(client_payload(notification, 12, "201", 2));
}

TEST_CASE("errors are sticky and later bytes are ignored", "[msnp][framer]") {
    framer f = make_framer(server_role::notification, 12);
    f.feed("ver 1 MSNP8\r\nPNG\r\n");
    auto next = f.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::bad_command);
    next = f.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::bad_command);
    f.feed("OUT\r\n");
    next = f.next();
    REQUIRE_FALSE(next);
    CHECK(next.error() == framer_errc::bad_command);
}

TEST_CASE("commands before an error are delivered first", "[msnp][framer]") {
    const outcome out = frame_all("PNG\r\nCHG 7 NLN\r\nVER\0\r\nOUT\r\n"s);
    CHECK(out.commands == std::vector<command>{cmd("PNG", {}), cmd("CHG", {"7", "NLN"})});
    CHECK(out.error == framer_errc::binary_line);
}

TEST_CASE("a coalesced stream frames the same however it is split", "[msnp][framer]") {
    SECTION("notification stream") {
        const outcome whole = frame_all(ns_stream, server_role::notification, 12);
        CHECK_FALSE(whole.error);
        CHECK(whole.commands == ns_stream_commands);

        const outcome bytewise = frame_chunked(ns_stream, [] { return std::size_t{1}; });
        CHECK_FALSE(bytewise.error);
        CHECK(bytewise.commands == ns_stream_commands);

        std::mt19937 rng(1863);
        std::uniform_int_distribution<std::size_t> size(1, 40);
        for (int round = 0; round < 50; ++round) {
            const outcome random = frame_chunked(ns_stream, [&] { return size(rng); });
            CHECK_FALSE(random.error);
            CHECK(random.commands == ns_stream_commands);
        }
    }
    SECTION("switchboard stream") {
        const outcome whole = frame_all(sb_stream, server_role::switchboard, 12);
        CHECK_FALSE(whole.error);
        CHECK(whole.commands == sb_stream_commands);

        const outcome bytewise =
            frame_chunked(sb_stream, [] { return std::size_t{1}; }, server_role::switchboard, 12);
        CHECK(bytewise.commands == sb_stream_commands);

        std::mt19937 rng(1664);
        std::uniform_int_distribution<std::size_t> size(1, 97);
        for (int round = 0; round < 50; ++round) {
            const outcome random =
                frame_chunked(sb_stream, [&] { return size(rng); }, server_role::switchboard, 12);
            CHECK_FALSE(random.error);
            CHECK(random.commands == sb_stream_commands);
        }
    }
    SECTION("a stream that ends in an error") {
        const std::string bad = ns_stream + "MSG 12 N 65537\r\n";
        const outcome whole = frame_all(bad);
        CHECK(whole.commands == ns_stream_commands);
        CHECK(whole.error == framer_errc::payload_too_large);
        const outcome bytewise = frame_chunked(bad, [] { return std::size_t{1}; });
        CHECK(bytewise.commands == ns_stream_commands);
        CHECK(bytewise.error == framer_errc::payload_too_large);
    }
}

TEST_CASE("a long session through one framer keeps every command", "[msnp][framer]") {
    // Many reads that each end mid-command exercise the buffer compaction.
    framer f = make_framer(server_role::switchboard, 12);
    outcome out;
    const std::string unit = "MSG 1 U 5\r\nhelloPNG\r\n";
    for (int i = 0; i < 2000; ++i) {
        f.feed(std::string_view(unit).substr(0, 7));
        drain(f, out);
        f.feed(std::string_view(unit).substr(7));
        drain(f, out);
    }
    CHECK_FALSE(out.error);
    REQUIRE(out.commands.size() == 4000);
    CHECK(out.commands[3998] == with_payload("MSG", {"1", "U", "5"}, "hello"));
    CHECK(out.commands[3999] == cmd("PNG", {}));
}

TEST_CASE("trid is params[0] when it is 1 to 10 decimal digits", "[msnp][command]") {
    CHECK(cmd("VER", {"1", "MSNP8"}).trid() == "1"sv);
    CHECK(cmd("MSG", {"0", "U", "3"}).trid() == "0"sv);
    CHECK(cmd("USR", {"4294967295"}).trid() == "4294967295"sv);
    CHECK_FALSE(cmd("USR", {"12345678901"}).trid());
    CHECK_FALSE(cmd("PNG", {}).trid());
    CHECK_FALSE(cmd("USR", {"1a"}).trid());
    CHECK_FALSE(cmd("USR", {""}).trid());
    CHECK_FALSE(cmd("USR", {"-1"}).trid());
    CHECK_FALSE(cmd("NLN", {"NLN", "bob@example.com"}).trid());
}

TEST_CASE("url_decode", "[msnp][encoding]") {
    CHECK(url_decode("Al%20ice") == "Al ice");
    CHECK(url_decode("%3cmsnobj%2f%3E") == "<msnobj/>");
    CHECK(url_decode("%C3%A9") == "\xC3\xA9");
    CHECK(url_decode("a+b") == "a+b");
    CHECK(url_decode("100%") == "100%");
    CHECK(url_decode("%4") == "%4");
    CHECK(url_decode("%zz%4g") == "%zz%4g");
    CHECK(url_decode("%%41") == "%A");
    CHECK(url_decode("%00") == "\0"s);
    CHECK(url_decode("") == "");
}

TEST_CASE("url_encode escapes what §5 asks and nothing else", "[msnp][encoding]") {
    CHECK(url_encode("Al ice") == "Al%20ice");
    CHECK(url_encode("100%") == "100%25");
    CHECK(url_encode("a\r\nb\tc\x7F") == "a%0D%0Ab%09c%7F");
    CHECK(url_encode("\0"s) == "%00");
    CHECK(url_encode("caf\xC3\xA9") == "caf%C3%A9");
    CHECK(url_encode("a+b<c>@d:e,\"f|g/h") == "a+b<c>@d:e,\"f|g/h");
}

TEST_CASE("url_encode_all escapes all but unreserved characters", "[msnp][encoding]") {
    CHECK(url_encode_all("<msnobj/>") == "%3Cmsnobj%2F%3E");
    CHECK(url_encode_all("<msnobj Creator=\"andre-stein@hotmail.com\" Size=\"5390\"/>") ==
          "%3Cmsnobj%20Creator%3D%22andre-stein%40hotmail.com%22%20Size%3D%225390%22%2F%3E");
    CHECK(url_encode_all("AZaz09-._~") == "AZaz09-._~");
    CHECK(url_encode_all("+%") == "%2B%25");
    CHECK(url_encode_all("\xC3\xA9") == "%C3%A9");
}

TEST_CASE("percent-encoding round trips", "[msnp][encoding]") {
    std::string every_byte;
    for (int b = 0; b < 256; ++b) {
        every_byte += static_cast<char>(b);
    }
    for (const std::string& s : {every_byte, "Famille VERNE - Etape 5, Freebox \xC3\xA0 la Poste"s,
                                 "\xF0\x9F\xA6\x8A %20 %zz +"s, "<msnobj/>"s, ""s}) {
        CHECK(url_decode(url_encode(s)) == s);
        CHECK(url_decode(url_encode_all(s)) == s);
    }
    const std::string encoded = url_encode(every_byte);
    CHECK(encoded.find_first_of(" \r\n\t"s + '\0') == std::string::npos);
}

TEST_CASE("line and payload_line", "[msnp][command]") {
    CHECK(line({"VER", "1", "MSNP8"}) == "VER 1 MSNP8\r\n");
    CHECK(line({"QNG"}) == "QNG\r\n");
    CHECK(payload_line({"MSG", "alice@example.com", "Alice"}, "hi") == "MSG alice@example.com Alice 2\r\nhi");
    CHECK(payload_line({"UBX", "alice@example.com"}, "\xC3\xA9") == "UBX alice@example.com 2\r\n\xC3\xA9");
    CHECK(payload_line({"UUX", "8"}, "") == "UUX 8 0\r\n");
    // What payload_line writes, the framer reads back.
    CHECK(only(payload_line({"MSG", "4", "A"}, text_payload), server_role::switchboard, 12) ==
          with_payload("MSG", {"4", "A", std::to_string(text_payload.size())}, text_payload));
}

TEST_CASE("every framer error has its own description", "[msnp][framer]") {
    const std::vector<framer_errc> all{framer_errc::line_too_long, framer_errc::payload_too_large,
                                       framer_errc::bad_length, framer_errc::bad_command,
                                       framer_errc::binary_line};
    std::vector<std::string_view> seen;
    for (const auto e : all) {
        const auto text = to_string(e);
        CHECK_FALSE(text.empty());
        CHECK(std::find(seen.begin(), seen.end(), text) == seen.end());
        seen.push_back(text);
    }
}
