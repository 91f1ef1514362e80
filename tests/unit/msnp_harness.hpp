// Test support for the MSNP state machines: real embedded objects behind
// them, and a client whose lines are written and read as text. No sockets,
// but the gateway's own session core and hub: frames a machine emits are
// routed by the core, and replies and published frames come back to it
// through a queue the test thread empties within its waits.
#pragma once

#include <chrono>

#include "embedded_fixture.hpp"

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/session/core.hpp"
#include "protocols/msnp/session.hpp"

#include <deque>
#include <map>
#include <set>

namespace switchyard::test {

// Services with fixed keys and counters, enough for the machines: tickets
// are "ticket-<handle>", cookies are looked up in a table and used once.
class fake_services final : public msnp::services {
public:
    explicit fake_services(embedded::database& db) : db_(db) {}

    std::string md5_salt(std::string_view handle) override {
        return embedded::accounts(db_, cheap_kdf()).md5_salt(handle, "test secret");
    }
    bool verify_md5(std::string_view handle, std::string_view response) override {
        return embedded::accounts(db_, cheap_kdf()).verify_md5(handle, response);
    }
    std::optional<msnp::ticket_owner> verify_ticket(std::string_view ticket) override {
        if (ticket.starts_with("t=")) ticket.remove_prefix(2);
        ticket = ticket.substr(0, ticket.find('&'));
        if (!ticket.starts_with("ticket-")) return std::nullopt;
        // Issued now: after the test's accounts were made (a ticket older
        // than the account's password is refused).
        const auto now = std::chrono::system_clock::now().time_since_epoch();
        return msnp::ticket_owner{std::string(ticket.substr(7)),
                                  static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count())};
    }
    std::string issue_sb_cookie(const msnp::sb_grant& g) override {
        const std::string cookie = "cookie" + std::to_string(++counter_);
        cookies_[cookie] = g;
        return cookie;
    }
    std::optional<msnp::sb_grant> redeem_sb_cookie(std::string_view cookie, std::string_view handle) override {
        auto it = cookies_.find(std::string(cookie));
        if (it == cookies_.end() || it->second.handle != handle) return std::nullopt;
        auto g = it->second;
        cookies_.erase(it);
        return g;
    }
    std::string new_room_id() override { return "sb" + std::to_string(++counter_); }
    std::string new_endpoint_id() override { return "ep" + std::to_string(++counter_); }
    std::string sb_endpoint() override { return "127.0.0.1:1863"; }
    std::uint64_t now_ms() override { return 1700000000000; }

    static embedded::kdf_params cheap_kdf() { return {1024, 8, 1}; }

private:
    embedded::database& db_;
    std::map<std::string, msnp::sb_grant> cookies_;
    int counter_ = 0;
};

// One MSNP client connection driven through a machine (ns_session or
// sb_session) and the session core, against the fixture's backend.
template <class Machine> class client {
public:
    client(embedded_fixture& f, msnp::services& svc, msnp::session_limits limits = {})
        : machine_(svc, limits), core_(f.hub, out_, machine_) {}

    // Sends one command (a line, optionally with its payload) and returns
    // what the server wrote in answer, after every frame it caused has been
    // answered by the backend.
    std::string send(const msnp::command& c) {
        core_.apply(machine_.on_command(c));
        return drain();
    }
    // Parses "VER 1 MSNP8 CVR0" into a command (no payload).
    std::string send(std::string_view text, std::string payload = {}) {
        msnp::command c;
        std::size_t start = 0;
        bool first = true;
        while (start <= text.size()) {
            const auto sp = text.find(' ', start);
            const auto token = text.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
            if (first) c.name = token;
            else c.params.emplace_back(token);
            first = false;
            if (sp == std::string_view::npos) break;
            start = sp + 1;
        }
        if (!payload.empty() || c.name == "MSG" || c.name == "UUX") {
            c.has_payload = true;
            c.payload = std::move(payload);
        }
        return send(c);
    }
    // `MSG trid mode len` + payload.
    std::string msg(std::string_view trid, std::string_view mode, std::string payload) {
        msnp::command c{"MSG", {std::string(trid), std::string(mode), std::to_string(payload.size())}, {}, true};
        c.payload = std::move(payload);
        return send(c);
    }
    // Whatever arrived from watched objects since the last call.
    std::string pending() { return drain(); }
    // Waits (bounded) until what the server wrote contains `needle`, for
    // frames that other clients' actions publish to this one.
    std::string wait_for(std::string_view needle) {
        std::string got = drain();
        while (got.find(needle) == std::string::npos) {
            INFO("waiting for \"" << needle << "\"; have: " << got);
            run_next();
            got += drain();
        }
        return got;
    }
    // The same for several lines pushed by different objects, which arrive
    // in any order: waits until every one of them has been written.
    std::string wait_for_all(std::initializer_list<std::string_view> needles) {
        std::string got;
        for (const std::string_view needle : needles) {
            if (got.find(needle) == std::string::npos) got += wait_for(needle);
        }
        return got;
    }

    std::string shutdown() {
        core_.shutdown();
        return drain();
    }
    std::string closed() {
        core_.closed();
        return drain();
    }
    bool is_closed() const { return out_.closed; }
    Machine& machine() { return machine_; }

private:
    // What the session writes, as text; a close decision is only noted.
    // Replies and watched frames wait in the inbox for the test thread.
    struct written final : gateway::session_core::transport {
        std::shared_ptr<blocking_queue<frame::frame>> inbox = std::make_shared<blocking_queue<frame::frame>>();
        std::string text;
        bool closed = false;
        void write(std::string data) override { text += data; }
        void finish(std::uint16_t, std::string) override { closed = true; }
        gateway::local_sink watch_sink() override {
            return [q = inbox](gateway::shared_frame f) { q->push(*f); };
        }
        gateway::backends::frame_sink reply_sink() override {
            return [q = inbox](frame::frame r) { q->push(std::move(r)); };
        }
    };

    // Hands the next reply or published frame to the core.
    void run_next() {
        auto f = out_.inbox->pop();
        REQUIRE(f);
        core_.deliver(*f);
    }

    // Runs replies until every request has its final reply; published
    // frames that arrive meanwhile are run too.
    std::string drain() {
        while (core_.outstanding() > 0) {
            INFO("a request got no reply");
            run_next();
        }
        while (out_.inbox->size() > 0) {
            run_next();
        }
        return std::exchange(out_.text, {});
    }

    written out_;
    Machine machine_;
    gateway::session_core core_;
};

}  // namespace switchyard::test
