#include "gateway/router/router.hpp"

#include <boost/json.hpp>

#include <cinttypes>
#include <cstdio>

namespace switchyard::gateway {

tl::expected<std::shared_ptr<const config::route_table>, config::error> router::reload() {
    const std::lock_guard lock(reload_mutex_);
    auto loaded = config::load_routes(file_, backends_);
    if (!loaded) {
        return tl::unexpected(loaded.error());
    }
    loaded->version = next_version_++;
    auto table = std::make_shared<const config::route_table>(std::move(*loaded));
    table_.store(table);
    return table;
}

std::string describe_routes(const config::route_table& t) {
    char digest[17];
    std::snprintf(digest, sizeof digest, "%016" PRIx64, t.digest);
    boost::json::array rules;
    for (const config::route& r : t.rules) {
        boost::json::object o;
        o["match"] = to_string(r.kind);
        o["pattern"] = r.pattern;
        o["backend"] = r.backend;
        o["location"] = r.location;
        o["line"] = r.line;
        rules.push_back(std::move(o));
    }
    boost::json::object root;
    root["version"] = t.version;
    root["file"] = t.file.string();
    root["digest"] = digest;
    root["rules"] = std::move(rules);
    root["default"] = boost::json::object{{"backend", t.default_backend}, {"location", t.default_location}};
    return boost::json::serialize(root) + "\n";
}

}  // namespace switchyard::gateway
