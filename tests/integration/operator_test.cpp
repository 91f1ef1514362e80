// The real switchyard binary's operator commands: `user add|passwd|del|list`
// and `room list|history`, on a data directory of their own. Passwords go in
// through a pipe, and through a pseudo-terminal for the prompts.
#include "child_process.hpp"
#include "msnp_client.hpp"

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {

const std::string binary = SWITCHYARD_BINARY;

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

// A settings file with cheap scrypt, a routes file, and the commands run on them.
struct installation {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";

    installation() {
        write_file(settings, "[gateway]\ndata_dir = \"data\"\n\n[accounts]\nscrypt_n = 1024\n");
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    }

    fs::path database() const { return dir.path / "data" / "embedded.sqlite3"; }

    std::vector<std::string> command(std::vector<std::string> args) const {
        args.insert(args.begin(), binary);
        args.push_back("-c");
        args.push_back(settings.string());
        return args;
    }
    run_result run(std::vector<std::string> args) const { return run_to_completion(command(std::move(args))); }
    run_result run(std::vector<std::string> args, std::string_view input) const {
        return run_to_completion(command(std::move(args)), input);
    }

    // Runs SQL on the database (which the commands have created by then).
    void sql(const std::string& statements) const {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(database().c_str(), &db) == SQLITE_OK);
        char* err = nullptr;
        const int rc = sqlite3_exec(db, statements.c_str(), nullptr, nullptr, &err);
        INFO((err ? err : ""));
        sqlite3_free(err);
        sqlite3_close(db);
        REQUIRE(rc == SQLITE_OK);
    }
};

// Runs a command on a pseudo-terminal and types each answer once its prompt
// has appeared (earlier typing would be flushed when echo is turned off).
run_result run_on_terminal(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& answers) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int terminal = -1;
    const pid_t pid = ::forkpty(&terminal, nullptr, nullptr, nullptr);
    if (pid < 0) throw std::runtime_error("forkpty failed");
    if (pid == 0) {
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    std::string output;
    std::size_t answered = 0;
    std::size_t unseen = 0;  // where to look for the next prompt
    for (;;) {
        if (answered < answers.size()) {
            const auto at = output.find(answers[answered].first, unseen);
            if (at != std::string::npos) {
                const std::string line = answers[answered].second + "\n";
                REQUIRE(::write(terminal, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
                unseen = at + answers[answered].first.size();
                ++answered;
                continue;
            }
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{terminal, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            ::close(terminal);
            throw std::runtime_error("no prompt or exit on the terminal in time; got: " + output);
        }
        char buf[4096];
        const ssize_t n = ::read(terminal, buf, sizeof buf);
        if (n <= 0) break;  // EIO once the child has gone
        output.append(buf, static_cast<std::size_t>(n));
    }
    ::close(terminal);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace

TEST_CASE("user add creates an account from a password on stdin", "[operator]") {
    installation in;
    auto r = in.run({"user", "add", "Alice@Example.COM", "--name", "Alice"}, "correct horse\n");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "added user alice@example.com\n");
    // Owner-only: it holds password hashes.
    CHECK((fs::status(in.database()).permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
          fs::perms::none);

    r = in.run({"user", "add", "bob@example.com", "--legacy-md5"}, "battery staple");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "added user bob@example.com with MSNP2-7 MD5 login\n");

    r = in.run({"user", "list"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    const auto header = r.output.substr(0, r.output.find('\n'));
    CHECK(header == "HANDLE             DISPLAY NAME     LEGACY MD5  CREATED");
    CHECK(contains(r.output, "\nalice@example.com  Alice            no          20"));
    CHECK(contains(r.output, "\nbob@example.com    bob@example.com  yes         20"));
    CHECK(contains(r.output, "Z\n"));
}

TEST_CASE("user add and passwd refuse bad input with a reason and a failing status", "[operator]") {
    installation in;
    REQUIRE(in.run({"user", "add", "alice@example.com"}, "correct horse\n").status == 0);

    struct refusal {
        std::vector<std::string> args;
        std::string input;
        std::string reason;
    };
    const std::vector<refusal> refusals{
        {{"user", "add", "no-at-sign"}, "correct horse\n", "invalid handle \"no-at-sign\""},
        {{"user", "add", "ALICE@example.com"}, "correct horse\n", "user alice@example.com exists already"},
        {{"user", "add", "bob@example.com"}, "short\n",
         "the password is 5 bytes long; expected 8 to 128 bytes of UTF-8, other than the handle"},
        {{"user", "add", "bob@example.com"}, "Bob@Example.com\n", "the password is the handle"},
        {{"user", "add", "bob@example.com"}, "", "expected the password on a line of standard input"},
        {{"user", "add", "bob@example.com", "--name", std::string(388, 'x')}, "correct horse\n",
         "invalid display name"},
        {{"user", "passwd", "bob@example.com"}, "correct horse\n", "no user bob@example.com"},
        {{"user", "passwd", "alice@example.com"}, "tiny\n", "expected 8 to 128 bytes"},
        {{"user", "del", "bob@example.com"}, "", "no user bob@example.com"},
        {{"user", "passwd", "alice@example.com", "--legacy-md5", "--no-legacy-md5"}, "correct horse\n",
         "excludes"},
    };
    for (const auto& [args, input, reason] : refusals) {
        const auto r = in.run(args, input);
        INFO(args[1] << " " << args[2] << ": " << r.output);
        CHECK(r.status != 0);
        CHECK(contains(r.output, reason));
    }
    const auto list = in.run({"user", "list"});
    CHECK(std::count(list.output.begin(), list.output.end(), '\n') == 2);  // header and alice
}

TEST_CASE("user passwd changes the password and the legacy setting; user del removes", "[operator]") {
    installation in;
    REQUIRE(in.run({"user", "add", "alice@example.com"}, "correct horse\n").status == 0);

    auto r = in.run({"user", "passwd", "Alice@example.com", "--legacy-md5"}, "new password\r\n");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "changed the password of alice@example.com; MSNP2-7 MD5 login on\n");
    CHECK(contains(in.run({"user", "list"}).output, "alice@example.com  yes"));

    r = in.run({"user", "passwd", "alice@example.com"}, "newer password\n");
    REQUIRE(r.status == 0);
    CHECK(r.output == "changed the password of alice@example.com\n");
    CHECK(contains(in.run({"user", "list"}).output, "alice@example.com  yes"));

    r = in.run({"user", "passwd", "alice@example.com", "--no-legacy-md5"}, "newest password\n");
    REQUIRE(r.status == 0);
    CHECK(r.output == "changed the password of alice@example.com; MSNP2-7 MD5 login off\n");
    CHECK(contains(in.run({"user", "list"}).output, "alice@example.com  no"));

    in.sql("INSERT INTO contacts (owner, contact, lists, display_name, contact_id) "
           "VALUES ('alice@example.com', 'bob@example.com', 1, 'Bob', 'c1')");
    r = in.run({"user", "del", "ALICE@example.com"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "removed user alice@example.com\n");
    CHECK(in.run({"user", "list"}).output == "HANDLE  DISPLAY NAME  LEGACY MD5  CREATED\n");
}

TEST_CASE("on a terminal the password is asked twice without echo", "[operator]") {
    installation in;
    const auto add = in.command({"user", "add", "alice@example.com"});

    auto r = run_on_terminal(add, {{"New password: ", "correct horse"}, {"Retype new password: ", "correct hoarse"}});
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "the passwords do not match; nothing was changed"));
    CHECK_FALSE(contains(r.output, "correct"));

    r = run_on_terminal(add, {{"New password: ", "correct horse"}, {"Retype new password: ", "correct horse"}});
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "added user alice@example.com"));
    CHECK_FALSE(contains(r.output, "correct"));
}

TEST_CASE("room list and room history read the rooms and their ring of messages", "[operator]") {
    installation in;
    auto r = in.run({"room", "list"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output == "ROOM  POLICY  TITLE  MEMBERS  LAST SEQ\n");

    // 105 messages through a ring of 100 (slot = seq % 100): seq 6 to 105
    // remain, and slot order is no longer seq order.
    in.sql(R"sql(
        INSERT INTO rooms (id, policy, title, creator, created_ms)
            VALUES ('lobby', 2, 'The Lobby', 'alice@example.com', 0),
                   ('sb1', 1, '', 'bob@example.com', 0);
        INSERT INTO room_members (room, user)
            VALUES ('lobby', 'alice@example.com'), ('lobby', 'bob@example.com'), ('sb1', 'bob@example.com');
        WITH RECURSIVE n(seq) AS (SELECT 1 UNION ALL SELECT seq + 1 FROM n WHERE seq < 105)
        INSERT OR REPLACE INTO messages (room, slot, seq, sender, message_id, ts_ms, text, font, effects, color,
                                        charset, pitch, rtl)
            SELECT 'lobby', seq % 100, seq, 'alice@example.com', '', 1700000000000 + seq * 1000,
                   'message ' || seq, '', '', 0, 0, 0, 0 FROM n;
        UPDATE messages SET text = 'two' || char(10) || 'lines' || char(27) || '[31m' WHERE seq = 105;
    )sql");

    r = in.run({"room", "list"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output ==
          "ROOM        POLICY       TITLE      MEMBERS  LAST SEQ\n"
          "room:lobby  named        The Lobby  2        105\n"
          "room:sb1    invite_only             1        0\n");

    r = in.run({"room", "history", "room:lobby", "--limit", "3"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(r.output ==
          "SEQ  TIME                  SENDER             TEXT\n"
          "103  2023-11-14T22:15:03Z  alice@example.com  message 103\n"
          "104  2023-11-14T22:15:04Z  alice@example.com  message 104\n"
          "105  2023-11-14T22:15:05Z  alice@example.com  two\\nlines\\x1b[31m\n");

    r = in.run({"room", "history", "lobby"});
    REQUIRE(r.status == 0);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 101);
    CHECK(contains(r.output, "\n6    "));
    CHECK_FALSE(contains(r.output, "message 5\n"));

    r = in.run({"room", "history", "sb1"});
    REQUIRE(r.status == 0);
    CHECK(r.output == "SEQ  TIME  SENDER  TEXT\n");

    r = in.run({"room", "history", "nowhere"});
    CHECK(r.status == 1);
    CHECK(r.output == "no room room:nowhere (a named room's id is name:<name>: see room list)\n");

    r = in.run({"room", "history", "lobby", "--limit", "101"});
    CHECK(r.status != 0);
}

TEST_CASE("beside a running gateway, account commands go through it, to the account's single writer",
          "[operator]") {
    installation in;
    write_file(in.settings, "[gateway]\ndata_dir = \"data\"\nthreads = 1\n[listeners.msnp]\nport = 0\n"
                            "[listeners.ws]\nenabled = false\n[listeners.admin]\nport = 0\n"
                            "[accounts]\nscrypt_n = 1024\n");
    REQUIRE(in.run({"user", "add", "alice@example.com", "--legacy-md5"}, "alice password\n").status == 0);
    REQUIRE(in.run({"user", "add", "bob@example.com", "--legacy-md5"}, "bob password\n").status == 0);

    child_process gateway(in.command({"run"}));
    const auto listening = gateway.wait_for_line("event=listening listener=msnp");
    INFO(gateway.output());
    REQUIRE(listening);
    const auto port = static_cast<unsigned short>(std::stoi(log_field(*listening, "port")));
    REQUIRE(gateway.wait_for_line("event=started"));

    // A second process on the same data directory stops with the reason.
    const auto second = in.run({"run"});
    CHECK(second.status != 0);
    CHECK(contains(second.output, "in use by another switchyard process"));

    msnp_client alice(port);
    alice.login("alice@example.com", "alice password");
    msnp_client bob(port);
    bob.login("bob@example.com", "bob password");
    bob.command("ADD 10 FL alice@example.com alice@example.com");

    // Created through the running gateway: usable at once.
    auto r = in.run({"user", "add", "carol@example.com", "--legacy-md5"}, "carol password\n");
    INFO(r.output);
    REQUIRE(r.status == 0);
    REQUIRE(gateway.wait_for_line("event=operator_request type=account_create object=user:carol@example.com"));
    msnp_client carol(port);
    carol.login("carol@example.com", "carol password");
    CHECK(contains(in.run({"user", "list"}).output, "\ncarol@example.com "));

    // A new password counts from the next login; the old one is refused.
    REQUIRE(in.run({"user", "passwd", "carol@example.com"}, "carol's new password\n").status == 0);
    {
        msnp_client old(port);
        old.command("VER 1 MSNP5 CVR0");
        const auto salt = words(old.command("USR 2 MD5 I carol@example.com")).at(4);
        old.send("USR 3 MD5 S " + md5_hex(salt + "carol password") + "\r\n");
        CHECK(old.line() == "911 3");
    }
    msnp_client again(port);
    again.login("carol@example.com", "carol's new password");

    // A removed account is signed out, and its contacts see it leave.
    r = in.run({"user", "del", "alice@example.com"});
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(alice.reply("OUT") == "OUT");
    CHECK(bob.reply("FLN") == "FLN alice@example.com");
    CHECK_FALSE(contains(in.run({"user", "list"}).output, "alice@example.com"));

    gateway.signal(SIGTERM);
    CHECK(gateway.wait_exit() == std::optional<int>{0});
    // With the gateway stopped the commands serve the backend themselves.
    CHECK(contains(in.run({"user", "list"}).output, "\ncarol@example.com "));
}

TEST_CASE("commands report a bad settings file like check does", "[operator]") {
    installation in;
    write_file(in.settings, "[accounts]\nscrypt_n = 3000\n");
    const auto r = in.run({"user", "list"});
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "switchyard.toml:2:12: expected a power of two (1024, 2048, 4096, ...) for scrypt_n, "
                             "found 3000"));
}
