// One golden transcript, run as `switchyard-replay run` (a real process)
// against a real gateway on ports 0, with the HTTPS Passport listener on so
// that ticket logins go through the gateway's own nexus.
//
//   replay_driver SWITCHYARD REPLAY CERT_DIR TRANSCRIPT [--expect-fail TEXT...] [--load N] [-- REPLAY-ARGS...]
//
// Accounts come from the transcript's @user lines; with --load N, the
// trace runs as `switchyard-replay load --copies N`, with the accounts of
// every copy (local.i@domain). With --expect-fail the
// replay must fail, quickly, and its report must contain every TEXT.
// Exit status 0 when the outcome is the expected one.
#include "child_process.hpp"

#include "gateway/login/tokens.hpp"
#include "tools/replay/transcript.hpp"

#include <csignal>
#include <iostream>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {
const std::string key_id = "t1";
const std::string key_secret = "0123456789abcdef0123456789abcdef";  // base64 in the settings below
}  // namespace

int main(int argc, char** argv) {
    // replay_driver --mint HANDLE: a ticket signed with the test key, for
    // the transcripts' handles that have no account (no Passport login).
    if (argc == 3 && std::string(argv[1]) == "--mint") {
        const switchyard::gateway::token_service tokens({{key_id, key_secret}});
        const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch());
        std::cout << "t=" << tokens.issue_ticket(argv[2], static_cast<std::uint64_t>(now.count())) << "&p=\n";
        return 0;
    }
    if (argc < 5) {
        std::cerr << "usage: replay_driver SWITCHYARD REPLAY CERT_DIR TRANSCRIPT [--expect-fail TEXT...] [-- ARGS...]\n";
        return 2;
    }
    const std::string binary = argv[1], replay = argv[2];
    const fs::path certs = argv[3];
    const std::string file = argv[4];
    bool expect_fail = false;
    int copies = 0;
    std::vector<std::string> must_contain, extra;
    for (int i = 5; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--expect-fail") {
            expect_fail = true;
        } else if (a == "--load" && i + 1 < argc) {
            copies = std::stoi(argv[++i]);
        } else if (a == "--") {
            extra.assign(argv + i + 1, argv + argc);
            break;
        } else {
            must_contain.push_back(a);
        }
    }
    switchyard::replay::transcript t;
    if (auto e = switchyard::replay::parse_file(file, t)) {
        std::cerr << e->what() << "\n";
        return 1;
    }
    const temp_dir dir;
    write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    write_file(dir.path / "switchyard.toml",
               "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n"
               "[listeners.admin]\nport = 0\n[listeners.https]\nenabled = true\nport = 0\ntls = \"legacy\"\n"
               "[tls.legacy]\ncertificate = \"" + (certs / "legacy.pem").string() + "\"\nprivate_key = \"" +
               (certs / "legacy.key").string() + "\"\n[accounts]\nscrypt_n = 1024\n"
               "[[keys]]\nid = \"" + key_id + "\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n");
    const std::string conf = (dir.path / "switchyard.toml").string();
    std::vector<switchyard::replay::account> accounts = t.users;
    for (int i = 1; i <= copies; ++i) {
        for (const auto& u : t.users) {
            const auto at = u.handle.find('@');
            accounts.push_back({u.handle.substr(0, at) + "." + std::to_string(i) + u.handle.substr(at), u.password, u.legacy_md5});
        }
    }
    for (const auto& u : accounts) {
        std::vector<std::string> args{binary, "user", "add", u.handle, "-c", conf};
        if (u.legacy_md5) args.push_back("--legacy-md5");
        const auto r = run_to_completion(args, u.password + "\n");
        if (r.status != 0) {
            std::cerr << "user add " << u.handle << " failed:\n" << r.output;
            return 1;
        }
    }
    child_process gw({binary, "run", "-c", conf});
    std::map<std::string, std::string> ports;
    for (int i = 0; i < 4; ++i) {
        const auto line = gw.wait_for_line("event=listening");
        if (!line) {
            std::cerr << "the gateway did not start:\n" << gw.output();
            return 1;
        }
        ports[log_field(*line, "listener")] = log_field(*line, "port");
    }
    if (!gw.wait_for_line("event=started")) {
        std::cerr << "the gateway did not start:\n" << gw.output();
        return 1;
    }
    std::vector<std::string> args{replay, copies ? "load" : "run", file, "--target", "127.0.0.1:" + ports["msnp"],
                                  "--nexus", "https://127.0.0.1:" + ports["https"] + "/rdr/pprdr.asp",
                                  "--ca-file", (certs / "legacy.pem").string(), "--timeout", "3000",
                                  "--ticket-command", std::string(argv[0]) + " --mint"};
    if (copies) {
        args.push_back("--copies");
        args.push_back(std::to_string(copies));
    }
    args.insert(args.end(), extra.begin(), extra.end());
    const auto started = std::chrono::steady_clock::now();
    const auto r = run_to_completion(args, 60s);
    const auto took = std::chrono::steady_clock::now() - started;
    std::cout << r.output;
    gw.signal(SIGTERM);
    const auto exit = gw.wait_exit();
    if (exit != std::optional<int>{0}) {
        std::cerr << "the gateway did not stop cleanly:\n" << gw.output();
        return 1;
    }
    if (!expect_fail) return r.status == 0 ? 0 : 1;
    bool ok = r.status == 1;
    for (const auto& text : must_contain) {
        if (r.output.find(text) == std::string::npos) {
            std::cerr << "the report does not say \"" << text << "\"\n";
            ok = false;
        }
    }
    if (took > 2s) {
        std::cerr << "the failing replay took "
                  << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
        ok = false;
    }
    return ok ? 0 : 1;
}
