// The backend conformance suite (tests/conformance) against the embedded
// backend: a fresh SQLite file per section, a clock the suite moves, and
// the shards' count of resident objects for hibernation.
#include "tests/conformance/backend_conformance.hpp"
#include "tests/conformance/embedded_store.hpp"

#include "gateway/backends/embedded/backend.hpp"

#include <catch2/catch.hpp>

#include <memory>

namespace {

using namespace switchyard;
namespace embedded = gateway::embedded;

class embedded_target final : public test::conformance_target {
public:
    embedded_target() : be_(std::make_unique<embedded::backend>(store_.options())) {}
    ~embedded_target() override { be_.reset(); }

    gateway::backends::adapter& adapter() override { return *be_; }


    void restart() override {
        be_.reset();
        be_ = std::make_unique<embedded::backend>(store_.options());
    }

    void advance_clock(std::chrono::milliseconds d) override { store_.advance_clock(d); }

    std::optional<std::size_t> resident_objects() override { return be_->stats().resident; }

private:
    test::embedded_store store_;
    std::unique_ptr<embedded::backend> be_;
};

}  // namespace

TEST_CASE("the embedded backend keeps the backend contract", "[conformance]") {
    embedded_target target;
    test::run_conformance(target);
}
