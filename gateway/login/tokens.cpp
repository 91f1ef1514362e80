#include "gateway/login/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

namespace switchyard::gateway {

namespace {

constexpr std::string_view ticket_kind = "pt2";
constexpr std::string_view old_ticket_kind = "pt1";  // no issue time
constexpr std::string_view cookie_kind = "sb1";
constexpr std::size_t mac_bytes = 32;
// Far above any token issued here (a cookie with the longest display name is
// under 1 KiB); longer input is rejected before any decoding or hashing.
constexpr std::size_t max_token_chars = 4096;

constexpr char base64url_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url(std::string_view bytes) {
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                                static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                                static_cast<unsigned char>(bytes[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) out.push_back(base64url_digits[(v >> shift) & 63]);
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out.push_back(base64url_digits[(v >> 18) & 63]);
        out.push_back(base64url_digits[(v >> 12) & 63]);
        if (rest == 2) out.push_back(base64url_digits[(v >> 6) & 63]);
    }
    return out;
}

int base64url_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

// Strict: no padding, and the bits a final partial group leaves over must be
// zero. Otherwise several spellings would decode to one token, and changing
// the last character of a mac would not always change the mac.
std::optional<std::string> from_base64url(std::string_view text) {
    if (text.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : text) {
        const int v = base64url_value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return out;
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint64_t get_be(std::string_view bytes) {
    std::uint64_t v = 0;
    for (const char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
    return v;
}

std::string hmac_sha256(std::string_view secret, std::string_view message) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    const auto* ok = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &length);
    // HMAC-SHA256 with an in-memory key cannot fail short of the library
    // being broken; a token signed with nothing must never be issued.
    if (!ok || length != mac_bytes) throw std::runtime_error("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char*>(mac), length);
}

}  // namespace

token_service::token_service(std::vector<config::hmac_key> keys, token_options options)
    : keys_(std::move(keys)), options_(options) {
    if (keys_.empty()) throw std::invalid_argument("token_service needs at least one HMAC key");
}

std::string token_service::issue(std::string_view kind, std::uint64_t expiry_ms,
                                 const std::vector<std::string_view>& fields) const {
    nonce id;
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) {
        throw std::runtime_error("the system random number generator failed");
    }
    std::string body;
    put_u64(body, expiry_ms);
    body.append(reinterpret_cast<const char*>(id.data()), id.size());
    for (const std::string_view f : fields) {
        put_u32(body, static_cast<std::uint32_t>(f.size()));
        body.append(f);
    }
    const config::hmac_key& key = keys_.front();
    std::string token;
    token.append(kind).append(".").append(key.id).append(".").append(base64url(body));
    const std::string mac = hmac_sha256(key.secret, token);
    token.append(".").append(base64url(mac));
    return token;
}

std::optional<token_service::verified> token_service::verify(std::string_view kind, std::string_view token,
                                                             std::uint64_t now_ms, std::size_t field_count) const {
    if (token.size() > max_token_chars) return std::nullopt;
    const auto last_dot = token.rfind('.');
    if (last_dot == std::string_view::npos) return std::nullopt;
    const std::string_view signed_part = token.substr(0, last_dot);
    // kind.key-id.body
    const auto first_dot = signed_part.find('.');
    const auto second_dot = signed_part.find('.', first_dot == std::string_view::npos ? 0 : first_dot + 1);
    if (first_dot == std::string_view::npos || second_dot == std::string_view::npos ||
        signed_part.substr(0, first_dot) != kind) {
        return std::nullopt;
    }
    const std::string_view key_id = signed_part.substr(first_dot + 1, second_dot - first_dot - 1);
    const auto key = std::ranges::find(keys_, key_id, &config::hmac_key::id);
    if (key == keys_.end()) return std::nullopt;

    const auto mac = from_base64url(token.substr(last_dot + 1));
    if (!mac || mac->size() != mac_bytes) return std::nullopt;
    const std::string expected = hmac_sha256(key->secret, signed_part);
    if (CRYPTO_memcmp(mac->data(), expected.data(), mac_bytes) != 0) return std::nullopt;

    // Authentic from here on: the body was made by issue(), so a malformed
    // one means a format change, and is refused all the same.
    const auto body = from_base64url(signed_part.substr(second_dot + 1));
    verified v;
    if (!body || body->size() < 8 + v.id.size()) return std::nullopt;
    std::string_view rest = *body;
    v.expiry_ms = get_be(rest.substr(0, 8));
    std::copy_n(rest.begin() + 8, v.id.size(), v.id.begin());
    rest.remove_prefix(8 + v.id.size());
    while (!rest.empty()) {
        if (rest.size() < 4) return std::nullopt;
        const auto length = get_be(rest.substr(0, 4));
        rest.remove_prefix(4);
        if (length > rest.size()) return std::nullopt;
        v.fields.emplace_back(rest.substr(0, length));
        rest.remove_prefix(length);
    }
    if (v.fields.size() != field_count || now_ms >= v.expiry_ms) return std::nullopt;
    return v;
}

std::string token_service::issue_ticket(std::string_view handle, std::uint64_t now_ms) const {
    const std::string issued = std::to_string(now_ms);
    return issue(ticket_kind, now_ms + static_cast<std::uint64_t>(options_.ticket_lifetime.count()), {handle, issued});
}

std::optional<std::string> token_service::verify_ticket(std::string_view token, std::uint64_t now_ms) const {
    auto claims = verify_ticket_claims(token, now_ms);
    if (!claims) return std::nullopt;
    return std::move(claims->handle);
}

std::optional<ticket_claims> token_service::verify_ticket_claims(std::string_view token, std::uint64_t now_ms) const {
    if (auto v = verify(ticket_kind, token, now_ms, 2)) {
        std::uint64_t issued = 0;
        const std::string& text = v->fields[1];
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), issued);
        if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
        return ticket_claims{std::move(v->fields[0]), issued};
    }
    if (auto v = verify(old_ticket_kind, token, now_ms, 1)) {
        const auto lifetime = static_cast<std::uint64_t>(options_.ticket_lifetime.count());
        return ticket_claims{std::move(v->fields[0]), v->expiry_ms > lifetime ? v->expiry_ms - lifetime : 0};
    }
    return std::nullopt;
}

std::string token_service::issue_cookie(const cookie_claims& claims, std::uint64_t now_ms) const {
    const std::string dialect = std::to_string(claims.dialect);
    const std::string capabilities = std::to_string(claims.capabilities);
    return issue(cookie_kind, now_ms + static_cast<std::uint64_t>(options_.cookie_lifetime.count()),
                 {claims.handle, claims.room, dialect, claims.display_name, capabilities});
}

std::optional<cookie_claims> token_service::redeem_cookie(std::string_view cookie, std::string_view handle,
                                                         std::uint64_t now_ms) {
    auto v = verify(cookie_kind, cookie, now_ms, 5);
    if (!v || v->fields[0] != handle) return std::nullopt;
    cookie_claims claims{std::move(v->fields[0]), std::move(v->fields[1]), 0, std::move(v->fields[3]), 0};
    const auto decimal = [](const std::string& text, auto& out) {
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
        return ec == std::errc() && end == text.data() + text.size();
    };
    if (!decimal(v->fields[2], claims.dialect) || !decimal(v->fields[4], claims.capabilities)) return std::nullopt;

    const std::lock_guard lock(redeemed_mutex_);
    while (!redeemed_.empty() && redeemed_.begin()->first.first <= now_ms) {
        const auto count = redeemed_by_handle_.find(redeemed_.begin()->second);
        if (--count->second == 0) redeemed_by_handle_.erase(count);
        redeemed_.erase(redeemed_.begin());
    }
    if (redeemed_.size() >= options_.max_redeemed_cookies) return std::nullopt;
    auto& mine = redeemed_by_handle_[claims.handle];
    if (mine >= options_.max_redeemed_cookies_per_handle ||
        !redeemed_.emplace(std::pair{v->expiry_ms, v->id}, claims.handle).second) {
        if (mine == 0) redeemed_by_handle_.erase(claims.handle);
        return std::nullopt;
    }
    ++mine;
    return claims;
}

std::size_t token_service::redeemed_cookies() const {
    const std::lock_guard lock(redeemed_mutex_);
    return redeemed_.size();
}

std::string_view parse_ticket_param(std::string_view param) {
    constexpr std::string_view prefix = "t=";
    if (!param.starts_with(prefix)) return param;
    param.remove_prefix(prefix.size());
    return param.substr(0, param.find('&'));
}

}  // namespace switchyard::gateway
