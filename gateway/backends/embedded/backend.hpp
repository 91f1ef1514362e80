// The embedded backend: user and room objects in-process, persisted in one
// SQLite file (WAL). Objects live on shard threads chosen by a hash of their
// id, so each has exactly one writer and sees its frames in order. A shard
// applies a batch of frames in one transaction and releases replies and
// deliveries only after it commits (the output gate). Idle objects leave
// memory and are loaded again by their next frame.
#pragma once

#include "gateway/backends/adapter.hpp"
#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/sqlite.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchyard::gateway::embedded {

struct options {
    std::filesystem::path file;             // the SQLite database
    unsigned shards = 0;                    // 0 = one per core
    durability sync = durability::full;
    std::chrono::milliseconds hibernate_after{10000};
    std::size_t max_batch = 8192;           // frames per transaction at most
    std::size_t max_list_entries = 1000;    // per list (FL, AL, BL): MSNP 2005 limit
    std::size_t max_groups = 100;
    std::size_t max_room_members = 1000;    // endpoints in one room
    std::size_t name_bytes = 387;
    std::size_t message_bytes = 16384;
    bool named_rooms_open = true;           // anyone signed in may join a named room
    // A room endpoint of a client that can resume (WebSocket) whose
    // connection dropped (room_leave reason dropped) keeps its user's place
    // for this long: a rejoin within it continues silently, and the others
    // see it leave only when it runs out. 0: it leaves at once.
    std::chrono::milliseconds rejoin_grace{60000};
    // At start, delete the switchboard sessions without messages that no
    // client can come back to, as a crash leaves them. Only where the
    // gateways that served them died with the backend: gateways on a
    // backend link join their live sessions again after a restart.
    bool end_switchboards_at_start = false;
    // Accounts: scrypt cost and password policy for new passwords, the
    // threads that hash and check them (besides the shards), and how many
    // may wait for one before more are refused (rate_limited). The secret
    // makes the stable MD5 salts of handles without an MD5 record.
    kdf_params kdf;
    password_policy passwords;
    unsigned password_threads = 2;
    std::size_t password_queue = 64;
    std::string salt_secret;
    // Unix time in milliseconds for message times, grace periods and
    // hibernation; empty: the system clock. Tests set their own.
    std::function<std::uint64_t()> clock;
    // Where frames objects send to other objects go (reverse-list notices
    // and their acks, presence to watchers, invitations, requests between
    // objects): the gateway's hub, which picks each target's backend by the
    // routes, so the target may live in another file or process. Called on
    // a shard's thread after commit, in order, before the batch's replies
    // leave; `reply` takes what the target answers (a request's reply, or
    // errors). Empty: this backend's own objects (a backend on its own).
    std::function<void(frame::frame f, backends::frame_sink reply)> outbound;
    // How long an object waits for another object's answer before the
    // client's request it holds ends with backend_unavailable.
    std::chrono::milliseconds request_timeout{10000};
    // Tests only: called on a shard's thread after each batch commits and
    // before anything it produced leaves, with the number of one-way frames
    // it sends to other objects (requests, which come before the asker
    // writes anything, are not counted). The crash test stops the process
    // there, between the commits of two objects.
    std::function<void(std::size_t sends)> after_commit;
};

// The database of the embedded backend named `name` in a data directory.
inline std::filesystem::path database_file(const std::filesystem::path& data_dir, std::string_view name) {
    return data_dir / (std::string(name) + ".sqlite3");
}

struct statistics {
    std::uint64_t frames = 0;       // applied
    std::uint64_t commits = 0;      // transactions
    std::uint64_t unsynced_commits = 0;  // of those, endpoint changes only: not waited for the disk
    std::uint64_t wakes = 0;        // objects loaded from storage
    std::uint64_t hibernations = 0; // objects evicted from memory
    std::uint64_t resident = 0;     // objects in memory now
    std::uint64_t storage_errors = 0;
};

class shard;
class password_pool;

// A reply an object makes after its batch commits, on a thread of the
// password pool (a password check): `work` makes the body.
struct later_reply {
    backends::frame_sink sink;
    std::uint64_t corr = 0;
    std::string object;
    std::function<frame::body()> work;
};

// Thrown by backend's constructor when another process serves the file.
struct database_in_use : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class backend final : public backends::adapter {
public:
    // Opens or creates the database and starts the shard threads. Throws
    // std::runtime_error when the database cannot be opened.
    explicit backend(options opt);
    ~backend() override;  // applies what was already sent, then stops

    void send(frame::frame f, backends::frame_sink reply) override;
    void subscribe(std::string_view object_id, backends::frame_sink sink) override;
    void unsubscribe(std::string_view object_id) override;
    backends::health check() const override;

    statistics stats() const;
    const options& settings() const { return opt_; }

    // Object-to-object frames (list notices, presence fan-out, invitations,
    // requests): to options::outbound, or to this backend's own objects
    // without one; used by shards after they commit. `asker`: the asking
    // object's id for a request (the answer is queued to it), else empty.
    void deliver_internal(frame::frame f, const std::string& asker = {});
    // Sends what the last run left unacknowledged (list notices, removed
    // accounts' departures), once. A backend without options::outbound
    // does it as it starts; one with a router, once the router reaches
    // every backend, this one included, and before any other frame.
    void send_unacknowledged();
    // A reply an object left to the password pool (context::reply_later).
    void reply_later(later_reply r);

private:
    friend class shard;
    shard& shard_for(std::string_view object_id);
    // Queues the answer to a request an object of this backend made.
    void post_answer(frame::frame f);

    // What answers hold on to: answers arriving after the backend is gone
    // are dropped.
    struct anchor {
        std::mutex mutex;
        backend* self = nullptr;
    };
    std::shared_ptr<anchor> anchor_ = std::make_shared<anchor>();

    options opt_;
    int lock_fd_ = -1;
    std::unique_ptr<password_pool> passwords_;
    std::vector<frame::frame> unacknowledged_;  // until send_unacknowledged
    std::vector<std::unique_ptr<shard>> shards_;
};

}  // namespace switchyard::gateway::embedded
