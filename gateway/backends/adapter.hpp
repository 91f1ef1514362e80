// The seam between the gateway and whatever holds durable objects (gateway/README.md
// section 2). The router picks an adapter per object id from the routes file;
// adapters speak only frames.
#pragma once

#include "protocols/frame/frame.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::gateway::backends {

// Receives frames from a backend. Called on a backend thread: a sink hands
// the frame to the thread that owns the receiver and returns.
using frame_sink = std::function<void(frame::frame)>;

// A backend that hands many frames to sinks at once (what one commit
// released) marks them as one burst, on the thread that calls the sinks.
// A receiver that wakes a thread per frame asks at_end to wake it once,
// when the burst ends: a room's message to a thousand members, and the
// replies beside it, cost one wake-up per receiving thread. Outside a
// burst at_end runs at once, so backends that do not mark bursts lose
// nothing.
class release_burst {
public:
    release_burst() { ++depth(); }
    ~release_burst() {
        if (--depth() == 0) {
            std::vector<std::function<void()>> due;
            due.swap(pending());
            for (const auto& f : due) f();
        }
    }
    release_burst(const release_burst&) = delete;
    release_burst& operator=(const release_burst&) = delete;

    static void at_end(std::function<void()> f) {
        if (depth() == 0) {
            f();
        } else {
            pending().push_back(std::move(f));
        }
    }

private:
    static int& depth() {
        thread_local int d = 0;
        return d;
    }
    static std::vector<std::function<void()>>& pending() {
        thread_local std::vector<std::function<void()>> p;
        return p;
    }
};

struct health {
    bool ok = true;
    std::string detail;
};

class adapter {
public:
    virtual ~adapter() = default;

    // Delivers `f` to the object `f.object`, in order with every other frame
    // this gateway sends to that object. Replies (ack, error and request
    // results) carry `f.corr` and go to `reply`; requests with corr 0 get
    // none except errors. An ack means the effect is durable.
    virtual void send(frame::frame f, frame_sink reply) = 0;

    // This gateway watches `object_id`: what the object publishes (presence,
    // list notices and invitations for users; joins, leaves, messages for
    // rooms) goes to `sink` until unsubscribe. One subscription per object
    // and gateway; subscribing again replaces the sink.
    virtual void subscribe(std::string_view object_id, frame_sink sink) = 0;
    virtual void unsubscribe(std::string_view object_id) = 0;

    virtual health check() const = 0;
};

}  // namespace switchyard::gateway::backends
