// A backend of kind "link": the objects live in another process (a backend
// node, [listeners.link]) reached over one TCP connection with the link
// protocol of protocols/frame/link.hpp. The connection has a thread of its
// own; it reconnects after any failure, renews this gateway's lease while
// connected, and registers every live session again with a backend that
// lost them (one that restarted, or that let the lease run out).
#pragma once

#include "gateway/backends/adapter.hpp"

#include "protocols/frame/link.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace switchyard::gateway::link {

struct client_options {
    std::string name;      // the backend's name in the settings, for logs
    std::string address;   // an IP address
    std::uint16_t port = 0;
    std::string gateway;      // this gateway's name
    std::string incarnation;  // new on every start of the gateway
    std::size_t max_frame = 1 << 20;
    // Waits between connection attempts: the first, doubled up to the last.
    std::chrono::milliseconds retry_first{50};
    std::chrono::milliseconds retry_max{1000};
};

struct client_statistics {
    bool open = false;
    std::uint64_t connects = 0;        // handshakes completed
    std::uint64_t registrations = 0;   // frames sent again to register live sessions
    std::size_t registering = 0;       // of those, not answered yet: the backend does not know every session
    std::chrono::milliseconds last_registration{0};  // from the handshake to the last answer, the latest time
    std::size_t endpoints = 0;         // live endpoints this gateway holds
    std::uint64_t bytes_sent = 0;      // on every connection, heartbeats included
    std::uint64_t bytes_received = 0;
};

class client final : public backends::adapter {
public:
    explicit client(client_options opt);
    ~client() override;

    // While the link is down, requests are answered at once with
    // backend_unavailable; a request in flight when it goes down is too
    // (it may or may not have been applied, as with any lost reply).
    void send(frame::frame f, backends::frame_sink reply) override;
    void subscribe(std::string_view object_id, backends::frame_sink sink) override;
    void unsubscribe(std::string_view object_id) override;
    backends::health check() const override;

    // Waits until the link is open (its handshake done), at most `limit`;
    // false if it is not open by then. For a start that should not answer
    // its first requests with backend_unavailable.
    bool wait_open(std::chrono::milliseconds limit) const;

    client_statistics stats() const;

private:
    class impl;
    std::shared_ptr<impl> impl_;
};

// A fresh incarnation: 16 random hexadecimal digits.
std::string new_incarnation();

}  // namespace switchyard::gateway::link
