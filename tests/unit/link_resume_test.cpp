// A backend link that drops and comes back within the gateway's lease (a
// network blip): what the objects published meanwhile reaches the gateway
// once, in order, after it resumes. The link runs through a TCP relay on
// 127.0.0.1 that the test cuts, as a network would.
#include "tests/conformance/embedded_store.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/link/client.hpp"
#include "gateway/backends/link/server.hpp"

#include "protocols/frame/wire.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace switchyard;
using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace embedded = gateway::embedded;
namespace link = gateway::link;

// Relays connections to 127.0.0.1:target until cut; while cut, it closes
// new connections at once.
class relay {
public:
    explicit relay(std::uint16_t target) : target_(target) {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in at{};
        at.sin_family = AF_INET;
        at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
        REQUIRE(::listen(listener_, 16) == 0);
        socklen_t len = sizeof at;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&at), &len);
        port_ = ntohs(at.sin_port);
        accepting_ = std::thread([this] { accept_loop(); });
    }
    ~relay() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        cut();
        ::shutdown(listener_, SHUT_RDWR);
        accepting_.join();
        for (auto& t : pumps_) t.join();
        ::close(listener_);
    }

    std::uint16_t port() const { return port_; }

    void cut() {
        std::lock_guard lock(mutex_);
        cut_ = true;
        for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    void resume() {
        std::lock_guard lock(mutex_);
        cut_ = false;
    }

private:
    void accept_loop() {
        for (;;) {
            const int client = ::accept(listener_, nullptr, nullptr);
            if (client < 0) return;
            std::lock_guard lock(mutex_);
            if (done_) {
                ::close(client);
                return;
            }
            if (cut_) {
                ::close(client);
                continue;
            }
            const int server = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in to{};
            to.sin_family = AF_INET;
            to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            to.sin_port = htons(target_);
            if (::connect(server, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
                ::close(server);
                ::close(client);
                continue;
            }
            open_.push_back(client);
            open_.push_back(server);
            pumps_.emplace_back([this, client, server] { pump(client, server); });
        }
    }

    void pump(int a, int b) {
        pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        char buffer[65536];
        for (;;) {
            if (::poll(fds, 2, -1) < 0) break;
            bool ended = false;
            for (int i = 0; i < 2 && !ended; ++i) {
                if (fds[i].revents == 0) continue;
                const auto n = ::read(fds[i].fd, buffer, sizeof buffer);
                if (n <= 0) {
                    ended = true;
                    break;
                }
                for (ssize_t sent = 0; sent < n;) {
                    const auto w = ::send(fds[1 - i].fd, buffer + sent, static_cast<std::size_t>(n - sent), MSG_NOSIGNAL);
                    if (w <= 0) {
                        ended = true;
                        break;
                    }
                    sent += w;
                }
            }
            if (ended) break;
        }
        std::lock_guard lock(mutex_);
        std::erase(open_, a);
        std::erase(open_, b);
        ::close(a);
        ::close(b);
    }

    std::uint16_t target_;
    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::thread accepting_;
    std::mutex mutex_;
    bool cut_ = false;
    bool done_ = false;
    std::vector<int> open_;
    std::vector<std::thread> pumps_;
};

// The room messages a sink receives, waited for with a deadline. (The
// room's other publications, such as Alice's join, may reach the sink
// after its reply did: they are not what this test is about.)
class inbox {
public:
    gateway::backends::frame_sink sink() {
        return [this](frame::frame f) {
            if (!std::holds_alternative<frame::room_message>(f.content)) return;
            std::lock_guard lock(mutex_);
            frames_.push_back(std::move(f));
            arrived_.notify_all();
        };
    }
    // The next frame, or a failed test after 10 s.
    frame::frame next() {
        std::unique_lock lock(mutex_);
        REQUIRE(arrived_.wait_for(lock, 10s, [this] { return !frames_.empty(); }));
        auto f = std::move(frames_.front());
        frames_.pop_front();
        return f;
    }

private:
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::deque<frame::frame> frames_;
};

frame::frame ask(gateway::backends::adapter& to, frame::frame f) {
    auto answer = std::make_shared<std::promise<frame::frame>>();
    auto got = answer->get_future();
    f.corr = 1;
    to.send(std::move(f), [answer](frame::frame r) {
        if (!std::holds_alternative<frame::presence_update>(r.content)) answer->set_value(std::move(r));
    });
    REQUIRE(got.wait_for(10s) == std::future_status::ready);
    return got.get();
}

frame::frame say(const std::string& text, const std::string& id) {
    frame::room_message m;
    m.message_id = id;
    m.text = text;
    return frame::frame{0, "room:blip", "alice@example.com", m};
}

}  // namespace

TEST_CASE("what a room publishes while a link is down reaches the gateway once it resumes", "[link]") {
    test::embedded_store store;
    auto backend = std::make_shared<embedded::backend>(store.options());
    {
        std::promise<frame::frame> created;
        backend->send(frame::frame{1, "user:alice@example.com", {}, frame::account_create{"a password", false, "Alice"}},
                      [&](frame::frame r) { created.set_value(std::move(r)); });
        auto done = created.get_future();
        REQUIRE(done.wait_for(5s) == std::future_status::ready);
        REQUIRE(std::holds_alternative<frame::ack>(done.get().content));
    }
    asio::io_context ctx;
    auto guard = asio::make_work_guard(ctx);
    link::server_options sopt;
    sopt.instance = link::new_incarnation();
    sopt.lease = 30s;  // the blip is far shorter
    auto server = std::make_unique<link::server>(ctx, backend, sopt);
    REQUIRE_FALSE(server->listen(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)));
    server->start();
    std::thread io([&] { ctx.run(); });

    {
        relay network(server->port());
        link::client_options copt;
        copt.name = "node";
        copt.address = "127.0.0.1";
        copt.port = network.port();
        copt.gateway = "edge";
        copt.incarnation = link::new_incarnation();
        link::client client(copt);
        REQUIRE(client.wait_open(5s));

        // Alice (through another gateway: the backend itself) holds a room
        // this gateway watches.
        frame::room_create create;
        create.policy = frame::room_policy::named;
        create.title = "blip";
        CHECK(std::holds_alternative<frame::ack>(
            ask(*backend, frame::frame{0, "room:blip", "alice@example.com", create}).content));
        frame::member alice{"alice@example.com", "ep-alice", "Alice", 0, frame::client_protocol::wsjson};
        ask(*backend, frame::frame{0, "room:blip", "alice@example.com", frame::room_join{alice}});
        inbox watched;
        client.subscribe("room:blip", watched.sink());
        // The subscription is in place once a request sent after it is answered.
        ask(client, frame::frame{0, "user:alice@example.com", "alice@example.com", frame::roster_get{}});

        const auto text_of = [](const frame::frame& f) {
            INFO(frame::to_text(f));
            REQUIRE(std::holds_alternative<frame::room_message>(f.content));
            return std::get<frame::room_message>(f.content).text;
        };
        ask(*backend, say("before", "m1"));
        CHECK(text_of(watched.next()) == "before");

        network.cut();
        // The gateway has seen its link go once a request gets no answer but that.
        const auto refused =
            ask(client, frame::frame{0, "user:alice@example.com", "alice@example.com", frame::roster_get{}});
        REQUIRE(std::holds_alternative<frame::error>(refused.content));
        CHECK(std::get<frame::error>(refused.content).code == frame::error_code::backend_unavailable);

        ask(*backend, say("during one", "m2"));
        ask(*backend, say("during two", "m3"));
        network.resume();
        REQUIRE(client.wait_open(5s));
        CHECK(client.check().ok);
        ask(*backend, say("after", "m4"));

        // Each exactly once, in order: nothing lost, nothing repeated.
        CHECK(text_of(watched.next()) == "during one");
        CHECK(text_of(watched.next()) == "during two");
        CHECK(text_of(watched.next()) == "after");
    }
    asio::post(ctx, [&] { server.reset(); });
    guard.reset();
    io.join();
}
