// Test support for the embedded backend: a real backend on a fresh SQLite
// file, requests that wait for their reply, and subscriptions that record
// what objects publish. Waits have deadlines that fail the test; none sleeps.
#pragma once

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/sqlite.hpp"

#include "protocols/frame/wire.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace switchyard::test {

using namespace std::chrono_literals;
namespace embedded = gateway::embedded;

// A thread-safe queue of frames with a deadline-bounded pop.
class frame_queue {
public:
    void push(frame::frame f) {
        {
            const std::lock_guard lock(m_);
            q_.push_back(std::move(f));
        }
        cv_.notify_all();
    }
    std::optional<frame::frame> pop(std::chrono::milliseconds timeout = 5s) {
        std::unique_lock lock(m_);
        if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return std::nullopt;
        frame::frame f = std::move(q_.front());
        q_.pop_front();
        return f;
    }
    std::size_t size() {
        const std::lock_guard lock(m_);
        return q_.size();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<frame::frame> q_;
};

// Several watchers of one object: the backend keeps one sink per object
// (one per gateway), so this hands every local watcher its own copy, as the
// gateway's hub does. Test clients of one object watch through it.
class fanout {
public:
    explicit fanout(std::unique_ptr<embedded::backend>& be) : be_(be) {}

    void watch(const std::string& id, const std::shared_ptr<frame_queue>& q) {
        const std::lock_guard lock(state_->m);
        auto& queues = state_->queues[id];
        queues.push_back(q);
        if (queues.size() == 1) {
            be_->subscribe(id, [state = state_, id](frame::frame f) {
                const std::lock_guard guard(state->m);
                for (const auto& queue : state->queues[id]) queue->push(f);
            });
        }
    }
    void unwatch(const std::string& id, const std::shared_ptr<frame_queue>& q) {
        const std::lock_guard lock(state_->m);
        auto& queues = state_->queues[id];
        std::erase(queues, q);
        if (queues.empty() && be_) be_->unsubscribe(id);
    }

private:
    struct state {
        std::mutex m;
        std::map<std::string, std::vector<std::shared_ptr<frame_queue>>> queues;
    };
    std::unique_ptr<embedded::backend>& be_;
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

struct embedded_fixture {
    std::filesystem::path dir;
    embedded::options opt;
    std::unique_ptr<embedded::backend> be;
    fanout fan{be};
    std::map<std::string, std::shared_ptr<frame_queue>> subscriptions;
    std::uint64_t next_corr = 1;

    explicit embedded_fixture(embedded::options o = {}) : opt(std::move(o)) {
        std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-embedded-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()));
        dir = tmpl;
        if (opt.file.empty()) opt.file = dir / "embedded.sqlite3";
        opt.sync = embedded::durability::normal;
        start();
    }
    ~embedded_fixture() {
        be.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    void start() { be = std::make_unique<embedded::backend>(opt); }
    // Stops the backend (applying what was sent) and starts a new one on the same file.
    void restart() {
        be.reset();
        subscriptions.clear();
        start();
    }

    // Creates a user row directly (accounts are tested on their own).
    void add_user(const std::string& handle, const std::string& display_name = {}) {
        embedded::database db(opt.file, embedded::durability::normal);
        db.prepare("INSERT INTO users (handle, display_name, created_ms) VALUES (?1, ?2, 0)")
            .bind(handle, display_name.empty() ? handle : display_name)
            .run();
        REQUIRE_FALSE(db.failed());
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
