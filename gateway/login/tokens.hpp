// Self-verifying tokens (gateway/README.md section 6): Passport tickets and
// switchboard cookies carry their own claims, expiry and an HMAC, so any
// gateway holding the keys accepts them without a shared session store.
//
// Wire form, one MSNP parameter with no space, '%', ',', '&', '=' or quote,
// so it also fits inside `from-PP='t=...&p='` and XML text unescaped:
//
//   <kind>.<key id>.<body>.<mac>
//
//   kind    "pt2" for a Passport ticket, "sb1" for a switchboard cookie
//           (the kind and the format's version; a token of one kind is never
//           accepted as the other). "pt1" tickets, issued before tickets
//           carried their issue time, are still accepted until they expire.
//   key id  the [[keys]] id whose secret made the mac
//   body    base64url without padding of: expiry (Unix ms, u64 big-endian),
//           nonce (12 random bytes), then the kind's fields, each a u32
//           big-endian length and the bytes:
//             ticket: handle, issue time (Unix ms, decimal; pt1 has none)
//             cookie: handle, room, dialect (decimal), display name,
//                     capabilities (decimal)
//   mac     base64url without padding of HMAC-SHA256(secret, "<kind>.<key id>.<body>")
//
// Base64url is decoded strictly (no padding, unused bits zero), so one token
// has exactly one spelling and changing any character of it breaks the mac.
#pragma once

#include "gateway/config/config.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchyard::gateway {

// What a switchboard cookie grants (msnp-reference section 4.4): the NS that
// issues it knows the user's dialect and name, which the SB connection (no
// VER) needs.
struct cookie_claims {
    std::string handle;        // normalised
    std::string room;          // "room:<id>"
    int dialect = 0;
    std::string display_name;
    std::uint64_t capabilities = 0;

    bool operator==(const cookie_claims&) const = default;
};

// Whom a ticket names and when it was issued: the user object refuses a
// ticket issued before the account's password last changed (or before the
// account was made, for a handle removed and created again).
struct ticket_claims {
    std::string handle;
    std::uint64_t issued_ms = 0;

    bool operator==(const ticket_claims&) const = default;
};

struct token_options {
    std::chrono::milliseconds ticket_lifetime{std::chrono::hours(24)};
    // Escargot issues XFR and RNG cookies for 120 s (msnp-reference section 4.4).
    std::chrono::milliseconds cookie_lifetime{std::chrono::seconds(120)};
    // Redeemed cookies remembered until they expire (see redeem_cookie), in
    // all and per handle: one account cannot fill the guard for everyone.
    std::size_t max_redeemed_cookies = 1u << 18;
    std::size_t max_redeemed_cookies_per_handle = 256;
};

// Issues and checks tokens. Thread-safe: every gateway thread shares one.
// Issuing throws std::runtime_error only if OpenSSL's random generator or
// HMAC fails: a token that is not random or not signed must never go out.
class token_service {
public:
    // The first key signs, every key verifies (rotation: add the new key
    // first, drop the old one once its tokens have expired). Throws
    // std::invalid_argument without keys: that is a start-up error.
    explicit token_service(std::vector<config::hmac_key> keys, token_options options = {});

    // A Passport ticket for `handle` (already normalised), valid for
    // ticket_lifetime from `now_ms`.
    std::string issue_ticket(std::string_view handle, std::uint64_t now_ms) const;
    // The handle a valid, unexpired ticket was issued to. Takes the bare
    // token: see parse_ticket_param for what MSNP clients send.
    std::optional<std::string> verify_ticket(std::string_view token, std::uint64_t now_ms) const;
    // The same with its issue time. A pt1 ticket's is taken as its expiry
    // less today's ticket_lifetime: never later than the real one unless
    // the lifetime was shortened since.
    std::optional<ticket_claims> verify_ticket_claims(std::string_view token, std::uint64_t now_ms) const;

    std::string issue_cookie(const cookie_claims& claims, std::uint64_t now_ms) const;
    // The claims of a valid, unexpired cookie presented for the first time
    // by the handle it was issued to (`handle`, normalised). A cookie
    // presented with another handle is refused and stays unspent, so
    // whoever sees a cookie cannot burn it for its owner.
    //
    // Single use is a replay guard kept in this process only: it remembers
    // each redeemed cookie until the cookie expires (cookie_lifetime), at
    // most max_redeemed_cookies of them and max_redeemed_cookies_per_handle
    // per handle. When a bound is reached, further cookies (of that handle)
    // are refused rather than others forgotten early, so the guard never
    // lets a replay through; the bounds cap memory, and the one per handle
    // keeps an account opening switchboards without end from refusing
    // everyone else's (256 in two minutes is far beyond what a person opens).
    // Another gateway does not see this set, so a stolen cookie could be
    // replayed there once within its two minutes; the SB still checks that
    // the handle presented matches the cookie's.
    std::optional<cookie_claims> redeem_cookie(std::string_view cookie, std::string_view handle, std::uint64_t now_ms);

    // Cookies remembered as redeemed and not yet expired at the last redeem.
    std::size_t redeemed_cookies() const;

    const token_options& options() const { return options_; }

private:
    using nonce = std::array<unsigned char, 12>;
    struct verified {
        std::uint64_t expiry_ms = 0;
        nonce id{};
        std::vector<std::string> fields;
    };

    std::string issue(std::string_view kind, std::uint64_t expiry_ms,
                      const std::vector<std::string_view>& fields) const;
    std::optional<verified> verify(std::string_view kind, std::string_view token, std::uint64_t now_ms,
                                   std::size_t field_count) const;

    std::vector<config::hmac_key> keys_;
    token_options options_;
    mutable std::mutex redeemed_mutex_;
    // Ordered by expiry, so expired entries are pruned from the front; the
    // token's authenticated expiry and nonce together identify it. The
    // value is the handle it was issued to, counted in redeemed_by_handle_.
    std::map<std::pair<std::uint64_t, nonce>, std::string> redeemed_;
    std::unordered_map<std::string, std::size_t> redeemed_by_handle_;
};

// The token in what an MSNP8+ client sends in `USR t TWN S` (msnp-reference
// section 3.3 item 5): `t=<token>&p=<profile>` as issued, in which only the
// `t=` part counts, or a bare token, used whole.
std::string_view parse_ticket_param(std::string_view param);

}  // namespace switchyard::gateway
