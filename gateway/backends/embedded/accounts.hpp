// Accounts of the embedded backend: creating and removing users, passwords
// stored with scrypt, and the per-user record MSNP2-7 MD5 login needs
// (msnp-reference section 3.2), created only when enabled for that user.
#pragma once

#include "gateway/backends/embedded/sqlite.hpp"

#include <tl/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::gateway::embedded {

struct password_policy {
    std::size_t min_length = 8;    // bytes
    std::size_t max_length = 128;
};

// scrypt cost; the defaults follow OWASP's guidance (N=2^17, r=8, p=1).
struct kdf_params {
    std::uint64_t n = 1u << 17;
    std::uint32_t r = 8;
    std::uint32_t p = 1;
};

enum class account_errc { exists = 1, unknown_user, invalid_handle, weak_password, invalid_name, storage };

struct account_error {
    account_errc code;
    std::string message;  // for the operator: what was wrong and what is expected
};

struct account_info {
    std::string handle;
    std::string display_name;
    bool legacy_md5 = false;
    std::uint64_t created_ms = 0;
};

// ---------------------------------------------------------------- steps
// What a user object does with account frames (gateway/backends/README.md,
// "Accounts"), inside the transaction of the batch it applies, and the
// hashing the backend does off the object's thread before and after:
// scrypt takes a good fraction of a second, which no writer may spend.

tl::expected<std::string, account_error> normalize_account_handle(std::string_view handle);
tl::expected<void, account_error> check_account_name(std::string_view display_name);

// A new password, checked against the policy and hashed; the plaintext
// stays for the MSNP2-7 MD5 record, whose salt is the stored one.
struct hashed_password {
    std::string kdf;  // "scrypt$N$r$p"
    std::string salt;
    std::string hash;
    std::string plain;
};
tl::expected<hashed_password, account_error> hash_new_password(const kdf_params& kdf, const password_policy& policy,
                                                               std::string_view handle, std::string_view password);

// `handle` normalised. Each fails with exists / unknown_user as it applies.
tl::expected<void, account_error> insert_account(database& db, std::string_view handle, std::string_view display_name,
                                                 const hashed_password& password, bool md5_login,
                                                 std::uint64_t created_ms);
// `md5_login` unset keeps the MD5 record if there is one (and renews it).
// `changed_ms` (Unix ms) is recorded: tickets issued before it are refused.
tl::expected<void, account_error> replace_password(database& db, std::string_view handle,
                                                   const hashed_password& password, std::optional<bool> md5_login,
                                                   std::uint64_t changed_ms);
// When the account's password was last set (its creation, for one never
// changed; 0 for accounts from before schema version 7); nullopt without
// an account.
std::optional<std::uint64_t> credentials_changed_ms(database& db, std::string_view handle);
// The user's rows with its credentials; its contacts (FL, and RL) are
// recorded in `departures`, to be told it is gone.
void delete_account(database& db, std::string_view handle);
// The contacts a removed account has not heard back from.
std::vector<std::string> departures_of(database& db, std::string_view handle);
// In handle order, after `after`.
std::vector<account_info> list_accounts(database& db, std::string_view after = {},
                                        std::size_t limit = static_cast<std::size_t>(-1));

struct stored_password {
    std::string kdf;
    std::string salt;
    std::string hash;
};
std::optional<stored_password> read_password(database& db, std::string_view handle);
// scrypt of `password` compared with `stored`; without one, a hash at
// `dummy_cost` all the same, so a login's time does not tell whether the
// account exists.
bool password_matches(const std::optional<stored_password>& stored, std::string_view password,
                      const kdf_params& dummy_cost);

// MSNP2-7: see accounts::md5_salt and accounts::verify_md5.
std::string md5_salt_of(database& db, std::string_view handle, std::string_view secret);
bool md5_matches(database& db, std::string_view handle, std::string_view response_hex);

// The same steps, each in a transaction of its own, for whoever holds the
// database alone: tests and tools that prepare a file, and the backend's
// upgrade paths. A running backend changes accounts only through frames.
class accounts {
public:
    accounts(database& db, kdf_params kdf = {}, password_policy policy = {});

    // Returns the normalised handle. The display name defaults to the handle.
    tl::expected<std::string, account_error> add(std::string_view handle, std::string_view password,
                                                 bool legacy_md5, std::string_view display_name = {});
    // `legacy_md5` unset keeps the current setting (and refreshes its record).
    tl::expected<void, account_error> set_password(std::string_view handle, std::string_view password,
                                                   std::optional<bool> legacy_md5 = std::nullopt);
    // The checks add() and set_password() make before hashing, so that a
    // command can fail before it asks for a password. Both return the
    // normalised handle. A user may still appear or vanish before the write;
    // add() and set_password() check again.
    tl::expected<std::string, account_error> check_add(std::string_view handle, std::string_view display_name = {});
    tl::expected<std::string, account_error> check_set_password(std::string_view handle);
    // Removes the user, its lists, groups and credentials.
    tl::expected<void, account_error> remove(std::string_view handle);
    std::vector<account_info> list();

    bool verify_password(std::string_view handle, std::string_view password);

    // MSNP2-7: the salt to send in `USR t MD5 S <salt>`: the user's fixed
    // salt, or for users without a legacy record (and unknown handles) a
    // stable dummy derived with HMAC from `secret`, shaped like a real salt.
    std::string md5_salt(std::string_view handle, std::string_view secret);
    // Checks the client's hex md5(salt + password).
    bool verify_md5(std::string_view handle, std::string_view response_hex);

private:
    database& db_;
    kdf_params kdf_;
    password_policy policy_;
};

}  // namespace switchyard::gateway::embedded
