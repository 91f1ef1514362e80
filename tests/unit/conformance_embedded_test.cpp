// The backend conformance suite (tests/conformance) against the embedded
// backend: a fresh SQLite file per section, a clock the suite moves, and
// the shards' count of resident objects for hibernation.
#include "tests/conformance/backend_conformance.hpp"

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/backend.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>

namespace {

using namespace switchyard;
namespace embedded = gateway::embedded;

class embedded_target final : public test::conformance_target {
public:
    embedded_target() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-conformance-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        opt_.file = dir_ / "embedded.sqlite3";
        opt_.sync = embedded::durability::full;
        opt_.clock = [now = now_] { return now->load(); };
        // Idle on the suite's clock, swept often on the real one: objects
        // leave memory soon after the suite moves the clock, and only then.
        opt_.hibernate_after = std::chrono::milliseconds(20);
        be_ = std::make_unique<embedded::backend>(opt_);
    }
    ~embedded_target() override {
        be_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    gateway::backends::adapter& adapter() override { return *be_; }

    // What an operator's `switchyard user add` does, with a cheap password hash.
    void create_account(const std::string& handle, const std::string& display_name) override {
        embedded::database db(opt_.file, embedded::durability::normal);
        embedded::accounts accounts(db, embedded::kdf_params{1u << 10, 8, 1});
        const auto added = accounts.add(handle, "a password of sorts", false, display_name);
        INFO((added ? std::string() : added.error().message));
        REQUIRE(added);
    }

    void restart() override {
        be_.reset();
        be_ = std::make_unique<embedded::backend>(opt_);
    }

    void advance_clock(std::chrono::milliseconds d) override { *now_ += static_cast<std::uint64_t>(d.count()); }

    std::optional<std::size_t> resident_objects() override { return be_->stats().resident; }

private:
    std::filesystem::path dir_;
    std::shared_ptr<std::atomic<std::uint64_t>> now_ = std::make_shared<std::atomic<std::uint64_t>>(1700000000000);
    embedded::options opt_;
    std::unique_ptr<embedded::backend> be_;
};

}  // namespace

TEST_CASE("the embedded backend keeps the backend contract", "[conformance]") {
    embedded_target target;
    test::run_conformance(target);
}
