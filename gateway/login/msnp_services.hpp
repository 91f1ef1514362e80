// What the MSNP state machines ask of the gateway (msnp::services): account
// checks for MD5 login, Passport tickets, switchboard cookies and ids.
// Shared by every connection of the process; safe to call from any thread.
#pragma once

#include "gateway/login/login_guard.hpp"
#include "gateway/login/tokens.hpp"
#include "gateway/router/hub.hpp"

#include "protocols/msnp/session.hpp"

namespace switchyard::gateway {

// `bytes` random bytes from the system's generator, as lowercase hex: room
// and endpoint ids.
std::string random_hex(std::size_t bytes);

class msnp_services final : public msnp::services {
public:
    // MD5 logins are account frames to the user objects through `objects`;
    // `guard` throttles wrong guesses (shared with the password logins).
    msnp_services(token_service& tokens, hub& objects, login_guard& guard, std::string sb_endpoint);

    std::string md5_salt(std::string_view handle) override;
    // Counted under no address; connections use the overload with theirs
    // (msnp_client_services).
    bool verify_md5(std::string_view handle, std::string_view response_hex) override {
        return verify_md5(handle, response_hex, {});
    }
    // A throttled attempt (login_guard) is refused without being checked,
    // so the right response fails too until the wait is over.
    bool verify_md5(std::string_view handle, std::string_view response_hex, std::string_view address);
    std::optional<msnp::ticket_owner> verify_ticket(std::string_view ticket) override;
    std::string issue_sb_cookie(const msnp::sb_grant& grant) override;
    std::optional<msnp::sb_grant> redeem_sb_cookie(std::string_view cookie, std::string_view handle) override;
    std::string new_room_id() override;
    std::string new_endpoint_id() override;
    std::string sb_endpoint() override { return sb_endpoint_; }
    std::uint64_t now_ms() override;

private:
    token_service& tokens_;
    hub& objects_;
    login_guard& guard_;
    std::string sb_endpoint_;
};

// The services as one MSNP connection sees them: its MD5 guesses are
// counted against its client's address.
class msnp_client_services final : public msnp::services {
public:
    msnp_client_services(msnp_services& shared, std::string address)
        : shared_(shared), address_(std::move(address)) {}

    std::string md5_salt(std::string_view handle) override { return shared_.md5_salt(handle); }
    bool verify_md5(std::string_view handle, std::string_view response_hex) override {
        return shared_.verify_md5(handle, response_hex, address_);
    }
    std::optional<msnp::ticket_owner> verify_ticket(std::string_view ticket) override {
        return shared_.verify_ticket(ticket);
    }
    std::string issue_sb_cookie(const msnp::sb_grant& grant) override { return shared_.issue_sb_cookie(grant); }
    std::optional<msnp::sb_grant> redeem_sb_cookie(std::string_view cookie, std::string_view handle) override {
        return shared_.redeem_sb_cookie(cookie, handle);
    }
    std::string new_room_id() override { return shared_.new_room_id(); }
    std::string new_endpoint_id() override { return shared_.new_endpoint_id(); }
    std::string sb_endpoint() override { return shared_.sb_endpoint(); }
    std::uint64_t now_ms() override { return shared_.now_ms(); }

private:
    msnp_services& shared_;
    std::string address_;
};

}  // namespace switchyard::gateway
