#include "gateway/config/config.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <string>

namespace config = switchyard::gateway::config;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

const fs::path source_dir = SWITCHYARD_SOURCE_DIR;
const fs::path fixtures_dir = SWITCHYARD_FIXTURES_DIR;
const std::vector<std::string> backends{"embedded", "edge"};

const std::string secret_32 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";  // "0123456789abcdef" twice

std::string settings_error(std::string_view text) {
    auto s = config::parse_settings(text, "test.toml");
    REQUIRE_FALSE(s.has_value());
    return s.error().to_string();
}

std::string routes_error(std::string_view text) {
    auto t = config::parse_routes(text, "test.toml", backends);
    REQUIRE_FALSE(t.has_value());
    return t.error().to_string();
}

config::settings settings_ok(std::string_view text, const fs::path& file = "/etc/switchyard/test.toml") {
    auto s = config::parse_settings(text, file);
    INFO((s ? "" : s.error().to_string()));
    REQUIRE(s.has_value());
    return *s;
}

config::route_table routes_ok(std::string_view text) {
    auto t = config::parse_routes(text, "test.toml", backends);
    INFO((t ? "" : t.error().to_string()));
    REQUIRE(t.has_value());
    return *t;
}

std::string read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("the shipped configuration loads", "[config]") {
    auto s = config::load_settings(source_dir / "conf/switchyard.toml");
    INFO((s ? "" : s.error().to_string()));
    REQUIRE(s.has_value());
    CHECK(s->data_dir == source_dir / "conf/data");
    CHECK(s->routes_file == source_dir / "conf/routes.toml");

    std::vector<std::string> names;
    for (const auto& b : s->backends) names.push_back(b.name);
    auto routes = config::load_routes(s->routes_file, names);
    INFO((routes ? "" : routes.error().to_string()));
    REQUIRE(routes.has_value());
    CHECK(routes->default_backend == "embedded");
    CHECK(routes->version == 0);
    CHECK(routes->digest == config::parse_routes(read(s->routes_file), s->routes_file, names)->digest);
}

TEST_CASE("capture_dir is an MSNP listener's, relative to the settings file", "[config]") {
    const std::filesystem::path file = "/etc/switchyard/switchyard.toml";
    CHECK(settings_ok("", file).find_listener("msnp")->capture_dir.empty());
    CHECK(settings_ok("[listeners.msnp]\ncapture_dir = \"traces\"\n", file).find_listener("msnp")->capture_dir ==
          "/etc/switchyard/traces");
    CHECK(settings_error("[listeners.ws]\ncapture_dir = \"traces\"\n").starts_with("test.toml:2:1: unknown key \"capture_dir\""));
}

TEST_CASE("the shipped settings file spells out the defaults", "[config]") {
    const auto file = source_dir / "conf/switchyard.toml";
    const auto shipped = settings_ok(read(file), file);
    const auto defaults = settings_ok("", file);

    CHECK(shipped.data_dir == defaults.data_dir);
    CHECK(shipped.routes_file == defaults.routes_file);
    CHECK(shipped.log == defaults.log);
    CHECK(shipped.threads == defaults.threads);
    CHECK(shipped.shutdown_timeout == defaults.shutdown_timeout);
    REQUIRE(shipped.listeners.size() == defaults.listeners.size());
    for (std::size_t i = 0; i < shipped.listeners.size(); ++i) {
        const auto& a = shipped.listeners[i];
        const auto& b = defaults.listeners[i];
        INFO(a.kind);
        CHECK(a.kind == b.kind);
        CHECK(a.enabled == b.enabled);
        CHECK(a.address == b.address);
        CHECK(a.port == b.port);
        CHECK(a.tls == b.tls);
        CHECK(a.public_endpoint == b.public_endpoint);
        CHECK(a.capture_dir == b.capture_dir);
        CHECK(a.rooms == b.rooms);
        CHECK(a.permessage_deflate == b.permessage_deflate);
    }
    CHECK(shipped.tls.empty());
    CHECK(shipped.lim.line_bytes == defaults.lim.line_bytes);
    CHECK(shipped.lim.payload_bytes == defaults.lim.payload_bytes);
    CHECK(shipped.lim.frame_bytes == defaults.lim.frame_bytes);
    CHECK(shipped.lim.name_bytes == defaults.lim.name_bytes);
    CHECK(shipped.lim.message_bytes == defaults.lim.message_bytes);
    CHECK(shipped.lim.commands_per_second == defaults.lim.commands_per_second);
    CHECK(shipped.lim.idle_timeout == defaults.lim.idle_timeout);
    CHECK(shipped.lim.handshake_timeout == defaults.lim.handshake_timeout);
    CHECK(shipped.lim.write_queue_bytes == defaults.lim.write_queue_bytes);
    CHECK(shipped.keys.empty());
    REQUIRE(shipped.backends.size() == 1);
    CHECK(shipped.backends[0].name == defaults.backends[0].name);
    CHECK(shipped.backends[0].kind == defaults.backends[0].kind);
    CHECK(shipped.backends[0].hibernate_after == defaults.backends[0].hibernate_after);
    CHECK(shipped.backends[0].sync == defaults.backends[0].sync);
    CHECK(shipped.backends[0].shards == defaults.backends[0].shards);
    CHECK(shipped.backends[0].max_list_entries == defaults.backends[0].max_list_entries);
    CHECK(shipped.backends[0].max_groups == defaults.backends[0].max_groups);
    CHECK(shipped.backends[0].max_room_members == defaults.backends[0].max_room_members);
    CHECK(shipped.backends[0].named_rooms_open == defaults.backends[0].named_rooms_open);
    CHECK(shipped.backends[0].rejoin_grace == defaults.backends[0].rejoin_grace);
}

TEST_CASE("an empty settings file gives usable defaults", "[config]") {
    const auto s = settings_ok("");
    CHECK(s.file == "/etc/switchyard/test.toml");
    CHECK(s.data_dir == "/etc/switchyard/data");
    CHECK(s.routes_file == "/etc/switchyard/routes.toml");
    CHECK(s.log == config::log_level::info);
    CHECK(s.threads == 0);
    CHECK(s.shutdown_timeout == 10s);

    REQUIRE(s.listeners.size() == 5);
    CHECK(s.listeners[0].kind == "msnp");
    CHECK(s.listeners[1].kind == "ws");
    CHECK(s.listeners[2].kind == "https");
    CHECK(s.listeners[3].kind == "admin");
    CHECK(s.listeners[0].port == 1863);
    CHECK(s.listeners[1].port == 8080);
    CHECK(s.listeners[2].port == 8443);
    CHECK(s.listeners[3].port == 9090);
    CHECK_FALSE(s.listeners[2].enabled);
    CHECK(s.listeners[2].tls == config::tls_profile::legacy);
    for (const auto& l : s.listeners) CHECK(l.address == "127.0.0.1");

    CHECK(s.lim.idle_timeout == 300s);
    CHECK(s.lim.commands_per_second == 50);
    CHECK(s.keys.empty());
    REQUIRE(s.backends.size() == 1);
    CHECK(s.backends[0].name == "embedded");
    CHECK(s.backends[0].kind == config::backend_kind::embedded);
    CHECK(s.backends[0].hibernate_after == 10s);
    CHECK(s.backends[0].rejoin_grace == 60s);

    REQUIRE(s.find_listener("admin") != nullptr);
    CHECK(s.find_listener("admin")->port == 9090);
    CHECK(s.find_listener("irc") == nullptr);
    REQUIRE(s.find_backend("embedded") != nullptr);
    CHECK(s.find_backend("edge") == nullptr);
}

TEST_CASE("settings values are read", "[config]") {
    const auto s = settings_ok(R"(
[gateway]
threads = 4
shutdown_timeout = "250ms"
log_level = "debug"

[listeners.msnp]
address = "::"
port = 0
public_endpoint = "chat.example.com:1863"

[listeners.ws]
address = "0.0.0.0"
port = 0
tls = "modern"
rooms = ["lobby", "help", "lobby"]

[tls.modern]
certificate = "certs/modern.pem"
private_key = "/secrets/modern.key"

[limits]
idle_timeout = "5m"
handshake_timeout = "1h"
commands_per_second = 10

[[keys]]
id = "2024-b"
secret = ")" + secret_32 + R"("

[[keys]]
id = "2024_a"
secret = ")" + secret_32 + R"("

[backends.edge]
kind = "embedded"
hibernate_after = "1m"
)");
    CHECK(s.threads == 4);
    CHECK(s.shutdown_timeout == 250ms);
    CHECK(s.log == config::log_level::debug);
    CHECK(s.listeners[0].address == "::");
    CHECK(s.listeners[0].public_endpoint == "chat.example.com:1863");
    CHECK(s.listeners[1].tls == config::tls_profile::modern);
    CHECK(s.listeners[1].rooms == std::vector<std::string>{"lobby", "help"});
    CHECK(s.tls.at("modern").certificate == "/etc/switchyard/certs/modern.pem");
    CHECK(s.tls.at("modern").private_key == "/secrets/modern.key");
    CHECK(s.lim.idle_timeout == 300s);
    CHECK(s.lim.handshake_timeout == 3600s);
    CHECK(s.lim.commands_per_second == 10);
    REQUIRE(s.keys.size() == 2);
    CHECK(s.keys[0].id == "2024-b");  // file order: the first key signs
    CHECK(s.keys[0].secret == "0123456789abcdef0123456789abcdef");
    REQUIRE(s.backends.size() == 1);
    CHECK(s.find_backend("edge")->hibernate_after == 60s);
}

TEST_CASE("paths are resolved against the settings file's directory", "[config]") {
    const auto s = settings_ok(R"(
[gateway]
data_dir = "/var/lib/switchyard"
routes_file = "../routes/./main.toml"
)");
    CHECK(s.data_dir == "/var/lib/switchyard");
    CHECK(s.routes_file == "/etc/routes/main.toml");

    const auto relative = settings_ok("", "conf/gw.toml");
    CHECK(relative.file == "conf/gw.toml");
    CHECK(relative.data_dir.is_absolute());
    CHECK(relative.data_dir == fs::current_path() / "conf/data");
    CHECK(settings_ok("", "gw.toml").data_dir == fs::current_path() / "data");
    CHECK(settings_ok("", "").data_dir == fs::current_path() / "data");
}

TEST_CASE("to_string names", "[config]") {
    CHECK(config::to_string(config::tls_profile::none) == "none");
    CHECK(config::to_string(config::tls_profile::legacy) == "legacy");
    CHECK(config::to_string(config::log_level::warn) == "warn");
    CHECK(config::to_string(config::backend_kind::embedded) == "embedded");
    CHECK(config::to_string(config::match_kind::prefix) == "prefix");
    CHECK(config::error{"a.toml", 3, 7, "bad"}.to_string() == "a.toml:3:7: bad");
    CHECK(config::error{"a.toml", 0, 0, "bad"}.to_string() == "a.toml: bad");
    CHECK(config::error{"", 3, 7, "bad"}.to_string() == "3:7: bad");
}

TEST_CASE("settings errors name the place and what was expected", "[config]") {
    SECTION("syntax") {
        CHECK(settings_error("[gateway\nthreads = 1\n") ==
              "test.toml:1:9: Error while parsing table header: expected ']', saw '\\n'");
    }
    SECTION("unknown keys") {
        CHECK(settings_error("[gatway]\n") ==
              "test.toml:1:2: unknown key \"gatway\" at the top level; expected one of: gateway, listeners, tls, "
              "limits, keys, backends, accounts");
        CHECK(settings_error("[gateway]\nthreads = 1\nlog = \"info\"\n") ==
              "test.toml:3:1: unknown key \"log\" in [gateway]; expected one of: data_dir, routes_file, threads, "
              "shutdown_timeout, log_level, name");
        CHECK(settings_error("[listeners.irc]\nport = 6667\n") ==
              "test.toml:1:12: unknown key \"irc\" in [listeners]; expected one of: msnp, ws, https, admin, link");
        CHECK(settings_error("[listeners.ws]\npublic_endpoint = \"x:1\"\n") ==
              "test.toml:2:1: unknown key \"public_endpoint\" in [listeners.ws]; expected one of: enabled, "
              "address, port, tls, rooms, permessage_deflate");
        CHECK(settings_error("[listeners.msnp]\nrooms = []\n").starts_with(
            "test.toml:2:1: unknown key \"rooms\" in [listeners.msnp]"));
        CHECK(settings_error("[listeners.ws]\nrooms = [\"lobby\", \"Bad Name\"]\n") ==
              "test.toml:2:19: expected a room name (1 to 64 of a-z 0-9 - _ .) in rooms");
        CHECK(settings_error("[listeners.ws]\nrooms = \"lobby\"\n") ==
              "test.toml:2:9: expected an array of room names for rooms");
        // The first unknown key in the file, not in the table's (alphabetical) order.
        CHECK(settings_error("[limits]\nzeta = 1\nalpha = 2\n").starts_with("test.toml:2:1: unknown key \"zeta\""));
    }
    SECTION("types") {
        CHECK(settings_error("[gateway]\nthreads = \"4\"\n") ==
              "test.toml:2:11: expected an integer for threads, found a string");
        CHECK(settings_error("listeners = 5\n") == "test.toml:1:13: expected a table for listeners, found an integer");
        CHECK(settings_error("[listeners.ws]\nenabled = \"yes\"\n") ==
              "test.toml:2:11: expected a boolean (true or false) for enabled, found a string");
        CHECK(settings_error("[keys]\nid = \"k1\"\n") ==
              "test.toml:1:1: expected an array of tables ([[keys]]) for keys, found a table");
    }
    SECTION("ranges") {
        CHECK(settings_error("[listeners.msnp]\nport = 70000\n") ==
              "test.toml:2:8: expected an integer from 0 to 65535 for port, found 70000");
        CHECK(settings_error("[limits]\nline_bytes = 0\n") ==
              "test.toml:2:14: expected a positive integer for line_bytes, found 0");
        CHECK(settings_error("[gateway]\nthreads = -1\n") ==
              "test.toml:2:11: expected an integer from 0 to 1024 for threads, found -1");
    }
    SECTION("enums") {
        CHECK(settings_error("[listeners.ws]\ntls = \"foo\"\n") ==
              "test.toml:2:7: unknown tls \"foo\"; expected one of: none, modern, legacy");
        const auto fixture = fixtures_dir / "config/settings_bad_log_level.toml";
        auto s = config::load_settings(fixture);
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().to_string() == fixture.string() +
                                           ":4:13: unknown log_level \"verbose\"; expected one of: trace, debug, "
                                           "info, warn, error");
    }
    SECTION("durations") {
        CHECK(settings_error("[gateway]\nshutdown_timeout = \"10\"\n") ==
              "test.toml:2:20: expected a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\" for "
              "shutdown_timeout, found \"10\"");
        CHECK(settings_error("[limits]\nidle_timeout = 300\n") ==
              "test.toml:2:16: expected a duration string such as \"10s\" for idle_timeout, found an integer");
        CHECK(settings_error("[limits]\nidle_timeout = \"1500ms\"\n") ==
              "test.toml:2:16: expected a whole number of seconds for idle_timeout, found 1500ms");
        CHECK(settings_error("[limits]\nidle_timeout = \"0s\"\n") ==
              "test.toml:2:16: expected a duration of at least 1s for idle_timeout, found \"0s\"");
        for (const char* bad : {"", "s", "1.5s", "-1s", "10 s", " 10s", "1d", "10S", "1000000000000h"}) {
            INFO(bad);
            CHECK_FALSE(config::parse_settings("[gateway]\nshutdown_timeout = \"" + std::string(bad) + "\"\n",
                                               "test.toml"));
        }
        CHECK(settings_ok("[gateway]\nshutdown_timeout = \"0s\"\n").shutdown_timeout == 0ms);
    }
    SECTION("listener addresses") {
        CHECK(settings_error("[listeners.admin]\naddress = \"localhost\"\n") ==
              "test.toml:2:11: expected an IP address for address, found \"localhost\"");
        CHECK(settings_error("[listeners.admin]\naddress = \"\"\n") ==
              "test.toml:2:11: expected a non-empty string for address");
        CHECK(settings_error("[listeners.msnp]\npublic_endpoint = \"chat.example.com\"\n") ==
              "test.toml:2:19: expected host:port for public_endpoint, found \"chat.example.com\"");
        for (const char* bad : {"::1:1863", "host:0", "host:65536", ":1863", "host:", "host:18x", "[]:1863"}) {
            INFO(bad);
            CHECK_FALSE(config::parse_settings(
                "[listeners.msnp]\npublic_endpoint = \"" + std::string(bad) + "\"\n", "test.toml"));
        }
        CHECK(settings_ok("[listeners.msnp]\npublic_endpoint = \"[2001:db8::1]:1863\"\n").listeners[0].public_endpoint ==
              "[2001:db8::1]:1863");
        // The HTTPS one goes into the nexus reply's DALogin, where 443 needs no port.
        for (const char* good : {"login.example.com", "login.example.com:8443", "[2001:db8::1]", "[2001:db8::1]:443",
                                 "192.0.2.1"}) {
            INFO(good);
            CHECK(settings_ok("[listeners.https]\npublic_endpoint = \"" + std::string(good) + "\"\n")
                      .listeners[2]
                      .public_endpoint == good);
        }
        CHECK(settings_error("[listeners.https]\npublic_endpoint = \"login.example.com/x\"\n") ==
              "test.toml:2:19: expected host or host:port for public_endpoint, found \"login.example.com/x\"");
        for (const char* bad : {"a,b", "host:0", "a:b:c", "with space", "[]", "host:"}) {
            INFO(bad);
            CHECK_FALSE(config::parse_settings(
                "[listeners.https]\npublic_endpoint = \"" + std::string(bad) + "\"\n", "test.toml"));
        }
    }
    SECTION("a login listener others reach names its own host") {
        // Else the nexus would put the request's Host into DALogin.
        CHECK(settings_error("[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"0.0.0.0\"\n") ==
              "test.toml:4:11: [listeners.https] listens on 0.0.0.0:8443, which other machines reach; expected "
              "public_endpoint (the host[:port] clients reach the login service at): without it the Passport "
              "nexus would repeat whatever Host a request names");
        CHECK_FALSE(config::parse_settings("[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"::\"\n",
                                           "test.toml"));
        CHECK_FALSE(config::parse_settings(
            "[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"192.0.2.7\"\n", "test.toml"));
        settings_ok("[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"0.0.0.0\"\n"
                    "public_endpoint = \"login.example.com\"\n");
        settings_ok("[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"127.0.0.2\"\n");
        settings_ok("[listeners.https]\nenabled = true\ntls = \"none\"\naddress = \"::1\"\n");
        settings_ok("[listeners.https]\nenabled = false\naddress = \"0.0.0.0\"\n");
    }
    SECTION("duplicate ports") {
        const auto fixture = fixtures_dir / "config/settings_port_conflict.toml";
        auto s = config::load_settings(fixture);
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().to_string() ==
              fixture.string() +
                  ":4:8: [listeners.ws] and [listeners.admin] both listen on 127.0.0.1:9090; expected different ports");
        CHECK(settings_error("[listeners.msnp]\naddress = \"0.0.0.0\"\nport = 8080\n") ==
              "test.toml:3:8: [listeners.msnp] on 0.0.0.0:8080 overlaps [listeners.ws] on 127.0.0.1:8080; "
              "expected different ports");
        CHECK(settings_error("[listeners.admin]\naddress = \"::\"\nport = 1863\n") ==
              "test.toml:3:8: [listeners.msnp] on 127.0.0.1:1863 overlaps [listeners.admin] on [::]:1863; "
              "expected different ports");
        // No conflict: a disabled listener, port 0, distinct addresses, different families.
        settings_ok("[listeners.ws]\nport = 9090\nenabled = false\n");
        settings_ok("[listeners.ws]\nport = 0\n[listeners.admin]\nport = 0\n");
        settings_ok("[listeners.ws]\nport = 9090\naddress = \"127.0.0.2\"\n");
        settings_ok("[listeners.ws]\nport = 9090\naddress = \"::1\"\n[listeners.admin]\naddress = \"0.0.0.0\"\n");
    }
    SECTION("tls profiles") {
        const auto fixture = fixtures_dir / "config/settings_missing_tls.toml";
        auto s = config::load_settings(fixture);
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().to_string() == fixture.string() +
                                           ":5:7: [listeners.https] uses tls = \"legacy\"; expected a [tls.legacy] "
                                           "table with certificate and private_key");
        // Without a tls key, at the listener's header.
        CHECK(settings_error("\n[listeners.https]\nenabled = true\n") ==
              "test.toml:2:1: [listeners.https] uses tls = \"legacy\"; expected a [tls.legacy] table with "
              "certificate and private_key");
        CHECK(settings_error("[tls.modern]\ncertificate = \"a.pem\"\n") ==
              "test.toml:1:1: missing required key \"private_key\" in [tls.modern]");
        CHECK(settings_error("[tls.old]\n") ==
              "test.toml:1:6: unknown key \"old\" in [tls]; expected one of: modern, legacy");
        // An unused profile needs no files.
        settings_ok("[listeners.ws]\ntls = \"modern\"\nenabled = false\n");
    }
    SECTION("WebSocket listener: TLS and permessage-deflate") {
        const auto wss = settings_ok(
            "[listeners.ws]\ntls = \"modern\"\n[tls.modern]\ncertificate = \"m.pem\"\nprivate_key = \"m.key\"\n");
        CHECK(wss.listeners[1].tls == config::tls_profile::modern);
        // The legacy profile exists for old Messenger clients' Passport login only.
        const std::string legacy_error =
            "tls = \"legacy\" is for old Messenger clients' Passport login ([listeners.https]); expected \"none\" "
            "or \"modern\" for [listeners.ws]";
        CHECK(settings_error("[listeners.ws]\nport = 0\ntls = \"legacy\"\n") == "test.toml:3:7: " + legacy_error);
        // Even with the profile's files at hand, and disabled.
        CHECK(settings_error("[tls.legacy]\ncertificate = \"l.pem\"\nprivate_key = \"l.key\"\n"
                             "[listeners.ws]\nenabled = false\ntls = \"legacy\"\n") ==
              "test.toml:6:7: " + legacy_error);

        CHECK_FALSE(settings_ok("").listeners[1].permessage_deflate);
        CHECK(settings_ok("[listeners.ws]\npermessage_deflate = true\n").listeners[1].permessage_deflate);
        CHECK_FALSE(settings_ok("[listeners.ws]\npermessage_deflate = false\n").listeners[1].permessage_deflate);
        CHECK(settings_error("[listeners.ws]\npermessage_deflate = \"yes\"\n") ==
              "test.toml:2:22: expected a boolean (true or false) for permessage_deflate, found a string");
        CHECK(settings_error("[listeners.ws]\npermessage_deflate = 1\n") ==
              "test.toml:2:22: expected a boolean (true or false) for permessage_deflate, found an integer");
        CHECK(settings_error("[listeners.msnp]\npermessage_deflate = true\n")
                  .starts_with("test.toml:2:1: unknown key \"permessage_deflate\" in [listeners.msnp]"));
    }
    SECTION("keys") {
        const std::string key = "[[keys]]\nid = \"k1\"\nsecret = \"" + secret_32 + "\"\n";
        CHECK(settings_error(key + key) ==
              "test.toml:5:6: duplicate key id \"k1\" (first at line 2); expected unique ids");
        CHECK(settings_error("[[keys]]\nid = \"k1\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZg==\"\n") ==
              "test.toml:3:10: expected at least 32 bytes after base64 decoding for secret, found 16");
        CHECK(settings_error("[[keys]]\nid = \"k1\"\nsecret = \"MDEy!zQ1Njc4OWFiY2RlZg==\"\n") ==
              "test.toml:3:10: expected standard base64 (A-Z, a-z, 0-9, + and /, padded with =) for secret");
        CHECK(settings_error("[[keys]]\nsecret = \"" + secret_32 + "\"\n") ==
              "test.toml:1:1: missing required key \"id\" in [[keys]]");
        CHECK(settings_error("[[keys]]\nid = \"k.1\"\nsecret = \"" + secret_32 + "\"\n") ==
              "test.toml:2:6: expected an id of 1 to 32 letters, digits, '-' or '_', found \"k.1\"");
        // Strict base64: no missing padding, whitespace, stray '=' or non-zero bits under the padding.
        for (std::string bad : {secret_32.substr(0, 43), secret_32 + "\\n", " " + secret_32,
                                secret_32.substr(0, 42) + "=A", secret_32.substr(0, 42) + "Z=",
                                "=" + secret_32.substr(1)}) {
            INFO(bad);
            CHECK_FALSE(config::parse_settings("[[keys]]\nid = \"k1\"\nsecret = \"" + bad + "\"\n", "test.toml"));
        }
    }
    SECTION("backends") {
        CHECK(settings_error("[backends.edge]\nkind = \"durable-objects\"\n") ==
              "test.toml:2:8: backend kind \"durable-objects\" is not available in this build; expected: embedded, link");
        CHECK(settings_error("[backends.edge]\nhibernate_after = \"5s\"\n") ==
              "test.toml:1:1: missing required key \"kind\" in [backends.edge]");
        CHECK(settings_error("[backends]\n") ==
              "test.toml:1:1: expected at least one backend in [backends], such as [backends.embedded]");
        CHECK(settings_error("[backends.edge]\nkind = \"embedded\"\nhibernate_after = \"0s\"\n") ==
              "test.toml:3:19: expected a duration of at least 1ms for hibernate_after, found \"0s\"");
    }
    SECTION("backend links") {
        CHECK(settings_error("[backends.node]\nkind = \"link\"\n") ==
              "test.toml:1:1: missing required key \"port\" in [backends.node]");
        CHECK(settings_error("[backends.node]\nkind = \"link\"\nport = 1864\nshards = 2\n") ==
              "test.toml:4:1: unknown key \"shards\" in [backends.node]; expected one of: kind, address, port");
        CHECK(settings_error("[backends.node]\nkind = \"link\"\naddress = \"node.example\"\nport = 1864\n") ==
              "test.toml:3:11: expected an IP address for address, found \"node.example\"");
        CHECK(settings_error("[listeners.link]\nenabled = true\nbackend = \"elsewhere\"\n") ==
              "test.toml:3:11: [listeners.link] serves backend \"elsewhere\", which is not in [backends]");
        CHECK(settings_error("[listeners.link]\nenabled = true\nbackend = \"node\"\n"
                             "[backends.node]\nkind = \"link\"\nport = 1864\n") ==
              "test.toml:3:11: [listeners.link] serves backend \"node\" of kind \"link\"; expected an embedded one");
        CHECK(settings_error("[listeners.link]\ntls = \"modern\"\n") ==
              "test.toml:2:7: expected tls = \"none\" for [listeners.link]: backend links are for a private network");
        CHECK(settings_error("[listeners.link]\nlease = \"10ms\"\n") ==
              "test.toml:2:9: expected a duration of at least 100ms for lease, found \"10ms\"");
        CHECK(settings_error("[gateway]\nname = \"a b\"\n") ==
              "test.toml:2:8: expected 1 to 64 letters, digits, '-', '_' or '.' for name, found \"a b\"");
        const auto s = settings_ok("[gateway]\nname = \"edge-1\"\n[listeners.link]\nenabled = true\nport = 0\n"
                                   "lease = \"2s\"\n[backends.embedded]\nkind = \"embedded\"\n"
                                   "[backends.node]\nkind = \"link\"\naddress = \"::1\"\nport = 1864\n");
        CHECK(s.gateway_name == "edge-1");
        const auto* link = s.find_listener("link");
        REQUIRE(link);
        CHECK(link->enabled);
        CHECK(link->backend == "embedded");
        CHECK(link->lease == 2s);
        const auto* node = s.find_backend("node");
        REQUIRE(node);
        CHECK(node->kind == config::backend_kind::link);
        CHECK(node->address == "::1");
        CHECK(node->port == 1864);
    }
    SECTION("missing file") {
        auto s = config::load_settings("/nonexistent/switchyard.toml");
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error().to_string() == "/nonexistent/switchyard.toml: cannot open file: No such file or directory");
    }
}

TEST_CASE("routes are read in order with the header line", "[routes]") {
    const auto t = routes_ok(R"(# comment
[[route]]
exact = "room:lobby"
backend = "edge"
location = "weur"

[[route]]
prefix = "user:"
backend = "embedded"

[[route]]
glob = "room:team-*"
backend = "edge"

[default]
backend = "embedded"
location = "enam"
)");
    REQUIRE(t.rules.size() == 3);
    CHECK(t.rules[0].kind == config::match_kind::exact);
    CHECK(t.rules[0].pattern == "room:lobby");
    CHECK(t.rules[0].location == "weur");
    CHECK(t.rules[0].line == 2);
    CHECK(t.rules[1].kind == config::match_kind::prefix);
    CHECK(t.rules[1].line == 7);
    CHECK(t.rules[2].kind == config::match_kind::glob);
    CHECK(t.rules[2].line == 11);
    CHECK(t.default_backend == "embedded");
    CHECK(t.default_location == "enam");
    CHECK(t.file == "test.toml");
    CHECK(t.version == 0);
}

TEST_CASE("lookup: the first match wins, else the default", "[routes]") {
    const auto t = routes_ok(R"(
[[route]]
exact = "room:team-red"
backend = "embedded"
location = "first"

[[route]]
glob = "room:team-*"
backend = "edge"

[[route]]
prefix = "room:"
backend = "embedded"
location = "third"

[default]
backend = "edge"
location = "fallback"
)");
    auto m = t.lookup("room:team-red");
    CHECK(m.rule == &t.rules[0]);
    CHECK(m.backend == "embedded");
    CHECK(m.location == "first");

    m = t.lookup("room:team-blue");
    CHECK(m.rule == &t.rules[1]);
    CHECK(m.backend == "edge");
    CHECK(m.location.empty());

    m = t.lookup("room:lobby");
    CHECK(m.rule == &t.rules[2]);
    CHECK(m.location == "third");

    m = t.lookup("user:alice@example.com");
    CHECK(m.rule == nullptr);
    CHECK(m.backend == "edge");
    CHECK(m.location == "fallback");

    CHECK(t.rules[0].matches("room:team-red"));
    CHECK_FALSE(t.rules[0].matches("room:team-red2"));
    CHECK(t.rules[2].matches("room:"));
}

TEST_CASE("the digest is FNV-1a 64 of the file's bytes", "[routes]") {
    const std::string text = "[default]\nbackend = \"embedded\"\n";
    CHECK(routes_ok(text).digest == 0x1917ebf87a9b972bull);
    CHECK(routes_ok(text + "\n").digest != routes_ok(text).digest);
}

TEST_CASE("glob matching", "[routes]") {
    using config::glob_match;
    CHECK(glob_match("*", ""));
    CHECK(glob_match("*", "anything"));
    CHECK(glob_match("", ""));
    CHECK_FALSE(glob_match("", "a"));
    CHECK_FALSE(glob_match("?", ""));
    CHECK(glob_match("?", "x"));
    CHECK_FALSE(glob_match("?", "xy"));
    CHECK(glob_match("a*b*c", "abc"));
    CHECK(glob_match("a*b*c", "aXbYc"));
    CHECK(glob_match("a*b*c", "abbbcbc"));
    CHECK_FALSE(glob_match("a*b*c", "abcb"));
    CHECK_FALSE(glob_match("a*b*c", "acb"));
    CHECK(glob_match("**", ""));
    CHECK(glob_match("a**", "a"));
    CHECK(glob_match("room:team-*", "room:team-"));
    CHECK_FALSE(glob_match("room:team-*", "room:team"));
    CHECK(glob_match("user:?ob@*", "user:bob@example.com"));
    CHECK_FALSE(glob_match("abc", "abd"));
    CHECK_FALSE(glob_match("abc", "ab"));

    // Hostile patterns stay polynomial: a recursive matcher would take
    // exponential time on these.
    const std::string many_a(100000, 'a');
    CHECK_FALSE(glob_match("a*a*a*a*b", many_a));
    CHECK(glob_match("a*a*a*a*a", many_a));
    CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*a*a*a*a*b", std::string(2000, 'a')));
}

TEST_CASE("routes errors name the place and what was expected", "[routes]") {
    SECTION("misspelt key (fixture)") {
        const auto fixture = fixtures_dir / "config/routes_misspelt_key.toml";
        auto t = config::load_routes(fixture, backends);
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().to_string() == fixture.string() +
                                           ":7:1: unknown key \"bakend\" in [[route]]; expected one of: exact, "
                                           "prefix, glob, backend, location");
    }
    SECTION("no default (fixture)") {
        const auto fixture = fixtures_dir / "config/routes_no_default.toml";
        auto t = config::load_routes(fixture, backends);
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().to_string() == fixture.string() + ":1:1: missing required key \"default\" at the top level");
    }
    SECTION("undefined backend (fixture)") {
        const auto fixture = fixtures_dir / "config/routes_unknown_backend.toml";
        auto t = config::load_routes(fixture, backends);
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().to_string() ==
              fixture.string() + ":9:11: unknown backend \"durable\"; expected one of: embedded, edge");
    }
    SECTION("two patterns (fixture)") {
        const auto fixture = fixtures_dir / "config/routes_two_patterns.toml";
        auto t = config::load_routes(fixture, backends);
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().to_string() == fixture.string() +
                                           ":5:1: [[route]] has both prefix and glob; expected exactly one of: "
                                           "exact, prefix, glob");
    }
    const std::string fallback = "[default]\nbackend = \"embedded\"\n";
    SECTION("patterns") {
        CHECK(routes_error("[[route]]\nbackend = \"embedded\"\n" + fallback) ==
              "test.toml:1:1: [[route]] has no pattern; expected exactly one of: exact, prefix, glob");
        CHECK(routes_error("[[route]]\nexact = \"lobby\"\nbackend = \"embedded\"\n" + fallback) ==
              "test.toml:2:9: expected exact to start with user: or room:, found \"lobby\"");
        CHECK(routes_error("[[route]]\nprefix = \"\"\nbackend = \"embedded\"\n" + fallback) ==
              "test.toml:2:10: expected a non-empty string for prefix");
        CHECK(routes_error("[[route]]\nglob = \"lobby-*\"\nbackend = \"embedded\"\n" + fallback) ==
              "test.toml:2:8: glob \"lobby-*\" can never match: object ids start with user: or room:");
        for (const char* glob : {"x*", "room", "?x*", "lobby?"}) {
            INFO(glob);
            CHECK_FALSE(config::parse_routes(
                "[[route]]\nglob = \"" + std::string(glob) + "\"\nbackend = \"embedded\"\n" + fallback, "test.toml",
                backends));
        }
        for (const char* glob : {"*", "u*", "?oom:*", "*lobby", "room:*", "us*:x", "????:*"}) {
            INFO(glob);
            routes_ok("[[route]]\nglob = \"" + std::string(glob) + "\"\nbackend = \"embedded\"\n" + fallback);
        }
    }
    SECTION("keys and types") {
        CHECK(routes_error("[[route]]\nexact = \"room:a\"\nbackend = 5\n" + fallback) ==
              "test.toml:3:11: expected a string for backend, found an integer");
        CHECK(routes_error("[[route]]\nexact = \"room:a\"\n" + fallback) ==
              "test.toml:1:1: missing required key \"backend\" in [[route]]");
        CHECK(routes_error("[route]\nexact = \"room:a\"\nbackend = \"embedded\"\n" + fallback) ==
              "test.toml:1:1: expected an array of tables ([[route]]) for route, found a table");
        CHECK(routes_error(fallback + "locaton = \"weur\"\n") ==
              "test.toml:3:1: unknown key \"locaton\" in [default]; expected one of: backend, location");
        CHECK(routes_error("[default]\nlocation = \"weur\"\n") ==
              "test.toml:1:1: missing required key \"backend\" in [default]");
        CHECK(routes_error("[default]\nbackend = \"nowhere\"\n") ==
              "test.toml:2:11: unknown backend \"nowhere\"; expected one of: embedded, edge");
        CHECK(routes_error("[[routes]]\n" + fallback) ==
              "test.toml:1:3: unknown key \"routes\" at the top level; expected one of: route, default");
    }
    SECTION("missing file") {
        auto t = config::load_routes("/nonexistent/routes.toml", backends);
        REQUIRE_FALSE(t.has_value());
        CHECK(t.error().to_string() == "/nonexistent/routes.toml: cannot open file: No such file or directory");
    }
}

TEST_CASE("[accounts] sets the password policy and the scrypt cost", "[config]") {
    const auto defaults = settings_ok("");
    CHECK(defaults.accounts.min_password_length == 8);
    CHECK(defaults.accounts.max_password_length == 128);
    CHECK(defaults.accounts.scrypt_n == 131072);
    CHECK(defaults.accounts.scrypt_r == 8);
    CHECK(defaults.accounts.scrypt_p == 1);

    const auto file = source_dir / "conf/switchyard.toml";
    const auto shipped = settings_ok(read(file), file);
    CHECK(shipped.accounts.min_password_length == defaults.accounts.min_password_length);
    CHECK(shipped.accounts.max_password_length == defaults.accounts.max_password_length);
    CHECK(shipped.accounts.scrypt_n == defaults.accounts.scrypt_n);
    CHECK(shipped.accounts.scrypt_r == defaults.accounts.scrypt_r);
    CHECK(shipped.accounts.scrypt_p == defaults.accounts.scrypt_p);

    const auto s = settings_ok("[accounts]\nmin_password_length = 12\nmax_password_length = 12\nscrypt_n = 1024\n"
                               "scrypt_r = 4\nscrypt_p = 2\n");
    CHECK(s.accounts.min_password_length == 12);
    CHECK(s.accounts.max_password_length == 12);
    CHECK(s.accounts.scrypt_n == 1024);
    CHECK(s.accounts.scrypt_r == 4);
    CHECK(s.accounts.scrypt_p == 2);
    // 1 GiB per hash is the most allowed; r = 1 below 2^16 is RFC 7914's limit.
    CHECK(settings_ok("[accounts]\nscrypt_n = 1048576\n").accounts.scrypt_n == 1048576);
    CHECK(settings_ok("[accounts]\nscrypt_n = 32768\nscrypt_r = 1\n").accounts.scrypt_r == 1);

    CHECK(settings_error("[accounts]\nscrypt_m = 1\n") ==
          "test.toml:2:1: unknown key \"scrypt_m\" in [accounts]; expected one of: min_password_length, "
          "max_password_length, scrypt_n, scrypt_r, scrypt_p, max_concurrent_logins, login_failures_free, "
          "login_failures_free_per_address, login_failure_delay, login_failure_max_delay, logins_per_address");
    // Password guessing: the shipped file says what the defaults are.
    CHECK(defaults.accounts.login_failures_free == 3);
    CHECK(defaults.accounts.login_failures_free_per_address == 10);
    CHECK(defaults.accounts.login_failure_delay == 1s);
    CHECK(defaults.accounts.login_failure_max_delay == 15min);
    CHECK(defaults.accounts.logins_per_address == 4);
    CHECK(shipped.accounts.login_failures_free == defaults.accounts.login_failures_free);
    CHECK(shipped.accounts.login_failures_free_per_address == defaults.accounts.login_failures_free_per_address);
    CHECK(shipped.accounts.login_failure_delay == defaults.accounts.login_failure_delay);
    CHECK(shipped.accounts.login_failure_max_delay == defaults.accounts.login_failure_max_delay);
    CHECK(shipped.accounts.logins_per_address == defaults.accounts.logins_per_address);
    const auto guard = settings_ok("[accounts]\nlogin_failures_free = 5\nlogin_failures_free_per_address = 50\n"
                                   "login_failure_delay = \"250ms\"\nlogin_failure_max_delay = \"1h\"\n"
                                   "logins_per_address = 2\n");
    CHECK(guard.accounts.login_failures_free == 5);
    CHECK(guard.accounts.login_failures_free_per_address == 50);
    CHECK(guard.accounts.login_failure_delay == 250ms);
    CHECK(guard.accounts.login_failure_max_delay == 1h);
    CHECK(guard.accounts.logins_per_address == 2);
    CHECK_FALSE(config::parse_settings("[accounts]\nlogin_failures_free = 0\n", "test.toml"));
    CHECK(defaults.accounts.max_concurrent_logins == 2);
    CHECK(shipped.accounts.max_concurrent_logins == defaults.accounts.max_concurrent_logins);
    CHECK(settings_ok("[accounts]\nmax_concurrent_logins = 8\n").accounts.max_concurrent_logins == 8);
    CHECK(settings_error("[accounts]\nmax_concurrent_logins = 0\n") ==
          "test.toml:2:25: expected an integer from 1 to 64 for max_concurrent_logins, found 0");
    CHECK(settings_error("accounts = 5\n") == "test.toml:1:12: expected a table for accounts, found an integer");
    CHECK(settings_error("[accounts]\nscrypt_n = 512\n") ==
          "test.toml:2:12: expected an integer of at least 1024 for scrypt_n, found 512");
    CHECK(settings_error("[accounts]\nscrypt_n = 3000\n") ==
          "test.toml:2:12: expected a power of two (1024, 2048, 4096, ...) for scrypt_n, found 3000");
    CHECK(settings_error("[accounts]\nscrypt_r = 1\n") ==
          "test.toml:2:12: expected scrypt_n below 65536 with scrypt_r = 1 (RFC 7914), found 131072");
    CHECK(settings_error("[accounts]\nscrypt_n = 1048576\nscrypt_r = 16\n") ==
          "test.toml:2:12: scrypt_n = 1048576 with scrypt_r = 16 needs 2048 MiB per hash (128 * n * r bytes); "
          "expected at most 1024 MiB");
    CHECK(settings_error("[accounts]\nscrypt_r = 0\n") ==
          "test.toml:2:12: expected an integer from 1 to 64 for scrypt_r, found 0");
    CHECK(settings_error("[accounts]\nscrypt_p = 17\n") ==
          "test.toml:2:12: expected an integer from 1 to 16 for scrypt_p, found 17");
    CHECK(settings_error("[accounts]\nmin_password_length = 0\n") ==
          "test.toml:2:23: expected a positive integer for min_password_length, found 0");
    CHECK(settings_error("[accounts]\nmin_password_length = 200\n") ==
          "test.toml:2:23: expected min_password_length (200) to be at most max_password_length (128)");
    CHECK(settings_error("[accounts]\nmin_password_length = 6\nmax_password_length = 4\n") ==
          "test.toml:3:23: expected min_password_length (6) to be at most max_password_length (4)");
}

TEST_CASE("embedded backend settings", "[config]") {
    const auto s = settings_ok(R"([backends.embedded]
kind = "embedded"
hibernate_after = "250ms"
durability = "normal"
shards = 3
max_list_entries = 600
max_groups = 20
max_room_members = 50
named_rooms_open = false
rejoin_grace = "1500ms"
)");
    const config::backend* b = s.find_backend("embedded");
    REQUIRE(b);
    CHECK(b->hibernate_after == std::chrono::milliseconds(250));
    CHECK(b->sync == config::durability::normal);
    CHECK(b->shards == 3);
    CHECK(b->max_list_entries == 600);
    CHECK(b->max_groups == 20);
    CHECK(b->max_room_members == 50);
    CHECK_FALSE(b->named_rooms_open);
    CHECK(b->rejoin_grace == std::chrono::milliseconds(1500));
    CHECK(settings_ok("[backends.embedded]\nkind = \"embedded\"\nrejoin_grace = \"0s\"\n")
              .find_backend("embedded")
              ->rejoin_grace == std::chrono::milliseconds(0));
    CHECK(settings_error("[backends.embedded]\nkind = \"embedded\"\nrejoin_grace = 60\n") ==
          "test.toml:3:16: expected a duration string such as \"10s\" for rejoin_grace, found an integer");
    CHECK(settings_error("[backends.embedded]\nkind = \"embedded\"\nrejoin_grace = \"soon\"\n") ==
          "test.toml:3:16: expected a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\" for rejoin_grace, "
          "found \"soon\"");

    CHECK(settings_error("[backends.embedded]\nkind = \"embedded\"\ndurability = \"eventually\"\n") ==
          "test.toml:3:14: unknown durability \"eventually\"; expected one of: full, normal");
    CHECK(settings_error("[backends.embedded]\nkind = \"embedded\"\nmax_room_members = 0\n") ==
          "test.toml:3:20: expected a positive integer for max_room_members, found 0");
}
