// Golden MSNP transcripts (fixtures/transcripts/*.txt) run against the real
// gateway over real sockets, through the replay library that
// switchyard-replay is built on (its format: tools/replay/README.md).
// Here tickets are signed in-process with the test's key; the per-file
// ctest entries (transcript.<name>) run the same files through the tool
// and the gateway's HTTPS nexus instead.
#include "child_process.hpp"

#include "gateway/login/tokens.hpp"
#include "tools/replay/runner.hpp"

#include <catch2/catch.hpp>

#include <csignal>

#include <filesystem>

using namespace switchyard::test;
namespace fs = std::filesystem;
namespace replay = switchyard::replay;

namespace {

const std::string binary = SWITCHYARD_BINARY;
const fs::path transcripts_dir = fs::path(SWITCHYARD_SOURCE_DIR) / "fixtures" / "transcripts";
const std::string key_id = "t1";
const std::string key_secret = "0123456789abcdef0123456789abcdef";  // base64 in the settings below

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace

TEST_CASE("golden MSNP transcripts", "[transcript]") {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(transcripts_dir)) {
        if (e.path().extension() == ".txt") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    REQUIRE_FALSE(files.empty());
    for (const fs::path& file : files) {
        DYNAMIC_SECTION(file.filename().string()) {
            replay::transcript t;
            const auto error = replay::parse_file(file.string(), t);
            INFO((error ? error->what() : ""));
            REQUIRE_FALSE(error);
            const temp_dir dir;
            write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
            write_file(dir.path / "switchyard.toml",
                       "[gateway]\nthreads = 2\n[listeners.msnp]\nport = 0\n[listeners.ws]\nport = 0\n"
                       "[listeners.admin]\nport = 0\n[accounts]\nscrypt_n = 1024\n"
                       "[[keys]]\nid = \"" + key_id + "\"\nsecret = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n");
            const std::string conf = (dir.path / "switchyard.toml").string();
            for (const auto& u : t.users) {
                std::vector<std::string> argv{binary, "user", "add", u.handle, "-c", conf};
                if (u.legacy_md5) argv.push_back("--legacy-md5");
                const auto r = run_to_completion(argv, u.password + "\n");
                INFO(r.output);
                REQUIRE(r.status == 0);
            }
            child_process gw({binary, "run", "-c", conf});
            const auto listening = gw.wait_for_line("event=listening listener=msnp");
            INFO(gw.output());
            REQUIRE(listening);
            REQUIRE(gw.wait_for_line("event=started"));
            const switchyard::gateway::token_service tokens({{key_id, key_secret}});
            replay::run_options options;
            options.port = static_cast<std::uint16_t>(std::stoi(log_field(*listening, "port")));
            options.ticket = [&](const std::string& handle) { return "t=" + tokens.issue_ticket(handle, now_ms()) + "&p="; };
            const auto result = replay::run(t, options);
            std::string report;
            for (const auto& f : result.failures) report += replay::describe(f) + "\n";
            INFO(report);
            CHECK(result.passed());
            CHECK(result.steps == t.steps.size());
            gw.signal(SIGTERM);
            CHECK(gw.wait_exit() == std::optional<int>{0});
        }
    }
}
