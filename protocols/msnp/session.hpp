// The MSNP notification-server (NS) and switchboard (SB) state machines,
// sans-I/O: commands and frames in, bytes to write, frames to route and
// subscriptions to change out. Everything that needs keys, a database or a
// clock is asked of `services`, which the gateway implements.
#pragma once

#include "protocols/frame/frame.hpp"
#include "protocols/frame/output.hpp"
#include "protocols/msnp/command.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard::msnp {

// Dialects this codec speaks: MSNP2 to MSNP12 (MSN Messenger 1.0 to 7.5).
inline constexpr int min_dialect = 2;
inline constexpr int max_dialect = 12;

// What a switchboard cookie grants: the NS that issues it knows the user's
// dialect and name, which the SB (a new connection with no VER) needs.
struct sb_grant {
    std::string handle;
    std::string room;          // "room:<id>"
    int dialect = 0;
    std::string display_name;
    std::uint64_t capabilities = 0;  // from the user's CHG: MSNP12 IRO/JOI carry them
};

// Whom a ticket names, and when it was issued (Unix ms).
struct ticket_owner {
    std::string handle;
    std::uint64_t issued_ms = 0;
};

class services {
public:
    virtual ~services() = default;

    // MSNP2-7 (§3.2): the salt for `USR t MD5 S`, and the check of the reply.
    virtual std::string md5_salt(std::string_view handle) = 0;
    virtual bool verify_md5(std::string_view handle, std::string_view response_hex) = 0;
    // MSNP8-12 (§3.3): the ticket from `USR t TWN S`, as issued by the
    // gateway's Passport services; returns the handle it was issued to and
    // when (the hello carries it: a ticket older than the password is refused).
    virtual std::optional<ticket_owner> verify_ticket(std::string_view ticket) = 0;

    // Switchboard cookies (§4.4): self-verifying, single use, short-lived.
    // Redeeming names the handle the client presents (normalised): a cookie
    // issued to another handle is refused and stays unspent.
    virtual std::string issue_sb_cookie(const sb_grant& grant) = 0;
    virtual std::optional<sb_grant> redeem_sb_cookie(std::string_view cookie, std::string_view handle) = 0;

    virtual std::string new_room_id() = 0;       // without "room:"
    virtual std::string new_endpoint_id() = 0;   // one per NS connection
    virtual std::string sb_endpoint() = 0;       // host:port for XFR SB and RNG
    virtual std::uint64_t now_ms() = 0;          // Unix time
};

// What the gateway must do after feeding a machine: MSNP writes `bytes`.
using output = frame::output;

struct session_limits {
    std::size_t name_bytes = 387;
    std::size_t message_bytes = 16384;
    std::uint32_t qng_seconds = 60;     // MSNP9+ QNG hint
};

// The notification server: login, lists, presence, switchboard brokering.
class ns_session final : public frame::codec {
public:
    ns_session(services& svc, session_limits limits = {});
    ~ns_session();
    ns_session(ns_session&&) noexcept;

    output on_command(const command& c);
    // Replies to frames this session sent (matched by corr) and frames from
    // the objects it watches.
    output on_frame(const frame::frame& f) override;
    // The gateway is stopping: `OUT SSD`.
    output on_shutdown() override;
    // The connection closed (either side): tell the user object.
    output on_closed() override;

    int dialect() const;  // 0 before VER
    // USR OK was sent: the client signed in (and may have left since).
    bool signed_in() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A switchboard session: one conversation.
class sb_session final : public frame::codec {
public:
    sb_session(services& svc, session_limits limits = {});
    ~sb_session();
    sb_session(sb_session&&) noexcept;

    output on_command(const command& c);
    output on_frame(const frame::frame& f) override;
    output on_shutdown() override;
    output on_closed() override;

    // USR OK or ANS OK was sent: the client joined the conversation (and
    // may have left since).
    bool signed_in() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace switchyard::msnp
