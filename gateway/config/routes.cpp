#include "gateway/config/routes.hpp"

#include "gateway/config/toml_util.hpp"

#include <algorithm>
#include <array>

namespace switchyard::gateway::config {

namespace {

using namespace std::string_view_literals;

constexpr std::array top_level_keys{"route"sv, "default"sv};
constexpr std::array route_keys{"exact"sv, "prefix"sv, "glob"sv, "backend"sv, "location"sv};
constexpr std::array default_keys{"backend"sv, "location"sv};
constexpr std::array<std::string_view, 3> match_kind_names{"exact", "prefix", "glob"};
constexpr std::array object_prefixes{"user:"sv, "room:"sv};
constexpr std::string_view one_pattern = "expected exactly one of: exact, prefix, glob";

std::uint64_t fnv1a_64(std::string_view bytes) {
    std::uint64_t hash = 14695981039346656037ull;
    for (unsigned char c : bytes) {
        hash ^= c;
        hash *= 1099511628211ull;
    }
    return hash;
}

// A glob can match some id starting with `prefix` exactly when one of its
// leading pieces matches the prefix itself: whatever follows can then match
// the rest of such an id, and a '*' straddling the prefix's end is covered
// by the piece that ends with it.
bool glob_can_start_with(std::string_view pattern, std::string_view prefix) {
    for (std::size_t i = 0; i <= pattern.size(); ++i) {
        if (glob_match(pattern.substr(0, i), prefix)) return true;
    }
    return false;
}

bool can_match_an_object(match_kind kind, std::string_view pattern) {
    return std::ranges::any_of(object_prefixes, [&](std::string_view prefix) {
        return kind == match_kind::glob ? glob_can_start_with(pattern, prefix) : pattern.starts_with(prefix);
    });
}

void read_backend(detail::reader& r, const toml::table& t, const std::vector<std::string>& known_backends,
                  std::string& out) {
    std::string name;
    if (!r.get_nonempty(t, "backend", name)) return;
    if (std::ranges::find(known_backends, name) == known_backends.end()) {
        std::vector<std::string_view> names(known_backends.begin(), known_backends.end());
        r.fail(t.get("backend")->source(),
               "unknown backend \"" + name + "\"; expected one of: " + detail::join(names));
        return;
    }
    out = std::move(name);
}

void read_route(detail::reader& r, const toml::table& t, const std::vector<std::string>& known_backends,
                route_table& table) {
    r.check_keys(t, "in [[route]]", route_keys);
    route rule;
    rule.line = t.source().begin.line;

    // The pattern keys in file order, so a second one is reported where it is.
    std::vector<const toml::key*> patterns;
    for (auto&& [key, value] : t) {
        if (std::ranges::find(match_kind_names, key.str()) != match_kind_names.end()) patterns.push_back(&key);
    }
    std::ranges::sort(patterns, {}, [](const toml::key* k) { return k->source().begin; });
    if (patterns.empty()) {
        r.fail(t.source(), "[[route]] has no pattern; " + std::string(one_pattern));
        return;
    }
    if (patterns.size() > 1) {
        r.fail(patterns[1]->source(), "[[route]] has both " + std::string(patterns[0]->str()) + " and " +
                                          std::string(patterns[1]->str()) + "; " + std::string(one_pattern));
        return;
    }

    const auto kind_name = patterns[0]->str();
    rule.kind = static_cast<match_kind>(std::ranges::find(match_kind_names, kind_name) - match_kind_names.begin());
    if (r.get_nonempty(t, kind_name, rule.pattern) && !can_match_an_object(rule.kind, rule.pattern)) {
        r.fail(t.get(kind_name)->source(),
               rule.kind == match_kind::glob
                   ? "glob \"" + rule.pattern + "\" can never match: object ids start with user: or room:"
                   : "expected " + std::string(kind_name) + " to start with user: or room:, found \"" + rule.pattern +
                         "\"");
    }
    if (r.require(t, "in [[route]]", "backend")) read_backend(r, t, known_backends, rule.backend);
    r.get(t, "location", rule.location);
    table.rules.push_back(std::move(rule));
}

}  // namespace

std::string error::to_string() const {
    std::string out = file;
    if (line != 0) {
        if (!out.empty()) out += ":";
        out += std::to_string(line) + ":" + std::to_string(column);
    }
    if (!out.empty()) out += ": ";
    return out + message;
}

std::string_view to_string(match_kind k) {
    return match_kind_names[static_cast<std::size_t>(k)];
}

bool route::matches(std::string_view object_id) const {
    switch (kind) {
    case match_kind::exact: return object_id == pattern;
    case match_kind::prefix: return object_id.starts_with(pattern);
    case match_kind::glob: return glob_match(pattern, object_id);
    }
    return false;
}

route_match route_table::lookup(std::string_view object_id) const {
    for (const auto& rule : rules) {
        if (rule.matches(object_id)) return {&rule, rule.backend, rule.location};
    }
    return {nullptr, default_backend, default_location};
}

bool glob_match(std::string_view pattern, std::string_view text) {
    // Classic two-pointer matching: on a mismatch, retry from the last '*'
    // with it swallowing one more byte. Only the last star matters, so the
    // worst case is O(pattern x text) with no recursion.
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star = std::string_view::npos;
    std::size_t star_text = 0;
    while (t < text.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || (pattern[p] != '*' && pattern[p] == text[t]))) {
            ++p;
            ++t;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_text = t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++star_text;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') ++p;
    return p == pattern.size();
}

tl::expected<route_table, error> parse_routes(std::string_view text, const std::filesystem::path& file,
                                              const std::vector<std::string>& known_backends) {
    auto doc = detail::parse_toml(text, file);
    if (!doc) return tl::unexpected(doc.error());

    route_table table;
    table.file = file;
    table.digest = fnv1a_64(text);

    detail::reader r(file.string());
    r.check_keys(*doc, "at the top level", top_level_keys);
    if (const auto* rules = r.get_tables(*doc, "route")) {
        for (const auto& rule : *rules) read_route(r, *rule.as_table(), known_backends, table);
    }
    if (r.require(*doc, "at the top level", "default")) {
        if (const auto* fallback = r.get_table(*doc, "default")) {
            r.check_keys(*fallback, "in [default]", default_keys);
            if (r.require(*fallback, "in [default]", "backend")) {
                read_backend(r, *fallback, known_backends, table.default_backend);
            }
            r.get(*fallback, "location", table.default_location);
        }
    }
    if (!r.ok()) return tl::unexpected(r.failure());
    return table;
}

tl::expected<route_table, error> load_routes(const std::filesystem::path& file,
                                             const std::vector<std::string>& known_backends) {
    auto text = detail::read_file(file);
    if (!text) return tl::unexpected(text.error());
    return parse_routes(*text, file, known_backends);
}

}  // namespace switchyard::gateway::config
