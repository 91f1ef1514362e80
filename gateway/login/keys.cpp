#include "gateway/login/keys.hpp"

#include <openssl/rand.h>

#include <cstdio>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace switchyard::gateway {

namespace {

constexpr std::size_t secret_bytes = 32;
constexpr char key_file_name[] = "hmac-keys";

std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(digits[u >> 4]);
        out.push_back(digits[u & 15]);
    }
    return out;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

tl::expected<std::string, std::string> from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return tl::unexpected(std::string{"odd number of hex digits"});
    }
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hex_digit(hex[i]);
        const int lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return tl::unexpected(std::string{"not a lowercase hex digit"});
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

tl::expected<std::vector<config::hmac_key>, std::string> read_key_file(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) {
        return tl::unexpected(file.string() + ": cannot read: " + std::strerror(errno));
    }
    std::vector<config::hmac_key> keys;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (line.empty() || line[0] == '#') {
            continue;
        }
        std::istringstream fields(line);
        std::string id, hex, extra;
        fields >> id >> hex;
        auto secret = from_hex(hex);
        if (id.empty() || !secret || secret->size() < secret_bytes || (fields >> extra)) {
            return tl::unexpected(file.string() + ":" + std::to_string(n) +
                                  ":1: expected \"<key id> <" + std::to_string(secret_bytes * 2) +
                                  " or more lowercase hex digits>\"");
        }
        keys.push_back({std::move(id), std::move(*secret)});
    }
    if (keys.empty()) {
        return tl::unexpected(file.string() + ": no keys in file");
    }
    return keys;
}

// A secret file others may read is refused, not used quietly: `why` says
// what its reader could do.
tl::expected<void, std::string> owner_only(const std::filesystem::path& file, std::string_view why) {
    std::error_code ec;
    const auto perms = std::filesystem::status(file, ec).permissions();
    if (!ec && (perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) !=
                   std::filesystem::perms::none) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(perms) & 07777u);
        return tl::unexpected(file.string() + ": other users may read or change it (mode " + mode + "), and " +
                              std::string(why) + "; make it the owner's alone (chmod 600) and start again");
    }
    return {};
}

}  // namespace

tl::expected<std::string, std::string> read_admin_token(const std::filesystem::path& file) {
    if (auto ok = owner_only(file, "this token opens the admin endpoint"); !ok) return tl::unexpected(ok.error());
    std::ifstream in(file);
    std::string token;
    if (!in || !std::getline(in, token)) return tl::unexpected(file.string() + ": cannot read the admin token");
    while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.size() < 16) {
        return tl::unexpected(file.string() + ": expected an admin token of at least 16 characters on the first line");
    }
    return token;
}

tl::expected<key_set, std::string> load_or_generate_keys(const config::settings& s) {
    if (!s.keys.empty()) {
        return key_set{s.keys, {}, false};
    }
    const std::filesystem::path file = s.data_dir / key_file_name;
    std::error_code ec;
    if (std::filesystem::exists(file, ec)) {
        // Whoever can read the keys can sign tickets and cookies for every user.
        if (auto ok = owner_only(file, "these keys sign every ticket"); !ok) return tl::unexpected(ok.error());
        auto keys = read_key_file(file);
        if (!keys) {
            return tl::unexpected(keys.error());
        }
        return key_set{std::move(*keys), file, false};
    }
    std::filesystem::create_directories(s.data_dir, ec);
    if (ec) {
        return tl::unexpected(s.data_dir.string() + ": cannot create data directory: " + ec.message());
    }
    unsigned char raw[secret_bytes + 4];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        return tl::unexpected(std::string{"the system random number generator failed"});
    }
    const std::string_view raw_view(reinterpret_cast<const char*>(raw), sizeof raw);
    config::hmac_key key{"k" + to_hex(raw_view.substr(secret_bytes)), std::string(raw_view.substr(0, secret_bytes))};
    const std::string text = "# HMAC keys generated by switchyard; keep this file secret.\n"
                             "# One key per line: <key id> <secret in hex>. The first key signs new tokens.\n" +
                             key.id + ' ' + to_hex(key.secret) + '\n';
    // Created with owner-only permissions and never overwritten: O_EXCL.
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        return tl::unexpected(file.string() + ": cannot create: " + std::strerror(errno));
    }
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
        return tl::unexpected(file.string() + ": cannot write keys");
    }
    return key_set{{std::move(key)}, file, true};
}

}  // namespace switchyard::gateway
