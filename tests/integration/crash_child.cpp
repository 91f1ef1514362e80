// The process the crash test kills: an embedded backend on the given file
// that stores one room message per input line and prints an ACK line for
// each acknowledgement it receives.
//
//   crash_child DB_FILE ROOMS
//   stdin:  <room> <message id> <text>
//   stdout: READY, then ACK <room> <message id> <seq> per acknowledged message
//
// Or one that adds a contact and kills itself between two objects' commits:
// right after the Nth committed batch that sends frames to other objects,
// before they leave (1: the owner's forward-list add, whose notice is not
// delivered; 2: the contact's applying it, whose acknowledgement is not).
//
//   crash_child DB_FILE contact N
//   stdout: READY, then ADDED if it was not killed
#include "gateway/backends/embedded/backend.hpp"

#include "protocols/frame/wire.hpp"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <mutex>
#include <string>

using namespace switchyard;
namespace embedded = gateway::embedded;

namespace {

const std::string user = "crash@example.com";
std::mutex out_mutex;

frame::frame wait_reply(embedded::backend& be, frame::frame f) {
    std::promise<frame::frame> p;
    auto fut = p.get_future();
    be.send(std::move(f), [&p](frame::frame r) { p.set_value(std::move(r)); });
    return fut.get();
}

// The users of contact mode: the owner adds the contact to its forward list.
const std::string owner = "owner@example.com";
const std::string contact = "contact@example.com";

int add_contact(const char* file, int kill_at) {
    embedded::options opt;
    opt.file = file;
    opt.sync = embedded::durability::full;
    auto batches_with_sends = std::make_shared<std::atomic<int>>(0);
    opt.after_commit = [batches_with_sends, kill_at](std::size_t sends) {
        if (sends > 0 && ++*batches_with_sends == kill_at) {
            std::raise(SIGKILL);
        }
    };
    embedded::backend be(opt);
    {
        embedded::database db(opt.file, embedded::durability::full);
        for (const std::string& h : {owner, contact}) {
            db.prepare("INSERT OR IGNORE INTO users (handle, display_name, created_ms) VALUES (?1, ?1, 0)").bind(h).run();
        }
    }
    std::printf("READY\n");
    std::fflush(stdout);
    const auto added = wait_reply(be, {1, "user:" + owner, owner,
                                       frame::roster_change{frame::change_op::add, frame::list::forward, contact, {},
                                                            {}, 0, {}, {}}});
    if (!std::holds_alternative<frame::roster_change>(added.content)) {
        std::fprintf(stderr, "cannot add %s: %s\n", contact.c_str(), frame::to_text(added).c_str());
        return 1;
    }
    std::printf("ADDED\n");
    std::fflush(stdout);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[2]) == "contact") {
        return add_contact(argv[1], std::stoi(argv[3]));
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: crash_child DB_FILE ROOMS\n");
        return 2;
    }
    embedded::options opt;
    opt.file = argv[1];
    opt.sync = embedded::durability::full;
    embedded::backend be(opt);
    {
        embedded::database db(opt.file, embedded::durability::full);
        db.prepare("INSERT OR IGNORE INTO users (handle, display_name, created_ms) VALUES (?1, ?1, 0)").bind(user).run();
    }
    const int rooms = std::stoi(argv[2]);
    for (int r = 0; r < rooms; ++r) {
        const std::string id = "room:r" + std::to_string(r);
        wait_reply(be, {1, id, user, frame::room_create{frame::room_policy::named, ""}});  // exists after a restart
        const auto joined = wait_reply(be, {2, id, user, frame::room_join{{user, "ep", user, 0, frame::client_protocol::msnp}}});
        if (!std::holds_alternative<frame::room_members>(joined.content)) {
            std::fprintf(stderr, "cannot join %s: %s\n", id.c_str(), frame::to_text(joined).c_str());
            return 1;
        }
    }
    std::printf("READY\n");
    std::fflush(stdout);

    std::string room, id, text;
    std::uint64_t corr = 10;
    while (std::cin >> room >> id >> text) {
        frame::room_message m;
        m.message_id = id;
        m.text = text;
        be.send(frame::frame{++corr, room, user, std::move(m)}, [room, id](frame::frame r) {
            const std::lock_guard lock(out_mutex);
            if (const auto* a = std::get_if<frame::ack>(&r.content)) {
                std::printf("ACK %s %s %llu\n", room.c_str(), id.c_str(), static_cast<unsigned long long>(a->seq));
            } else {
                std::printf("ERROR %s %s\n", id.c_str(), frame::to_text(r).c_str());
            }
            std::fflush(stdout);
        });
    }
    return 0;  // the backend applies what is queued before it is destroyed
}
