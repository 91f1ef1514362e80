// Self-verifying tokens: Passport tickets and switchboard cookies.
#include "gateway/login/tokens.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace switchyard::gateway;
using namespace std::chrono_literals;

namespace {

const config::hmac_key key_a{"a1", std::string(32, 'A')};
const config::hmac_key key_b{"b2", std::string(32, 'B')};
constexpr std::uint64_t t0 = 1'700'000'000'000;
constexpr std::string_view alice = "alice@example.com";

const cookie_claims sample_claims{"alice@example.com", "room:0123456789abcdef0123456789abcdef", 12,
                                  "Alice, the \"first\" % 100 & more \xe2\x98\x83", 0x40000024};

// What any MSNP parameter, `from-PP='...'` and XML text can carry unescaped.
bool safe_as_parameter(std::string_view token) {
    return std::ranges::all_of(token, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.';
    });
}

// Every single-character change of `token`: each position flipped to a
// character that differs in its lowest bit, and to one of the alphabet that
// differs entirely.
std::vector<std::string> tampered(const std::string& token) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < token.size(); ++i) {
        for (const char replacement : {static_cast<char>(token[i] ^ 1), token[i] == 'A' ? 'B' : 'A'}) {
            std::string t = token;
            t[i] = replacement;
            out.push_back(std::move(t));
        }
    }
    return out;
}

}  // namespace

TEST_CASE("a ticket names its handle until it expires", "[tokens]") {
    token_service tokens({key_a});
    const std::string ticket = tokens.issue_ticket("alice@example.com", t0);
    CHECK(ticket.starts_with("pt2.a1."));
    CHECK(safe_as_parameter(ticket));
    CHECK(tokens.verify_ticket(ticket, t0) == "alice@example.com");
    CHECK(tokens.verify_ticket(ticket, t0 + 24 * 3600 * 1000 - 1) == "alice@example.com");
    CHECK_FALSE(tokens.verify_ticket(ticket, t0 + 24 * 3600 * 1000));
    // Each issue is a new token.
    CHECK(tokens.issue_ticket("alice@example.com", t0) != ticket);
    // Verification has no side effects: a ticket serves every reconnection.
    CHECK(tokens.verify_ticket(ticket, t0 + 1) == "alice@example.com");
}

TEST_CASE("a ticket says when it was issued, so a later password change can end it", "[tokens]") {
    token_service tokens({key_a});
    const std::string ticket = tokens.issue_ticket("alice@example.com", t0 + 5);
    CHECK(tokens.verify_ticket_claims(ticket, t0 + 10) == ticket_claims{"alice@example.com", t0 + 5});
    // A pt1 ticket (issued before tickets carried the time, here with a
    // fixed nonce) still works; its issue time is its expiry less the lifetime.
    const std::string pt1 = "pt1.a1.AAABi9ULxAAAAQIDBAUGBwgJCgsAAAARYWxpY2VAZXhhbXBsZS5jb20."
                            "4d9MyjrwAusMxrfQnMW4NhiPoqMlwMChkMprMUezOsI";
    CHECK(tokens.verify_ticket_claims(pt1, t0 + 1) == ticket_claims{"alice@example.com", t0});
    CHECK(tokens.verify_ticket(pt1, t0 + 1) == "alice@example.com");
    CHECK_FALSE(tokens.verify_ticket(pt1, t0 + 24 * 3600 * 1000));
    for (const auto& t : tampered(pt1)) {
        CHECK_FALSE(tokens.verify_ticket(t, t0));
    }
}

TEST_CASE("changing any character of a token breaks it", "[tokens]") {
    token_service tokens({key_a});
    const std::string ticket = tokens.issue_ticket("alice@example.com", t0);
    for (const auto& t : tampered(ticket)) {
        INFO(t);
        CHECK_FALSE(tokens.verify_ticket(t, t0));
    }
    const std::string cookie = tokens.issue_cookie(sample_claims, t0);
    for (const auto& t : tampered(cookie)) {
        INFO(t);
        CHECK_FALSE(tokens.redeem_cookie(t, alice, t0));
    }
    // Cut short, extended, or empty.
    CHECK_FALSE(tokens.verify_ticket(ticket.substr(0, ticket.size() - 1), t0));
    CHECK_FALSE(tokens.verify_ticket(ticket + "A", t0));
    CHECK_FALSE(tokens.verify_ticket("", t0));
    CHECK_FALSE(tokens.verify_ticket("...", t0));
    CHECK_FALSE(tokens.verify_ticket(std::string(10000, 'A'), t0));
    // The untouched ones still work.
    CHECK(tokens.verify_ticket(ticket, t0));
    CHECK(tokens.redeem_cookie(cookie, alice, t0) == sample_claims);
}

TEST_CASE("a token of one kind is not accepted as the other", "[tokens]") {
    token_service tokens({key_a});
    CHECK_FALSE(tokens.redeem_cookie(tokens.issue_ticket("alice@example.com", t0), alice, t0));
    CHECK_FALSE(tokens.verify_ticket(tokens.issue_cookie(sample_claims, t0), t0));
}

TEST_CASE("keys: a token from an unknown key fails; a rotated-out key still verifies", "[tokens]") {
    token_service old_gateway({key_a});
    token_service stranger({key_b});
    const std::string ticket = old_gateway.issue_ticket("alice@example.com", t0);
    CHECK_FALSE(stranger.verify_ticket(ticket, t0));

    // Same id, other secret: the mac fails.
    token_service impostor({{"a1", std::string(32, 'Z')}});
    CHECK_FALSE(impostor.verify_ticket(ticket, t0));

    // Rotation: the new key goes first and signs; the old one still verifies.
    token_service rotated({key_b, key_a});
    CHECK(rotated.verify_ticket(ticket, t0) == "alice@example.com");
    const std::string fresh = rotated.issue_ticket("bob@example.com", t0);
    CHECK(fresh.starts_with("pt2.b2."));
    CHECK(stranger.verify_ticket(fresh, t0) == "bob@example.com");
    CHECK_FALSE(old_gateway.verify_ticket(fresh, t0));

    const std::string cookie = old_gateway.issue_cookie(sample_claims, t0);
    CHECK(rotated.redeem_cookie(cookie, alice, t0) == sample_claims);
}

TEST_CASE("a cookie carries its claims, once, for two minutes", "[tokens]") {
    token_service tokens({key_a});
    const std::string cookie = tokens.issue_cookie(sample_claims, t0);
    CHECK(cookie.starts_with("sb1.a1."));
    CHECK(safe_as_parameter(cookie));

    SECTION("single use") {
        CHECK(tokens.redeem_cookie(cookie, alice, t0 + 1000) == sample_claims);
        CHECK_FALSE(tokens.redeem_cookie(cookie, alice, t0 + 1001));
        CHECK(tokens.redeemed_cookies() == 1);
        // Another gateway's guard has not seen it (documented limit).
        token_service other({key_a});
        CHECK(other.redeem_cookie(cookie, alice, t0 + 1002) == sample_claims);
    }
    SECTION("expiry") {
        CHECK_FALSE(tokens.redeem_cookie(cookie, alice, t0 + 120'000));
        CHECK(tokens.redeem_cookie(cookie, alice, t0 + 119'999) == sample_claims);
    }
    SECTION("empty and extreme fields") {
        const cookie_claims bare{"", "", -1, ""};
        CHECK(tokens.redeem_cookie(tokens.issue_cookie(bare, t0), "", t0) == bare);
        const cookie_claims long_name{"bob@example.com", "room:x", 18, std::string(387, 'x')};
        const std::string c = tokens.issue_cookie(long_name, t0);
        CHECK(c.size() < 1024);
        CHECK(tokens.redeem_cookie(c, "bob@example.com", t0) == long_name);
    }
}

TEST_CASE("the replay guard stays bounded and forgets only expired cookies", "[tokens]") {
    token_options options;
    options.max_redeemed_cookies = 4;
    token_service tokens({key_a}, options);
    std::vector<std::string> cookies;
    for (int i = 0; i < 6; ++i) cookies.push_back(tokens.issue_cookie(sample_claims, t0 + i));

    for (int i = 0; i < 4; ++i) CHECK(tokens.redeem_cookie(cookies[i], alice, t0 + 10));
    CHECK(tokens.redeemed_cookies() == 4);
    // Full of unexpired cookies: refuse rather than forget one early.
    CHECK_FALSE(tokens.redeem_cookie(cookies[4], alice, t0 + 10));
    CHECK(tokens.redeemed_cookies() == 4);

    // Once the first two expire (issued at t0 and t0 + 1) they leave, and room opens.
    const std::uint64_t later = t0 + 120'000 + 1;
    CHECK(tokens.redeem_cookie(cookies[4], alice, later));
    CHECK(tokens.redeemed_cookies() == 3);
    CHECK(tokens.redeem_cookie(cookies[5], alice, later));
    CHECK(tokens.redeemed_cookies() == 4);
    // The ones still remembered are still refused.
    CHECK_FALSE(tokens.redeem_cookie(cookies[2], alice, later));
    CHECK_FALSE(tokens.redeem_cookie(cookies[3], alice, later));
    // Far later everything has expired and the guard empties on the next redeem.
    const std::string fresh = tokens.issue_cookie(sample_claims, t0 + 3'600'000);
    CHECK(tokens.redeem_cookie(fresh, alice, t0 + 3'600'000));
    CHECK(tokens.redeemed_cookies() == 1);
}

TEST_CASE("USR TWN S carries the ticket as t=...&p=... or bare", "[tokens]") {
    CHECK(parse_ticket_param("t=pt1.k.abc.def&p=") == "pt1.k.abc.def");
    CHECK(parse_ticket_param("t=pt1.k.abc.def&p=profile&x=1") == "pt1.k.abc.def");
    CHECK(parse_ticket_param("t=pt1.k.abc.def") == "pt1.k.abc.def");
    CHECK(parse_ticket_param("pt1.k.abc.def") == "pt1.k.abc.def");
    CHECK(parse_ticket_param("0123456789abcdef0123") == "0123456789abcdef0123");
    CHECK(parse_ticket_param("t=&p=x").empty());

    token_service tokens({key_a});
    const std::string ticket = tokens.issue_ticket("alice@example.com", t0);
    CHECK(tokens.verify_ticket(parse_ticket_param("t=" + ticket + "&p="), t0) == "alice@example.com");
    CHECK(tokens.verify_ticket(parse_ticket_param(ticket), t0) == "alice@example.com");
}

TEST_CASE("a token service needs a key", "[tokens]") {
    CHECK_THROWS_AS(token_service({}), std::invalid_argument);
}

TEST_CASE("a cookie presented with another handle is refused and stays unspent", "[tokens]") {
    token_service tokens({key_a});
    const std::string cookie = tokens.issue_cookie(sample_claims, t0);
    CHECK_FALSE(tokens.redeem_cookie(cookie, "mallory@example.com", t0));
    CHECK(tokens.redeemed_cookies() == 0);
    CHECK(tokens.redeem_cookie(cookie, alice, t0) == sample_claims);
    CHECK_FALSE(tokens.redeem_cookie(cookie, alice, t0));
}

TEST_CASE("one handle's redeemed cookies cannot fill the replay guard for the others", "[tokens]") {
    token_options options;
    options.max_redeemed_cookies = 8;
    options.max_redeemed_cookies_per_handle = 3;
    token_service tokens({key_a}, options);
    for (int i = 0; i < 3; ++i) CHECK(tokens.redeem_cookie(tokens.issue_cookie(sample_claims, t0), alice, t0));
    // Alice's fourth within the cookies' lifetime is refused ...
    const std::string fourth = tokens.issue_cookie(sample_claims, t0 + 1000);
    CHECK_FALSE(tokens.redeem_cookie(fourth, alice, t0 + 1000));
    // ... and Bob's still pass.
    cookie_claims bob = sample_claims;
    bob.handle = "bob@example.com";
    CHECK(tokens.redeem_cookie(tokens.issue_cookie(bob, t0), bob.handle, t0) == bob);
    CHECK(tokens.redeemed_cookies() == 4);
    // Alice's refused cookie was not spent: once her first ones expire it passes.
    CHECK(tokens.redeem_cookie(fourth, alice, t0 + 120'000));
    const std::string fifth = tokens.issue_cookie(sample_claims, t0 + 100'000);
    CHECK(tokens.redeem_cookie(fifth, alice, t0 + 120'000));
}
