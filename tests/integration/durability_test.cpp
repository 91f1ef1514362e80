// Nothing acknowledged is lost when operators work beside a live gateway.
//
// The real binary runs with its embedded backend; while it serves MSNP
// clients, every operator command (`user add|passwd|list|del`, `room
// list|history`, two of them at once) runs against the same data directory.
// Clients make acknowledged changes before and after the commands (contacts
// on three lists, a rename, switchboard messages); then the gateway is killed
// with SIGKILL (or stopped with SIGTERM), started again, and every
// acknowledged change must be there: through MSNP's SYN and through the
// operator commands.
#include "child_process.hpp"
#include "msnp_client.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>

using namespace switchyard::test;
namespace fs = std::filesystem;

namespace {

const std::string binary = SWITCHYARD_BINARY;

// A data directory with settings for `threads` I/O threads and `shards`
// backend shards, and the gateway and operator commands run on it.
struct installation {
    temp_dir dir;
    fs::path settings = dir.path / "switchyard.toml";

    installation(int threads, int shards) {
        write_file(settings, "[gateway]\ndata_dir = \"data\"\nthreads = " + std::to_string(threads) +
                                 "\n[listeners.msnp]\nport = 0\n[listeners.ws]\nenabled = false\n"
                                 "[listeners.admin]\nport = 0\n[accounts]\nscrypt_n = 1024\n"
                                 "[backends.embedded]\nkind = \"embedded\"\nshards = " +
                                 std::to_string(shards) + "\n");
        write_file(dir.path / "routes.toml", "[default]\nbackend = \"embedded\"\n");
    }

    std::vector<std::string> command(std::vector<std::string> args) const {
        args.insert(args.begin(), binary);
        args.push_back("-c");
        args.push_back(settings.string());
        return args;
    }
    std::string run(std::vector<std::string> args, std::string_view input = {}) const {
        const auto r = run_to_completion(command(std::move(args)), input);
        INFO(r.output);
        REQUIRE(r.status == 0);
        return r.output;
    }
};

struct running_gateway {
    child_process proc;
    unsigned short port = 0;

    explicit running_gateway(const installation& in) : proc(in.command({"run"})) {
        const auto line = proc.wait_for_line("event=listening listener=msnp");
        INFO(proc.output());
        REQUIRE(line);
        port = static_cast<unsigned short>(std::stoi(log_field(*line, "port")));
        REQUIRE(proc.wait_for_line("event=started"));
    }
};


// Runs operator commands at once and checks that each succeeds.
void run_together(const installation& in, const std::vector<std::vector<std::string>>& commands) {
    std::vector<std::unique_ptr<child_process>> running;
    for (const auto& c : commands) running.push_back(std::make_unique<child_process>(in.command(c)));
    for (auto& p : running) {
        const auto status = p->wait_exit(30s);
        INFO(p->output());
        CHECK(status == std::optional<int>{0});
    }
}

// Every operator command against the running gateway's data, the read-only
// ones two at a time.
void run_operator_commands(const installation& in, const std::string& room) {
    in.run({"user", "add", "carol@example.com", "--legacy-md5"}, "secret-carol\n");
    in.run({"user", "passwd", "carol@example.com"}, "secret-carol-2\n");
    run_together(in, {{"user", "list"}, {"room", "list"}});
    if (!room.empty()) run_together(in, {{"room", "history", room}, {"user", "list"}});
    in.run({"user", "del", "carol@example.com"});
}

// Sends `count` acknowledged messages numbered from `first`; waits for each ACK.
void send_messages(msnp_client& a, int& tr, int first, int count) {
    std::string burst;
    const int from = tr + 1;
    for (int i = 0; i < count; ++i) burst += chat_message(++tr, "message-" + std::to_string(first + i));
    a.send(burst);
    for (int t = from; t <= tr; ++t) a.reply("ACK " + std::to_string(t));
}

}  // namespace

TEST_CASE("acknowledged changes survive operator commands beside a live gateway, then SIGKILL or SIGTERM",
          "[durability]") {
    const auto [threads, shards] = GENERATE(std::pair{1, 1}, std::pair{2, 4});
    const int stop = GENERATE(SIGKILL, SIGTERM);
    INFO("threads " << threads << ", shards " << shards << ", stopped by signal " << stop);
    installation in(threads, shards);
    for (const char* user : {"alice", "bob", "mallory"}) {
        in.run({"user", "add", std::string(user) + "@example.com", "--legacy-md5"},
               "secret-" + std::string(user) + "\n");
    }

    std::string room;
    {
        running_gateway gw(in);
        msnp_client alice(gw.port);
        alice.login("alice@example.com", "secret-alice");
        msnp_client bob(gw.port);
        bob.login("bob@example.com", "secret-bob");
        run_operator_commands(in, room);

        // Contacts on three lists and a rename, then a switchboard with Bob.
        alice.command("ADD 10 FL bob@example.com bob@example.com");
        alice.command("ADD 11 AL bob@example.com bob@example.com");
        alice.command("ADD 12 BL mallory@example.com mallory@example.com");
        alice.command("REA 13 alice@example.com Alice-Renamed");
        const auto xfr = words(alice.command("XFR 14 SB"));
        const auto sb_port = static_cast<unsigned short>(std::stoi(xfr.at(3).substr(xfr.at(3).rfind(':') + 1)));
        msnp_client alice_sb(sb_port);
        alice_sb.command("USR 1 alice@example.com " + xfr.at(5));
        const auto session = words(alice_sb.command("CAL 2 bob@example.com")).at(3);
        room = "room:" + session;  // the switchboard session id names its room
        const auto rng = words(bob.reply("RNG " + session));
        msnp_client bob_sb(sb_port);
        bob_sb.command("ANS 1 bob@example.com " + rng.at(4) + " " + session);
        alice_sb.reply("JOI bob@example.com");
        int tr = 2;
        send_messages(alice_sb, tr, 1, 60);

        run_operator_commands(in, room);

        // More after the commands: these were the ones lost.
        alice.command("ADD 20 FL mallory@example.com mallory@example.com");
        alice.command("REA 21 alice@example.com Alice-Final");
        send_messages(alice_sb, tr, 61, 30);

        gw.proc.signal(stop);
        REQUIRE(gw.proc.wait_exit() == std::optional<int>{stop == SIGKILL ? -SIGKILL : 0});
    }

    running_gateway gw(in);
    msnp_client alice(gw.port);
    CHECK(words(alice.login("alice@example.com", "secret-alice")).at(4) == "Alice-Final");
    const auto syn = words(alice.command("SYN 5 0"));
    CHECK(syn.at(2) == "4");  // one list version per acknowledged list change
    std::map<std::string, std::vector<std::string>> lists;
    for (std::string l = alice.line();; l = alice.line()) {
        const auto w = words(l);
        if (w.at(0) == "LST" && w.size() >= 8) lists[w.at(2)].push_back(w.at(6));
        if (w.at(0) == "LST" && w.at(2) == "RL") break;
    }
    CHECK(lists["FL"] == std::vector<std::string>{"bob@example.com", "mallory@example.com"});
    CHECK(lists["AL"] == std::vector<std::string>{"bob@example.com"});
    CHECK(lists["BL"] == std::vector<std::string>{"mallory@example.com"});

    const std::string users = in.run({"user", "list"});
    CHECK(contains(users, "Alice-Final"));
    CHECK_FALSE(contains(users, "carol@example.com"));
    // A switchboard's room ends when its last member leaves, as everyone does
    // on a clean stop; after SIGKILL nobody left, and its history is there.
    if (stop == SIGTERM) {
        CHECK_FALSE(contains(in.run({"room", "list"}), room));
        return;
    }
    CHECK(contains(in.run({"room", "list"}), room));
    const std::string history = in.run({"room", "history", room, "--limit", "100"});
    INFO(history);
    for (int i = 1; i <= 90; ++i) {
        CHECK(contains(history, "message-" + std::to_string(i) + "\n"));
    }
}
