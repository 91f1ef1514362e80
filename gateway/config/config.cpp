#include "gateway/config/config.hpp"

#include "gateway/config/toml_util.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <span>

namespace switchyard::gateway::config {

namespace {

using namespace std::string_view_literals;
using namespace std::chrono_literals;

// Enum names in enum order (detail::reader::get maps an index to the enum).
constexpr std::array<std::string_view, 3> tls_profile_names{"none", "modern", "legacy"};
constexpr std::array<std::string_view, 5> log_level_names{"trace", "debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 2> backend_kind_names{"embedded", "link"};

constexpr std::array top_level_keys{"gateway"sv, "listeners"sv, "tls"sv, "limits"sv, "keys"sv, "backends"sv,
                                    "accounts"sv};
constexpr std::array gateway_keys{"data_dir"sv,         "routes_file"sv, "threads"sv,
                                  "shutdown_timeout"sv, "log_level"sv,   "name"sv};
constexpr std::array listener_kinds{"msnp"sv, "ws"sv, "https"sv, "admin"sv, "link"sv};
constexpr std::array listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv};
constexpr std::array ws_listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv, "rooms"sv, "permessage_deflate"sv};
// The listeners whose address clients are told: msnp (XFR, RNG) and https (the nexus reply).
constexpr std::array public_listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv, "public_endpoint"sv};
constexpr std::array admin_listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv, "hosts"sv, "token_file"sv};
constexpr std::array msnp_listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv, "public_endpoint"sv, "capture_dir"sv};
constexpr std::array link_listener_keys{"enabled"sv, "address"sv, "port"sv, "tls"sv, "backend"sv, "lease"sv};
constexpr std::array tls_table_names{"modern"sv, "legacy"sv};
constexpr std::array tls_keys{"certificate"sv, "private_key"sv};
constexpr std::array limits_keys{"line_bytes"sv, "payload_bytes"sv, "frame_bytes"sv,
                                 "name_bytes"sv, "message_bytes"sv, "commands_per_second"sv, "relay_bytes_per_second"sv,
                                 "idle_timeout"sv, "handshake_timeout"sv, "write_queue_bytes"sv,
                                 "max_connections"sv, "max_connections_per_address"sv};
constexpr std::array hmac_key_keys{"id"sv, "secret"sv};
constexpr std::array backend_keys{"kind"sv,           "hibernate_after"sv,  "durability"sv,
                                  "shards"sv,         "max_list_entries"sv, "max_groups"sv,
                                  "max_room_members"sv, "named_rooms_open"sv, "rejoin_grace"sv};
constexpr std::array link_backend_keys{"kind"sv, "address"sv, "port"sv};
constexpr std::array<std::string_view, 2> durability_names{"full", "normal"};
constexpr std::array accounts_keys{"min_password_length"sv, "max_password_length"sv, "scrypt_n"sv, "scrypt_r"sv,
                                   "scrypt_p"sv, "max_concurrent_logins"sv, "login_failures_free"sv,
                                   "login_failures_free_per_address"sv, "login_failure_delay"sv,
                                   "login_failure_max_delay"sv, "logins_per_address"sv};

// More threads than this is a typo, not a machine.
constexpr unsigned max_threads = 1024;
constexpr std::size_t min_secret_bytes = 32;
constexpr std::size_t max_key_id_bytes = 32;
// Every login hashes with these parameters, so one hash may not take more
// memory than this: a typo in scrypt_n must not exhaust the machine.
constexpr std::uint64_t max_scrypt_memory = std::uint64_t{1} << 30;
// Each concurrent login may hold max_scrypt_memory; more is a typo.
constexpr unsigned max_concurrent_logins = 64;

listener default_listener(std::string_view kind, std::uint16_t port) {
    listener l;
    l.kind = kind;
    l.port = port;
    return l;
}

std::vector<listener> default_listeners() {
    auto https = default_listener("https", 8443);
    // It needs certificate files, so it stays off until configured.
    https.enabled = false;
    https.tls = tls_profile::legacy;
    // Other gateways reach this process's objects through it: off unless
    // this process is meant to be a backend node.
    auto link = default_listener("link", 1864);
    link.enabled = false;
    return {default_listener("msnp", 1863), default_listener("ws", 8080), std::move(https),
            default_listener("admin", 9090), std::move(link)};
}

struct ip_address {
    int family = 0;
    std::array<unsigned char, 16> bytes{};
};

std::optional<ip_address> parse_ip(const std::string& text) {
    ip_address a;
    if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1) {
        a.family = AF_INET;
    } else if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1) {
        a.family = AF_INET6;
    } else {
        return std::nullopt;
    }
    return a;
}

// 127.0.0.0/8 and ::1: only this machine reaches such a listener.
bool is_loopback(const ip_address& a) {
    if (a.family == AF_INET) return a.bytes[0] == 127;
    return std::all_of(a.bytes.begin(), a.bytes.begin() + 15, [](unsigned char b) { return b == 0; }) &&
           a.bytes[15] == 1;
}

bool is_wildcard(const ip_address& a) {
    return std::ranges::all_of(a.bytes, [](unsigned char b) { return b == 0; });
}

// Whether two sockets on these addresses and one port would collide. The IPv6
// wildcard also accepts IPv4 (Linux's default net.ipv6.bindv6only = 0).
bool overlap(const ip_address& a, const ip_address& b) {
    if ((a.family == AF_INET6 && is_wildcard(a)) || (b.family == AF_INET6 && is_wildcard(b))) return true;
    return a.family == b.family && (a.bytes == b.bytes || is_wildcard(a) || is_wildcard(b));
}

std::string endpoint(const listener& l) {
    const bool v6 = l.address.find(':') != std::string::npos;
    return (v6 ? "[" + l.address + "]" : l.address) + ":" + std::to_string(l.port);
}

// "host:port" or "[v6]:port", with a port from 1 to 65535.
bool is_host_port(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    auto host = text.substr(0, colon);
    if (host.front() == '[' ? host.size() < 3 || host.back() != ']' : host.find(':') != std::string_view::npos) {
        return false;
    }
    auto port = text.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    return ec == std::errc() && end == port.data() + port.size() && value >= 1 && value <= 65535;
}

// Key ids travel inside tokens, so they stay clear of any separator.
bool is_key_id(std::string_view id) {
    return !id.empty() && id.size() <= max_key_id_bytes && std::ranges::all_of(id, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& path) {
    return (base / path).lexically_normal();
}

// Where to point at `key` of an optional table: the key, else the table's
// header, else the top of the file.
toml::source_region position(const toml::table& root, const toml::table* t, std::string_view key) {
    if (!t) return root.source();
    if (const auto* node = t->get(key)) return node->source();
    return t->source();
}

bool is_gateway_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::ranges::all_of(name, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

void read_gateway(detail::reader& r, const toml::table& root, const std::filesystem::path& base, settings& s) {
    std::string data_dir = "data";
    std::string routes_file = "routes.toml";
    if (const auto* t = r.get_table(root, "gateway")) {
        r.check_keys(*t, "in [gateway]", gateway_keys);
        r.get_nonempty(*t, "data_dir", data_dir);
        r.get_nonempty(*t, "routes_file", routes_file);
        r.get(*t, "threads", s.threads, 0u, max_threads);
        r.get(*t, "shutdown_timeout", s.shutdown_timeout, 0ms);
        r.get(*t, "log_level", s.log, log_level_names);
        if (r.get(*t, "name", s.gateway_name) && !s.gateway_name.empty() && !is_gateway_name(s.gateway_name)) {
            r.fail(t->get("name")->source(),
                   "expected 1 to 64 letters, digits, '-', '_' or '.' for name, found \"" + s.gateway_name + "\"");
        }
    }
    s.data_dir = resolve(base, data_dir);
    s.routes_file = resolve(base, routes_file);
}

// A room name as WebSocket clients give it: 1 to 64 of a-z 0-9 - _ .
bool is_room_name(std::string_view name) {
    return !name.empty() && name.size() <= 64 && std::ranges::all_of(name, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
}

void read_room_names(detail::reader& r, const toml::node& value, std::vector<std::string>& out) {
    const auto* list = value.as_array();
    if (!list) {
        r.fail(value.source(), "expected an array of room names for rooms");
        return;
    }
    for (const toml::node& item : *list) {
        const auto* name = item.as_string();
        if (!name || !is_room_name(name->get())) {
            r.fail(item.source(), "expected a room name (1 to 64 of a-z 0-9 - _ .) in rooms");
            return;
        }
        if (std::ranges::find(out, name->get()) == out.end()) out.push_back(name->get());
    }
}

void read_host_names(detail::reader& r, const toml::node& value, std::vector<std::string>& out) {
    const auto* list = value.as_array();
    if (!list) {
        r.fail(value.source(), "expected an array of host names for hosts");
        return;
    }
    for (const toml::node& item : *list) {
        const auto* name = item.as_string();
        if (!name || !is_login_host(name->get()) || name->get().find(':') != std::string::npos) {
            r.fail(item.source(), "expected a host name without a port (letters, digits, . and -) in hosts");
            return;
        }
        out.push_back(name->get());
    }
}

void read_listener(detail::reader& r, const toml::table& t, const std::filesystem::path& base, listener& l) {
    const std::string where = "in [listeners." + l.kind + "]";
    const bool msnp = l.kind == "msnp";
    const bool https = l.kind == "https";
    r.check_keys(t, where,
                 msnp                 ? std::span<const std::string_view>(msnp_listener_keys)
                 : https              ? std::span<const std::string_view>(public_listener_keys)
                 : l.kind == "ws"     ? std::span<const std::string_view>(ws_listener_keys)
                 : l.kind == "link"   ? std::span<const std::string_view>(link_listener_keys)
                 : l.kind == "admin"  ? std::span<const std::string_view>(admin_listener_keys)
                                      : std::span<const std::string_view>(listener_keys));
    r.get(t, "enabled", l.enabled);
    if (r.get_nonempty(t, "address", l.address) && !parse_ip(l.address)) {
        r.fail(t.get("address")->source(), "expected an IP address for address, found \"" + l.address + "\"");
    }
    r.get(t, "port", l.port, std::uint16_t{0});
    r.get(t, "tls", l.tls, tls_profile_names);
    if (std::string dir; msnp && r.get(t, "capture_dir", dir) && !dir.empty()) l.capture_dir = resolve(base, dir);
    if (msnp && r.get(t, "public_endpoint", l.public_endpoint) && !l.public_endpoint.empty() &&
        !is_host_port(l.public_endpoint)) {
        r.fail(t.get("public_endpoint")->source(),
               "expected host:port for public_endpoint, found \"" + l.public_endpoint + "\"");
    }
    if (l.kind == "ws") {
        if (l.tls == tls_profile::legacy) {
            r.fail(t.get("tls")->source(),
                   "tls = \"legacy\" is for old Messenger clients' Passport login ([listeners.https]); "
                   "expected \"none\" or \"modern\" for [listeners.ws]");
        }
        if (const toml::node* rooms = t.get("rooms")) read_room_names(r, *rooms, l.rooms);
        r.get(t, "permessage_deflate", l.permessage_deflate);
    }
    if (l.kind == "admin") {
        if (const toml::node* hosts = t.get("hosts")) read_host_names(r, *hosts, l.hosts);
        std::string token_file;
        if (r.get_nonempty(t, "token_file", token_file)) l.token_file = resolve(base, token_file);
    }
    if (l.kind == "link") {
        if (l.tls != tls_profile::none) {
            r.fail(t.get("tls")->source(), "expected tls = \"none\" for [listeners.link]: backend links are for "
                                           "a private network");
        }
        r.get_nonempty(t, "backend", l.backend);
        r.get(t, "lease", l.lease, 100ms);
    }
    if (https && r.get(t, "public_endpoint", l.public_endpoint) && !l.public_endpoint.empty() &&
        !is_login_host(l.public_endpoint)) {
        r.fail(t.get("public_endpoint")->source(),
               "expected host or host:port for public_endpoint, found \"" + l.public_endpoint + "\"");
    }
}

// The listener tables as written (nullptr where absent), for positions in later checks.
using listener_tables = std::array<const toml::table*, listener_kinds.size()>;

listener_tables read_listeners(detail::reader& r, const toml::table& root, const std::filesystem::path& base,
                               settings& s) {
    s.listeners = default_listeners();
    listener_tables tables{};
    const auto* all = r.get_table(root, "listeners");
    if (!all) return tables;
    r.check_keys(*all, "in [listeners]", listener_kinds);
    for (std::size_t i = 0; i < listener_kinds.size(); ++i) {
        tables[i] = r.get_table(*all, listener_kinds[i]);
        if (tables[i]) read_listener(r, *tables[i], base, s.listeners[i]);
    }
    return tables;
}

void read_tls(detail::reader& r, const toml::table& root, const std::filesystem::path& base, settings& s) {
    const auto* all = r.get_table(root, "tls");
    if (!all) return;
    r.check_keys(*all, "in [tls]", tls_table_names);
    for (auto name : tls_table_names) {
        const auto* t = r.get_table(*all, name);
        if (!t) continue;
        const std::string where = "in [tls." + std::string(name) + "]";
        r.check_keys(*t, where, tls_keys);
        tls_settings tls;
        std::string path;
        if (r.require(*t, where, "certificate") && r.get_nonempty(*t, "certificate", path)) {
            tls.certificate = resolve(base, path);
        }
        if (r.require(*t, where, "private_key") && r.get_nonempty(*t, "private_key", path)) {
            tls.private_key = resolve(base, path);
        }
        s.tls.emplace(name, std::move(tls));
    }
}

void read_limits(detail::reader& r, const toml::table& root, limits& lim) {
    const auto* t = r.get_table(root, "limits");
    if (!t) return;
    r.check_keys(*t, "in [limits]", limits_keys);
    r.get(*t, "line_bytes", lim.line_bytes, std::size_t{1});
    r.get(*t, "payload_bytes", lim.payload_bytes, std::size_t{1});
    r.get(*t, "frame_bytes", lim.frame_bytes, std::size_t{1});
    r.get(*t, "name_bytes", lim.name_bytes, std::size_t{1});
    r.get(*t, "message_bytes", lim.message_bytes, std::size_t{1});
    r.get(*t, "commands_per_second", lim.commands_per_second, std::uint32_t{1});
    r.get(*t, "relay_bytes_per_second", lim.relay_bytes_per_second, std::uint32_t{1024});
    r.get(*t, "idle_timeout", lim.idle_timeout, 1s);
    r.get(*t, "handshake_timeout", lim.handshake_timeout, 1s);
    r.get(*t, "write_queue_bytes", lim.write_queue_bytes, std::size_t{1});
    r.get(*t, "max_connections", lim.max_connections, std::size_t{0});
    r.get(*t, "max_connections_per_address", lim.max_connections_per_address, std::size_t{1});
}

void read_keys(detail::reader& r, const toml::table& root, std::vector<hmac_key>& keys) {
    const auto* all = r.get_tables(root, "keys");
    if (!all) return;
    std::map<std::string, std::uint32_t, std::less<>> first_line;
    for (const auto& element : *all) {
        const auto& t = *element.as_table();
        r.check_keys(t, "in [[keys]]", hmac_key_keys);
        hmac_key key;
        if (r.require(t, "in [[keys]]", "id") && r.get(t, "id", key.id)) {
            const auto& at = t.get("id")->source();
            if (!is_key_id(key.id)) {
                r.fail(at, "expected an id of 1 to " + std::to_string(max_key_id_bytes) +
                               " letters, digits, '-' or '_', found \"" + key.id + "\"");
            } else if (auto [it, added] = first_line.emplace(key.id, at.begin.line); !added) {
                r.fail(at, "duplicate key id \"" + key.id + "\" (first at line " + std::to_string(it->second) +
                               "); expected unique ids");
            }
        }
        if (r.require(t, "in [[keys]]", "secret") && r.get_base64(t, "secret", key.secret) &&
            key.secret.size() < min_secret_bytes) {
            r.fail(t.get("secret")->source(), "expected at least " + std::to_string(min_secret_bytes) +
                                                  " bytes after base64 decoding for secret, found " +
                                                  std::to_string(key.secret.size()));
        }
        keys.push_back(std::move(key));
    }
}

void read_backends(detail::reader& r, const toml::table& root, std::vector<backend>& backends) {
    const auto* all = r.get_table(root, "backends");
    if (!all) {
        backends.emplace_back().name = "embedded";
        return;
    }
    if (all->empty()) {
        r.fail(all->source(), "expected at least one backend in [backends], such as [backends.embedded]");
        return;
    }
    for (auto&& [name, value] : *all) {
        if (name.str().empty()) {
            r.fail(name.source(), "expected a non-empty backend name");
            continue;
        }
        const auto* t = r.as_table(name.str(), value);
        if (!t) continue;
        const std::string where = "in [backends." + std::string(name.str()) + "]";
        backend b;
        b.name = name.str();
        std::string kind;
        if (r.require(*t, where, "kind") && r.get(*t, "kind", kind)) {
            const auto* known = std::ranges::find(backend_kind_names, kind);
            if (known == backend_kind_names.end()) {
                r.fail(t->get("kind")->source(), "backend kind \"" + kind +
                                                     "\" is not available in this build; expected: " +
                                                     detail::join(backend_kind_names));
            } else {
                b.kind = static_cast<backend_kind>(known - backend_kind_names.begin());
            }
        }
        if (b.kind == backend_kind::link) {
            r.check_keys(*t, where, link_backend_keys);
            if (r.get_nonempty(*t, "address", b.address) && !parse_ip(b.address)) {
                r.fail(t->get("address")->source(), "expected an IP address for address, found \"" + b.address + "\"");
            }
            if (r.require(*t, where, "port")) r.get(*t, "port", b.port, std::uint16_t{1});
            backends.push_back(std::move(b));
            continue;
        }
        r.check_keys(*t, where, backend_keys);
        r.get(*t, "hibernate_after", b.hibernate_after, 1ms);
        r.get(*t, "durability", b.sync, durability_names);
        r.get(*t, "shards", b.shards, 0u, max_threads);
        r.get(*t, "max_list_entries", b.max_list_entries, std::size_t{1});
        r.get(*t, "max_groups", b.max_groups, std::size_t{1});
        r.get(*t, "max_room_members", b.max_room_members, std::size_t{1});
        r.get(*t, "named_rooms_open", b.named_rooms_open);
        r.get(*t, "rejoin_grace", b.rejoin_grace, 0ms);
        backends.push_back(std::move(b));
    }
}

void read_accounts(detail::reader& r, const toml::table& root, accounts_settings& a) {
    const auto* t = r.get_table(root, "accounts");
    if (!t) return;
    r.check_keys(*t, "in [accounts]", accounts_keys);
    r.get(*t, "min_password_length", a.min_password_length, std::size_t{1});
    r.get(*t, "max_password_length", a.max_password_length, std::size_t{1});
    r.get(*t, "scrypt_n", a.scrypt_n, std::uint64_t{1024});
    r.get(*t, "scrypt_r", a.scrypt_r, std::uint32_t{1}, std::uint32_t{64});
    r.get(*t, "scrypt_p", a.scrypt_p, std::uint32_t{1}, std::uint32_t{16});
    r.get(*t, "max_concurrent_logins", a.max_concurrent_logins, 1u, max_concurrent_logins);
    r.get(*t, "login_failures_free", a.login_failures_free, std::uint32_t{1});
    r.get(*t, "login_failures_free_per_address", a.login_failures_free_per_address, std::uint32_t{1});
    r.get(*t, "login_failure_delay", a.login_failure_delay, 1ms);
    r.get(*t, "login_failure_max_delay", a.login_failure_max_delay, 1ms);
    r.get(*t, "logins_per_address", a.logins_per_address, 1u);

    // The cost checks point at scrypt_n, or at scrypt_r when n is the default.
    const auto cost_at = position(root, t, t->contains("scrypt_n") ? "scrypt_n" : "scrypt_r");
    const std::string n = std::to_string(a.scrypt_n);
    const std::string with_r = " with scrypt_r = " + std::to_string(a.scrypt_r);
    if (!std::has_single_bit(a.scrypt_n)) {
        r.fail(cost_at, "expected a power of two (1024, 2048, 4096, ...) for scrypt_n, found " + n);
    } else if (a.scrypt_r == 1 && a.scrypt_n >= (std::uint64_t{1} << 16)) {
        // RFC 7914 section 2: N < 2^(128 * r / 8). Below the memory limit
        // only r = 1 can break it.
        r.fail(cost_at, "expected scrypt_n below 65536" + with_r + " (RFC 7914), found " + n);
    } else if (a.scrypt_n > max_scrypt_memory / (128 * std::uint64_t{a.scrypt_r})) {
        // Failing here means n > 2^17, so n >> 13 is exact: 128 * n * r / 2^20.
        r.fail(cost_at, "scrypt_n = " + n + with_r + " needs " + std::to_string((a.scrypt_n >> 13) * a.scrypt_r) +
                            " MiB per hash (128 * n * r bytes); expected at most " +
                            std::to_string(max_scrypt_memory >> 20) + " MiB");
    }
    if (a.min_password_length > a.max_password_length) {
        const auto* key = t->contains("max_password_length") ? "max_password_length" : "min_password_length";
        r.fail(position(root, t, key), "expected min_password_length (" + std::to_string(a.min_password_length) +
                                           ") to be at most max_password_length (" +
                                           std::to_string(a.max_password_length) + ")");
    }
}

// Listeners set SO_REUSEPORT, so two of them on one port would not fail to
// bind: they would silently share connections. Only this check catches it.
void check_ports(detail::reader& r, const toml::table& root, const listener_tables& tables, const settings& s) {
    for (std::size_t i = 0; i < s.listeners.size(); ++i) {
        const auto& b = s.listeners[i];
        if (!b.enabled || b.port == 0) continue;
        for (std::size_t j = 0; j < i; ++j) {
            const auto& a = s.listeners[j];
            if (!a.enabled || a.port != b.port || !overlap(*parse_ip(a.address), *parse_ip(b.address))) continue;
            // Point at an explicit port: the later listener's if it has one.
            const bool later_explicit = tables[i] && tables[i]->contains("port");
            const auto where = later_explicit ? position(root, tables[i], "port") : position(root, tables[j], "port");
            const std::string first = "[listeners." + a.kind + "]";
            const std::string second = "[listeners." + b.kind + "]";
            r.fail(where, a.address == b.address
                              ? first + " and " + second + " both listen on " + endpoint(b) +
                                    "; expected different ports"
                              : first + " on " + endpoint(a) + " overlaps " + second + " on " + endpoint(b) +
                                    "; expected different ports");
            return;
        }
    }
}

// A backend node serves one of its own embedded backends; serving a link
// backend again would chain gateways, which leases do not cover.
void check_link_listener(detail::reader& r, const toml::table& root, const listener_tables& tables,
                         const settings& s) {
    const std::size_t i = s.listeners.size() - 1;
    const listener& l = s.listeners[i];
    if (!l.enabled) return;
    const backend* b = s.find_backend(l.backend);
    if (b == nullptr) {
        r.fail(position(root, tables[i], "backend"),
               "[listeners.link] serves backend \"" + l.backend + "\", which is not in [backends]");
    } else if (b->kind != backend_kind::embedded) {
        r.fail(position(root, tables[i], "backend"), "[listeners.link] serves backend \"" + l.backend +
                                                         "\" of kind \"" + std::string(to_string(b->kind)) +
                                                         "\"; expected an embedded one");
    }
}

// A TLS profile's files are only needed once an enabled listener uses it.
void check_tls_profiles(detail::reader& r, const toml::table& root, const listener_tables& tables,
                        const settings& s) {
    for (std::size_t i = 0; i < s.listeners.size(); ++i) {
        const auto& l = s.listeners[i];
        if (!l.enabled || l.tls == tls_profile::none) continue;
        const auto profile = std::string(to_string(l.tls));
        if (s.tls.contains(profile)) continue;
        r.fail(position(root, tables[i], "tls"), "[listeners." + l.kind + "] uses tls = \"" + profile +
                                                     "\"; expected a [tls." + profile +
                                                     "] table with certificate and private_key");
        return;
    }
}

// Without public_endpoint the nexus names the host from the request's own
// Host header in DALogin. On a listener others can reach, that lets whoever
// controls what a client sends (a proxy, a hostile DNS name pointing at this
// server, a cache keyed without Host) make the reply send the password to a
// host of their choosing; only this machine's clients may use the fallback.
void check_login_endpoint(detail::reader& r, const toml::table& root, const listener_tables& tables,
                          const settings& s) {
    constexpr std::size_t i = 2;  // https: listeners are always in listener_kinds order
    const listener& l = s.listeners[i];
    if (!l.enabled || !l.public_endpoint.empty() || is_loopback(*parse_ip(l.address))) return;
    r.fail(position(root, tables[i], tables[i] && tables[i]->contains("address") ? "address" : "enabled"),
           "[listeners.https] listens on " + endpoint(l) +
               ", which other machines reach; expected public_endpoint (the host[:port] clients reach the login "
               "service at): without it the Passport nexus would repeat whatever Host a request names");
}

}  // namespace

std::string_view to_string(tls_profile p) {
    return tls_profile_names[static_cast<std::size_t>(p)];
}

std::string_view to_string(log_level l) {
    return log_level_names[static_cast<std::size_t>(l)];
}

std::string_view to_string(durability d) { return durability_names[static_cast<std::size_t>(d)]; }

std::string_view to_string(backend_kind k) {
    return backend_kind_names[static_cast<std::size_t>(k)];
}

std::vector<std::string> warnings(const settings& s) {
    std::vector<std::string> out;
    const listener* admin = s.find_listener("admin");
    if (admin != nullptr && admin->enabled && admin->token_file.empty()) {
        const auto a = parse_ip(admin->address);
        const bool loopback = a && ((a->family == AF_INET && a->bytes[0] == 127) ||
                                    (a->family == AF_INET6 && std::ranges::all_of(a->bytes.begin(), a->bytes.end() - 1,
                                                                                  [](unsigned char b) { return b == 0; }) &&
                                     a->bytes[15] == 1));
        if (!loopback) {
            out.push_back("[listeners.admin] listens on " + admin->address +
                          " without token_file: anyone who reaches it can read the metrics and reload the routes");
        }
    }
    return out;
}

bool is_login_host(std::string_view text) {
    const bool name_chars = !text.empty() && std::ranges::all_of(text, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
               c == ':' || c == '[' || c == ']';
    });
    if (!name_chars) return false;
    if (text.front() == '[' && text.back() == ']') return text.size() > 2;
    return text.find(':') == std::string_view::npos || is_host_port(text);
}

const listener* settings::find_listener(std::string_view kind) const {
    auto it = std::ranges::find(listeners, kind, &listener::kind);
    return it == listeners.end() ? nullptr : &*it;
}

const backend* settings::find_backend(std::string_view name) const {
    auto it = std::ranges::find(backends, name, &backend::name);
    return it == backends.end() ? nullptr : &*it;
}

tl::expected<settings, error> parse_settings(std::string_view text, const std::filesystem::path& file) {
    auto doc = detail::parse_toml(text, file);
    if (!doc) return tl::unexpected(doc.error());

    // Text with no directory in its name resolves against the working directory.
    std::error_code ec;
    const auto dir = file.parent_path().empty() ? std::filesystem::path(".") : file.parent_path();
    const auto base = std::filesystem::absolute(dir, ec);
    if (ec) return tl::unexpected(error{file.string(), 0, 0, "cannot resolve the file's directory: " + ec.message()});

    settings s;
    s.file = file;
    detail::reader r(file.string());
    const auto& root = *doc;
    r.check_keys(root, "at the top level", top_level_keys);
    read_gateway(r, root, base, s);
    const auto tables = read_listeners(r, root, base, s);
    read_tls(r, root, base, s);
    read_limits(r, root, s.lim);
    read_keys(r, root, s.keys);
    read_backends(r, root, s.backends);
    read_accounts(r, root, s.accounts);
    // The cross-checks assume every value above parsed.
    if (r.ok()) check_ports(r, root, tables, s);
    if (r.ok()) check_tls_profiles(r, root, tables, s);
    if (r.ok()) check_link_listener(r, root, tables, s);
    if (r.ok()) check_login_endpoint(r, root, tables, s);
    if (!r.ok()) return tl::unexpected(r.failure());
    return s;
}

tl::expected<settings, error> load_settings(const std::filesystem::path& file) {
    auto text = detail::read_file(file);
    if (!text) return tl::unexpected(text.error());
    return parse_settings(*text, file);
}

}  // namespace switchyard::gateway::config
