// What a conformance_target over the embedded backend needs besides the
// backend itself: a SQLite file in a directory of its own, a clock the
// suite moves, and cheap password hashes. Shared by the
// targets that run the suite on the embedded backend directly and through
// a backend link.
#pragma once

#include "gateway/backends/embedded/backend.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace switchyard::test {

class embedded_store {
public:
    embedded_store() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-conformance-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        opt_.file = dir_ / "embedded.sqlite3";
        opt_.sync = gateway::embedded::durability::full;
        opt_.clock = [now = now_] { return now->load(); };
        // Idle on the suite's clock, swept often on the real one: objects
        // leave memory soon after the suite moves the clock, and only then.
        opt_.hibernate_after = std::chrono::milliseconds(20);
        opt_.kdf = {1u << 10, 1, 1};  // accounts are set up here, not attacked
    }
    ~embedded_store() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    embedded_store(const embedded_store&) = delete;
    embedded_store& operator=(const embedded_store&) = delete;

    // The backend's settings: the same file on every start.
    const gateway::embedded::options& options() const { return opt_; }

    void advance_clock(std::chrono::milliseconds d) { *now_ += static_cast<std::uint64_t>(d.count()); }

private:
    std::filesystem::path dir_;
    std::shared_ptr<std::atomic<std::uint64_t>> now_ = std::make_shared<std::atomic<std::uint64_t>>(1700000000000);
    gateway::embedded::options opt_;
};

}  // namespace switchyard::test
