// What the MSNP state machines ask of the gateway (msnp::services): account
// checks for MD5 login, Passport tickets, switchboard cookies and ids.
// Shared by every connection of the process; safe to call from any thread.
#pragma once

#include "gateway/login/tokens.hpp"
#include "gateway/router/hub.hpp"

#include "protocols/msnp/session.hpp"

namespace switchyard::gateway {

// `bytes` random bytes from the system's generator, as lowercase hex: room
// and endpoint ids.
std::string random_hex(std::size_t bytes);

class msnp_services final : public msnp::services {
public:
    // MD5 logins are account frames to the user objects through `objects`.
    msnp_services(token_service& tokens, hub& objects, std::string sb_endpoint);

    std::string md5_salt(std::string_view handle) override;
    bool verify_md5(std::string_view handle, std::string_view response_hex) override;
    std::optional<std::string> verify_ticket(std::string_view ticket) override;
    std::string issue_sb_cookie(const msnp::sb_grant& grant) override;
    std::optional<msnp::sb_grant> redeem_sb_cookie(std::string_view cookie, std::string_view handle) override;
    std::string new_room_id() override;
    std::string new_endpoint_id() override;
    std::string sb_endpoint() override { return sb_endpoint_; }
    std::uint64_t now_ms() override;

private:
    token_service& tokens_;
    hub& objects_;
    std::string sb_endpoint_;
};

}  // namespace switchyard::gateway
