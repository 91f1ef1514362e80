// Operator commands of the switchyard executable: accounts and rooms of the
// embedded backends (`switchyard user ...`, `switchyard room ...`). The user
// commands are account frames to the user objects (gateway/backends/
// README.md, "Accounts"): served by the command's own instance of the
// backend while no gateway runs on it, or else by the running gateway,
// through its control socket (gateway/ops/control.hpp). The room commands
// read the backends' SQLite files, creating the directory and the schema
// when missing.
//
// Each command prints its result on stdout and any problem on stderr, and
// returns the process's exit status.
#pragma once

#include "gateway/config/config.hpp"
#include "gateway/config/routes.hpp"

#include <cstddef>
#include <optional>
#include <string>

namespace switchyard::gateway::operator_commands {

// A user's account lives in the backend the routes give `user:<handle>`.
// The password is read from stdin: asked twice without echo on a terminal,
// one line otherwise (for scripts).
int user_add(const config::settings& s, const config::route_table& routes, const std::string& handle,
             bool legacy_md5, const std::string& display_name);
// `legacy_md5` unset keeps the user's MSNP2-7 MD5 login as it is.
int user_passwd(const config::settings& s, const config::route_table& routes, const std::string& handle,
                std::optional<bool> legacy_md5);
int user_del(const config::settings& s, const config::route_table& routes, const std::string& handle);
// Every embedded backend's users.
int user_list(const config::settings& s);

// Every embedded backend's rooms.
int room_list(const config::settings& s);
// The newest `limit` messages of a room ("room:<id>" or "<id>"), oldest first.
int room_history(const config::settings& s, const config::route_table& routes, const std::string& room,
                 std::size_t limit);

}  // namespace switchyard::gateway::operator_commands
