// The real switchyard binary: `check`, start-up, admin endpoints, route
// reloads by SIGHUP and by the admin endpoint, and shutdown by SIGTERM.
#include "child_process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const fs::path source_dir = SWITCHYARD_SOURCE_DIR;

const char* const good_routes = R"(# test routes
[[route]]
prefix = "room:"
backend = "embedded"

[default]
backend = "embedded"
)";

const char* const other_routes = R"([[route]]
glob = "user:*@example.com"
backend = "embedded"
location = "weur"

[default]
backend = "embedded"
)";

// Misspelt key on line 3, column 1.
const char* const bad_routes = R"([[route]]
exact = "room:lobby"
bakend = "embedded"

[default]
backend = "embedded"
)";

std::string settings_text(std::string_view extra_gateway = {}) {
    std::string s = "[gateway]\ndata_dir = \"data\"\nroutes_file = \"routes.toml\"\nthreads = 2\n";
    s += extra_gateway;
    s += R"(
[listeners.msnp]
port = 0
[listeners.ws]
port = 0
[listeners.admin]
port = 0
)";
    return s;
}

// A gateway started on free ports in its own directory.
struct gateway {
    temp_dir dir;
    std::optional<child_process> proc;
    std::map<std::string, unsigned short> ports;

    explicit gateway(std::string_view extra_gateway = {}) {
        write_file(dir.path / "switchyard.toml", settings_text(extra_gateway));
        write_file(dir.path / "routes.toml", good_routes);
        proc.emplace(std::vector<std::string>{binary, "run", "-c", (dir.path / "switchyard.toml").string()});
        for (int i = 0; i < 3; ++i) {
            const auto line = proc->wait_for_line("event=listening");
            INFO(proc->output());
            REQUIRE(line);
            ports[log_field(*line, "listener")] = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        }
        INFO(proc->output());
        REQUIRE(proc->wait_for_line("event=started"));
    }
    unsigned short port(const std::string& kind) const { return ports.at(kind); }
};

}  // namespace

TEST_CASE("check accepts the shipped configuration", "[process]") {
    const auto r = run_to_completion({binary, "check", "-c", (source_dir / "conf/switchyard.toml").string()});
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("routes.toml: ok") != std::string::npos);
}

TEST_CASE("check reports a misspelt routes key with its position and fails", "[process]") {
    temp_dir dir;
    write_file(dir.path / "switchyard.toml", settings_text());
    write_file(dir.path / "routes.toml", bad_routes);
    const auto r = run_to_completion({binary, "check", "-c", (dir.path / "switchyard.toml").string()});
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("routes.toml:3:1: unknown key \"bakend\"") != std::string::npos);
}

TEST_CASE("check reports a settings error with its position and fails", "[process]") {
    temp_dir dir;
    write_file(dir.path / "switchyard.toml", "[gateway]\nlog_level = \"loud\"\n");
    const auto r = run_to_completion({binary, "check", "-c", (dir.path / "switchyard.toml").string()});
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("switchyard.toml:2:13:") != std::string::npos);
}

TEST_CASE("check loads the certificates the enabled listeners use, and fails on one it cannot", "[process]") {
    temp_dir dir;
    write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    write_file(dir.path / "legacy.pem", "not a certificate\n");
    const std::string https = "[listeners.https]\nenabled = true\nport = 0\ntls = \"legacy\"\n"
                              "[tls.legacy]\ncertificate = \"legacy.pem\"\nprivate_key = \"legacy.key\"\n";
    write_file(dir.path / "switchyard.toml", https);
    auto r = run_to_completion({binary, "check", "-c", (dir.path / "switchyard.toml").string()});
    INFO(r.output);
    CHECK(r.status != 0);
    CHECK(r.output.find("legacy.pem: cannot load certificate") != std::string::npos);
    // Not used by an enabled listener: not loaded.
    write_file(dir.path / "switchyard.toml", "[listeners.https]\nenabled = false\ntls = \"legacy\"\n"
                                             "[tls.legacy]\ncertificate = \"legacy.pem\"\nprivate_key = \"legacy.key\"\n");
    r = run_to_completion({binary, "check", "-c", (dir.path / "switchyard.toml").string()});
    CHECK(r.status == 0);
}

TEST_CASE("run refuses to start on an invalid routes file", "[process]") {
    temp_dir dir;
    write_file(dir.path / "switchyard.toml", settings_text());
    write_file(dir.path / "routes.toml", bad_routes);
    const auto r = run_to_completion({binary, "run", "-c", (dir.path / "switchyard.toml").string()});
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("routes.toml:3:1:") != std::string::npos);
}

TEST_CASE("gateway serves admin endpoints, reloads routes and stops on SIGTERM", "[process]") {
    gateway gw;
    const unsigned short admin = gw.port("admin");

    SECTION("first start generates keys and says so") {
        CHECK(gw.proc->output().find("event=keys_generated") != std::string::npos);
        CHECK(fs::exists(gw.dir.path / "data" / "hmac-keys"));
        CHECK((fs::status(gw.dir.path / "data" / "hmac-keys").permissions() & fs::perms::group_all) ==
              fs::perms::none);
    }

    SECTION("health, readiness, metrics and unknown paths") {
        auto h = http_request(admin, "GET", "/healthz");
        CHECK(h.status == 200);
        CHECK(h.body == "ok\n");
        CHECK(http_request(admin, "GET", "/readyz").status == 200);
        CHECK(http_request(admin, "GET", "/nope").status == 404);
        CHECK(http_request(admin, "POST", "/healthz").status == 405);

        tcp_client msnp(gw.port("msnp"));
        msnp.send("VER 1 MSNP8 CVR0\r\n");
        REQUIRE(msnp.read_until("\r\n"));
        const auto m = http_request(admin, "GET", "/metrics");
        CHECK(m.status == 200);
        CHECK(m.body.find("switchyard_connections{protocol=\"msnp\"} 1\n") != std::string::npos);
        CHECK(m.body.find("switchyard_routes_version 1\n") != std::string::npos);
        CHECK(m.body.find("switchyard_frames_in_total{type=\"room_message\"} 0\n") != std::string::npos);
        CHECK(m.body.find("switchyard_errors_total{code=\"not_allowed\"} 0\n") != std::string::npos);
    }

    SECTION("one port serves MSNP; a connection that starts with anything else is closed") {
        tcp_client ns(gw.port("msnp"));
        ns.send("VER 7 MSNP8 CVR0\r\n");
        const auto ver = ns.read_until("\r\n");
        REQUIRE(ver);
        CHECK(*ver == "VER 7 MSNP8 CVR0\r\n");
        tcp_client stray(gw.port("msnp"));
        stray.send("PNG\r\n");
        const auto rest = stray.read_to_eof();
        REQUIRE(rest);
        CHECK(rest->empty());
    }

    SECTION("SIGHUP swaps in a good routes file and keeps the old table on a bad one") {
        write_file(gw.dir.path / "routes.toml", other_routes);
        gw.proc->signal(SIGHUP);
        const auto loaded = gw.proc->wait_for_line("event=routes_loaded trigger=SIGHUP");
        REQUIRE(loaded);
        CHECK(log_field(*loaded, "version") == "2");
        auto routes = http_request(admin, "GET", "/routes");
        CHECK(routes.body.find("\"version\":2") != std::string::npos);
        CHECK(routes.body.find("user:*@example.com") != std::string::npos);

        write_file(gw.dir.path / "routes.toml", bad_routes);
        gw.proc->signal(SIGHUP);
        const auto rejected = gw.proc->wait_for_line("event=routes_rejected");
        REQUIRE(rejected);
        CHECK(log_field(*rejected, "error").find("routes.toml:3:1: unknown key \"bakend\"") != std::string::npos);
        CHECK(log_field(*rejected, "active_version") == "2");
        routes = http_request(admin, "GET", "/routes");
        CHECK(routes.body.find("\"version\":2") != std::string::npos);
        CHECK(routes.body.find("user:*@example.com") != std::string::npos);
        CHECK(http_request(admin, "GET", "/metrics").body.find("switchyard_routes_rejected_total 1\n") !=
              std::string::npos);
    }

    SECTION("the admin endpoint reloads routes, rejecting a bad file with its error") {
        write_file(gw.dir.path / "routes.toml", bad_routes);
        auto r = http_request(admin, "POST", "/routes/reload");
        CHECK(r.status == 422);
        CHECK(r.body.find("routes.toml:3:1:") != std::string::npos);
        CHECK(http_request(admin, "GET", "/routes").body.find("\"version\":1") != std::string::npos);

        write_file(gw.dir.path / "routes.toml", other_routes);
        r = http_request(admin, "POST", "/routes/reload");
        CHECK(r.status == 200);
        CHECK(r.body.find("\"version\":2") != std::string::npos);
        CHECK(http_request(admin, "GET", "/reload").status == 404);
        CHECK(http_request(admin, "GET", "/routes/reload").status == 405);
    }

    SECTION("SIGTERM tells MSNP and WebSocket sessions why, then exits 0") {
        tcp_client msnp(gw.port("msnp"));
        msnp.send("VER 1 MSNP8 CVR0\r\n");
        REQUIRE(msnp.read_until("VER 1 MSNP8 CVR0\r\n"));

        tcp_client ws(gw.port("ws"));
        ws.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        const auto handshake = ws.read_until("\r\n\r\n");
        REQUIRE(handshake);
        REQUIRE(handshake->rfind("HTTP/1.1 101", 0) == 0);

        gw.proc->signal(SIGTERM);
        const auto msnp_bytes = msnp.read_to_eof();
        REQUIRE(msnp_bytes);
        CHECK(*msnp_bytes == "VER 1 MSNP8 CVR0\r\nOUT SSD\r\n");

        // A close frame: FIN+opcode 8, length, code 1001 (going away), reason.
        const auto ws_bytes = ws.read_until("server shutting down");
        REQUIRE(ws_bytes);
        const std::string frame = ws_bytes->substr(ws_bytes->find("\r\n\r\n") + 4);
        REQUIRE(frame.size() >= 4);
        CHECK(static_cast<unsigned char>(frame[0]) == 0x88);
        CHECK(((static_cast<unsigned char>(frame[2]) << 8) | static_cast<unsigned char>(frame[3])) == 1001);
        // Answer the close as a client must (masked, code 1001); the server
        // then closes the TCP connection first (RFC 6455 section 7.1.1).
        ws.send(std::string("\x88\x82\x00\x00\x00\x00\x03\xe9", 8));
        REQUIRE(ws.read_to_eof());
        ws.close();

        const auto status = gw.proc->wait_exit();
        INFO(gw.proc->output());
        REQUIRE(status);
        CHECK(*status == 0);
        CHECK(gw.proc->output().find("event=stopped reason=drained") != std::string::npos);
    }
}

// Regression: a WebSocket whose handshake was still in progress at SIGTERM
// was dropped without a close frame.
TEST_CASE("SIGTERM during a WebSocket handshake still ends with a 1001 close", "[process]") {
    gateway gw("log_level = \"debug\"\n");
    tcp_client ws(gw.port("ws"));
    ws.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
    // Accepted, not just queued in the kernel: a connection still in the
    // listen backlog when the listener closes is refused, by design.
    REQUIRE(gw.proc->wait_for_line("event=connection_opened protocol=ws"));
    gw.proc->signal(SIGTERM);
    REQUIRE(gw.proc->wait_for_line("event=shutting_down"));
    ws.send("Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    const auto got = ws.read_until("server shutting down");
    REQUIRE(got);
    CHECK(got->rfind("HTTP/1.1 101", 0) == 0);
    const std::string frame = got->substr(got->find("\r\n\r\n") + 4);
    REQUIRE(frame.size() >= 4);
    CHECK(static_cast<unsigned char>(frame[0]) == 0x88);
    CHECK(((static_cast<unsigned char>(frame[2]) << 8) | static_cast<unsigned char>(frame[3])) == 1001);
    ws.send(std::string("\x88\x82\x00\x00\x00\x00\x03\xe9", 8));
    REQUIRE(ws.read_to_eof());
    ws.close();
    const auto status = gw.proc->wait_exit();
    REQUIRE(status);
    CHECK(*status == 0);
}

TEST_CASE("SIGTERM exits 0 within the shutdown timeout even when a client never answers", "[process]") {
    gateway gw("shutdown_timeout = \"300ms\"\n");
    tcp_client ws(gw.port("ws"));
    ws.send("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    REQUIRE(ws.read_until("\r\n\r\n"));

    gw.proc->signal(SIGTERM);
    const auto status = gw.proc->wait_exit(5s);
    INFO(gw.proc->output());
    REQUIRE(status);
    CHECK(*status == 0);
    CHECK(gw.proc->output().find("event=shutdown_timeout") != std::string::npos);
    CHECK(gw.proc->output().find("event=stopped reason=timeout") != std::string::npos);
}
