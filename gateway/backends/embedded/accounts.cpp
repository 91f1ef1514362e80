// Accounts of the embedded backend: scrypt password hashes, and the MSNP2-7
// MD5 record for users who opted into it.
//
// WARNING: `credentials.md5_hash` is password-equivalent for MSNP2-7. The
// client answers `USR t MD5 S <salt>` with md5(salt + password), and the salt
// is fixed per user, so whoever reads md5_hash can log in as that user with
// an old client without ever learning the password. That is why the record
// exists only for users who ask for it, and why the database file must be
// guarded like a password file.
#include "gateway/backends/embedded/accounts.hpp"

#include "gateway/backends/embedded/users.hpp"

#include "protocols/frame/frame.hpp"
#include "protocols/text/text.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <charconv>
#include <chrono>
#include <limits>
#include <memory>

namespace switchyard::gateway::embedded {

namespace {

constexpr std::size_t salt_bytes = 16;
constexpr std::size_t hash_bytes = 32;
// A real salt as MSNP2-7 clients see it: 15 lowercase hex digits, the form
// Escargot uses (msnp-reference section 3.2); the dummy salts copy it.
constexpr std::size_t md5_salt_digits = 15;
constexpr std::size_t md5_hex_digits = 2 * 16;

using result = tl::expected<void, account_error>;

tl::unexpected<account_error> fail(account_errc code, std::string message) {
    return tl::unexpected(account_error{code, std::move(message)});
}

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

std::string to_hex(std::string_view raw) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw.size() * 2);
    for (const char c : raw) {
        const auto b = static_cast<unsigned char>(c);
        out.push_back(digits[b >> 4]);
        out.push_back(digits[b & 0xf]);
    }
    return out;
}

std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "unknown error";
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
}

tl::expected<std::string, account_error> random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
        return fail(account_errc::storage, "the random number generator failed: " + openssl_error());
    }
    return out;
}

}  // namespace

tl::expected<std::string, account_error> normalize_account_handle(std::string_view handle) {
    auto h = text::normalize_handle(handle);
    if (!h) {
        return fail(account_errc::invalid_handle, "invalid handle \"" + std::string(handle) +
                                                      "\": " + std::string(text::to_string(h.error())) +
                                                      "; expected an address such as alice@example.com");
    }
    return std::move(*h);
}

tl::expected<void, account_error> check_account_name(std::string_view name) {
    if (auto ok = text::check_line(name, frame::limits::name); !ok) {
        return fail(account_errc::invalid_name, "invalid display name: " + std::string(text::to_string(ok.error())) +
                                                    "; expected UTF-8 of at most " +
                                                    std::to_string(frame::limits::name) + " bytes");
    }
    return {};
}

namespace {

tl::expected<std::string, account_error> normalize(std::string_view handle) { return normalize_account_handle(handle); }
result check_display_name(std::string_view name) { return check_account_name(name); }

result check_password(const password_policy& policy, std::string_view handle, std::string_view password) {
    const std::string expected = "; expected " + std::to_string(policy.min_length) + " to " +
                                 std::to_string(policy.max_length) + " bytes of UTF-8, other than the handle";
    if (password.size() < policy.min_length || password.size() > policy.max_length) {
        return fail(account_errc::weak_password,
                    "the password is " + std::to_string(password.size()) + " bytes long" + expected);
    }
    if (!text::is_valid_utf8(password)) {
        return fail(account_errc::weak_password, "the password is not valid UTF-8" + expected);
    }
    // Folding the password like a handle compares it without regard to case,
    // Unicode case included; anything that folds to the handle is the handle.
    if (auto folded = text::normalize_handle(password); folded && *folded == handle) {
        return fail(account_errc::weak_password, "the password is the handle" + expected);
    }
    return {};
}

// ---------------------------------------------------------------- scrypt

std::string kdf_name(const kdf_params& k) {
    return "scrypt$" + std::to_string(k.n) + "$" + std::to_string(k.r) + "$" + std::to_string(k.p);
}

// "scrypt$N$r$p" as stored with each hash.
std::optional<kdf_params> parse_kdf(std::string_view s) {
    constexpr std::string_view prefix = "scrypt$";
    if (!s.starts_with(prefix)) return std::nullopt;
    s.remove_prefix(prefix.size());
    kdf_params k;
    const char* p = s.data();
    const char* end = s.data() + s.size();
    auto number = [&](auto& out, bool last) {
        auto [next, ec] = std::from_chars(p, end, out);
        if (ec != std::errc() || next == p || (last ? next != end : next == end || *next != '$')) return false;
        p = last ? next : next + 1;
        return true;
    };
    if (!number(k.n, false) || !number(k.r, false) || !number(k.p, true)) return std::nullopt;
    return k;
}

// The memory scrypt needs, by OpenSSL's own count (128 * r * (N + 2) bytes for V,
// 128 * r * p for B); OpenSSL refuses anything above a 32 MiB default unless told
// the limit, and N=2^17, r=8 alone needs 128 MiB. Nullopt if it overflows.
std::optional<std::uint64_t> scrypt_memory(const kdf_params& k) {
    constexpr auto max = std::numeric_limits<std::uint64_t>::max();
    const std::uint64_t block = 128 * std::uint64_t{k.r};
    if (k.r == 0 || k.n > max - 2 - k.p || k.n + 2 + k.p > max / block) return std::nullopt;
    return block * (k.n + 2 + k.p);
}

tl::expected<std::string, account_error> scrypt(std::string_view password, std::string_view salt,
                                                const kdf_params& k) {
    auto memory = scrypt_memory(k);
    if (!memory) return fail(account_errc::storage, "scrypt parameters " + kdf_name(k) + " are out of range");
    const std::unique_ptr<EVP_KDF, decltype(&EVP_KDF_free)> kdf(EVP_KDF_fetch(nullptr, "SCRYPT", nullptr),
                                                                &EVP_KDF_free);
    const std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr,
                                                                        &EVP_KDF_CTX_free);
    if (!ctx) return fail(account_errc::storage, "scrypt is not available: " + openssl_error());
    std::uint64_t n = k.n;
    std::uint32_t r = k.r;
    std::uint32_t p = k.p;
    std::uint64_t maxmem = *memory;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, const_cast<char*>(password.data()),
                                          password.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(salt.data()), salt.size()),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    std::string out(hash_bytes, '\0');
    if (EVP_KDF_derive(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), out.size(), params) != 1) {
        return fail(account_errc::storage, "scrypt with " + kdf_name(k) + " failed: " + openssl_error());
    }
    return out;
}

// ---------------------------------------------------------------- MSNP2-7 MD5

// Lowercase hex of md5(salt + password), what the client sends back.
tl::expected<std::string, account_error> md5_hex(std::string_view salt, std::string_view password) {
    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), salt.data(), salt.size()) != 1 ||
        EVP_DigestUpdate(ctx.get(), password.data(), password.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
        return fail(account_errc::storage, "MD5 is not available: " + openssl_error());
    }
    return to_hex({reinterpret_cast<const char*>(digest), length});
}

// ---------------------------------------------------------------- storage

struct scrypt_hash {
    std::string kdf;  // "scrypt$N$r$p"
    std::string salt;
    std::string hash;
};

struct md5_record {
    std::string salt;
    std::string hash;
};

// Made outside any transaction: scrypt takes a good fraction of a second and
// must not hold the database's write lock meanwhile.
tl::expected<scrypt_hash, account_error> hash_password(const kdf_params& kdf, std::string_view password) {
    auto salt = random_bytes(salt_bytes);
    if (!salt) return tl::unexpected(salt.error());
    auto hash = scrypt(password, *salt, kdf);
    if (!hash) return tl::unexpected(hash.error());
    return scrypt_hash{kdf_name(kdf), std::move(*salt), std::move(*hash)};
}

// The salt is fixed per user: a password change keeps it, so only a user
// who had no record gets a new one.
tl::expected<md5_record, account_error> make_md5_record(std::optional<std::string> salt, std::string_view password) {
    if (!salt) {
        auto raw = random_bytes((md5_salt_digits + 1) / 2);
        if (!raw) return tl::unexpected(raw.error());
        salt = to_hex(*raw).substr(0, md5_salt_digits);
    }
    auto hash = md5_hex(*salt, password);
    if (!hash) return tl::unexpected(hash.error());
    return md5_record{std::move(*salt), std::move(*hash)};
}

// `changed_ms`: when the password was set; tickets issued before are refused.
void store(database& db, std::string_view handle, const scrypt_hash& h, const std::optional<md5_record>& md5,
           std::uint64_t changed_ms) {
    // The wrapper binds text only: SQLite keeps text bytes as given and CAST
    // turns them into the BLOBs the schema declares. NULLIF stores an absent
    // MD5 record as NULL, which the wrapper cannot bind either.
    db.prepare("INSERT OR REPLACE INTO credentials (handle, kdf, salt, hash, md5_salt, md5_hash, changed_ms) "
               "VALUES (?1, ?2, CAST(?3 AS BLOB), CAST(?4 AS BLOB), NULLIF(?5, ''), NULLIF(?6, ''), ?7)")
        .bind(handle, h.kdf, h.salt, h.hash, md5 ? md5->salt : std::string(), md5 ? md5->hash : std::string(),
              changed_ms)
        .run();
}

std::string exists_message(std::string_view handle) { return "user " + std::string(handle) + " exists already"; }
std::string unknown_message(std::string_view handle) { return "no user " + std::string(handle); }

// A read's sticky error as an account error, clearing it: reads outside a
// transaction leave nothing to roll back.
std::optional<account_error> storage_error(database& db) {
    if (!db.failed()) return std::nullopt;
    account_error e{account_errc::storage, db.error()};
    db.clear_error();
    return e;
}

// Runs `body` in a write transaction that commits only if `body` succeeded
// and no statement failed. Errors are sticky, so after a failure the rest of
// `body` does nothing and the whole transaction is rolled back.
template <class F> result in_transaction(database& db, F&& body) {
    db.exec("BEGIN IMMEDIATE");
    result r = body();
    if (r && !db.failed()) db.exec("COMMIT");
    if (!r || db.failed()) db.exec("ROLLBACK");
    if (auto failed = storage_error(db)) return tl::unexpected(std::move(*failed));
    return r;
}

}  // namespace

// ---------------------------------------------------------------- steps

tl::expected<hashed_password, account_error> hash_new_password(const kdf_params& kdf, const password_policy& policy,
                                                               std::string_view handle, std::string_view password) {
    if (auto ok = check_password(policy, handle, password); !ok) return tl::unexpected(ok.error());
    auto hash = hash_password(kdf, password);
    if (!hash) return tl::unexpected(hash.error());
    return hashed_password{std::move(hash->kdf), std::move(hash->salt), std::move(hash->hash), std::string(password)};
}

namespace {

void store(database& db, std::string_view handle, const hashed_password& h, const std::optional<md5_record>& md5,
           std::uint64_t changed_ms) {
    store(db, handle, scrypt_hash{h.kdf, h.salt, h.hash}, md5, changed_ms);
}

}  // namespace

result insert_account(database& db, std::string_view handle, std::string_view display_name,
                      const hashed_password& password, bool md5_login, std::uint64_t created_ms) {
    if (user_exists(db, handle)) return fail(account_errc::exists, exists_message(handle));
    std::optional<md5_record> md5;
    if (md5_login) {
        auto record = make_md5_record(std::nullopt, password.plain);
        if (!record) return tl::unexpected(record.error());
        md5 = std::move(*record);
    }
    db.prepare("INSERT INTO users (handle, display_name, created_ms) VALUES (?1, ?2, ?3)")
        .bind(handle, display_name.empty() ? handle : display_name, created_ms)
        .run();
    store(db, handle, password, md5, created_ms);
    return {};
}

result replace_password(database& db, std::string_view handle, const hashed_password& password,
                        std::optional<bool> md5_login, std::uint64_t changed_ms) {
    if (!user_exists(db, handle)) return fail(account_errc::unknown_user, unknown_message(handle));
    std::optional<std::string> md5_salt;
    auto& q = db.prepare("SELECT md5_salt FROM credentials WHERE handle = ?1 AND md5_salt IS NOT NULL");
    q.bind(handle);
    if (q.step()) {
        md5_salt = q.text(0);
        q.run();
    }
    std::optional<md5_record> md5;
    if (md5_login.value_or(md5_salt.has_value())) {
        auto record = make_md5_record(std::move(md5_salt), password.plain);
        if (!record) return tl::unexpected(record.error());
        md5 = std::move(*record);
    }
    store(db, handle, password, md5, changed_ms);
    return {};
}

std::optional<std::uint64_t> credentials_changed_ms(database& db, std::string_view handle) {
    auto& q = db.prepare("SELECT changed_ms FROM credentials WHERE handle = ?1");
    q.bind(handle);
    if (!q.step()) return std::nullopt;
    const auto changed = static_cast<std::uint64_t>(q.integer(0));
    q.run();
    return changed;
}

void delete_account(database& db, std::string_view handle) {
    // Its contacts hold rows about it: those on its forward list its place
    // on their reverse lists, those with it on theirs their lists' entry,
    // view and phones. Only their objects may drop those: each is told,
    // until it acknowledges, from this table, which outlives the account.
    db.prepare("INSERT OR IGNORE INTO departures (owner, contact) "
               "SELECT owner, contact FROM contacts WHERE owner = ?1 AND (lists & 1) != 0 "
               "UNION SELECT owner, contact FROM reverse_contacts WHERE owner = ?1 AND listed = 1")
        .bind(handle)
        .run();
    // Its own rows: credentials, lists, groups, reverse list, views and the
    // outbox go with the users row (ON DELETE CASCADE).
    db.prepare("DELETE FROM users WHERE handle = ?1").bind(handle).run();
}

std::vector<std::string> departures_of(database& db, std::string_view handle) {
    std::vector<std::string> out;
    auto& q = db.prepare("SELECT contact FROM departures WHERE owner = ?1 ORDER BY contact");
    q.bind(handle);
    while (q.step()) out.push_back(q.text(0));
    return out;
}

std::vector<account_info> list_accounts(database& db, std::string_view after, std::size_t limit) {
    std::vector<account_info> out;
    auto& q = db.prepare(
        "SELECT u.handle, u.display_name, c.md5_hash IS NOT NULL, u.created_ms FROM users u "
        "LEFT JOIN credentials c ON c.handle = u.handle WHERE u.handle > ?1 ORDER BY u.handle LIMIT ?2");
    // An empty view would bind as NULL, which no handle is greater than.
    q.bind(std::string(after),
           static_cast<std::uint64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max())));
    while (q.step()) {
        out.push_back({q.text(0), q.text(1), q.integer(2) != 0, static_cast<std::uint64_t>(q.integer(3))});
    }
    return out;
}

std::optional<stored_password> read_password(database& db, std::string_view handle) {
    auto& q = db.prepare("SELECT kdf, salt, hash FROM credentials WHERE handle = ?1");
    q.bind(handle);
    if (!q.step()) return std::nullopt;
    stored_password p{q.text(0), q.text(1), q.text(2)};
    q.run();
    return p;
}

bool password_matches(const std::optional<stored_password>& stored, std::string_view password,
                      const kdf_params& dummy_cost) {
    if (!stored) {
        // An unknown handle costs one hash like a known one, so the time a
        // login takes does not tell which handles have accounts.
        static constexpr std::string_view dummy_salt = "switchyard-dummy";
        (void)scrypt(password, dummy_salt, dummy_cost);
        return false;
    }
    const auto params = parse_kdf(stored->kdf);
    if (!params) return false;
    const auto actual = scrypt(password, stored->salt, *params);
    return actual && actual->size() == stored->hash.size() &&
           CRYPTO_memcmp(actual->data(), stored->hash.data(), stored->hash.size()) == 0;
}

// ---------------------------------------------------------------- accounts

accounts::accounts(database& db, kdf_params kdf, password_policy policy) : db_(db), kdf_(kdf), policy_(policy) {}

tl::expected<std::string, account_error> accounts::check_add(std::string_view handle, std::string_view display_name) {
    auto h = normalize(handle);
    if (!h) return h;
    if (auto ok = check_display_name(display_name.empty() ? *h : display_name); !ok) {
        return tl::unexpected(ok.error());
    }
    const bool found = user_exists(db_, *h);
    if (auto failed = storage_error(db_)) return tl::unexpected(std::move(*failed));
    if (found) return fail(account_errc::exists, exists_message(*h));
    return h;
}

tl::expected<std::string, account_error> accounts::check_set_password(std::string_view handle) {
    auto h = normalize(handle);
    if (!h) return h;
    const bool found = user_exists(db_, *h);
    if (auto failed = storage_error(db_)) return tl::unexpected(std::move(*failed));
    if (!found) return fail(account_errc::unknown_user, unknown_message(*h));
    return h;
}

tl::expected<std::string, account_error> accounts::add(std::string_view handle, std::string_view password,
                                                       bool legacy_md5, std::string_view display_name) {
    auto h = check_add(handle, display_name);
    if (!h) return h;
    auto hashed = hash_new_password(kdf_, policy_, *h, password);
    if (!hashed) return tl::unexpected(hashed.error());
    auto written = in_transaction(db_, [&] { return insert_account(db_, *h, display_name, *hashed, legacy_md5, now_ms()); });
    if (!written) return tl::unexpected(written.error());
    return h;
}

tl::expected<void, account_error> accounts::set_password(std::string_view handle, std::string_view password,
                                                         std::optional<bool> legacy_md5) {
    auto h = check_set_password(handle);
    if (!h) return tl::unexpected(h.error());
    auto hashed = hash_new_password(kdf_, policy_, *h, password);
    if (!hashed) return tl::unexpected(hashed.error());
    return in_transaction(db_, [&] { return replace_password(db_, *h, *hashed, legacy_md5, now_ms()); });
}

tl::expected<void, account_error> accounts::remove(std::string_view handle) {
    auto h = normalize(handle);
    if (!h) return tl::unexpected(h.error());
    return in_transaction(db_, [&]() -> result {
        if (!user_exists(db_, *h)) return fail(account_errc::unknown_user, unknown_message(*h));
        delete_account(db_, *h);
        return {};
    });
}

std::vector<account_info> accounts::list() { return list_accounts(db_); }

bool accounts::verify_password(std::string_view handle, std::string_view password) {
    auto h = text::normalize_handle(handle);
    if (!h) return false;
    return password_matches(read_password(db_, *h), password, kdf_);
}

std::string md5_salt_of(database& db_, std::string_view handle, std::string_view secret) {
    auto h = text::normalize_handle(handle);
    if (h) {
        auto& q = db_.prepare("SELECT md5_salt FROM credentials WHERE handle = ?1 AND md5_salt IS NOT NULL");
        q.bind(*h);
        if (q.step()) {
            std::string salt = q.text(0);
            q.run();
            return salt;
        }
    }
    // Escargot's dummy for unknown users looks nothing like a real salt and
    // changes on every attempt, which gives away which accounts exist
    // (msnp-reference section 3.2). This one is shaped like a real salt and
    // stays the same for a handle, as a real one does.
    const std::string subject = h ? *h : ascii_lower(handle);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), bytes_of(subject), subject.size(), mac,
              &length)) {
        // Without HMAC-SHA256 no login can work anyway; a fixed salt at least
        // keeps the shape.
        return std::string(md5_salt_digits, '0');
    }
    return to_hex({reinterpret_cast<const char*>(mac), length}).substr(0, md5_salt_digits);
}

bool md5_matches(database& db_, std::string_view handle, std::string_view response_hex) {
    auto h = text::normalize_handle(handle);
    if (!h) return false;
    auto& q = db_.prepare("SELECT md5_hash FROM credentials WHERE handle = ?1 AND md5_hash IS NOT NULL");
    q.bind(*h);
    if (!q.step()) return false;
    const std::string expected = q.text(0);
    q.run();
    // Clients send lowercase hex; accept uppercase too, it is the same digest.
    const std::string response = ascii_lower(response_hex);
    return response.size() == md5_hex_digits && expected.size() == md5_hex_digits &&
           CRYPTO_memcmp(response.data(), expected.data(), md5_hex_digits) == 0;
}

std::string accounts::md5_salt(std::string_view handle, std::string_view secret) {
    return md5_salt_of(db_, handle, secret);
}

bool accounts::verify_md5(std::string_view handle, std::string_view response_hex) {
    return md5_matches(db_, handle, response_hex);
}

}  // namespace switchyard::gateway::embedded
