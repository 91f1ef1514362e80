// Records MSNP sessions as transcripts (tools/replay/README.md), one file
// per connection, for switchyard-replay to play back. Enabled per listener
// with [listeners.msnp] capture_dir.
//
// The I/O threads only copy bytes into a queue; a dedicated writer thread
// splits them into commands, redacts passwords, tickets, MD5 answers and
// cookies into the transcript's ${...} variables, and writes the files
// (created owner-only). With capture off a connection holds a null
// pointer and pays one branch per read and write.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace switchyard::gateway {

class capture_writer {
public:
    // Makes `dir` (owner-only) if it is missing; throws std::runtime_error
    // when it cannot.
    explicit capture_writer(std::filesystem::path dir);
    ~capture_writer();  // writes everything queued, then stops the thread
    capture_writer(const capture_writer&) = delete;
    capture_writer& operator=(const capture_writer&) = delete;

    // Any thread. A connection's events must come from one thread in order.
    std::uint64_t open(std::string_view peer);
    void client(std::uint64_t id, std::string_view bytes) { push(id, kind::client, bytes); }
    void server(std::uint64_t id, std::string_view bytes) { push(id, kind::server, bytes); }
    // `by_server`: the gateway ended the connection (not the client going away).
    void close(std::uint64_t id, bool by_server) { push(id, by_server ? kind::closed_by_server : kind::closed, {}); }

    const std::filesystem::path& dir() const { return dir_; }

private:
    enum class kind { open, client, server, closed, closed_by_server };
    struct event {
        std::uint64_t id;
        kind what;
        std::string bytes;
        std::chrono::steady_clock::time_point at;
    };
    void push(std::uint64_t id, kind what, std::string_view bytes);
    void run();

    std::filesystem::path dir_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::vector<event> queue_;  // under mutex_
    bool stopping_ = false;     // under mutex_
    std::uint64_t next_id_ = 0; // under mutex_
    std::thread thread_;
};

}  // namespace switchyard::gateway
