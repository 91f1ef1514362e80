// Requests between objects (gateway/backends/README.md, "Requests between
// objects"): an object that asks another keeps the client's request, stays
// in memory while it waits, and ends the request with backend_unavailable
// when no answer comes, at once when the router says none can (the
// target's backend is down) and within options::request_timeout when the
// answer is lost.
#include "tests/unit/embedded_fixture.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

namespace {

using namespace switchyard;
using namespace switchyard::test;
using frame::error_code;

const std::string alice = "alice@example.com";
const std::string bob = "bob@example.com";
const std::string carol = "carol@example.com";

using route_fn = std::function<void(frame::frame, gateway::backends::frame_sink)>;

// A backend whose objects' frames to other objects go through `route`,
// which each test sets: to the backend itself, or somewhere that loses
// them. Its clock is the test's, so a timeout passes only when the test
// moves it.
struct routed_fixture {
    std::shared_ptr<route_fn> route = std::make_shared<route_fn>();
    std::shared_ptr<std::atomic<std::uint64_t>> now = std::make_shared<std::atomic<std::uint64_t>>(1700000000000);
    embedded_fixture f{options()};

    routed_fixture() {
        // By default, to this backend's own objects.
        *route = local();
        for (const std::string& h : {alice, bob, carol}) f.add_user(h);
    }

    embedded::options options() {
        embedded::options o;
        o.outbound = [r = route](frame::frame fr, gateway::backends::frame_sink reply) { (*r)(std::move(fr), std::move(reply)); };
        o.clock = [n = now] { return n->load(); };
        o.request_timeout = std::chrono::milliseconds(10000);
        o.hibernate_after = std::chrono::milliseconds(20);  // swept often on the real clock
        return o;
    }

    // To this backend's own objects; while the backend stops (or starts
    // again), what its objects send is dropped, as the hub drops it.
    route_fn local() {
        return [this](frame::frame fr, gateway::backends::frame_sink reply) {
            if (f.be) f.be->send(std::move(fr), std::move(reply));
        };
    }

    // Frames to `object` are lost: neither applied nor answered, as when a
    // link drops them and the node restarts.
    void lose_frames_to(const std::string& object) {
        *route = [this, object](frame::frame fr, gateway::backends::frame_sink reply) {
            if (fr.object != object && f.be) f.be->send(std::move(fr), std::move(reply));
        };
    }

    // Sends a request whose replies are collected in the returned queue.
    std::shared_ptr<frame_queue> send(const std::string& sender, const std::string& object, frame::body b,
                                      std::uint64_t corr) {
        auto q = std::make_shared<frame_queue>();
        f.be->send(frame::frame{corr, object, sender, std::move(b)}, [q](frame::frame r) { q->push(std::move(r)); });
        return q;
    }

    // Polls (with a deadline) until the backend holds `n` objects.
    bool resident_becomes(std::size_t n) {
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        while (f.be->stats().resident != n && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        return f.be->stats().resident == n;
    }
};

frame::roster_change forward(const std::string& handle) {
    return frame::list_edit(frame::change_op::add, frame::list::forward, handle);
}

}  // namespace

TEST_CASE("an add whose answer is lost ends with backend_unavailable after the timeout, the asker kept in memory",
          "[request]") {
    routed_fixture t;
    t.lose_frames_to("user:" + bob);
    auto added = t.send(alice, "user:" + alice, forward(bob), 7);
    // Alice's next request waits behind the add.
    auto roster = t.send(alice, "user:" + alice, frame::roster_get{}, 8);
    // Carol's object is loaded too; idle time passes on the backend's clock,
    // but less than the timeout: Carol's object hibernates, Alice's waits.
    as<frame::roster>(t.f.ask(carol, "user:" + carol, frame::roster_get{}));
    REQUIRE(t.resident_becomes(2));  // Alice's object has taken the add
    *t.now += 5000;
    REQUIRE(t.resident_becomes(1));
    CHECK(t.f.be->stats().hibernations >= 1);
    CHECK(added->size() == 0);
    CHECK(roster->size() == 0);

    *t.now += 5000;  // the timeout has passed
    const auto failed = added->pop();
    REQUIRE(failed);
    CHECK(failed->corr == 7);
    CHECK(error_of(*failed) == error_code::backend_unavailable);
    // Then the held request, which finds nothing added.
    const auto r = roster->pop();
    REQUIRE(r);
    CHECK(r->corr == 8);
    CHECK(as<frame::roster>(*r).entries.empty());
    // Nothing waits any more: Alice's object may hibernate again.
    *t.now += 1000;
    CHECK(t.resident_becomes(0));
}

TEST_CASE("a block whose contact's answer is lost goes on under the contact's handle after the timeout",
          "[request]") {
    routed_fixture t;
    t.lose_frames_to("user:" + bob);
    auto blocked = t.send(alice, "user:" + alice, frame::list_edit(frame::change_op::add, frame::list::block, bob), 3);
    REQUIRE(t.resident_becomes(1));  // Alice's object has taken it
    CHECK(blocked->size() == 0);
    *t.now += 10000;
    const auto r = blocked->pop();
    REQUIRE(r);
    CHECK(r->corr == 3);
    CHECK(as<frame::roster_change>(*r).display_name == bob);
    CHECK(as<frame::roster_change>(*r).which == frame::list::block);
}

TEST_CASE("an add whose contact's backend is down ends with backend_unavailable at once", "[request]") {
    routed_fixture t;
    *t.route = [&t](frame::frame fr, gateway::backends::frame_sink reply) {
        if (fr.object == "user:" + bob) {
            reply(frame::frame{fr.corr, fr.object, {}, frame::error{error_code::backend_unavailable, "link down"}});
            return;
        }
        t.f.be->send(std::move(fr), std::move(reply));
    };
    CHECK(error_of(t.f.ask(alice, "user:" + alice, forward(bob))) == error_code::backend_unavailable);
    CHECK(as<frame::roster>(t.f.ask(alice, "user:" + alice, frame::roster_get{})).entries.empty());
    // An allow-list add goes on without the contact's answer, under its handle.
    const auto allowed = as<frame::roster_change>(
        t.f.ask(alice, "user:" + alice, frame::list_edit(frame::change_op::add, frame::list::allow, bob)));
    CHECK(allowed.display_name == bob);
}

TEST_CASE("an invitation whose answer is lost ends with backend_unavailable and is taken back", "[request]") {
    routed_fixture t;
    const std::string sb = "room:sb";
    as<frame::ack>(t.f.ask(alice, sb, frame::room_create{frame::room_policy::invite_only, {}}));
    as<frame::room_members>(t.f.ask(alice, sb, frame::room_join{frame::member{alice, "ep-a", "Alice", 0, {}}}));
    // Bob is online, but the invitation to him is lost on its way.
    as<frame::ack>(t.f.ask(bob, "user:" + bob, frame::hello{frame::client_protocol::wsjson, 1, bob, "ep-b", {}, {}}));
    frame::presence_info online;
    online.state = frame::status::online;
    online.endpoint = "ep-b";
    as<frame::ack>(t.f.ask(bob, "user:" + bob, frame::presence_set{online}));
    t.lose_frames_to("user:" + bob);
    auto invited = t.send(alice, sb, frame::room_invite{bob, {}, {}}, 9);
    // The room goes on meanwhile.
    as<frame::ack>(t.f.ask(alice, sb, frame::room_typing{true, {}}));
    CHECK(invited->size() == 0);
    *t.now += 10000;
    const auto failed = invited->pop();
    REQUIRE(failed);
    CHECK(failed->corr == 9);
    CHECK(error_of(*failed) == error_code::backend_unavailable);
    // The invitation was taken back: Bob cannot join on it, and may be invited again.
    CHECK(error_of(t.f.ask(bob, sb, frame::room_join{frame::member{bob, "ep-b", "Bob", 0, {}}})) ==
          error_code::not_allowed);
    *t.route = [&t](frame::frame fr, gateway::backends::frame_sink reply) { t.f.be->send(std::move(fr), std::move(reply)); };
    as<frame::ack>(t.f.ask(alice, sb, frame::room_invite{bob, {}, {}}));
}

// A removed account's departure notice lost on its way (the process killed
// after the removal committed, or the contact's backend down): the backend
// sends it again when it starts, ahead of every frame of the new run, and
// the contact drops the account then.
TEST_CASE("a lost departure is sent again at start, and the contact drops the removed account", "[request]") {
    routed_fixture t;
    as<frame::roster_change>(t.f.ask(bob, "user:" + bob, forward(alice)));
    const auto listed = [&] {
        const auto r = as<frame::roster>(t.f.ask(bob, "user:" + bob, frame::roster_get{}));
        return std::ranges::any_of(r.entries, [](const frame::roster_entry& e) { return e.handle == alice; });
    };
    t.lose_frames_to("user:" + bob);
    as<frame::ack>(t.f.ask({}, "user:" + alice, frame::account_delete{}));
    CHECK(listed());  // the departure was lost

    *t.route = t.local();
    t.f.restart();
    CHECK_FALSE(listed());
}
