// The backend conformance suite (tests/conformance) through a backend
// link: the suite drives a link client, whose link server (on this test's
// io_context thread, on 127.0.0.1) serves the embedded backend. Whatever
// the suite sees differently here than on the embedded backend itself is
// the link's doing.
#include "tests/conformance/backend_conformance.hpp"
#include "tests/conformance/embedded_store.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/link/client.hpp"
#include "gateway/backends/link/server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

namespace {

using namespace switchyard;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace embedded = gateway::embedded;
namespace link = gateway::link;

constexpr auto open_limit = 5s;

// embedded backend <- link::server <- link::client, started and stopped
// together: one start of the backend process and of the gateway.
class link_target final : public test::conformance_target {
public:
    link_target() {
        try {
            start();
        } catch (...) {
            stop();
            throw;
        }
    }
    ~link_target() override { stop(); }

    gateway::backends::adapter& adapter() override { return *client_; }


    // The backend process and the gateway both start again: a new
    // backend instance, and a new gateway incarnation whose endpoints
    // the backend has never seen.
    void restart() override {
        REQUIRE(barrier());
        stop();
        start();
    }

    void advance_clock(std::chrono::milliseconds d) override { store_.advance_clock(d); }

    std::optional<std::size_t> resident_objects() override { return backend_->stats().resident; }

private:
    void start() {
        backend_ = std::make_shared<embedded::backend>(store_.options());
        ctx_.emplace();
        guard_.emplace(asio::make_work_guard(*ctx_));
        link::server_options sopt;
        sopt.instance = link::new_incarnation();
        server_ = std::make_unique<link::server>(*ctx_, backend_, sopt);
        const auto ec = server_->listen(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        INFO(ec.message());
        REQUIRE_FALSE(ec);
        server_->start();
        io_ = std::thread([this] { ctx_->run(); });

        link::client_options copt;
        copt.name = "conformance";
        copt.address = "127.0.0.1";
        copt.port = server_->port();
        copt.gateway = "conformance-gateway";
        copt.incarnation = link::new_incarnation();
        client_ = std::make_unique<link::client>(copt);
        INFO(client_->check().detail);
        REQUIRE(client_->wait_open(open_limit));
    }

    void stop() {
        client_.reset();
        if (io_.joinable()) {
            // The server closes its links on the thread that serves them.
            asio::post(*ctx_, [this] { server_.reset(); });
        } else {
            server_.reset();  // never served: its io_context did not run
        }
        guard_.reset();
        if (io_.joinable()) io_.join();
        // The server and its links are gone with their handlers; the
        // backend applies what it was given, then the io_context goes
        // (a link could still be held by a reply the backend was making).
        backend_.reset();
        ctx_.reset();
    }

    // Everything the client sent before this has been handed to the
    // backend when the reply comes back: the server passes requests on in
    // the order they arrive. A backend that stops applies what it was
    // handed, so nothing the suite sent is lost with the client.
    bool barrier() {
        auto answered = std::make_shared<std::promise<void>>();
        auto once = std::make_shared<std::atomic<bool>>(false);
        auto done = answered->get_future();
        const std::string nobody = "user:barrier@conformance.invalid";
        client_->send(frame::frame{1, nobody, "barrier@conformance.invalid", frame::roster_get{}},
                      [answered, once](frame::frame) {
                          if (!once->exchange(true)) answered->set_value();
                      });
        return done.wait_for(open_limit) == std::future_status::ready;
    }

    test::embedded_store store_;
    std::shared_ptr<embedded::backend> backend_;
    std::optional<asio::io_context> ctx_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
    std::thread io_;
    std::unique_ptr<link::server> server_;
    std::unique_ptr<link::client> client_;
};

}  // namespace

TEST_CASE("a backend link keeps the backend contract", "[conformance]") {
    link_target target;
    test::run_conformance(target);
}
