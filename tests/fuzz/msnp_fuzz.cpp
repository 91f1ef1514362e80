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
// It also drives a whole connection (framer, then the NS or SB machine)
// with services that accept any credential for alice@example.com and a
// backend stand-in that answers every request, so the fuzzer reaches the
// commands that only exist after login; there it checks only that nothing
// crashes and that every line written ends in CRLF.
#include "protocols/msnp/command.hpp"
#include "protocols/msnp/msnp.hpp"

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

class accept_all final : public services {
public:
    std::string md5_salt(std::string_view) override { return "eba3c82d9c67dd8"; }
    bool verify_md5(std::string_view, std::string_view) override { return true; }
    std::optional<ticket_owner> verify_ticket(std::string_view) override {
        return ticket_owner{"alice@example.com", 1};
    }
    std::string issue_sb_cookie(const sb_grant& g) override {
        grant_ = g;
        return "cookie";
    }
    std::optional<sb_grant> redeem_sb_cookie(std::string_view, std::string_view) override {
        sb_grant g = grant_;
        if (g.handle.empty()) g = {"alice@example.com", "room:r1", 12, "Alice"};
        return g;
    }
    std::string new_room_id() override { return "r1"; }
    std::string new_endpoint_id() override { return "ep1"; }
    std::string sb_endpoint() override { return "127.0.0.1:1863"; }
    std::uint64_t now_ms() override { return 1700000000000; }

private:
    sb_grant grant_;
};

// What an object would answer, shaped enough for the machines to go on.
switchyard::frame::frame answer(const switchyard::frame::frame& request) {
    namespace fr = switchyard::frame;
    fr::frame reply{request.corr, request.object, {}, fr::ack{}};
    if (std::holds_alternative<fr::roster_get>(request.content)) {
        fr::roster r;
        r.display_name = "Alice";
        r.phones.home = "555 0100";
        r.entries.push_back({"bob@example.com", "Bob", 0xb, "c1", {}, {"555 0199", {}, {}, true}});
        reply.content = r;
    } else if (std::holds_alternative<fr::room_join>(request.content)) {
        reply.content = fr::room_members{{{"bob@example.com", "ep2", "Bob", 0, fr::client_protocol::msnp}}, {}};
    } else if (const auto* change = std::get_if<fr::roster_change>(&request.content)) {
        reply.content = *change;
    } else if (const auto* group = std::get_if<fr::group_change>(&request.content)) {
        reply.content = *group;
    } else if (const auto* privacy = std::get_if<fr::privacy_set>(&request.content)) {
        reply.content = *privacy;
    }
    return reply;
}

void check_written(const std::string& bytes) {
    // Payloads may hold anything; line ends are checked on payload-free output.
    if (bytes.find("MSG ") == std::string::npos && bytes.find("UBX ") == std::string::npos &&
        bytes.find("GCF ") == std::string::npos) {
        require(bytes.empty() || bytes.ends_with("\r\n"));
    }
}

void drive_connection(std::string_view bytes) {
    accept_all svc;
    connection conn(svc, framer_limits{}, session_limits{});
    output out = conn.feed(bytes);
    // Answer requests (and what the answers cause) a bounded number of rounds.
    for (int round = 0; round < 8 && !out.frames.empty(); ++round) {
        check_written(out.bytes);
        output next;
        for (const auto& f : out.frames) {
            if (f.corr != 0) next.append(conn.on_frame(answer(f)));
        }
        out = std::move(next);
    }
    check_written(out.bytes);
    check_written(conn.on_shutdown().bytes);
    conn.on_closed();
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
    drive_connection(bytes);
    return 0;
}
