// Test support for the embedded backend: a real backend on a fresh SQLite
// file, requests that wait for their reply, and subscriptions that record
// what objects publish. Waits have deadlines that fail the test; none sleeps.
#pragma once

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/router/hub.hpp"

#include "protocols/frame/wire.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

namespace switchyard::test {

using namespace std::chrono_literals;
namespace embedded = gateway::embedded;

// A thread-safe queue with a deadline-bounded pop.
template <class T> class blocking_queue {
public:
    void push(T v) {
        {
            const std::lock_guard lock(m_);
            q_.push_back(std::move(v));
        }
        cv_.notify_all();
    }
    std::optional<T> pop(std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(m_);
        if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return std::nullopt;
        T v = std::move(q_.front());
        q_.pop_front();
        return v;
    }
    std::size_t size() {
        const std::lock_guard lock(m_);
        return q_.size();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<T> q_;
};

using frame_queue = blocking_queue<frame::frame>;

// The fixture's backend as the gateway's hub sees it, by the name
// "embedded"; calls go to whichever backend the fixture runs at the time.
class fixture_adapter final : public gateway::backends::adapter {
public:
    explicit fixture_adapter(std::unique_ptr<embedded::backend>& be) : be_(be) {}
    void send(frame::frame f, gateway::backends::frame_sink reply) override { be_->send(std::move(f), std::move(reply)); }
    void subscribe(std::string_view id, gateway::backends::frame_sink sink) override {
        be_->subscribe(id, std::move(sink));
    }
    void unsubscribe(std::string_view id) override {
        if (be_) be_->unsubscribe(id);
    }
    gateway::backends::health check() const override { return be_->check(); }

private:
    std::unique_ptr<embedded::backend>& be_;
};

// A fresh directory for one fixture, removed by the fixture.
inline std::filesystem::path make_temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-embedded-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

struct embedded_fixture {
    std::filesystem::path dir = make_temp_dir();
    embedded::options opt;
    std::unique_ptr<embedded::backend> be;
    // The gateway's hub over this backend, for test clients: however many
    // watch an object, the backend sees one subscription, as in the gateway.
    gateway::router routes{dir / "routes.toml", {"embedded"}};
    gateway::metrics stats;
    gateway::hub hub{routes, stats};
    std::map<std::string, std::shared_ptr<frame_queue>> subscriptions;
    std::uint64_t next_corr = 1;

    explicit embedded_fixture(embedded::options o = {}) : opt(std::move(o)) {
        if (opt.file.empty()) opt.file = dir / "embedded.sqlite3";
        opt.kdf = {1024, 1, 1};  // scrypt as cheap as it goes: accounts are set up, not attacked
        opt.sync = embedded::durability::normal;
        start();
        std::ofstream(dir / "routes.toml") << "[default]\nbackend = \"embedded\"\n";
        REQUIRE(routes.reload());
        hub.add_backend("embedded", std::make_shared<fixture_adapter>(be));
    }
    ~embedded_fixture() {
        be.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    void start() {
        be = std::make_unique<embedded::backend>(opt);
        be->send_unacknowledged();  // a router reaching `be` (outbound) can now
    }
    // Stops the backend (applying what was sent) and starts a new one on the same file.
    void restart() {
        be.reset();
        subscriptions.clear();
        start();
    }

    // Creates a user row directly, before any frame has loaded its object
    // (accounts are tested on their own, through create_account).
    void add_user(const std::string& handle, const std::string& display_name = {}) {
        embedded::database db(opt.file, embedded::durability::normal);
        db.prepare("INSERT INTO users (handle, display_name, created_ms) VALUES (?1, ?2, 0)")
            .bind(handle, display_name.empty() ? handle : display_name)
            .run();
        REQUIRE_FALSE(db.failed());
    }

    // Creates an account as the gateway and the operator commands do: an
    // account_create frame to the user object.
    void create_account(const std::string& handle, const std::string& display_name = {}) {
        const auto replies = request({}, "user:" + handle,
                                     frame::account_create{"password of " + handle, false, display_name});
        INFO(frame::to_text(replies.back()));
        REQUIRE(std::holds_alternative<frame::ack>(replies.back().content));
    }

    // Sends and collects replies until the terminal one (anything but a
    // presence_update); returns all of them, terminal last.
    std::vector<frame::frame> request(const std::string& sender, const std::string& object, frame::body b) {
        auto replies = std::make_shared<frame_queue>();
        frame::frame f{next_corr++, object, sender, std::move(b)};
        const std::uint64_t corr = f.corr;
        be->send(std::move(f), [replies](frame::frame r) { replies->push(std::move(r)); });
        std::vector<frame::frame> out;
        for (;;) {
            auto r = replies->pop();
            INFO("no reply to a request to " << object);
            REQUIRE(r);
            CHECK(r->corr == corr);
            const bool terminal = !std::holds_alternative<frame::presence_update>(r->content);
            out.push_back(std::move(*r));
            if (terminal) return out;
        }
    }

    // The terminal reply alone.
    frame::frame ask(const std::string& sender, const std::string& object, frame::body b) {
        return request(sender, object, std::move(b)).back();
    }

    // Fire and forget (corr 0): only errors come back, and are ignored here.
    void tell(const std::string& sender, const std::string& object, frame::body b) {
        be->send(frame::frame{0, object, sender, std::move(b)}, [](frame::frame) {});
    }

    frame_queue& subscribe(const std::string& object) {
        auto q = std::make_shared<frame_queue>();
        subscriptions[object] = q;
        be->subscribe(object, [q](frame::frame f) { q->push(std::move(f)); });
        return *q;
    }
};

template <class T> const T& as(const frame::frame& f) {
    INFO("got " << frame::to_text(f));
    REQUIRE(std::holds_alternative<T>(f.content));
    return std::get<T>(f.content);
}

inline frame::error_code error_of(const frame::frame& f) { return as<frame::error>(f).code; }

}  // namespace switchyard::test
