// The routes file (conf/routes.toml): ordered rules mapping object ids
// ("user:alice@example.com", "room:lobby") to named backends.
#pragma once

#include <tl/expected.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::gateway::config {

// Every configuration problem, reported as "file:line:column: message".
struct error {
    std::string file;
    std::uint32_t line = 0;    // 1-based; 0 when the problem has no position
    std::uint32_t column = 0;  // 1-based
    std::string message;
    std::string to_string() const;
};

enum class match_kind { exact, prefix, glob };
std::string_view to_string(match_kind k);

struct route {
    match_kind kind = match_kind::exact;
    std::string pattern;
    std::string backend;
    std::string location;  // optional hint ("weur", "enam", ...); empty = none
    std::uint32_t line = 0;  // where the rule starts in its file, for diagnostics

    bool matches(std::string_view object_id) const;
};

struct route_match {
    const route* rule;  // nullptr = the default route
    std::string_view backend;
    std::string_view location;
};

// An immutable, validated routing table. Reloads build a new one and swap it in.
struct route_table {
    std::vector<route> rules;  // first match wins
    std::string default_backend;
    std::string default_location;
    std::filesystem::path file;
    std::uint64_t digest = 0;  // FNV-1a 64 of the file's bytes
    std::uint64_t version = 0; // set by whoever installs the table (1, 2, ...)

    route_match lookup(std::string_view object_id) const;
};

// `known_backends` are the names defined in the settings file; a rule naming
// any other backend is an error at the rule's backend key.
tl::expected<route_table, error> load_routes(const std::filesystem::path& file,
                                             const std::vector<std::string>& known_backends);
tl::expected<route_table, error> parse_routes(std::string_view text, const std::filesystem::path& file,
                                              const std::vector<std::string>& known_backends);

// Glob with '*' (any run, possibly empty) and '?' (one byte); no character classes.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace switchyard::gateway::config
