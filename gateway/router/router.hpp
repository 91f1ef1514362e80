// The active routes table. Readers take a snapshot without locking; a reload
// validates the whole file first and swaps the new table in atomically, so a
// bad file never replaces a good one.
#pragma once

#include "gateway/config/routes.hpp"

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchyard::gateway {

class router {
public:
    router(std::filesystem::path file, std::vector<std::string> backends)
        : file_(std::move(file)), backends_(std::move(backends)) {}

    // Loads the routes file; on success installs it under the next version.
    tl::expected<std::shared_ptr<const config::route_table>, config::error> reload();

    std::shared_ptr<const config::route_table> table() const { return table_.load(); }

    const std::filesystem::path& file() const { return file_; }

private:
    std::filesystem::path file_;
    std::vector<std::string> backends_;
    std::mutex reload_mutex_;  // reloads come from SIGHUP and the admin endpoint
    std::uint64_t next_version_ = 1;
    std::atomic<std::shared_ptr<const config::route_table>> table_;
};

// The table as JSON for the admin endpoint.
std::string describe_routes(const config::route_table& t);

}  // namespace switchyard::gateway
