// Shared state of a running gateway and the connection base class. Internal
// to gateway/: includes Asio, so only the networking files include it.
#pragma once

#include "gateway/config/config.hpp"
#include "gateway/router/hub.hpp"
#include "gateway/login/keys.hpp"
#include "gateway/ops/metrics.hpp"
#include "gateway/login/msnp_services.hpp"
#include "gateway/login/passport.hpp"
#include "gateway/router/router.hpp"
#include "gateway/login/tokens.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <unordered_set>
#include <vector>

namespace switchyard::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class connection;

// One io_context and the connections living on its thread; the set is
// touched only from that thread. It is declared first so the context, whose
// destruction ends the connections still queued on it, goes first.
struct worker {
    std::unordered_set<connection*> connections;
    asio::io_context ctx{1};
};

struct runtime {
    runtime(const config::settings& s, key_set k)
        : settings(s),
          routes(s.routes_file, backend_names(s)),
          keys(std::move(k)),
          tokens(std::make_unique<token_service>(keys.keys)),
          logins(s, routes),
          objects(routes, stats) {}

    const config::settings& settings;
    gateway::metrics stats;
    router routes;
    key_set keys;
    // Passport tickets and switchboard cookies, signed with `keys`.
    std::unique_ptr<token_service> tokens;
    std::vector<std::unique_ptr<worker>> workers;
    // Password checks of the HTTPS login services. Declared after the
    // workers so it stops first: its threads post their results to the
    // workers' io_contexts, which must outlive them.
    password_checker logins;
    std::unique_ptr<asio::ssl::context> tls_modern;
    std::unique_ptr<asio::ssl::context> tls_legacy;
    std::unique_ptr<msnp_services> msnp;  // made once the MSNP listener's port is known
    std::atomic<bool> stopping{false};
    std::atomic<bool> finished{false};  // the io_contexts are stopped; nothing may be posted
    std::atomic<std::int64_t> live{0};
    std::function<void()> on_drained;  // run on workers[0] once the last connection ends while stopping
    // Backends and this gateway's subscriptions. Declared after the workers so
    // it is destroyed first: backend threads stop before the io_contexts
    // their deliveries are posted to.
    hub objects;

    // Validates the routes file and swaps it in; logs and counts the outcome.
    tl::expected<std::shared_ptr<const config::route_table>, config::error> reload_routes(std::string_view trigger);

    static std::vector<std::string> backend_names(const config::settings& s);
};

// A client or admin connection. Lives on one worker's thread; registers
// itself there so shutdown can reach it.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(runtime& rt, worker& w, listener_protocol p);
    virtual ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    virtual void start() = 0;
    // The gateway is stopping: tell the client why, then close.
    virtual void shutdown() = 0;

protected:
    runtime& rt_;
    worker& worker_;
    listener_protocol protocol_;
};

std::shared_ptr<connection> make_msnp_connection(runtime& rt, worker& w, tcp::socket s);
std::shared_ptr<connection> make_ws_connection(runtime& rt, worker& w, tcp::socket s);
std::shared_ptr<connection> make_admin_connection(runtime& rt, worker& w, tcp::socket s);
std::shared_ptr<connection> make_https_connection(runtime& rt, worker& w, tcp::socket s);

}  // namespace switchyard::gateway
