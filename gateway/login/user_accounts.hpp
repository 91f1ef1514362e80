// Where a user's account lives: the embedded backend the routes give
// `user:<handle>`, reached through its SQLite file. Shared by the operator
// commands (`switchyard user ...`) and the gateway's HTTPS login services, so
// both find an account in the same place.
#pragma once

#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/link/client.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/config/config.hpp"
#include "gateway/config/routes.hpp"

#include <tl/expected.hpp>

#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace switchyard::gateway {

using database_ptr = std::unique_ptr<embedded::database>;

// Opens the database of embedded backend `backend`, creating the data
// directory, the file and the schema when they are missing.
tl::expected<database_ptr, std::string> open_backend_database(const config::settings& s, std::string_view backend);

// The accounts of `db` with the settings' password policy and scrypt cost.
embedded::accounts accounts_of(embedded::database& db, const config::settings& s);

// The backend holding `user:<handle>`. A handle that does not normalise is
// routed as typed: the account checks then reject it with the reason.
std::string user_backend(const config::route_table& routes, std::string_view handle);

// Backends of kind "link" by name: their accounts are checked by the
// process at the other end of the link, not in a local database.
using remote_accounts = std::map<std::string, std::shared_ptr<link::client>, std::less<>>;

// The link that holds `handle`'s account, or nullptr when it is local.
link::client* remote_for(const remote_accounts& remote, const config::route_table& routes, std::string_view handle);

}  // namespace switchyard::gateway
