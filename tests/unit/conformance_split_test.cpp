// The backend conformance suite (tests/conformance) against two embedded
// backends, each on a SQLite file of its own, behind one hub whose routes
// split the users between them and put the rooms on the second: Alice and
// Carol on "one", everyone else and every room on "two". Each contact add,
// reverse-list notice, presence fan-out, invitation and block between
// users of both halves crosses from one backend to the other through the
// hub, as it would between files, processes or a Cloudflare deployment,
// so the suite passes here only if no object reads another's rows.
#include "tests/conformance/backend_conformance.hpp"
#include "tests/conformance/embedded_store.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/ops/metrics.hpp"
#include "gateway/router/hub.hpp"
#include "gateway/router/router.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <memory>

namespace {

using namespace switchyard;
namespace embedded = gateway::embedded;

// What a gateway gives the suite: the hub, seen as one adapter.
class hub_adapter final : public gateway::backends::adapter {
public:
    explicit hub_adapter(gateway::hub& h) : hub_(h) {}

    void send(frame::frame f, gateway::backends::frame_sink reply) override {
        const std::uint64_t corr = f.corr;
        const std::string object = f.object;
        // `accounts:<backend>`: that backend's directory, as the control
        // socket addresses it.
        if (object.starts_with("accounts:") && object.size() > 9) {
            if (auto backend = hub_.backend(object.substr(9))) {
                f.object = "accounts:";
                backend->send(std::move(f), [reply, object](frame::frame r) {
                    r.object = object;
                    reply(std::move(r));
                });
                return;
            }
        }
        if (!hub_.send(std::move(f), reply)) {
            reply(frame::frame{corr, object, {}, frame::error{frame::error_code::backend_unavailable, "no route"}});
        }
    }
    void subscribe(std::string_view object_id, gateway::backends::frame_sink sink) override {
        unsubscribe(object_id);
        const std::string id(object_id);
        watches_[id] = hub_.watch(id, [sink = std::move(sink)](gateway::shared_frame f) { sink(*f); });
    }
    void unsubscribe(std::string_view object_id) override {
        if (const auto it = watches_.find(std::string(object_id)); it != watches_.end()) {
            hub_.unwatch(it->first, it->second);
            watches_.erase(it);
        }
    }
    gateway::backends::health check() const override { return hub_.check(); }

private:
    gateway::hub& hub_;
    std::map<std::string, std::uint64_t> watches_;
};

class split_target final : public test::conformance_target {
public:
    split_target() {
        std::ofstream(dir_ / "routes.toml") << "[[route]]\nexact = \"user:alice@example.com\"\nbackend = \"one\"\n"
                                               "[[route]]\nexact = \"user:carol@example.com\"\nbackend = \"one\"\n"
                                               "[default]\nbackend = \"two\"\n";
        REQUIRE(routes_.reload());
        start();
    }
    ~split_target() override { stop(); }

    gateway::backends::adapter& adapter() override { return *adapter_; }

    void restart() override {
        stop();
        start();
    }

    void advance_clock(std::chrono::milliseconds d) override {
        one_.advance_clock(d);
        two_.advance_clock(d);
    }

    std::vector<std::string> directories() override { return {"accounts:one", "accounts:two"}; }

    std::optional<std::size_t> resident_objects() override {
        return be_one_->stats().resident + be_two_->stats().resident;
    }

private:
    std::shared_ptr<embedded::backend> open(const test::embedded_store& store) {
        embedded::options opt = store.options();
        opt.outbound = [h = hub_.get()](frame::frame f, gateway::backends::frame_sink reply) {
            const std::uint64_t corr = f.corr;
            const std::string object = f.object;
            if (!h->send(std::move(f), reply) && reply) {
                reply(frame::frame{corr, object, {}, frame::error{frame::error_code::backend_unavailable, "no route"}});
            }
        };
        return std::make_shared<embedded::backend>(opt);
    }

    void start() {
        hub_ = std::make_unique<gateway::hub>(routes_, stats_);
        auto one = open(one_);
        auto two = open(two_);
        be_one_ = one.get();
        be_two_ = two.get();
        hub_->add_backend("one", one);
        hub_->add_backend("two", two);
        one->send_unacknowledged();
        two->send_unacknowledged();
        adapter_ = std::make_unique<hub_adapter>(*hub_);
    }

    // Subscriptions end, then both backends stop, each after applying
    // what was sent to it (what one sends the other meanwhile is dropped,
    // as between processes that stop; the outbox sends it again at start).
    void stop() {
        adapter_.reset();
        hub_.reset();
        be_one_ = be_two_ = nullptr;
    }

    test::embedded_store one_;
    test::embedded_store two_;
    std::filesystem::path dir_ = one_.options().file.parent_path();
    gateway::router routes_{dir_ / "routes.toml", {"one", "two"}};
    gateway::metrics stats_;
    std::unique_ptr<gateway::hub> hub_;
    std::unique_ptr<hub_adapter> adapter_;
    embedded::backend* be_one_ = nullptr;
    embedded::backend* be_two_ = nullptr;
};

}  // namespace

TEST_CASE("two embedded backends behind one hub keep the backend contract", "[conformance]") {
    split_target target;
    test::run_conformance(target);
}
