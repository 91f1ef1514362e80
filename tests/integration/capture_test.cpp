// [listeners.msnp] capture_dir on the real binary: sessions are recorded
// one file per connection, owner-only, with secrets redacted into
// variables, and each recorded file replays green with switchyard-replay
// (a real process) against a gateway with the same accounts.
#include "child_process.hpp"

#include "tools/replay/runner.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace replay = switchyard::replay;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const std::string replay_binary = SWITCHYARD_REPLAY;
const fs::path source_dir = SWITCHYARD_SOURCE_DIR;

// Two sessions, one after the other: Alice signs in with a Passport ticket
// (MSNP8), adds Bob, pings, opens a switchboard and leaves it; Bob signs in with
// MD5 (MSNP5) and finds her on his reverse list. Loose: this only drives
// the gateway, the recording is what the test checks.
const char* const session = R"(@user alice@example.com secret-alice
@user bob@example.com secret-bob legacy-md5
A C: VER 1 MSNP8 CVR0
A S: VER 1 MSNP8 CVR0
A C: CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 5.0.0544 MSMSGS alice@example.com
A S: CVR 2 ...
A C: USR 3 TWN I alice@example.com
A S: USR 3 TWN S ...
A C: USR 4 TWN S ${ticket:alice@example.com}
A S: USR 4 OK ...
A C: SYN 5 0
A S: SYN 5 ...
A C: CHG 6 NLN 0
A S: CHG 6 NLN 0
A C: ADD 7 FL bob@example.com bob@example.com 0
A S: ADD 7 FL ...
A C: PNG
A C: XFR 8 SB
A S: XFR 8 SB ${sb} CKI ${cookie}
A-SB C: USR 9 alice@example.com ${cookie}
A-SB S: USR 9 OK ...
A-SB C: OUT
A-SB S: (closed)
A C: OUT
A S: (closed)
B C: VER 1 MSNP5 CVR0
B S: VER 1 MSNP5 CVR0
B C: USR 2 MD5 I bob@example.com
B S: USR 2 MD5 S ${salt}
B C: USR 3 MD5 S ${md5:salt}
B S: USR 3 OK ...
B C: SYN 4 0
B S: SYN 4 ...
B C: CHG 5 NLN
B S: CHG 5 NLN
B C: OUT
B S: (closed)
)";

struct gateway_under_test {
    fs::path dir;
    std::optional<child_process> proc;
    std::map<std::string, std::string> ports;

    gateway_under_test(const fs::path& d, const fs::path& certs, const std::string& capture) : dir(d) {
        fs::create_directories(dir);
        write_file(dir / "routes.toml", "[default]\nbackend = \"embedded\"\n");
        write_file(dir / "switchyard.toml",
                   "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n" + capture +
                       "[listeners.ws]\nport = 0\n[listeners.admin]\nport = 0\n"
                       "[listeners.https]\nenabled = true\nport = 0\ntls = \"legacy\"\n"
                       "[tls.legacy]\ncertificate = \"" + (certs / "legacy.pem").string() + "\"\nprivate_key = \"" +
                       (certs / "legacy.key").string() + "\"\n[accounts]\nscrypt_n = 1024\n");
        for (const auto& [handle, password, md5] :
             {std::tuple{"alice@example.com", "secret-alice", false}, std::tuple{"bob@example.com", "secret-bob", true}}) {
            std::vector<std::string> args{binary, "user", "add", handle, "-c", (dir / "switchyard.toml").string()};
            if (md5) args.push_back("--legacy-md5");
            const auto r = run_to_completion(args, std::string(password) + "\n");
            INFO(r.output);
            REQUIRE(r.status == 0);
        }
        proc.emplace(std::vector<std::string>{binary, "run", "-c", (dir / "switchyard.toml").string()});
        for (int i = 0; i < 4; ++i) {
            const auto line = proc->wait_for_line("event=listening");
            INFO(proc->output());
            REQUIRE(line);
            ports[log_field(*line, "listener")] = log_field(*line, "port");
        }
        INFO(proc->output());
        REQUIRE(proc->wait_for_line("event=started"));
    }

    void stop() {
        proc->signal(SIGTERM);
        CHECK(proc->wait_exit() == std::optional<int>{0});
    }
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("recorded MSNP sessions replay green against a gateway with the same accounts", "[capture]") {
    const temp_dir tmp;
    const auto certs = run_to_completion({"/bin/sh", (source_dir / "fixtures/certs/make-certs.sh").string(),
                                          (tmp.path / "certs").string()});
    INFO(certs.output);
    REQUIRE(certs.status == 0);
    const fs::path captures = tmp.path / "captures";

    gateway_under_test recorder(tmp.path / "recorder", tmp.path / "certs", "capture_dir = \"" + captures.string() + "\"\n");
    replay::transcript t;
    REQUIRE_FALSE(replay::parse(session, "session", t));
    replay::run_options o;
    o.port = static_cast<std::uint16_t>(std::stoi(recorder.ports["msnp"]));
    o.nexus_url = "https://127.0.0.1:" + recorder.ports["https"] + "/rdr/pprdr.asp";
    o.ca_file = (tmp.path / "certs" / "legacy.pem").string();
    o.loose = true;
    const auto recorded = replay::run(t, o);
    std::string report;
    for (const auto& f : recorded.failures) report += replay::describe(f) + "\n";
    INFO(report);
    REQUIRE(recorded.passed());
    recorder.stop();  // the writer thread has written everything once the gateway has exited

    // One file per connection, owner-only, in a directory only the owner may enter.
    struct stat st{};
    REQUIRE(::stat(captures.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    std::vector<std::pair<int, fs::path>> files;
    for (const auto& e : fs::directory_iterator(captures)) {
        REQUIRE(::stat(e.path().c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        const std::string name = e.path().stem().string();
        files.push_back({std::stoi(name.substr(name.rfind('-') + 1)), e.path()});
    }
    std::sort(files.begin(), files.end());
    REQUIRE(files.size() == 3);
    const std::string alice = slurp(files[0].second), board = slurp(files[1].second), bob = slurp(files[2].second);
    INFO(alice << "\n" << board << "\n" << bob);
    // The switchboard's cookie came over the other connection: a variable
    // the replay fills by asking for a switchboard of its own.
    CHECK(board.find("SB C: USR 9 alice@example.com ${cookie}\n") != std::string::npos);
    CHECK(board.find("SB S: (closed)\n") != std::string::npos);
    // Secrets are variables: the ticket, the MD5 answer, the cookie.
    CHECK(alice.find("NS C: USR 4 TWN S ${ticket:alice@example.com}\n") != std::string::npos);
    CHECK(alice.find("NS S: XFR 8 SB ${sb1} CKI ${cookie1}\n") != std::string::npos);
    CHECK(alice.find("NS S: (closed)\n") != std::string::npos);
    CHECK(bob.find("NS S: USR 2 MD5 S ${salt1}\n") != std::string::npos);
    CHECK(bob.find("NS C: USR 3 MD5 S ${md5:salt1}\n") != std::string::npos);
    CHECK(alice.find("TWN S t=") == std::string::npos);
    CHECK(alice.find("secret") == std::string::npos);
    CHECK(bob.find("secret") == std::string::npos);
    CHECK(bob.find("+0.") != std::string::npos);  // timed

    // Replayed in the order they were recorded, strictly, by the tool.
    gateway_under_test target(tmp.path / "target", tmp.path / "certs", "");
    write_file(tmp.path / "accounts", "alice@example.com secret-alice\nbob@example.com secret-bob\n");
    for (const auto& [id, file] : files) {
        const auto r = run_to_completion({replay_binary, "run", file.string(), "--target", "127.0.0.1:" + target.ports["msnp"],
                                          "--nexus", "https://127.0.0.1:" + target.ports["https"] + "/rdr/pprdr.asp",
                                          "--ca-file", (tmp.path / "certs" / "legacy.pem").string(),
                                          "--accounts", (tmp.path / "accounts").string(), "--timeout", "3000"});
        INFO(file << "\n" << r.output);
        CHECK(r.status == 0);
    }
    // Paced as captured, stretched a hundredfold: the replay takes at least a hundred
    // times the recorded time of Bob's last command (his session again: MD5
    // logins may repeat, and his lists are as they were).
    replay::transcript b;
    REQUIRE_FALSE(replay::parse(bob, "bob", b));
    double last = 0;  // pacing delays what the client sends
    for (const auto& step : b.steps) {
        if (step.client) last = step.at.value_or(0);
    }
    const auto started = std::chrono::steady_clock::now();
    const auto paced = run_to_completion({replay_binary, "run", files[2].second.string(), "--target",
                                          "127.0.0.1:" + target.ports["msnp"], "--accounts", (tmp.path / "accounts").string(),
                                          "--pace", "100"});
    INFO(paced.output);
    CHECK(paced.status == 0);
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >= 100 * last);
    target.stop();
}
