// Password guessing and stale tickets on the real binary: MSNP2-7 MD5
// guesses make the next attempt of that handle from that address wait
// (refused with 911 and a close, the right password included), while other
// addresses and handles sign in; a password change or a removed account
// ends the Passport tickets and WebSocket session tokens issued before.
// Clients come from several 127.0.0.x addresses (Linux routes 127/8 to lo).
#include "child_process.hpp"
#include "msnp_client.hpp"

#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace gw = switchyard::gateway;

namespace {

const std::string binary = SWITCHYARD_BINARY;

// The gateway signs with this key, so the test can mint tickets.
const gw::config::hmac_key test_key{"test1", "0123456789abcdef0123456789abcdef"};
const char* const test_key_base64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

struct guarded_gateway {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";
    std::unique_ptr<child_process> proc;
    unsigned short port = 0;

    guarded_gateway() {
        write_file(settings, std::string("[gateway]\ndata_dir = \"data\"\nthreads = 2\n[listeners.msnp]\nport = 0\n"
                                         "[listeners.ws]\nenabled = false\n[listeners.admin]\nport = 0\n"
                                         "[accounts]\nscrypt_n = 1024\n[[keys]]\nid = \"test1\"\nsecret = \"") +
                                 test_key_base64 + "\"\n");
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
        for (const char* user : {"alice", "bob"}) add_user(std::string(user) + "@example.com", std::string(user) + " password");
        proc = std::make_unique<child_process>(std::vector<std::string>{binary, "run", "-c", settings.string()});
        const auto line = proc->wait_for_line("event=listening listener=msnp");
        INFO(proc->output());
        REQUIRE(line);
        port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        REQUIRE(proc->wait_for_line("event=started"));
    }
    ~guarded_gateway() {
        proc->signal(SIGTERM);
        proc->wait_exit();
    }

    run_result user(std::vector<std::string> args, const std::string& input = {}) const {
        args.insert(args.begin(), {binary, "user"});
        args.insert(args.end(), {"-c", settings.string()});
        return run_to_completion(args, input);
    }
    void add_user(const std::string& handle, const std::string& password) const {
        const auto r = user({"add", handle, "--legacy-md5"}, password + "\n");
        INFO(r.output);
        REQUIRE(r.status == 0);
    }
};

// One MD5 login attempt from `source`: the USR reply line (USR OK, or 911).
std::string md5_attempt(unsigned short port, const std::string& source, const std::string& handle,
                        const std::string& password) {
    msnp_client c(port, source);
    c.command("VER 1 MSNP7 CVR0");
    const auto salt = words(c.command("USR 2 MD5 I " + handle)).at(4);
    c.send("USR 3 MD5 S " + md5_hex(salt + password) + "\r\n");
    return c.line();
}

// One TWN login with `ticket` (msnp-reference section 3.3): the USR S reply.
std::string twn_attempt(unsigned short port, const std::string& handle, const std::string& ticket) {
    msnp_client c(port);
    c.command("VER 1 MSNP11 CVR0");
    c.command("USR 3 TWN I " + handle);
    c.send("USR 4 TWN S t=" + ticket + "&p=\r\n");
    return c.line();
}

}  // namespace

TEST_CASE("MD5 guesses make the next attempt wait, the right password included", "[login_guard]") {
    guarded_gateway g;
    // The shipped settings: three failures of one handle from one address
    // are free, then the next attempt waits 1 s, 2 s, 4 s ...
    for (int i = 0; i < 3; ++i) {
        INFO("guess " << i);
        CHECK(md5_attempt(g.port, "127.0.0.2", "alice@example.com", "guess " + std::to_string(i)) == "911 3");
    }
    // Refused without being checked, so guessing right gains nothing; said
    // once in the log, with the handle and the address.
    CHECK(md5_attempt(g.port, "127.0.0.2", "alice@example.com", "alice password") == "911 3");
    INFO(g.proc->output());
    REQUIRE(g.proc->wait_for_line("event=login_failures handle=alice@example.com address=127.0.0.2"));
    const auto throttled = g.proc->wait_for_line("event=login_throttled");
    REQUIRE(throttled);
    CHECK(log_field(*throttled, "handle") == "alice@example.com");
    CHECK(log_field(*throttled, "address") == "127.0.0.2");
    // Alice from her own address, and another handle from the guesser's
    // (three failures are far from the address's own limit), sign in.
    CHECK(words(md5_attempt(g.port, "127.0.0.1", "alice@example.com", "alice password")).at(2) == "OK");
    CHECK(words(md5_attempt(g.port, "127.0.0.2", "bob@example.com", "bob password")).at(2) == "OK");
}

TEST_CASE("a password change ends the tickets issued before it; a removed account's end with it", "[login_guard]") {
    guarded_gateway g;
    const gw::token_service tokens({test_key});
    // Issued after the account was made (a ticket older than the account is
    // refused as well: see the end).
    const std::string before = tokens.issue_ticket("alice@example.com", now_ms());
    CHECK(words(twn_attempt(g.port, "alice@example.com", before)).at(2) == "OK");

    auto r = g.user({"passwd", "alice@example.com"}, "alice's new password\n");
    INFO(r.output);
    REQUIRE(r.status == 0);
    // The same ticket, still unexpired and correctly signed, is refused.
    CHECK(twn_attempt(g.port, "alice@example.com", before) == "911 4");
    // One issued after the change works.
    const std::string after = tokens.issue_ticket("alice@example.com", now_ms());
    CHECK(words(twn_attempt(g.port, "alice@example.com", after)).at(2) == "OK");

    // Removed and made again under the same handle: the new account's
    // owner is not whoever held the old one's ticket.
    const std::string bobs = tokens.issue_ticket("bob@example.com", now_ms());
    CHECK(words(twn_attempt(g.port, "bob@example.com", bobs)).at(2) == "OK");
    r = g.user({"del", "bob@example.com"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(twn_attempt(g.port, "bob@example.com", bobs) == "911 4");
    g.add_user("bob@example.com", "another bob password");
    CHECK(twn_attempt(g.port, "bob@example.com", bobs) == "911 4");
}
