// An MSNP client connection (sans-I/O): bytes in, and what to write, route
// and watch out. One port serves both servers (msnp-reference §7.1): the
// first command decides, VER for the notification server, USR or ANS for a
// switchboard.
#pragma once

#include "protocols/msnp/command.hpp"
#include "protocols/msnp/session.hpp"

#include <cstdint>
#include <optional>
#include <type_traits>
#include <string_view>
#include <variant>

namespace switchyard::msnp {

class connection final : public frame::codec {
public:
    connection(services& svc, framer_limits framing, session_limits limits)
        : svc_(svc), framer_(framing), limits_(limits) {}

    output feed(std::string_view bytes);
    output on_frame(const frame::frame& f) override;
    output on_shutdown() override;
    output on_closed() override;

    server_role role() const { return role_; }
    // Signed in to the notification server, or joined a switchboard's
    // conversation, whether closed since or not: the gateway's
    // handshake_timeout no longer applies, and its end is a user's.
    bool signed_in() const;
    // Commands framed so far, for the gateway's per-connection rate limits.
    std::uint64_t commands() const { return commands_; }
    // Of those, the switchboard's MSGs (what a conversation relays: text,
    // and the P2P data of file transfers, display pictures and winks), and
    // their payload bytes: the gateway meters those by size, not count.
    std::uint64_t relayed() const { return relayed_; }
    std::uint64_t relayed_bytes() const { return relayed_bytes_; }

private:
    output dispatch(const command& c);
    // Calls f on the NS or SB session; nothing before the first command.
    template <class F> output forward(F&& f) {
        return std::visit(
            [&](auto& s) -> output {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::monostate>) {
                    return {};
                } else {
                    return f(s);
                }
            },
            session_);
    }

    services& svc_;
    framer framer_;
    session_limits limits_;
    server_role role_ = server_role::unknown;
    std::variant<std::monostate, ns_session, sb_session> session_;
    bool closed_ = false;
    std::uint64_t commands_ = 0;
    std::uint64_t relayed_ = 0;
    std::uint64_t relayed_bytes_ = 0;
};

}  // namespace switchyard::msnp
