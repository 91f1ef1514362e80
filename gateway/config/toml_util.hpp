// Helpers shared by the settings and routes loaders: TOML parsing with errors
// mapped to config::error, key checking, and typed getters that report the
// position of whatever they reject. Private to gateway/config: toml++ stays out
// of the public headers.
#pragma once

#include "gateway/config/routes.hpp"

#include <toml++/toml.h>

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace switchyard::gateway::config::detail {

// The whole file; failing to read it is an error without a position.
tl::expected<std::string, error> read_file(const std::filesystem::path& file);

// Syntax errors carry toml++'s position and description.
tl::expected<toml::table, error> parse_toml(std::string_view text, const std::filesystem::path& file);

// "a, b, c"
std::string join(std::span<const std::string_view> names);

// Reads values out of parsed TOML. The first problem is recorded and later
// ones are ignored, so a report always points at one place; loaders check
// ok() once at the end instead of after every key.
class reader {
public:
    explicit reader(std::string file) : file_(std::move(file)) {}

    bool ok() const { return !error_; }
    const error& failure() const { return *error_; }

    void fail(const toml::source_region& where, std::string message);

    // `where` completes the message: "in [[route]]", "at the top level".
    // Reports the unknown key that comes first in the file.
    void check_keys(const toml::table& t, std::string_view where, std::span<const std::string_view> allowed);
    // Reports a missing key at the table's header.
    bool require(const toml::table& t, std::string_view where, std::string_view key);

    // The getters below return true when the key is present and valid. An
    // absent key leaves `out` untouched (the default applies); a present but
    // invalid one records an error at its value.
    const toml::table* get_table(const toml::table& t, std::string_view key);
    // A table's value, named `key` in a type error.
    const toml::table* as_table(std::string_view key, const toml::node& value);
    // [[key]] arrays; every element is a table.
    const toml::array* get_tables(const toml::table& t, std::string_view key);

    bool get(const toml::table& t, std::string_view key, bool& out);
    bool get(const toml::table& t, std::string_view key, std::string& out);
    bool get_nonempty(const toml::table& t, std::string_view key, std::string& out);
    bool get(const toml::table& t, std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max);

    template <std::integral I>
    bool get(const toml::table& t, std::string_view key, I& out, I min,
             I max = std::numeric_limits<I>::max()) {
        constexpr auto widest = std::numeric_limits<std::int64_t>::max();
        std::int64_t v = 0;
        auto hi = std::cmp_greater(max, widest) ? widest : static_cast<std::int64_t>(max);
        if (!get(t, key, v, static_cast<std::int64_t>(min), hi)) return false;
        out = static_cast<I>(v);
        return true;
    }

    // Durations are strings: "250ms", "10s", "5m" or "1h" (one non-negative
    // integer, one unit).
    bool get(const toml::table& t, std::string_view key, std::chrono::milliseconds& out,
             std::chrono::milliseconds min);
    // Durations that must be whole seconds.
    bool get(const toml::table& t, std::string_view key, std::chrono::seconds& out, std::chrono::seconds min);

    // One of `names`; the enum's values must be 0, 1, ... in the order of `names`.
    template <class E, std::size_t N>
        requires std::is_enum_v<E>
    bool get(const toml::table& t, std::string_view key, E& out, const std::array<std::string_view, N>& names) {
        auto index = get_choice(t, key, names);
        if (index) out = static_cast<E>(*index);
        return index.has_value();
    }

    // Strict RFC 4648 base64, decoded: standard alphabet, padding required, no
    // whitespace, unused trailing bits zero.
    bool get_base64(const toml::table& t, std::string_view key, std::string& out);

private:
    std::optional<std::size_t> get_choice(const toml::table& t, std::string_view key,
                                          std::span<const std::string_view> names);
    void type_error(std::string_view key, const toml::node& value, std::string_view expected);

    std::string file_;
    std::optional<error> error_;
};

}  // namespace switchyard::gateway::config::detail
