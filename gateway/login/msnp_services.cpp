#include "gateway/login/msnp_services.hpp"

#include "protocols/text/text.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <stdexcept>

namespace switchyard::gateway {

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
        throw std::runtime_error("the system random number generator failed");
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : raw) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(digits[u >> 4]);
        out.push_back(digits[u & 15]);
    }
    return out;
}

msnp_services::msnp_services(token_service& tokens, hub& objects, login_guard& guard, std::string sb_endpoint)
    : tokens_(tokens), objects_(objects), guard_(guard), sb_endpoint_(std::move(sb_endpoint)) {}

// MD5 logins ask the user object on the connection's own thread: MSNP's
// services are synchronous, and the object answers from one indexed read,
// with no KDF (the record is compared, not derived). A backend that does
// not answer in time fails the login.
namespace {

constexpr auto account_wait = std::chrono::seconds(5);

}  // namespace

std::string msnp_services::md5_salt(std::string_view handle) {
    const auto normalised = text::normalize_handle(handle);
    if (normalised) {
        const auto r = objects_.call(frame::frame{0, "user:" + *normalised, {}, frame::account_salt{}}, account_wait);
        if (const auto* salt = r ? std::get_if<frame::account_salt>(&r->content) : nullptr) {
            return salt->salt;
        }
    }
    return random_hex(8).substr(0, 15);  // no such handle, or the backend is down: this login fails anyway
}

bool msnp_services::verify_md5(std::string_view handle, std::string_view response_hex, std::string_view address) {
    const auto normalised = text::normalize_handle(handle);
    if (!normalised) {
        return false;
    }
    // The check itself costs one indexed read, so nothing queues; what
    // stops a guesser is the wait after a few failures (login_guard).
    if (!guard_.admit(address, *normalised, login_guard::clock::now()).allowed) {
        return false;
    }
    const auto r = objects_.call(frame::frame{0, "user:" + *normalised, {},
                                              frame::account_check{frame::credential::md5, std::string(response_hex)}},
                                 account_wait);
    if (r && std::holds_alternative<frame::ack>(r->content)) {
        guard_.succeeded(address, *normalised, login_guard::clock::now());
        return true;
    }
    const auto* e = r ? std::get_if<frame::error>(&r->content) : nullptr;
    if (e && (e->code == frame::error_code::unauthenticated || e->code == frame::error_code::unknown_object)) {
        guard_.failed(address, *normalised, login_guard::clock::now());
    }
    return false;
}

std::optional<msnp::ticket_owner> msnp_services::verify_ticket(std::string_view ticket) {
    auto claims = tokens_.verify_ticket_claims(parse_ticket_param(ticket), now_ms());
    if (!claims) {
        return std::nullopt;
    }
    return msnp::ticket_owner{std::move(claims->handle), claims->issued_ms};
}

std::string msnp_services::issue_sb_cookie(const msnp::sb_grant& grant) {
    return tokens_.issue_cookie({grant.handle, grant.room, grant.dialect, grant.display_name, grant.capabilities},
                                now_ms());
}

std::optional<msnp::sb_grant> msnp_services::redeem_sb_cookie(std::string_view cookie, std::string_view handle) {
    auto claims = tokens_.redeem_cookie(cookie, handle, now_ms());
    if (!claims) {
        return std::nullopt;
    }
    return msnp::sb_grant{std::move(claims->handle), std::move(claims->room), claims->dialect,
                          std::move(claims->display_name), claims->capabilities};
}

// 128 random bits: a room id (and so the switchboard session id) cannot be
// guessed, and rooms from every gateway share one namespace.
std::string msnp_services::new_room_id() { return random_hex(16); }

std::string msnp_services::new_endpoint_id() { return random_hex(16); }

std::uint64_t msnp_services::now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace switchyard::gateway
