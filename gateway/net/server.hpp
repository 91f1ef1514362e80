// The gateway process: listeners on one io_context per core, the admin
// endpoint, signal handling (SIGHUP reloads routes, SIGTERM/SIGINT drain and
// stop). Asio stays behind this header.
#pragma once

#include "gateway/config/config.hpp"

#include <string>
#include <vector>

namespace switchyard::gateway {

// Runs until SIGTERM or SIGINT; returns the process exit code (0 after a
// clean shutdown, 1 when start-up fails; the reason is logged).
int run(const config::settings& s);

// What would stop run() loading the TLS certificates and keys of the
// enabled listeners (missing, unreadable, malformed, a key that is not the
// certificate's), one line each; empty when they load.
std::vector<std::string> check_tls(const config::settings& s);

}  // namespace switchyard::gateway
