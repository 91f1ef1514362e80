// The hub: frames reach the backend the routes choose, and however many
// local sessions watch an object, the backend sees one subscription.
#include "embedded_fixture.hpp"

#include "gateway/router/hub.hpp"

#include <fstream>

using namespace switchyard;
using namespace switchyard::test;

namespace {

// Counts subscribe/unsubscribe calls and forwards everything to a real backend.
class counting_adapter final : public gateway::backends::adapter {
public:
    explicit counting_adapter(gateway::backends::adapter& inner) : inner_(inner) {}
    void send(frame::frame f, gateway::backends::frame_sink reply) override { inner_.send(std::move(f), std::move(reply)); }
    void subscribe(std::string_view id, gateway::backends::frame_sink sink) override {
        ++subscribes;
        inner_.subscribe(id, std::move(sink));
    }
    void unsubscribe(std::string_view id) override {
        ++unsubscribes;
        inner_.unsubscribe(id);
    }
    gateway::backends::health check() const override { return inner_.check(); }

    int subscribes = 0;
    int unsubscribes = 0;

private:
    gateway::backends::adapter& inner_;
};

struct hub_fixture : embedded_fixture {
    std::shared_ptr<counting_adapter> adapter = std::make_shared<counting_adapter>(*be);
    gateway::router routes{dir / "routes.toml", {"embedded", "elsewhere"}};
    gateway::metrics stats;
    gateway::hub hub{routes, stats};

    hub_fixture() {
        std::ofstream(dir / "routes.toml") << "[[route]]\nprefix = \"room:far-\"\nbackend = \"elsewhere\"\n"
                                              "[default]\nbackend = \"embedded\"\n";
        REQUIRE(routes.reload());
        hub.add_backend("embedded", adapter);
        add_user("alice@example.com");
    }

    frame::frame send(frame::frame f) {
        auto q = std::make_shared<frame_queue>();
        REQUIRE(hub.send(std::move(f), [q](frame::frame r) { q->push(std::move(r)); }));
        auto r = q->pop();
        REQUIRE(r);
        return *r;
    }
};

}  // namespace

TEST_CASE("many local watchers share one backend subscription", "[hub]") {
    hub_fixture h;
    const std::string alice = "alice@example.com";
    as<frame::ack>(h.send({1, "room:r", alice, frame::room_create{frame::room_policy::named, ""}}));

    frame_queue a, b;
    const auto id_a = h.hub.watch("room:r", [&](gateway::shared_frame f) { a.push(*f); });
    const auto id_b = h.hub.watch("room:r", [&](gateway::shared_frame f) { b.push(*f); });
    CHECK(h.adapter->subscribes == 1);
    CHECK(h.hub.watched_objects() == 1);

    as<frame::room_members>(
        h.send({2, "room:r", alice, frame::room_join{{alice, "ep", alice, 0, frame::client_protocol::msnp}}}));
    as<frame::room_join>(*a.pop());
    as<frame::room_join>(*b.pop());

    as<frame::ack>(h.send({3, "room:r", alice, frame::room_nudge{}}));
    as<frame::room_nudge>(*a.pop());
    as<frame::room_nudge>(*b.pop());

    h.hub.unwatch("room:r", id_a);
    CHECK(h.adapter->unsubscribes == 0);
    as<frame::ack>(h.send({4, "room:r", alice, frame::room_typing{}}));
    as<frame::room_typing>(*b.pop());
    CHECK(a.size() == 0);

    h.hub.unwatch("room:r", id_b);
    CHECK(h.adapter->unsubscribes == 1);
    CHECK(h.hub.watched_objects() == 0);
    h.hub.unwatch("room:r", id_b);  // twice is harmless
    CHECK(h.adapter->unsubscribes == 1);
}

TEST_CASE("frames go to the backend the routes name, and nowhere when it is missing", "[hub]") {
    hub_fixture h;
    CHECK_FALSE(h.hub.send({1, "room:far-away", "alice@example.com", frame::room_nudge{}}, [](frame::frame) {}));
    as<frame::ack>(h.send({2, "room:near", "alice@example.com", frame::room_create{}}));
    CHECK(h.stats.render().find("switchyard_frames_out_total{type=\"room_create\"} 1\n") != std::string::npos);
    CHECK(h.stats.render().find("switchyard_frames_in_total{type=\"ack\"} 1\n") != std::string::npos);
    CHECK(h.hub.check().ok);
}
