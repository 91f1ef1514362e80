// Where a user's account lives: the backend the routes give `user:<handle>`,
// and the settings an embedded backend runs with, the accounts' included.
// Shared by the gateway and the operator commands (`switchyard user ...`),
// which serve a backend themselves while no gateway runs on it.
#pragma once

#include "gateway/backends/embedded/backend.hpp"
#include "gateway/backends/embedded/sqlite.hpp"
#include "gateway/config/config.hpp"
#include "gateway/config/routes.hpp"

#include <tl/expected.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace switchyard::gateway {

// The options of embedded backend `b` under settings `s`: its file in the
// data directory, its limits, and the accounts' scrypt cost, password
// policy and login threads. `salt_secret` keys the stable MD5 salts of
// handles without an MD5 record (a signing key's secret).
embedded::options embedded_options(const config::settings& s, const config::backend& b, std::string salt_secret);

using database_ptr = std::unique_ptr<embedded::database>;

// Opens the database of embedded backend `backend` for reading, creating
// the data directory, the file and the schema when they are missing.
tl::expected<database_ptr, std::string> open_backend_database(const config::settings& s, std::string_view backend);

// The backend holding `user:<handle>`. A handle that does not normalise is
// routed as typed: the account checks then reject it with the reason.
std::string user_backend(const config::route_table& routes, std::string_view handle);

}  // namespace switchyard::gateway
