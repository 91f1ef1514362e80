// The process the crash test kills: an embedded backend on the given file
// that stores one room message per input line and prints an ACK line for
// each acknowledgement it receives.
//
//   crash_child DB_FILE ROOMS
//   stdin:  <room> <message id> <text>
//   stdout: READY, then ACK <room> <message id> <seq> per acknowledged message
#include "gateway/backends/embedded/backend.hpp"

#include "protocols/frame/wire.hpp"

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

}  // namespace

int main(int argc, char** argv) {
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
