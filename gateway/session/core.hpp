// The one session core (gateway/README.md section 1): whatever the transport (MSNP
// over TCP, WebSocket, the tests' in-memory clients), a connection feeds its
// codec and hands the codec's output here. The core writes through the
// transport, routes frames through the hub with their correlation, keeps
// the connection's watches, and brings every reply and watched frame back
// to the codec on the connection's own thread. No Asio: the transport says
// how to write, close and get back onto its thread.
//
// An idle session costs memory: the core holds references and a counter,
// and each watch one sink the transport makes (one allocation).
#pragma once

#include "gateway/router/hub.hpp"

#include "protocols/frame/output.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace switchyard::gateway {

class session_core {
public:
    // What a connection does for its core; called on the session's thread.
    class transport {
    public:
        // Queues bytes (a byte stream) or one whole message (WebSocket), in order.
        virtual void write(std::string data) = 0;
        // Sends what is queued, then closes; `code` as in frame::output.
        virtual void finish(std::uint16_t code, std::string reason) = 0;
        // Sinks for a watched object's frames and for a request's replies.
        // They are called on backend threads, possibly after the session
        // has gone: each brings its frame to session_core::deliver on the
        // session's thread, or drops it when the session no longer exists.
        virtual local_sink watch_sink() = 0;
        virtual backends::frame_sink reply_sink() = 0;

    protected:
        ~transport() = default;
    };

    session_core(hub& objects, transport& t, frame::codec& c) : objects_(objects), transport_(t), codec_(c) {}
    ~session_core();  // ends every watch
    session_core(const session_core&) = delete;
    session_core& operator=(const session_core&) = delete;

    // Carries out a codec's output, in order: writes, watches, frames, close.
    void apply(frame::output out);
    // A reply or a watched object's frame, back on the session's thread.
    void deliver(const frame::frame& f);
    // The gateway is stopping: the codec tells the client why.
    void shutdown() { apply(codec_.on_shutdown()); }
    // The connection is gone: the objects learn it (bye, room_leave); their
    // replies find no session. Nothing is written after this.
    void closed();

    bool is_closed() const { return closed_; }
    // Requests routed whose final reply has not come back yet.
    std::size_t outstanding() const { return outstanding_; }

private:
    void route(frame::frame f);

    hub& objects_;
    transport& transport_;
    frame::codec& codec_;
    std::map<std::string, std::uint64_t> watches_;  // object id -> hub watch id
    std::size_t outstanding_ = 0;  // every request gets exactly one final reply (backends/README.md)
    bool closed_ = false;
};

}  // namespace switchyard::gateway
