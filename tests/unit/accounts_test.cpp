// Accounts of the embedded backend on a fresh SQLite file: creation and
// handle normalisation, the password policy, scrypt verification across cost
// changes, removal, and the MSNP2-7 MD5 record (msnp-reference section 3.2).
#include "gateway/backends/embedded/accounts.hpp"
#include "gateway/backends/embedded/object.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

namespace embedded = switchyard::gateway::embedded;
using embedded::account_errc;

namespace {

// Cheap enough for tests; production uses N=2^17.
constexpr embedded::kdf_params cheap{1u << 10, 8, 1};
const std::string secret = "0123456789abcdef0123456789abcdef";

struct fixture {
    std::filesystem::path dir;
    std::unique_ptr<embedded::database> db;

    fixture() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "switchyard-accounts-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()));
        dir = tmpl;
        db = std::make_unique<embedded::database>(dir / "embedded.sqlite3", embedded::durability::normal);
        embedded::create_schema(*db);
        REQUIRE_FALSE(db->failed());
    }
    ~fixture() {
        db.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    embedded::accounts accounts(embedded::kdf_params kdf = cheap, embedded::password_policy policy = {}) {
        return embedded::accounts(*db, kdf, policy);
    }

    std::int64_t count(const std::string& sql) {
        auto& q = db->prepare(sql);
        q.bind();
        REQUIRE(q.step());
        const auto n = q.integer(0);
        q.run();
        return n;
    }

    std::string text(const std::string& sql) {
        auto& q = db->prepare(sql);
        q.bind();
        REQUIRE(q.step());
        auto s = q.is_null(0) ? std::string("NULL") : q.text(0);
        q.run();
        return s;
    }
};

std::uint64_t now_ms() {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
}

bool is_salt_shaped(const std::string& s) {
    return s.size() == 15 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("add stores the folded handle, a display name and the creation time", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    const auto before = now_ms();
    auto h = acc.add("Alice@Example.COM", "correct horse", false);
    const auto after = now_ms();
    REQUIRE(h);
    CHECK(*h == "alice@example.com");
    REQUIRE(acc.add("bob@example.com", "battery staple", true, "Bob \xe2\x98\x83"));

    const auto all = acc.list();
    REQUIRE(all.size() == 2);
    CHECK(all[0].handle == "alice@example.com");
    CHECK(all[0].display_name == "alice@example.com");  // defaults to the handle
    CHECK_FALSE(all[0].legacy_md5);
    CHECK(all[0].created_ms >= before);
    CHECK(all[0].created_ms <= after);
    CHECK(all[1].handle == "bob@example.com");
    CHECK(all[1].display_name == "Bob \xe2\x98\x83");
    CHECK(all[1].legacy_md5);

    // The stored hash names its parameters; 16 bytes of salt, 32 of hash.
    CHECK(f.text("SELECT kdf FROM credentials WHERE handle = 'alice@example.com'") == "scrypt$1024$8$1");
    CHECK(f.count("SELECT length(salt) FROM credentials WHERE handle = 'alice@example.com'") == 16);
    CHECK(f.count("SELECT length(hash) FROM credentials WHERE handle = 'alice@example.com'") == 32);
    CHECK(f.text("SELECT typeof(salt) FROM credentials WHERE handle = 'alice@example.com'") == "blob");

    SECTION("a second account with the same handle in any case is refused") {
        auto again = acc.add("ALICE@example.com", "another password", false);
        REQUIRE_FALSE(again);
        CHECK(again.error().code == account_errc::exists);
        CHECK(again.error().message == "user alice@example.com exists already");
        CHECK(acc.check_add("alice@EXAMPLE.com").error().code == account_errc::exists);
        CHECK(acc.verify_password("alice@example.com", "correct horse"));
    }
}

TEST_CASE("add refuses invalid handles and display names", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    for (const char* bad :
         {"", "no-at-sign", "two@@example.com", "a b@example.com", "@example.com", "a;b@example.com"}) {
        INFO(bad);
        auto r = acc.add(bad, "correct horse", false);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == account_errc::invalid_handle);
        CHECK(r.error().message.find("expected an address such as alice@example.com") != std::string::npos);
    }
    auto long_name = acc.add("alice@example.com", "correct horse", false, std::string(388, 'x'));
    REQUIRE_FALSE(long_name);
    CHECK(long_name.error().code == account_errc::invalid_name);
    CHECK(long_name.error().message.find("at most 387 bytes") != std::string::npos);
    auto bad_utf8 = acc.add("alice@example.com", "correct horse", false, "Al\xffice");
    REQUIRE_FALSE(bad_utf8);
    CHECK(bad_utf8.error().code == account_errc::invalid_name);
    CHECK(acc.add("alice@example.com", "correct horse", false, std::string(387, 'x')));
    CHECK(f.count("SELECT count(*) FROM users") == 1);
}

TEST_CASE("weak passwords are refused with the policy in the message", "[accounts]") {
    fixture f;
    auto acc = f.accounts(cheap, {8, 16});
    auto weak = [&](const std::string& password) {
        INFO(password);
        auto r = acc.add("alice@example.com", password, false);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == account_errc::weak_password);
        CHECK(r.error().message.find("expected 8 to 16 bytes of UTF-8, other than the handle") != std::string::npos);
        return r.error().message;
    };
    CHECK(weak("short").starts_with("the password is 5 bytes long"));
    CHECK(weak(std::string(17, 'x')).starts_with("the password is 17 bytes long"));
    CHECK(weak("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8").starts_with("the password is not valid UTF-8"));
    // A handle of at most 16 bytes, so only the handle rule applies.
    CHECK(acc.add("al@example.com", "AL@Example.COM", false).error().code == account_errc::weak_password);
    CHECK(f.count("SELECT count(*) FROM users") == 0);

    REQUIRE(acc.add("alice@example.com", std::string(8, 'x'), false));
    REQUIRE(acc.add("bob@example.com", std::string(16, 'x'), false));
    CHECK(acc.set_password("bob@example.com", "bob@example.com").error().code == account_errc::weak_password);
    CHECK(acc.verify_password("bob@example.com", std::string(16, 'x')));
}

TEST_CASE("passwords verify, and keep verifying after the cost changes", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    REQUIRE(acc.add("alice@example.com", "correct horse", false));
    CHECK(acc.verify_password("alice@example.com", "correct horse"));
    CHECK(acc.verify_password("ALICE@example.com", "correct horse"));
    CHECK_FALSE(acc.verify_password("alice@example.com", "Correct horse"));
    CHECK_FALSE(acc.verify_password("alice@example.com", ""));
    CHECK_FALSE(acc.verify_password("nobody@example.com", "correct horse"));
    CHECK_FALSE(acc.verify_password("not a handle", "correct horse"));

    auto costlier = f.accounts({1u << 11, 8, 2});
    CHECK(costlier.verify_password("alice@example.com", "correct horse"));
    REQUIRE(costlier.set_password("alice@example.com", "new password"));
    CHECK(f.text("SELECT kdf FROM credentials") == "scrypt$2048$8$2");
    CHECK(acc.verify_password("alice@example.com", "new password"));
    CHECK_FALSE(acc.verify_password("alice@example.com", "correct horse"));

    SECTION("a malformed kdf field verifies nothing") {
        f.db->exec("UPDATE credentials SET kdf = 'scrypt$1024$8'");
        CHECK_FALSE(acc.verify_password("alice@example.com", "new password"));
    }
}

TEST_CASE("set_password checks the user and keeps or changes the legacy setting", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    REQUIRE(acc.add("alice@example.com", "correct horse", false));
    const std::string md5_of_alice = "SELECT md5_hash FROM credentials WHERE handle = 'alice@example.com'";

    auto unknown = acc.set_password("nobody@example.com", "correct horse");
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == account_errc::unknown_user);
    CHECK(unknown.error().message == "no user nobody@example.com");
    CHECK(acc.check_set_password("nobody@example.com").error().code == account_errc::unknown_user);
    CHECK(acc.set_password("bad handle", "correct horse").error().code == account_errc::invalid_handle);
    CHECK(*acc.check_set_password("Alice@example.com") == "alice@example.com");

    REQUIRE(acc.set_password("alice@example.com", "second password"));
    CHECK(f.text(md5_of_alice) == "NULL");
    REQUIRE(acc.set_password("alice@example.com", "third password", true));
    const auto salt = acc.md5_salt("alice@example.com", secret);
    CHECK(is_salt_shaped(salt));
    CHECK(f.text(md5_of_alice).size() == 32);
    // Unset keeps legacy login on, with the same fixed salt.
    REQUIRE(acc.set_password("alice@example.com", "fourth password"));
    CHECK(acc.list()[0].legacy_md5);
    CHECK(acc.md5_salt("alice@example.com", secret) == salt);
    REQUIRE(acc.set_password("alice@example.com", "fifth password", false));
    CHECK_FALSE(acc.list()[0].legacy_md5);
    CHECK(f.text(md5_of_alice) == "NULL");
    CHECK(acc.verify_password("alice@example.com", "fifth password"));
}

TEST_CASE("remove deletes the user with its credentials, lists and groups", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    REQUIRE(acc.add("alice@example.com", "correct horse", true));
    REQUIRE(acc.add("bob@example.com", "battery staple", false));
    f.db->exec("INSERT INTO contacts (owner, contact, lists, display_name, contact_id) VALUES "
               "('alice@example.com', 'bob@example.com', 3, 'Bob', 'c1'), "
               "('bob@example.com', 'alice@example.com', 1, 'Alice', 'c2')");
    f.db->exec("INSERT INTO groups (owner, id, name, created_version) "
               "VALUES ('alice@example.com', 'g1', 'Friends', 1)");
    f.db->exec("INSERT INTO contact_groups (owner, contact, group_id) VALUES "
               "('alice@example.com', 'bob@example.com', 'g1')");
    // Each on the other's reverse list, and a notice of Alice's not yet acknowledged.
    f.db->exec("INSERT INTO reverse_contacts (owner, contact, listed, display_name, version) VALUES "
               "('alice@example.com', 'bob@example.com', 1, 'Bob', 4), "
               "('bob@example.com', 'alice@example.com', 1, 'Alice', 9)");
    f.db->exec("INSERT INTO outbox (owner, contact, op, display_name, version) VALUES "
               "('alice@example.com', 'bob@example.com', 0, 'Alice', 9)");
    f.db->exec("INSERT INTO contact_views (owner, contact, state, display_name, personal_message, current_media, "
               "capabilities, capabilities_ex, msn_object, endpoint, phone_home, phone_work, phone_mobile, "
               "mobile_pageable) VALUES ('bob@example.com', 'alice@example.com', 1, 'Alice', '', '', 0, 0, '', "
               "'ep', '', '', '', 0)");
    INFO((f.db->failed() ? f.db->error() : ""));
    REQUIRE_FALSE(f.db->failed());

    REQUIRE(acc.remove("Alice@Example.com"));
    CHECK(f.count("SELECT count(*) FROM outbox") == 0);
    // Her own reverse list goes; Bob's rows about her are Bob's, and his
    // object is to be told (departures) to drop them.
    CHECK(f.count("SELECT count(*) FROM reverse_contacts WHERE owner = 'alice@example.com'") == 0);
    CHECK(f.count("SELECT count(*) FROM reverse_contacts WHERE owner = 'bob@example.com'") == 1);
    CHECK(f.count("SELECT count(*) FROM contact_views") == 1);
    CHECK(f.count("SELECT count(*) FROM departures WHERE owner = 'alice@example.com' AND "
                  "contact = 'bob@example.com'") == 1);
    CHECK(f.count("SELECT count(*) FROM users WHERE handle = 'alice@example.com'") == 0);
    CHECK(f.count("SELECT count(*) FROM credentials WHERE handle = 'alice@example.com'") == 0);
    CHECK(f.count("SELECT count(*) FROM contacts WHERE owner = 'alice@example.com'") == 0);
    CHECK(f.count("SELECT count(*) FROM groups") == 0);
    CHECK(f.count("SELECT count(*) FROM contact_groups") == 0);
    // Bob's own list is Bob's to change.
    CHECK(f.count("SELECT count(*) FROM contacts WHERE owner = 'bob@example.com'") == 1);
    CHECK_FALSE(acc.verify_password("alice@example.com", "correct horse"));
    REQUIRE(acc.list().size() == 1);
    CHECK(acc.list()[0].handle == "bob@example.com");

    auto again = acc.remove("alice@example.com");
    REQUIRE_FALSE(again);
    CHECK(again.error().code == account_errc::unknown_user);
    CHECK(acc.remove("not a handle").error().code == account_errc::invalid_handle);
}

TEST_CASE("an account created again starts with no reverse list of others' making", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    REQUIRE(acc.add("bob@example.com", "battery staple", false));
    // Bob kept a removed Alice on his forward list (his object is told she
    // is gone, and drops her): the new Alice reads no one's rows.
    f.db->exec("INSERT INTO contacts (owner, contact, lists, display_name, contact_id) VALUES "
               "('bob@example.com', 'alice@example.com', 1, 'Alice', 'c1')");
    REQUIRE_FALSE(f.db->failed());
    REQUIRE(acc.add("alice@example.com", "correct horse", false));
    CHECK(f.count("SELECT count(*) FROM reverse_contacts") == 0);
}

TEST_CASE("storage errors are reported and leave nothing half written", "[accounts]") {
    fixture f;
    auto acc = f.accounts();
    // The users row goes in first; then writing the credentials fails.
    f.db->exec("CREATE TRIGGER refuse BEFORE INSERT ON credentials "
               "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
    REQUIRE_FALSE(f.db->failed());
    auto r = acc.add("alice@example.com", "correct horse", false);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == account_errc::storage);
    CHECK(r.error().message.find("disk on fire") != std::string::npos);
    CHECK_FALSE(f.db->failed());  // reported, not left sticky
    CHECK(f.count("SELECT count(*) FROM users") == 0);
}

TEST_CASE("the legacy MD5 record matches the reference vector", "[accounts][md5]") {
    fixture f;
    // The vector's password is 7 bytes.
    auto acc = f.accounts(cheap, {6, 128});
    REQUIRE(acc.add("alice@example.com", "placeholder", true));
    // The salt is fixed per user and survives a password change, so setting
    // it directly and then the password gives the vector's record.
    f.db->exec("UPDATE credentials SET md5_salt = 'eba3c82d9c67dd8' WHERE handle = 'alice@example.com'");
    REQUIRE(acc.set_password("alice@example.com", "test123"));
    CHECK(f.text("SELECT md5_hash FROM credentials") == "569a7e02c84747c126cfcc7bd932fd8e");

    CHECK(acc.md5_salt("Alice@example.com", secret) == "eba3c82d9c67dd8");
    CHECK(acc.verify_md5("alice@example.com", "569a7e02c84747c126cfcc7bd932fd8e"));
    CHECK(acc.verify_md5("alice@example.com", "569A7E02C84747C126CFCC7BD932FD8E"));
    CHECK_FALSE(acc.verify_md5("alice@example.com", "569a7e02c84747c126cfcc7bd932fd8f"));
    CHECK_FALSE(acc.verify_md5("alice@example.com", "569a7e02c84747c126cfcc7bd932fd8"));
    CHECK_FALSE(acc.verify_md5("alice@example.com", ""));
    CHECK_FALSE(acc.verify_md5("bob@example.com", "569a7e02c84747c126cfcc7bd932fd8e"));
    CHECK(acc.verify_password("alice@example.com", "test123"));
}

TEST_CASE("users without a legacy record get a stable dummy salt and cannot log in with MD5", "[accounts][md5]") {
    fixture f;
    auto acc = f.accounts();
    REQUIRE(acc.add("alice@example.com", "correct horse", false));
    REQUIRE(acc.add("carol@example.com", "correct horse", true));

    for (const char* handle : {"alice@example.com", "nobody@example.com", "not a handle"}) {
        INFO(handle);
        const auto salt = acc.md5_salt(handle, secret);
        CHECK(is_salt_shaped(salt));
        CHECK(acc.md5_salt(handle, secret) == salt);
        CHECK(acc.md5_salt(handle, "another secret") != salt);
    }
    // Handles compare as normalised, raw text as lowercased.
    CHECK(acc.md5_salt("Nobody@EXAMPLE.com", secret) == acc.md5_salt("nobody@example.com", secret));
    CHECK(acc.md5_salt("NOT A HANDLE", secret) == acc.md5_salt("not a handle", secret));
    CHECK(acc.md5_salt("nobody@example.com", secret) != acc.md5_salt("somebody@example.com", secret));

    const auto real = acc.md5_salt("carol@example.com", secret);
    CHECK(is_salt_shaped(real));
    CHECK(real == f.text("SELECT md5_salt FROM credentials WHERE handle = 'carol@example.com'"));

    CHECK(f.text("SELECT md5_hash FROM credentials WHERE handle = 'alice@example.com'") == "NULL");
    CHECK_FALSE(acc.verify_md5("alice@example.com", "569a7e02c84747c126cfcc7bd932fd8e"));
    CHECK_FALSE(acc.verify_md5("alice@example.com", ""));
    CHECK_FALSE(acc.verify_md5("nobody@example.com", "569a7e02c84747c126cfcc7bd932fd8e"));
}
