// What a connection is given, and the connection base class. Internal to
// gateway/: includes Asio, so only the networking files include it.
//
// The server (net/server.cpp) owns everything a running gateway has; a
// connection sees only its session_context: the settings, the metrics, the
// objects, the login services, the TLS contexts and whether the gateway is
// stopping. The admin endpoint also gets the operations on the routes.
#pragma once

#include "gateway/config/config.hpp"
#include "gateway/login/msnp_services.hpp"
#include "gateway/login/passport.hpp"
#include "gateway/login/tokens.hpp"
#include "gateway/ops/metrics.hpp"
#include "gateway/router/hub.hpp"
#include "gateway/router/router.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace switchyard::gateway {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class connection;
class capture_writer;

// One io_context and the connections living on its thread; the set is
// touched only from that thread. It is declared first so the context, whose
// destruction ends the connections still queued on it, goes first.
//
// Watched objects' frames reach the worker's connections in batches: a
// backend thread queues each (connection, frame) pair and the first of a
// batch posts one drain, however many connections and frames follow. While
// a batch is delivered, connections hold their writes back (flush_later)
// and send once at its end: a room's burst costs each member one send, not
// one per message.
struct worker {
    std::unordered_set<connection*> connections;
    asio::io_context ctx{1};

    using deliver_fn = void (*)(connection&, const frame::frame&);
    // Any thread. fn runs on the worker's thread if the connection still exists.
    void deliver(const std::weak_ptr<connection>& to, deliver_fn fn, shared_frame f);
    // The worker's thread. True while a batch is delivered: the connection's
    // flush() is called at the batch's end (once, however often it asks).
    bool flush_later(std::shared_ptr<connection> c);
    bool batching() const { return draining_; }

private:
    struct delivery {
        std::weak_ptr<connection> to;
        deliver_fn fn;
        shared_frame f;
    };
    void drain();

    std::mutex mutex_;
    std::vector<delivery> queued_;  // under mutex_
    bool posted_ = false;           // a drain is posted; under mutex_
    std::vector<delivery> spare_;   // the worker's thread: the last batch's storage
    bool draining_ = false;
    std::vector<std::shared_ptr<connection>> to_flush_;
};

// The server's shutdown, which connections take part in but do not drive.
struct lifecycle {
    std::atomic<bool> stopping{false};
    std::atomic<bool> finished{false};  // the io_contexts are stopped; nothing may be posted
    std::atomic<std::int64_t> live{0};  // open connections
    // Posted to `main` once the last connection ends while stopping.
    std::function<void()> on_drained;
    asio::io_context* main = nullptr;
};

// Open connections on the public listeners, in all and per client address
// ([limits] max_connections, max_connections_per_address), shared by every
// worker. The admin listener is not counted, so it stays reachable whatever
// the public ones suffer.
class admission {
public:
    enum class verdict { admitted, over_total, over_address };
    admission(std::size_t max_total, std::size_t max_per_address)
        : max_total_(max_total), max_per_address_(max_per_address) {}
    verdict admit(const asio::ip::address& a);
    void release(const asio::ip::address& a);  // once per admitted connection

private:
    const std::size_t max_total_;
    const std::size_t max_per_address_;
    std::mutex mutex_;
    std::size_t total_ = 0;
    std::unordered_map<asio::ip::address, std::size_t> by_address_;
};

// What a connection may use. Everything referred to outlives every
// connection (the server's declaration order sees to it).
struct session_context {
    const config::settings& settings;
    metrics& stats;
    hub& objects;
    password_checker& logins;
    token_service& tokens;
    lifecycle& life;
    msnp_services* msnp = nullptr;             // set before any listener accepts
    asio::ssl::context* tls_modern = nullptr;  // made when a listener uses the profile
    asio::ssl::context* tls_legacy = nullptr;
    admission* gate = nullptr;                 // counts the public listeners' connections
    capture_writer* capture = nullptr;         // [listeners.msnp] capture_dir; null when off
};

// The admin endpoint's operations on the running gateway.
struct operations {
    router& routes;
    // Validates the routes file and swaps it in; logs and counts the outcome.
    std::function<tl::expected<std::shared_ptr<const config::route_table>, config::error>(std::string_view trigger)>
        reload_routes;
    // [listeners.admin] token_file's token: every route but /healthz needs
    // it as a bearer token. Empty: none is asked for.
    std::string token;
};

// A client or admin connection. Lives on one worker's thread; registers
// itself there so shutdown can reach it.
class connection : public std::enable_shared_from_this<connection> {
public:
    connection(session_context& ctx, worker& w, listener_protocol p);
    virtual ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    virtual void start() = 0;
    // The gateway is stopping: tell the client why, then close.
    virtual void shutdown() = 0;
    // Writes what was held back during a batch (worker::flush_later).
    virtual void flush() {}

    worker& worker_of() { return worker_; }
    // The connection was admitted from `peer`: it counts there until it ends.
    void admitted(const asio::ip::address& peer) { admitted_ = peer; }

protected:
    session_context& ctx_;
    worker& worker_;
    listener_protocol protocol_;

private:
    std::optional<asio::ip::address> admitted_;
};

std::shared_ptr<connection> make_msnp_connection(session_context& ctx, worker& w, tcp::socket s);
std::shared_ptr<connection> make_ws_connection(session_context& ctx, worker& w, tcp::socket s);
std::shared_ptr<connection> make_admin_connection(session_context& ctx, operations& ops, worker& w, tcp::socket s);
std::shared_ptr<connection> make_https_connection(session_context& ctx, worker& w, tcp::socket s);

}  // namespace switchyard::gateway
