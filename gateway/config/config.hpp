// Gateway settings (conf/switchyard.toml). Every field has the default that
// applies when the file leaves it out; conf/switchyard.toml documents each one.
#pragma once

#include "gateway/config/routes.hpp"

#include <tl/expected.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace switchyard::gateway::config {

enum class tls_profile { none, modern, legacy };
std::string_view to_string(tls_profile p);

enum class log_level { trace, debug, info, warn, error };
std::string_view to_string(log_level l);

// One listening socket. `kind` is the table name in [listeners.<kind>].
struct listener {
    std::string kind;             // "msnp", "ws", "https", "admin" or "link"
    bool enabled = true;
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;       // 0 = any free port (tests)
    tls_profile tls = tls_profile::none;
    // msnp: host:port handed to MSNP clients in XFR SB and RNG; empty =
    // address:port. https: host or host:port of the login service named in
    // the Passport nexus reply (DALogin); empty = the Host the client sent
    // to the nexus, allowed only on a loopback address (parse_settings
    // refuses it elsewhere: a forged Host would pick where passwords go).
    std::string public_endpoint;
    // msnp: record every session as a transcript in this directory, one
    // file per connection (gateway/ops/capture.hpp); empty = off.
    std::filesystem::path capture_dir;
    // ws: the named rooms WebSocket clients may join by name; no other name
    // (and no room id a client makes up) can be created.
    std::vector<std::string> rooms;
    // ws: negotiate permessage-deflate (RFC 7692) with clients that offer
    // it. Off by default: each connection that uses it keeps compression
    // state (gateway/session/connections.cpp says how much).
    bool permessage_deflate = false;
    // link: the backend this listener lets other gateways reach (an embedded
    // one), and how long the endpoints a gateway registered outlive its last
    // sign of life.
    std::string backend = "embedded";
    std::chrono::milliseconds lease{15000};
    // admin: host names a request's Host may give besides IP addresses and
    // localhost (others are refused: DNS rebinding), and a file holding the
    // bearer token every route but /healthz then needs (empty: none).
    std::vector<std::string> hosts;
    std::filesystem::path token_file;
};

struct tls_settings {
    std::filesystem::path certificate;  // PEM chain
    std::filesystem::path private_key;  // PEM key
};

struct limits {
    std::size_t line_bytes = 8192;           // one MSNP command line
    std::size_t payload_bytes = 65536;       // one MSNP NS payload / WebSocket message
    std::size_t frame_bytes = 1 << 20;       // one encoded frame on a backend link
    std::size_t name_bytes = 387;            // display names (129 characters x 3, MSNP)
    std::size_t message_bytes = 16384;       // one chat message's text
    std::uint32_t commands_per_second = 50;  // per connection, with a burst of twice that
    // Switchboard MSGs are metered by size instead (at least 1 KiB each),
    // per connection, with a burst of twice that.
    std::uint32_t relay_bytes_per_second = 1 << 20;
    std::chrono::seconds idle_timeout{300};  // no bytes from the client for this long
    std::chrono::seconds handshake_timeout{30};
    std::size_t write_queue_bytes = 1 << 20; // then the connection is closed
    // Open connections on the public listeners (the admin listener is
    // never counted or refused): in all, 0 for the descriptor limit less a
    // reserve, and from one address. A connection over either is closed
    // at once, before a byte is read.
    std::size_t max_connections = 0;
    std::size_t max_connections_per_address = 256;
};

// An HMAC key for self-verifying tokens; the first key signs, all verify.
struct hmac_key {
    std::string id;
    std::string secret;  // raw bytes (decoded from base64 in the file)
};

enum class backend_kind { embedded, link };
std::string_view to_string(backend_kind k);

enum class durability { full, normal };
std::string_view to_string(durability d);

struct backend {
    std::string name;
    backend_kind kind = backend_kind::embedded;
    // Embedded backend settings.
    std::chrono::milliseconds hibernate_after{10000};  // idle objects leave memory
    durability sync = durability::full;  // full: commits survive power loss; normal: a killed process
    unsigned shards = 0;                 // object threads; 0 = one per core
    std::size_t max_list_entries = 1000; // per contact list (FL, AL, BL)
    std::size_t max_groups = 100;
    std::size_t max_room_members = 1000; // endpoints joined to one room
    bool named_rooms_open = true;        // anyone signed in may join a named room
    // How long a WebSocket client whose connection dropped keeps its place
    // in its rooms (a resume within it continues unseen by the others); 0: none.
    std::chrono::milliseconds rejoin_grace{60000};
    // Link backend settings: the [listeners.link] of the process that holds
    // the objects.
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
};

// Accounts of the embedded backend (`switchyard user ...`): the password
// policy, and the scrypt cost of newly set passwords. Each stored hash keeps
// the parameters it was made with, so raising the cost leaves old passwords
// working.
struct accounts_settings {
    std::size_t min_password_length = 8;   // bytes
    std::size_t max_password_length = 128;
    std::uint64_t scrypt_n = 1u << 17;     // a power of two; memory per hash is 128 * n * r bytes
    std::uint32_t scrypt_r = 8;
    std::uint32_t scrypt_p = 1;
    // Password checks of the HTTPS login services running at once, each on
    // a thread of its own and taking 128 * scrypt_n * scrypt_r bytes.
    unsigned max_concurrent_logins = 2;
    // Password guessing (MD5, Passport, WebSocket logins alike): after
    // login_failures_free failures of one handle from one address, or
    // login_failures_free_per_address from one address whatever the
    // handles, the next attempt waits login_failure_delay, doubled after
    // each further failure up to login_failure_max_delay, and is refused
    // (MSNP 911, HTTP 429 with Retry-After) before then. Failures are
    // forgotten an hour after the last one. An address that signed in to an
    // account is not held back by the failures others cause from it.
    std::uint32_t login_failures_free = 3;
    std::uint32_t login_failures_free_per_address = 10;
    std::chrono::milliseconds login_failure_delay{1000};
    std::chrono::milliseconds login_failure_max_delay{std::chrono::minutes(15)};
    // Password checks one address may have running or waiting at once.
    unsigned logins_per_address = 4;
};

struct settings {
    std::filesystem::path file;        // the file these settings came from
    std::filesystem::path data_dir;    // absolute after loading
    std::filesystem::path routes_file; // absolute after loading
    log_level log = log_level::info;
    std::string gateway_name;          // this gateway on backend links; empty = the host name
    unsigned threads = 0;              // 0 = one per core
    std::chrono::milliseconds shutdown_timeout{10000};
    std::vector<listener> listeners;   // always msnp, ws, https, admin, link in that order
    std::map<std::string, tls_settings, std::less<>> tls;  // "modern", "legacy"
    limits lim;
    std::vector<hmac_key> keys;        // empty = generated into data_dir on first start
    std::vector<backend> backends;
    accounts_settings accounts;

    const listener* find_listener(std::string_view kind) const;
    const backend* find_backend(std::string_view name) const;
};

// Whether `text` may stand for the login host in the Passport nexus reply
// (DALogin, msnp-reference section 3.3): "host" or "host:port", in the
// characters of names and addresses only, since it sits in a comma-separated
// header value.
bool is_login_host(std::string_view text);

// What is valid but risky in these settings, one sentence each: `switchyard
// check` prints them and `switchyard run` logs them.
std::vector<std::string> warnings(const settings& s);

// Parses a gateway settings file. Relative paths inside it are resolved
// against the file's own directory.
tl::expected<settings, error> load_settings(const std::filesystem::path& file);
tl::expected<settings, error> parse_settings(std::string_view text, const std::filesystem::path& file);

}  // namespace switchyard::gateway::config
