// MSNP transcripts: the text format of tools/replay/README.md, its reader
// and writer, the token matcher with wildcards and captures, the MSNP
// line/payload splitter for captured byte streams, and the redaction that
// turns a recorded session into a replayable transcript.
//
// No sockets, no TLS, no clocks: the gateway's capture writer and the
// replay tool's pcap reader and runner share this library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::replay {

struct step {
    int line = 0;                       // where it is in its file (0: made, not read)
    std::optional<double> at;           // seconds since the trace began, when recorded
    std::string connection;             // "A-NS", "SB1", ...
    bool client = false;                // C: (sent by the client) or S: (sent by the server)
    std::string text;                   // the command line, or "(closed)"
    std::vector<std::string> payload;   // payload lines (joined with CRLF), if any
    bool has_payload = false;           // a payload command (its last token is the length)
};

struct account {
    std::string handle;
    std::string password;
    bool legacy_md5 = false;
};

struct transcript {
    std::string file;                   // for messages: where it came from
    std::vector<account> users;         // @user lines
    std::string dialect;                // @dialect, when given
    std::vector<step> steps;
};

// An error that points at a place in an input file.
struct parse_error {
    std::string file;
    int line = 0;
    std::string message;
    std::string what() const { return file + ":" + std::to_string(line) + ": " + message; }
};

// Reads the text format. Never throws on bad input: the first problem comes
// back with its file and line.
std::optional<parse_error> parse(std::string_view text, const std::string& file, transcript& out);
std::optional<parse_error> parse_file(const std::string& path, transcript& out);

// Writes the text format; parse(format(t)) gives t back.
std::string format(const transcript& t);
std::string format_step(const step& s);

// Words of a line split on single spaces (empty words kept, as MSNP does).
std::vector<std::string> split(std::string_view line);
bool all_digits(std::string_view s);

// Whether a line of this direction carries a payload whose length is its
// last token (msnp-reference §2.3). `length_known` false accepts "*" and
// variables in the length position, as transcripts write them.
bool payload_command(std::string_view line, bool from_client, bool length_known = true);

// The transaction id of a line, if its command carries one: the second
// token when it is a non-zero decimal and the command is not one whose
// second token means something else (RNG's session id, QNG's interval,
// NOT's length...). Errors (three digits) carry one too.
std::optional<std::string> transaction_id(std::string_view line);

// Captured values by name, plus the account a connection signed in with.
using captures = std::map<std::string, std::string>;

// Whether `actual` matches `expected`: "*" is any one token, ${name}
// captures the rest of a token after a literal prefix, ${=name} must equal
// an earlier capture, anything else is literal. New captures go into `out`
// only on success.
bool match_line(std::string_view expected, std::string_view actual, const captures& known, captures& out,
                std::string* why = nullptr);

// Splits one direction of an MSNP byte stream into steps. With `resync`,
// bytes before the first line that parses as an MSNP command are dropped
// (a capture that starts mid-connection).
class splitter {
public:
    splitter(bool from_client, bool resync) : client_(from_client), resync_(resync) {}
    // Appends bytes seen at time `at`; complete messages come out of take().
    void feed(std::string_view bytes, double at);
    std::vector<step> take();
    std::size_t pending() const { return buffer_.size(); }
    std::size_t dropped() const { return dropped_; }

private:
    bool client_;
    bool resync_;
    std::string buffer_;
    double first_at_ = 0;
    bool have_first_ = false;
    std::size_t dropped_ = 0;
    std::vector<step> out_;
};

// Payload bytes as transcript payload lines; binary or bare-LF payloads
// become one "!base64 ..." line.
std::vector<std::string> payload_lines(std::string_view payload);
std::string payload_bytes(const std::vector<std::string>& lines, bool* ok = nullptr);

// A line that looks like an MSNP command: three upper-case letters or three
// digits, then a space or the end, printable text after.
bool looks_like_command(std::string_view line);

// Rewrites a recorded exchange into a replayable one, step by step, in the
// order the steps happened: passwords, tickets, MD5 answers, switchboard
// cookies and session ids become ${...} variables the runner fills from the
// server under test and the accounts it is given; server lengths, times and
// GUID-like values become wildcards or captures. One instance per trace
// (convert) or per connection (the gateway's capture).
class redactor {
public:
    step process(step s);

private:
    std::string name_for(const std::string& kind);
    void remember(const std::string& value, const std::string& var);
    std::string reuse(const std::string& token, bool client) const;

    std::map<std::string, int> counters_;
    std::map<std::string, std::string> values_;          // a captured value -> its variable
    std::map<std::string, std::string> login_handle_;    // connection -> handle in USR ... I
    std::map<std::string, std::string> salt_var_;        // connection -> salt variable
};

// Renames handles everywhere they appear: plain, URL-encoded (%40) and in
// "1:" network prefixes, in lines and payloads, @user lines included.
void rename_handles(transcript& t, const std::map<std::string, std::string>& renames);

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace switchyard::replay
