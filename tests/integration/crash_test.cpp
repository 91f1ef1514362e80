// Durability under SIGKILL: a child process stores room messages and prints
// an ACK for each acknowledgement; it is killed at random moments and
// restarted, and unacknowledged messages are sent again with the same ids.
// At the end every message is stored exactly once, in the order it was
// sent, and every ACK the child printed names a stored message and its seq.
// In every round the operator commands read the same file while the child
// writes it, as an operator would beside a running gateway.
#include "../unit/embedded_fixture.hpp"
#include "child_process.hpp"

#include <csignal>
#include <random>
#include <sstream>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;

namespace {

constexpr int rooms = 6;
constexpr int per_room = 90;  // under the 100-message window, so history shows all of them

struct sent_message {
    std::string room;
    std::string id;
};

}  // namespace

TEST_CASE("acknowledged messages survive SIGKILL exactly once, in order", "[crash]") {
    embedded_fixture fixture;  // only for its temporary directory
    fixture.be.reset();
    const auto db = (fixture.dir / "crash.sqlite3").string();
    // Settings under which `switchyard room ...` reads that file.
    const auto settings = (fixture.dir / "switchyard.toml").string();
    write_file(settings, "[gateway]\ndata_dir = \".\"\n[backends.crash]\nkind = \"embedded\"\n");
    write_file(fixture.dir / "routes.toml", "[default]\nbackend = \"crash\"\n");
    const auto operator_commands = [&] {
        child_process rooms({SWITCHYARD_BINARY, "room", "list", "-c", settings});
        child_process history({SWITCHYARD_BINARY, "room", "history", "room:r0", "-c", settings});
        for (child_process* p : {&rooms, &history}) {
            const auto status = p->wait_exit(30s);
            INFO(p->output());
            CHECK(status == std::optional<int>{0});
        }
    };

    std::vector<sent_message> all;
    for (int i = 0; i < per_room; ++i) {
        for (int r = 0; r < rooms; ++r) {
            all.push_back({"room:r" + std::to_string(r), "r" + std::to_string(r) + "-m" + std::to_string(i)});
        }
    }
    std::map<std::string, std::uint64_t> acked;  // message id -> seq from its ACK
    const auto seed = std::random_device{}();
    INFO("seed " << seed);
    std::mt19937 rng(seed);

    int kills = 0;
    for (int round = 0; acked.size() < all.size(); ++round) {
        REQUIRE(round < 200);
        std::string input;
        std::size_t unacked = 0;
        for (const sent_message& m : all) {
            if (!acked.contains(m.id)) {
                input += m.room + " " + m.id + " text-of-" + m.id + "\n";
                ++unacked;
            }
        }
        child_process child({SWITCHYARD_CRASH_CHILD, db, std::to_string(rooms)}, input);
        REQUIRE(child.wait_for_line("READY"));
        // Kill after a random number of ACKs; the last round runs to the end.
        const bool kill = round < 12;
        const std::size_t target = kill ? std::uniform_int_distribution<std::size_t>(0, unacked / 2)(rng) : unacked;
        for (std::size_t seen = 0; seen < target; ++seen) {
            if (seen == target / 2) operator_commands();
            const auto line = child.wait_for_line("ACK ", 30s);
            INFO(child.output());
            REQUIRE(line);
            std::istringstream fields(*line);
            std::string word, room, id;
            std::uint64_t seq = 0;
            fields >> word >> room >> id >> seq;
            // A retry is acknowledged with the seq the message first got.
            CHECK(acked.emplace(id, seq).first->second == seq);
        }
        if (kill) {
            child.signal(SIGKILL);
            REQUIRE(child.wait_exit());
            ++kills;
        } else {
            const auto status = child.wait_exit();
            REQUIRE(status);
            CHECK(*status == 0);
        }
        CHECK(child.output().find("ERROR") == std::string::npos);
    }
    CHECK(kills == 12);

    // Read everything back through a backend of this process.
    fixture.opt.file = db;
    fixture.start();
    const std::string user = "crash@example.com";
    for (int r = 0; r < rooms; ++r) {
        const std::string room = "room:r" + std::to_string(r);
        as<frame::room_members>(fixture.ask(user, room, frame::room_join{{user, "check", user, 0, {}}}));
        const auto history = as<frame::room_history>(fixture.ask(user, room, frame::room_history_get{}));
        REQUIRE(history.messages.size() == static_cast<std::size_t>(per_room));
        for (int i = 0; i < per_room; ++i) {
            const auto& m = history.messages[static_cast<std::size_t>(i)];
            const std::string id = "r" + std::to_string(r) + "-m" + std::to_string(i);
            INFO(room << " position " << i);
            CHECK(m.message_id == id);
            CHECK(m.text == "text-of-" + id);
            CHECK(m.seq == static_cast<std::uint64_t>(i + 1));
            CHECK(acked.at(id) == m.seq);
        }
    }
}

// The reverse-list exchange under SIGKILL between the two objects' commits
// (gateway/backends/README.md, "Reverse-list exchange"): the child adds a
// contact and kills itself right after the owner's commit (the notice not
// delivered) or right after the contact's (the acknowledgement not
// delivered). A backend started again on the file makes both lists agree.
TEST_CASE("a contact's reverse list agrees with the owner's forward list after SIGKILL between their commits",
          "[crash]") {
    const int kill_at = GENERATE(1, 2);
    INFO("killed after the commit of batch " << kill_at << " that sends to another object");
    embedded_fixture fixture;  // for its temporary directory, and to read the file back
    fixture.be.reset();
    fixture.opt.file = fixture.dir / "contact.sqlite3";
    const std::string owner = "owner@example.com";
    const std::string contact = "contact@example.com";

    child_process child({SWITCHYARD_CRASH_CHILD, fixture.opt.file.string(), "contact", std::to_string(kill_at)});
    const auto status = child.wait_exit(30s);
    INFO(child.output());
    REQUIRE(status == std::optional<int>{-SIGKILL});
    CHECK(child.output().find("READY") != std::string::npos);
    // The owner's reply leaves after the owner's commit only. (Killed after
    // the contact's commit, the reply may or may not have been printed: the
    // contact's shard can commit before the waiting thread runs.)
    if (kill_at == 1) {
        CHECK(child.output().find("ADDED") == std::string::npos);
    }

    // What the kill left: the owner's add and its notice in the outbox; the
    // contact's reverse entry only when it was killed after the contact's commit.
    {
        embedded::database db(fixture.opt.file, embedded::durability::normal);
        const auto count = [&](const std::string& sql) {
            auto& q = db.prepare(sql);
            q.bind();
            const std::int64_t n = q.step() ? q.integer(0) : -1;
            q.run();
            return n;
        };
        CHECK(count("SELECT count(*) FROM contacts WHERE owner = 'owner@example.com' AND lists = 1") == 1);
        CHECK(count("SELECT count(*) FROM outbox") == 1);
        CHECK(count("SELECT count(*) FROM reverse_contacts") == (kill_at == 1 ? 0 : 1));
    }

    fixture.start();
    const auto owner_roster = as<frame::roster>(fixture.ask(owner, "user:" + owner, frame::roster_get{}));
    REQUIRE(owner_roster.entries.size() == 1);
    CHECK(owner_roster.entries[0].handle == contact);
    CHECK(owner_roster.entries[0].lists == 1);  // FL
    const auto contact_roster = as<frame::roster>(fixture.ask(contact, "user:" + contact, frame::roster_get{}));
    REQUIRE(contact_roster.entries.size() == 1);
    CHECK(contact_roster.entries[0].handle == owner);
    CHECK(contact_roster.entries[0].lists == 24);  // RL PL
    CHECK(contact_roster.version == 1);            // applied once, whether the notice came once or twice

    // The contact's acknowledgement reaches the owner's object: the outbox empties.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::int64_t left = -1;
    for (;;) {
        {
            embedded::database db(fixture.opt.file, embedded::durability::normal);
            auto& q = db.prepare("SELECT count(*) FROM outbox");
            q.bind();
            left = q.step() ? q.integer(0) : -1;
            q.run();
        }
        if (left == 0 || std::chrono::steady_clock::now() > deadline) break;
        std::this_thread::sleep_for(1ms);
    }
    CHECK(left == 0);
}
