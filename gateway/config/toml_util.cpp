#include "gateway/config/toml_util.hpp"

#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>

namespace switchyard::gateway::config::detail {

namespace {

struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

error io_error(const std::filesystem::path& file, std::string_view what) {
    const int code = errno;
    return error{file.string(), 0, 0, std::string(what) + ": " + std::generic_category().message(code)};
}

std::string_view describe(toml::node_type type) {
    switch (type) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
    }
    return "nothing";
}

std::string format_duration(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    std::size_t digits = 0;
    std::int64_t count = 0;
    // Twelve digits of hours still fit in 64-bit milliseconds.
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
        if (digits == 12) return std::nullopt;
        count = count * 10 + (text[digits] - '0');
        ++digits;
    }
    if (digits == 0) return std::nullopt;
    auto unit = text.substr(digits);
    using namespace std::chrono;
    if (unit == "ms") return milliseconds(count);
    if (unit == "s") return seconds(count);
    if (unit == "m") return minutes(count);
    if (unit == "h") return hours(count);
    return std::nullopt;
}

std::optional<std::string> decode_base64(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        std::uint32_t bits = 0;
        int padding = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            if (c == '=' && last && j >= 2) {
                ++padding;
                bits <<= 6;
                continue;
            }
            const int value = sextet(c);
            if (value < 0 || padding > 0) return std::nullopt;
            bits = bits << 6 | static_cast<std::uint32_t>(value);
        }
        // Non-zero bits under the padding mean the text is not the canonical
        // encoding of anything; a typo is the likelier explanation.
        if ((padding == 1 && (bits & 0xff) != 0) || (padding == 2 && (bits & 0xffff) != 0)) return std::nullopt;
        out += static_cast<char>(bits >> 16 & 0xff);
        if (padding < 2) out += static_cast<char>(bits >> 8 & 0xff);
        if (padding < 1) out += static_cast<char>(bits & 0xff);
    }
    return out;
}

}  // namespace

tl::expected<std::string, error> read_file(const std::filesystem::path& file) {
    std::unique_ptr<std::FILE, file_closer> f(std::fopen(file.c_str(), "rb"));
    if (!f) return tl::unexpected(io_error(file, "cannot open file"));
    std::string text;
    char buffer[16384];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0) text.append(buffer, n);
    if (std::ferror(f.get())) return tl::unexpected(io_error(file, "cannot read file"));
    return text;
}

tl::expected<toml::table, error> parse_toml(std::string_view text, const std::filesystem::path& file) {
    // The only place toml++ can throw; nothing past this point does.
    try {
        return toml::parse(text, file.string());
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        return tl::unexpected(error{file.string(), at.line, at.column, std::string(e.description())});
    }
}

std::string join(std::span<const std::string_view> names) {
    std::string out;
    for (auto name : names) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out;
}

void reader::fail(const toml::source_region& where, std::string message) {
    if (!error_) error_ = error{file_, where.begin.line, where.begin.column, std::move(message)};
}

void reader::type_error(std::string_view key, const toml::node& value, std::string_view expected) {
    fail(value.source(), "expected " + std::string(expected) + " for " + std::string(key) + ", found " +
                             std::string(describe(value.type())));
}

void reader::check_keys(const toml::table& t, std::string_view where, std::span<const std::string_view> allowed) {
    const toml::key* first = nullptr;
    for (auto&& [key, value] : t) {
        bool known = false;
        for (auto name : allowed) known = known || key.str() == name;
        if (!known && (!first || key.source().begin < first->source().begin)) first = &key;
    }
    if (first) {
        fail(first->source(), "unknown key \"" + std::string(first->str()) + "\" " + std::string(where) +
                                  "; expected one of: " + join(allowed));
    }
}

bool reader::require(const toml::table& t, std::string_view where, std::string_view key) {
    if (t.contains(key)) return true;
    fail(t.source(), "missing required key \"" + std::string(key) + "\" " + std::string(where));
    return false;
}

const toml::table* reader::as_table(std::string_view key, const toml::node& value) {
    if (const auto* table = value.as_table()) return table;
    type_error(key, value, "a table");
    return nullptr;
}

const toml::table* reader::get_table(const toml::table& t, std::string_view key) {
    const auto* node = t.get(key);
    return node ? as_table(key, *node) : nullptr;
}

const toml::array* reader::get_tables(const toml::table& t, std::string_view key) {
    const auto* node = t.get(key);
    if (!node) return nullptr;
    const auto* array = node->as_array();
    if (!array) {
        type_error(key, *node, "an array of tables ([[" + std::string(key) + "]])");
        return nullptr;
    }
    for (const auto& element : *array) {
        if (!element.is_table()) {
            type_error(key, element, "a table");
            return nullptr;
        }
    }
    return array;
}

bool reader::get(const toml::table& t, std::string_view key, bool& out) {
    const auto* node = t.get(key);
    if (!node) return false;
    const auto* value = node->as_boolean();
    if (!value) {
        type_error(key, *node, "a boolean (true or false)");
        return false;
    }
    out = value->get();
    return true;
}

bool reader::get(const toml::table& t, std::string_view key, std::string& out) {
    const auto* node = t.get(key);
    if (!node) return false;
    const auto* value = node->as_string();
    if (!value) {
        type_error(key, *node, "a string");
        return false;
    }
    out = value->get();
    return true;
}

bool reader::get_nonempty(const toml::table& t, std::string_view key, std::string& out) {
    std::string value;
    if (!get(t, key, value)) return false;
    if (value.empty()) {
        fail(t.get(key)->source(), "expected a non-empty string for " + std::string(key));
        return false;
    }
    out = std::move(value);
    return true;
}

bool reader::get(const toml::table& t, std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max) {
    const auto* node = t.get(key);
    if (!node) return false;
    const auto* value = node->as_integer();
    if (!value) {
        type_error(key, *node, "an integer");
        return false;
    }
    const std::int64_t v = value->get();
    if (v < min || v > max) {
        std::string range = max == std::numeric_limits<std::int64_t>::max()
                                ? (min == 1 ? "a positive integer" : "an integer of at least " + std::to_string(min))
                                : "an integer from " + std::to_string(min) + " to " + std::to_string(max);
        fail(node->source(), "expected " + range + " for " + std::string(key) + ", found " + std::to_string(v));
        return false;
    }
    out = v;
    return true;
}

bool reader::get(const toml::table& t, std::string_view key, std::chrono::milliseconds& out,
                 std::chrono::milliseconds min) {
    const auto* node = t.get(key);
    if (!node) return false;
    const auto* value = node->as_string();
    if (!value) {
        type_error(key, *node, "a duration string such as \"10s\"");
        return false;
    }
    const std::string& text = value->get();
    auto parsed = parse_duration(text);
    if (!parsed) {
        fail(node->source(), "expected a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\" for " +
                                 std::string(key) + ", found \"" + text + "\"");
        return false;
    }
    if (*parsed < min) {
        fail(node->source(), "expected a duration of at least " + format_duration(min) + " for " +
                                 std::string(key) + ", found \"" + text + "\"");
        return false;
    }
    out = *parsed;
    return true;
}

bool reader::get(const toml::table& t, std::string_view key, std::chrono::seconds& out, std::chrono::seconds min) {
    std::chrono::milliseconds value{};
    if (!get(t, key, value, std::chrono::milliseconds(min))) return false;
    if (value.count() % 1000 != 0) {
        fail(t.get(key)->source(),
             "expected a whole number of seconds for " + std::string(key) + ", found " + format_duration(value));
        return false;
    }
    out = std::chrono::duration_cast<std::chrono::seconds>(value);
    return true;
}

std::optional<std::size_t> reader::get_choice(const toml::table& t, std::string_view key,
                                              std::span<const std::string_view> names) {
    std::string value;
    if (!get(t, key, value)) return std::nullopt;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == value) return i;
    }
    fail(t.get(key)->source(),
         "unknown " + std::string(key) + " \"" + value + "\"; expected one of: " + join(names));
    return std::nullopt;
}

bool reader::get_base64(const toml::table& t, std::string_view key, std::string& out) {
    std::string text;
    if (!get(t, key, text)) return false;
    auto decoded = decode_base64(text);
    if (!decoded) {
        fail(t.get(key)->source(),
             "expected standard base64 (A-Z, a-z, 0-9, + and /, padded with =) for " + std::string(key));
        return false;
    }
    out = std::move(*decoded);
    return true;
}

}  // namespace switchyard::gateway::config::detail
