#include "gateway/login/user_accounts.hpp"

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/object.hpp"

#include "protocols/text/text.hpp"

#include <filesystem>

namespace switchyard::gateway {

namespace {

// Password checks that may wait for a login thread, per thread.
constexpr std::size_t logins_waiting_per_thread = 32;

}  // namespace

embedded::options embedded_options(const config::settings& s, const config::backend& b, std::string salt_secret) {
    embedded::options opt;
    opt.file = embedded::database_file(s.data_dir, b.name);
    opt.hibernate_after = b.hibernate_after;
    opt.sync = b.sync == config::durability::full ? embedded::durability::full : embedded::durability::normal;
    opt.shards = b.shards;
    opt.max_list_entries = b.max_list_entries;
    opt.max_groups = b.max_groups;
    opt.max_room_members = b.max_room_members;
    opt.named_rooms_open = b.named_rooms_open;
    opt.rejoin_grace = b.rejoin_grace;
    const config::listener* link = s.find_listener("link");
    opt.end_switchboards_at_start = !(link != nullptr && link->enabled && link->backend == b.name);
    opt.name_bytes = s.lim.name_bytes;
    opt.message_bytes = s.lim.message_bytes;
    const auto& a = s.accounts;
    opt.kdf = {a.scrypt_n, a.scrypt_r, a.scrypt_p};
    opt.passwords = {a.min_password_length, a.max_password_length};
    opt.password_threads = static_cast<unsigned>(a.max_concurrent_logins);
    opt.password_queue = logins_waiting_per_thread * a.max_concurrent_logins;
    opt.salt_secret = std::move(salt_secret);
    return opt;
}

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

std::string user_backend(const config::route_table& routes, std::string_view handle) {
    const auto normalised = text::normalize_handle(handle);
    return std::string(routes.lookup("user:" + normalised.value_or(std::string(handle))).backend);
}

}  // namespace switchyard::gateway
