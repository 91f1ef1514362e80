// Routes frames to backends and keeps one backend subscription per object
// for this gateway, however many local sessions watch it: the backend fans
// out once per gateway, the hub fans out to sessions (gateway/README.md section 1).
#pragma once

#include "gateway/backends/adapter.hpp"
#include "gateway/ops/metrics.hpp"
#include "gateway/router/router.hpp"

#include <chrono>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace switchyard::gateway {

// A frame fanned out to many sessions is decoded once and shared.
using shared_frame = std::shared_ptr<const frame::frame>;
using local_sink = std::function<void(shared_frame)>;

class hub {
public:
    hub(router& routes, metrics& stats) : routes_(routes), stats_(stats) {}
    // Backends are stopped one by one; what one still sends to another
    // through this hub meanwhile (objects' frames to other objects) is
    // dropped, not sent to a backend being destroyed.
    ~hub();
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    // Backends by the names the settings and routes files use.
    void add_backend(std::string name, std::shared_ptr<backends::adapter> adapter);
    // The backend of that name, or nullptr.
    std::shared_ptr<backends::adapter> backend(std::string_view name) const;

    // Sends a frame to the backend the routes choose for f.object. Returns
    // false (and sends nothing) when no backend serves that object. Backends
    // send their objects' frames to other objects here too (so the target
    // may live on another backend), from their own threads.
    bool send(frame::frame f, backends::frame_sink reply);
    // Sends a request (corr set here) and waits for its final reply on the
    // caller's thread: nullopt when no backend serves it or none came
    // within `timeout`. For callers that cannot wait otherwise (MSNP's
    // synchronous services); never on a backend's own thread.
    std::optional<frame::frame> call(frame::frame f, std::chrono::milliseconds timeout);

    // A local session watches an object; the first watcher subscribes at
    // the backend. Returns an id for unwatch.
    std::uint64_t watch(const std::string& object_id, local_sink sink);
    void unwatch(const std::string& object_id, std::uint64_t id);

    std::size_t watched_objects() const;
    backends::health check() const;

private:
    struct watched {
        std::shared_ptr<backends::adapter> adapter;  // where the subscription lives
        std::map<std::uint64_t, local_sink> sinks;
        // Rebuilt when sinks change, so a delivery copies one pointer, not
        // every sink, and runs without the lock.
        std::shared_ptr<const std::vector<local_sink>> snapshot;

        void rebuild();
    };

    std::shared_ptr<backends::adapter> adapter_for(std::string_view object_id) const;
    void deliver(const std::string& object_id, frame::frame f);

    router& routes_;
    metrics& stats_;
    // Fixed after start until the destructor empties it.
    mutable std::shared_mutex backends_mutex_;
    std::unordered_map<std::string, std::shared_ptr<backends::adapter>> backends_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, watched> watched_;
    std::uint64_t next_id_ = 1;
};

}  // namespace switchyard::gateway
