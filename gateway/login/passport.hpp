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
#include "gateway/login/login_guard.hpp"
#include "gateway/net/http.hpp"
#include "gateway/router/hub.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace switchyard::gateway {

struct session_context;

enum class login_result {
    ok,
    rejected,     // unknown user or wrong password: the client may not tell which
    busy,         // too many logins waiting: try again later
    throttled,    // recent failures from this address or for this handle: try again after retry_after
    unavailable,  // the account database failed; logged
};

// Checks passwords with account_check frames to the user objects
// (gateway/backends/README.md, "Accounts"): the backend holding the account
// runs scrypt on its own password threads, at most [accounts]
// max_concurrent_logins at once. scrypt at the default cost takes a
// noticeable fraction of a second and 128 MiB per hash, so this gateway
// sends at most that many checks at once and keeps up to 32 per thread
// waiting in priority order (login_queue); further logins are told to come
// back later rather than queued without end. Failures make later attempts
// of the same handle and address wait, and lower their priority
// (login_guard, gateway/login/login_guard.hpp).
class password_checker {
public:
    using completion = std::function<void(login_result, std::chrono::seconds retry_after)>;

    password_checker(const config::settings& s, hub& objects);
    password_checker(const password_checker&) = delete;
    password_checker& operator=(const password_checker&) = delete;

    // Checks `password` for `handle` from the client at `address`, then
    // runs `done` on a backend's thread; when the check cannot run (too many
    // waiting, or throttled), runs it at once on the caller's (or, for a
    // queued check pushed out by a better one, on that one's).
    void check(std::string handle, std::string password, std::string address, completion done);

    // Shared with the MD5 login (msnp_services), so guesses there count here too.
    login_guard& guard() { return guard_; }

    // Runs `reply` after `delay` (at most 1 s): for refusals, so a client
    // retrying at once on the same connection is slowed (delay_line).
    void answer_later(std::chrono::milliseconds delay, std::function<void()> reply) {
        late_.after(std::min(delay, std::chrono::milliseconds(1000)), std::move(reply));
    }

private:
    hub& objects_;
    login_guard guard_;
    login_queue queue_;
    delay_line late_;
};

// Serves one request of the HTTPS listener from the client at `address`.
void handle_passport(session_context& ctx, const std::string& address, http_request&& req, http_reply reply);

}  // namespace switchyard::gateway
