// Replays the client side of a transcript against a live MSNP server over
// plain sockets (poll), and checks what the server sends back.
#pragma once

#include "tools/replay/transcript.hpp"

#include <chrono>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

namespace switchyard::replay {

struct run_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1863;
    // Pacing: 0 = as fast as possible; otherwise client lines wait until
    // their recorded time multiplied by this factor (1 = as captured).
    double pace = 0;
    // Loose: only what the client waits for is checked (replies to its own
    // commands, by command and transaction id, and lines it captures values
    // from); other server lines and extra lines are ignored.
    bool loose = false;
    std::chrono::milliseconds timeout{5000};
    // Once a line of the expected command has arrived and does not match,
    // how long to wait for a better one before reporting it.
    std::chrono::milliseconds grace{300};
    // Passport: the nexus (https://host:port/rdr/pprdr.asp), or the login
    // URL itself (https://host:port/login2.srf), and how to trust it.
    std::string nexus_url;
    std::string login_url;
    std::string ca_file;
    bool insecure = false;
    // Tickets from elsewhere (a test with the server's key): overrides the nexus.
    std::function<std::string(const std::string& handle)> ticket;
    // For handles without a password (no Passport login possible): a
    // program run as `COMMAND HANDLE` that prints a ticket, for servers
    // whose operators can mint them.
    std::string ticket_command;
    // Passwords by handle (@user lines and the mapping file).
    std::map<std::string, std::string> passwords;
    std::ostream* progress = nullptr;  // progress lines for long traces
};

struct failure {
    std::string kind;       // mismatch, timeout, closed, unexpected, connect, login, input
    std::string place;      // file:line and connection
    std::string expected;
    std::string actual;
    std::string detail;
};

struct run_result {
    bool passed() const { return failures.empty(); }
    std::vector<failure> failures;
    std::size_t steps = 0;          // steps done
    // Reply latency in milliseconds per client command (send to first
    // server line with its transaction id).
    std::map<std::string, std::vector<double>> latency;
};

run_result run(const transcript& t, const run_options& options);

std::string describe(const failure& f);

// Reads a mapping file: "HANDLE PASSWORD [NEW-HANDLE]" per line, # comments.
std::optional<parse_error> read_mapping(const std::string& path, std::map<std::string, std::string>& passwords,
                                        std::map<std::string, std::string>& renames);

// Prepends a login for every NS connection of a trace that starts
// mid-session (no VER in it), in the trace's dialect, with the accounts
// given; contacts the trace names on an NS connection are added to the
// forward and allow lists first. Returns how many connections got one.
int add_login_prelude(transcript& t, const std::map<std::string, std::string>& passwords);

std::string md5_hex(std::string_view text);

}  // namespace switchyard::replay
