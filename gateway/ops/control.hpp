// The operator's way into a running gateway: a Unix socket in the data
// directory (`control.sock`, owner-only, like the databases beside it) on
// which the operator commands send account frames through the gateway's
// hub, so the user objects stay their accounts' single writers while the
// gateway runs. Messages are the backend link's records
// (protocols/frame/README.md, "Backend links"): `open` and `accept`, then
// `request` and `reply`. Only account frames are taken; an object
// `accounts:<backend>` is that backend's `accounts:`.
#pragma once

#include "gateway/router/hub.hpp"

#include "protocols/frame/frame.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include <tl/expected.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace switchyard::gateway::control {

// Where a gateway with data directory `data_dir` listens.
inline std::filesystem::path socket_path(const std::filesystem::path& data_dir) { return data_dir / "control.sock"; }

class server {
public:
    server(boost::asio::io_context& ctx, hub& objects);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Binds `path`, replacing a socket no process answers on. Fails when
    // another process answers there (another gateway on this data
    // directory) or the path is too long for a Unix socket.
    tl::expected<void, std::string> listen(const std::filesystem::path& path);
    void start();
    // Stops accepting and removes the socket file; connections end with
    // the io_context.
    void close();

private:
    class impl;
    std::shared_ptr<impl> impl_;
};

// Sends `f` to the gateway listening on `path` and returns its reply; the
// error says why there is none.
tl::expected<frame::frame, std::string> call(const std::filesystem::path& path, frame::frame f,
                                             std::chrono::milliseconds timeout);

}  // namespace switchyard::gateway::control
