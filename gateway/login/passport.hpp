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
#include "gateway/login/user_accounts.hpp"
#include "gateway/net/http.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchyard::gateway {

class router;
struct session_context;

enum class login_result {
    ok,
    rejected,     // unknown user or wrong password: the client may not tell which
    busy,         // too many logins waiting: try again later
    unavailable,  // the account database failed; logged
};

// Checks passwords on threads of its own. scrypt at the default cost takes
// a noticeable fraction of a second and 128 MiB per hash: on an I/O thread it
// would stall every other connection of that thread, and unbounded it would
// exhaust memory. So at most [accounts] max_concurrent_logins checks run at
// once, at most 32 per thread wait, and further logins are told to come back
// later rather than queued without end.
class password_checker {
public:
    using completion = std::function<void(login_result)>;

    // `remote`: link backends, filled before the first check.
    password_checker(const config::settings& s, const router& routes, const remote_accounts& remote);
    // Stops the threads after the checks under way; checks still waiting are
    // dropped with their completions.
    ~password_checker();
    password_checker(const password_checker&) = delete;
    password_checker& operator=(const password_checker&) = delete;

    // Checks `password` for `handle` in the embedded backend the routes give
    // `user:<handle>`, then runs `done` on a checker thread; when too many
    // checks wait already, runs it with `busy` at once on the caller's. An
    // account behind a backend link is checked by the process at the other
    // end, and `done` runs on the link's thread.
    void check(std::string handle, std::string password, completion done);

private:
    struct job {
        std::string handle;
        std::string password;
        completion done;
    };

    void run();

    const config::settings& settings_;
    const router& routes_;
    const remote_accounts& remote_;
    const std::size_t max_waiting_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job> waiting_;
    std::vector<std::thread> threads_;  // started by the first check
    bool stopping_ = false;
};

// Serves one request of the HTTPS listener.
void handle_passport(session_context& ctx, http_request&& req, http_reply reply);

}  // namespace switchyard::gateway
