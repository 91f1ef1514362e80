// HMAC keys for self-verifying tokens (Passport tickets, switchboard cookies,
// WebSocket session tokens). Keys come from the settings file; when it names
// none, they are generated once into the data directory and reused.
#pragma once

#include "gateway/config/config.hpp"

#include <tl/expected.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace switchyard::gateway {

struct key_set {
    std::vector<config::hmac_key> keys;  // the first one signs
    std::filesystem::path file;          // where generated keys live; empty if from settings
    bool generated = false;              // created by this call
};

tl::expected<key_set, std::string> load_or_generate_keys(const config::settings& s);

// The admin listener's bearer token (`token_file`, its first line): refused
// if other users may read the file, or shorter than 16 characters.
tl::expected<std::string, std::string> read_admin_token(const std::filesystem::path& file);

}  // namespace switchyard::gateway
