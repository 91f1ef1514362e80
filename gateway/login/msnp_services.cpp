#include "gateway/login/msnp_services.hpp"

#include "gateway/login/user_accounts.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <future>
#include <map>
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

msnp_services::msnp_services(const config::settings& settings, const router& routes, token_service& tokens,
                             std::string sb_endpoint, std::string dummy_salt_secret, const remote_accounts& remote)
    : settings_(settings),
      routes_(routes),
      tokens_(tokens),
      sb_endpoint_(std::move(sb_endpoint)),
      dummy_salt_secret_(std::move(dummy_salt_secret)),
      remote_(remote) {}

// MD5 logins read the account on the connection's own thread: one indexed
// SQLite read, no KDF (the record is compared, not derived). Each thread
// keeps its own connection per database file.
namespace {

embedded::database* database_for(const config::settings& s, const std::string& backend) {
    thread_local std::map<std::string, database_ptr> open;
    auto it = open.find(backend);
    if (it == open.end()) {
        auto db = open_backend_database(s, backend);
        if (!db) {
            return nullptr;
        }
        it = open.emplace(backend, std::move(*db)).first;
    }
    return it->second.get();
}

// An MD5 check of an account behind a backend link waits for the backend's
// answer on the connection's thread: MSNP's services are synchronous, and
// the check is one indexed read there. A backend that does not answer in
// time fails the login.
constexpr auto remote_wait = std::chrono::seconds(5);

std::optional<std::pair<frame::link::account_status, std::string>> ask(link::client& remote,
                                                                       frame::link::account_op op,
                                                                       std::string_view handle,
                                                                       std::string_view data) {
    auto answer = std::make_shared<std::promise<std::pair<frame::link::account_status, std::string>>>();
    auto future = answer->get_future();
    remote.account(op, std::string(handle), std::string(data),
                   [answer](frame::link::account_status status, std::string got) {
                       answer->set_value({status, std::move(got)});
                   });
    if (future.wait_for(remote_wait) != std::future_status::ready) {
        return std::nullopt;
    }
    return future.get();
}

}  // namespace

std::string msnp_services::md5_salt(std::string_view handle) {
    const auto table = routes_.table();
    if (link::client* remote = table ? remote_for(remote_, *table, handle) : nullptr) {
        const auto got = ask(*remote, frame::link::account_op::md5_salt, handle, {});
        if (got && got->first == frame::link::account_status::ok) {
            return got->second;
        }
        return random_hex(8).substr(0, 15);  // the backend is unreachable: this login fails anyway
    }
    embedded::database* db = table ? database_for(settings_, user_backend(*table, handle)) : nullptr;
    if (!db) {
        return random_hex(8).substr(0, 15);  // storage is down: this login fails anyway
    }
    return accounts_of(*db, settings_).md5_salt(handle, dummy_salt_secret_);
}

bool msnp_services::verify_md5(std::string_view handle, std::string_view response_hex) {
    const auto table = routes_.table();
    if (link::client* remote = table ? remote_for(remote_, *table, handle) : nullptr) {
        const auto got = ask(*remote, frame::link::account_op::verify_md5, handle, response_hex);
        return got && got->first == frame::link::account_status::ok;
    }
    embedded::database* db = table ? database_for(settings_, user_backend(*table, handle)) : nullptr;
    if (!db) {
        return false;
    }
    const bool ok = accounts_of(*db, settings_).verify_md5(handle, response_hex);
    db->clear_error();
    return ok;
}

std::optional<std::string> msnp_services::verify_ticket(std::string_view ticket) {
    return tokens_.verify_ticket(parse_ticket_param(ticket), now_ms());
}

std::string msnp_services::issue_sb_cookie(const msnp::sb_grant& grant) {
    return tokens_.issue_cookie({grant.handle, grant.room, grant.dialect, grant.display_name, grant.capabilities},
                                now_ms());
}

std::optional<msnp::sb_grant> msnp_services::redeem_sb_cookie(std::string_view cookie) {
    auto claims = tokens_.redeem_cookie(cookie, now_ms());
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
