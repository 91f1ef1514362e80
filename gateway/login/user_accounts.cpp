#include "gateway/login/user_accounts.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"

#include "protocols/text/text.hpp"

#include <filesystem>

namespace switchyard::gateway {

tl::expected<database_ptr, std::string> open_backend_database(const config::settings& s, std::string_view backend) {
    const auto file = embedded::database_file(s.data_dir, backend);
    std::error_code ec;
    std::filesystem::create_directories(s.data_dir, ec);
    if (ec) return tl::unexpected(s.data_dir.string() + ": cannot create data directory: " + ec.message());
    try {
        auto db = std::make_unique<embedded::database>(file, embedded::durability::full);
        embedded::create_schema(*db);
        if (db->failed()) return tl::unexpected(file.string() + ": " + db->error());
        return db;
    } catch (const std::exception& e) {
        return tl::unexpected(std::string(e.what()));
    }
}

embedded::accounts accounts_of(embedded::database& db, const config::settings& s) {
    const auto& a = s.accounts;
    return embedded::accounts(db, {a.scrypt_n, a.scrypt_r, a.scrypt_p},
                              {a.min_password_length, a.max_password_length});
}

std::string user_backend(const config::route_table& routes, std::string_view handle) {
    const auto normalised = text::normalize_handle(handle);
    return std::string(routes.lookup("user:" + normalised.value_or(std::string(handle))).backend);
}

link::client* remote_for(const remote_accounts& remote, const config::route_table& routes, std::string_view handle) {
    if (remote.empty()) return nullptr;
    const auto it = remote.find(user_backend(routes, handle));
    return it == remote.end() ? nullptr : it->second.get();
}

}  // namespace switchyard::gateway
