// The backend end of backend links ([listeners.link]): other gateways reach
// this process's objects through it. Each gateway holds a lease on the
// endpoints (presence, room places) it registered; the lease is renewed by
// anything the gateway sends, and once it runs out without the same
// gateway incarnation coming back, its endpoints end as if their
// connections had dropped.
#pragma once

#include "gateway/backends/adapter.hpp"

#include "protocols/frame/link.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace switchyard::gateway::link {

struct server_options {
    // Endpoints outlive their gateway's last message by this long.
    std::chrono::milliseconds lease{15000};
    std::size_t max_frame = 1 << 20;
    // Names this start of the backend: gateways that see it change know
    // every endpoint was cleared and register their sessions again.
    std::string instance;
};

struct server_statistics {
    std::size_t connections = 0;  // open links
    std::size_t leases = 0;       // gateways holding endpoints, connected or not
    std::size_t endpoints = 0;    // endpoints held by those leases
    std::uint64_t expired = 0;    // endpoints ended because a lease ran out
};

class server {
public:
    // Serves `backend` on connections accepted on `ctx`'s thread.
    server(boost::asio::io_context& ctx, std::shared_ptr<backends::adapter> backend, server_options opt);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    boost::system::error_code listen(const boost::asio::ip::tcp::endpoint& at);
    std::uint16_t port() const;
    void start();
    // Stops accepting and closes every link; leases are left as they are
    // (the process is going away, and a backend clears endpoints at start).
    void close();

    server_statistics stats() const;

private:
    class impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace switchyard::gateway::link
