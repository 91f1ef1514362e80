// The Passport login services on the HTTPS listener, for MSNP8-12 clients
// (msnp-reference sections 3.3, 3.4, 3.6):
//
//   GET  /rdr/pprdr.asp  the nexus: where login2.srf is (PassportURLs)
//   GET  /login2.srf     Passport 1.4: credentials in the Authorization header,
//                        a ticket in Authentication-Info on success
//   POST /RST.srf        RequestSecurityToken (SOAP, MSN 7.5): credentials in
//                        the envelope, compact tickets in the response
//
// The tickets are token_service tickets (gateway/login/tokens.hpp), sent back by
// the client in `USR t TWN S t=<ticket>&p=`. Internal to gateway/.
#pragma once

#include "gateway/config/config.hpp"
#include "gateway/net/http.hpp"
#include "gateway/router/hub.hpp"

#include <atomic>
#include <functional>
#include <string>

namespace switchyard::gateway {

struct session_context;

enum class login_result {
    ok,
    rejected,     // unknown user or wrong password: the client may not tell which
    busy,         // too many logins waiting: try again later
    unavailable,  // the account database failed; logged
};

// Checks passwords with account_check frames to the user objects
// (gateway/backends/README.md, "Accounts"): the backend holding the account
// runs scrypt on its own password threads, at most [accounts]
// max_concurrent_logins at once. scrypt at the default cost takes a
// noticeable fraction of a second and 128 MiB per hash, so at most 32 checks
// per such thread may wait here; further logins are told to come back later
// rather than queued without end.
class password_checker {
public:
    using completion = std::function<void(login_result)>;

    password_checker(const config::settings& s, hub& objects);
    password_checker(const password_checker&) = delete;
    password_checker& operator=(const password_checker&) = delete;

    // Checks `password` for `handle`, then runs `done` on a backend's thread;
    // when too many checks wait already, runs it with `busy` at once on the
    // caller's.
    void check(std::string handle, std::string password, completion done);

private:
    hub& objects_;
    const std::size_t max_waiting_;
    std::atomic<std::size_t> waiting_{0};
};

// Serves one request of the HTTPS listener.
void handle_passport(session_context& ctx, http_request&& req, http_reply reply);

}  // namespace switchyard::gateway
