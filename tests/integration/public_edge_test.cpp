// The public edge on the real binary. Rate limits
// ([limits] commands_per_second, relay_bytes_per_second) slow a client
// down, never cut it: a file transfer over the switchboard (P2P data, each
// chunk a MSG D) and a burst of PNGs both go through whole, later rather
// than never. handshake_timeout ends a connection that has not signed in,
// and a first command other than VER, USR or ANS ends it before any payload.
// A failed login names the handle in the log; a second gateway on a port
// already served stops instead of sharing it, and so does one whose signing
// keys others may read. Switchboard sessions leave no rooms behind;
// connections over the caps are closed at once while the admin listener
// answers; what unauthenticated clients cause cannot flood the log; the
// admin endpoint refuses web pages, foreign Host names and, with a token,
// requests without it.
#include "child_process.hpp"
#include "msnp_client.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <csignal>
#include <filesystem>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {

const std::string binary = SWITCHYARD_BINARY;

// A gateway with the shipped limits, and two MSN Messenger users on it.
struct limited_gateway {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;
    unsigned short admin_port = 0;

    explicit limited_gateway(const std::string& limits = {}) {
        write_file(settings, "[gateway]\ndata_dir = \"data\"\nthreads = 2\n[listeners.msnp]\nport = 0\n"
                             "[listeners.ws]\nenabled = false\n[listeners.admin]\nport = 0\n"
                             "[accounts]\nscrypt_n = 1024\n[limits]\n" + limits);
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
        for (const char* user : {"alice", "bob"}) {
            const auto r = run_to_completion({binary, "user", "add", std::string(user) + "@example.com", "--legacy-md5",
                                              "-c", settings.string()},
                                             std::string(user) + " password\n");
            INFO(r.output);
            REQUIRE(r.status == 0);
        }
        start();
    }
    ~limited_gateway() {
        proc->signal(SIGTERM);
        proc->wait_exit();
    }
    void start() {
        proc = std::make_unique<child_process>(std::vector<std::string>{binary, "run", "-c", settings.string()});
        const auto line = proc->wait_for_line("event=listening listener=msnp");
        INFO(proc->output());
        REQUIRE(line);
        port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        REQUIRE(proc->wait_for_line("event=started"));
        const auto& out = proc->output();
        const auto admin = out.find("event=listening listener=admin");
        REQUIRE(admin != std::string::npos);
        admin_port = static_cast<unsigned short>(
            std::stoi(log_field(out.substr(admin, out.find('\n', admin) - admin), "port")));
    }
    void kill_and_restart() {
        proc->signal(SIGKILL);
        REQUIRE(proc->wait_exit());
        start();
    }
    // Rooms in the embedded backend's database, read beside the running
    // gateway as an operator's sqlite3 would.
    long rooms() const {
        sqlite3* db = nullptr;
        const auto file = dir.path / "data" / "embedded.sqlite3";
        REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
        sqlite3_stmt* count = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM rooms", -1, &count, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(count) == SQLITE_ROW);
        const long n = sqlite3_column_int64(count, 0);
        sqlite3_finalize(count);
        sqlite3_close(db);
        return n;
    }
};

// A P2P chunk as MSN Messenger 6-7.5 sends file data through a switchboard:
// a 48-byte binary header, up to 1202 bytes of data, a 4-byte footer.
std::string p2p_chunk(std::size_t index) {
    std::string body = "MIME-Version: 1.0\r\nContent-Type: application/x-msnmsgrp2p\r\nP2P-Dest: bob@example.com\r\n\r\n";
    std::string header(48, '\0');
    header[0] = static_cast<char>(index & 0xff);
    header[1] = static_cast<char>((index >> 8) & 0xff);
    return body + header + std::string(1202, static_cast<char>('a' + index % 26)) + std::string(4, '\0');
}

}  // namespace

TEST_CASE("a switchboard file transfer of megabytes is slowed, not cut", "[edge]") {
    limited_gateway gw;
    msnp_client alice(gw.port);
    alice.login("alice@example.com", "alice password");
    msnp_client bob(gw.port);
    bob.login("bob@example.com", "bob password");

    const auto xfr = words(alice.command("XFR 10 SB"));
    const auto sb_port = static_cast<unsigned short>(std::stoi(xfr.at(3).substr(xfr.at(3).rfind(':') + 1)));
    msnp_client alice_sb(sb_port);
    alice_sb.command("USR 1 alice@example.com " + xfr.at(5));
    const auto session = words(alice_sb.command("CAL 2 bob@example.com")).at(3);
    const auto rng = words(bob.reply("RNG " + session));
    msnp_client bob_sb(sb_port);
    bob_sb.command("ANS 1 bob@example.com " + rng.at(4) + " " + session);
    alice_sb.reply("JOI bob@example.com");

    // 3,000 chunks (3.8 MB: 60 times the shipped commands_per_second, and
    // four times the relay's burst), sixteen in flight: each chunk is a
    // MSG D, acknowledged once stored, as MSN Messenger streams a file.
    constexpr std::size_t chunks = 3000;
    constexpr std::size_t window = 16;
    const auto receive = [&](std::size_t i) {
        const std::string line = bob_sb.line();
        REQUIRE(line.starts_with("MSG alice@example.com "));
        REQUIRE(bob_sb.payload() == p2p_chunk(i));
        const std::string ack = "ACK " + std::to_string(3 + i);
        REQUIRE(alice_sb.reply(ack) == ack);
    };
    for (std::size_t i = 0; i < chunks; ++i) {
        const std::string payload = p2p_chunk(i);
        alice_sb.send("MSG " + std::to_string(3 + i) + " D " + std::to_string(payload.size()) + "\r\n" + payload);
        if (i >= window) receive(i - window);
    }
    for (std::size_t i = chunks - window; i < chunks; ++i) receive(i);
    // Neither side was cut.
    CHECK(words(alice.command("CHG 20 AWY")).at(2) == "AWY");
    CHECK(words(bob.command("CHG 20 AWY")).at(2) == "AWY");
}

TEST_CASE("a burst of commands over the limit is answered in full, later", "[edge]") {
    limited_gateway gw;
    msnp_client alice(gw.port);
    alice.login("alice@example.com", "alice password");
    // 150 PNGs at once: more than the shipped burst of 100 commands.
    std::string burst;
    for (int i = 0; i < 150; ++i) burst += "PNG\r\n";
    alice.send(burst);
    for (int i = 0; i < 150; ++i) {
        INFO("QNG " << i);
        REQUIRE(alice.line().starts_with("QNG"));
    }
    CHECK(words(alice.command("CHG 20 AWY")).at(2) == "AWY");
}

TEST_CASE("a connection not signed in within handshake_timeout is closed; a signed-in one stays", "[edge]") {
    limited_gateway gw("handshake_timeout = \"1s\"\n");
    msnp_client alice(gw.port);
    alice.login("alice@example.com", "alice password");
    // Negotiates, then never signs in; the idle timeout (300 s) is far off.
    tcp_client lingering(gw.port);
    lingering.send("VER 1 MSNP8 CVR0\r\n");
    const auto rest = lingering.read_to_eof(10s);
    REQUIRE(rest);
    CHECK(rest->starts_with("VER 1 MSNP8"));
    REQUIRE(gw.proc->wait_for_line("reason=\"not signed in within handshake_timeout\""));
    // Alice signed in long before and is still served.
    CHECK(words(alice.command("CHG 20 AWY")).at(2) == "AWY");
}

TEST_CASE("a MSG before VER is refused at once, its declared payload never buffered", "[edge]") {
    limited_gateway gw;
    tcp_client early(gw.port);
    early.send("MSG 1 U 65536\r\n");
    const auto rest = early.read_to_eof(10s);
    REQUIRE(rest);
    CHECK(rest->empty());
    REQUIRE(gw.proc->wait_for_line("first command MSG is neither VER, USR nor ANS"));
}

TEST_CASE("a failed login's log line names the handle tried", "[edge]") {
    limited_gateway gw;
    msnp_client guess(gw.port);
    guess.command("VER 1 MSNP5 CVR0");
    const auto salt = words(guess.command("USR 2 MD5 I alice@example.com")).at(4);
    guess.send("USR 3 MD5 S " + md5_hex(salt + "a wrong guess") + "\r\n");
    CHECK(guess.line() == "911 3");
    REQUIRE(gw.proc->wait_for_line("reason=\"authentication failed for alice@example.com\""));
}

TEST_CASE("a second gateway on the same port stops with a reason instead of sharing it", "[edge]") {
    // Two threads: the port is served by an acceptor per thread (SO_REUSEPORT).
    limited_gateway first;
    temp_dir other;
    const fs::path settings = other.path / "switchyard.toml";
    write_file(settings, "[gateway]\ndata_dir = \"data\"\nthreads = 2\n[listeners.msnp]\nport = " +
                             std::to_string(first.port) +
                             "\n[listeners.ws]\nenabled = false\n[listeners.admin]\nport = 0\n");
    write_file(other.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    child_process second({binary, "run", "-c", settings.string()});
    const auto status = second.wait_exit(10s);
    INFO(second.output());
    REQUIRE(status);
    CHECK(*status != 0);
    CHECK(second.output().find("the port is in use") != std::string::npos);
}

TEST_CASE("a signing-key file other users may read is refused with the fix", "[edge]") {
    temp_dir dir;
    const fs::path settings = dir.path / "switchyard.toml";
    write_file(settings, "[gateway]\ndata_dir = \"data\"\n[listeners.msnp]\nport = 0\n"
                         "[listeners.ws]\nenabled = false\n[listeners.admin]\nport = 0\n");
    write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    fs::create_directories(dir.path / "data");
    const fs::path keys = dir.path / "data" / "hmac-keys";
    write_file(keys, "k1 " + std::string(64, 'a') + "\n");
    fs::permissions(keys, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::others_read);
    child_process gateway({binary, "run", "-c", settings.string()});
    const auto status = gateway.wait_exit(10s);
    INFO(gateway.output());
    REQUIRE(status);
    CHECK(*status != 0);
    CHECK(gateway.output().find("(mode 0644)") != std::string::npos);
    CHECK(gateway.output().find("chmod 600") != std::string::npos);
}

TEST_CASE("switchboard sessions leave no rooms behind: unused cookies, an unanswered invitation, a crash",
          "[edge][rooms]") {
    limited_gateway gw;
    msnp_client alice(gw.port);
    alice.login("alice@example.com", "alice password");
    msnp_client bob(gw.port);
    bob.login("bob@example.com", "bob password");

    // XFRs never followed by a USR.
    for (int i = 10; i < 40; ++i) alice.command("XFR " + std::to_string(i) + " SB");
    CHECK(gw.rooms() == 0);

    // Alice calls Bob and leaves before he answers: the session ends with
    // her, and his late answer is refused.
    const auto open_switchboard = [&](int trid) {
        const auto xfr = words(alice.command("XFR " + std::to_string(trid) + " SB"));
        const auto sb_port = static_cast<unsigned short>(std::stoi(xfr.at(3).substr(xfr.at(3).rfind(':') + 1)));
        auto sb = std::make_unique<msnp_client>(sb_port);
        sb->command("USR 1 alice@example.com " + xfr.at(5));
        const auto session = words(sb->command("CAL 2 bob@example.com")).at(3);
        const auto rng = words(bob.reply("RNG " + session));
        return std::tuple{std::move(sb), sb_port, session, rng.at(4)};
    };
    {
        auto [alice_sb, sb_port, session, cookie] = open_switchboard(50);
        CHECK(gw.rooms() == 1);
        alice_sb->send("OUT\r\n");
        REQUIRE(alice_sb->closes());
        msnp_client bob_sb(sb_port);
        bob_sb.send("ANS 1 bob@example.com " + cookie + " " + session + "\r\n");
        CHECK(bob_sb.line() == "911 1");
        CHECK(gw.rooms() == 0);
    }

    // A session both joined, then the gateway is killed: it cannot be
    // resumed by MSN clients, so the restart removes it.
    auto [alice_sb, sb_port, session, cookie] = open_switchboard(60);
    msnp_client bob_sb(sb_port);
    bob_sb.command("ANS 1 bob@example.com " + cookie + " " + session);
    alice_sb->reply("JOI bob@example.com");
    CHECK(gw.rooms() == 1);
    gw.kill_and_restart();
    CHECK(gw.rooms() == 0);
}

TEST_CASE("connections over max_connections are closed at once, and the admin listener still answers",
          "[edge][connections]") {
    limited_gateway gw("max_connections = 3\n");
    // Three idle connections that never send a byte fill the public listeners.
    std::vector<std::unique_ptr<tcp_client>> idle;
    for (int i = 0; i < 3; ++i) {
        idle.push_back(std::make_unique<tcp_client>(gw.port));
        // Each is served: it answers VER (so it was admitted before the next one).
        idle.back()->send("VER 1 MSNP8 CVR0\r\n");
        REQUIRE(idle.back()->read_until("VER 1 MSNP8"));
    }
    tcp_client fourth(gw.port);
    fourth.send("VER 1 MSNP8 CVR0\r\n");
    const auto rest = fourth.read_to_eof();
    REQUIRE(rest);
    CHECK(rest->empty());
    CHECK(http_request(gw.admin_port, "GET", "/healthz").status == 200);
    const auto metrics = http_request(gw.admin_port, "GET", "/metrics").body;
    CHECK(metrics.find("switchyard_connections_refused_total{limit=\"max_connections\"} 1\n") != std::string::npos);
    REQUIRE(gw.proc->wait_for_line("event=connection_refused listener=msnp"));
}

TEST_CASE("one address cannot hold more than max_connections_per_address; others still connect",
          "[edge][connections]") {
    limited_gateway gw("max_connections_per_address = 2\n");
    const auto served = [&](tcp_client& c) {
        c.send("VER 1 MSNP8 CVR0\r\n");
        return c.read_until("VER 1 MSNP8").has_value();
    };
    // One after the other: each is admitted (or not) before the next connects.
    tcp_client a1(gw.port);
    CHECK(served(a1));
    tcp_client a2(gw.port);
    CHECK(served(a2));
    tcp_client a3(gw.port);
    CHECK_FALSE(served(a3));
    tcp_client b1(gw.port, "127.0.0.2");
    CHECK(served(b1));
    const auto metrics = http_request(gw.admin_port, "GET", "/metrics").body;
    CHECK(metrics.find("switchyard_connections_refused_total{limit=\"max_connections_per_address\"} 1\n") !=
          std::string::npos);
}

TEST_CASE("connections closed before signing in cannot flood the log; a user's sign-out is always logged",
          "[edge][connections]") {
    limited_gateway gw;
    // 300 connections that send a command no session begins with.
    for (int i = 0; i < 300; ++i) {
        tcp_client junk(gw.port);
        junk.send("PNG\r\n");
        REQUIRE(junk.read_to_eof());
    }
    msnp_client alice(gw.port);
    alice.login("alice@example.com", "alice password");
    alice.send("OUT\r\n");
    REQUIRE(alice.closes());
    REQUIRE(gw.proc->wait_for_line("reason=\"signed out\""));
    const auto& out = gw.proc->output();
    std::size_t closed = 0;
    for (auto at = out.find("event=connection_closed"); at != std::string::npos;
         at = out.find("event=connection_closed", at + 1)) {
        ++closed;
    }
    INFO(closed << " connection_closed lines");
    // A burst of 20, 5 a second after: far fewer than the 300 closed.
    CHECK(closed < 100);
    // The count of what was left out comes with the next line let through.
    bool counted = out.find("suppressed=") != std::string::npos;
    for (int i = 0; i < 50 && !counted; ++i) {
        tcp_client junk(gw.port);
        junk.send("PNG\r\n");
        REQUIRE(junk.read_to_eof());
        counted = gw.proc->wait_for_line("suppressed=", 100ms).has_value();
    }
    CHECK(counted);
}

TEST_CASE("the admin endpoint refuses web pages, other hosts' names, and without its token everything but /healthz",
          "[edge][admin]") {
    limited_gateway gw;
    const auto reload = [&](std::string_view headers) {
        return http_request(gw.admin_port, "POST", "/routes/reload", headers).status;
    };
    CHECK(reload("Host: 127.0.0.1\r\n") == 200);
    CHECK(reload("Host: [::1]:9090\r\n") == 200);
    CHECK(reload("Host: localhost:9090\r\n") == 200);
    // A page's cross-origin POST (CSRF) carries its Origin.
    CHECK(reload("Host: 127.0.0.1\r\nOrigin: http://attacker.example\r\n") == 403);
    // A page whose name was rebound to 127.0.0.1 sends its own name.
    CHECK(reload("Host: attacker.example:9090\r\n") == 421);
    CHECK(http_request(gw.admin_port, "GET", "/metrics", "Host: attacker.example\r\n").status == 421);
    REQUIRE(gw.proc->wait_for_line("status=421"));
}

TEST_CASE("with a token_file the admin endpoint needs its token; a public admin address without one is warned of",
          "[edge][admin]") {
    temp_dir dir;
    const fs::path settings = dir.path / "switchyard.toml";
    const std::string token = "an admin token of some length";
    write_file(dir.path / "admin-token", token + "\n");
    fs::permissions(dir.path / "admin-token", fs::perms::owner_read | fs::perms::owner_write);
    write_file(settings, "[gateway]\ndata_dir = \"data\"\n[listeners.msnp]\nport = 0\n[listeners.ws]\nenabled = false\n"
                         "[listeners.admin]\nport = 0\ntoken_file = \"admin-token\"\nhosts = [\"gw.internal\"]\n");
    write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    child_process gateway({binary, "run", "-c", settings.string()});
    const auto line = gateway.wait_for_line("event=listening listener=admin");
    INFO(gateway.output());
    REQUIRE(line);
    const auto admin = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
    REQUIRE(gateway.wait_for_line("event=started"));
    CHECK(http_request(admin, "GET", "/healthz").status == 200);
    CHECK(http_request(admin, "GET", "/metrics").status == 401);
    CHECK(http_request(admin, "GET", "/metrics", "Host: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n").status == 401);
    CHECK(http_request(admin, "GET", "/metrics", "Host: gw.internal\r\nAuthorization: Bearer " + token + "\r\n")
              .status == 200);
    CHECK(gateway.output().find("event=settings_warning") == std::string::npos);
    gateway.signal(SIGTERM);
    REQUIRE(gateway.wait_exit());

    // On every address, with no token: valid, with a warning (checked, not
    // run: tests listen on loopback only).
    write_file(settings, "[gateway]\ndata_dir = \"data\"\n[listeners.msnp]\nport = 0\n[listeners.ws]\nenabled = false\n"
                         "[listeners.admin]\naddress = \"0.0.0.0\"\nport = 0\n");
    const auto checked = run_to_completion({binary, "check", "-c", settings.string()});
    INFO(checked.output);
    CHECK(checked.status == 0);
    CHECK(checked.output.find("warning: [listeners.admin] listens on 0.0.0.0 without token_file") != std::string::npos);

    // A token file others may read is refused.
    fs::permissions(dir.path / "admin-token", fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    write_file(settings, "[gateway]\ndata_dir = \"data\"\n[listeners.msnp]\nport = 0\n[listeners.ws]\nenabled = false\n"
                         "[listeners.admin]\nport = 0\ntoken_file = \"admin-token\"\n");
    child_process refused({binary, "run", "-c", settings.string()});
    const auto status = refused.wait_exit(10s);
    REQUIRE(status);
    CHECK(*status != 0);
    CHECK(refused.output().find("chmod 600") != std::string::npos);
}
