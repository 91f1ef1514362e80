// libFuzzer target for the MSNP client framer and the percent-encoders. It
// aborts when
//  - a stream framed in two reads (split at a point derived from the data)
//    or one byte per read yields other commands or another error than the
//    same stream in one read, as a notification or switchboard connection
//    at MSNP5 or MSNP12,
//    with the default limits and with tight ones that make every limit
//    reachable by short inputs;
//  - a framed command breaks the framer's own rules (name shape, payload
//    only per client_payload and of the announced length, no space or
//    control byte in a parameter), or an error is not sticky;
//  - url_decode does not undo url_encode or url_encode_all, or url_encode
//    leaves a byte that §5 says must be escaped.
#include "protocols/msnp/command.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace switchyard::msnp;

void require(bool ok) {
    if (!ok) {
        std::abort();
    }
}

struct outcome {
    std::vector<command> commands;
    std::optional<framer_errc> error;

    bool operator==(const outcome&) const = default;
};

void drain(framer& f, outcome& out) {
    while (!out.error) {
        auto next = f.next();
        if (!next) {
            out.error = next.error();
            // Sticky: asking again gives the same error.
            const auto again = f.next();
            require(!again && again.error() == next.error());
        } else if (!*next) {
            return;
        } else {
            out.commands.push_back(std::move(**next));
        }
    }
}

bool control_or_space(char c) {
    const auto b = static_cast<unsigned char>(c);
    return b <= 0x20 || b == 0x7F;
}

void check_command(const command& c, server_role role, int dialect, const framer_limits& limits) {
    require(c.name.size() == 3);
    require(std::all_of(c.name.begin(), c.name.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; }) ||
            std::all_of(c.name.begin(), c.name.end(), [](char ch) { return ch >= '0' && ch <= '9'; }));
    for (const auto& p : c.params) {
        require(std::none_of(p.begin(), p.end(), control_or_space));
    }
    require(c.has_payload == client_payload(role, dialect, c.name, c.params.size()));
    if (c.has_payload) {
        require(std::stoull(c.params.back()) == c.payload.size());
        const std::size_t cap =
            role == server_role::switchboard ? limits.max_sb_message : limits.max_payload;
        require(c.payload.size() <= cap);
    } else {
        require(c.payload.empty());
    }
}

framer make_framer(server_role role, int dialect, const framer_limits& limits) {
    framer f(limits);
    f.set_role(role);
    f.set_dialect(dialect);
    return f;
}

outcome read_in_two(std::string_view bytes, std::size_t split, server_role role, int dialect,
                    const framer_limits& limits) {
    framer f = make_framer(role, dialect, limits);
    outcome out;
    f.feed(bytes.substr(0, split));
    drain(f, out);
    f.feed(bytes.substr(split));
    drain(f, out);
    return out;
}

// One read per byte visits every boundary in one run, which a single
// data-derived split would need luck to hit (a CR read without its LF).
outcome read_bytewise(std::string_view bytes, server_role role, int dialect, const framer_limits& limits) {
    framer f = make_framer(role, dialect, limits);
    outcome out;
    for (std::size_t i = 0; i < bytes.size() && !out.error; ++i) {
        f.feed(bytes.substr(i, 1));
        drain(f, out);
    }
    return out;
}

void check_encoding(std::string_view bytes) {
    const std::string encoded = url_encode(bytes);
    require(url_decode(encoded) == bytes);
    require(std::none_of(encoded.begin(), encoded.end(), [](char c) {
        const auto b = static_cast<unsigned char>(c);
        return b <= 0x20 || b >= 0x7F;
    }));
    require(url_decode(url_encode_all(bytes)) == bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);

    framer_limits tight;
    tight.max_line = 64;
    tight.max_payload = 200;
    tight.max_sb_message = 100;

    // A split point that moves with the content, so the fuzzer explores
    // boundaries inside lines, CRLFs and payloads.
    const std::size_t split = size == 0 ? 0 : (data[0] * 131u + data[size - 1]) % (size + 1);

    for (const auto& limits : {framer_limits{}, tight}) {
        for (const auto role : {server_role::notification, server_role::switchboard}) {
            for (const int dialect : {5, 12}) {
                const outcome whole = read_in_two(bytes, size, role, dialect, limits);
                require(read_in_two(bytes, split, role, dialect, limits) == whole);
                require(read_bytewise(bytes, role, dialect, limits) == whole);
                for (const auto& c : whole.commands) {
                    check_command(c, role, dialect, limits);
                }
            }
        }
    }

    check_encoding(bytes);
    return 0;
}
